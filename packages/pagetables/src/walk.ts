/**
 * The hardware table walker: what an IOMMU's page-table walker does on a TLB miss, for any
 * {@link PageTableFormat}. It reads one descriptor per level through the memory bus (each read counted on the
 * caller's {@link AccessCounter}), follows table descriptors, and stops at a leaf or a fault. It never throws
 * for an architectural outcome: a fault is a value, as the SMMU reports it in an event record.
 *
 * What it models (Arm ARM D8.2–D8.5 for VMSAv8-64; SMMUv3 3.4 for the input range):
 * - Input outside the table's range (at or above 2^IAS): a translation fault at the start level — SMMUv3
 *   3.4 raises F_TRANSLATION for a VA outside the CD's T0SZ range and a stage 2 translation fault for an IPA
 *   outside S2T0SZ (address-size faults are for outputs).
 * - A root, table or output address at or above 2^OAS: an address-size fault (level 0 for the root, the
 *   lookup's level otherwise, as the Arm ARM reports a TTBR out of range).
 * - A bus abort on a descriptor read or write-back: `walk-abort` with the descriptor's address.
 * - Access flag clear: an access-flag fault, or with `hardwareAccessFlag` (HA) the walker sets AF and writes
 *   the descriptor back; without HA, `accessFlagFaultDisable` (SMMUv3 CD.AFFD / STE.S2AFFD) uses the leaf as
 *   if AF were 1 and leaves memory alone.
 * - With `hardwareDirty` (HD), a write to a writable-clean leaf the access may otherwise write marks it dirty
 *   (stage 1 AP[2] := 0, stage 2 S2AP[1] := 1) and writes it back. HA/HD write the low descriptor word only,
 *   which holds every hardware-managed bit.
 * - Nested walks: `translateTableAddress` maps the address of every descriptor about to be read (an IPA when
 *   stage 1 runs on top of stage 2) to the address to read, and again, asking for write access, before an
 *   HA/HD write-back (a hardware update is a write to the descriptor's IPA, SMMUv3 §3.13.5); a fault it
 *   returns ends the walk with the same kind, the stage 1 level, and the stage 2 fault in `tableWalk`, and
 *   the descriptor is not written.
 * - Walk caches: with `tableCache`, the walk starts at the deepest table the cache holds for the input
 *   (skipping the descriptor reads above it, as a hardware walk cache does) and reports every table
 *   descriptor it follows, so the cache can keep it. What the cache is tagged by and what invalidates it is
 *   the IOMMU's business.
 * Permission checks are the caller's: {@link PageTableFormat.permissions} or {@link vmsaAccessAllowed}.
 *
 * Two entry points: {@link walkInto} writes what it found into a {@link WalkState} the caller keeps and
 * allocates nothing (an IOMMU model's TLB-miss path); {@link walk} returns a fresh {@link WalkResult} with the
 * leaf's attributes decoded (tests, tools and cold paths).
 */
import { type AccessCounter, type MemoryBus, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import {
  DESC_INVALID,
  DESC_RESERVED,
  DESC_TABLE,
  DIRTY_CLEAN,
  type PageTableFormat,
  pow2,
} from './format.js';

export type WalkFaultKind = 'translation' | 'address-size' | 'access-flag' | 'walk-abort' | 'reserved';

export interface WalkFault {
  readonly kind: WalkFaultKind;
  /** The lookup level the fault belongs to. */
  readonly level: number;
  /** `walk-abort`: the descriptor address the bus refused; nested faults: the descriptor address not translated. */
  readonly address?: number;
  /** When `translateTableAddress` failed, its fault (for SMMUv3: a stage 2 fault on a stage 1 table fetch). */
  readonly tableWalk?: WalkFault;
}

export interface WalkOk<A> {
  readonly ok: true;
  /** The output address of the input address (leaf base + offset). */
  readonly pa: number;
  /** Level of the leaf. */
  readonly level: number;
  /** log2 of the leaf's size: the whole naturally aligned range a TLB may cache. */
  readonly pageShift: number;
  readonly attrs: A;
  /** The leaf descriptor as it is in memory after any HA/HD update. */
  readonly lo: number;
  readonly hi: number;
  /** Where the leaf descriptor was read (after `translateTableAddress`). */
  readonly descriptorAddress: number;
  /** Descriptors this walk read (nested stage 2 reads are counted by the counter, not here). */
  readonly reads: number;
}

export interface WalkFailure {
  readonly ok: false;
  readonly fault: WalkFault;
  readonly reads: number;
}

export type WalkResult<A> = WalkOk<A> | WalkFailure;

/**
 * A walk cache as the walker sees it: lookups and fills by input address. Implementations keep the tags
 * (stage, VMID, ASID…) themselves and hand back the table through their own fields, so neither side allocates.
 */
export interface WalkTableCache {
  /**
   * The deepest cached table whose range holds `iova`: returns the level of its descriptors, with
   * {@link table} and {@link limits} set; -1 when none is cached.
   */
  find(iova: number): number;
  /** After a {@link find} hit: the table's address (what a table descriptor held: an IPA when nested). */
  readonly table: number;
  /** After a {@link find} hit: the table limits accumulated on the way to it ({@link PageTableFormat.tableLimits}). */
  readonly limits: number;
  /**
   * The walk followed a table descriptor for `iova` to `table`, whose descriptors are level `level`, with
   * `limits` accumulated so far (that descriptor's included); `shift` is log2 of the input range the table covers.
   */
  fill(level: number, shift: number, iova: number, table: number, limits: number): void;
}

export interface WalkOptions {
  readonly bus: MemoryBus;
  /** Every descriptor read and write-back is counted here. */
  readonly counter: AccessCounter;
  /** PERM_* bits of the access: WRITE drives HD, PRIV selects the stage 1 rights HD checks. Default READ. */
  readonly access?: number;
  /**
   * HA: set a clear access flag instead of faulting (SMMUv3 CD.HA / STE.S2HA; always on for x86-64), in the
   * table entries too where the format has one there (`tableAccessFlag`).
   */
  readonly hardwareAccessFlag?: boolean;
  /** Without HA: a clear access flag is used as if set, no fault and no write (SMMUv3 CD.AFFD / STE.S2AFFD). */
  readonly accessFlagFaultDisable?: boolean;
  /** HD: make a writable-clean leaf dirty on a write (SMMUv3 CD.HD / STE.S2HD). */
  readonly hardwareDirty?: boolean;
  /** Apply table-descriptor permission limits (default true; SMMUv3 CD.HAD0 = 1 turns them off). */
  readonly hierarchicalPermissions?: boolean;
  /**
   * Nested walks: the address to access for each descriptor address, or the fault that stops the walk.
   * `access` is PERM_READ for the fetch and PERM_WRITE for an HA/HD write-back.
   */
  readonly translateTableAddress?: (address: number, level: number, access: number) => number | WalkFault;
  /** Called after every descriptor read, for tracing. */
  readonly onStep?: (level: number, address: number, lo: number, hi: number) => void;
  /** A walk cache to start from and to fill (see {@link WalkTableCache}). */
  readonly tableCache?: WalkTableCache;
}

// One descriptor's words. Values are copied into locals right after the read, before any callback, so a
// nested walk started from a callback cannot disturb them. The walk reads them as signed 32-bit integers
// (the same bits): V8 passes those to the format's methods as small integers, where words at or above
// 2^31 (any table in RAM above 2 GiB) would be boxed on every call the compiler does not inline.
const words = new Uint32Array(2);
const signedWords = new Int32Array(words.buffer);

/**
 * What a walk found, in an object the caller reuses from walk to walk (one per walker: a nested stage-2
 * walk started from `translateTableAddress` needs its own). Valid until the next walk into it.
 */
export class WalkState {
  /** False when the walk faulted: the fault* fields say how. */
  ok = false;
  /** The output address of the input address (leaf base + offset). */
  pa = 0;
  /** Level of the leaf. */
  level = 0;
  /** log2 of the leaf's size. */
  pageShift = 0;
  /** The leaf descriptor as it is in memory after any HA/HD update. */
  lo = 0;
  hi = 0;
  /** Where the leaf descriptor was read (after `translateTableAddress`). */
  descriptorAddress = 0;
  /** The table limits OR-ed down to the leaf ({@link PageTableFormat.decodeLeaf} takes them). */
  tableLimits = 0;
  /** Descriptors this walk read, successful or not. */
  reads = 0;
  faultKind: WalkFaultKind = 'translation';
  faultLevel = 0;
  /** The fault's address, NaN when it has none. */
  faultAddress = Number.NaN;
  /** The fault `translateTableAddress` returned, when that ended the walk. */
  tableWalk: WalkFault | undefined = undefined;

  /** The fault as a {@link WalkFault} value (allocates: for event records and cold paths). */
  fault(): WalkFault {
    const { faultKind: kind, faultLevel: level, faultAddress: address, tableWalk } = this;
    if (tableWalk !== undefined) return { kind, level, address, tableWalk };
    return Number.isNaN(address) ? { kind, level } : { kind, level, address };
  }
}

/** Ends the walk in `out` with a fault; returns false for the caller to return. */
function fail(
  out: WalkState,
  kind: WalkFaultKind,
  level: number,
  reads: number,
  address = Number.NaN,
  tableWalk: WalkFault | undefined = undefined,
): false {
  out.ok = false;
  out.faultKind = kind;
  out.faultLevel = level;
  out.faultAddress = address;
  out.tableWalk = tableWalk;
  out.reads = reads;
  return false;
}

/**
 * Writes `lo` back to the descriptor at `entry` (read at `address`): an accessed or dirty flag the hardware
 * set. A nested walk first translates the descriptor's address for a write. Returns the address written, or
 * -1 when the walk stopped (the fault is in `out`).
 */
function writeBack(
  options: WalkOptions,
  out: WalkState,
  entry: number,
  address: number,
  level: number,
  lo: number,
  reads: number,
): number {
  let target = address;
  if (options.translateTableAddress !== undefined) {
    const writable = options.translateTableAddress(entry, level, PERM_WRITE);
    if (typeof writable !== 'number') {
      tableWalkFailure(out, writable, level, entry, reads);
      return -1;
    }
    target = writable;
  }
  words[0] = lo;
  if (!options.bus.writeWords(target, words, 1, options.counter)) {
    fail(out, 'walk-abort', level, reads, target);
    return -1;
  }
  return target;
}

/** The walk ends because `translateTableAddress` refused the descriptor at `address` (`fault` inside). */
function tableWalkFailure(
  out: WalkState,
  fault: WalkFault,
  level: number,
  address: number,
  reads: number,
): false {
  return fail(out, fault.kind, level, reads, address, fault);
}

/**
 * Walks `format`'s table rooted at `rootPa` for input address `iova` into `out`, allocating nothing.
 * Returns `out.ok`.
 */
export function walkInto(
  format: PageTableFormat,
  rootPa: number,
  iova: number,
  options: WalkOptions,
  out: WalkState,
): boolean {
  const { bus, counter, translateTableAddress, onStep, tableCache } = options;
  const oaLimit = pow2(format.oas);
  let level = format.startLevel;
  if (!(iova >= 0 && iova < pow2(format.ias))) return fail(out, 'translation', level, 0);
  if (!(rootPa >= 0 && rootPa < oaLimit)) return fail(out, 'address-size', 0, 0);
  const hierarchical = options.hierarchicalPermissions !== false;
  let table = rootPa;
  let limits = 0;
  let reads = 0;
  if (tableCache !== undefined) {
    const cached = tableCache.find(iova);
    if (cached >= 0) {
      level = cached;
      table = tableCache.table;
      limits = hierarchical ? tableCache.limits : 0;
    }
  }
  for (;;) {
    const entry = table + format.index(iova, level) * format.descriptorBytes;
    let address = entry;
    if (translateTableAddress !== undefined) {
      const translated = translateTableAddress(entry, level, PERM_READ);
      if (typeof translated !== 'number') return tableWalkFailure(out, translated, level, entry, reads);
      address = translated;
    }
    if (!bus.readWords(address, words, 2, counter)) return fail(out, 'walk-abort', level, reads, address);
    reads++;
    let lo = signedWords[0]!;
    const hi = signedWords[1]!;
    onStep?.(level, address, lo >>> 0, hi >>> 0);
    const kind = format.kind(lo, hi, level);
    if (kind === DESC_RESERVED) return fail(out, 'reserved', level, reads);
    if (kind === DESC_INVALID || (kind === DESC_TABLE && level === format.leafLevel)) {
      return fail(out, 'translation', level, reads);
    }
    if (kind === DESC_TABLE) {
      const next = format.tableAddress(lo, hi);
      if (next >= oaLimit) return fail(out, 'address-size', level, reads);
      // Where table entries have an accessed flag (x86-64, SDM §4.8; VT-d with SSADE; AMD v1 with HAD), the
      // walk sets it in every entry it uses.
      if (format.tableAccessFlag && options.hardwareAccessFlag === true && !format.accessFlag(lo)) {
        if (writeBack(options, out, entry, address, level, format.setAccessFlag(lo), reads) < 0) return false;
      }
      if (hierarchical) limits |= format.tableLimits(lo, hi);
      const nextLevel = format.tableNextLevel(lo, hi, level);
      // A descriptor that skips levels (AMD v1) holds only for inputs whose skipped index bits are zero.
      let skipped = false;
      for (let l = format.nextLevel(level); l !== nextLevel; l = format.nextLevel(l)) {
        if (format.index(iova, l) !== 0) return fail(out, 'translation', level, reads);
        skipped = true;
      }
      // Such a table serves only part of the descriptor's range: it is not a walk-cache entry for all of it.
      if (tableCache !== undefined && !skipped)
        tableCache.fill(nextLevel, format.levelShift(level), iova, next, limits);
      table = next;
      level = nextLevel;
      continue;
    }
    // A leaf: Arm ARM D8.5 fault order: address size, then access flag.
    const base = format.outputAddress(lo, hi, level);
    if (base >= oaLimit) return fail(out, 'address-size', level, reads);
    let update = false;
    if (!format.accessFlag(lo)) {
      if (options.hardwareAccessFlag === true) {
        lo = format.setAccessFlag(lo);
        update = true;
      } else if (options.accessFlagFaultDisable !== true) {
        return fail(out, 'access-flag', level, reads);
      }
    }
    const access = options.access ?? PERM_READ;
    if (
      options.hardwareDirty === true &&
      (access & PERM_WRITE) !== 0 &&
      format.dirtyState(lo, hi) === DIRTY_CLEAN &&
      // Only the first write to a writable-clean leaf gets here: decoding its attributes may allocate.
      (format.permissions(format.decodeLeaf(lo, hi, level, limits), (access & PERM_PRIV) !== 0, true) &
        PERM_WRITE) !==
        0
    ) {
      lo = format.markDirty(lo);
      update = true;
    }
    if (update) {
      address = writeBack(options, out, entry, address, level, lo, reads);
      if (address < 0) return false;
    }
    const pageShift = format.leafShift(lo, hi, level);
    out.ok = true;
    // The offset in the leaf from the low 32 bits of the input (exact for any safe integer) rather than a
    // floating-point remainder, for every leaf smaller than 2 GiB.
    out.pa = base + (pageShift < 31 ? (iova >>> 0) & ((1 << pageShift) - 1) : iova % pow2(pageShift));
    out.level = level;
    out.pageShift = pageShift;
    out.lo = lo >>> 0;
    out.hi = hi >>> 0;
    out.descriptorAddress = address;
    out.tableLimits = limits;
    out.reads = reads;
    return true;
  }
}

/** Walks `format`'s table rooted at `rootPa` for input address `iova`: a fresh result, attributes decoded. */
export function walk<A>(
  format: PageTableFormat<A>,
  rootPa: number,
  iova: number,
  options: WalkOptions,
): WalkResult<A> {
  const out = new WalkState();
  if (!walkInto(format, rootPa, iova, options, out))
    return { ok: false, fault: out.fault(), reads: out.reads };
  const { pa, level, pageShift, lo, hi, descriptorAddress, reads } = out;
  const attrs = format.decodeLeaf(lo, hi, level, out.tableLimits);
  return { ok: true, pa, level, pageShift, attrs, lo, hi, descriptorAddress, reads };
}
