/**
 * The seed flows on a nested vSMMUv3 (DESIGN.md §7 flows 1 and 2): the guest's own SMMUv3 driver programs
 * the vSMMU, the VMM turns its STEs into nested HWPTs, the physical SMMU walks the guest's tables through
 * the VM's stage 2.
 */
import type { NestedVsmmu } from '@iommukit/smmuv3';
import { describe, expect, it } from 'vitest';
import { smmuHost } from '../test/host.js';
import { Vm } from './vm.js';

const MiB = 2 ** 20;
const RW = { read: true, write: true };

async function nestedVm(devices = ['nic0']) {
  const { system, host } = await smmuHost();
  const vm = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices, viommu: { mode: 'nested' } });
  vm.powerOn();
  return { system, vm, vsmmu: vm.viommu as NestedVsmmu };
}

describe('nested vSMMUv3', () => {
  it('scenario 1: the guest maps a buffer at an IOVA; the device DMAs; bytes land in the right host page', async () => {
    const { system, vm, vsmmu } = await nestedVm();
    system.tracer.startRecording();
    const buffer = vm.guest.allocBuffer(4096);
    const iova = vm.guest.dma('nic0').map(buffer, 4096n, RW);
    expect(iova).not.toBe(buffer);
    const nic = system.device('nic0');
    expect(nic.dmaWrite(iova + 0x40n, Uint8Array.of(0xca, 0xfe))).toMatchObject({ ok: true });
    expect(Array.from(vm.guest.read(buffer + 0x40n, 2))).toEqual([0xca, 0xfe]);
    const host = vm.memory.gpaToHpa(buffer)!;
    expect(system.bus.readBytes(host + 0x40n, 2, system.bus.counter('t'))).toMatchObject({
      data: Uint8Array.of(0xca, 0xfe),
    });
    expect(vsmmu.stats.nestedAllocs).toBe(1);
    const records = system.tracer.stopRecording().filter((r) => r.layer === 'hw');
    // The host SMMU fetched the STE and the CD (through stage 2), then walked the guest's 4 stage-1
    // levels, each table address and the output through stage 2 (2 MiB blocks: 3 levels), 6 stage-2 walks.
    const names = records.map((r) => r.name);
    expect(names).toContain('ste.fetch');
    expect(names).toContain('cd.fetch');
    const steps = records.filter((r) => r.name === 'walk.step').map((r) => r.message.slice(0, 7));
    expect(steps.filter((s) => s.startsWith('walk S1'))).toHaveLength(4);
    expect(steps.filter((s) => s.startsWith('walk S2'))).toHaveLength(6 * 3);
  });
});
