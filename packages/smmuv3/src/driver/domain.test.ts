/**
 * SMMUv3 paging domains on the real device model: formats from the ID registers, the invalidations
 * `iotlbSync` issues (range TLBIs with IDR3.RIL, one per page without, nest parents), dirty tracking,
 * ASID/VMID exhaustion and freeing.
 */
import { errnoOf, type IommuDomain, iova, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { commandsSince, createDriverSystem, type DriverSystem } from '../../test/driver-system.js';
import { decodeCd } from '../hw/cd.js';
import { TLBI_TG } from '../hw/commands.js';
import { decodeSte } from '../hw/ste.js';
import { CMDQ_MAX_TLBI_OPS, Smmuv3Domain, stage1Format, stage2Format } from './domain.js';

const RW = { read: true, write: true };
const KiB = 1024n;
const MiB = 1024n * KiB;

/** A probed device attached to a new domain; `keep` maps a page at 0 so unmaps elsewhere free no table. */
function attached(s: DriverSystem, flags = {}) {
  const dev = s.device('dev0', 0x10);
  s.probe(dev);
  const domain = s.driver.domainAllocPaging(flags) as Smmuv3Domain;
  domain.map(iova(0n), s.buffer(4096), 4n * KiB, RW);
  s.driver.attachDev(domain, dev);
  return { dev, domain };
}

describe('Smmuv3Domain: formats', () => {
  it('stage 1: 4K granule, IAS 48, OAS from IDR5; page sizes 4K/2M/1G', () => {
    const s = createDriverSystem({ options: { oasBits: 44 } });
    const d = s.driver.domainAllocPaging() as Smmuv3Domain;
    expect(d).toMatchObject({ stage: 1, vmid: 0 });
    expect(d.asid).toBeGreaterThan(0);
    expect(d.format).toMatchObject({ granule: 4096, ias: 48, oas: 44, stage: 1 });
    expect(d.pgsizeBitmap).toBe((1n << 12n) | (1n << 21n) | (1n << 30n));
    expect(d.aperture.end).toBe((1n << 48n) - 1n);
  });

  it('stage 2 (nest parent): IAS = OAS; 16K or 64K when the SMMU has no 4K granule', () => {
    const s = createDriverSystem({ options: { oasBits: 40, granules: { g4k: false } } });
    const d = s.driver.domainAllocPaging({ nestParent: true }) as Smmuv3Domain;
    expect(d).toMatchObject({ stage: 2, asid: 0, nestParent: true });
    expect(d.vmid).toBeGreaterThan(0);
    expect(d.format).toMatchObject({ granule: 16384, ias: 40, oas: 40, stage: 2 });
    expect(d.aperture.end).toBe((1n << 40n) - 1n);
    expect(stage1Format({ granules: { g4k: false, g16k: false, g64k: true }, oasBits: 52 })).toMatchObject({
      granule: 65536,
      oas: 52,
    });
    expect(stage2Format({ granules: { g4k: true, g16k: true, g64k: true }, oasBits: 52 }).oas).toBe(48);
  });

  it('an SMMU with stage 2 only gives stage-2 domains; EOPNOTSUPP for what the ID registers lack', () => {
    const s2only = createDriverSystem({
      options: { s1: false, nesting: false, ssidBits: 0, twoLevelCdTable: false },
    });
    expect((s2only.driver.domainAllocPaging() as Smmuv3Domain).stage).toBe(2);
    expect(errnoOf(() => s2only.driver.domainAllocPaging({ nestParent: true }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => s2only.driver.domainAllocPaging({ pasid: true }))).toBe('EOPNOTSUPP');
    const noDirty = createDriverSystem({ options: { httu: 'access' } });
    expect(errnoOf(() => noDirty.driver.domainAllocPaging({ dirtyTracking: true }))).toBe('EOPNOTSUPP');
    const s = createDriverSystem();
    expect(errnoOf(() => s.driver.domainAllocPaging({ nestParent: true, pasid: true }))).toBe('EOPNOTSUPP');
  });

  it('map refuses overlaps (EEXIST) and misalignment (EINVAL) without changing anything', () => {
    const s = createDriverSystem();
    const d = s.driver.domainAllocPaging();
    const buf = s.buffer(8192);
    d.map(iova(0x1000n), buf, 4n * KiB, RW);
    expect(errnoOf(() => d.map(iova(0n), buf, 8n * KiB, RW))).toBe('EEXIST');
    expect(d.iovaToPhys(iova(0n))).toBeUndefined();
    expect(errnoOf(() => d.map(iova(0x2800n), buf, 4n * KiB, RW))).toBe('EINVAL');
    expect(d.iovaToPhys(iova(0x1234n))).toBe(buf + 0x234n);
  });
});

describe('Smmuv3Domain.iotlbSync', () => {
  function unmap64K(ril: boolean) {
    const s = createDriverSystem({ options: { rangeInvalidation: ril } });
    const { dev, domain } = attached(s);
    domain.map(iova(0x10000n), s.buffer(0x10000), 64n * KiB, RW);
    expect(dev.dmaRead(0x1f000n, 1).ok).toBe(true);
    const before = s.driver.cmdq.producer;
    domain.unmap(iova(0x10000n), 64n * KiB);
    expect(s.driver.cmdq.producer).toBe(before); // unmap only gathers
    domain.iotlbSync();
    expect(dev.dmaRead(0x1f000n, 1).ok).toBe(false);
    return { commands: commandsSince(s, before), domain };
  }

  it('with IDR3.RIL: one range TLBI_NH_VA (ASID, Leaf, TG 4K, 16 pages = 1 × 2^4) then CMD_SYNC', () => {
    const { commands, domain } = unmap64K(true);
    expect(commands).toEqual([
      {
        op: 'TLBI_NH_VA',
        vmid: 0,
        asid: domain.asid,
        leaf: true,
        addressPage: 0x10,
        num: 0,
        scale: 4,
        tg: TLBI_TG.SIZE_4K,
        ttl: 0,
      },
      expect.objectContaining({ op: 'SYNC' }),
    ]);
  });

  it('without RIL: one TLBI_NH_VA per 4 KiB page, then CMD_SYNC', () => {
    const { commands } = unmap64K(false);
    expect(commands.map((c) => c.op)).toEqual([...Array(16).fill('TLBI_NH_VA'), 'SYNC']);
    expect(commands.slice(0, 16).map((c) => (c as { addressPage: number }).addressPage)).toEqual(
      Array.from({ length: 16 }, (_, i) => 0x10 + i),
    );
    expect(commands[0]).toMatchObject({ tg: 0, num: 0, leaf: true });
  });

  it('a freed table is invalidated with a non-leaf range; without RIL from 512 pages on: one TLBI_NH_ASID', () => {
    for (const ril of [true, false]) {
      const s = createDriverSystem({ options: { rangeInvalidation: ril } });
      const { domain } = attached(s);
      domain.map(iova(0x4000_0000n), s.buffer(4096), 4n * KiB, RW);
      const before = s.driver.cmdq.producer;
      domain.unmap(iova(0x4000_0000n), 4n * KiB); // its level-3 (and level-2) tables become empty
      domain.iotlbSync();
      const ops = commandsSince(s, before).map((c) => c.op);
      if (ril) {
        const tlbis = commandsSince(s, before).filter((c) => c.op === 'TLBI_NH_VA');
        expect(tlbis.every((c) => (c as { leaf: boolean }).leaf === false)).toBe(true);
        expect(tlbis.length).toBeLessThanOrEqual(2);
      } else {
        expect(ops).toEqual(['TLBI_NH_ASID', 'SYNC']);
      }
    }
    expect(CMDQ_MAX_TLBI_OPS).toBe(512);
  });

  it('a 2 MiB block: one leaf range, and DMA anywhere in it faults afterwards', () => {
    const s = createDriverSystem();
    const { dev, domain } = attached(s);
    domain.map(iova(0x20_0000n), s.buffer(2 * 2 ** 20, 2 * 2 ** 20), 2n * MiB, RW);
    expect(dev.dmaRead(0x3f_f000n, 1).ok).toBe(true);
    expect(domain.table.tablePages).toBe(4); // the block lives at level 2
    const before = s.driver.cmdq.producer;
    domain.unmap(iova(0x20_0000n), 2n * MiB);
    domain.iotlbSync();
    expect(commandsSince(s, before)).toMatchObject([
      { op: 'TLBI_NH_VA', leaf: true, addressPage: 0x200, scale: 9, num: 0 },
      { op: 'SYNC' },
    ]);
    expect(dev.dmaRead(0x3f_f000n, 1).ok).toBe(false);
  });

  it('a nest parent: TLBI_S2_IPA for its VMID, then TLBI_NH_ALL for the VMID (combined entries)', () => {
    const s = createDriverSystem();
    const { dev, domain } = attached(s, { nestParent: true });
    domain.map(iova(0x10000n), s.buffer(0x2000), 8n * KiB, RW);
    expect(dev.dmaRead(0x10000n, 1).ok).toBe(true);
    const before = s.driver.cmdq.producer;
    domain.unmap(iova(0x10000n), 8n * KiB);
    domain.iotlbSync();
    expect(commandsSince(s, before)).toMatchObject([
      { op: 'TLBI_S2_IPA', vmid: domain.vmid, leaf: true, addressPage: 0x10, scale: 1, tg: TLBI_TG.SIZE_4K },
      { op: 'SYNC' },
      { op: 'TLBI_NH_ALL', vmid: domain.vmid },
      { op: 'SYNC' },
    ]);
    expect(dev.dmaRead(0x10000n, 1).ok).toBe(false);
  });

  it('nothing gathered: iotlbSync issues nothing; ATC invalidations follow the TLBI sync for ATS masters', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', 0x10, { atcEntries: 8 });
    s.probe(dev);
    const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
    domain.map(iova(0n), s.buffer(4096), 4n * KiB, RW);
    domain.map(iova(0x7000n), s.buffer(0x2000), 8n * KiB, RW);
    s.driver.attachDev(domain, dev);
    const idle = s.driver.cmdq.producer;
    domain.iotlbSync();
    expect(s.driver.cmdq.producer).toBe(idle);
    domain.unmap(iova(0x7000n), 8n * KiB);
    domain.iotlbSync();
    // Pages 7–8: the ATC_INV span is the aligned 16 pages holding both (Linux arm_smmu_atc_inv_to_cmd).
    expect(commandsSince(s, idle)).toMatchObject([
      { op: 'TLBI_NH_VA', addressPage: 7, scale: 1 },
      { op: 'SYNC' },
      { op: 'ATC_INV', streamId: 0x10, ssv: false, addressPage: 0, size: 4 },
      { op: 'SYNC' },
    ]);
  });
});

describe('Smmuv3Domain: dirty tracking', () => {
  it('stage 1: CD.HA/HD; DMA writes are reported once per clear, and seen again after the TLB flush', () => {
    const s = createDriverSystem();
    const { dev, domain } = attached(s, { dirtyTracking: true });
    expect(decodeCd(s.driver.master(dev).cdTable!.readCd(0))).toMatchObject({ ha: true, hd: true });
    domain.map(iova(0x10000n), s.buffer(0x4000), 16n * KiB, RW);
    const dirty = (clear = true) => {
      const pages: bigint[] = [];
      domain.readAndClearDirty(iova(0x10000n), 16n * KiB, (at) => pages.push(at), clear);
      return pages;
    };
    // New mappings start dirty (as Linux's): clear them first.
    expect(dirty()).toHaveLength(4);
    expect(dirty()).toEqual([]);
    expect(dev.dmaWrite(0x11000n, Uint8Array.of(1)).ok).toBe(true);
    expect(dev.dmaRead(0x12000n, 1).ok).toBe(true);
    expect(dirty(false)).toEqual([0x11000n]);
    expect(dirty()).toEqual([0x11000n]);
    expect(dirty()).toEqual([]);
    // The clear flushed the TLB: the next write walks and marks the page dirty again.
    expect(dev.dmaWrite(0x11000n, Uint8Array.of(2)).ok).toBe(true);
    expect(dirty()).toEqual([0x11000n]);
    domain.setDirtyTracking(false);
    domain.setDirtyTracking(true);
  });

  it('stage 2 (nest parent with dirty tracking): STE.S2HA/S2HD, writes reported', () => {
    const s = createDriverSystem();
    const { dev, domain } = attached(s, { nestParent: true, dirtyTracking: true });
    expect(decodeSte(s.driver.streamTable.readSte(0x10))).toMatchObject({ s2Ha: true, s2Hd: true });
    domain.map(iova(0x10000n), s.buffer(0x2000), 8n * KiB, RW);
    domain.readAndClearDirty(iova(0x10000n), 8n * KiB, () => {}, true);
    expect(dev.dmaWrite(0x11008n, Uint8Array.of(1)).ok).toBe(true);
    const pages: bigint[] = [];
    domain.readAndClearDirty(iova(0x10000n), 8n * KiB, (at) => pages.push(at), true);
    expect(pages).toEqual([0x11000n]);
  });

  it('setDirtyTracking on a domain allocated without it is EOPNOTSUPP', () => {
    const s = createDriverSystem();
    const d = s.driver.domainAllocPaging();
    expect(errnoOf(() => d.setDirtyTracking!(true))).toBe('EOPNOTSUPP');
  });
});

describe('Smmuv3Domain: IDs and freeing', () => {
  it('ASIDs run out after 255 stage-1 domains with 8-bit ASIDs (ENOSPC); a freed one is reused', () => {
    const s = createDriverSystem({ options: { asid16: false } });
    const domains: IommuDomain[] = [];
    for (let i = 0; i < 255; i++) domains.push(s.driver.domainAllocPaging());
    const frames = s.driverFrames();
    expect(errnoOf(() => s.driver.domainAllocPaging())).toBe('ENOSPC');
    expect(s.driverFrames()).toBe(frames);
    const asid = (domains[100] as Smmuv3Domain).asid;
    domains[100]!.free();
    expect((s.driver.domainAllocPaging() as Smmuv3Domain).asid).toBe(asid);
  });

  it('VMIDs run out after 255 stage-2 domains with 8-bit VMIDs; VMID 0 is never used', () => {
    const s = createDriverSystem({ options: { vmid16: false } });
    const vmids = new Set<number>();
    for (let i = 0; i < 255; i++)
      vmids.add((s.driver.domainAllocPaging({ nestParent: true }) as Smmuv3Domain).vmid);
    expect(vmids.size).toBe(255);
    expect(vmids.has(0)).toBe(false);
    expect(errnoOf(() => s.driver.domainAllocPaging({ nestParent: true }))).toBe('ENOSPC');
    // Stage-1 domains use ASIDs, not VMIDs.
    expect(s.driver.domainAllocPaging()).toBeInstanceOf(Smmuv3Domain);
  });

  it('free: EBUSY while attached; then the ASID is invalidated and released, the tables returned', () => {
    const s = createDriverSystem();
    const frames = s.driverFrames();
    const { dev, domain } = attached(s);
    expect(errnoOf(() => domain.free())).toBe('EBUSY');
    s.driver.attachDev(s.driver.blockedDomain, dev);
    const held = s.driverFrames();
    const tablePages = domain.table.tablePages;
    const before = s.driver.cmdq.producer;
    const asid = domain.asid;
    domain.free();
    expect(commandsSince(s, before)).toMatchObject([{ op: 'TLBI_NH_ASID', asid, vmid: 0 }, { op: 'SYNC' }]);
    expect(s.driver.asids.has(asid)).toBe(false);
    expect(errnoOf(() => domain.map(iova(0n), s.buffer(4096), 4n * KiB, RW))).toBe('ENOENT');
    domain.free(); // idempotent
    expect(s.driverFrames()).toBe(held - tablePages);
    // What is left beyond probe: the master's CD table (one frame) and the level-2 stream table (4).
    expect(s.driverFrames()).toBe(frames + 1 + 4);
  });

  it('a stage-2 domain frees its VMID after TLBI_S12_VMALL', () => {
    const s = createDriverSystem();
    const d = s.driver.domainAllocPaging({ nestParent: true }) as Smmuv3Domain;
    const before = s.driver.cmdq.producer;
    d.free();
    expect(commandsSince(s, before)).toMatchObject([{ op: 'TLBI_S12_VMALL', vmid: d.vmid }, { op: 'SYNC' }]);
    expect(s.driver.vmids.used).toBe(0);
  });

  it('a write fault on a read-only page is an F_PERMISSION event reported with the write access', () => {
    const s = createDriverSystem();
    const { dev, domain } = attached(s);
    domain.map(iova(0x8000n), s.buffer(4096), 4n * KiB, { read: true, write: false });
    expect(dev.dmaRead(0x8000n, 1).ok).toBe(true);
    expect(dev.dmaWrite(0x8000n, Uint8Array.of(1)).ok).toBe(false);
    s.service();
    expect(s.faults.map((f) => f.fault)).toMatchObject([
      { kind: 'permission', vendorCode: 'F_PERMISSION', access: PERM_WRITE, iova: 0x8000n },
    ]);
  });
});
