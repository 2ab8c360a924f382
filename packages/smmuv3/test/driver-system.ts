/**
 * Test system for the host driver: the real device model (`Smmuv3Hardware`) on a MemoryBus with 256 MiB
 * of RAM, the driver programming it (probed), endpoints behind it, and what the driver reports (faults,
 * page requests). The driver's memory comes from its own allocator wrapper, so a test can tell the
 * driver's memory from everyone else's; with `recordAccesses` every bus access is logged with its
 * requester tag and address.
 */
import {
  type AccessCounter,
  type BusWriteResult,
  EndpointDevice,
  type EndpointSpec,
  FrameAllocator,
  type Hpa,
  hpa,
  type IFrameAllocator,
  type InstanceMsi,
  InterruptController,
  type IommuDeviceRef,
  type IommuFault,
  MemoryBus,
  MmioWindow,
  type PageRequest,
  Tracer,
} from '@iommukit/core';
import { Smmuv3Cmdq } from '../src/driver/cmdq.js';
import { Smmuv3Driver } from '../src/driver/smmuv3-driver.js';
import { CMD_WORDS, type Command, decodeCommand } from '../src/hw/commands.js';
import { Smmuv3OptionsSchema } from '../src/hw/options.js';
import { CMDQ_ENTRY_BYTES, queueIndex } from '../src/hw/queue-index.js';
import { CR0_CMDQEN, REG, SMMU_MMIO_SIZE } from '../src/hw/regs.js';
import { Smmuv3Hardware } from '../src/hw/smmuv3.js';
import {
  CMDQ_ADDR,
  RAM_BASE as FIXTURE_RAM_BASE,
  RAM_SIZE as FIXTURE_RAM_SIZE,
  SMMU_BASE as FIXTURE_SMMU_BASE,
  rig,
} from './queue-fixtures.js';

export const SMMU_BASE = 0x0900_0000;
export const RAM_BASE = 0x8000_0000;
export const RAM_SIZE = 256 * 2 ** 20;
/** Half the RAM is the driver's to allocate from, the other half holds the test's DMA buffers. */
const DRIVER_RAM = RAM_SIZE / 2;

export interface Access {
  readonly tag: string;
  readonly addr: number;
  readonly bytes: number;
  readonly write: boolean;
  /** The value of a single MMIO-style write (`bus.write`). */
  readonly value?: number;
}

export interface SystemOptions {
  /** SMMUv3 instance options (validated by the schema; `{}` is a default SMMU). */
  readonly options?: Record<string, unknown>;
  /** Log every bus access (tag, address, size) from before the driver probes. */
  readonly recordAccesses?: boolean;
  /** Skip `driver.probe()`. */
  readonly noProbe?: boolean;
  /** The platform MSI controller the driver may signal its interrupts through (Linux platform MSIs). */
  readonly msi?: InstanceMsi;
}

export function createDriverSystem(init: SystemOptions = {}) {
  const bus = new MemoryBus();
  bus.addRam('dram', RAM_BASE, RAM_SIZE);
  const accesses: Access[] = [];
  if (init.recordAccesses) recordBus(bus, accesses);
  const zero = (base: Hpa, bytes: number) => bus.discardRam(base, bytes);
  const inner = new FrameAllocator([{ base: RAM_BASE, size: DRIVER_RAM }], zero);
  /** Every block the driver was ever given (frees included), for the access check. */
  const everAllocated = new Map<number, number>();
  const memory: IFrameAllocator = {
    get freeFrameCount() {
      return inner.freeFrameCount;
    },
    get allocatedFrameCount() {
      return inner.allocatedFrameCount;
    },
    allocFrames(count, align) {
      const base = inner.allocFrames(count, align);
      everAllocated.set(Number(base), count);
      return base;
    },
    allocBytes(bytes, align) {
      const base = inner.allocBytes(bytes, align);
      everAllocated.set(Number(base), Math.max(1, Math.ceil(bytes / 4096)));
      return base;
    },
    freeFrames: (base, count) => inner.freeFrames(base, count),
  };
  const buffers = new FrameAllocator([{ base: RAM_BASE + DRIVER_RAM, size: RAM_SIZE - DRIVER_RAM }], zero);
  const ic = new InterruptController();
  const tracer = new Tracer();
  const options = Smmuv3OptionsSchema.parse(init.options ?? {});
  const irq = (name: string) => ic.line(`smmu0.${name}`);
  const hw = new Smmuv3Hardware({ instance: 'smmu0', base: hpa(SMMU_BASE), options, bus, tracer, irq });
  const faults: { fault: IommuFault; device: string | undefined }[] = [];
  const pageRequests: { device: string; request: PageRequest }[] = [];
  const driver = new Smmuv3Driver({
    instance: 'smmu0',
    base: hpa(SMMU_BASE),
    options,
    bus,
    tracer,
    irq,
    memory,
    reportFault: (fault, device) => faults.push({ fault, device: device?.name }),
    reportPageRequest: (device, request) => pageRequests.push({ device: device.name, request }),
    ...(init.msi ? { msi: init.msi } : {}),
  });
  if (!init.noProbe) driver.probe();
  const counter = bus.counter('test');

  return {
    bus,
    hw,
    driver,
    ic,
    tracer,
    options,
    faults,
    pageRequests,
    accesses,
    memory,
    /** Frames the driver holds now. */
    driverFrames: () => inner.allocatedFrameCount,
    /** Whether `[addr, addr + bytes)` lies in memory the driver was given (at any time). */
    driverOwns: (addr: number, bytes: number) => {
      for (const [base, frames] of everAllocated)
        if (addr >= base && addr + bytes <= base + frames * 4096) return true;
      return false;
    },
    /** An endpoint behind the SMMU (StreamID = RID). */
    device(name: string, streamId: number, spec: Partial<EndpointSpec> = {}): EndpointDevice {
      return new EndpointDevice({ name, rid: streamId, streamId, ...spec }, bus, hw, tracer);
    },
    /** A zeroed DMA buffer outside the driver's memory. */
    buffer(bytes: number, align = 4096): Hpa {
      return buffers.allocBytes(bytes, align);
    },
    read(addr: bigint, length: number): Uint8Array {
      const r = bus.readBytes(addr, length, counter);
      if (!r.ok) throw new Error(`bus abort reading ${addr.toString(16)}`);
      return r.data;
    },
    write(addr: bigint, data: Uint8Array): void {
      const r: BusWriteResult = bus.writeBytes(addr, data, counter);
      if (!r.ok) throw new Error(`bus abort writing ${addr.toString(16)}`);
    },
    /** Runs pending interrupt handlers (the driver's queue handlers). */
    service: () => ic.service(),
    reg: (offset: number) => hw.regs.get(offset),
    probe: (device: IommuDeviceRef) => driver.probeDevice(device),
    inMmio: (addr: number, bytes: number) => addr >= SMMU_BASE && addr + bytes <= SMMU_BASE + SMMU_MMIO_SIZE,
  };
}

export type DriverSystem = ReturnType<typeof createDriverSystem>;

/** Commands the driver wrote to its Command queue since `before` (its PROD then), decoded. */
export function commandsSince(s: DriverSystem, before: number): Command[] {
  const { cmdq, features } = s.driver;
  const out: Command[] = [];
  const words = new Uint32Array(CMD_WORDS);
  const counter = s.bus.counter('test');
  for (let p = before; p !== cmdq.producer; p = (p + 1) % (2 * cmdq.capacity)) {
    s.bus.readWords(cmdq.base + queueIndex(p, cmdq.log2) * CMDQ_ENTRY_BYTES, words, CMD_WORDS, counter);
    const decoded = decodeCommand(words, features);
    if (!decoded.ok) throw new Error(decoded.reason);
    out.push(decoded.command);
  }
  return out;
}

/** Wraps the bus's access methods to log (tag, address, size) of every access. */
function recordBus(bus: MemoryBus, log: Access[]): void {
  const readWords = bus.readWords.bind(bus);
  const writeWords = bus.writeWords.bind(bus);
  const read = bus.read.bind(bus);
  const write = bus.write.bind(bus);
  const readBytes = bus.readBytes.bind(bus);
  const writeBytes = bus.writeBytes.bind(bus);
  const note = (
    who: AccessCounter,
    addr: bigint | number,
    bytes: number,
    isWrite: boolean,
    value?: bigint | number,
  ) =>
    log.push({
      tag: who.tag,
      addr: Number(addr),
      bytes,
      write: isWrite,
      ...(value === undefined ? {} : { value: Number(value) }),
    });
  bus.readWords = (addr, out, count, who, offset) => {
    note(who, addr, 4 * count, false);
    return readWords(addr, out, count, who, offset);
  };
  bus.writeWords = (addr, words, count, who, offset) => {
    note(who, addr, 4 * count, true);
    return writeWords(addr, words, count, who, offset);
  };
  bus.read = (addr, size, who) => {
    note(who, addr, size, false);
    return read(addr, size, who);
  };
  bus.write = (addr, size, value, who) => {
    note(who, addr, size, true, value);
    return write(addr, size, value, who);
  };
  bus.readBytes = (addr, length, who) => {
    note(who, addr, length, false);
    return readBytes(addr, length, who);
  };
  bus.writeBytes = (addr, data, who) => {
    note(who, addr, data.length, true);
    return writeBytes(addr, data, who);
  };
}

/**
 * The driver's Command queue on the queue fixtures (a RegisterFile with the queue machinery, no device
 * model): commands are recorded in `rig.executed`. Memory for tables comes from the upper half of the
 * fixtures' RAM.
 */
export function cmdqRig(options: Record<string, unknown> = {}) {
  const r = rig({ options });
  const counter = r.bus.counter('driver');
  const cmdq = new Smmuv3Cmdq({
    instance: 'smmu0',
    regs: new MmioWindow(r.bus, BigInt(FIXTURE_SMMU_BASE), counter),
    bus: r.bus,
    counter,
    base: CMDQ_ADDR,
    log2: 8,
  });
  cmdq.program();
  r.mmio(REG.CR0, CR0_CMDQEN);
  const memory = new FrameAllocator(
    [{ base: FIXTURE_RAM_BASE + FIXTURE_RAM_SIZE / 2, size: FIXTURE_RAM_SIZE / 2 }],
    (base, bytes) => r.bus.discardRam(base, bytes),
  );
  const host = { instance: 'smmu0', bus: r.bus, memory, counter, cmdq };
  /** Executed command names, CMD_SYNC included. */
  const ops = () => r.executed.map((c) => c.op);
  return { r, cmdq, memory, counter, host, ops };
}
