/**
 * SMMUv3 translation, DMA and command costs, each against a bare baseline measured in the same run
 * (`iommukit bench smmuv3`). Targets are the ones the fast-translation work aims for.
 */
import { defineBenchSuite, EndpointDevice, SparseRam, Tracer } from '@iommukit/core';
import { walk } from '@iommukit/pagetables';

import { encodeCmdSync, encodeTlbiNhVa } from '../src/hw/commands.js';
import {
  IOVA,
  NESTED_STREAM,
  OUT,
  S1_STREAM,
  S2_STREAM,
  type TranslationRig,
  translationRequest,
  translationRig,
} from '../test/translation-rig.js';

const PAGES = 8192;
const RW = { read: true, write: true } as const;

/**
 * A rig whose stage 1 maps PAGES pages from IOVA to OUT, and whose stage 2 maps 1:1 those outputs, the CD and
 * every stage-1 table page (so each of the PAGES pages translates on all three streams).
 */
function rigWith(smmu: Record<string, unknown>): TranslationRig {
  const rig = translationRig({ smmu });
  rig.s1.map(BigInt(IOVA), BigInt(OUT), BigInt(PAGES * 4096), RW);
  rig.s2.map(BigInt(OUT), BigInt(OUT), BigInt(PAGES * 4096), RW);
  // One walk per level-3 table (2 MiB of IOVA); IOVA is not 2 MiB-aligned, so the last page's table too.
  for (let page = 0; page < PAGES; page += 512) rig.mapStage1TablesInStage2(IOVA + page * 4096);
  rig.mapStage1TablesInStage2(IOVA + (PAGES - 1) * 4096);
  rig.s1Stream();
  rig.s2Stream();
  rig.nestedStream();
  return rig;
}

const rig = rigWith({ tlbEntries: 4096 });
const { smmu, bus } = rig;
const s1Req = translationRequest(S1_STREAM, IOVA);
const s2Req = translationRequest(S2_STREAM, OUT);
const nestedReq = translationRequest(NESTED_STREAM, IOVA);
const hw = bus.counter('hw:smmu0');

function pfnOf(r: ReturnType<typeof smmu.translate>): number {
  if (!r.ok) throw new Error(`translation failed: ${r.fault.vendorCode}`);
  return r.pfn;
}

/**
 * Translations that always miss the TLB (the configuration stays cached): a cycle through PAGES pages on a
 * least-recently-used TLB of half as many entries.
 */
function misses(streamId: number, base: number): () => unknown {
  const r = rigWith({ tlbEntries: PAGES / 2, tlbReplacement: 'lru' });
  const requests = Array.from({ length: PAGES }, (_, page) =>
    translationRequest(streamId, base + page * 4096),
  );
  // Every page must translate: a miss that faults would time event recording instead.
  for (const request of requests) pfnOf(r.smmu.translate(request));
  let page = 0;
  return () => {
    page = (page + 1) % PAGES;
    return r.smmu.translate(requests[page]!);
  };
}

function readsPerMiss(req: typeof s1Req): number {
  smmu.tlb.clear();
  const before = hw.reads;
  pfnOf(smmu.translate(req));
  return hw.reads - before;
}

/** TLBI_NH_VA of one page + CMD_SYNC through MMIO on a rig whose TLB holds `entries` stage-1 entries. */
function tlbiCase(entries: number): () => number {
  const r = rigWith({ tlbEntries: entries });
  for (let page = 0; page < entries; page++)
    pfnOf(r.smmu.translate(translationRequest(S1_STREAM, IOVA + page * 4096)));
  const tlbi = encodeTlbiNhVa({ vmid: 0, asid: 1, addressPage: IOVA / 4096 + PAGES - 1, leaf: true });
  const sync = encodeCmdSync();
  return () => r.submit(tlbi, sync);
}

const STREAMS = 10_000;

/**
 * Stage-1 TLB hits on `streams` streams that share one CD's tables (so one TLB entry serves them all), taken
 * round-robin: beyond the configuration cache's 64 entries every translation fetches, decodes and checks
 * its STE and CD again.
 */
function roundRobin(streams: number): () => unknown {
  const r = translationRig({ streamTableLog2: 14, smmu: { tlbEntries: 4096 } });
  r.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, RW);
  for (let sid = 0; sid < streams; sid++) r.s1Stream({}, {}, sid);
  const requests = Array.from({ length: streams }, (_, sid) => translationRequest(sid, IOVA));
  for (const request of requests) pfnOf(r.smmu.translate(request));
  let next = 0;
  return () => {
    next = next + 1 === streams ? 0 : next + 1;
    return r.smmu.translate(requests[next]!);
  };
}

/** A device on the nested stream writing one 4 KiB page whose translation is in the TLB. */
function nestedDma(): () => unknown {
  const dev = new EndpointDevice(
    { name: 'dev', rid: NESTED_STREAM, streamId: NESTED_STREAM },
    bus,
    smmu,
    new Tracer(),
  );
  const data = new Uint8Array(4096).fill(0x5a);
  const iova = BigInt(IOVA);
  const first = dev.dmaWrite(iova, data);
  if (!first.ok) throw new Error('nested DMA failed');
  return () => dev.dmaWrite(iova, data);
}

function rawWrite(): () => unknown {
  const ram = new SparseRam(0x10_0000);
  const data = new Uint8Array(4096).fill(0x5a);
  return () => ram.writeBytes(0x1000, data);
}

/**
 * The stage-1 walk of IOVA with nothing in the way: the four descriptors, each read from a Uint32Array copy
 * of its table page, and the output address assembled from the leaf (VMSAv8-64, 4 KiB granule).
 */
function bareWalk(): () => number {
  const tables: Uint32Array[] = [];
  const indices: number[] = [];
  walk(rig.s1Format, rig.s1.rootPa, IOVA, {
    bus,
    counter: bus.counter('probe'),
    onStep: (_level, address) => {
      const page = new Uint32Array(1024);
      bus.readWords(address - (address % 4096), page, 1024, bus.counter('probe'));
      tables.push(page);
      indices.push((address % 4096) / 4);
    },
  });
  const run = () => {
    let out = 0;
    for (let level = 0; level < 4; level++) {
      const lo = tables[level]![indices[level]!]!;
      const hi = tables[level]![indices[level]! + 1]!;
      if ((lo & 1) === 0) return -1;
      out = (hi & 0xffff) * 2 ** 32 + ((lo & 0xfffff000) >>> 0);
    }
    return out + (IOVA % 4096);
  };
  if (run() !== OUT) throw new Error('the bare walk does not reach the page translate() does');
  return run;
}

const baseline = new Map<number, number>([[IOVA / 4096, OUT]]);
const key = IOVA / 4096;
const mapGet = { name: 'Map.get of a number key', fn: () => baseline.get(key) };

export default defineBenchSuite({
  name: 'SMMUv3 translation',
  about: 'translate() hits and misses, nested DMA and TLB invalidation through the command queue (IHI 0070).',
  facts: () => [
    ...(
      [
        ['stage 1', s1Req],
        ['stage 2', s2Req],
        ['nested', nestedReq],
      ] as const
    ).map(([name, req]) => {
      readsPerMiss(req); // warm the configuration cache
      return `${name} TLB miss: ${readsPerMiss(req)} memory reads per translation with the STE and CD cached`;
    }),
  ],
  groups: [
    {
      name: 'TLB hits',
      baseline: mapGet,
      cases: [
        { name: 'translate(): stage 1 TLB hit', fn: () => smmu.translate(s1Req), target: 0.2 },
        { name: 'translate(): nested TLB hit', fn: () => smmu.translate(nestedReq), target: 0.2 },
      ],
    },
    {
      name: 'Configuration cache misses (TLB hits)',
      baseline: { name: 'translate(): stage 1 TLB hit, one stream', fn: roundRobin(1) },
      cases: [{ name: `${STREAMS} streams round-robin`, fn: roundRobin(STREAMS), target: 1 / 3 }],
    },
    {
      name: 'TLB misses (configuration cached)',
      baseline: { name: 'the stage-1 walk over Uint32Arrays', fn: bareWalk() },
      cases: [
        {
          name: 'translate(): stage 1 miss',
          fn: misses(S1_STREAM, IOVA),
          target: 0.3,
        },
        { name: 'translate(): stage 2 miss', fn: misses(S2_STREAM, OUT) },
        { name: 'translate(): nested miss', fn: misses(NESTED_STREAM, IOVA) },
      ],
    },
    {
      name: 'DMA of 4 KiB',
      baseline: { name: 'SparseRam.writeBytes of 4 KiB', fn: rawWrite() },
      cases: [{ name: 'nested dmaWrite, TLB hit', fn: nestedDma(), target: 0.25 }],
    },
    {
      name: 'TLBI_NH_VA + CMD_SYNC through MMIO',
      baseline: { name: 'with 512 TLB entries', fn: tlbiCase(512) },
      cases: [{ name: 'with 8192 TLB entries', fn: tlbiCase(8192), target: 1 / 1.5 }],
    },
  ],
});
