import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePriEntry, encodePriEntry, isStopMarker, PRI_ENTRY_WORDS, type PriEntry } from './priq.js';

const ZERO: PriEntry = {
  streamId: 0,
  substreamId: 0,
  priv: false,
  exec: false,
  read: false,
  write: false,
  last: false,
  ssv: false,
  prgIndex: 0,
  addressPage: 0,
};

describe('PRI queue entries (SMMUv3 §8)', () => {
  it('encodes a page request with a PASID to the exact words', () => {
    const entry: PriEntry = {
      streamId: 0x0001_0010,
      substreamId: 0x1_2345,
      priv: false,
      exec: false,
      read: true,
      write: true,
      last: true,
      ssv: true,
      prgIndex: 0x1a5,
      addressPage: 0x7_fff1_2345, // page address 0x7fff_1234_5000
    };
    const w = encodePriEntry(entry);
    // q0: StreamID | SubstreamID << 32 | R (60) | W (61) | Last (62) | SSV (63); q1: PRGIndex | address[63:12].
    expect(Array.from(w)).toEqual([0x00010010, 0xf0012345, 0x123451a5, 0x00007fff]);
    expect(decodePriEntry(w)).toEqual(entry);
  });

  it('puts Priv and eXecute at bits 58 and 59', () => {
    expect(Array.from(encodePriEntry({ priv: true, exec: true, ssv: true }))).toEqual([0, 0x8c000000, 0, 0]);
  });

  it('encodes nothing as zero and round-trips the limits', () => {
    expect(encodePriEntry()).toEqual(new Uint32Array(PRI_ENTRY_WORDS));
    expect(decodePriEntry(new Uint32Array(PRI_ENTRY_WORDS))).toEqual(ZERO);
    const max: PriEntry = {
      streamId: 0xffff_ffff,
      substreamId: 0xf_ffff,
      priv: true,
      exec: true,
      read: true,
      write: true,
      last: true,
      ssv: true,
      prgIndex: 0x1ff,
      addressPage: 2 ** 52 - 1,
    };
    const w = encodePriEntry(max);
    expect(Array.from(w)).toEqual([0xffffffff, 0xfc0fffff, 0xfffff1ff, 0xffffffff]);
    expect(decodePriEntry(w)).toEqual(max);
  });

  it('round-trips random entries (property)', () => {
    const arb = fc.record({
      streamId: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      substreamId: fc.integer({ min: 0, max: 2 ** 20 - 1 }),
      priv: fc.boolean(),
      exec: fc.boolean(),
      read: fc.boolean(),
      write: fc.boolean(),
      last: fc.boolean(),
      ssv: fc.boolean(),
      prgIndex: fc.integer({ min: 0, max: 0x1ff }),
      addressPage: fc.integer({ min: 0, max: 2 ** 52 - 1 }),
    });
    fc.assert(
      fc.property(arb, (entry) => {
        expect(decodePriEntry(encodePriEntry(entry))).toEqual(entry);
      }),
    );
  });

  it('refuses values that do not fit', () => {
    expect(() => encodePriEntry({ prgIndex: 0x200 })).toThrow(/prgIndex/);
    expect(errnoOf(() => encodePriEntry({ substreamId: 2 ** 20 }))).toBe('EINVAL');
    expect(errnoOf(() => encodePriEntry({ addressPage: 2 ** 52 }))).toBe('EINVAL');
  });

  it('a Stop PASID marker has a PASID and Last/Write/Read == 0b100', () => {
    expect(isStopMarker({ ...ZERO, ssv: true, last: true })).toBe(true);
    expect(isStopMarker({ ...ZERO, ssv: false, last: true })).toBe(false); // an ordinary page request
    expect(isStopMarker({ ...ZERO, ssv: true, last: true, read: true })).toBe(false);
    expect(isStopMarker({ ...ZERO, ssv: true, last: false })).toBe(false);
  });
});
