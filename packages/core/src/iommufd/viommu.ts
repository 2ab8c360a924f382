/**
 * vIOMMU, vDEVICE and vEVENTQ objects. A vIOMMU is a VM's slice of one physical IOMMU, built on a
 * nest-parent paging HWPT (the VM's stage 2); a vDEVICE binds a virtual ID the guest uses (vSID, vRID,
 * vDeviceID) to a device, one per device and unique per vIOMMU; a vEVENTQ carries the vendor's event
 * records for the vIOMMU's devices to user space, with sequence numbers and a lost-events marker.
 */
import type { IommuDriver, ViommuDriverObject, ViommuEventSink } from '../iommu/driver.js';
import type { DeviceObject } from './device.js';
import type { HwptPagingObject } from './hw-pagetable.js';
import { hold, IommufdObject, release } from './object-table.js';
import type { VpasidTable } from './vpasid.js';

export class ViommuObject extends IommufdObject implements ViommuEventSink {
  readonly type = 'viommu';
  readonly vdevices = new Map<bigint, VdeviceObject>();
  readonly veventqs = new Map<string, VeventqObject>();
  constructor(
    readonly parent: HwptPagingObject,
    readonly driver: IommuDriver,
    readonly viommuType: string,
    /** The driver's half, which reports events into this object. */
    readonly driverObject: ViommuDriverObject,
  ) {
    super();
    hold(parent);
  }

  /** Events with no vEVENTQ of their type are dropped, as the kernel does. */
  report(type: string, record: Uint32Array): void {
    this.veventqs.get(type)?.push(record);
  }

  destroy(): void {
    this.driverObject.destroy();
    release(this.parent);
  }
}

export class VdeviceObject extends IommufdObject {
  readonly type = 'vdevice';
  /** Guest PASIDs attached through the vDEVICE (each holds it). */
  readonly attachedVpasids = new Set<number>();

  constructor(
    readonly viommu: ViommuObject,
    readonly device: DeviceObject,
    readonly virtId: bigint,
    /** The guest's PASIDs and the physical ones standing for them. */
    readonly pasids: VpasidTable,
  ) {
    super();
    hold(viommu);
    viommu.vdevices.set(virtId, this);
    device.vdevice = this;
  }

  destroy(): void {
    this.viommu.driverObject.vdeviceDestroy(this.device.device);
    this.pasids.clear();
    this.viommu.vdevices.delete(this.virtId);
    this.device.vdevice = undefined;
    release(this.viommu);
  }
}

/** One event read from a vEVENTQ (`struct iommufd_vevent_header` + payload). */
export interface Vevent {
  readonly sequence: number;
  /** The lost-events marker: events were dropped before this point; it carries no payload. */
  readonly lostEvents: boolean;
  readonly record?: Uint32Array;
}

/** Sequence numbers count 0..INT_MAX and wrap to 0. */
const SEQUENCE_LIMIT = 2 ** 31;

export class VeventqObject extends IommufdObject {
  readonly type = 'veventq';
  private readonly events: Vevent[] = [];
  private lost: Vevent | undefined;
  private sequence = 0;

  constructor(
    readonly viommu: ViommuObject,
    readonly eventType: string,
    readonly depth: number,
  ) {
    super();
    hold(viommu);
    viommu.veventqs.set(eventType, this);
  }

  /**
   * Queues a record, or, when `depth` events are queued, drops it and leaves a single lost-events marker
   * at the tail carrying the dropped event's sequence number (every drop consumes one). The next event
   * that fits replaces the marker.
   */
  push(record: Uint32Array): void {
    const sequence = this.nextSequence();
    if (this.events.length >= this.depth) {
      this.lost = { sequence, lostEvents: true };
      return;
    }
    // A queued event replaces the marker: the gap in sequence numbers now tells the reader.
    this.lost = undefined;
    this.events.push({ sequence, lostEvents: false, record: Uint32Array.from(record) });
  }

  /** Reads and frees up to `max` events (the lost-events marker, if any, comes after the queued ones). */
  read(max = Number.POSITIVE_INFINITY): Vevent[] {
    const all = this.lost ? [...this.events, this.lost] : [...this.events];
    const taken = all.slice(0, max);
    this.events.splice(0, Math.min(taken.length, this.events.length));
    if (this.lost && taken.includes(this.lost)) this.lost = undefined;
    return taken;
  }

  get queued(): number {
    return this.events.length + (this.lost ? 1 : 0);
  }

  destroy(): void {
    this.viommu.veventqs.delete(this.eventType);
    release(this.viommu);
  }

  private nextSequence(): number {
    const s = this.sequence;
    this.sequence = (this.sequence + 1) % SEQUENCE_LIMIT;
    return s;
  }
}
