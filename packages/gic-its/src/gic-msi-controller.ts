/**
 * The MSI module contract (core `IMsiController`) over a GIC model and the kernel's GIC driver: the host
 * controller on the physical bus, and the guest's view of a VM's virtual ITS. Handlers registered with
 * `requestIrq` run when the system services interrupts, in arrival order.
 */
import {
  type IMsiController,
  type InterruptConfigChange,
  type InterruptHandler,
  InterruptHandlers,
  type InterruptState,
  IommufdError,
  type MsiDoorbell,
  type MsiOutcome,
  type MsiRequester,
  type MsiVector,
} from '@iommukit/core';
import type { GicDriver } from './driver/gic-driver.js';
import type { Gic } from './hw/gic.js';

export class GicMsiController implements IMsiController {
  readonly kind = 'gic-its';
  readonly doorbells: readonly MsiDoorbell[];
  private readonly handlers = new InterruptHandlers('LPI');

  constructor(
    readonly gic: Gic,
    readonly driver: GicDriver,
    /** Which ITS (index) serves a device. */
    private readonly route: (device: MsiRequester) => number,
  ) {
    this.doorbells = gic.spec.its.map((_its, i) => gic.doorbell(i));
  }

  get cpus() {
    return this.gic.cpus;
  }

  doorbellFor(device: MsiRequester): MsiDoorbell {
    return this.doorbells[this.route(device)]!;
  }

  allocateVectors(device: MsiRequester, count: number): readonly MsiVector[] {
    if (!Number.isInteger(count) || count < 1)
      throw new IommufdError('EINVAL', `cannot allocate ${count} vectors`);
    return this.driver.allocateVectors(this.route(device), device.deviceId, count);
  }

  freeVectors(device: MsiRequester): void {
    this.driver.freeVectors(device.deviceId);
  }

  setAffinity(intid: number, cpu: number): void {
    this.driver.setAffinity(intid, cpu);
  }

  configure(
    intid: number,
    change: InterruptConfigChange,
    options: { readonly invalidate?: boolean } = {},
  ): void {
    this.driver.configureLpi(intid, change, options.invalidate ?? true);
  }

  stateOf(intid: number): InterruptState {
    return this.gic.redistributors.some((rd) => rd.isPending(intid)) ? 'pending' : 'inactive';
  }

  requestIrq(intid: number, handler: InterruptHandler): () => void {
    return this.handlers.request(intid, handler);
  }

  takeOutcomes(): MsiOutcome[] {
    return this.gic.its.flatMap((its) => its.takeOutcomes());
  }

  service(): number {
    return this.handlers.service(this.gic.cpus);
  }

  dispose(): void {
    this.gic.remove();
  }
}
