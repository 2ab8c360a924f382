import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CMDQ_ENTRY_BYTES,
  cmdqConsError,
  cmdqConsWithError,
  decodeQueueBase,
  EVENTQ_ENTRY_BYTES,
  PRIQ_ENTRY_BYTES,
  queueAcknowledgeOverflow,
  queueBase,
  queueCapacity,
  queueEffectiveLog2,
  queueEmpty,
  queueEntryAddress,
  queueFree,
  queueFull,
  queueIncrement,
  queueIndex,
  queueOverflowPending,
  queueRecordOverflow,
  queueUsed,
  queueWrap,
} from './queue-index.js';
import { CERROR_ABT, CERROR_ILL, Q_OVFLG } from './regs.js';

describe.each([1, 5, 19])('a queue of 2^%i entries', (log2) => {
  const size = 2 ** log2;
  const wrapBit = 2 ** log2;

  it('starts empty and fills after 2^n increments, the producer one wrap ahead', () => {
    let prod = 0;
    const cons = 0;
    expect(queueEmpty(prod, cons, log2)).toBe(true);
    expect(queueFull(prod, cons, log2)).toBe(false);
    prod = queueIncrement(prod, log2, size - 1);
    expect(queueUsed(prod, cons, log2)).toBe(size - 1);
    expect(queueFree(prod, cons, log2)).toBe(1);
    expect(queueFull(prod, cons, log2)).toBe(false);
    prod = queueIncrement(prod, log2);
    expect(prod).toBe(wrapBit);
    expect(queueIndex(prod, log2)).toBe(0);
    expect(queueWrap(prod, log2)).toBe(1);
    expect(queueFull(prod, cons, log2)).toBe(true);
    expect(queueEmpty(prod, cons, log2)).toBe(false);
    expect(queueUsed(prod, cons, log2)).toBe(size);
    expect(queueFree(prod, cons, log2)).toBe(0);
  });

  it('wraps the index and toggles the wrap flag at the top, in both directions', () => {
    const last = size - 1;
    expect(queueIncrement(last, log2)).toBe(wrapBit);
    expect(queueIncrement(wrapBit | last, log2)).toBe(0);
    // A producer that has wrapped, a consumer that has not yet: partly full.
    const prod = wrapBit | 0;
    const cons = last;
    expect(queueUsed(prod, cons, log2)).toBe(1);
    expect(queueEmpty(queueIncrement(cons, log2), prod, log2)).toBe(true);
  });

  it('preserves OVFLG and CMDQ_CONS.ERR across an increment and clears bits [19:n+1]', () => {
    const above = log2 < 19 ? 2 ** 19 : 0;
    expect(queueIncrement(Q_OVFLG | above | (size - 1), log2)).toBe((Q_OVFLG | wrapBit) >>> 0);
    const cons = cmdqConsWithError(2, CERROR_ILL);
    expect(cmdqConsError(queueIncrement(cons, log2))).toBe(CERROR_ILL);
    expect(queueIndex(queueIncrement(cons, log2), log2)).toBe(3 % size);
  });

  it('compares indices regardless of OVFLG / OVACKFLG', () => {
    expect(queueEmpty(Q_OVFLG | 1, 1, log2)).toBe(true);
    expect(queueFull(wrapBit | Q_OVFLG, 0, log2)).toBe(true);
  });

  it('addresses entries at base + index × size', () => {
    const base = 0x8_0000_0000;
    expect(queueEntryAddress(base, wrapBit | (size - 1), log2, EVENTQ_ENTRY_BYTES)).toBe(
      base + (size - 1) * 32,
    );
    expect(queueEntryAddress(base, wrapBit, log2, CMDQ_ENTRY_BYTES)).toBe(base);
  });

  it('keeps used + free = 2^n and advances used by k (fast-check)', () => {
    fc.assert(
      fc.property(fc.nat(2 * size - 1), fc.nat(size), fc.nat(size), (cons, a, b) => {
        fc.pre(a + b <= size);
        const prod = queueIncrement(cons, log2, a);
        expect(queueUsed(prod, cons, log2)).toBe(a);
        expect(queueUsed(queueIncrement(prod, log2, b), cons, log2)).toBe(a + b);
        expect(queueUsed(prod, cons, log2) + queueFree(prod, cons, log2)).toBe(size);
        expect(queueEmpty(prod, cons, log2)).toBe(a === 0);
        expect(queueFull(prod, cons, log2)).toBe(a === size);
      }),
    );
  });
});

describe('queue index edge cases', () => {
  it('a one-entry queue (LOG2SIZE 0) has only the wrap flag at bit 0', () => {
    expect(queueCapacity(0)).toBe(1);
    expect(queueIncrement(0, 0)).toBe(1);
    expect(queueIncrement(1, 0)).toBe(0);
    expect(queueFull(1, 0, 0)).toBe(true);
    expect(queueEmpty(1, 1, 0)).toBe(true);
  });

  it('caps LOG2SIZE at the IDR1 maximum', () => {
    expect(queueEffectiveLog2(19, 8)).toBe(8);
    expect(queueEffectiveLog2(4, 8)).toBe(4);
  });

  it('aligns the base to the queue size, at least 32 bytes', () => {
    expect(queueBase(0x1_2345_6fe0, 8, CMDQ_ENTRY_BYTES)).toBe(0x1_2345_6000);
    expect(queueBase(0x1_2345_6fe0, 0, CMDQ_ENTRY_BYTES)).toBe(0x1_2345_6fe0);
    expect(queueBase(0x1_2345_6ff0, 0, CMDQ_ENTRY_BYTES)).toBe(0x1_2345_6fe0);
    expect(queueBase(0xffff_fff0_0000, 19, EVENTQ_ENTRY_BYTES)).toBe(0xffff_ff00_0000);
    expect(PRIQ_ENTRY_BYTES).toBe(16);
  });

  it('decodes a queue base register pair', () => {
    // ADDR = 0x12_3456_7000, LOG2SIZE 20 capped at 19, WA/RA set.
    expect(decodeQueueBase(0x3456_7014, 0x4000_0012, 19, EVENTQ_ENTRY_BYTES)).toEqual({
      base: 0x12_3400_0000,
      log2: 19,
    });
    expect(decodeQueueBase(0x3456_7008, 0x12, 19, CMDQ_ENTRY_BYTES)).toEqual({
      base: 0x12_3456_7000,
      log2: 8,
    });
  });
});

describe('overflow flag protocol (Event and PRI queues)', () => {
  it('toggles OVFLG on an overflow, once until software acknowledges it', () => {
    let prod = 0x10;
    let cons = 0;
    expect(queueOverflowPending(prod, cons)).toBe(false);
    prod = queueRecordOverflow(prod, cons);
    expect(prod).toBe((Q_OVFLG | 0x10) >>> 0);
    expect(queueOverflowPending(prod, cons)).toBe(true);
    // A second overflow before the acknowledgement changes nothing.
    expect(queueRecordOverflow(prod, cons)).toBe(prod);
    cons = queueAcknowledgeOverflow(queueIncrement(cons, 5, 0x10), prod);
    expect(cons).toBe((Q_OVFLG | 0x10) >>> 0);
    expect(queueOverflowPending(prod, cons)).toBe(false);
    // The next overflow toggles OVFLG back to 0.
    prod = queueRecordOverflow(prod, cons);
    expect(prod).toBe(0x10);
    expect(queueOverflowPending(prod, cons)).toBe(true);
    expect(queueAcknowledgeOverflow(cons, prod)).toBe(0x10);
  });
});

describe('CMDQ_CONS.ERR', () => {
  it('lives in bits [30:24] and leaves RD alone', () => {
    const cons = cmdqConsWithError(0x8_0005, CERROR_ABT);
    expect(cons).toBe(0x0208_0005);
    expect(cmdqConsError(cons)).toBe(CERROR_ABT);
    expect(cmdqConsWithError(cons, 0x7f)).toBe(0x7f08_0005);
  });
});
