import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Baser,
  decodeBaser,
  decodeCbaser,
  decodePendbaser,
  decodePropbaser,
  decodeRedistTyper,
  decodeTyper,
  encodeBaser,
  encodeCbaser,
  encodePendbaser,
  encodePropbaser,
  encodeRedistTyper,
  encodeTyper,
} from './registers.js';

const field = (v: bigint, hi: number, lo: number) => (v >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n);

describe('GITS_TYPER', () => {
  it('places ITT_entry_size, ID_bits, Devbits, CIDbits and CIL, with PTA = 0', () => {
    const v = encodeTyper({ itteSize: 8, eventIdBits: 16, deviceIdBits: 20, collectionIdBits: 12 });
    expect(field(v, 0, 0)).toBe(1n); // Physical
    expect(field(v, 7, 4)).toBe(7n); // ITT_entry_size = bytes − 1
    expect(field(v, 12, 8)).toBe(15n); // ID_bits
    expect(field(v, 17, 13)).toBe(19n); // Devbits
    expect(field(v, 19, 19)).toBe(0n); // PTA: RDbase is a processor number
    expect(field(v, 35, 32)).toBe(11n); // CIDbits
    expect(field(v, 36, 36)).toBe(1n); // CIL
    expect(v).toBe(0x1b_0002_6f71n);
  });

  it('round-trips every field', () => {
    fc.assert(
      fc.property(
        fc.record({
          itteSize: fc.integer({ min: 1, max: 16 }),
          eventIdBits: fc.integer({ min: 1, max: 32 }),
          deviceIdBits: fc.integer({ min: 1, max: 32 }),
          collectionIdBits: fc.integer({ min: 1, max: 16 }),
        }),
        (t) => {
          expect(decodeTyper(encodeTyper(t))).toEqual({ ...t, physical: true, pta: false });
        },
      ),
    );
  });

  it('reads PTA from bit 19 and 16 collection ID bits when CIL is 0', () => {
    const v = encodeTyper({ itteSize: 8, eventIdBits: 16, deviceIdBits: 16, collectionIdBits: 4 });
    expect(decodeTyper(v | (1n << 19n)).pta).toBe(true);
    expect(decodeTyper(v & ~(1n << 36n)).collectionIdBits).toBe(16);
  });
});

const PAGE_SIZES = [0x1000, 0x4000, 0x1_0000] as const;

const baserArb: fc.Arbitrary<Baser> = fc.constantFrom(...PAGE_SIZES).chain((pageSize) =>
  fc.record({
    valid: fc.boolean(),
    indirect: fc.boolean(),
    type: fc.integer({ min: 0, max: 7 }),
    entrySize: fc.integer({ min: 1, max: 32 }),
    pageSize: fc.constant(pageSize),
    // 64 KiB pages reach 52 bits (PA[51:48] in bits [15:12]); 4 and 16 KiB pages 48 bits.
    address: fc
      .bigInt({ min: 0n, max: (1n << BigInt(pageSize === 0x1_0000 ? 52 : 48)) / BigInt(pageSize) - 1n })
      .map((n) => n * BigInt(pageSize)),
    pages: fc.integer({ min: 1, max: 256 }),
  }),
);

describe('GITS_BASER', () => {
  it('round-trips with 4, 16 and 64 KiB pages', () => {
    fc.assert(
      fc.property(baserArb, (b) => {
        expect(decodeBaser(encodeBaser(b))).toEqual(b);
      }),
      { numRuns: 1000 },
    );
  });

  it('with 64 KiB pages, keeps PA[51:48] in register bits [15:12]', () => {
    const v = encodeBaser({
      valid: true,
      indirect: true,
      type: 1,
      entrySize: 8,
      pageSize: 0x1_0000,
      address: 0x000a_bcde_f012_0000n,
      pages: 3,
    });
    expect(field(v, 15, 12)).toBe(0xan);
    expect(field(v, 47, 16)).toBe(0xbcde_f012n);
    expect(field(v, 52, 48)).toBe(7n); // Entry_Size, not address bits
    expect(field(v, 58, 56)).toBe(1n); // Type
    expect(field(v, 62, 62)).toBe(1n); // Indirect
    expect(field(v, 63, 63)).toBe(1n); // Valid
    expect(field(v, 9, 8)).toBe(2n); // Page_Size 64 KiB
    expect(field(v, 7, 0)).toBe(2n); // Size = pages − 1
    expect(decodeBaser(v).address).toBe(0x000a_bcde_f012_0000n);
  });

  it('encodes the page size in bits [9:8] and, below 64 KiB, the address in bits [47:12]', () => {
    const codes = PAGE_SIZES.map((pageSize) =>
      field(encodeBaser({ valid: false, indirect: false, pageSize, address: 0n, pages: 1 }), 9, 8),
    );
    expect(codes).toEqual([0n, 1n, 2n]);
    const v = encodeBaser({
      valid: true,
      indirect: false,
      pageSize: 0x1000,
      address: 0xffff_ffff_f000n,
      pages: 1,
    });
    expect(field(v, 47, 12)).toBe(0xf_ffff_ffffn);
    expect(field(v, 15, 12)).toBe(0xfn); // address bits, not PA[51:48]
    expect(decodeBaser(v).address).toBe(0xffff_ffff_f000n);
  });
});

describe('GITS_CBASER', () => {
  it('round-trips (address [51:12], Size [7:0], Valid [63])', () => {
    fc.assert(
      fc.property(
        fc.record({
          valid: fc.boolean(),
          address: fc.bigInt({ min: 0n, max: (1n << 40n) - 1n }).map((n) => n << 12n),
          pages: fc.integer({ min: 1, max: 256 }),
        }),
        (c) => {
          expect(decodeCbaser(encodeCbaser(c))).toEqual(c);
        },
      ),
    );
    const v = encodeCbaser({ valid: true, address: 0x000f_0000_4000_0000n, pages: 16 });
    expect(field(v, 63, 63)).toBe(1n);
    expect(field(v, 51, 12)).toBe(0x000f_0000_4000_0000n >> 12n);
    expect(field(v, 7, 0)).toBe(15n);
  });
});

describe('GICR_PROPBASER and GICR_PENDBASER', () => {
  it('PROPBASER carries IDbits − 1 in [4:0] and the table address', () => {
    const v = encodePropbaser(0x4001_0000n, 16);
    expect(field(v, 4, 0)).toBe(15n);
    expect(decodePropbaser(v)).toEqual({ address: 0x4001_0000n, idBits: 16 });
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 40n) - 1n }).map((n) => n << 12n),
        fc.integer({ min: 14, max: 32 }),
        (address, idBits) => {
          expect(decodePropbaser(encodePropbaser(address, idBits))).toEqual({ address, idBits });
        },
      ),
    );
  });

  it('PENDBASER holds a 64 KiB aligned address and PTZ in bit 62', () => {
    expect(decodePendbaser(encodePendbaser(0x000f_1234_0005_0000n))).toEqual({
      address: 0x000f_1234_0005_0000n,
      ptz: false,
    });
    // Bits [15:0] are not address bits.
    expect(decodePendbaser(0x4005_f000n | (1n << 62n))).toEqual({ address: 0x4005_0000n, ptz: true });
  });
});

describe('GICR_TYPER', () => {
  it('holds Processor_Number in [23:8], Last in bit 4 and PLPIS in bit 0', () => {
    const v = encodeRedistTyper(5, true);
    expect(field(v, 23, 8)).toBe(5n);
    expect(field(v, 4, 4)).toBe(1n);
    expect(field(v, 0, 0)).toBe(1n);
    expect(field(v, 39, 32)).toBe(5n); // Aff0
    expect(decodeRedistTyper(v)).toEqual({ processorNumber: 5, last: true, plpis: true });
    expect(decodeRedistTyper(encodeRedistTyper(0xffff, false))).toEqual({
      processorNumber: 0xffff,
      last: false,
      plpis: true,
    });
    expect(field(encodeRedistTyper(3, false), 4, 4)).toBe(0n);
  });
});
