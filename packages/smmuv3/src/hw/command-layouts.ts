/**
 * Where each SMMUv3 command keeps its fields (IHI 0070 §4.2–4.7): one table entry per command with its
 * opcode, its fields' bit positions, whether it has an SSec parameter (§4.1.6) and when the Non-secure
 * queue accepts it; the opcodes it always refuses; and the bits each command defines, so everything else
 * is RES0 (§4.1.5). Positions are absolute: q0 = bits 63:0, q1 = bits 127:64.
 */
import { entryField, setEntryField } from '@iommukit/core';
import { CMD_OPCODE, CMD_WORDS, type CommandName } from './command-set.js';
import type { Smmuv3Features, Smmuv3IdrExtras } from './features.js';

type FieldKind = 'uint' | 'bool' | 'page' | 'addr';
/** `page`: a value wider than 32 bits read as a number; `addr`: a byte address at bits [lsb+width-1:lsb]. */
export type FieldSpec = readonly [lsb: number, width: number, kind: FieldKind];

/** SSec, in the commands that have it (§4.1.6). */
export const SSEC_BIT = 10;
const SSV: FieldSpec = [11, 1, 'bool'];
const SUBSTREAM_ID: FieldSpec = [12, 20, 'uint'];
const STREAM_ID: FieldSpec = [32, 32, 'uint'];
const VMID: FieldSpec = [32, 16, 'uint'];
const ASID: FieldSpec = [48, 16, 'uint'];
const LEAF: FieldSpec = [64, 1, 'bool'];
const VA_PAGE: FieldSpec = [76, 52, 'page'];
/** IPA[51:12]; IPA[55:52] (bits 119:116) are RES0 up to SMMUv3.3 (§4.1.6). */
const IPA_PAGE: FieldSpec = [76, 40, 'page'];
const TLBI_RANGE = {
  num: [12, 5, 'uint'],
  scale: [20, 5, 'uint'],
  ttl: [72, 2, 'uint'],
  tg: [74, 2, 'uint'],
} as const satisfies Record<string, FieldSpec>;

type Availability = (features: Smmuv3Features, idr: Smmuv3IdrExtras) => string | undefined;

export interface OpSpec {
  readonly opcode: number;
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /** Has an SSec parameter at bit 10 (§4.1.6). */
  readonly ssec?: boolean;
  /** Defined bits this model does not decode (never reserved-checked). */
  readonly unchecked?: readonly FieldSpec[];
  readonly available?: Availability;
}

const needsS1: Availability = (f) => (f.s1 ? undefined : 'needs stage 1 (SMMU_IDR0.S1P == 0)');
const needsS2: Availability = (f) => (f.s2 ? undefined : 'needs stage 2 (SMMU_IDR0.S2P == 0)');
const needsEl2: Availability = (f, idr) =>
  !f.s1 ? 'needs stage 1 (SMMU_IDR0.S1P == 0)' : idr.hyp && f.s2 ? undefined : 'needs SMMU_IDR0.Hyp == 1';
const secureOnly: Availability = () => 'is valid only on the Secure Command queue';

/** Every command this model decodes and encodes, by name. */
export const OPS: Readonly<Record<CommandName, OpSpec>> = {
  PREFETCH_CONFIG: {
    opcode: CMD_OPCODE.PREFETCH_CONFIG,
    ssec: true,
    fields: { ssv: SSV, substreamId: SUBSTREAM_ID, streamId: STREAM_ID },
  },
  PREFETCH_ADDR: {
    opcode: CMD_OPCODE.PREFETCH_ADDR,
    ssec: true,
    fields: {
      ssv: SSV,
      substreamId: SUBSTREAM_ID,
      streamId: STREAM_ID,
      // Stryker disable next-line StringLiteral: a field at bit 64 reads the same as a byte address there
      size: [64, 5, 'uint'],
      addressPage: VA_PAGE,
    },
    // Stryker disable next-line StringLiteral: only the position of an undecoded field is used
    unchecked: [[69, 7, 'uint']],
  },
  CFGI_STE: { opcode: CMD_OPCODE.CFGI_STE, ssec: true, fields: { streamId: STREAM_ID, leaf: LEAF } },
  CFGI_STE_RANGE: {
    opcode: CMD_OPCODE.CFGI_STE_RANGE,
    ssec: true,
    // Stryker disable next-line StringLiteral: a field at bit 64 reads the same as a byte address there
    fields: { streamId: STREAM_ID, range: [64, 5, 'uint'] },
  },
  CFGI_ALL: { opcode: CMD_OPCODE.CFGI_STE_RANGE, ssec: true, fields: {} },
  CFGI_CD: {
    opcode: CMD_OPCODE.CFGI_CD,
    ssec: true,
    fields: { substreamId: SUBSTREAM_ID, streamId: STREAM_ID, leaf: LEAF },
    available: needsS1,
  },
  CFGI_CD_ALL: {
    opcode: CMD_OPCODE.CFGI_CD_ALL,
    ssec: true,
    fields: { streamId: STREAM_ID },
    available: needsS1,
  },
  TLBI_NH_ALL: { opcode: CMD_OPCODE.TLBI_NH_ALL, fields: { vmid: VMID }, available: needsS1 },
  TLBI_NH_ASID: { opcode: CMD_OPCODE.TLBI_NH_ASID, fields: { vmid: VMID, asid: ASID }, available: needsS1 },
  TLBI_NH_VA: {
    opcode: CMD_OPCODE.TLBI_NH_VA,
    fields: { ...TLBI_RANGE, vmid: VMID, asid: ASID, leaf: LEAF, addressPage: VA_PAGE },
    available: needsS1,
  },
  TLBI_NH_VAA: {
    opcode: CMD_OPCODE.TLBI_NH_VAA,
    fields: { ...TLBI_RANGE, vmid: VMID, leaf: LEAF, addressPage: VA_PAGE },
    available: needsS1,
  },
  TLBI_EL3_ALL: { opcode: CMD_OPCODE.TLBI_EL3_ALL, fields: {}, available: secureOnly },
  TLBI_EL3_VA: {
    opcode: CMD_OPCODE.TLBI_EL3_VA,
    fields: { ...TLBI_RANGE, leaf: LEAF, addressPage: VA_PAGE },
    available: secureOnly,
  },
  TLBI_EL2_ALL: { opcode: CMD_OPCODE.TLBI_EL2_ALL, fields: {}, available: needsEl2 },
  TLBI_EL2_ASID: { opcode: CMD_OPCODE.TLBI_EL2_ASID, fields: { asid: ASID }, available: needsEl2 },
  TLBI_EL2_VA: {
    opcode: CMD_OPCODE.TLBI_EL2_VA,
    fields: { ...TLBI_RANGE, asid: ASID, leaf: LEAF, addressPage: VA_PAGE },
    available: needsEl2,
  },
  TLBI_EL2_VAA: {
    opcode: CMD_OPCODE.TLBI_EL2_VAA,
    fields: { ...TLBI_RANGE, leaf: LEAF, addressPage: VA_PAGE },
    available: needsEl2,
  },
  TLBI_S12_VMALL: { opcode: CMD_OPCODE.TLBI_S12_VMALL, fields: { vmid: VMID }, available: needsS2 },
  TLBI_S2_IPA: {
    opcode: CMD_OPCODE.TLBI_S2_IPA,
    fields: { ...TLBI_RANGE, vmid: VMID, leaf: LEAF, addressPage: IPA_PAGE },
    available: needsS2,
  },
  TLBI_NSNH_ALL: { opcode: CMD_OPCODE.TLBI_NSNH_ALL, fields: {} },
  ATC_INV: {
    opcode: CMD_OPCODE.ATC_INV,
    fields: {
      global: [9, 1, 'bool'],
      ssv: SSV,
      substreamId: SUBSTREAM_ID,
      streamId: STREAM_ID,
      // Stryker disable next-line StringLiteral: a field at bit 64 reads the same as a byte address there
      size: [64, 6, 'uint'],
      addressPage: VA_PAGE,
    },
    available: (f) => (f.ats ? undefined : 'needs ATS (SMMU_IDR0.ATS == 0)'),
  },
  PRI_RESP: {
    opcode: CMD_OPCODE.PRI_RESP,
    fields: {
      ssv: SSV,
      substreamId: SUBSTREAM_ID,
      streamId: STREAM_ID,
      // Stryker disable next-line StringLiteral: a field at bit 64 reads the same as a byte address there
      prgIndex: [64, 9, 'uint'],
      resp: [76, 2, 'uint'],
    },
    available: (f) => (f.pri ? undefined : 'needs PRI (SMMU_IDR0.PRI == 0)'),
  },
  RESUME: {
    opcode: CMD_OPCODE.RESUME,
    ssec: true,
    fields: {
      action: [12, 1, 'uint'],
      abort: [13, 1, 'bool'],
      streamId: STREAM_ID,
      // Stryker disable next-line StringLiteral: a field at bit 64 reads the same as a byte address there
      stag: [64, 16, 'uint'],
    },
    available: (f) =>
      f.stallModel === 'no-stall' ? 'needs stall support (SMMU_IDR0.STALL_MODEL == 0b01)' : undefined,
  },
  STALL_TERM: {
    opcode: CMD_OPCODE.STALL_TERM,
    ssec: true,
    fields: { streamId: STREAM_ID },
    available: (f) =>
      f.stallModel === 'no-stall' ? 'needs stall support (SMMU_IDR0.STALL_MODEL == 0b01)' : undefined,
  },
  SYNC: {
    opcode: CMD_OPCODE.SYNC,
    fields: {
      cs: [12, 2, 'uint'],
      msh: [22, 2, 'uint'],
      msiAttr: [24, 4, 'uint'],
      msiData: [32, 32, 'uint'],
      msiAddress: [66, 50, 'addr'],
    },
  },
};

/** Opcodes the Non-secure queue always rejects, beyond those in `OPS`. */
export const ALWAYS_ILL: ReadonlyMap<number, string> = new Map([
  [CMD_OPCODE.CFGI_VMS_PIDM, 'CMD_CFGI_VMS_PIDM needs MPAM (SMMU_IDR3.MPAM == 0)'],
  [CMD_OPCODE.TLBI_S_EL2_ALL, 'CMD_TLBI_S_EL2_ALL is valid only on the Secure Command queue'],
  [CMD_OPCODE.TLBI_S_EL2_ASID, 'CMD_TLBI_S_EL2_ASID is valid only on the Secure Command queue'],
  [CMD_OPCODE.TLBI_S_EL2_VA, 'CMD_TLBI_S_EL2_VA is valid only on the Secure Command queue'],
  [CMD_OPCODE.TLBI_S_EL2_VAA, 'CMD_TLBI_S_EL2_VAA is valid only on the Secure Command queue'],
  [CMD_OPCODE.TLBI_S_S12_VMALL, 'CMD_TLBI_S_S12_VMALL is valid only on the Secure Command queue'],
  [CMD_OPCODE.TLBI_S_S2_IPA, 'CMD_TLBI_S_S2_IPA is valid only on the Secure Command queue'],
  [CMD_OPCODE.TLBI_SNH_ALL, 'CMD_TLBI_SNH_ALL is valid only on the Secure Command queue'],
  [CMD_OPCODE.DPTI_ALL, 'CMD_DPTI_ALL needs DPT (SMMU_IDR3.DPT == 0)'],
  [CMD_OPCODE.DPTI_PA, 'CMD_DPTI_PA needs DPT (SMMU_IDR3.DPT == 0)'],
]);

/** The command an opcode decodes to (CFGI_ALL is CFGI_STE_RANGE with Range 31). */
export const BY_OPCODE: ReadonlyMap<number, CommandName> = new Map(
  (Object.entries(OPS) as [CommandName, OpSpec][])
    .filter(([name]) => name !== 'CFGI_ALL')
    .map(([name, spec]) => [spec.opcode, name]),
);

/** Writes `value` into bits [lsb+width-1:lsb], across words. */
export function setWide(words: Uint32Array, lsb: number, width: number, value: number): void {
  let rest = value;
  // Stryker disable next-line EqualityOperator: at == width writes a 0-bit field, which changes nothing
  for (let at = 0; at < width; at += 32) {
    const w = Math.min(32, width - at);
    setEntryField(words, lsb + at, w, rest % 2 ** w);
    rest = Math.floor(rest / 2 ** w);
  }
}

/** Reads bits [lsb+width-1:lsb], across words, as a number. */
export function getWide(words: ArrayLike<number>, lsb: number, width: number): number {
  let value = 0;
  // Stryker disable next-line EqualityOperator: at == width reads a 0-bit field, which adds 0
  for (let at = 0; at < width; at += 32)
    value += entryField(words, lsb + at, Math.min(32, width - at)) * 2 ** at;
  return value;
}

/**
 * The bits an opcode defines (opcode, fields, undecoded fields): everything else is RES0. SSec is left out:
 * the decoder refuses SSec == 1 on the Non-secure queue before it looks at RES0 bits (§4.1.6).
 */
export const DEFINED_MASKS: ReadonlyMap<CommandName, Uint32Array> = new Map(
  (Object.entries(OPS) as [CommandName, OpSpec][]).map(([name, spec]) => {
    const mask = new Uint32Array(CMD_WORDS);
    setEntryField(mask, 0, 8, 0xff);
    // Stryker disable next-line ArrayDeclaration: a string in place of [] unpacks to a lsb and width that write nothing
    for (const [lsb, width] of [...Object.values(spec.fields), ...(spec.unchecked ?? [])]) {
      setWide(mask, lsb, width, 2 ** width - 1);
    }
    if (name === 'CFGI_ALL') {
      setEntryField(mask, 32, 32, 0xffff_ffff); // StreamID is IGNORED, not RES0 (§4.3.6)
      setEntryField(mask, 64, 5, 0x1f); // Range
    }
    return [name, mask];
  }),
);

/** The lowest set bit outside `mask` (a set RES0 bit), or undefined. */
export function firstReservedBit(words: ArrayLike<number>, mask: Uint32Array): number | undefined {
  // Stryker disable next-line EqualityOperator: a fifth word reads undefined, which has no bit set
  for (let i = 0; i < CMD_WORDS; i++) {
    const extra = (words[i]! & ~mask[i]!) >>> 0;
    if (extra !== 0) return 32 * i + (31 - Math.clz32(extra & -extra));
  }
  return undefined;
}
