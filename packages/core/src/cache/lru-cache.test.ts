import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LruCache } from './lru-cache.js';

function keys<K, V>(cache: LruCache<K, V>): K[] {
  return [...cache].map(([k]) => k);
}

describe('LruCache', () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects capacity %s', (capacity) => {
    expect(() => new LruCache(capacity)).toThrow(RangeError);
  });

  it('never holds more than its capacity', () => {
    const cache = new LruCache<number, string>(3);
    for (let i = 0; i < 10; i++) cache.set(i, `v${i}`);
    expect(cache.size).toBe(3);
    expect(cache.evictions).toBe(7);
    expect(keys(cache)).toEqual([7, 8, 9]);
  });

  it('evicts the least recently used entry, and a get refreshes recency', () => {
    const cache = new LruCache<string, number>(3);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect(cache.get('a')).toBe(1);
    cache.set('d', 4);
    expect(keys(cache)).toEqual(['c', 'a', 'd']);
    expect(cache.get('b')).toBeUndefined();
    cache.set('e', 5);
    expect(keys(cache)).toEqual(['a', 'd', 'e']);
  });

  it('replacing a key refreshes it without evicting', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 10);
    expect(cache.evictions).toBe(0);
    expect(cache.size).toBe(2);
    cache.set('c', 3);
    expect(keys(cache)).toEqual(['a', 'c']);
    expect(cache.get('a')).toBe(10);
  });

  it('counts hits, misses and evictions', () => {
    const cache = new LruCache<number, number>(1);
    expect(cache.get(1)).toBeUndefined();
    cache.set(1, 100);
    expect(cache.get(1)).toBe(100);
    expect(cache.get(1)).toBe(100);
    cache.set(2, 200);
    expect(cache.get(1)).toBeUndefined();
    expect({ hits: cache.hits, misses: cache.misses, evictions: cache.evictions }).toEqual({
      hits: 2,
      misses: 2,
      evictions: 1,
    });
  });

  it('iterating does not change recency or counters', () => {
    const cache = new LruCache<number, number>(2);
    cache.set(1, 1);
    cache.set(2, 2);
    expect(keys(cache)).toEqual([1, 2]);
    expect(keys(cache)).toEqual([1, 2]);
    expect(cache.hits + cache.misses).toBe(0);
    cache.set(3, 3);
    expect(keys(cache)).toEqual([2, 3]);
  });

  it('delete removes one entry', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    expect(cache.delete('a')).toBe(true);
    expect(cache.delete('a')).toBe(false);
    expect(cache.size).toBe(0);
  });

  it('deleteWhere drops the matching entries and returns how many', () => {
    const cache = new LruCache<string, { domain: number }>(8);
    const entries = [
      ['a', 1],
      ['b', 2],
      ['c', 1],
      ['d', 3],
      ['e', 1],
    ] as const;
    for (const [key, domain] of entries) cache.set(key, { domain });
    expect(cache.deleteWhere((v) => v.domain === 1)).toBe(3);
    expect(keys(cache)).toEqual(['b', 'd']);
    expect(cache.deleteWhere((_v, k) => k === 'd')).toBe(1);
    expect(keys(cache)).toEqual(['b']);
    expect(cache.deleteWhere(() => false)).toBe(0);
  });

  it('clear empties the cache, keeps the counters, and returns how many entries it dropped', () => {
    const cache = new LruCache<number, number>(4);
    cache.set(1, 1);
    cache.set(2, 2);
    cache.get(1);
    expect(cache.clear()).toBe(2);
    expect(cache.size).toBe(0);
    expect(cache.get(1)).toBeUndefined();
    expect(cache.hits).toBe(1);
    expect(cache.clear()).toBe(0);
  });

  it('behaves like a reference LRU model for any sequence of gets, sets, deletes and clears', () => {
    const op = fc.record({
      kind: fc.constantFrom('get', 'get', 'set', 'set', 'delete', 'drop-odd', 'clear'),
      key: fc.integer({ min: 0, max: 7 }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 80 }), (capacity, ops) => {
        const cache = new LruCache<number, number>(capacity);
        // Reference model: keys ordered from least to most recently used, and each key's value.
        let order: number[] = [];
        const values = new Map<number, number>();
        let evictions = 0;
        for (const [i, { kind, key }] of ops.entries()) {
          const at = order.indexOf(key);
          if (kind === 'set') {
            cache.set(key, i);
            if (at >= 0) order.splice(at, 1);
            else if (order.length === capacity) {
              values.delete(order.shift()!);
              evictions++;
            }
            order.push(key);
            values.set(key, i);
          } else if (kind === 'get') {
            expect(cache.get(key)).toBe(at >= 0 ? values.get(key) : undefined);
            if (at >= 0) order.push(...order.splice(at, 1));
          } else if (kind === 'delete') {
            expect(cache.delete(key)).toBe(at >= 0);
            if (at >= 0) order.splice(at, 1);
          } else if (kind === 'drop-odd') {
            const odd = order.filter((k) => k % 2 === 1);
            expect(cache.deleteWhere((_v, k) => k % 2 === 1)).toBe(odd.length);
            order = order.filter((k) => k % 2 === 0);
          } else {
            expect(cache.clear()).toBe(order.length);
            order = [];
          }
          expect(keys(cache)).toEqual(order);
          expect(cache.size).toBe(order.length);
        }
        expect(cache.evictions).toBe(evictions);
      }),
    );
  });
});

describe('LruCache.peek and onEvict', () => {
  it('peek neither counts nor refreshes recency', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.peek('a')).toBe(1);
    expect(cache.peek('zz')).toBeUndefined();
    expect([cache.hits, cache.misses]).toEqual([0, 0]);
    cache.set('c', 3); // 'a' is still the least recently used
    expect(cache.peek('a')).toBeUndefined();
  });

  it('onEvict hears about capacity evictions only', () => {
    const evicted: [string, number][] = [];
    const cache = new LruCache<string, number>(2, (k, v) => evicted.push([k, v]));
    cache.set('a', 1);
    cache.set('b', 2);
    cache.delete('a');
    cache.set('c', 3);
    cache.set('d', 4);
    cache.clear();
    expect(evicted).toEqual([['b', 2]]);
  });
});
