import { describe, expect, it } from 'vitest';
import { EVENTQ_ADDR, MSI_ADDR, PRIQ_ADDR, type Rig, rig } from '../../test/queue-fixtures.js';
import { EVENT_ID, encodeEvent } from './events.js';
import { encodePriEntry } from './priq.js';
import { queueAcknowledgeOverflow } from './queue-index.js';
import {
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  GERROR_EVENTQ_ABT_ERR,
  GERROR_PRIQ_ABT_ERR,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  PRIQ_IRQ_CFG2_LO,
  Q_OVFLG,
  REG,
} from './regs.js';

/** An Event queue of 2^log2 records at `base`, enabled, with its interrupt and GERROR's enabled. */
function enableEventq(r: Rig, log2: number, base = EVENTQ_ADDR): void {
  r.mmio64(REG.EVENTQ_BASE, base + log2);
  r.mmio(REG.IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN);
  r.mmio(REG.CR0, CR0_EVENTQEN);
}

const fault = (streamId: number, page: number) =>
  encodeEvent({ id: EVENT_ID.F_TRANSLATION, streamId, inputAddrPage: page, rnw: true });

/** The driver consumes `count` records (CONS := PROD, keeping OVACKFLG unless `ack`). */
function consumeAll(r: Rig, prodReg: number, consReg: number, ack = false): void {
  const prod = r.read(prodReg);
  const cons = r.read(consReg);
  const rd = prod & 0x000f_ffff;
  r.mmio(consReg, ack ? queueAcknowledgeOverflow(rd, prod) : ((cons & Q_OVFLG) | rd) >>> 0);
}

describe('Event queue producer (SMMUv3 §3.5, §7.2, §7.4)', () => {
  it('writes each record byte for byte at BASE + index × 32 and wraps with the wrap flag', () => {
    const r = rig();
    enableEventq(r, 2); // 4 records
    const records = [1, 2, 3].map((i) => fault(0x10 + i, 0x1000 + i));
    for (const [i, words] of records.entries()) {
      expect(r.queues.eventq.record(words)).toEqual({
        recorded: true,
        index: i,
        address: EVENTQ_ADDR + i * 32,
      });
    }
    for (const [i, words] of records.entries()) expect(r.words(EVENTQ_ADDR + i * 32, 8)).toEqual([...words]);
    const bytes = r.bus.readBytes(EVENTQ_ADDR + 32, 8, r.bus.counter('t'));
    // Event ID 0x10 in byte 0, StreamID 0x12 little-endian in bytes 4–7.
    expect(bytes.ok && [...bytes.data]).toEqual([0x10, 0, 0, 0, 0x12, 0, 0, 0]);
    expect(r.read(REG.EVENTQ_PROD)).toBe(3);

    consumeAll(r, REG.EVENTQ_PROD, REG.EVENTQ_CONS);
    const more = [4, 5].map((i) => fault(0x10 + i, 0x1000 + i));
    expect(r.queues.eventq.record(more[0]!)).toMatchObject({ index: 3 });
    expect(r.queues.eventq.record(more[1]!)).toMatchObject({ index: 0, address: EVENTQ_ADDR });
    expect(r.words(EVENTQ_ADDR, 8)).toEqual([...more[1]!]);
    expect(r.read(REG.EVENTQ_PROD)).toBe(0b101); // index 1, wrap 1
  });

  it('interrupts when the queue goes from empty to non-empty, per IRQ_CTRL.EVENTQ_IRQEN', () => {
    const r = rig();
    enableEventq(r, 3);
    let handled = 0;
    r.line('eventq').connect(() => handled++);
    r.queues.eventq.record(fault(1, 1));
    r.queues.eventq.record(fault(1, 2));
    expect(r.line('eventq').raised).toBe(1);
    r.ic.service();
    expect(handled).toBe(1);
    consumeAll(r, REG.EVENTQ_PROD, REG.EVENTQ_CONS);
    r.queues.eventq.record(fault(1, 3));
    expect(r.line('eventq').raised).toBe(2);
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
    consumeAll(r, REG.EVENTQ_PROD, REG.EVENTQ_CONS);
    r.queues.eventq.record(fault(1, 4));
    expect(r.line('eventq').raised).toBe(2);
  });

  it('full: drops records and toggles OVFLG once; the acknowledgement through CONS re-arms it', () => {
    const r = rig();
    enableEventq(r, 1); // 2 records
    r.queues.eventq.record(fault(1, 1));
    r.queues.eventq.record(fault(1, 2));
    expect(r.queues.eventq.blocked()).toBe('full');
    expect(r.queues.eventq.record(fault(1, 3))).toEqual({
      recorded: false,
      reason: 'full',
      overflowed: true,
    });
    expect(r.queues.eventq.overflowPending()).toBe(true);
    expect((r.read(REG.EVENTQ_PROD) & Q_OVFLG) >>> 0).toBe(Q_OVFLG >>> 0);
    expect(r.queues.eventq.record(fault(1, 4))).toEqual({
      recorded: false,
      reason: 'full',
      overflowed: false,
    });
    expect(r.read(REG.EVENTQ_PROD)).toBe((Q_OVFLG | 0b10) >>> 0); // index 0, wrap 1: nothing more written
    expect(r.queues.eventq.overflowPending()).toBe(true);

    // Consumed without acknowledging: the Event queue still records (§7.4), and a new overflow is invisible.
    consumeAll(r, REG.EVENTQ_PROD, REG.EVENTQ_CONS);
    expect(r.queues.eventq.record(fault(1, 5)).recorded).toBe(true);
    r.queues.eventq.record(fault(1, 6));
    expect(r.queues.eventq.record(fault(1, 7))).toMatchObject({ overflowed: false });

    // Consumed and acknowledged: the next overflow toggles OVFLG back.
    consumeAll(r, REG.EVENTQ_PROD, REG.EVENTQ_CONS, true);
    expect(r.queues.eventq.overflowPending()).toBe(false);
    r.queues.eventq.record(fault(1, 8));
    r.queues.eventq.record(fault(1, 9));
    expect(r.queues.eventq.record(fault(1, 10))).toMatchObject({ overflowed: true });
    expect(r.read(REG.EVENTQ_PROD) & Q_OVFLG).toBe(0);
    expect(r.queues.eventq.overflowPending()).toBe(true);
    expect(r.queues.eventq.stats()).toMatchObject({
      eventqRecorded: 6,
      eventqDroppedFull: 4,
      eventqOverflows: 2,
    });
  });

  it('a stall record is kept back, not dropped into an overflow', () => {
    const r = rig();
    enableEventq(r, 0); // 1 record
    r.queues.eventq.record(fault(1, 1));
    expect(r.queues.eventq.record(fault(1, 2), { stall: true })).toEqual({
      recorded: false,
      reason: 'full',
      overflowed: false,
    });
    expect(r.queues.eventq.overflowPending()).toBe(false);
    expect(r.queues.eventq.deferred).toBe(1);
  });

  it('markOverflow enters the overflow condition once, until software acknowledges it', () => {
    const r = rig();
    enableEventq(r, 3);
    r.queues.eventq.record(fault(1, 1));
    expect(r.queues.eventq.markOverflow()).toBe(true);
    expect((r.read(REG.EVENTQ_PROD) & Q_OVFLG) >>> 0).toBe(Q_OVFLG >>> 0);
    expect(r.read(REG.EVENTQ_PROD) & 0xf).toBe(1); // nothing written, nothing lost from the queue
    expect(r.queues.eventq.markOverflow()).toBe(false);
    consumeAll(r, REG.EVENTQ_PROD, REG.EVENTQ_CONS, true);
    expect(r.queues.eventq.markOverflow()).toBe(true);
    expect(r.queues.eventq.stats()).toMatchObject({ eventqOverflows: 2 });
  });

  it('disabled (CR0ACK.EVENTQEN == 0): records are discarded without overflow', () => {
    const r = rig();
    r.mmio64(REG.EVENTQ_BASE, EVENTQ_ADDR + 0);
    expect(r.queues.eventq.writable()).toBe(false);
    expect(r.queues.eventq.record(fault(1, 1))).toEqual({
      recorded: false,
      reason: 'disabled',
      overflowed: false,
    });
    expect(r.read(REG.EVENTQ_PROD)).toBe(0);
  });

  it('a write abort activates EVENTQ_ABT_ERR and stops delivery until GERRORN acknowledges it', () => {
    const r = rig();
    r.bus.addRam('page', 0x4000_0000, 0x1000);
    // 256 records (8 KiB) over one 4 KiB page: record 128 is on no region.
    r.mmio(REG.EVENTQ_PROD, 127);
    r.mmio(REG.EVENTQ_CONS, 127);
    enableEventq(r, 8, 0x4000_0000);
    expect(r.queues.eventq.record(fault(1, 1)).recorded).toBe(true);
    expect(r.queues.eventq.record(fault(1, 2))).toEqual({
      recorded: false,
      reason: 'write-abort',
      overflowed: false,
    });
    expect(r.read(REG.EVENTQ_PROD)).toBe(128); // not advanced past the failed entry
    expect(r.read(REG.GERROR) & GERROR_EVENTQ_ABT_ERR).toBe(GERROR_EVENTQ_ABT_ERR);
    expect(r.line('gerror').raised).toBe(1);
    expect(r.queues.eventq.record(fault(1, 3))).toMatchObject({ reason: 'abort-active' });
    // Software re-initialises the queue elsewhere and acknowledges.
    r.mmio(REG.CR0, 0);
    r.mmio64(REG.EVENTQ_BASE, EVENTQ_ADDR + 8);
    r.mmio(REG.CR0, CR0_EVENTQEN);
    r.mmio(REG.GERRORN, r.read(REG.GERROR));
    expect(r.queues.eventq.record(fault(1, 4))).toMatchObject({ recorded: true, index: 128 });
  });
});

describe('PRI queue producer (SMMUv3 §8)', () => {
  function enablePriq(r: Rig, log2: number, lastOnly = false): void {
    r.mmio64(REG.PRIQ_BASE, PRIQ_ADDR + log2);
    if (lastOnly) r.mmio(REG.PRIQ_IRQ_CFG2, PRIQ_IRQ_CFG2_LO);
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_PRIQ_IRQEN | IRQ_CTRL_GERROR_IRQEN);
    r.mmio(REG.CR0, CR0_SMMUEN | CR0_PRIQEN);
  }
  const request = (prgIndex: number, last: boolean) =>
    encodePriEntry({ streamId: 5, prgIndex, last, read: true, addressPage: 0x100 + prgIndex });

  it('writes 16-byte entries at BASE + index × 16 and interrupts on empty → non-empty', () => {
    const r = rig();
    enablePriq(r, 3);
    const a = request(1, false);
    const b = request(1, true);
    expect(r.queues.priq.record(a)).toEqual({ recorded: true, index: 0, address: PRIQ_ADDR });
    expect(r.queues.priq.record(b)).toEqual({ recorded: true, index: 1, address: PRIQ_ADDR + 16 });
    expect(r.words(PRIQ_ADDR, 8)).toEqual([...a, ...b]);
    expect(r.read(REG.PRIQ_PROD)).toBe(2);
    expect(r.line('priq').raised).toBe(1);
  });

  it('is disabled while SMMUEN == 0 (effective PRIQEN, §6.3.9.5)', () => {
    const r = rig();
    r.mmio64(REG.PRIQ_BASE, PRIQ_ADDR + 3);
    r.mmio(REG.CR0, CR0_PRIQEN);
    expect(r.queues.priq.record(request(1, true))).toMatchObject({ reason: 'disabled' });
  });

  it('an active overflow inhibits new entries until acknowledged (unlike the Event queue, §8.1)', () => {
    const r = rig();
    enablePriq(r, 1);
    r.queues.priq.record(request(1, false));
    r.queues.priq.record(request(1, true));
    expect(r.queues.priq.record(request(2, true))).toEqual({
      recorded: false,
      reason: 'full',
      overflowed: true,
    });
    // Consumed but not acknowledged: still inhibited.
    consumeAll(r, REG.PRIQ_PROD, REG.PRIQ_CONS);
    expect(r.queues.priq.record(request(3, true))).toMatchObject({ reason: 'overflow-active' });
    consumeAll(r, REG.PRIQ_PROD, REG.PRIQ_CONS, true);
    expect(r.queues.priq.record(request(4, true)).recorded).toBe(true);
    expect(r.queues.priq.stats()).toMatchObject({
      priqRecorded: 3,
      priqDroppedFull: 1,
      priqDroppedOverflow: 1,
    });
  });

  it('PRIQ_IRQ_CFG2.LO: interrupts for Last entries, also those discarded by an overflow', () => {
    const r = rig();
    enablePriq(r, 1, true);
    r.queues.priq.record(request(1, false));
    expect(r.line('priq').raised).toBe(0);
    r.queues.priq.record(request(1, true));
    expect(r.line('priq').raised).toBe(1);
    r.queues.priq.record(request(2, true)); // full: overflow, discarded, still interrupts
    expect(r.line('priq').raised).toBe(2);
    r.queues.priq.record(request(3, false));
    expect(r.line('priq').raised).toBe(2);
    // Discarded for another reason (disabled): no interrupt.
    r.mmio(REG.CR0, CR0_SMMUEN);
    r.queues.priq.record(request(4, true));
    expect(r.line('priq').raised).toBe(2);
  });

  it('a write abort activates PRIQ_ABT_ERR; an MSI of the PRI queue goes to PRIQ_IRQ_CFG0', () => {
    const r = rig();
    r.mmio64(REG.PRIQ_IRQ_CFG0, MSI_ADDR);
    r.mmio(REG.PRIQ_IRQ_CFG1, 0x55);
    enablePriq(r, 3);
    r.queues.priq.record(request(1, true));
    expect(r.words(MSI_ADDR, 1)).toEqual([0x55]);
    r.mmio(REG.CR0, 0);
    r.mmio64(REG.PRIQ_BASE, 0x7000_0000 + 3);
    r.mmio(REG.CR0, CR0_SMMUEN | CR0_PRIQEN);
    expect(r.queues.priq.record(request(2, true))).toMatchObject({ reason: 'write-abort' });
    expect(r.read(REG.GERROR) & GERROR_PRIQ_ABT_ERR).toBe(GERROR_PRIQ_ABT_ERR);
    expect(r.queues.priq.blocked()).toBe('abort-active');
  });
});
