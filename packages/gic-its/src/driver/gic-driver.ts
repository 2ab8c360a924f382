/**
 * The kernel's GICv3 LPI support and ITS MSI domain (Linux irq-gic-v3.c redistributor setup and
 * irq-gic-v3-its.c): at probe it allocates the LPI configuration table (one byte per LPI, 64 KiB for 16
 * INTID bits, every LPI disabled at the default priority 0xa0) and a pending table per CPU, programs each
 * redistributor (wake it, GICR_PROPBASER, GICR_PENDBASER, EnableLPIs) and probes every ITS. For a device
 * it maps the device on its ITS, takes a range of LPIs, maps each event to a CPU (least loaded first)
 * and unmasks it. The MSI message is the ITS's GITS_TRANSLATER address and the EventID.
 *
 * Changing an LPI's configuration byte takes an INV (through the event's ITS) to reach the redistributor;
 * `configureLpi` can skip it, which is the bug the cache makes observable.
 */
import {
  type AccessCounter,
  type Hpa,
  type IFrameAllocator,
  IommufdError,
  type MemoryBus,
  MmioWindow,
  type MsiVector,
  toHex,
} from '@iommukit/core';
import type { Gic } from '../hw/gic.js';
import {
  encodePendbaser,
  encodePropbaser,
  GICR,
  GICR_CTLR_ENABLE_LPIS,
  GICR_WAKER_CHILDREN_ASLEEP,
  LPI_BASE,
  LPI_ENABLE,
  LPI_GROUP1,
  LPI_PRIORITY_MASK,
  REDIST_FRAME_SIZE,
} from '../hw/registers.js';
import { ItsDriver } from './its-driver.js';
import { LpiAllocator } from './lpi-allocator.js';

/** Linux's default interrupt priority (GICD_INT_DEF_PRI). */
export const DEFAULT_LPI_PRIORITY = 0xa0;

/** What the driver set up for one event of a device. */
export interface MappedEvent {
  readonly eventId: number;
  readonly intid: number;
  cpu: number;
}

interface DeviceVectors {
  readonly its: ItsDriver;
  readonly itsIndex: number;
  readonly deviceId: number;
  readonly lpiBase: number;
  readonly events: MappedEvent[];
}

export class GicDriver {
  readonly its: readonly ItsDriver[];
  private readonly who: AccessCounter;
  private readonly lpis: LpiAllocator;
  private propTable!: Hpa;
  private readonly devices = new Map<number, DeviceVectors>();
  private readonly byIntid = new Map<number, { device: DeviceVectors; event: MappedEvent }>();

  constructor(
    private readonly gic: Gic,
    private readonly bus: MemoryBus,
    private readonly memory: IFrameAllocator,
    private readonly lpiIdBits: number,
  ) {
    this.who = bus.counter(`${gic.spec.name}:driver`);
    this.lpis = new LpiAllocator(lpiIdBits);
    this.its = gic.spec.its.map((i) => new ItsDriver(i.name, i.base, bus, memory));
  }

  probe(): void {
    const propBytes = Math.max(0x1_0000, 2 ** this.lpiIdBits);
    this.propTable = this.memory.allocBytes(propBytes, 0x1_0000);
    // Every LPI starts disabled at the default priority, as Linux fills the table.
    const fill = new Uint8Array(2 ** this.lpiIdBits - LPI_BASE).fill(DEFAULT_LPI_PRIORITY | LPI_GROUP1);
    this.bus.writeBytes(this.propTable, fill, this.who);
    const pendBytes = Math.max(0x1_0000, 2 ** this.lpiIdBits / 8);
    this.gic.cpus.forEach((_cpu, i) => {
      const rd = new MmioWindow(
        this.bus,
        BigInt(this.gic.spec.redistributorBase) + BigInt(i * REDIST_FRAME_SIZE),
        this.who,
      );
      rd.write32(GICR.WAKER, 0);
      if (rd.read32(GICR.WAKER) & GICR_WAKER_CHILDREN_ASLEEP)
        throw new IommufdError('EBUSY', `redistributor ${i} does not wake up`);
      const pending = this.memory.allocBytes(pendBytes, 0x1_0000);
      rd.write64(GICR.PROPBASER, encodePropbaser(this.propTable, this.lpiIdBits));
      rd.write64(GICR.PENDBASER, encodePendbaser(pending));
      rd.write32(GICR.CTLR, GICR_CTLR_ENABLE_LPIS);
    });
    for (const its of this.its) its.probe(this.gic.cpus.length);
  }

  /** Sets up `count` vectors of a device on ITS `itsIndex`; each event is unmasked on a CPU. */
  allocateVectors(itsIndex: number, deviceId: number, count: number): MsiVector[] {
    if (this.devices.has(deviceId))
      throw new IommufdError('EEXIST', `DeviceID ${toHex(deviceId)} already has vectors`);
    const its = this.its[itsIndex]!;
    its.mapDevice(deviceId, count);
    const lpiBase = this.lpis.alloc(count);
    const device: DeviceVectors = { its, itsIndex, deviceId, lpiBase, events: [] };
    this.devices.set(deviceId, device);
    for (let eventId = 0; eventId < count; eventId++) {
      const event: MappedEvent = { eventId, intid: lpiBase + eventId, cpu: this.leastLoadedCpu() };
      its.mapEvent(deviceId, eventId, event.intid, event.cpu);
      device.events.push(event);
      this.byIntid.set(event.intid, { device, event });
      this.configureLpi(event.intid, { enabled: true });
    }
    const doorbell = this.gic.doorbell(itsIndex);
    return device.events.map((e) => ({
      message: { address: doorbell.address, data: e.eventId },
      eventId: e.eventId,
      intid: e.intid,
      cpu: e.cpu,
      doorbell,
    }));
  }

  freeVectors(deviceId: number): void {
    const device = this.devices.get(deviceId);
    if (!device) return;
    for (const event of device.events) {
      this.configureLpi(event.intid, { enabled: false });
      device.its.discardEvent(deviceId, event.eventId, event.cpu);
      this.byIntid.delete(event.intid);
    }
    device.its.unmapDevice(deviceId);
    this.lpis.release(device.lpiBase, device.events.length);
    this.devices.delete(deviceId);
  }

  setAffinity(intid: number, cpu: number): void {
    const { device, event } = this.mapped(intid);
    if (cpu < 0 || cpu >= this.gic.cpus.length) throw new IommufdError('EINVAL', `no CPU ${cpu}`);
    if (event.cpu === cpu) return;
    device.its.moveEvent(device.deviceId, event.eventId, event.cpu, cpu);
    event.cpu = cpu;
  }

  /**
   * Writes an LPI's configuration byte; with `invalidate` (the default, as Linux's mask/unmask) sends INV +
   * SYNC so the redistributor stops using its cached copy.
   */
  configureLpi(intid: number, change: { enabled?: boolean; priority?: number }, invalidate = true): void {
    const { device, event } = this.mapped(intid);
    const addr = this.propTable + BigInt(intid - LPI_BASE);
    const r = this.bus.read(addr, 1, this.who);
    let byte = r.ok ? Number(r.value) : 0;
    if (change.enabled !== undefined) byte = change.enabled ? byte | LPI_ENABLE : byte & ~LPI_ENABLE;
    if (change.priority !== undefined)
      byte = (byte & ~LPI_PRIORITY_MASK) | (change.priority & LPI_PRIORITY_MASK);
    this.bus.write(addr, 1, byte | LPI_GROUP1, this.who);
    if (invalidate) device.its.invalidate(device.deviceId, event.eventId, event.cpu);
  }

  /** The configuration byte in memory (what software wrote, whatever the redistributor caches). */
  lpiConfig(intid: number): number {
    const r = this.bus.read(this.propTable + BigInt(intid - LPI_BASE), 1, this.who);
    return r.ok ? Number(r.value) : 0;
  }

  /** Raises an event's LPI by command (INT). */
  raise(intid: number): void {
    const { device, event } = this.mapped(intid);
    device.its.raise(device.deviceId, event.eventId, event.cpu);
  }

  eventOf(intid: number): MappedEvent | undefined {
    return this.byIntid.get(intid)?.event;
  }

  private mapped(intid: number) {
    const found = this.byIntid.get(intid);
    if (!found) throw new IommufdError('ENOENT', `LPI ${intid} is not mapped to a device`);
    return found;
  }

  private leastLoadedCpu(): number {
    const load = this.gic.cpus.map(() => 0);
    for (const { event } of this.byIntid.values()) load[event.cpu]!++;
    return load.indexOf(Math.min(...load));
  }
}
