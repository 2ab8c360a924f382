import { describe, expect, it } from 'vitest';
import { FR, faultReasonName, IR_FR, isQualificationConfirmed, isQualified } from './fault-reasons.js';

/**
 * Every assigned code and its name, written out from the spec's fault reason list (Linux dmar.c's string
 * tables and QEMU's VTDFaultReason for 0xE and 0x91), not derived from the module.
 */
const SPEC_LIST: readonly (readonly [number, string])[] = [
  [0x01, 'ROOT_NOT_PRESENT'],
  [0x02, 'CONTEXT_NOT_PRESENT'],
  [0x03, 'CONTEXT_INVALID'],
  [0x04, 'ADDRESS_BEYOND_MGAW'],
  [0x05, 'WRITE_DENIED'],
  [0x06, 'READ_DENIED'],
  [0x07, 'PAGING_ENTRY_ACCESS'],
  [0x08, 'ROOT_TABLE_ACCESS'],
  [0x09, 'CONTEXT_TABLE_ACCESS'],
  [0x0a, 'ROOT_RESERVED'],
  [0x0b, 'CONTEXT_RESERVED'],
  [0x0c, 'PAGING_ENTRY_RESERVED'],
  [0x0d, 'TT_BLOCKED'],
  [0x0e, 'INTERRUPT_ADDRESS'],
  [0x20, 'REQUEST_RESERVED'],
  [0x21, 'INDEX_BEYOND_TABLE'],
  [0x22, 'IRTE_NOT_PRESENT'],
  [0x23, 'IRTE_ACCESS_ERROR'],
  [0x24, 'IRTE_RESERVED'],
  [0x25, 'COMPAT_BLOCKED'],
  [0x26, 'SOURCE_INVALID'],
  [0x27, 'PID_ACCESS_ERROR'],
  [0x28, 'PID_RESERVED'],
  [0x30, 'SM_ROOT_TABLE_ADDRESS'],
  [0x31, 'SM_TTM0_PASID_REQUEST'],
  [0x32, 'SM_TTM0_PAGE_REQUEST'],
  [0x38, 'SM_ROOT_ACCESS'],
  [0x39, 'SM_ROOT_NOT_PRESENT'],
  [0x3a, 'SM_ROOT_RESERVED'],
  [0x40, 'SM_CONTEXT_ACCESS'],
  [0x41, 'SM_CONTEXT_NOT_PRESENT'],
  [0x42, 'SM_CONTEXT_RESERVED'],
  [0x43, 'SM_CONTEXT_INVALID'],
  [0x44, 'SM_CONTEXT_DTE_CLEAR'],
  [0x45, 'SM_CONTEXT_PASIDE_CLEAR'],
  [0x46, 'SM_CONTEXT_PASID_TOO_LARGE'],
  [0x47, 'SM_CONTEXT_PRE_CLEAR'],
  [0x48, 'SM_CONTEXT_RID_PASID'],
  [0x50, 'SM_PASID_DIR_ACCESS'],
  [0x51, 'SM_PASID_DIR_NOT_PRESENT'],
  [0x52, 'SM_PASID_DIR_RESERVED'],
  [0x58, 'SM_PASID_ACCESS'],
  [0x59, 'SM_PASID_NOT_PRESENT'],
  [0x5a, 'SM_PASID_RESERVED'],
  [0x5b, 'SM_PASID_INVALID'],
  [0x5c, 'SM_PASID_ERE_CLEAR'],
  [0x5d, 'SM_PASID_SRE_CLEAR'],
  [0x70, 'SM_FS_ACCESS'],
  [0x71, 'SM_FS_NOT_PRESENT'],
  [0x72, 'SM_FS_RESERVED'],
  [0x73, 'SM_FS_ROOT_ACCESS'],
  [0x74, 'SM_NESTED_FS_BEYOND_MGAW'],
  [0x75, 'SM_NESTED_FS_ROOT_READ'],
  [0x76, 'SM_NESTED_FS_READ'],
  [0x77, 'SM_NESTED_FS_WRITE'],
  [0x78, 'SM_SS_ACCESS'],
  [0x79, 'SM_SS_PERMISSION'],
  [0x7a, 'SM_SS_RESERVED'],
  [0x7b, 'SM_SSPTPTR_INVALID'],
  [0x7c, 'SM_SS_AD_NO_SNOOP'],
  [0x80, 'SM_NON_CANONICAL'],
  [0x81, 'SM_USER_SUPERVISOR'],
  [0x82, 'SM_EXECUTE_DENIED'],
  [0x83, 'SM_ADDRESS_BEYOND_MAX'],
  [0x84, 'SM_SS_OUTPUT_BEYOND_MAX'],
  [0x85, 'SM_WRITE_DENIED'],
  [0x86, 'SM_READ_DENIED'],
  [0x87, 'SM_INTERRUPT_ADDRESS'],
  [0x90, 'SM_FS_AD_NO_SNOOP'],
  [0x91, 'SM_FS_AD_UPDATE_FAILED'],
];

describe('fault reason codes (VT-d §7.1.3)', () => {
  it.each(SPEC_LIST)('code %d is %s', (code, name) => {
    expect(faultReasonName(code)).toBe(name);
    const table: Readonly<Record<string, number>> = code >= 0x20 && code <= 0x28 ? IR_FR : FR;
    expect(table[name]).toBe(code);
  });

  it('assigns exactly the codes of the spec list, each once', () => {
    const assigned = [...Object.values(FR), ...Object.values(IR_FR)].sort((a, b) => a - b);
    expect(assigned).toEqual(SPEC_LIST.map(([code]) => code));
  });

  it.each([0x00, 0x0f, 0x29, 0x33, 0x49, 0x5e, 0x7d, 0x88, 0x92, 0xff])(
    'names unassigned code %d as unknown',
    (code) => {
      expect(faultReasonName(code)).toBe(`UNKNOWN_0x${code.toString(16).padStart(2, '0')}`);
    },
  );
});

describe('qualified faults (suppressed by FPD)', () => {
  // QEMU's vtd_qualified_faults: true entries, and the false ones (0xB by omission).
  const QEMU_QUALIFIED = [
    0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0xc, 0xd, 0xe, 0x51, 0x59, 0x5b, 0x70, 0x71, 0x72, 0x73, 0x80, 0x81, 0x85,
    0x87, 0x91,
  ];
  const QEMU_UNQUALIFIED = [0x1, 0x8, 0x9, 0xa, 0xb, 0x50, 0x58];

  it.each(QEMU_QUALIFIED)('code %d is qualified, as QEMU states', (code) => {
    expect(isQualified(code)).toBe(true);
    expect(isQualificationConfirmed(code)).toBe(true);
  });

  it.each(QEMU_UNQUALIFIED)('code %d is unqualified, as QEMU states', (code) => {
    expect(isQualified(code)).toBe(false);
    expect(isQualificationConfirmed(code)).toBe(true);
  });

  // Inferred: RTADDR and root faults, entry-table access and reserved faults unqualified; the rest qualified.
  it('infers the qualification of the codes QEMU does not report', () => {
    const confirmed = new Set([...QEMU_QUALIFIED, ...QEMU_UNQUALIFIED]);
    const inferredUnqualified = [0x30, 0x31, 0x32, 0x38, 0x39, 0x3a, 0x40, 0x42, 0x52, 0x5a];
    for (const code of Object.values(FR).filter((c) => !confirmed.has(c))) {
      expect(isQualificationConfirmed(code), `0x${code.toString(16)}`).toBe(false);
      expect(isQualified(code), `0x${code.toString(16)}`).toBe(!inferredUnqualified.includes(code));
    }
  });

  it('never calls interrupt-remapping or unassigned codes qualified', () => {
    for (const code of [...Object.values(IR_FR), 0x00, 0x33, 0xff]) {
      expect(isQualified(code)).toBe(false);
      expect(isQualificationConfirmed(code)).toBe(false);
    }
  });
});
