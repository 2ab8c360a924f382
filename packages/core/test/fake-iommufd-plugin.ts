/**
 * A fake plugin whose driver has every iommufd feature (PASID, nesting with and without a vIOMMU, dirty
 * tracking, a SW MSI window), for core tests of `IommuFd` without a dependency on @iommukit/testing. It
 * has no page table format: a domain keeps its mappings in a map, but takes one host frame for its root
 * and one per `map` call (freed by `unmap` or `free`), and a vIOMMU takes one, so a leaked domain or
 * vIOMMU shows in the frame allocator's count. Its hardware translates a device's DMA through the paging
 * domain the driver attached at its (StreamID, PASID), and faults when there is none, no mapping or too
 * little permission.
 */
import { z } from 'zod';
import { type Hpa, hpa, type Iova, iova, PAGE_SIZE } from '../src/address/address.js';
import { IommufdError } from '../src/errors/iommufd-error.js';
import type {
  IommuDeviceRef,
  IommuDomain,
  IommuDriver,
  PagingDomainFlags,
  Prot,
  ViommuDriverObject,
  ViommuEventSink,
} from '../src/iommu/driver.js';
import type { IommuHardware } from '../src/iommu/hardware.js';
import { StaticDomain } from '../src/iommu/static-domain.js';
import {
  type FaultKind,
  NO_PASID,
  PERM_READ,
  PERM_WRITE,
  type TranslationRequest,
  type TranslationResult,
} from '../src/iommu/translation.js';
import type { IFrameAllocator } from '../src/memory/frame-allocator.js';
import type { MemoryBus } from '../src/memory/memory-bus.js';
import { definePlugin } from '../src/plugin/plugin.js';
import { PluginRegistry } from '../src/plugin/plugin-registry.js';
import { fakeItsModule } from './fake-msi-controller.js';
import { fakeMsiModule, fakePlugin } from './fake-plugin.js';

const PAGE = BigInt(PAGE_SIZE);
/** The IOMMU's PASID width: wider than some devices', so hw_info must report the smaller one. */
export const FAKE_IOMMU_PASID_BITS = 10;
export const FAKE_SW_MSI = { start: 0x800_0000n, length: 0x10_0000n } as const;
export const FAKE_VIOMMU_TYPE = 'fake';

/** Vendor data for a fake nested HWPT: a stage-1 tag. */
export interface FakeNestedData {
  readonly tag: number;
}

/** A fake invalidation entry: `all` succeeds, anything else is `EINVAL`. */
export type FakeInvalidation = { readonly op: 'all' };

class FakeDomain implements IommuDomain {
  readonly pgsizeBitmap: bigint;
  readonly aperture = { start: iova(0n), end: iova((1n << 48n) - 1n) };
  /** IOVA of each map call → its size, address, permissions and the frame standing for its page-table pages. */
  readonly mappings = new Map<bigint, { size: bigint; paddr: bigint; prot: Prot; frame: Hpa }>();
  readonly dirty = new Set<bigint>();
  tracking = false;
  private readonly root: Hpa;

  constructor(
    readonly id: number,
    readonly type: 'paging' | 'nested',
    readonly flags: PagingDomainFlags,
    private readonly memory: IFrameAllocator,
    private readonly release: (domain: FakeDomain) => void,
    readonly viommu?: FakeViommu,
  ) {
    this.pgsizeBitmap = type === 'paging' ? PAGE | (2n << 20n) : 0n;
    this.root = memory.allocFrames(1);
    if (flags.dirtyTracking) {
      this.setDirtyTracking = (enabled) => {
        this.tracking = enabled;
      };
      this.readAndClearDirty = (at, size, record, clear) => {
        for (const page of [...this.dirty].sort((a, b) => (a < b ? -1 : 1))) {
          if (page < at || page >= at + size) continue;
          record(page, PAGE);
          if (clear) this.dirty.delete(page);
        }
      };
    }
    if (type === 'nested') this.cacheInvalidateUser = (entries) => runEntries(entries);
  }

  setDirtyTracking?: (enabled: boolean) => void;
  readAndClearDirty?: (
    at: Iova,
    size: bigint,
    record: (iova: bigint, size: bigint) => void,
    clear: boolean,
  ) => void;
  cacheInvalidateUser?: IommuDomain['cacheInvalidateUser'];

  map(at: Iova, paddr: Hpa, size: bigint, prot: Prot): void {
    if (this.type !== 'paging') throw new IommufdError('EOPNOTSUPP', 'a nested domain is not mapped');
    if (at % PAGE !== 0n || paddr % PAGE !== 0n || size % PAGE !== 0n || size === 0n)
      throw new IommufdError('EINVAL', 'fake domain: misaligned map');
    for (const [start, m] of this.mappings)
      if (start < at + size && at < start + m.size) throw new IommufdError('EEXIST', 'fake domain: mapped');
    this.mappings.set(at, { size, paddr, prot, frame: this.memory.allocFrames(1) });
  }

  unmap(at: Iova, size: bigint): bigint {
    let done = 0n;
    for (const [start, m] of this.mappings) {
      if (start < at || start + m.size > at + size) continue;
      this.memory.freeFrames(m.frame, 1);
      this.mappings.delete(start);
      done += m.size;
    }
    return done;
  }

  iotlbSync(): void {}

  iovaToPhys(at: Iova): Hpa | undefined {
    for (const [start, m] of this.mappings)
      if (at >= start && at < start + m.size) return hpa(m.paddr + (at - start));
    return undefined;
  }

  /** What a DMA write does with tracking on: the page becomes dirty. */
  write(at: bigint): void {
    if (this.tracking) this.dirty.add(at - (at % PAGE));
  }

  free(): void {
    for (const m of this.mappings.values()) this.memory.freeFrames(m.frame, 1);
    this.mappings.clear();
    this.memory.freeFrames(this.root, 1);
    this.release(this);
  }
}

class FakeViommu implements ViommuDriverObject {
  readonly type = FAKE_VIOMMU_TYPE;
  readonly vdevices = new Map<IommuDeviceRef, bigint>();
  private readonly frame: Hpa;

  constructor(
    readonly parent: FakeDomain,
    private readonly driver: FakeIommufdDriver,
    private readonly memory: IFrameAllocator,
    /** Where the vIOMMU's events go (tests report through it as the hardware would). */
    readonly events: ViommuEventSink,
  ) {
    this.frame = memory.allocFrames(1);
  }

  vdeviceAlloc(device: IommuDeviceRef, virtId: bigint): void {
    this.vdevices.set(device, virtId);
  }

  vdeviceDestroy(device: IommuDeviceRef): void {
    this.vdevices.delete(device);
  }

  domainAllocNested(data: unknown): IommuDomain {
    return this.driver.allocNested(data, this);
  }

  cacheInvalidate(entries: readonly unknown[]) {
    return runEntries(entries);
  }

  destroy(): void {
    this.memory.freeFrames(this.frame, 1);
    this.driver.viommus.splice(this.driver.viommus.indexOf(this), 1);
  }
}

function runEntries(entries: readonly unknown[]) {
  for (const [i, entry] of entries.entries()) {
    if ((entry as FakeInvalidation | undefined)?.op !== 'all')
      return { handled: i, error: new IommufdError('EINVAL', `entry ${i} is not a fake invalidation`) };
  }
  return { handled: entries.length };
}

export class FakeIommufdDriver implements IommuDriver {
  readonly blockedDomain = new StaticDomain(0, 'blocked');
  /** Live paging and nested domains: attach accepts only these. */
  readonly domains = new Set<FakeDomain>();
  private nextId = 1;

  constructor(
    readonly instance: string,
    private readonly memory: IFrameAllocator,
  ) {}

  probe(): void {}
  probeDevice(): void {}
  releaseDevice(): void {}
  shutdown(): void {}
  pageResponse(): void {}
  enableIopf(): void {}
  disableIopf(): void {}

  hwInfo() {
    return {
      type: 'fake',
      data: {},
      maxPasidLog2: FAKE_IOMMU_PASID_BITS,
      capabilities: { dirtyTracking: true, pasidExec: true, pasidPriv: true },
    };
  }

  reservedRegions() {
    return [{ ...FAKE_SW_MSI, type: 'sw-msi' as const }];
  }

  domainAllocPaging(flags: PagingDomainFlags = {}): IommuDomain {
    return this.track(new FakeDomain(this.nextId++, 'paging', flags, this.memory, this.untrack));
  }

  /** The device each vIOMMU-less nested domain was allocated for. */
  readonly nestedFor = new Map<IommuDomain, IommuDeviceRef>();

  domainAllocNested(device: IommuDeviceRef, parent: IommuDomain, data: unknown): IommuDomain {
    if (!(parent instanceof FakeDomain) || !parent.flags.nestParent)
      throw new IommufdError('EINVAL', 'not a fake nest parent');
    const domain = this.allocNested(data, undefined);
    this.nestedFor.set(domain, device);
    return domain;
  }

  allocNested(data: unknown, viommu: FakeViommu | undefined): IommuDomain {
    const tag = (data as Partial<FakeNestedData> | null)?.tag;
    if (typeof tag !== 'number' || !Number.isInteger(tag) || tag < 1 || tag > 0xffff)
      throw new IommufdError('EINVAL', 'fake nested data needs a tag in 1..65535');
    return this.track(new FakeDomain(this.nextId++, 'nested', {}, this.memory, this.untrack, viommu));
  }

  /** Live vIOMMUs, newest last. */
  readonly viommus: FakeViommu[] = [];

  viommuAlloc(parent: IommuDomain, type: string, events: ViommuEventSink): ViommuDriverObject {
    if (type !== FAKE_VIOMMU_TYPE) throw new IommufdError('EOPNOTSUPP', `no "${type}" vIOMMU`);
    if (!(parent instanceof FakeDomain) || !parent.flags.nestParent)
      throw new IommufdError('EINVAL', 'not a fake nest parent');
    const viommu = new FakeViommu(parent, this, this.memory, events);
    this.viommus.push(viommu);
    return viommu;
  }

  /** What the hardware translates through, by `streamId:pasid`. */
  readonly attached = new Map<string, IommuDomain>();

  attachDev(domain: IommuDomain, device: IommuDeviceRef): void {
    this.checkAttach(domain, device);
    this.attached.set(`${device.streamId}:${NO_PASID}`, domain);
  }

  setDevPasid(domain: IommuDomain, device: IommuDeviceRef, pasid: number): void {
    this.checkAttach(domain, device);
    this.attached.set(`${device.streamId}:${pasid}`, domain);
  }

  removeDevPasid(device: IommuDeviceRef, pasid: number): void {
    this.attached.delete(`${device.streamId}:${pasid}`);
  }

  private checkAttach(domain: IommuDomain, device: IommuDeviceRef): void {
    if (domain === this.blockedDomain) return;
    if (!(domain instanceof FakeDomain) || !this.domains.has(domain))
      throw new IommufdError('EINVAL', `domain ${domain.id} is not a live fake domain`);
    // As the kernel's selftest mock: a nested domain of a vIOMMU needs the device's vDEVICE there.
    if (domain.viommu && !domain.viommu.vdevices.has(device))
      throw new IommufdError('ENOENT', `${device.name} has no vDEVICE on the domain's vIOMMU`);
  }

  private track(domain: FakeDomain): FakeDomain {
    this.domains.add(domain);
    return domain;
  }

  private readonly untrack = (domain: FakeDomain): void => {
    this.domains.delete(domain);
  };
}

export const fakeIommufdPlugin = definePlugin<Record<string, never>>({
  meta: { name: 'fake-iommufd', version: '1.0.0', vendor: 'fake' },
  capabilities: {
    stages: ['s1', 's2', 'nested'],
    pasid: true,
    ats: false,
    pri: false,
    dirtyTracking: true,
    pasidTableOwner: 'kernel',
    viommuModes: [],
  },
  optionsSchema: z.strictObject({}),
  createHardware(context): IommuHardware {
    const hardware = fakePlugin.createHardware({ ...context, options: { offsetPages: 0 } });
    return { ...hardware, translate: (r) => translateThrough(driverOf(context), r) };
  },
  createDriver(context) {
    const driver = new FakeIommufdDriver(context.instance, context.memory);
    drivers.set(context.bus, (drivers.get(context.bus) ?? new Map()).set(context.instance, driver));
    return driver;
  },
});

/** Each system's fake drivers by instance: the hardware looks up what its driver attached. */
const drivers = new WeakMap<MemoryBus, Map<string, FakeIommufdDriver>>();

function driverOf(context: { bus: MemoryBus; instance: string }): FakeIommufdDriver {
  return drivers.get(context.bus)!.get(context.instance)!;
}

function translateThrough(driver: FakeIommufdDriver, r: TranslationRequest): TranslationResult {
  const domain = driver.attached.get(`${r.streamId}:${r.pasid}`);
  const at = BigInt(r.iovaPfn) * PAGE;
  const fault = (kind: FaultKind, vendorCode: string): TranslationResult => ({
    ok: false,
    fault: {
      kind,
      vendorCode,
      streamId: r.streamId,
      pasid: r.pasid,
      iova: at,
      access: r.access,
      recorded: true,
    },
  });
  if (!(domain instanceof FakeDomain) || domain.type !== 'paging')
    return fault('bad-stream', 'F_FAKE_BLOCKED');
  const found = [...domain.mappings].find(([start, m]) => at >= start && at < start + m.size);
  if (!found) return fault('translation', 'F_FAKE_TRANSLATION');
  const [start, mapping] = found;
  const perm = (mapping.prot.read ? PERM_READ : 0) | (mapping.prot.write ? PERM_WRITE : 0);
  const need = r.access & (PERM_READ | PERM_WRITE);
  if ((perm & need) !== need) return fault('permission', 'F_FAKE_PERMISSION');
  if (need & PERM_WRITE) domain.write(at);
  return { ok: true, pfn: Number((mapping.paddr + at - start) / PAGE), perm, pageShift: 12 };
}

/** The fake driver's domain behind a paging HWPT's domain object, to simulate DMA writes. */
export function asFakeDomain(domain: IommuDomain | undefined): FakeDomain {
  if (!(domain instanceof FakeDomain)) throw new Error('not a fake domain');
  return domain;
}

export function fakeIommufdRegistry(): PluginRegistry {
  return new PluginRegistry(
    { 'fake-iommufd': async () => ({ default: fakeIommufdPlugin }) },
    {
      'fake-msi': async () => ({ default: fakeMsiModule }),
      'fake-its': async () => ({ default: fakeItsModule }),
    },
  );
}

/**
 * A system for iommufd tests: one fake IOMMU, 64 MiB of RAM, a one-page MSI controller, `dev0` with an
 * 8-bit PASID capability and `dev1` without one.
 */
export function fakeIommufdConfig(): Record<string, unknown> {
  return {
    plugin: 'fake-iommufd',
    memory: { ram: [{ name: 'dram', base: '0x8000_0000', size: '64MiB' }] },
    iommus: [{ name: 'iommu0', base: '0x0900_0000' }],
    msi: { controller: 'fake-msi' },
    devices: [
      { name: 'dev0', rid: '00:02.0', iommu: 'iommu0', pasidBits: 8 },
      { name: 'dev1', rid: '00:03.0', iommu: 'iommu0' },
    ],
  };
}
