import { describe, expect, it } from 'vitest';
import { IommufdError } from '../errors/iommufd-error.js';
import {
  type EntryLayout,
  entryReader,
  writeAddress,
  writeEntryFields,
  writeScalars,
} from './entry-layout.js';
import { entryAddress, entryField } from './words.js';

const LAYOUT: EntryLayout = {
  scalars: { valid: [0, 1], kind: [1, 3], straddle: [28, 8], word: [64, 32], wide: [100, 32], top: [96, 1] },
  addresses: { base: [132, 175] },
};

interface Decoded {
  valid: boolean;
  kind: number;
  straddle: number;
  word: number;
  wide: number;
  top: boolean;
  base: number;
}

const read = entryReader<Decoded>(LAYOUT);

/** 200 arrays of `count` pseudo-random words (a fixed linear congruential sequence from `seed`). */
function* randomWords(count: number, seed: number): Generator<Uint32Array> {
  const words = new Uint32Array(count);
  for (let round = 0; round < 200; round++) {
    for (let i = 0; i < count; i++) {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      words[i] = seed;
    }
    yield words;
  }
}

function encode(fields: Partial<Decoded>): Uint32Array {
  const words = new Uint32Array(6);
  writeEntryFields(words, LAYOUT, fields, 'TEST');
  return words;
}

describe('entryReader', () => {
  it('decodes width-1 fields as booleans, others as numbers, fields across words, and addresses', () => {
    const fields = {
      valid: true,
      kind: 5,
      straddle: 0xa5,
      word: 0xfedc_ba98,
      wide: 0xffff_fffe,
      top: true,
      base: 0xab_cdef_f000,
    };
    expect(read(encode(fields))).toEqual(fields);
    expect(read(new Uint32Array(6))).toEqual({
      valid: false,
      kind: 0,
      straddle: 0,
      word: 0,
      wide: 0,
      top: false,
      base: 0,
    });
  });

  it('reads exactly the bits entryField reads, for every field of random words', () => {
    for (const words of randomWords(6, 0x1234_5678)) {
      const decoded = read(words) as unknown as Record<string, number | boolean>;
      for (const [key, [lsb, width]] of Object.entries(LAYOUT.scalars)) {
        const value = entryField(words, lsb, width);
        expect(decoded[key], key).toBe(width === 1 ? value === 1 : value);
      }
    }
  });

  it('reads exactly the addresses entryAddress reads, in either half of a 64-bit word or across both', () => {
    const addresses = {
      a: [6, 29],
      b: [36, 63],
      c: [76, 119],
      d: [128, 179],
      e: [192, 223],
      f: [224, 255],
    } as const;
    const readAddresses = entryReader<Record<string, number>>({ scalars: {}, addresses });
    for (const words of randomWords(8, 0x9e37_79b9)) {
      const decoded = readAddresses(words);
      for (const [key, [lsb, msb]] of Object.entries(addresses))
        expect(decoded[key], key).toBe(entryAddress(words, lsb, msb));
    }
  });

  it('leaves the neighbours of a field alone when one field is all ones', () => {
    expect(read(encode({ straddle: 0xff }))).toMatchObject({ kind: 0, straddle: 0xff, word: 0 });
    expect(read(encode({ wide: 0xffff_ffff }))).toMatchObject({ word: 0, wide: 0xffff_ffff, top: false });
  });

  it('gives every decoded structure of a layout the same keys in the same order', () => {
    const a = read(encode({ kind: 1 }));
    const b = read(encode({ valid: true, word: 1 }));
    expect(Object.keys(a)).toEqual(['valid', 'kind', 'straddle', 'word', 'wide', 'top', 'base']);
    expect(Object.keys(b)).toEqual(Object.keys(a));
    expect(b).not.toBe(a);
  });

  it('refuses a layout it cannot compile, naming the field', () => {
    expect(() => entryReader({ scalars: { f: [3, 0] }, addresses: {} })).toThrow(
      /^EINVAL: scalar field f \[3, 0\]/,
    );
    expect(() => entryReader({ scalars: { f: [3, 33] }, addresses: {} })).toThrow(IommufdError);
    expect(() => entryReader({ scalars: { f: [-1, 1] }, addresses: {} })).toThrow(IommufdError);
    expect(() => entryReader({ scalars: { f: [0.5, 1] }, addresses: {} })).toThrow(IommufdError);
    expect(() => entryReader({ scalars: {}, addresses: { a: [60, 70] } })).toThrow(/address field a/);
    expect(() => entryReader({ scalars: {}, addresses: { a: [12, 6] } })).toThrow(IommufdError);
    expect(() => entryReader({ scalars: {}, addresses: { a: [0, 52] } })).toThrow(IommufdError);
    expect(() => entryReader({ scalars: {}, addresses: { a: [0, 51] } })).not.toThrow();
  });

  it('keeps field names that are not identifiers as they are', () => {
    const odd = entryReader<Record<string, number>>({
      scalars: { 'a-b': [0, 4], '"q"': [4, 4] },
      addresses: {},
    });
    expect(odd(Uint32Array.of(0x5a))).toEqual({ 'a-b': 0xa, '"q"': 0x5 });
  });
});

describe('writeScalars and writeAddress', () => {
  it('write only the fields given and refuse values their fields cannot hold, naming them', () => {
    const words = encode({ kind: 7, base: 0x1000 });
    writeScalars(words, LAYOUT.scalars, { valid: true }, 'TEST');
    expect(read(words)).toMatchObject({ valid: true, kind: 7, base: 0x1000 });
    expect(() => writeScalars(words, LAYOUT.scalars, { kind: 8 }, 'TEST')).toThrow(IommufdError);
    expect(() => writeScalars(words, LAYOUT.scalars, { kind: 8 }, 'TEST')).toThrow(/TEST\.kind/);
    expect(() => writeAddress(words, [132, 175], 0x1001, 'TEST', 'base')).toThrow(/TEST\.base/);
    writeAddress(words, [132, 175], undefined, 'TEST', 'base');
    expect(read(words).base).toBe(0x1000);
  });
});
