/**
 * The mock IOMMU hardware model. Translation: CTRL.EN → stream ID range → device table entry (through
 * the configuration cache) → MODE → IOTLB → 3-level page table walk. Every failure is written to the
 * fault log ring in memory and raises the `fault` interrupt line, as a real IOMMU records events.
 */
import {
  type AccessCounter,
  type FaultKind,
  type HardwareContext,
  hi32,
  type IommuFault,
  type IommuHardware,
  type IrqLine,
  type ITracer,
  join64,
  LruCache,
  lo32,
  type MemoryBus,
  NO_PASID,
  PERM_READ,
  PERM_WRITE,
  RegisterFile,
  type TranslationRequest,
  type TranslationResult,
  toHex,
} from '@iommukit/core';
import {
  DTE_BYTES,
  DTE_WORDS,
  type Dte,
  decodeDte,
  FAULT_BYTES,
  FAULT_CODES,
  FAULT_PASID_VALID,
  FAULT_WRITE,
  type FaultCode,
  MODE_ABORT,
  MODE_BYPASS,
  MODE_TRANSLATE,
  PT_IOVA_BITS,
  PT_LEVELS,
  PTE_D,
  PTE_P,
  PTE_R,
  PTE_W,
  pteAddressPfn,
  ptIndex,
} from './formats.js';
import type { MockOptions } from './options.js';
import {
  CAP_DIRTY,
  CTRL_EN,
  CTRL_FAULT_IRQ_EN,
  FLOG_OVERFLOW,
  INV,
  MOCK_IDR_MAGIC,
  MOCK_MMIO_SIZE,
  MOCK_VERSION,
  R,
  REGISTERS,
} from './regs.js';

interface TlbEntry {
  readonly domainId: number;
  readonly iovaPfn: number;
  readonly pfn: number;
  readonly perm: number;
  /** The PTE's dirty bit was set when the entry was filled: writes through it need no walk. */
  readonly dirty: boolean;
}

const IOVA_PFN_LIMIT = 2 ** (PT_IOVA_BITS - 12);
const CONFIG_CACHE_ENTRIES = 16;

export class MockIommuHardware implements IommuHardware {
  readonly instance: string;
  readonly mmio: { readonly base: bigint; readonly size: number };
  readonly regs: RegisterFile;
  readonly iotlb: LruCache<number, TlbEntry>;
  readonly configCache = new LruCache<number, Dte>(CONFIG_CACHE_ENTRIES);
  private readonly bus: MemoryBus;
  private readonly reads: AccessCounter;
  private readonly tracer: ITracer;
  private readonly faultIrq: IrqLine;
  private readonly scratch = new Uint32Array(DTE_WORDS);
  private readonly dirtyTracking: boolean;
  private walks = 0;
  private faultsRecorded = 0;
  private faultsDropped = 0;

  constructor(context: HardwareContext<MockOptions>) {
    const { options } = context;
    this.instance = context.instance;
    this.bus = context.bus;
    this.tracer = context.tracer;
    this.reads = context.bus.counter(`hw:${context.instance}`);
    this.faultIrq = context.irq('fault');
    this.dirtyTracking = options.dirtyTracking;
    this.iotlb = new LruCache(options.iotlbEntries);
    this.regs = new RegisterFile(MOCK_MMIO_SIZE, REGISTERS);
    this.regs.set(R.IDR, MOCK_IDR_MAGIC | (MOCK_VERSION << 16));
    this.regs.set(
      R.CAP,
      options.sidBits | (options.faultLogMaxLog2 << 5) | (options.dirtyTracking ? CAP_DIRTY : 0),
    );
    this.regs.onWrite(R.CTRL, (value) => this.regs.set(R.STATUS, value & CTRL_EN));
    this.regs.onWrite(R.INV_CMD, (op) => this.invalidate(op));
    this.mmio = { base: context.base, size: MOCK_MMIO_SIZE };
    context.bus.addMmio(context.instance, context.base, MOCK_MMIO_SIZE, this.regs);
  }

  translate(request: TranslationRequest): TranslationResult {
    const { streamId, iovaPfn } = request;
    if ((this.regs.get(R.CTRL) & CTRL_EN) === 0) return this.disabled(request);
    if (streamId >= 2 ** this.regs.get(R.DT_LOG2)) return this.fail(request, 1);
    const dte = this.fetchDte(streamId);
    if (dte === undefined) return this.fail(request, 9);
    if (!dte.valid) return this.fail(request, 2);
    if (dte.mode > MODE_TRANSLATE) return this.fail(request, 2); // MODE 3 is reserved: the entry is malformed
    if (dte.mode === MODE_ABORT) return this.fail(request, 3);
    if (request.pasid !== NO_PASID) return this.fail(request, 8);
    if (dte.mode === MODE_BYPASS)
      return { ok: true, pfn: iovaPfn, perm: PERM_READ | PERM_WRITE, pageShift: 12 };
    if (iovaPfn >= IOVA_PFN_LIMIT) return this.fail(request, 7);

    const key = dte.domainId * IOVA_PFN_LIMIT + iovaPfn;
    const cached = this.iotlb.get(key);
    if (cached !== undefined) {
      if (this.tracer.enabled) {
        this.trace(
          'tlb.hit',
          `IOTLB hit domain ${dte.domainId} IOVA page ${toHex(iovaPfn * 4096)} → ${toHex(cached.pfn * 4096)}`,
          {
            domain: dte.domainId,
            iovaPfn,
            pfn: cached.pfn,
          },
        );
      }
      if ((cached.perm & request.access) !== request.access) return this.fail(request, 5);
      // A write through a clean TLB entry walks to set the dirty bit, as hardware dirty tracking does.
      const needsDirtyUpdate = this.dirtyTracking && (request.access & PERM_WRITE) !== 0 && !cached.dirty;
      if (!needsDirtyUpdate) return { ok: true, pfn: cached.pfn, perm: cached.perm, pageShift: 12 };
    }
    return this.walk(request, dte, key);
  }

  // The mock has neither ATS nor PRI, so it never calls an endpoint back.
  connectEndpoint(): void {}

  disconnectEndpoint(): void {}

  identify(): Readonly<Record<string, string>> {
    return { IDR: toHex(this.regs.get(R.IDR)), CAP: toHex(this.regs.get(R.CAP)) };
  }

  stats(): Readonly<Record<string, number>> {
    return {
      iotlbHits: this.iotlb.hits,
      iotlbMisses: this.iotlb.misses,
      iotlbEvictions: this.iotlb.evictions,
      configCacheHits: this.configCache.hits,
      configCacheMisses: this.configCache.misses,
      walks: this.walks,
      tableReads: this.reads.reads,
      faultsRecorded: this.faultsRecorded,
      faultsDropped: this.faultsDropped,
      invalidations: this.regs.get(R.INV_DONE),
    };
  }

  private fetchDte(streamId: number): Dte | undefined {
    const cached = this.configCache.get(streamId);
    if (cached) return cached;
    const addr = Number(this.regs.get64(R.DT_BASE)) + streamId * DTE_BYTES;
    if (!this.bus.readWords(addr, this.scratch, DTE_WORDS, this.reads)) return undefined;
    const dte = decodeDte(this.scratch);
    this.configCache.set(streamId, dte);
    if (this.tracer.enabled) {
      this.trace(
        'dte.fetch',
        `fetch DTE[${toHex(streamId)}] at ${toHex(addr)}: V=${+dte.valid} MODE=${dte.mode} DID=${dte.domainId} root=${toHex(dte.rootPfn * 4096)}`,
        {
          streamId,
          addr,
          words: [...this.scratch],
        },
      );
    }
    return dte;
  }

  private walk(request: TranslationRequest, dte: Dte, key: number): TranslationResult {
    this.walks++;
    let tablePfn = dte.rootPfn;
    const pte = this.scratch;
    for (let level = 0; level < PT_LEVELS; level++) {
      const addr = tablePfn * 4096 + ptIndex(request.iovaPfn, level) * 8;
      if (!this.bus.readWords(addr, pte, 2, this.reads)) return this.fail(request, 6);
      const lo = pte[0]!;
      const hi = pte[1]!;
      if (this.tracer.enabled) {
        this.trace('walk.step', `walk L${level} read ${toHex(addr)} = ${toHex(join64(lo, hi))}`, {
          level,
          addr,
          pte: join64(lo, hi),
        });
      }
      if ((lo & PTE_P) === 0) return this.fail(request, 4);
      if (level < PT_LEVELS - 1) {
        tablePfn = pteAddressPfn(lo, hi);
        continue;
      }
      const perm = (lo & PTE_R ? PERM_READ : 0) | (lo & PTE_W ? PERM_WRITE : 0);
      if ((perm & request.access) !== request.access) return this.fail(request, 5);
      let dirty = (lo & PTE_D) !== 0;
      if (this.dirtyTracking && request.access & PERM_WRITE && !dirty) {
        pte[0] = (lo | PTE_D) >>> 0;
        this.bus.writeWords(addr, pte, 1, this.reads);
        dirty = true;
      }
      const pfn = pteAddressPfn(lo, hi);
      this.iotlb.set(key, { domainId: dte.domainId, iovaPfn: request.iovaPfn, pfn, perm, dirty });
      return { ok: true, pfn, perm, pageShift: 12 };
    }
    return this.fail(request, 4);
  }

  /** Executes an INV_CMD write: the invalidation is complete when the write returns. */
  private invalidate(op: number): void {
    const arg = this.regs.get(R.INV_ARG);
    let dropped = 0;
    switch (op) {
      case INV.ALL:
        dropped = this.iotlb.clear() + this.configCache.clear();
        break;
      case INV.DOMAIN:
        dropped = this.iotlb.deleteWhere((e) => e.domainId === arg);
        break;
      case INV.RANGE: {
        const first = Number(this.regs.get64(R.INV_ADDR) >> 12n);
        const pages = Number((this.regs.get64(R.INV_SIZE) + 0xfffn) >> 12n);
        dropped = this.iotlb.deleteWhere(
          (e) => e.domainId === arg && e.iovaPfn >= first && e.iovaPfn < first + pages,
        );
        break;
      }
      case INV.DEVICE:
        dropped = this.configCache.delete(arg) ? 1 : 0;
        break;
      default:
        return; // Unknown opcodes are ignored and do not complete, as the spec in the README says.
    }
    this.regs.set(R.INV_DONE, (this.regs.get(R.INV_DONE) + 1) >>> 0);
    if (this.tracer.enabled) {
      const name = Object.entries(INV).find(([, v]) => v === op)?.[0] ?? String(op);
      this.trace('inv', `invalidate ${name} arg=${toHex(arg)}: ${dropped} entries dropped`, {
        op: name,
        arg,
        dropped,
      });
    }
  }

  /** Translation disabled (CTRL.EN = 0): every transaction is aborted, and nothing is recorded. */
  private disabled(request: TranslationRequest): TranslationResult {
    return { ok: false, fault: this.fault(request, 'MOCK_DISABLED', 'config-abort', false) };
  }

  private fail(request: TranslationRequest, code: FaultCode): TranslationResult {
    const info = FAULT_CODES[code];
    const fault = this.fault(request, info.code, info.kind, false);
    return { ok: false, fault: { ...fault, recorded: this.recordFault(code, request, fault.iova) } };
  }

  private fault(
    request: TranslationRequest,
    vendorCode: string,
    kind: FaultKind,
    recorded: boolean,
  ): IommuFault {
    const iova = BigInt(request.iovaPfn) * 4096n + BigInt(request.offset);
    return {
      kind,
      vendorCode,
      streamId: request.streamId,
      pasid: request.pasid,
      iova,
      access: request.access,
      recorded,
    };
  }

  /** Appends a record to the fault log ring; a full ring sets FLOG_STATUS.OVERFLOW and drops it. */
  private recordFault(code: FaultCode, request: TranslationRequest, iova: bigint): boolean {
    const log2 = this.regs.get(R.FLOG_LOG2);
    const base = Number(this.regs.get64(R.FLOG_BASE));
    const size = 2 ** log2;
    const head = this.regs.get(R.FLOG_HEAD) % size;
    const tail = this.regs.get(R.FLOG_TAIL) % size;
    if (base === 0 || (tail + 1) % size === head) {
      this.faultsDropped++;
      this.regs.set(R.FLOG_STATUS, this.regs.get(R.FLOG_STATUS) | FLOG_OVERFLOW);
      return false;
    }
    const flags =
      code |
      (request.access & PERM_WRITE ? FAULT_WRITE : 0) |
      (request.pasid !== NO_PASID ? FAULT_PASID_VALID : 0);
    const record = [
      flags,
      request.streamId,
      request.pasid === NO_PASID ? 0 : request.pasid,
      0,
      lo32(iova),
      hi32(iova),
      0,
      0,
    ];
    const addr = base + tail * FAULT_BYTES;
    this.bus.writeWords(addr, record, record.length, this.reads);
    this.regs.set(R.FLOG_TAIL, (tail + 1) % size);
    this.faultsRecorded++;
    if (this.tracer.enabled) {
      this.trace(
        'fault.record',
        `record ${FAULT_CODES[code].code} stream ${toHex(request.streamId)} IOVA ${toHex(iova)} at ${toHex(addr)}`,
        {
          code: FAULT_CODES[code].code,
          streamId: request.streamId,
          iova,
          addr,
        },
      );
    }
    if (this.regs.get(R.CTRL) & CTRL_FAULT_IRQ_EN) this.faultIrq.raise();
    return true;
  }

  private trace(
    name: string,
    message: string,
    args: Record<string, bigint | number | string | number[]>,
  ): void {
    this.tracer.trace('hw', this.instance, name, message, args);
  }
}
