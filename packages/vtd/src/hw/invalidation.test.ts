import { NO_PASID, type PageResponse } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { FEATURES } from '../../test/features.js';
import { IOTLB_FIRST, IOTLB_NESTED, IOTLB_SECOND, NO_PASID_TAG, VtdCaches } from './caches.js';
import type { VtdFeatures } from './features.js';
import { INV_TYPE, type InvDescriptor, IQEI } from './inv-descriptors.js';
import {
  type CacheInvDescriptor,
  deviceTlbRange,
  InvalidationDispatcher,
  type InvalidationEndpoint,
  type InvalidationTargets,
} from './invalidation.js';

interface Tagged {
  did: number;
}

type AtcCall = [pasid: number | undefined, iova: bigint, size: bigint];

/** A unit's caches, endpoints that record what reaches them, and an IEC that records its calls. */
function rig(overrides: Partial<VtdFeatures> = {}, scalable = true) {
  const caches = new VtdCaches<Tagged, Tagged>(
    {
      iotlb: { sets: 4, ways: 16, policy: 'lru' },
      context: { sets: 4, ways: 8, policy: 'lru' },
      pasid: { sets: 4, ways: 8, policy: 'lru' },
      pagingStructure: { sets: 4, ways: 4, policy: 'lru' },
    },
    { context: (e) => e.did, pasid: (e) => e.did },
  );
  const atc = new Map<number, AtcCall[]>();
  const responses = new Map<number, PageResponse[]>();
  const endpoint = (sid: number): InvalidationEndpoint => ({
    invalidateAtc: (pasid, iova, size) => atc.set(sid, [...(atc.get(sid) ?? []), [pasid, iova, size]]),
    pageResponse: (response) => responses.set(sid, [...(responses.get(sid) ?? []), response]),
  });
  const connected = new Map([
    [0x0300, endpoint(0x0300)],
    [0x0308, endpoint(0x0308)],
  ]);
  const iec: string[] = [];
  const traces: string[] = [];
  const targets: InvalidationTargets = {
    caches,
    endpoint: (sid) => connected.get(sid),
    iec: {
      invalidateAll: () => iec.push('all'),
      invalidateIndex: (index, mask) => iec.push(`${index}/${mask}`),
    },
    scalable: () => scalable,
    tracer: { enabled: true, trace: (name, message) => traces.push(`${name}: ${message}`) },
  };
  const dispatcher = new InvalidationDispatcher(targets, { ...FEATURES, ...overrides });
  return { caches, dispatcher, atc, responses, iec, traces };
}

type Caches = VtdCaches<Tagged, Tagged>;

/** One 4 KiB IOTLB leaf per name: kind, DID, PASID, page number (`level` carries the name). */
function fillLeaves(c: Caches): void {
  const put = (name: number, kind: number, did: number, pasid: number, page: number) => {
    c.cacheLeaf(kind, did, pasid, page * 4096, 12).level = name;
  };
  put(1, IOTLB_SECOND, 5, NO_PASID_TAG, 0x10);
  put(2, IOTLB_SECOND, 5, NO_PASID_TAG, 0x13);
  put(3, IOTLB_SECOND, 5, NO_PASID_TAG, 0x14);
  put(4, IOTLB_FIRST, 5, 9, 0x10);
  put(5, IOTLB_FIRST, 5, NO_PASID_TAG, 0x11); // global first-stage leaf
  put(6, IOTLB_NESTED, 5, 9, 0x12);
  put(7, IOTLB_SECOND, 6, NO_PASID_TAG, 0x10);
  put(8, IOTLB_FIRST, 5, 10, 0x10);
}

const leaves = (c: Caches) =>
  c.iotlb
    .entries()
    .map((e) => e.level)
    .sort((a, b) => a - b);

/** Second-stage (DID 5) and first-stage (DID 5, PASID 9) table entries for 0x20_0000. */
function fillTables(c: Caches): void {
  c.secondStageTables!.select(IOTLB_SECOND, 5, NO_PASID_TAG).fill(1, 21, 0x20_0000, 0x8000, 0);
  c.firstStageTables!.select(IOTLB_FIRST, 5, 9).fill(1, 21, 0x20_0000, 0x7000, 0);
}
const secondTable = (c: Caches) => c.secondStageTables!.select(IOTLB_SECOND, 5, NO_PASID_TAG).find(0x20_0000);
const firstTable = (c: Caches) => c.firstStageTables!.select(IOTLB_FIRST, 5, 9).find(0x20_0000);

describe('context-cache invalidation (§6.5.2.1)', () => {
  function filled() {
    const r = rig({}, false);
    for (const [sid, did] of [
      [0x0100, 1],
      [0x0101, 1],
      [0x0103, 1],
      [0x0104, 1],
      [0x0101 + 0x10, 1],
      [0x0200, 2],
    ] as const)
      r.caches.context.set(sid, 0, { did });
    return r;
  }
  const sids = (c: Caches) =>
    c.context
      .entries()
      .map(([sid]) => sid)
      .sort((a, b) => a - b);
  const cc = (granularity: number, did = 0, sid = 0, fm = 0): CacheInvDescriptor => ({
    type: INV_TYPE.CONTEXT_CACHE,
    granularity,
    did,
    sid,
    fm,
  });

  it('global drops every entry; domain-selective those tagged with the DID', () => {
    const r = filled();
    r.dispatcher.perform(cc(2, 1));
    expect(sids(r.caches)).toEqual([0x0200]);
    r.dispatcher.perform(cc(1));
    expect(sids(r.caches)).toEqual([]);
  });

  it('device-selective in legacy mode: the SID and the DID the entry carries', () => {
    const r = filled();
    r.dispatcher.perform(cc(3, 1, 0x0101));
    expect(sids(r.caches)).toEqual([0x0100, 0x0103, 0x0104, 0x0111, 0x0200]);
    // A DID other than the one the entry carries leaves it.
    r.dispatcher.perform(cc(3, 2, 0x0104));
    expect(sids(r.caches)).toEqual([0x0100, 0x0103, 0x0104, 0x0111, 0x0200]);
  });

  it('FM ignores function bit 2 (FM 1), bits 2:1 (FM 2) or bits 2:0 (FM 3) of the SID', () => {
    const entries = [0x0100, 0x0101, 0x0102, 0x0103, 0x0104, 0x0105, 0x0106, 0x0107, 0x0108];
    const survivors = (sid: number, fm: number) => {
      const r = rig({}, false);
      for (const source of entries) r.caches.context.set(source, 0, { did: 1 });
      r.dispatcher.perform(cc(3, 1, sid, fm));
      return sids(r.caches);
    };
    expect(survivors(0x0101, 1)).toEqual([0x0100, 0x0102, 0x0103, 0x0104, 0x0106, 0x0107, 0x0108]);
    expect(survivors(0x0101, 2)).toEqual([0x0100, 0x0102, 0x0104, 0x0106, 0x0108]);
    expect(survivors(0x0101, 3)).toEqual([0x0108]);
  });

  it('device-selective in scalable mode ignores the DID', () => {
    const r = rig({}, true);
    r.caches.context.set(0x0100, 0, { did: 1 });
    r.caches.context.set(0x0104, 0, { did: 2 });
    r.caches.context.set(0x0101, 0, { did: 1 });
    r.dispatcher.perform(cc(3, 7, 0x0100, 1));
    expect(sids(r.caches)).toEqual([0x0101]);
  });

  it('DID bits above CAP.ND are ignored', () => {
    const r = filled();
    const small = rig({ domainIdBits: 8 });
    for (const [sid, did] of [
      [0x0100, 1],
      [0x0200, 2],
    ] as const)
      small.caches.context.set(sid, 0, { did });
    small.dispatcher.perform(cc(2, 0x0101));
    expect(sids(small.caches)).toEqual([0x0200]);
    // With 16 DID bits the same request names DID 0x101, which nothing carries.
    r.dispatcher.perform(cc(2, 0x0101));
    expect(sids(r.caches)).toHaveLength(6);
  });
});

describe('IOTLB invalidation (§6.5.2.3)', () => {
  const iotlb = (granularity: number, did = 0, addr = 0, am = 0, ih = false): CacheInvDescriptor => ({
    type: INV_TYPE.IOTLB,
    granularity,
    dw: true,
    dr: true,
    did,
    am,
    ih,
    addr,
  });

  it('global: every leaf and every paging-structure entry', () => {
    const r = rig();
    fillLeaves(r.caches);
    fillTables(r.caches);
    r.dispatcher.perform(iotlb(1));
    expect(leaves(r.caches)).toEqual([]);
    expect([secondTable(r.caches), firstTable(r.caches)]).toEqual([-1, -1]);
  });

  it('domain-selective: every leaf and paging-structure entry of the DID, whatever its kind', () => {
    const r = rig();
    fillLeaves(r.caches);
    fillTables(r.caches);
    r.dispatcher.perform(iotlb(2, 5));
    expect(leaves(r.caches)).toEqual([7]);
    expect([secondTable(r.caches), firstTable(r.caches)]).toEqual([-1, -1]);
  });

  it('page-selective: 2^AM pages from ADDR with its low AM page bits ignored', () => {
    const r = rig();
    fillLeaves(r.caches);
    // AM = 2 at page 0x13: second-stage pages 0x10–0x13 (1 and 2); page 0x14 stays. The DID's first-stage
    // and nested leaves (4, 5, 6, 8) go whatever their address: a second-stage address cannot select them.
    r.dispatcher.perform(iotlb(3, 5, 0x13 * 4096, 2));
    expect(leaves(r.caches)).toEqual([3, 7]);
  });

  it('page-selective: IH = 1 keeps the paging-structure entries, IH = 0 drops them', () => {
    const r = rig();
    fillTables(r.caches);
    r.dispatcher.perform(iotlb(3, 5, 0x20_0000, 0, true));
    expect(secondTable(r.caches)).toBe(1);
    r.dispatcher.perform(iotlb(3, 5, 0x20_0000, 0, false));
    expect(secondTable(r.caches)).toBe(-1);
  });

  it('page-selective without CAP.PSI is performed domain-selective', () => {
    const r = rig({ pageSelectiveInvalidation: false, maxAddressMask: 0 });
    fillLeaves(r.caches);
    expect(r.dispatcher.refusal(iotlb(3, 5, 0x10 * 4096, 9), false)).toBeUndefined();
    expect(r.dispatcher.iotlb(3, 5, 0x10 * 4096, 9, false)).toBe(2);
    expect(leaves(r.caches)).toEqual([7]);
  });

  it('reports the granularity performed', () => {
    const r = rig();
    expect([r.dispatcher.iotlb(1, 0, 0, 0, false), r.dispatcher.iotlb(2, 5, 0, 0, false)]).toEqual([1, 2]);
    expect(r.dispatcher.iotlb(3, 5, 0x1000, 0, false)).toBe(3);
  });
});

describe('PASID-based IOTLB invalidation (§6.5.2.4)', () => {
  const piotlb = (granularity: number, addr = 0, am = 0, ih = false): CacheInvDescriptor => ({
    type: INV_TYPE.PASID_IOTLB,
    granularity,
    did: 5,
    pasid: 9,
    am,
    ih,
    addr,
  });

  it('G = 2: the non-global first-stage and nested leaves of (DID, PASID) and its first-stage tables', () => {
    const r = rig();
    fillLeaves(r.caches);
    fillTables(r.caches);
    r.dispatcher.perform(piotlb(2));
    expect(leaves(r.caches)).toEqual([1, 2, 3, 5, 7, 8]);
    expect([firstTable(r.caches), secondTable(r.caches)]).toEqual([-1, 1]);
  });

  it('G = 3: a range of the PASID, global first-stage leaves included', () => {
    const r = rig();
    fillLeaves(r.caches);
    // AM = 1 at page 0x11: pages 0x10–0x11 → leaf 4 (PASID 9) and global leaf 5; nested leaf 6 at 0x12 stays.
    r.dispatcher.perform(piotlb(3, 0x11 * 4096, 1));
    expect(leaves(r.caches)).toEqual([1, 2, 3, 6, 7, 8]);
  });

  it('G = 3 with IH keeps the first-stage tables', () => {
    const r = rig();
    fillTables(r.caches);
    r.dispatcher.perform(piotlb(3, 0x20_0000, 0, true));
    expect(firstTable(r.caches)).toBe(1);
    r.dispatcher.perform(piotlb(3, 0x20_0000, 0, false));
    expect(firstTable(r.caches)).toBe(-1);
  });
});

describe('PASID-cache invalidation (§6.5.2.2)', () => {
  function filled() {
    const r = rig();
    r.caches.pasid.set(0x0100, 9, { did: 5 });
    r.caches.pasid.set(0x0100, 10, { did: 5 });
    r.caches.pasid.set(0x0200, 9, { did: 6 });
    return r;
  }
  const keys = (c: Caches) =>
    c.pasid
      .entries()
      .map(([sid, pasid]) => `${sid.toString(16)}/${pasid}`)
      .sort();
  const pc = (granularity: number, did: number, pasid: number): CacheInvDescriptor => ({
    type: INV_TYPE.PASID_CACHE,
    granularity,
    did,
    pasid,
  });

  it('G = 1: one PASID of the DID the PASID-table entry carries', () => {
    const r = filled();
    r.dispatcher.perform(pc(1, 5, 9));
    expect(keys(r.caches)).toEqual(['100/10', '200/9']);
  });

  it('G = 0: every PASID of the DID', () => {
    const r = filled();
    r.dispatcher.perform(pc(0, 5, 9));
    expect(keys(r.caches)).toEqual(['200/9']);
  });

  it('G = 3: everything, whatever DID and PASID say', () => {
    const r = filled();
    r.dispatcher.perform(pc(3, 7, 1));
    expect(keys(r.caches)).toEqual([]);
  });
});

describe('device-TLB invalidation (§6.5.2.5, §6.5.2.6)', () => {
  it('decodes the ATS range: S = 0 one page, S = 1 the lowest clear bit at or above 12', () => {
    expect(deviceTlbRange(0x1234_5000, false)).toEqual({ iova: 0x1234_5000n, size: 0x1000n });
    // Bit 12 clear: 8 KiB.
    expect(deviceTlbRange(0x1234_4000, true)).toEqual({ iova: 0x1234_4000n, size: 0x2000n });
    // Bits 12–13 set, 14 clear: 32 KiB, aligned down.
    expect(deviceTlbRange(0x1234_3000, true)).toEqual({ iova: 0x1234_0000n, size: 0x8000n });
    // Bits 12–19 set, 20 clear: 2 MiB (how Linux asks for a 2 MiB block).
    expect(deviceTlbRange(0x4_000f_f000, true)).toEqual({ iova: 0x4_0000_0000n, size: 0x20_0000n });
  });

  it('decodes the whole-space encodings: bits 62:12 set (Linux), and every bit 63:12 set', () => {
    const all = { iova: 0n, size: 1n << 64n };
    expect(deviceTlbRange(2 ** 63 - 4096, true)).toEqual(all);
    expect(deviceTlbRange(2 ** 64 - 4096, true)).toEqual(all);
    // Bits 62:12 set but bit 61: the lowest clear bit is 61, so the 2^62-byte block at 2^62.
    expect(deviceTlbRange(2 ** 63 - 4096 - 2 ** 61, true)).toEqual({ iova: 1n << 62n, size: 1n << 62n });
  });

  it('sends an ATS invalidation without PASID to the endpoint with the SID; an absent one is skipped', () => {
    const r = rig();
    const dev = (sid: number, addr: number, size: boolean): CacheInvDescriptor => ({
      type: INV_TYPE.DEVICE_TLB,
      pfsid: 0x0300,
      qdep: 4,
      sid,
      size,
      addr,
    });
    r.dispatcher.perform(dev(0x0308, 0x7000, true));
    r.dispatcher.perform(dev(0x0400, 0x7000, false));
    expect([...r.atc]).toEqual([[0x0308, [[undefined, 0x0n, 0x1_0000n]]]]);
  });

  it('PASID-based: the PASID, or every PASID with G = 1', () => {
    const r = rig();
    const pdev = (granularity: number): CacheInvDescriptor => ({
      type: INV_TYPE.PASID_DEVICE_TLB,
      qdep: 0,
      pfsid: 0,
      sid: 0x0300,
      pasid: 9,
      granularity,
      size: false,
      addr: 0x5000,
    });
    r.dispatcher.perform(pdev(0));
    r.dispatcher.perform(pdev(1));
    expect(r.atc.get(0x0300)).toEqual([
      [9, 0x5000n, 0x1000n],
      [undefined, 0x5000n, 0x1000n],
    ]);
  });
});

describe('interrupt entry cache invalidation (§6.5.2.7) and page group responses', () => {
  it('IEC: global, or index-selective with the index mask', () => {
    const r = rig();
    r.dispatcher.perform({ type: INV_TYPE.IEC, granularity: 0, im: 3, iidx: 8 });
    r.dispatcher.perform({ type: INV_TYPE.IEC, granularity: 1, im: 3, iidx: 8 });
    expect(r.iec).toEqual(['all', '8/3']);
  });

  it('page group response: the code, group index and PASID (NO_PASID without PASID present)', () => {
    const r = rig();
    const response = (respCode: number, pasidPresent: boolean): CacheInvDescriptor => ({
      type: INV_TYPE.PAGE_GROUP_RESPONSE,
      pasidPresent,
      privateDataPresent: false,
      respCode,
      rid: 0x0300,
      pasid: 9,
      lpig: true,
      prgIndex: 0x1a5,
    });
    r.dispatcher.perform(response(0x0, true));
    r.dispatcher.perform(response(0x1, false));
    r.dispatcher.perform(response(0xf, true));
    expect(r.responses.get(0x0300)).toEqual([
      { pasid: 9, groupIndex: 0x1a5, code: 'success' },
      { pasid: NO_PASID, groupIndex: 0x1a5, code: 'invalid' },
      { pasid: 9, groupIndex: 0x1a5, code: 'failure' },
    ]);
  });

  it('traces each invalidation with what it dropped', () => {
    const r = rig();
    fillLeaves(r.caches);
    r.dispatcher.perform({
      type: INV_TYPE.IOTLB,
      granularity: 2,
      dw: false,
      dr: false,
      did: 5,
      am: 0,
      ih: false,
      addr: 0,
    });
    expect(r.traces).toEqual(['iotlb: domain 5: 7 dropped']);
  });
});

describe('refusal: what a unit without the feature reports (IQE)', () => {
  const dev: InvDescriptor = { type: INV_TYPE.DEVICE_TLB, pfsid: 0, qdep: 0, sid: 1, size: false, addr: 0 };
  const pdev: InvDescriptor = {
    type: INV_TYPE.PASID_DEVICE_TLB,
    qdep: 0,
    pfsid: 0,
    sid: 1,
    pasid: 1,
    granularity: 0,
    size: false,
    addr: 0,
  };
  const iec: InvDescriptor = { type: INV_TYPE.IEC, granularity: 0, im: 0, iidx: 0 };
  const prg = (respCode: number): InvDescriptor => ({
    type: INV_TYPE.PAGE_GROUP_RESPONSE,
    pasidPresent: false,
    privateDataPresent: false,
    respCode,
    rid: 1,
    pasid: 0,
    lpig: true,
    prgIndex: 0,
  });
  const pc: InvDescriptor = { type: INV_TYPE.PASID_CACHE, granularity: 3, did: 0, pasid: 0 };
  const iqei = (features: Partial<VtdFeatures>, d: InvDescriptor, wide = true) =>
    rig(features).dispatcher.refusal(d, wide)?.iqei;

  it('accepts every type on a unit with every feature, in a 256-bit queue', () => {
    for (const d of [dev, pdev, iec, prg(0), pc]) expect(iqei({}, d)).toBeUndefined();
  });

  it('device-TLB types need ECAP.DT, the IEC type ECAP.IR, the page group response ECAP.PRS', () => {
    expect(iqei({ deviceTlb: false }, dev)).toBe(IQEI.INVALID_TYPE);
    expect(iqei({ deviceTlb: false }, pdev)).toBe(IQEI.INVALID_TYPE);
    expect(iqei({ interruptRemapping: false }, iec)).toBe(IQEI.INVALID_TYPE);
    expect(iqei({ pageRequests: false }, prg(0))).toBe(IQEI.INVALID_TYPE);
  });

  it('PASID-based types need 256-bit descriptors; the others do not', () => {
    expect(iqei({}, pc, false)).toBe(IQEI.INVALID_TYPE);
    expect(iqei({}, pdev, false)).toBe(IQEI.INVALID_TYPE);
    expect(iqei({}, prg(0), false)).toBe(IQEI.INVALID_TYPE);
    expect(iqei({}, dev, false)).toBeUndefined();
  });

  it('a reserved page group response code is a reserved-field violation', () => {
    expect(iqei({}, prg(2))).toBe(IQEI.RESERVED_FIELD);
    expect(iqei({}, prg(0xe))).toBe(IQEI.RESERVED_FIELD);
  });

  it('AM above CAP.MAMV (18 here) in a page-selective request is a reserved-field violation', () => {
    const page = (type: 2 | 6, granularity: number, am: number): InvDescriptor =>
      type === 2
        ? { type, granularity, dw: false, dr: false, did: 1, am, ih: false, addr: 0 }
        : { type, granularity, did: 1, pasid: 1, am, ih: false, addr: 0 };
    expect(iqei({}, page(2, 3, 18))).toBeUndefined();
    expect(iqei({}, page(2, 3, 19))).toBe(IQEI.RESERVED_FIELD);
    expect(iqei({}, page(6, 3, 19))).toBe(IQEI.RESERVED_FIELD);
    // AM is not looked at for other granularities.
    expect(iqei({}, page(2, 2, 63))).toBeUndefined();
    expect(iqei({}, page(6, 2, 63))).toBeUndefined();
  });
});
