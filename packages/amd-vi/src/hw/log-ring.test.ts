import { MemoryBus, RegisterFile, Tracer } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AppendOutcome, EVENT_LOG_LAYOUT, LogRing, PPR_LOG_LAYOUT } from './log-ring.js';
import { AmdOptionsSchema, featuresFromOptions } from './options.js';
import {
  AMD_MMIO_SIZE,
  amdRegisterTable,
  CTRL_EVENT_INT_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_IOMMU_EN,
  CTRL_PPR_LOG_EN,
  MSI_CAP_EN,
  REG,
  STATUS_EVT_LOG_INT,
  STATUS_EVT_LOG_RUN,
  STATUS_EVT_OVERFLOW,
  STATUS_PPR_INT,
  STATUS_PPR_LOG_RUN,
} from './regs.js';
import { UnitInterrupts } from './unit-interrupts.js';

const LOG = 0x10_0000;
const WINDOW = 0xfee0_0000;
const ON = CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN;

/** The high half of a log base register: address bits 51:32 and Length 59:56. */
const baseHi = (length: number, high = 0) => ((length << 24) | high) >>> 0;

/** A unit's registers, a bus with RAM for the logs, the event-log ring and the unit's Control hook. */
function rig() {
  const features = featuresFromOptions(AmdOptionsSchema.parse({}));
  const regs = new RegisterFile(AMD_MMIO_SIZE, amdRegisterTable(features));
  const bus = new MemoryBus();
  bus.addRam('logs', LOG, 0x10_0000);
  const msis: number[] = [];
  bus.addMmio('apic', WINDOW, 0x1000, { read: () => 0, write: (_o, _s, value) => msis.push(value) });
  const counter = bus.counter('amd-vi');
  const interrupts = new UnitInterrupts({
    regs,
    bus,
    counter,
    requesterId: 2,
    tracer: new Tracer(),
    instance: 'iommu0',
  });
  const ring = new LogRing({ regs, bus, counter, layout: EVENT_LOG_LAYOUT, interrupts });
  regs.onWrite(REG.CONTROL, (value, old) => {
    interrupts.controlChanged(value, old);
    ring.controlChanged(value, old);
  });
  regs.write(REG.MSI_ADDR_LOW, 4, WINDOW);
  regs.write(REG.MSI_DATA, 4, 0x41);
  regs.write(REG.MSI_CAP_HDR, 4, MSI_CAP_EN);
  return { regs, bus, ring, msis, counter };
}

/** Linux iommu_enable_event_buffer: base and length, head = tail = 0, then EventLogEn (IommuEn set). */
function linuxEnable(regs: RegisterFile, length = 8, base = LOG, extra = 0) {
  regs.write(REG.EVT_LOG_BASE, 4, base % 2 ** 32);
  regs.write(REG.EVT_LOG_BASE + 4, 4, baseHi(length, Math.floor(base / 2 ** 32)));
  regs.write(REG.EVT_HEAD, 4, 0);
  regs.write(REG.EVT_TAIL, 4, 0);
  regs.write(REG.CONTROL, 4, ON | extra);
}

/** Linux amd_iommu_restart_log: only when Run is clear; EventLogEn, EventIntEn off, W1C overflow, both on. */
function linuxRestart(regs: RegisterFile) {
  if ((regs.read(REG.STATUS, 4) & STATUS_EVT_LOG_RUN) !== 0) return;
  const control = regs.read(REG.CONTROL, 4);
  regs.write(REG.CONTROL, 4, control & ~CTRL_EVENT_LOG_EN);
  regs.write(REG.CONTROL, 4, control & ~(CTRL_EVENT_LOG_EN | CTRL_EVENT_INT_EN));
  regs.write(REG.STATUS, 4, STATUS_EVT_OVERFLOW);
  regs.write(REG.CONTROL, 4, (control & ~CTRL_EVENT_LOG_EN) | CTRL_EVENT_INT_EN);
  regs.write(REG.CONTROL, 4, control | CTRL_EVENT_INT_EN | CTRL_EVENT_LOG_EN);
}

/** A record whose four words are `id`, `id + 1`, `id + 2`, `id + 3`. */
function record(id: number): Uint32Array {
  return Uint32Array.of(id, id + 1, id + 2, id + 3);
}

function readRecord(bus: MemoryBus, address: number): number[] {
  const words = new Uint32Array(4);
  expect(bus.readWords(address, words, 4, bus.counter('probe'))).toBe(true);
  return Array.from(words);
}

const status = (regs: RegisterFile) => regs.read(REG.STATUS, 4);

describe('LogRing: running (Control.EventLogEn, Status.EvtLogRun)', () => {
  it('resets with a reserved length: enabling does not start it and records are dropped', () => {
    const { regs, ring } = rig();
    expect(ring.size).toBe(0);
    regs.write(REG.CONTROL, 4, ON);
    expect(status(regs) & STATUS_EVT_LOG_RUN).toBe(0);
    expect(ring.append(record(1))).toBe('stopped');
  });

  it('runs only with IommuEn and EventLogEn both set, and stops when either clears', () => {
    const { regs, ring } = rig();
    regs.write(REG.EVT_LOG_BASE + 4, 4, baseHi(8));
    regs.write(REG.CONTROL, 4, CTRL_EVENT_LOG_EN);
    expect(ring.running).toBe(false);
    regs.write(REG.CONTROL, 4, ON);
    expect(status(regs)).toBe(STATUS_EVT_LOG_RUN);
    regs.write(REG.CONTROL, 4, CTRL_IOMMU_EN);
    expect(ring.running).toBe(false);
    regs.write(REG.CONTROL, 4, ON);
    regs.write(REG.CONTROL, 4, CTRL_EVENT_LOG_EN);
    expect(ring.running).toBe(false);
    expect(ring.append(record(1))).toBe('stopped');
    expect(ring.stopped).toBe(1);
  });

  it('sizes the ring 2^Length entries of 16 bytes, Length 8 to 15', () => {
    const { regs, ring } = rig();
    for (const length of [8, 9, 12, 15]) {
      regs.write(REG.EVT_LOG_BASE + 4, 4, baseHi(length));
      expect(ring.size).toBe(16 * 2 ** length);
    }
  });
});

describe('LogRing: records', () => {
  it('writes a record at Base + Tail word for word, advances Tail by 16 and sets EvtLogInt', () => {
    const { regs, bus, ring, counter } = rig();
    linuxEnable(regs);
    expect(ring.append(record(0x10))).toBe('written');
    expect(ring.append(record(0x20))).toBe('written');
    expect(readRecord(bus, LOG)).toEqual([0x10, 0x11, 0x12, 0x13]);
    expect(readRecord(bus, LOG + 16)).toEqual([0x20, 0x21, 0x22, 0x23]);
    expect(regs.read(REG.EVT_TAIL, 4)).toBe(32);
    expect([ring.lastOffset, ring.written]).toEqual([16, 2]);
    expect(status(regs)).toBe(STATUS_EVT_LOG_RUN | STATUS_EVT_LOG_INT);
    expect([counter.writes, counter.bytesWritten]).toEqual([2, 32]);
  });

  it('takes the base from bits 51:12 of both halves', () => {
    const { regs, bus, ring } = rig();
    const high = 0x2_0000_3000;
    bus.addRam('high', high, 0x1000);
    linuxEnable(regs, 8, high);
    expect(ring.address).toBe(high);
    ring.append(record(7));
    expect(readRecord(bus, high)).toEqual([7, 8, 9, 10]);
  });

  it('wraps Tail from the last entry to 0', () => {
    const { regs, bus, ring } = rig();
    linuxEnable(regs, 8);
    regs.write(REG.CONTROL, 4, CTRL_IOMMU_EN);
    regs.write(REG.EVT_HEAD, 4, 0xff0);
    regs.write(REG.EVT_TAIL, 4, 0xff0);
    regs.write(REG.CONTROL, 4, ON);
    expect(ring.append(record(1))).toBe('written');
    expect(readRecord(bus, LOG + 0xff0)).toEqual([1, 2, 3, 4]);
    expect(regs.read(REG.EVT_TAIL, 4)).toBe(0);
    expect(ring.append(record(5))).toBe('written');
    expect(readRecord(bus, LOG)).toEqual([5, 6, 7, 8]);
  });

  it('loses a record whose write aborts: Tail, Status and the interrupt untouched', () => {
    const { regs, ring, msis } = rig();
    linuxEnable(regs, 8, 0x4000_0000, CTRL_EVENT_INT_EN);
    expect(ring.append(record(1))).toBe('aborted');
    expect([regs.read(REG.EVT_TAIL, 4), status(regs), msis.length, ring.aborted]).toEqual([
      0,
      STATUS_EVT_LOG_RUN,
      0,
      1,
    ]);
  });
});

describe('LogRing: overflow and restart (§2.5.1)', () => {
  /** Fills a 256-entry ring: 255 records, Tail one entry behind Head. */
  function full() {
    const r = rig();
    linuxEnable(r.regs, 8, LOG, CTRL_EVENT_INT_EN);
    for (let i = 0; i < 255; i++) expect(r.ring.append(record(i * 4))).toBe('written');
    return r;
  }

  it('holds 2^Length − 1 records; the next sets EvtOverflow, clears EvtLogRun and is not written', () => {
    const { regs, bus, ring, msis } = full();
    expect(regs.read(REG.EVT_TAIL, 4)).toBe(0xff0);
    expect(ring.append(record(0xabc))).toBe('full');
    expect(status(regs)).toBe(STATUS_EVT_LOG_INT | STATUS_EVT_OVERFLOW);
    expect(regs.read(REG.EVT_TAIL, 4)).toBe(0xff0);
    expect(readRecord(bus, LOG + 0xff0)).toEqual([0, 0, 0, 0]);
    // EvtLogInt's message, then EvtOverflow's.
    expect(msis).toEqual([0x41, 0x41]);
    expect(ring.append(record(1))).toBe('stopped');
    expect([ring.overflows, ring.stopped]).toEqual([1, 1]);
  });

  it('restarts after Linux drains the log and runs amd_iommu_restart_log; Tail is not reset', () => {
    const { regs, bus, ring } = full();
    ring.append(record(0xabc));
    regs.write(REG.STATUS, 4, STATUS_EVT_LOG_INT | STATUS_EVT_OVERFLOW);
    regs.write(REG.EVT_HEAD, 4, regs.read(REG.EVT_TAIL, 4));
    regs.write(REG.STATUS, 4, STATUS_EVT_OVERFLOW);
    linuxRestart(regs);
    expect(status(regs)).toBe(STATUS_EVT_LOG_RUN);
    expect(regs.read(REG.EVT_TAIL, 4)).toBe(0xff0);
    expect(ring.append(record(0x500))).toBe('written');
    expect(readRecord(bus, LOG + 0xff0)).toEqual([0x500, 0x501, 0x502, 0x503]);
  });

  it('does not restart when EventLogEn is written 1 without first writing 0', () => {
    const { regs, ring } = full();
    ring.append(record(0xabc));
    regs.write(REG.STATUS, 4, STATUS_EVT_OVERFLOW);
    regs.write(REG.EVT_HEAD, 4, regs.read(REG.EVT_TAIL, 4));
    regs.write(REG.CONTROL, 4, regs.read(REG.CONTROL, 4));
    expect(ring.running).toBe(false);
    expect(ring.append(record(1))).toBe('stopped');
  });

  it('re-enabled with EvtOverflow still set, it runs but writes nothing until software clears the bit', () => {
    const { regs, ring } = full();
    ring.append(record(0xabc));
    regs.write(REG.EVT_HEAD, 4, regs.read(REG.EVT_TAIL, 4));
    regs.write(REG.CONTROL, 4, CTRL_IOMMU_EN);
    regs.write(REG.CONTROL, 4, ON);
    expect(status(regs) & (STATUS_EVT_LOG_RUN | STATUS_EVT_OVERFLOW)).toBe(
      STATUS_EVT_LOG_RUN | STATUS_EVT_OVERFLOW,
    );
    expect(ring.append(record(1))).toBe('stopped');
    regs.write(REG.STATUS, 4, STATUS_EVT_OVERFLOW);
    expect(ring.append(record(1))).toBe('written');
  });
});

describe('LogRing: software writes to Base, Head and Tail', () => {
  it('a base write resets Head and Tail to 0', () => {
    const { regs, ring } = rig();
    linuxEnable(regs);
    ring.append(record(1));
    regs.write(REG.EVT_HEAD, 4, 16);
    regs.write(REG.CONTROL, 4, CTRL_IOMMU_EN);
    regs.write(REG.EVT_LOG_BASE, 4, LOG + 0x1000);
    expect([regs.read(REG.EVT_HEAD, 4), regs.read(REG.EVT_TAIL, 4)]).toEqual([0, 0]);
    expect(ring.address).toBe(LOG + 0x1000);
  });

  it('ignores base writes while the log runs, and a reserved length at any time', () => {
    const { regs, ring } = rig();
    linuxEnable(regs);
    ring.append(record(1));
    regs.write(REG.EVT_LOG_BASE, 4, LOG + 0x1000);
    regs.write(REG.EVT_LOG_BASE + 4, 4, baseHi(9));
    expect([ring.address, ring.size, regs.read(REG.EVT_TAIL, 4)]).toEqual([LOG, 0x1000, 16]);
    regs.write(REG.CONTROL, 4, CTRL_IOMMU_EN);
    regs.write(REG.EVT_LOG_BASE + 4, 4, baseHi(7, 1));
    expect([regs.read(REG.EVT_LOG_BASE + 4, 4), regs.read(REG.EVT_TAIL, 4)]).toEqual([baseHi(8), 16]);
  });

  it('ignores Head and Tail values at or past the ring size', () => {
    const { regs } = rig();
    linuxEnable(regs);
    regs.write(REG.CONTROL, 4, CTRL_IOMMU_EN);
    regs.write(REG.EVT_HEAD, 4, 0x1000);
    regs.write(REG.EVT_TAIL, 4, 0x7_fff0);
    expect([regs.read(REG.EVT_HEAD, 4), regs.read(REG.EVT_TAIL, 4)]).toEqual([0, 0]);
    regs.write(REG.EVT_HEAD, 4, 0xff0);
    regs.write(REG.EVT_TAIL, 4, 0xff0);
    expect([regs.read(REG.EVT_HEAD, 4), regs.read(REG.EVT_TAIL, 4)]).toEqual([0xff0, 0xff0]);
  });

  it('ignores Tail writes while the log runs; Head writes free entries', () => {
    const { regs, ring } = rig();
    linuxEnable(regs);
    for (let i = 0; i < 255; i++) ring.append(record(i));
    regs.write(REG.EVT_TAIL, 4, 0);
    expect(regs.read(REG.EVT_TAIL, 4)).toBe(0xff0);
    regs.write(REG.EVT_HEAD, 4, 0x20);
    expect(ring.append(record(1))).toBe('written');
    expect(ring.append(record(2))).toBe('written');
    expect(ring.append(record(3))).toBe('full');
  });
});

describe('LogRing: the same mechanism on the PPR log registers', () => {
  it('writes at PPR base + tail, advances PPR tail and sets PPRInt and PPRLogRun', () => {
    const { regs, bus } = rig();
    const interrupts = new UnitInterrupts({
      regs,
      bus,
      counter: bus.counter('ppr'),
      requesterId: 2,
      tracer: new Tracer(),
      instance: 'iommu0',
    });
    const ppr = new LogRing({ regs, bus, counter: bus.counter('ppr'), layout: PPR_LOG_LAYOUT, interrupts });
    regs.write(REG.PPR_LOG_BASE, 4, LOG + 0x8000);
    regs.write(REG.PPR_LOG_BASE + 4, 4, baseHi(8));
    ppr.controlChanged(CTRL_IOMMU_EN | CTRL_PPR_LOG_EN, 0);
    expect(ppr.append(record(9))).toBe('written');
    expect(readRecord(bus, LOG + 0x8000)).toEqual([9, 10, 11, 12]);
    expect([regs.read(REG.PPR_TAIL, 4), regs.read(REG.EVT_TAIL, 4)]).toEqual([16, 0]);
    expect(status(regs)).toBe(STATUS_PPR_LOG_RUN | STATUS_PPR_INT);
  });
});

describe('LogRing: against a reference queue', () => {
  type Op = { kind: 'append' } | { kind: 'consume'; count: number } | { kind: 'restart' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.constant({ kind: 'append' as const }) },
    {
      weight: 2,
      arbitrary: fc.integer({ min: 1, max: 300 }).map((count) => ({ kind: 'consume' as const, count })),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  );

  it('delivers records in order, never more than 2^Length − 1, dropping exactly when full or stopped', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 700 }), fc.integer({ min: 0, max: 255 }), (ops, start) => {
        const { regs, bus, ring } = rig();
        linuxEnable(regs, 8);
        // Start anywhere in the ring, as after a previous life.
        regs.write(REG.CONTROL, 4, CTRL_IOMMU_EN);
        regs.write(REG.EVT_HEAD, 4, start * 16);
        regs.write(REG.EVT_TAIL, 4, start * 16);
        regs.write(REG.CONTROL, 4, ON);
        const queue: number[] = [];
        let stopped = false;
        let id = 1;
        for (const o of ops) {
          if (o.kind === 'append') {
            const expected: AppendOutcome = stopped ? 'stopped' : queue.length === 255 ? 'full' : 'written';
            expect(ring.append(record(id * 4))).toBe(expected);
            if (expected === 'written') queue.push(id * 4);
            if (expected === 'full') stopped = true;
            id++;
          } else if (o.kind === 'consume') {
            let head = regs.read(REG.EVT_HEAD, 4);
            for (let n = 0; n < o.count && head !== regs.read(REG.EVT_TAIL, 4); n++) {
              expect(readRecord(bus, LOG + head)[0]).toBe(queue.shift());
              head = (head + 16) % 0x1000;
            }
            regs.write(REG.EVT_HEAD, 4, head);
          } else {
            linuxRestart(regs);
            stopped = false;
          }
          expect((regs.read(REG.EVT_TAIL, 4) - regs.read(REG.EVT_HEAD, 4) + 0x1000) % 0x1000).toBe(
            queue.length * 16,
          );
        }
      }),
    );
  });
});
