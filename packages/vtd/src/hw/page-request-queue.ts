/**
 * The page request queue (VT-d specification rev 5.10 §7.4.1 "Handling of Page Requests", §7.5
 * "Recoverable Fault Event", §11.4.11 PQH/PQT/PQA/PRS/PECTL): a ring of 32-byte page request descriptors
 * in memory at PQA (2^PQS 4 KiB pages, 2^(PQS + 7) entries). The unit writes at PQT and advances it;
 * software consumes from PQH and writes PQH back. Head == tail is empty; tail one entry behind head is
 * full, so at most N − 1 entries are used.
 *
 * A request the queue cannot take is dropped (§7.4.1, Table 31 "Page Request Error Conditions"):
 * - PRS.PRO already set (PRQ overflow): no fault, no event;
 * - the queue full: the unit sets PRO, which may raise the page request event;
 * and a dropped last request of a group (LPIG) is answered with a Success page group response, so the
 * device retries it; other dropped requests get no response. The model's own choices, the spec saying
 * nothing: a descriptor write that aborts on the bus drops the request the same way (PQT, PRS unchanged,
 * Success for LPIG, counted in `aborted`); a Stop Marker (PASID, LPIG, neither read nor write) is never
 * answered (ECAP.SMS = 0 leaves a lost one undefined; SMS = 1 drops it silently); an automatic response
 * carries the request's PASID (not confirmed by a source).
 *
 * Page request event (§7.5): raised when PPR (a descriptor written) or PRO (queue full) is set while
 * neither was set before; withdrawn (PECTL.IP cleared) once software has cleared both (W1C on PRS).
 * PRO stays set until software clears it (Linux intel/prq.c clears it once it has drained the queue).
 *
 * The caller walks the translation tables first (§7.4.1: a table fault is a non-recoverable fault and an
 * Invalid Request response for LPIG, never queued) and performs the implicit invalidation (§6.5.3.1) for
 * a request the queue accepted.
 */
import {
  type AccessCounter,
  type MemoryBus,
  NO_PASID,
  type PageRequest,
  type PageResponse,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  type RegisterFile,
  toHex,
} from '@iommukit/core';
import type { EventInterrupt } from './event-interrupt.js';
import type { HwTrace } from './fault-recording.js';
import type { VtdFeatures } from './features.js';
import { encodePageRequest, PAGE_REQUEST_BYTES, PAGE_REQUEST_WORDS } from './page-requests.js';
import { PQ_INDEX_MASK, PQA_PQS, PRS_PPR, PRS_PRO, REG } from './regs.js';

/** Sends a page group response to the device with this requester ID. */
export type PageResponder = (sid: number, response: PageResponse) => void;

const PAGE = 4096;
const PQA_BASE_LO = 0xffff_f000;

/** A PCIe Stop Marker: with a PASID, last in group, neither read nor write requested. */
function isStopMarker(pr: PageRequest): boolean {
  return pr.pasid !== NO_PASID && pr.last && (pr.access & (PERM_READ | PERM_WRITE)) === 0;
}

export class PageRequestQueue {
  /** Descriptors written; requests dropped (PRO set, queue full, write aborted); times PRO was set. */
  queued = 0;
  dropped = 0;
  overflows = 0;
  /** Descriptor writes that aborted on the bus. */
  aborted = 0;
  /** Success responses the unit sent for dropped LPIG requests. */
  autoResponses = 0;
  private readonly words = new Uint32Array(PAGE_REQUEST_WORDS);

  constructor(
    private readonly regs: RegisterFile,
    private readonly bus: MemoryBus,
    private readonly counter: AccessCounter,
    features: VtdFeatures,
    private readonly event: EventInterrupt,
    private readonly respond: PageResponder,
    private readonly trace?: HwTrace,
  ) {
    if (!features.pageRequests) throw new RangeError('the unit has no page request queue (ECAP.PRS = 0)');
    regs.onWrite(REG.PRS, () => {
      if ((regs.get(REG.PRS) & (PRS_PPR | PRS_PRO)) === 0) event.withdraw();
    });
  }

  /**
   * Queues a page request from the device `sid` (§7.4.1): true when its descriptor was written, false when
   * it was dropped (answered as the module comment says). `EINVAL` for a PASID or group index the
   * descriptor cannot hold.
   */
  request(sid: number, pr: PageRequest): boolean {
    const { regs } = this;
    const status = regs.get(REG.PRS);
    if ((status & PRS_PRO) !== 0) return this.drop(sid, pr, 'PRO set');
    const lo = regs.get(REG.PQA);
    const size = PAGE * 2 ** ((lo >>> PQA_PQS.lsb) & (2 ** PQA_PQS.width - 1));
    const head = regs.get(REG.PQH) & PQ_INDEX_MASK & (size - 1);
    const tail = regs.get(REG.PQT) & PQ_INDEX_MASK & (size - 1);
    const next = (tail + PAGE_REQUEST_BYTES) % size;
    if (next === head) {
      regs.set(REG.PRS, status | PRS_PRO);
      this.overflows++;
      if ((status & PRS_PPR) === 0) this.event.raise();
      return this.drop(sid, pr, 'queue full, PRO set');
    }
    this.encode(sid, pr);
    const address = regs.get(REG.PQA + 4) * 2 ** 32 + ((lo & PQA_BASE_LO) >>> 0) + tail;
    if (!this.bus.writeWords(address, this.words, PAGE_REQUEST_WORDS, this.counter)) {
      this.aborted++;
      return this.drop(sid, pr, `descriptor write to ${toHex(address)} aborted`);
    }
    regs.set(REG.PQT, next);
    this.queued++;
    if ((status & PRS_PPR) === 0) {
      regs.set(REG.PRS, status | PRS_PPR);
      this.event.raise();
    }
    if (this.trace?.tracer.enabled)
      this.trace.tracer.trace(
        'hw',
        this.trace.source,
        'prq.write',
        `page request sid ${toHex(sid)} IOVA ${toHex(pr.iova)} group ${pr.groupIndex}${pr.last ? ' (last)' : ''} at PQ offset ${toHex(tail)}`,
      );
    return true;
  }

  stats(): Readonly<Record<string, number>> {
    return {
      prqQueued: this.queued,
      prqDropped: this.dropped,
      prqOverflows: this.overflows,
      prqAborts: this.aborted,
      prqAutoResponses: this.autoResponses,
    };
  }

  /** The descriptor (§7.4.1.1): execute and privilege travel in the PASID prefix, so need a PASID. */
  private encode(sid: number, pr: PageRequest): void {
    const pp = pr.pasid !== NO_PASID;
    encodePageRequest(
      {
        pasidPresent: pp,
        rid: sid,
        pasid: pp ? pr.pasid : 0,
        exe: pp && (pr.access & PERM_EXEC) !== 0,
        priv: pp && (pr.access & PERM_PRIV) !== 0,
        read: (pr.access & PERM_READ) !== 0,
        write: (pr.access & PERM_WRITE) !== 0,
        lpig: pr.last,
        prgIndex: pr.groupIndex,
        // Bits 63:12 of a 64-bit address: at most 52 significant bits, exact in a number.
        addr: Number(BigInt.asUintN(64, pr.iova) & ~0xfffn),
      },
      this.words,
      0,
    );
  }

  private drop(sid: number, pr: PageRequest, why: string): false {
    this.dropped++;
    const answer = pr.last && !isStopMarker(pr);
    if (this.trace?.tracer.enabled)
      this.trace.tracer.trace(
        'hw',
        this.trace.source,
        'prq.drop',
        `page request sid ${toHex(sid)} IOVA ${toHex(pr.iova)} group ${pr.groupIndex} dropped: ${why}${answer ? ', answered Success' : ''}`,
      );
    if (answer) {
      this.autoResponses++;
      this.respond(sid, { pasid: pr.pasid, groupIndex: pr.groupIndex, code: 'success' });
    }
    return false;
  }
}
