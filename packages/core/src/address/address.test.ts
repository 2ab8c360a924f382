import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errnoOf, IommufdError } from '../errors/iommufd-error.js';
import {
  addOrThrow,
  alignDown,
  alignUp,
  checkedAdd,
  checkU64,
  fromPfn,
  gpa,
  hpa,
  iova,
  ipa,
  isAligned,
  PAGE_SIZE,
  pageOffset,
  toHex,
  toPfn,
  U64_MAX,
} from './address.js';

const EDGES = [0n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 52n, 2n ** 53n, 2n ** 64n - 1n];

const constructors = [
  ['iova', iova],
  ['gpa', gpa],
  ['hpa', hpa],
  ['ipa', ipa],
] as const;

describe('checkU64 and the branded constructors', () => {
  describe.each(constructors)('%s', (_name, make) => {
    it.each(EDGES)('accepts %s as a bigint', (value) => {
      expect(make(value)).toBe(value);
    });

    it.each([0, 2 ** 32 - 1, 2 ** 32, 2 ** 52, Number.MAX_SAFE_INTEGER])(
      'accepts the safe number %s',
      (n) => {
        expect(make(n)).toBe(BigInt(n));
      },
    );

    it.each([
      [-1n, 'EINVAL'],
      [-1, 'EINVAL'],
      [-(2n ** 64n), 'EINVAL'],
      [2n ** 64n, 'EOVERFLOW'],
      [2n ** 70n, 'EOVERFLOW'],
      // Doubles above 2^53 have already lost precision, so they are refused rather than rounded.
      [2 ** 53 + 2, 'EINVAL'],
      [2 ** 64, 'EINVAL'],
      [1.5, 'EINVAL'],
      [Number.NaN, 'EINVAL'],
      [Number.POSITIVE_INFINITY, 'EINVAL'],
    ] as const)('rejects %s with %s', (value, code) => {
      expect(errnoOf(() => make(value))).toBe(code);
    });
  });

  it('names the address space in the error message', () => {
    expect(() => gpa(-5n)).toThrow(/GPA -5 is negative/);
    expect(() => checkU64(2n ** 64n, 'length')).toThrow(/length 0x10000000000000000 does not fit in 64 bits/);
  });

  it('carries the IommufdError shape', () => {
    try {
      hpa(-1n);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(IommufdError);
      expect((error as IommufdError).name).toBe('IommufdError');
      expect((error as IommufdError).message).toMatch(/^EINVAL: /);
      expect((error as IommufdError).context).toEqual({ what: 'HPA' });
    }
  });
});

describe('checkedAdd / addOrThrow', () => {
  it.each([
    [0n, 0n, 0n],
    [2n ** 32n - 1n, 1n, 2n ** 32n],
    [2n ** 53n, 1n, 2n ** 53n + 1n],
    [U64_MAX - 1n, 1n, U64_MAX],
    [0n, U64_MAX, U64_MAX],
    [U64_MAX, 0n, U64_MAX],
  ])('%s + %s = %s', (a, n, sum) => {
    expect(checkedAdd(iova(a), n)).toBe(sum);
    expect(addOrThrow(iova(a), n)).toBe(sum);
  });

  it.each([
    [U64_MAX, 1n],
    [2n ** 63n, 2n ** 63n],
    [1n, U64_MAX],
    [0n, -1n],
  ])('%s + %s is out of range', (a, n) => {
    expect(checkedAdd(iova(a), n)).toBeUndefined();
    expect(errnoOf(() => addOrThrow(iova(a), n))).toBe('EOVERFLOW');
  });

  it('matches exact bigint addition wherever the sum fits', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, U64_MAX), fc.bigInt(0n, U64_MAX), (a, n) => {
        const sum = checkedAdd(hpa(a), n);
        expect(sum).toBe(a + n <= U64_MAX ? a + n : undefined);
      }),
    );
  });
});

describe('alignment', () => {
  it.each([
    [0x1234n, 0x1000n, 0x1000n, 0x2000n],
    [0x1000n, 0x1000n, 0x1000n, 0x1000n],
    [0n, 0x1000n, 0n, 0n],
    [0x1fffn, 1n, 0x1fffn, 0x1fffn],
    [2n ** 53n + 1n, 2n, 2n ** 53n, 2n ** 53n + 2n],
    [U64_MAX - 0xfffn, 0x1000n, U64_MAX - 0xfffn, U64_MAX - 0xfffn],
    [U64_MAX, 1n, U64_MAX, U64_MAX],
  ])('aligning %s to %s: down %s, up %s', (a, align, down, up) => {
    expect(alignDown(gpa(a), align)).toBe(down);
    expect(alignUp(gpa(a), align)).toBe(up);
  });

  it('alignDown of the top address stays in range', () => {
    expect(alignDown(iova(U64_MAX), 2n ** 63n)).toBe(2n ** 63n);
  });

  it.each([
    [U64_MAX, 0x1000n],
    [U64_MAX - 0xffen, 0x1000n],
    [2n ** 63n + 1n, 2n ** 63n],
  ])('alignUp(%s, %s) overflows', (a, align) => {
    expect(errnoOf(() => alignUp(iova(a), align))).toBe('EOVERFLOW');
  });

  it.each([0n, -4096n, 3n, 0x1800n])('rejects alignment %s', (align) => {
    expect(errnoOf(() => alignDown(iova(0x1000n), align))).toBe('EINVAL');
    expect(errnoOf(() => alignUp(iova(0x1000n), align))).toBe('EINVAL');
    expect(errnoOf(() => isAligned(0x1000n, align))).toBe('EINVAL');
  });

  it.each([
    [0n, 0x1000n, true],
    [0x1000n, 0x1000n, true],
    [0x1800n, 0x1000n, false],
    [0x1800n, 0x800n, true],
    [U64_MAX, 1n, true],
    [U64_MAX, 2n, false],
    [2n ** 63n, 2n ** 63n, true],
  ])('isAligned(%s, %s) is %s', (a, align, aligned) => {
    expect(isAligned(a, align)).toBe(aligned);
  });

  it('alignDown ≤ a ≤ alignUp, both aligned and less than one alignment apart', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, U64_MAX - (1n << 30n)), fc.integer({ min: 0, max: 30 }), (a, shift) => {
        const align = 1n << BigInt(shift);
        const down = alignDown(iova(a), align);
        const up = alignUp(iova(a), align);
        expect(down <= a && a <= up).toBe(true);
        expect(isAligned(down, align) && isAligned(up, align)).toBe(true);
        expect(up - down).toBe(isAligned(a, align) ? 0n : align);
      }),
    );
  });
});

describe('page frame numbers', () => {
  it.each([
    [0n, 0, 0],
    [2n ** 32n - 1n, 2 ** 20 - 1, 0xfff],
    [2n ** 32n, 2 ** 20, 0],
    [2n ** 52n, 2 ** 40, 0],
    [2n ** 53n, 2 ** 41, 0],
    [2n ** 64n - 1n, 2 ** 52 - 1, 0xfff],
  ])('%s is pfn %s offset %s and round-trips', (a, pfn, offset) => {
    expect(toPfn(a)).toBe(pfn);
    expect(pageOffset(a)).toBe(offset);
    expect(fromPfn(ipa, toPfn(a), pageOffset(a))).toBe(a);
  });

  it('fromPfn defaults to offset 0', () => {
    expect(fromPfn(hpa, 3)).toBe(3n * BigInt(PAGE_SIZE));
  });

  it('fromPfn validates through the given constructor', () => {
    expect(errnoOf(() => fromPfn(hpa, 2 ** 52))).toBe('EOVERFLOW');
  });

  it('round-trips every 64-bit address', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, U64_MAX), (a) => {
        expect(toPfn(a)).toBeLessThan(2 ** 52);
        expect(fromPfn(iova, toPfn(a), pageOffset(a))).toBe(a);
      }),
    );
  });
});

describe('toHex', () => {
  it.each([
    [0n, '0x0'],
    [0, '0x0'],
    [255, '0xff'],
    [0xdead_beefn, '0xdeadbeef'],
    [2n ** 64n - 1n, '0xffffffffffffffff'],
    [2 ** 52, '0x10000000000000'],
  ])('toHex(%s) is %s', (value, hex) => {
    expect(toHex(value)).toBe(hex);
  });
});
