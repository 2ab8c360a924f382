/**
 * Index arithmetic of the SMMU circular queues (SMMUv3 §3.5.1): a queue of 2^n entries has PROD and CONS
 * registers holding an n-bit index with the wrap flag at bit n (n = LOG2SIZE, 0..19, so the index and wrap
 * fit bits [19:0]). Equal indices with equal wrap flags mean empty, with different wrap flags full; every
 * increment wraps the index and toggles the wrap flag at the top. Bits [31:20] carry other fields that an
 * increment keeps: OVFLG / OVACKFLG (bit 31) of the Event and PRI queue indices, ERR (bits [30:24]) of
 * CMDQ_CONS. Pure functions on 32-bit register values.
 */
import { deposit32, field32 } from '@iommukit/core';
import { CMDQ_CONS_ERR, Q_BASE_ADDR, Q_BASE_LOG2SIZE, Q_OVFLG, reg64Address } from './regs.js';

/** Command queue entries are 16 bytes (§4.1.1). */
export const CMDQ_ENTRY_BYTES = 16;
/** Event records are 32 bytes (§7.3). */
export const EVENTQ_ENTRY_BYTES = 32;
/** PRI queue entries are 16 bytes (§8: the page request record spans bits [127:0]). */
export const PRIQ_ENTRY_BYTES = 16;

/** Bits above the index field, kept by an increment. */
const UPPER_FIELDS = 0xfff0_0000;

/** Entries in a queue of LOG2SIZE `log2`. */
export function queueCapacity(log2: number): number {
  return 2 ** log2;
}

/** The WR/RD index (bits [log2-1:0]). */
export function queueIndex(value: number, log2: number): number {
  return (value & (queueCapacity(log2) - 1)) >>> 0;
}

/** The wrap flag (bit log2). */
export function queueWrap(value: number, log2: number): number {
  return (value >>> log2) & 1;
}

/** Index and wrap flag together (bits [log2:0]). */
function position(value: number, log2: number): number {
  return (value & (2 * queueCapacity(log2) - 1)) >>> 0;
}

export function queueEmpty(prod: number, cons: number, log2: number): boolean {
  return position(prod, log2) === position(cons, log2);
}

export function queueFull(prod: number, cons: number, log2: number): boolean {
  return queueIndex(prod, log2) === queueIndex(cons, log2) && queueWrap(prod, log2) !== queueWrap(cons, log2);
}

/** Entries produced and not yet consumed (0..2^log2 for indices in a consistent state, §3.5.1). */
export function queueUsed(prod: number, cons: number, log2: number): number {
  return (position(prod, log2) - position(cons, log2)) & (2 * queueCapacity(log2) - 1);
}

/** Entries the producer may still write. */
export function queueFree(prod: number, cons: number, log2: number): number {
  return queueCapacity(log2) - queueUsed(prod, cons, log2);
}

/**
 * The index register after producing or consuming `count` entries (0 ≤ count ≤ 2^log2): the index wraps to
 * the queue size, the wrap flag toggles when it does, bits [19:log2+1] come out 0 (RAZ/RES0 for the queue
 * size, §6.3.27 ff.) and bits [31:20] are kept.
 */
export function queueIncrement(value: number, log2: number, count = 1): number {
  const next = (position(value, log2) + count) & (2 * queueCapacity(log2) - 1);
  return ((value & UPPER_FIELDS) | next) >>> 0;
}

/** The LOG2SIZE in use: a programmed value above the IDR1 maximum is capped at it (§6.3.26, 6.3.29, 6.3.33). */
export function queueEffectiveLog2(log2size: number, maxLog2: number): number {
  return Math.min(log2size, maxLog2);
}

/**
 * The queue base the SMMU uses: ADDR aligned down to the larger of the queue's size in bytes and 32 bytes
 * (§6.3.26: low ADDR bits are ignored as required).
 */
export function queueBase(addr: number, log2: number, entryBytes: number): number {
  const align = Math.max(32, queueCapacity(log2) * entryBytes);
  return addr - (addr % align);
}

/** Decodes an xQ_BASE register pair: effective LOG2SIZE (capped at `maxLog2`) and aligned base address. */
export function decodeQueueBase(
  lo: number,
  hi: number,
  maxLog2: number,
  entryBytes: number,
): { readonly base: number; readonly log2: number } {
  const log2 = queueEffectiveLog2(field32(lo, Q_BASE_LOG2SIZE.lsb, Q_BASE_LOG2SIZE.width), maxLog2);
  return { base: queueBase(reg64Address(lo, hi, Q_BASE_ADDR), log2, entryBytes), log2 };
}

/** Address of the entry an index register points at: base + index × entry size. */
export function queueEntryAddress(base: number, value: number, log2: number, entryBytes: number): number {
  return base + queueIndex(value, log2) * entryBytes;
}

/**
 * Event and PRI queue overflow (§7.4, §6.3.95–98): the condition is present while PROD.OVFLG differs from
 * CONS.OVACKFLG.
 */
export function queueOverflowPending(prod: number, cons: number): boolean {
  return ((prod ^ cons) & Q_OVFLG) !== 0;
}

/**
 * PROD after the SMMU discards a record because the queue is full: OVFLG toggles if no overflow condition
 * is present, and is not updated again until software acknowledges the earlier one.
 */
export function queueRecordOverflow(prod: number, cons: number): number {
  return (queueOverflowPending(prod, cons) ? prod : prod ^ Q_OVFLG) >>> 0;
}

/** CONS with the overflow acknowledged: OVACKFLG made equal to PROD.OVFLG (what software writes). */
export function queueAcknowledgeOverflow(cons: number, prod: number): number {
  return ((cons & ~Q_OVFLG) | (prod & Q_OVFLG)) >>> 0;
}

/** CMDQ_CONS.ERR, the reason code of the active Command queue error (§6.3.28, §7.1). */
export function cmdqConsError(cons: number): number {
  return field32(cons, CMDQ_CONS_ERR.lsb, CMDQ_CONS_ERR.width);
}

/** CMDQ_CONS with ERR set to `code` (RD unchanged: it stays on the erroneous command). */
export function cmdqConsWithError(cons: number, code: number): number {
  return deposit32(cons, CMDQ_CONS_ERR.lsb, CMDQ_CONS_ERR.width, code);
}
