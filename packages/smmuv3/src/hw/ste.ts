/**
 * Stream Table Entry (SMMUv3 §5.2) and the Level 1 Stream Table Descriptor of 2-level stream tables
 * (§5.1). An STE is what the SMMU finds for a StreamID: whether traffic passes, whether stage 1 and stage 2
 * translate, where the CD table is and the whole stage 2 configuration. It is 64 bytes, 16 little-endian
 * words; bit numbers below are absolute (64 · qword + bit) as the spec writes them.
 *
 * Decoded STEs are plain objects named after the spec fields; `checkSte` applies the spec's ILLEGAL rules
 * (§5.2.2 SteIllegal) for a Non-secure STE and says which one failed, which the model reports as C_BAD_STE.
 *
 * Implemented ILLEGAL rules (Non-secure stream table, SMMUv3.1+ semantics, in the pseudocode's order):
 * - V == 0.
 * - Config 0b1x1 without stage 1, 0b11x without stage 2 (IDR0.S1P/S2P).
 * - ATS (only when IDR0.ATS == 1 and Config[1:0] != 0b00, otherwise EATS is IGNORED): EATS 0b10 unless
 *   Config == 0b111, S2S == 0 and IDR0.NS1ATS == 0; EATS 0b01 with S2S == 1 and stage 2 enabled.
 * - STRW 0b01/0b11 when STRW is used (stage 1 only, IDR0.S1P == 1 and IDR0.Hyp == 1).
 * - Stage 1: S1STALLD == 1 unless STALL_MODEL == 0b00; S1CDMax > SSIDSIZE; S1Fmt 0b01/0b10 with
 *   substreams enabled and IDR0.CD2L == 0; S1ContextPtr outside the OAS (stage 1 only, a PA) or the IAS
 *   (nested, an IPA; §3.4.3 lets an SMMU raise C_BAD_STE or a stage 2 fault there, this model picks
 *   C_BAD_STE).
 * - Stage 2: S2S == 1 without stall support, S2S == 0 with forced stalls; S2AA64 == 0 (no VMSAv8-32
 *   LPAE tables); S2HA/S2HD beyond IDR0.HTTU; S2TG reserved or not implemented; S2TTB outside the
 *   effective S2PS or (4K/16K, S2DS == 0) above 48 bits; S2T0SZ outside [MAX(16 or 12, 64 − IAS), 39];
 *   S2SL0 inconsistent with S2T0SZ and S2TG (through `@iommukit/pagetables` `vmsaGeometry`); S2ENDI
 *   selecting an endianness IDR0.TTENDIAN does not implement.
 * - S2VMID[15:8] != 0 without 16-bit VMIDs, when S2VMID is not IGNORED.
 *
 * Not checked, and why:
 * - Reserved Config 0b001–0b011: the spec says they behave as 0b000 (abort, no event), so they are not
 *   C_BAD_STE; `steConfigKind` reports them as `abort`.
 * - S2PS above the OAS, or reserved 0b111: not ILLEGAL, the effective size is capped (`steEffectiveS2PsBits`).
 * - Secure/Realm STEs (SEL2, S_S2*, MECID), VMSAv8-32 LPAE and VMSAv9-128 stage 2 (S2AA64 == 0 is always
 *   ILLEGAL here), S2FWB with VMSAv8-32, S2HAFT (needs IDR0.HTTU == 0b11), S2PIE/S2POE/S2POI (IDR3.S2PI/
 *   S2PO), DPT (EATS 0b11 behaves as 0b00 without IDR3.DPT), VMSPtr/MPAM (IDR3.MPAM): none of these
 *   features is implemented, so their fields are RES0 or IGNORED rather than ILLEGAL.
 * - RES0 bits of S1ContextPtr (alignment to the CD table size) and S2TTB alignment: CONSTRAINED
 *   UNPREDICTABLE / taken as zero, not ILLEGAL; the address helpers align them.
 * - SMMUv3.0-only CONSTRAINED UNPREDICTABLE choices (EATS/S2S, out-of-range S2T0SZ): treated as ILLEGAL,
 *   as SMMUv3.1 and later require.
 */
import {
  type EntryLayout,
  entryAddress,
  entryField,
  entryReader,
  type ScalarLayoutOf,
  writeAddress,
  writeEntryFields,
  writeScalars,
} from '@iommukit/core';
import {
  granuleFromTg,
  iasFromT0sz,
  oasFromPs,
  pow2,
  startLevelFromSl0,
  type VmsaGranule,
  vmsaGeometry,
} from '@iommukit/pagetables';
import { DEFAULT_IDR_EXTRAS, type Smmuv3Features, type Smmuv3IdrExtras } from './features.js';

/** The outcome of a structure validity check: `ok`, or the ILLEGAL condition that failed. */
export type CheckResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** An address the SMMU computes from a structure, or why the walk stops there. */
export type AddressResult =
  | { readonly ok: true; readonly address: number }
  | { readonly ok: false; readonly reason: string };

export const STE_WORDS = 16;
export const STE_BYTES = 64;

/** STE.Config (§5.2). 0b001–0b011 are reserved and behave as ABORT. */
export const STE_CONFIG = {
  ABORT: 0b000,
  BYPASS: 0b100,
  S1_TRANS: 0b101,
  S2_TRANS: 0b110,
  NESTED: 0b111,
} as const;

/** STE.S1Fmt (§5.2): layout of the CD table S1ContextPtr points to. 0b11 is reserved (behaves as LINEAR). */
export const STE_S1FMT = { LINEAR: 0b00, TWO_LEVEL_4K: 0b01, TWO_LEVEL_64K: 0b10 } as const;

/** STE.S1DSS (§5.2): what a transaction without a SubstreamID uses. 0b11 is reserved (behaves as TERMINATE). */
export const STE_S1DSS = { TERMINATE: 0b00, BYPASS: 0b01, SSID0: 0b10 } as const;

/** STE.EATS (§5.2). FULL_DPT needs IDR3.DPT; without it 0b11 behaves as ABORT. */
export const STE_EATS = { ABORT: 0b00, FULL: 0b01, SPLIT: 0b10, FULL_DPT: 0b11 } as const;

/** STE.STRW (§5.2), Non-secure encodings. 0bx1 is reserved and ILLEGAL when STRW is used. */
export const STE_STRW = { NS_EL1: 0b00, EL2: 0b10 } as const;

/** STE.S2TG and CD.TG0 (§5.2, §5.4). 0b11 is reserved. */
export const TG0 = { SIZE_4K: 0b00, SIZE_64K: 0b01, SIZE_16K: 0b10 } as const;

/** Cacheability of structure and table walk accesses (S1CIR/S1COR, S2IR0/S2OR0, CD.IR0/OR0…). */
export const REGION_ATTR = { NC: 0b00, WB_RA_WA: 0b01, WT_RA: 0b10, WB_RA: 0b11 } as const;

/** Shareability (S1CSH, S2SH0, SHCFG, CD.SH0…); for SHCFG 0b01 means "use incoming". */
export const SHAREABILITY = { NON: 0b00, INCOMING: 0b01, OUTER: 0b10, INNER: 0b11 } as const;

/** A decoded STE, qwords 0–3 (§5.2); qwords 4–7 hold Secure, MPAM, MEC and overlay fields not modelled. */
export interface Ste {
  // qword 0
  readonly v: boolean;
  readonly config: number;
  readonly s1Fmt: number;
  /** Bits [55:6], as a byte address (a PA, or an IPA when stage 2 translates). */
  readonly s1ContextPtr: number;
  readonly s1CdMax: number;
  // qword 1
  readonly s1Dss: number;
  readonly s1Cir: number;
  readonly s1Cor: number;
  readonly s1Csh: number;
  readonly s2Hwu59: boolean;
  readonly s2Hwu60: boolean;
  readonly s2Hwu61: boolean;
  readonly s2Hwu62: boolean;
  readonly dre: boolean;
  readonly cont: number;
  readonly dcp: boolean;
  readonly ppar: boolean;
  readonly mev: boolean;
  readonly swReserved: number;
  readonly s1Pie: boolean;
  readonly s2Fwb: boolean;
  readonly s1Mpam: boolean;
  readonly s1Stalld: boolean;
  readonly eats: number;
  readonly strw: number;
  readonly memAttr: number;
  readonly mtcfg: boolean;
  readonly allocCfg: number;
  readonly shCfg: number;
  readonly nsCfg: number;
  readonly privCfg: number;
  readonly instCfg: number;
  // qword 2
  readonly s2Vmid: number;
  readonly s2T0sz: number;
  readonly s2Sl0: number;
  readonly s2Ir0: number;
  readonly s2Or0: number;
  readonly s2Sh0: number;
  readonly s2Tg: number;
  readonly s2Ps: number;
  readonly s2Aa64: boolean;
  readonly s2Endi: boolean;
  readonly s2Affd: boolean;
  readonly s2Ptw: boolean;
  readonly s2Hd: boolean;
  readonly s2Ha: boolean;
  readonly s2S: boolean;
  readonly s2R: boolean;
  readonly s2Haft: boolean;
  readonly s2Pie: boolean;
  readonly s2Poe: boolean;
  readonly dptVmatch: number;
  // qword 3
  readonly s2Nsw: boolean;
  readonly s2Nsa: boolean;
  readonly s2Sl0Bit2: boolean;
  readonly s2Ds: boolean;
  /** Bits [247:196] = address bits [55:4] (VMSAv8-64 uses [51:4]; [55:52] are RES0). */
  readonly s2Ttb: number;
  readonly s2Skl: number;
}

/** Scalar field positions, absolute bits (SMMUv3 §5.2). Width-1 fields decode as booleans. */
export const STE_LAYOUT = {
  v: [0, 1],
  config: [1, 3],
  s1Fmt: [4, 2],
  s1CdMax: [59, 5],
  s1Dss: [64, 2],
  s1Cir: [66, 2],
  s1Cor: [68, 2],
  s1Csh: [70, 2],
  s2Hwu59: [72, 1],
  s2Hwu60: [73, 1],
  s2Hwu61: [74, 1],
  s2Hwu62: [75, 1],
  dre: [76, 1],
  cont: [77, 4],
  dcp: [81, 1],
  ppar: [82, 1],
  mev: [83, 1],
  swReserved: [84, 4],
  s1Pie: [88, 1],
  s2Fwb: [89, 1],
  s1Mpam: [90, 1],
  s1Stalld: [91, 1],
  eats: [92, 2],
  strw: [94, 2],
  memAttr: [96, 4],
  mtcfg: [100, 1],
  allocCfg: [101, 4],
  shCfg: [108, 2],
  nsCfg: [110, 2],
  privCfg: [112, 2],
  instCfg: [114, 2],
  s2Vmid: [128, 16],
  s2T0sz: [160, 6],
  s2Sl0: [166, 2],
  s2Ir0: [168, 2],
  s2Or0: [170, 2],
  s2Sh0: [172, 2],
  s2Tg: [174, 2],
  s2Ps: [176, 3],
  s2Aa64: [179, 1],
  s2Endi: [180, 1],
  s2Affd: [181, 1],
  s2Ptw: [182, 1],
  s2Hd: [183, 1],
  s2Ha: [184, 1],
  s2S: [185, 1],
  s2R: [186, 1],
  s2Haft: [187, 1],
  s2Pie: [188, 1],
  s2Poe: [189, 1],
  dptVmatch: [190, 2],
  s2Nsw: [192, 1],
  s2Nsa: [193, 1],
  s2Sl0Bit2: [194, 1],
  s2Ds: [195, 1],
  s2Skl: [253, 2],
} as const satisfies ScalarLayoutOf<Omit<Ste, 's1ContextPtr' | 's2Ttb'>>;

/** S1ContextPtr, bits [55:6] (§5.2). */
const S1_CONTEXT_PTR = [6, 55] as const;
/** S2TTB, bits [247:196] (§5.2). */
const S2_TTB = [3 * 64 + 4, 3 * 64 + 55] as const;

const STE_ENTRY: EntryLayout = {
  scalars: STE_LAYOUT,
  addresses: { s1ContextPtr: S1_CONTEXT_PTR, s2Ttb: S2_TTB },
};

const readSte = entryReader<Ste>(STE_ENTRY);

export function decodeSte(words: ArrayLike<number>): Ste {
  return readSte(words);
}

/** Encodes an STE; fields not given are 0. `EINVAL` naming the field for a value it cannot hold. */
export function encodeSte(fields: Partial<Ste> = {}): Uint32Array {
  const words = new Uint32Array(STE_WORDS);
  writeEntryFields(words, STE_ENTRY, fields, 'STE');
  return words;
}

/** What STE.Config selects; reserved 0b001–0b011 behave as `abort` (no event). */
export type SteConfigKind = 'abort' | 'bypass' | 's1' | 's2' | 'nested';

export function steConfigKind(config: number): SteConfigKind {
  if ((config & 0b100) === 0) return 'abort';
  return (['bypass', 's1', 's2', 'nested'] as const)[config & 0b11]!;
}

/** The translation regime an STE selects for stage 1 (§5.2 STRW, §3.3.3), Non-secure stream table. */
export type StreamWorld = 'NS-EL1' | 'NS-EL2' | 'NS-EL2-E2H';

/** StreamWorld of a Non-secure STE: STRW counts only for stage-1-only Config with IDR0.Hyp == 1. */
export function steStreamWorld(ste: Ste, hyp: boolean, e2h: boolean): StreamWorld {
  if (ste.config === STE_CONFIG.S1_TRANS && hyp && ste.strw === STE_STRW.EL2) {
    return e2h ? 'NS-EL2-E2H' : 'NS-EL2';
  }
  return 'NS-EL1';
}

/** Output sizes by PS/IPS encoding; 0b111 is 56 bits in SMMUv3.4 (reserved before, capped anyway). */
export function psBits(ps: number): number {
  return oasFromPs(ps) ?? 56;
}

/** eff_S2PS = MIN(S2PS, IDR5.OAS) (§5.2 S2PS): larger values, reserved ones included, are capped. */
export function steEffectiveS2PsBits(ste: Ste, features: Smmuv3Features): number {
  return Math.min(psBits(ste.s2Ps), features.oasBits);
}

export function granuleImplemented(granule: VmsaGranule, features: Smmuv3Features): boolean {
  const g = features.granules;
  return granule === 4096 ? g.g4k : granule === 16384 ? g.g16k : g.g64k;
}

const OK: CheckResult = { ok: true };

function illegal(reason: string): { readonly ok: false; readonly reason: string } {
  return { ok: false, reason };
}

const hex = (value: number): string => `0x${value.toString(16)}`;
const bin = (value: number, width: number): string => `0b${value.toString(2).padStart(width, '0')}`;

/**
 * Whether an STE is ILLEGAL (C_BAD_STE), per §5.2.2 for the Non-secure stream table. See the module
 * comment for the rules implemented and those deliberately left out.
 */
export function checkSte(
  ste: Ste,
  features: Smmuv3Features,
  idr: Smmuv3IdrExtras = DEFAULT_IDR_EXTRAS,
): CheckResult {
  if (!ste.v) return illegal('STE.V is 0');
  const cfg = ste.config;
  // Config 0b0xx: abort without an event (0b001–0b011 are reserved and behave as 0b000), not ILLEGAL.
  if ((cfg & 0b100) === 0) return OK;
  const s1 = (cfg & 0b001) !== 0;
  const s2 = (cfg & 0b010) !== 0;
  if (s1 && !features.s1)
    return illegal(
      `STE.Config ${bin(cfg, 3)} enables stage 1, which is not implemented (SMMU_IDR0.S1P == 0)`,
    );
  if (s2 && !features.s2)
    return illegal(
      `STE.Config ${bin(cfg, 3)} enables stage 2, which is not implemented (SMMU_IDR0.S2P == 0)`,
    );

  // EATS is IGNORED without ATS and when Config[1:0] == 0b00 (bypass).
  if (features.ats && (s1 || s2)) {
    if (ste.eats === STE_EATS.SPLIT) {
      if (cfg !== STE_CONFIG.NESTED)
        return illegal(`STE.EATS 0b10 (split-stage ATS) needs STE.Config 0b111, not ${bin(cfg, 3)}`);
      if (ste.s2S) return illegal('STE.EATS 0b10 (split-stage ATS) with STE.S2S == 1');
      if (idr.ns1ats)
        return illegal('STE.EATS 0b10 (split-stage ATS) is not supported (SMMU_IDR0.NS1ATS == 1)');
    }
    if (ste.eats === STE_EATS.FULL && ste.s2S && s2) {
      return illegal('STE.EATS 0b01 (full ATS) with STE.S2S == 1 while stage 2 translates');
    }
  }

  // STRW is used only for stage-1-only translation with Hyp implemented (IgnoreSTESTRW); IDR0.Hyp is RES0
  // unless both stages are implemented (§6.3.1).
  const strwUsed = cfg === STE_CONFIG.S1_TRANS && features.s1 && features.s2 && idr.hyp;
  if (strwUsed && (ste.strw & 1) === 1) return illegal(`STE.STRW ${bin(ste.strw, 2)} is reserved`);

  if (s1) {
    if (ste.s1Stalld && features.stallModel !== 'stall') {
      const model = features.stallModel === 'no-stall' ? '0b01' : '0b10';
      return illegal(
        `STE.S1STALLD is 1 but the stall model is not configurable (SMMU_IDR0.STALL_MODEL == ${model})`,
      );
    }
    if (features.ssidBits !== 0) {
      if (ste.s1CdMax > features.ssidBits) {
        return illegal(`STE.S1CDMax ${ste.s1CdMax} exceeds SSIDSIZE ${features.ssidBits}`);
      }
      const twoLevel = ste.s1Fmt === STE_S1FMT.TWO_LEVEL_4K || ste.s1Fmt === STE_S1FMT.TWO_LEVEL_64K;
      if (ste.s1CdMax !== 0 && twoLevel && !features.twoLevelCdTable) {
        return illegal(`STE.S1Fmt ${bin(ste.s1Fmt, 2)} selects a 2-level CD table but SMMU_IDR0.CD2L == 0`);
      }
    }
    // A PA checked against the OAS, or (nested) an IPA against the IAS, which equals the OAS without
    // VMSAv8-32 support (§3.4). §3.4.3: C_BAD_STE in SMMUv3.1+ (PA); one permitted choice (IPA).
    if (ste.s1ContextPtr >= pow2(features.oasBits)) {
      const space = s2 ? `${features.oasBits}-bit IAS` : `${features.oasBits}-bit OAS`;
      return illegal(`STE.S1ContextPtr ${hex(ste.s1ContextPtr)} is outside the ${space}`);
    }
  }

  if (s2) {
    const s2Check = checkSteStage2(ste, features, idr);
    if (!s2Check.ok) return s2Check;
  }

  // IgnoreSTES2VMID: translation enabled here; IGNORED without stage 2 or for a non-EL1 StreamWorld.
  const vmidIgnored = !features.s2 || cfg === STE_CONFIG.BYPASS || (strwUsed && ste.strw !== STE_STRW.NS_EL1);
  if (!vmidIgnored && !features.vmid16 && ste.s2Vmid > 0xff) {
    return illegal(`STE.S2VMID ${hex(ste.s2Vmid)} needs 16-bit VMIDs (SMMU_IDR0.VMID16 == 0)`);
  }
  return OK;
}

function checkSteStage2(ste: Ste, features: Smmuv3Features, idr: Smmuv3IdrExtras): CheckResult {
  if (ste.s2S && features.stallModel === 'no-stall') {
    return illegal('STE.S2S is 1 but stalls are not supported (SMMU_IDR0.STALL_MODEL == 0b01)');
  }
  if (!ste.s2S && features.stallModel === 'force-stall') {
    return illegal('STE.S2S is 0 but stalls are forced (SMMU_IDR0.STALL_MODEL == 0b10)');
  }
  if (!ste.s2Aa64) {
    return illegal(
      'STE.S2AA64 is 0 (VMSAv8-32 LPAE stage 2), which is not implemented (SMMU_IDR0.TTF == 0b10)',
    );
  }
  if ((ste.s2Ha || ste.s2Hd) && features.httu === 'none') {
    return illegal(`STE.${ste.s2Ha ? 'S2HA' : 'S2HD'} is 1 but SMMU_IDR0.HTTU == 0b00`);
  }
  if (ste.s2Hd && features.httu === 'access') {
    return illegal('STE.S2HD is 1 but SMMU_IDR0.HTTU == 0b01 (access flag only)');
  }
  const granule = granuleFromTg(ste.s2Tg);
  if (granule === undefined) return illegal('STE.S2TG 0b11 is reserved');
  const kib = granule / 1024;
  if (!granuleImplemented(granule, features)) {
    return illegal(
      `STE.S2TG selects the ${kib}K granule, which is not implemented (SMMU_IDR5.GRAN${kib}K == 0)`,
    );
  }

  const ps = steEffectiveS2PsBits(ste, features);
  if (ste.s2Ttb >= pow2(ps)) {
    return illegal(`STE.S2TTB ${hex(ste.s2Ttb)} is outside the ${ps}-bit effective S2PS`);
  }
  if (granule !== 65536 && ste.s2Ttb >= 2 ** 48) {
    return illegal(`STE.S2TTB ${hex(ste.s2Ttb)} is above 48 bits with the ${kib}K granule (S2DS == 0)`);
  }

  // STES2T0SZInvalid, SMMUv3.1+, IDR3.STT == 0, IDR5.DS == 0; IAS == OAS (no VMSAv8-32 tables).
  const ias = features.oasBits;
  const minT0sz = Math.max(granule === 65536 ? 12 : 16, 64 - ias);
  if (ste.s2T0sz < minT0sz || ste.s2T0sz > 39) {
    return illegal(
      `STE.S2T0SZ ${ste.s2T0sz} is outside [${minT0sz}, 39] for the ${kib}K granule and a ${ias}-bit IAS`,
    );
  }

  const startLevel = startLevelFromSl0(granule, ste.s2Sl0);
  if (startLevel === undefined)
    return illegal(`STE.S2SL0 ${bin(ste.s2Sl0, 2)} is reserved for the ${kib}K granule`);
  // The start-level limits depend on the implemented PA size; 4K/16K tables stop at 48 bits without DS.
  const pa = granule === 65536 ? features.oasBits : Math.min(features.oasBits, 48);
  try {
    vmsaGeometry({ stage: 2, granule, ias: iasFromT0sz(ste.s2T0sz), oas: pa, startLevel });
  } catch (error) {
    const why = error instanceof Error ? error.message.replace(/^.*?\): /, '') : String(error);
    return illegal(
      `STE.S2SL0 ${bin(ste.s2Sl0, 2)} (start level ${startLevel}) is inconsistent with S2T0SZ ${ste.s2T0sz} and the ${kib}K granule: ${why}`,
    );
  }

  if (idr.ttEndian === 'little' && ste.s2Endi) {
    return illegal(
      'STE.S2ENDI selects big-endian tables but SMMU_IDR0.TTENDIAN == 0b10 (little-endian only)',
    );
  }
  if (idr.ttEndian === 'big' && !ste.s2Endi) {
    return illegal(
      'STE.S2ENDI selects little-endian tables but SMMU_IDR0.TTENDIAN == 0b11 (big-endian only)',
    );
  }
  return OK;
}

// ---------------------------------------------------------------------------------------------------------
// 2-level stream tables: the L1 Stream Table Descriptor (§5.1) and STRTAB_BASE_CFG.SPLIT (§6.3.25).

export const L1STD_WORDS = 2;
export const L1STD_BYTES = 8;

export interface L1Std {
  /** The L2 array holds 2^(Span − 1) STEs; 0 is invalid, 12–31 are reserved (behave as 0). */
  readonly span: number;
  /** Bits [55:6], as a byte address. */
  readonly l2Ptr: number;
}

const L1STD_L2PTR = [6, 55] as const;

export function decodeL1Std(words: ArrayLike<number>): L1Std {
  return { span: entryField(words, 0, 5), l2Ptr: entryAddress(words, ...L1STD_L2PTR) };
}

export function encodeL1Std(fields: Partial<L1Std> = {}): Uint32Array {
  const words = new Uint32Array(L1STD_WORDS);
  writeScalars(words, { span: [0, 5] }, fields, 'L1STD');
  writeAddress(words, L1STD_L2PTR, fields.l2Ptr, 'L1STD', 'l2Ptr');
  return words;
}

/** STRTAB_BASE_CFG.SPLIT as the SMMU uses it: 6, 8 or 10; other values are reserved and behave as 6. */
export function effectiveSplit(split: number): 6 | 8 | 10 {
  return split === 8 || split === 10 ? split : 6;
}

/** Whether an L1STD leads to an L2 array (§5.1.1); a failure is C_BAD_STREAMID for its StreamIDs. */
export function checkL1Std(desc: L1Std, split: number): CheckResult {
  if (desc.span === 0) return illegal('L1STD.Span is 0 (no level 2 array)');
  if (desc.span >= 12) return illegal(`L1STD.Span ${desc.span} is reserved (behaves as 0)`);
  const s = effectiveSplit(split);
  if (desc.span > s + 1) return illegal(`L1STD.Span ${desc.span} exceeds SPLIT + 1 = ${s + 1}`);
  return OK;
}

/** Address of the L1STD for a StreamID: the L1 table is indexed by StreamID[LOG2SIZE − 1:SPLIT]. */
export function l1StdAddress(strtabBase: number, streamId: number, split: number): number {
  return strtabBase + L1STD_BYTES * Math.floor(streamId / pow2(effectiveSplit(split)));
}

/**
 * Address of a StreamID's STE in the L2 array an L1STD points to. L2Ptr[5 + Span − 1:0] are taken as
 * zero (the array is aligned to its size); StreamID[SPLIT − 1:0] must be below 2^(Span − 1), otherwise the
 * transaction gets C_BAD_STREAMID. An L2Ptr beyond the OAS is not checked here: §3.4.3 lets the SMMU
 * truncate it or raise F_STE_FETCH, which is the fetch path's choice.
 */
export function steAddressFromL1Std(desc: L1Std, streamId: number, split: number): AddressResult {
  const check = checkL1Std(desc, split);
  if (!check.ok) return check;
  const s = effectiveSplit(split);
  const index = streamId % pow2(s);
  const entries = pow2(desc.span - 1);
  if (index >= entries) {
    return illegal(
      `StreamID ${hex(streamId)} index ${index} is beyond L1STD.Span ${desc.span} (${entries} STEs)`,
    );
  }
  const arrayBytes = STE_BYTES * entries;
  return { ok: true, address: Math.floor(desc.l2Ptr / arrayBytes) * arrayBytes + STE_BYTES * index };
}

/** Address of a StreamID's STE in a linear stream table. */
export function steAddressLinear(strtabBase: number, streamId: number): number {
  return strtabBase + STE_BYTES * streamId;
}
