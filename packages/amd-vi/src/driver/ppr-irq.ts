/**
 * Peripheral page requests in the host driver (AMD pub. 48882: the PPR log beside §2.5, COMPLETE_PPR_REQUEST
 * of §2.4, §3.4 PPR Log Head/Tail 2030h/2038h, Status PPRInt/PPROverflow/PPRLogRun): Linux
 * ppr.c `amd_iommu_int_thread_pprlog`, `amd_iommu_poll_ppr_log`, `iommu_call_iopf_notifier`,
 * `ppr_is_valid`, `ppr_flag_to_fault_perm`, `amd_iommu_restart_ppr_log`, `amd_iommu_page_response`, and
 * iommu.c `amd_iommu_complete_ppr`.
 *
 * - The interrupt: the unit's one MSI vector, shared with the event log (Linux `amd_iommu_int_thread`
 *   runs the event, then the PPR thread); PPRInt and PPROverflow serviced by the loop and restart the
 *   event log uses (event-irq.ts `handleLogIrq`, `restartLog`).
 * - Draining: from PPRHead to PPRTail; an entry still of type 0 is reread ("interrupt may arrive before
 *   the entry is written"), copied, zeroed (erratum 733), PPRHead written past it, then handled.
 * - Handling: an entry not of type page request is ignored; an unknown DeviceID is dropped unanswered (Linux
 *   finds no PCI device); GN = 0, a reserved flag, PASID 0 or a PASID at or beyond the device's count are
 *   dropped and answered Failure; the rest reach the core (`context.reportPageRequest`) with the address's
 *   page, the permissions of the flags (no US: privileged), the PRG index and last-page bit of the tag.
 * - Answers (`amd_iommu_page_response`): COMPLETE_PPR_REQUEST with the PASID (GN = 1: the response carries
 *   it, Linux's IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID) and the status Success 0, Invalid 1, Failure 0xF
 *   (IOMMU_PAGE_RESP_*). Linux only queues the command; here a completion wait follows, so the answer has
 *   reached the unit when the call returns.
 */
import {
  NO_PASID,
  type PageResponse,
  type PageResponseCode,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  POLL_LIMIT,
  readDriverMemory,
  toHex,
  writeDriverMemory,
} from '@iommukit/core';
import { buildCompletePpr } from '../hw/command-encoders.js';
import {
  decodePprLogEntry,
  EVENT_BYTES,
  EVENT_WORDS,
  PPR_FLAG,
  PPR_LOG_TYPE,
  PPR_TAG_LAST_PAGE,
  type PprLogEntry,
} from '../hw/events.js';
import { LOG_PTR_MASK, REG, STATUS_PPR_INT, STATUS_PPR_LOG_RUN, STATUS_PPR_OVERFLOW } from '../hw/regs.js';
import type { AmdDeviceLookup, AmdDriverHost } from './driver-host.js';
import { CONTROL } from './driver-host.js';
import { handleLogIrq, type LogIrq, restartLog } from './event-irq.js';

/** log2 of the PPR log's entries (Linux PPR_LOG_SIZE_512) and its bytes (PPR_LOG_SIZE, 8 KiB). */
export const PPR_LOG_LENGTH = 9;
export const PPR_LOG_SIZE = 2 ** PPR_LOG_LENGTH * EVENT_BYTES;

/** COMPLETE_PPR_REQUEST status per core answer (Linux IOMMU_PAGE_RESP_SUCCESS, _INVALID, _FAILURE). */
export const PPR_STATUS: Readonly<Record<PageResponseCode, number>> = {
  success: 0,
  invalid: 1,
  failure: 0xf,
};

const PPR_LOG_IRQ: LogIrq = {
  name: 'PPR',
  trace: 'pprlog',
  intBit: STATUS_PPR_INT,
  overflowBit: STATUS_PPR_OVERFLOW,
  runBit: STATUS_PPR_LOG_RUN,
  intEn: CONTROL.PPRINT_EN,
  logEn: CONTROL.PPRLOG_EN,
  restarted: (stats) => stats.pprLogRestarts++,
};

/** Linux `amd_iommu_int_thread_pprlog`: the PPR log at `log` serviced; returns the entries drained. */
export function handlePprIrq(host: AmdDriverHost, log: number, lookup: AmdDeviceLookup): number {
  return handleLogIrq(host, PPR_LOG_IRQ, () => pollPprLog(host, log, lookup));
}

/** Linux `amd_iommu_restart_ppr_log`. */
export function restartPprLog(host: AmdDriverHost): void {
  restartLog(host, PPR_LOG_IRQ);
}

/** Linux `amd_iommu_poll_ppr_log`: every entry from PPRHead to PPRTail; returns how many. */
export function pollPprLog(host: AmdDriverHost, log: number, lookup: AmdDeviceLookup): number {
  const { mmio } = host;
  let head = mmio.read32(REG.PPR_HEAD) & LOG_PTR_MASK;
  const tail = mmio.read32(REG.PPR_TAIL) & LOG_PTR_MASK;
  const words = new Uint32Array(EVENT_WORDS);
  let handled = 0;
  while (head !== tail && handled < PPR_LOG_SIZE / EVENT_BYTES) {
    let entry: PprLogEntry | undefined;
    for (let i = 0; i < POLL_LIMIT && (entry === undefined || entry.type === 0); i++) {
      readDriverMemory(host, log + head, words);
      entry = decodePprLogEntry(words, 0);
    }
    writeDriverMemory(host, log + head, words.fill(0));
    head = (head + EVENT_BYTES) % PPR_LOG_SIZE;
    mmio.write32(REG.PPR_HEAD, head);
    handled++;
    notify(host, entry!, lookup);
  }
  return handled;
}

/** Linux `iommu_call_iopf_notifier`: the entry to the core, or dropped (and answered Failure). */
function notify(host: AmdDriverHost, entry: PprLogEntry, lookup: AmdDeviceLookup): void {
  if (entry.type !== PPR_LOG_TYPE.PAGE_REQUEST) {
    host.log('ppr', 'Unknown PPR request received');
    return;
  }
  const device = lookup(entry.deviceId);
  if (device === undefined) return;
  const { flags, pasid } = entry;
  const refused =
    (flags & PPR_FLAG.GN) === 0
      ? 'Request ignored due to GN=0'
      : (flags & PPR_FLAG.RVSD) !== 0
        ? 'Invalid request format'
        : pasid === 0 || pasid >= device.maxPasids
          ? `Invalid PASID ${toHex(pasid)}`
          : undefined;
  if (refused !== undefined) {
    host.stats.badPageRequests++;
    host.log(
      'ppr.bad',
      `PPR logged [${refused} (device=${toHex(entry.deviceId)} address=${toHex(entry.address)})]`,
    );
    const answerPasid = (flags & PPR_FLAG.GN) !== 0 ? pasid : NO_PASID;
    completePpr(host, entry.deviceId, { pasid: answerPasid, groupIndex: entry.tag & 0x1ff, code: 'failure' });
    return;
  }
  host.stats.pageRequests++;
  host.context.reportPageRequest(device.ref, {
    pasid,
    iova: BigInt(entry.address - (entry.address % 4096)),
    access:
      ((flags & PPR_FLAG.READ) !== 0 ? PERM_READ : 0) |
      ((flags & PPR_FLAG.WRITE) !== 0 ? PERM_WRITE : 0) |
      ((flags & PPR_FLAG.EXEC) !== 0 ? PERM_EXEC : 0) |
      ((flags & PPR_FLAG.US) === 0 ? PERM_PRIV : 0),
    groupIndex: entry.tag & 0x1ff,
    last: (entry.tag & PPR_TAG_LAST_PAGE) !== 0,
  });
}

/** Linux `amd_iommu_page_response` → `amd_iommu_complete_ppr`, then a completion wait. */
export function completePpr(host: AmdDriverHost, deviceId: number, response: PageResponse): void {
  host.stats.pageResponses++;
  const gn = response.pasid !== NO_PASID;
  host.queue.submit([
    buildCompletePpr(deviceId, gn ? response.pasid : 0, PPR_STATUS[response.code], response.groupIndex, gn),
  ]);
}
