import { PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { ALL_GRANTS, stageGrants } from './grants.js';
import { GLOBAL_ASID, overlaps, Smmuv3Tlb, type TlbEntry } from './tlb.js';

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

describe('Smmuv3Tlb', () => {
  it('finds a leaf anywhere in the range it covers, by kind, VMID and ASID', () => {
    const tlb = new Smmuv3Tlb(8);
    tlb.insert(leaf({ inputBase: 0x20_0000, pageShift: 21, level: 2 }));
    expect(tlb.lookup('s1', 1, 7, 0x20_0000 + 0x1f_fff0)?.outputBase).toBe(0x8000_0000);
    expect(tlb.lookup('s1', 1, 7, 0x40_0000)).toBeUndefined();
    expect(tlb.lookup('s1', 2, 7, 0x20_0000)).toBeUndefined();
    expect(tlb.lookup('s1', 1, 8, 0x20_0000)).toBeUndefined();
    expect(tlb.lookup('s12', 1, 7, 0x20_0000)).toBeUndefined();
    expect([tlb.hits, tlb.misses]).toEqual([1, 4]);
  });

  it('lets global (nG = 0) leaves match every ASID of their VMID, and prefers the ASID’s own entry', () => {
    const tlb = new Smmuv3Tlb(8);
    tlb.insert(leaf({ asid: GLOBAL_ASID, outputBase: 0x1000 }));
    expect(tlb.lookup('s1', 1, 99, 0x10_0000)?.outputBase).toBe(0x1000);
    tlb.insert(leaf({ asid: 99, outputBase: 0x2000 }));
    expect(tlb.lookup('s1', 1, 99, 0x10_0000)?.outputBase).toBe(0x2000);
    expect(tlb.lookup('s1', 2, 99, 0x10_0000)).toBeUndefined();
  });

  it('replaces least recently used entries at capacity; a lookup refreshes an entry', () => {
    const tlb = new Smmuv3Tlb(2);
    tlb.insert(leaf({ inputBase: 0x1000 }));
    tlb.insert(leaf({ inputBase: 0x2000 }));
    tlb.lookup('s1', 1, 7, 0x1000);
    tlb.insert(leaf({ inputBase: 0x3000, pageShift: 12 }));
    expect(tlb.lookup('s1', 1, 7, 0x2000)).toBeUndefined();
    expect(tlb.lookup('s1', 1, 7, 0x1000)).toBeDefined();
    expect(tlb.evictions).toBe(1);
  });

  it('stops trying a page size once no entry of that size is left (evicted or invalidated)', () => {
    const tlb = new Smmuv3Tlb(1);
    tlb.insert(leaf({ inputBase: 0, pageShift: 30, level: 1 }));
    tlb.insert(leaf({ inputBase: 0x1000 }));
    expect(tlb.lookup('s1', 1, 7, 0x4000_0000 - 1)).toBeUndefined();
    tlb.invalidate(() => true);
    expect(tlb.size).toBe(0);
    expect(tlb.lookup('s1', 1, 7, 0x1000)).toBeUndefined();
  });

  it('invalidates by predicate (the TLBI commands build on it) and reports how many entries went', () => {
    const tlb = new Smmuv3Tlb(8);
    tlb.insert(leaf({ inputBase: 0x1000 }));
    tlb.insert(leaf({ inputBase: 0x2000, asid: 8 }));
    tlb.insert(leaf({ inputBase: 0x3000, vmid: 2 }));
    expect(tlb.invalidate((e) => e.vmid === 1 && overlaps(e, 0x1800, 0x1000))).toBe(2);
    expect(tlb.entries().map((e) => e.vmid)).toEqual([2]);
    expect(tlb.clear()).toBe(1);
  });

  it('ASID 1 is an ASID like any other, not global: it matches only itself', () => {
    const tlb = new Smmuv3Tlb(8);
    tlb.insert(leaf({ asid: 1 }));
    expect(tlb.lookup('s1', 1, 2, 0x10_0000)).toBeUndefined();
    expect(tlb.lookup('s1', 1, 1, 0x10_0000)).toBeDefined();
  });

  it('tries every page size present: a block found after the page size misses for its ASID', () => {
    const tlb = new Smmuv3Tlb(8);
    tlb.insert(leaf({ inputBase: 0x1000, pageShift: 12 }));
    tlb.insert(leaf({ inputBase: 0x20_0000, pageShift: 21, level: 2, outputBase: 0x9000_0000 }));
    expect(tlb.lookup('s1', 1, 7, 0x20_1234)?.outputBase).toBe(0x9000_0000);
    expect([tlb.hits, tlb.misses]).toEqual([1, 0]);
  });

  it('an entry stays reachable when another entry of its size is invalidated or replaced', () => {
    const tlb = new Smmuv3Tlb(8);
    tlb.insert(leaf({ inputBase: 0x1000 }));
    tlb.insert(leaf({ inputBase: 0x2000 }));
    tlb.insert(leaf({ inputBase: 0x2000, outputBase: 0x7000_0000 }));
    expect(tlb.size).toBe(2);
    expect(tlb.lookup('s1', 1, 7, 0x2000)?.outputBase).toBe(0x7000_0000);
    expect(tlb.invalidate((e) => e.inputBase === 0x1000)).toBe(1);
    expect(tlb.lookup('s1', 1, 7, 0x2000)?.outputBase).toBe(0x7000_0000);
  });

  it('overlaps() compares the whole range a leaf covers', () => {
    const block = leaf({ inputBase: 0x20_0000, pageShift: 21 });
    expect([
      overlaps(block, 0x3f_f000, 0x1000),
      overlaps(block, 0x40_0000, 0x1000),
      overlaps(block, 0x1f_f000, 0x1000),
    ]).toEqual([true, false, false]);
  });
});
