/**
 * One AMD IOMMU, as a driver sees it: the MMIO register window (regs.ts) and everything behind it — the
 * device table and the translation pipeline with its caches (device-table.ts, translate.ts, caches.ts), the
 * command buffer (command-buffer.ts), the event and PPR logs (event-log.ts, ppr-log.ts), the unit's own
 * interrupts (unit-interrupts.ts) and interrupt remapping (interrupt-remapping.ts). Control-register writes
 * reach each part that reacts to them; commands reach the caches and the endpoints (device IOTLB
 * invalidations as ATS invalidations, COMPLETE_PPR_REQUEST as PRI responses).
 *
 * Page requests (PCIe PRI) from endpoints go into the PPR log when the DTE allows them (DTE.PPR); one the
 * log cannot take is answered at once with Response Failure, so no device waits forever. A request from a
 * device whose DTE lacks PPR is INVALID_PPR_REQUEST, answered Invalid Request. No stored source gives the
 * unit's checks before logging; these are the model's choices, stated in docs/vendors/amd-vi.md.
 */
import {
  type AccessCounter,
  type EndpointPort,
  type HardwareContext,
  type IommuHardware,
  NO_PASID,
  type PageRequest,
  type PageResponseCode,
  PERM_EXEC,
  PERM_PRIV,
  PERM_WRITE,
  RegisterFile,
  type TranslationRequest,
  type TranslationResult,
  toHex,
} from '@iommukit/core';
import { AmdCaches } from './caches.js';
import { efr2Words, efrWords } from './capabilities.js';
import { CommandBuffer, type CommandTargets } from './command-buffer.js';
import type { AmdCommand } from './commands.js';
import { type CachedDte, DTE_FETCH } from './device-table.js';
import { decodeDte } from './dte.js';
import { EventLog } from './event-log.js';
import {
  type AmdEvent,
  EVENT_FLAG,
  HARDWARE_ERROR_TYPE,
  PPR_FLAG,
  PPR_LOG_TYPE,
  PPR_TAG_LAST_PAGE,
} from './events.js';
import type { AmdFeatures } from './features.js';
import { AmdInterruptRemapping, type InterruptDteFetch } from './interrupt-remapping.js';
import { type AmdOptions, featuresFromOptions } from './options.js';
import { PprLog } from './ppr-log.js';
import { AMD_MMIO_SIZE, amdRegisterTable, CTRL_IOMMU_EN, REG, STATUS_COM_WAIT_INT } from './regs.js';
import { AmdTranslator } from './translate.js';
import { UnitInterrupts } from './unit-interrupts.js';

/** What a vIOMMU built on the model observes: each command the unit performed, to forward or refuse. */
export interface AmdHardwareHooks {
  /** A refusal (its reason) stops the command buffer there with ILLEGAL_COMMAND_ERROR. */
  forwardCommand?(command: AmdCommand, address: number): string | undefined;
}

/** PPR status codes of COMPLETE_PPR_REQUEST (PCIe page request responses; Linux PPR_SUCCESS/INVALID/FAILURE). */
const PPR_STATUS_SUCCESS = 0x0;
const PPR_STATUS_INVALID = 0x1;

export class AmdIommuHardware implements IommuHardware {
  readonly instance: string;
  readonly mmio: { readonly base: bigint; readonly size: number };
  readonly features: AmdFeatures;
  readonly options: AmdOptions;
  readonly regs: RegisterFile;
  readonly caches: AmdCaches<CachedDte>;
  readonly translator: AmdTranslator;
  readonly interrupts: UnitInterrupts;
  readonly eventLog: EventLog;
  readonly pprLog: PprLog | undefined;
  readonly commandBuffer: CommandBuffer;
  readonly interruptRemapping: AmdInterruptRemapping;
  pageRequestsAnswered = 0;
  private readonly endpoints = new Map<number, EndpointPort>();
  private readonly counter: AccessCounter;

  constructor(context: HardwareContext<AmdOptions>, hooks: AmdHardwareHooks = {}) {
    this.instance = context.instance;
    this.options = context.options;
    const f = featuresFromOptions(context.options);
    this.features = f;
    const { bus, tracer, instance } = context;
    this.regs = new RegisterFile(AMD_MMIO_SIZE, amdRegisterTable(f));
    this.mmio = { base: context.base, size: AMD_MMIO_SIZE };
    bus.addMmio(instance, context.base, AMD_MMIO_SIZE, this.regs);
    this.counter = bus.counter(`hw:${instance}`);
    const counter = this.counter;
    const requesterId = context.msi?.deviceId ?? 0;
    const { caches } = f;
    const geometry = (size: { entries: number; ways: number }) => ({
      sets: size.entries / size.ways,
      ways: size.ways,
      policy: caches.replacement,
      seed: context.seed,
    });
    this.caches = new AmdCaches<CachedDte>({
      deviceTable: geometry(caches.deviceTable),
      // GCR3 entries are cached per device and PASID, as many as DTEs.
      gcr3: geometry(caches.deviceTable),
      iotlb: geometry(caches.iotlb),
      pageDirectory: caches.pageDirectory.entries > 0 ? geometry(caches.pageDirectory) : undefined,
    });
    // XT interrupts (IntCapXTEn) go to the platform's interrupt controller as remapped interrupts do.
    const controller = context.msi?.controller;
    const delivery = controller?.deliverRemapped
      ? { deliverRemapped: controller.deliverRemapped.bind(controller) }
      : undefined;
    this.interrupts = new UnitInterrupts({
      regs: this.regs,
      bus,
      counter,
      requesterId,
      ...(delivery ? { delivery } : {}),
      tracer,
      instance,
    });
    this.eventLog = new EventLog({
      regs: this.regs,
      bus,
      counter,
      interrupts: this.interrupts,
      tracer,
      instance,
    });
    const logEvent = (event: AmdEvent) => this.eventLog.record(event);
    this.pprLog = f.pageRequests
      ? new PprLog({
          regs: this.regs,
          bus,
          counter,
          features: f,
          interrupts: this.interrupts,
          tracer,
          instance,
        })
      : undefined;
    this.translator = new AmdTranslator({
      instance,
      bus,
      counter,
      tracer,
      regs: this.regs,
      features: f,
      caches: this.caches,
      logEvent,
    });
    this.interruptRemapping = new AmdInterruptRemapping({
      bus,
      counter,
      features: f,
      cacheGeometry: geometry(caches.interruptRemapping),
      dte: (deviceId) => this.interruptDte(deviceId),
      logEvent,
      tracer,
      instance,
    });
    this.commandBuffer = new CommandBuffer({
      regs: this.regs,
      bus,
      counter,
      features: f,
      requesterId,
      targets: this.commandTargets(),
      logEvent,
      completionInterrupt: () => this.interrupts.signal(STATUS_COM_WAIT_INT),
      ...(hooks.forwardCommand ? { forward: hooks.forwardCommand } : {}),
      tracer,
      instance,
    });
    this.regs.onWrite(REG.CONTROL, (value, old) => this.controlChanged(value, old));
    this.regs.onWrite(REG.CONTROL + 4, () => {
      this.translator.registersChanged();
      this.interruptRemapping.applyControl(this.regs.get(REG.CONTROL), this.regs.get(REG.CONTROL + 4));
    });
    // The other registers a translation reads: the device table and the exclusion range.
    for (const offset of [REG.DEV_TBL_BASE, REG.EXCL_BASE, REG.EXCL_LIMIT])
      for (const half of [offset, offset + 4])
        this.regs.onWrite(half, () => this.translator.registersChanged());
  }

  translate(request: TranslationRequest): TranslationResult {
    return this.translator.translate(request);
  }

  atsTranslate(request: TranslationRequest): TranslationResult {
    return this.translator.atsTranslate(request);
  }

  pageRequest(streamId: number, request: PageRequest): void {
    // A unit that is off takes no page requests: the device gets Response Failure.
    if ((this.regs.get(REG.CONTROL) & CTRL_IOMMU_EN) === 0) {
      this.answer(streamId, request, 'failure');
      return;
    }
    const entry = this.translator.deviceTable.lookup(streamId);
    const withPasid = request.pasid !== NO_PASID;
    const access = request.access;
    const flags =
      ((access & PERM_WRITE) !== 0 ? PPR_FLAG.WRITE : PPR_FLAG.READ) |
      ((access & PERM_EXEC) !== 0 ? PPR_FLAG.EXEC : 0) |
      (withPasid && (access & PERM_PRIV) === 0 ? PPR_FLAG.US : 0) |
      (withPasid ? PPR_FLAG.GN : 0);
    const address = Number(request.iova);
    const tag = (request.groupIndex & 0x1ff) | (request.last ? PPR_TAG_LAST_PAGE : 0);
    const pasid = withPasid ? request.pasid : 0;
    if (entry === undefined || !entry.dte.v || !entry.dte.ppr) {
      this.eventLog.record({ kind: 'invalid-ppr-request', deviceId: streamId, pasid, tag, flags, address });
      this.answer(streamId, request, 'invalid');
      return;
    }
    const logged = this.pprLog?.request({
      type: PPR_LOG_TYPE.PAGE_REQUEST,
      deviceId: streamId,
      pasid,
      tag,
      flags,
      address,
    });
    if (!logged) this.answer(streamId, request, 'failure');
  }

  connectEndpoint(streamId: number, port: EndpointPort): void {
    this.endpoints.set(streamId, port);
  }

  disconnectEndpoint(streamId: number): void {
    this.endpoints.delete(streamId);
  }

  identify(): Readonly<Record<string, string>> {
    const efr = efrWords(this.features);
    const efr2 = efr2Words(this.features);
    return {
      EFR: toHex(efr.hi * 2 ** 32 + efr.lo),
      EFR2: toHex(efr2.hi * 2 ** 32 + efr2.lo),
    };
  }

  stats(): Readonly<Record<string, number>> {
    return {
      ...this.caches.stats(),
      walks: this.translator.walker.walks,
      gcr3Walks: this.translator.gcr3.walks,
      dteFetches: this.translator.deviceTable.fetches,
      faults: this.translator.faults,
      ...this.eventLog.stats(),
      ...(this.pprLog?.stats() ?? {}),
      ...this.commandBuffer.stats(),
      ...this.interrupts.stats(),
      ...this.interruptRemapping.stats(),
      pageRequestsAnswered: this.pageRequestsAnswered,
    };
  }

  private controlChanged(value: number, old: number): void {
    this.translator.registersChanged();
    this.commandBuffer.controlChanged(value, old);
    this.eventLog.controlChanged(value, old);
    this.pprLog?.controlChanged(value, old);
    this.interrupts.controlChanged(value, old);
    this.interruptRemapping.applyControl(value, this.regs.get(REG.CONTROL + 4));
  }

  /** A page request the unit answers itself (the PPR log never saw it). */
  private answer(streamId: number, request: PageRequest, code: PageResponseCode): void {
    this.pageRequestsAnswered++;
    this.endpoints
      .get(streamId)
      ?.pageResponse({ pasid: request.pasid, groupIndex: request.groupIndex, code });
  }

  /**
   * The DTE an interrupt request uses: its interrupt half is checked by interrupt remapping, so a DTE whose
   * translation half is illegal still serves; a DeviceID beyond the table or an aborted read is logged here,
   * with I = 1.
   */
  private interruptDte(deviceId: number): InterruptDteFetch {
    const table = this.translator.deviceTable;
    const entry = table.lookup(deviceId);
    if (entry !== undefined) return entry;
    if (table.failure === DTE_FETCH.ILLEGAL)
      return { dte: decodeDte(table.lastWords), words: table.lastWords.slice() };
    if (table.failure === DTE_FETCH.ABORTED) {
      const recorded = this.eventLog.record({
        kind: 'dev-tab-hardware-error',
        deviceId,
        flags: EVENT_FLAG.I,
        type: HARDWARE_ERROR_TYPE.MASTER_ABORT,
        address: table.failureAddress,
      });
      return { vendorCode: 'DEV_TAB_HARDWARE_ERROR', recorded };
    }
    const recorded = this.eventLog.record({
      kind: 'io-page-fault',
      deviceId,
      domainOrPasid: 0,
      flags: EVENT_FLAG.I,
      address: 0,
    });
    return { vendorCode: 'IO_PAGE_FAULT', recorded };
  }

  private commandTargets(): CommandTargets {
    const { caches } = this;
    return {
      invalidateDevtabEntry: (deviceId) => {
        caches.invalidateDevice(deviceId);
      },
      invalidateIommuPages: (domainId, pasid, pde, start, size) => {
        if (pasid === undefined) caches.invalidateHostPages(domainId, start, size, pde);
        else caches.invalidateGuestPages(domainId, pasid, start, size, pde);
      },
      invalidateIotlbPages: (deviceId, pasid, start, size) => {
        this.endpoints.get(deviceId)?.invalidateAtc(pasid, BigInt(start), BigInt(size));
      },
      invalidateInterruptTable: (deviceId) => {
        this.interruptRemapping.invalidateDevice(deviceId);
      },
      // Prefetching is a hint: the model's caches fill on demand, so a prefetch changes nothing observable.
      prefetchIommuPages: () => {},
      completePprRequest: (deviceId, pasid, tag, status) => {
        const code: PageResponseCode =
          status === PPR_STATUS_SUCCESS ? 'success' : status === PPR_STATUS_INVALID ? 'invalid' : 'failure';
        this.endpoints
          .get(deviceId)
          ?.pageResponse({ pasid: pasid ?? NO_PASID, groupIndex: tag & 0x1ff, code });
      },
      invalidateAll: () => {
        caches.invalidateAll();
        this.interruptRemapping.invalidateAll();
      },
    };
  }
}
