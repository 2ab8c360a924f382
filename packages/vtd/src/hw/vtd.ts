/**
 * One VT-d DMA-remapping unit (a DRHD), as a driver sees it: the register window (regs.ts) and everything
 * behind it — the global commands and what they latch (global-command.ts), the translation pipeline and its
 * caches (translate.ts, caches.ts), primary fault logging (fault-recording.ts), register-based and queued
 * invalidation (register-invalidation.ts, invalidation-queue.ts), the page request queue
 * (page-request-queue.ts) and interrupt remapping (interrupt-remapping.ts). Its own interrupts — fault,
 * invalidation completion and page request events — are MSIs (event-interrupt.ts) it writes into the
 * interrupt window, where the platform's interrupt controller takes them; they carry the unit's own
 * requester ID and are never remapped (§5.1.7: the unit's interrupts are not subject to remapping).
 *
 * Endpoints connect for device-TLB invalidations and page group responses.
 */
import {
  type AccessCounter,
  type CacheGeometry,
  type EndpointPort,
  type HardwareContext,
  type IommuHardware,
  NO_PASID,
  type PageRequest,
  PERM_READ,
  RegisterFile,
  type TranslationRequest,
  type TranslationResult,
  toHex,
} from '@iommukit/core';
import { VtdCaches } from './caches.js';
import { type ContextConfig, contextDid, type PasidLookup, pasidDid } from './config-fetch.js';
import { EventInterrupt, type EventRegisters } from './event-interrupt.js';
import { FR } from './fault-reasons.js';
import { FaultRecorder, interruptFaultInfo } from './fault-recording.js';
import type { VtdFeatures } from './features.js';
import { GlobalCommand } from './global-command.js';
import { VtdInterruptRemapping } from './interrupt-remapping.js';
import type { InvalidInvDescriptor } from './inv-descriptors.js';
import type { CacheInvDescriptor, InvalidationTargets } from './invalidation.js';
import { InvalidationQueue } from './invalidation-queue.js';
import { featuresFromOptions, type VtdOptions } from './options.js';
import { PageRequestQueue } from './page-request-queue.js';
import { RegisterInvalidation } from './register-invalidation.js';
import { FSTS_IQE, GSTS_IRES, GSTS_TES, REG, TTM, VTD_MMIO_SIZE, vtdRegisterTable } from './regs.js';
import { checkScalableContextRequest } from './root-context.js';
import { type VtdTranslationState, VtdTranslator } from './translate.js';

/**
 * What a vIOMMU built on the model observes (the model on a guest's bus, programmed by the guest's driver):
 * the guest's queued invalidations, to forward, and changes of TE or the latched root table.
 */
export interface VtdHardwareHooks {
  /** Each queued descriptor after the unit performed it; a refusal stops the queue there with IQE. */
  forwardInvalidation?(d: CacheInvDescriptor): InvalidInvDescriptor | undefined;
  /** GCMD.TE or SRTP changed what translations read. */
  translationChanged?(state: VtdTranslationState): void;
}

export class VtdHardware implements IommuHardware {
  readonly instance: string;
  readonly mmio: { readonly base: bigint; readonly size: number };
  readonly features: VtdFeatures;
  readonly options: VtdOptions;
  readonly regs: RegisterFile;
  readonly caches: VtdCaches<ContextConfig, PasidLookup>;
  readonly translator: VtdTranslator;
  readonly faults: FaultRecorder;
  readonly global: GlobalCommand;
  readonly registerInvalidation: RegisterInvalidation;
  readonly invalidationQueue: InvalidationQueue | undefined;
  readonly pageRequests: PageRequestQueue | undefined;
  readonly interruptRemapping: VtdInterruptRemapping | undefined;
  private readonly endpoints = new Map<number, EndpointPort>();
  private readonly tableReads: AccessCounter;

  constructor(context: HardwareContext<VtdOptions>, hooks: VtdHardwareHooks = {}) {
    this.instance = context.instance;
    this.options = context.options;
    this.features = featuresFromOptions(context.options);
    const f = this.features;
    const o = this.options;
    const { bus } = context;
    this.regs = new RegisterFile(VTD_MMIO_SIZE, vtdRegisterTable(f));
    this.tableReads = bus.counter(`hw:${context.instance}`);
    const requesterId = context.msi?.deviceId ?? 0;
    const event = (at: EventRegisters) =>
      new EventInterrupt(this.regs, at, bus, this.tableReads, requesterId);
    const upper = (offset: number) => (f.extendedInterruptMode ? offset : undefined);
    // Every cache follows one replacement policy and the instance's seed.
    const geometry = (entries: number, ways: number): CacheGeometry => ({
      sets: entries / ways,
      ways,
      policy: o.cacheReplacement,
      seed: context.seed,
    });
    this.caches = new VtdCaches<ContextConfig, PasidLookup>(
      {
        iotlb: geometry(o.iotlbEntries, o.iotlbWays),
        context: geometry(o.contextCacheEntries, o.contextCacheWays),
        pasid: geometry(o.pasidCacheEntries, o.pasidCacheWays),
        pagingStructure:
          o.pagingStructureCacheEntries > 0
            ? geometry(o.pagingStructureCacheEntries, o.pagingStructureCacheWays)
            : undefined,
      },
      { context: contextDid, pasid: pasidDid },
    );
    const trace = { tracer: context.tracer, source: context.instance };
    this.faults = new FaultRecorder(
      this.regs,
      f,
      event({ control: REG.FECTL, data: REG.FEDATA, address: REG.FEADDR, upperAddress: upper(REG.FEUADDR) }),
      trace,
    );
    this.interruptRemapping = f.interruptRemapping
      ? new VtdInterruptRemapping({
          bus,
          counter: this.tableReads,
          features: f,
          iecGeometry: geometry(o.iecEntries, o.iecWays),
          recordFault: ({ sid, index, reason }) =>
            this.faults.record({
              sid,
              address: index === undefined ? 0 : interruptFaultInfo(index),
              reason,
              write: true,
              pasid: undefined,
              // Stryker disable next-line BooleanLiteral: without a PASID, FRCD.EXE is RsvdZ (fault-recording.ts writes 0)
              execute: false,
              // Stryker disable next-line BooleanLiteral: without a PASID, FRCD.PRIV is RsvdZ (fault-recording.ts writes 0)
              privileged: false,
            }),
          tracer: context.tracer,
          instance: context.instance,
        })
      : undefined;
    this.translator = new VtdTranslator({
      instance: context.instance,
      bus,
      counter: this.tableReads,
      tracer: context.tracer,
      features: f,
      caches: this.caches,
      state: () => this.global.state,
      recordFault: (report) => this.faults.record(report),
    });
    const targets: InvalidationTargets = {
      caches: this.caches,
      endpoint: (sid) => this.endpoints.get(sid),
      iec: {
        // Stryker disable next-line OptionalChaining: without ECAP.IR the IEC descriptor is refused (invalidation.ts), never performed
        invalidateAll: () => this.interruptRemapping?.invalidateAll(),
        // Stryker disable next-line OptionalChaining: without ECAP.IR the IEC descriptor is refused (invalidation.ts), never performed
        invalidateIndex: (index, mask) => this.interruptRemapping?.invalidateIndex(index, mask),
      },
      scalable: () => this.global.state.ttm === TTM.SCALABLE,
      tracer: {
        get enabled() {
          return context.tracer.enabled;
        },
        trace: (name, message) => context.tracer.trace('hw', context.instance, name, message),
      },
      ...(hooks.forwardInvalidation ? { forward: (d) => hooks.forwardInvalidation!(d) } : {}),
    };
    this.registerInvalidation = new RegisterInvalidation({ regs: this.regs, features: f, targets });
    this.invalidationQueue = f.queuedInvalidation
      ? new InvalidationQueue({
          regs: this.regs,
          bus,
          counter: this.tableReads,
          features: f,
          targets,
          status: this.faults,
          completion: event({
            control: REG.IECTL,
            data: REG.IEDATA,
            address: REG.IEADDR,
            upperAddress: upper(REG.IEUADDR),
          }),
          requesterId,
        })
      : undefined;
    this.pageRequests = f.pageRequests
      ? new PageRequestQueue(
          this.regs,
          bus,
          this.tableReads,
          f,
          event({
            control: REG.PECTL,
            data: REG.PEDATA,
            address: REG.PEADDR,
            upperAddress: upper(REG.PEUADDR),
          }),
          (sid, response) => this.endpoints.get(sid)?.pageResponse(response),
          trace,
        )
      : undefined;
    // Software clearing FSTS.IQE lets the queue go on from the descriptor it stopped at.
    this.faults.onStatusCleared((bits) => {
      // Stryker disable next-line OptionalChaining: FSTS.IQE is never set on a unit without queued invalidation
      if ((bits & FSTS_IQE) !== 0) this.invalidationQueue?.process();
    });
    this.global = new GlobalCommand(this.regs, f, {
      translation: () => {
        this.resetFaultIndexWhenIdle();
        hooks.translationChanged?.(this.global.state);
      },
      rootTableSet: (state) => {
        // With CAP.ESRTPS, SRTP also invalidates what the old root table left in the caches.
        if (f.srtpInvalidates) {
          this.caches.invalidateContextGlobal();
          this.caches.invalidatePasidGlobal();
          this.caches.invalidateIotlbGlobal();
        }
        hooks.translationChanged?.(state);
      },
      // Stryker disable next-line OptionalChaining: GCMD.QIE is ignored without queued invalidation (global-command.ts)
      queuedInvalidation: (on) => this.invalidationQueue?.setEnabled(on),
      // Stryker disable next-line OptionalChaining: GCMD.SIRTP is ignored without interrupt remapping (global-command.ts)
      interruptTableSet: (lo, hi) => this.interruptRemapping?.latchTable(lo, hi),
      interruptRemapping: (on) => {
        // Stryker disable next-line OptionalChaining: GCMD.IRE is ignored without interrupt remapping (global-command.ts)
        this.interruptRemapping?.setEnabled(on);
        this.resetFaultIndexWhenIdle();
      },
      // Stryker disable next-line OptionalChaining: GCMD.CFI is ignored without interrupt remapping (global-command.ts)
      compatibilityFormat: (on) => this.interruptRemapping?.setCompatibilityAllowed(on),
    });
    this.mmio = { base: context.base, size: VTD_MMIO_SIZE };
    bus.addMmio(context.instance, context.base, VTD_MMIO_SIZE, this.regs);
  }

  /** With both translation and interrupt remapping off, the fault recording index restarts at 0 (§7.2.1). */
  private resetFaultIndexWhenIdle(): void {
    if ((this.regs.get(REG.GSTS) & (GSTS_TES | GSTS_IRES)) === 0) this.faults.resetIndex();
  }

  translate(request: TranslationRequest): TranslationResult {
    return this.translator.translate(request);
  }

  atsTranslate(request: TranslationRequest): TranslationResult {
    return this.translator.atsTranslate(request);
  }

  /**
   * A PRI page request (§7.4.1): refused and answered Invalid in legacy mode (0x32) or through a context
   * entry without PRE (0x47), otherwise queued in the page request queue.
   */
  pageRequest(streamId: number, request: PageRequest): void {
    const queue = this.pageRequests;
    if (queue === undefined) return;
    const state = this.global.state;
    const scalable = state.ttm === TTM.SCALABLE;
    let reason = scalable ? 0 : FR.SM_TTM0_PAGE_REQUEST;
    if (scalable) {
      const context = this.translator.config.context(streamId, state.rootTable, true);
      if (context.kind === 'fault') reason = context.reason;
      else if (context.kind === 'scalable') {
        const pasid = request.pasid === NO_PASID ? undefined : request.pasid;
        reason = checkScalableContextRequest(context.entry, {
          pasid,
          translationRequest: false,
          pageRequest: true,
        });
      }
    }
    if (reason === 0) {
      queue.request(streamId, request);
      return;
    }
    this.faults.record({
      sid: streamId,
      address: Number(request.iova & ~0xfffn),
      reason,
      // Stryker disable next-line ConditionalExpression,EqualityOperator: with a requestKind, FRCD.T encodes the kind, not the access (fault-recording.ts)
      write: (request.access & PERM_READ) === 0,
      // Stryker disable next-line StringLiteral: fault-recording.ts encodes every kind but 'atomic' as a page request (T2 = 1, T = 0)
      requestKind: 'page-request',
      pasid: request.pasid === NO_PASID ? undefined : request.pasid,
      execute: false,
      privileged: false,
    });
    if (request.last)
      this.endpoints.get(streamId)?.pageResponse({
        pasid: request.pasid,
        groupIndex: request.groupIndex,
        code: 'invalid',
      });
  }

  connectEndpoint(streamId: number, port: EndpointPort): void {
    this.endpoints.set(streamId, port);
  }

  disconnectEndpoint(streamId: number): void {
    this.endpoints.delete(streamId);
  }

  identify(): Readonly<Record<string, string>> {
    const reg64 = (offset: number) => toHex(this.regs.get(offset + 4) * 2 ** 32 + this.regs.get(offset));
    return { VER: toHex(this.regs.get(REG.VER)), CAP: reg64(REG.CAP), ECAP: reg64(REG.ECAP) };
  }

  stats(): Readonly<Record<string, number>> {
    const q = this.invalidationQueue;
    return {
      ...this.caches.stats(),
      walks: this.translator.walker.walks,
      tableReads: this.tableReads.reads,
      translationFaults: this.translator.faults,
      ...this.faults.stats(),
      ...(q ? { invalidationDescriptors: Object.values(q.performed).reduce((a, b) => a + b, 0) } : {}),
      registerInvalidations:
        this.registerInvalidation.contextPerformed + this.registerInvalidation.iotlbPerformed,
      ...(this.pageRequests?.stats() ?? {}),
      ...(this.interruptRemapping?.stats() ?? {}),
      globalCommands: this.global.commands,
    };
  }
}
