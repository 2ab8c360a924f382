/**
 * The SMMUv3 TLB (SMMUv3 §3.17, §4.4): translations cached with the tags the invalidation commands
 * address — VMID, ASID (or global, for nG = 0 stage-1 leaves), the kind of translation (stage 1 only,
 * stage 2 only, or a combined stage 1 + 2 entry), the input range the leaf covers (its page or block size)
 * and the level it came from. It is a set-associative cache (core's {@link SetAssociativeCache}): an entry
 * lives in the set its page number selects, so a capacity or conflict miss evicts as real hardware does, a
 * missing invalidation leaves a stale entry the model keeps using, and an invalidation by address visits
 * only the sets that address selects.
 *
 * An entry holds each stage's permissions for both privilege levels (grants.ts), not the verdict
 * on the access that cached it: a hit checks every access's PnU, InD and RnW against them (§13.4), and a
 * combined entry keeps the IPA so a stage-2 refusal on a hit is reported as the walk reports it.
 *
 * Combined (nested) entries are tagged with the stage-1 ASID and the VMID, so TLBI_NH_* removes them; a
 * TLBI_S2_IPA does not (the IPA they came through is not tagged), which is why Linux follows a stage-2
 * change of a nest parent with TLBI_NH_ALL — the model makes that requirement observable.
 */
import { type CacheGeometry, SetAssociativeCache, SetAssociativeStats } from '@iommukit/core';

export type TlbKind = 's1' | 's2' | 's12';

/** `asid` of an entry that matches every ASID of its VMID (a stage-1 leaf with nG = 0, or any stage-2 entry). */
export const GLOBAL_ASID = -1;
/** An invalidation's ASID that matches every entry, global or not (TLBI_NH_VAA, TLBI_S2_IPA). */
export const ANY_ASID = -2;

/** Sets of kinds an invalidation removes: one bit per {@link TlbKind}. */
export const TLB_S1 = 1;
export const TLB_S2 = 2;
export const TLB_S12 = 4;
/** The kinds stage-1 (non-hypervisor) invalidations reach: TLBI_NH_* (§4.4.2). */
export const TLB_NH = TLB_S1 | TLB_S12;
export const TLB_ALL_KINDS = TLB_S1 | TLB_S2 | TLB_S12;

const KIND_CODE: Readonly<Record<TlbKind, number>> = { s1: 0, s2: 1, s12: 2 };

// The tags of an entry, in the order the cache keeps them.
const T_KIND = 0;
const T_VMID = 1;
const T_ASID = 2;
const T_SHIFT = 3;
const T_VPN = 4;
const TAGS = 5;

/** Page shifts a leaf can have: 12 (4 KiB) to 42 (4 TiB blocks of the 64K granule, 52-bit). */
const MAX_SHIFT = 63;
// Stryker disable next-line ArithmeticOperator: no entry is 2^63 bytes (leaves stop at 2^42), so the last power is never read
const POW2 = Float64Array.from({ length: MAX_SHIFT + 1 }, (_, n) => 2 ** n);

/** The tags of a cached entry: what lookups and invalidations match (the walk caches share them). */
export interface TlbTags {
  readonly kind: TlbKind;
  readonly vmid: number;
  readonly asid: number;
  /** First input address the entry covers (aligned to its size). */
  readonly inputBase: number;
  /** log2 of the entry's size. */
  readonly pageShift: number;
}

export interface TlbEntry extends TlbTags {
  /** Lookup level of the leaf (TLBI's TTL hint and LEAF filter use it). */
  readonly level: number;
  /** Output address of `inputBase`. */
  readonly outputBase: number;
  /** The IPA of `inputBase`: the stage-1 output for a combined entry, the input itself for a stage-2 entry. */
  readonly ipaBase: number;
  /** Stage 1 permissions (`stageGrants`); `ALL_GRANTS` for a stage-2 entry. */
  readonly s1Grants: number;
  /** Stage 2 permissions; `ALL_GRANTS` for a stage-1 entry. */
  readonly s2Grants: number;
  /** The leaf was dirty (or not writable-clean) when cached: a write through it needs no walk. */
  readonly dirty: boolean;
}

/** An entry as its slot holds it: rewritten in place when the slot is filled again. */
export type SlotEntry<E> = { -readonly [K in keyof E]: E[K] };

/** A TLB entry before its slot is filled. */
export const emptyTlbEntry = (): TlbEntry => ({
  kind: 's1',
  vmid: 0,
  asid: 0,
  inputBase: 0,
  pageShift: 0,
  level: 0,
  outputBase: 0,
  ipaBase: 0,
  s1Grants: 0,
  s2Grants: 0,
  dirty: false,
});

/**
 * The TLB, or with another entry type a walk cache tagged the same way (walk-cache.ts). Each slot owns one
 * entry object, made when the cache is built and rewritten by every fill of the slot, so a miss allocates
 * nothing; a lookup returns the slot's object, valid until the slot is filled again.
 */
export class Smmuv3Tlb<E extends TlbTags = TlbEntry> extends SetAssociativeStats {
  readonly cache: SetAssociativeCache;
  private readonly slotEntries: SlotEntry<E>[];
  /** Whether a slot holds an entry that is counted in `perShift`. */
  private readonly live: Uint8Array;
  /** Entries per page shift, and the shifts in use in ascending order: lookups try only those sizes. */
  // Stryker disable next-line ArithmeticOperator: no entry is 2^63 bytes (leaves stop at 2^42)
  private readonly perShift = new Uint32Array(MAX_SHIFT + 1);
  private shifts: number[] = [];

  constructor(geometry: CacheGeometry, name: string, newEntry: () => E) {
    super();
    this.cache = new SetAssociativeCache(name, geometry, TAGS, (slot) => this.forget(slot));
    this.slotEntries = Array.from({ length: this.cache.capacity }, newEntry);
    this.live = new Uint8Array(this.cache.capacity);
  }

  /** The page sizes (log2) of the cached entries, ascending: the only sizes a lookup probes. */
  get pageShifts(): readonly number[] {
    return this.shifts;
  }

  /** The entry translating `address` for (kind, VMID, ASID): the ASID's own entries first, then global ones. */
  lookup(kind: TlbKind, vmid: number, asid: number, address: number): E | undefined {
    const { cache, shifts } = this;
    const probe = cache.probe;
    probe[T_KIND] = KIND_CODE[kind];
    probe[T_VMID] = vmid;
    // Stryker disable next-line EqualityOperator: one probe past the end is of shift undefined, whose NaN set holds nothing
    for (let i = 0; i < shifts.length; i++) {
      const shift = shifts[i]!;
      const vpn = Math.floor(address / POW2[shift]!);
      const set = cache.setOf(vpn);
      probe[T_ASID] = asid;
      probe[T_SHIFT] = shift;
      probe[T_VPN] = vpn;
      let slot = cache.find(set);
      // Stryker disable next-line ConditionalExpression: for GLOBAL_ASID the second probe repeats the first
      if (slot < 0 && asid !== GLOBAL_ASID) {
        probe[T_ASID] = GLOBAL_ASID;
        slot = cache.find(set);
      }
      if (slot >= 0) {
        cache.hit(set, slot);
        return this.slotEntries[slot];
      }
    }
    cache.miss();
    return undefined;
  }

  /**
   * Caches an entry for the leaf (or table) of `pageShift` covering `address`, replacing an entry with the
   * same tags, else a free way, else the set's victim. Returns the slot's entry with its tags written; the
   * caller writes the rest.
   */
  insert(kind: TlbKind, vmid: number, asid: number, address: number, pageShift: number): SlotEntry<E> {
    const { cache } = this;
    const vpn = Math.floor(address / POW2[pageShift]!);
    const set = cache.setOf(vpn);
    this.setProbe(KIND_CODE[kind], vmid, asid, pageShift, vpn);
    const slot = cache.insert(set);
    // The slot of an entry with the same tags is reused: stop counting the entry it replaces (an evicted
    // one was forgotten by the eviction callback).
    this.forget(slot);
    this.live[slot] = 1;
    const count = this.perShift[pageShift]!;
    this.perShift[pageShift] = count + 1;
    if (count === 0) this.shifts = this.presentShifts();
    const entry = this.slotEntries[slot]!;
    entry.kind = kind;
    entry.vmid = vmid;
    entry.asid = asid;
    entry.inputBase = vpn * POW2[pageShift]!;
    entry.pageShift = pageShift;
    return entry;
  }
  /** Drops the entries of `kinds` (TLB_* bits) of a VMID (TLBI_NH_ALL, TLBI_S12_VMALL); returns how many. */
  invalidateVmid(kinds: number, vmid: number): number {
    return this.dropMatching(kinds, vmid, ANY_ASID);
  }

  /** Drops the non-global entries of `kinds` of (VMID, ASID) (TLBI_NH_ASID); returns how many. */
  invalidateAsid(kinds: number, vmid: number, asid: number): number {
    return this.dropMatching(kinds, vmid, asid);
  }

  /**
   * Drops the entries of `kinds` of a VMID whose leaf overlaps [start, start + size): of one ASID and the
   * global ones (TLBI_NH_VA), or of every ASID with {@link ANY_ASID} (TLBI_NH_VAA, TLBI_S2_IPA). Visits,
   * for each page size in use, only the sets the range's page numbers select. Returns how many.
   */
  invalidateRange(kinds: number, vmid: number, asid: number, start: number, size: number): number {
    const { cache } = this;
    let dropped = 0;
    for (const shift of this.shifts) {
      const first = Math.floor(start / POW2[shift]!);
      const last = Math.floor((start + size - 1) / POW2[shift]!);
      // Visiting more sets or slots than these changes nothing: each entry is checked against the range.
      // Stryker disable next-line ArithmeticOperator,EqualityOperator: see above
      const sets = Math.min(last - first + 1, cache.sets);
      // Stryker disable next-line EqualityOperator: see above
      for (let k = 0; k < sets; k++) {
        const set = cache.setOf(first + k);
        const from = set * cache.ways;
        // Stryker disable next-line EqualityOperator: see above (one slot past a set is the next set's first)
        for (let slot = from; slot < from + cache.ways; slot++) {
          if (!cache.isValid(slot) || cache.tag(slot, T_SHIFT) !== shift) continue;
          const vpn = cache.tag(slot, T_VPN);
          if (vpn < first || vpn > last || !this.owned(slot, kinds, vmid)) continue;
          const entryAsid = cache.tag(slot, T_ASID);
          if (asid !== ANY_ASID && entryAsid !== asid && entryAsid !== GLOBAL_ASID) continue;
          this.drop(slot);
          dropped++;
        }
      }
    }
    return dropped;
  }

  /** Drops everything (TLBI_NSNH_ALL); returns how many entries there were. */
  clear(): number {
    this.perShift.fill(0);
    this.shifts = [];
    this.live.fill(0);
    return this.cache.clear();
  }

  /** Copies of the cached entries, in slot order (for inspection). */
  entries(): E[] {
    return this.cache.slots().map((slot) => ({ ...this.slotEntries[slot]! }));
  }

  private setProbe(kind: number, vmid: number, asid: number, shift: number, vpn: number): void {
    const probe = this.cache.probe;
    probe[T_KIND] = kind;
    probe[T_VMID] = vmid;
    probe[T_ASID] = asid;
    probe[T_SHIFT] = shift;
    probe[T_VPN] = vpn;
  }

  /** Is the entry in `slot` of one of `kinds`, and of `vmid`? */
  private owned(slot: number, kinds: number, vmid: number): boolean {
    return ((kinds >>> this.cache.tag(slot, T_KIND)) & 1) === 1 && this.cache.tag(slot, T_VMID) === vmid;
  }

  /** Drops every entry of `kinds` of `vmid` with exactly `asid` ({@link ANY_ASID}: any); a scan of all sets. */
  private dropMatching(kinds: number, vmid: number, asid: number): number {
    let dropped = 0;
    // Stryker disable next-line EqualityOperator: the slot past the end is never valid
    for (let slot = 0; slot < this.cache.capacity; slot++) {
      if (!this.cache.isValid(slot) || !this.owned(slot, kinds, vmid)) continue;
      if (asid !== ANY_ASID && this.cache.tag(slot, T_ASID) !== asid) continue;
      this.drop(slot);
      dropped++;
    }
    return dropped;
  }

  private drop(slot: number): void {
    this.forget(slot);
    this.cache.invalidateSlot(slot);
  }

  /** Stops counting the entry in `slot` (about to be replaced or dropped). */
  private forget(slot: number): void {
    if (this.live[slot] === 0) return;
    this.live[slot] = 0;
    const shift = this.slotEntries[slot]!.pageShift;
    const left = this.perShift[shift]! - 1;
    this.perShift[shift] = left;
    if (left === 0) this.shifts = this.presentShifts();
  }

  private presentShifts(): number[] {
    const out: number[] = [];
    // Stryker disable next-line EqualityOperator: no entry is 2^63 bytes (leaves stop at 2^42)
    for (let shift = 0; shift <= MAX_SHIFT; shift++) if (this.perShift[shift]! > 0) out.push(shift);
    return out;
  }
}
