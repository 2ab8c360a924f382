/**
 * The mock's shadowing vIOMMU, the way QEMU's intel-iommu with caching-mode=on serves VFIO devices: the
 * mock hardware model on the guest bus with CAP.CM set, so the guest's own mock driver invalidates after
 * every map as well as every unmap, and every invalidation it completes is replayed on the host. For each
 * assigned device the invalidation concerns, the personality reads the device's entry in the guest's
 * device table, walks the guest's page table over the range named (all of it for a domain, device or
 * global invalidation) and makes the device's own IOAS map exactly what the guest's table maps, IOVA →
 * guest RAM, through core's `ShadowMirror` (one page at a time, so any page can be unmapped alone). A bypass entry maps all of guest RAM
 * at IOVA = GPA; an invalid, aborting or nested entry maps nothing. The device's DMA then goes through the
 * host IOMMU alone, guest IOVA → host page.
 */
import {
  type AssignedDeviceView,
  type IommuFd,
  IommufdError,
  type ShadowLeaf,
  ShadowMirror,
  toHex,
  type ViommuContext,
  type ViommuPersonality,
} from '@iommukit/core';
import type { MockInvalidation } from './cache-invalidation.js';
import {
  type ContextEntry,
  CTX_BYTES,
  CTX_WORDS,
  decodeContext,
  MODE_BYPASS,
  MODE_TRANSLATE,
  PT_IOVA_BITS,
  PT_LEVELS,
  PTE_P,
  PTE_R,
  PTE_W,
  pteAddressPfn,
} from './formats.js';
import { MockIommuHardware } from './hardware.js';
import { MockOptionsSchema } from './options.js';
import { INV, R } from './regs.js';

const PAGE = 4096;
const BIG_PAGE = 4096n;
const ENTRIES = 512;
const IOVA_PAGES = 2 ** (PT_IOVA_BITS - 12);

interface ShadowDevice {
  readonly view: AssignedDeviceView;
  readonly mirror: ShadowMirror;
}

export class MockShadowViommu implements ViommuPersonality {
  readonly mode = 'shadow';
  readonly hardware: MockIommuHardware;
  readonly mmio: { readonly base: bigint; readonly size: number };
  /** Assigned devices by virtual RID. */
  private readonly devices = new Map<number, ShadowDevice>();
  private readonly fd: IommuFd;
  private readonly words = new Uint32Array(CTX_WORDS);
  private readonly counter;

  constructor(private readonly ctx: ViommuContext) {
    if (!ctx.shadow)
      throw new IommufdError('EINVAL', `${ctx.name}: shadow mode needs the VM's iommufd context`);
    this.fd = ctx.shadow.fd;
    this.counter = ctx.bus.counter(`frontend:${ctx.name}`);
    // What a shadowing VMM offers: RID translation only, and caching mode so no guest change goes unseen.
    this.hardware = new MockIommuHardware({
      instance: ctx.name,
      base: ctx.base,
      options: MockOptionsSchema.parse({
        pasidBits: 0,
        nesting: false,
        pri: false,
        dirtyTracking: false,
        interruptRemapping: false,
        cachingMode: true,
      }),
      bus: ctx.bus,
      tracer: ctx.tracer,
      irq: (name) => ctx.irq(name),
    });
    this.hardware.onInvalidation = (invalidation) => this.replay(invalidation);
    this.mmio = this.hardware.mmio;
  }

  addDevice(view: AssignedDeviceView): void {
    if (view.shadowIoasId === undefined)
      throw new IommufdError('EINVAL', `${view.name}: a shadowed device needs an IOAS of its own`);
    const mirror = new ShadowMirror(this.fd, view.shadowIoasId, this.ctx.shadow!.guestRam);
    this.devices.set(view.virtualId, { view, mirror });
  }

  destroy(): void {
    this.ctx.bus.removeRegion(this.ctx.name);
  }

  /** Replays a completed guest invalidation on each assigned device it concerns. */
  private replay(invalidation: MockInvalidation): void {
    const { op, arg } = invalidation;
    for (const device of this.devices.values()) {
      const dte = this.deviceEntry(device.view.virtualId);
      const ours = dte !== undefined && dte.domainId === (arg & 0xffff);
      if (op === INV.RANGE && ours) {
        const first = Number(invalidation.iova / BIG_PAGE);
        const pages = Number((invalidation.size + BIG_PAGE - 1n) / BIG_PAGE);
        this.sync(device, dte, first, Math.min(first + pages, IOVA_PAGES));
      } else if (
        op === INV.ALL ||
        (op === INV.DOMAIN && ours) ||
        (op === INV.DEVICE && arg === device.view.virtualId)
      ) {
        this.sync(device, dte, 0, IOVA_PAGES);
      }
    }
  }

  /** The guest's device table entry for `rid`, or undefined when the table cannot hold or give it. */
  private deviceEntry(rid: number): ContextEntry | undefined {
    const regs = this.hardware.regs;
    if (rid >= 2 ** regs.get(R.DT_LOG2)) return undefined;
    const at = Number(regs.get64(R.DT_BASE)) + rid * CTX_BYTES;
    if (!this.ctx.bus.readWords(at, this.words, CTX_WORDS, this.counter)) return undefined;
    return decodeContext(this.words);
  }

  /** Makes the device's shadow IOAS map, over IOVA pages [first, end), what its guest entry maps. */
  private sync(device: ShadowDevice, dte: ContextEntry | undefined, first: number, end: number): void {
    // Entering or leaving bypass changes everything; staying in it changes nothing.
    if (dte?.valid === true && dte.mode === MODE_BYPASS) {
      device.mirror.setIdentity();
      return;
    }
    const wanted = new Map<number, ShadowLeaf>();
    if (dte?.valid === true && dte.mode === MODE_TRANSLATE) this.walk(dte.rootPfn, 0, 0, first, end, wanted);
    const { mapped, unmapped } = device.mirror.sync(first, end, wanted);
    if (this.ctx.tracer.enabled)
      this.ctx.tracer.trace(
        'frontend',
        this.ctx.name,
        'shadow.sync',
        `${device.view.name}: IOVA ${toHex(first * PAGE)}–${toHex(end * PAGE - 1)}: ${mapped} page(s) mapped, ${unmapped} unmapped in IOAS ${device.mirror.ioasId}`,
        { device: device.view.name, mapped, unmapped },
      );
  }

  /** Collects the present leaves of the table at `tablePfn` (level `level`, IOVA page `base`) in [first, end). */
  private walk(
    tablePfn: number,
    level: number,
    base: number,
    first: number,
    end: number,
    out: Map<number, ShadowLeaf>,
  ): void {
    const span = ENTRIES ** (PT_LEVELS - 1 - level);
    const from = Math.max(0, Math.floor((first - base) / span));
    const to = Math.min(ENTRIES, Math.ceil((end - base) / span));
    const pte = this.words;
    for (let i = from; i < to; i++) {
      if (!this.ctx.bus.readWords(tablePfn * PAGE + i * 8, pte, 2, this.counter)) continue;
      const lo = pte[0]!;
      if ((lo & PTE_P) === 0) continue;
      const next = pteAddressPfn(lo, pte[1]!);
      const at = base + i * span;
      if (level < PT_LEVELS - 1) this.walk(next, level + 1, at, first, end, out);
      else if (lo & PTE_R || lo & PTE_W) out.set(at, { gpaPfn: next, writable: (lo & PTE_W) !== 0 });
    }
  }
}
