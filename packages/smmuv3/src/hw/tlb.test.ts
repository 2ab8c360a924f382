import { PERM_READ, PERM_WRITE, type ReplacementPolicy } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { cacheEntry } from '../../test/tlb-fixture.js';
import { ALL_GRANTS, stageGrants } from './grants.js';
import {
  ANY_ASID,
  emptyTlbEntry,
  GLOBAL_ASID,
  Smmuv3Tlb,
  TLB_ALL_KINDS,
  TLB_NH,
  TLB_S2,
  type TlbEntry,
} from './tlb.js';

const RW = PERM_READ | PERM_WRITE;

function leaf(over: Partial<TlbEntry> = {}): TlbEntry {
  return {
    kind: 's1',
    vmid: 1,
    asid: 7,
    inputBase: 0x10_0000,
    pageShift: 12,
    level: 3,
    outputBase: 0x8000_0000,
    ipaBase: 0x8000_0000,
    s1Grants: stageGrants(RW, RW),
    s2Grants: ALL_GRANTS,
    dirty: false,
    ...over,
  };
}

/** A fully associative TLB (one set) of `ways` entries. */
const full = (ways: number, policy: ReplacementPolicy = 'lru') =>
  new Smmuv3Tlb({ sets: 1, ways, policy }, 'tlb', emptyTlbEntry);

describe('Smmuv3Tlb lookups', () => {
  it('finds a leaf anywhere in the range it covers, by kind, VMID and ASID', () => {
    const tlb = full(8);
    cacheEntry(tlb, leaf({ inputBase: 0x20_0000, pageShift: 21, level: 2 }));
    expect(tlb.lookup('s1', 1, 7, 0x20_0000 + 0x1f_fff0)?.outputBase).toBe(0x8000_0000);
    expect(tlb.lookup('s1', 1, 7, 0x40_0000)).toBeUndefined();
    expect(tlb.lookup('s1', 2, 7, 0x20_0000)).toBeUndefined();
    expect(tlb.lookup('s1', 1, 8, 0x20_0000)).toBeUndefined();
    expect(tlb.lookup('s12', 1, 7, 0x20_0000)).toBeUndefined();
    expect([tlb.hits, tlb.misses]).toEqual([1, 4]);
  });

  it('returns the entry its slot holds: a hit builds nothing', () => {
    const tlb = full(4);
    const entry = leaf();
    cacheEntry(tlb, entry);
    const hit = tlb.lookup('s1', 1, 7, 0x10_0abc);
    expect(hit).toEqual(entry);
    expect(tlb.lookup('s1', 1, 7, 0x10_0000)).toBe(hit);
  });

  it('lets global (nG = 0) leaves match every ASID of their VMID, and prefers the ASID’s own entry', () => {
    const tlb = full(8);
    cacheEntry(tlb, leaf({ asid: GLOBAL_ASID, outputBase: 0x1000 }));
    expect(tlb.lookup('s1', 1, 99, 0x10_0000)?.outputBase).toBe(0x1000);
    cacheEntry(tlb, leaf({ asid: 99, outputBase: 0x2000 }));
    expect(tlb.lookup('s1', 1, 99, 0x10_0000)?.outputBase).toBe(0x2000);
    expect(tlb.lookup('s1', 2, 99, 0x10_0000)).toBeUndefined();
  });

  it('keeps input addresses of 52 bits exact', () => {
    const tlb = new Smmuv3Tlb({ sets: 64, ways: 4, policy: 'lru' }, 'tlb', emptyTlbEntry);
    const top = 2 ** 52 - 0x1000;
    cacheEntry(tlb, leaf({ inputBase: top, outputBase: 0x5000 }));
    expect(tlb.lookup('s1', 1, 7, top + 0xfff)?.outputBase).toBe(0x5000);
    expect(tlb.lookup('s1', 1, 7, top - 0x1000)).toBeUndefined();
  });

  it('ASID 1 is an ASID like any other, not global: it matches only itself', () => {
    const tlb = full(8);
    cacheEntry(tlb, leaf({ asid: 1 }));
    expect(tlb.lookup('s1', 1, 2, 0x10_0000)).toBeUndefined();
    expect(tlb.lookup('s1', 1, 1, 0x10_0000)).toBeDefined();
  });

  it('tries every page size present: a block found after the page size misses for its ASID', () => {
    const tlb = full(8);
    cacheEntry(tlb, leaf({ inputBase: 0x1000, pageShift: 12 }));
    cacheEntry(tlb, leaf({ inputBase: 0x20_0000, pageShift: 21, level: 2, outputBase: 0x9000_0000 }));
    expect(tlb.lookup('s1', 1, 7, 0x20_1234)?.outputBase).toBe(0x9000_0000);
    expect([tlb.hits, tlb.misses]).toEqual([1, 0]);
  });

  it('an entry stays reachable when another entry of its size is invalidated or replaced', () => {
    const tlb = full(8);
    cacheEntry(tlb, leaf({ inputBase: 0x1000 }));
    cacheEntry(tlb, leaf({ inputBase: 0x2000 }));
    cacheEntry(tlb, leaf({ inputBase: 0x2000, outputBase: 0x7000_0000 }));
    expect(tlb.size).toBe(2);
    expect(tlb.lookup('s1', 1, 7, 0x2000)?.outputBase).toBe(0x7000_0000);
    expect(tlb.invalidateRange(TLB_NH, 1, 7, 0x1000, 0x1000)).toBe(1);
    expect(tlb.lookup('s1', 1, 7, 0x2000)?.outputBase).toBe(0x7000_0000);
  });

  it('re-inserting the same tags replaces the entry without evicting', () => {
    const tlb = full(2);
    cacheEntry(tlb, leaf({ outputBase: 0x1000 }));
    cacheEntry(tlb, leaf({ outputBase: 0x2000 }));
    expect(tlb.size).toBe(1);
    expect(tlb.evictions).toBe(0);
    expect(tlb.lookup('s1', 1, 7, 0x10_0000)?.outputBase).toBe(0x2000);
  });
});

describe('Smmuv3Tlb capacity', () => {
  it('replaces least recently used entries at capacity; a lookup refreshes an entry', () => {
    const tlb = full(2);
    cacheEntry(tlb, leaf({ inputBase: 0x1000 }));
    cacheEntry(tlb, leaf({ inputBase: 0x2000 }));
    tlb.lookup('s1', 1, 7, 0x1000);
    cacheEntry(tlb, leaf({ inputBase: 0x3000, pageShift: 12 }));
    expect(tlb.lookup('s1', 1, 7, 0x2000)).toBeUndefined();
    expect(tlb.lookup('s1', 1, 7, 0x1000)).toBeDefined();
    expect(tlb.evictions).toBe(1);
  });

  it('evicts within the set a page number selects, while other sets have room (a conflict miss)', () => {
    const tlb = new Smmuv3Tlb({ sets: 4, ways: 2, policy: 'lru' }, 'tlb', emptyTlbEntry);
    // Pages 0, 4 and 8 all fall in set 0.
    for (const page of [0, 4, 8]) cacheEntry(tlb, leaf({ inputBase: page * 0x1000 }));
    expect(tlb.size).toBe(2);
    expect(tlb.evictions).toBe(1);
    expect(tlb.lookup('s1', 1, 7, 0)).toBeUndefined();
    cacheEntry(tlb, leaf({ inputBase: 0x1000 }));
    expect(tlb.evictions).toBe(1);
    expect(tlb.capacity).toBe(8);
  });

  it('stops trying a page size once no entry of that size is left (evicted or invalidated)', () => {
    const tlb = full(1);
    cacheEntry(tlb, leaf({ inputBase: 0, pageShift: 30, level: 1 }));
    cacheEntry(tlb, leaf({ inputBase: 0x1000 }));
    expect(tlb.lookup('s1', 1, 7, 0x4000_0000 - 1)).toBeUndefined();
    expect(tlb.invalidateVmid(TLB_ALL_KINDS, 1)).toBe(1);
    expect(tlb.size).toBe(0);
    expect(tlb.lookup('s1', 1, 7, 0x1000)).toBeUndefined();
    cacheEntry(tlb, leaf({ inputBase: 0, pageShift: 30, level: 1 }));
    expect(tlb.lookup('s1', 1, 7, 0x3fff_f000)).toBeDefined();
  });
});

describe('Smmuv3Tlb page sizes in use (what a lookup probes)', () => {
  it('lists each size once while an entry of it is cached, through replacement, eviction, invalidation and clear', () => {
    const tlb = full(2);
    expect(tlb.pageShifts).toEqual([]);
    cacheEntry(tlb, leaf({ inputBase: 0x20_0000, pageShift: 21, level: 2 }));
    cacheEntry(tlb, leaf({ inputBase: 0x1000 }));
    expect(tlb.pageShifts).toEqual([12, 21]);
    // Replacing the 2 MiB entry (same tags) keeps one 2 MiB entry, so dropping it leaves none.
    cacheEntry(tlb, leaf({ inputBase: 0x20_0000, pageShift: 21, level: 2, outputBase: 0x9000_0000 }));
    expect(tlb.invalidateRange(TLB_NH, 1, 7, 0x20_0000, 0x1000)).toBe(1);
    expect(tlb.pageShifts).toEqual([12]);
    // A full TLB evicts: the 4 KiB entry goes, and its size with it.
    cacheEntry(tlb, leaf({ inputBase: 0x4000_0000, pageShift: 30, level: 1 }));
    cacheEntry(tlb, leaf({ inputBase: 0x8000_0000, pageShift: 30, level: 1 }));
    expect(tlb.pageShifts).toEqual([30]);
    expect(tlb.invalidateAsid(TLB_NH, 1, 7)).toBe(2);
    expect(tlb.pageShifts).toEqual([]);
    cacheEntry(tlb, leaf());
    tlb.clear();
    expect(tlb.pageShifts).toEqual([]);
  });

  it('names itself in a geometry error', () => {
    expect(() => new Smmuv3Tlb({ sets: 0, ways: 1, policy: 'lru' }, 'tlb', emptyTlbEntry)).toThrow(/tlb/);
    expect(
      () => new Smmuv3Tlb({ sets: 0, ways: 1, policy: 'lru' }, 'stage-1 walk cache', emptyTlbEntry),
    ).toThrow(/stage-1 walk cache/);
  });
});

describe('Smmuv3Tlb invalidation', () => {
  function filled(): Smmuv3Tlb {
    const tlb = new Smmuv3Tlb({ sets: 8, ways: 4, policy: 'lru' }, 'tlb', emptyTlbEntry);
    cacheEntry(tlb, leaf({ inputBase: 0x1000 }));
    cacheEntry(tlb, leaf({ inputBase: 0x2000, asid: 8 }));
    cacheEntry(tlb, leaf({ inputBase: 0x3000, asid: GLOBAL_ASID }));
    cacheEntry(tlb, leaf({ inputBase: 0x4000, vmid: 2 }));
    cacheEntry(tlb, leaf({ inputBase: 0x5000, kind: 's12' }));
    cacheEntry(tlb, leaf({ inputBase: 0x6000, kind: 's2', asid: GLOBAL_ASID }));
    cacheEntry(tlb, leaf({ inputBase: 0x20_0000, pageShift: 21, level: 2 }));
    return tlb;
  }
  const bases = (tlb: Smmuv3Tlb) =>
    tlb
      .entries()
      .map((e) => e.inputBase)
      .sort((a, b) => a - b);

  it('by VMID, for the kinds asked (TLBI_NH_ALL leaves stage-2 entries, TLBI_S12_VMALL does not)', () => {
    const tlb = filled();
    expect(tlb.invalidateVmid(TLB_NH, 1)).toBe(5);
    expect(bases(tlb)).toEqual([0x4000, 0x6000]);
    expect(tlb.invalidateVmid(TLB_ALL_KINDS, 1)).toBe(1);
    expect(bases(tlb)).toEqual([0x4000]);
  });

  it('by ASID: that ASID’s entries only, never the global ones', () => {
    const tlb = filled();
    expect(tlb.invalidateAsid(TLB_NH, 1, 7)).toBe(3);
    expect(bases(tlb)).toEqual([0x2000, 0x3000, 0x4000, 0x6000]);
  });

  it('by address: the ASID’s and the global entries overlapping the range, blocks included', () => {
    const tlb = filled();
    expect(tlb.invalidateRange(TLB_NH, 1, 8, 0x2000, 0x2000)).toBe(2); // ASID 8's page and the global one
    expect(bases(tlb)).toEqual([0x1000, 0x4000, 0x5000, 0x6000, 0x20_0000]);
    expect(tlb.invalidateRange(TLB_NH, 1, 7, 0x3f_f000, 0x1000)).toBe(1); // the last page of the 2 MiB block
    expect(tlb.invalidateRange(TLB_NH, 1, 7, 0x40_0000, 0x1000)).toBe(0);
  });

  it('by address for every ASID (TLBI_NH_VAA), and stage 2 alone (TLBI_S2_IPA)', () => {
    const tlb = filled();
    expect(tlb.invalidateRange(TLB_S2, 1, ANY_ASID, 0, 0x10_0000)).toBe(1);
    expect(tlb.invalidateRange(TLB_NH, 1, ANY_ASID, 0, 0x10_0000)).toBe(4);
    expect(bases(tlb)).toEqual([0x4000, 0x20_0000]);
  });

  it('a range wider than the TLB visits every set once', () => {
    const tlb = new Smmuv3Tlb({ sets: 4, ways: 1, policy: 'lru' }, 'tlb', emptyTlbEntry);
    for (let page = 0; page < 4; page++) cacheEntry(tlb, leaf({ inputBase: page * 0x1000 }));
    expect(tlb.invalidateRange(TLB_NH, 1, 7, 0, 2 ** 40)).toBe(4);
    expect(tlb.size).toBe(0);
  });

  it('clear drops everything and reports how many', () => {
    const tlb = filled();
    expect(tlb.clear()).toBe(7);
    expect(tlb.entries()).toEqual([]);
    expect(tlb.lookup('s1', 1, 7, 0x1000)).toBeUndefined();
  });
});
