/**
 * The payload of one IOTLB slot (a `TaggedTlb` entry) for a unit whose translation ends in one set of grants
 * (VT-d, AMD-Vi; SMMUv3 keeps one per stage): written whole by each fill, read by each hit.
 */
import { PERM_WRITE } from '../iommu/translation.js';

export interface IotlbEntry {
  /** Output address of the entry's first byte (the input base). */
  outputBase: number;
  /** log2 of the range the entry translates. */
  pageShift: number;
  /** Core stage grants: PERM_READ/WRITE/EXEC for a privileged access (bits 3:0) and a user one (7:4). */
  grants: number;
  /** The leaf was cached dirty (or not tracked): a write through it needs no walk to set D. */
  dirty: boolean;
  /** Level of the leaf (1 = 4 KiB; reported in traces). */
  level: number;
  /**
   * A not-present entry cached as such (VT-d caching mode, AMD NpCache): the fault a lookup reports until
   * an invalidation drops it; 0 for a translation.
   */
  notPresent: number;
}

/** One slot's entry object: a fill rewrites every field, so these values only give all slots one shape. */
export function newIotlbEntry(): IotlbEntry {
  // Stryker disable next-line ObjectLiteral,BooleanLiteral: every fill rewrites each field before a hit reads it
  return { outputBase: 0, pageShift: 0, grants: 0, dirty: false, level: 0, notPresent: 0 };
}

/**
 * Writes the translation of `input` to `pa` by a leaf of 2^`pageShift` bytes into a slot's entry. A leaf
 * walked for a read under dirty tracking (`tracksDirty`) is cached clean, so the first write through it
 * walks again to set D.
 */
export function setIotlbTranslation(
  entry: IotlbEntry,
  input: number,
  pa: number,
  pageShift: number,
  level: number,
  grants: number,
  access: number,
  tracksDirty: boolean,
): void {
  entry.outputBase = pa - (input % 2 ** pageShift);
  entry.pageShift = pageShift;
  entry.grants = grants;
  entry.level = level;
  entry.notPresent = 0;
  entry.dirty = !tracksDirty || (access & PERM_WRITE) !== 0;
}

/**
 * Writes a not-present leaf cached as such (VT-d caching mode, AMD NpCache) into a slot's entry: a 4 KiB
 * entry that answers with `fault` (nonzero) until an invalidation drops it.
 */
export function setIotlbNotPresent(entry: IotlbEntry, fault: number): void {
  entry.outputBase = 0;
  entry.pageShift = 12;
  entry.grants = 0;
  entry.level = 0;
  entry.dirty = false;
  entry.notPresent = fault;
}
