import { describe, expect, it } from 'vitest';
import type { ReplacementPolicy } from './set-associative-cache.js';
import { ANY_SPACE, GLOBAL_SPACE, TaggedTlb } from './tagged-tlb.js';

/** Kinds as a vendor numbers them, and the masks invalidations take. */
const S1 = 0;
const S2 = 1;
const S12 = 2;
const NH = (1 << S1) | (1 << S12);
const ONLY_S2 = 1 << S2;
const ALL = NH | ONLY_S2;

interface Entry {
  base: number;
  out: number;
}

interface Put {
  kind?: number;
  domain?: number;
  space?: number;
  base?: number;
  shift?: number;
  out?: number;
}

const tlbOf = (sets: number, ways: number, policy: ReplacementPolicy = 'lru') =>
  new TaggedTlb<Entry>({ sets, ways, policy }, 'tlb', () => ({ base: 0, out: 0 }));
/** A fully associative TLB (one set) of `ways` entries. */
const full = (ways: number) => tlbOf(1, ways);

/** Fills an entry (defaults: stage 1, domain 1, space 7, the 4 KiB page at 1 MiB). */
function put(tlb: TaggedTlb<Entry>, p: Put = {}): void {
  const base = p.base ?? 0x10_0000;
  const e = tlb.fill(p.kind ?? S1, p.domain ?? 1, p.space ?? 7, base, p.shift ?? 12);
  e.base = base;
  e.out = p.out ?? 0x8000_0000;
}

const find = (tlb: TaggedTlb<Entry>, address: number, space = 7, domain = 1, kind = S1) =>
  tlb.find(kind, domain, space, address)?.out;

describe('TaggedTlb lookups', () => {
  it('finds an entry anywhere in the range it covers, by kind, domain and space', () => {
    const tlb = full(8);
    put(tlb, { base: 0x20_0000, shift: 21 });
    expect(find(tlb, 0x20_0000 + 0x1f_fff0)).toBe(0x8000_0000);
    expect(find(tlb, 0x40_0000)).toBeUndefined();
    expect(find(tlb, 0x20_0000, 7, 2)).toBeUndefined();
    expect(find(tlb, 0x20_0000, 8)).toBeUndefined();
    expect(find(tlb, 0x20_0000, 7, 1, S12)).toBeUndefined();
    expect([tlb.hits, tlb.misses]).toEqual([1, 4]);
  });

  it('returns the object its slot holds: a hit builds nothing', () => {
    const tlb = full(4);
    put(tlb);
    const hit = tlb.find(S1, 1, 7, 0x10_0abc);
    expect(hit).toEqual({ base: 0x10_0000, out: 0x8000_0000 });
    expect(tlb.find(S1, 1, 7, 0x10_0000)).toBe(hit);
  });

  it('global entries match every space of their domain; a space’s own entry comes first', () => {
    const tlb = full(8);
    put(tlb, { space: GLOBAL_SPACE, out: 0x1000 });
    expect(find(tlb, 0x10_0000, 99)).toBe(0x1000);
    put(tlb, { space: 99, out: 0x2000 });
    expect(find(tlb, 0x10_0000, 99)).toBe(0x2000);
    expect(find(tlb, 0x10_0000, 99, 2)).toBeUndefined();
  });

  it('keeps input addresses of 52 bits exact', () => {
    const tlb = tlbOf(64, 4);
    const top = 2 ** 52 - 0x1000;
    put(tlb, { base: top, out: 0x5000 });
    expect(find(tlb, top + 0xfff)).toBe(0x5000);
    expect(find(tlb, top - 0x1000)).toBeUndefined();
  });

  it('space 1 is a space like any other, not global', () => {
    const tlb = full(8);
    put(tlb, { space: 1 });
    expect(find(tlb, 0x10_0000, 2)).toBeUndefined();
    expect(find(tlb, 0x10_0000, 1)).toBeDefined();
  });

  it('tries every page size present: a block is found after the page size misses', () => {
    const tlb = full(8);
    put(tlb, { base: 0x1000 });
    put(tlb, { base: 0x20_0000, shift: 21, out: 0x9000_0000 });
    expect(find(tlb, 0x20_1234)).toBe(0x9000_0000);
    expect([tlb.hits, tlb.misses]).toEqual([1, 0]);
  });

  it('re-filling the same tags reuses the slot without evicting', () => {
    const tlb = full(2);
    put(tlb, { out: 0x1000 });
    put(tlb, { out: 0x2000 });
    expect([tlb.size, tlb.evictions]).toEqual([1, 0]);
    expect(find(tlb, 0x10_0000)).toBe(0x2000);
  });
});

describe('TaggedTlb capacity', () => {
  it('replaces the least recently used entry of a full set; a lookup refreshes an entry', () => {
    const tlb = full(2);
    put(tlb, { base: 0x1000 });
    put(tlb, { base: 0x2000 });
    find(tlb, 0x1000);
    put(tlb, { base: 0x3000 });
    expect(find(tlb, 0x2000)).toBeUndefined();
    expect(find(tlb, 0x1000)).toBeDefined();
    expect(tlb.evictions).toBe(1);
  });

  it('evicts within the set a page number selects while other sets have room (a conflict miss)', () => {
    const tlb = tlbOf(4, 2);
    // Pages 0, 4 and 8 all fall in set 0.
    for (const page of [0, 4, 8]) put(tlb, { base: page * 0x1000 });
    expect([tlb.size, tlb.evictions]).toEqual([2, 1]);
    expect(find(tlb, 0)).toBeUndefined();
    put(tlb, { base: 0x1000 });
    expect([tlb.evictions, tlb.capacity]).toEqual([1, 8]);
  });

  it('lists each page size once while an entry of it is cached, through replacement, eviction, invalidation and clear', () => {
    const tlb = full(2);
    expect(tlb.pageShifts).toEqual([]);
    put(tlb, { base: 0x20_0000, shift: 21 });
    put(tlb, { base: 0x1000 });
    expect(tlb.pageShifts).toEqual([12, 21]);
    // Refilling the 2 MiB entry (same tags) keeps one 2 MiB entry, so dropping it leaves none.
    put(tlb, { base: 0x20_0000, shift: 21, out: 0x9000_0000 });
    expect(tlb.invalidateRange(NH, 1, 7, 0x20_0000, 0x1000)).toBe(1);
    expect(tlb.pageShifts).toEqual([12]);
    // A full TLB evicts: the 4 KiB entry goes, and its size with it.
    put(tlb, { base: 0x4000_0000, shift: 30 });
    put(tlb, { base: 0x8000_0000, shift: 30 });
    expect(tlb.pageShifts).toEqual([30]);
    expect(tlb.invalidateSpace(NH, 1, 7)).toBe(2);
    expect(tlb.pageShifts).toEqual([]);
    put(tlb);
    tlb.clear();
    expect(tlb.pageShifts).toEqual([]);
  });

  it('stops probing a page size once no entry of it is left', () => {
    const tlb = full(1);
    put(tlb, { base: 0, shift: 30 });
    put(tlb, { base: 0x1000 });
    expect(find(tlb, 0x4000_0000 - 1)).toBeUndefined();
    expect(tlb.invalidateDomain(ALL, 1)).toBe(1);
    expect(find(tlb, 0x1000)).toBeUndefined();
    put(tlb, { base: 0, shift: 30 });
    expect(find(tlb, 0x3fff_f000)).toBeDefined();
  });

  it('names itself in a geometry error', () => {
    expect(() => new TaggedTlb({ sets: 0, ways: 1, policy: 'lru' }, 'vtd.iotlb', () => ({}))).toThrow(
      /vtd\.iotlb/,
    );
  });
});

describe('TaggedTlb invalidation', () => {
  function filled(): TaggedTlb<Entry> {
    const tlb = tlbOf(8, 4);
    put(tlb, { base: 0x1000 });
    put(tlb, { base: 0x2000, space: 8 });
    put(tlb, { base: 0x3000, space: GLOBAL_SPACE });
    put(tlb, { base: 0x4000, domain: 2 });
    put(tlb, { base: 0x5000, kind: S12 });
    put(tlb, { base: 0x6000, kind: S2, space: GLOBAL_SPACE });
    put(tlb, { base: 0x20_0000, shift: 21 });
    return tlb;
  }
  const bases = (tlb: TaggedTlb<Entry>) =>
    tlb
      .entries()
      .map((e) => e.base)
      .sort((a, b) => a - b);

  it('by domain, for the kinds asked', () => {
    const tlb = filled();
    expect(tlb.invalidateDomain(NH, 1)).toBe(5);
    expect(bases(tlb)).toEqual([0x4000, 0x6000]);
    expect(tlb.invalidateDomain(ALL, 1)).toBe(1);
    expect(bases(tlb)).toEqual([0x4000]);
  });

  it('by space: that space’s entries only, never the global ones', () => {
    const tlb = filled();
    expect(tlb.invalidateSpace(NH, 1, 7)).toBe(3);
    expect(bases(tlb)).toEqual([0x2000, 0x3000, 0x4000, 0x6000]);
  });

  it('by address: the space’s and the global entries overlapping the range, blocks included', () => {
    const tlb = filled();
    expect(tlb.invalidateRange(NH, 1, 8, 0x2000, 0x2000)).toBe(2);
    expect(bases(tlb)).toEqual([0x1000, 0x4000, 0x5000, 0x6000, 0x20_0000]);
    expect(tlb.invalidateRange(NH, 1, 7, 0x3f_f000, 0x1000)).toBe(1); // the last page of the 2 MiB block
    expect(tlb.invalidateRange(NH, 1, 7, 0x40_0000, 0x1000)).toBe(0);
  });

  it('by address for every space, and for one kind alone', () => {
    const tlb = filled();
    expect(tlb.invalidateRange(ONLY_S2, 1, ANY_SPACE, 0, 0x10_0000)).toBe(1);
    expect(tlb.invalidateRange(NH, 1, ANY_SPACE, 0, 0x10_0000)).toBe(4);
    expect(bases(tlb)).toEqual([0x4000, 0x20_0000]);
  });

  it('a range wider than the TLB visits every set once', () => {
    const tlb = tlbOf(4, 1);
    for (let page = 0; page < 4; page++) put(tlb, { base: page * 0x1000 });
    expect(tlb.invalidateRange(NH, 1, 7, 0, 2 ** 40)).toBe(4);
    expect(tlb.size).toBe(0);
  });

  it('clear drops everything and reports how many', () => {
    const tlb = filled();
    expect(tlb.clear()).toBe(7);
    expect(tlb.entries()).toEqual([]);
    expect(find(tlb, 0x1000)).toBeUndefined();
  });
});
