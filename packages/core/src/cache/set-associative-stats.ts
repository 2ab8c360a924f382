/**
 * The size and counters of a cache built on a {@link SetAssociativeCache} (a TLB, a walk cache, a
 * configuration cache): what `stats()` reports, read from the tags' cache so no wrapper repeats them.
 */
import type { SetAssociativeCache } from './set-associative-cache.js';

export abstract class SetAssociativeStats {
  /** The tags and slots behind the cache (also what a HitMemo replays hits on). */
  abstract readonly cache: SetAssociativeCache;

  get capacity(): number {
    return this.cache.capacity;
  }

  get size(): number {
    return this.cache.size;
  }

  get hits(): number {
    return this.cache.hits;
  }

  get misses(): number {
    return this.cache.misses;
  }

  get evictions(): number {
    return this.cache.evictions;
  }
}
