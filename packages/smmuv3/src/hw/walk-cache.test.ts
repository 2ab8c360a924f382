/**
 * The SMMUv3 walk caches (IHI 0070 §3.21.1, §4.4): what a walk that hits reads, and which TLB maintenance
 * commands drop cached tables. The staleness tests repoint a table descriptor without the TLBI that would
 * drop the cached table below it: the model keeps walking the old table, as hardware with a walk cache does.
 */
import { FrameAllocator, PERM_READ } from '@iommukit/core';
import { IoPageTable, type VmsaFormat, walk } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { RAM_BASE } from '../../test/mmio-rig.js';
import {
  IOVA,
  NESTED_STREAM,
  OUT,
  S1_STREAM,
  S2_STREAM,
  type TranslationRig,
  translationRig,
} from '../../test/translation-rig.js';
import {
  encodeCfgiAll,
  encodeCmdSync,
  encodeTlbiNhAll,
  encodeTlbiNhAsid,
  encodeTlbiNhVa,
  encodeTlbiNhVaa,
  encodeTlbiNsnhAll,
  encodeTlbiS2Ipa,
  encodeTlbiS12Vmall,
} from './commands.js';
import { REG } from './regs.js';

const RW = { read: true, write: true } as const;
/** Where the rig's other tables send IOVA (stage 1) and OUT (stage 2) once a descriptor is repointed. */
const ELSEWHERE = 0x8400_0000;
/** RAM the repointed descriptors' new tables come from, apart from the rig's. */
const TABLES_ELSEWHERE = RAM_BASE + 0x200_0000;
/** The stage-1 ASID and the stage-2 VMID of the rig's fixtures. */
const ASID = 1;
const VMID = 5;

function rig(smmu: Record<string, unknown> = {}): TranslationRig & { send(command: Uint32Array): void } {
  const r = translationRig({ smmu });
  r.s1.map(BigInt(IOVA), BigInt(OUT), 0x2000n, RW);
  r.s2.map(BigInt(OUT), BigInt(OUT), 0x2000n, RW);
  r.mapStage1TablesInStage2(IOVA);
  r.s1Stream();
  r.s2Stream();
  r.nestedStream();
  return Object.assign(r, {
    /** One command and a CMD_SYNC through the Command queue. */
    send(command: Uint32Array) {
      const prod = r.submit(command, encodeCmdSync());
      expect(r.reg(REG.CMDQ_CONS)).toBe(prod);
    },
  });
}

/** The descriptor address a walk of `input` reads at each level. */
function stepsOf(r: TranslationRig, format: VmsaFormat, root: number, input: number): number[] {
  const out: number[] = [];
  walk(format, root, input, {
    bus: r.bus,
    counter: r.bus.counter('probe'),
    onStep: (_level, address) => out.push(address),
  });
  return out;
}

const steps = (r: TranslationRig, stage: 1 | 2, input: number) =>
  stage === 1 ? stepsOf(r, r.s1Format, r.s1.rootPa, input) : stepsOf(r, r.s2Format, r.s2.rootPa, input);

/**
 * Points the level-2 descriptor a walk of `input` uses at a new level-3 table that maps `input`'s page to
 * ELSEWHERE — without any invalidation.
 */
function repointLevel2(r: TranslationRig, stage: 1 | 2, input: number): void {
  const format = stage === 1 ? r.s1Format : r.s2Format;
  const memory = new FrameAllocator([{ base: TABLES_ELSEWHERE, size: 0x10_0000 }]);
  const other = new IoPageTable(format, { bus: r.bus, memory, counter: r.bus.counter('pt') });
  other.map(BigInt(input), BigInt(ELSEWHERE), 0x1000n, RW);
  const level2 = steps(r, stage, input)[2];
  const otherLevel2 = stepsOf(r, format, other.rootPa, input)[2];
  const words = new Uint32Array(2);
  r.bus.readWords(otherLevel2!, words, 2, r.driver);
  r.put(level2!, words);
}

const pfnOf = (r: TranslationRig, stream: number, input: number) => {
  const t = r.translate(stream, input, PERM_READ);
  return t.ok ? t.pfn * 4096 : t.fault.vendorCode;
};

/** Table reads of one translation, its configuration cached. */
function reads(r: TranslationRig, stream: number, input: number): number {
  const hw = r.bus.counter('hw:smmu0');
  const before = hw.reads;
  pfnOf(r, stream, input);
  return hw.reads - before;
}

describe('walk caches: what a walk that hits reads', () => {
  it('a nested miss on the neighbouring page reads 3 descriptors instead of 24', () => {
    const r = rig();
    expect(pfnOf(r, NESTED_STREAM, IOVA)).toBe(OUT);
    // Stage 1 resumes at its level-3 table (an IPA): one stage-2 read for the table's IPA, the stage-1 leaf,
    // and one stage-2 read for the output IPA, each stage-2 walk resuming at its own level-3 table.
    expect(reads(r, NESTED_STREAM, IOVA + 0x1000)).toBe(3);
    const stats = r.smmu.stats();
    expect(stats.s1WalkCacheHits).toBe(1);
    expect(stats.s2WalkCacheHits).toBeGreaterThanOrEqual(2);
  });

  it('without walk caches (walkCacheEntries: 0) every nested miss reads 4 + 4 × 4 + 4 = 24', () => {
    const r = rig({ walkCacheEntries: 0 });
    expect(r.smmu.walkCaches).toBeUndefined();
    expect(pfnOf(r, NESTED_STREAM, IOVA)).toBe(OUT);
    expect(reads(r, NESTED_STREAM, IOVA + 0x1000)).toBe(24);
    expect(r.smmu.stats()).toMatchObject({ s1WalkCacheHits: 0, s2WalkCacheHits: 0 });
  });

  it('stage 1 and stage 2 alone resume at their last-level table: one read each', () => {
    const r = rig();
    pfnOf(r, S1_STREAM, IOVA);
    expect(reads(r, S1_STREAM, IOVA + 0x1000)).toBe(1);
    pfnOf(r, S2_STREAM, OUT);
    expect(reads(r, S2_STREAM, OUT + 0x1000)).toBe(1);
  });
});

describe('walk caches: stage 1 tables and the invalidations that reach them', () => {
  /** A rig that translated IOVA on the stage-1 stream, then had its level-2 descriptor repointed. */
  function stale() {
    const r = rig();
    expect(pfnOf(r, S1_STREAM, IOVA)).toBe(OUT);
    repointLevel2(r, 1, IOVA);
    return r;
  }
  // The stage-1-only stream's entries carry VMID 0 (its STE has no stage 2).
  const leafVa = encodeTlbiNhVa({ vmid: 0, asid: ASID, addressPage: IOVA / 4096, leaf: true });

  it('TLBI_NH_VA with Leaf = 1 drops the leaf only: the walk resumes at the old level-3 table', () => {
    const r = stale();
    r.send(leafVa);
    expect(pfnOf(r, S1_STREAM, IOVA)).toBe(OUT);
  });

  it('CFGI_ALL leaves cached tables (§4.3), so the old table is still walked', () => {
    const r = stale();
    r.send(encodeCfgiAll());
    r.send(leafVa);
    expect(pfnOf(r, S1_STREAM, IOVA)).toBe(OUT);
  });

  it.each([
    ['TLBI_NH_VA, Leaf = 0', encodeTlbiNhVa({ vmid: 0, asid: ASID, addressPage: IOVA / 4096, leaf: false })],
    ['TLBI_NH_VAA, Leaf = 0', encodeTlbiNhVaa({ vmid: 0, addressPage: IOVA / 4096, leaf: false })],
    ['TLBI_NH_ASID', encodeTlbiNhAsid({ vmid: 0, asid: ASID })],
    ['TLBI_NH_ALL', encodeTlbiNhAll({ vmid: 0 })],
    ['TLBI_S12_VMALL', encodeTlbiS12Vmall({ vmid: 0 })],
    ['TLBI_NSNH_ALL', encodeTlbiNsnhAll()],
  ])('%s drops the cached tables: the walk reads the new level-2 descriptor', (_name, command) => {
    const r = stale();
    r.send(command);
    expect(pfnOf(r, S1_STREAM, IOVA)).toBe(ELSEWHERE);
  });

  it.each([
    ['another ASID', encodeTlbiNhAsid({ vmid: 0, asid: ASID + 1 })],
    ['another VMID', encodeTlbiNhAll({ vmid: 1 })],
    ['another address', encodeTlbiNhVa({ vmid: 0, asid: ASID, addressPage: IOVA / 4096 + 512, leaf: false })],
    ['stage 2 only', encodeTlbiS2Ipa({ vmid: 0, addressPage: IOVA / 4096, leaf: false })],
  ])('a TLBI for %s leaves them', (_name, command) => {
    const r = stale();
    r.send(command);
    r.send(leafVa);
    expect(pfnOf(r, S1_STREAM, IOVA)).toBe(OUT);
  });
});

describe('walk caches: stage 2 tables and the invalidations that reach them', () => {
  function stale() {
    const r = rig();
    expect(pfnOf(r, S2_STREAM, OUT)).toBe(OUT);
    repointLevel2(r, 2, OUT);
    return r;
  }
  const leafIpa = encodeTlbiS2Ipa({ vmid: VMID, addressPage: OUT / 4096, leaf: true });

  it('TLBI_S2_IPA with Leaf = 1 drops the leaf only; TLBI_NH_ALL does not reach stage 2', () => {
    const r = stale();
    r.send(leafIpa);
    expect(pfnOf(r, S2_STREAM, OUT)).toBe(OUT);
    r.send(encodeTlbiNhAll({ vmid: VMID }));
    r.send(leafIpa);
    expect(pfnOf(r, S2_STREAM, OUT)).toBe(OUT);
  });

  it.each([
    ['TLBI_S2_IPA, Leaf = 0', encodeTlbiS2Ipa({ vmid: VMID, addressPage: OUT / 4096, leaf: false })],
    ['TLBI_S12_VMALL', encodeTlbiS12Vmall({ vmid: VMID })],
    ['TLBI_NSNH_ALL', encodeTlbiNsnhAll()],
  ])('%s drops them', (_name, command) => {
    const r = stale();
    r.send(command);
    expect(pfnOf(r, S2_STREAM, OUT)).toBe(ELSEWHERE);
  });

  it('a nested stream walks its stage-1 tables through the cached stage-2 tables too', () => {
    const r = rig();
    expect(pfnOf(r, NESTED_STREAM, IOVA)).toBe(OUT);
    repointLevel2(r, 2, OUT);
    r.send(encodeTlbiNhVa({ vmid: VMID, asid: ASID, addressPage: IOVA / 4096, leaf: true }));
    expect(pfnOf(r, NESTED_STREAM, IOVA)).toBe(OUT);
    r.send(encodeTlbiS2Ipa({ vmid: VMID, addressPage: OUT / 4096, leaf: false }));
    // TLBI_S2_IPA need not reach combined entries (§4.4.3.1): the nested leaf cached above still answers,
    // until a stage-1 TLBI drops it, as Linux follows a nest parent's stage-2 change with TLBI_NH_ALL.
    expect(pfnOf(r, NESTED_STREAM, IOVA)).toBe(OUT);
    r.send(encodeTlbiNhVa({ vmid: VMID, asid: ASID, addressPage: IOVA / 4096, leaf: true }));
    expect(pfnOf(r, NESTED_STREAM, IOVA)).toBe(ELSEWHERE);
  });
});
