import { MemoryBus, NO_PASID, PERM_WRITE, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { type DeviceTableEntry, decodeDte, encodeDte, INT_CTL } from './dte.js';
import type { AmdEvent } from './events.js';
import { AmdInterruptRemapping, type AmdInterruptRemappingContext } from './interrupt-remapping.js';
import { encodeIrte32, encodeIrte128, remappedMsi } from './irte.js';
import {
  CTRL_GA_EN,
  CTRL_GAM_EN,
  CTRL_HI_IRT_CACHE_DIS,
  CTRL_HI_NUM_INT_REMAP_MODE,
  CTRL_HI_XT_EN,
  CTRL_IOMMU_EN,
} from './regs.js';

const RAM = 0x10_0000;
const TABLE = RAM;
const TABLE_B = RAM + 0x1_0000;
const UNMAPPED = 0x4000_0000;
const DEV = 0x0010;
const DEV_B = 0x0018;
const MSI = 0xfee0_0000n;
/** Address bit 2: logical destination mode. */
const MSI_LOGICAL = 0xfee0_0004n;

type Features = AmdInterruptRemappingContext['features'];
const FEATURES: Features = {
  guestVirtualApic: true,
  guestVapicMode: true,
  x2apic: true,
  interruptRemapEntries: 2048,
};

/** Linux irte_prepare: vector 0x41, fixed, physical, APIC 5. */
const LEGACY_41 = encodeIrte32({ remapEn: true, vector: 0x41, destination: 5 });
/** Linux irte_ga_prepare: vector 0x51, fixed, physical, x2APIC 0x01020304. */
const GA_51 = encodeIrte128({ remapEn: true, vector: 0x51, destination: 0x0102_0304 });

interface Control {
  readonly enabled?: boolean;
  readonly ga?: boolean;
  readonly vapic?: boolean;
  readonly xt?: boolean;
  readonly twoK?: boolean;
  readonly cacheDisabled?: boolean;
}

/** Control register halves (regs.ts): IommuEn 0, GAEn 17, GAMEn 27:25, NumIntRemapMode 44:43, XTEn 50, IRTCacheDis 59. */
function controlWords(c: Control): [number, number] {
  const lo =
    (c.enabled === false ? 0 : CTRL_IOMMU_EN) |
    (c.ga ? CTRL_GA_EN : 0) |
    (c.vapic ? 1 << CTRL_GAM_EN.lsb : 0);
  const hi =
    (c.xt ? CTRL_HI_XT_EN : 0) |
    (c.twoK ? 1 << CTRL_HI_NUM_INT_REMAP_MODE.lsb : 0) |
    (c.cacheDisabled ? CTRL_HI_IRT_CACHE_DIS : 0);
  return [lo >>> 0, hi >>> 0];
}

/** A DTE remapping through a 512-entry table at TABLE, DomainID 5. */
const REMAP: Partial<DeviceTableEntry> = {
  iv: true,
  intTabLen: 9,
  intCtl: INT_CTL.REMAP,
  intTablePtr: TABLE,
  domainId: 5,
};

function setup(control: Control = {}, features: Partial<Features> = {}, tracer?: Tracer) {
  const bus = new MemoryBus();
  bus.addRam('ram', RAM, 0x10_0000);
  const who = bus.counter('test');
  const counter = bus.counter('amd-vi-ir');
  const events: AmdEvent[] = [];
  const log = { full: false };
  const dtes = new Map<number, { dte: DeviceTableEntry; words: Uint32Array }>();
  const unit = new AmdInterruptRemapping({
    bus,
    counter,
    features: { ...FEATURES, ...features },
    cacheGeometry: { sets: 4, ways: 4, policy: 'lru' },
    dte: (id) => dtes.get(id) ?? { vendorCode: 'DEV_TAB_HARDWARE_ERROR', recorded: true },
    logEvent: (event) => {
      events.push(event);
      return !log.full;
    },
    instance: 'ivhd0',
    ...(tracer ? { tracer } : {}),
  });
  unit.applyControl(...controlWords(control));
  /** Installs the DTE of `id`; `patch` edits its words before decoding (reserved bits). */
  const setDte = (fields: Partial<DeviceTableEntry>, id = DEV, patch?: (w: Uint32Array) => void) => {
    const words = encodeDte(fields);
    patch?.(words);
    dtes.set(id, { dte: decodeDte(words), words });
  };
  const write32 = (index: number, word: number, table = TABLE) =>
    expect(bus.writeWords(table + 4 * index, [word], 1, who)).toBe(true);
  const write128 = (index: number, words: ArrayLike<number>, table = TABLE) =>
    expect(bus.writeWords(table + 16 * index, words, 4, who)).toBe(true);
  return { unit, bus, counter, events, log, setDte, write32, write128 };
}

const blocked = (vendorCode: string, recorded: boolean, address = MSI, streamId = DEV) => ({
  kind: 'blocked',
  fault: {
    kind: 'interrupt',
    vendorCode,
    streamId,
    pasid: NO_PASID,
    iova: address,
    access: PERM_WRITE,
    recorded,
  },
});
const ioPageFault = (flags: number, address = 0xfee0_0000, deviceId = DEV) => ({
  kind: 'io-page-fault',
  deviceId,
  domainOrPasid: 5,
  flags,
  address,
});

describe('AmdInterruptRemapping: what is forwarded unremapped', () => {
  it('everything while Control.IommuEn = 0, without reading the DTE', () => {
    const { unit, events } = setup({ enabled: false });
    expect(unit.request(DEV, MSI, 3)).toEqual({ kind: 'passthrough' });
    expect(events).toEqual([]);
  });

  it('DTE.IV = 0, whatever IntCtl says', () => {
    const { unit, setDte } = setup();
    setDte({ ...REMAP, iv: false, intCtl: INT_CTL.TARGET_ABORT });
    expect(unit.request(DEV, MSI, 3)).toEqual({ kind: 'passthrough' });
  });

  it('a failed DTE fetch is dropped as the device-table path reported it, with no event of its own', () => {
    const { unit, events } = setup();
    expect(unit.request(0x0777, MSI, 3)).toEqual(blocked('DEV_TAB_HARDWARE_ERROR', true, MSI, 0x0777));
    expect(events).toEqual([]);
  });
});

describe('AmdInterruptRemapping: fixed and arbitrated messages through IntCtl', () => {
  it('IntCtl 2: remaps through the 32-bit entry at IntTablePtr + 4 · data[10:0]', () => {
    const { unit, setDte, write32, events } = setup();
    setDte(REMAP);
    write32(0x103, LEGACY_41);
    // Data bit 8 makes it arbitrated; bit 15 level-triggered; bits above 15 are not the index.
    expect(unit.request(DEV, MSI, 0x0001_8103)).toEqual({
      kind: 'remapped',
      index: 0x103,
      interrupt: {
        vector: 0x41,
        destination: 5,
        destinationMode: 'physical',
        deliveryMode: 'fixed',
        trigger: 'level',
        redirectionHint: false,
      },
    });
    expect(events).toEqual([]);
  });

  it('IntCtl 1: forwarded unmapped, even with a table length it would refuse for remapping', () => {
    const { unit, setDte } = setup();
    setDte({ ...REMAP, intCtl: INT_CTL.FORWARD_UNMAPPED, intTabLen: 12 });
    expect(unit.request(DEV, MSI, 0x41)).toEqual({ kind: 'passthrough' });
    expect(unit.request(DEV, MSI, 0x141)).toEqual({ kind: 'passthrough' });
  });

  it('IntCtl 0: target abort and INVALID_DEVICE_REQUEST type 101b at the message address', () => {
    const { unit, setDte, events, log } = setup();
    setDte({ ...REMAP, intCtl: INT_CTL.TARGET_ABORT });
    expect(unit.request(DEV, MSI, 0x41)).toEqual(blocked('INVALID_DEVICE_REQUEST', true));
    expect(events).toEqual([
      {
        kind: 'invalid-device-request',
        deviceId: DEV,
        pasid: 0,
        flags: 0,
        type: 0b101,
        address: 0xfee0_0000,
      },
    ]);
    log.full = true;
    expect(unit.request(DEV, MSI, 0x41)).toEqual(blocked('INVALID_DEVICE_REQUEST', false));
  });

  it('IntCtl 3: ILLEGAL_DEV_TABLE_ENTRY with I and RZ', () => {
    const { unit, setDte, events } = setup();
    setDte({ ...REMAP, intCtl: 3 });
    expect(unit.request(DEV, 0xfee0_1000n, 0x41)).toEqual(
      blocked('ILLEGAL_DEV_TABLE_ENTRY', true, 0xfee0_1000n),
    );
    expect(events).toEqual([
      { kind: 'illegal-dev-table-entry', deviceId: DEV, pasid: 0, flags: 0x088, address: 0xfee0_1000 },
    ]);
  });

  it('IntTabLen above 11 with IntCtl 2: ILLEGAL_DEV_TABLE_ENTRY with I only', () => {
    const { unit, setDte, events } = setup();
    setDte({ ...REMAP, intTabLen: 12 });
    expect(unit.request(DEV, MSI, 0x41)).toEqual(blocked('ILLEGAL_DEV_TABLE_ENTRY', true));
    expect(events).toEqual([
      { kind: 'illegal-dev-table-entry', deviceId: DEV, pasid: 0, flags: 0x008, address: 0xfee0_0000 },
    ]);
  });

  it('reserved DTE bits 181:180: ILLEGAL_DEV_TABLE_ENTRY (I, RZ) for every message type', () => {
    const { unit, setDte, events } = setup();
    setDte({ ...REMAP, nmiPass: true }, DEV, (w) => {
      w[5] = (w[5]! | 0x0010_0000) >>> 0;
    });
    expect(unit.request(DEV, MSI, 0x400)).toEqual(blocked('ILLEGAL_DEV_TABLE_ENTRY', true));
    expect(unit.request(DEV, MSI, 0x41)).toEqual(blocked('ILLEGAL_DEV_TABLE_ENTRY', true));
    expect(events.map((e) => e.kind === 'illegal-dev-table-entry' && e.flags)).toEqual([0x088, 0x088]);
  });
});

describe('AmdInterruptRemapping: the other message types (data[10:8]) through the pass bits', () => {
  it.each([
    ['NMI', 4, 'nmiPass'],
    ['INIT', 5, 'initPass'],
    ['ExtINT', 7, 'eIntPass'],
  ] as const)('%s: forwarded with its pass bit, target-aborted without (no event)', (_name, type, bit) => {
    const { unit, setDte, events } = setup();
    setDte({ ...REMAP, [bit]: true });
    expect(unit.request(DEV, MSI, type << 8)).toEqual({ kind: 'passthrough' });
    setDte({
      ...REMAP,
      nmiPass: bit !== 'nmiPass',
      initPass: bit !== 'initPass',
      eIntPass: bit !== 'eIntPass',
    });
    expect(unit.request(DEV, MSI, type << 8)).toEqual(blocked('TARGET_ABORT', false));
    expect(events).toEqual([]);
  });

  it('SMI is forwarded (no SMI filter); a logical destination aborts every non-fixed type', () => {
    const { unit, setDte, events } = setup();
    setDte({ ...REMAP, nmiPass: true, initPass: true, eIntPass: true });
    expect(unit.request(DEV, MSI, 0x200)).toEqual({ kind: 'passthrough' });
    for (const type of [2, 4, 5, 7])
      expect(unit.request(DEV, MSI_LOGICAL, type << 8)).toEqual(blocked('TARGET_ABORT', false, MSI_LOGICAL));
    expect(events).toEqual([]);
  });

  it('reserved types 3 and 6 are target-aborted', () => {
    const { unit, setDte } = setup();
    setDte({ ...REMAP, intCtl: INT_CTL.FORWARD_UNMAPPED, nmiPass: true, initPass: true, eIntPass: true });
    expect(unit.request(DEV, MSI, 0x300)).toEqual(blocked('TARGET_ABORT', false));
    expect(unit.request(DEV, MSI, 0x600)).toEqual(blocked('TARGET_ABORT', false));
  });

  it('IntCtl does not govern them: IntCtl 3 leaves an NMI with NMIPass forwarded', () => {
    const { unit, setDte, events } = setup();
    setDte({ ...REMAP, intCtl: 3, nmiPass: true });
    expect(unit.request(DEV, MSI, 0x400)).toEqual({ kind: 'passthrough' });
    expect(events).toEqual([]);
  });
});

describe('AmdInterruptRemapping: entry faults (IO_PAGE_FAULT, I = 1, DTE DomainID)', () => {
  it('an index at 2^IntTabLen: I only; the last index inside remaps', () => {
    const { unit, setDte, write32, events } = setup();
    setDte({ ...REMAP, intTabLen: 1 });
    write32(1, LEGACY_41);
    write32(2, LEGACY_41);
    expect(unit.request(DEV, MSI, 1)).toMatchObject({ kind: 'remapped', index: 1 });
    expect(unit.request(DEV, MSI, 2)).toEqual(blocked('IO_PAGE_FAULT', true));
    expect(events).toEqual([ioPageFault(0x008)]);
  });

  it.each([
    ['RemapEn clear', encodeIrte32({ vector: 0x41, destination: 5 }), 0x008],
    ['reserved bit 24', (LEGACY_41 | (1 << 24)) >>> 0, 0x098],
    ['GuestMode in a 32-bit entry', LEGACY_41 | 0x80, 0x098],
    ['IntType 2 (SMI)', encodeIrte32({ remapEn: true, intType: 2, vector: 0x41 }), 0x098],
  ])('%s: flags %s', (_name, word, flags) => {
    const { unit, setDte, write32, events } = setup();
    setDte(REMAP);
    write32(7, word);
    expect(unit.request(DEV, 0xfee0_0008n, 7)).toEqual(blocked('IO_PAGE_FAULT', true, 0xfee0_0008n));
    expect(events).toEqual([ioPageFault(flags, 0xfee0_0008)]);
  });

  it('SupIOPF suppresses the event of each entry fault; the interrupt is still dropped', () => {
    const { unit, setDte, write32, events } = setup();
    setDte(REMAP);
    write32(1, encodeIrte32({ supIopf: true, vector: 0x41 }));
    write32(2, (LEGACY_41 | 0x2 | (1 << 24)) >>> 0);
    write32(3, encodeIrte32({ remapEn: true, supIopf: true, intType: 5 }));
    for (const index of [1, 2, 3])
      expect(unit.request(DEV, MSI, index)).toEqual(blocked('IO_PAGE_FAULT', false));
    expect(events).toEqual([]);
  });

  it('SupIOPF does not stop a valid entry from remapping', () => {
    const { unit, setDte, write32 } = setup();
    setDte(REMAP);
    write32(1, (LEGACY_41 | 0x2) >>> 0);
    expect(unit.request(DEV, MSI, 1)).toMatchObject({ kind: 'remapped', interrupt: { vector: 0x41 } });
  });

  it('DTE.IG suppresses every interrupt IO_PAGE_FAULT, the index beyond the table included', () => {
    const { unit, setDte, write32, events } = setup();
    setDte({ ...REMAP, intTabLen: 1, ig: true });
    write32(0, encodeIrte32({ vector: 0x41 }));
    expect(unit.request(DEV, MSI, 0)).toEqual(blocked('IO_PAGE_FAULT', false));
    expect(unit.request(DEV, MSI, 2)).toEqual(blocked('IO_PAGE_FAULT', false));
    expect(events).toEqual([]);
  });

  it('a full event log: blocked, not recorded', () => {
    const { unit, setDte, log, events } = setup();
    setDte({ ...REMAP, intTabLen: 0 });
    log.full = true;
    expect(unit.request(DEV, MSI, 1)).toEqual(blocked('IO_PAGE_FAULT', false));
    expect(events).toHaveLength(1);
  });

  it('a read of the entry that aborts: dropped, no event', () => {
    const { unit, setDte, events } = setup();
    setDte({ ...REMAP, intTablePtr: UNMAPPED });
    expect(unit.request(DEV, MSI, 1)).toEqual(blocked('TARGET_ABORT', false));
    expect(events).toEqual([]);
  });
});

describe('AmdInterruptRemapping: 128-bit entries (Control.GAEn)', () => {
  it('reads 16 bytes at IntTablePtr + 16 · index; XTEn gives the 32-bit destination', () => {
    const { unit, setDte, write128, counter } = setup({ ga: true, xt: true });
    setDte(REMAP);
    write128(2, GA_51);
    expect(unit.request(DEV, MSI, 2)).toEqual({
      kind: 'remapped',
      index: 2,
      interrupt: {
        vector: 0x51,
        destination: 0x0102_0304,
        destinationMode: 'physical',
        deliveryMode: 'fixed',
        trigger: 'edge',
        redirectionHint: false,
      },
    });
    expect(counter.snapshot()).toMatchObject({ reads: 1, bytesRead: 16 });
  });

  it('without XTEn only destination bits 7:0 count', () => {
    const { unit, setDte, write128 } = setup({ ga: true });
    setDte(REMAP);
    write128(2, GA_51);
    expect(unit.request(DEV, MSI, 2)).toHaveProperty('interrupt.destination', 0x04);
  });

  it('XTEn is ignored on a unit without XTSup', () => {
    const { unit, setDte, write128 } = setup({ ga: true, xt: true }, { x2apic: false });
    setDte(REMAP);
    write128(2, GA_51);
    expect(unit.request(DEV, MSI, 2)).toHaveProperty('interrupt.destination', 0x04);
  });

  it('GAEn is ignored on a unit without GASup: 4-byte entries', () => {
    const { unit, setDte, write32 } = setup({ ga: true }, { guestVirtualApic: false });
    setDte(REMAP);
    write32(2, LEGACY_41);
    expect(unit.request(DEV, MSI, 2)).toHaveProperty('interrupt.vector', 0x41);
  });

  it('posted entries with GAMEn = 1: decoded, the vAPIC page named, nothing posted', () => {
    const { unit, setDte, write128, bus, events } = setup({ ga: true, vapic: true, xt: true });
    setDte(REMAP);
    const page = RAM + 0x8_0000;
    write128(
      4,
      encodeIrte128({
        guestMode: true,
        remapEn: true,
        isRun: true,
        destination: 3,
        gaTag: 9,
        gaRootPtr: page,
        vector: 0x61,
      }),
    );
    expect(unit.request(DEV, MSI, 4)).toEqual({
      kind: 'posted',
      index: 4,
      posted: { descriptor: BigInt(page), vector: 0x61 },
    });
    const pageWords = new Uint32Array(8);
    bus.readWords(page, pageWords, 8, bus.counter('check'));
    expect([...pageWords]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(events).toEqual([]);
    expect(unit.stats()).toMatchObject({ posted: 1, remapped: 0 });
  });

  it('the same entry with GAMEn = 0 is remapped-format with reserved bits: IO_PAGE_FAULT PR, RZ', () => {
    const { unit, setDte, write128, events } = setup({ ga: true });
    setDte(REMAP);
    write128(4, encodeIrte128({ guestMode: true, remapEn: true, gaTag: 9, gaRootPtr: 0x5000, vector: 0x61 }));
    expect(unit.request(DEV, MSI, 4)).toEqual(blocked('IO_PAGE_FAULT', true));
    expect(events).toEqual([ioPageFault(0x098)]);
  });
});

describe('AmdInterruptRemapping: the 2048-entry mode (Control.NumIntRemapMode)', () => {
  it('Linux’s message for index 0x5FF (data[10:8] = INIT, DM = 1) remaps through entry 0x5FF', () => {
    const { unit, setDte, write128 } = setup({ ga: true, twoK: true });
    setDte({ ...REMAP, intTabLen: 11 });
    write128(0x5ff, GA_51);
    const msg = remappedMsi(0x5ff, true);
    expect(unit.request(DEV, msg.address, msg.data)).toMatchObject({ kind: 'remapped', index: 0x5ff });
  });

  it('the same message is a logical INIT, target-aborted, in the 512-entry mode or without NumIntRemapSup', () => {
    const msg = remappedMsi(0x5ff, true);
    for (const [control, features] of [
      [{ ga: true }, {}],
      [{ ga: true, twoK: true }, { interruptRemapEntries: 512 }],
    ] as const) {
      const { unit, setDte, write128 } = setup(control, features);
      setDte({ ...REMAP, intTabLen: 11, initPass: true });
      write128(0x5ff, GA_51);
      expect(unit.request(DEV, msg.address, msg.data)).toEqual(blocked('TARGET_ABORT', false, msg.address));
    }
  });

  it('a DM = 0 message keeps its type: an NMI without NMIPass is aborted', () => {
    const { unit, setDte } = setup({ ga: true, twoK: true });
    setDte({ ...REMAP, intTabLen: 11 });
    expect(unit.request(DEV, MSI, 0x441)).toEqual(blocked('TARGET_ABORT', false));
  });
});

describe('AmdInterruptRemapping: the IRTE cache', () => {
  it('keeps a stale entry until INVALIDATE_INTERRUPT_TABLE names its device', () => {
    const { unit, setDte, write32 } = setup();
    setDte(REMAP);
    setDte({ ...REMAP, intTablePtr: TABLE_B }, DEV_B);
    write32(4, LEGACY_41);
    write32(4, LEGACY_41, TABLE_B);
    expect(unit.request(DEV, MSI, 4)).toHaveProperty('interrupt.vector', 0x41);
    expect(unit.request(DEV_B, MSI, 4)).toHaveProperty('interrupt.vector', 0x41);
    write32(4, encodeIrte32({ remapEn: true, vector: 0x42, destination: 5 }));
    expect(unit.request(DEV, MSI, 4)).toHaveProperty('interrupt.vector', 0x41);
    expect(unit.invalidateDevice(DEV_B)).toBe(1);
    expect(unit.request(DEV, MSI, 4)).toHaveProperty('interrupt.vector', 0x41);
    expect(unit.invalidateDevice(DEV)).toBe(1);
    expect(unit.request(DEV, MSI, 4)).toHaveProperty('interrupt.vector', 0x42);
  });

  it('INVALIDATE_IOMMU_ALL drops every entry', () => {
    const { unit, setDte, write32 } = setup();
    setDte(REMAP);
    write32(1, LEGACY_41);
    write32(2, LEGACY_41);
    unit.request(DEV, MSI, 1);
    unit.request(DEV, MSI, 2);
    expect(unit.invalidateAll()).toBe(2);
    expect(unit.cache.size).toBe(0);
  });

  it('caches no refused entry: making it valid needs no invalidation', () => {
    const { unit, setDte, write32, events } = setup();
    setDte(REMAP);
    write32(1, encodeIrte32({ vector: 0x41 }));
    write32(2, (LEGACY_41 | (1 << 24)) >>> 0);
    unit.request(DEV, MSI, 1);
    unit.request(DEV, MSI, 2);
    expect(unit.cache.size).toBe(0);
    write32(1, LEGACY_41);
    write32(2, LEGACY_41);
    expect(unit.request(DEV, MSI, 1)).toMatchObject({ kind: 'remapped' });
    expect(unit.request(DEV, MSI, 2)).toMatchObject({ kind: 'remapped' });
    expect(events).toHaveLength(2);
  });

  it('caches nothing and reads every time with Control.IRTCacheDis', () => {
    const { unit, setDte, write32, counter } = setup({ cacheDisabled: true });
    setDte(REMAP);
    write32(4, LEGACY_41);
    expect(unit.request(DEV, MSI, 4)).toHaveProperty('interrupt.vector', 0x41);
    write32(4, encodeIrte32({ remapEn: true, vector: 0x42, destination: 5 }));
    expect(unit.request(DEV, MSI, 4)).toHaveProperty('interrupt.vector', 0x42);
    expect(unit.cache.size).toBe(0);
    expect(counter.reads).toBe(2);
    expect(unit.stats()).toMatchObject({ irteCacheHits: 0, irteCacheMisses: 0 });
  });

  it('a change of GAEn flushes it; one of XTEn alone does not', () => {
    const { unit, setDte, write32, write128 } = setup();
    setDte(REMAP);
    write32(0, LEGACY_41);
    unit.request(DEV, MSI, 0);
    unit.applyControl(...controlWords({ xt: true }));
    expect(unit.cache.size).toBe(1);
    write128(0, GA_51);
    unit.applyControl(...controlWords({ ga: true, xt: true }));
    expect(unit.cache.size).toBe(0);
    expect(unit.request(DEV, MSI, 0)).toHaveProperty('interrupt.vector', 0x51);
  });

  it('counts requests, outcomes and cache hits and misses; a hit reads no memory', () => {
    const { unit, setDte, write32, counter } = setup();
    setDte(REMAP);
    write32(1, LEGACY_41);
    unit.request(DEV, MSI, 1);
    expect(counter.snapshot()).toMatchObject({ reads: 1, bytesRead: 4 });
    unit.request(DEV, MSI, 1);
    expect(counter.reads).toBe(1);
    unit.request(DEV, MSI, 0x741);
    unit.request(DEV, MSI, 0x600);
    expect(unit.stats()).toEqual({
      requests: 4,
      remapped: 2,
      posted: 0,
      forwarded: 0,
      blocked: 2,
      irteCacheHits: 1,
      irteCacheMisses: 1,
    });
  });
});

describe('AmdInterruptRemapping: tracing', () => {
  it('reports each step on the hw layer under its instance name', () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const { unit, setDte, write32 } = setup({}, {}, tracer);
    setDte(REMAP);
    write32(1, LEGACY_41);
    unit.request(DEV, MSI, 1);
    unit.request(DEV, MSI, 0x300);
    unit.invalidateDevice(DEV);
    unit.invalidateAll();
    const records = tracer.stopRecording();
    expect(records.map((r) => [r.layer, r.source, r.name])).toEqual([
      ['hw', 'ivhd0', 'ir.control'],
      ['hw', 'ivhd0', 'irt.fetch'],
      ['hw', 'ivhd0', 'ir.remap'],
      ['hw', 'ivhd0', 'ir.block'],
      ['hw', 'ivhd0', 'irt.invalidate'],
      ['hw', 'ivhd0', 'irt.invalidate'],
    ]);
    expect(records[2]!.message).toBe('interrupt from 0x10 via IRTE 1 → vector 0x41 APIC 0x5');
    expect(records[3]!.message).toBe('interrupt from 0x10 at 0xfee00000 dropped: TARGET_ABORT, not logged');
  });

  it('builds no record while the tracer is off', () => {
    const tracer = new Tracer();
    const { unit, setDte, write32 } = setup({}, {}, tracer);
    setDte(REMAP);
    write32(1, LEGACY_41);
    unit.request(DEV, MSI, 1);
    tracer.startRecording();
    unit.request(DEV, MSI, 1);
    expect(tracer.stopRecording().map((r) => r.name)).toEqual(['ir.remap']);
  });
});
