/**
 * SMMUv3 translation and command costs, each against a baseline measured in the same run:
 * - TLB hit: `translate()` on a cached page (STE and CD from the configuration cache, leaf from the TLB)
 *   vs a bare `Map` lookup of a number key;
 * - miss paths: stage 1 only, stage 2 only and nested, with the TLB emptied before each translation, and
 *   the memory reads each one needs (printed once; a nested 4-level × 4-level walk must read 24
 *   descriptors with the configuration cached);
 * - the command queue: TLBI_NH_VA + CMD_SYNC through MMIO, per pair.
 */
import { afterAll, bench, describe } from 'vitest';
import { encodeCmdSync, encodeTlbiNhVa } from '../src/hw/commands.js';
import { REG } from '../src/hw/regs.js';
import {
  CMDQ,
  CMDQ_LOG2,
  IOVA,
  NESTED_STREAM,
  OUT,
  S1_STREAM,
  S2_STREAM,
  translationRequest,
  translationRig,
} from '../test/translation-rig.js';

const rig = translationRig({ smmu: { tlbEntries: 4096 } });
const { bus, smmu, mmio, put } = rig;
rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, { read: true, write: true });
// Stage 2 maps 1:1, with 4 KiB pages, every page the nested walk touches: the output, the CD, the stage-1 tables.
rig.s2.map(BigInt(OUT), BigInt(OUT), 0x1000n, { read: true, write: true });
rig.mapStage1TablesInStage2(IOVA);
rig.s1Stream();
rig.s2Stream();
rig.nestedStream();
const CMDQ_ENTRIES = 1 << CMDQ_LOG2;

const s1Req = translationRequest(S1_STREAM, IOVA);
const s2Req = translationRequest(S2_STREAM, OUT);
const nestedReq = translationRequest(NESTED_STREAM, IOVA);
const hw = bus.counter('hw:smmu0');

function readsPerMiss(req: typeof s1Req): number {
  smmu.tlb.clear();
  const before = hw.reads;
  const r = smmu.translate(req);
  if (!r.ok) throw new Error(`translation failed: ${r.fault.vendorCode}`);
  return hw.reads - before;
}
for (const [name, req] of [
  ['stage 1', s1Req],
  ['stage 2', s2Req],
  ['nested', nestedReq],
] as const) {
  readsPerMiss(req); // warm the configuration cache
  console.log(`${name} miss: ${readsPerMiss(req)} memory reads per translation with the STE and CD cached`);
}
smmu.translate(s1Req);

const baseline = new Map<number, number>([[IOVA / 4096, OUT]]);
let sink = 0;
let prod = 0;

describe('SMMUv3 translation', () => {
  bench('baseline: Map.get of a number key', () => {
    sink += baseline.get(IOVA / 4096) ?? 0;
  });

  bench('translate(): TLB hit (stage 1)', () => {
    const r = smmu.translate(s1Req);
    if (r.ok) sink += r.pfn;
  });

  bench('translate(): stage 1 miss (4 reads)', () => {
    smmu.tlb.clear();
    const r = smmu.translate(s1Req);
    if (r.ok) sink += r.pfn;
  });

  bench('translate(): stage 2 miss (4 reads)', () => {
    smmu.tlb.clear();
    const r = smmu.translate(s2Req);
    if (r.ok) sink += r.pfn;
  });

  bench('translate(): nested miss (24 reads)', () => {
    smmu.tlb.clear();
    const r = smmu.translate(nestedReq);
    if (r.ok) sink += r.pfn;
  });
});

describe('SMMUv3 command queue', () => {
  const tlbi = encodeTlbiNhVa({ vmid: 0, asid: 1, addressPage: IOVA / 4096, leaf: true });
  const sync = encodeCmdSync();
  bench('baseline: write two 16-byte commands into a typed array', () => {
    const q = new Uint32Array(8);
    q.set(tlbi, 0);
    q.set(sync, 4);
    sink += q[0]!;
  });

  bench('TLBI_NH_VA + CMD_SYNC through MMIO (consumed on the PROD write)', () => {
    put(CMDQ + (prod % CMDQ_ENTRIES) * 16, tlbi);
    put(CMDQ + ((prod + 1) % CMDQ_ENTRIES) * 16, sync);
    prod = (prod + 2) % (2 * CMDQ_ENTRIES);
    mmio(REG.CMDQ_PROD, prod);
  });
});

// Every case folds its results into `sink`; checking it keeps the work observable to the optimiser.
afterAll(() => {
  if (!Number.isFinite(sink)) throw new Error('a benchmark produced a non-finite checksum');
});
