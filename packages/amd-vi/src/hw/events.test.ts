import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AmdEvent,
  decodeEvent,
  decodePprLogEntry,
  describeEvent,
  EVENT_FLAG,
  encodeEvent,
  encodePprLogEntry,
  HARDWARE_ERROR_TYPE,
  INVALID_DEVICE_REQUEST_TYPE,
  PPR_FLAG,
  PPR_LOG_TYPE,
  PPR_TAG_LAST_PAGE,
  type PprLogEntry,
} from './events.js';

const encoded = (event: AmdEvent) => {
  const out = new Uint32Array(4);
  encodeEvent(event, out, 0);
  return Array.from(out, (w) => w.toString(16));
};
const hexWords = (words: readonly number[]) => words.map((w) => w.toString(16));

/**
 * Records and their words, written from the documented positions (Linux iommu_print_event's extraction:
 * code event[1] 31:28, DeviceID event[0] 15:0, PASID/domain event[0] 19:16 with event[1] 15:0, flags
 * event[1] 27:16, address event[3]:event[2]; VirtualBox EVT_*_T for the Type fields), not by the encoder,
 * with the line describeEvent gives.
 */
const VECTORS: readonly { readonly event: AmdEvent; readonly words: number[]; readonly line: string }[] = [
  {
    // a write (RW, flag 5) to domain 5 by 00:02.0
    event: {
      kind: 'io-page-fault',
      deviceId: 0x0010,
      domainOrPasid: 5,
      flags: EVENT_FLAG.RW,
      address: 0x1000,
    },
    words: [0x0000_0010, 0x2020_0005, 0x0000_1000, 0],
    line: 'IO_PAGE_FAULT device=00:02.0 domain=0x0005 address=0x1000 flags=0x0020',
  },
  {
    // GN with a 20-bit PASID: 0x1 in event[0] 19:16, 0x2345 in event[1] 15:0; PR | US | GN
    event: {
      kind: 'io-page-fault',
      deviceId: 0x0308,
      domainOrPasid: 0x1_2345,
      flags: EVENT_FLAG.GN | EVENT_FLAG.US | EVENT_FLAG.PR,
      address: 0x7fff_0000_1000,
    },
    words: [0x0001_0308, 0x2015_2345, 0x0000_1000, 0x7fff],
    line: 'IO_PAGE_FAULT device=03:01.0 pasid=0x12345 address=0x7fff00001000 flags=0x0015',
  },
  {
    // RZ | I from 01:00.1, PASID 0
    event: {
      kind: 'illegal-dev-table-entry',
      deviceId: 0x0101,
      pasid: 0,
      flags: EVENT_FLAG.RZ | EVENT_FLAG.I,
      address: 0xfee0_0000,
    },
    words: [0x0000_0101, 0x1088_0000, 0xfee0_0000, 0],
    line: 'ILLEGAL_DEV_TABLE_ENTRY device=01:00.1 pasid=0x00000 address=0xfee00000 flags=0x0088',
  },
  {
    // master abort (Type 1 at 58:57) reading the DTE at 0x1_0000_0100, a read-write transaction
    event: {
      kind: 'dev-tab-hardware-error',
      deviceId: 0x0008,
      flags: EVENT_FLAG.RW,
      type: HARDWARE_ERROR_TYPE.MASTER_ABORT,
      address: 0x1_0000_0100,
    },
    words: [0x0000_0008, 0x3220_0000, 0x0000_0100, 1],
    line: 'DEV_TAB_HARDWARE_ERROR device=00:01.0 address=0x100000100 flags=0x0220 master-abort',
  },
  {
    event: {
      kind: 'page-tab-hardware-error',
      deviceId: 0x0010,
      domainOrPasid: 0x42,
      flags: 0,
      type: HARDWARE_ERROR_TYPE.DATA_ERROR,
      address: 0x8_1234_5678,
    },
    words: [0x0000_0010, 0x4600_0042, 0x1234_5678, 8],
    line: 'PAGE_TAB_HARDWARE_ERROR device=00:02.0 domain=0x0042 address=0x812345678 flags=0x0600 data-error',
  },
  {
    event: { kind: 'illegal-command-error', address: 0x1234_5670 },
    words: [0, 0x5000_0000, 0x1234_5670, 0],
    line: 'ILLEGAL_COMMAND_ERROR address=0x12345670',
  },
  {
    event: { kind: 'command-hardware-error', type: HARDWARE_ERROR_TYPE.TARGET_ABORT, address: 0x8000 },
    words: [0, 0x6400_0000, 0x0000_8000, 0],
    line: 'COMMAND_HARDWARE_ERROR address=0x8000 flags=0x0400 target-abort',
  },
  {
    event: { kind: 'iotlb-inv-timeout', deviceId: 0x0100, address: 0x8000_0010 },
    words: [0x0000_0100, 0x7000_0000, 0x8000_0010, 0],
    line: 'IOTLB_INV_TIMEOUT device=01:00.0 address=0x80000010',
  },
  {
    // the line Linux logged for a write to the interrupt range with IntCtl = 00b: flags 0x0a00 is Type 101b
    event: {
      kind: 'invalid-device-request',
      deviceId: 0,
      pasid: 0,
      flags: 0,
      type: INVALID_DEVICE_REQUEST_TYPE.INTERRUPT_WRITE_WITH_INTCTL_ABORT,
      address: 0xffff_fffd_f800_0000,
    },
    words: [0, 0x8a00_0000, 0xf800_0000, 0xffff_fffd],
    line: 'INVALID_DEVICE_REQUEST device=00:00.0 pasid=0x00000 address=0xfffffffdf8000000 flags=0x0a00',
  },
  {
    // PPR-log first qword: PASID[15:0] 31:16, tag 41:32, PASID[19:16] 45:42, flags 59:48 (GN)
    event: {
      kind: 'invalid-ppr-request',
      deviceId: 0x0010,
      pasid: 0x1_2345,
      tag: 0x0a5,
      flags: PPR_FLAG.GN,
      address: 0x5000,
    },
    words: [0x2345_0010, 0x9100_04a5, 0x0000_5000, 0],
    line: 'INVALID_PPR_REQUEST device=00:02.0 pasid=0x12345 address=0x5000 flags=0x0100 tag=0x0a5',
  },
];

describe('event records (spec vectors)', () => {
  for (const { event, words, line } of VECTORS)
    it(line, () => {
      expect(encoded(event)).toEqual(hexWords(words));
      expect(decodeEvent(Uint32Array.from(words), 0)).toEqual(event);
      expect(describeEvent(event)).toBe(line);
    });

  it('reads a record anywhere in the log, 16-byte aligned', () => {
    const log = new Uint32Array(16);
    log.set(VECTORS[0]!.words, 8);
    expect(decodeEvent(log, 8)).toEqual(VECTORS[0]!.event);
    expect(() => decodeEvent(log, 6)).toThrow(RangeError);
    expect(() => decodeEvent(log, 16)).toThrow(RangeError);
  });

  it('decodes codes it does not define as unknown, with the raw words', () => {
    // 0xA: EVENT_COUNTER_ZERO in FreeBSD only; 0: a slot not yet written
    for (const code of [0x0, 0xa, 0xd, 0xf]) {
      const words = Uint32Array.of(0x1234_5678, (code << 28) | 0x9abc, 0xdead_beef, 0x1);
      const event = decodeEvent(words, 0);
      expect(event).toEqual({
        kind: 'unknown',
        code,
        words: [0x1234_5678, ((code << 28) | 0x9abc) >>> 0, 0xdead_beef, 1],
      });
      expect(describeEvent(event)).toBe(
        `UNKNOWN event code=0x${code.toString(16)} words=0x12345678 0x${(((code << 28) | 0x9abc) >>> 0).toString(16).padStart(8, '0')} 0xdeadbeef 0x00000001`,
      );
    }
  });

  it('keeps only the flags an event defines when the driver reads it', () => {
    // NX (49) and PE (54) mean nothing in ILLEGAL_DEV_TABLE_ENTRY; RW (53) does
    const words = Uint32Array.of(0x10, 0x1062_0000, 0, 0);
    expect(decodeEvent(words, 0)).toMatchObject({ kind: 'illegal-dev-table-entry', flags: EVENT_FLAG.RW });
  });
});

const u = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
const flagsOf = (...flags: number[]) => fc.subarray(flags).map((set) => set.reduce((a, b) => a | b, 0));
const { GN, NX, US, I, PR, RW, PE, RZ, TR } = EVENT_FLAG;
const address = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const EVENTS: fc.Arbitrary<AmdEvent> = fc.oneof(
  fc.record({
    kind: fc.constant('illegal-dev-table-entry' as const),
    deviceId: u(16),
    pasid: u(20),
    flags: flagsOf(GN, I, RW, RZ, TR),
    address,
  }),
  fc.record({
    kind: fc.constant('io-page-fault' as const),
    deviceId: u(16),
    domainOrPasid: u(20),
    flags: flagsOf(GN, NX, US, I, PR, RW, PE, RZ, TR),
    address,
  }),
  fc.record({
    kind: fc.constant('dev-tab-hardware-error' as const),
    deviceId: u(16),
    flags: flagsOf(I, RW, TR),
    type: u(2),
    address,
  }),
  fc.record({
    kind: fc.constant('page-tab-hardware-error' as const),
    deviceId: u(16),
    domainOrPasid: u(16),
    flags: flagsOf(GN, I, RW, TR),
    type: u(2),
    address,
  }),
  fc.record({ kind: fc.constant('illegal-command-error' as const), address }),
  fc.record({ kind: fc.constant('command-hardware-error' as const), type: u(2), address }),
  fc.record({
    kind: fc.constant('iotlb-inv-timeout' as const),
    deviceId: u(16),
    address: u(49).map((n) => n * 16),
  }),
  fc.record({
    kind: fc.constant('invalid-device-request' as const),
    deviceId: u(16),
    pasid: u(20),
    flags: flagsOf(GN, US, TR),
    type: u(3),
    address,
  }),
  fc.record({
    kind: fc.constant('invalid-ppr-request' as const),
    deviceId: u(16),
    pasid: u(20),
    tag: u(10),
    flags: u(12),
    address,
  }),
);

describe('decodeEvent(encodeEvent(x))', () => {
  it('is x for every event, and describeEvent names it', () => {
    fc.assert(
      fc.property(EVENTS, fc.nat(3), (event, slot) => {
        const log = new Uint32Array(16).fill(0xffff_ffff);
        encodeEvent(event, log, 4 * slot);
        expect(decodeEvent(log, 4 * slot)).toEqual(event);
        expect(describeEvent(event)).toMatch(/^[A-Z_]+ /);
      }),
    );
  });
});

describe('encodeEvent refuses what the record cannot hold', () => {
  it.each([
    [{ kind: 'illegal-dev-table-entry', deviceId: 1, pasid: 0, flags: EVENT_FLAG.NX, address: 0 }, 'flags'],
    [{ kind: 'io-page-fault', deviceId: 1, domainOrPasid: 2 ** 20, flags: 0, address: 0 }, 'domainOrPasid'],
    [
      { kind: 'page-tab-hardware-error', deviceId: 1, domainOrPasid: 2 ** 16, flags: 0, type: 0, address: 0 },
      'domainOrPasid',
    ],
    [{ kind: 'dev-tab-hardware-error', deviceId: 1, flags: 0, type: 4, address: 0 }, 'type'],
    [{ kind: 'iotlb-inv-timeout', deviceId: 1, address: 0x1008 }, 'address'],
    [{ kind: 'illegal-command-error', address: -16 }, 'address'],
    [{ kind: 'invalid-ppr-request', deviceId: 1, pasid: 0, tag: 0x400, flags: 0, address: 0 }, 'tag'],
  ] as const)('%o: %s', (event, field) => {
    const out = new Uint32Array(4);
    expect(errnoOf(() => encodeEvent(event as AmdEvent, out, 0))).toBe('EINVAL');
    expect(() => encodeEvent(event as AmdEvent, out, 0)).toThrow(`.${field} =`);
  });
});

describe('PPR log entries', () => {
  // Linux PPR_*: DeviceID 15:0, PASID1 31:16, TAG 41:32, PASID2 45:42, FLAGS 59:48, REQ_TYPE 63:60
  const request: PprLogEntry = {
    type: PPR_LOG_TYPE.PAGE_REQUEST,
    deviceId: 0x0010,
    pasid: 0x1_2345,
    tag: PPR_TAG_LAST_PAGE | 0xa5,
    flags: PPR_FLAG.GN | PPR_FLAG.WRITE | PPR_FLAG.READ,
    address: 0x7f00_1000,
  };
  const words = [0x2345_0010, 0x1124_06a5, 0x7f00_1000, 0];

  it('lays a page request out as Linux reads it', () => {
    const out = new Uint32Array(4);
    encodePprLogEntry(request, out, 0);
    expect(hexWords(Array.from(out))).toEqual(hexWords(words));
    expect(decodePprLogEntry(Uint32Array.from(words), 0)).toEqual(request);
  });

  it('round-trips every entry', () => {
    const entries = fc.record({
      type: u(4),
      deviceId: u(16),
      pasid: u(20),
      tag: u(10),
      flags: u(12),
      address: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    });
    fc.assert(
      fc.property(entries, fc.nat(3), (entry, slot) => {
        const log = new Uint32Array(16).fill(0xffff_ffff);
        encodePprLogEntry(entry, log, 4 * slot);
        expect(decodePprLogEntry(log, 4 * slot)).toEqual(entry);
      }),
    );
  });

  it('refuses a PASID wider than 20 bits', () => {
    expect(errnoOf(() => encodePprLogEntry({ ...request, pasid: 2 ** 20 }, new Uint32Array(4), 0))).toBe(
      'EINVAL',
    );
  });
});
