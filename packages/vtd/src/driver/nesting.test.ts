/**
 * Host nesting on the real unit (Linux intel/nested.c): a nest parent mapping a VM's RAM, nested domains
 * from `iommu_hwpt_vtd_s1` whose first-stage tables live in that RAM, the nested PASID entries the driver
 * writes, user invalidations found in the invalidation queue descriptor by descriptor, and the parent's
 * flushes reaching the nested DIDs.
 */
import { errnoOf, iova, NO_PASID, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { buildTableAt, x86Format } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { type DriverRig, driverRig } from '../../test/driver-rig.js';
import { decodeInvDescriptor, INV_TYPE, type InvDescriptor } from '../hw/inv-descriptors.js';
import { FLPM, PGTT } from '../hw/pasid-entry.js';
import { IQA_DW, REG } from '../hw/regs.js';
import { VTD_INV_ALL_PAGES, VTD_INV_FLAGS_LEAF, VTD_S1, type VtdNestedDomain } from './nested-domain.js';
import type { VtdPagingDomain } from './paging-domain.js';
import { QI_LENGTH } from './qi.js';
import { VtdDriver } from './vtd-driver.js';

const RW = { read: true, write: true };
const KiB = 1024;
const SID = 0x310;
/** The VM's RAM: 1 MiB of guest-physical space; first-stage tables from TABLES_GPA. */
const GPA_BASE = 0x4000_0000;
const GPA_SIZE = 1024 * KiB;
const TABLES_GPA = GPA_BASE + 512 * KiB;
const DATA_IOVA = 0x1000_0000;
const GUEST_FS = x86Format({ levels: 4, oas: 52, gigaPages: true });

function vm(options: Record<string, unknown> = {}) {
  const r = driverRig({ options });
  const driver = new VtdDriver(r.context);
  driver.probe();
  const dev = r.device(SID, 8);
  driver.probeDevice(dev);
  const ram = r.buffers.allocBytes(GPA_SIZE, 2 * 1024 * KiB);
  const parent = driver.domainAllocPaging({ nestParent: true }) as VtdPagingDomain;
  parent.map(iova(BigInt(GPA_BASE)), ram, BigInt(GPA_SIZE), RW);
  const counter = r.bus.counter('guest');
  let next = TABLES_GPA;
  /** The guest's first stage in its RAM mapping `maps` (IOVA → GPA); returns its root GPA. */
  const guestTable = (maps: { iova: number; gpa: number }[]): bigint =>
    buildTableAt(
      GUEST_FS,
      maps.map((m) => ({ iova: BigInt(m.iova), pa: BigInt(m.gpa) })),
      RW,
      {
        allocTable: () => {
          const page = next;
          next += 4 * KiB;
          return BigInt(page);
        },
        write: (gpa, words) =>
          r.bus.writeWords(Number(ram) + Number(gpa) - GPA_BASE, words, words.length, counter),
      },
    );
  const dma = (address: number, access = PERM_WRITE, pasid = NO_PASID) =>
    r.vtd.translate({ streamId: SID, pasid, iovaPfn: Math.floor(address / 4096), offset: 0, access });
  const hpaOf = (gpa: number): number => Number(ram) + gpa - GPA_BASE;
  return { r, driver, dev, ram, parent, guestTable, dma, hpaOf };
}

/** The descriptors the driver queued while `run` ran, invalidation waits left out. */
function queued(r: DriverRig, run: () => void): InvDescriptor[] {
  const iqa = r.reg(REG.IQA);
  const base = r.reg(REG.IQA + 4) * 2 ** 32 + ((iqa & ~0xfff) >>> 0);
  const wide = (iqa & IQA_DW) !== 0;
  const shift = wide ? 5 : 4;
  const words = wide ? 8 : 4;
  let index = r.reg(REG.IQH) >>> shift;
  run();
  const tail = r.reg(REG.IQH) >>> shift;
  const out: InvDescriptor[] = [];
  for (; index !== tail; index = (index + 1) % QI_LENGTH) {
    const d = decodeInvDescriptor(r.words(base + index * 4 * words, words), 0, wide);
    if ('type' in d && d.type !== INV_TYPE.WAIT) out.push(d as InvDescriptor);
  }
  return out;
}

describe('nested domains (Linux intel_iommu_domain_alloc_nested, intel_pasid_setup_nested)', () => {
  it('translate DMA through the guest first stage and the parent, with a nested PASID entry of their own DID', () => {
    const v = vm();
    const root = v.guestTable([{ iova: DATA_IOVA, gpa: GPA_BASE + 0x3000 }]);
    const nested = v.driver.domainAllocNested(v.dev, v.parent, {
      pgtblAddr: root,
      addrWidth: 48,
      flags: VTD_S1.WPE,
    }) as VtdNestedDomain;
    v.driver.attachDev(nested, v.dev);
    const out = v.dma(DATA_IOVA + 0x10);
    expect(out.ok && out.pfn * 4096).toBe(v.hpaOf(GPA_BASE + 0x3000));
    expect(v.dma(DATA_IOVA + 0x1000).ok).toBe(false);
    const entry = v.driver.pasidEntry(v.dev, 0);
    expect(entry).toMatchObject({
      p: true,
      pgtt: PGTT.NESTED,
      did: nested.did,
      fsptptr: Number(root),
      flpm: FLPM.LEVEL_4,
      ssptptr: v.parent.rootPa,
      aw: v.parent.levels - 2,
      sre: false,
      wpe: true,
      eafe: false,
      ssade: false,
    });
    expect(nested.did).not.toBe(v.driver.domainId(v.parent));
  });

  it('a nested domain at a PASID (Linux intel_nested_set_dev_pasid), beside another at RID_PASID', () => {
    const v = vm();
    const a = v.driver.domainAllocNested(v.dev, v.parent, {
      pgtblAddr: v.guestTable([{ iova: DATA_IOVA, gpa: GPA_BASE }]),
      addrWidth: 48,
    });
    const b = v.driver.domainAllocNested(v.dev, v.parent, {
      pgtblAddr: v.guestTable([{ iova: DATA_IOVA, gpa: GPA_BASE + 0x5000 }]),
      addrWidth: 48,
    });
    v.driver.attachDev(a, v.dev);
    v.driver.setDevPasid(b, v.dev, 5);
    const rid = v.dma(DATA_IOVA, PERM_READ);
    const pasid5 = v.dma(DATA_IOVA, PERM_READ, 5);
    expect(rid.ok && rid.pfn * 4096).toBe(v.hpaOf(GPA_BASE));
    expect(pasid5.ok && pasid5.pfn * 4096).toBe(v.hpaOf(GPA_BASE + 0x5000));
    v.driver.removeDevPasid(v.dev, 5);
    expect(v.dma(DATA_IOVA, PERM_READ, 5).ok).toBe(false);
  });

  it('refuses what Linux refuses, when Linux refuses it', () => {
    const v = vm();
    const table = v.guestTable([{ iova: DATA_IOVA, gpa: GPA_BASE }]);
    const plain = v.driver.domainAllocPaging();
    expect(errnoOf(() => v.driver.domainAllocNested(v.dev, plain, { pgtblAddr: table, addrWidth: 48 }))).toBe(
      'EINVAL',
    );
    // Flag bits the uAPI does not define are refused at allocation.
    expect(
      errnoOf(() =>
        v.driver.domainAllocNested(v.dev, v.parent, { pgtblAddr: table, addrWidth: 48, flags: 8 }),
      ),
    ).toBe('EOPNOTSUPP');
    expect(errnoOf(() => v.driver.domainAllocNested(v.dev, v.parent, { addrWidth: 48 }))).toBe('EINVAL');
    // Address width and capabilities are judged at attach, as intel_pasid_setup_nested does.
    for (const addrWidth of [39, 56]) {
      const bad = v.driver.domainAllocNested(v.dev, v.parent, { pgtblAddr: table, addrWidth });
      expect(errnoOf(() => v.driver.attachDev(bad, v.dev))).toBe('EINVAL');
      expect(v.driver.pasidEntry(v.dev, 0)?.p ?? false).toBe(false);
      bad.free();
    }
    const four = vm({ firstStage5Level: false });
    const five = four.driver.domainAllocNested(four.dev, four.parent, { pgtblAddr: table, addrWidth: 57 });
    expect(errnoOf(() => four.driver.attachDev(five, four.dev))).toBe('EINVAL');
  });

  it('SRE needs ECAP.SRS (EINVAL at attach); EAFE and 57 bits are written when the unit has them', () => {
    const v = vm({ supervisorRequests: false, firstStage5Level: true });
    const table = v.guestTable([{ iova: DATA_IOVA, gpa: GPA_BASE }]);
    const sre = v.driver.domainAllocNested(v.dev, v.parent, {
      pgtblAddr: table,
      addrWidth: 48,
      flags: VTD_S1.SRE,
    });
    expect(errnoOf(() => v.driver.attachDev(sre, v.dev))).toBe('EINVAL');
    const five = v.driver.domainAllocNested(v.dev, v.parent, {
      pgtblAddr: table,
      addrWidth: 57,
      flags: VTD_S1.EAFE,
    });
    v.driver.attachDev(five, v.dev);
    expect(v.driver.pasidEntry(v.dev, 0)).toMatchObject({
      pgtt: PGTT.NESTED,
      flpm: FLPM.LEVEL_5,
      eafe: true,
    });
  });

  it('a unit without ECAP.NEST has no nest parents and no nested domains (EOPNOTSUPP)', () => {
    const r = driverRig({ options: { nesting: false } });
    const driver = new VtdDriver(r.context);
    driver.probe();
    const dev = r.device(SID, 8);
    driver.probeDevice(dev);
    expect(errnoOf(() => driver.domainAllocPaging({ nestParent: true }))).toBe('EOPNOTSUPP');
    const s2 = driver.domainAllocPaging({ dirtyTracking: true });
    expect(errnoOf(() => driver.domainAllocNested(dev, s2, { pgtblAddr: 0, addrWidth: 48 }))).toBe(
      'EOPNOTSUPP',
    );
  });

  it('free is busy while attached, and gives the DID back', () => {
    const v = vm();
    const nested = v.driver.domainAllocNested(v.dev, v.parent, {
      pgtblAddr: v.guestTable([{ iova: DATA_IOVA, gpa: GPA_BASE }]),
      addrWidth: 48,
    }) as VtdNestedDomain;
    v.driver.attachDev(nested, v.dev);
    expect(errnoOf(() => nested.free())).toBe('EBUSY');
    v.driver.attachDev(v.driver.blockedDomain, v.dev);
    nested.free();
    const again = v.driver.domainAllocNested(v.dev, v.parent, {
      pgtblAddr: 0,
      addrWidth: 48,
    }) as VtdNestedDomain;
    expect(again.did).toBe(nested.did);
    expect(() => nested.map()).toThrow(/first-stage tables/);
  });
});

describe('user invalidation (Linux intel_nested_cache_invalidate_user)', () => {
  function attached() {
    const v = vm();
    const nested = v.driver.domainAllocNested(v.dev, v.parent, {
      pgtblAddr: v.guestTable([
        { iova: DATA_IOVA, gpa: GPA_BASE },
        { iova: DATA_IOVA + 0x1000, gpa: GPA_BASE + 0x1000 },
      ]),
      addrWidth: 48,
    }) as VtdNestedDomain;
    v.driver.attachDev(nested, v.dev);
    v.driver.setDevPasid(nested, v.dev, 3);
    return { ...v, nested };
  }

  it('each entry is a PASID-based IOTLB invalidation of the DID at every PASID the domain is attached at', () => {
    const { r, nested } = attached();
    const did = nested.did;
    expect(
      queued(r, () =>
        expect(
          nested.cacheInvalidateUser([{ addr: DATA_IOVA, npages: 2, flags: VTD_INV_FLAGS_LEAF }]),
        ).toEqual({
          handled: 1,
        }),
      ),
    ).toEqual([
      expect.objectContaining({
        type: INV_TYPE.PASID_IOTLB,
        did,
        pasid: 0,
        addr: DATA_IOVA,
        am: 1,
        ih: true,
      }),
      expect.objectContaining({
        type: INV_TYPE.PASID_IOTLB,
        did,
        pasid: 3,
        addr: DATA_IOVA,
        am: 1,
        ih: true,
      }),
      // The device has ATS: its Device-TLB over the same 8 KiB (S = 1), at RID_PASID and at PASID 3.
      expect.objectContaining({ type: INV_TYPE.DEVICE_TLB, sid: SID, addr: DATA_IOVA, size: true }),
      expect.objectContaining({
        type: INV_TYPE.PASID_DEVICE_TLB,
        sid: SID,
        pasid: 3,
        addr: DATA_IOVA,
        size: true,
      }),
    ]);
    const all = queued(r, () => nested.cacheInvalidateUser([{ addr: 0n, npages: VTD_INV_ALL_PAGES }]));
    expect(all.map((d) => d.type)).toEqual([
      INV_TYPE.PASID_IOTLB,
      INV_TYPE.PASID_IOTLB,
      INV_TYPE.DEVICE_TLB,
      INV_TYPE.PASID_DEVICE_TLB,
    ]);
    expect(all.slice(0, 2).map((d) => (d as { granularity: number }).granularity)).toEqual([2, 2]);
    expect(queued(r, () => nested.cacheInvalidateUser([{ addr: 0, npages: 0 }]))).toEqual([]);
  });

  it('the guest rewrites its table: the old translation stays until its invalidation', () => {
    const v = attached();
    expect(v.dma(DATA_IOVA).ok).toBe(true);
    // The guest unmaps DATA_IOVA in its own table (the leaf is at a GPA it knows): clear the PTE.
    const leafGpa = TABLES_GPA + 3 * 4 * KiB + GUEST_FS.index(DATA_IOVA, 1) * 8;
    v.r.bus.writeWords(v.hpaOf(leafGpa), [0, 0], 2, v.r.bus.counter('guest'));
    expect(v.dma(DATA_IOVA).ok).toBe(true);
    v.nested.cacheInvalidateUser([{ addr: DATA_IOVA, npages: 1 }]);
    expect(v.dma(DATA_IOVA).ok).toBe(false);
    expect(v.dma(DATA_IOVA + 0x1000).ok).toBe(true);
  });

  it('stops at the first bad entry, in Linux order: flags or reserved EOPNOTSUPP, alignment EINVAL', () => {
    const { nested } = attached();
    const good = { addr: 0, npages: 1 };
    const cases: [unknown, string][] = [
      [{ addr: 0, npages: 1, flags: 2 }, 'EOPNOTSUPP'],
      [{ addr: 0, npages: 1, reserved: 1 }, 'EOPNOTSUPP'],
      [{ addr: 0x800, npages: 1 }, 'EINVAL'],
      [{ addr: 0x1000, npages: VTD_INV_ALL_PAGES }, 'EINVAL'],
      [{ addr: -1, npages: 1 }, 'EINVAL'],
      ['entry', 'EINVAL'],
    ];
    for (const [bad, errno] of cases) {
      const result = nested.cacheInvalidateUser([good, bad, good]);
      expect(result.handled).toBe(1);
      expect(result.error?.code).toBe(errno);
    }
  });
});

describe("the parent's changes reach its nested domains", () => {
  it('unmapping the parent flushes the nested DIDs by second-stage address: the nested translation goes', () => {
    const v = vm();
    const nested = v.driver.domainAllocNested(v.dev, v.parent, {
      pgtblAddr: v.guestTable([{ iova: DATA_IOVA, gpa: GPA_BASE + 0x2000 }]),
      addrWidth: 48,
    }) as VtdNestedDomain;
    v.driver.attachDev(nested, v.dev);
    expect(v.dma(DATA_IOVA).ok).toBe(true);
    const parentDid = v.driver.domainId(v.parent);
    const sent = queued(v.r, () => {
      v.parent.unmap(iova(BigInt(GPA_BASE + 0x2000)), 0x1000n);
      v.parent.iotlbSync();
    });
    // Then the whole Device-TLB of the nested domain's device: no second-stage address finds what it cached.
    expect(sent.map((d) => [d.type, (d as { did?: number }).did])).toEqual([
      [INV_TYPE.IOTLB, parentDid],
      [INV_TYPE.IOTLB, nested.did],
      [INV_TYPE.DEVICE_TLB, undefined],
    ]);
    expect(sent[2]).toMatchObject({ sid: SID, size: true });
    const out = v.dma(DATA_IOVA);
    expect(out.ok).toBe(false);
  });

  it("dirty tracking on the parent sets SSADE in the nested entries too, and a nested attach takes the parent's", () => {
    const v = vm();
    const parent = v.driver.domainAllocPaging({ nestParent: true, dirtyTracking: true }) as VtdPagingDomain;
    const nested = v.driver.domainAllocNested(v.dev, parent, { pgtblAddr: 0x4000_0000, addrWidth: 48 });
    v.driver.attachDev(nested, v.dev);
    expect(v.driver.pasidEntry(v.dev, 0)?.ssade).toBe(false);
    parent.setDirtyTracking(true);
    expect(v.driver.pasidEntry(v.dev, 0)).toMatchObject({ pgtt: PGTT.NESTED, ssade: true });
    v.driver.setDevPasid(nested, v.dev, 4);
    expect(v.driver.pasidEntry(v.dev, 4)?.ssade).toBe(true);
  });
});
