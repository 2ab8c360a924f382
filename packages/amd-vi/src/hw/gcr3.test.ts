import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkGcr3Entry,
  decodeGcr3Entry,
  encodeGcr3Entry,
  GCR3_FAULT,
  GLX,
  gcr3EntryAddress,
  gcr3Levels,
  gcr3PasidLimit,
  gcr3TableIndex,
} from './gcr3.js';

const hex = (w: ArrayLike<number>) => Array.from(w, (x) => `0x${(x >>> 0).toString(16).padStart(8, '0')}`);
const withBit = (words: Uint32Array, bit: number) => {
  const copy = Uint32Array.from(words);
  copy[bit >>> 5]! |= 1 << (bit & 31);
  return copy;
};
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

describe('GCR3 table entry', () => {
  it('encodes the valid bit and the pointer in bits 51:12', () => {
    const w = encodeGcr3Entry({ valid: true, pointer: 0x8_9abc_d000 });
    expect(hex(w)).toEqual(hex([0x9abc_d001, 0x0000_0008]));
    expect(decodeGcr3Entry(w)).toEqual({ valid: true, pointer: 0x8_9abc_d000 });
    expect(decodeGcr3Entry(Uint32Array.of(0xffff_ffff, 0xffff_ffff))).toEqual({
      valid: true,
      pointer: 2 ** 52 - 2 ** 12,
    });
  });

  it('round-trips every field value', () => {
    const entry = fc.record({
      valid: fc.boolean(),
      pointer: fc.integer({ min: 0, max: 2 ** 40 - 1 }).map((x) => x * 4096),
    });
    fc.assert(
      fc.property(entry, (e) => {
        expect(decodeGcr3Entry(encodeGcr3Entry(e))).toEqual(e);
      }),
    );
  });

  it('refuses a pointer that is not 4 KiB aligned or not below 2^52', () => {
    expect(errnoOf(() => encodeGcr3Entry({ pointer: 0x1008 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeGcr3Entry({ pointer: 2 ** 52 }))).toBe('EINVAL');
  });

  describe('checkGcr3Entry', () => {
    const VALID = encodeGcr3Entry({ valid: true, pointer: 0x7000 });

    it('accepts a valid entry; an entry not valid is NOT_VALID whatever else it holds', () => {
      expect(checkGcr3Entry(VALID)).toBe(0);
      expect(checkGcr3Entry(Uint32Array.of(0xffff_fffe, 0xffff_ffff))).toBe(GCR3_FAULT.NOT_VALID);
    });

    it('rejects exactly bits 11:1 and 63:52 as reserved', () => {
      const rejected = range(0, 63).filter(
        (bit) => checkGcr3Entry(withBit(VALID, bit)) === GCR3_FAULT.RESERVED_BITS,
      );
      expect(rejected).toEqual([...range(1, 11), ...range(52, 63)]);
    });
  });
});

describe('GCR3 table levels and indexing', () => {
  it('has GLX + 1 levels of 512 entries, indexing 9, 18 or 27 PASID bits', () => {
    expect([GLX.LEVELS_1, GLX.LEVELS_2, GLX.LEVELS_3].map(gcr3Levels)).toEqual([1, 2, 3]);
    expect([0, 1, 2].map(gcr3PasidLimit)).toEqual([2 ** 9, 2 ** 18, 2 ** 27]);
  });

  it('splits a PASID 9 bits per level, the last level taking PASID[8:0]', () => {
    // 0xabcde = 2 · 2^18 + 0x15e · 2^9 + 0xde.
    expect([2, 1, 0].map((level) => gcr3TableIndex(0xabcde, level))).toEqual([2, 0x15e, 0xde]);
    expect(gcr3EntryAddress(0x5000, 0xabcde, 1)).toBe(0x5000 + 0x15e * 8);
    expect(gcr3EntryAddress(0x5000, 0xabcde, 0)).toBe(0x5000 + 0xde * 8);
    expect(gcr3EntryAddress(0x5000, 0x1ff, 0)).toBe(0x5ff8);
  });

  it('indexes every PASID below the limit of three levels by its own digits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 27 - 1 }), (pasid) => {
        const indexes = [0, 1, 2].map((level) => gcr3TableIndex(pasid, level));
        for (const index of indexes) expect(index).toBeLessThan(512);
        expect(indexes[0]! + indexes[1]! * 2 ** 9 + indexes[2]! * 2 ** 18).toBe(pasid);
      }),
    );
  });
});
