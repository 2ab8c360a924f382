import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import { entryAddress, entryField, setEntryAddress, setEntryField } from './words.js';

describe('entry fields', () => {
  it('reads fields inside one word and across the 32-bit boundary', () => {
    const w = Uint32Array.of(0xdeadbeef, 0x12345678, 0, 0);
    expect(entryField(w, 0, 8)).toBe(0xef);
    expect(entryField(w, 28, 8)).toBe(0x8d); // 0xd from word 0 bits 31:28, 0x8 from word 1 bits 3:0
    expect(entryField(w, 32, 32)).toBe(0x12345678);
    expect(entryField(w, 59, 5)).toBe(0x12345678 >>> 27);
  });

  it('round-trips any field of any width at any position (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 1, max: 32 }),
        fc.nat(),
        (lsb, width, raw) => {
          const words = new Uint32Array(10).fill(0xa5a5a5a5);
          const before = Uint32Array.from(words);
          const value = width === 32 ? raw >>> 0 : raw % 2 ** width;
          setEntryField(words, lsb, width, value);
          expect(entryField(words, lsb, width)).toBe(value);
          // Bits outside the field are untouched.
          for (let bit = 0; bit < 320; bit++) {
            if (bit >= lsb && bit < lsb + width) continue;
            expect(entryField(words, bit, 1)).toBe(entryField(before, bit, 1));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it.each([
    [6, 51, 0x000f_ffff_ffff_ffc0],
    [4, 51, 0x000f_ffff_ffff_fff0],
    [12, 51, 0x000f_ffff_ffff_f000],
    [64 + 4, 64 + 51, 0x8_0000_0010],
    [64 * 3 + 4, 64 * 3 + 51, 2 ** 52 - 16],
  ])('address bits %i..%i: round trip of %s and neighbours untouched', (lsb, msb, address) => {
    const words = new Uint32Array(8).fill(0xffff_ffff);
    setEntryAddress(words, lsb, msb, address);
    expect(entryAddress(words, lsb, msb)).toBe(address);
    // The bits just outside the field keep their ones.
    if (lsb % 64 > 0) expect(entryField(words, lsb - 1, 1)).toBe(1);
    if (msb % 64 < 63) expect(entryField(words, msb + 1, 1)).toBe(1);
  });

  it('refuses an address that does not fit the field with EINVAL, leaving the words alone', () => {
    // Misaligned, too wide, and negative (an aligned negative address used to be written wrapped).
    for (const address of [0x20, 2 ** 52, -64, 64.5, Number.NaN]) {
      const words = new Uint32Array(2);
      expect(
        errnoOf(() => setEntryAddress(words, 6, 51, address)),
        `${address}`,
      ).toBe('EINVAL');
      expect(Array.from(words)).toEqual([0, 0]);
    }
  });

  it('reads any address field of a qword as a BigInt reference does, and writes only its bits (property)', () => {
    const word = fc.integer({ min: 0, max: 0xffff_ffff });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 63 }),
        fc.integer({ min: 0, max: 51 }),
        fc.array(word, { minLength: 6, maxLength: 6 }),
        fc.bigInt({ min: 0n, max: 2n ** 52n - 1n }),
        (q, low, span, initial, raw) => {
          const high = Math.min(63, low + span);
          // Fields that would hold 2^52 or more are not address fields (numbers stay exact below 2^53).
          fc.pre(high <= 51);
          const words = Uint32Array.from(initial);
          const qword = (BigInt(words[2 * q]!) | (BigInt(words[2 * q + 1]!) << 32n)) & ((1n << 64n) - 1n);
          const mask = ((1n << BigInt(high + 1)) - 1n) ^ ((1n << BigInt(low)) - 1n);
          expect(entryAddress(words, 64 * q + low, 64 * q + high)).toBe(Number(qword & mask));
          const address = Number(raw & mask);
          setEntryAddress(words, 64 * q + low, 64 * q + high, address);
          expect(entryAddress(words, 64 * q + low, 64 * q + high)).toBe(address);
          const after = BigInt(words[2 * q]!) | (BigInt(words[2 * q + 1]!) << 32n);
          expect(after & ~mask & ((1n << 64n) - 1n)).toBe(qword & ~mask & ((1n << 64n) - 1n));
          const others = [0, 1, 2, 3, 4, 5].filter((i) => i >>> 1 !== q);
          expect(others.map((i) => words[i])).toEqual(others.map((i) => initial[i]));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('reads a field that reaches bit 63 of its qword as a non-negative address', () => {
    const words = Uint32Array.of(0x1234_5678, 0xffff_ffff);
    expect(entryAddress(words, 32, 63)).toBe(0xffff_ffff * 2 ** 32);
    expect(entryAddress(words, 44, 63)).toBe(0xfffff * 2 ** 44);
    expect(entryAddress(words, 12, 63)).toBe(0xffff_ffff * 2 ** 32 + 0x1234_5000);
  });

  it('reads any field up to 32 bits at any position as a BigInt reference does (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 95 }),
        fc.integer({ min: 1, max: 32 }),
        fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), { minLength: 4, maxLength: 4 }),
        (lsb, width, initial) => {
          const words = Uint32Array.from(initial);
          let all = 0n;
          for (let i = 3; i >= 0; i--) all = (all << 32n) | BigInt(words[i]!);
          const expected = Number((all >> BigInt(lsb)) & ((1n << BigInt(width)) - 1n));
          expect(entryField(words, lsb, width)).toBe(expected);
        },
      ),
      { numRuns: 400 },
    );
  });
});
