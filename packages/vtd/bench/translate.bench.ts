/**
 * VT-d translation costs beside SMMUv3's (`iommukit bench vtd`), each against a bare baseline measured in the
 * same run: IOTLB hits of a legacy-mode second stage, a scalable-mode first stage and a nested PASID entry,
 * and misses (a cycle through more pages than an LRU IOTLB holds, the context and PASID entries cached).
 */
import { bareFourLevelWalks, defineBenchSuite, PERM_READ } from '@iommukit/core';
import { PGTT } from '../src/hw/pasid-entry.js';
import { RAM_BASE, RW, request, sid, translationRig } from '../test/translation-rig.js';

const PAGES = 4096;
const IOVA = 0x4000_0000;
const OUT = RAM_BASE + 0x200_0000;
const GPA = 0x2_0000_0000;
const DEV = sid(3, 0x10);

function pfnOf(r: ReturnType<ReturnType<typeof translationRig>['translator']['translate']>): number {
  if (!r.ok) throw new Error(`translation failed: ${r.fault.vendorCode}`);
  return r.pfn;
}

/** A rig whose device has, at PASID 1, 2 and 3, a second-stage, a first-stage and a nested entry. */
function rigWith(iotlbEntries: number) {
  const rig = translationRig({ iotlbEntries, iotlbWays: 4, cacheReplacement: 'lru' });
  const ss = rig.secondStage(4);
  ss.map(BigInt(IOVA), BigInt(OUT), BigInt(PAGES * 4096), RW);
  const fs = rig.firstStage(4);
  fs.map(BigInt(IOVA), BigInt(OUT), BigInt(PAGES * 4096), RW);
  const nestedFs = rig.firstStage(4);
  nestedFs.map(BigInt(IOVA), BigInt(GPA), BigInt(PAGES * 4096), RW);
  const nestedSs = rig.secondStage(4);
  // The guest's tables are in RAM at their own addresses; its output GPAs map to OUT.
  nestedSs.map(BigInt(RAM_BASE), BigInt(RAM_BASE), 0x100_0000n, RW);
  nestedSs.map(BigInt(GPA), BigInt(OUT), BigInt(PAGES * 4096), RW);
  const dir = rig.scalableContext(DEV, { paside: true, ridPasid: 1 });
  rig.pasidEntry(dir, 1, { pgtt: PGTT.SECOND_STAGE, did: 1, ssptptr: ss.rootPa, aw: 2 });
  rig.pasidEntry(dir, 2, { pgtt: PGTT.FIRST_STAGE, did: 2, fsptptr: fs.rootPa });
  rig.pasidEntry(dir, 3, {
    pgtt: PGTT.NESTED,
    did: 3,
    fsptptr: nestedFs.rootPa,
    ssptptr: nestedSs.rootPa,
    aw: 2,
  });
  return rig;
}

const hits = rigWith(1024);
const hitRequests = [1, 2, 3].map((pasid) => request(DEV, IOVA, PERM_READ, pasid));
for (const r of hitRequests) pfnOf(hits.translator.translate(r));

/** Translations that always miss the IOTLB: PAGES pages in turn through an LRU IOTLB of half as many. */
function misses(pasid: number): () => unknown {
  const rig = rigWith(PAGES / 2);
  const requests = Array.from({ length: PAGES }, (_, page) =>
    request(DEV, IOVA + page * 4096, PERM_READ, pasid),
  );
  for (const r of requests) pfnOf(rig.translator.translate(r));
  let page = 0;
  return () => {
    page = page + 1 === PAGES ? 0 : page + 1;
    return rig.translator.translate(requests[page]!);
  };
}

const baseline = new Map<number, number>([[IOVA / 4096, OUT]]);
const key = IOVA / 4096;

export default defineBenchSuite({
  name: 'VT-d translation',
  about: 'translate() hits and misses of second-stage, first-stage and nested PASID entries (VT-d §3).',
  facts: () =>
    (['second-stage', 'first-stage', 'nested'] as const).map((name, i) => {
      const counter = hits.bus.counter('vtd');
      hits.caches.iotlb.clear();
      const before = counter.reads;
      pfnOf(hits.translator.translate(hitRequests[i]!));
      return `${name} IOTLB miss: ${counter.reads - before} memory reads with the context, PASID and paging-structure caches warm`;
    }),
  groups: [
    {
      name: 'IOTLB hits',
      baseline: { name: 'Map.get of a number key', fn: () => baseline.get(key) },
      cases: [
        {
          name: 'translate(): second-stage hit',
          fn: () => hits.translator.translate(hitRequests[0]!),
          target: 0.2,
        },
        { name: 'translate(): first-stage hit', fn: () => hits.translator.translate(hitRequests[1]!) },
        { name: 'translate(): nested hit', fn: () => hits.translator.translate(hitRequests[2]!) },
      ],
    },
    {
      name: 'IOTLB misses (context and PASID entries cached)',
      baseline: { name: 'the 4-level walk over Uint32Arrays', fn: bareFourLevelWalks(PAGES, IOVA) },
      cases: [
        { name: 'translate(): second-stage miss', fn: misses(1), target: 0.3 },
        { name: 'translate(): first-stage miss', fn: misses(2) },
        { name: 'translate(): nested miss', fn: misses(3) },
      ],
    },
  ],
});
