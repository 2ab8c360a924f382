/**
 * A configuration cache: decoded in-memory structures (SMMUv3 STEs and CDs, VT-d context and PASID
 * entries, AMD DTEs) kept by the numbers that find them — a StreamID, a (StreamID, SubstreamID) pair, a
 * source ID and a PASID — on the shared set-associative geometry. The tags live in the cache's typed
 * array and the decoded objects in an array beside it, so a hit compares numbers and allocates nothing.
 *
 * The set of a key is (first + second) mod sets: entries of one device spread over the sets by their
 * second number, and a lookup or an exact invalidation visits one set.
 */
import { type CacheGeometry, SetAssociativeCache } from './set-associative-cache.js';
import { SetAssociativeStats } from './set-associative-stats.js';

const FIRST = 0;
const SECOND = 1;

export class EntryCache<V> extends SetAssociativeStats {
  readonly cache: SetAssociativeCache;
  private readonly values: (V | undefined)[];

  /** @param name where the geometry came from, for errors (`smmuv3 STE cache`) */
  constructor(name: string, geometry: CacheGeometry) {
    super();
    this.cache = new SetAssociativeCache(name, geometry, 2);
    this.values = new Array(this.cache.capacity).fill(undefined);
  }

  /** The entry for (`first`, `second`), counting a hit (and refreshing it) or a miss. */
  get(first: number, second = 0): V | undefined {
    const slot = this.cache.lookup(this.probe(first, second));
    return slot < 0 ? undefined : this.values[slot];
  }

  /**
   * The entry for (`first`, `second`) when `accept(entry, arg)` holds, counted as a hit and refreshed;
   * otherwise undefined, counted as a miss. One search, for caches whose entries answer only some lookups
   * (an ATC entry answers the accesses it grants).
   */
  getIf<A>(first: number, second: number, accept: (value: V, arg: A) => boolean, arg: A): V | undefined {
    const set = this.probe(first, second);
    const slot = this.cache.find(set);
    if (slot >= 0 && accept(this.values[slot]!, arg)) {
      this.cache.hit(set, slot);
      return this.values[slot];
    }
    this.cache.miss();
    return undefined;
  }

  /** The entry without counting or refreshing it (for inspection). */
  peek(first: number, second = 0): V | undefined {
    const slot = this.cache.find(this.probe(first, second));
    return slot < 0 ? undefined : this.values[slot];
  }

  /** Stores `value` for (`first`, `second`), replacing its old entry or, in a full set, the policy's victim. */
  set(first: number, second: number, value: V): void {
    this.values[this.cache.insert(this.probe(first, second))] = value;
  }

  /** Drops the entry for (`first`, `second`); whether there was one. */
  delete(first: number, second = 0): boolean {
    const slot = this.cache.find(this.probe(first, second));
    if (slot < 0) return false;
    this.drop(slot);
    return true;
  }

  /** Drops every entry whose first number is `first` (all the CDs of a StreamID); returns how many. */
  deleteFirst(first: number): number {
    return this.deleteWhere((f) => f === first);
  }

  /** Drops every entry for which `match` is true; returns how many. */
  deleteWhere(match: (first: number, second: number, value: V) => boolean): number {
    let dropped = 0;
    for (let slot = 0; slot < this.cache.capacity; slot++) {
      if (!this.cache.isValid(slot)) continue;
      if (match(this.cache.tag(slot, FIRST), this.cache.tag(slot, SECOND), this.values[slot]!)) {
        this.drop(slot);
        dropped++;
      }
    }
    return dropped;
  }

  /** Drops everything; returns how many entries there were. */
  clear(): number {
    this.values.fill(undefined);
    return this.cache.clear();
  }

  /** The entries as [first, second, value], in slot order (for inspection, not for hot paths). */
  entries(): [first: number, second: number, value: V][] {
    return this.cache
      .slots()
      .map((slot) => [this.cache.tag(slot, FIRST), this.cache.tag(slot, SECOND), this.values[slot]!]);
  }

  /** Fills the probe with the key and returns its set. */
  private probe(first: number, second: number): number {
    const probe = this.cache.probe;
    probe[FIRST] = first;
    probe[SECOND] = second;
    return this.cache.setOf(first + second);
  }

  private drop(slot: number): void {
    this.cache.invalidateSlot(slot);
    this.values[slot] = undefined;
  }
}
