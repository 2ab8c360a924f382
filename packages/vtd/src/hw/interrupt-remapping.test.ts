import { MemoryBus, NO_PASID, PERM_WRITE, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { FEATURES } from '../../test/features.js';
import type { VtdFeatures } from './features.js';
import { type IrFaultRecord, VtdInterruptRemapping } from './interrupt-remapping.js';

const RAM = 0x10_0000;
const TABLE = RAM;
const TABLE_B = RAM + 0x1_0000;
const PID_AT = RAM + 0x8_0040;
const UNMAPPED = 0x4000_0000;
const SID = 0x0108;

/**
 * Remappable-format address (§5.1.5.2; Linux MSI_ADDR_IR_*): 0xFEE in bits 31:20, handle[14:0] in 19:5,
 * interrupt format 4, SHV 3, handle[15] 2.
 */
const rfi = (handle: number, shv = false) =>
  BigInt((0xfee0_0000 | ((handle & 0x7fff) << 5) | 0x10 | (shv ? 8 : 0) | ((handle >>> 15) << 2)) >>> 0);
/** Compatibility format: destination ID 1 in bits 19:12, format bit 4 clear. */
const COMPAT = 0xfee0_1000n;

// IRTE words (§9.10/§9.11), written from Linux `struct irte` / VirtualBox VTD_BF_*_IRTE_* positions:
// P 0, FPD 1, DM 2, RH 3, TM 4, DLM 7:5, IM 15, URG 14, vector 23:16 | DST 63:32 (xAPIC ID in 47:40) or
// PDA[31:6] 63:38 | SID 79:64, SQ 81:80, SVT 83:82 | PDA[63:32] 127:96.
/** Vector 0x41, fixed, physical, edge, xAPIC destination 5. */
const XAPIC_5 = [0x0041_0001, 0x0000_0500, 0, 0];
/** Vector 0x51, lowest priority, logical, level, RH, x2APIC destination 0x12345. */
const X2APIC = [0x0051_003d, 0x0001_2345, 0, 0];
const NOT_PRESENT = [0x0041_0000, 0x0000_0500, 0, 0];
/** XAPIC_5 with reserved bit 12 set. */
const RESERVED = [0x0041_1001, 0x0000_0500, 0, 0];
/** XAPIC_5 with SVT = 1 (verify SID), SQ = 0, SID 0x0108. */
const VERIFY_SID = [0x0041_0001, 0x0000_0500, 0x0004_0108, 0];
/** Posted, vector 0x45, descriptor at PID_AT. */
const POSTED = [0x0045_8001, PID_AT, 0, 0];
const URGENT = 0x4000;
const FPD = 0x2;

const withWord0 = (words: readonly number[], bits: number) => [(words[0]! | bits) >>> 0, ...words.slice(1)];

/** IRTA_REG low half: address bits 31:12, EIME 11, S 3:0. */
const irta = (base: number, s: number, eime = false) => (base | (eime ? 0x800 : 0) | s) >>> 0;

function setup(features: Partial<VtdFeatures> = {}, tracer?: Tracer) {
  const bus = new MemoryBus();
  bus.addRam('ram', RAM, 0x10_0000);
  const who = bus.counter('test');
  const faults: IrFaultRecord[] = [];
  const recorder = { full: false };
  const counter = bus.counter('vtd-ir');
  const unit = new VtdInterruptRemapping({
    bus,
    counter,
    features: { ...FEATURES, ...features },
    iecGeometry: { sets: 4, ways: 4, policy: 'lru' },
    recordFault: (f) => {
      faults.push(f);
      return !recorder.full;
    },
    instance: 'dmar0',
    ...(tracer ? { tracer } : {}),
  });
  const writeIrte = (index: number, words: readonly number[], table = TABLE) =>
    expect(bus.writeWords(table + 16 * index, words, 4, who)).toBe(true);
  /** SIRTP with a 2^(s+1)-entry table, then IRE (and CFI when `cfi`). */
  const enable = (opts: { table?: number; s?: number; eime?: boolean; cfi?: boolean } = {}) => {
    unit.latchTable(irta(opts.table ?? TABLE, opts.s ?? 7, opts.eime ?? false), 0);
    unit.setEnabled(true);
    unit.setCompatibilityAllowed(opts.cfi ?? false);
  };
  const pidWords = () => {
    const out = new Uint32Array(10);
    expect(bus.readWords(PID_AT, out, 10, who)).toBe(true);
    return [...out];
  };
  return { unit, bus, who, counter, faults, recorder, writeIrte, enable, pidWords };
}

const blocked = (reason: number, iova: bigint, recorded = true, sid = SID) => ({
  kind: 'blocked',
  fault: {
    kind: 'interrupt',
    vendorCode: `DMAR_FR_0x${reason.toString(16)}`,
    streamId: sid,
    pasid: NO_PASID,
    iova,
    access: PERM_WRITE,
    recorded,
  },
});

describe('VtdInterruptRemapping: remapping off and compatibility format (§5.1.5.1)', () => {
  it('passes every request through while GSTS.IRES = 0, remappable or not', () => {
    const { unit, writeIrte } = setup();
    writeIrte(0, XAPIC_5);
    unit.latchTable(irta(TABLE, 7), 0);
    expect(unit.request(SID, rfi(0), 0)).toEqual({ kind: 'passthrough' });
    expect(unit.request(SID, COMPAT, 0x41)).toEqual({ kind: 'passthrough' });
    unit.setEnabled(true);
    unit.setEnabled(false);
    expect(unit.request(SID, rfi(0), 0)).toEqual({ kind: 'passthrough' });
  });

  it('passes a compatibility-format request with CFIS = 1 and EIME = 0', () => {
    const { unit, enable, faults } = setup();
    enable({ cfi: true });
    expect(unit.request(SID, COMPAT, 0x41)).toEqual({ kind: 'passthrough' });
    expect(faults).toEqual([]);
  });

  it('blocks it with 0x25 (no index) when CFIS = 0', () => {
    const { unit, enable, faults } = setup();
    enable({ cfi: false });
    expect(unit.request(SID, COMPAT, 0x41)).toEqual(blocked(0x25, COMPAT));
    expect(faults).toEqual([{ sid: SID, index: undefined, reason: 0x25 }]);
  });

  it('blocks it with 0x25 when the latched EIME = 1, whatever CFIS says', () => {
    const { unit, enable, faults } = setup();
    enable({ eime: true, cfi: true });
    expect(unit.request(SID, COMPAT, 0x41)).toEqual(blocked(0x25, COMPAT));
    expect(faults).toEqual([{ sid: SID, index: undefined, reason: 0x25 }]);
  });
});

describe('VtdInterruptRemapping: remappable-format faults (§5.1.4.1)', () => {
  it('0x20: data bits 31:16 set, no index', () => {
    const { unit, enable, writeIrte, faults } = setup();
    writeIrte(0, XAPIC_5);
    enable();
    expect(unit.request(SID, rfi(0), 0x0001_0000)).toEqual(blocked(0x20, rfi(0)));
    expect(faults).toEqual([{ sid: SID, index: undefined, reason: 0x20 }]);
  });

  it('0x21: an index beyond the 2^(S+1) entries SIRTP latched', () => {
    const { unit, enable, writeIrte, faults } = setup();
    writeIrte(1, XAPIC_5);
    writeIrte(2, XAPIC_5);
    enable({ s: 0 });
    expect(unit.request(SID, rfi(1), 0)).toMatchObject({ kind: 'remapped', index: 1 });
    expect(unit.request(SID, rfi(2), 0)).toEqual(blocked(0x21, rfi(2)));
    // Handle 1 + subhandle 1 is index 2 too.
    expect(unit.request(SID, rfi(1, true), 1)).toEqual(blocked(0x21, rfi(1, true)));
    expect(faults).toEqual([
      { sid: SID, index: 2, reason: 0x21 },
      { sid: SID, index: 2, reason: 0x21 },
    ]);
  });

  it('0x21: a handle past 0xFFFF after the subhandle is reported by its low 16 bits', () => {
    const { unit, enable, faults } = setup();
    enable({ s: 15 });
    unit.request(SID, rfi(0xffff, true), 3);
    expect(faults).toEqual([{ sid: SID, index: 2, reason: 0x21 }]);
  });

  it('0x21 for every remappable request before the first SIRTP', () => {
    const { unit, writeIrte, faults } = setup();
    writeIrte(0, XAPIC_5);
    unit.setEnabled(true);
    expect(unit.latchedTable).toEqual({ base: 0, entries: 0, eim: false });
    expect(unit.request(SID, rfi(0), 0)).toEqual(blocked(0x21, rfi(0)));
    expect(faults).toEqual([{ sid: SID, index: 0, reason: 0x21 }]);
  });

  it('0x22: the IRTE is not present', () => {
    const { unit, enable, writeIrte, faults } = setup();
    writeIrte(3, NOT_PRESENT);
    enable();
    expect(unit.request(SID, rfi(3), 0)).toEqual(blocked(0x22, rfi(3)));
    expect(faults).toEqual([{ sid: SID, index: 3, reason: 0x22 }]);
  });

  it('0x23: reading the IRTE aborts', () => {
    const { unit, enable, faults } = setup();
    enable({ table: UNMAPPED });
    expect(unit.request(SID, rfi(4), 0)).toEqual(blocked(0x23, rfi(4)));
    expect(faults).toEqual([{ sid: SID, index: 4, reason: 0x23 }]);
  });

  it('0x24: a reserved bit, and xAPIC destination bits 39:32 with EIME = 0 (x2APIC IDs are fine with EIME = 1)', () => {
    const { unit, enable, writeIrte, faults } = setup();
    writeIrte(5, RESERVED);
    writeIrte(6, [0x0041_0001, 0x0000_0501, 0, 0]);
    enable();
    expect(unit.request(SID, rfi(5), 0)).toEqual(blocked(0x24, rfi(5)));
    expect(unit.request(SID, rfi(6), 0)).toEqual(blocked(0x24, rfi(6)));
    expect(faults).toEqual([
      { sid: SID, index: 5, reason: 0x24 },
      { sid: SID, index: 6, reason: 0x24 },
    ]);
    enable({ eime: true });
    expect(unit.request(SID, rfi(6), 0)).toMatchObject({
      kind: 'remapped',
      interrupt: { destination: 0x501 },
    });
  });

  it('0x26: the requester fails source validation; the entry’s own SID passes', () => {
    const { unit, enable, writeIrte, faults } = setup();
    writeIrte(7, VERIFY_SID);
    enable();
    expect(unit.request(0x0208, rfi(7), 0)).toEqual(blocked(0x26, rfi(7), true, 0x0208));
    expect(faults).toEqual([{ sid: 0x0208, index: 7, reason: 0x26 }]);
    expect(unit.request(SID, rfi(7), 0)).toMatchObject({ kind: 'remapped', index: 7 });
  });

  it('reports a fault the recorder could not record as not recorded', () => {
    const { unit, enable, recorder, faults } = setup();
    enable({ table: UNMAPPED });
    recorder.full = true;
    expect(unit.request(SID, rfi(0), 0)).toEqual(blocked(0x23, rfi(0), false));
    expect(faults).toHaveLength(1);
  });
});

describe('VtdInterruptRemapping: FPD suppresses the qualified faults', () => {
  it.each([
    ['0x22 not present', NOT_PRESENT, 0x22],
    ['0x24 reserved', RESERVED, 0x24],
    ['0x26 source', VERIFY_SID, 0x26],
  ])('%s: blocked, not recorded', (_name, words, reason) => {
    const { unit, enable, writeIrte, faults } = setup();
    writeIrte(1, withWord0(words, FPD));
    enable();
    expect(unit.request(0x0208, rfi(1), 0)).toMatchObject({
      kind: 'blocked',
      fault: { vendorCode: `DMAR_FR_0x${reason.toString(16)}`, recorded: false },
    });
    expect(faults).toEqual([]);
  });

  it('FPD does not stop a remapped entry from remapping', () => {
    const { unit, enable, writeIrte } = setup();
    writeIrte(1, withWord0(XAPIC_5, FPD));
    enable();
    expect(unit.request(SID, rfi(1), 0)).toMatchObject({ kind: 'remapped', index: 1 });
  });
});

describe('VtdInterruptRemapping: remapped entries (§9.10)', () => {
  it('xAPIC (EIME = 0): the destination is DST bits 15:8', () => {
    const { unit, enable, writeIrte, faults } = setup();
    writeIrte(2, XAPIC_5);
    enable();
    expect(unit.request(SID, rfi(2), 0)).toEqual({
      kind: 'remapped',
      index: 2,
      interrupt: {
        vector: 0x41,
        destination: 5,
        destinationMode: 'physical',
        deliveryMode: 'fixed',
        trigger: 'edge',
        redirectionHint: false,
      },
    });
    expect(faults).toEqual([]);
  });

  it('x2APIC (EIME = 1): all 32 DST bits, and every attribute of the entry', () => {
    const { unit, enable, writeIrte } = setup();
    writeIrte(0x8003, X2APIC);
    enable({ s: 15, eime: true });
    expect(unit.request(SID, rfi(0x8003), 0)).toEqual({
      kind: 'remapped',
      index: 0x8003,
      interrupt: {
        vector: 0x51,
        destination: 0x12345,
        destinationMode: 'logical',
        deliveryMode: 'lowest-priority',
        trigger: 'level',
        redirectionHint: true,
      },
    });
  });

  it('EIME is ignored on a unit without ECAP.EIM', () => {
    const { unit, enable } = setup({ extendedInterruptMode: false });
    enable({ eime: true });
    expect(unit.latchedTable.eim).toBe(false);
  });

  it('SHV: the index is the handle plus the data’s subhandle; without SHV the data is ignored', () => {
    const { unit, enable, writeIrte } = setup();
    writeIrte(4, XAPIC_5);
    writeIrte(6, X2APIC);
    enable({ eime: true });
    expect(unit.request(SID, rfi(4, true), 2)).toMatchObject({ kind: 'remapped', index: 6 });
    expect(unit.request(SID, rfi(4, false), 2)).toMatchObject({ kind: 'remapped', index: 4 });
  });
});

describe('VtdInterruptRemapping: posted entries (§5.2.3, §9.11)', () => {
  /** PID control word 8 (bits 287:256): ON 0, SN 1, NV 23:16; word 9 NDST. */
  const pid = (control: number, ndst: number) => [0, 0, 0, 0, 0, 0, 0, 0, control, ndst];

  it('0x24 without CAP.PI', () => {
    const { unit, enable, writeIrte, faults } = setup({ postedInterrupts: false });
    writeIrte(1, POSTED);
    enable();
    expect(unit.request(SID, rfi(1), 0)).toEqual(blocked(0x24, rfi(1)));
    expect(faults).toEqual([{ sid: SID, index: 1, reason: 0x24 }]);
  });

  it('sets the PIR bit, sets ON and notifies NV at NDST; with ON already set it only records', () => {
    const { unit, bus, who, enable, writeIrte, pidWords } = setup({ postedInterrupts: true });
    writeIrte(1, POSTED);
    writeIrte(2, [0x0021_8001, PID_AT, 0, 0]);
    bus.writeWords(PID_AT, pid(0x00f2_0000, 3), 10, who);
    enable({ eime: true });
    expect(unit.request(SID, rfi(1), 0)).toEqual({
      kind: 'posted',
      index: 1,
      posted: {
        descriptor: BigInt(PID_AT),
        vector: 0x45,
        notify: {
          vector: 0xf2,
          destination: 3,
          destinationMode: 'physical',
          deliveryMode: 'fixed',
          trigger: 'edge',
          redirectionHint: false,
        },
      },
    });
    // Vector 0x45 is bit 5 of PIR word 2.
    expect(pidWords()).toEqual([0, 0, 0x20, 0, 0, 0, 0, 0, 0x00f2_0001, 3]);
    expect(unit.request(SID, rfi(2), 0)).toEqual({
      kind: 'posted',
      index: 2,
      posted: { descriptor: BigInt(PID_AT), vector: 0x21 },
    });
    expect(pidWords()).toEqual([0, 2, 0x20, 0, 0, 0, 0, 0, 0x00f2_0001, 3]);
  });

  it('SN suppresses the notification of a non-urgent entry (ON stays clear), not of an urgent one', () => {
    const { unit, bus, who, enable, writeIrte, pidWords } = setup({ postedInterrupts: true });
    writeIrte(1, POSTED);
    writeIrte(2, withWord0(POSTED, URGENT));
    bus.writeWords(PID_AT, pid(0x00f2_0002, 3), 10, who);
    enable({ eime: true });
    expect(unit.request(SID, rfi(1), 0)).toMatchObject({ kind: 'posted', posted: { vector: 0x45 } });
    expect(unit.request(SID, rfi(1), 0)).not.toHaveProperty('posted.notify');
    expect(pidWords()[8]).toBe(0x00f2_0002);
    expect(unit.request(SID, rfi(2), 0)).toHaveProperty('posted.notify.vector', 0xf2);
    expect(pidWords()[8]).toBe(0x00f2_0003);
  });

  it('xAPIC (EIME = 0): NDST holds the APIC ID in bits 15:8', () => {
    const { unit, bus, who, enable, writeIrte } = setup({ postedInterrupts: true });
    writeIrte(1, POSTED);
    bus.writeWords(PID_AT, pid(0x00f2_0000, 0x0700), 10, who);
    enable();
    expect(unit.request(SID, rfi(1), 0)).toHaveProperty('posted.notify.destination', 7);
  });

  it('0x27 when the descriptor cannot be read (suppressed by FPD), 0x28 for a reserved control bit', () => {
    const { unit, bus, who, enable, writeIrte, faults } = setup({ postedInterrupts: true });
    writeIrte(1, [0x0045_8001, 0, 0, 1]);
    writeIrte(2, [0x0045_8003, 0, 0, 1]);
    writeIrte(3, POSTED);
    bus.writeWords(PID_AT, pid(0x00f2_0004, 3), 10, who);
    enable();
    expect(unit.request(SID, rfi(1), 0)).toEqual(blocked(0x27, rfi(1)));
    expect(unit.request(SID, rfi(2), 0)).toEqual(blocked(0x27, rfi(2), false));
    expect(unit.request(SID, rfi(3), 0)).toEqual(blocked(0x28, rfi(3)));
    expect(faults).toEqual([
      { sid: SID, index: 1, reason: 0x27 },
      { sid: SID, index: 3, reason: 0x28 },
    ]);
  });
});

describe('VtdInterruptRemapping: the interrupt entry cache (§6.5.2.7)', () => {
  it('keeps a stale entry until an index invalidation covers it', () => {
    const { unit, enable, writeIrte } = setup();
    writeIrte(6, XAPIC_5);
    enable();
    expect(unit.request(SID, rfi(6), 0)).toHaveProperty('interrupt.vector', 0x41);
    writeIrte(6, [0x0042_0001, 0x0000_0500, 0, 0]);
    expect(unit.request(SID, rfi(6), 0)).toHaveProperty('interrupt.vector', 0x41);
    expect(unit.invalidateIndex(7, 0)).toBe(0);
    expect(unit.request(SID, rfi(6), 0)).toHaveProperty('interrupt.vector', 0x41);
    expect(unit.invalidateIndex(6, 0)).toBe(1);
    expect(unit.request(SID, rfi(6), 0)).toHaveProperty('interrupt.vector', 0x42);
  });

  it('an index mask IM covers the 2^IM aligned entries around the index', () => {
    const { unit, enable, writeIrte } = setup();
    for (const index of [3, 4, 5, 6, 7, 8]) writeIrte(index, XAPIC_5);
    enable();
    for (const index of [3, 4, 5, 6, 7, 8]) unit.request(SID, rfi(index), 0);
    expect(unit.invalidateIndex(5, 1)).toBe(2);
    expect(
      unit.iec
        .entries()
        .map(([index]) => index)
        .sort(),
    ).toEqual([3, 6, 7, 8]);
    expect(unit.invalidateIndex(6, 2)).toBe(2);
    expect(
      unit.iec
        .entries()
        .map(([index]) => index)
        .sort(),
    ).toEqual([3, 8]);
  });

  it('a global invalidation drops every entry', () => {
    const { unit, enable, writeIrte } = setup();
    writeIrte(1, XAPIC_5);
    writeIrte(2, XAPIC_5);
    enable();
    unit.request(SID, rfi(1), 0);
    unit.request(SID, rfi(2), 0);
    expect(unit.invalidateAll()).toBe(2);
    expect(unit.iec.size).toBe(0);
  });

  it.each([false, true])(
    'caches no not-present or reserved entry (caching mode %s): fixing one needs no invalidation',
    (cachingMode) => {
      const { unit, enable, writeIrte, faults } = setup({ cachingMode });
      writeIrte(1, NOT_PRESENT);
      writeIrte(2, RESERVED);
      enable();
      unit.request(SID, rfi(1), 0);
      unit.request(SID, rfi(2), 0);
      expect(unit.iec.size).toBe(0);
      writeIrte(1, XAPIC_5);
      writeIrte(2, XAPIC_5);
      expect(unit.request(SID, rfi(1), 0)).toMatchObject({ kind: 'remapped' });
      expect(unit.request(SID, rfi(2), 0)).toMatchObject({ kind: 'remapped' });
      expect(faults.map((f) => f.reason)).toEqual([0x22, 0x24]);
    },
  );

  it('counts requests, outcomes and IEC hits and misses; a hit reads no memory', () => {
    const { unit, enable, writeIrte, counter } = setup();
    writeIrte(1, XAPIC_5);
    enable({ cfi: true });
    unit.request(SID, rfi(1), 0);
    expect(counter.snapshot()).toMatchObject({ reads: 1, bytesRead: 16 });
    unit.request(SID, rfi(1), 0);
    expect(counter.reads).toBe(1);
    unit.request(SID, COMPAT, 0);
    unit.request(SID, rfi(200), 0);
    expect(unit.stats()).toEqual({
      requests: 4,
      remapped: 2,
      posted: 0,
      blocked: 1,
      iecHits: 1,
      iecMisses: 2,
    });
  });
});

describe('VtdInterruptRemapping: SIRTP latches IRTA (§11.4.12)', () => {
  it('latches the address from both halves, 2^(S+1) entries and EIME', () => {
    const { unit } = setup();
    unit.latchTable(irta(0x0012_3000, 4, true), 0x5);
    expect(unit.latchedTable).toEqual({ base: 0x5_0012_3000, entries: 32, eim: true });
  });

  it('uses the latched table until the next SIRTP; without ESIRTPS cached entries of the old table survive it', () => {
    const { unit, enable, writeIrte } = setup({ sirtpInvalidates: false });
    writeIrte(1, XAPIC_5);
    writeIrte(2, XAPIC_5);
    writeIrte(1, [0x0061_0001, 0x0000_0500, 0, 0], TABLE_B);
    writeIrte(2, [0x0062_0001, 0x0000_0500, 0, 0], TABLE_B);
    enable();
    expect(unit.request(SID, rfi(1), 0)).toHaveProperty('interrupt.vector', 0x41);
    unit.latchTable(irta(TABLE_B, 7), 0);
    expect(unit.request(SID, rfi(1), 0)).toHaveProperty('interrupt.vector', 0x41);
    expect(unit.request(SID, rfi(2), 0)).toHaveProperty('interrupt.vector', 0x62);
    unit.invalidateAll();
    expect(unit.request(SID, rfi(1), 0)).toHaveProperty('interrupt.vector', 0x61);
  });

  it('with ESIRTPS, SIRTP also flushes the IEC', () => {
    const { unit, enable, writeIrte } = setup({ sirtpInvalidates: true });
    writeIrte(1, XAPIC_5);
    writeIrte(1, [0x0061_0001, 0x0000_0500, 0, 0], TABLE_B);
    enable();
    expect(unit.request(SID, rfi(1), 0)).toHaveProperty('interrupt.vector', 0x41);
    unit.latchTable(irta(TABLE_B, 7), 0);
    expect(unit.request(SID, rfi(1), 0)).toHaveProperty('interrupt.vector', 0x61);
  });
});

describe('VtdInterruptRemapping: tracing', () => {
  it('reports each step on the hw layer under its instance name', () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const { unit, bus, who, enable, writeIrte } = setup(
      { postedInterrupts: true, sirtpInvalidates: true },
      tracer,
    );
    writeIrte(1, XAPIC_5);
    writeIrte(2, POSTED);
    bus.writeWords(PID_AT, [0, 0, 0, 0, 0, 0, 0, 0, 0x00f2_0000, 3], 10, who);
    enable({ eime: true });
    unit.request(SID, rfi(1), 0);
    unit.request(SID, rfi(2), 0);
    unit.request(SID, COMPAT, 0);
    unit.invalidateIndex(1, 0);
    unit.invalidateAll();
    const records = tracer.stopRecording();
    expect(records.map((r) => [r.layer, r.source, r.name])).toEqual([
      ['hw', 'dmar0', 'ir.sirtp'],
      ['hw', 'dmar0', 'ir.fetch'],
      ['hw', 'dmar0', 'ir.remap'],
      ['hw', 'dmar0', 'ir.fetch'],
      ['hw', 'dmar0', 'ir.post'],
      ['hw', 'dmar0', 'ir.block'],
      ['hw', 'dmar0', 'iec.invalidate'],
      ['hw', 'dmar0', 'iec.invalidate'],
    ]);
    expect(records[2]!.message).toBe('interrupt from 0x108 via IRTE 1 → vector 0x41 APIC 0x500');
    expect(records[5]!.message).toBe('interrupt from 0x108 at 0xfee01000 blocked: DMAR_FR_0x25');
  });

  it('builds no record while the tracer is off', () => {
    const tracer = new Tracer();
    const { unit, enable, writeIrte } = setup({}, tracer);
    writeIrte(1, XAPIC_5);
    enable();
    unit.request(SID, rfi(1), 0);
    tracer.startRecording();
    unit.request(SID, rfi(1), 0);
    expect(tracer.stopRecording().map((r) => r.name)).toEqual(['ir.remap']);
  });
});
