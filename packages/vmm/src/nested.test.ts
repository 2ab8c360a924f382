/**
 * The nesting flows on a nested vSMMUv3 (docs/design.md §7 flows 1 and 2): the guest's own SMMUv3 driver programs
 * the vSMMU, the VMM turns its STEs into nested HWPTs, the physical SMMU walks the guest's tables through
 * the VM's stage 2.
 */

import { hpa, iova, MmioWindow, POLL_LIMIT } from '@iommukit/core';
import {
  CR0_CMDQEN,
  decodeSte,
  encodeCfgiCdAll,
  encodeSte,
  encodeTlbiNhAsid,
  type NestedVsmmu,
  REG,
  type Smmuv3Driver,
  STE_CONFIG,
} from '@iommukit/smmuv3';
import { describe, expect, it, vi } from 'vitest';
import { smmuHost } from '../test/host.js';
import { VIOMMU_WINDOWS, Vm } from './vm.js';

const MiB = 2 ** 20;
const RW = { read: true, write: true };

async function nestedVm(devices = ['nic0']) {
  const { system, host } = await smmuHost();
  const vm = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices, viommus: ['nested'] });
  vm.powerOn();
  return { system, vm, vsmmu: vm.viommu() as NestedVsmmu };
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
    // levels, each table address and the output through stage 2: 6 stage-2 walks of 2 MiB blocks. The
    // first reads 3 levels; the stage-2 walk cache then holds the guest RAM's level-2 table, so each of
    // the other 5 reads one descriptor.
    const names = records.map((r) => r.name);
    expect(names).toContain('ste.fetch');
    expect(names).toContain('cd.fetch');
    const steps = records.filter((r) => r.name === 'walk.step').map((r) => r.message.slice(0, 7));
    expect(steps.filter((s) => s.startsWith('walk S1'))).toHaveLength(4);
    expect(steps.filter((s) => s.startsWith('walk S2'))).toHaveLength(3 + 5);
  });
});

/** The guest's own SMMUv3 driver (the same class as the host's). */
const guestSmmu = (vm: Vm) => vm.guest.driver as unknown as Smmuv3Driver;

describe('nested vSMMUv3: sharing, invalidation, events', () => {
  it('scenario 2: two STEs on one CD table share a nested HWPT; a new S1ContextPtr gets a second', async () => {
    const { system, vm, vsmmu } = await nestedVm(['nic0', 'nic1']);
    vm.guest.dma('nic0').map(vm.guest.allocBuffer(4096), 4096n, RW);
    const smmu = guestSmmu(vm);
    const [a, b] = [0x08, 0x10];
    system.tracer.startRecording();
    // The guest points nic1's STE at nic0's CD table.
    smmu.streamTable.writeSte(b, smmu.streamTable.readSte(a));
    expect(vsmmu.sharedHwpts()).toEqual([{ hwptId: vsmmu.attachment(a), vsids: [a, b] }]);
    expect(vsmmu.stats).toMatchObject({ nestedAllocs: 1, nestedShared: 1 });
    // Then at a copy of that CD table: a second nested HWPT.
    const copy = vm.guest.allocBuffer(4096);
    const ste = smmu.streamTable.readSte(a);
    const table = decodeSte(ste).s1ContextPtr;
    vm.guest.write(copy, vm.guest.read(BigInt(table), 64));
    smmu.streamTable.writeSte(b, encodeSte({ ...decodeSte(ste), s1ContextPtr: Number(copy) }));
    expect(vsmmu.stats.nestedAllocs).toBe(2);
    expect(vsmmu.sharedHwpts().map((s) => s.vsids)).toEqual([[a], [b]]);
    const iommufd = system.tracer
      .stopRecording()
      .filter((r) => r.layer === 'iommufd')
      .map((r) => r.name);
    expect(iommufd).toEqual(expect.arrayContaining(['device.replace', 'hwpt.alloc']));
  });

  it('scenario 3: a command the host rejects stops the guest CMDQ with ILL; the guest recovers through GERRORN', async () => {
    const { system, vm, vsmmu } = await nestedVm();
    vm.guest.dma('nic0').map(vm.guest.allocBuffer(4096), 4096n, RW);
    const smmu = guestSmmu(vm);
    const host = system.iommu('smmu0').driver as unknown as Smmuv3Driver;
    const before = host.cmdq.issued.get('CMD_TLBI_NH_ASID') ?? 0;
    // vSID 0x99 has no vDEVICE: the host refuses CFGI_CD_ALL for it (EIO).
    expect(() =>
      smmu.cmdq.submit([
        encodeTlbiNhAsid({ vmid: 0, asid: 1 }),
        encodeCfgiCdAll({ streamId: 0x99 }),
        encodeTlbiNhAsid({ vmid: 0, asid: 2 }),
      ]),
    ).toThrow(/refused CMD_CFGI_CD_ALL .*CERROR_ILL/);
    expect(smmu.cmdq.failures.records.at(-1)).toMatchObject({
      command: 'CMD_CFGI_CD_ALL',
      error: 'CERROR_ILL',
      action: 'replaced-with-sync',
    });
    expect(vsmmu.stats.commandsRejected).toBe(1);
    // The first TLBI took effect before the rejection, the last after the guest skipped the bad one.
    expect(host.cmdq.issued.get('CMD_TLBI_NH_ASID')).toBe(before + 2);
    // The guest's queue runs again.
    smmu.cmdq.issue(encodeTlbiNhAsid({ vmid: 0, asid: 1 }));
    expect(host.cmdq.issued.get('CMD_TLBI_NH_ASID')).toBe(before + 3);
  });

  it('scenario 4: DMA to an IOVA the guest unmapped faults on the host; the guest reads F_TRANSLATION with its vSID', async () => {
    const { system, vm } = await nestedVm();
    const dma = vm.guest.dma('nic0');
    const iova = dma.map(vm.guest.allocBuffer(4096), 4096n, RW);
    dma.unmap(iova);
    expect(system.device('nic0').dmaWrite(iova, Uint8Array.of(1))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', stage: 1 },
    });
    vm.serviceInterrupts();
    expect(vm.guest.faults.records).toMatchObject([
      { device: 'nic0', fault: { vendorCode: 'F_TRANSLATION', streamId: 0x08, iova, stage: 1 } },
    ]);
    // The host did not report it as its own: it went to the guest.
    expect(system.iommu('smmu0').faults.records).toEqual([]);
  });

  it('a guest CD with S = 1 behind the no-stall vSMMU is C_BAD_CD for the guest; no DMA stays stalled on the host', async () => {
    // Found by the hostile-guest property: V, AA64, S = 1, TTB0 = 0 written at S1ContextPtr, then
    // CFGI_CD_ALL. The host forces S1STALLD = 1 for nic0 (it cannot stall), so the CD is ILLEGAL (§5.4).
    const { system, vm } = await nestedVm();
    const iova = vm.guest.dma('nic0').map(vm.guest.allocBuffer(4096), 4096n, RW);
    const smmu = guestSmmu(vm);
    const cdTable = decodeSte(smmu.streamTable.readSte(0x08)).s1ContextPtr;
    const cd = Uint32Array.of(0xddb7_c000, 0x1fff_fe00, ...new Array(14).fill(0));
    vm.guest.write(BigInt(cdTable), new Uint8Array(cd.buffer));
    smmu.cmdq.submit([encodeCfgiCdAll({ streamId: 0x08 })]);
    const nic = system.device('nic0');
    expect(nic.dmaRead(iova, 1)).toMatchObject({
      ok: false,
      reason: 'fault',
      fault: { vendorCode: 'C_BAD_CD' },
    });
    vm.serviceInterrupts();
    expect(nic.stalledDmaCount).toBe(0);
    expect(system.iommu('smmu0').hardware.stats().stalled).toBe(0);
    expect(vm.guest.faults.records).toMatchObject([
      { device: 'nic0', fault: { vendorCode: 'C_BAD_CD', streamId: 0x08 } },
    ]);
    expect(system.iommu('smmu0').faults.records).toEqual([]);
  });
});

describe('VM lifecycle with a nested vSMMUv3', () => {
  it('scenario 5: power off, then on without a vIOMMU: no C_BAD_STE, DMA through stage 2', async () => {
    const { system, host } = await smmuHost();
    const nested = new Vm(host, {
      name: 'vm0',
      memory: 64 * MiB,
      devices: ['nic0'],
      viommus: ['nested'],
    });
    nested.powerOn();
    nested.guest.dma('nic0').map(nested.guest.allocBuffer(4096), 4096n, RW);
    nested.powerOff();
    const plain = new Vm(host, { name: 'vm0', memory: 64 * MiB, devices: ['nic0'] });
    plain.powerOn();
    const gpa = plain.guest.allocBuffer(4096);
    expect(system.device('nic0').dmaWrite(gpa, Uint8Array.of(5)).ok).toBe(true);
    expect(plain.guest.read(gpa, 1)[0]).toBe(5);
    plain.serviceInterrupts();
    expect(system.iommu('smmu0').faults.records.map((f) => f.fault.vendorCode)).not.toContain('C_BAD_STE');
    expect(system.iommu('smmu0').faults.records).toEqual([]);
  });

  it('scenario 6: two nested VMs on one SMMU get different VMIDs; neither device reaches the other VM', async () => {
    const { system, host } = await smmuHost();
    const vms = ['nic0', 'nic1'].map(
      (nic, i) => new Vm(host, { name: `vm${i}`, memory: 32 * MiB, devices: [nic], viommus: ['nested'] }),
    );
    for (const vm of vms) vm.powerOn();
    const hostSmmu = system.iommu('smmu0').driver as unknown as Smmuv3Driver;
    const vmid = (nic: string) => decodeSte(hostSmmu.streamTable.readSte(system.device(nic).streamId)).s2Vmid;
    const iovas = vms.map((vm, i) => {
      const nic = `nic${i}`;
      const gpa = vm.guest.allocBuffer(4096);
      return { gpa, iova: vm.guest.dma(nic).map(gpa, 4096n, RW) };
    });
    expect(vmid('nic0')).not.toBe(vmid('nic1'));
    expect(vmid('nic0')).toBeGreaterThan(0);
    // Same guest IOVA layout in both VMs: each device reaches only its own VM's page.
    expect(iovas[0]!.iova).toBe(iovas[1]!.iova);
    system.device('nic0').dmaWrite(iovas[0]!.iova, Uint8Array.of(0xa0));
    system.device('nic1').dmaWrite(iovas[1]!.iova, Uint8Array.of(0xb1));
    expect(vms[0]!.guest.read(iovas[0]!.gpa, 1)[0]).toBe(0xa0);
    expect(vms[1]!.guest.read(iovas[1]!.gpa, 1)[0]).toBe(0xb1);
  });
});

describe('nested vSMMUv3: what the guest sees and may do', () => {
  it('IDRs from the host hw_info: stage 1 only, no stalls, no PRI, the host SubstreamIDs and granules', async () => {
    const { vm, vsmmu } = await nestedVm();
    const f = guestSmmu(vm).features;
    expect(f).toMatchObject({
      s1: true,
      s2: false,
      pri: false,
      stallModel: 'no-stall',
      ssidBits: 8,
      sidBits: 16,
    });
    expect(vsmmu.features.granules).toEqual({ g4k: true, g16k: true, g64k: true });
  });

  it('substreams: a guest domain at a PASID translates the device’s PASID-tagged DMA through the guest CD table', async () => {
    const { system, vm } = await nestedVm();
    const smmu = guestSmmu(vm);
    const device = vm.assignedDevice('nic0').guestView;
    const domain = smmu.domainAllocPaging({ pasid: true });
    const gpa = vm.guest.allocBuffer(4096);
    domain.map(iova(0x20_0000n), hpa(gpa), 4096n, RW);
    vm.guest.core.attachDevicePasid(device, domain, 3);
    expect(system.device('nic0').dmaWrite(0x20_0010n, Uint8Array.of(0x33), { pasid: 3 }).ok).toBe(true);
    expect(vm.guest.read(gpa + 0x10n, 1)[0]).toBe(0x33);
    // Without the PASID the device has nothing there (its RID is blocked in the guest).
    expect(system.device('nic0').dmaWrite(0x20_0010n, Uint8Array.of(1)).ok).toBe(false);
  });

  it('an STE the SMMU would refuse aborts the device and the guest finds C_BAD_STE in its Event queue', async () => {
    const { system, vm, vsmmu } = await nestedVm();
    const smmu = guestSmmu(vm);
    // Config = stage 2, which the guest's SMMU does not implement: ILLEGAL.
    smmu.streamTable.writeSte(0x08, encodeSte({ v: true, config: STE_CONFIG.S2_TRANS }));
    expect(vsmmu.attachment(0x08)).toBeDefined();
    vm.serviceInterrupts();
    expect(vm.guest.faults.records.map((f) => f.fault.vendorCode)).toEqual(['C_BAD_STE']);
    expect(system.device('nic0').dmaWrite(0x1000n, Uint8Array.of(1)).ok).toBe(false);
  });
});

describe('nested vSMMUv3: a guest that moves its own Command queue', () => {
  it('every command is then illegal: its driver fails with ETIMEDOUT instead of hanging the process', async () => {
    const { vm, vsmmu } = await nestedVm();
    const dma = vm.guest.dma('nic0');
    const mapped = dma.map(vm.guest.allocBuffer(4096), 4096n, RW);
    // Guest code behind its driver's back: CMDQEN off, CMDQ_BASE at a zeroed page (opcode 0 is illegal),
    // CMDQEN on again. The driver replaces the bad entry in its own queue, which the SMMU no longer reads.
    const bus = vm.memory.bus;
    const who = bus.counter('vm0.rogue');
    const mmio = (offset: number, value: number) => bus.write(VIOMMU_WINDOWS.nested + offset, 4, value, who);
    const cr0 = vsmmu.programming.regs.get(REG.CR0);
    mmio(REG.CR0, cr0 & ~CR0_CMDQEN);
    mmio(REG.CMDQ_BASE, Number(vm.guest.allocBuffer(4096)) + 8); // LOG2SIZE 8
    mmio(REG.CMDQ_BASE + 4, 0);
    mmio(REG.CR0, cr0);
    // A watchdog on the guest driver's register reads turns a hang into a failure of this test.
    const read32 = MmioWindow.prototype.read32;
    let reads = 0;
    vi.spyOn(MmioWindow.prototype, 'read32').mockImplementation(function (this: MmioWindow, at) {
      if (++reads > 20 * POLL_LIMIT) throw new Error('watchdog: the guest driver is still polling');
      return read32.call(this, at);
    });
    try {
      expect(() => dma.unmap(mapped)).toThrowError(/^ETIMEDOUT: vm0\.guest\.viommu-nested: CMD_SYNC timeout/);
    } finally {
      vi.restoreAllMocks();
    }
    expect(guestSmmu(vm).cmdq.failures.records.at(-1)).toMatchObject({
      error: 'CERROR_ILL',
      action: 'replaced-with-sync',
    });
  });
});

describe('nested vSMMUv3: event overflow', () => {
  it('more faults than the vEVENTQ holds: the lost-events marker puts the guest Event queue in overflow', async () => {
    const { system, vm, vsmmu } = await nestedVm();
    const dma = vm.guest.dma('nic0');
    dma.map(vm.guest.allocBuffer(4096), 4096n, RW);
    // 100 faults before anyone services interrupts: the vEVENTQ (64 deep) loses some.
    for (let i = 0; i < 100; i++)
      system.device('nic0').dmaWrite(0x1000n + BigInt(i) * 0x1000n, Uint8Array.of(1));
    vm.serviceInterrupts();
    const prod = vsmmu.programming.regs.get(REG.EVENTQ_PROD);
    expect(prod >>> 31).toBe(1); // OVFLG
    const guest = guestSmmu(vm);
    expect(guest.stats.eventOverflows).toBe(1);
    expect(vsmmu.stats.eventsDelivered).toBeGreaterThan(0);
    expect(vsmmu.stats.eventsDelivered).toBeLessThan(100);
  });
});
