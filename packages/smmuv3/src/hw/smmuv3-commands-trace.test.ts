/**
 * What the SMMU reports about the commands it runs: one `cmd` trace line per command with its fields and how
 * many cached entries it dropped (configuration caches, TLB and walk caches together), the counters in
 * `stats()`, and the cache geometry the options give.
 */
import { PERM_READ, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import {
  IOVA,
  NESTED_STREAM,
  S1_STREAM,
  translationRequest,
  translationRig,
} from '../../test/translation-rig.js';
import {
  encodeCfgiAll,
  encodeCfgiSte,
  encodeCfgiSteRange,
  encodeCmdSync,
  encodePrefetchConfig,
  encodeResume,
  encodeStallTerm,
  encodeTlbiNhAll,
  encodeTlbiNsnhAll,
  RESUME_ACTION,
} from './commands.js';

/** A rig with a recording tracer whose streams have all been translated once (STEs, CDs, TLB, walk caches). */
function warmRig(smmu: Record<string, unknown> = {}) {
  const tracer = new Tracer();
  const rig = translationRig({ tracer, smmu });
  rig.s1.map(BigInt(IOVA), 0x8300_0000n, 0x1000n, { read: true, write: true });
  rig.s2.map(0x8300_0000n, 0x8300_0000n, 0x1000n, { read: true, write: true });
  rig.mapStage1TablesInStage2(IOVA);
  rig.s1Stream();
  rig.nestedStream();
  for (const sid of [S1_STREAM, NESTED_STREAM]) {
    const r = rig.smmu.translate(translationRequest(sid, IOVA));
    if (!r.ok) throw new Error(`stream ${sid}: ${r.fault.vendorCode}`);
  }
  tracer.startRecording();
  /** Runs the commands and returns the `cmd` trace lines they produced. */
  const run = (...commands: Uint32Array[]): string[] => {
    const from = tracer.records.length;
    rig.submit(...commands);
    return tracer.records
      .slice(from)
      .filter((r) => r.layer === 'hw' && r.name === 'cmd' && r.source === 'smmu0')
      .map((r) => r.message);
  };
  return { rig, run };
}

describe('command trace lines', () => {
  it('name the command and its non-zero fields, in hex', () => {
    const { run } = warmRig();
    expect(run(encodePrefetchConfig({ streamId: 0x42 }), encodeCmdSync())).toEqual([
      'CMD_PREFETCH_CONFIG streamId=0x42',
      'CMD_SYNC',
    ]);
    expect(run(encodeCfgiSte({ streamId: 0x99, leaf: true }))).toEqual([
      'CMD_CFGI_STE streamId=0x99 leaf=true',
    ]);
  });

  it('count the configuration entries a CFGI drops: STEs and the CDs cached through them', () => {
    const { run } = warmRig();
    expect(run(encodeCfgiSte({ streamId: S1_STREAM }))).toEqual([
      `CMD_CFGI_STE streamId=0x${S1_STREAM}: 2 entries dropped`,
    ]);
    // Range 0 covers 2^1 StreamIDs: 2 and 3, the nested stream's STE and CD.
    expect(run(encodeCfgiSteRange({ streamId: 2, range: 0 }))).toEqual([
      'CMD_CFGI_STE_RANGE streamId=0x2: 2 entries dropped',
    ]);
    expect(run(encodeCfgiAll())).toEqual(['CMD_CFGI_ALL']);
    expect(warmRig().run(encodeCfgiAll())).toEqual(['CMD_CFGI_ALL: 4 entries dropped']);
  });

  it('count what a TLB invalidation drops from the TLB and both walk caches together', () => {
    const { rig, run } = warmRig();
    const stats = rig.smmu.stats();
    expect([stats.tlbHits, stats.s1WalkCacheMisses! > 0, stats.s2WalkCacheMisses! > 0]).toEqual([
      0,
      true,
      true,
    ]);
    const cached =
      rig.smmu.tlb.size + rig.smmu.walkCaches!.s1.entries.size + rig.smmu.walkCaches!.s2.entries.size;
    expect(cached).toBeGreaterThan(2);
    expect(run(encodeTlbiNsnhAll())).toEqual([`CMD_TLBI_NSNH_ALL: ${cached} entries dropped`]);
    expect(run(encodeTlbiNhAll({ vmid: 0 }))).toEqual(['CMD_TLBI_NH_ALL']);
  });

  it('count the stalled transactions a STALL_TERM ends, and say when a RESUME finds none', () => {
    const { run } = warmRig();
    expect(run(encodeStallTerm({ streamId: S1_STREAM }))).toEqual([`CMD_STALL_TERM streamId=0x${S1_STREAM}`]);
    expect(run(encodeResume({ streamId: S1_STREAM, stag: 7, action: RESUME_ACTION.TERMINATE }))).toEqual([
      `CMD_RESUME: no stalled transaction 0x7 on stream 0x${S1_STREAM}`,
    ]);
  });
});

describe('command trace lines for stalled transactions', () => {
  it('count the transactions a RESUME or STALL_TERM ends', () => {
    const tracer = new Tracer();
    const rig = translationRig({ tracer });
    rig.s1.map(BigInt(IOVA), 0x8300_0000n, 0x3000n, { read: true, write: true });
    // Access flag clear: each read faults, and CD.S = 1 holds it.
    for (let page = 0; page < 3; page++)
      rig.editDescriptor(rig.leafAddress(1, IOVA + page * 0x1000), (lo, hi) => [lo & ~(1 << 10), hi]);
    rig.s1Stream({ s: true });
    for (let page = 0; page < 3; page++) rig.translate(S1_STREAM, IOVA + page * 0x1000, PERM_READ);
    tracer.startRecording();
    rig.submit(
      encodeResume({ streamId: S1_STREAM, stag: 0, action: RESUME_ACTION.TERMINATE }),
      encodeStallTerm({ streamId: S1_STREAM }),
    );
    expect(tracer.records.filter((r) => r.name === 'cmd').map((r) => r.message)).toEqual([
      `CMD_RESUME streamId=0x${S1_STREAM}: 1 entries dropped`,
      `CMD_STALL_TERM streamId=0x${S1_STREAM}: 2 entries dropped`,
    ]);
  });
});

describe('cache geometry and statistics', () => {
  it('builds each cache from its entries and ways', () => {
    const { rig } = warmRig({ tlbEntries: 64, tlbWays: 4, walkCacheEntries: 32, walkCacheWays: 2 });
    expect([rig.smmu.tlb.cache.sets, rig.smmu.tlb.cache.ways]).toEqual([16, 4]);
    expect([rig.smmu.walkCaches!.s1.entries.cache.sets, rig.smmu.walkCaches!.s2.entries.cache.ways]).toEqual([
      16, 2,
    ]);
  });

  it('without walk caches, TLB invalidations reach the TLB alone and the walk-cache counters stay 0', () => {
    const { rig, run } = warmRig({ walkCacheEntries: 0 });
    expect(rig.smmu.walkCaches).toBeUndefined();
    expect(rig.smmu.stats()).toMatchObject({
      s1WalkCacheHits: 0,
      s1WalkCacheMisses: 0,
      s2WalkCacheHits: 0,
      s2WalkCacheMisses: 0,
    });
    expect(run(encodeTlbiNsnhAll())).toEqual([`CMD_TLBI_NSNH_ALL: ${2} entries dropped`]);
  });
});
