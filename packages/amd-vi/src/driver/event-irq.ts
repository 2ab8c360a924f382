/**
 * The AMD IOMMU host driver's event interrupt (AMD pub. 48882 §2.5 "Event Logging", §2.5.1 the event log
 * restart, §3.4 Status 2020h, Event Log Head/Tail 2010h/2018h): Linux iommu.c `amd_iommu_int_thread_evtlog`
 * → `amd_iommu_handle_irq`, `iommu_poll_events`, `iommu_print_event`, `amd_iommu_report_page_fault`, and
 * `amd_iommu_restart_event_logging` → `amd_iommu_restart_log`.
 *
 * - While Status has EvtLogInt or EvtOverflow: write both back (W1C, "enable interrupt sources again"),
 *   drain the log, restart it if it had overflowed, and read Status again (erratum ERBT1312: a bit the unit
 *   sets as software clears it stays set). Bounded: POLL_LIMIT rounds (`ETIMEDOUT`).
 * - Draining: from EvtHead to EvtTail, each record decoded (hw/events.ts); a record still zero is reread
 *   as Linux does ("Event entry not yet written"); after it the record is zeroed and EvtHead written past
 *   it. IO_PAGE_FAULTs of memory requests go to the core (`context.reportFault`, the device looked up by
 *   DeviceID; Linux `report_iommu_fault`); every other event is only traced and counted, as Linux prints
 *   it. A walk stops after one ring's worth of records.
 * - Restart (Linux `amd_iommu_restart_log`): nothing while EvtLogRun is still set; otherwise EventLogEn and
 *   EventIntEn off, EvtOverflow cleared, EventIntEn and EventLogEn on again.
 * The loop and the restart are shared with the PPR log (ppr-irq.ts), as Linux shares them (`LogIrq`).
 */
import {
  type IommuFault,
  NO_PASID,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  POLL_LIMIT,
  pollTimeout,
  readDriverMemory,
  toHex,
  writeDriverMemory,
} from '@iommukit/core';
import {
  type AmdEvent,
  decodeEvent,
  describeEvent,
  EVENT_BYTES,
  EVENT_FLAG,
  EVENT_WORDS,
  type IoPageFaultEvent,
  type UnknownEvent,
} from '../hw/events.js';
import {
  LOG_PTR_MASK,
  REG,
  STATUS_EVT_LOG_INT,
  STATUS_EVT_LOG_RUN,
  STATUS_EVT_OVERFLOW,
} from '../hw/regs.js';
import { type AmdDriverBase, type AmdDriverStats, CONTROL, type DeviceLookup } from './driver-host.js';

/** log2 of the event log's entries (Linux EVT_LEN_MASK: length 9, 512 entries). */
export const EVT_BUFFER_LENGTH = 9;
/** Bytes of the event log (Linux EVT_BUFFER_SIZE, 8 KiB). */
export const EVT_BUFFER_SIZE = 2 ** EVT_BUFFER_LENGTH * EVENT_BYTES;

/** Linux `amd_iommu_handle_irq` for the event log at `log`; returns the records drained. */
export function handleEventIrq(host: AmdDriverBase, log: number, lookup: DeviceLookup): number {
  return handleLogIrq(host, EVT_LOG_IRQ, () => pollEvents(host, log, lookup));
}

/** A unit-written log as `amd_iommu_handle_irq` and `amd_iommu_restart_log` service it. */
export interface LogIrq {
  /** The log's name in traces and errors (Linux's `evt_type`). */
  readonly name: string;
  /** The trace record prefix (`evtlog`, `pprlog`). */
  readonly trace: string;
  /** Status: the log's interrupt and overflow bits, and its run bit. */
  readonly intBit: number;
  readonly overflowBit: number;
  readonly runBit: number;
  /** Control bit numbers of the log's interrupt enable and log enable. */
  readonly intEn: number;
  readonly logEn: number;
  /** Counts a restart. */
  restarted(stats: AmdDriverStats): void;
}

const EVT_LOG_IRQ: LogIrq = {
  name: 'Event',
  trace: 'evtlog',
  intBit: STATUS_EVT_LOG_INT,
  overflowBit: STATUS_EVT_OVERFLOW,
  runBit: STATUS_EVT_LOG_RUN,
  intEn: CONTROL.EVT_INT_EN,
  logEn: CONTROL.EVT_LOG_EN,
  restarted: (stats) => stats.eventLogRestarts++,
};

/**
 * Linux `amd_iommu_handle_irq`: while Status has the log's interrupt or overflow bit, both written back,
 * the log drained by `poll`, restarted after an overflow, Status read again; returns what `poll` drained.
 */
export function handleLogIrq(host: AmdDriverBase, log: LogIrq, poll: () => number): number {
  const { mmio } = host;
  const mask = log.intBit | log.overflowBit;
  let status = mmio.read32(REG.STATUS);
  let drained = 0;
  for (let round = 0; (status & mask) !== 0; round++) {
    if (round === POLL_LIMIT)
      throw pollTimeout(host.instance, `Status: the ${log.name} log interrupt never stayed clear`);
    mmio.write32(REG.STATUS, mask);
    drained += poll();
    if ((status & log.overflowBit) !== 0) restartLog(host, log);
    status = mmio.read32(REG.STATUS);
  }
  return drained;
}

/** Linux `iommu_poll_events`: every record from EvtHead to EvtTail; returns how many. */
export function pollEvents(host: AmdDriverBase, log: number, lookup: DeviceLookup): number {
  const { mmio } = host;
  let head = mmio.read32(REG.EVT_HEAD) & LOG_PTR_MASK;
  const tail = mmio.read32(REG.EVT_TAIL) & LOG_PTR_MASK;
  const words = new Uint32Array(EVENT_WORDS);
  let handled = 0;
  while (head !== tail && handled < EVT_BUFFER_SIZE / EVENT_BYTES) {
    printEvent(host, log + head, words, lookup);
    handled++;
    head = (head + EVENT_BYTES) % EVT_BUFFER_SIZE;
    mmio.write32(REG.EVT_HEAD, head);
  }
  return handled;
}

/** Linux `amd_iommu_restart_event_logging`. */
export function restartEventLogging(host: AmdDriverBase): void {
  restartLog(host, EVT_LOG_IRQ);
}

/**
 * Linux `amd_iommu_restart_log`: nothing while the log still runs; otherwise its interrupt and log enables
 * off, the overflow bit cleared, both enables on again.
 */
export function restartLog(host: AmdDriverBase, log: LogIrq): void {
  const { mmio, control } = host;
  if ((mmio.read32(REG.STATUS) & log.runBit) !== 0) return;
  log.restarted(host.stats);
  host.log(`${log.trace}.restart`, `IOMMU ${log.name} log restarting`);
  control.set(log.logEn, false);
  control.set(log.intEn, false);
  mmio.write32(REG.STATUS, log.overflowBit);
  control.set(log.intEn, true);
  control.set(log.logEn, true);
}

/** Linux `iommu_print_event`: one record read (reread while still zero), handled, then zeroed. */
function printEvent(host: AmdDriverBase, at: number, words: Uint32Array, lookup: DeviceLookup): void {
  let event: AmdEvent | UnknownEvent = { kind: 'unknown', code: 0, words: [] };
  for (let i = 0; i < POLL_LIMIT && event.kind === 'unknown' && event.code === 0; i++) {
    readDriverMemory(host, at, words);
    event = decodeEvent(words, 0);
  }
  if (event.kind === 'unknown' && event.code === 0) host.log('event', 'No event written to event log');
  else if (event.kind === 'io-page-fault' && (event.flags & EVENT_FLAG.I) === 0)
    reportPageFault(host, event, lookup);
  else {
    host.stats.events++;
    if (host.tracer.enabled) host.log('event', `Event logged [${describeEvent(event)}]`);
  }
  words.fill(0);
  writeDriverMemory(host, at, words);
}

/** Linux `amd_iommu_report_page_fault` for a memory request: the core's fault, with the device if probed. */
function reportPageFault(host: AmdDriverBase, event: IoPageFaultEvent, lookup: DeviceLookup): void {
  host.stats.faults++;
  if (host.tracer.enabled)
    host.log(
      'fault',
      `Event logged [IO_PAGE_FAULT device=${toHex(event.deviceId)} domain=${toHex(event.domainOrPasid)} address=${toHex(event.address)} flags=${toHex(event.flags)}]`,
    );
  host.context.reportFault(faultOf(event), lookup(event.deviceId));
}

/** An IO_PAGE_FAULT record as a core fault: the kind from PE/RZ/PR, the access from RW, NX and US. */
export function faultOf(event: IoPageFaultEvent): IommuFault {
  const { flags } = event;
  const gn = (flags & EVENT_FLAG.GN) !== 0;
  const kind =
    (flags & EVENT_FLAG.PE) !== 0
      ? 'permission'
      : (flags & EVENT_FLAG.RZ) !== 0
        ? 'address-size'
        : 'translation';
  return {
    kind,
    vendorCode: 'IO_PAGE_FAULT',
    streamId: event.deviceId,
    pasid: gn ? event.domainOrPasid : NO_PASID,
    iova: BigInt(event.address),
    access:
      ((flags & EVENT_FLAG.RW) !== 0 ? PERM_WRITE : PERM_READ) |
      ((flags & EVENT_FLAG.NX) !== 0 ? PERM_EXEC : 0) |
      (gn && (flags & EVENT_FLAG.US) === 0 ? PERM_PRIV : 0),
    recorded: true,
  };
}
