/**
 * A bounded cache with least-recently-used replacement, for modelled hardware caches (TLBs, config
 * caches, ATCs). Real caches have a capacity and evict; a model that only ever flushes everything would
 * hide the bugs a missing invalidation causes. A Map finds an entry's slot; the recency order is a list
 * threaded through typed arrays, so a hit moves one slot to the end without touching the Map.
 */
export class LruCache<K, V> {
  private readonly slots = new Map<K, number>();
  private readonly keys: (K | undefined)[];
  private readonly values: (V | undefined)[];
  /** The recency list through the slots, least recently used first (-1 ends it); `next` also links free slots. */
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private head = -1;
  private tail = -1;
  private freeHead = -1;
  /** Slots handed out at least once; the ones above are free and never linked. */
  private used = 0;
  hits = 0;
  misses = 0;
  evictions = 0;

  /** `onEvict` hears about entries dropped to make room (not about deletes or clears, which the caller makes). */
  constructor(
    readonly capacity: number,
    private readonly onEvict?: (key: K, value: V) => void,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0)
      throw new RangeError(`cache capacity ${capacity} must be a positive integer`);
    this.keys = new Array(capacity).fill(undefined);
    this.values = new Array(capacity).fill(undefined);
    this.prev = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
  }

  get size(): number {
    return this.slots.size;
  }

  /** Looks `key` up, counting a hit or a miss and refreshing its recency on a hit. */
  get(key: K): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) {
      this.misses++;
      return undefined;
    }
    this.unlink(slot);
    this.append(slot);
    this.hits++;
    return this.values[slot];
  }

  /** The value for `key` without counting a hit or miss or refreshing its recency. */
  peek(key: K): V | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.values[slot];
  }

  /** Inserts or replaces `key`, evicting the least recently used entry when full. */
  set(key: K, value: V): void {
    let slot = this.slots.get(key);
    if (slot !== undefined) {
      this.unlink(slot);
    } else if (this.slots.size >= this.capacity) {
      slot = this.head;
      const evictedKey = this.keys[slot] as K;
      const evicted = this.values[slot] as V;
      this.unlink(slot);
      this.slots.delete(evictedKey);
      this.evictions++;
      this.onEvict?.(evictedKey, evicted);
    } else {
      slot = this.freeHead >= 0 ? this.freeHead : this.used++;
      if (slot === this.freeHead) this.freeHead = this.next[slot]!;
    }
    this.keys[slot] = key;
    this.values[slot] = value;
    this.slots.set(key, slot);
    this.append(slot);
  }

  delete(key: K): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    this.release(slot);
    return true;
  }

  /** Drops every entry for which `match` is true; returns how many were dropped. */
  deleteWhere(match: (value: V, key: K) => boolean): number {
    let dropped = 0;
    for (let slot = this.head; slot >= 0; ) {
      const following = this.next[slot]!;
      if (match(this.values[slot] as V, this.keys[slot] as K)) {
        this.release(slot);
        dropped++;
      }
      slot = following;
    }
    return dropped;
  }

  clear(): number {
    const dropped = this.slots.size;
    this.slots.clear();
    this.keys.fill(undefined);
    this.values.fill(undefined);
    this.head = this.tail = this.freeHead = -1;
    this.used = 0;
    return dropped;
  }

  /** Entries from least to most recently used (for inspection; does not touch recency). */
  *[Symbol.iterator](): IterableIterator<[K, V]> {
    for (let slot = this.head; slot >= 0; slot = this.next[slot]!)
      yield [this.keys[slot] as K, this.values[slot] as V];
  }

  /** Unlinks `slot`, forgets its entry and puts it on the free list. */
  private release(slot: number): void {
    this.unlink(slot);
    this.slots.delete(this.keys[slot] as K);
    this.keys[slot] = undefined;
    this.values[slot] = undefined;
    this.next[slot] = this.freeHead;
    this.freeHead = slot;
  }

  private unlink(slot: number): void {
    const before = this.prev[slot]!;
    const after = this.next[slot]!;
    if (before >= 0) this.next[before] = after;
    else this.head = after;
    if (after >= 0) this.prev[after] = before;
    else this.tail = before;
  }

  /** Links `slot` as the most recently used. */
  private append(slot: number): void {
    this.prev[slot] = this.tail;
    this.next[slot] = -1;
    if (this.tail >= 0) this.next[this.tail] = slot;
    else this.head = slot;
    this.tail = slot;
  }
}
