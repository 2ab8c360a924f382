/**
 * Page-table formats. A format is everything that differs between one radix page table and another: the
 * granule, how many levels there are and where the walk starts, which bits of an input address index each
 * level, and how a 64-bit descriptor encodes a table pointer or a leaf (a block or page) with its
 * attributes. The table manager ({@link IoPageTable}) and the hardware walker ({@link walk}) are written
 * against this interface only, so VMSAv8-64 and x86-64 (and VT-d second-stage and AMD v1 to come) share
 * them, as Linux's io-pgtable formats and generic_pt share one map/unmap engine.
 *
 * Numbers: everything here is on the hot path, so addresses are `number`s (input and output addresses of
 * every supported format end at or below 2^52, exact in a double) and a descriptor is its two 32-bit halves,
 * `lo` (bits 31:0) and `hi` (bits 63:32). Implementations never apply `<<`, `| 0` or `&` to a value that may
 * exceed 2^32.
 *
 * Levels are the format's own numbers (VMSA counts 0..3 towards the leaf, x86 counts 4..1); a walk goes from
 * {@link PageTableFormat.startLevel} to {@link PageTableFormat.leafLevel} through
 * {@link PageTableFormat.nextLevel}.
 */
import type { Prot } from '@iommukit/core';

/** Descriptor kinds, as numbers so the walker's inner loop compares small integers. */
export const DESC_INVALID = 0;
export const DESC_TABLE = 1;
export const DESC_LEAF = 2;
/**
 * Present, but with a reserved bit set or a field the format forbids (x86: an address bit beyond the
 * physical-address width, PS in a PML4E): the walk stops with a reserved-bit fault, not a translation fault.
 */
export const DESC_RESERVED = 3;
export type DescriptorKind =
  | typeof DESC_INVALID
  | typeof DESC_TABLE
  | typeof DESC_LEAF
  | typeof DESC_RESERVED;

/** Hardware dirty-tracking state of a leaf. */
export const DIRTY_UNTRACKED = 0;
/** Writable, not written since the last clear: the first write makes it {@link DIRTY_DIRTY}. */
export const DIRTY_CLEAN = 1;
export const DIRTY_DIRTY = 2;
export type DirtyState = typeof DIRTY_UNTRACKED | typeof DIRTY_CLEAN | typeof DIRTY_DIRTY;

/** Memory type of a mapping: Linux `IOMMU_CACHE` (cached), neither (noncached), `IOMMU_MMIO` (device). */
export type MemoryType = 'cached' | 'noncached' | 'device';

/**
 * What a mapping grants. The core's {@link Prot} (`read`, `write`, `exec`, `priv`) plus a memory type.
 * `exec` absent means not executable; `priv: true` means privileged accesses only (Linux `IOMMU_PRIV`);
 * each format documents how it encodes these.
 */
export interface MapProt extends Prot {
  /** Default `cached`. */
  readonly memType?: MemoryType;
}

/** The attribute bits of a leaf without its output address and type bits, ready to stamp on many leaves. */
export interface LeafTemplate {
  readonly lo: number;
  readonly hi: number;
}

/**
 * A page-table format. `A` is the format's decoded leaf attributes (for VMSA, {@link VmsaLeafAttributes}).
 */
export interface PageTableFormat<A = unknown> {
  /** Short name for messages and traces, e.g. `vmsav8-64 s1 4K ias48 oas48`. */
  readonly name: string;
  /** log2 of the smallest page (and of a non-root table's size). */
  readonly granuleShift: number;
  /** Index bits a full (non-root) table decodes. */
  readonly bitsPerLevel: number;
  /** Bytes per descriptor (8 for every supported format). */
  readonly descriptorBytes: number;
  /** Lookups in a full walk, root to leaf. */
  readonly levels: number;
  /** The root table's level. */
  readonly startLevel: number;
  /** The level of the smallest pages (VMSA 3, x86 1). */
  readonly leafLevel: number;
  /** Input address bits: inputs at or above 2^ias are out of range. */
  readonly ias: number;
  /** Output address bits: table and output addresses at or above 2^oas are address-size errors. */
  readonly oas: number;
  /** Tables concatenated at the start level (VMSA stage 2); 1 otherwise. */
  readonly rootTables: number;
  /** Bytes of the root, all concatenated tables included. */
  readonly rootBytes: number;
  /** Bytes of a non-root table. */
  readonly tableBytes: number;
  /** One bit per supported page or block size (bit 12 = 4 KiB), as Linux `pgsize_bitmap`. */
  readonly pgsizeBitmap: bigint;

  /** The level after `level` on the way to the leaf. */
  nextLevel(level: number): number;
  /** log2 of the input range one entry at `level` spans (the leaf size if it is a leaf). */
  levelShift(level: number): number;
  /** Entries in a table at `level` (the root counts all its concatenated tables). */
  entries(level: number): number;
  /** Index of `iova` in the table at `level`. */
  index(iova: number, level: number): number;
  /** Whether a leaf may be placed at `level` (the level's size is in {@link pgsizeBitmap}). */
  leafAllowed(level: number): boolean;

  /** What a descriptor read at `level` is; a leaf where the format allows none is invalid. */
  kind(lo: number, hi: number, level: number): DescriptorKind;
  /** The next-level table address of a table descriptor. */
  tableAddress(lo: number, hi: number): number;
  /** The output address (base of the block or page) of a leaf at `level`. */
  outputAddress(lo: number, hi: number, level: number): number;
  /**
   * Writes a table descriptor at `level`, pointing at the next level's table at `tablePa`, into `out[at]`,
   * `out[at + 1]`.
   */
  encodeTable(tablePa: number, level: number, out: Uint32Array, at: number): void;
  /**
   * The level of the table a table descriptor at `level` points at: {@link nextLevel}, or a lower one where
   * the format lets a descriptor skip levels (AMD v1's NextLevel); a walk then needs the skipped levels'
   * input bits to be zero.
   */
  tableNextLevel(lo: number, hi: number, level: number): number;
  /** log2 of the size of a leaf at `level`: {@link levelShift}, or the size the leaf encodes (AMD v1 NextLevel 7). */
  leafShift(lo: number, hi: number, level: number): number;
  /** Attribute bits for leaves mapped with `prot`; `dirtyTracking` makes writable leaves hardware-tracked. */
  leafTemplate(prot: MapProt, dirtyTracking: boolean): LeafTemplate;
  /** The attribute bits of an existing leaf at `level` (to re-stamp them at another level when splitting a block). */
  templateOf(lo: number, hi: number, level: number): LeafTemplate;
  /** Writes a leaf at `level` mapping output address `pa` with `template`'s attributes. */
  encodeLeaf(pa: number, level: number, template: LeafTemplate, out: Uint32Array, at: number): void;
  /**
   * Writes `count` consecutive leaves at `level` from `out[at]`, the first mapping `pa` and each next one
   * the following span: a table page of a range mapping in one call (the map path's inner loop).
   */
  encodeLeaves(
    pa: number,
    level: number,
    template: LeafTemplate,
    out: Uint32Array,
    at: number,
    count: number,
  ): void;

  /** Permission limits a table descriptor imposes on everything below it (0: none), OR-ed down a walk. */
  tableLimits(lo: number, hi: number): number;
  /** Decodes a leaf's attributes; `tableLimits` is the OR of the limits of the tables above it. */
  decodeLeaf(lo: number, hi: number, level: number, tableLimits: number): A;
  /**
   * The PERM_READ/WRITE/EXEC bits `attrs` grant to a privileged or unprivileged access. With
   * `hardwareDirty`, a writable-clean leaf counts as writable (the hardware will mark it dirty).
   */
  permissions(attrs: A, privileged: boolean, hardwareDirty: boolean): number;

  /**
   * Whether table entries have an accessed flag the hardware sets when a walk uses them (x86: every
   * paging-structure entry, SDM §4.8), besides the leaf's.
   */
  readonly tableAccessFlag: boolean;
  /** Whether the leaf's access flag is set (formats without one report true). */
  accessFlag(lo: number): boolean;
  /** `lo` with the access flag set. Hardware-managed bits of every supported format are in the low word. */
  setAccessFlag(lo: number): number;
  /** The leaf's dirty-tracking state. */
  dirtyState(lo: number, hi: number): DirtyState;
  /** `lo` of a tracked leaf made dirty (what the hardware writes on the first write access). */
  markDirty(lo: number): number;
  /** `lo` of a tracked leaf made writable-clean (what software writes when it clears the dirty state). */
  markClean(lo: number): number;
}

// Stryker disable next-line ObjectLiteral: without the table every power comes from `2 ** n`, the same values (speed only)
const POWERS = Float64Array.from({ length: 65 }, (_, n) => 2 ** n);

/** `2^n` as a number, exact for n < 1024; the only way sizes above 2^31 are formed in this package. */
export function pow2(n: number): number {
  // Walks call this several times per level: a table read is cheaper than Math.pow.
  // Stryker disable next-line LogicalOperator: POWERS[n] is never 0, and `2 ** n` is the same value (speed only)
  return POWERS[n] ?? 2 ** n;
}
