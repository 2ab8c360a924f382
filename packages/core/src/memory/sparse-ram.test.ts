import { describe, expect, it } from 'vitest';
import { SparseRam } from './sparse-ram.js';

const PAGE = 4096;

describe('SparseRam', () => {
  it.each([0, -PAGE, 1, 4095, 4097, PAGE + 0.5, Number.NaN, 2 ** 53 + PAGE * 2])(
    'rejects size %s',
    (size) => {
      expect(() => new SparseRam(size)).toThrow(RangeError);
    },
  );

  it.each([PAGE, 16 * PAGE, 2 ** 40])('accepts size %s without allocating', (size) => {
    const ram = new SparseRam(size);
    expect(ram.size).toBe(size);
    expect(ram.allocatedBytes).toBe(0);
  });

  it('reads untouched memory as zero without allocating', () => {
    const ram = new SparseRam(2 ** 40);
    expect(ram.read32(0)).toBe(0);
    expect(ram.read32(2 ** 40 - 4)).toBe(0);
    expect(ram.read8(12345)).toBe(0);
    const out = new Uint8Array(3 * PAGE).fill(0xaa);
    ram.readBytes(PAGE - 7, out);
    expect(out.every((b) => b === 0)).toBe(true);
    expect(ram.allocatedBytes).toBe(0);
    expect(ram.allocatedPages).toBe(0);
  });

  it('allocates exactly one page on the first write and reuses it', () => {
    const ram = new SparseRam(16 * PAGE);
    ram.write32(PAGE + 8, 0xdead_beef);
    expect(ram.allocatedBytes).toBe(PAGE);
    ram.write8(PAGE + 4095, 0x7f);
    ram.write32(PAGE, 1);
    expect(ram.allocatedPages).toBe(1);
    expect(ram.read32(PAGE + 8)).toBe(0xdead_beef);
    expect(ram.read8(PAGE + 4095)).toBe(0x7f);
    expect(ram.read32(PAGE)).toBe(1);
    // The neighbouring pages are still unbacked and zero.
    expect(ram.read32(0)).toBe(0);
    expect(ram.read32(2 * PAGE)).toBe(0);
  });

  it('stores 32-bit words little-endian and unsigned', () => {
    const ram = new SparseRam(PAGE);
    ram.write32(0, -1);
    expect(ram.read32(0)).toBe(0xffff_ffff);
    ram.write32(4, 0x1234_5678);
    expect([4, 5, 6, 7].map((o) => ram.read8(o))).toEqual([0x78, 0x56, 0x34, 0x12]);
  });

  it('addresses pages correctly above 2^32', () => {
    const ram = new SparseRam(2 ** 40);
    const high = 2 ** 33 + 2 * PAGE + 16;
    ram.write32(high, 0xcafe_f00d);
    expect(ram.read32(high)).toBe(0xcafe_f00d);
    expect(ram.read32(high - 2 ** 33)).toBe(0);
    expect(ram.allocatedPages).toBe(1);
  });

  it('writeBytes / readBytes span page boundaries', () => {
    const ram = new SparseRam(8 * PAGE);
    const data = Uint8Array.from({ length: 2 * PAGE + 10 }, (_, i) => (i * 7 + 3) & 0xff);
    const at = PAGE - 5;
    ram.writeBytes(at, data);
    // [PAGE-5, 3*PAGE+5) touches pages 0, 1, 2 and 3.
    expect(ram.allocatedPages).toBe(4);
    const back = new Uint8Array(data.length);
    ram.readBytes(at, back);
    expect(back).toEqual(data);
    expect(ram.read8(at - 1)).toBe(0);
    expect(ram.read8(at + data.length)).toBe(0);
    expect(ram.read8(PAGE)).toBe(data[5]);
  });

  it('readBytes honours outOffset and length, mixing backed and unbacked pages', () => {
    const ram = new SparseRam(4 * PAGE);
    ram.writeBytes(2 * PAGE - 2, Uint8Array.of(1, 2));
    const out = new Uint8Array(8).fill(0xee);
    ram.readBytes(2 * PAGE - 2, out, 2, 4);
    expect([...out]).toEqual([0xee, 0xee, 1, 2, 0, 0, 0xee, 0xee]);
    expect(ram.allocatedPages).toBe(1);
  });

  it('discard zeroes the range and frees its pages only', () => {
    const ram = new SparseRam(8 * PAGE);
    for (let p = 0; p < 4; p++) ram.write32(p * PAGE, p + 1);
    expect(ram.allocatedBytes).toBe(4 * PAGE);
    ram.discard(PAGE, 2 * PAGE);
    expect(ram.allocatedBytes).toBe(2 * PAGE);
    expect([0, 1, 2, 3].map((p) => ram.read32(p * PAGE))).toEqual([1, 0, 0, 4]);
    ram.write8(PAGE + 1, 9);
    expect(ram.read32(PAGE)).toBe(9 << 8);
  });

  it('clear drops every page and returns the bytes released', () => {
    const ram = new SparseRam(8 * PAGE);
    ram.write8(0, 1);
    ram.write8(5 * PAGE, 1);
    expect(ram.clear()).toBe(2 * PAGE);
    expect(ram.allocatedBytes).toBe(0);
    expect(ram.read8(0)).toBe(0);
    expect(ram.clear()).toBe(0);
  });

  it('readWords / writeWords span pages, one word per 4 bytes, little-endian', () => {
    const ram = new SparseRam(8 * PAGE);
    const words = Uint32Array.of(0x11223344, 0xffffffff, 0x80000000, 7);
    ram.writeWords(PAGE - 8, words, 0, 4);
    expect(ram.allocatedBytes).toBe(2 * PAGE);
    expect([ram.read8(PAGE - 8), ram.read8(PAGE - 5), ram.read32(PAGE), ram.read32(PAGE + 4)]).toEqual([
      0x44, 0x11, 0x80000000, 7,
    ]);
    const out = new Uint32Array(6).fill(0xdead);
    ram.readWords(PAGE - 8, out, 1, 4);
    expect([...out]).toEqual([0xdead, 0x11223344, 0xffffffff, 0x80000000, 7, 0xdead]);
  });

  it('writeWords takes words from an offset and stores any number as its low 32 bits', () => {
    const ram = new SparseRam(PAGE);
    ram.writeWords(8, [9, -1, 2 ** 32 + 5], 1, 2);
    expect([ram.read32(0), ram.read32(8), ram.read32(12)]).toEqual([0, 0xffffffff, 5]);
  });

  it('readWords of never-written pages gives zeros without allocating, also between written ones', () => {
    const ram = new SparseRam(8 * PAGE);
    ram.write32(0, 1);
    ram.write32(2 * PAGE, 3);
    const out = new Uint32Array(2 * 1024 + 1).fill(9);
    ram.readWords(0, out, 0, out.length);
    expect([out[0], out[1], out[1024], out[2047], out[2048]]).toEqual([1, 0, 0, 0, 3]);
    expect(ram.allocatedBytes).toBe(2 * PAGE);
  });

  it('forgets a discarded page it had just used (reads zero, writes allocate afresh)', () => {
    const ram = new SparseRam(4 * PAGE);
    ram.write32(PAGE, 5);
    expect(ram.read32(PAGE)).toBe(5);
    ram.discard(PAGE, PAGE);
    expect(ram.read32(PAGE)).toBe(0);
    ram.write32(PAGE + 4, 6);
    expect([ram.read32(PAGE), ram.read32(PAGE + 4), ram.allocatedBytes]).toEqual([0, 6, PAGE]);
    ram.clear();
    expect(ram.read32(PAGE + 4)).toBe(0);
  });

  it('writeWords stores exactly `count` words: the words after them keep their values', () => {
    const ram = new SparseRam(2 * PAGE);
    ram.writeWords(0, [1, 2, 3, 4, 5, 6], 0, 6);
    ram.writeWords(4, [7, 8], 0, 2);
    const out = new Uint32Array(6);
    ram.readWords(0, out, 0, 6);
    expect(Array.from(out)).toEqual([1, 7, 8, 4, 5, 6]);
    // Across a page boundary too: the second page gets the rest, and no more.
    ram.writeWords(PAGE, [1, 2, 3], 0, 3);
    ram.writeWords(PAGE - 4, [7, 8], 0, 2);
    const across = new Uint32Array(4);
    ram.readWords(PAGE - 4, across, 0, 4);
    expect(Array.from(across)).toEqual([7, 8, 2, 3]);
  });

  it('copies long runs (a table page, a queue) the same way as short ones, from typed and plain arrays', () => {
    const ram = new SparseRam(4 * PAGE);
    const run = Uint32Array.from({ length: 1500 }, (_, i) => (i * 0x0101_0101 + 7) >>> 0);
    // From word 100 of page 0 across into page 1, taken from word 3 of the source.
    ram.writeWords(400, run, 3, 1200);
    ram.writeWords(3 * PAGE, Array.from(run.subarray(0, 40)), 0, 40);
    const out = new Uint32Array(1300).fill(0xdead);
    ram.readWords(400, out, 50, 1200);
    expect(out.subarray(50, 1250)).toEqual(run.subarray(3, 1203));
    expect([out[49], out[1250]]).toEqual([0xdead, 0xdead]);
    expect(ram.read32(396)).toBe(0);
    expect(ram.read32(400 + 4 * 1200)).toBe(0);
    const plain = new Uint32Array(40);
    ram.readWords(3 * PAGE, plain, 0, 40);
    expect(plain).toEqual(run.subarray(0, 40));
  });

  it('readBytes without a length fills `out` from outOffset to its end', () => {
    const ram = new SparseRam(2 * PAGE);
    ram.writeBytes(PAGE - 2, Uint8Array.of(1, 2, 3, 4, 5, 6));
    const out = new Uint8Array(6).fill(9);
    ram.readBytes(PAGE - 2, out, 2);
    expect(Array.from(out)).toEqual([9, 9, 1, 2, 3, 4]);
  });

  it('short reads within a page (descriptors, queue entries) read what was written, zeros where nothing was', () => {
    const ram = new SparseRam(2 * PAGE);
    ram.writeWords(PAGE - 12, Uint32Array.of(1, 2, 3), 0, 3);
    for (const count of [1, 2, 3]) {
      const out = new Uint32Array(count + 2).fill(0xdead);
      ram.readWords(PAGE - 12, out, 1, count);
      expect(Array.from(out)).toEqual([0xdead, ...[1, 2, 3].slice(0, count), 0xdead]);
    }
    const unwritten = Uint32Array.of(5, 5, 5);
    ram.readWords(PAGE + 8, unwritten, 1, 2);
    expect(Array.from(unwritten)).toEqual([5, 0, 0]);
  });

  it('pages that share a recent-page slot, discarded or cleared, always read as RAM holds them', () => {
    // Page indices 0, 260 and 520 fold to the same slot of the recent-page cache; 1 to another.
    const pages = [0, 260, 520, 1];
    const ram = new SparseRam(8192 * PAGE);
    for (const [k, page] of pages.entries()) ram.write32(page * PAGE + 8, k + 1);
    for (let round = 0; round < 2; round++)
      for (const [k, page] of pages.entries()) expect(ram.read32(page * PAGE + 8)).toBe(k + 1);
    // Reading page 260 puts it in the slot; dropping it must not leave its old words readable.
    ram.read32(260 * PAGE);
    ram.discard(260 * PAGE, PAGE);
    expect(ram.read32(260 * PAGE + 8)).toBe(0);
    expect(ram.read32(520 * PAGE + 8)).toBe(3);
    // Dropping a page whose slot holds another keeps that other one.
    ram.read32(0);
    ram.discard(520 * PAGE, PAGE);
    expect([ram.read32(8), ram.read32(520 * PAGE + 8)]).toEqual([1, 0]);
    ram.clear();
    expect(pages.map((page) => ram.read32(page * PAGE + 8))).toEqual([0, 0, 0, 0]);
    ram.write32(PAGE + 8, 9);
    expect(ram.read32(PAGE + 8)).toBe(9);
  });
});
