import { describe, expect, it } from 'vitest';
import { type EntryLayout, readEntry, writeAddress, writeScalars } from './entry-layout.js';

const LAYOUT: EntryLayout = {
  scalars: { valid: [0, 1], kind: [1, 3], straddle: [28, 8], word: [64, 32] },
  addresses: { base: [132, 175] },
};

function encode(fields: Record<string, unknown>): Uint32Array {
  const words = new Uint32Array(6);
  writeScalars(words, LAYOUT.scalars, fields, 'TEST');
  writeAddress(words, [132, 175], fields.base, 'TEST', 'base');
  return words;
}

describe('readEntry', () => {
  it('decodes width-1 fields as booleans, others as numbers, fields across words, and addresses', () => {
    const fields = { valid: true, kind: 5, straddle: 0xa5, word: 0xfedc_ba98, base: 0xab_cdef_f000 };
    expect(readEntry(encode(fields), LAYOUT)).toEqual(fields);
    expect(readEntry(new Uint32Array(6), LAYOUT)).toEqual({
      valid: false,
      kind: 0,
      straddle: 0,
      word: 0,
      base: 0,
    });
  });

  it('gives every decoded structure of a layout the same keys in the same order', () => {
    const a = readEntry(encode({ kind: 1 }), LAYOUT);
    const b = readEntry(encode({ valid: true, word: 1 }), LAYOUT);
    expect(Object.keys(a)).toEqual(['valid', 'kind', 'straddle', 'word', 'base']);
    expect(Object.keys(b)).toEqual(Object.keys(a));
    expect(b).not.toBe(a);
  });
});
