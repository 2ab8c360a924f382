import { ALL_GRANTS, PERM_READ, PERM_WRITE, type ReplacementPolicy, stageGrants } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { cacheEntry } from '../../test/tlb-fixture.js';
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
});

describe('Smmuv3Tlb insert', () => {
  it('writes the tags into the slot’s entry: the input base aligned down to the entry’s size', () => {
    const tlb = full(4);
    const entry = tlb.insert('s12', 3, 9, 0x20_1234, 21);
    expect(entry).toMatchObject({ kind: 's12', vmid: 3, asid: 9, inputBase: 0x20_0000, pageShift: 21 });
    expect(tlb.lookup('s12', 3, 9, 0x3f_ffff)).toBe(entry);
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
    expect(tlb.invalidateDomain(TLB_NH, 1)).toBe(5);
    expect(bases(tlb)).toEqual([0x4000, 0x6000]);
    expect(tlb.invalidateDomain(TLB_ALL_KINDS, 1)).toBe(1);
    expect(bases(tlb)).toEqual([0x4000]);
  });

  it('by ASID: that ASID’s entries only, never the global ones', () => {
    const tlb = filled();
    expect(tlb.invalidateSpace(TLB_NH, 1, 7)).toBe(3);
    expect(bases(tlb)).toEqual([0x2000, 0x3000, 0x4000, 0x6000]);
  });

  it('by address for every ASID (TLBI_NH_VAA), and stage 2 alone (TLBI_S2_IPA)', () => {
    const tlb = filled();
    expect(tlb.invalidateRange(TLB_S2, 1, ANY_ASID, 0, 0x10_0000)).toBe(1);
    expect(tlb.invalidateRange(TLB_NH, 1, ANY_ASID, 0, 0x10_0000)).toBe(4);
    expect(bases(tlb)).toEqual([0x4000, 0x20_0000]);
  });
});
