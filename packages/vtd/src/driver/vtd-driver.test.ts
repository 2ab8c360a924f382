/**
 * The VT-d host driver as the iommu core drives it, on the real unit: devices in legacy and scalable mode,
 * the entries each attach writes (read back as the unit fetches them), what DMA then does, PASID attach
 * rules, ATS, dirty tracking, hw_info, and the errors of misuse.
 */
import {
  errnoOf,
  hpa,
  type IommuDeviceRef,
  iova,
  NO_PASID,
  PERM_READ,
  PERM_WRITE,
  X86_INTERRUPT_WINDOW,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { type DriverRig, driverRig } from '../../test/driver-rig.js';
import { PGTT } from '../hw/pasid-entry.js';
import type { VtdPagingDomain } from './paging-domain.js';
import { VtdDriver } from './vtd-driver.js';

const RW = { read: true, write: true };
const SID = 0x310;
const IOVA = 0x10_0000;

function setup(options: Record<string, unknown> = {}, pasidBits = 8) {
  const r = driverRig({ options });
  const driver = new VtdDriver(r.context);
  driver.probe();
  const dev = r.device(SID, pasidBits);
  driver.probeDevice(dev);
  const buffer = r.buffers.allocBytes(0x10_0000);
  const dma = (address: number, access = PERM_WRITE, pasid = NO_PASID) =>
    r.vtd.translate({ streamId: SID, pasid, iovaPfn: Math.floor(address / 4096), offset: 0, access });
  return { r, driver, dev, buffer, dma };
}

/** The context entry of `sid` as the unit fetches it now. */
function context(r: DriverRig, sid = SID) {
  const state = r.vtd.global.state;
  return r.vtd.translator.config.fetchContext(sid, state.rootTable, state.ttm === 1);
}

/** A device whose PCI controls record what the driver enabled. */
function recordingDevice(r: DriverRig, sid: number, caps: { ats: boolean; pasid: boolean }) {
  const enabled = { ats: false, pasid: false, pri: false };
  const ref: IommuDeviceRef = {
    name: `dev${sid.toString(16)}`,
    rid: sid,
    streamId: sid,
    pasidBits: caps.pasid ? 8 : 0,
    pci: {
      hasAts: caps.ats,
      hasPri: caps.ats,
      hasPasid: caps.pasid,
      setAtsEnabled: (on) => {
        enabled.ats = on;
      },
      setPriEnabled: (on) => {
        enabled.pri = on;
      },
      setPasidEnabled: (on) => {
        enabled.pasid = on;
      },
    },
  };
  r.devices.set(sid, ref);
  return { ref, enabled };
}

describe('scalable mode (Linux intel-iommu with SMTS)', () => {
  it('a device starts blocked; a paging domain at its RID is a first-stage PASID entry with a DID of its own', () => {
    const { driver, dev, buffer, dma } = setup();
    expect(dma(IOVA).ok).toBe(false);
    const domain = driver.domainAllocPaging() as VtdPagingDomain;
    expect(domain.stage).toBe('first');
    domain.map(iova(BigInt(IOVA)), buffer, 0x1000n, RW);
    driver.attachDev(domain, dev);
    const out = dma(IOVA + 0x10);
    expect(out.ok && out.pfn * 4096).toBe(Number(buffer));
    expect(driver.pasidEntry(dev, 0)).toMatchObject({
      p: true,
      pgtt: PGTT.FIRST_STAGE,
      did: driver.domainId(domain),
    });
    // Attaching the same domain again changes nothing; another replaces it.
    driver.attachDev(domain, dev);
    expect(domain.attachments).toBe(1);
    driver.attachDev(driver.blockedDomain, dev);
    expect(domain.attachments).toBe(0);
    expect(driver.pasidEntry(dev, 0)?.p).toBe(false);
    expect(dma(IOVA).ok).toBe(false);
  });

  it('nest parents and dirty-tracked domains are second stage; identity is a pass-through entry', () => {
    const { driver, dev, dma } = setup();
    const parent = driver.domainAllocPaging({ nestParent: true }) as VtdPagingDomain;
    const tracked = driver.domainAllocPaging({ dirtyTracking: true }) as VtdPagingDomain;
    expect([parent.stage, tracked.stage]).toEqual(['second', 'second']);
    driver.attachDev(tracked, dev);
    expect(driver.pasidEntry(dev, 0)).toMatchObject({
      pgtt: PGTT.SECOND_STAGE,
      ssade: false,
      aw: tracked.levels - 2,
    });
    tracked.setDirtyTracking(true);
    expect(driver.pasidEntry(dev, 0)).toMatchObject({ pgtt: PGTT.SECOND_STAGE, ssade: true });
    driver.attachDev(driver.identityDomain, dev);
    expect(driver.pasidEntry(dev, 0)).toMatchObject({ pgtt: PGTT.PASS_THROUGH, did: 1 });
    expect(dma(0x5000_0000).ok).toBe(true);
  });

  it('PASID attach: a second domain at a PASID beside the RID; RID_PASID and out-of-range PASIDs are EINVAL', () => {
    const { driver, dev, buffer, dma } = setup();
    const a = driver.domainAllocPaging({ pasid: true });
    const b = driver.domainAllocPaging({ pasid: true });
    a.map(iova(BigInt(IOVA)), buffer, 0x1000n, RW);
    b.map(iova(BigInt(IOVA)), hpa(buffer + 0x1000n), 0x1000n, RW);
    driver.attachDev(a, dev);
    driver.setDevPasid(b, dev, 7);
    const rid = dma(IOVA);
    const at7 = dma(IOVA, PERM_READ, 7);
    expect([rid.ok && rid.pfn * 4096, at7.ok && at7.pfn * 4096]).toEqual([
      Number(buffer),
      Number(buffer) + 0x1000,
    ]);
    expect(errnoOf(() => driver.setDevPasid(b, dev, 0))).toBe('EINVAL');
    expect(errnoOf(() => driver.setDevPasid(b, dev, 256))).toBe('EINVAL');
    // Replacing at a PASID, then blocking it.
    driver.setDevPasid(a, dev, 7);
    expect(driver.pasidEntry(dev, 7)?.did).toBe(driver.domainId(a));
    driver.setDevPasid(driver.blockedDomain, dev, 7);
    expect(dma(IOVA, PERM_READ, 7).ok).toBe(false);
    driver.removeDevPasid(dev, 7);
    driver.setDevPasid(b, dev, 9);
    expect(errnoOf(() => b.free())).toBe('EBUSY');
    // Releasing the device tears every entry down, so both domains can go.
    driver.releaseDevice(dev);
    a.free();
    b.free();
    expect(errnoOf(() => driver.attachDev(a, dev))).toBe('ENODEV');
  });

  it('ATS: DTE in the context entry and ATS enabled at probe, for a device that has it; off at release', () => {
    const r = driverRig();
    const driver = new VtdDriver(r.context);
    driver.probe();
    const ats = recordingDevice(r, 0x320, { ats: true, pasid: true });
    const plain = recordingDevice(r, 0x328, { ats: false, pasid: false });
    driver.probeDevice(ats.ref);
    driver.probeDevice(plain.ref);
    expect(ats.enabled).toEqual({ ats: true, pasid: true, pri: false });
    expect(plain.enabled).toEqual({ ats: false, pasid: false, pri: false });
    expect(context(r, 0x320)).toMatchObject({
      kind: 'scalable',
      entry: { dte: true, pre: true, paside: true },
    });
    expect(context(r, 0x328)).toMatchObject({
      kind: 'scalable',
      entry: { dte: false, pre: false, paside: false },
    });
    driver.releaseDevice(ats.ref);
    expect(ats.enabled).toMatchObject({ ats: false, pasid: false });
    expect(context(r, 0x320)).toMatchObject({ kind: 'fault' });
  });

  it('I/O page faults (Linux intel_iommu_enable_iopf): PRI on for a device with ATS enabled and PRI, ENODEV otherwise', () => {
    const r = driverRig();
    const driver = new VtdDriver(r.context);
    driver.probe();
    const pri = recordingDevice(r, 0x320, { ats: true, pasid: true });
    const plain = recordingDevice(r, 0x328, { ats: false, pasid: false });
    driver.probeDevice(pri.ref);
    driver.probeDevice(plain.ref);
    driver.enableIopf(pri.ref);
    expect(pri.enabled).toEqual({ ats: true, pasid: true, pri: true });
    driver.disableIopf(pri.ref);
    expect(pri.enabled.pri).toBe(false);
    expect(errnoOf(() => driver.enableIopf(plain.ref))).toBe('ENODEV');
    expect(plain.enabled.pri).toBe(false);
    // A unit without ECAP.PRS: the device's PRI is of no use, and its context entry has no PRE.
    const noPrs = driverRig({ options: { pageRequests: false, pageRequestDrain: false } });
    const other = new VtdDriver(noPrs.context);
    other.probe();
    const dev = recordingDevice(noPrs, 0x320, { ats: true, pasid: true });
    other.probeDevice(dev.ref);
    expect(context(noPrs, 0x320)).toMatchObject({ kind: 'scalable', entry: { dte: true, pre: false } });
    expect(errnoOf(() => other.enableIopf(dev.ref))).toBe('ENODEV');
    expect(dev.enabled.pri).toBe(false);
  });

  it('hw_info, reserved regions, and what a device or domain of another driver gets', () => {
    const { r, driver, dev } = setup();
    const info = driver.hwInfo(dev);
    expect(info.type).toBe('intel-vtd');
    expect(info.data.cap_reg).toBe(BigInt(r.reg(0x0c)) * 2n ** 32n + BigInt(r.reg(0x08)));
    expect(info.data.ecap_reg).toBe(BigInt(r.reg(0x14)) * 2n ** 32n + BigInt(r.reg(0x10)));
    expect(info.maxPasidLog2).toBe(8);
    expect(info.capabilities).toEqual({ dirtyTracking: true, pasidExec: false, pasidPriv: true });
    expect(driver.reservedRegions(dev)).toEqual([
      { start: X86_INTERRUPT_WINDOW.base, length: X86_INTERRUPT_WINDOW.size, type: 'msi' },
    ]);
    expect(errnoOf(() => driver.probeDevice(dev))).toBe('EEXIST');
    expect(errnoOf(() => driver.attachDev(driver.domainAllocPaging(), r.device(0x400)))).toBe('ENODEV');
    const other = new VtdDriver(r.context);
    expect(errnoOf(() => other.domainAllocPaging())).toBe('ENODEV');
    // A paging domain this driver did not allocate.
    expect(errnoOf(() => driver.attachDev({ id: 99, type: 'paging' } as never, dev))).toBe('EINVAL');
  });

  it('shutdown turns translation off and releases the unit; a second shutdown does nothing', () => {
    const { r, driver, dma } = setup();
    driver.shutdown();
    expect(r.vtd.global.state.enabled).toBe(false);
    // Translation off: DMA passes untranslated.
    expect(dma(IOVA).ok).toBe(true);
    driver.shutdown();
    expect(errnoOf(() => driver.domainAllocPaging())).toBe('ENODEV');
  });
});

describe('legacy mode (no SMTS)', () => {
  const LEGACY = { scalableMode: false };

  it('a paging domain is a second-stage context entry (TT = 01 with ATS); identity is TT = 10; PASIDs are refused', () => {
    const { r, driver, dev, buffer, dma } = setup(LEGACY);
    const domain = driver.domainAllocPaging() as VtdPagingDomain;
    expect(domain.stage).toBe('second');
    domain.map(iova(BigInt(IOVA)), buffer, 0x1000n, RW);
    driver.attachDev(domain, dev);
    expect(context(r)).toMatchObject({
      kind: 'legacy',
      did: driver.domainId(domain),
      deviceTlb: true,
      passThrough: false,
    });
    expect(dma(IOVA).ok).toBe(true);
    driver.attachDev(driver.identityDomain, dev);
    expect(context(r)).toMatchObject({ kind: 'legacy', passThrough: true, deviceTlb: false });
    expect(dma(0x6000_0000).ok).toBe(true);
    driver.attachDev(driver.blockedDomain, dev);
    expect(context(r)).toMatchObject({ kind: 'fault' });
    expect(errnoOf(() => driver.setDevPasid(domain, dev, 3))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => driver.domainAllocPaging({ pasid: true }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => driver.domainAllocPaging({ nestParent: true }))).toBe('EOPNOTSUPP');
    expect(driver.hwInfo(dev).maxPasidLog2).toBe(0);
  });

  it('ATS follows the translating context entry: on with TT = 01, off with pass-through and blocked', () => {
    const r = driverRig({ options: LEGACY });
    const driver = new VtdDriver(r.context);
    driver.probe();
    const { ref, enabled } = recordingDevice(r, 0x320, { ats: true, pasid: false });
    driver.probeDevice(ref);
    expect(enabled.ats).toBe(false);
    driver.attachDev(driver.domainAllocPaging(), ref);
    expect(enabled.ats).toBe(true);
    driver.attachDev(driver.identityDomain, ref);
    expect(enabled.ats).toBe(false);
  });
});

describe('details a driver can get wrong', () => {
  const performed = (r: DriverRig) => ({ ...r.vtd.invalidationQueue!.performed });

  it('domain geometry from CAP: SAGAW depth, MGAW aperture, SLLPS page sizes; second stage without FLTS', () => {
    const { driver } = setup({
      sagaw: [3],
      mgawBits: 39,
      secondStage1GiB: false,
      firstStage: false,
      firstStage1GiB: false,
      firstStage5Level: false,
      nesting: false,
    });
    const d = driver.domainAllocPaging() as VtdPagingDomain;
    expect(d.stage).toBe('second');
    expect(d.levels).toBe(3);
    expect(d.aperture.end).toBe(2n ** 39n - 1n);
    expect(d.pgsizeBitmap).toBe((1n << 12n) | (1n << 21n));
    const big = setup({ secondStage2MiB: false }).driver.domainAllocPaging({ nestParent: true });
    expect(big.pgsizeBitmap).toBe((1n << 12n) | (1n << 30n));
    expect(
      errnoOf(() =>
        setup({ secondStageAccessDirty: false }).driver.domainAllocPaging({ dirtyTracking: true }),
      ),
    ).toBe('EOPNOTSUPP');
  });

  it('a refused allocation gives its DID back, and so does free; ids are unique', () => {
    const { driver } = setup({ secondStageAccessDirty: false });
    const first = driver.domainAllocPaging();
    const did = driver.domainId(first);
    first.free();
    expect(errnoOf(() => driver.domainAllocPaging({ dirtyTracking: true }))).toBe('EOPNOTSUPP');
    const again = driver.domainAllocPaging();
    expect(driver.domainId(again)).toBe(did);
    const other = driver.domainAllocPaging({ nestParent: true });
    expect(new Set([first.id, again.id, other.id]).size).toBe(3);
  });

  it('re-attaching the same domain writes and flushes nothing; a PASID out of range either way is EINVAL', () => {
    const { r, driver, dev } = setup();
    const domain = driver.domainAllocPaging({ pasid: true });
    driver.attachDev(domain, dev);
    const before = performed(r);
    driver.attachDev(domain, dev);
    expect(performed(r)).toEqual(before);
    expect(errnoOf(() => driver.setDevPasid(domain, dev, -1))).toBe('EINVAL');
  });

  it('a PASID table reaches every PASID of a 20-bit device', () => {
    const { driver, dev } = setup({}, 20);
    const domain = driver.domainAllocPaging({ pasid: true });
    driver.setDevPasid(domain, dev, 40_000);
    expect(driver.pasidEntry(dev, 40_000)?.p).toBe(true);
  });

  it('after one PASID goes, flushes reach only the attachments left', () => {
    const { r, driver, dev, buffer } = setup();
    const domain = driver.domainAllocPaging({ pasid: true });
    domain.map(iova(BigInt(IOVA)), buffer, 0x1000n, RW);
    driver.attachDev(domain, dev);
    driver.setDevPasid(domain, dev, 7);
    driver.setDevPasid(domain, dev, 9);
    driver.removeDevPasid(dev, 7);
    const before = performed(r).pasidIotlb!;
    domain.unmap(iova(BigInt(IOVA)), 0x1000n);
    domain.iotlbSync();
    expect(performed(r).pasidIotlb! - before).toBe(2);
  });

  it('a nested domain freed, or from nowhere, cannot be attached; a foreign paging domain neither', () => {
    const { r, driver, dev } = setup();
    const parent = driver.domainAllocPaging({ nestParent: true });
    const nested = driver.domainAllocNested(dev, parent, { pgtblAddr: 0, addrWidth: 48 });
    nested.free();
    expect(errnoOf(() => driver.attachDev(nested, dev))).toBe('EINVAL');
    const second = new VtdDriver({ ...r.context, instance: 'dmar1' });
    second.probe();
    const foreign = second.domainAllocPaging();
    expect(errnoOf(() => driver.attachDev(foreign, dev))).toBe('EINVAL');
  });

  it('a parent flushes only the nested domains on it that are attached; dirty tracking rewrites only its own', () => {
    const { r, driver, dev } = setup();
    const parent = driver.domainAllocPaging({ nestParent: true, dirtyTracking: true }) as VtdPagingDomain;
    const other = driver.domainAllocPaging({ nestParent: true, dirtyTracking: true }) as VtdPagingDomain;
    driver.domainAllocNested(dev, parent, { pgtblAddr: 0, addrWidth: 48 });
    const onOther = driver.domainAllocNested(dev, other, { pgtblAddr: 0, addrWidth: 48 });
    driver.attachDev(onOther, dev);
    const before = performed(r).iotlb!;
    parent.map(iova(0x1000n), r.buffers.allocBytes(4096), 0x1000n, RW);
    parent.unmap(iova(0x1000n), 0x1000n);
    parent.iotlbSync();
    expect(performed(r).iotlb! - before).toBe(1);
    parent.setDirtyTracking(true);
    expect(driver.pasidEntry(dev, 0)).toMatchObject({ pgtt: PGTT.NESTED, ssade: false });
  });

  it('ATS: the Device-TLB is flushed when the entry goes; a device without ATS never gets it enabled', () => {
    const r = driverRig({ options: { scalableMode: false } });
    const driver = new VtdDriver(r.context);
    driver.probe();
    const ats = recordingDevice(r, 0x320, { ats: true, pasid: false });
    const plain = recordingDevice(r, 0x328, { ats: false, pasid: false });
    driver.probeDevice(ats.ref);
    driver.probeDevice(plain.ref);
    const domain = driver.domainAllocPaging();
    driver.attachDev(domain, ats.ref);
    driver.attachDev(domain, plain.ref);
    expect(plain.enabled.ats).toBe(false);
    const before = performed(r).deviceTlb ?? 0;
    driver.attachDev(driver.blockedDomain, ats.ref);
    expect((performed(r).deviceTlb ?? 0) - before).toBe(1);
    // Probing twice is EEXIST in legacy mode too.
    expect(errnoOf(() => driver.probeDevice(plain.ref))).toBe('EEXIST');
  });

  it('PASIDs are enabled only when both the unit and the device have them', () => {
    const r = driverRig({
      options: { pasidBits: 0, supervisorRequests: false, pageRequests: false, pageRequestDrain: false },
    });
    const driver = new VtdDriver(r.context);
    driver.probe();
    const dev = recordingDevice(r, 0x320, { ats: false, pasid: true });
    driver.probeDevice(dev.ref);
    expect(dev.enabled.pasid).toBe(false);
  });

  it('interrupt remapping only with ECAP.IR; shutdown without it works; a fault from an unknown device is reported without one', () => {
    const { r, driver, dma } = setup({
      interruptRemapping: false,
      extendedInterruptMode: false,
      postedInterrupts: false,
      sirtpInvalidates: false,
    });
    expect(driver.interruptRemapping).toBeUndefined();
    expect(setup().driver.interruptRemapping).toBeDefined();
    r.vtd.translate({ streamId: 0x400, pasid: NO_PASID, iovaPfn: 1, offset: 0, access: PERM_READ });
    r.service();
    expect(r.faults).toMatchObject([{ device: undefined, fault: { streamId: 0x400 } }]);
    expect(dma(IOVA).ok).toBe(false);
    driver.shutdown();
  });

  it('a first stage keeps its canonical half whatever MGAW says; a paging domain says so; a map past the aperture is EINVAL', () => {
    const { driver, buffer } = setup({ mgawBits: 39, firstStage5Level: false });
    const d = driver.domainAllocPaging() as VtdPagingDomain;
    expect([d.type, d.stage, d.aperture.end]).toEqual(['paging', 'first', 2n ** 47n - 1n]);
    expect(errnoOf(() => d.map(iova(2n ** 47n - 0x1000n), buffer, 0x2000n, RW))).toBe('EINVAL');
    d.map(iova(2n ** 47n - 0x1000n), buffer, 0x1000n, RW);
  });
});
