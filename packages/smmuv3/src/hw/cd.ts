/**
 * Context Descriptor (SMMUv3 §5.4), the Level 1 CD descriptor of 2-level CD tables (§5.3) and how an STE's
 * S1Fmt/S1CDMax turn a SubstreamID into a CD address (§5.2 S1Fmt). A CD holds one stage 1 address space:
 * the TTB0/TTB1 tables with their TCR-like controls, ASID, MAIR and the fault configuration (A, R, S). It is
 * 64 bytes, 16 little-endian words; bit numbers are absolute (64 · qword + bit).
 *
 * `checkCd` applies the spec's ILLEGAL rules (§5.4.2 CdIllegal) for a CD reached from a Non-secure STE;
 * a failure is C_BAD_CD. Implemented, in the pseudocode's order:
 * - V == 0; CD.S == 1 under STE.S1STALLD == 1; CD.A == 0 with IDR0.TERM_MODEL == 1; CD.S == 1 without
 *   stall support, CD.S == 0 with forced stalls;
 * - ENDI selecting an endianness IDR0.TTENDIAN lacks (unless both TTBs are disabled);
 * - AA64 == 0 (VMSAv8-32 LPAE is not implemented);
 * - HA/HD beyond IDR0.HTTU;
 * - ASID[15:8] != 0 without 16-bit ASIDs (StreamWorlds that use the ASID: NS-EL1, NS-EL2-E2H);
 * - T0SZ/T1SZ outside [16, 39] (IDR5.VAX == 0, IDR3.STT == 0) for each enabled TTB;
 * - TG0/TG1 reserved or not implemented, TTB0/TTB1 outside the effective IPS, or above 48 bits with a 4K or
 *   16K granule (DS == 0), for each enabled TTB.
 * Effective EPD: with StreamWorld NS-EL2 (not E2H) EPD0/EPD1 are IGNORED (effectively 0) and TTB1 is
 * unreachable, so only TTB0 is checked.
 *
 * Not checked, and why: IPS above the OAS or reserved is not ILLEGAL (capped, `cdEffectiveIpsBits`);
 * VMSAv9-128 (SKL, D128), permission indirection (PIE, PIIU/PIIP), HAFT (IDR0.HTTU == 0b11), DS/LPA2,
 * EPAN, E0PD, PnCH, AIE, PARTID/PMG and Secure/Realm StreamWorlds are not implemented, so those fields are
 * RES0 or IGNORED; TTB alignment below the table size is taken as zero, not ILLEGAL.
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
import { granuleFromTg, pow2, type VmsaGranule } from '@iommukit/pagetables';
import { DEFAULT_IDR_EXTRAS, type Smmuv3Features, type Smmuv3IdrExtras } from './features.js';
import {
  type AddressResult,
  type CheckResult,
  granuleImplemented,
  psBits,
  STE_S1FMT,
  type StreamWorld,
} from './ste.js';

export const CD_WORDS = 16;
export const CD_BYTES = 64;

/** CD.TG1 (§5.4): note the encoding differs from TG0. 0b00 is reserved. */
export const CD_TG1 = { SIZE_16K: 0b01, SIZE_4K: 0b10, SIZE_64K: 0b11 } as const;

/** A decoded CD, qwords 0–4 (§5.4). MAIR and AMAIR are 64-bit registers split as the spec does. */
export interface Cd {
  // qword 0
  readonly t0sz: number;
  readonly tg0: number;
  readonly ir0: number;
  readonly or0: number;
  readonly sh0: number;
  readonly epd0: boolean;
  readonly endi: boolean;
  readonly t1sz: number;
  readonly tg1: number;
  readonly ir1: number;
  readonly or1: number;
  readonly sh1: number;
  readonly epd1: boolean;
  readonly v: boolean;
  readonly ips: number;
  readonly affd: boolean;
  readonly wxn: boolean;
  readonly uwxn: boolean;
  readonly tbi0: boolean;
  readonly tbi1: boolean;
  readonly pan: boolean;
  readonly aa64: boolean;
  readonly hd: boolean;
  readonly ha: boolean;
  readonly s: boolean;
  readonly r: boolean;
  readonly a: boolean;
  readonly aset: boolean;
  readonly asid: number;
  // qword 1
  readonly nscfg0: boolean;
  readonly had0: boolean;
  readonly e0pd0: boolean;
  readonly haft: boolean;
  /** Bits [119:68] = address bits [55:4] (VMSAv8-64 uses [51:4]; [55:52] are RES0). */
  readonly ttb0: number;
  readonly pnch: boolean;
  readonly epan: boolean;
  readonly hwu059: boolean;
  readonly hwu060: boolean;
  readonly hwu061: boolean;
  readonly hwu062: boolean;
  // qword 2
  readonly nscfg1: boolean;
  readonly had1: boolean;
  readonly e0pd1: boolean;
  readonly aie: boolean;
  /** Bits [183:132] = address bits [55:4]. */
  readonly ttb1: number;
  readonly ds: boolean;
  readonly pie: boolean;
  readonly hwu159: boolean;
  readonly hwu160: boolean;
  readonly hwu161: boolean;
  readonly hwu162: boolean;
  // qwords 3 and 4
  readonly mair0: number;
  readonly mair1: number;
  readonly amair0: number;
  readonly amair1: number;
}

/** Scalar field positions, absolute bits (SMMUv3 §5.4). Width-1 fields decode as booleans. */
export const CD_LAYOUT = {
  t0sz: [0, 6],
  tg0: [6, 2],
  ir0: [8, 2],
  or0: [10, 2],
  sh0: [12, 2],
  epd0: [14, 1],
  endi: [15, 1],
  t1sz: [16, 6],
  tg1: [22, 2],
  ir1: [24, 2],
  or1: [26, 2],
  sh1: [28, 2],
  epd1: [30, 1],
  v: [31, 1],
  ips: [32, 3],
  affd: [35, 1],
  wxn: [36, 1],
  uwxn: [37, 1],
  tbi0: [38, 1],
  tbi1: [39, 1],
  pan: [40, 1],
  aa64: [41, 1],
  hd: [42, 1],
  ha: [43, 1],
  s: [44, 1],
  r: [45, 1],
  a: [46, 1],
  aset: [47, 1],
  asid: [48, 16],
  nscfg0: [64, 1],
  had0: [65, 1],
  e0pd0: [66, 1],
  haft: [67, 1],
  pnch: [122, 1],
  epan: [123, 1],
  hwu059: [124, 1],
  hwu060: [125, 1],
  hwu061: [126, 1],
  hwu062: [127, 1],
  nscfg1: [128, 1],
  had1: [129, 1],
  e0pd1: [130, 1],
  aie: [131, 1],
  ds: [186, 1],
  pie: [187, 1],
  hwu159: [188, 1],
  hwu160: [189, 1],
  hwu161: [190, 1],
  hwu162: [191, 1],
  mair0: [192, 32],
  mair1: [224, 32],
  amair0: [256, 32],
  amair1: [288, 32],
} as const satisfies ScalarLayoutOf<Omit<Cd, 'ttb0' | 'ttb1'>>;

/** TTB0, bits [119:68]; TTB1, bits [183:132] (§5.4). */
const TTB0 = [64 + 4, 64 + 55] as const;
const TTB1 = [128 + 4, 128 + 55] as const;

const CD_ENTRY: EntryLayout = { scalars: CD_LAYOUT, addresses: { ttb0: TTB0, ttb1: TTB1 } };

const readCd = entryReader<Cd>(CD_ENTRY);

export function decodeCd(words: ArrayLike<number>): Cd {
  return readCd(words);
}

/** Encodes a CD; fields not given are 0. `EINVAL` naming the field for a value it cannot hold. */
export function encodeCd(fields: Partial<Cd> = {}): Uint32Array {
  const words = new Uint32Array(CD_WORDS);
  writeEntryFields(words, CD_ENTRY, fields, 'CD');
  return words;
}

/** The granule CD.TG1 selects; 0b00 is reserved. */
export function granuleFromTg1(tg1: number): VmsaGranule | undefined {
  return tg1 === CD_TG1.SIZE_16K
    ? 16384
    : tg1 === CD_TG1.SIZE_4K
      ? 4096
      : tg1 === CD_TG1.SIZE_64K
        ? 65536
        : undefined;
}

/** eff_IPS = MIN(CD.IPS, IDR5.OAS) (§5.4 IPS): larger values, reserved ones included, are capped. */
export function cdEffectiveIpsBits(cd: Cd, features: Smmuv3Features): number {
  return Math.min(psBits(cd.ips), features.oasBits);
}

/** The STE properties a CD's legality depends on (§5.4.1). */
export interface CdCheckContext {
  /** From `steStreamWorld`. */
  readonly streamWorld: StreamWorld;
  /** STE.S1STALLD. */
  readonly s1Stalld: boolean;
}

export const DEFAULT_CD_CONTEXT: CdCheckContext = { streamWorld: 'NS-EL1', s1Stalld: false };

const OK: CheckResult = { ok: true };

function illegal(reason: string): { readonly ok: false; readonly reason: string } {
  return { ok: false, reason };
}

const hex = (value: number): string => `0x${value.toString(16)}`;

/** VMSAv8-64 TxSZ limits with IDR3.STT == 0 and IDR5.VAX == 0b00 (48-bit VAs) (§5.4 T0SZ). */
const TXSZ_MIN = 16;
const TXSZ_MAX = 39;

function checkTtb(
  n: 0 | 1,
  txsz: number,
  granule: VmsaGranule | undefined,
  tgBits: number,
  ttb: number,
  ipsBits: number,
  features: Smmuv3Features,
): CheckResult {
  if (txsz < TXSZ_MIN || txsz > TXSZ_MAX) {
    return illegal(`CD.T${n}SZ ${txsz} is outside [${TXSZ_MIN}, ${TXSZ_MAX}]`);
  }
  if (granule === undefined) return illegal(`CD.TG${n} 0b${tgBits.toString(2).padStart(2, '0')} is reserved`);
  const kib = granule / 1024;
  if (!granuleImplemented(granule, features)) {
    return illegal(
      `CD.TG${n} selects the ${kib}K granule, which is not implemented (SMMU_IDR5.GRAN${kib}K == 0)`,
    );
  }
  if (ttb >= pow2(ipsBits))
    return illegal(`CD.TTB${n} ${hex(ttb)} is outside the ${ipsBits}-bit effective IPS`);
  if (granule !== 65536 && ttb >= 2 ** 48) {
    return illegal(`CD.TTB${n} ${hex(ttb)} is above 48 bits with the ${kib}K granule (DS == 0)`);
  }
  return OK;
}

/**
 * Whether a CD is ILLEGAL (C_BAD_CD), per §5.4.2 for a CD reached from a Non-secure STE. See the module
 * comment for the rules implemented and those left out.
 */
export function checkCd(
  cd: Cd,
  features: Smmuv3Features,
  context: CdCheckContext = DEFAULT_CD_CONTEXT,
  idr: Smmuv3IdrExtras = DEFAULT_IDR_EXTRAS,
): CheckResult {
  if (!cd.v) return illegal('CD.V is 0');
  if (context.s1Stalld && cd.s) return illegal('CD.S is 1 but the STE sets S1STALLD');
  if (idr.termModelAbort && !cd.a) {
    return illegal('CD.A is 0 but terminated transactions always abort (SMMU_IDR0.TERM_MODEL == 1)');
  }
  if (features.stallModel === 'no-stall' && cd.s) {
    return illegal('CD.S is 1 but stalls are not supported (SMMU_IDR0.STALL_MODEL == 0b01)');
  }
  if (features.stallModel === 'force-stall' && !cd.s) {
    return illegal('CD.S is 0 but stalls are forced (SMMU_IDR0.STALL_MODEL == 0b10)');
  }

  // EPDx are IGNORED (effectively 0) for any-EL2, where TTB1 is unreachable.
  const el2 = context.streamWorld === 'NS-EL2';
  const ttb0Walks = el2 || !cd.epd0;
  const ttb1Walks = !el2 && !cd.epd1;
  if (ttb0Walks || ttb1Walks) {
    if (idr.ttEndian === 'little' && cd.endi) {
      return illegal('CD.ENDI selects big-endian tables but SMMU_IDR0.TTENDIAN == 0b10 (little-endian only)');
    }
    if (idr.ttEndian === 'big' && !cd.endi) {
      return illegal('CD.ENDI selects little-endian tables but SMMU_IDR0.TTENDIAN == 0b11 (big-endian only)');
    }
  }
  if (!cd.aa64)
    return illegal('CD.AA64 is 0 (VMSAv8-32 LPAE), which is not implemented (SMMU_IDR0.TTF == 0b10)');
  if ((cd.ha || cd.hd) && features.httu === 'none') {
    return illegal(`CD.${cd.ha ? 'HA' : 'HD'} is 1 but SMMU_IDR0.HTTU == 0b00`);
  }
  if (cd.hd && features.httu === 'access')
    return illegal('CD.HD is 1 but SMMU_IDR0.HTTU == 0b01 (access flag only)');
  const asidUsed = context.streamWorld === 'NS-EL1' || context.streamWorld === 'NS-EL2-E2H';
  if (asidUsed && !features.asid16 && cd.asid > 0xff) {
    return illegal(`CD.ASID ${hex(cd.asid)} needs 16-bit ASIDs (SMMU_IDR0.ASID16 == 0)`);
  }

  const ips = cdEffectiveIpsBits(cd, features);
  if (ttb0Walks) {
    const check = checkTtb(0, cd.t0sz, granuleFromTg(cd.tg0), cd.tg0, cd.ttb0, ips, features);
    if (!check.ok) return check;
  }
  if (ttb1Walks) {
    const check = checkTtb(1, cd.t1sz, granuleFromTg1(cd.tg1), cd.tg1, cd.ttb1, ips, features);
    if (!check.ok) return check;
  }
  return OK;
}

// ---------------------------------------------------------------------------------------------------------
// CD tables: linear or 2-level (§5.2 S1Fmt), and the L1CD descriptor (§5.3).

export const L1CD_WORDS = 2;
export const L1CD_BYTES = 8;

export interface L1Cd {
  readonly v: boolean;
  /** Bits [55:12], as a byte address (an IPA when stage 2 translates). */
  readonly l2Ptr: number;
}

const L1CD_L2PTR = [12, 55] as const;
const L1CD_LAYOUT = { v: [0, 1] } as const;

export function decodeL1Cd(words: ArrayLike<number>): L1Cd {
  return { v: entryField(words, 0, 1) === 1, l2Ptr: entryAddress(words, ...L1CD_L2PTR) };
}

export function encodeL1Cd(fields: Partial<L1Cd> = {}): Uint32Array {
  const words = new Uint32Array(L1CD_WORDS);
  writeScalars(words, L1CD_LAYOUT, fields, 'L1CD');
  writeAddress(words, L1CD_L2PTR, fields.l2Ptr, 'L1CD', 'l2Ptr');
  return words;
}

/** How a SubstreamID indexes the CD table of an STE (§5.2 S1Fmt). */
export interface CdTableGeometry {
  /** `single`: S1ContextPtr points to one CD (S1CDMax == 0 or no substreams). */
  readonly format: 'single' | 'linear' | 'two-level';
  /** CDs reachable: 2^S1CDMax (1 for `single`). */
  readonly entries: number;
  /** SubstreamID bits indexing a level 2 table: 6 (4 KiB leaf) or 10 (64 KiB leaf); 0 when not 2-level. */
  readonly l2Bits: number;
  /** L1CD descriptors in the level 1 table (0 when not 2-level). */
  readonly l1Entries: number;
  /** The alignment the SMMU imposes on S1ContextPtr: the table size, or the L1 size, at least 64 bytes. */
  readonly align: number;
}

/** The CD table geometry for STE.S1Fmt and STE.S1CDMax on an SMMU with `ssidBits` SubstreamID bits. */
export function cdTableGeometry(s1Fmt: number, s1CdMax: number, ssidBits: number): CdTableGeometry {
  if (s1CdMax === 0 || ssidBits === 0)
    return { format: 'single', entries: 1, l2Bits: 0, l1Entries: 0, align: CD_BYTES };
  const entries = pow2(s1CdMax);
  const l2Bits = s1Fmt === STE_S1FMT.TWO_LEVEL_4K ? 6 : s1Fmt === STE_S1FMT.TWO_LEVEL_64K ? 10 : 0;
  if (l2Bits === 0) return { format: 'linear', entries, l2Bits: 0, l1Entries: 0, align: CD_BYTES * entries };
  const l1Entries = s1CdMax <= l2Bits ? 1 : pow2(s1CdMax - l2Bits);
  return {
    format: 'two-level',
    entries,
    l2Bits,
    l1Entries,
    align: Math.max(CD_BYTES, L1CD_BYTES * l1Entries),
  };
}

function alignDown(address: number, align: number): number {
  return Math.floor(address / align) * align;
}

function checkSsid(
  geometry: CdTableGeometry,
  ssid: number,
): { readonly ok: false; readonly reason: string } | undefined {
  if (ssid >= geometry.entries) {
    return {
      ok: false,
      reason: `SubstreamID ${hex(ssid)} is outside the ${geometry.entries}-entry CD table (S1CDMax)`,
    };
  }
  return undefined;
}

/**
 * For `single` and `linear` tables: the address of the CD for a SubstreamID (0 for `single`). For a
 * 2-level table: the address of the L1CD that locates it.
 */
export function cdOrL1CdAddress(
  s1ContextPtr: number,
  geometry: CdTableGeometry,
  ssid: number,
): AddressResult {
  const bad = checkSsid(geometry, ssid);
  if (bad) return bad;
  const base = alignDown(s1ContextPtr, geometry.align);
  if (geometry.format !== 'two-level') return { ok: true, address: base + CD_BYTES * ssid };
  return { ok: true, address: base + L1CD_BYTES * Math.floor(ssid / pow2(geometry.l2Bits)) };
}

/**
 * The address of a SubstreamID's CD in the level 2 table an L1CD points to. L1CD.V == 0 and an L2Ptr
 * outside the `addressBits` range (the OAS, or the IAS when stage 2 translates) fail: the transaction gets
 * C_BAD_SUBSTREAMID (§5.3.1, §3.4.3). 64 KiB leaf tables take L2Ptr[15:12] as zero.
 */
export function cdAddressFromL1Cd(
  desc: L1Cd,
  geometry: CdTableGeometry,
  ssid: number,
  addressBits: number,
): AddressResult {
  const bad = checkSsid(geometry, ssid);
  if (bad) return bad;
  if (geometry.format !== 'two-level') return { ok: false, reason: 'the CD table is not 2-level' };
  if (!desc.v) return { ok: false, reason: `L1CD.V is 0 for SubstreamID ${hex(ssid)}` };
  if (desc.l2Ptr >= pow2(addressBits)) {
    return {
      ok: false,
      reason: `L1CD.L2Ptr ${hex(desc.l2Ptr)} is outside the ${addressBits}-bit address range`,
    };
  }
  const l2Entries = pow2(geometry.l2Bits);
  const base = alignDown(desc.l2Ptr, CD_BYTES * l2Entries);
  return { ok: true, address: base + CD_BYTES * (ssid % l2Entries) };
}
