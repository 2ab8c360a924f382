/**
 * The vVT-d in caching mode for assigned devices, the way QEMU's `intel-iommu,caching-mode=on` serves VFIO
 * devices on any host: the guest sees a legacy-mode VT-d unit (the model of `hw/` on its bus) with CAP.CM
 * set, so its own VT-d driver invalidates after every change — maps included, not-present to present —
 * and every invalidation it completes is replayed on the host. For each assigned device the invalidation
 * concerns, the personality reads the device's context entry from guest memory (with the model's checks,
 * never through its caches), walks the guest's second-stage table over the range named (all of it for a
 * domain, device or global invalidation) and makes the device's own IOAS map exactly what the table maps,
 * IOVA → guest RAM, through core's `ShadowMirror`. The device's DMA then goes through the host IOMMU
 * alone, guest IOVA → host page; no nesting is needed on the host.
 *
 * - Context-cache invalidations (global, domain, device with FM) and TE or SRTP in GCMD: the devices named
 *   are synced over their whole input space. IOTLB invalidations: global, by domain (the devices whose
 *   context entry carries that DID) over the whole space, or page-selective over the 2^AM pages named.
 * - Translation off, or a pass-through context entry (TT = 10b): guest RAM at IOVA = GPA. A context entry
 *   the model refuses, or none: nothing mapped, the device's DMA faults on the host.
 * - A page whose GPA is outside guest RAM is left unmapped (peer-to-peer is not shadowed); a map or unmap
 *   the host refuses stops the guest's queue at that invalidation with IQE (IQEI 0) — QEMU only logs the
 *   failed VFIO map, so its guest never learns that its mapping does not exist.
 * - A write-only second-stage leaf (R = 0, W = 1) is shadowed read-write: an IOAS mapping always reads.
 * - Not trapped: register-based invalidation (CCMD, IOTLB_REG). The unit offers queued invalidation, which
 *   Linux always uses when it has it.
 * - Not forwarded: faults. A host fault of a shadowed device stays in the host's log: iommufd reports no
 *   unrecoverable faults of a paging HWPT to user space.
 */
import {
  type AssignedDeviceView,
  IommufdError,
  PERM_WRITE,
  type ShadowLeaf,
  ShadowMirror,
  toHex,
  type ViommuContext,
  type ViommuPersonality,
} from '@iommukit/core';
import { forEachLeaf } from '@iommukit/pagetables';
import { contextSidMatches } from '../hw/caches.js';
import { INV_TYPE, type InvalidInvDescriptor, IQEI } from '../hw/inv-descriptors.js';
import type { CacheInvDescriptor } from '../hw/invalidation.js';
import { type VtdOptions, VtdOptionsSchema } from '../hw/options.js';
import { CONTEXT_GRANULARITY, IOTLB_GRANULARITY, TTM } from '../hw/regs.js';
import { VtdHardware } from '../hw/vtd.js';

const PAGE = 4096;

/**
 * What a shadowing VMM offers: legacy mode with caching mode, queued invalidation, pass-through, and a
 * 39-bit guest IOVA space (3-level tables, QEMU's `aw-bits=39`): every guest IOVA must be mappable in the
 * device's IOAS, and a host with 4-level first-stage domains reaches only 2^47.
 */
export function shadowGuestOptions(): VtdOptions {
  return VtdOptionsSchema.parse({
    scalableMode: false,
    sagaw: [3],
    mgawBits: 39,
    cachingMode: true,
    queuedInvalidation: true,
    deviceTlb: false,
    interruptRemapping: false,
    extendedInterruptMode: false,
    postedInterrupts: false,
    sirtpInvalidates: false,
    passThrough: true,
    writeBufferFlush: false,
  });
}

interface ShadowDevice {
  readonly view: AssignedDeviceView;
  readonly mirror: ShadowMirror;
}

/** What the vVT-d did, for tests and the CLI. */
export interface ShadowVvtdStats {
  replays: number;
  pagesMapped: number;
  pagesUnmapped: number;
  /** Leaves whose GPA is outside guest RAM, left unmapped. */
  outsideRam: number;
  /** Invalidations whose replay the host refused (the guest saw IQE). */
  rejected: number;
  /** Resyncs after a TE or SRTP change the host refused (the device was left with nothing mapped). */
  resyncsRefused: number;
}

export class ShadowVvtd implements ViommuPersonality {
  readonly mode = 'shadow';
  readonly mmio: { readonly base: bigint; readonly size: number };
  /** The unit the guest programs. */
  readonly unit: VtdHardware;
  readonly stats: ShadowVvtdStats = {
    replays: 0,
    pagesMapped: 0,
    pagesUnmapped: 0,
    outsideRam: 0,
    rejected: 0,
    resyncsRefused: 0,
  };
  private readonly devices = new Map<number, ShadowDevice>();
  private readonly counter;

  constructor(private readonly ctx: ViommuContext) {
    if (!ctx.shadow)
      throw new IommufdError('EINVAL', `${ctx.name}: shadow mode needs the VM's iommufd context`);
    this.counter = ctx.bus.counter(`frontend:${ctx.name}`);
    this.unit = new VtdHardware(
      {
        instance: ctx.name,
        base: ctx.base,
        options: shadowGuestOptions(),
        bus: ctx.bus,
        tracer: ctx.tracer,
        // Stryker disable next-line ArrowFunction: the VT-d model signals by MSI writes on the bus only; it never asks for a wired line
        irq: (name) => ctx.irq(name),
        ...(ctx.msi ? { msi: ctx.msi } : {}),
      },
      {
        forwardInvalidation: (d) => this.guarded(() => this.replay(d)),
        translationChanged: () => {
          for (const device of this.devices.values()) this.resync(device);
        },
      },
    );
    this.mmio = this.unit.mmio;
  }

  addDevice(view: AssignedDeviceView): void {
    if (view.shadowIoasId === undefined)
      throw new IommufdError('EINVAL', `${view.name}: a shadowed device needs an IOAS of its own`);
    const device = {
      view,
      mirror: new ShadowMirror(this.ctx.shadow!.fd, view.shadowIoasId, this.ctx.shadow!.guestRam),
    };
    this.devices.set(view.virtualId, device);
    // Translation is off until the guest driver turns it on: untranslated DMA is GPA.
    this.syncAll(device);
  }

  destroy(): void {
    this.devices.clear();
    this.ctx.bus.removeRegion(this.ctx.name);
  }

  /**
   * Resyncs a device after TE or SRTP changed. A register write has no error to report, so a host refusal
   * (QEMU only logs it) leaves the device with nothing mapped rather than a stale mirror: its DMA faults on
   * the host until the guest's next invalidation resyncs it.
   */
  private resync(device: ShadowDevice): void {
    try {
      this.syncAll(device);
    } catch (error) {
      if (!(error instanceof IommufdError)) throw error;
      this.stats.resyncsRefused++;
      device.mirror.clear();
      if (this.ctx.tracer.enabled)
        this.trace(
          'refused',
          `${device.view.name}: the host refused the resync (${error.message}); nothing mapped`,
        );
    }
  }

  /** Runs a replay; a host refusal becomes the guest's IQE at the descriptor. */
  private guarded(replay: () => void): InvalidInvDescriptor | undefined {
    try {
      replay();
      return undefined;
    } catch (error) {
      if (!(error instanceof IommufdError)) throw error;
      this.stats.rejected++;
      if (this.ctx.tracer.enabled) this.trace('rejected', `the host refused the replay: ${error.message}`);
      return { iqei: IQEI.INFO_NOT_AVAILABLE, invalid: `the host refused it: ${error.message}` };
    }
  }

  private replay(d: CacheInvDescriptor): void {
    for (const device of this.devices.values()) {
      const did = this.contextDid(device);
      switch (d.type) {
        case INV_TYPE.CONTEXT_CACHE:
          if (
            d.granularity === CONTEXT_GRANULARITY.GLOBAL ||
            d.granularity === CONTEXT_GRANULARITY.DOMAIN ||
            contextSidMatches(device.view.virtualId, d.sid, d.fm)
          )
            this.syncAll(device);
          break;
        case INV_TYPE.IOTLB:
          if (d.granularity === IOTLB_GRANULARITY.GLOBAL) this.syncAll(device);
          else if (did === (d.did & this.didMask)) {
            if (d.granularity === IOTLB_GRANULARITY.DOMAIN) this.syncAll(device);
            else {
              const pages = 2 ** d.am;
              const first = Math.floor(d.addr / PAGE / pages) * pages;
              this.sync(device, first, first + pages);
            }
          }
          break;
        // Stryker disable next-line ConditionalExpression: an emptied default falls out of the switch, which ends the case too
        default:
          break;
      }
    }
  }

  private get didMask(): number {
    return 2 ** this.unit.features.domainIdBits - 1;
  }

  /** The DID of the device's context entry now, if it has a usable one. */
  private contextDid(device: ShadowDevice): number | undefined {
    const context = this.context(device);
    return context?.kind === 'legacy' ? context.did : undefined;
  }

  private context(device: ShadowDevice) {
    const state = this.unit.global.state;
    if (!state.enabled) return undefined;
    return this.unit.translator.config.fetchContext(
      device.view.virtualId,
      state.rootTable,
      state.ttm === TTM.SCALABLE,
    );
  }

  private syncAll(device: ShadowDevice): void {
    this.sync(device, 0, Number.POSITIVE_INFINITY);
  }

  /** Makes the device's IOAS map, over IOVA pages [first, end), what the guest's entries map now. */
  private sync(device: ShadowDevice, first: number, end: number): void {
    this.stats.replays++;
    const { mirror } = device;
    const state = this.unit.global.state;
    const context = this.context(device);
    if (!state.enabled || (context?.kind === 'legacy' && context.passThrough)) {
      if (!mirror.identity && this.ctx.tracer.enabled)
        this.trace('sync', `${device.view.name}: guest RAM at IOVA = GPA`);
      mirror.setIdentity();
      return;
    }
    const wanted = new Map<number, ShadowLeaf>();
    if (context?.kind === 'legacy' && context.secondStage !== undefined) {
      const format = context.secondStage;
      end = Math.min(end, 2 ** (format.ias - 12));
      const bus = this.ctx.bus;
      forEachLeaf(
        format,
        context.root,
        // Stryker disable next-line ArithmeticOperator: a wider walk finds more leaves, which the mirror leaves outside [first, end)
        first * PAGE,
        end * PAGE,
        (address, out) => bus.readWords(address, out, 2, this.counter),
        (iova, shift, lo, hi, level) => {
          // A second-stage leaf is present only with R or W (its format makes R = W = 0 invalid).
          const writable = (format.leafPermissions(lo, 0) & PERM_WRITE) !== 0;
          const base = iova / PAGE;
          const gpaBase = format.outputAddress(lo, hi, level) / PAGE;
          const from = Math.max(first, base);
          const to = Math.min(end, base + 2 ** (shift - 12));
          for (let pfn = from; pfn < to; pfn++) wanted.set(pfn, { gpaPfn: gpaBase + (pfn - base), writable });
        },
      );
    }
    const r = mirror.sync(first, end, wanted);
    this.stats.pagesMapped += r.mapped;
    this.stats.pagesUnmapped += r.unmapped;
    this.stats.outsideRam += r.outsideRam;
    if (this.ctx.tracer.enabled)
      this.trace(
        'sync',
        `${device.view.name}: IOVA ${toHex(first * PAGE)}–${end === Number.POSITIVE_INFINITY ? 'end' : toHex(end * PAGE - 1)}: ${r.mapped} page(s) mapped, ${r.unmapped} unmapped in IOAS ${mirror.ioasId}${r.outsideRam ? `, ${r.outsideRam} outside guest RAM` : ''}`,
      );
  }

  private trace(name: string, message: string): void {
    if (this.ctx.tracer.enabled) this.ctx.tracer.trace('frontend', this.ctx.name, `vvtd.${name}`, message);
  }
}
