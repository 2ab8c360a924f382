/**
 * One IOMMU instance of a system: the vendor's hardware model on the bus and the host driver that
 * programs it, built from the plugin's factories and probed. Faults the driver drains from the hardware
 * arrive here, are re-emitted as a typed event and kept in order in a bounded log (a fault storm keeps the
 * first records and counts the rest as lost).
 */
import { EventEmitter } from 'eventemitter3';
import { type Hpa, hpa, toHex } from '../address/address.js';
import type { FaultReporter, IommuDeviceRef, IommuDriver } from '../iommu/driver.js';
import type { IommuHardware } from '../iommu/hardware.js';
import type { IommuCore } from '../iommu/iommu-core.js';
import type { InterruptController } from '../iommu/irq.js';
import type { IommuFault } from '../iommu/translation.js';
import { BoundedLog } from '../log/bounded-log.js';
import type { IFrameAllocator } from '../memory/frame-allocator.js';
import type { MemoryBus } from '../memory/memory-bus.js';
import type { InstanceContext, InstanceMsi, IommuPlugin } from '../plugin/plugin.js';
import type { ITracer } from '../trace/tracer.js';

export interface ReportedFault {
  readonly fault: IommuFault;
  readonly device: string | undefined;
}

export interface IommuInstanceEvents {
  fault: [ReportedFault];
}

export class IommuInstance {
  readonly hardware: IommuHardware;
  readonly driver: IommuDriver;
  /** Faults the driver reported, oldest first; beyond the log's capacity they are counted in `faults.lost`. */
  readonly faults = new BoundedLog<ReportedFault>();
  readonly events = new EventEmitter<IommuInstanceEvents>();

  constructor(
    readonly name: string,
    readonly base: Hpa,
    readonly plugin: IommuPlugin,
    readonly options: unknown,
    bus: MemoryBus,
    memory: IFrameAllocator,
    interrupts: InterruptController,
    core: IommuCore,
    private readonly tracer: ITracer,
    seed: number,
    msi?: InstanceMsi,
  ) {
    const context: InstanceContext<unknown> = {
      instance: name,
      base: hpa(base),
      options,
      bus,
      tracer,
      seed,
      irq: (line) => interrupts.line(`${name}.${line}`),
      ...(msi ? { msi } : {}),
    };
    this.hardware = plugin.createHardware(context);
    this.driver = plugin.createDriver({
      ...context,
      memory,
      reportFault: this.report,
      reportPageRequest: (device, request) => core.reportPageRequest(device, request),
    });
    this.driver.probe();
    if (tracer.enabled) {
      tracer.trace(
        'system',
        name,
        'iommu.probed',
        `${plugin.meta.vendor} IOMMU ${name} probed at ${toHex(base)}`,
        {
          plugin: plugin.meta.name,
          base,
        },
      );
    }
  }

  private readonly report: FaultReporter = (fault: IommuFault, device: IommuDeviceRef | undefined) => {
    const reported: ReportedFault = { fault, device: device?.name };
    this.faults.push(reported);
    if (this.tracer.enabled) {
      this.tracer.trace(
        'driver',
        this.name,
        'fault.reported',
        `fault ${fault.vendorCode} reported for ${device?.name ?? `stream ${toHex(fault.streamId)}`} at IOVA ${toHex(fault.iova)}`,
        {
          code: fault.vendorCode,
          kind: fault.kind,
          streamId: fault.streamId,
          iova: fault.iova,
          device: device?.name ?? null,
        },
      );
    }
    this.events.emit('fault', reported);
  };
}
