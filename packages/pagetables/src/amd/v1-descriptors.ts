/**
 * AMD IOMMU v1 (host) page-table entries (AMD IOMMU spec 48882, §2.2.3 I/O page tables for host
 * translations, Tables 15–17 PDE/PTE formats): bit positions, the attributes a leaf decodes to, and the rights
 * they grant. Linux: amd_iommu_types.h, generic_pt's `amdv1` format.
 *
 * PR (bit 0) marks an entry present. NextLevel (bits 11:9) says what the entry is: 0, a leaf of the level's
 * natural size; 1 to 6, a table of that level (a value below the next level skips levels, whose input bits
 * must then be zero); 7, a leaf whose size is encoded in the address field — 2^(13 + n) bytes for n
 * consecutive ones from bit 12 — replicated in every entry the page covers. IR and IW (bits 61, 62) grant
 * reads and writes, and apply down the walk.
 */
import { PERM_READ, PERM_WRITE } from '@iommukit/core';

// Low word.
export const AMD_PR = 1 << 0;
/** Accessed and dirty: set by the IOMMU when the DTE's HAD asks (host access/dirty update). */
export const AMD_A = 1 << 5;
export const AMD_D = 1 << 6;
export const AMD_NEXT_LEVEL_SHIFT = 9;
export const AMD_NEXT_LEVEL_MASK = 0b111 << AMD_NEXT_LEVEL_SHIFT;
/** NextLevel of a leaf whose size the address field encodes. */
export const AMD_NEXT_LEVEL_SIZED = 7;
// High word (bit n − 32).
/** Page migration control (bits 58:57). */
export const AMD_HI_PMC_SHIFT = 25;
/** U (bit 59): the page is not to be cached by a device's ATC (untranslated access only). */
export const AMD_HI_U = 1 << 27;
/** FC (bit 60): force coherent — accesses snoop whatever the request said. */
export const AMD_HI_FC = 1 << 28;
export const AMD_HI_IR = 1 << 29;
export const AMD_HI_IW = 1 << 30;

/** Restrictions an entry imposes on everything below it (`tableLimits`), OR-ed down a walk. */
export const AMD_LIMIT_NO_READ = 1;
export const AMD_LIMIT_NO_WRITE = 2;

/** The limits one entry imposes: IR = 0 forbids reads below it, IW = 0 writes. */
export function amdV1EntryLimits(hi: number): number {
  return ((hi & AMD_HI_IR) === 0 ? AMD_LIMIT_NO_READ : 0) | ((hi & AMD_HI_IW) === 0 ? AMD_LIMIT_NO_WRITE : 0);
}

/** The NextLevel field. */
export function amdNextLevel(lo: number): number {
  return (lo & AMD_NEXT_LEVEL_MASK) >>> AMD_NEXT_LEVEL_SHIFT;
}

/**
 * log2 of a NextLevel-7 leaf's size: 13 plus the count of consecutive ones in the address field from bit 12
 * (address bits 51:12 are the low word's 31:12 and the high word's 19:0).
 */
export function amdSizedLeafShift(lo: number, hi: number): number {
  let ones = 0;
  while (ones < 20 && ((lo >>> (12 + ones)) & 1) === 1) ones++;
  if (ones === 20) while (ones < 40 && ((hi >>> (ones - 20)) & 1) === 1) ones++;
  return 13 + ones;
}

/** A leaf's attributes with the limits of the tables above it applied. */
export interface AmdV1LeafAttributes {
  /** IR = 1 here and in every table above. */
  readonly readable: boolean;
  /** IW = 1 here and in every table above. */
  readonly writable: boolean;
  readonly accessed: boolean;
  readonly dirty: boolean;
  readonly forceCoherent: boolean;
  readonly untranslatedOnly: boolean;
  /** Page migration control (PMC). */
  readonly pmc: number;
}

export function decodeAmdV1Attributes(lo: number, hi: number, limits: number): AmdV1LeafAttributes {
  const own = amdV1EntryLimits(hi) | limits;
  return {
    readable: (own & AMD_LIMIT_NO_READ) === 0,
    writable: (own & AMD_LIMIT_NO_WRITE) === 0,
    accessed: (lo & AMD_A) !== 0,
    dirty: (lo & AMD_D) !== 0,
    forceCoherent: (hi & AMD_HI_FC) !== 0,
    untranslatedOnly: (hi & AMD_HI_U) !== 0,
    pmc: (hi >>> AMD_HI_PMC_SHIFT) & 0b11,
  };
}

/** The PERM_READ/WRITE bits a leaf grants; the v1 table has no privilege levels and no execute. */
export function amdV1Permissions(attrs: AmdV1LeafAttributes): number {
  return (attrs.readable ? PERM_READ : 0) | (attrs.writable ? PERM_WRITE : 0);
}
