/**
 * Command queue entries (SMMUv3 §4): 16 bytes, four little-endian words, opcode in bits [7:0]. The driver
 * encodes them with one encoder per command; the hardware model decodes each entry it consumes into a
 * `Command`, or into the CERROR_ILL the spec requires (§4.1.3), for the Non-secure Command queue.
 *
 * ILL rules implemented by `decodeCommand`:
 * - Always (the spec makes these ILLEGAL): Reserved or IMPLEMENTATION DEFINED opcodes; SSec == 1 on the
 *   Non-secure queue (§4.1.6); commands for something not implemented — CFGI_CD/CFGI_CD_ALL and
 *   TLBI_NH_* without stage 1, TLBI_EL2_* without stage 1 or IDR0.Hyp, TLBI_S12_VMALL/TLBI_S2_IPA without
 *   stage 2, ATC_INV without ATS, PRI_RESP without PRI, RESUME/STALL_TERM without stalls, CFGI_VMS_PIDM
 *   (no MPAM), DPTI_* (no DPT); EL3 and Secure (TLBI_S_*, TLBI_SNH_ALL) commands on the Non-secure queue;
 *   CMD_SYNC CS == 0b11; PRI_RESP Resp == 0b11; a range TLBI with TG != 0 and NUM == 0, SCALE == 0,
 *   TTL == 0 (TTL 0b01 counts as 0b00 with TG == 16K, IDR5.DS == 0) (§4.4.1.1).
 * - With `checkReserved` (default; §4.1.5 lets an implementation treat non-zero RES0 fields as malformed):
 *   any set RES0 bit, which covers NUM/SCALE/TG/TTL without IDR3.RIL, NUM/SCALE/TTL with TG == 0, SCALE
 *   bit 25 (IDR5.DS == 0), TTL128, address bits [55:52] of PA/IPA fields; plus VMID[15:8]/ASID[15:8] with
 *   8-bit VMIDs/ASIDs (§4.4), a non-zero VMID in TLBI_NH_* without stage 2 (§4.4.2), and ATC_INV
 *   Size > 52 (§4.5.1, "permitted, but not required, to raise CERROR_ILL").
 * Not ILL, per the spec: SSV == 1 without substreams (PREFETCH_*, ATC_INV, PRI_RESP: CONSTRAINED
 * UNPREDICTABLE), out-of-range StreamID/SubstreamID (§4.1.7), CS == SIG_SEV without IDR0.SEV (acts as
 * SIG_NONE). CMD_PREFETCH_ADDR's Stride and NS fields are not decoded (their positions in q1[11:5] are not
 * in the spec text this model was checked against), and those bits are not reserved-checked.
 *
 * Addresses: VA fields (Address[63:12]) can exceed 2^53 bytes, so they are carried as 4 KiB page numbers
 * (`addressPage`, exact below 2^52); TLBI_S2_IPA's IPA is a page number too, for the same range math;
 * MSIAddress is a byte address.
 */
import {
  checkFieldAddress,
  checkFieldValue,
  entryAddress,
  entryField,
  IommufdError,
  setEntryAddress,
  setEntryField,
} from '@iommukit/core';
import type { VmsaGranule } from '@iommukit/pagetables';
import { DEFAULT_IDR_EXTRAS, type Smmuv3Features, type Smmuv3IdrExtras } from './features.js';

export const CMD_WORDS = 4;
export const CMD_BYTES = 16;

/** Command opcodes (§4.1.1), named as the spec names them without the CMD_ prefix. */
export const CMD_OPCODE = {
  PREFETCH_CONFIG: 0x01,
  PREFETCH_ADDR: 0x02,
  CFGI_STE: 0x03,
  /** Also CMD_CFGI_ALL, with Range == 31. */
  CFGI_STE_RANGE: 0x04,
  CFGI_CD: 0x05,
  CFGI_CD_ALL: 0x06,
  CFGI_VMS_PIDM: 0x07,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NH_VAA: 0x13,
  TLBI_EL3_ALL: 0x18,
  TLBI_EL3_VA: 0x1a,
  TLBI_EL2_ALL: 0x20,
  TLBI_EL2_ASID: 0x21,
  TLBI_EL2_VA: 0x22,
  TLBI_EL2_VAA: 0x23,
  TLBI_S12_VMALL: 0x28,
  TLBI_S2_IPA: 0x2a,
  TLBI_NSNH_ALL: 0x30,
  ATC_INV: 0x40,
  PRI_RESP: 0x41,
  RESUME: 0x44,
  STALL_TERM: 0x45,
  SYNC: 0x46,
  TLBI_S_EL2_ALL: 0x50,
  TLBI_S_EL2_ASID: 0x51,
  TLBI_S_EL2_VA: 0x52,
  TLBI_S_EL2_VAA: 0x53,
  TLBI_S_S12_VMALL: 0x58,
  TLBI_S_S2_IPA: 0x5a,
  TLBI_SNH_ALL: 0x60,
  DPTI_ALL: 0x70,
  DPTI_PA: 0x73,
} as const;

/** CMD_CFGI_STE_RANGE with this Range is CMD_CFGI_ALL (§4.3.6). */
export const CFGI_ALL_RANGE = 31;
/** CMD_SYNC ComplSignal (§4.7.3); 0b11 is reserved (CERROR_ILL). */
export const CMD_SYNC_CS = { NONE: 0b00, IRQ: 0b01, SEV: 0b10 } as const;
/** CMD_PRI_RESP Resp (§4.5.2); 0b11 is reserved (CERROR_ILL). */
export const PRI_RESP = { RESPONSE_FAILURE: 0b00, INVALID_REQUEST: 0b01, SUCCESS: 0b10 } as const;
/** CMD_RESUME Action (§4.7.1). */
export const RESUME_ACTION = { TERMINATE: 0, RETRY: 1 } as const;
/** TLBI TG (§4.4.1.1): 0 = no range and no TTL hint. */
export const TLBI_TG = { NONE: 0b00, SIZE_4K: 0b01, SIZE_16K: 0b10, SIZE_64K: 0b11 } as const;
/** CMD_ATC_INV Size meaning a 2^64-byte span: invalidate everything (§4.5.1). */
export const ATC_INV_SIZE_ALL = 52;

/** The address and range fields of address-based TLB invalidations (§4.4.1). */
export interface TlbiAddressFields {
  /** Address[63:12] (a VA), or IPA[51:12] for TLBI_S2_IPA, as a 4 KiB page number. */
  readonly addressPage: number;
  readonly leaf: boolean;
  readonly num: number;
  readonly scale: number;
  readonly tg: number;
  readonly ttl: number;
}

export type Command =
  | {
      readonly op: 'PREFETCH_CONFIG';
      readonly streamId: number;
      readonly ssv: boolean;
      readonly substreamId: number;
    }
  | {
      readonly op: 'PREFETCH_ADDR';
      readonly streamId: number;
      readonly ssv: boolean;
      readonly substreamId: number;
      readonly size: number;
      readonly addressPage: number;
    }
  | { readonly op: 'CFGI_STE'; readonly streamId: number; readonly leaf: boolean }
  | { readonly op: 'CFGI_STE_RANGE'; readonly streamId: number; readonly range: number }
  | { readonly op: 'CFGI_ALL' }
  | {
      readonly op: 'CFGI_CD';
      readonly streamId: number;
      readonly substreamId: number;
      readonly leaf: boolean;
    }
  | { readonly op: 'CFGI_CD_ALL'; readonly streamId: number }
  | { readonly op: 'TLBI_NH_ALL'; readonly vmid: number }
  | { readonly op: 'TLBI_NH_ASID'; readonly vmid: number; readonly asid: number }
  | ({ readonly op: 'TLBI_NH_VA'; readonly vmid: number; readonly asid: number } & TlbiAddressFields)
  | ({ readonly op: 'TLBI_NH_VAA'; readonly vmid: number } & TlbiAddressFields)
  | { readonly op: 'TLBI_EL3_ALL' }
  | ({ readonly op: 'TLBI_EL3_VA' } & TlbiAddressFields)
  | { readonly op: 'TLBI_EL2_ALL' }
  | { readonly op: 'TLBI_EL2_ASID'; readonly asid: number }
  | ({ readonly op: 'TLBI_EL2_VA'; readonly asid: number } & TlbiAddressFields)
  | ({ readonly op: 'TLBI_EL2_VAA' } & TlbiAddressFields)
  | { readonly op: 'TLBI_S12_VMALL'; readonly vmid: number }
  | ({ readonly op: 'TLBI_S2_IPA'; readonly vmid: number } & TlbiAddressFields)
  | { readonly op: 'TLBI_NSNH_ALL' }
  | {
      readonly op: 'ATC_INV';
      readonly streamId: number;
      readonly ssv: boolean;
      readonly substreamId: number;
      readonly global: boolean;
      /** log2 of the span in 4 KiB pages; 52 = everything. */
      readonly size: number;
      readonly addressPage: number;
    }
  | {
      readonly op: 'PRI_RESP';
      readonly streamId: number;
      readonly ssv: boolean;
      readonly substreamId: number;
      readonly prgIndex: number;
      readonly resp: number;
    }
  | {
      readonly op: 'RESUME';
      readonly streamId: number;
      readonly stag: number;
      /** `RESUME_ACTION`: 1 retries, 0 terminates as `abort` says. */
      readonly action: number;
      readonly abort: boolean;
    }
  | { readonly op: 'STALL_TERM'; readonly streamId: number }
  | {
      readonly op: 'SYNC';
      readonly cs: number;
      readonly msh: number;
      readonly msiAttr: number;
      readonly msiData: number;
      /** MSIAddress[51:2] as a byte address ([55:52] are RES0 up to SMMUv3.3). */
      readonly msiAddress: number;
    };

export type CommandName = Command['op'];
export type CommandOf<O extends CommandName> = Extract<Command, { readonly op: O }>;

export type DecodeCommandResult =
  | { readonly ok: true; readonly command: Command }
  | { readonly ok: false; readonly error: 'ILL'; readonly reason: string };

export interface DecodeCommandOptions {
  /** Treat set RES0 bits and out-of-width VMID/ASID as CERROR_ILL (§4.1.5 permits it). Default true. */
  readonly checkReserved?: boolean;
  readonly idr?: Smmuv3IdrExtras;
}

// ---------------------------------------------------------------------------------------------------------
// Layouts. Absolute bit positions: q0 = bits 63:0, q1 = bits 127:64.

type FieldKind = 'uint' | 'bool' | 'page' | 'addr';
/** `page`: a value wider than 32 bits read as a number; `addr`: a byte address at bits [lsb+width-1:lsb]. */
type FieldSpec = readonly [lsb: number, width: number, kind: FieldKind];

const SSEC_BIT = 10;
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

interface OpSpec {
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

const OPS: Readonly<Record<CommandName, OpSpec>> = {
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
      size: [64, 5, 'uint'],
      addressPage: VA_PAGE,
    },
    unchecked: [[69, 7, 'uint']],
  },
  CFGI_STE: { opcode: CMD_OPCODE.CFGI_STE, ssec: true, fields: { streamId: STREAM_ID, leaf: LEAF } },
  CFGI_STE_RANGE: {
    opcode: CMD_OPCODE.CFGI_STE_RANGE,
    ssec: true,
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
      prgIndex: [64, 9, 'uint'],
      resp: [76, 2, 'uint'],
    },
    available: (f) => (f.pri ? undefined : 'needs PRI (SMMU_IDR0.PRI == 0)'),
  },
  RESUME: {
    opcode: CMD_OPCODE.RESUME,
    ssec: true,
    fields: { action: [12, 1, 'uint'], abort: [13, 1, 'bool'], streamId: STREAM_ID, stag: [64, 16, 'uint'] },
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
const ALWAYS_ILL: ReadonlyMap<number, string> = new Map([
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

const BY_OPCODE: ReadonlyMap<number, CommandName> = new Map(
  (Object.entries(OPS) as [CommandName, OpSpec][])
    .filter(([name]) => name !== 'CFGI_ALL')
    .map(([name, spec]) => [spec.opcode, name]),
);

function setWide(words: Uint32Array, lsb: number, width: number, value: number): void {
  let rest = value;
  for (let at = 0; at < width; at += 32) {
    const w = Math.min(32, width - at);
    setEntryField(words, lsb + at, w, rest % 2 ** w);
    rest = Math.floor(rest / 2 ** w);
  }
}

function getWide(words: ArrayLike<number>, lsb: number, width: number): number {
  let value = 0;
  for (let at = 0; at < width; at += 32)
    value += entryField(words, lsb + at, Math.min(32, width - at)) * 2 ** at;
  return value;
}

/** The bits an opcode defines (opcode, SSec, fields, undecoded fields): everything else is RES0. */
const DEFINED_MASKS: ReadonlyMap<CommandName, Uint32Array> = new Map(
  (Object.entries(OPS) as [CommandName, OpSpec][]).map(([name, spec]) => {
    const mask = new Uint32Array(CMD_WORDS);
    setEntryField(mask, 0, 8, 0xff);
    if (spec.ssec) setEntryField(mask, SSEC_BIT, 1, 1);
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

function firstReservedBit(words: ArrayLike<number>, mask: Uint32Array): number | undefined {
  for (let i = 0; i < CMD_WORDS; i++) {
    const extra = (words[i]! & ~mask[i]!) >>> 0;
    if (extra !== 0) return 32 * i + (31 - Math.clz32(extra & -extra));
  }
  return undefined;
}

const hex = (value: number): string => `0x${value.toString(16)}`;

function ill(reason: string): DecodeCommandResult {
  return { ok: false, error: 'ILL', reason };
}

/** TTL as the SMMU uses it: 0b01 with the 16K granule is reserved without IDR5.DS and treated as 0b00. */
function effectiveTtl(tg: number, ttl: number): number {
  return tg === TLBI_TG.SIZE_16K && ttl === 0b01 ? 0 : ttl;
}

/**
 * Decodes a command from the Non-secure Command queue: the command, or CERROR_ILL with the reason. See
 * the module comment for the rules.
 */
export function decodeCommand(
  words: ArrayLike<number>,
  features: Smmuv3Features,
  options: DecodeCommandOptions = {},
): DecodeCommandResult {
  const checkReserved = options.checkReserved ?? true;
  const idr = options.idr ?? DEFAULT_IDR_EXTRAS;
  const opcode = entryField(words, 0, 8);
  const fixed = ALWAYS_ILL.get(opcode);
  if (fixed !== undefined) return ill(fixed);
  const decodedName = BY_OPCODE.get(opcode);
  if (decodedName === undefined) {
    const impdef = opcode >= 0x80 && opcode <= 0x8f;
    return ill(`${impdef ? 'IMPLEMENTATION DEFINED' : 'Reserved'} command opcode ${hex(opcode)}`);
  }
  let name: CommandName = decodedName;
  if (name === 'CFGI_STE_RANGE' && entryField(words, 64, 5) === CFGI_ALL_RANGE) name = 'CFGI_ALL';
  const spec = OPS[name];
  const label = `CMD_${name}`;
  const missing = spec.available?.(features, idr);
  if (missing !== undefined) return ill(`${label} ${missing}`);
  if (spec.ssec && entryField(words, SSEC_BIT, 1) === 1)
    return ill(`${label}: SSec is 1 on the Non-secure Command queue`);

  const out: Record<string, number | boolean | string> = { op: name };
  for (const [key, [lsb, width, kind]] of Object.entries(spec.fields)) {
    if (kind === 'bool') out[key] = entryField(words, lsb, 1) === 1;
    else if (kind === 'uint') out[key] = entryField(words, lsb, width);
    else if (kind === 'page') out[key] = getWide(words, lsb, width);
    else out[key] = entryAddress(words, lsb, lsb + width - 1);
  }
  const get = (key: string): number => Number(out[key] ?? 0);

  // Mandatory ILL conditions on field values.
  if (name === 'SYNC' && get('cs') === 0b11) return ill('CMD_SYNC: CS 0b11 is reserved');
  if (name === 'PRI_RESP' && get('resp') === 0b11) return ill('CMD_PRI_RESP: Resp 0b11 is reserved');
  const isRangeTlbi = 'tg' in spec.fields;
  if (isRangeTlbi && features.rangeInvalidation && get('tg') !== TLBI_TG.NONE) {
    if (get('num') === 0 && get('scale') === 0 && effectiveTtl(get('tg'), get('ttl')) === 0) {
      return ill(`${label}: TG != 0 with NUM == 0, SCALE == 0 and TTL == 0 is reserved`);
    }
  }

  if (checkReserved) {
    if (isRangeTlbi) {
      const rangeBits = get('num') !== 0 || get('scale') !== 0 || get('ttl') !== 0 || get('tg') !== 0;
      if (!features.rangeInvalidation && rangeBits) {
        return ill(`${label}: NUM/SCALE/TG/TTL are RES0 without range invalidation (SMMU_IDR3.RIL == 0)`);
      }
      if (get('tg') === TLBI_TG.NONE && (get('num') !== 0 || get('scale') !== 0 || get('ttl') !== 0)) {
        return ill(`${label}: NUM/SCALE/TTL are RES0 when TG == 0`);
      }
    }
    if ('vmid' in spec.fields) {
      if (!features.vmid16 && get('vmid') > 0xff) {
        return ill(`${label}: VMID ${hex(get('vmid'))} needs 16-bit VMIDs (SMMU_IDR0.VMID16 == 0)`);
      }
      if (name.startsWith('TLBI_NH_') && !features.s2 && get('vmid') !== 0) {
        return ill(`${label}: VMID is RES0 without stage 2 (SMMU_IDR0.S2P == 0)`);
      }
    }
    if ('asid' in spec.fields && !features.asid16 && get('asid') > 0xff) {
      return ill(`${label}: ASID ${hex(get('asid'))} needs 16-bit ASIDs (SMMU_IDR0.ASID16 == 0)`);
    }
    if (name === 'ATC_INV' && get('size') > ATC_INV_SIZE_ALL) {
      return ill(`CMD_ATC_INV: Size ${get('size')} exceeds ${ATC_INV_SIZE_ALL}`);
    }
    const bit = firstReservedBit(words, DEFINED_MASKS.get(name)!);
    if (bit !== undefined) return ill(`${label}: RES0 bit ${bit} is set`);
  }
  return { ok: true, command: out as unknown as Command };
}

/**
 * Encodes any command; fields it does not carry are ignored. `EINVAL` naming the field for a value it
 * cannot hold (`checkFieldValue`, `checkFieldAddress`): nothing is wrapped or truncated.
 */
export function encodeCommand(command: Command): Uint32Array {
  return encodeFields(command.op, command as unknown as Readonly<Record<string, unknown>>);
}

/** `CMD_<name>`, the structure name in encoder errors. */
const LABELS = Object.fromEntries(Object.keys(OPS).map((name) => [name, `CMD_${name}`])) as Readonly<
  Record<CommandName, string>
>;

function encodeFields(name: CommandName, fields: Readonly<Record<string, unknown>>): Uint32Array {
  const spec = OPS[name];
  const words = new Uint32Array(CMD_WORDS);
  setEntryField(words, 0, 8, spec.opcode);
  if (name === 'CFGI_ALL') setEntryField(words, 64, 5, CFGI_ALL_RANGE);
  for (const [key, [lsb, width, kind]] of Object.entries(spec.fields)) {
    const raw = fields[key];
    if (raw === undefined) continue;
    if (kind === 'addr') {
      const msb = lsb + width - 1;
      setEntryAddress(words, lsb, msb, checkFieldAddress(LABELS[name], key, raw, lsb, msb));
      continue;
    }
    const value = checkFieldValue(LABELS[name], key, raw, width);
    if (name === 'CFGI_STE_RANGE' && key === 'range' && value === CFGI_ALL_RANGE) {
      throw new IommufdError(
        'EINVAL',
        'CMD_CFGI_STE_RANGE with Range 31 is CMD_CFGI_ALL: use encodeCfgiAll',
        {
          structure: LABELS[name],
          field: key,
        },
      );
    }
    setWide(words, lsb, width, value);
  }
  return words;
}

type FieldsOf<O extends CommandName> = Partial<Omit<CommandOf<O>, 'op'>>;

function encoder<O extends CommandName>(name: O): (fields?: FieldsOf<O>) => Uint32Array {
  return (fields = {}) => encodeFields(name, fields as Readonly<Record<string, unknown>>);
}

// One encoder per command (fields not given are 0).
export const encodePrefetchConfig = encoder('PREFETCH_CONFIG');
export const encodePrefetchAddr = encoder('PREFETCH_ADDR');
export const encodeCfgiSte = encoder('CFGI_STE');
export const encodeCfgiSteRange = encoder('CFGI_STE_RANGE');
export const encodeCfgiAll = encoder('CFGI_ALL');
export const encodeCfgiCd = encoder('CFGI_CD');
export const encodeCfgiCdAll = encoder('CFGI_CD_ALL');
export const encodeTlbiNhAll = encoder('TLBI_NH_ALL');
export const encodeTlbiNhAsid = encoder('TLBI_NH_ASID');
export const encodeTlbiNhVa = encoder('TLBI_NH_VA');
export const encodeTlbiNhVaa = encoder('TLBI_NH_VAA');
export const encodeTlbiEl3All = encoder('TLBI_EL3_ALL');
export const encodeTlbiEl3Va = encoder('TLBI_EL3_VA');
export const encodeTlbiEl2All = encoder('TLBI_EL2_ALL');
export const encodeTlbiEl2Asid = encoder('TLBI_EL2_ASID');
export const encodeTlbiEl2Va = encoder('TLBI_EL2_VA');
export const encodeTlbiEl2Vaa = encoder('TLBI_EL2_VAA');
export const encodeTlbiS12Vmall = encoder('TLBI_S12_VMALL');
export const encodeTlbiS2Ipa = encoder('TLBI_S2_IPA');
export const encodeTlbiNsnhAll = encoder('TLBI_NSNH_ALL');
export const encodeAtcInv = encoder('ATC_INV');
export const encodePriResp = encoder('PRI_RESP');
export const encodeResume = encoder('RESUME');
export const encodeStallTerm = encoder('STALL_TERM');
export const encodeCmdSync = encoder('SYNC');

// ---------------------------------------------------------------------------------------------------------
// Invalidation ranges.

/** A run of 4 KiB pages. */
export interface PageRange {
  readonly firstPage: number;
  readonly pageCount: number;
}

/** StreamIDs a CMD_CFGI_STE_RANGE covers: an aligned block of 2^(Range + 1) (§4.3.2). */
export function cfgiSteRangeStreamIds(streamId: number, range: number): { first: number; count: number } {
  const count = 2 ** (range + 1);
  return { first: Math.floor(streamId / count) * count, count };
}

/** The granule a TLBI TG selects (1 → 4K, 2 → 16K, 3 → 64K); 0 means no range. */
export function tlbiGranule(tg: number): VmsaGranule | undefined {
  return tg === TLBI_TG.SIZE_4K
    ? 4096
    : tg === TLBI_TG.SIZE_16K
      ? 16384
      : tg === TLBI_TG.SIZE_64K
        ? 65536
        : undefined;
}

export function tlbiTg(granule: VmsaGranule): number {
  return granule === 4096 ? TLBI_TG.SIZE_4K : granule === 16384 ? TLBI_TG.SIZE_16K : TLBI_TG.SIZE_64K;
}

/**
 * The addresses a range TLBI covers (§4.4.1.1): Range = (NUM + 1) · 2^SCALE · granule, starting at the
 * Address, not aligned. `undefined` when TG == 0 (a single address, any entry size).
 */
export function tlbiRangePages(
  fields: Pick<TlbiAddressFields, 'addressPage' | 'num' | 'scale' | 'tg'>,
): PageRange | undefined {
  const granule = tlbiGranule(fields.tg);
  if (granule === undefined) return undefined;
  return {
    firstPage: fields.addressPage,
    pageCount: (fields.num + 1) * 2 ** fields.scale * (granule / 4096),
  };
}

/** What to invalidate: a range of IOVA pages, the table's granule, and the size of its leaf entries. */
export interface TlbiRangeRequest {
  /** First 4 KiB page; aligned to `granule` (and to `leafSize` when `leaf`). */
  readonly startPage: number;
  /** Length in 4 KiB pages; a multiple of the granule. */
  readonly pageCount: number;
  readonly granule: VmsaGranule;
  /** Only last-level entries changed (Leaf == 1; the TTL hint is set from `leafSize`). */
  readonly leaf: boolean;
  /** Bytes mapped by each leaf entry in the range (a page or block size); default `granule`. */
  readonly leafSize?: number;
}

/** The address and range fields of one TLBI the splitter emits (merge with VMID/ASID and Leaf). */
export type TlbiRangeFields = Pick<TlbiAddressFields, 'addressPage' | 'num' | 'scale' | 'tg' | 'ttl'>;

function lowestSetBit(value: number): number {
  let bit = 0;
  while (Math.floor(value / 2 ** bit) % 2 === 0) bit++;
  return bit;
}

/** Largest TLBI SCALE: the field is 5 bits (§4.4.1.1). */
export const TLBI_SCALE_MAX = 31;
/** Largest TLBI NUM + 1: NUM is 5 bits (§4.4.1.1). */
const TLBI_CHUNKS_MAX = 32;

function badRange(message: string, request: TlbiRangeRequest): IommufdError {
  return new IommufdError('EINVAL', message, {
    startPage: request.startPage,
    pageCount: request.pageCount,
    granule: request.granule,
    leafSize: request.leafSize,
  });
}

/**
 * Splits a range into TLBI address/range fields the way Linux's __arm_smmu_tlb_inv_range does. With range
 * invalidation, each command takes the lowest 5-bit window of the remaining granule count (SCALE = its
 * lowest set bit, NUM + 1 = the window), which is the fewest commands for the range; a count whose lowest
 * set bit is above 31 is taken in chunks of 2^31 granules (SCALE = 31, up to 32 of them: 2^36 granules
 * per command), since SCALE is 5 bits (§4.4.1.1) — so a freed 16K level-1 table (2^33 granules) is one
 * command. Without range invalidation, one non-range command per leaf entry. One deviation: for a non-leaf
 * invalidation whose count is 1 mod 32, Linux adds a granule (NUM == 0, SCALE == 0, TTL == 0 is reserved)
 * and so invalidates one granule past the end; here that granule gets a non-range (TG == 0) command
 * instead — as many commands, exact range. Throws `EINVAL` for a negative, fractional, empty or misaligned
 * range, or a leaf size that is not a page or block size of the granule.
 */
export function splitTlbiRange(request: TlbiRangeRequest, rangeInvalidation: boolean): TlbiRangeFields[] {
  const { startPage, pageCount, granule, leaf } = request;
  const leafSize = request.leafSize ?? granule;
  if (
    !Number.isSafeInteger(startPage) ||
    startPage < 0 ||
    !Number.isSafeInteger(pageCount) ||
    pageCount <= 0
  ) {
    throw badRange(
      `range of ${pageCount} pages at page ${startPage} is not a non-empty range of whole pages`,
      request,
    );
  }
  const granulePages = granule / 4096;
  const leafPages = leafSize / 4096;
  // A page or block size: granule · 2^(k · (granule shift − 3)), at level 3 − k (TTL = level).
  const bitsPerLevel = Math.log2(granule) - 3;
  const levelsUp = (Math.log2(leafSize) - Math.log2(granule)) / bitsPerLevel;
  const level = 3 - levelsUp;
  // Levels holding leaves without FEAT_LPA2: 4K 1–3, 16K 2–3, 64K 1–3 (level 1 only with 52-bit PAs).
  if (!Number.isInteger(levelsUp) || level > 3 || level < (granule === 16384 ? 2 : 1)) {
    throw badRange(
      `leaf size ${leafSize} is not a page or block size of the ${granule / 1024}K granule`,
      request,
    );
  }
  const ttl = leaf ? level : 0;
  const step = leaf || !rangeInvalidation ? leafPages : granulePages;
  if (startPage % step !== 0 || pageCount % step !== 0) {
    throw badRange(
      `range of ${pageCount} pages at page ${hex(startPage)} is not aligned to ${step * 4}K`,
      request,
    );
  }
  const out: TlbiRangeFields[] = [];
  if (!rangeInvalidation) {
    for (let page = startPage; page < startPage + pageCount; page += leafPages) {
      out.push({ addressPage: page, num: 0, scale: 0, tg: TLBI_TG.NONE, ttl: 0 });
    }
    return out;
  }
  const tg = tlbiTg(granule);
  let page = startPage;
  let remaining = pageCount / granulePages;
  if (ttl === 0 && remaining % 32 === 1) {
    out.push({ addressPage: page, num: 0, scale: 0, tg: TLBI_TG.NONE, ttl: 0 });
    page += granulePages;
    remaining -= 1;
  }
  while (remaining > 0) {
    const scale = Math.min(lowestSetBit(remaining), TLBI_SCALE_MAX);
    // Below SCALE 31 the window is odd (SCALE is its lowest set bit); at 31 it may be 0: take 32 chunks.
    const chunks = Math.floor(remaining / 2 ** scale) % TLBI_CHUNKS_MAX || TLBI_CHUNKS_MAX;
    out.push({ addressPage: page, num: chunks - 1, scale, tg, ttl });
    page += chunks * 2 ** scale * granulePages;
    remaining -= chunks * 2 ** scale;
  }
  return out;
}

/** Index of the most significant set bit plus one (Linux fls) of `a XOR b`, for numbers below 2^53. */
function flsXor(a: number, b: number): number {
  const hi = (Math.floor(a / 2 ** 32) ^ Math.floor(b / 2 ** 32)) >>> 0;
  if (hi !== 0) return 64 - Math.clz32(hi);
  const lo = ((a >>> 0) ^ (b >>> 0)) >>> 0;
  return 32 - Math.clz32(lo);
}

/**
 * The CMD_ATC_INV span covering 4 KiB pages [firstPage, lastPage] (§4.5.1; Linux arm_smmu_atc_inv_to_cmd):
 * the grain is always 4 KiB and the span is the smallest aligned power of two holding both ends,
 * log2span = fls(firstPage ^ lastPage). Pages [7, 10] become [0, 15] (Size 4).
 */
export function atcInvSpan(firstPage: number, lastPage: number): { addressPage: number; size: number } {
  const size = flsXor(firstPage, lastPage);
  return { addressPage: Math.floor(firstPage / 2 ** size) * 2 ** size, size };
}

/** The pages a CMD_ATC_INV invalidates: Address aligned to 2^Size pages; Size ≥ 52 is everything. */
export function atcInvPages(fields: { readonly addressPage: number; readonly size: number }): PageRange {
  if (fields.size >= ATC_INV_SIZE_ALL) return { firstPage: 0, pageCount: 2 ** ATC_INV_SIZE_ALL };
  const pageCount = 2 ** fields.size;
  return { firstPage: Math.floor(fields.addressPage / pageCount) * pageCount, pageCount };
}
