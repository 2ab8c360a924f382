/**
 * Encoding and decoding SMMUv3 commands (IHI 0070 §4) through the field tables of `command-layouts.ts`.
 * The driver encodes them with one encoder per command; the hardware model decodes each entry it consumes
 * into a `Command`, or into the CERROR_ILL the spec requires (§4.1.3), for the Non-secure Command queue.
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
 */
import {
  checkFieldAddress,
  checkFieldValue,
  entryAddress,
  entryField,
  IommufdError,
  setEntryAddress,
  setEntryField,
  toHex,
} from '@iommukit/core';
import {
  ALWAYS_ILL,
  BY_OPCODE,
  DEFINED_MASKS,
  firstReservedBit,
  getWide,
  OPS,
  SSEC_BIT,
  setWide,
} from './command-layouts.js';
import {
  ATC_INV_SIZE_ALL,
  CFGI_ALL_RANGE,
  CMD_WORDS,
  type Command,
  type CommandName,
  type CommandOf,
  TLBI_TG,
} from './command-set.js';
import { DEFAULT_IDR_EXTRAS, type Smmuv3Features, type Smmuv3IdrExtras } from './features.js';

export type DecodeCommandResult =
  | { readonly ok: true; readonly command: Command }
  | { readonly ok: false; readonly error: 'ILL'; readonly reason: string };

export interface DecodeCommandOptions {
  /** Treat set RES0 bits and out-of-width VMID/ASID as CERROR_ILL (§4.1.5 permits it). Default true. */
  readonly checkReserved?: boolean;
  readonly idr?: Smmuv3IdrExtras;
}

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
    return ill(`${impdef ? 'IMPLEMENTATION DEFINED' : 'Reserved'} command opcode ${toHex(opcode)}`);
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
  // Stryker disable next-line ConditionalExpression: a command without that field reads it as 0
  if (name === 'SYNC' && get('cs') === 0b11) return ill('CMD_SYNC: CS 0b11 is reserved');
  // Stryker disable next-line ConditionalExpression: a command without that field reads it as 0
  if (name === 'PRI_RESP' && get('resp') === 0b11) return ill('CMD_PRI_RESP: Resp 0b11 is reserved');
  const isRangeTlbi = 'tg' in spec.fields;
  if (isRangeTlbi && features.rangeInvalidation && get('tg') !== TLBI_TG.NONE) {
    if (get('num') === 0 && get('scale') === 0 && effectiveTtl(get('tg'), get('ttl')) === 0) {
      return ill(`${label}: TG != 0 with NUM == 0, SCALE == 0 and TTL == 0 is reserved`);
    }
  }

  if (checkReserved) {
    // Stryker disable next-line ConditionalExpression: a command without that field reads it as 0
    if (isRangeTlbi) {
      const rangeBits = get('num') !== 0 || get('scale') !== 0 || get('ttl') !== 0 || get('tg') !== 0;
      if (!features.rangeInvalidation && rangeBits) {
        return ill(`${label}: NUM/SCALE/TG/TTL are RES0 without range invalidation (SMMU_IDR3.RIL == 0)`);
      }
      if (get('tg') === TLBI_TG.NONE && (get('num') !== 0 || get('scale') !== 0 || get('ttl') !== 0)) {
        return ill(`${label}: NUM/SCALE/TTL are RES0 when TG == 0`);
      }
    }
    // Stryker disable next-line ConditionalExpression: a command without that field reads it as 0
    if ('vmid' in spec.fields) {
      if (!features.vmid16 && get('vmid') > 0xff) {
        return ill(`${label}: VMID ${toHex(get('vmid'))} needs 16-bit VMIDs (SMMU_IDR0.VMID16 == 0)`);
      }
      if (name.startsWith('TLBI_NH_') && !features.s2 && get('vmid') !== 0) {
        return ill(`${label}: VMID is RES0 without stage 2 (SMMU_IDR0.S2P == 0)`);
      }
    }
    if ('asid' in spec.fields && !features.asid16 && get('asid') > 0xff) {
      return ill(`${label}: ASID ${toHex(get('asid'))} needs 16-bit ASIDs (SMMU_IDR0.ASID16 == 0)`);
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
