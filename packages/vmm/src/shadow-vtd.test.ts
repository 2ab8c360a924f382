/**
 * The caching-mode vVT-d (QEMU's intel-iommu,caching-mode=on with VFIO): the guest's own VT-d driver maps
 * and invalidates in legacy mode, the VMM replays each invalidation into the assigned device's own IOAS,
 * and the device's DMA at guest IOVAs lands in guest RAM through the host unit alone.
 */
import { IommufdError } from '@iommukit/core';
import type { ShadowVvtd, VtdDriver, VtdPagingDomain } from '@iommukit/vtd';
import { describe, expect, it, vi } from 'vitest';
import { vtdHost } from '../test/host.js';
import { Vm } from './vm.js';

const RW = { read: true, write: true };

async function shadowVm(devices = ['nic0', 'nic1']) {
  const { system, host } = await vtdHost(devices);
  const vm = new Vm(host, { name: 'vm0', memory: 64 * 2 ** 20, devices, viommus: ['shadow'] });
  vm.powerOn();
  const vvtd = vm.viommu('shadow') as ShadowVvtd;
  return { system, vm, vvtd, nic0: system.device('nic0') };
}

describe('the caching-mode vVT-d (shadowing)', () => {
  it('the guest sees a legacy-mode unit with caching mode; its device is blocked until the guest maps', async () => {
    const { vm, vvtd, nic0 } = await shadowVm();
    expect(vvtd.unit.features).toMatchObject({
      scalableMode: false,
      cachingMode: true,
      queuedInvalidation: true,
    });
    // The guest driver turned translation on; the device has no domain yet.
    const gpa = vm.guest.allocBuffer(0x1000);
    expect(nic0.dmaWrite(gpa, Uint8Array.of(1))).toMatchObject({ ok: false });
  });

  it('a guest map reaches the device’s IOAS through its invalidation; an unmap takes it away', async () => {
    const { vm, vvtd, nic0 } = await shadowVm();
    const gpa = vm.guest.allocBuffer(0x4000);
    const dma = vm.guest.dma('nic0');
    const iova = dma.map(gpa, 0x4000n, RW);
    expect(nic0.dmaWrite(iova + 0x3010n, Uint8Array.of(0xaa, 0xbb))).toMatchObject({ ok: true });
    expect([...vm.guest.read(gpa + 0x3010n, 2)]).toEqual([0xaa, 0xbb]);
    expect(vvtd.stats.pagesMapped).toBe(4);
    dma.unmap(iova);
    expect(nic0.dmaRead(iova, 4)).toMatchObject({ ok: false });
    expect(vvtd.stats.pagesUnmapped).toBe(4);
  });

  it('read-only stays read-only; each device has its own shadow', async () => {
    const { system, vm, nic0 } = await shadowVm();
    const gpa = vm.guest.allocBuffer(0x1000);
    const iova = vm.guest.dma('nic0').map(gpa, 0x1000n, { read: true, write: false });
    expect(nic0.dmaRead(iova, 4)).toMatchObject({ ok: true });
    expect(nic0.dmaWrite(iova, Uint8Array.of(1))).toMatchObject({ ok: false, fault: { kind: 'permission' } });
    expect(system.device('nic1').dmaRead(iova, 4)).toMatchObject({ ok: false });
  });

  it('caching mode at work: a PTE the guest writes without invalidating stays unseen until it does', async () => {
    const { vm, nic0 } = await shadowVm(['nic0']);
    const guest = vm.guest;
    const driver = guest.driver as VtdDriver;
    const domain = driver.domainAllocPaging() as VtdPagingDomain;
    driver.attachDev(domain, guest.device('nic0'));
    const gpa = guest.allocBuffer(0x1000);
    // Straight into the guest's table: no flush, as a buggy guest driver would.
    domain.table.map(0x7000n, gpa, 0x1000n, RW);
    expect(nic0.dmaWrite(0x7000n, Uint8Array.of(1))).toMatchObject({ ok: false });
    domain.flushIotlbAll();
    expect(nic0.dmaWrite(0x7000n, Uint8Array.of(9))).toMatchObject({ ok: true });
    expect([...guest.read(gpa, 1)]).toEqual([9]);
  });

  it('identity in the guest is guest RAM at IOVA = GPA', async () => {
    const { vm, nic0 } = await shadowVm(['nic0']);
    const driver = vm.guest.driver as VtdDriver;
    driver.attachDev(driver.identityDomain!, vm.guest.device('nic0'));
    const gpa = vm.guest.allocBuffer(0x1000);
    expect(nic0.dmaWrite(gpa + 4n, Uint8Array.of(0x42))).toMatchObject({ ok: true });
    expect([...vm.guest.read(gpa + 4n, 1)]).toEqual([0x42]);
  });

  it('a replay the host refuses stops the guest queue with IQE: the guest learns its map does not exist', async () => {
    const { vm, vvtd } = await shadowVm(['nic0']);
    const gpa = vm.guest.allocBuffer(0x1000);
    vi.spyOn(vm.fd, 'ioasMap').mockImplementation(() => {
      throw new IommufdError('ENOSPC', 'no room for the test');
    });
    expect(() => vm.guest.dma('nic0').map(gpa, 0x1000n, RW)).toThrow(/Invalidation Queue Error.*IQEI 0/);
    expect(vvtd.stats.rejected).toBe(1);
  });
});
