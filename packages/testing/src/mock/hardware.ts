/**
 * The mock IOMMU hardware model. Translation: CTRL.EN → stream ID range → device table entry (through
 * the configuration cache) → PASID table entry for PASID-tagged requests → MODE → IOTLB → page-table
 * walk, single-stage or nested (every stage-1 table address and the stage-1 output go through stage 2).
 * Every failure of an untranslated request is written to the fault log in memory and raises the `fault`
 * interrupt line; ATS translation requests fail silently, as PCIe ATS completions do. Page requests go to
 * the page request queue and raise `prq`.
 */
import {
  type AccessCounter,
  type EndpointPort,
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
  type PageRequest,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  RegisterFile,
  type TranslationRequest,
  type TranslationResult,
  toHex,
} from '@iommukit/core';
import { type MockInvalidation, runInvalidation, type TlbEntry } from './cache-invalidation.js';
import {
  type ContextEntry,
  CTX_BYTES,
  CTX_WORDS,
  decodeContext,
  FAULT_BYTES,
  FAULT_CODES,
  FAULT_PASID_VALID,
  FAULT_STAGE2,
  FAULT_WRITE,
  type FaultCode,
  MODE_ABORT,
  MODE_BYPASS,
  MODE_NESTED,
  PRQ_BYTES,
  PRQ_EXEC,
  PRQ_LAST,
  PRQ_PASID_VALID,
  PRQ_PRIV,
  PRQ_READ,
  PRQ_WRITE,
  PT_IOVA_BITS,
  PT_LEVELS,
  PTE_D,
  PTE_P,
  PTE_R,
  PTE_W,
  pteAddressPfn,
  ptIndex,
} from './formats.js';
import { MockInterruptRemapping } from './interrupt-remapping.js';
import type { MockOptions } from './options.js';
import {
  CAP_CM,
  CAP_DIRTY,
  CAP_IR,
  CAP_NEST,
  CAP_PRI,
  CTRL_EN,
  CTRL_FAULT_IRQ_EN,
  CTRL_PRQ_IRQ_EN,
  FAULT_LOG_RING as FAULT_RING,
  INV,
  MOCK_IDR_MAGIC,
  MOCK_MMIO_SIZE,
  MOCK_VERSION,
  PRQ_RING,
  R,
  REGISTERS,
  RESP_PASID_VALID,
} from './regs.js';
import { appendRecord } from './ring.js';

type StageResult =
  | { ok: true; pfn: number; perm: number; dirty: boolean }
  | { ok: false; code: FaultCode; stage2: boolean };

const IOVA_PFN_LIMIT = 2 ** (PT_IOVA_BITS - 12);
const RW = PERM_READ | PERM_WRITE;

/**
 * Whether a leaf's R/W (`perm`) allow `access`. The format has no privilege or execute bits, so a request's
 * PRIV and EXEC are not checked: a read (a fetch included) needs R, a write W (README, "Translation and
 * faults"). The walk and an IOTLB hit decide alike.
 */
function allows(perm: number, access: number): boolean {
  return (perm & access & RW) === (access & RW);
}
const CONFIG_CACHE_ENTRIES = 32;
const RESP_CODES = ['success', 'invalid', 'failure'] as const;

export class MockIommuHardware implements IommuHardware {
  readonly instance: string;
  readonly mmio: { readonly base: bigint; readonly size: number };
  readonly regs: RegisterFile;
  readonly iotlb: LruCache<string, TlbEntry>;
  /** Context entries by `sid` (device table) and `sid:pasid` (PASID table). */
  readonly configCache = new LruCache<string, ContextEntry>(CONFIG_CACHE_ENTRIES);
  /**
   * Called after each completed INV_CMD with what it named: how a VMM follows a guest's invalidations
   * (QEMU's IOMMU notifiers). The hardware works the same without one.
   */
  onInvalidation: ((invalidation: MockInvalidation) => void) | undefined;
  /** The interrupt remapping unit, when the options give the hardware one. */
  readonly interruptRemapping: MockInterruptRemapping | undefined;
  private readonly bus: MemoryBus;
  private readonly reads: AccessCounter;
  private readonly tracer: ITracer;
  private readonly faultIrq: IrqLine;
  private readonly prqIrq: IrqLine;
  private readonly endpoints = new Map<number, EndpointPort>();
  private readonly scratch = new Uint32Array(CTX_WORDS);
  private readonly options: MockOptions;
  private walks = 0;
  private faultsRecorded = 0;
  private faultsDropped = 0;
  private pageRequests = 0;
  private pageRequestsDropped = 0;

  constructor(context: HardwareContext<MockOptions>) {
    const { options } = context;
    this.options = options;
    this.instance = context.instance;
    this.bus = context.bus;
    this.tracer = context.tracer;
    this.reads = context.bus.counter(`hw:${context.instance}`);
    this.faultIrq = context.irq('fault');
    this.prqIrq = context.irq('prq');
    this.iotlb = new LruCache(options.iotlbEntries);
    this.regs = new RegisterFile(MOCK_MMIO_SIZE, REGISTERS);
    this.regs.set(R.IDR, MOCK_IDR_MAGIC | (MOCK_VERSION << 16));
    this.regs.set(
      R.CAP,
      options.sidBits |
        (options.faultLogMaxLog2 << 5) |
        (options.dirtyTracking ? CAP_DIRTY : 0) |
        (options.pasidBits << 11) |
        (options.nesting ? CAP_NEST : 0) |
        (options.pri ? CAP_PRI : 0) |
        (options.interruptRemapping ? CAP_IR : 0) |
        (options.cachingMode ? CAP_CM : 0),
    );
    this.interruptRemapping = options.interruptRemapping
      ? new MockInterruptRemapping(
          context.instance,
          this.regs,
          this.bus,
          this.reads,
          this.tracer,
          (code, streamId, address, index) =>
            this.recordFault(code, false, { streamId, pasid: NO_PASID, access: PERM_WRITE }, address, index),
        )
      : undefined;
    this.regs.onWrite(R.CTRL, (value) => this.regs.set(R.STATUS, value & CTRL_EN));
    this.regs.onWrite(R.INV_CMD, (op) => this.invalidate(op));
    this.regs.onWrite(R.RESP, (value) => this.respond(value));
    this.mmio = { base: context.base, size: MOCK_MMIO_SIZE };
    context.bus.addMmio(context.instance, context.base, MOCK_MMIO_SIZE, this.regs);
  }

  translate(request: TranslationRequest): TranslationResult {
    return this.lookup(request, true);
  }

  /** ATS translation request: the same lookup, but a failure is an unsuccessful completion, not a record. */
  atsTranslate(request: TranslationRequest): TranslationResult {
    return this.lookup(request, false);
  }

  /** Queues a PRI page request in memory and raises `prq`; a full queue drops it and answers `failure`. */
  pageRequest(streamId: number, request: PageRequest): void {
    if (!this.options.pri) return;
    const a = request.access;
    const flags =
      (request.groupIndex & 0x1ff) |
      (request.last ? PRQ_LAST : 0) |
      (request.pasid !== NO_PASID ? PRQ_PASID_VALID : 0) |
      (a & PERM_READ ? PRQ_READ : 0) |
      (a & PERM_WRITE ? PRQ_WRITE : 0) |
      (a & PERM_EXEC ? PRQ_EXEC : 0) |
      (a & PERM_PRIV ? PRQ_PRIV : 0);
    const record = [
      streamId,
      request.pasid === NO_PASID ? 0 : request.pasid,
      flags,
      0,
      lo32(request.iova),
      hi32(request.iova),
      0,
      0,
    ];
    const addr = appendRecord(this.regs, PRQ_RING, PRQ_BYTES, record, this.bus, this.reads);
    if (addr === undefined) {
      this.pageRequestsDropped++;
      if (request.last)
        this.endpoints
          .get(streamId)
          ?.pageResponse({ pasid: request.pasid, groupIndex: request.groupIndex, code: 'failure' });
      return;
    }
    this.pageRequests++;
    if (this.tracer.enabled) {
      this.trace(
        'prq.record',
        `page request stream ${toHex(streamId)} IOVA ${toHex(request.iova)} group ${request.groupIndex} at ${toHex(addr)}`,
        {
          streamId,
          iova: request.iova,
          groupIndex: request.groupIndex,
        },
      );
    }
    if (this.regs.get(R.CTRL) & CTRL_PRQ_IRQ_EN) this.prqIrq.raise();
  }

  connectEndpoint(streamId: number, port: EndpointPort): void {
    this.endpoints.set(streamId, port);
  }

  disconnectEndpoint(streamId: number): void {
    this.endpoints.delete(streamId);
  }

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
      pageRequests: this.pageRequests,
      pageRequestsDropped: this.pageRequestsDropped,
      invalidations: this.regs.get(R.INV_DONE),
      ...(this.interruptRemapping
        ? { iecHits: this.interruptRemapping.hits, iecMisses: this.interruptRemapping.misses }
        : {}),
    };
  }

  private lookup(request: TranslationRequest, record: boolean): TranslationResult {
    const { streamId, iovaPfn } = request;
    if ((this.regs.get(R.CTRL) & CTRL_EN) === 0) return this.disabled(request);
    if (streamId >= 2 ** this.regs.get(R.DT_LOG2)) return this.fail(request, 1, false, record);
    const dte = this.fetchContext(`${streamId}`, Number(this.regs.get64(R.DT_BASE)) + streamId * CTX_BYTES);
    if (dte === undefined) return this.fail(request, 9, false, record);
    if (!dte.valid) return this.fail(request, 2, false, record);
    let ctx = dte;
    if (request.pasid !== NO_PASID) {
      if (dte.pasidLog2 === 0 || request.pasid >= 2 ** dte.pasidLog2)
        return this.fail(request, 8, false, record);
      const entry = this.fetchContext(
        `${streamId}:${request.pasid}`,
        dte.pasidTablePfn * 4096 + request.pasid * CTX_BYTES,
      );
      if (entry === undefined) return this.fail(request, 9, false, record);
      if (!entry.valid) return this.fail(request, 2, false, record);
      ctx = entry;
    }
    if (ctx.mode === MODE_ABORT) return this.fail(request, 3, false, record);
    if (ctx.mode === MODE_BYPASS)
      return { ok: true, pfn: iovaPfn, perm: PERM_READ | PERM_WRITE, pageShift: 12 };
    if (iovaPfn >= IOVA_PFN_LIMIT) return this.fail(request, 7, false, record);
    if (ctx.mode === MODE_NESTED && !this.options.nesting) return this.fail(request, 2, false, record);

    const nested = ctx.mode === MODE_NESTED;
    const s1Tag = nested ? ctx.s1Tag : 0;
    const key = `${ctx.domainId}:${s1Tag}:${iovaPfn}`;
    const cached = this.iotlb.get(key);
    if (cached !== undefined) {
      if (this.tracer.enabled) {
        this.trace(
          'tlb.hit',
          `IOTLB hit domain ${ctx.domainId}${nested ? ` tag ${s1Tag}` : ''} IOVA page ${toHex(iovaPfn * 4096)} → ${toHex(cached.pfn * 4096)}`,
          {
            domain: ctx.domainId,
            iovaPfn,
            pfn: cached.pfn,
          },
        );
      }
      if (!allows(cached.perm, request.access)) return this.fail(request, 5, false, record);
      // A write through a clean entry walks again to set the dirty bit, as hardware dirty tracking does.
      const needsDirtyUpdate = this.dirtyUpdates(ctx) && (request.access & PERM_WRITE) !== 0 && !cached.dirty;
      if (!needsDirtyUpdate) return { ok: true, pfn: cached.pfn, perm: cached.perm, pageShift: 12 };
    }

    this.walks++;
    const result = nested
      ? this.walkNested(ctx, request)
      : this.walkStage(ctx.rootPfn, iovaPfn, request.access, this.dirtyUpdates(ctx), 1);
    if (!result.ok) return this.fail(request, result.code, result.stage2, record);
    this.iotlb.set(key, {
      domainId: ctx.domainId,
      s1Tag,
      iovaPfn,
      pfn: result.pfn,
      perm: result.perm,
      dirty: result.dirty,
    });
    return { ok: true, pfn: result.pfn, perm: result.perm, pageShift: 12 };
  }

  private dirtyUpdates(ctx: ContextEntry): boolean {
    return this.options.dirtyTracking && ctx.dirtyUpdates;
  }

  /** Stage 1 through stage 2: each stage-1 table address, and the stage-1 output, is translated by stage 2. */
  private walkNested(ctx: ContextEntry, request: TranslationRequest): StageResult {
    const hd = this.dirtyUpdates(ctx);
    const viaS2 = (ipaPfn: number, access: number): StageResult => {
      const r = this.walkStage(ctx.rootPfn, ipaPfn, access, hd && (access & PERM_WRITE) !== 0, 2);
      return r.ok ? r : { ok: false, code: r.code, stage2: true };
    };
    const s1 = this.walkStage(ctx.s1RootPfn, request.iovaPfn, request.access, hd, 1, (tablePfn) =>
      viaS2(tablePfn, PERM_READ),
    );
    if (!s1.ok) return s1;
    const s2 = viaS2(s1.pfn, request.access);
    if (!s2.ok) return s2;
    return { ok: true, pfn: s2.pfn, perm: s1.perm & s2.perm, dirty: s1.dirty && s2.dirty };
  }

  /**
   * Walks one 3-level table. `tableAddress` translates each table's frame first (nested stage 1); a
   * table read that aborts is a walk abort.
   */
  private walkStage(
    rootPfn: number,
    inPfn: number,
    access: number,
    dirtyUpdates: boolean,
    stage: 1 | 2,
    tableAddress?: (pfn: number) => StageResult,
  ): StageResult {
    let tablePfn = rootPfn;
    const pte = this.scratch;
    for (let level = 0; level < PT_LEVELS; level++) {
      if (tableAddress) {
        const t = tableAddress(tablePfn);
        if (!t.ok) return t;
        tablePfn = t.pfn;
      }
      const addr = tablePfn * 4096 + ptIndex(inPfn, level) * 8;
      if (!this.bus.readWords(addr, pte, 2, this.reads)) return { ok: false, code: 6, stage2: stage === 2 };
      const lo = pte[0]!;
      const hi = pte[1]!;
      if (this.tracer.enabled) {
        this.trace('walk.step', `walk S${stage} L${level} read ${toHex(addr)} = ${toHex(join64(lo, hi))}`, {
          stage,
          level,
          addr,
          pte: join64(lo, hi),
        });
      }
      if ((lo & PTE_P) === 0) return { ok: false, code: 4, stage2: stage === 2 };
      if (level < PT_LEVELS - 1) {
        tablePfn = pteAddressPfn(lo, hi);
        continue;
      }
      const perm = (lo & PTE_R ? PERM_READ : 0) | (lo & PTE_W ? PERM_WRITE : 0);
      if (!allows(perm, access)) return { ok: false, code: 5, stage2: stage === 2 };
      let dirty = (lo & PTE_D) !== 0;
      if (dirtyUpdates && access & PERM_WRITE && !dirty) {
        pte[0] = (lo | PTE_D) >>> 0;
        this.bus.writeWords(addr, pte, 1, this.reads);
        dirty = true;
      }
      return { ok: true, pfn: pteAddressPfn(lo, hi), perm, dirty };
    }
    return { ok: false, code: 4, stage2: stage === 2 };
  }

  private fetchContext(key: string, addr: number): ContextEntry | undefined {
    const cached = this.configCache.get(key);
    if (cached) return cached;
    if (!this.bus.readWords(addr, this.scratch, CTX_WORDS, this.reads)) return undefined;
    const entry = decodeContext(this.scratch);
    this.configCache.set(key, entry);
    if (this.tracer.enabled) {
      this.trace(
        'ctx.fetch',
        `fetch context [${key}] at ${toHex(addr)}: V=${+entry.valid} MODE=${entry.mode} DID=${entry.domainId} root=${toHex(entry.rootPfn * 4096)}`,
        {
          key,
          addr,
          words: [...this.scratch],
        },
      );
    }
    return entry;
  }

  /** Executes an INV_CMD write: the invalidation is complete when the write returns. */
  private invalidate(op: number): void {
    const invalidation = {
      op,
      arg: this.regs.get(R.INV_ARG),
      iova: this.regs.get64(R.INV_ADDR),
      size: this.regs.get64(R.INV_SIZE),
    };
    const dropped = runInvalidation(invalidation, this);
    // Unknown opcodes are ignored and do not complete, as the README specifies.
    if (dropped === undefined) return;
    this.regs.set(R.INV_DONE, (this.regs.get(R.INV_DONE) + 1) >>> 0);
    this.onInvalidation?.(invalidation);
    if (this.tracer.enabled) {
      const name = Object.entries(INV).find(([, v]) => v === op)?.[0] ?? String(op);
      this.trace('inv', `invalidate ${name} arg=${toHex(invalidation.arg)}: ${dropped} entries dropped`, {
        op: name,
        arg: invalidation.arg,
        dropped,
      });
    }
  }

  /** A write of RESP sends a PRI page group response to the endpoint named by RESP_SID. */
  private respond(value: number): void {
    const code = RESP_CODES[(value >>> 9) & 0b11] ?? 'failure';
    const pasid = value & RESP_PASID_VALID ? this.regs.get(R.RESP_PASID) : NO_PASID;
    const streamId = this.regs.get(R.RESP_SID);
    this.endpoints.get(streamId)?.pageResponse({ pasid, groupIndex: value & 0x1ff, code });
  }

  /** Translation disabled (CTRL.EN = 0): every transaction is aborted, and nothing is recorded. */
  private disabled(request: TranslationRequest): TranslationResult {
    return { ok: false, fault: this.fault(request, 'MOCK_DISABLED', 'config-abort', false) };
  }

  private fail(
    request: TranslationRequest,
    code: FaultCode,
    stage2: boolean,
    record: boolean,
  ): TranslationResult {
    const info = FAULT_CODES[code];
    const fault = this.fault(request, info.code, info.kind, false, stage2);
    const recorded = record && this.recordFault(code, stage2, request, fault.iova);
    return { ok: false, fault: { ...fault, recorded } };
  }

  private fault(
    request: TranslationRequest,
    vendorCode: string,
    kind: FaultKind,
    recorded: boolean,
    stage2 = false,
  ): IommuFault {
    const iova = BigInt(request.iovaPfn) * 4096n + BigInt(request.offset);
    return {
      kind,
      vendorCode,
      ...(kind === 'translation' || kind === 'permission' || kind === 'walk-abort'
        ? { stage: stage2 ? 2 : 1 }
        : {}),
      streamId: request.streamId,
      pasid: request.pasid,
      iova,
      access: request.access,
      recorded,
    } as IommuFault;
  }

  /** Appends a record to the fault log ring; a full ring sets FLOG_STATUS.OVERFLOW and drops it. */
  private recordFault(
    code: FaultCode,
    stage2: boolean,
    request: Pick<TranslationRequest, 'streamId' | 'pasid' | 'access'>,
    iova: bigint,
    irIndex = 0,
  ): boolean {
    const flags =
      code |
      (request.access & PERM_WRITE ? FAULT_WRITE : 0) |
      (request.pasid !== NO_PASID ? FAULT_PASID_VALID : 0) |
      (stage2 ? FAULT_STAGE2 : 0);
    const record = [
      flags,
      request.streamId,
      request.pasid === NO_PASID ? 0 : request.pasid,
      irIndex,
      lo32(iova),
      hi32(iova),
      0,
      0,
    ];
    const addr = appendRecord(this.regs, FAULT_RING, FAULT_BYTES, record, this.bus, this.reads);
    if (addr === undefined) {
      this.faultsDropped++;
      return false;
    }
    this.faultsRecorded++;
    if (this.tracer.enabled) {
      this.trace(
        'fault.record',
        `record ${FAULT_CODES[code].code}${stage2 ? ' (stage 2)' : ''} stream ${toHex(request.streamId)} IOVA ${toHex(iova)} at ${toHex(addr)}`,
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
