import {
  type BitRun,
  bitPositionProblems,
  type Coverage,
  coverageProblems,
  syncGeneratedSection,
  uncoveredBits,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import {
  CAP_COVERAGE,
  CAP_SPEC_ONLY_FIELDS,
  ECAP_COVERAGE,
  ECAP_SPEC_ONLY_FIELDS,
  FAULT_REASON_COVERAGE,
  FAULT_RECORD_COVERAGE,
  INV_DESCRIPTOR_COVERAGE,
  INV_DESCRIPTOR_FIELD_COVERAGE,
  type InvTypeName,
  IR_FAULT_REASON_COVERAGE,
  LEGACY_CONTEXT_COVERAGE,
  LEGACY_ROOT_COVERAGE,
  PAGE_REQUEST_COVERAGE,
  PASID_DIR_COVERAGE,
  PASID_ENTRY_COVERAGE,
  PASID_ENTRY_SPEC_ONLY_FIELDS,
  POSTED_IRTE_COVERAGE,
  REGISTER_COVERAGE,
  REMAPPED_IRTE_COVERAGE,
  SCALABLE_CONTEXT_COVERAGE,
  SCALABLE_CONTEXT_SPEC_ONLY_FIELDS,
  SCALABLE_ROOT_COVERAGE,
  SPEC_ONLY_FAULT_REASONS,
  SPEC_ONLY_INV_DESCRIPTORS,
  SPEC_ONLY_IR_FAULT_REASONS,
  SPEC_ONLY_REGISTERS,
} from './coverage.js';
import {
  capFieldBits,
  defaultVtdFeatures,
  ecapFieldBits,
  faultRecordFieldBits,
  invDescriptorFieldBits,
  irteFieldBits,
  legacyContextFieldBits,
  pageRequestFieldBits,
  pasidEntryFieldBits,
  sampleDescriptor,
  scalableContextFieldBits,
  scalableRootFieldBits,
} from './coverage-bits.js';
import { descriptorTypeBits, registerPresence, vtdStatusMarkdown, vtdStructures } from './coverage-doc.js';
import { CAP_LAYOUT, capWords, ECAP_LAYOUT, ecapWords } from './hw/capabilities.js';
import { FR, IR_FR } from './hw/fault-reasons.js';
import { INV_TYPE } from './hw/inv-descriptors.js';
import { decodeIrte, IRTE_WORDS } from './hw/irte.js';
import { decodePageRequest, PAGE_REQUEST_WORDS } from './hw/page-requests.js';
import {
  decodePasidDirEntry,
  decodePasidEntry,
  PASID_DIR_ENTRY_WORDS,
  PASID_ENTRY_WORDS,
} from './hw/pasid-entry.js';
import { decodeFaultRecord, FRCD_SCALARS, REG, vtdRegisterTable } from './hw/regs.js';
import {
  decodeLegacyContext,
  decodeLegacyRootEntry,
  decodeScalableContext,
  decodeScalableRootEntry,
  LEGACY_CONTEXT_WORDS,
  ROOT_ENTRY_WORDS,
  SCALABLE_CONTEXT_WORDS,
} from './hw/root-context.js';

const DOC = new URL('../../../docs/vendors/vtd.md', import.meta.url);
const BEGIN = '<!-- BEGIN GENERATED: vtdStatusMarkdown() -->';
const END = '<!-- END GENERATED -->';

const sorted = (keys: Iterable<string>): string[] => [...keys].sort();
const keysOf = (o: object): string[] => sorted(Object.keys(o));
const run = (msb: number, lsb: number): BitRun => ({ msb, lsb });
const layoutRuns = (layout: Readonly<Record<string, readonly [number, number]>>) =>
  Object.fromEntries(Object.entries(layout).map(([k, [lsb, width]]) => [k, [run(lsb + width - 1, lsb)]]));

function expectWellFormed(entries: Readonly<Record<string, Coverage>> | readonly Coverage[]): void {
  expect(coverageProblems(entries)).toEqual([]);
}

describe('VT-d coverage table: every item of the code, and nothing else', () => {
  it('gives every register of REG a status', () => {
    expect(keysOf(REGISTER_COVERAGE)).toEqual(keysOf(REG));
    expectWellFormed(REGISTER_COVERAGE);
  });

  it('lists spec-only registers under names REG lacks, at offsets the model does not map', () => {
    const names = SPEC_ONLY_REGISTERS.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(Object.keys(REG)).not.toContain(name);
    expectWellFormed(SPEC_ONLY_REGISTERS);
    const mapped = new Set(vtdRegisterTable(defaultVtdFeatures()).map((d) => d.offset));
    for (const r of SPEC_ONLY_REGISTERS)
      for (const [start] of r.offset.matchAll(/0x[0-9A-F]+/gi))
        expect(mapped.has(Number.parseInt(start, 16)), `${r.name} at ${r.offset}`).toBe(false);
  });

  it('gives every field of each structure a status: the decoders’ keys, nothing else', () => {
    const cases: [string, object, object][] = [
      ['FRCD', FAULT_RECORD_COVERAGE, decodeFaultRecord(new Uint32Array(4))],
      ['legacy root', LEGACY_ROOT_COVERAGE, decodeLegacyRootEntry(new Uint32Array(ROOT_ENTRY_WORDS))],
      ['scalable root', SCALABLE_ROOT_COVERAGE, decodeScalableRootEntry(new Uint32Array(ROOT_ENTRY_WORDS))],
      ['legacy context', LEGACY_CONTEXT_COVERAGE, decodeLegacyContext(new Uint32Array(LEGACY_CONTEXT_WORDS))],
      [
        'scalable context',
        SCALABLE_CONTEXT_COVERAGE,
        decodeScalableContext(new Uint32Array(SCALABLE_CONTEXT_WORDS)),
      ],
      ['PASID directory', PASID_DIR_COVERAGE, decodePasidDirEntry(new Uint32Array(PASID_DIR_ENTRY_WORDS))],
      ['PASID entry', PASID_ENTRY_COVERAGE, decodePasidEntry(new Uint32Array(PASID_ENTRY_WORDS))],
      ['page request', PAGE_REQUEST_COVERAGE, decodePageRequest(new Uint32Array(PAGE_REQUEST_WORDS), 0)],
    ];
    for (const [what, coverage, decoded] of cases) {
      expect(keysOf(coverage), what).toEqual(keysOf(decoded));
      expectWellFormed(coverage as Record<string, Coverage>);
    }
  });

  it('gives every CAP and ECAP field of the layouts a status', () => {
    expect(keysOf(CAP_COVERAGE)).toEqual(keysOf(CAP_LAYOUT));
    expect(keysOf(ECAP_COVERAGE)).toEqual(keysOf(ECAP_LAYOUT));
    expectWellFormed(CAP_COVERAGE);
    expectWellFormed(ECAP_COVERAGE);
    expectWellFormed(CAP_SPEC_ONLY_FIELDS);
    expectWellFormed(ECAP_SPEC_ONLY_FIELDS);
  });

  it('gives every IRTE field of both formats a status: the decoder’s keys, the format as IM', () => {
    const remapped = decodeIrte(new Uint32Array(IRTE_WORDS));
    const posted = decodeIrte(Uint32Array.of(1 << 15, 0, 0, 0));
    expect([remapped.mode, posted.mode]).toEqual(['remapped', 'posted']);
    const fields = (o: object) => keysOf(o).filter((k) => k !== 'reservedBit');
    expect(keysOf(REMAPPED_IRTE_COVERAGE)).toEqual(fields(remapped));
    expect(keysOf(POSTED_IRTE_COVERAGE)).toEqual(fields(posted));
    expectWellFormed(REMAPPED_IRTE_COVERAGE);
    expectWellFormed(POSTED_IRTE_COVERAGE);
  });

  it('gives every descriptor type of INV_TYPE and every field it decodes a status', () => {
    expect(keysOf(INV_DESCRIPTOR_COVERAGE)).toEqual(keysOf(INV_TYPE));
    expect(keysOf(INV_DESCRIPTOR_FIELD_COVERAGE)).toEqual(keysOf(INV_TYPE));
    expectWellFormed(INV_DESCRIPTOR_COVERAGE);
    for (const name of Object.keys(INV_TYPE) as InvTypeName[]) {
      const { type, ...fields } = sampleDescriptor(name);
      expect(type).toBe(INV_TYPE[name]);
      expect(keysOf(INV_DESCRIPTOR_FIELD_COVERAGE[name]), name).toEqual(keysOf(fields));
      expectWellFormed(INV_DESCRIPTOR_FIELD_COVERAGE[name] as Record<string, Coverage>);
    }
  });

  it('lists spec-only descriptor types and fault reasons at codes the code does not name', () => {
    const taken = (codes: object) => new Set(Object.values(codes) as number[]);
    const cases: [Set<number>, readonly { code: number }[]][] = [
      [taken(INV_TYPE), SPEC_ONLY_INV_DESCRIPTORS],
      [taken(FR), SPEC_ONLY_FAULT_REASONS],
      [taken(IR_FR), SPEC_ONLY_IR_FAULT_REASONS],
    ];
    for (const [codes, specOnly] of cases) {
      const own = specOnly.map((c) => c.code);
      expect(new Set(own).size).toBe(own.length);
      for (const code of own) expect(codes.has(code), `0x${code.toString(16)}`).toBe(false);
    }
    expectWellFormed(SPEC_ONLY_INV_DESCRIPTORS);
    expectWellFormed(SPEC_ONLY_FAULT_REASONS);
    expectWellFormed(SPEC_ONLY_IR_FAULT_REASONS);
  });

  it('gives every fault reason of FR and IR_FR a status', () => {
    expect(keysOf(FAULT_REASON_COVERAGE)).toEqual(keysOf(FR));
    expect(keysOf(IR_FAULT_REASON_COVERAGE)).toEqual(keysOf(IR_FR));
    expectWellFormed(FAULT_REASON_COVERAGE);
    expectWellFormed(IR_FAULT_REASON_COVERAGE);
  });
});

describe('VT-d field positions', () => {
  it('match the layouts where the code has one, and hand-encoded spec positions elsewhere', () => {
    expect(capFieldBits()).toEqual(layoutRuns(CAP_LAYOUT));
    expect(ecapFieldBits()).toEqual(layoutRuns(ECAP_LAYOUT));
    expect(faultRecordFieldBits()).toEqual({ ...layoutRuns(FRCD_SCALARS), fi: [run(63, 12)] });
    // §9.2, §9.4, §9.6, §7.4.1.1, §9.9: pointers and addresses the codecs encode.
    expect(scalableRootFieldBits()).toMatchObject({
      lctp: [run(63, 12)],
      up: [run(64, 64)],
      uctp: [run(127, 76)],
    });
    expect(legacyContextFieldBits()).toMatchObject({ slptptr: [run(63, 12)], did: [run(87, 72)] });
    expect(scalableContextFieldBits()).toMatchObject({ pasidDirPtr: [run(63, 12)], ridPriv: [run(84, 84)] });
    expect(pasidEntryFieldBits()).toMatchObject({ ssptptr: [run(63, 12)], fsptptr: [run(191, 140)] });
    expect(pageRequestFieldBits()).toMatchObject({
      type: [run(7, 0)],
      addr: [run(127, 76)],
      privateData: [run(255, 128)],
    });
    expect(irteFieldBits('remapped')).toMatchObject({ mode: [run(15, 15)], dst: [run(63, 32)] });
    expect(irteFieldBits('posted')).toMatchObject({ mode: [run(15, 15)], pdaLow: [run(63, 38)] });
  });

  it('find every bit of each descriptor field, split and 62-bit ones included (§6.5.2)', () => {
    expect(invDescriptorFieldBits('DEVICE_TLB')).toMatchObject({ pfsid: [run(15, 12), run(63, 52)] });
    expect(invDescriptorFieldBits('WAIT')).toMatchObject({
      statusAddr: [run(127, 66)],
      statusData: [run(63, 32)],
    });
    expect(invDescriptorFieldBits('PAGE_GROUP_RESPONSE')).toMatchObject({ privateData: [run(255, 128)] });
    expect(descriptorTypeBits()).toEqual([run(3, 0), run(11, 9)]);
  });

  it('keep decoded and spec-only fields apart, inside their structures', () => {
    for (const s of vtdStructures())
      expect(bitPositionProblems(s.words, s.bits, s.specOnly), s.title).toEqual([]);
    for (const mode of ['remapped', 'posted'] as const)
      expect(bitPositionProblems(IRTE_WORDS, irteFieldBits(mode), [])).toEqual([]);
    for (const name of Object.keys(INV_TYPE) as InvTypeName[])
      expect(
        bitPositionProblems(8, { ...invDescriptorFieldBits(name), type: descriptorTypeBits() }, []),
      ).toEqual([]);
  });

  it('leave uncovered exactly the bits rev 5.10 reserves', () => {
    const gaps = Object.fromEntries(
      vtdStructures().map((s) => [s.title, uncoveredBits(s.words, s.bits, s.specOnly)]),
    );
    expect(gaps).toEqual({
      'Fault recording register fields (FRCD_REG)': [run(11, 0), run(91, 80)],
      'Capability register fields (CAP_REG)': [run(15, 13), run(38, 38), run(58, 57)],
      'Extended capability register fields (ECAP_REG)': [
        run(19, 18),
        run(27, 27),
        run(32, 32),
        run(54, 54),
        run(63, 63),
      ],
      'Root entry fields (legacy mode)': [run(11, 1), run(127, 64)],
      'Scalable-mode root entry fields': [run(11, 1), run(75, 65)],
      'Context entry fields (legacy mode)': [run(11, 4), run(71, 71), run(127, 88)],
      'Scalable-mode context entry fields': [run(8, 7), run(255, 85)],
      'Scalable-mode PASID directory entry fields': [run(11, 2)],
      'Scalable-mode PASID table entry fields': [
        run(11, 10),
        run(86, 80),
        run(139, 136),
        run(255, 192),
        run(267, 259),
        run(511, 336),
      ],
    });
  });

  it('leaves the reserved capability bits 0 with every feature on', () => {
    const f = { ...defaultVtdFeatures(), executeRequests: true, abortDmaMode: true, cachingMode: true };
    const cap = capWords(f);
    const ecap = ecapWords(f);
    expect([cap.lo & 0xe000, cap.hi & ((1 << 6) | (3 << 25))]).toEqual([0, 0]);
    expect([ecap.lo & ((3 << 18) | (1 << 27)), ecap.hi & (1 | (1 << 22) | (1 << 31))]).toEqual([0, 0]);
  });
});

describe('VT-d reserved-bit probing', () => {
  it('reports which reserved bits each entry check refuses (the PASID entry checks only some)', () => {
    const md = vtdStatusMarkdown();
    expect(md).toContain(
      'Bits no row covers are reserved: [11:10], [86:80], [139:136], [255:192], [267:259], [511:336]. The model refuses an entry (fault 0x5A) with one of [11:10], [86:80], [139:136] set and does not check [255:192], [267:259], [511:336].',
    );
    expect(md).toContain(
      'Bits no row covers are reserved; the model refuses an entry (fault 0x0B) with any of them set: [11:4], [71], [127:88].',
    );
    expect(md).toContain(
      'the model refuses an entry (fault 0x24) with any of them set: [14:12], [31:24], [127:84].',
    );
    expect(md).toContain(
      'the model refuses an entry (fault 0x24) with any of them set: [7:2], [13:12], [37:24], [95:84].',
    );
  });
});

describe('docs/vendors/vtd.md', () => {
  it('holds the status tables exactly as the coverage table generates them', () => {
    // IOMMUKIT_UPDATE_DOCS=1 rewrites the section; the assertion then checks what was written.
    const { expected, actual } = syncGeneratedSection({
      doc: DOC,
      begin: BEGIN,
      end: END,
      content: vtdStatusMarkdown(),
    });
    expect(actual, `${DOC.pathname} lacks the generated-section markers`).toBeDefined();
    expect(actual).toBe(expected);
  });

  it('names every register, field, descriptor and fault reason, and where a register needs a feature', () => {
    const md = vtdStatusMarkdown();
    for (const name of Object.keys(REG)) expect(md).toContain(`| \`${name}\` | 0x`);
    for (const [key, f] of Object.entries(PASID_ENTRY_COVERAGE))
      expect(md).toContain(`\`${f.spec}\` (\`${key}\`)`);
    for (const f of PASID_ENTRY_SPEC_ONLY_FIELDS) expect(md).toContain(`\`${f.spec}\` (not decoded)`);
    for (const f of SCALABLE_CONTEXT_SPEC_ONLY_FIELDS) expect(md).toContain(`\`${f.spec}\` (not decoded)`);
    for (const [name, d] of Object.entries(INV_DESCRIPTOR_COVERAGE))
      expect(md).toContain(`\`${d.spec}\` (\`${name}\`)`);
    expect(md).toContain('`cc_inv_dsc.FM` (`fm`) | [49:48]');
    for (const name of [...Object.keys(FR), ...Object.keys(IR_FR)])
      expect(md).toContain(`| \`${name}\` | 0x`);
    expect(registerPresence('IQH')).toBe('ECAP.QI');
    expect(registerPresence('PMEN')).toBe('CAP.PLMR or CAP.PHMR');
    expect(registerPresence('PLMBASE')).toBe('CAP.PLMR');
    expect(registerPresence('VER')).toBe('');
    expect(registerPresence('AFLOG')).toBeUndefined();
    expect(md).toContain('| `IRTA` | 0x00B8 (64-bit) | modelled | Present only with ECAP.IR.');
    expect(md).toContain('| `FRCD` | 0x0220 (128-bit each, CAP.NFR + 1 of them) |');
  });

  it('lists every option of the schema with its description, and the default registers', () => {
    const md = vtdStatusMarkdown();
    const options = md.slice(md.indexOf('### Options'), md.indexOf('### Default instance'));
    expect(options).toContain('| `scalableMode` | boolean | no | `true` |');
    const undescribed = options.split('\n').filter((line) => line.startsWith('| `') && line.endsWith('|  |'));
    expect(undescribed, 'every option has a description (zod .describe)').toEqual([]);
    const f = defaultVtdFeatures();
    const cap = capWords(f);
    expect(md).toContain(
      `| \`CAP\` | \`0x${cap.hi.toString(16).toUpperCase().padStart(8, '0')}${cap.lo.toString(16).toUpperCase().padStart(8, '0')}\` |`,
    );
    expect(md).toContain('| `VER` | `0x00000060` |');
  });

  it('marks as deviations exactly the items known to depart from rev 5.10', () => {
    const tables: Record<string, object> = {
      REGISTER_COVERAGE,
      CAP_COVERAGE,
      ECAP_COVERAGE,
      SCALABLE_CONTEXT_COVERAGE,
      PASID_ENTRY_COVERAGE,
      INV_DESCRIPTOR_COVERAGE,
      FAULT_REASON_COVERAGE,
      IR_FAULT_REASON_COVERAGE,
      ...Object.fromEntries(
        Object.entries(INV_DESCRIPTOR_FIELD_COVERAGE).map(([name, fields]) => [`${name} fields`, fields]),
      ),
    };
    const marked = Object.entries(tables).flatMap(([table, entries]) =>
      Object.entries(entries as Record<string, Coverage>)
        .filter(([, c]) => /Deviation:/.test(c.note))
        .map(([key]) => `${table}.${key}`),
    );
    const specOnly = [...SPEC_ONLY_FAULT_REASONS, ...SPEC_ONLY_REGISTERS]
      .filter((c) => /Deviation:/.test(c.note))
      .map((c) => c.name);
    // Fixing one of these in the model means updating its note, the page's list, and this one.
    expect(sorted(marked)).toEqual(
      sorted([
        'REGISTER_COVERAGE.GCMD',
        'REGISTER_COVERAGE.CCMD',
        'REGISTER_COVERAGE.PMEN',
        'REGISTER_COVERAGE.IOTLB',
        'CAP_COVERAGE.esirtps',
        'SCALABLE_CONTEXT_COVERAGE.dte',
        'SCALABLE_CONTEXT_COVERAGE.pdts',
        'INV_DESCRIPTOR_COVERAGE.IOTLB',
        'INV_DESCRIPTOR_COVERAGE.PASID_IOTLB',
        'INV_DESCRIPTOR_COVERAGE.PASID_CACHE',
        'INV_DESCRIPTOR_COVERAGE.PASID_DEVICE_TLB',
        'INV_DESCRIPTOR_COVERAGE.PAGE_GROUP_RESPONSE',
        'WAIT fields.statusAddr',
        'PASID_IOTLB fields.am',
        'FAULT_REASON_COVERAGE.CONTEXT_INVALID',
        'FAULT_REASON_COVERAGE.ADDRESS_BEYOND_MGAW',
        'FAULT_REASON_COVERAGE.CONTEXT_RESERVED',
        'FAULT_REASON_COVERAGE.INTERRUPT_ADDRESS',
        'FAULT_REASON_COVERAGE.SM_CONTEXT_RESERVED',
        'FAULT_REASON_COVERAGE.SM_CONTEXT_INVALID',
        'FAULT_REASON_COVERAGE.SM_CONTEXT_RID_PASID',
        'FAULT_REASON_COVERAGE.SM_PASID_DIR_RESERVED',
        'FAULT_REASON_COVERAGE.SM_PASID_RESERVED',
        'FAULT_REASON_COVERAGE.SM_ADDRESS_BEYOND_MAX',
        'FAULT_REASON_COVERAGE.SM_SS_OUTPUT_BEYOND_MAX',
        'FAULT_REASON_COVERAGE.SM_INTERRUPT_ADDRESS',
        'IR_FAULT_REASON_COVERAGE.REQUEST_RESERVED',
      ]),
    );
    expect(specOnly).toEqual(['RTA.4: a request in abort-DMA mode']);
  });
});
