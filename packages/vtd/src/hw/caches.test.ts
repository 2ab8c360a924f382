import { describe, expect, it } from 'vitest';
import {
  IOTLB_FIRST,
  IOTLB_NESTED,
  IOTLB_SECOND,
  NO_PASID_TAG,
  type VtdCacheGeometry,
  VtdCaches,
} from './caches.js';

interface Ctx {
  did: number;
}
interface Pe {
  did: number;
}

const geometry: VtdCacheGeometry = {
  iotlb: { sets: 4, ways: 16, policy: 'lru' },
  context: { sets: 4, ways: 4, policy: 'lru' },
  pasid: { sets: 4, ways: 4, policy: 'lru' },
  pagingStructure: { sets: 4, ways: 4, policy: 'lru' },
};

function caches() {
  return new VtdCaches<Ctx, Pe>(geometry, { context: (e) => e.did, pasid: (e) => e.did });
}

/** IOTLB entries as `kind/did/pasid/page`. */
const leaves = (c: VtdCaches<Ctx, Pe>) =>
  c.iotlb
    .entries()
    .map((e) => `${e.level}`)
    .sort();

/** One 4 KiB leaf per (kind, DID, PASID), its `level` field naming it for the assertions. */
function filled() {
  const c = caches();
  const put = (name: number, kind: number, did: number, pasid: number, page: number) => {
    c.cacheLeaf(kind, did, pasid, page * 4096, 12).level = name;
  };
  put(1, IOTLB_SECOND, 5, NO_PASID_TAG, 0x10);
  put(2, IOTLB_SECOND, 5, NO_PASID_TAG, 0x11);
  put(3, IOTLB_FIRST, 5, 9, 0x10);
  put(4, IOTLB_FIRST, 5, NO_PASID_TAG, 0x20); // a global (G = 1) first-stage leaf
  put(5, IOTLB_NESTED, 5, 9, 0x10);
  put(6, IOTLB_SECOND, 6, NO_PASID_TAG, 0x10);
  put(7, IOTLB_FIRST, 5, 10, 0x10);
  return c;
}

describe('VtdCaches: which invalidation reaches which IOTLB entry', () => {
  it('IOTLB domain-selective: every translation of the DID, whatever its kind or PASID', () => {
    const c = filled();
    expect(c.invalidateIotlbDomain(5)).toBe(6);
    expect(leaves(c)).toEqual(['6']);
  });

  it('IOTLB page-selective: second-stage of the DID over the range; first-stage and nested of the DID at any address', () => {
    const c = filled();
    expect(c.invalidateIotlbPages(5, 0x10 * 4096, 4096, false)).toBe(5);
    expect(leaves(c)).toEqual(['2', '6']);
  });

  it('PASID-based: the first-stage and nested non-global entries of (DID, PASID)', () => {
    const c = filled();
    expect(c.invalidatePasidIotlb(5, 9)).toBe(2);
    expect(leaves(c)).toEqual(['1', '2', '4', '6', '7']);
  });

  it('PASID-based page-selective: global first-stage leaves in the range go too', () => {
    const c = filled();
    expect(c.invalidatePasidIotlbPages(5, 9, 0x20 * 4096, 4096, true)).toBe(1);
    expect(leaves(c)).toEqual(['1', '2', '3', '5', '6', '7']);
  });

  it('global: everything', () => {
    const c = filled();
    expect(c.invalidateIotlbGlobal()).toBe(7);
    expect(leaves(c)).toEqual([]);
  });
});

describe('VtdCaches: paging-structure caches', () => {
  function tables() {
    const c = caches();
    c.firstStageTables!.select(IOTLB_FIRST, 5, 9).fill(1, 21, 0x20_0000, 0x7000, 0);
    c.secondStageTables!.select(IOTLB_SECOND, 5, NO_PASID_TAG).fill(1, 21, 0x20_0000, 0x8000, 0);
    return c;
  }
  const firstFound = (c: VtdCaches<Ctx, Pe>) => c.firstStageTables!.select(IOTLB_FIRST, 5, 9).find(0x20_0000);
  const secondFound = (c: VtdCaches<Ctx, Pe>) =>
    c.secondStageTables!.select(IOTLB_SECOND, 5, NO_PASID_TAG).find(0x20_0000);

  it('an IOTLB invalidation drops second-stage tables unless IH says only leaves changed', () => {
    const c = tables();
    c.invalidateIotlbPages(5, 0x20_0000, 4096, true);
    expect(secondFound(c)).toBe(1);
    c.invalidateIotlbPages(5, 0x20_0000, 4096, false);
    expect(secondFound(c)).toBe(-1);
  });

  it("an IOTLB invalidation drops the DID's first-stage and nested first-stage tables, at any address", () => {
    for (const invalidate of [
      (c: VtdCaches<Ctx, Pe>) => c.invalidateIotlbPages(5, 0x7000_0000, 4096, true),
      (c: VtdCaches<Ctx, Pe>) => c.invalidateIotlbDomain(5),
    ]) {
      const c = tables();
      c.firstStageTables!.select(IOTLB_NESTED, 5, 9).fill(1, 21, 0x40_0000, 0x9000, 0);
      c.firstStageTables!.select(IOTLB_NESTED, 6, 9).fill(1, 21, 0x40_0000, 0x9000, 0);
      invalidate(c);
      expect(c.firstStageTables!.select(IOTLB_NESTED, 5, 9).find(0x40_0000)).toBe(-1);
      expect(c.firstStageTables!.select(IOTLB_NESTED, 6, 9).find(0x40_0000)).toBe(1);
      expect(firstFound(c)).toBe(-1);
    }
  });

  it('a PASID-based invalidation drops first-stage tables of the PASID, and leaves second-stage ones', () => {
    const c = tables();
    c.invalidatePasidIotlbPages(5, 9, 0x20_0000, 4096, true);
    expect(firstFound(c)).toBe(1);
    c.invalidatePasidIotlb(5, 9);
    expect(firstFound(c)).toBe(-1);
    expect(secondFound(c)).toBe(1);
  });

  it('a unit without paging-structure caches has none', () => {
    const c = new VtdCaches<Ctx, Pe>(
      { ...geometry, pagingStructure: undefined },
      {
        context: (e) => e.did,
        pasid: (e) => e.did,
      },
    );
    expect([c.firstStageTables, c.secondStageTables]).toEqual([undefined, undefined]);
    expect(c.invalidateIotlbGlobal()).toBe(0);
  });
});

describe('VtdCaches: context and PASID caches', () => {
  it('context: global, by domain, by device with the function mask', () => {
    const c = caches();
    const fill = () => {
      for (const [sid, did] of [
        [0x0100, 1],
        [0x0101, 1],
        [0x0107, 1],
        [0x0108, 1],
        [0x0200, 2],
      ] as const)
        c.context.set(sid, 0, { did });
    };
    fill();
    expect(c.invalidateContextDomain(1)).toBe(4);
    expect(c.invalidateContextGlobal()).toBe(1);
    fill();
    // FM = 1 ignores function bit 2: 01:00.1 takes 01:00.1 and 01:00.5 (neither here) — nothing else.
    expect(c.invalidateContextDevice(1, 0x0101, 1)).toBe(1);
    // FM = 3 ignores the three function bits: 01:00.0 and 01:00.7 go, 01:01.0 stays.
    expect(c.invalidateContextDevice(1, 0x0105, 3)).toBe(2);
    expect(c.context.peek(0x0108)).toEqual({ did: 1 });
    expect(c.invalidateContextDevice(1, 0x0108, 0)).toBe(1);
    expect(c.invalidateContextDevice(1, 0x0200, 0)).toBe(0);
    // FM = 2 ignores bits 2:1: 02:00.0 matches 02:00.6, not 02:00.1.
    c.context.set(0x0206, 0, { did: 2 });
    c.context.set(0x0201, 0, { did: 2 });
    expect(c.invalidateContextDevice(2, 0x0200, 2)).toBe(2);
    expect(c.context.peek(0x0201)).toEqual({ did: 2 });
    // Without a DID (scalable mode) the DID does not matter.
    expect(c.invalidateContextDevice(undefined, 0x0201, 0)).toBe(1);
    // A scalable-mode entry (no DID of its own) goes with any DID of its source ID.
    c.context.set(0x0300, 0, { did: -1 });
    expect(c.invalidateContextDevice(7, 0x0300, 0)).toBe(1);
    c.context.set(0x0300, 0, { did: -1 });
    expect(c.invalidateContextDomain(9)).toBe(1);
  });

  it('PASID: by DID and PASID, by DID, global', () => {
    const c = caches();
    c.pasid.set(0x100, 1, { did: 3 });
    c.pasid.set(0x100, 2, { did: 3 });
    c.pasid.set(0x200, 1, { did: 4 });
    expect(c.invalidatePasidDomain(3, 2)).toBe(1);
    expect(c.invalidatePasidDomain(3)).toBe(1);
    expect(c.invalidatePasidGlobal()).toBe(1);
  });

  it('reports every cache’s counters', () => {
    const c = filled();
    c.iotlb.find(IOTLB_SECOND, 5, NO_PASID_TAG, 0x10 * 4096);
    c.context.get(1);
    expect(c.stats()).toMatchObject({ iotlbHits: 1, iotlbMisses: 0, contextCacheMisses: 1 });
  });
});

describe('VtdCaches: geometry, tags and counters', () => {
  it('names the cache a bad geometry belongs to', () => {
    const bad = { sets: 4, ways: 3, policy: 'plru' } as const;
    const paths = (g: Partial<VtdCacheGeometry>) => {
      try {
        new VtdCaches<Ctx, Pe>({ ...geometry, ...g }, { context: (e) => e.did, pasid: (e) => e.did });
      } catch (e) {
        return (e as { issues: { path: string }[] }).issues.map((i) => i.path);
      }
      return [];
    };
    expect(paths({ iotlb: bad })).toEqual(['vtd IOTLB.ways']);
    expect(paths({ context: bad })).toEqual(['vtd context cache.ways']);
    expect(paths({ pasid: bad })).toEqual(['vtd PASID cache.ways']);
    expect(paths({ pagingStructure: bad })).toEqual(['vtd first-stage paging-structure cache.ways']);
  });

  it('a domain-selective context invalidation spares entries tagged DID 0 (cached faults) unless it names DID 0', () => {
    const c = caches();
    c.context.set(0x0100, 0, { did: 0 });
    c.context.set(0x0101, 0, { did: 5 });
    expect(c.invalidateContextDomain(5)).toBe(1);
    expect(c.context.peek(0x0100)).toEqual({ did: 0 });
    expect(c.invalidateContextDomain(0)).toBe(1);
  });

  it('without paging-structure caches every invalidation and the counters still work', () => {
    const c = new VtdCaches<Ctx, Pe>(
      { ...geometry, pagingStructure: undefined },
      { context: (e) => e.did, pasid: (e) => e.did },
    );
    c.cacheLeaf(IOTLB_FIRST, 5, 9, 0x10_000, 12);
    c.cacheLeaf(IOTLB_FIRST, 5, 9, 0x20_000, 12);
    expect(c.invalidatePasidIotlbPages(5, 9, 0x10_000, 4096, false)).toBe(1);
    expect(c.invalidatePasidIotlb(5, 9)).toBe(1);
    c.cacheLeaf(IOTLB_SECOND, 5, NO_PASID_TAG, 0x10_000, 12);
    c.cacheLeaf(IOTLB_SECOND, 5, NO_PASID_TAG, 0x20_000, 12);
    expect(c.invalidateIotlbPages(5, 0x10_000, 4096, false)).toBe(1);
    expect(c.invalidateIotlbDomain(5)).toBe(1);
    expect(c.stats()).toMatchObject({
      firstStagePscHits: 0,
      firstStagePscMisses: 0,
      secondStagePscHits: 0,
      secondStagePscMisses: 0,
    });
  });

  it('counts paging-structure cache hits and misses per stage', () => {
    const c = caches();
    const first = c.firstStageTables!.select(IOTLB_FIRST, 5, 9);
    const second = c.secondStageTables!.select(IOTLB_SECOND, 5, NO_PASID_TAG);
    first.fill(1, 21, 0x20_0000, 0x7000, 0);
    second.fill(1, 21, 0x20_0000, 0x8000, 0);
    first.find(0x20_0000);
    first.find(0x20_0000);
    first.find(0x4000_0000);
    second.find(0x20_0000);
    second.find(0x4000_0000);
    second.find(0x6000_0000);
    second.find(0x8000_0000);
    expect(c.stats()).toMatchObject({
      firstStagePscHits: 2,
      firstStagePscMisses: 1,
      secondStagePscHits: 1,
      secondStagePscMisses: 3,
    });
  });

  it('reports the PASID cache and IOTLB eviction counters', () => {
    const c = caches();
    c.pasid.set(0x100, 1, { did: 3 });
    c.pasid.get(0x100, 1);
    c.pasid.get(0x100, 2);
    c.pasid.get(0x100, 3);
    for (let page = 0; page < 17; page++) c.cacheLeaf(IOTLB_SECOND, 1, NO_PASID_TAG, page * 4 * 4096, 12);
    expect(c.stats()).toMatchObject({ pasidCacheHits: 1, pasidCacheMisses: 2, iotlbEvictions: 1 });
  });
});
