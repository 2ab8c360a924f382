/**
 * The mock IOMMU's host driver. Like a Linux IOMMU driver it finds out what the hardware is from its ID
 * registers, allocates the device table and fault log in host memory, programs base registers, and from
 * then on edits structures in memory and issues invalidations through registers. Its interrupt handler
 * drains the fault log and reports each record to the iommu core.
 */
import {
  type AccessCounter,
  type DriverContext,
  field32,
  type Hpa,
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
  PERM_READ,
  PERM_WRITE,
  toHex,
} from '@iommukit/core';
import { MockPagingDomain } from './domain.js';
import {
  DTE_BYTES,
  encodeDte,
  FAULT_BYTES,
  FAULT_CODES,
  FAULT_PASID_VALID,
  FAULT_WORDS,
  FAULT_WRITE,
  type FaultCode,
  MODE_ABORT,
  MODE_BYPASS,
  MODE_TRANSLATE,
} from './formats.js';
import type { MockOptions } from './options.js';
import {
  CAP_FLOG_MAX_LOG2,
  CAP_SID_BITS,
  CTRL_EN,
  CTRL_FAULT_IRQ_EN,
  FLOG_OVERFLOW,
  INV,
  MOCK_IDR_MAGIC,
  R,
} from './regs.js';
import { MockStaticDomain } from './special-domains.js';

/** Fault log size the driver asks for (capped by CAP). */
const FAULT_LOG_LOG2 = 6;
const MAX_DOMAIN_ID = 0xffff;

export class MockIommuDriver implements IommuDriver {
  readonly instance: string;
  readonly blockedDomain = new MockStaticDomain(0, 'blocked');
  readonly identityDomain = new MockStaticDomain(0, 'identity');
  private readonly regs: MmioWindow;
  private readonly bus: MemoryBus;
  private readonly memory: IFrameAllocator;
  private readonly counter: AccessCounter;
  private readonly tracer: ITracer;
  private readonly context: DriverContext<MockOptions>;
  private readonly devices = new Map<number, IommuDeviceRef>();
  private readonly attachedTo = new Map<number, IommuDomain>();
  /** Live paging domains by domain ID: attach accepts only these exact objects. */
  private readonly domains = new Map<number, MockPagingDomain>();
  private sidBits = 0;
  private deviceTable: { base: Hpa; frames: number } | undefined;
  private faultLog: { base: Hpa; frames: number; entries: number } | undefined;

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
    this.sidBits = field32(cap, CAP_SID_BITS.lsb, CAP_SID_BITS.width);
    const logLog2 = Math.min(FAULT_LOG_LOG2, field32(cap, CAP_FLOG_MAX_LOG2.lsb, CAP_FLOG_MAX_LOG2.width));
    this.deviceTable = this.allocZeroed(2 ** this.sidBits * DTE_BYTES);
    this.faultLog = { ...this.allocZeroed(2 ** logLog2 * FAULT_BYTES), entries: 2 ** logLog2 };
    this.regs.write64(R.DT_BASE, this.deviceTable.base);
    this.regs.write32(R.DT_LOG2, this.sidBits);
    this.regs.write64(R.FLOG_BASE, this.faultLog.base);
    this.regs.write32(R.FLOG_LOG2, logLog2);
    this.regs.write32(R.INV_CMD, INV.ALL);
    this.context.irq('fault').connect(() => this.handleFaultIrq());
    this.regs.write32(R.CTRL, CTRL_EN | CTRL_FAULT_IRQ_EN);
    this.log(
      'probe',
      `probed: ${this.sidBits}-bit stream IDs, device table at ${toHex(this.deviceTable.base)}, ${2 ** logLog2}-entry fault log at ${toHex(this.faultLog.base)}`,
    );
  }

  probeDevice(device: IommuDeviceRef): void {
    if (device.streamId >= 2 ** this.sidBits) {
      throw new IommufdError(
        'EINVAL',
        `${device.name}: stream ID ${toHex(device.streamId)} exceeds the hardware's ${this.sidBits} bits`,
        {
          device: device.name,
        },
      );
    }
    this.devices.set(device.streamId, device);
    this.attachDev(this.blockedDomain, device);
  }

  releaseDevice(device: IommuDeviceRef): void {
    this.detachFromCurrent(device.streamId);
    this.writeDte(device, encodeDte({ valid: false, mode: MODE_ABORT, domainId: 0, rootPfn: 0 }));
    this.devices.delete(device.streamId);
  }

  domainAllocPaging(): IommuDomain {
    let id = 1;
    while (this.domains.has(id)) id++;
    if (id > MAX_DOMAIN_ID)
      throw new IommufdError('ENOSPC', `${this.instance}: all ${MAX_DOMAIN_ID} domain IDs are in use`);
    const domain = new MockPagingDomain(id, {
      instance: this.instance,
      bus: this.bus,
      memory: this.memory,
      counter: this.counter,
      tracer: this.tracer,
      invalidateRange: (domainId, iova, size) => this.invalidate(INV.RANGE, domainId, iova, size),
      invalidateDomain: (domainId) => this.invalidate(INV.DOMAIN, domainId),
      releaseDomainId: (domainId) => this.domains.delete(domainId),
    });
    this.domains.set(id, domain);
    this.log('domain.alloc', `domain ${id}: page table root at ${toHex(domain.rootPfn * 4096)}`);
    return domain;
  }

  attachDev(domain: IommuDomain, device: IommuDeviceRef): void {
    if (!this.devices.has(device.streamId)) {
      throw new IommufdError('ENODEV', `${device.name} was not probed by ${this.instance}`, {
        device: device.name,
      });
    }
    let dte: Uint32Array;
    if (domain === this.blockedDomain)
      dte = encodeDte({ valid: true, mode: MODE_ABORT, domainId: 0, rootPfn: 0 });
    else if (domain === this.identityDomain)
      dte = encodeDte({ valid: true, mode: MODE_BYPASS, domainId: 0, rootPfn: 0 });
    else if (domain instanceof MockPagingDomain && this.domains.get(domain.id) === domain) {
      dte = encodeDte({ valid: true, mode: MODE_TRANSLATE, domainId: domain.id, rootPfn: domain.rootPfn });
    } else {
      throw new IommufdError(
        'EINVAL',
        `domain ${domain.id} (${domain.type}) cannot be attached on ${this.instance}`,
        {
          device: device.name,
        },
      );
    }
    this.detachFromCurrent(device.streamId);
    this.writeDte(device, dte);
    this.attachedTo.set(device.streamId, domain);
    if (domain instanceof MockPagingDomain) domain.attached.add(device.streamId);
  }

  shutdown(): void {
    this.regs.write32(R.CTRL, 0);
    this.context.irq('fault').disconnect();
    for (const table of [this.deviceTable, this.faultLog])
      if (table) this.memory.freeFrames(table.base, table.frames);
    this.deviceTable = this.faultLog = undefined;
    this.log('shutdown', 'translation disabled, tables released');
  }

  private detachFromCurrent(streamId: number): void {
    const previous = this.attachedTo.get(streamId);
    if (previous instanceof MockPagingDomain) previous.attached.delete(streamId);
    this.attachedTo.delete(streamId);
  }

  /** Writes the root (words 2–3) before word 0, then invalidates the cached entry. */
  private writeDte(device: IommuDeviceRef, dte: Uint32Array): void {
    const addr = Number(this.deviceTable!.base) + device.streamId * DTE_BYTES;
    this.bus.writeWords(addr + 8, dte, 2, this.counter, 2);
    this.bus.writeWords(addr, dte, 2, this.counter);
    this.log(
      'dte.write',
      `DTE[${toHex(device.streamId)}] (${device.name}) at ${toHex(addr)} = ${[...dte].map((w) => toHex(w)).join(' ')}`,
    );
    this.invalidate(INV.DEVICE, device.streamId);
  }

  private invalidate(op: number, arg: number, iova = 0n, size = 0n): void {
    this.regs.write64(R.INV_ARG, BigInt(arg));
    if (op === INV.RANGE) {
      this.regs.write64(R.INV_ADDR, iova);
      this.regs.write64(R.INV_SIZE, size);
    }
    const before = this.regs.read32(R.INV_DONE);
    this.regs.write32(R.INV_CMD, op);
    if (this.regs.read32(R.INV_DONE) === before) {
      throw new IommufdError('EIO', `${this.instance}: invalidation ${op} did not complete`, {
        instance: this.instance,
      });
    }
  }

  /** Fault interrupt: drain the log from HEAD to TAIL, report each record, acknowledge overflow. */
  private handleFaultIrq(): void {
    const log = this.faultLog;
    if (!log) return;
    const words = new Uint32Array(FAULT_WORDS);
    let head = this.regs.read32(R.FLOG_HEAD);
    const tail = this.regs.read32(R.FLOG_TAIL);
    while (head !== tail) {
      this.bus.readWords(Number(log.base) + head * FAULT_BYTES, words, FAULT_WORDS, this.counter);
      const info = FAULT_CODES[(words[0]! & 0xff) as FaultCode];
      const streamId = words[1]!;
      this.context.reportFault(
        {
          kind: info?.kind ?? 'translation',
          vendorCode: info?.code ?? `MOCK_UNKNOWN_${words[0]! & 0xff}`,
          streamId,
          pasid: words[0]! & FAULT_PASID_VALID ? words[2]! : NO_PASID,
          iova: join64(words[4]!, words[5]!),
          access: words[0]! & FAULT_WRITE ? PERM_WRITE : PERM_READ,
          recorded: true,
        },
        this.devices.get(streamId),
      );
      head = (head + 1) % log.entries;
    }
    this.regs.write32(R.FLOG_HEAD, head);
    if (this.regs.read32(R.FLOG_STATUS) & FLOG_OVERFLOW) {
      this.regs.write32(R.FLOG_STATUS, FLOG_OVERFLOW);
      this.log('fault.overflow', 'fault log overflowed: records were lost');
    }
  }

  private allocZeroed(bytes: number): { base: Hpa; frames: number } {
    const frames = Math.max(1, Math.ceil(bytes / 4096));
    return { base: this.memory.allocFrames(frames), frames };
  }

  private log(name: string, message: string): void {
    if (this.tracer.enabled) this.tracer.trace('driver', this.instance, name, message);
  }
}
