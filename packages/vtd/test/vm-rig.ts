/**
 * What a vVT-d personality needs around it, built the way a VMM builds it, for the viommu tests of this
 * package: a VT-d host system with an ATS/PRI NIC, an iommufd context with the NIC bound, guest RAM (a guest
 * bus whose RAM aliases a host block, mapped GPA → HPA in an IOAS), the backend of the mode under test —
 * a nest-parent HWPT, or the NIC's own empty IOAS — and the guest's VT-d driver (the plugin's) on the
 * guest bus, probed once the personality is placed.
 */
import {
  createSystem,
  FrameAllocator,
  hostMemory,
  hpa,
  InterruptController,
  type IommuDriver,
  MemoryBus,
  PluginRegistry,
  type ViommuContext,
  type ViommuMode,
} from '@iommukit/core';
import { x86ApicModule } from '@iommukit/x86-apic';
import { vtdPlugin } from '../src/plugin.js';

export const GPA_BASE = 0x4000_0000;
const GUEST_RAM = 16 * 2 ** 20;
const WINDOW = 0x0905_0000;
/** The NIC's RID as the guest sees it. */
export const VRID = 0x08;

export async function vmRig(mode: ViommuMode, hostOptions: Record<string, unknown> = {}) {
  const system = await createSystem(
    {
      name: 'host',
      plugin: 'vtd',
      memory: { ram: [{ name: 'dram', base: 0x8_0000_0000, size: '256MiB' }] },
      iommus: [{ name: 'dmar0', base: 0xfed9_0000, options: hostOptions }],
      devices: [
        {
          name: 'nic0',
          rid: '00:02.0',
          iommu: 'dmar0',
          pasidBits: 8,
          ats: { atcEntries: 8 },
          pri: { maxOutstanding: 4 },
        },
      ],
      msi: { controller: 'x86-apic', options: { cpus: 1 } },
    },
    {
      registry: new PluginRegistry(
        { vtd: async () => ({ default: vtdPlugin }) },
        { 'x86-apic': async () => ({ default: x86ApicModule }) },
      ),
    },
  );
  const nic = system.device('nic0');
  const fd = system.openIommufd();
  const devId = fd.bind(nic);
  const hostBase = system.memory.allocFrames(GUEST_RAM / 4096, 512);
  const bus = new MemoryBus();
  bus.addRamAlias('guest.ram', GPA_BASE, GUEST_RAM, { bus: system.bus, addr: hostBase });
  const memory = hostMemory(hostBase, BigInt(GUEST_RAM));
  const ioasId = fd.ioasAlloc();
  fd.ioasMap({
    ioasId,
    memory,
    iova: BigInt(GPA_BASE),
    length: BigInt(GUEST_RAM),
    readable: true,
    writeable: true,
  });
  const interrupts = new InterruptController();
  const base: Omit<ViommuContext, 'nested' | 'shadow'> = {
    name: 'vm.viommu',
    mode,
    bus,
    base: hpa(WINDOW),
    tracer: system.tracer,
    irq: (line) => interrupts.line(`vm.viommu.${line}`),
  };
  let context: ViommuContext;
  let shadowIoasId: number | undefined;
  if (mode === 'nested') {
    const s2HwptId = fd.hwptAlloc({ devId, ptId: ioasId, flags: { nestParent: true } });
    fd.attach(devId, s2HwptId);
    context = { ...base, nested: { fd, s2HwptId, hwInfo: fd.hwInfo(devId), anyDevId: devId } };
  } else {
    shadowIoasId = fd.ioasAlloc();
    fd.attach(devId, shadowIoasId);
    context = { ...base, shadow: { fd, guestRam: { gpa: BigInt(GPA_BASE), memory } } };
  }
  const guestMemory = new FrameAllocator([{ base: GPA_BASE, size: GUEST_RAM }], (at, bytes) =>
    bus.discardRam(at, bytes),
  );
  const guestView = {
    name: 'nic0',
    rid: VRID,
    streamId: VRID,
    pasidBits: 8,
    pci: nic.pci,
  };
  const faults: unknown[] = [];
  return {
    system,
    nic,
    fd,
    devId,
    bus,
    context,
    shadowIoasId,
    guestView,
    guestFaults: faults,
    view: {
      name: 'nic0',
      devId,
      virtualId: VRID,
      pageRequests: true,
      ...(shadowIoasId === undefined ? {} : { shadowIoasId }),
    },
    /** The guest's VT-d driver on the vIOMMU's window, probed, with the NIC probed behind it. */
    guestDriver(): IommuDriver {
      const driver = vtdPlugin.createDriver({
        instance: 'vm.guest',
        base: hpa(WINDOW),
        options: vtdPlugin.optionsSchema!.parse({}),
        bus,
        tracer: system.tracer,
        irq: base.irq,
        memory: guestMemory,
        reportFault: (fault) => faults.push(fault),
        reportPageRequest: () => {},
      });
      driver.probe();
      driver.probeDevice(guestView);
      return driver;
    },
    /** A zeroed guest page; its GPA. */
    guestPage: () => BigInt(guestMemory.allocFrames(1)),
    write: (gpa: bigint, bytes: Uint8Array) => bus.writeBytes(gpa, bytes, bus.counter('guest')),
    read: (gpa: bigint, length: number) => {
      const r = bus.readBytes(gpa, length, bus.counter('guest'));
      if (!r.ok) throw new Error('guest read aborted');
      return Array.from(r.data);
    },
  };
}
