/**
 * What one `iotlbSync` turns a domain's gathered unmaps into (domain.ts; Linux
 * `arm_smmu_tlb_inv_range_domain`, `arm_smmu_atc_inv_domain`): adjacent ranges merged into one command,
 * disjoint ones kept apart, the 512-operation limit counted in granules, ATC invalidations per attachment
 * (SSV for a PASID), freed domains refusing use, and the domain's trace.
 */
import { errnoOf, iova } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { commandsSince, createDriverSystem, type DriverSystem } from '../../test/driver-system.js';
import type { Smmuv3Domain } from './domain.js';

const RW = { read: true, write: true };
const KiB = 1024n;

function domainOn(s: DriverSystem, flags = {}, spec = {}) {
  const dev = s.device('dev0', 0x10, spec);
  s.probe(dev);
  const domain = s.driver.domainAllocPaging(flags) as Smmuv3Domain;
  // A page at 0 keeps the lower tables alive, so the unmaps below free no table.
  const granule = domain.format.granule;
  domain.map(iova(0n), s.buffer(granule, granule), BigInt(granule), RW);
  return { dev, domain };
}

describe('gathered ranges', () => {
  it('two unmaps of adjacent pages become one range TLBI; a gap keeps them apart', () => {
    const s = createDriverSystem();
    const { domain } = domainOn(s);
    domain.map(iova(0x10000n), s.buffer(0x4000), 16n * KiB, RW);
    let before = s.driver.cmdq.producer;
    domain.unmap(iova(0x11000n), 4n * KiB);
    domain.unmap(iova(0x10000n), 4n * KiB);
    domain.iotlbSync();
    expect(commandsSince(s, before)).toMatchObject([
      { op: 'TLBI_NH_VA', addressPage: 0x10, num: 0, scale: 1, leaf: true }, // (0 + 1) × 2^1 pages
      { op: 'SYNC' },
    ]);
    before = s.driver.cmdq.producer;
    domain.unmap(iova(0x13000n), 4n * KiB);
    domain.map(iova(0x20000n), s.buffer(4096), 4n * KiB, RW);
    domain.unmap(iova(0x20000n), 4n * KiB);
    domain.iotlbSync();
    expect(commandsSince(s, before)).toMatchObject([
      { op: 'TLBI_NH_VA', addressPage: 0x13, num: 0, scale: 0 },
      { op: 'TLBI_NH_VA', addressPage: 0x20, num: 0, scale: 0 },
      { op: 'SYNC' },
    ]);
  });

  it('without RIL the 512-operation limit counts granules: 32 × 16 KiB is 32 operations, not a TLBI_NH_ASID', () => {
    const s = createDriverSystem({ options: { rangeInvalidation: false, granules: { g4k: false } } });
    const { domain } = domainOn(s);
    expect(domain.format.granule).toBe(16384);
    domain.map(iova(0x10_0000n), s.buffer(32 * 16384, 16384), 512n * KiB, RW);
    const before = s.driver.cmdq.producer;
    domain.unmap(iova(0x10_0000n), 512n * KiB);
    domain.iotlbSync();
    const ops = commandsSince(s, before).map((c) => c.op);
    expect(ops.at(-1)).toBe('SYNC');
    expect(new Set(ops.slice(0, -1))).toEqual(new Set(['TLBI_NH_VA']));
  });
});

describe('ATC invalidation per attachment', () => {
  it('a PASID attachment gets CMD_ATC_INV with SSV and its PASID, over the unmapped span', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', 0x10, { pasidBits: 4, atcEntries: 8 });
    s.probe(dev);
    const domain = s.driver.domainAllocPaging({ pasid: true }) as Smmuv3Domain;
    domain.map(iova(0n), s.buffer(4096), 4n * KiB, RW);
    domain.map(iova(0x5000n), s.buffer(4096), 4n * KiB, RW);
    s.driver.setDevPasid(domain, dev, 3);
    const before = s.driver.cmdq.producer;
    domain.unmap(iova(0x5000n), 4n * KiB);
    domain.iotlbSync();
    expect(commandsSince(s, before).filter((c) => c.op === 'ATC_INV')).toEqual([
      { op: 'ATC_INV', streamId: 0x10, ssv: true, substreamId: 3, global: false, addressPage: 5, size: 0 },
    ]);
  });

  it('masters without ATS get none', () => {
    const s = createDriverSystem();
    const { dev, domain } = domainOn(s);
    s.driver.attachDev(domain, dev);
    domain.map(iova(0x5000n), s.buffer(4096), 4n * KiB, RW);
    const before = s.driver.cmdq.producer;
    domain.unmap(iova(0x5000n), 4n * KiB);
    domain.iotlbSync();
    expect(commandsSince(s, before).map((c) => c.op)).toEqual(['TLBI_NH_VA', 'SYNC']);
  });
});

describe('a freed domain', () => {
  it('refuses map, unmap, iovaToPhys, dirty tracking (ENOENT); a second free does nothing', () => {
    const s = createDriverSystem();
    const d = s.driver.domainAllocPaging({ dirtyTracking: true }) as Smmuv3Domain;
    d.free();
    expect(d.isFreed).toBe(true);
    const before = s.driver.cmdq.producer;
    d.free();
    expect(s.driver.cmdq.producer).toBe(before);
    expect(errnoOf(() => d.map(iova(0n), s.buffer(4096), 4n * KiB, RW))).toBe('ENOENT');
    expect(errnoOf(() => d.unmap(iova(0n), 4n * KiB))).toBe('ENOENT');
    expect(errnoOf(() => d.iovaToPhys(iova(0n)))).toBe('ENOENT');
    expect(errnoOf(() => d.setDirtyTracking(true))).toBe('ENOENT');
    expect(errnoOf(() => d.readAndClearDirty(iova(0n), 4n * KiB, () => {}, true))).toBe('ENOENT');
  });
});

describe('the trace', () => {
  it('map, unmap, iotlb.sync and free, each naming the domain', () => {
    const s = createDriverSystem();
    const d = s.driver.domainAllocPaging() as Smmuv3Domain;
    s.tracer.startRecording();
    d.map(iova(0x1000n), s.buffer(4096), 4n * KiB, RW);
    d.unmap(iova(0x1000n), 4n * KiB);
    d.iotlbSync();
    d.free();
    const records = s.tracer.stopRecording().filter((r) => r.name.startsWith('domain.'));
    expect(records.map((r) => r.name)).toEqual([
      'domain.map',
      'domain.unmap',
      'domain.iotlb.sync',
      'domain.free',
    ]);
    expect(records.every((r) => r.layer === 'driver' && r.source === 'smmu0')).toBe(true);
    expect(records.every((r) => r.message.startsWith(`domain ${d.id}: `))).toBe(true);
  });
});
