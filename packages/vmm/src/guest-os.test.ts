/** The guest OS keeps the faults its IOMMU drivers report in a bounded log (a fault storm cannot grow it). */
import {
  DEFAULT_LOG_CAPACITY,
  definePlugin,
  type FaultReporter,
  FrameAllocator,
  InterruptController,
  type IommuDeviceRef,
  MemoryBus,
  NO_PASID,
  PERM_READ,
  Tracer,
} from '@iommukit/core';
import { smmuv3Plugin } from '@iommukit/smmuv3';
import { describe, expect, it } from 'vitest';
import { GuestMemory } from './guest-memory.js';
import { GuestOs } from './guest-os.js';

const HOST_RAM = 0x8000_0000;

/** A guest with one vIOMMU whose driver's fault reporter is handed to the test. */
function guestWithReporter() {
  const bus = new MemoryBus();
  bus.addRam('dram', HOST_RAM, 16 * 2 ** 20);
  const memory = new FrameAllocator([{ base: HOST_RAM, size: 16 * 2 ** 20 }], (base, bytes) =>
    bus.discardRam(base, bytes),
  );
  const guest = new GuestOs('vm0', new GuestMemory('vm0', { bus, memory }, 2 * 2 ** 20), new Tracer());
  let report: FaultReporter | undefined;
  const interrupts = new InterruptController();
  guest.addIommu({
    plugin: definePlugin({
      ...smmuv3Plugin,
      createDriver(context) {
        report = context.reportFault;
        return smmuv3Plugin.createDriver(context);
      },
    }),
    base: 0x0900_0000n,
    name: 'vm0.viommu-nested',
    irq: (name) => interrupts.line(name),
  });
  return { guest, report: report! };
}

describe('GuestOs: the fault log', () => {
  it('100k faults keep the first DEFAULT_LOG_CAPACITY and count the rest as lost; take() frees them', () => {
    const { guest, report } = guestWithReporter();
    for (let n = 0; n < 100_000; n++) {
      report(
        {
          kind: 'translation',
          vendorCode: 'F_TRANSLATION',
          streamId: 8,
          pasid: NO_PASID,
          iova: BigInt(n) << 12n,
          access: PERM_READ,
          recorded: true,
        },
        undefined,
      );
    }
    expect(guest.faults.length).toBe(DEFAULT_LOG_CAPACITY);
    expect(guest.faults.lost).toBe(100_000 - DEFAULT_LOG_CAPACITY);
    expect(guest.faults.records[0]).toMatchObject({ iommu: 'vm0.viommu-nested', fault: { iova: 0n } });
    const { records, lost } = guest.faults.take();
    expect([records.length, lost]).toEqual([DEFAULT_LOG_CAPACITY, 100_000 - DEFAULT_LOG_CAPACITY]);
    // The space is free again: the next fault is kept.
    report({ ...records[0]!.fault, iova: 0x1000_0000n }, undefined);
    expect(guest.faults.records.map((f) => f.fault.iova)).toEqual([0x1000_0000n]);
  });
});

/** A guest device without ATS, PRI or PASID controls. */
function ref(name: string, rid: number): IommuDeviceRef {
  const off = () => {};
  const pci = {
    hasAts: false,
    hasPri: false,
    hasPasid: false,
    setAtsEnabled: off,
    setPriEnabled: off,
    setPasidEnabled: off,
  };
  return { name, rid, streamId: rid, pasidBits: 0, canStall: false, pci };
}

function plainGuest(rmrs: { start: bigint; length: bigint }[] = []) {
  const bus = new MemoryBus();
  bus.addRam('dram', HOST_RAM, 16 * 2 ** 20);
  const memory = new FrameAllocator([{ base: HOST_RAM, size: 16 * 2 ** 20 }], (base, bytes) =>
    bus.discardRam(base, bytes),
  );
  return new GuestOs('vm0', new GuestMemory('vm0', { bus, memory }, 2 * 2 ** 20), new Tracer(), rmrs);
}

describe('GuestOs without a vIOMMU', () => {
  const device = ref('nic0', 8);

  it('device drivers DMA to guest-physical addresses; MSIs go to the doorbell GPA', () => {
    const guest = plainGuest([{ start: 0x0c00_0000n, length: 0x10_0000n }]);
    guest.boot([{ ref: device }]);
    expect(guest.driver).toBeUndefined();
    expect(guest.device('nic0')).toBe(device);
    const dma = guest.dma('nic0');
    expect(dma.map(0x4000_3000n, 0x1000n, { read: true, write: true })).toBe(0x4000_3000n);
    dma.unmap(0x4000_3000n);
    expect(guest.msiAddress('nic0', 0x0809_0040n)).toBe(0x0809_0040n);
  });

  it('an unknown device is an error', () => {
    const guest = plainGuest();
    guest.boot([]);
    expect(() => guest.device('nic9')).toThrow(/vm0: the guest has no device "nic9"/);
    expect(() => guest.dma('nic9')).toThrow(/no device/);
  });

  it('buffers are zeroed pages of guest RAM; reads and writes outside it fail', () => {
    const guest = plainGuest();
    const a = guest.allocBuffer(100);
    const b = guest.allocBuffer(100);
    expect(a % 0x1000n).toBe(0n);
    expect(b - a).toBe(0x1000n);
    expect([...guest.read(a, 4)]).toEqual([0, 0, 0, 0]);
    guest.write(a + 2n, Uint8Array.of(1, 2));
    expect([...guest.read(a, 4)]).toEqual([0, 0, 1, 2]);
    expect(() => guest.write(0x1000n, Uint8Array.of(1))).toThrow(/vm0: guest write at 0x1000 aborted/);
    expect(() => guest.read(0x1000n, 1)).toThrow(/vm0: guest read at 0x1000 aborted/);
  });
});

describe('GuestOs boot', () => {
  it('creates each vIOMMU’s driver on guest memory, probes the drivers, then the devices behind them', () => {
    const guest = plainGuest();
    const calls: string[] = [];
    const interrupts = new InterruptController();
    let instance = '';
    const fakeDriver = (name: string) =>
      ({
        blockedDomain: { kind: 'blocked' },
        probe: () => calls.push(`probe ${name}`),
        probeDevice: (ref: { name: string }) => calls.push(`probeDevice ${name} ${ref.name}`),
      }) as never;
    const plugin = (tag: string) =>
      definePlugin({
        ...smmuv3Plugin,
        createDriver(context) {
          instance = context.instance;
          expect(context.bus).toBe(guest.memory.bus);
          expect(context.memory).toBe(guest.memory.allocator);
          expect(context.irq('evtq')).toBe(interrupts.line(`vm0.viommu-${tag}.evtq`));
          calls.push(`create ${tag}`);
          return fakeDriver(tag);
        },
      });
    const irq = (tag: string) => (name: string) => interrupts.line(`vm0.viommu-${tag}.${name}`);
    const first = guest.addIommu({
      plugin: plugin('nested'),
      base: 0x0905_0000n,
      name: 'vm0.viommu-nested',
      irq: irq('nested'),
    });
    expect(instance).toBe('vm0.guest.viommu-nested');
    guest.addIommu({
      plugin: plugin('emulated'),
      base: 0x0907_0000n,
      name: 'vm0.viommu-emulated',
      irq: irq('emulated'),
    });
    expect(guest.driver).toBe(first);
    const nic = ref('nic0', 8);
    const virtio = ref('virtio0', 0x80);
    const loose = ref('plain0', 0x88);
    guest.boot([
      { ref: nic, iommu: 'vm0.viommu-nested' },
      { ref: virtio, iommu: 'vm0.viommu-emulated' },
      { ref: loose },
      { ref: ref('plain1', 0x90), iommu: 'vm0.viommu-none' },
    ]);
    expect(calls).toEqual([
      'create nested',
      'create emulated',
      'probe nested',
      'probe emulated',
      'probeDevice nested nic0',
      'probeDevice emulated virtio0',
    ]);
    expect(guest.core.driverOf(nic)).toBe(first);
    expect(guest.core.domainAt(loose)).toBeUndefined();
    expect(guest.msiAddress('plain1', 0x0809_0040n)).toBe(0x0809_0040n);
  });
});
