import { describe, expect, it } from 'vitest';
import { VectorSet } from './vector-set.js';

describe('VectorSet', () => {
  it('sets, tests and clears single vectors across all eight words', () => {
    const set = new VectorSet();
    for (const v of [0, 31, 32, 0x41, 0xff]) set.add(v);
    expect([0, 31, 32, 0x41, 0xff].map((v) => set.has(v))).toEqual([true, true, true, true, true]);
    expect(set.has(1)).toBe(false);
    expect(set.has(0xfe)).toBe(false);
    set.delete(31);
    expect(set.has(31)).toBe(false);
    expect(set.has(0)).toBe(true);
  });

  it('reads as eight 32-bit registers, bit v of word v / 32', () => {
    const set = new VectorSet();
    set.add(0x20);
    set.add(0x3f);
    set.add(0xff);
    expect(set.word(1)).toBe(0x8000_0001);
    expect(set.word(7)).toBe(0x8000_0000);
    expect(set.word(0)).toBe(0);
  });

  it('finds the highest vector set, or -1', () => {
    const set = new VectorSet();
    expect(set.highest()).toBe(-1);
    set.add(0);
    expect(set.highest()).toBe(0);
    set.add(0x41);
    set.add(0x30);
    expect(set.highest()).toBe(0x41);
    set.add(0xff);
    expect(set.highest()).toBe(0xff);
    set.clear();
    expect(set.highest()).toBe(-1);
  });
});
