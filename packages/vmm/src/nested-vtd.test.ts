/**
 * Scalable-mode nesting on a nested vVT-d: the guest's own VT-d driver programs the vVT-d (first stage
 * only, caching mode), the VMM turns each PASID entry the guest invalidates into a nested HWPT on the VM's
 * stage 2, and the physical unit walks the guest's first-stage tables through it.
 */
import { IommufdError, iova as makeIova } from '@iommukit/core';
import { FSTS_IQE, type NestedVvtd, REG, type VtdDriver } from '@iommukit/vtd';
import { describe, expect, it, vi } from 'vitest';
import { vtdHost } from '../test/host.js';
import { Vm } from './vm.js';

const MiB = 2 ** 20;
const RW = { read: true, write: true };

async function nestedVm(devices = ['nic0'], options: Record<string, unknown> = {}) {
  const { system, host } = await vtdHost(devices, options);
  const vm = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices, viommus: ['nested'] });
  vm.powerOn();
  return { system, vm, vvtd: vm.viommu() as NestedVvtd };
}

describe('nested vVT-d (scalable-mode first stage on the VM stage 2)', () => {
  it('the guest maps a buffer; the device DMAs through the guest first stage and the stage 2', async () => {
    const { system, vm, vvtd } = await nestedVm();
    const buffer = vm.guest.allocBuffer(4096);
    const iova = vm.guest.dma('nic0').map(buffer, 4096n, RW);
    expect(iova).not.toBe(buffer);
    const nic = system.device('nic0');
    expect(nic.dmaWrite(iova + 0x40n, Uint8Array.of(0xca, 0xfe))).toMatchObject({ ok: true });
    expect(Array.from(vm.guest.read(buffer + 0x40n, 2))).toEqual([0xca, 0xfe]);
    // One nested HWPT for the guest's DMA domain; the host entry is a nested PASID entry of its own DID.
    expect(vvtd.stats.nestedAllocs).toBe(1);
    const hostDriver = system.iommus[0]!.driver as VtdDriver;
    const entry = hostDriver.pasidEntry(system.device('nic0'), 0);
    expect(entry).toMatchObject({ p: true, pgtt: 3 });
    // The guest's unmap invalidates its IOTLB (PASID-based); the VMM forwards it and the DMA faults.
    vm.guest.dma('nic0').unmap(iova);
    expect(vvtd.stats.invalidationsForwarded).toBeGreaterThan(0);
    expect(nic.dmaWrite(iova + 0x40n, Uint8Array.of(1))).toMatchObject({ ok: false });
  });

  it('the guest sees the host-derived unit: first stage only, caching mode, the host’s ATS and PRI, no IR', async () => {
    const { vvtd } = await nestedVm();
    const f = vvtd.unit.features;
    expect(f).toMatchObject({
      scalableMode: true,
      firstStage: true,
      secondStage: false,
      nesting: false,
      cachingMode: true,
      deviceTlb: true,
      pageRequests: true,
      interruptRemapping: false,
    });
  });

  it('two devices in one guest domain share a nested HWPT; power-off leaves nothing on the host', async () => {
    const { system, vm, vvtd } = await nestedVm(['nic0', 'nic1']);
    const buffer = vm.guest.allocBuffer(4096);
    const iova = vm.guest.dma('nic0').map(buffer, 4096n, RW);
    // The guest puts nic1 in nic0's domain: a PASID entry with the same DID and first-stage table.
    const guest = vm.guest;
    const domain = guest.core.domainAt(guest.device('nic0'))!;
    guest.driver!.attachDev(domain, guest.device('nic1'));
    expect(vvtd.stats).toMatchObject({ nestedAllocs: 1, nestedShared: 1 });
    expect(system.device('nic1').dmaWrite(iova, Uint8Array.of(7))).toMatchObject({ ok: true });
    expect(Array.from(vm.guest.read(buffer, 1))).toEqual([7]);
    vm.powerOff();
    const hostDriver = system.iommus[0]!.driver as VtdDriver;
    for (const nic of ['nic0', 'nic1'])
      expect(hostDriver.pasidEntry(system.device(nic), 0)?.p ?? false).toBe(false);
  });

  it('a guest domain at a PASID becomes a nested HWPT attached at that PASID; removing it detaches', async () => {
    const { system, vm } = await nestedVm();
    const guest = vm.guest;
    const driver = guest.driver as VtdDriver;
    const ref = guest.device('nic0');
    const buffer = guest.allocBuffer(4096);
    const domain = driver.domainAllocPaging({ pasid: true });
    domain.map(makeIova(0x20_0000n), buffer as never, 4096n, RW);
    driver.setDevPasid(domain, ref, 5);
    const nic = system.device('nic0');
    expect(nic.dmaWrite(0x20_0010n, Uint8Array.of(0x55), { pasid: 5 })).toMatchObject({ ok: true });
    expect(Array.from(guest.read(buffer + 0x10n, 1))).toEqual([0x55]);
    expect(vm.fd.attachedHwpt(vm.assignedDevice('nic0').devId, 5)).toBeDefined();
    // Without PASID the device is still blocked: the guest gave its RID no domain yet.
    expect(nic.dmaWrite(0x20_0010n, Uint8Array.of(1))).toMatchObject({ ok: false });
    driver.removeDevPasid(ref, 5);
    expect(vm.fd.attachedHwpt(vm.assignedDevice('nic0').devId, 5)).toBeUndefined();
    expect(nic.dmaWrite(0x20_0010n, Uint8Array.of(1), { pasid: 5 })).toMatchObject({ ok: false });
  });

  it('identity in the guest is stage 2 alone; blocked in the guest is blocked on the host', async () => {
    const { system, vm, vvtd } = await nestedVm();
    const guest = vm.guest;
    const driver = guest.driver as VtdDriver;
    const ref = guest.device('nic0');
    const buffer = guest.allocBuffer(4096);
    driver.attachDev(driver.identityDomain!, ref);
    const nic = system.device('nic0');
    expect(nic.dmaWrite(buffer + 8n, Uint8Array.of(0x33))).toMatchObject({ ok: true });
    expect(Array.from(guest.read(buffer + 8n, 1))).toEqual([0x33]);
    driver.attachDev(driver.blockedDomain, ref);
    expect(nic.dmaWrite(buffer + 8n, Uint8Array.of(1))).toMatchObject({ ok: false });
    expect(vvtd.stats.nestedAllocs).toBe(0);
  });

  it('an invalidation the host refuses stops the guest queue with IQE at that descriptor', async () => {
    const { vm } = await nestedVm();
    const buffer = vm.guest.allocBuffer(4096);
    const dma = vm.guest.dma('nic0');
    const iova = dma.map(buffer, 4096n, RW);
    vi.spyOn(vm.fd, 'hwptInvalidate').mockImplementation(() => {
      throw new IommufdError('EINVAL', 'refused for the test');
    });
    // The guest driver finds IQE at its descriptor, IQEI 0 (the unit cannot say why), replaces it with a
    // wait and clears FSTS.IQE (Linux qi_check_fault), then reports the error.
    expect(() => dma.unmap(iova)).toThrow(
      /Invalidation Queue Error: descriptor 0 of the submission refused, IQEI 0/,
    );
    const vvtd = vm.viommu() as NestedVvtd;
    expect(vvtd.stats.invalidationsRejected).toBe(1);
    expect(vvtd.unit.regs.get(REG.FSTS) & FSTS_IQE).toBe(0);
  });

  it('a page request of the assigned device reaches the guest’s page request queue; the guest’s response reaches the device', async () => {
    const { system, host } = await vtdHost(['nic0'], {}, true, {
      ats: { atcEntries: 32 },
      pri: { maxOutstanding: 8 },
    });
    const vm = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices: ['nic0'], viommus: ['nested'] });
    vm.powerOn();
    const vvtd = vm.viommu() as NestedVvtd;
    const guest = vm.guest;
    const driver = guest.driver as VtdDriver;
    const ref = guest.device('nic0');
    const domain = driver.domainAllocPaging();
    guest.core.attachDevice(ref, domain);
    // The nested HWPT the guest's entry became has the FAULT queue: attaching it enabled the NIC's PRI.
    expect(system.device('nic0').pri?.enabled).toBe(true);
    const gpa = guest.allocBuffer(4096);
    const requests: bigint[] = [];
    guest.core.setIopfHandler(domain, (device, request) => {
      requests.push(request.iova);
      domain.map(makeIova(request.iova), gpa as never, 4096n, RW);
      guest.core.respond(device, { pasid: request.pasid, groupIndex: request.groupIndex, code: 'success' });
    });
    const nic = system.device('nic0');
    const first = nic.dmaWrite(0x30_0010n, Uint8Array.of(0x5a), { requestPages: true });
    expect(first).toMatchObject({ ok: false, reason: 'page-request' });
    vm.serviceInterrupts();
    expect(requests).toEqual([0x30_0000n]);
    expect(vvtd.stats).toMatchObject({ pageRequestsDelivered: 1, pageResponsesForwarded: 1 });
    expect(nic.pri?.lastResponse((first as { groupIndex: number }).groupIndex)).toBe('success');
    expect(nic.dmaWrite(0x30_0010n, Uint8Array.of(0x5a), { requestPages: true })).toMatchObject({ ok: true });
    expect(Array.from(guest.read(gpa + 0x10n, 1))).toEqual([0x5a]);
  });

  it('PRI follows the nested HWPTs with the FAULT queue: on with the first, off when the guest blocks and at power-off; never for a NIC without PRI', async () => {
    const { system, host } = await vtdHost(['nic0'], {}, true, { ats: {}, pri: {} });
    const vm = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices: ['nic0'], viommus: ['nested'] });
    vm.powerOn();
    const nic = system.device('nic0');
    // Translation on, no PASID entry yet: the RID is blocked, on a HWPT without the queue.
    expect(nic.pri?.enabled).toBe(false);
    const guest = vm.guest;
    const domain = (guest.driver as VtdDriver).domainAllocPaging({ pasid: true });
    guest.core.attachDevice(guest.device('nic0'), domain);
    expect(nic.pri?.enabled).toBe(true);
    guest.core.attachDevicePasid(guest.device('nic0'), domain, 3);
    guest.core.attachDevice(guest.device('nic0'), (guest.driver as VtdDriver).blockedDomain);
    // The PASID still has its nested HWPT: PRI stays on until that goes too.
    expect(nic.pri?.enabled).toBe(true);
    vm.powerOff();
    expect(nic.pri?.enabled).toBe(false);
    // A NIC with ATS but no PRI: its nested HWPT takes no fault queue, so its attach is not refused.
    const plain = await vtdHost(['nic0'], {}, true, { ats: {} });
    const vm2 = new Vm(plain.host, { name: 'vm0', memory: 64 * MiB, devices: ['nic0'], viommus: ['nested'] });
    vm2.powerOn();
    const buffer = vm2.guest.allocBuffer(4096);
    const iova = vm2.guest.dma('nic0').map(buffer, 4096n, RW);
    expect(plain.system.device('nic0').dmaWrite(iova, Uint8Array.of(1))).toMatchObject({ ok: true });
    expect((vm2.viommu() as NestedVvtd).stats.bindingsRefused).toBe(0);
  });
});
