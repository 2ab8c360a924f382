import { MemoryBus } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { decodeCte, decodeDte, decodeIte, encodeCte, encodeDte, encodeIte, ItsTable } from './its-tables.js';
import type { Baser } from './registers.js';

const flat = (over: Partial<Baser> = {}): Baser => ({
  valid: true,
  indirect: false,
  type: 1,
  entrySize: 8,
  pageSize: 0x1000,
  address: 0x1_0000n,
  pages: 2,
  ...over,
});

describe('ITS table entries (this model’s IMPLEMENTATION DEFINED layout, GICv3 §5.2)', () => {
  it('DTE: V [63], ITT address [51:8], Size [4:0]', () => {
    expect(encodeDte({ ittAddress: 0xf_ffff_ffff_ff00n, size: 15 })).toBe(0x800f_ffff_ffff_ff0fn);
    // Bits outside the fields are dropped.
    expect(encodeDte({ ittAddress: 0xfff0_0000_0000_00ffn, size: 0x3f })).toBe(0x8000_0000_0000_001fn);
    expect(decodeDte(0x800f_ffff_ffff_ff0fn)).toEqual({ ittAddress: 0xf_ffff_ffff_ff00n, size: 15 });
    expect(decodeDte(0xffff_ffff_ffff_ffffn)).toEqual({ ittAddress: 0xf_ffff_ffff_ff00n, size: 31 });
    expect(decodeDte(0x7fff_ffff_ffff_ffffn)).toBeUndefined();
  });

  it('ITE: V [63], ICID [47:32], pINTID [31:0]', () => {
    expect(encodeIte({ intid: 0xffff_ffff, icid: 0x1_ffff })).toBe(0x8000_ffff_ffff_ffffn);
    expect(encodeIte({ intid: 8192, icid: 3 })).toBe(0x8000_0003_0000_2000n);
    expect(decodeIte(0xffff_ffff_ffff_ffffn)).toEqual({ intid: 0xffff_ffff, icid: 0xffff });
    expect(decodeIte(0x8000_0003_0000_2000n)).toEqual({ intid: 8192, icid: 3 });
    expect(decodeIte(0x7fff_ffff_ffff_ffffn)).toBeUndefined();
  });

  it('CTE: V [63], RDbase [15:0]', () => {
    expect(encodeCte(0x1_0005)).toBe(0x8000_0000_0000_0005n);
    expect(decodeCte(0xffff_ffff_ffff_ffffn)).toBe(0xffff);
    expect(decodeCte(0x8000_0000_0000_0000n)).toBe(0);
    expect(decodeCte(0x7fff_ffff_ffff_ffffn)).toBeUndefined();
  });
});

describe('ItsTable (GITS_BASER<n>, §12.19.1)', () => {
  const bus = new MemoryBus();
  bus.addRam('ram', 0, 0x10_0000);
  const who = bus.counter('test');

  it('a flat table holds (pages × page size) / entry size IDs at base + ID × entry size', () => {
    const t = new ItsTable(flat({ entrySize: 24, pages: 3 }));
    expect(t.capacity).toBe(512); // floor(12288 / 24)
    expect(t.locate(0, bus, who)).toBe(0x1_0000);
    expect(t.locate(511, bus, who)).toBe(0x1_0000 + 511 * 24);
    expect(t.locate(512, bus, who)).toBe('unbacked');
    expect(t.locate(-1, bus, who)).toBe('unbacked');
  });

  it('an invalid table backs nothing', () => {
    expect(new ItsTable(flat({ valid: false })).locate(0, bus, who)).toBe('unbacked');
  });

  it('a two-level table: each 8-byte level-1 entry names a page of floor(page size / entry size) IDs', () => {
    const baser = flat({ indirect: true, entrySize: 24, pageSize: 0x1000, pages: 1, address: 0x2_0000n });
    const t = new ItsTable(baser);
    expect(t.capacity).toBe(512 * 170); // 512 level-1 entries × floor(4096 / 24)
    // Level-1 entry 1 (IDs 170..339) is valid and names the page at 0x3_0000; entry 0 is not.
    bus.write(0x2_0008, 8, 0x8000_0000_0003_0000n, who);
    expect(t.locate(169, bus, who)).toBe('unbacked');
    expect(t.locate(170, bus, who)).toBe(0x3_0000);
    expect(t.locate(171, bus, who)).toBe(0x3_0000 + 24);
    expect(t.locate(339, bus, who)).toBe(0x3_0000 + 169 * 24);
    expect(t.locate(340, bus, who)).toBe('unbacked');
    expect(t.locate(512 * 170, bus, who)).toBe('unbacked');
  });

  it('a level-1 entry keeps only the page address bits [51:12], aligned to the page size', () => {
    const t = new ItsTable(flat({ indirect: true, pageSize: 0x4000, address: 0x2_0000n }));
    bus.write(0x2_0000, 8, 0xfff0_0000_0004_7fffn, who); // V, junk above bit 51 and below the page
    expect(t.locate(3, bus, who)).toBe(0x4_4000 + 3 * 8);
  });

  it('a level-1 entry the bus cannot read is an abort', () => {
    const t = new ItsTable(flat({ indirect: true, address: 0x20_0000n }));
    expect(t.locate(0, bus, who)).toBe('abort');
  });
});
