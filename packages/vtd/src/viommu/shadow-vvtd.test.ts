/**
 * The caching-mode vVT-d (shadow-vvtd.ts) between the guest's own VT-d driver and the NIC's own IOAS:
 * which invalidation replays what, identity, pages outside guest RAM, write-only leaves, and a refusal.
 */
import { type Hpa, hpa, IommufdError, iova } from '@iommukit/core';
import { describe, expect, it, vi } from 'vitest';
import { vmRig } from '../../test/vm-rig.js';
import type { VtdPagingDomain } from '../driver/paging-domain.js';
import type { ProbedUnit } from '../driver/probe.js';
import { contextGlobal, iotlbPages } from '../driver/qi.js';
import type { VtdDriver } from '../driver/vtd-driver.js';
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
