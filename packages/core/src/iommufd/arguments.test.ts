/**
 * The argument checks at the iommufd API boundary (arguments.ts): each C field type takes what fits it,
 * as the same value whether a number or a bigint, and anything else is EINVAL (past 2^64 − 1 EOVERFLOW).
 */
import { describe, expect, it } from 'vitest';
import { U64_MAX } from '../address/address.js';
import { errnoOf, IommufdError } from '../errors/iommufd-error.js';
import { NO_PASID } from '../iommu/translation.js';
import {
  arrayArg,
  boolArg,
  flagsArg,
  integerArg,
  objectArg,
  optionalU32Arg,
  optionalU64Arg,
  pasidArg,
  stringArg,
  u32Arg,
  u64Arg,
} from './arguments.js';

/** The message of the error `fn` throws. */
function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof IommufdError) return error.message;
    throw error;
  }
  throw new Error('nothing thrown');
}

describe('__u64 fields', () => {
  it('take a bigint or an exact integer number as the same bigint, 0 to 2^64 − 1', () => {
    expect(u64Arg(8, 'x')).toBe(8n);
    expect(u64Arg(8n, 'x')).toBe(8n);
    expect(u64Arg(0, 'x')).toBe(0n);
    expect(u64Arg(U64_MAX, 'x')).toBe(U64_MAX);
  });

  it('refuse negative, fractional and non-numeric values (EINVAL) and values past 2^64 − 1 (EOVERFLOW)', () => {
    for (const bad of [-1n, -1, 0.5, Number.NaN, '8', null, undefined, {}, [8]])
      expect(errnoOf(() => u64Arg(bad, 'x'))).toBe('EINVAL');
    expect(errnoOf(() => u64Arg(U64_MAX + 1n, 'x'))).toBe('EOVERFLOW');
  });

  it('optional: undefined stays undefined, anything else is checked', () => {
    expect(optionalU64Arg(undefined, 'x')).toBeUndefined();
    expect(optionalU64Arg(3, 'x')).toBe(3n);
    expect(errnoOf(() => optionalU64Arg(null, 'x'))).toBe('EINVAL');
  });
});

describe('integers that may be negative (offsets)', () => {
  it('take any bigint and safe integer numbers, as bigints', () => {
    expect(integerArg(-5n, 'x')).toBe(-5n);
    expect(integerArg(-5, 'x')).toBe(-5n);
    expect(integerArg(2 ** 53 - 1, 'x')).toBe(2n ** 53n - 1n);
  });

  it('refuse fractions, unsafe numbers and non-numbers (EINVAL)', () => {
    for (const bad of [0.5, 2 ** 53, Number.POSITIVE_INFINITY, '1', undefined])
      expect(errnoOf(() => integerArg(bad, 'x'))).toBe('EINVAL');
  });
});

describe('__u32 fields', () => {
  it('take numbers and bigints from 0 to 2^32 − 1, as numbers', () => {
    expect(u32Arg(0, 'x')).toBe(0);
    expect(u32Arg(0n, 'x')).toBe(0);
    expect(u32Arg(2 ** 32 - 1, 'x')).toBe(2 ** 32 - 1);
    expect(u32Arg(2n ** 32n - 1n, 'x')).toBe(2 ** 32 - 1);
  });

  it('refuse negatives, 2^32 and more, fractions and non-numbers (EINVAL)', () => {
    for (const bad of [-1, -1n, 2 ** 32, 2n ** 32n, 1.5, Number.NaN, '1', null, undefined])
      expect(errnoOf(() => u32Arg(bad, 'x'))).toBe('EINVAL');
  });

  it('optional: undefined stays undefined', () => {
    expect(optionalU32Arg(undefined, 'x')).toBeUndefined();
    expect(optionalU32Arg(4n, 'x')).toBe(4);
    expect(errnoOf(() => optionalU32Arg(-4, 'x'))).toBe('EINVAL');
  });
});

describe('PASIDs', () => {
  it('NO_PASID (as a number or a bigint) is the RID; other values are __u32', () => {
    expect(pasidArg(NO_PASID)).toBe(NO_PASID);
    expect(pasidArg(BigInt(NO_PASID))).toBe(NO_PASID);
    expect(pasidArg(5n)).toBe(5);
    expect(errnoOf(() => pasidArg(-2))).toBe('EINVAL');
    expect(errnoOf(() => pasidArg(undefined))).toBe('EINVAL');
  });
});

describe('flags, names, structs and lists', () => {
  it('a flag is a boolean', () => {
    expect(boolArg(false, 'x')).toBe(false);
    expect(boolArg(true, 'x')).toBe(true);
    expect(errnoOf(() => boolArg(1, 'x'))).toBe('EINVAL');
  });

  it('a name is a string', () => {
    expect(stringArg('', 'x')).toBe('');
    expect(errnoOf(() => stringArg(Symbol('x'), 'x'))).toBe('EINVAL');
  });

  it('a struct is a non-null object; a list an array', () => {
    const o = {};
    expect(objectArg(o, 'x')).toBe(o);
    expect(objectArg([], 'x')).toEqual([]);
    expect(errnoOf(() => objectArg(null, 'x'))).toBe('EINVAL');
    expect(errnoOf(() => objectArg('o', 'x'))).toBe('EINVAL');
    const a = [1];
    expect(arrayArg(a, 'x')).toBe(a);
    expect(errnoOf(() => arrayArg({ length: 1 }, 'x'))).toBe('EINVAL');
  });

  it('a flags object: known keys with boolean or absent values; an unknown key is EOPNOTSUPP', () => {
    const known = ['a', 'b'] as const;
    expect(flagsArg(undefined, 'flags', known)).toEqual({});
    expect(flagsArg({ a: true, b: undefined }, 'flags', known)).toEqual({ a: true });
    expect(flagsArg({ b: false }, 'flags', known)).toEqual({ b: false });
    expect(errnoOf(() => flagsArg({ c: true }, 'flags', known))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => flagsArg({ a: 1 }, 'flags', known))).toBe('EINVAL');
    expect(errnoOf(() => flagsArg(null, 'flags', known))).toBe('EINVAL');
  });
});

describe('error messages', () => {
  it('name the argument and describe any value without throwing', () => {
    expect(messageOf(() => u32Arg(5n ** 40n, 'dev_id'))).toContain('dev_id');
    const described = [
      [1n << 40n, '1099511627776n'],
      ['s', '"s"'],
      [() => 0, 'a function'],
      [null, 'null'],
      [undefined, 'undefined'],
      [[], 'an array'],
      [{}, 'an object'],
      [Symbol('q'), 'Symbol(q)'],
    ] as const;
    for (const [value, text] of described) expect(messageOf(() => u32Arg(value, 'v'))).toMatch(`not ${text}`);
  });
});
