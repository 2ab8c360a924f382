/**
 * The AMD IOMMU host driver's test system: a real `AmdIommuHardware` on a memory bus with RAM, a small MSI
 * controller over the x86 interrupt window (it records every message and runs the handler of a message it
 * allocated when the test services interrupts), the driver's `DriverContext` with its own frame allocator,
 * what the driver reports (faults, page requests), and a log of every MMIO write the unit receives, in
 * order. Tests build
 * page tables and DMA buffers from `buffers`, a second allocator, so the driver's memory is its own.
 */
import {
  type DriverContext,
  type EndpointPort,
  FrameAllocator,
  type Hpa,
  hpa,
  type IMsiController,
  InterruptController,
  type IommuDeviceRef,
  type IommuFault,
  MemoryBus,
  NO_PASID,
  type PageRequest,
  type PageResponse,
  PERM_READ,
  Tracer,
} from '@iommukit/core';
import { RecordingMsiController } from '@iommukit/testing';
import { AmdIommuHardware } from '../src/hw/amd-iommu.js';
import { type AmdCommand, COMMAND_WORDS, decodeCommand } from '../src/hw/commands.js';
import { type AmdOptions, AmdOptionsSchema } from '../src/hw/options.js';
import { request } from './unit-rig.js';

export const UNIT_BASE = 0xfeb8_0000;
export const RAM_BASE = 0x1_0000_0000;
export const MSI_WINDOW = 0xfee0_0000;
const RAM = 64 * 2 ** 20;
/** The upper half of RAM, where `buffers` allocates: the test's own memory (DMA data, page tables). */
export const BUFFERS_BASE = RAM_BASE + RAM / 2;
/** The DeviceID the unit's own MSIs carry (its IVHD DeviceID). */
export const UNIT_DEVICE_ID = 0x02;

/** An endpoint behind the unit, recording the ATS invalidations that reach it. */
export interface RecordingEndpoint extends EndpointPort {
  readonly invalidations: { pasid: number | undefined; iova: bigint; size: bigint }[];
  readonly responses: PageResponse[];
}

/** PCI capabilities of a rig device beyond ATS. */
export interface RigDeviceCaps {
  /** PASID capability width (0: none). */
  readonly pasidBits?: number;
  readonly pri?: boolean;
}

export interface DriverRigOptions {
  /** AMD instance options (validated by the schema; `{}` is the default Zen 4 unit). */
  readonly options?: Partial<AmdOptions>;
  /** Give the platform an MSI controller (default true). */
  readonly msi?: boolean;
}

export function driverRig(init: DriverRigOptions = {}) {
  const bus = new MemoryBus();
  bus.addRam('dram', RAM_BASE, RAM);
  const tracer = new Tracer();
  const options = AmdOptionsSchema.parse(init.options ?? {});
  const controller = new RecordingMsiController(bus, MSI_WINDOW);
  const msi =
    init.msi === false
      ? undefined
      : { controller: controller as unknown as IMsiController, deviceId: UNIT_DEVICE_ID };
  const interrupts = new InterruptController();
  const irq = (name: string) => interrupts.line(`iommu0.${name}`);
  const base = hpa(UNIT_BASE);
  const unit = new AmdIommuHardware({
    instance: 'iommu0',
    base,
    options,
    bus,
    tracer,
    irq,
    ...(msi ? { msi } : {}),
  });
  /** Every MMIO write the unit receives: [offset, value], in order. */
  const mmioWrites: [number, number][] = [];
  const write = unit.regs.write.bind(unit.regs);
  unit.regs.write = (offset, size, value) => {
    mmioWrites.push([offset, value >>> 0]);
    write(offset, size, value);
  };
  const zero = (at: Hpa, bytes: number) => bus.discardRam(at, bytes);
  const memory = new FrameAllocator([{ base: RAM_BASE, size: RAM / 2 }], zero);
  const buffers = new FrameAllocator([{ base: BUFFERS_BASE, size: RAM / 2 }], zero);
  const faults: { fault: IommuFault; device: string | undefined }[] = [];
  const pageRequests: { request: PageRequest; device: string }[] = [];
  const context: DriverContext<AmdOptions> = {
    instance: 'iommu0',
    base,
    options,
    bus,
    tracer,
    irq,
    memory,
    reportFault: (fault, device) => faults.push({ fault, device: device?.name }),
    reportPageRequest: (device, request) => pageRequests.push({ request, device: device.name }),
    ...(msi ? { msi } : {}),
  };
  const test = bus.counter('test');
  const atsEnabled = new Map<number, boolean>();
  const capsEnabled = new Map<string, boolean>();
  const rig = {
    bus,
    unit,
    tracer,
    context,
    memory,
    buffers,
    faults,
    pageRequests,
    mmioWrites,
    msi: controller,
    /** Whether the driver left ATS enabled at a device (its PCI capability's enable bit). */
    atsEnabled,
    /** The PASID and PRI enable bits the driver left, by `pasid:<DeviceID>` and `pri:<DeviceID>`. */
    capsEnabled,
    /** A device with DeviceID `deviceId` (ATS capable unless `ats` is false; PASID and PRI per `caps`). */
    device(deviceId: number, ats = true, caps: RigDeviceCaps = {}): IommuDeviceRef {
      const pasidBits = caps.pasidBits ?? 0;
      return {
        name: `dev${deviceId.toString(16)}`,
        rid: deviceId,
        streamId: deviceId,
        pasidBits,
        pci: {
          hasAts: ats,
          hasPri: caps.pri ?? false,
          hasPasid: pasidBits > 0,
          setAtsEnabled: (on) => atsEnabled.set(deviceId, on),
          setPriEnabled: (on) => capsEnabled.set(`pri:${deviceId}`, on),
          setPasidEnabled: (on) => capsEnabled.set(`pasid:${deviceId}`, on),
        },
      };
    },
    /** An endpoint connected to the unit at `deviceId`. */
    endpoint(deviceId: number): RecordingEndpoint {
      const port: RecordingEndpoint = {
        invalidations: [],
        responses: [],
        invalidateAtc: (pasid, iova, size) => port.invalidations.push({ pasid, iova, size }),
        pageResponse: (response) => port.responses.push(response),
        completeStalled: () => {},
      };
      unit.connectEndpoint(deviceId, port);
      return port;
    },
    /** A unit register as the hardware holds it. */
    reg: (offset: number) => unit.regs.get(offset) >>> 0,
    /** A 64-bit register. */
    reg64: (offset: number) => unit.regs.get64(offset),
    /** Writes a unit register as a test (not the driver) would. */
    poke: (offset: number, value: number) => bus.write(UNIT_BASE + offset, 4, value >>> 0, test),
    /** `count` words of memory at `addr`. */
    words(addr: number, count: number): Uint32Array {
      const out = new Uint32Array(count);
      if (!bus.readWords(addr, out, count, test)) throw new Error('no RAM there');
      return out;
    },
    /** The commands in the ring at `ring` from byte offset `from` to `to`, decoded. */
    commands(ring: number, from: number, to: number, ringBytes = 8192): AmdCommand[] {
      const out: AmdCommand[] = [];
      const features = { invalidateAll: true, pageRequests: true, iotlbSupport: true };
      for (let at = from; at !== to; at = (at + 16) % ringBytes) {
        const decoded = decodeCommand(rig.words(ring + at, COMMAND_WORDS), 0, features);
        if ('illegal' in decoded) throw new Error(`illegal command at ${at}: ${decoded.illegal}`);
        out.push(decoded);
      }
      return out;
    },
    translate: (deviceId: number, iova: number, access = PERM_READ, pasid = NO_PASID) =>
      unit.translate(request(deviceId, iova, access, pasid)),
    /** Runs the handlers of the MSIs that arrived. */
    service: () => controller.service(),
  };
  return rig;
}

export type DriverRig = ReturnType<typeof driverRig>;
