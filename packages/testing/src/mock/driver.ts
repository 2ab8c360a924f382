/**
 * The mock IOMMU's host driver. Like a Linux IOMMU driver it finds out what the hardware is from its ID
 * registers, allocates the device table, fault log and page request queue in host memory, programs base
 * registers, and from then on edits structures in memory and issues invalidations through registers. It
 * owns the PASID tables (the kernel-owned model, as VT-d), attaches paging and nested domains at RIDs
 * and PASIDs, runs vIOMMUs, and its interrupt handlers drain the fault log and the page request queue.
 */
import {
  type AccessCounter,
  type DriverContext,
  field32,
  type Hpa,
  type HwInfo,
  type IFrameAllocator,
  type IommuDeviceRef,
  type IommuDomain,
  type IommuDriver,
  IommufdError,
  type ITracer,
  join64,
  type MemoryBus,
  MmioWindow,
  NO_PASID,
  type PageResponse,
  type PagingDomainFlags,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  pollTimeout,
  type ReservedRegion,
  StaticDomain,
  toHex,
  type ViommuEventSink,
  X86_INTERRUPT_WINDOW,
} from '@iommukit/core';
import { MockPagingDomain } from './domain.js';
import {
  type ContextEntry,
  CTX_BYTES,
  EMPTY_CONTEXT,
  encodeContext,
  FAULT_BYTES,
  FAULT_CODES,
  FAULT_PASID_VALID,
  FAULT_WORDS,
  FAULT_WRITE,
  type FaultCode,
  MODE_ABORT,
  MODE_BYPASS,
  MODE_NESTED,
  MODE_TRANSLATE,
  PRQ_BYTES,
  PRQ_EXEC,
  PRQ_LAST,
  PRQ_PASID_VALID,
  PRQ_PRIV,
  PRQ_READ,
  PRQ_WORDS,
  PRQ_WRITE,
} from './formats.js';
import { MockIrqRemapping } from './irq-remapping.js';
import { IRTE_BYTES } from './irte.js';
import { MockNestedDomain } from './nested-domain.js';
import type { MockOptions } from './options.js';
import {
  CAP_CM,
  CAP_DIRTY,
  CAP_FLOG_MAX_LOG2,
  CAP_IR,
  CAP_NEST,
  CAP_PASID_BITS,
  CAP_PRI,
  CAP_SID_BITS,
  CTRL_EN,
  CTRL_FAULT_IRQ_EN,
  CTRL_IR_EN,
  CTRL_PRQ_IRQ_EN,
  FAULT_LOG_RING,
  INV,
  MOCK_IDR_MAGIC,
  PRQ_RING,
  R,
  RESP_PASID_VALID,
} from './regs.js';
import { drainRing } from './ring.js';
import { MOCK_VIOMMU_TYPE, MockViommu } from './viommu.js';

/** Queue sizes the driver asks for (capped by CAP). */
const FAULT_LOG_LOG2 = 6;
const PRQ_LOG2 = 6;
/** Interrupt remapping table entries the driver allocates (log2). */
const IRT_LOG2 = 10;
const MAX_DOMAIN_ID = 0xffff;
/** The SW MSI window, at the address and size Linux's SMMUv3 driver reserves (MSI_IOVA_BASE). */
export const MOCK_SW_MSI_BASE = 0x800_0000n;
export const MOCK_SW_MSI_LENGTH = 0x10_0000n;

interface DeviceState {
  readonly ref: IommuDeviceRef;
  rid: IommuDomain;
  readonly pasids: Map<number, IommuDomain>;
  pasidTable: { base: Hpa; frames: number; log2: number } | undefined;
}

interface Caps {
  sidBits: number;
  pasidBits: number;
  dirty: boolean;
  nest: boolean;
  pri: boolean;
  cachingMode: boolean;
}

type MockDomain = MockPagingDomain | MockNestedDomain;

export class MockIommuDriver implements IommuDriver {
  readonly instance: string;
  /** No page table, only a device table MODE. */
  readonly blockedDomain = new StaticDomain(0, 'blocked');
  readonly identityDomain = new StaticDomain(0, 'identity');
  private readonly regs: MmioWindow;
  private readonly bus: MemoryBus;
  private readonly memory: IFrameAllocator;
  private readonly counter: AccessCounter;
  private readonly tracer: ITracer;
  private readonly context: DriverContext<MockOptions>;
  private readonly devices = new Map<number, DeviceState>();
  /** Live paging and nested domains by domain ID: attach accepts only these exact objects. */
  private readonly domains = new Map<number, MockDomain>();
  private readonly viommus = new Set<MockViommu>();
  private caps: Caps = {
    sidBits: 0,
    pasidBits: 0,
    dirty: false,
    nest: false,
    pri: false,
    cachingMode: false,
  };
  private deviceTable: { base: Hpa; frames: number } | undefined;
  private faultLog: { base: Hpa; frames: number; entries: number } | undefined;
  private prq: { base: Hpa; frames: number; entries: number } | undefined;
  private irt: { base: Hpa; frames: number } | undefined;
  /** The IR domain, once probe found CAP.IR and turned remapping on. */
  interruptRemapping: MockIrqRemapping | undefined;

  constructor(context: DriverContext<MockOptions>) {
    this.context = context;
    this.instance = context.instance;
    this.bus = context.bus;
    this.memory = context.memory;
    this.tracer = context.tracer;
    this.counter = context.bus.counter(`driver:${context.instance}`);
    this.regs = new MmioWindow(context.bus, context.base, this.counter);
  }

  probe(): void {
    const idr = this.regs.read32(R.IDR);
    if ((idr & 0xffff) !== MOCK_IDR_MAGIC) {
      throw new IommufdError('ENODEV', `${this.instance}: IDR ${toHex(idr)} is not a mock IOMMU`, {
        instance: this.instance,
      });
    }
    const cap = this.regs.read32(R.CAP);
    this.caps = {
      sidBits: field32(cap, CAP_SID_BITS.lsb, CAP_SID_BITS.width),
      pasidBits: field32(cap, CAP_PASID_BITS.lsb, CAP_PASID_BITS.width),
      dirty: (cap & CAP_DIRTY) !== 0,
      nest: (cap & CAP_NEST) !== 0,
      pri: (cap & CAP_PRI) !== 0,
      cachingMode: (cap & CAP_CM) !== 0,
    };
    const logLog2 = Math.min(FAULT_LOG_LOG2, field32(cap, CAP_FLOG_MAX_LOG2.lsb, CAP_FLOG_MAX_LOG2.width));
    this.deviceTable = this.allocZeroed(2 ** this.caps.sidBits * CTX_BYTES);
    this.faultLog = { ...this.allocZeroed(2 ** logLog2 * FAULT_BYTES), entries: 2 ** logLog2 };
    this.regs.write64(R.DT_BASE, this.deviceTable.base);
    this.regs.write32(R.DT_LOG2, this.caps.sidBits);
    this.regs.write64(R.FLOG_BASE, this.faultLog.base);
    this.regs.write32(R.FLOG_LOG2, logLog2);
    let ctrl = CTRL_EN | CTRL_FAULT_IRQ_EN;
    if (this.caps.pri) {
      this.prq = { ...this.allocZeroed(2 ** PRQ_LOG2 * PRQ_BYTES), entries: 2 ** PRQ_LOG2 };
      this.regs.write64(R.PRQ_BASE, this.prq.base);
      this.regs.write32(R.PRQ_LOG2, PRQ_LOG2);
      this.context.irq('prq').connect(() => this.handlePrqIrq());
      ctrl |= CTRL_PRQ_IRQ_EN;
    }
    if (cap & CAP_IR) {
      this.irt = this.allocZeroed(2 ** IRT_LOG2 * IRTE_BYTES);
      this.regs.write64(R.IRT_BASE, this.irt.base);
      this.regs.write32(R.IRT_LOG2, IRT_LOG2);
      this.interruptRemapping = new MockIrqRemapping(
        this.instance,
        this.irt.base,
        2 ** IRT_LOG2,
        this.bus,
        this.counter,
        (first, count) => this.invalidate(INV.IEC, first, 0n, BigInt(count)),
      );
      ctrl |= CTRL_IR_EN;
    }
    this.invalidate(INV.ALL, 0);
    this.context.irq('fault').connect(() => this.handleFaultIrq());
    this.regs.write32(R.CTRL, ctrl);
    this.log(
      'probe',
      `probed: ${this.caps.sidBits}-bit stream IDs, ${this.caps.pasidBits}-bit PASIDs, device table at ${toHex(this.deviceTable.base)}, ${this.faultLog.entries}-entry fault log${this.prq ? `, ${this.prq.entries}-entry page request queue` : ''}${this.irt ? `, ${2 ** IRT_LOG2}-entry interrupt remapping table` : ''}`,
    );
  }

  probeDevice(device: IommuDeviceRef): void {
    if (device.streamId >= 2 ** this.caps.sidBits) {
      throw new IommufdError(
        'EINVAL',
        `${device.name}: stream ID ${toHex(device.streamId)} exceeds the hardware's ${this.caps.sidBits} bits`,
        {
          device: device.name,
        },
      );
    }
    this.devices.set(device.streamId, {
      ref: device,
      rid: this.blockedDomain,
      pasids: new Map(),
      pasidTable: undefined,
    });
    this.writeDte(this.state(device));
  }

  releaseDevice(device: IommuDeviceRef): void {
    if (this.devices.get(device.streamId)?.ref !== device) return;
    const state = this.state(device);
    for (const pasid of [...state.pasids.keys()]) this.removeDevPasid(device, pasid);
    this.untrack(state.rid, `${device.streamId}`);
    this.writeContext(device, undefined, EMPTY_CONTEXT);
    if (state.pasidTable) this.memory.freeFrames(state.pasidTable.base, state.pasidTable.frames);
    this.devices.delete(device.streamId);
  }

  hwInfo(_device: IommuDeviceRef): HwInfo {
    return {
      type: 'mock',
      data: { idr: this.regs.read32(R.IDR), cap: this.regs.read32(R.CAP) },
      maxPasidLog2: this.caps.pasidBits,
      capabilities: { dirtyTracking: this.caps.dirty, pasidExec: false, pasidPriv: false },
    };
  }

  reservedRegions(_device: IommuDeviceRef): readonly ReservedRegion[] {
    const swMsi: ReservedRegion = { start: MOCK_SW_MSI_BASE, length: MOCK_SW_MSI_LENGTH, type: 'sw-msi' };
    // With remapping on, the interrupt window is the hardware's, never DMA (as on VT-d and AMD).
    if (!this.interruptRemapping) return [swMsi];
    return [swMsi, { start: X86_INTERRUPT_WINDOW.base, length: X86_INTERRUPT_WINDOW.size, type: 'msi' }];
  }

  domainAllocPaging(flags: PagingDomainFlags = {}): IommuDomain {
    if (flags.nestParent && !this.caps.nest)
      throw new IommufdError('EOPNOTSUPP', `${this.instance} cannot nest`);
    if (flags.dirtyTracking && !this.caps.dirty)
      throw new IommufdError('EOPNOTSUPP', `${this.instance} has no dirty tracking`);
    const id = this.allocDomainId();
    const domain = new MockPagingDomain(id, flags, {
      instance: this.instance,
      bus: this.bus,
      memory: this.memory,
      counter: this.counter,
      tracer: this.tracer,
      cachingMode: this.caps.cachingMode,
      invalidateRange: (domainId, iova, size) => this.invalidate(INV.RANGE, domainId, iova, size),
      invalidateDomain: (domainId) => this.invalidate(INV.DOMAIN, domainId),
      releaseDomainId: (domainId) => this.domains.delete(domainId),
      refreshAttachments: (d) => this.refreshAttachments(d),
    });
    this.domains.set(id, domain);
    this.log('domain.alloc', `domain ${id}: page table root at ${toHex(domain.rootPfn * 4096)}`);
    return domain;
  }

  domainAllocNested(_device: IommuDeviceRef, parent: IommuDomain, data: unknown): IommuDomain {
    return this.allocNested(this.nestParent(parent), data);
  }

  viommuAlloc(parent: IommuDomain, type: string, events: ViommuEventSink): MockViommu {
    if (type !== MOCK_VIOMMU_TYPE)
      throw new IommufdError('EOPNOTSUPP', `${this.instance} has no "${type}" vIOMMU`);
    const viommu = new MockViommu(
      this.nestParent(parent),
      {
        allocNested: (p, d, v) => this.allocNested(p, d, v),
        invalidateS1: (p, tag, range) => this.invalidateS1(p, tag, range),
        invalidateDevice: (device) => this.invalidate(INV.DEVICE, device.streamId),
        forget: (v) => this.viommus.delete(v),
      },
      events,
    );
    this.viommus.add(viommu);
    return viommu;
  }

  attachDev(domain: IommuDomain, device: IommuDeviceRef): void {
    const state = this.state(device);
    this.checkOwned(domain, device);
    // As the kernel's selftest mock (mock_domain_nop_attach): a nested domain of a vIOMMU needs the
    // device's vDEVICE (its virtual ID) on that vIOMMU.
    if (domain instanceof MockNestedDomain && domain.viommu && domain.viommu.virtIdOf(device) === undefined)
      throw new IommufdError('ENOENT', `${device.name} has no vDEVICE on the nested domain's vIOMMU`, {
        device: device.name,
      });
    if (domain === state.rid) return;
    this.untrack(state.rid, `${device.streamId}`);
    state.rid = domain;
    this.track(domain, `${device.streamId}`);
    this.writeDte(state);
  }

  setDevPasid(domain: IommuDomain, device: IommuDeviceRef, pasid: number): void {
    const state = this.state(device);
    this.checkOwned(domain, device);
    const log2 = Math.min(device.pasidBits, this.caps.pasidBits);
    if (log2 === 0 || pasid < 1 || pasid >= 2 ** log2) {
      throw new IommufdError('EINVAL', `${device.name}: PASID ${pasid} is outside 1..${2 ** log2 - 1}`, {
        device: device.name,
        pasid,
      });
    }
    if (!state.pasidTable) {
      state.pasidTable = { ...this.allocZeroed(2 ** log2 * CTX_BYTES), log2 };
      device.pci.setPasidEnabled(true);
      this.writeDte(state);
    }
    const old = state.pasids.get(pasid);
    if (old) this.untrack(old, `${device.streamId}:${pasid}`);
    state.pasids.set(pasid, domain);
    this.track(domain, `${device.streamId}:${pasid}`);
    this.writeContext(device, pasid, this.contextFor(domain));
  }

  removeDevPasid(device: IommuDeviceRef, pasid: number): void {
    const state = this.state(device);
    const old = state.pasids.get(pasid);
    if (!old) return;
    state.pasids.delete(pasid);
    this.untrack(old, `${device.streamId}:${pasid}`);
    this.writeContext(device, pasid, EMPTY_CONTEXT);
  }

  pageResponse(device: IommuDeviceRef, response: PageResponse): void {
    const code = { success: 0, invalid: 1, failure: 2 }[response.code];
    this.regs.write32(R.RESP_SID, device.streamId);
    this.regs.write32(R.RESP_PASID, response.pasid === NO_PASID ? 0 : response.pasid);
    this.regs.write32(
      R.RESP,
      (response.groupIndex & 0x1ff) | (code << 9) | (response.pasid === NO_PASID ? 0 : RESP_PASID_VALID),
    );
    this.log('pri.response', `page response ${response.code} to ${device.name} group ${response.groupIndex}`);
  }

  shutdown(): void {
    this.regs.write32(R.CTRL, 0);
    this.context.irq('fault').disconnect();
    this.context.irq('prq').disconnect();
    for (const table of [this.deviceTable, this.faultLog, this.prq, this.irt])
      if (table) this.memory.freeFrames(table.base, table.frames);
    this.deviceTable = this.faultLog = this.prq = this.irt = undefined;
    this.interruptRemapping = undefined;
    this.log('shutdown', 'translation disabled, tables released');
  }

  private allocNested(parent: MockPagingDomain, data: unknown, viommu?: MockViommu): MockNestedDomain {
    const id = this.allocDomainId();
    const host = {
      invalidateS1: (p: MockPagingDomain, tag: number, range?: { iova: bigint; size: bigint }) =>
        this.invalidateS1(p, tag, range),
      releaseDomainId: (domainId: number) => this.domains.delete(domainId),
    };
    const domain = new MockNestedDomain(id, parent, data, host, viommu);
    this.domains.set(id, domain);
    this.log(
      'domain.alloc',
      `nested domain ${id}: stage-1 root IPA ${toHex(domain.s1RootPfn * 4096)}, tag ${domain.tag}, on domain ${parent.id}`,
    );
    return domain;
  }

  private nestParent(parent: IommuDomain): MockPagingDomain {
    if (
      !(parent instanceof MockPagingDomain) ||
      this.domains.get(parent.id) !== parent ||
      !parent.flags.nestParent
    ) {
      throw new IommufdError('EINVAL', `domain ${parent.id} is not a nest-parent domain of ${this.instance}`);
    }
    return parent;
  }

  private invalidateS1(parent: MockPagingDomain, tag: number, range?: { iova: bigint; size: bigint }): void {
    const arg = (tag << 16) | parent.id;
    if (range) this.invalidate(INV.S1_RANGE, arg, range.iova, range.size);
    else this.invalidate(INV.S1_ALL, arg);
  }

  private allocDomainId(): number {
    let id = 1;
    while (this.domains.has(id)) id++;
    if (id > MAX_DOMAIN_ID)
      throw new IommufdError('ENOSPC', `${this.instance}: all ${MAX_DOMAIN_ID} domain IDs are in use`);
    return id;
  }

  private checkOwned(domain: IommuDomain, device: IommuDeviceRef): void {
    const owned =
      domain === this.blockedDomain ||
      domain === this.identityDomain ||
      this.domains.get(domain.id) === domain;
    if (!owned) {
      throw new IommufdError(
        'EINVAL',
        `domain ${domain.id} (${domain.type}) cannot be attached on ${this.instance}`,
        { device: device.name },
      );
    }
  }

  /** The context entry that makes hardware translate through `domain`. */
  private contextFor(domain: IommuDomain): ContextEntry {
    if (domain === this.blockedDomain) return { ...EMPTY_CONTEXT, valid: true, mode: MODE_ABORT };
    if (domain === this.identityDomain) return { ...EMPTY_CONTEXT, valid: true, mode: MODE_BYPASS };
    if (domain instanceof MockNestedDomain) {
      const parent = domain.parent;
      return {
        ...EMPTY_CONTEXT,
        valid: true,
        mode: MODE_NESTED,
        dirtyUpdates: parent.dirtyTracking,
        domainId: parent.id,
        s1Tag: domain.tag,
        rootPfn: parent.rootPfn,
        s1RootPfn: domain.s1RootPfn,
      };
    }
    const paging = domain as MockPagingDomain;
    return {
      ...EMPTY_CONTEXT,
      valid: true,
      mode: MODE_TRANSLATE,
      dirtyUpdates: paging.dirtyTracking,
      domainId: paging.id,
      rootPfn: paging.rootPfn,
    };
  }

  private writeDte(state: DeviceState): void {
    const table = state.pasidTable;
    const entry = {
      ...this.contextFor(state.rid),
      pasidLog2: table?.log2 ?? 0,
      pasidTablePfn: table ? Number(table.base / 4096n) : 0,
    };
    this.writeContext(state.ref, undefined, entry);
  }

  /** Writes words 1–7 before word 0 (which holds V and MODE), then invalidates the cached entries. */
  private writeContext(device: IommuDeviceRef, pasid: number | undefined, entry: ContextEntry): void {
    const state = this.state(device);
    const base =
      pasid === undefined
        ? Number(this.deviceTable!.base) + device.streamId * CTX_BYTES
        : Number(state.pasidTable!.base) + pasid * CTX_BYTES;
    const words = encodeContext(entry);
    this.bus.writeWords(base + 4, words, 7, this.counter, 1);
    this.bus.writeWords(base, words, 1, this.counter);
    const where =
      pasid === undefined
        ? `DTE[${toHex(device.streamId)}]`
        : `PASID entry [${toHex(device.streamId)}:${pasid}]`;
    this.log(
      'ctx.write',
      `${where} (${device.name}) at ${toHex(base)} = ${[...words].map((w) => toHex(w)).join(' ')}`,
    );
    this.invalidate(INV.DEVICE, device.streamId);
  }

  /** Rewrites every context entry pointing at `domain` or at a nested domain on it. */
  private refreshAttachments(domain: MockPagingDomain): void {
    for (const state of this.devices.values()) {
      const uses = (d: IommuDomain) => d === domain || (d instanceof MockNestedDomain && d.parent === domain);
      if (uses(state.rid)) this.writeDte(state);
      for (const [pasid, d] of state.pasids)
        if (uses(d)) this.writeContext(state.ref, pasid, this.contextFor(d));
    }
  }

  private track(domain: IommuDomain, key: string): void {
    if (domain instanceof MockPagingDomain || domain instanceof MockNestedDomain) domain.attached.add(key);
  }

  private untrack(domain: IommuDomain, key: string): void {
    if (domain instanceof MockPagingDomain || domain instanceof MockNestedDomain) domain.attached.delete(key);
  }

  private invalidate(op: number, arg: number, iova = 0n, size = 0n): void {
    this.regs.write64(R.INV_ARG, BigInt(arg >>> 0));
    if (op === INV.RANGE || op === INV.S1_RANGE) this.regs.write64(R.INV_ADDR, iova);
    if (op === INV.RANGE || op === INV.S1_RANGE || op === INV.IEC) this.regs.write64(R.INV_SIZE, size);
    const before = this.regs.read32(R.INV_DONE);
    this.regs.write32(R.INV_CMD, op);
    // The mock completes on the INV_CMD write: one look is the whole (bounded) wait.
    if (this.regs.read32(R.INV_DONE) === before)
      throw pollTimeout(this.instance, `invalidation ${op} did not complete`);
  }

  /** Fault interrupt: drain the log from HEAD to TAIL, report each record, acknowledge overflow. */
  private handleFaultIrq(): void {
    if (!this.faultLog) return;
    const words = new Uint32Array(FAULT_WORDS);
    const lost = drainRing(
      this.regs,
      FAULT_LOG_RING,
      this.faultLog,
      words,
      this.bus,
      this.counter,
      this.instance,
      (w) => {
        const info = FAULT_CODES[(w[0]! & 0xff) as FaultCode];
        const device = this.devices.get(w[1]!)?.ref;
        this.context.reportFault(
          {
            kind: info?.kind ?? 'translation',
            vendorCode: info?.code ?? `MOCK_UNKNOWN_${w[0]! & 0xff}`,
            streamId: w[1]!,
            pasid: w[0]! & FAULT_PASID_VALID ? w[2]! : NO_PASID,
            iova: join64(w[4]!, w[5]!),
            access: w[0]! & FAULT_WRITE ? PERM_WRITE : PERM_READ,
            recorded: true,
          },
          device,
        );
        if (device) for (const viommu of this.viommus) viommu.forwardFault(device, w);
      },
    );
    if (lost) this.log('fault.overflow', 'fault log overflowed: records were lost');
  }

  /** Page request interrupt: drain the queue and hand each request to the iommu core. */
  private handlePrqIrq(): void {
    if (!this.prq) return;
    const words = new Uint32Array(PRQ_WORDS);
    drainRing(this.regs, PRQ_RING, this.prq, words, this.bus, this.counter, this.instance, (w) => {
      const flags = w[2]!;
      const device = this.devices.get(w[0]!)?.ref;
      if (!device) return;
      this.context.reportPageRequest(device, {
        pasid: flags & PRQ_PASID_VALID ? w[1]! : NO_PASID,
        iova: join64(w[4]!, w[5]!),
        access:
          (flags & PRQ_READ ? PERM_READ : 0) |
          (flags & PRQ_WRITE ? PERM_WRITE : 0) |
          (flags & PRQ_EXEC ? PERM_EXEC : 0) |
          (flags & PRQ_PRIV ? PERM_PRIV : 0),
        groupIndex: flags & 0x1ff,
        last: (flags & PRQ_LAST) !== 0,
      });
    });
  }

  private state(device: IommuDeviceRef): DeviceState {
    const state = this.devices.get(device.streamId);
    if (!state || state.ref !== device) {
      throw new IommufdError('ENODEV', `${device.name} was not probed by ${this.instance}`, {
        device: device.name,
      });
    }
    return state;
  }

  private allocZeroed(bytes: number): { base: Hpa; frames: number } {
    const frames = Math.max(1, Math.ceil(bytes / 4096));
    return { base: this.memory.allocFrames(frames), frames };
  }

  private log(name: string, message: string): void {
    if (this.tracer.enabled) this.tracer.trace('driver', this.instance, name, message);
  }
}
