/**
 * SMMUv3 translation and command costs, each against a baseline measured in the same run:
 * - TLB hit: `translate()` on a cached page (STE and CD from the configuration cache, leaf from the TLB)
 *   vs a bare `Map` lookup of a number key;
 * - miss paths: stage 1 only, stage 2 only and nested, with the TLB emptied before each translation, and
 *   the memory reads each one needs (printed once; a nested 4-level × 4-level walk must read 24
 *   descriptors with the configuration cached);
 * - the command queue: TLBI_NH_VA + CMD_SYNC through MMIO, per pair.
 */
import { FrameAllocator, NO_PASID, PERM_READ } from '@iommukit/core';
import { IoPageTable, psEncoding, sl0Encoding, t0szFor, vmsaFormat, walk } from '@iommukit/pagetables';
import { afterAll, bench, describe } from 'vitest';
import { encodeCmdSync, encodeTlbiNhVa } from '../src/hw/commands.js';
import { CR0_CMDQEN, CR0_SMMUEN, REG } from '../src/hw/regs.js';
import { encodeSte, STE_CONFIG } from '../src/hw/ste.js';
import { testCd } from '../test/cd-fixture.js';
import { mmioRig, RAM_BASE } from '../test/mmio-rig.js';

const RAM = RAM_BASE;
const STRTAB = RAM;
const CMDQ = RAM + 0x1_0000;
const CD = RAM + 0x3_0000;
const RW = { read: true, write: true } as const;

const { bus, smmu, mmio, put } = mmioRig({ sidBits: 8, tlbEntries: 4096 }, 512 * 2 ** 20);
const memory = new FrameAllocator([{ base: RAM + 0x10_0000, size: 256 * 2 ** 20 }], (b, n) =>
  bus.discardRam(b, n),
);

const s1Format = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
const s2Format = vmsaFormat({ stage: 2, granule: 4096, ias: 48, oas: 48 });
const pagesOnly = { pageSizes: 1n << 12n };
const s1 = new IoPageTable(s1Format, { bus, memory, counter: bus.counter('pt') }, pagesOnly);
const s2 = new IoPageTable(s2Format, { bus, memory, counter: bus.counter('pt') }, pagesOnly);
const IOVA = 0x1_2345_6000;
const OUT = 0x9000_0000;
s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, RW);
// Stage 2 maps 1:1, with 4 KiB pages, every page the nested walk touches: the CD, the stage-1 tables, the output.
const touched = new Set<number>([CD, OUT]);
walk(s1Format, s1.rootPa, IOVA, {
  bus,
  counter: bus.counter('probe'),
  onStep: (_l, a) => touched.add(Math.floor(a / 4096) * 4096),
});
for (const page of touched) s2.map(BigInt(page), BigInt(page), 0x1000n, RW);

put(CD, testCd(s1.rootPa));
const s2Fields = {
  s2Vmid: 5,
  s2T0sz: t0szFor(48),
  s2Sl0: sl0Encoding(4096, 0)!,
  s2Tg: 0,
  s2Ps: psEncoding(48)!,
  s2Aa64: true,
  s2R: true,
  s2Ttb: s2.rootPa,
};
put(STRTAB + 64 * 1, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD }));
put(STRTAB + 64 * 2, encodeSte({ v: true, config: STE_CONFIG.S2_TRANS, ...s2Fields }));
put(STRTAB + 64 * 3, encodeSte({ v: true, config: STE_CONFIG.NESTED, s1ContextPtr: CD, ...s2Fields }));
mmio(REG.STRTAB_BASE, STRTAB);
mmio(REG.STRTAB_BASE_CFG, 8);
mmio(REG.CMDQ_BASE, CMDQ + 8); // 256 entries
mmio(REG.CR0, CR0_CMDQEN);
mmio(REG.CR0, CR0_CMDQEN | CR0_SMMUEN);

const request = (streamId: number, iova: number) => ({
  streamId,
  pasid: NO_PASID,
  iovaPfn: Math.floor(iova / 4096),
  offset: iova % 4096,
  access: PERM_READ,
});
const s1Req = request(1, IOVA);
const s2Req = request(2, OUT);
const nestedReq = request(3, IOVA);
const hw = bus.counter('hw:smmu0');

function readsPerMiss(req: ReturnType<typeof request>): number {
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
    put(CMDQ + (prod % 256) * 16, tlbi);
    put(CMDQ + ((prod + 1) % 256) * 16, sync);
    prod = (prod + 2) % 512;
    mmio(REG.CMDQ_PROD, prod);
  });
});

// Every case folds its results into `sink`; checking it keeps the work observable to the optimiser.
afterAll(() => {
  if (!Number.isFinite(sink)) throw new Error('a benchmark produced a non-finite checksum');
});
