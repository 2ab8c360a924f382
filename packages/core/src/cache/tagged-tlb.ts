/**
 * A translation cache tagged the way IOMMU invalidations address it, shared by every vendor model: the kind
 * of translation (a small number the vendor defines: stage 1, stage 2, nested…), a domain (SMMUv3 VMID, VT-d
 * DID, AMD DomainID), an address space within it (SMMUv3 ASID, VT-d and AMD PASID — or
 * {@link GLOBAL_SPACE} for an entry every space of the domain shares), the input range the entry covers
 * (its page or block size) and its page number. TLBs and walk caches are both this shape; the entry objects
 * (one per slot, made when the cache is built and rewritten in place by every fill) carry the vendor's
 * payload and are opaque here, so a lookup returns the slot's object and a miss allocates nothing.
 *
 * It sits on {@link SetAssociativeCache}: an entry lives in the set its page number selects, so capacity and
 * conflict misses evict as on hardware, an invalidation the driver forgets leaves a stale entry the model
 * keeps using, an invalidation by address visits only the sets that address selects, and one by domain or
 * space scans them all. Lookups probe only the page sizes present in the cache, smallest first.
 */
import { type CacheGeometry, SetAssociativeCache } from './set-associative-cache.js';
import { SetAssociativeStats } from './set-associative-stats.js';

/** The space of an entry that matches every space of its domain (a global stage-1 leaf, a stage-2 entry). */
export const GLOBAL_SPACE = -1;
/** An invalidation's space that matches every entry of the domain, global or not. */
export const ANY_SPACE = -2;

// The tags of an entry, in the order the cache keeps them: the page number last, where ways differ most.
const T_KIND = 0;
const T_DOMAIN = 1;
const T_SPACE = 2;
const T_SHIFT = 3;
const T_VPN = 4;
const TAGS = 5;

/** Page shifts an entry can have: a leaf of 2^63 bytes is never cached, so 63 bounds every table. */
const MAX_SHIFT = 63;
// Stryker disable next-line ArithmeticOperator: no entry is 2^63 bytes, so the last power is never read
const POW2 = Float64Array.from({ length: MAX_SHIFT + 1 }, (_, n) => 2 ** n);

/** An entry as its slot holds it: rewritten in place when the slot is filled again. */
export type SlotEntry<E> = { -readonly [K in keyof E]: E[K] };

export class TaggedTlb<E extends object> extends SetAssociativeStats {
  readonly cache: SetAssociativeCache;
  private readonly slotEntries: SlotEntry<E>[];
  /** Whether a slot holds an entry that is counted in `perShift`. */
  private readonly live: Uint8Array;
  /** Entries per page shift, and the shifts in use in ascending order: lookups try only those sizes. */
  // Stryker disable next-line ArithmeticOperator: no entry is 2^63 bytes
  private readonly perShift = new Uint32Array(MAX_SHIFT + 1);
  private shifts: number[] = [];

  /**
   * @param name where the geometry came from, for errors (`vtd.iotlb`)
   * @param newEntry makes one slot's entry object (called once per slot)
   */
  constructor(geometry: CacheGeometry, name: string, newEntry: () => E) {
    super();
    this.cache = new SetAssociativeCache(name, geometry, TAGS, (slot) => this.forget(slot));
    this.slotEntries = Array.from({ length: this.cache.capacity }, newEntry) as SlotEntry<E>[];
    this.live = new Uint8Array(this.cache.capacity);
  }

  /** The page sizes (log2) of the cached entries, ascending: the only sizes a lookup probes. */
  get pageShifts(): readonly number[] {
    return this.shifts;
  }

  /** The entry translating `address` for (kind, domain, space): the space's own entries first, then global ones. */
  find(kind: number, domain: number, space: number, address: number): E | undefined {
    const { cache, shifts } = this;
    const probe = cache.probe;
    probe[T_KIND] = kind;
    probe[T_DOMAIN] = domain;
    // Stryker disable next-line EqualityOperator: one probe past the end is of shift undefined, whose NaN set holds nothing
    for (let i = 0; i < shifts.length; i++) {
      const shift = shifts[i]!;
      const vpn = Math.floor(address / POW2[shift]!);
      const set = cache.setOf(vpn);
      probe[T_SPACE] = space;
      probe[T_SHIFT] = shift;
      probe[T_VPN] = vpn;
      let slot = cache.find(set);
      // Stryker disable next-line ConditionalExpression: for GLOBAL_SPACE the second probe repeats the first
      if (slot < 0 && space !== GLOBAL_SPACE) {
        probe[T_SPACE] = GLOBAL_SPACE;
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
   * same tags, else a free way, else the set's victim. Returns the slot's entry for the caller to write.
   */
  fill(kind: number, domain: number, space: number, address: number, pageShift: number): SlotEntry<E> {
    const { cache } = this;
    const vpn = Math.floor(address / POW2[pageShift]!);
    const probe = cache.probe;
    probe[T_KIND] = kind;
    probe[T_DOMAIN] = domain;
    probe[T_SPACE] = space;
    probe[T_SHIFT] = pageShift;
    probe[T_VPN] = vpn;
    const slot = cache.insert(cache.setOf(vpn));
    // The slot of an entry with the same tags is reused: stop counting the entry it replaces (an evicted
    // one was forgotten by the eviction callback).
    this.forget(slot);
    this.live[slot] = 1;
    const count = this.perShift[pageShift]!;
    this.perShift[pageShift] = count + 1;
    if (count === 0) this.shifts = this.presentShifts();
    return this.slotEntries[slot]!;
  }

  /** Drops the entries of `kinds` (bit k for kind k) of a domain, of every space; returns how many. */
  invalidateDomain(kinds: number, domain: number): number {
    return this.dropMatching(kinds, domain, ANY_SPACE);
  }

  /** Drops the non-global entries of `kinds` of (domain, space); returns how many. */
  invalidateSpace(kinds: number, domain: number, space: number): number {
    return this.dropMatching(kinds, domain, space);
  }

  /**
   * Drops the entries of `kinds` of a domain whose range overlaps [start, start + size): of one space and
   * the global ones, or of every space with {@link ANY_SPACE}. Visits, for each page size in use, only the
   * sets the range's page numbers select. Returns how many.
   */
  invalidateRange(kinds: number, domain: number, space: number, start: number, size: number): number {
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
          if (vpn < first || vpn > last || !this.owned(slot, kinds, domain)) continue;
          const entrySpace = cache.tag(slot, T_SPACE);
          if (space !== ANY_SPACE && entrySpace !== space && entrySpace !== GLOBAL_SPACE) continue;
          this.drop(slot);
          dropped++;
        }
      }
    }
    return dropped;
  }

  /** Drops everything; returns how many entries there were. */
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

  /** Is the entry in `slot` of one of `kinds`, and of `domain`? */
  private owned(slot: number, kinds: number, domain: number): boolean {
    return ((kinds >>> this.cache.tag(slot, T_KIND)) & 1) === 1 && this.cache.tag(slot, T_DOMAIN) === domain;
  }

  /** Drops every entry of `kinds` of `domain` with exactly `space` ({@link ANY_SPACE}: any); a scan of all sets. */
  private dropMatching(kinds: number, domain: number, space: number): number {
    let dropped = 0;
    // Stryker disable next-line EqualityOperator: the slot past the end is never valid
    for (let slot = 0; slot < this.cache.capacity; slot++) {
      if (!this.cache.isValid(slot) || !this.owned(slot, kinds, domain)) continue;
      if (space !== ANY_SPACE && this.cache.tag(slot, T_SPACE) !== space) continue;
      this.drop(slot);
      dropped++;
    }
    return dropped;
  }

  private drop(slot: number): void {
    this.forget(slot);
    this.cache.invalidateSlot(slot);
  }

  /** Stops counting the entry in `slot` (about to be replaced or dropped); its tags are still the old ones. */
  private forget(slot: number): void {
    if (this.live[slot] === 0) return;
    this.live[slot] = 0;
    const shift = this.cache.tag(slot, T_SHIFT);
    const left = this.perShift[shift]! - 1;
    this.perShift[shift] = left;
    if (left === 0) this.shifts = this.presentShifts();
  }

  private presentShifts(): number[] {
    const out: number[] = [];
    // Stryker disable next-line EqualityOperator: no entry is 2^63 bytes
    for (let shift = 0; shift <= MAX_SHIFT; shift++) if (this.perShift[shift]! > 0) out.push(shift);
    return out;
  }
}
