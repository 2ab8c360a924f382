/**
 * The scalable-mode PASID structures of VT-d: the PASID directory a scalable-mode context entry points to
 * (§9.5 Scalable-Mode PASID Directory Entry: 8 bytes, indexed by PASID[19:6]) and the PASID tables its
 * entries point to (§9.6 Scalable-Mode PASID Table Entry: 64 bytes, indexed by PASID[5:0], 64 per 4 KiB
 * table). A PASID entry selects the translation (PGTT: first stage, second stage, nested or pass-through),
 * the domain and the page-table roots. Bit numbers are absolute, 64 · qword + bit.
 *
 * Field positions: every field here is in VirtualBox include/VBox/iommu-intel.h (VTD_BF_*_SM_PASID_*);
 * Linux drivers/iommu/intel/pasid.h and its earlier nested-translation patches (pasid_set_*) and QEMU
 * hw/i386/intel_iommu_internal.h (VTD_SM_PASID_ENTRY_*) agree on all they define (all but SSEE, ERE,
 * NXE and SMEP, which only VirtualBox gives). Words 6–15 (bits 511:192) are not decoded; no stored source
 * states them reserved, so they are not checked either.
 *
 * Checks return 0 or the fault reason the unit records, in this order:
 * - PASID directory entry: not present (0x51), reserved fields (0x52: bits 11:2, SMPTBLPTR at or above
 *   2^HAW). 0x50 (the read failed) belongs to the fetch.
 * - PASID table entry: not present (0x59); reserved fields (0x5A: bits 11:10, 86:80 and 139:136; DID at or
 *   above 2^(CAP.ND width); SSADE without ECAP.SLADS, PGSNP without ECAP.SC, SRE without ECAP.SRS, ERE
 *   without ECAP.ERS — the capability rules follow the fields Linux refuses to set without the capability,
 *   the spec's Reserved(0) wording is recalled, not in a stored source); invalid programming (0x5B, as QEMU's
 *   `vtd_pe_type_check` and level checks report it): PGTT reserved (0, 5–7) or not implemented (first stage
 *   without ECAP.FLTS, second stage without SLTS, nested without NEST, pass-through without PT), AW not in
 *   CAP.SAGAW for second-stage and nested, FLPM reserved (2, 3) or 5-level without CAP.FL5LP for first-stage
 *   and nested; then the request: an execute request with ERE = 0 (0x5C), a supervisor request with SRE = 0
 *   (0x5D). 0x58 (the read failed) belongs to the fetch; SSPTPTR and FSPTPTR are checked by the walks that
 *   use them (0x7B, 0x73), since FSPTPTR is a guest-physical address under nesting.
 */
import { entryField, entryReader, type ScalarLayoutOf, writeEntryFields } from '@iommukit/core';
import { type FaultCheck, FR } from './fault-reasons.js';
import type { VtdFeatures } from './features.js';
import { didBeyondNd, pointerBeyondHaw, reservedBitsSet, sagawSupports } from './root-context.js';

export const PASID_DIR_ENTRY_WORDS = 2;
export const PASID_DIR_ENTRY_BYTES = 8;
export const PASID_ENTRY_WORDS = 16;
export const PASID_ENTRY_BYTES = 64;
/** PASID table: 4 KiB, 64 entries, indexed by PASID[5:0]. */
export const PASID_TABLE_ENTRIES = 64;

/** PASID entry PGTT (§9.6). 0 and 5–7 are reserved. */
export const PGTT = { FIRST_STAGE: 1, SECOND_STAGE: 2, NESTED: 3, PASS_THROUGH: 4 } as const;

/** PASID entry FLPM (§9.6): first-stage paging mode. 2 and 3 are reserved. */
export const FLPM = { LEVEL_4: 0, LEVEL_5: 1 } as const;

/** Scalable-mode PASID directory entry (§9.5). */
export interface PasidDirEntry {
  readonly p: boolean;
  /** Fault processing disable for requests through this entry. */
  readonly fpd: boolean;
  /** SMPTBLPTR: the PASID table, bits 63:12. */
  readonly pasidTablePtr: number;
}

/** Scalable-mode PASID table entry (§9.6), qwords 0–2. */
export interface PasidEntry {
  // qword 0
  readonly p: boolean;
  readonly fpd: boolean;
  /** Second-stage address width: 1 = 39-bit/3-level, 2 = 48-bit/4-level, 3 = 57-bit/5-level. */
  readonly aw: number;
  /** Second-stage execute enable (SLEE in spec 3.x). */
  readonly ssee: boolean;
  /** Translation type (`PGTT`). */
  readonly pgtt: number;
  /** Second-stage accessed/dirty enable (SLADE in spec 3.x). */
  readonly ssade: boolean;
  /** Second-stage page-table pointer, bits 63:12. */
  readonly ssptptr: number;
  // qword 1
  readonly did: number;
  /** Page-walk snoop: walks of the paging structures snoop processor caches. */
  readonly pwsnp: boolean;
  /** Page snoop: accesses to the translated pages snoop. */
  readonly pgsnp: boolean;
  /** Cache disable (memory type support, ECAP.MTS). */
  readonly cd: boolean;
  /** Extended memory type enable. */
  readonly emte: boolean;
  /** Extended memory type. */
  readonly emt: number;
  /** Page-level write-through for the first-stage root. */
  readonly pwt: boolean;
  /** Page-level cache disable for the first-stage root. */
  readonly pcd: boolean;
  /** Page attribute table, as the IA32_PAT MSR. */
  readonly pat: number;
  // qword 2
  /** Supervisor request enable: requests with supervisor privilege are allowed. */
  readonly sre: boolean;
  /** Execute request enable (deprecated with ECAP.ERS). */
  readonly ere: boolean;
  /** First-stage paging mode (`FLPM`). */
  readonly flpm: number;
  /** Write protect enable: supervisor writes honour read-only first-stage pages. */
  readonly wpe: boolean;
  /** No-execute enable: first-stage XD bits count. */
  readonly nxe: boolean;
  /** Supervisor mode execute prevention. */
  readonly smep: boolean;
  /** Extended accessed flag enable: the first stage sets EA (bit 10) in its entries. */
  readonly eafe: boolean;
  /** First-stage page-table pointer, bits 191:140 (a guest-physical address under nesting). */
  readonly fsptptr: number;
}

/** PASID directory entry fields, absolute bits (§9.5). */
export const PASID_DIR_LAYOUT = { p: [0, 1], fpd: [1, 1] } as const satisfies ScalarLayoutOf<
  Omit<PasidDirEntry, 'pasidTablePtr'>
>;

/** PASID table entry fields, absolute bits (§9.6). */
export const PASID_ENTRY_LAYOUT = {
  p: [0, 1],
  fpd: [1, 1],
  aw: [2, 3],
  ssee: [5, 1],
  pgtt: [6, 3],
  ssade: [9, 1],
  did: [64, 16],
  pwsnp: [87, 1],
  pgsnp: [88, 1],
  cd: [89, 1],
  emte: [90, 1],
  emt: [91, 3],
  pwt: [94, 1],
  pcd: [95, 1],
  pat: [96, 32],
  sre: [128, 1],
  ere: [129, 1],
  flpm: [130, 2],
  wpe: [132, 1],
  nxe: [133, 1],
  smep: [134, 1],
  eafe: [135, 1],
} as const satisfies ScalarLayoutOf<Omit<PasidEntry, 'ssptptr' | 'fsptptr'>>;

const PASID_DIR_ENTRY = { scalars: PASID_DIR_LAYOUT, addresses: { pasidTablePtr: [12, 63] as const } };
const PASID_ENTRY = {
  scalars: PASID_ENTRY_LAYOUT,
  addresses: { ssptptr: [12, 63] as const, fsptptr: [140, 191] as const },
};

export const decodePasidDirEntry = entryReader<PasidDirEntry>(PASID_DIR_ENTRY);
export const decodePasidEntry = entryReader<PasidEntry>(PASID_ENTRY);

/** Encodes a PASID directory entry; fields not given are 0, `EINVAL` for a value a field cannot hold. */
export function encodePasidDirEntry(fields: Partial<PasidDirEntry> = {}): Uint32Array {
  const words = new Uint32Array(PASID_DIR_ENTRY_WORDS);
  writeEntryFields(words, PASID_DIR_ENTRY, fields, 'PASID directory entry');
  return words;
}

/** Encodes a PASID table entry; fields not given are 0, `EINVAL` for a value a field cannot hold. */
export function encodePasidEntry(fields: Partial<PasidEntry> = {}): Uint32Array {
  const words = new Uint32Array(PASID_ENTRY_WORDS);
  writeEntryFields(words, PASID_ENTRY, fields, 'PASID entry');
  return words;
}

/** Address of the directory entry for `pasid` (index PASID[19:6]) in the directory at `dirBase`. */
export function pasidDirEntryAddress(dirBase: number, pasid: number): number {
  return dirBase + ((pasid >>> 6) & 0x3fff) * PASID_DIR_ENTRY_BYTES;
}

/** Address of the PASID entry for `pasid` (index PASID[5:0]) in the PASID table at `tableBase`. */
export function pasidEntryAddress(tableBase: number, pasid: number): number {
  return tableBase + (pasid & 0x3f) * PASID_ENTRY_BYTES;
}

/** First-stage table depth an FLPM encoding selects (4 or 5). */
export function firstStageLevels(flpm: number): number {
  return flpm + 4;
}

const PASID_DIR_RESERVED = [0x0000_0ffc];
// Per 32-bit word: bits 11:10; 86:80 (qword 1 bits 22:16); 139:136 (qword 2 bits 11:8).
const PASID_ENTRY_RESERVED = [0x0000_0c00, 0, 0x007f_0000, 0, 0x0000_0f00];

const field = (words: ArrayLike<number>, [lsb, width]: readonly [number, number]) =>
  entryField(words, lsb, width);

/** A PASID directory entry (§9.5): 0, 0x51 (not present) or 0x52 (reserved fields). */
export function checkPasidDirEntry(words: ArrayLike<number>, features: VtdFeatures): FaultCheck {
  if (field(words, PASID_DIR_LAYOUT.p) === 0) return FR.SM_PASID_DIR_NOT_PRESENT;
  const reserved = reservedBitsSet(words, PASID_DIR_RESERVED) || pointerBeyondHaw(words, 0, features);
  return reserved ? FR.SM_PASID_DIR_RESERVED : 0;
}

/** What a request asks of the PASID entry that processes it. */
export interface PasidRequest {
  /**
   * Supervisor privilege: the PR attribute of a request with PASID, the context entry's RID_PRIV for a
   * request without PASID.
   */
  readonly privileged: boolean;
  /** An execute request (ER attribute, requests with PASID only). */
  readonly execute: boolean;
}

/** A PASID table entry for one request (§9.6): 0, or 0x59–0x5D in the order of the module comment. */
export function checkPasidEntry(
  words: ArrayLike<number>,
  features: VtdFeatures,
  request: PasidRequest,
): FaultCheck {
  const L = PASID_ENTRY_LAYOUT;
  if (field(words, L.p) === 0) return FR.SM_PASID_NOT_PRESENT;
  const sre = field(words, L.sre) === 1;
  const ere = field(words, L.ere) === 1;
  if (
    reservedBitsSet(words, PASID_ENTRY_RESERVED) ||
    didBeyondNd(field(words, L.did), features) ||
    (field(words, L.ssade) === 1 && !features.secondStageAccessDirty) ||
    (field(words, L.pgsnp) === 1 && !features.snoopControl) ||
    (sre && !features.supervisorRequests) ||
    (ere && !features.executeRequests)
  )
    return FR.SM_PASID_RESERVED;
  if (!pasidEntryProgrammingValid(words, features)) return FR.SM_PASID_INVALID;
  return checkPasidRequest({ sre, ere }, request);
}

/**
 * What a valid PASID entry (one the PASID cache may hold) says of one request: 0, an execute request with
 * ERE = 0 (0x5C), or a supervisor request with SRE = 0 (0x5D).
 */
export function checkPasidRequest(entry: Pick<PasidEntry, 'sre' | 'ere'>, request: PasidRequest): FaultCheck {
  if (request.execute && !entry.ere) return FR.SM_PASID_ERE_CLEAR;
  if (request.privileged && !entry.sre) return FR.SM_PASID_SRE_CLEAR;
  return 0;
}

/** PGTT implemented, and the stages it selects programmed with depths the unit walks. */
function pasidEntryProgrammingValid(words: ArrayLike<number>, features: VtdFeatures): boolean {
  const pgtt = field(words, PASID_ENTRY_LAYOUT.pgtt);
  const implemented =
    (pgtt === PGTT.FIRST_STAGE && features.firstStage) ||
    (pgtt === PGTT.SECOND_STAGE && features.secondStage) ||
    (pgtt === PGTT.NESTED && features.nesting) ||
    (pgtt === PGTT.PASS_THROUGH && features.passThrough);
  if (!implemented) return false;
  const usesFirstStage = pgtt === PGTT.FIRST_STAGE || pgtt === PGTT.NESTED;
  const usesSecondStage = pgtt === PGTT.SECOND_STAGE || pgtt === PGTT.NESTED;
  if (usesSecondStage && !sagawSupports(features, field(words, PASID_ENTRY_LAYOUT.aw))) return false;
  const flpm = field(words, PASID_ENTRY_LAYOUT.flpm);
  const flpmSupported = flpm === FLPM.LEVEL_4 || (flpm === FLPM.LEVEL_5 && features.firstStage5Level);
  return !usesFirstStage || flpmSupported;
}
