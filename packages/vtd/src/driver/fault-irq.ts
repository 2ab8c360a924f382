/**
 * The VT-d host driver's interrupt handlers (VT-d §7.2–§7.5, §11.4.7; Linux dmar.c `dmar_fault`, prq.c
 * `prq_event_thread`, `handle_bad_prq_event`, `intel_iommu_page_response`):
 * - Fault event: with FSTS.PPF set, walk the fault recording registers from FSTS.FRI while F is set —
 *   read the record (high word first, as Linux), clear F (W1C), report it as a core fault (kind from the
 *   reason, vendor code `DMAR_FR_0x..`, the device from the driver's lookup by source-id) — then write
 *   PFO | PPF | PRO to FSTS as Linux does (only PFO is write-1-to-clear on the model; PPF follows the
 *   records, PRO is reserved). Interrupt-remapping reasons (20h–2Fh) are `interrupt` faults whose iova is
 *   the interrupt index (Linux prints `addr >> 48`).
 * - Page request event: clear PRS.PPR first (so a later request interrupts again), read PQT and PQH, and
 *   for each descriptor between them: refuse what Linux refuses (a non-canonical address, a privileged
 *   read or write, an execute read, an unknown requester) with an Invalid page group response when it is
 *   the group's last, drop Stop Markers, report the rest; then PQH = PQT, and clear PRS.PRO once the
 *   queue is empty.
 * - Page response: a page group response descriptor (LPIG: the core answers whole groups).
 * The walks are bounded: a record walk stops after POLL_LIMIT records (`ETIMEDOUT`), a queue walk after one
 * queue's worth of descriptors.
 */
import {
  type IommuDeviceRef,
  type IommuFault,
  NO_PASID,
  type PageResponse,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  POLL_LIMIT,
  pollTimeout,
  readDriverMemory,
  toHex,
} from '@iommukit/core';
import {
  decodePageRequest,
  PAGE_REQUEST_BYTES,
  PAGE_REQUEST_WORDS,
  type PageRequest as PageRequestDescriptor,
} from '../hw/page-requests.js';
import {
  decodeFaultRecord,
  FRCD_WORD3_F,
  FSTS_FRI,
  FSTS_PFO,
  FSTS_PPF,
  FSTS_PRO,
  PQ_INDEX_MASK,
  PRS_PPR,
  PRS_PRO,
  REG,
} from '../hw/regs.js';
import { faultKind } from '../hw/translate.js';
import type { DeviceLookup, VtdDriverBase, VtdDriverHost } from './driver-host.js';
import { pageGroupResponse } from './qi.js';

/** The page request queue in driver memory. */
export interface PrqMemory {
  readonly base: number;
  /** Bytes: 4 KiB · 2^PQA.PQS. */
  readonly bytes: number;
}

/** Linux `dmar_fault`: drains the fault records into `reportFault`; returns how many it reported. */
export function handleFaultIrq(host: VtdDriverBase, lookup: DeviceLookup): number {
  const { mmio, unit } = host;
  const status = mmio.read32(REG.FSTS);
  // Stryker disable next-line ConditionalExpression: without PPF no record has F set, so the loop below reports nothing either
  if ((status & FSTS_PPF) === 0) return 0;
  const words = new Uint32Array(4);
  let index = (status >>> FSTS_FRI.lsb) & 0xff;
  let reported = 0;
  for (;;) {
    // Stryker disable next-line ConditionalExpression: the unit has at most 256 records and sets no F while they drain; the bound guards against one that would
    if (reported === POLL_LIMIT) throw pollTimeout(host.instance, 'fault records never stopped coming');
    const at = unit.faultRecordOffset + 16 * index;
    words[3] = mmio.read32(at + 12);
    if ((words[3]! & FRCD_WORD3_F) === 0) break;
    words[2] = mmio.read32(at + 8);
    words[0] = mmio.read32(at);
    words[1] = mmio.read32(at + 4);
    mmio.write32(at + 12, FRCD_WORD3_F);
    const fault = faultOf(words);
    host.stats.faults++;
    reported++;
    // Stryker disable next-line ConditionalExpression: the tracer drops records itself when tracing is off; the guard only saves building them
    if (host.tracer.enabled)
      host.log(
        'fault',
        `FRCD[${index}] ${fault.vendorCode} source ${toHex(fault.streamId)} at ${toHex(fault.iova)}`,
      );
    host.context.reportFault(fault, lookup(fault.streamId));
    index = (index + 1) % unit.faultRecords;
  }
  mmio.write32(REG.FSTS, FSTS_PFO | FSTS_PPF | FSTS_PRO);
  return reported;
}

/** A fault recording register's four words as a core fault. */
function faultOf(words: Uint32Array): IommuFault {
  const r = decodeFaultRecord(words);
  const vendorCode = `DMAR_FR_0x${r.fr.toString(16).padStart(2, '0')}`;
  const interrupt = r.fr >= 0x20 && r.fr <= 0x2f;
  // Stryker disable next-line LogicalOperator: EXE and PRIV are RsvdZ in a record without PASID (fault-recording.ts writes 0)
  const access =
    (r.t ? PERM_READ : PERM_WRITE) | (r.pp && r.exe ? PERM_EXEC : 0) | (r.pp && r.priv ? PERM_PRIV : 0);
  return {
    kind: interrupt ? 'interrupt' : faultKind(r.fr),
    vendorCode,
    streamId: r.sid,
    pasid: r.pp ? r.pasid : NO_PASID,
    iova: interrupt ? BigInt(Math.floor(r.fi / 2 ** 48)) : BigInt(r.fi),
    access: interrupt ? PERM_WRITE : access,
    recorded: true,
  };
}

/** Lowest non-canonical address with 48-bit virtual addresses (Linux `is_canonical_address`, 4-level). */
const CANONICAL_LIMIT = 2 ** 47;

/** Linux `prq_event_thread`: drains the page request queue; returns the descriptors handled. */
export function handlePrqIrq(host: VtdDriverHost, prq: PrqMemory, lookup: DeviceLookup): number {
  const { mmio } = host;
  mmio.write32(REG.PRS, PRS_PPR);
  const mask = PQ_INDEX_MASK & (prq.bytes - 1);
  const tail = mmio.readAddress(REG.PQT) & mask;
  let head = mmio.readAddress(REG.PQH) & mask;
  const words = new Uint32Array(PAGE_REQUEST_WORDS);
  let handled = 0;
  // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: head reaches tail within one queue; the bound guards a corrupted PQT
  while (head !== tail && handled < prq.bytes / PAGE_REQUEST_BYTES) {
    readDriverMemory(host, prq.base + head, words);
    pageRequest(host, decodePageRequest(words, 0), lookup);
    handled++;
    head = (head + PAGE_REQUEST_BYTES) & mask;
  }
  mmio.writeAddress(REG.PQH, tail);
  if ((mmio.read32(REG.PRS) & PRS_PRO) !== 0) {
    host.stats.prqOverflows++;
    host.log('prq.overflow', 'PRQ overflow detected');
    // Stryker disable next-line ConditionalExpression: the model queues nothing while the handler drains, so the queue is always empty here
    if ((mmio.readAddress(REG.PQH) & mask) === (mmio.readAddress(REG.PQT) & mask))
      mmio.write32(REG.PRS, PRS_PRO);
  }
  return handled;
}

/** What Linux refuses in a page request before reporting it, or undefined. */
function refusal(req: PageRequestDescriptor): string | undefined {
  if (req.addr >= CANONICAL_LIMIT && req.addr < 2 ** 64 - CANONICAL_LIMIT) return 'address is not canonical';
  if (req.priv && (req.read || req.write)) return 'page request in privilege mode';
  if (req.exe && req.read) return 'execution request not supported';
  return undefined;
}

function pageRequest(host: VtdDriverHost, req: PageRequestDescriptor, lookup: DeviceLookup): void {
  const pasid = req.pasidPresent ? req.pasid : NO_PASID;
  const refused = refusal(req);
  // A Stop Marker needs no response.
  if (refused === undefined && req.lpig && !req.read && !req.write) return;
  const device = refused === undefined ? lookup(req.rid) : undefined;
  if (device === undefined) {
    host.stats.badPageRequests++;
    host.log(
      'prq.bad',
      `invalid page request from ${toHex(req.rid)} at ${toHex(req.addr)}: ${refused ?? 'no such device'}`,
    );
    if (req.lpig)
      host.qi.submit([
        // Stryker disable next-line BooleanLiteral: LPIG of a page group response changes nothing the model answers
        pageGroupResponse({ rid: req.rid, pasid, groupIndex: req.prgIndex, code: 'invalid', last: true }),
      ]);
    return;
  }
  host.stats.pageRequests++;
  host.context.reportPageRequest(device, {
    pasid,
    iova: BigInt(req.addr),
    access:
      (req.read ? PERM_READ : 0) |
      (req.write ? PERM_WRITE : 0) |
      (req.exe ? PERM_EXEC : 0) |
      (req.priv ? PERM_PRIV : 0),
    groupIndex: req.prgIndex,
    last: req.lpig,
  });
}

/** Linux `intel_iommu_page_response`: the group's answer to the device. */
export function pageResponse(host: VtdDriverHost, device: IommuDeviceRef, response: PageResponse): void {
  host.stats.pageResponses++;
  host.qi.submit([
    pageGroupResponse({
      rid: device.streamId,
      pasid: response.pasid,
      groupIndex: response.groupIndex,
      code: response.code,
      // Stryker disable next-line BooleanLiteral: LPIG of a page group response changes nothing the model answers
      last: true,
    }),
  ]);
}
