/**
 * A bounded cache with least-recently-used replacement, for modelled hardware caches (TLBs, config
 * caches, ATCs). Real caches have a capacity and evict; a model that only ever flushes everything would
 * hide the bugs a missing invalidation causes. Map insertion order is the recency order.
 */
export class LruCache<K, V> {
  private readonly entries = new Map<K, V>();
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
  }

  get size(): number {
    return this.entries.size;
  }

  /** Looks `key` up, counting a hit or a miss and refreshing its recency on a hit. */
  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) {
      this.misses++;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, value);
    this.hits++;
    return value;
  }

  /** The value for `key` without counting a hit or miss or refreshing its recency. */
  peek(key: K): V | undefined {
    return this.entries.get(key);
  }

  /** Inserts or replaces `key`, evicting the least recently used entry when full. */
  set(key: K, value: V): void {
    if (!this.entries.delete(key) && this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next();
      // Stryker disable next-line ConditionalExpression: a full cache (capacity ≥ 1) always has an oldest entry
      if (!oldest.done) {
        const evicted = this.entries.get(oldest.value)!;
        this.entries.delete(oldest.value);
        this.evictions++;
        this.onEvict?.(oldest.value, evicted);
      }
    }
    this.entries.set(key, value);
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  /** Drops every entry for which `match` is true; returns how many were dropped. */
  deleteWhere(match: (value: V, key: K) => boolean): number {
    let dropped = 0;
    for (const [key, value] of this.entries) {
      if (match(value, key)) {
        this.entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  clear(): number {
    const dropped = this.entries.size;
    this.entries.clear();
    return dropped;
  }

  /** Entries from least to most recently used (for inspection; does not touch recency). */
  *[Symbol.iterator](): IterableIterator<[K, V]> {
    yield* this.entries;
  }
}
