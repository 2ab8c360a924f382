/**
 * Which command reaches which cache (caches.ts): each leaf is named by its `level` field, so an assertion
 * lists exactly the entries a command left.
 */
import { describe, expect, it } from 'vitest';
import {
  type AmdCacheGeometry,
  AmdCaches,
  HOST_SPACE,
  IOTLB_GUEST,
  IOTLB_HOST,
  IOTLB_NESTED,
  KINDS_GUEST,
  KINDS_HOST,
  KINDS_NESTED,
} from './caches.js';

const geometry: AmdCacheGeometry = {
  deviceTable: { sets: 4, ways: 4, policy: 'lru' },
  gcr3: { sets: 4, ways: 4, policy: 'lru' },
  iotlb: { sets: 4, ways: 16, policy: 'lru' },
  pageDirectory: { sets: 4, ways: 4, policy: 'lru' },
};

const leaves = (c: AmdCaches<unknown>) =>
  c.iotlb
    .entries()
    .map((e) => e.level)
    .sort((a, b) => a - b);

/**
 * Leaves: 1 host page 1 of domain 5; 2 host page 9 of domain 5; 3 host page 1 of domain 6; 4 guest PASID 2
 * page 1 of domain 5; 5 guest PASID 3 page 1 of domain 5; 6 nested PASID 2 page 1 of domain 5; 7 nested
 * PASID 2 page 1 of domain 6.
 */
function filled() {
  const c = new AmdCaches<{ id: number }>(geometry);
  const put = (name: number, kind: number, domain: number, space: number, page: number) => {
    c.cacheLeaf(kind, domain, space, page * 4096, 12).level = name;
  };
  put(1, IOTLB_HOST, 5, HOST_SPACE, 1);
  put(2, IOTLB_HOST, 5, HOST_SPACE, 9);
  put(3, IOTLB_HOST, 6, HOST_SPACE, 1);
  put(4, IOTLB_GUEST, 5, 2, 1);
  put(5, IOTLB_GUEST, 5, 3, 1);
  put(6, IOTLB_NESTED, 5, 2, 1);
  put(7, IOTLB_NESTED, 6, 2, 1);
  c.deviceTable.set(0x10, 0, { id: 0x10 });
  c.deviceTable.set(0x11, 0, { id: 0x11 });
  c.gcr3.set(0x10, 2, { domainId: 5, guestCr3: 0x1000 });
  c.gcr3.set(0x10, 3, { domainId: 5, guestCr3: 0x2000 });
  c.gcr3.set(0x11, 2, { domainId: 6, guestCr3: 0x3000 });
  return c;
}

describe('AMD IOMMU caches', () => {
  it('INVALIDATE_DEVTAB_ENTRY drops the DTE and the GCR3 entries of that device only', () => {
    const c = filled();
    expect(c.invalidateDevice(0x10)).toBe(1);
    expect(c.deviceTable.peek(0x10)).toBeUndefined();
    expect(c.deviceTable.peek(0x11)).toEqual({ id: 0x11 });
    expect(c.gcr3.peek(0x10, 2)).toBeUndefined();
    expect(c.gcr3.peek(0x10, 3)).toBeUndefined();
    expect(c.gcr3.peek(0x11, 2)).toBeDefined();
    expect(leaves(c)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(c.invalidateDevice(0x10)).toBe(0);
  });

  it('GN = 0: host leaves of the domain in range, every guest-over-host leaf and GCR3 entry of the domain', () => {
    const c = filled();
    expect(c.invalidateHostPages(5, 0x1000, 0x1000, false)).toBe(2);
    expect(leaves(c)).toEqual([2, 3, 4, 5, 7]);
    expect(c.gcr3.peek(0x10, 2)).toBeUndefined();
    expect(c.gcr3.peek(0x10, 3)).toBeUndefined();
    expect(c.gcr3.peek(0x11, 2)).toBeDefined();
  });

  it('GN = 1: guest and guest-over-host leaves of (domain, PASID) in range, and that PASID’s GCR3 entries', () => {
    const c = filled();
    expect(c.invalidateGuestPages(5, 2, 0, 0x10_0000, false)).toBe(2);
    expect(leaves(c)).toEqual([1, 2, 3, 5, 7]);
    expect(c.gcr3.peek(0x10, 2)).toBeUndefined();
    expect(c.gcr3.peek(0x10, 3)).toBeDefined();
    expect(c.gcr3.peek(0x11, 2)).toBeDefined();
    expect(c.invalidateGuestPages(5, 3, 0x2000, 0x1000, false)).toBe(0);
    expect(leaves(c)).toEqual([1, 2, 3, 5, 7]);
  });

  it('PDE = 1 reaches the page directory caches as the leaves: host range, guest (domain, PASID) range', () => {
    const c = filled();
    const host = c.hostTables!;
    const guest = c.guestTables!;
    host.select(IOTLB_HOST, 5, HOST_SPACE).fill(2, 21, 0, 0xa000, 0);
    host.select(IOTLB_HOST, 5, HOST_SPACE).fill(2, 21, 0x20_0000, 0xb000, 0);
    guest.select(IOTLB_NESTED, 5, 2).fill(2, 21, 0x4000_0000, 0xc000, 0);
    guest.select(IOTLB_GUEST, 5, 3).fill(2, 21, 0, 0xd000, 0);
    c.invalidateHostPages(5, 0, 0x1000, false);
    expect(host.entries.entries()).toHaveLength(2);
    c.invalidateHostPages(5, 0, 0x1000, true);
    expect(host.entries.entries().map((e) => e.table)).toEqual([0xb000]);
    expect(guest.entries.entries().map((e) => e.table)).toEqual([0xd000]);
    c.invalidateGuestPages(5, 3, 0x40_0000, 0x1000, true);
    expect(guest.entries.entries()).toHaveLength(1);
    c.invalidateGuestPages(5, 3, 0, 0x1000, true);
    expect(guest.entries.entries()).toHaveLength(0);
  });

  it('INVALIDATE_IOMMU_ALL empties every cache', () => {
    const c = filled();
    c.hostTables!.select(IOTLB_HOST, 5, HOST_SPACE).fill(2, 21, 0, 0xa000, 0);
    c.guestTables!.select(IOTLB_GUEST, 5, 2).fill(2, 21, 0, 0xd000, 0);
    expect(c.invalidateAll()).toBe(7);
    expect(leaves(c)).toEqual([]);
    expect(c.deviceTable.entries()).toEqual([]);
    expect(c.gcr3.entries()).toEqual([]);
    expect(c.hostTables!.entries.entries()).toEqual([]);
    expect(c.guestTables!.entries.entries()).toEqual([]);
  });

  it('a unit without page directory caches has none, and invalidations do not need them', () => {
    const c = new AmdCaches<unknown>({ ...geometry, pageDirectory: undefined });
    expect(c.hostTables).toBeUndefined();
    expect(c.guestTables).toBeUndefined();
    c.cacheLeaf(IOTLB_HOST, 1, HOST_SPACE, 0, 12);
    expect(c.invalidateHostPages(1, 0, 0x1000, true)).toBe(1);
    expect(c.invalidateGuestPages(1, 0, 0, 0x1000, true)).toBe(0);
    expect(c.invalidateAll()).toBe(0);
  });

  it('counts hits and misses per cache', () => {
    const c = filled();
    c.deviceTable.get(0x10);
    c.deviceTable.get(0x12);
    c.iotlb.find(IOTLB_HOST, 5, HOST_SPACE, 0x1000);
    expect(c.stats()).toMatchObject({ dteCacheHits: 1, dteCacheMisses: 1, iotlbHits: 1, iotlbMisses: 0 });
    expect([KINDS_HOST, KINDS_GUEST, KINDS_NESTED]).toEqual([1, 2, 4]);
  });
});
