/**
 * VMs without a vIOMMU on an SMMUv3 host: guest RAM on host pages, assigned devices DMA to GPAs through
 * the VM's stage 2, two VMs are isolated, and power off releases everything on the host.
 */
import { describe, expect, it } from 'vitest';
import { smmuHost } from '../test/host.js';
import { GUEST_RAM_BASE } from './guest-memory.js';
import { Vm } from './vm.js';

const MiB = 2 ** 20;
const RW = { read: true, write: true };

describe('a VM without a vIOMMU', () => {
  it('an assigned device DMAs to a guest-physical address; the bytes land in the guest and on the host page', async () => {
    const { system, host } = await smmuHost();
    const vm = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices: ['nic0'] });
    vm.powerOn();
    const buffer = vm.guest.allocBuffer(4096);
    const address = vm.guest.dma('nic0').map(buffer, 4096n, RW);
    expect(address).toBe(buffer); // no vIOMMU: the device uses the GPA
    const nic = system.device('nic0');
    expect(nic.dmaWrite(address + 0x10n, Uint8Array.of(1, 2, 3)).ok).toBe(true);
    expect(Array.from(vm.guest.read(buffer + 0x10n, 3))).toEqual([1, 2, 3]);
    const hostPage = vm.memory.gpaToHpa(buffer)!;
    expect(system.bus.readBytes(hostPage + 0x10n, 3, system.bus.counter('t'))).toMatchObject({
      ok: true,
      data: Uint8Array.of(1, 2, 3),
    });
    // Outside guest RAM the VM's IOAS maps nothing. Without a vIOMMU iommufd gives the device an automatic
    // paging domain, which the SMMUv3 driver builds at stage 1 (as Linux does): a stage-1 fault.
    expect(nic.dmaWrite(BigInt(GUEST_RAM_BASE + 64 * MiB), Uint8Array.of(1))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', stage: 1 },
    });
    expect(vm.assignedDevice('nic0').virtualRidText).toBe('00:01.0');
  });

  it('two VMs on one SMMU: different address spaces, and neither device reaches the other VM’s memory', async () => {
    const { system, host } = await smmuHost();
    const a = new Vm(host, { name: 'vmA', memory: 32 * MiB, devices: ['nic0'] });
    const b = new Vm(host, { name: 'vmB', memory: 32 * MiB, devices: ['nic1'] });
    a.powerOn();
    b.powerOn();
    expect(a.fd.attachedHwpt(a.assignedDevice('nic0').devId)).toBeDefined();
    // Both guests use the same GPA; each device reaches only its own VM's page.
    const gpa = a.guest.allocBuffer(4096);
    expect(b.guest.allocBuffer(4096)).toBe(gpa);
    system.device('nic0').dmaWrite(gpa, Uint8Array.of(0xaa));
    system.device('nic1').dmaWrite(gpa, Uint8Array.of(0xbb));
    expect(a.guest.read(gpa, 1)[0]).toBe(0xaa);
    expect(b.guest.read(gpa, 1)[0]).toBe(0xbb);
    expect(a.memory.gpaToHpa(gpa)).not.toBe(b.memory.gpaToHpa(gpa));
  });

  it('power off releases guest RAM and the devices (blocked); a power cycle leaks nothing', async () => {
    const { system, host } = await smmuHost();
    const vm = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices: ['nic0'] });
    const free = system.memory.freeFrameCount;
    vm.powerOn();
    expect(system.memory.freeFrameCount).toBeLessThan(free - 64 * 256);
    vm.powerOff();
    // The host driver keeps the device's CD table until the device is released (as Linux does).
    const afterOff = system.memory.freeFrameCount;
    expect(free - afterOff).toBeLessThan(8);
    vm.powerOn();
    vm.reset();
    vm.powerOff();
    expect(system.memory.freeFrameCount).toBe(afterOff);
    expect(vm.state).toBe('off');
    expect(system.device('nic0').dmaWrite(BigInt(GUEST_RAM_BASE), Uint8Array.of(1)).ok).toBe(false);
    vm.powerOn();
    const gpa = vm.guest.allocBuffer(4096);
    expect(system.device('nic0').dmaWrite(gpa, Uint8Array.of(7)).ok).toBe(true);
    expect(vm.guest.read(gpa, 1)[0]).toBe(7);
  });
});
