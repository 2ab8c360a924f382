/**
 * The caching-mode vVT-d (shadow-vvtd.ts) between the guest's own VT-d driver and the NIC's own IOAS:
 * which invalidation replays what, identity, pages outside guest RAM, write-only leaves, and a refusal.
 */
import { type Hpa, hpa, IommufdError, iova } from '@iommukit/core';
import { describe, expect, it, vi } from 'vitest';
import { vmRig } from '../../test/vm-rig.js';
import type { VtdPagingDomain } from '../driver/paging-domain.js';
import type { ProbedUnit } from '../driver/probe.js';
import { contextGlobal, iotlbDomain, iotlbGlobal, iotlbPages } from '../driver/qi.js';
import type { VtdDriver } from '../driver/vtd-driver.js';
import { IQEI } from '../hw/inv-descriptors.js';
import { GCMD_TE, REG } from '../hw/regs.js';
import { ShadowVvtd, shadowGuestOptions } from './shadow-vvtd.js';

const RW = { read: true, write: true };
const IOVA = 0x20_0000n;

async function shadow() {
  const rig = await vmRig('shadow');
  const vvtd = new ShadowVvtd(rig.context);
  vvtd.addDevice(rig.view);
  const driver = rig.guestDriver() as VtdDriver;
  const qi = () => (driver as unknown as { unit: ProbedUnit }).unit.qi;
  const domain = driver.domainAllocPaging() as VtdPagingDomain;
  driver.attachDev(domain, rig.guestView);
  return { ...rig, vvtd, driver, qi, domain };
}

describe('caching-mode vVT-d', () => {
  it('offers a legacy-mode unit with caching mode and a 39-bit IOVA space', () => {
    expect(shadowGuestOptions()).toMatchObject({
      scalableMode: false,
      cachingMode: true,
      sagaw: [3],
      mgawBits: 39,
    });
  });

  it('a device starts on guest RAM at IOVA = GPA (translation off), and is empty once the guest driver runs', async () => {
    const rig = await vmRig('shadow');
    const vvtd = new ShadowVvtd(rig.context);
    vvtd.addDevice(rig.view);
    const gpa = rig.guestPage();
    expect(rig.nic.dmaWrite(gpa, Uint8Array.of(7))).toMatchObject({ ok: true });
    rig.guestDriver();
    expect(rig.nic.dmaWrite(gpa, Uint8Array.of(7))).toMatchObject({ ok: false });
    expect(() => vvtd.addDevice({ name: 'x', devId: 1, virtualId: 0x10 })).toThrow(/IOAS of its own/);
  });

  it('a guest map is replayed page by page on its invalidation, an unmap too; other DIDs are not looked at', async () => {
    const t = await shadow();
    const gpa = t.guestPage();
    t.domain.map(iova(IOVA), gpa as Hpa, 0x1000n, RW);
    expect(t.vvtd.stats.pagesMapped).toBe(1);
    expect(t.nic.dmaWrite(IOVA + 4n, Uint8Array.of(0x33))).toMatchObject({ ok: true });
    expect(t.read(gpa + 4n, 1)).toEqual([0x33]);
    // A page-selective invalidation of another DID replays nothing for this device.
    const replays = t.vvtd.stats.replays;
    t.qi().submit([iotlbPages(t.driver.domainId(t.domain)! + 1, Number(IOVA), 1)]);
    expect(t.vvtd.stats.replays).toBe(replays);
    t.domain.unmap(iova(IOVA), 0x1000n);
    t.domain.iotlbSync();
    expect(t.vvtd.stats.pagesUnmapped).toBe(1);
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: false });
  });

  it('a 2 MiB guest leaf is 512 pages; a page-selective replay syncs only its range', async () => {
    const t = await shadow();
    const base = BigInt(t.context.shadow!.guestRam.gpa) + 0x20_0000n;
    t.domain.map(iova(0x40_0000n), base as Hpa, 0x20_0000n, RW);
    expect(t.vvtd.stats.pagesMapped).toBe(512);
    expect(t.nic.dmaWrite(0x40_0000n + 0x1f_f000n, Uint8Array.of(1))).toMatchObject({ ok: true });
  });

  it('identity in the guest maps guest RAM at IOVA = GPA; a context-cache invalidation resyncs everything', async () => {
    const t = await shadow();
    t.driver.attachDev(t.driver.identityDomain!, t.guestView);
    const gpa = t.guestPage();
    expect(t.nic.dmaWrite(gpa, Uint8Array.of(5))).toMatchObject({ ok: true });
    t.qi().submit([contextGlobal()]);
    expect(t.nic.dmaWrite(gpa, Uint8Array.of(5))).toMatchObject({ ok: true });
    t.driver.attachDev(t.driver.blockedDomain, t.guestView);
    expect(t.nic.dmaWrite(gpa, Uint8Array.of(5))).toMatchObject({ ok: false });
  });

  it('a page outside guest RAM is left unmapped and counted; a write-only leaf is shadowed read-write', async () => {
    const t = await shadow();
    t.domain.map(iova(IOVA), hpa(0x1_0000_0000n), 0x1000n, RW);
    expect(t.vvtd.stats.outsideRam).toBe(1);
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: false });
    const gpa = t.guestPage();
    t.domain.map(iova(IOVA + 0x1000n), gpa as Hpa, 0x1000n, { read: false, write: true });
    expect(t.nic.dmaRead(IOVA + 0x1000n, 1)).toMatchObject({ ok: true });
    t.domain.map(iova(IOVA + 0x2000n), gpa as Hpa, 0x1000n, { read: true, write: false });
    expect(t.nic.dmaWrite(IOVA + 0x2000n, Uint8Array.of(1))).toMatchObject({ ok: false });
  });

  it('a replay the host refuses stops the guest queue with IQE; destroy leaves the guest bus', async () => {
    const t = await shadow();
    vi.spyOn(t.fd, 'ioasMap').mockImplementation(() => {
      throw new IommufdError('ENOSPC', 'refused for the test');
    });
    expect(() => t.domain.map(iova(IOVA), t.guestPage() as Hpa, 0x1000n, RW)).toThrow(/IQEI 0/);
    expect(t.vvtd.stats.rejected).toBe(1);
    t.vvtd.destroy();
    expect(t.bus.listRegions().map((r) => r.name)).toEqual(['guest.ram']);
  });
});

describe('caching-mode vVT-d: what it is built with, translation off, the top of the IOVA space, the trace', () => {
  /** The vIOMMU's MMIO window in the rig, and GSTS's persistent bits, which every GCMD write repeats. */
  const WINDOW = 0x0905_0000;
  const PERSISTENT = 0x9680_0000;
  const translationOff = (t: Awaited<ReturnType<typeof shadow>>) => {
    const gsts = t.vvtd.unit.regs.get(REG.GSTS);
    t.bus.write(WINDOW + REG.GCMD, 4, (gsts & PERSISTENT & ~GCMD_TE) >>> 0, t.bus.counter('t'));
  };

  it('a resync the host refuses after TE changes leaves the device with nothing mapped, and the guest write completes', async () => {
    const t = await shadow();
    const gpa = t.guestPage();
    t.domain.map(iova(IOVA), gpa as Hpa, 0x1000n, RW);
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: true });
    vi.spyOn(t.fd, 'ioasMap').mockImplementation(() => {
      throw new IommufdError('ENOSPC', 'refused for the test');
    });
    expect(() => translationOff(t)).not.toThrow();
    expect(t.vvtd.stats.resyncsRefused).toBe(1);
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: false });
    expect(t.nic.dmaWrite(gpa, Uint8Array.of(1))).toMatchObject({ ok: false });
  });

  it('refuses a VM without an iommufd context, and a device without an IOAS of its own, with EINVAL', async () => {
    const rig = await vmRig('shadow');
    const { shadow: _, ...withoutShadow } = rig.context;
    expect(() => new ShadowVvtd(withoutShadow)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const vvtd = new ShadowVvtd(rig.context);
    expect(() => vvtd.addDevice({ name: 'x', devId: rig.devId, virtualId: 0x10 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });

  it('its unit signals the guest with the DeviceID the VMM gave it', async () => {
    const rig = await vmRig('shadow');
    const writes: number[] = [];
    rig.bus.addMmio('msi', 0xfee0_0000, 0x1000, {
      read: () => 0,
      write: (_offset, _size, _data, deviceId) => writes.push(deviceId ?? -1),
    });
    const vvtd = new ShadowVvtd({ ...rig.context, msi: { controller: {} as never, deviceId: 0xfff2 } });
    rig.bus.write(WINDOW + 0x40, 4, 0xfee0_0000, rig.bus.counter('t'));
    rig.bus.write(WINDOW + 0x38, 4, 0, rig.bus.counter('t'));
    vvtd.unit.faults.record({
      sid: 0x08,
      address: 0x1000,
      reason: 0x06,
      write: true,
      pasid: undefined,
      execute: false,
      privileged: false,
    });
    expect(writes).toEqual([0xfff2]);
  });

  it("counts its walks of the guest's tables as the frontend's reads of guest memory", async () => {
    const t = await shadow();
    const reads = t.bus.counter('frontend:vm.viommu');
    const before = reads.reads;
    t.domain.map(iova(IOVA), t.guestPage() as Hpa, 0x1000n, RW);
    // A 3-level walk to the page: one read a level.
    expect(reads.reads - before).toBe(3);
  });

  it('with translation off a domain-selective IOTLB invalidation concerns no device; guest RAM stays at IOVA = GPA', async () => {
    const t = await shadow();
    const did = t.driver.domainId(t.domain)!;
    translationOff(t);
    const gpa = t.guestPage();
    expect(t.nic.dmaWrite(gpa, Uint8Array.of(9))).toMatchObject({ ok: true });
    const replays = t.vvtd.stats.replays;
    t.qi().submit([iotlbDomain(did), iotlbPages(did, Number(IOVA), 1)]);
    expect(t.vvtd.stats.replays).toBe(replays);
    t.qi().submit([iotlbGlobal()]);
    expect(t.vvtd.stats.replays).toBe(replays + 1);
    expect(t.nic.dmaWrite(gpa, Uint8Array.of(9))).toMatchObject({ ok: true });
  });

  it('a page-selective invalidation above the 39-bit IOVA space maps nothing there', async () => {
    const t = await shadow();
    const gpa = t.guestPage();
    t.domain.map(iova(IOVA), gpa as Hpa, 0x1000n, RW);
    const high = 2n ** 39n + IOVA;
    t.qi().submit([iotlbPages(t.driver.domainId(t.domain)!, Number(high), 1)]);
    expect(t.vvtd.stats.pagesMapped).toBe(1);
    expect(t.nic.dmaWrite(high, Uint8Array.of(1))).toMatchObject({ ok: false });
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: true });
  });

  it('traces going to IOVA = GPA once, not at each resync that keeps it', async () => {
    const t = await shadow();
    t.system.tracer.startRecording();
    const identity = () =>
      t.system.tracer.records.filter(
        (r) => r.layer === 'frontend' && r.message === 'nic0: guest RAM at IOVA = GPA',
      );
    translationOff(t);
    expect(identity()).toHaveLength(1);
    t.qi().submit([iotlbGlobal()]);
    expect(identity()).toHaveLength(1);
    t.system.tracer.stopRecording();
  });

  it('traces a replay the host refuses as rejected, its reason in the IQE', async () => {
    const t = await shadow();
    t.system.tracer.startRecording();
    vi.spyOn(t.fd, 'ioasMap').mockImplementation(() => {
      throw new IommufdError('ENOSPC', 'refused for the test');
    });
    expect(() => t.domain.map(iova(IOVA), t.guestPage() as Hpa, 0x1000n, RW)).toThrow(/IQEI 0/);
    expect(t.vvtd.unit.invalidationQueue!.errors[IQEI.INFO_NOT_AVAILABLE]).toBe(1);
    const records = t.system.tracer.stopRecording();
    expect(records.filter((r) => r.layer === 'frontend' && r.name === 'vvtd.rejected')).toHaveLength(1);
    expect(records.filter((r) => r.layer === 'hw' && r.name.endsWith('iqe')).map((r) => r.message)).toEqual([
      expect.stringMatching(/IQEI 0 .*: the host refused it: .*refused for the test/),
    ]);
  });

  it('with tracing off it builds no trace message', async () => {
    const rig = await vmRig('shadow');
    expect(rig.system.tracer.enabled).toBe(false);
    const vvtd = new ShadowVvtd(rig.context);
    const trace = vi.spyOn(vvtd as unknown as { trace(name: string, message: string): void }, 'trace');
    vvtd.addDevice(rig.view);
    const driver = rig.guestDriver() as VtdDriver;
    const domain = driver.domainAllocPaging() as VtdPagingDomain;
    driver.attachDev(domain, rig.guestView);
    domain.map(iova(IOVA), rig.guestPage() as Hpa, 0x1000n, RW);
    driver.attachDev(driver.identityDomain!, rig.guestView);
    driver.attachDev(domain, rig.guestView);
    vi.spyOn(rig.fd, 'ioasMap').mockImplementation(() => {
      throw new IommufdError('ENOSPC', 'refused for the test');
    });
    expect(() => domain.map(iova(IOVA + 0x1000n), rig.guestPage() as Hpa, 0x1000n, RW)).toThrow(/IQEI 0/);
    vvtd.destroy();
    expect(vvtd.stats).toMatchObject({ pagesMapped: 2, rejected: 1 });
    expect(trace).not.toHaveBeenCalled();
  });
});
