import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deposit32, field32, hi32, join64, join64ToNumber, lo32, numberHi32, numberLo32 } from './words.js';

const U64_MAX = 2n ** 64n - 1n;

describe('lo32 / hi32 / join64', () => {
  it.each([
    [0n, 0, 0],
    [2n ** 32n - 1n, 0xffff_ffff, 0],
    [2n ** 32n, 0, 1],
    [2n ** 52n, 0, 0x10_0000],
    [2n ** 53n, 0, 0x20_0000],
    [0x1234_5678_9abc_def0n, 0x9abc_def0, 0x1234_5678],
    [U64_MAX, 0xffff_ffff, 0xffff_ffff],
  ])('%s splits into lo %s, hi %s and joins back', (value, lo, hi) => {
    expect(lo32(value)).toBe(lo);
    expect(hi32(value)).toBe(hi);
    expect(join64(lo, hi)).toBe(value);
  });

  it('round-trips every 64-bit value through unsigned halves', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, U64_MAX), (value) => {
        const lo = lo32(value);
        const hi = hi32(value);
        expect(lo).toBeGreaterThanOrEqual(0);
        expect(lo).toBeLessThan(2 ** 32);
        expect(hi).toBeGreaterThanOrEqual(0);
        expect(hi).toBeLessThan(2 ** 32);
        expect(join64(lo, hi)).toBe(value);
      }),
    );
  });

  it('join64 treats negative int32 halves (from bitwise ops or Int32Array) as unsigned', () => {
    expect(join64(-1, -1)).toBe(U64_MAX);
    expect(join64(0x8000_0000 | 0, 0)).toBe(0x8000_0000n);
  });
});

describe('join64ToNumber', () => {
  it.each([
    [0, 0, 0],
    [0xffff_ffff, 0, 2 ** 32 - 1],
    [0, 1, 2 ** 32],
    [0, 0x10_0000, 2 ** 52],
    [0xffff_ffff, 0x1f_ffff, 2 ** 53 - 1],
    [-1, 0x1f_ffff, 2 ** 53 - 1],
  ])('join64ToNumber(%s, %s) is exactly %s', (lo, hi, value) => {
    expect(join64ToNumber(lo, hi)).toBe(value);
  });

  it.each([
    [0, 0x20_0000],
    [1, 0x20_0000],
    [0xffff_ffff, 0xffff_ffff],
    [0, -1],
  ])('join64ToNumber(%s, %s) is at or above 2^53 and throws', (lo, hi) => {
    expect(() => join64ToNumber(lo, hi)).toThrow(RangeError);
  });

  it('agrees with join64 below 2^53', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
        const value = BigInt(n);
        expect(join64ToNumber(lo32(value), hi32(value))).toBe(n);
      }),
    );
  });
});

describe('numberLo32 / numberHi32', () => {
  it.each([
    [0, 0, 0],
    [2 ** 32 - 1, 0xffff_ffff, 0],
    [2 ** 32, 0, 1],
    [2 ** 52, 0, 0x10_0000],
    [2 ** 53 - 1, 0xffff_ffff, 0x1f_ffff],
  ])('%s has lo %s, hi %s', (value, lo, hi) => {
    expect(numberLo32(value)).toBe(lo);
    expect(numberHi32(value)).toBe(hi);
    expect(join64ToNumber(numberLo32(value), numberHi32(value))).toBe(value);
  });

  it('matches the bigint split for every safe integer', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
        expect(numberLo32(n)).toBe(lo32(BigInt(n)));
        expect(numberHi32(n)).toBe(hi32(BigInt(n)));
      }),
    );
  });
});

describe('field32', () => {
  it.each([
    [0xdead_beef, 0, 32, 0xdead_beef],
    [0xffff_ffff, 0, 32, 0xffff_ffff],
    [0x8000_0000, 31, 1, 1],
    [0x7fff_ffff, 31, 1, 0],
    [0xdead_beef, 16, 16, 0xdead],
    [0xdead_beef, 0, 16, 0xbeef],
    [0xdead_beef, 4, 8, 0xee],
    [0xffff_ffff, 1, 31, 0x7fff_ffff],
    [0xffff_ffff, 0, 31, 0x7fff_ffff],
    [-1, 0, 32, 0xffff_ffff],
  ])('field32(%s, lsb %s, width %s) is %s', (word, lsb, width, value) => {
    expect(field32(word, lsb, width)).toBe(value);
  });
});

describe('deposit32', () => {
  it.each([
    [0, 0, 32, 0xffff_ffff, 0xffff_ffff],
    [0xffff_ffff, 0, 32, 0, 0],
    [0, 31, 1, 1, 0x8000_0000],
    [0xffff_ffff, 31, 1, 0, 0x7fff_ffff],
    [0, 1, 31, 0x7fff_ffff, 0xffff_fffe],
    [0xdead_beef, 8, 8, 0x12, 0xdead_12ef],
    // Bits of `value` beyond `width` must not leak into neighbouring fields.
    [0, 4, 4, 0xff, 0xf0],
    [0x8000_0000, 0, 4, 0xf, 0x8000_000f],
  ])('deposit32(%s, lsb %s, width %s, %s) is %s', (word, lsb, width, value, result) => {
    expect(deposit32(word, lsb, width, value)).toBe(result);
  });

  const fieldArb = fc
    .integer({ min: 1, max: 32 })
    .chain((width) => fc.tuple(fc.integer({ min: 0, max: 32 - width }), fc.constant(width)));
  const wordArb = fc.integer({ min: 0, max: 0xffff_ffff });

  it('writes the field, keeps the other bits, and always yields an unsigned 32-bit number', () => {
    fc.assert(
      fc.property(wordArb, fieldArb, wordArb, (word, [lsb, width], value) => {
        const out = deposit32(word, lsb, width, value);
        expect(Number.isInteger(out) && out >= 0 && out <= 0xffff_ffff).toBe(true);
        const mask = width === 32 ? 0xffff_ffff : 2 ** width - 1;
        expect(field32(out, lsb, width)).toBe((value & mask) >>> 0);
        if (lsb > 0) expect(field32(out, 0, lsb)).toBe(field32(word, 0, lsb));
        const top = lsb + width;
        if (top < 32) expect(field32(out, top, 32 - top)).toBe(field32(word, top, 32 - top));
      }),
    );
  });

  it('field32 is always an unsigned number below 2^width', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 0xffff_ffff }), fieldArb, (word, [lsb, width]) => {
        const out = field32(word, lsb, width);
        expect(out).toBeGreaterThanOrEqual(0);
        expect(out).toBeLessThan(2 ** width);
      }),
    );
  });
});
