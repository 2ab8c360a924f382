import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import { HitMemo } from './hit-memo.js';
import { SetAssociativeCache } from './set-associative-cache.js';

/** Two caches of one tag, 2 sets × 2 ways, LRU. */
function caches(): [SetAssociativeCache, SetAssociativeCache] {
  const make = () => new SetAssociativeCache('t', { sets: 2, ways: 2, policy: 'lru' }, 1);
  return [make(), make()];
}

function put(c: SetAssociativeCache, tag: number): void {
  c.probe[0] = tag;
  c.insert(c.setOf(tag));
}

function look(c: SetAssociativeCache, tag: number): number {
  c.probe[0] = tag;
  return c.lookup(c.setOf(tag));
}

const STATE = {};

describe('HitMemo', () => {
  it('needs a power of two of lines', () => {
    for (const lines of [0, 3, 1.5, 2 ** 21])
      expect(
        errnoOf(() => new HitMemo(lines, [])),
        String(lines),
      ).toBe('EINVAL');
    expect(() => new HitMemo(1, [])).not.toThrow();
  });

  it('replays the hits of a remembered translation: same counts, same recency', () => {
    const [a, b] = caches();
    const memo = new HitMemo<string>(4, [a, b]);
    put(a, 0);
    put(a, 2); // same set as 0
    put(b, 1);
    look(a, 0);
    look(b, 1);
    memo.record(7, 0, 9, 1, STATE, 0b11, 'result');
    expect([a.hits, b.hits]).toEqual([1, 1]);
    // Make 2 the most recent in a's set; the replay must make 0 the most recent again.
    look(a, 2);
    expect(memo.get(7, 0, 9, 1, STATE)).toBe('result');
    expect([a.hits, b.hits, a.misses]).toEqual([3, 2, 0]);
    expect(a.lastSet).toBe(0);
    put(a, 4); // evicts the least recently used of set 0: 2, not 0
    expect(look(a, 0)).toBeGreaterThanOrEqual(0);
    expect(look(a, 2)).toBe(-1);
  });

  it('replays only the caches the translation used', () => {
    const [a, b] = caches();
    const memo = new HitMemo<string>(4, [a, b]);
    put(a, 0);
    look(a, 0);
    memo.record(1, 2, 3, 4, STATE, 0b01, 'a only');
    expect(memo.get(1, 2, 3, 4, STATE)).toBe('a only');
    expect([a.hits, b.hits]).toEqual([2, 0]);
  });

  it('remembers nothing when a used cache missed', () => {
    const [a, b] = caches();
    const memo = new HitMemo<string>(4, [a, b]);
    put(a, 0);
    look(a, 0);
    look(b, 5); // a miss
    memo.record(1, 2, 3, 4, STATE, 0b11, 'partial');
    expect(memo.get(1, 2, 3, 4, STATE)).toBeUndefined();
  });

  it('forgets on any change of content, a different context, or a different request', () => {
    const [a, b] = caches();
    const memo = new HitMemo<string>(4, [a, b]);
    put(a, 0);
    put(b, 0);
    const remember = () => {
      look(a, 0);
      look(b, 0);
      memo.record(1, 2, 3, 4, STATE, 0b11, 'r');
    };
    remember();
    for (const [k0, k1, k2, k3] of [
      [0, 2, 3, 4],
      [1, 0, 3, 4],
      [1, 2, 0, 4],
      [1, 2, 3, 0],
    ] as const)
      expect(memo.get(k0, k1, k2, k3, STATE)).toBeUndefined();
    expect(memo.get(1, 2, 3, 4, {})).toBeUndefined();
    const hits = a.hits;
    put(b, 1); // an insert elsewhere may shadow the remembered entry
    expect(memo.get(1, 2, 3, 4, STATE)).toBeUndefined();
    expect(a.hits).toBe(hits);
    remember();
    a.invalidateSlot(a.lastSlot);
    expect(memo.get(1, 2, 3, 4, STATE)).toBeUndefined();
    put(a, 0);
    remember();
    b.clear();
    expect(memo.get(1, 2, 3, 4, STATE)).toBeUndefined();
  });

  it('keeps one request per line: a colliding request replaces the one before', () => {
    const [a] = caches();
    const memo = new HitMemo<string>(1, [a]);
    put(a, 0);
    look(a, 0);
    memo.record(1, 0, 0, 0, STATE, 1, 'first');
    look(a, 0);
    memo.record(2, 0, 0, 0, STATE, 1, 'second');
    expect(memo.get(1, 0, 0, 0, STATE)).toBeUndefined();
    expect(memo.get(2, 0, 0, 0, STATE)).toBe('second');
  });
});
