/**
 * The SMMUv3 host driver's interrupt handlers (Linux `arm_smmu_evtq_thread`, `arm_smmu_priq_thread`,
 * `arm_smmu_gerror_handler`; IHI 0070 §7.2 Event queue, §7.4 overflow, §7.5 GERROR, §8 PRI queue):
 * - Event queue: drain the records from CONS to PROD; a stall goes to the page-request path
 *   (`page-requests.ts`), a nested master's other events that are not stage 2 to its vSMMU's vEVENTQ, and
 *   every other one to `reportFault` (vendor code = event name); then acknowledge an overflow
 *   (OVACKFLG := OVFLG).
 * - PRI queue: drain the page requests into `page-requests.ts`, then acknowledge an overflow.
 * - GERROR: acknowledge the active errors (GERRORN := GERROR); a Command queue error found there is
 *   skipped as Linux does, SFM_ERR disables the SMMU.
 * The drains are bounded: an SMMU that never stops producing is a coded timeout, not a hang.
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
  toHex,
} from '@iommukit/core';
import { decodeEvent, EVENT_FAULT_KIND, EVENT_WORDS, eventName } from '../hw/events.js';
import { PRI_ENTRY_WORDS } from '../hw/priq.js';
import {
  EVENTQ_ENTRY_BYTES,
  PRIQ_ENTRY_BYTES,
  queueAcknowledgeOverflow,
  queueEmpty,
  queueIncrement,
  queueIndex,
  queueOverflowPending,
} from '../hw/queue-index.js';
import { GERROR_CMDQ_ERR, GERROR_SFM_ERR, REG } from '../hw/regs.js';
import type { ProbedSmmu, QueueMemory, Smmuv3DriverHost } from './driver-host.js';
import { Smmuv3NestedDomain } from './nested-domain.js';
import { handlePageRequest, handleStall } from './page-requests.js';
import { writeRegSync } from './probe.js';

/** An output queue's registers and entries, for `drain`. */
interface OutputQueueRegs {
  readonly prod: number;
  readonly cons: number;
  readonly entryBytes: number;
  /** One entry's words, reused. */
  readonly words: Uint32Array;
  readonly name: string;
}

/**
 * Reads every entry from CONS to PROD into `handle`, updating CONS after each, until PROD stops moving;
 * then acknowledges an overflow. Returns whether the queue had overflowed (entries were lost).
 */
function drain(
  host: Smmuv3DriverHost,
  q: QueueMemory,
  r: OutputQueueRegs,
  handle: (words: Uint32Array) => void,
): boolean {
  const { regs } = host;
  let prod = regs.read32(r.prod);
  // Each pass drains at most one queue's worth; passes are bounded in case the SMMU never stops producing.
  for (let passes = 0; ; passes++) {
    if (passes === POLL_LIMIT) throw pollTimeout(host.instance, `the ${r.name} never drained`);
    while (!queueEmpty(prod, q.cons, q.log2)) {
      const at = q.base + queueIndex(q.cons, q.log2) * r.entryBytes;
      host.bus.readWords(at, r.words, r.words.length, host.counter);
      q.cons = queueIncrement(q.cons, q.log2);
      regs.write32(r.cons, q.cons);
      handle(r.words);
    }
    prod = regs.read32(r.prod);
    if (queueEmpty(prod, q.cons, q.log2)) break;
  }
  if (!queueOverflowPending(prod, q.cons)) return false;
  q.cons = queueAcknowledgeOverflow(q.cons, prod);
  regs.write32(r.cons, q.cons);
  return true;
}

/** Event queue interrupt (Linux `arm_smmu_evtq_thread`): drain, report, acknowledge overflow. */
export function handleEventq(host: Smmuv3DriverHost, p: ProbedSmmu): void {
  const regs = {
    prod: REG.EVENTQ_PROD,
    cons: REG.EVENTQ_CONS,
    entryBytes: EVENTQ_ENTRY_BYTES,
    words: new Uint32Array(EVENT_WORDS),
    name: 'Event queue',
  };
  if (drain(host, p.eventq, regs, (words) => handleEvent(host, p, words))) {
    host.stats.eventOverflows++;
    host.log('eventq.overflow', 'event queue overflow: events were lost');
  }
}

/** PRI queue interrupt (Linux `arm_smmu_priq_thread`): page requests to the iommu core. */
export function handlePriq(host: Smmuv3DriverHost, p: ProbedSmmu): void {
  if (!p.priq) return;
  const regs = {
    prod: REG.PRIQ_PROD,
    cons: REG.PRIQ_CONS,
    entryBytes: PRIQ_ENTRY_BYTES,
    words: new Uint32Array(PRI_ENTRY_WORDS),
    name: 'PRI queue',
  };
  if (drain(host, p.priq, regs, (words) => handlePageRequest(host, p, words))) {
    host.stats.priOverflows++;
    host.log('priq.overflow', 'PRI queue overflow: page requests were lost');
  }
}

/** GERROR interrupt (Linux `arm_smmu_gerror_handler`). */
export function handleGerror(host: Smmuv3DriverHost, p: ProbedSmmu): void {
  const { regs } = host;
  const gerror = regs.read32(REG.GERROR);
  const gerrorn = regs.read32(REG.GERRORN);
  const active = (gerror ^ gerrorn) >>> 0;
  if (active === 0) return;
  host.stats.globalErrors++;
  host.log('gerror', `global errors active: ${toHex(active)}`);
  if (active & GERROR_SFM_ERR) writeRegSync(regs, host.instance, REG.CR0, 0, REG.CR0ACK);
  if (active & GERROR_CMDQ_ERR) p.cmdq.skipError();
  regs.write32(REG.GERRORN, gerror);
}

function handleEvent(host: Smmuv3DriverHost, p: ProbedSmmu, words: Uint32Array): void {
  const record = decodeEvent(words);
  const name = eventName(record.id);
  const master = host.masters.get(record.streamId);
  // Linux arm_smmu_handle_event: a stall goes to the host's page-request path, which resumes it (no
  // CMD_RESUME reaches the SMMU from a guest); a nested master's other non-stage-2 events are the guest's.
  if (
    master?.rid instanceof Smmuv3NestedDomain &&
    record.stall !== true &&
    record.s2 !== true &&
    master.rid.forwardEvent(master.ref, words)
  ) {
    host.stats.forwardedEvents++;
    host.log('event.forward', `${name ?? toHex(record.id)} of ${master.ref.name} → vEVENTQ`);
    return;
  }
  const ssid =
    record.ssv === true || name === 'C_BAD_SUBSTREAMID' ? (record.substreamId ?? NO_PASID) : NO_PASID;
  const access =
    (record.rnw === false ? PERM_WRITE : PERM_READ) |
    (record.pnu === true ? PERM_PRIV : 0) |
    (record.ind === true ? PERM_EXEC : 0);
  const iova =
    record.inputAddrPage !== undefined
      ? BigInt(record.inputAddrPage) * 4096n + BigInt(record.inputAddrOffset ?? 0)
      : 0n;
  if (record.stall === true) {
    handleStall(host, p, record.streamId, record.stag ?? 0, master, { pasid: ssid, iova, access });
    return;
  }
  const fault: IommuFault = {
    kind: name ? EVENT_FAULT_KIND[name] : 'bad-config',
    vendorCode: name ?? `EVENT_${toHex(record.id)}`,
    ...(record.s2 !== undefined ? { stage: record.s2 ? 2 : 1 } : {}),
    streamId: record.streamId,
    pasid: ssid,
    iova,
    access,
    recorded: true,
  };
  host.stats.events++;
  host.context.reportFault(fault, master?.ref);
}
