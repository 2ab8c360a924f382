/**
 * The VT-d host driver's test system: a real `VtdHardware` on a memory bus with RAM, a small MSI
 * controller over the interrupt window (it records every message and runs the handler of a message it
 * allocated when the test services interrupts), the driver's `DriverContext` with its own frame allocator,
 * and what the driver reports (faults, page requests). Tests build page tables from `buffers`, a second
 * allocator, so the driver's memory is the driver's alone.
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
  type PageRequest,
  type PageResponse,
  Tracer,
} from '@iommukit/core';
import { RecordingMsiController } from '@iommukit/testing';
import { type VtdOptions, VtdOptionsSchema } from '../src/hw/options.js';
import { VtdHardware } from '../src/hw/vtd.js';

export const VTD_BASE = 0xfed9_0000;
export const RAM_BASE = 0x1_0000_0000;
export const MSI_WINDOW = 0xfee0_0000;
const RAM = 64 * 2 ** 20;
/** The upper half of RAM, where `buffers` allocates: the test's own memory (DMA data, page tables). */
export const BUFFERS_BASE = RAM_BASE + RAM / 2;
export const BUFFERS_SIZE = RAM / 2;
/** The DeviceID the unit's own MSIs carry. */
export const UNIT_DEVICE_ID = 0xf0;

/** An endpoint behind the unit, recording what reaches it. */
export interface RecordingEndpoint extends EndpointPort {
  readonly invalidations: { pasid: number | undefined; iova: bigint; size: bigint }[];
  readonly responses: PageResponse[];
}

export interface DriverRigOptions {
  /** VT-d instance options (validated by the schema; `{}` is a default scalable unit). */
  readonly options?: Record<string, unknown>;
  /** Give the platform an MSI controller (default true). */
  readonly msi?: boolean;
  readonly tracer?: Tracer;
}

export function driverRig(init: DriverRigOptions = {}) {
  const bus = new MemoryBus();
  bus.addRam('dram', RAM_BASE, RAM);
  const tracer = init.tracer ?? new Tracer();
  const options: VtdOptions = VtdOptionsSchema.parse(init.options ?? {});
  const controller = new RecordingMsiController(bus, MSI_WINDOW);
  const msi =
    init.msi === false
      ? undefined
      : { controller: controller as unknown as IMsiController, deviceId: UNIT_DEVICE_ID };
  const interrupts = new InterruptController();
  const irq = (name: string) => interrupts.line(`dmar0.${name}`);
  const base = hpa(VTD_BASE);
  const vtd = new VtdHardware({
    instance: 'dmar0',
    base,
    options,
    bus,
    tracer,
    irq,
    ...(msi ? { msi } : {}),
  });
  const zero = (at: Hpa, bytes: number) => bus.discardRam(at, bytes);
  const memory = new FrameAllocator([{ base: RAM_BASE, size: RAM / 2 }], zero);
  const buffers = new FrameAllocator([{ base: BUFFERS_BASE, size: BUFFERS_SIZE }], zero);
  const faults: { fault: IommuFault; device: string | undefined }[] = [];
  const pageRequests: { device: string; request: PageRequest }[] = [];
  const context: DriverContext<VtdOptions> = {
    instance: 'dmar0',
    base,
    options,
    bus,
    tracer,
    irq,
    memory,
    reportFault: (fault, device) => faults.push({ fault, device: device?.name }),
    reportPageRequest: (device, request) => pageRequests.push({ device: device.name, request }),
    ...(msi ? { msi } : {}),
  };
  const devices = new Map<number, IommuDeviceRef>();
  const test = bus.counter('test');
  return {
    bus,
    vtd,
    context,
    memory,
    buffers,
    faults,
    pageRequests,
    msi: controller,
    devices,
    /** The driver's device lookup by source-id. */
    lookup: (sid: number) => devices.get(sid),
    /** A probed device with source-id `sid`. */
    device(sid: number, pasidBits = 20): IommuDeviceRef {
      const ref: IommuDeviceRef = {
        name: `dev${sid.toString(16)}`,
        rid: sid,
        streamId: sid,
        pasidBits,
        pci: {
          hasAts: true,
          hasPri: true,
          hasPasid: pasidBits > 0,
          setAtsEnabled: () => {},
          setPriEnabled: () => {},
          setPasidEnabled: () => {},
        },
      };
      devices.set(sid, ref);
      return ref;
    },
    /** An endpoint connected to the unit at `sid`. */
    endpoint(sid: number): RecordingEndpoint {
      const port: RecordingEndpoint = {
        invalidations: [],
        responses: [],
        invalidateAtc: (pasid, iova, size) => port.invalidations.push({ pasid, iova, size }),
        pageResponse: (response) => port.responses.push(response),
        completeStalled: () => {},
      };
      vtd.connectEndpoint(sid, port);
      return port;
    },
    /** A unit register as the hardware holds it. */
    reg: (offset: number) => vtd.regs.get(offset) >>> 0,
    /** `count` words of memory at `addr`. */
    words(addr: number, count: number): Uint32Array {
      const out = new Uint32Array(count);
      if (!bus.readWords(addr, out, count, test)) throw new Error('no RAM there');
      return out;
    },
    /** Page table context for `@iommukit/pagetables` over the test's buffers. */
    tables: { bus, memory: buffers, counter: bus.counter('tables') },
    /** Runs the handlers of the MSIs that arrived. */
    service: () => controller.service(),
  };
}

export type DriverRig = ReturnType<typeof driverRig>;
