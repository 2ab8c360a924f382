import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEvent,
  EVENT_CLASS,
  EVENT_FAULT_KIND,
  EVENT_FIELDS,
  EVENT_ID,
  EVENT_WORDS,
  type EventField,
  type EventName,
  type EventRecord,
  encodeEvent,
  eventName,
} from './events.js';

const hexWords = (w: Uint32Array) => Array.from(w, (x) => `0x${x.toString(16).padStart(8, '0')}`);
const record = (...w: number[]) =>
  hexWords(Uint32Array.from([...w, ...new Array(EVENT_WORDS - w.length).fill(0)]));

describe('event records (SMMUv3 §7.3)', () => {
  it('F_TRANSLATION for a stage 2 fault on a read, to the exact words', () => {
    const event: EventRecord = {
      id: EVENT_ID.F_TRANSLATION,
      streamId: 0x10,
      ssv: true,
      substreamId: 3,
      stag: 0,
      stall: false,
      rnw: true,
      ind: false,
      pnu: false,
      nsipa: false,
      s2: true,
      class: EVENT_CLASS.IN,
      inputAddrPage: 0x1_2345_6789,
      inputAddrOffset: 0xabc,
      ipa: 0x8000_0000,
    };
    const w = encodeEvent(event);
    // q0: ID 0x10 | SSV (11) | SubstreamID << 12 | StreamID << 32; q1: RnW (99) | S2 (103) | CLASS 0b10 << 104;
    // q2: InputAddr 0x1234_5678_9abc; q3: IPA[55:12].
    expect(hexWords(w)).toEqual(record(0x3810, 0x10, 0, 0x288, 0x56789abc, 0x1234, 0x80000000, 0));
    expect(decodeEvent(w)).toEqual(event);
  });

  it('a stalled F_PERMISSION from a stage 1 table walk write', () => {
    const event: EventRecord = {
      id: EVENT_ID.F_PERMISSION,
      streamId: 0xffff_ffff,
      ssv: false,
      substreamId: 0,
      stag: 0xbeef,
      stall: true,
      rnw: true,
      ind: false,
      pnu: true,
      nsipa: false,
      s2: true,
      class: EVENT_CLASS.TT,
      ttRnW: false,
      inputAddrPage: 2 ** 52 - 1,
      inputAddrOffset: 0xfff,
      ipa: 0xf_ffff_ffff_f000,
    };
    const w = encodeEvent(event);
    // q1: STAG | Stall (95) | PnU (97) | RnW (99) | S2 (103) | CLASS 0b01 << 104.
    expect(hexWords(w)).toEqual(
      record(0x13, 0xffffffff, 0x8000beef, 0x18a, 0xffffffff, 0xffffffff, 0xfffff000, 0xfffff),
    );
    expect(decodeEvent(w)).toEqual(event);
  });

  it('C_BAD_STE, F_STE_FETCH and C_BAD_SUBSTREAMID carry only their own fields', () => {
    expect(hexWords(encodeEvent({ id: EVENT_ID.C_BAD_STE, streamId: 0x42 }))).toEqual(record(0x04, 0x42));
    const fetch = {
      id: EVENT_ID.F_STE_FETCH,
      streamId: 1,
      ssv: false,
      substreamId: 0,
      reason: 7,
      fetchAddr: 0x8_0000_0040,
    };
    // Reason in q1[15:0]; FetchAddr[55:3] in q3[55:3].
    expect(hexWords(encodeEvent(fetch))).toEqual(record(0x03, 1, 7, 0, 0, 0, 0x40, 0x8));
    expect(decodeEvent(encodeEvent(fetch))).toEqual(fetch);
    const badSsid = { id: EVENT_ID.C_BAD_SUBSTREAMID, streamId: 9, substreamId: 0xfffff };
    expect(hexWords(encodeEvent(badSsid))).toEqual(record(0xfffff008, 9));
    expect(decodeEvent(encodeEvent(badSsid))).toEqual(badSsid); // no SSV in this record
  });

  it('E_PAGE_REQUEST, to the exact words', () => {
    const event: EventRecord = {
      id: EVENT_ID.E_PAGE_REQUEST,
      streamId: 5,
      ssv: true,
      substreamId: 2,
      span: 4,
      pR: true,
      pW: false,
      pX: false,
      uR: false,
      uW: true,
      uX: false,
      inputAddrPage: 0xabcde,
    };
    const w = encodeEvent(event);
    // q1: uW (98) | pR (103) | Span << 108; q2: InputAddr[63:12].
    expect(hexWords(w)).toEqual(record(0x2824, 5, 0, 0x4084, 0xabcde000, 0));
    expect(decodeEvent(w)).toEqual(event);
  });

  it('F_STREAM_DISABLED holds only the StreamID', () => {
    const w = encodeEvent({ id: EVENT_ID.F_STREAM_DISABLED, streamId: 3 });
    expect(hexWords(w)).toEqual(record(0x06, 3));
    w[0]! |= 0x800; // an SSV bit is RES0 here and not decoded
    expect(decodeEvent(w)).toEqual({ id: EVENT_ID.F_STREAM_DISABLED, streamId: 3 });
  });

  it('refuses a field the event type does not have, or a value that does not fit', () => {
    expect(() => encodeEvent({ id: EVENT_ID.F_STREAM_DISABLED, streamId: 3, ssv: true })).toThrow(
      'F_STREAM_DISABLED has no ssv field',
    );
    expect(() => encodeEvent({ id: EVENT_ID.C_BAD_STE, streamId: 0, stag: 5 })).toThrow(/no stag field/);
    expect(() => encodeEvent({ id: EVENT_ID.F_TRANSLATION, streamId: 0, ttRnW: true })).toThrow(/no ttRnW/);
    // Zero values of foreign fields are harmless.
    expect(() => encodeEvent({ id: EVENT_ID.C_BAD_STE, streamId: 0, stag: 0, stall: false })).not.toThrow();
    expect(() => encodeEvent({ id: EVENT_ID.F_ACCESS, streamId: 0, class: 4 })).toThrow(
      /F_ACCESS\.class = 0x4 is not an unsigned integer below 2\^2/,
    );
    expect(errnoOf(() => encodeEvent({ id: 0x100, streamId: 0 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeEvent({ id: EVENT_ID.F_WALK_EABT, streamId: 0, fetchAddr: 0x1004 }))).toBe(
      'EINVAL',
    );
  });

  it('names IDs; IMPLEMENTATION DEFINED and reserved IDs keep only the StreamID', () => {
    expect(eventName(0x0a)).toBe('C_BAD_CD');
    expect(eventName(0x25)).toBe('F_VMS_FETCH');
    expect(eventName(0xe3)).toBeUndefined();
    const w = encodeEvent({ id: 0xe3, streamId: 77 });
    w[2] = 0x1234;
    expect(decodeEvent(w)).toEqual({ id: 0xe3, streamId: 77 });
  });

  it('round-trips every event type with random field values (property)', () => {
    const arbs: Record<EventField, fc.Arbitrary<number | boolean>> = {
      ssv: fc.boolean(),
      substreamId: fc.integer({ min: 0, max: 2 ** 20 - 1 }),
      stag: fc.integer({ min: 0, max: 0xffff }),
      reason: fc.integer({ min: 0, max: 0xffff }),
      stall: fc.boolean(),
      pnu: fc.boolean(),
      ind: fc.boolean(),
      rnw: fc.boolean(),
      nsipa: fc.boolean(),
      s2: fc.boolean(),
      class: fc.integer({ min: 0, max: 3 }),
      ttRnW: fc.boolean(),
      inputAddrPage: fc.integer({ min: 0, max: 2 ** 52 - 1 }),
      inputAddrOffset: fc.integer({ min: 0, max: 0xfff }),
      ipa: fc.integer({ min: 0, max: 2 ** 44 - 1 }).map((x) => x * 4096),
      fetchAddr: fc.integer({ min: 0, max: 2 ** 50 - 1 }).map((x) => x * 8),
      span: fc.integer({ min: 0, max: 0xff }),
      pR: fc.boolean(),
      pW: fc.boolean(),
      pX: fc.boolean(),
      uR: fc.boolean(),
      uW: fc.boolean(),
      uX: fc.boolean(),
    };
    for (const name of Object.keys(EVENT_FIELDS) as EventName[]) {
      const fields = Object.fromEntries(EVENT_FIELDS[name].map((f) => [f, arbs[f]]));
      const arb = fc.record({ streamId: fc.integer({ min: 0, max: 2 ** 32 - 1 }), ...fields });
      fc.assert(
        fc.property(arb, (f) => {
          const event = { id: EVENT_ID[name], ...f } as EventRecord;
          expect(decodeEvent(encodeEvent(event))).toEqual(event);
        }),
        { numRuns: 50 },
      );
    }
  });

  it('every event type uses only the bits of its own fields', () => {
    // Setting all of a type's fields to all-ones must not disturb the ID, and must decode back.
    for (const [name, fields] of Object.entries(EVENT_FIELDS) as [EventName, readonly EventField[]][]) {
      const ones: Record<string, number | boolean> = {};
      for (const f of fields) {
        ones[f] =
          f === 'inputAddrPage'
            ? 2 ** 52 - 1
            : f === 'ipa'
              ? 2 ** 56 - 4096
              : f === 'fetchAddr'
                ? 2 ** 56 - 8
                : f === 'substreamId'
                  ? 2 ** 20 - 1
                  : f === 'inputAddrOffset'
                    ? 0xfff
                    : f === 'class'
                      ? 3
                      : f === 'span'
                        ? 0xff
                        : f === 'stag' || f === 'reason'
                          ? 0xffff
                          : true;
      }
      const event = { id: EVENT_ID[name], streamId: 0xffff_ffff, ...ones } as EventRecord;
      const w = encodeEvent(event);
      expect(w[0]! & 0xff, name).toBe(EVENT_ID[name]);
      expect(decodeEvent(w), name).toEqual(event);
    }
  });
});

describe('what each event type means and carries (§7.3.2–7.3.20)', () => {
  it('gives each event the vendor-neutral fault kind of its cause', () => {
    const byKind: Record<string, string[]> = {};
    for (const [name, kind] of Object.entries(EVENT_FAULT_KIND))
      byKind[kind] = [...(byKind[kind] ?? []), name];
    expect(byKind).toEqual({
      'bad-config': ['F_UUT', 'C_BAD_STE', 'C_BAD_CD', 'F_TLB_CONFLICT', 'F_CFG_CONFLICT'],
      'bad-stream': ['C_BAD_STREAMID'],
      'bad-pasid': ['C_BAD_SUBSTREAMID'],
      'walk-abort': ['F_STE_FETCH', 'F_CD_FETCH', 'F_WALK_EABT', 'F_VMS_FETCH'],
      'ats-disabled': ['F_BAD_ATS_TREQ'],
      'config-abort': ['F_STREAM_DISABLED'],
      permission: ['F_TRANSL_FORBIDDEN', 'F_PERMISSION'],
      translation: ['F_TRANSLATION', 'E_PAGE_REQUEST'],
      'address-size': ['F_ADDR_SIZE'],
      'access-flag': ['F_ACCESS'],
    });
    expect(Object.keys(EVENT_FAULT_KIND).sort()).toEqual(Object.keys(EVENT_ID).sort());
  });

  it('lists the fields of the configuration and fetch events', () => {
    expect(EVENT_FIELDS.C_BAD_STREAMID).toEqual(['ssv', 'substreamId']);
    expect(EVENT_FIELDS.C_BAD_STE).toEqual(['ssv', 'substreamId']);
    expect(EVENT_FIELDS.C_BAD_CD).toEqual(['ssv', 'substreamId']);
    expect(EVENT_FIELDS.C_BAD_SUBSTREAMID).toEqual(['substreamId']);
    expect(EVENT_FIELDS.F_STREAM_DISABLED).toEqual([]);
    for (const name of ['F_STE_FETCH', 'F_CD_FETCH', 'F_VMS_FETCH'] as const)
      expect(EVENT_FIELDS[name]).toEqual(['ssv', 'substreamId', 'reason', 'fetchAddr']);
    expect(EVENT_FIELDS.F_CFG_CONFLICT).toEqual(['ssv', 'substreamId', 'reason']);
    expect(EVENT_FIELDS.F_BAD_ATS_TREQ).toEqual(['ssv', 'substreamId', 'inputAddrPage', 'inputAddrOffset']);
  });
});
