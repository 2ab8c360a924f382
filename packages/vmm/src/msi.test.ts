/**
 * MSIs of assigned devices (docs/design.md §7 flow 5): the legacy SW MSI cookie with and without the
 * guest's identity map, MSI passthrough and its EEXIST conflict, and the guest's own vITS (MOVI, INV).
 * The host ITS sits at 0x2000_0000 so its doorbell page (0x2001_0000) differs from the vITS's GPA page.
 */
import { type IMsiController, isIommufdError } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { smmuHost } from '../test/host.js';
import { VM_SW_MSI_WINDOW, Vm, type VmSpec } from './vm.js';
import { VITS_BASE } from './vm-msi.js';

const MiB = 2 ** 20;
const HOST_DOORBELL_PAGE = 0x2001_0000n;
const VITS_DOORBELL_PAGE = BigInt(VITS_BASE + 0x1_0000);

async function vmWithMsi(
  spec: Partial<VmSpec>,
  its: Record<string, unknown>[] = [{ name: 'its0', base: 0x2000_0000 }],
) {
  const { system, host } = await smmuHost(['nic0', 'nic1'], {}, { controller: 'gic-its', options: { its } });
  const vm = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices: ['nic0'], ...spec });
  vm.powerOn();
  return { system, vm, msi: vm.msi!, hostMsi: system.requireMsi() };
}

const guestArrivals = (controller: IMsiController) => controller.cpus.flatMap((c) => c.arrivals);

describe('MSIs of a VM', () => {
  it('nested, legacy cookie with the RMR: the write passes stage 1 one to one, stage 2 maps the physical doorbell', async () => {
    const { system, vm, msi, hostMsi } = await vmWithMsi({
      viommus: ['nested'],
      msi: { mode: 'sw-msi', rmr: true },
    });
    msi.setupDevice(vm.assignedDevice('nic0'), 2);
    const nic = system.device('nic0');
    // The device writes the host's SW MSI IOVA, in the window the VMM moved out of the guest's way.
    expect(nic.msix.message(0)).toEqual({ address: VM_SW_MSI_WINDOW.start + 0x40n, data: 0 });
    const s2 = vm.fd.attachedHwpt(vm.assignedDevice('nic0').devId)!;
    expect(vm.fd.msiPages(s2)).toEqual([
      { iovaPage: VM_SW_MSI_WINDOW.start, doorbellPage: HOST_DOORBELL_PAGE, users: 1 },
    ]);

    const result = nic.signalMsi(1)!;
    expect(result).toMatchObject({ ok: true, hpas: [HOST_DOORBELL_PAGE + 0x40n] });
    const [host] = hostMsi.takeOutcomes();
    expect(host).toMatchObject({ kind: 'delivered', arrival: { deviceId: nic.streamId, eventId: 1 } });
    vm.serviceInterrupts();
    const guestVector = msi.guestVector('nic0', 1);
    expect(guestArrivals(msi.guest)).toEqual([
      expect.objectContaining({ intid: guestVector.intid, cpu: guestVector.cpu, deviceId: 0x8, eventId: 1 }),
    ]);
    expect(vm.guest.faults.records).toEqual([]);
  });

  it('nested, legacy cookie without the RMR: F_TRANSLATION in stage 1, delivered to the guest', async () => {
    const { system, vm, msi } = await vmWithMsi({ viommus: ['nested'], msi: { mode: 'sw-msi', rmr: false } });
    msi.setupDevice(vm.assignedDevice('nic0'), 1);
    const result = system.device('nic0').signalMsi(0)!;
    expect(result).toMatchObject({
      ok: false,
      reason: 'fault',
      fault: { vendorCode: 'F_TRANSLATION', stage: 1 },
    });
    vm.serviceInterrupts();
    expect(vm.guest.faults.records).toEqual([
      expect.objectContaining({
        device: 'nic0',
        fault: expect.objectContaining({ vendorCode: 'F_TRANSLATION', iova: VM_SW_MSI_WINDOW.start + 0x40n }),
      }),
    ]);
    expect(guestArrivals(msi.guest)).toEqual([]);
  });

  it('no vIOMMU, legacy cookie: the host window in the auto HWPT; the guest programs the vITS GPA', async () => {
    const { system, vm, msi } = await vmWithMsi({ msi: { mode: 'sw-msi', rmr: true } });
    const summary = msi.setupDevice(vm.assignedDevice('nic0'), 1);
    expect(summary).toContain(`guest MSI address ${'0x8090040'}`);
    const nic = system.device('nic0');
    expect(nic.msix.message(0)?.address).toBe(0x800_0040n); // the SMMU driver's own SW MSI window
    system.tracer.startRecording();
    expect(nic.signalMsi(0)).toMatchObject({ ok: true, hpas: [HOST_DOORBELL_PAGE + 0x40n] });
    vm.serviceInterrupts();
    const injected = system.tracer.stopRecording().filter((r) => r.name === 'msi.inject');
    const hostIntid = system
      .requireMsi()
      .cpus.flatMap((c) => c.arrivals)
      .at(-1)!.intid;
    expect(injected.map((r) => r.message)).toEqual([
      `host LPI ${hostIntid} (nic0 vector 0) → inject DeviceID 0x8 EventID 0 into vm0.vits`,
    ]);
    expect(guestArrivals(msi.guest)).toEqual([expect.objectContaining({ deviceId: 0x8, eventId: 0 })]);
  });

  it('nested, passthrough: guest IOVA → stage 1 → vITS GPA → stage 2 → physical ITS', async () => {
    const { system, vm, msi } = await vmWithMsi({
      viommus: ['nested'],
      msi: { mode: 'passthrough', rmr: false },
    });
    const summary = msi.setupDevice(vm.assignedDevice('nic0'), 1);
    expect(summary).toContain('ioasMapMsi');
    const nic = system.device('nic0');
    // The device writes the guest's own MSI address: its SW MSI cookie's IOVA for the vITS doorbell.
    const guestIova = nic.msix.message(0)!.address;
    expect(guestIova).toBe(0x800_0040n);
    const s2 = vm.fd.attachedHwpt(vm.assignedDevice('nic0').devId)!;
    expect(vm.fd.msiPages(s2)).toEqual([
      { iovaPage: VITS_DOORBELL_PAGE, doorbellPage: HOST_DOORBELL_PAGE, users: 1 },
    ]);
    expect(nic.signalMsi(0)).toMatchObject({ ok: true, hpas: [HOST_DOORBELL_PAGE + 0x40n] });
    vm.serviceInterrupts();
    expect(guestArrivals(msi.guest)).toHaveLength(1);
  });

  it('passthrough: two devices of one domain on different physical ITSes collide (EEXIST); the VMM splits the HWPT', async () => {
    const its = [
      { name: 'its0', base: 0x2000_0000 },
      { name: 'its1', base: 0x2004_0000, devices: ['nic1'] },
    ];
    const { system, vm, msi } = await vmWithMsi(
      { devices: ['nic0', 'nic1'], msi: { mode: 'passthrough', rmr: false } },
      its,
    );
    const [nic0, nic1] = vm.assigned;
    // Without a vIOMMU both devices share iommufd's auto HWPT on the VM's IOAS.
    expect(vm.fd.attachedHwpt(nic0!.devId)).toBe(vm.fd.attachedHwpt(nic1!.devId));
    msi.setupDevice(nic0!, 1);
    let conflict: unknown;
    try {
      vm.fd.ioasMapMsi(1, nic1!.devId, VITS_DOORBELL_PAGE);
    } catch (error) {
      conflict = error;
    }
    expect(isIommufdError(conflict, 'EEXIST')).toBe(true);
    const summary = msi.setupDevice(nic1!, 1);
    expect(summary).toMatch(/EEXIST.*own HWPT/);
    expect(vm.fd.attachedHwpt(nic0!.devId)).not.toBe(vm.fd.attachedHwpt(nic1!.devId));
    expect(vm.fd.msiPages(vm.fd.attachedHwpt(nic1!.devId)!)).toEqual([
      { iovaPage: VITS_DOORBELL_PAGE, doorbellPage: 0x2005_0000n, users: 1 },
    ]);
    // Both devices write the vITS GPA (no vIOMMU) and reach their own physical ITS.
    expect(system.device('nic0').signalMsi(0)).toMatchObject({
      ok: true,
      hpas: [HOST_DOORBELL_PAGE + 0x40n],
    });
    expect(system.device('nic1').signalMsi(0)).toMatchObject({ ok: true, hpas: [0x2005_0040n] });
    vm.serviceInterrupts();
    expect(guestArrivals(msi.guest).map((a) => a.deviceId)).toEqual([0x8, 0x10]);
  });

  it("the guest's vITS: MOVI retargets, a missing INV leaves the old configuration cached, INV applies it", async () => {
    const { system, vm, msi } = await vmWithMsi({
      viommus: ['nested'],
      msi: { mode: 'passthrough', rmr: false },
    });
    msi.setupDevice(vm.assignedDevice('nic0'), 1);
    const nic = system.device('nic0');
    const { intid } = msi.guestVector('nic0', 0);
    const fire = () => {
      nic.signalMsi(0);
      vm.serviceInterrupts();
      return msi.takeInjection();
    };
    expect(fire()).toMatchObject({ kind: 'delivered', arrival: { cpu: 0, intid } });
    msi.guest.setAffinity(intid, 1);
    expect(fire()).toMatchObject({ kind: 'delivered', arrival: { cpu: 1, intid } });
    msi.guest.configure(intid, { enabled: false }, { invalidate: false });
    expect(fire()).toMatchObject({ kind: 'delivered', arrival: { cpu: 1 } }); // stale: still enabled in the cache
    msi.guest.configure(intid, { enabled: false });
    expect(fire()).toMatchObject({ kind: 'pending', intid });
    expect(msi.guest.stateOf(intid)).toBe('pending');
    const before = guestArrivals(msi.guest).length;
    msi.guest.configure(intid, { enabled: true, priority: 0x40 });
    expect(guestArrivals(msi.guest)).toHaveLength(before + 1);
    expect(guestArrivals(msi.guest).at(-1)).toMatchObject({ intid, cpu: 1, priority: 0x40 });
    expect(msi.guest.stateOf(intid)).toBe('inactive');
  });

  it('power off frees the physical vectors and the handlers; powering on again starts clean', async () => {
    const { system, vm, hostMsi } = await vmWithMsi({ viommus: ['nested'] });
    vm.msi!.setupDevice(vm.assignedDevice('nic0'), 1);
    expect(() => vm.msi!.setupDevice(vm.assignedDevice('nic0'), 1)).toThrow(/EEXIST/);
    vm.powerOff();
    const nic = system.device('nic0');
    expect(nic.signalMsi(0)).toBeUndefined(); // the MSI-X table was reset
    // Unbound, the device is blocked again, and its host vectors are gone (they can be allocated anew).
    expect(nic.msiWrite(0x2001_0040n, 0)).toMatchObject({ ok: false, reason: 'fault' });
    const requester = { name: 'nic0', deviceId: nic.streamId };
    expect(hostMsi.allocateVectors(requester, 1)).toHaveLength(1);
    hostMsi.freeVectors(requester);
    vm.powerOn();
    vm.msi!.setupDevice(vm.assignedDevice('nic0'), 1);
    nic.signalMsi(0);
    vm.serviceInterrupts();
    expect(vm.msi!.takeInjection()).toMatchObject({ kind: 'delivered' });
  });
});
