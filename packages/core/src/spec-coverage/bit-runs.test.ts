import { describe, expect, it } from 'vitest';
import { IommufdError } from '../errors/iommufd-error.js';
import {
  allOnes,
  bitPositionProblems,
  bitRuns,
  fieldBits,
  formatBits,
  probedFieldBits,
  refusedBits,
  uncoveredBits,
} from './bit-runs.js';
import type { SpecOnlyField } from './coverage.js';

const specOnly = (spec: string, msb: number, lsb: number): SpecOnlyField => ({
  spec,
  msb,
  lsb,
  status: 'not modelled',
  note: 'n',
});

describe('bitRuns', () => {
  it('finds each run of set bits, lowest first, across word boundaries', () => {
    // 0xB0: bits 4, 5 and 7; 0x8000_0001: bits 32 and 63.
    expect(bitRuns([0xb0, 0x8000_0001])).toEqual([
      { msb: 5, lsb: 4 },
      { msb: 7, lsb: 7 },
      { msb: 32, lsb: 32 },
      { msb: 63, lsb: 63 },
    ]);
    // Bit 31 of word 0 and bit 0 of word 1 are one run.
    expect(bitRuns([0x8000_0000, 0x1])).toEqual([{ msb: 32, lsb: 31 }]);
    expect(bitRuns([0, 0])).toEqual([]);
    expect(bitRuns(allOnes(3))).toEqual([{ msb: 95, lsb: 0 }]);
  });

  it('formats runs as a specification writes them', () => {
    expect(
      formatBits([
        { msb: 7, lsb: 7 },
        { msb: 63, lsb: 12 },
      ]),
    ).toBe('[7], [63:12]');
    expect(formatBits([])).toBe('');
  });
});

describe('fieldBits', () => {
  interface Toy {
    readonly flag: boolean;
    readonly count: number;
    readonly addr: number;
  }
  // A toy codec: type code 1 in bits 3:0 always, flag at bit 4, count at bits 9:6, addr at bits 63:44.
  const encode = (f: Partial<Toy>): Uint32Array => {
    const w = new Uint32Array([1, 0]);
    if (f.flag) w[0]! |= 1 << 4;
    if (f.count !== undefined) w[0]! |= f.count << 6;
    if (f.addr !== undefined) w[1] = Math.floor(f.addr / 2 ** 32);
    return w;
  };

  it('places each field where its largest value alone lands, without the bits every encoding sets', () => {
    const largest: Toy = { flag: true, count: 15, addr: 2 ** 64 - 2 ** 44 };
    expect(fieldBits(largest, encode)).toEqual({
      flag: [{ msb: 4, lsb: 4 }],
      count: [{ msb: 9, lsb: 6 }],
      addr: [{ msb: 63, lsb: 44 }],
    });
  });

  it('gives a field the encoder drops no bits', () => {
    expect(fieldBits<Pick<Toy, 'flag'>>({ flag: false }, encode)).toEqual({ flag: [] });
  });
});

describe('uncoveredBits', () => {
  it('is every bit neither a decoded nor a spec-only field covers', () => {
    expect(uncoveredBits(2, { a: [{ msb: 3, lsb: 0 }] }, [specOnly('X', 15, 8)])).toEqual([
      { msb: 7, lsb: 4 },
      { msb: 63, lsb: 16 },
    ]);
    expect(uncoveredBits(1, { a: [{ msb: 31, lsb: 0 }] }, [])).toEqual([]);
  });
});

describe('bitPositionProblems', () => {
  it('finds nothing wrong with disjoint fields inside the structure', () => {
    expect(bitPositionProblems(2, { a: [{ msb: 3, lsb: 0 }] }, [specOnly('X', 63, 4)])).toEqual([]);
  });

  it('names a bit two fields claim, and a bit outside the structure', () => {
    expect(
      bitPositionProblems(1, { a: [{ msb: 4, lsb: 3 }], b: [{ msb: 32, lsb: 31 }] }, [specOnly('X', 3, 3)]),
    ).toEqual(['b: bit 32 lies outside the 32-bit structure', 'X: bit 3 also belongs to a']);
  });

  it('names a spec-only field whose msb is below its lsb', () => {
    expect(bitPositionProblems(1, {}, [specOnly('X', 2, 5)])).toEqual(['X: msb 2 is below lsb 5']);
  });
});

describe('probedFieldBits', () => {
  interface Desc {
    readonly on: boolean;
    readonly n: number;
    readonly addr: number;
    readonly data: readonly number[];
  }
  // A toy 4-word descriptor: type 5 in bits 3:0 always, on at bit 4, n at bits 7:5 and 12:11 (split),
  // addr a 4-byte aligned byte address in bits 63:34 (its bits 31:2), data in word 3.
  const encode = (f: Partial<Desc>): Uint32Array => {
    const w = new Uint32Array([5, 0, 0, 0]);
    if (f.on) w[0]! |= 1 << 4;
    if (f.n !== undefined) {
      if (!Number.isInteger(f.n) || f.n < 0 || f.n >= 32) throw new IommufdError('EINVAL', 'n');
      w[0]! |= ((f.n & 7) << 5) | ((f.n >>> 3) << 11);
    }
    if (f.addr !== undefined) {
      if (f.addr % 4 !== 0 || f.addr >= 2 ** 32) throw new IommufdError('EINVAL', 'addr');
      w[1] = f.addr & 0xffff_fffc;
    }
    if (f.data !== undefined) w[3] = f.data[0]!;
    return w;
  };

  it('finds every bit of each field from the values the encoder takes, without the type bits', () => {
    expect(probedFieldBits({ on: false, n: 0, addr: 0, data: [0] }, encode)).toEqual({
      on: [{ msb: 4, lsb: 4 }],
      n: [
        { msb: 7, lsb: 5 },
        { msb: 12, lsb: 11 },
      ],
      addr: [{ msb: 63, lsb: 34 }],
      data: [{ msb: 127, lsb: 96 }],
    });
  });

  it('lets an error other than EINVAL through', () => {
    const broken = (): Uint32Array => {
      throw new IommufdError('ENOMEM', 'no');
    };
    expect(() =>
      probedFieldBits({ n: 0 }, (f) => (Object.keys(f).length === 0 ? new Uint32Array(1) : broken())),
    ).toThrow('ENOMEM');
  });
});

describe('refusedBits', () => {
  it('names the bits a check refuses when each is toggled alone in a valid structure', () => {
    // A toy check: bits 4 and 6 of word 0 and any bit of word 1 are reserved; bit 0 (set in the base) must stay set.
    const check = (w: Uint32Array) => (w[0]! & 0x51) !== 1 || w[1] !== 0;
    const base = Uint32Array.of(1, 0);
    expect(
      refusedBits(
        [
          { msb: 7, lsb: 0 },
          { msb: 33, lsb: 32 },
        ],
        base,
        check,
      ),
    ).toEqual([
      { msb: 0, lsb: 0 },
      { msb: 4, lsb: 4 },
      { msb: 6, lsb: 6 },
      { msb: 33, lsb: 32 },
    ]);
    expect(refusedBits([], base, check)).toEqual([]);
  });
});
