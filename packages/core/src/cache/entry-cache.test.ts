import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors/config-error.js';
import { EntryCache } from './entry-cache.js';
import type { CacheGeometry } from './set-associative-cache.js';

function cache(geometry: Partial<CacheGeometry> = {}) {
  return new EntryCache<string>('test.config', { sets: 4, ways: 2, policy: 'lru', ...geometry });
}

const keys = (c: EntryCache<string>) =>
  c
    .entries()
    .map(([a, b, v]) => `${a}.${b}=${v}`)
    .sort();

describe('EntryCache', () => {
  it('refuses a geometry the set-associative cache refuses, naming it', () => {
    expect(() => cache({ ways: 0 })).toThrow(ConfigError);
    expect(() => cache({ ways: 0 })).toThrow(/test\.config\.ways/);
  });

  it('keeps entries by two numbers, the second defaulting to 0, and counts hits and misses', () => {
    const c = cache();
    expect(c.capacity).toBe(8);
    c.set(5, 0, 'ste5');
    c.set(5, 1, 'cd5.1');
    c.set(2 ** 32 - 1, 2 ** 20 - 1, 'far');
    expect(c.get(5)).toBe('ste5');
    expect(c.get(5, 1)).toBe('cd5.1');
    expect(c.get(2 ** 32 - 1, 2 ** 20 - 1)).toBe('far');
    expect(c.get(1, 5)).toBeUndefined();
    expect(c.get(5, 2)).toBeUndefined();
    expect([c.hits, c.misses, c.size]).toEqual([3, 2, 3]);
    expect(c.peek(5, 1)).toBe('cd5.1');
    expect(c.peek(6)).toBeUndefined();
    expect([c.hits, c.misses]).toEqual([3, 2]);
  });

  it('getIf answers only entries the predicate accepts, counting a refused one as a miss', () => {
    const c = cache({ sets: 1, ways: 2 });
    c.set(1, 0, 'read');
    c.set(2, 0, 'write');
    const is = (value: string, want: string) => value === want;
    expect(c.getIf(1, 0, is, 'write')).toBeUndefined();
    expect(c.getIf(3, 0, is, 'read')).toBeUndefined();
    expect([c.hits, c.misses]).toEqual([0, 2]);
    // A refused lookup does not refresh the entry: 1 stays the least recently used and is replaced first.
    c.set(4, 0, 'new');
    expect(keys(c)).toEqual(['2.0=write', '4.0=new']);
    // An accepted one does: 2 is kept when 5 comes.
    expect(c.getIf(2, 0, is, 'write')).toBe('write');
    expect([c.hits, c.misses]).toEqual([1, 2]);
    c.set(5, 0, 'newer');
    expect(keys(c)).toEqual(['2.0=write', '5.0=newer']);
  });

  it('replaces the entry of a key in place', () => {
    const c = cache();
    c.set(3, 4, 'old');
    c.set(3, 4, 'new');
    expect(keys(c)).toEqual(['3.4=new']);
    expect(c.evictions).toBe(0);
  });

  it('evicts within a set by the policy: the least recently used of (first + second) mod sets', () => {
    const c = cache();
    // 1.0, 0.1 and 5.0 all fall in set 1 (of 4), which has 2 ways.
    c.set(1, 0, 'a');
    c.set(0, 1, 'b');
    expect(c.get(1, 0)).toBe('a');
    c.set(5, 0, 'c');
    expect(keys(c)).toEqual(['1.0=a', '5.0=c']);
    expect(c.evictions).toBe(1);
    // Other sets are untouched by set 1's traffic.
    c.set(2, 0, 'd');
    expect(keys(c)).toEqual(['1.0=a', '2.0=d', '5.0=c']);
  });

  it('deletes one key, every entry of a first number, or what a predicate picks, returning how many', () => {
    const c = cache({ sets: 8, ways: 4 });
    for (const sid of [1, 2, 3]) for (const ssid of [0, 1, 2]) c.set(sid, ssid, `${sid * 10 + ssid}`);
    expect(c.delete(2, 1)).toBe(true);
    expect(c.delete(2, 1)).toBe(false);
    expect(c.get(2, 1)).toBeUndefined();
    expect(c.deleteFirst(1)).toBe(3);
    expect(c.deleteFirst(1)).toBe(0);
    expect(keys(c)).toEqual(['2.0=20', '2.2=22', '3.0=30', '3.1=31', '3.2=32']);
    expect(c.deleteWhere((sid, ssid, value) => sid === 3 && ssid > 0 && value.startsWith('3'))).toBe(2);
    expect(keys(c)).toEqual(['2.0=20', '2.2=22', '3.0=30']);
    expect(c.clear()).toBe(3);
    expect(c.size).toBe(0);
    expect(c.get(2, 0)).toBeUndefined();
  });

  it('finds what it holds and drops what it was told to, for any sequence of operations', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), a: fc.nat(20), b: fc.nat(3), v: fc.nat(99) }),
      fc.record({ kind: fc.constant('delete' as const), a: fc.nat(20), b: fc.nat(3) }),
      fc.record({ kind: fc.constant('deleteFirst' as const), a: fc.nat(20) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        // Large enough never to evict, so it must behave as a map.
        const c = new EntryCache<number>('t', { sets: 16, ways: 32, policy: 'plru' });
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            c.set(o.a, o.b, o.v);
            model.set(`${o.a}.${o.b}`, o.v);
          } else if (o.kind === 'delete') {
            expect(c.delete(o.a, o.b)).toBe(model.delete(`${o.a}.${o.b}`));
          } else {
            const gone = [...model.keys()].filter((k) => k.startsWith(`${o.a}.`));
            for (const k of gone) model.delete(k);
            expect(c.deleteFirst(o.a)).toBe(gone.length);
          }
        }
        expect(c.size).toBe(model.size);
        for (let a = 0; a <= 20; a++)
          for (let b = 0; b <= 3; b++) expect(c.peek(a, b)).toBe(model.get(`${a}.${b}`));
      }),
    );
  });
});
