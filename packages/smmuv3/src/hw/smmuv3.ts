/**
 * The SMMUv3 device model: its programming interface (registers and queues, `programming-interface.ts`)
 * with the commands acting on the configuration cache and TLB, the translation pipeline, stalls, ATS and
 * PRI. It implements the core's `IommuHardware`; a driver reaches it only through the registers on the bus
 * and the structures it points them at.
 *
 * Stalls (§3.12.2, `stalls.ts`): a stalling fault holds the transaction under a STAG; CMD_RESUME retries
 * it (a full new translation, which may complete it, terminate it or stall it again) or terminates it,
 * CMD_STALL_TERM terminates every held transaction of a StreamID, and clearing SMMUEN terminates them all.
 * The endpoint hears the end through `EndpointPort.completeStalled`. A stall whose record found the Event
 * queue full or disabled is retried when software next moves EVENTQ_CONS or writes CR0.
 */
import {
  type CacheGeometry,
  type EndpointPort,
  type HardwareContext,
  type IommuFault,
  type IommuHardware,
  type ITracer,
  NO_PASID,
  type PageRequest,
  type PageResponse,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  type RegisterFile,
  type TaggedTlb,
  type TranslationRequest,
  type TranslationResult,
  toHex,
} from '@iommukit/core';
import { TableWalkCache } from '@iommukit/pagetables';
import type { CommandOutcome } from './command-queue.js';
import {
  atcInvPages,
  type Command,
  cfgiSteRangeStreamIds,
  RESUME_ACTION,
  tlbiRangePages,
} from './commands.js';
import { type EventRecord, encodeEvent } from './events.js';
import { DEFAULT_IDR_EXTRAS, type Smmuv3Features } from './features.js';
import { WFE_EVENT_LINE } from './idr.js';
import { featuresFromOptions, type Smmuv3Options } from './options.js';
import { encodePriEntry, isStopMarker } from './priq.js';
import { Smmuv3ProgrammingInterface } from './programming-interface.js';
import type { SmmuQueues } from './queues.js';
import { REG, SMMU_MMIO_SIZE } from './regs.js';
import { StallBuffer, type StalledTransaction } from './stalls.js';
import { ANY_ASID, emptyTlbEntry, Smmuv3Tlb, TLB_ALL_KINDS, TLB_NH, TLB_S2 } from './tlb.js';
import { Smmuv3Translator } from './translate.js';

const PRI_RESP_CODES = ['failure', 'invalid', 'success'] as const;

export class Smmuv3Hardware implements IommuHardware {
  readonly instance: string;
  readonly mmio: { readonly base: bigint; readonly size: number };
  readonly options: Smmuv3Options;
  readonly features: Smmuv3Features;
  readonly regs: RegisterFile;
  readonly queues: SmmuQueues;
  readonly tlb: Smmuv3Tlb;
  /** Table descriptors cached by stage (tagged as the TLB, tlb.ts); undefined when walkCacheEntries is 0. */
  readonly walkCaches: { readonly s1: TableWalkCache; readonly s2: TableWalkCache } | undefined;
  readonly translator: Smmuv3Translator;
  /** Transactions held by stalling faults. */
  readonly stalls: StallBuffer;
  private readonly endpoints = new Map<number, EndpointPort>();
  private readonly tracer: ITracer;
  private readonly programming: Smmuv3ProgrammingInterface;
  private readonly tableReads;

  constructor(context: HardwareContext<Smmuv3Options>) {
    this.instance = context.instance;
    this.options = context.options;
    this.features = featuresFromOptions(context.options);
    this.tracer = context.tracer;
    const { tlbEntries, tlbWays, walkCacheEntries, walkCacheWays } = this.options;
    // Every cache of the SMMU follows the TLB's replacement policy and the instance's seed.
    const geometry = (entries: number, ways: number): CacheGeometry => ({
      sets: entries / ways,
      ways,
      policy: this.options.tlbReplacement,
      seed: context.seed,
    });
    // Stryker disable next-line StringLiteral: the name is only in geometry errors, which the options schema rules out
    this.tlb = new Smmuv3Tlb(geometry(tlbEntries, tlbWays), 'tlb', emptyTlbEntry);
    const walkGeometry = geometry(walkCacheEntries, walkCacheWays);
    this.walkCaches =
      walkCacheEntries > 0
        ? {
            // Stryker disable next-line StringLiteral: see the TLB's name
            s1: new TableWalkCache(walkGeometry, 'stage-1 walk cache'),
            // Stryker disable next-line StringLiteral: see the TLB's name
            s2: new TableWalkCache(walkGeometry, 'stage-2 walk cache'),
          }
        : undefined;
    this.stalls = new StallBuffer(this.options.stallMax);
    const counter = context.bus.counter(`hw:${context.instance}`);
    this.tableReads = counter;
    this.programming = new Smmuv3ProgrammingInterface({
      features: this.features,
      options: this.options,
      bus: context.bus,
      counter,
      execute: (command) => this.execute(command),
      ...(this.features.wiredIrqs ? { irq: (name: string) => context.irq(name) } : {}),
      ...(context.msi ? { msiDeviceId: context.msi.deviceId } : {}),
      onCr0Written: (state) => {
        if (!state.smmuEnabled) for (const held of this.stalls.takeAll()) this.terminateStalled(held);
        else this.retryUnrecordedStalls();
      },
      onEventqConsumed: () => this.retryUnrecordedStalls(),
      // IDR0.SEV: the wake-up events go out on the system's event signal, which the PEs' WFE waits for.
      onWakeup: () => context.irq(WFE_EVENT_LINE).raise(),
    });
    this.regs = this.programming.regs;
    this.queues = this.programming.queues;
    this.translator = new Smmuv3Translator({
      instance: context.instance,
      bus: context.bus,
      counter,
      tracer: context.tracer,
      features: this.features,
      idr: DEFAULT_IDR_EXTRAS,
      tlb: this.tlb,
      walkCaches: this.walkCaches,
      configCache: geometry(this.options.configCacheEntries, this.options.configCacheWays),
      state: () => this.programming.state,
      recordEvent: (record) => this.queues.eventq.record(encodeEvent(record)).recorded,
      holdStall: (request, record, fault, stallId) => this.holdStall(request, record, fault, stallId),
    });
    this.mmio = { base: context.base, size: SMMU_MMIO_SIZE };
    context.bus.addMmio(context.instance, context.base, SMMU_MMIO_SIZE, this.regs);
  }

  translate(request: TranslationRequest): TranslationResult {
    return this.translator.translate(request);
  }

  atsTranslate(request: TranslationRequest): TranslationResult {
    return this.translator.atsTranslate(request);
  }

  /**
   * A PRI page request (§8): queued in the PRI queue. One the queue cannot take is answered at once, as
   * §8.1–8.2 say: while the queue is disabled (PRIQEN or SMMUEN 0) or has an abort error, every request
   * gets Response Failure without a PASID; in an overflow only a Last request gets an answer, Success —
   * with its PASID when STE.PPAR asks (IDR3.PPS is 0), or Response Failure without a PASID when the STE
   * cannot be checked. A Stop PASID marker is never answered. Exec and Priv travel in the PASID prefix,
   * so a request without a PASID records them as 0.
   */
  pageRequest(streamId: number, request: PageRequest): void {
    if (!this.features.pri) return;
    const ssv = request.pasid !== NO_PASID;
    const entry = {
      streamId,
      ssv,
      substreamId: ssv ? request.pasid : 0,
      read: (request.access & PERM_READ) !== 0,
      write: (request.access & PERM_WRITE) !== 0,
      exec: ssv && (request.access & PERM_EXEC) !== 0,
      priv: ssv && (request.access & PERM_PRIV) !== 0,
      last: request.last,
      prgIndex: request.groupIndex,
      addressPage: Number(request.iova >> 12n),
    };
    const outcome = this.queues.priq.record(encodePriEntry(entry));
    if (this.tracer.enabled)
      this.trace(
        'priq.record',
        `page request stream ${toHex(streamId)} IOVA ${toHex(request.iova)} group ${request.groupIndex}${outcome.recorded ? '' : ` dropped (${outcome.reason})`}`,
      );
    if (outcome.recorded || isStopMarker(entry)) return;
    const overflow = outcome.reason === 'full' || outcome.reason === 'overflow-active';
    if (overflow && !request.last) return;
    const response = overflow
      ? this.overflowResponse(streamId, request)
      : { pasid: NO_PASID, groupIndex: request.groupIndex, code: 'failure' as const };
    if (this.tracer.enabled)
      this.trace('pri.autoresponse', `automatic PRG response group ${request.groupIndex}: ${response.code}`);
    this.endpoints.get(streamId)?.pageResponse(response);
  }

  /** The automatic response to a Last request lost to a PRI queue overflow (§8.1). */
  private overflowResponse(streamId: number, request: PageRequest): PageResponse {
    const groupIndex = request.groupIndex;
    if (request.pasid === NO_PASID) return { pasid: NO_PASID, groupIndex, code: 'success' };
    const ste = this.translator.steForResponse(streamId);
    if (!ste) return { pasid: NO_PASID, groupIndex, code: 'failure' };
    return { pasid: ste.ppar ? request.pasid : NO_PASID, groupIndex, code: 'success' };
  }

  /** Records a stall event (Stall = 1, a free STAG) and holds the transaction (see the module comment). */
  private holdStall(
    request: TranslationRequest,
    record: EventRecord,
    fault: IommuFault,
    stallId: number | undefined,
  ): { id: number; recorded: boolean } | undefined {
    const stag = this.stalls.freeStag();
    // STALL_MAX transactions held already: this one is terminated instead (Stall = 0), as §3.12 permits.
    if (stag === undefined) return undefined;
    // A stall record that does not fit is held back, not dropped into an overflow (§7.4).
    const words = encodeEvent({ ...record, stall: true, stag });
    const recorded = this.queues.eventq.record(words, { stall: true }).recorded;
    const id = stallId ?? this.stalls.newId();
    this.stalls.hold({ id, request, fault: { ...fault, recorded }, stag: recorded ? stag : undefined });
    return { id, recorded };
  }

  /** CMD_RESUME(Retry): the transaction as if it had just arrived; its endpoint hears how it ended. */
  private retryStalled(t: StalledTransaction): void {
    const result = this.translator.translate(t.request, t.id);
    if (!result.ok && result.stallId === t.id) return; // stalled again, still held
    this.endpoints.get(t.request.streamId)?.completeStalled(t.id, result);
  }

  /** CMD_RESUME(Terminate), CMD_STALL_TERM, SMMUEN = 0: the transaction aborts with its fault. */
  private terminateStalled(t: StalledTransaction): void {
    this.endpoints.get(t.request.streamId)?.completeStalled(t.id, { ok: false, fault: t.fault });
  }

  connectEndpoint(streamId: number, port: EndpointPort): void {
    this.endpoints.set(streamId, port);
  }

  disconnectEndpoint(streamId: number): void {
    this.endpoints.delete(streamId);
  }

  identify(): Readonly<Record<string, string>> {
    const names = ['IDR0', 'IDR1', 'IDR2', 'IDR3', 'IDR4', 'IDR5', 'IIDR', 'AIDR'] as const;
    return Object.fromEntries(names.map((n) => [n, toHex(this.regs.get(REG[n]))]));
  }

  stats(): Readonly<Record<string, number>> {
    const t = this.translator;
    return {
      tlbHits: this.tlb.hits,
      tlbMisses: this.tlb.misses,
      tlbEvictions: this.tlb.evictions,
      s1WalkCacheHits: this.walkCaches?.s1.entries.hits ?? 0,
      s1WalkCacheMisses: this.walkCaches?.s1.entries.misses ?? 0,
      s2WalkCacheHits: this.walkCaches?.s2.entries.hits ?? 0,
      s2WalkCacheMisses: this.walkCaches?.s2.entries.misses ?? 0,
      steCacheHits: t.steCache.hits,
      steCacheMisses: t.steCache.misses,
      cdCacheHits: t.cdCache.hits,
      cdCacheMisses: t.cdCache.misses,
      walks: t.walks,
      tableReads: this.tableReads.reads,
      stalled: this.stalls.size,
      ...this.queues.stats(),
    };
  }

  /**
   * A TLBI by address (§4.4.1.1): one address (any entry size) when TG == 0, else the range TG, NUM and
   * SCALE describe.
   */
  private invalidateRange(
    kinds: number,
    vmid: number,
    asid: number,
    command: { addressPage: number; num: number; scale: number; tg: number; leaf: boolean },
  ): number {
    const range = tlbiRangePages(command);
    const start = (range?.firstPage ?? command.addressPage) * 4096;
    const size = (range?.pageCount ?? 1) * 4096;
    // Leaf = 1 need only reach last-level entries (§4.4.2): the walk caches keep their tables.
    const caches = command.leaf ? [this.tlb] : this.tlbAndWalkCaches();
    return sum(caches, (c) => c.invalidateRange(kinds, vmid, asid, start, size));
  }

  /** Every cache TLB maintenance reaches: the TLB and the walk caches, which share its tags (tlb.ts). */
  private tlbAndWalkCaches(): readonly TaggedTlb<object>[] {
    const w = this.walkCaches;
    return w ? [this.tlb, w.s1.entries, w.s2.entries] : [this.tlb];
  }

  /** Runs one command from the command queue (§4): invalidations and responses. */
  private execute(command: Command): CommandOutcome {
    const t = this.translator;
    let dropped = 0;
    switch (command.op) {
      case 'CFGI_STE':
        dropped = this.dropConfig(command.streamId, 1);
        break;
      case 'CFGI_STE_RANGE': {
        const { first, count } = cfgiSteRangeStreamIds(command.streamId, command.range);
        dropped = this.dropConfig(first, count);
        break;
      }
      case 'CFGI_ALL':
        dropped = t.steCache.clear() + t.cdCache.clear();
        break;
      case 'CFGI_CD':
        dropped = t.cdCache.delete(command.streamId, command.substreamId) ? 1 : 0;
        break;
      case 'CFGI_CD_ALL':
        dropped = t.cdCache.deleteFirst(command.streamId);
        break;
      case 'TLBI_NH_ALL':
        dropped = sum(this.tlbAndWalkCaches(), (c) => c.invalidateDomain(TLB_NH, command.vmid));
        break;
      case 'TLBI_NH_ASID':
        dropped = sum(this.tlbAndWalkCaches(), (c) => c.invalidateSpace(TLB_NH, command.vmid, command.asid));
        break;
      case 'TLBI_NH_VA':
        dropped = this.invalidateRange(TLB_NH, command.vmid, command.asid, command);
        break;
      case 'TLBI_NH_VAA':
        dropped = this.invalidateRange(TLB_NH, command.vmid, ANY_ASID, command);
        break;
      case 'TLBI_S12_VMALL':
        dropped = sum(this.tlbAndWalkCaches(), (c) => c.invalidateDomain(TLB_ALL_KINDS, command.vmid));
        break;
      case 'TLBI_S2_IPA':
        dropped = this.invalidateRange(TLB_S2, command.vmid, ANY_ASID, command);
        break;
      case 'TLBI_NSNH_ALL':
        dropped = sum(this.tlbAndWalkCaches(), (c) => c.clear());
        break;
      case 'ATC_INV': {
        // IGNORED while SMMUEN == 0 (§4.5.1). Without SSV the PCIe request has no PASID prefix and hits
        // every entry in the range, with or without PASID; Global (SSV == 1) also hits global entries of
        // other PASIDs, which the ATC does not tell apart, so it invalidates every PASID in the range.
        if (!this.programming.state.smmuEnabled) break;
        const pages = atcInvPages(command);
        const port = this.endpoints.get(command.streamId);
        const size = command.size >= 52 ? 1n << 64n : BigInt(pages.pageCount) * 4096n;
        port?.invalidateAtc(
          command.ssv && !command.global ? command.substreamId : undefined,
          BigInt(pages.firstPage) * 4096n,
          size,
        );
        break;
      }
      case 'RESUME': {
        const held = this.stalls.take(command.streamId, command.stag);
        if (!held) {
          // No transaction with this StreamID and STAG: the command has no effect (§4.6.2).
          if (this.tracer.enabled)
            this.trace(
              'cmd',
              `CMD_RESUME: no stalled transaction ${toHex(command.stag)} on stream ${toHex(command.streamId)}`,
            );
          return { ok: true };
        }
        if (command.action === RESUME_ACTION.RETRY) this.retryStalled(held);
        else this.terminateStalled(held);
        dropped = 1;
        break;
      }
      case 'STALL_TERM':
        for (const held of this.stalls.takeStream(command.streamId)) {
          this.terminateStalled(held);
          dropped++;
        }
        break;
      case 'PRI_RESP':
        // IGNORED while SMMUEN == 0 (§4.5.2).
        if (!this.programming.state.smmuEnabled) break;
        this.endpoints.get(command.streamId)?.pageResponse({
          pasid: command.ssv ? command.substreamId : NO_PASID,
          groupIndex: command.prgIndex,
          // Resp 0b11 is reserved: the command was CERROR_ILL and never reaches here (command-codec.ts).
          code: PRI_RESP_CODES[command.resp]!,
        });
        break;
      default:
        // Prefetches are hints; CMD_SYNC completion is the queue's; EL2 and EL3 are not modelled.
        break;
    }
    if (this.tracer.enabled)
      this.trace(
        'cmd',
        `CMD_${command.op}${describe(command)}${dropped ? `: ${dropped} entries dropped` : ''}`,
      );
    return { ok: true };
  }

  /**
   * CFGI_STE(_RANGE): the STEs of `count` StreamIDs from `first` and every CD cached through them. One pass
   * over each cache, whatever the range (CFGI_ALL is a range of 2^32).
   */
  private dropConfig(first: number, count: number): number {
    const t = this.translator;
    const inRange = (sid: number) => sid >= first && sid - first < count;
    return t.steCache.deleteWhere(inRange) + t.cdCache.deleteWhere(inRange);
  }

  /** Stalls whose record did not fit are retried once the Event queue may take records (§3.12.2). */
  private retryUnrecordedStalls(): void {
    for (const held of this.stalls.takeUnrecorded()) this.retryStalled(held);
  }

  /** Callers check `tracer.enabled` first, so no message is built while nobody listens. */
  private trace(name: string, message: string): void {
    this.tracer.trace('hw', this.instance, name, message);
  }
}

/** The input range a TLBI names: its range fields, or the single address (any entry containing it). */
function describe(command: Command): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(command)) {
    if (key === 'op' || value === false || value === 0) continue;
    parts.push(`${key}=${typeof value === 'number' ? toHex(value) : String(value)}`);
  }
  return parts.length ? ` ${parts.join(' ')}` : '';
}

function sum<T>(items: readonly T[], count: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += count(item);
  return total;
}
