import { describe, expect, it } from 'vitest';
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '../iommu/translation.js';
import { AddressTranslationCache, type AtcEntry, atcGrants } from './atc.js';

const RW = PERM_READ | PERM_WRITE;

function entry(iovaPfn: number, overrides: Partial<AtcEntry> = {}): AtcEntry {
  return {
    pasid: 1,
    iovaPfn,
    privileged: false,
    pfn: 0x100 + iovaPfn,
    perm: RW,
    pageShift: 12,
    ...overrides,
  };
}

describe('atcGrants', () => {
  it('a completion covers an access when it grants each of its R/W/Exe bits; Priv is not a permission', () => {
    expect(atcGrants(RW, PERM_READ)).toBe(true);
    expect(atcGrants(RW, PERM_WRITE | PERM_PRIV)).toBe(true);
    expect(atcGrants(PERM_READ, PERM_WRITE)).toBe(false);
    expect(atcGrants(PERM_WRITE, PERM_READ)).toBe(false);
    expect(atcGrants(PERM_READ, PERM_READ | PERM_EXEC)).toBe(false);
    expect(atcGrants(PERM_READ | PERM_EXEC, PERM_READ | PERM_EXEC)).toBe(true);
    expect(atcGrants(0, PERM_PRIV)).toBe(true);
  });
});

describe('AddressTranslationCache', () => {
  it('a lookup hits the entry of its PASID, page and privilege level, counting hits and misses', () => {
    const atc = new AddressTranslationCache(4);
    expect(atc.lookup(1, 5)).toBeUndefined();
    atc.insert(entry(5));
    expect(atc.lookup(1, 5)).toEqual(entry(5));
    expect(atc.lookup(2, 5)).toBeUndefined();
    expect(atc.lookup(1, 6)).toBeUndefined();
    expect(atc.lookup(1, 5, PERM_READ | PERM_PRIV)).toBeUndefined();
    expect({ hits: atc.hits, misses: atc.misses, size: atc.size }).toEqual({ hits: 1, misses: 4, size: 1 });
  });

  it('an entry that lacks a permission the access needs is a miss', () => {
    const atc = new AddressTranslationCache(4);
    atc.insert(entry(5, { perm: PERM_READ }));
    expect(atc.lookup(1, 5, PERM_WRITE)).toBeUndefined();
    expect(atc.lookup(1, 5, PERM_READ | PERM_EXEC)).toBeUndefined();
    expect(atc.lookup(1, 5, PERM_READ)).toMatchObject({ pfn: 0x105 });
    expect({ hits: atc.hits, misses: atc.misses }).toEqual({ hits: 1, misses: 2 });
  });

  it('keeps one entry per privilege level; inserting again replaces it', () => {
    const atc = new AddressTranslationCache(4);
    atc.insert(entry(5, { privileged: true, pfn: 0xaaa }));
    atc.insert(entry(5, { pfn: 0xbbb }));
    expect(atc.size).toBe(2);
    expect(atc.lookup(1, 5, PERM_READ | PERM_PRIV)?.pfn).toBe(0xaaa);
    expect(atc.lookup(1, 5, PERM_READ)?.pfn).toBe(0xbbb);
    atc.insert(entry(5, { pfn: 0xccc }));
    expect(atc.size).toBe(2);
    expect(atc.lookup(1, 5)?.pfn).toBe(0xccc);
  });

  it('keeps every PASID and privilege level of a page apart, NO_PASID included', () => {
    const atc = new AddressTranslationCache(8);
    const keys = [
      [-1, false],
      [-1, true],
      [0, false],
      [1, true],
      [3, false],
      [3, true],
    ] as const;
    for (const [i, [pasid, privileged]] of keys.entries())
      atc.insert(entry(5, { pasid, privileged, pfn: 0x200 + i }));
    expect(atc.size).toBe(keys.length);
    for (const [i, [pasid, privileged]] of keys.entries())
      expect(atc.lookup(pasid, 5, PERM_READ | (privileged ? PERM_PRIV : 0))?.pfn).toBe(0x200 + i);
  });

  it('replaces the least recently used entry when full; a hit makes an entry recent', () => {
    const atc = new AddressTranslationCache(2);
    atc.insert(entry(1));
    atc.insert(entry(2));
    atc.lookup(1, 1);
    atc.insert(entry(3));
    expect(atc.size).toBe(2);
    expect(atc.lookup(1, 2)).toBeUndefined();
    expect(atc.lookup(1, 1)).toBeDefined();
    expect(atc.lookup(1, 3)).toBeDefined();
  });

  it('a lookup that misses on permissions does not make the entry recent', () => {
    const atc = new AddressTranslationCache(2);
    atc.insert(entry(1, { perm: PERM_READ }));
    atc.insert(entry(2));
    atc.lookup(1, 1, PERM_WRITE);
    atc.insert(entry(3));
    expect(atc.lookup(1, 1)).toBeUndefined();
    expect(atc.lookup(1, 2)).toBeDefined();
  });

  it('invalidates the pages [iova, iova + size) touches, at one PASID or all, both privilege levels', () => {
    const atc = new AddressTranslationCache(16);
    for (const pfn of [1, 2, 3, 4]) atc.insert(entry(pfn));
    atc.insert(entry(2, { privileged: true }));
    atc.insert(entry(3, { pasid: 9 }));
    // 0x2800 + 0x1000 ends at 0x37ff: pages 2 and 3 at PASID 1, both levels.
    expect(atc.invalidate(1, 0x2800n, 0x1000n)).toBe(3);
    expect(atc.lookup(1, 1)).toBeDefined();
    expect(atc.lookup(1, 4)).toBeDefined();
    expect(atc.lookup(9, 3)).toBeDefined();
    expect(atc.lookup(1, 2)).toBeUndefined();
    expect(atc.lookup(1, 3)).toBeUndefined();
    // One byte at the start of page 4, every PASID.
    atc.insert(entry(4, { pasid: 9 }));
    expect(atc.invalidate(undefined, 0x4000n, 1n)).toBe(2);
    expect(atc.lookup(1, 4)).toBeUndefined();
    expect(atc.lookup(9, 4)).toBeUndefined();
    expect(atc.lookup(9, 3)).toBeDefined();
    expect(atc.invalidations).toBe(2);
  });

  it('a size of 2^64 invalidates the whole space, the last page included', () => {
    const atc = new AddressTranslationCache(16);
    const lastPfn = 2 ** 52 - 1;
    atc.insert(entry(0));
    atc.insert(entry(lastPfn));
    expect(atc.invalidate(1, 0n, 1n << 64n)).toBe(2);
    expect(atc.size).toBe(0);
  });

  it('clear empties it (ATS disabled)', () => {
    const atc = new AddressTranslationCache(4);
    atc.insert(entry(1));
    atc.insert(entry(2));
    atc.clear();
    expect(atc.size).toBe(0);
    expect(atc.lookup(1, 1)).toBeUndefined();
  });
});
