/**
 * The peripheral page request (PPR) log (AMD IOMMU Specification, pub. 48882 rev 3.x, the PPR log beside
 * §2.5; §3.4 PPR Log Base Address 0038h, Head/Tail Pointer 2030h/2038h, Control.PprLogEn/PprIntEn/PPREn,
 * Status.PPROverflow/PPRInt/PPRLogRun): the page requests (PCIe PRI) devices send, encoded by
 * `encodePprLogEntry` and appended to a {@link LogRing}, for software to answer with COMPLETE_PPR_REQUEST.
 *
 * A request is logged only while Control.PPREn is set and the log runs (PprLogEn with IommuEn, no
 * PPROverflow); Linux `amd_iommu_enable_ppr_log` sets PPREn, programs the log, then PprIntEn and PprLogEn.
 * A logged request sets Status.PPRInt, which raises the PPR interrupt while PprIntEn is set; PPROverflow
 * does too, by analogy with the event log (Linux services PPRInt and PPROverflow together and restarts the
 * log after an overflow with `amd_iommu_restart_ppr_log`, the event log's protocol — see log-ring.ts).
 *
 * A request the log does not take: `request` returns false and the unit decides what the device gets. No
 * source says the unit answers it: the optional PPR auto-response feature (EFR.PprAutoRspSup, Control
 * PprAutoRspEn/PprAutoRspAon, the PPR Log Auto Response register 2080h with its response code; VirtualBox
 * `iommu-amd.h`) exists to answer such requests, which suggests that without it (this model reports
 * PprAutoRspSup 0) they are simply lost and the device's request group stays outstanding. Neither QEMU nor
 * VirtualBox implements the PPR log.
 *
 * Contract: the unit calls {@link PprLog.request} for each page request that passed its DTE checks and
 * forwards its Control write hook to {@link PprLog.controlChanged}; the ring owns the PPR Log Base, Head and
 * Tail write hooks. With the tracer on, each request is one `pprlog.write` or `pprlog.drop` record.
 */
import { type AccessCounter, type ITracer, type MemoryBus, type RegisterFile, toHex } from '@iommukit/core';
import { EVENT_WORDS, encodePprLogEntry, type PprLogEntry } from './events.js';
import type { AmdFeatures } from './features.js';
import { LogRing, PPR_LOG_LAYOUT } from './log-ring.js';
import { CTRL_PPR_EN, REG } from './regs.js';
import type { UnitInterrupts } from './unit-interrupts.js';

export interface PprLogInit {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  /** The counter the unit's log writes are charged to. */
  readonly counter: AccessCounter;
  readonly features: AmdFeatures;
  readonly interrupts: UnitInterrupts;
  readonly tracer: ITracer;
  /** The instance named in trace records (`iommu0`). */
  readonly instance: string;
}

const two = (value: number) => value.toString(16).padStart(2, '0');
const hex = (value: number, digits: number) => `0x${value.toString(16).padStart(digits, '0')}`;

/** One line for a trace, in the spirit of Linux's "PPR logged [...]" lines. */
function describeRequest(entry: PprLogEntry): string {
  const device = `${two(entry.deviceId >>> 8)}:${two((entry.deviceId >>> 3) & 0x1f)}.${entry.deviceId & 7}`;
  return `PPR device=${device} pasid=${hex(entry.pasid, 5)} address=${toHex(entry.address)} flags=${hex(entry.flags, 4)} tag=${hex(entry.tag, 3)}`;
}

/** Why a request was not logged, for traces. */
const DROPPED = {
  disabled: 'PPREn clear',
  stopped: 'PPR log not running or PPROverflow set',
  full: 'PPR log full, PPROverflow set',
  aborted: 'entry write aborted',
} as const;

export class PprLog {
  /** Requests written to the log, and requests it did not take (PPREn clear, log off, full, aborted). */
  logged = 0;
  dropped = 0;
  readonly ring: LogRing;
  private readonly regs: RegisterFile;
  private readonly words = new Uint32Array(EVENT_WORDS);
  private readonly tracer: ITracer;
  private readonly instance: string;

  constructor(init: PprLogInit) {
    if (!init.features.pageRequests) throw new RangeError('the unit has no PPR log (EFR.PPRSup = 0)');
    this.regs = init.regs;
    this.ring = new LogRing({ ...init, layout: PPR_LOG_LAYOUT });
    this.tracer = init.tracer;
    this.instance = init.instance;
  }

  /**
   * Logs a device's page request: true when its entry was written, false when the log did not take it
   * (the caller answers the device, or not). `EINVAL` for a field its entry cannot hold.
   */
  request(entry: PprLogEntry): boolean {
    encodePprLogEntry(entry, this.words, 0);
    const enabled = (this.regs.get(REG.CONTROL) & CTRL_PPR_EN) !== 0;
    const outcome = enabled ? this.ring.append(this.words) : 'disabled';
    if (outcome === 'written') this.logged++;
    else this.dropped++;
    if (this.tracer.enabled)
      this.tracer.trace(
        'hw',
        this.instance,
        outcome === 'written' ? 'pprlog.write' : 'pprlog.drop',
        outcome === 'written'
          ? `${describeRequest(entry)} at PPR log offset ${toHex(this.ring.lastOffset)}`
          : `${describeRequest(entry)} dropped: ${DROPPED[outcome]}`,
      );
    return outcome === 'written';
  }

  /** Control (low half) changed from `old` to `control` (PprLogEn, IommuEn). */
  controlChanged(control: number, old: number): void {
    this.ring.controlChanged(control, old);
  }

  stats(): Readonly<Record<string, number>> {
    return {
      pprRequestsLogged: this.logged,
      pprRequestsDropped: this.dropped,
      pprLogOverflows: this.ring.overflows,
      pprLogAborts: this.ring.aborted,
    };
  }
}
