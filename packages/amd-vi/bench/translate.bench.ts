/**
 * AMD IOMMU translation costs beside VT-d's and SMMUv3's (`iommukit bench amd-vi`), each against a bare
 * baseline measured in the same run: IOTLB hits of a host (v1) DTE, a guest (v2) PASID and a nested PASID
 * (guest tables over host tables), and misses (a cycle through more pages than an LRU IOTLB holds, the DTE
 * and GCR3 entries cached).
 */
import { bareFourLevelWalks, defineBenchSuite, PERM_READ } from '@iommukit/core';
import { RAM_BASE, RW, request, unitRig } from '../test/unit-rig.js';

const PAGES = 4096;
const IOVA = 0x4000_0000;
const OUT = RAM_BASE + 0x200_0000;
const GPA = 0x2_0000_0000;
/** One device per kind of translation: host v1, guest v2 (Mode 0), guest over host. */
const HOST = 0x10;
const GUEST = 0x11;
const NESTED = 0x12;
const PASID = 1;

function pfnOf(r: ReturnType<ReturnType<typeof unitRig>['unit']['translate']>): number {
  if (!r.ok) throw new Error(`translation failed: ${r.fault.vendorCode}`);
  return r.pfn;
}

/** A unit whose three devices translate PAGES pages from IOVA to OUT. */
function rigWith(iotlbEntries: number) {
  const rig = unitRig({ iotlbEntries, iotlbWays: 4, cacheReplacement: 'lru' });
  const host = rig.hostTable(4);
  host.map(BigInt(IOVA), BigInt(OUT), BigInt(PAGES * 4096), RW);
  rig.dte(HOST, {
    v: true,
    tv: true,
    mode: 4,
    hostPageTableRootPtr: host.rootPa,
    ir: true,
    iw: true,
    domainId: 1,
  });
  const guest = rig.guestTable(4);
  guest.map(BigInt(IOVA), BigInt(OUT), BigInt(PAGES * 4096), RW);
  const gcr3 = rig.page();
  rig.gcr3(gcr3, 0, PASID, guest.rootPa);
  rig.dte(GUEST, { v: true, tv: true, ir: true, iw: true, gv: true, gcr3TableRootPtr: gcr3, domainId: 2 });
  const nestedGuest = rig.guestTable(4);
  nestedGuest.map(BigInt(IOVA), BigInt(GPA), BigInt(PAGES * 4096), RW);
  const nestedHost = rig.hostTable(4);
  // The guest's tables are in RAM at their own addresses; its output GPAs map to OUT.
  nestedHost.map(BigInt(RAM_BASE), BigInt(RAM_BASE), 0x100_0000n, RW);
  nestedHost.map(BigInt(GPA), BigInt(OUT), BigInt(PAGES * 4096), RW);
  const nestedGcr3 = rig.page();
  rig.gcr3(nestedGcr3, 0, PASID, nestedGuest.rootPa);
  rig.dte(NESTED, {
    v: true,
    tv: true,
    mode: 4,
    hostPageTableRootPtr: nestedHost.rootPa,
    ir: true,
    iw: true,
    gv: true,
    gcr3TableRootPtr: nestedGcr3,
    domainId: 3,
  });
  return rig;
}

const CASES = [
  { name: 'host', device: HOST, pasid: -1 },
  { name: 'guest', device: GUEST, pasid: PASID },
  { name: 'nested', device: NESTED, pasid: PASID },
] as const;

const hits = rigWith(1024);
const hitRequests = CASES.map((c) => request(c.device, IOVA, PERM_READ, c.pasid));
for (const r of hitRequests) pfnOf(hits.unit.translate(r));

/** Translations that always miss the IOTLB: PAGES pages in turn through an LRU IOTLB of half as many. */
function misses(device: number, pasid: number): () => unknown {
  const rig = rigWith(PAGES / 2);
  const requests = Array.from({ length: PAGES }, (_, page) =>
    request(device, IOVA + page * 4096, PERM_READ, pasid),
  );
  for (const r of requests) pfnOf(rig.unit.translate(r));
  let page = 0;
  return () => {
    page = page + 1 === PAGES ? 0 : page + 1;
    return rig.unit.translate(requests[page]!);
  };
}

const baseline = new Map<number, number>([[IOVA / 4096, OUT]]);
const key = IOVA / 4096;

export default defineBenchSuite({
  name: 'AMD IOMMU translation',
  about: 'translate() hits and misses of host (v1), guest (v2) and nested DTEs (AMD IOMMU spec §2.2).',
  facts: () =>
    CASES.map(({ name }, i) => {
      const counter = hits.bus.counter('hw:iommu0');
      hits.unit.caches.iotlb.clear();
      const before = counter.reads;
      pfnOf(hits.unit.translate(hitRequests[i]!));
      return `${name} IOTLB miss: ${counter.reads - before} memory reads with the DTE, GCR3 and page directory caches warm`;
    }),
  groups: [
    {
      name: 'IOTLB hits',
      baseline: { name: 'Map.get of a number key', fn: () => baseline.get(key) },
      cases: CASES.map(({ name }, i) => ({
        name: `translate(): ${name} hit`,
        fn: () => hits.unit.translate(hitRequests[i]!),
      })),
    },
    {
      name: 'IOTLB misses (DTE and GCR3 entries cached)',
      baseline: { name: 'the 4-level walk over Uint32Arrays', fn: bareFourLevelWalks(PAGES, IOVA) },
      cases: CASES.map(({ name, device, pasid }) => ({
        name: `translate(): ${name} miss`,
        fn: misses(device, pasid),
      })),
    },
  ],
});
