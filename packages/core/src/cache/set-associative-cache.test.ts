import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors/config-error.js';
import {
  type CacheGeometry,
  cacheOptionProblem,
  plruSupports,
  type ReplacementPolicy,
  SetAssociativeCache,
} from './set-associative-cache.js';

/** A cache with tags (a, b): a is the "page", b an "ASID". */
function cache(geometry: Partial<CacheGeometry> = {}, onEvict?: (slot: number) => void) {
  return new SetAssociativeCache('test.cache', { sets: 1, ways: 4, policy: 'lru', ...geometry }, 2, onEvict);
}

function put(c: SetAssociativeCache, a: number, b = 0): number {
  c.probe[0] = a;
  c.probe[1] = b;
  return c.insert(c.setOf(a));
}

function get(c: SetAssociativeCache, a: number, b = 0): number {
  c.probe[0] = a;
  c.probe[1] = b;
  return c.lookup(c.setOf(a));
}

/** The first tag of every valid slot, in slot order. */
function pages(c: SetAssociativeCache): number[] {
  return c.slots().map((slot) => c.tag(slot, 0));
}

describe('SetAssociativeCache geometry', () => {
  it.each([
    [{ sets: 0 }, 'test.cache.sets'],
    [{ ways: 1.5 }, 'test.cache.ways'],
    [{ ways: 3, policy: 'plru' as const }, 'test.cache.ways'],
    [{ ways: 64, policy: 'plru' as const }, 'test.cache.ways'],
    [{ policy: 'fifo' as ReplacementPolicy }, 'test.cache.policy'],
  ])('refuses %o with a ConfigError naming %s', (geometry, path) => {
    const error = (() => {
      try {
        cache(geometry);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual([path]);
  });

  it('refuses a tag count outside 1…31', () => {
    expect(() => new SetAssociativeCache('t', { sets: 1, ways: 1, policy: 'lru' }, 0)).toThrow(ConfigError);
    expect(() => new SetAssociativeCache('t', { sets: 1, ways: 1, policy: 'lru' }, 32)).toThrow(ConfigError);
  });

  it('holds sets × ways entries, each set filling only its own ways', () => {
    const c = cache({ sets: 4, ways: 2 });
    expect(c.capacity).toBe(8);
    for (const page of [0, 4, 8, 1]) put(c, page);
    // pages 0, 4 and 8 share set 0 (2 ways): 0 is evicted although sets 1–3 have room.
    expect(c.evictions).toBe(1);
    expect(c.size).toBe(3);
    expect(pages(c).sort((x, y) => x - y)).toEqual([1, 4, 8]);
    expect(get(c, 0)).toBe(-1);
  });

  it('keeps page numbers of 64-bit addresses exact', () => {
    const c = cache({ sets: 8 });
    const page = 2 ** 52 - 1;
    const slot = put(c, page);
    expect(get(c, page)).toBe(slot);
    expect(get(c, page - 1)).toBe(-1);
    expect(c.tag(slot, 0)).toBe(page);
  });
});

describe('SetAssociativeCache lookups and inserts', () => {
  it('matches every tag, counts hits and misses', () => {
    const c = cache();
    const slot = put(c, 7, 1);
    expect(get(c, 7, 1)).toBe(slot);
    expect(get(c, 7, 2)).toBe(-1);
    expect(get(c, 8, 1)).toBe(-1);
    expect({ hits: c.hits, misses: c.misses }).toEqual({ hits: 1, misses: 2 });
  });

  it('a way whose last tag matches but an earlier one differs is not a hit', () => {
    const c = new SetAssociativeCache('test.cache', { sets: 1, ways: 4, policy: 'lru' }, 3);
    const insert = (a: number, b: number, page: number) => {
      c.probe.set([a, b, page]);
      return c.insert(0);
    };
    const slots = [insert(1, 2, 9), insert(1, 3, 9), insert(4, 2, 9)];
    for (const [k, tags] of [
      [1, 2, 9],
      [1, 3, 9],
      [4, 2, 9],
    ].entries()) {
      c.probe.set(tags!);
      expect(c.find(0)).toBe(slots[k]);
    }
    c.probe.set([4, 3, 9]);
    expect(c.find(0)).toBe(-1);
  });

  it('find neither counts nor refreshes; hit does both', () => {
    const c = cache({ ways: 2 });
    const a = put(c, 1);
    put(c, 2);
    c.probe[0] = 1;
    expect(c.find(0)).toBe(a);
    expect(c.hits + c.misses).toBe(0);
    put(c, 3); // 1 was not refreshed by find: it is the LRU victim
    expect(pages(c).sort()).toEqual([2, 3]);
    const two = get(c, 2);
    c.hit(0, two);
    expect(c.hits).toBe(2);
  });

  it('re-inserting the same tags reuses the slot without evicting', () => {
    const c = cache({ ways: 2 });
    const slot = put(c, 5);
    put(c, 6);
    expect(put(c, 5)).toBe(slot);
    expect(c.evictions).toBe(0);
    expect(c.size).toBe(2);
  });

  it('reports the slot it is about to replace, with its old tags still readable', () => {
    const evicted: number[] = [];
    const c = cache({ ways: 2 }, (slot) => evicted.push(c.tag(slot, 0)));
    put(c, 1);
    put(c, 2);
    put(c, 3);
    expect(evicted).toEqual([1]);
    expect(c.evictions).toBe(1);
  });

  it('remembers the set and slot of the last hit, and forgets the slot on a miss', () => {
    const c = cache({ sets: 4, ways: 2 });
    const slot = put(c, 6);
    expect(get(c, 6)).toBe(slot);
    expect([c.lastSet, c.lastSlot]).toEqual([2, slot]);
    expect(get(c, 7)).toBe(-1);
    expect(c.lastSlot).toBe(-1);
    c.hit(2, slot);
    expect([c.lastSet, c.lastSlot, c.hits]).toEqual([2, slot, 2]);
    c.miss();
    expect([c.lastSlot, c.misses]).toEqual([-1, 2]);
  });

  it('replayHit counts a hit and refreshes the way unless it was the last one hit', () => {
    for (const policy of ['lru', 'plru'] as const) {
      const c = cache({ ways: 2, policy });
      const one = put(c, 1);
      const two = put(c, 2);
      expect(get(c, 1)).toBe(one);
      c.replayHit(0, one); // the last hit again: counted only
      expect([c.hits, c.lastSlot]).toEqual([2, one]);
      c.replayHit(0, two); // another way: counted and refreshed, so 1 is now the victim
      expect([c.hits, c.lastSlot]).toEqual([3, two]);
      put(c, 3);
      expect(pages(c).sort(), policy).toEqual([2, 3]);
    }
  });

  it('moves its version on every change of content and on no lookup', () => {
    const c = cache({ ways: 2 });
    const versions: number[] = [c.version];
    const slot = put(c, 1);
    versions.push(c.version);
    put(c, 1); // the same tags again still rewrites the entry
    versions.push(c.version);
    get(c, 1);
    get(c, 9);
    c.probe[0] = 1;
    c.find(0);
    c.hit(0, slot);
    c.miss();
    versions.push(c.version);
    c.invalidateSlot(slot);
    versions.push(c.version);
    c.invalidateSlot(slot); // already free: nothing changes
    versions.push(c.version);
    put(c, 2);
    c.clear();
    versions.push(c.version);
    expect(versions).toEqual([0, 1, 2, 2, 3, 3, 5]);
  });

  it('fills an invalidated way before evicting', () => {
    const c = cache({ ways: 2 });
    const one = put(c, 1);
    put(c, 2);
    c.invalidateSlot(one);
    put(c, 3);
    expect(c.evictions).toBe(0);
    expect(pages(c).sort()).toEqual([2, 3]);
  });
});

describe('SetAssociativeCache replacement', () => {
  it('lru replaces the least recently used way', () => {
    const c = cache({ ways: 3 });
    put(c, 1);
    put(c, 2);
    put(c, 3);
    get(c, 1);
    put(c, 4);
    expect(pages(c).sort()).toEqual([1, 3, 4]);
  });

  it('plru follows the tree: after using ways 0, 1, 2, 3 in order the victim is way 0, then way 2', () => {
    const c = cache({ ways: 4, policy: 'plru' });
    const slots = [1, 2, 3, 4].map((p) => put(c, p));
    expect(slots).toEqual([0, 1, 2, 3]);
    expect(put(c, 5)).toBe(0);
    // way 0 just used: the root points right, and that subtree's last use was way 3.
    expect(put(c, 6)).toBe(2);
    expect(pages(c)).toEqual([5, 2, 6, 4]);
  });

  it('plru never evicts the way used last', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 200 }), (refs) => {
        const c = cache({ ways: 8, policy: 'plru' });
        let last = -1;
        for (const page of refs) {
          const evicting = c.size === c.capacity && get(c, page) < 0;
          const slot = put(c, page);
          if (evicting) expect(slot).not.toBe(last);
          last = slot;
        }
      }),
    );
  });

  it('random is deterministic for a seed and differs between seeds', () => {
    const victims = (seed: number) => {
      const c = cache({ ways: 8, policy: 'random', seed });
      return Array.from({ length: 40 }, (_, i) => put(c, i));
    };
    expect(victims(7)).toEqual(victims(7));
    expect(victims(7)).not.toEqual(victims(8));
    expect(new Set(victims(7).slice(8)).size).toBeGreaterThan(1);
  });

  it('lru agrees with a reference model of per-set recency lists', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.tuple(fc.constantFrom('get', 'put', 'inv'), fc.integer({ min: 0, max: 23 })), {
          maxLength: 120,
        }),
        (sets, ways, ops) => {
          const c = cache({ sets, ways });
          const model = Array.from({ length: sets }, () => [] as number[]); // least recent first
          for (const [op, page] of ops) {
            const list = model[page % sets]!;
            const at = list.indexOf(page);
            if (op === 'get') {
              expect(get(c, page) >= 0).toBe(at >= 0);
              if (at >= 0) list.push(...list.splice(at, 1));
            } else if (op === 'put') {
              put(c, page);
              if (at >= 0) list.splice(at, 1);
              else if (list.length === ways) list.shift();
              list.push(page);
            } else {
              c.probe[0] = page;
              c.invalidateMatching(0b01, c.setOf(page));
              if (at >= 0) list.splice(at, 1);
            }
          }
          expect(pages(c).sort((x, y) => x - y)).toEqual(model.flat().sort((x, y) => x - y));
          expect(c.size).toBe(model.flat().length);
        },
      ),
    );
  });
});

describe('SetAssociativeCache invalidation', () => {
  it('by tag mask: in one set, or across every set', () => {
    const c = cache({ sets: 4, ways: 2 });
    for (const page of [0, 1, 2, 3]) put(c, page, 1);
    for (const page of [4, 5]) put(c, page, 2);
    c.probe[1] = 1;
    expect(c.invalidateMatching(0b10, 1)).toBe(1); // ASID 1 in set 1 only: page 1
    expect(pages(c).sort()).toEqual([0, 2, 3, 4, 5]);
    expect(c.invalidateMatching(0b10)).toBe(3); // ASID 1 everywhere
    expect(pages(c).sort()).toEqual([4, 5]);
    expect(c.invalidations).toBe(4);
  });

  it('a mask of 0 matches every valid entry; a free slot is never counted', () => {
    const c = cache({ sets: 2, ways: 2 });
    put(c, 0);
    put(c, 1);
    expect(c.invalidateMatching(0)).toBe(2);
    expect(c.invalidateMatching(0)).toBe(0);
    c.invalidateSlot(0);
    expect(c.invalidations).toBe(2);
  });

  it('by predicate, visiting only valid slots of the chosen set', () => {
    const c = cache({ sets: 2, ways: 2 });
    for (const page of [0, 1, 2, 3]) put(c, page);
    const seen: number[] = [];
    const dropped = c.invalidateWhere((slot) => {
      seen.push(c.tag(slot, 0));
      return c.tag(slot, 0) >= 2;
    }, 0);
    expect(seen.sort()).toEqual([0, 2]);
    expect(dropped).toBe(1);
    expect(c.invalidateWhere((slot) => c.tag(slot, 0) === 3)).toBe(1);
    expect(pages(c).sort()).toEqual([0, 1]);
  });

  it('clear drops everything, keeps hit and miss counters, and resets replacement state', () => {
    const c = cache({ ways: 2, policy: 'plru' });
    put(c, 1);
    get(c, 1);
    get(c, 9);
    expect(c.clear()).toBe(1);
    expect(c.size).toBe(0);
    expect(c.slots()).toEqual([]);
    expect({ hits: c.hits, misses: c.misses, invalidations: c.invalidations }).toEqual({
      hits: 1,
      misses: 1,
      invalidations: 1,
    });
    expect([put(c, 2), put(c, 3), put(c, 4)]).toEqual([0, 1, 0]);
  });
});

describe('plruSupports', () => {
  it('accepts powers of two from 1 to 32 ways, nothing else', () => {
    expect([1, 2, 4, 8, 16, 32].every(plruSupports)).toBe(true);
    expect([0, -4, 3, 6, 64, 1.5, Number.NaN].some(plruSupports)).toBe(false);
  });
});

describe('cacheOptionProblem', () => {
  it('refuses entries that are no whole number of sets, and pseudo-LRU on a way count it cannot manage', () => {
    expect(cacheOptionProblem('tlbEntries', 96, 8, 'plru')).toBeUndefined();
    expect(cacheOptionProblem('tlbEntries', 100, 8, 'lru')).toBe(
      'tlbEntries 100 is not a whole number of sets of 8 ways',
    );
    expect(cacheOptionProblem('tlbEntries', 96, 6, 'plru')).toBe(
      'pseudo-LRU needs a power of two up to 32 ways (got 6)',
    );
    expect(cacheOptionProblem('tlbEntries', 96, 6, 'random')).toBeUndefined();
    expect(cacheOptionProblem('pdcEntries', 0, 6, 'plru')).toBeUndefined();
  });
});
