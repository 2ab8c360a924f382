/** What the dispatcher reports: the trace line of each invalidation performed, and why a descriptor is refused. */
import { describe, expect, it } from 'vitest';
import { FEATURES } from '../../test/features.js';
import { VtdCaches } from './caches.js';
import type { VtdFeatures } from './features.js';
import { INV_TYPE, type InvDescriptor, IQEI } from './inv-descriptors.js';
import { type CacheInvDescriptor, InvalidationDispatcher, type InvalidationTargets } from './invalidation.js';

interface Tagged {
  did: number;
}

function rig(overrides: Partial<VtdFeatures> = {}, tracing = true) {
  const caches = new VtdCaches<Tagged, Tagged>(
    {
      iotlb: { sets: 4, ways: 4, policy: 'lru' },
      context: { sets: 4, ways: 4, policy: 'lru' },
      pasid: { sets: 4, ways: 4, policy: 'lru' },
      pagingStructure: { sets: 4, ways: 4, policy: 'lru' },
    },
    { context: (e) => e.did, pasid: (e) => e.did },
  );
  const traces: string[] = [];
  const atc: unknown[] = [];
  const targets: InvalidationTargets = {
    caches,
    // Only 0x0300 is connected.
    endpoint: (sid) =>
      sid === 0x0300
        ? { invalidateAtc: (...call) => atc.push(call), pageResponse: (response) => atc.push(response) }
        : undefined,
    iec: { invalidateAll: () => {}, invalidateIndex: () => {} },
    scalable: () => true,
    ...(tracing
      ? {
          tracer: {
            enabled: true,
            trace: (name: string, message: string) => traces.push(`${name}: ${message}`),
          },
        }
      : {}),
  };
  return {
    caches,
    traces,
    atc,
    dispatcher: new InvalidationDispatcher(targets, { ...FEATURES, ...overrides }),
  };
}

const iotlb = (granularity: number, addr = 0, am = 0, ih = false): CacheInvDescriptor => ({
  type: INV_TYPE.IOTLB,
  granularity,
  dw: false,
  dr: false,
  did: 5,
  am,
  ih,
  addr,
});
const response = (rid: number): CacheInvDescriptor => ({
  type: INV_TYPE.PAGE_GROUP_RESPONSE,
  pasidPresent: true,
  privateDataPresent: false,
  respCode: 0,
  rid,
  pasid: 9,
  lpig: true,
  prgIndex: 3,
});

/** One descriptor of every type and granularity the dispatcher performs. */
const descriptors: CacheInvDescriptor[] = [
  { type: INV_TYPE.CONTEXT_CACHE, granularity: 3, did: 1, sid: 0x0100, fm: 2 },
  { type: INV_TYPE.CONTEXT_CACHE, granularity: 2, did: 1, sid: 0, fm: 0 },
  { type: INV_TYPE.CONTEXT_CACHE, granularity: 1, did: 0, sid: 0, fm: 0 },
  iotlb(1),
  iotlb(2),
  iotlb(3, 0x5000, 1, true),
  iotlb(3, 0x5000, 0, false),
  { type: INV_TYPE.PASID_IOTLB, granularity: 2, did: 5, pasid: 9, am: 0, ih: false, addr: 0 },
  { type: INV_TYPE.PASID_IOTLB, granularity: 3, did: 5, pasid: 9, am: 1, ih: false, addr: 0x7000 },
  { type: INV_TYPE.PASID_CACHE, granularity: 1, did: 5, pasid: 9 },
  { type: INV_TYPE.DEVICE_TLB, pfsid: 0, qdep: 0, sid: 0x0300, size: false, addr: 0x4000 },
  {
    type: INV_TYPE.PASID_DEVICE_TLB,
    qdep: 0,
    pfsid: 0,
    sid: 0x0300,
    pasid: 9,
    granularity: 0,
    size: false,
    addr: 0x4000,
  },
  { type: INV_TYPE.IEC, granularity: 0, im: 0, iidx: 0 },
  { type: INV_TYPE.IEC, granularity: 1, im: 2, iidx: 8 },
  response(0x0300),
];

describe('the trace of each invalidation performed', () => {
  it('names the cache and says at which granularity', () => {
    const r = rig();
    r.caches.context.set(0x0100, 0, { did: 1 });
    for (const d of descriptors) r.dispatcher.perform(d);
    expect(r.traces).toEqual([
      'context-cache: domain 1 sid 0x100 fm 2: 1 dropped',
      'context-cache: domain 1: 0 dropped',
      'context-cache: global: 0 dropped',
      'iotlb: global: 0 dropped',
      'iotlb: domain 5: 0 dropped',
      'iotlb: domain 5 0x4000 +0x2000 ih: 0 dropped',
      'iotlb: domain 5 0x5000 +0x1000: 0 dropped',
      'pasid-iotlb: domain 5 pasid 9: 0 dropped',
      'pasid-iotlb: domain 5 pasid 9 0x6000 +0x2000: 0 dropped',
      'pasid-cache: g 1 domain 5 pasid 9: 0 dropped',
      'device-tlb: sid 0x300 pasid all 0x4000 +0x1000',
      'device-tlb: sid 0x300 pasid 9 0x4000 +0x1000',
      'iec: global',
      'iec: index 8 im 2',
      'prg-response: rid 0x300 prg 3 success',
    ]);
  });

  it('a page group response to a requester that is not connected goes nowhere', () => {
    const r = rig();
    expect(() => r.dispatcher.perform(response(0x0400))).not.toThrow();
    expect(r.atc).toEqual([]);
    expect(r.traces).toEqual(['prg-response: rid 0x400 prg 3 success']);
  });

  it('without a trace hook every invalidation is still performed', () => {
    const r = rig({}, false);
    r.caches.context.set(0x0100, 0, { did: 1 });
    for (const d of descriptors) r.dispatcher.perform(d);
    expect(r.caches.context.entries()).toEqual([]);
    // Two device-TLB invalidations and the page group response reached the endpoint.
    expect(r.atc).toHaveLength(3);
  });
});

describe('why a descriptor is refused', () => {
  const reason = (features: Partial<VtdFeatures>, d: InvDescriptor, wide = true) =>
    rig(features).dispatcher.refusal(d, wide);
  const prg = (respCode: number): InvDescriptor => ({ ...response(1), respCode }) as InvDescriptor;

  it('names the feature the unit lacks, or the 256-bit width the type needs', () => {
    const dev: InvDescriptor = { type: INV_TYPE.DEVICE_TLB, pfsid: 0, qdep: 0, sid: 1, size: false, addr: 0 };
    expect(reason({ deviceTlb: false }, dev)?.invalid).toMatch(/type 3 .*ECAP\.DT/);
    expect(
      reason({ interruptRemapping: false }, { type: INV_TYPE.IEC, granularity: 0, im: 0, iidx: 0 })?.invalid,
    ).toMatch(/type 4 .*ECAP\.IR/);
    expect(reason({ pageRequests: false }, prg(0))?.invalid).toMatch(/type 9 .*ECAP\.PRS/);
    expect(reason({}, prg(0), false)?.invalid).toMatch(/type 9 .*256-bit/);
  });

  it('names the reserved response code and the address mask above CAP.MAMV', () => {
    expect(reason({}, prg(2))).toEqual({
      iqei: IQEI.RESERVED_FIELD,
      invalid: expect.stringMatching(/code 2\b/),
    });
    const page: InvDescriptor = {
      type: INV_TYPE.PASID_IOTLB,
      granularity: 3,
      did: 1,
      pasid: 1,
      am: 19,
      ih: false,
      addr: 0,
    };
    expect(reason({}, page)).toEqual({
      iqei: IQEI.RESERVED_FIELD,
      invalid: expect.stringMatching(/19.*MAMV 18/),
    });
  });
});
