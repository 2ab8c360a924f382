/**
 * Argument checks at the iommufd API boundary. The kernel's ioctl structs have fixed-width fields, so it
 * never sees a negative, fractional or wrongly typed value; a JavaScript caller can pass anything. Every
 * public `IommuFd` method first normalises its arguments here: a field takes a `number` or a `bigint`
 * alike (8 and 8n name the same virtual ID), and whatever cannot be the field's C type is `EINVAL` (a
 * value past 2^64 − 1 `EOVERFLOW`), before anything changes — never a raw TypeError or RangeError.
 */
import { checkU64 } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import { NO_PASID } from '../iommu/translation.js';

const U32_LIMIT = 2 ** 32;

/** A `__u64` field: returned as a bigint. */
export function u64Arg(value: unknown, name: string): bigint {
  if (typeof value !== 'bigint' && typeof value !== 'number') throw invalid(name, value, 'an integer');
  return checkU64(value, name);
}

/** An optional `__u64` field (`undefined` stays `undefined`). */
export function optionalU64Arg(value: unknown, name: string): bigint | undefined {
  return value === undefined ? undefined : u64Arg(value, name);
}

/** An integer that may be negative (an offset the caller's range check judges): returned as a bigint. */
export function integerArg(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw invalid(name, value, 'an exact integer');
}

/** A `__u32` field (object IDs, counts, cookies): returned as a number. */
export function u32Arg(value: unknown, name: string): number {
  const n = typeof value === 'bigint' && value >= 0n && value < BigInt(U32_LIMIT) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= U32_LIMIT)
    throw invalid(name, value, 'a 32-bit unsigned integer');
  return n;
}

/** An optional `__u32` field. */
export function optionalU32Arg(value: unknown, name: string): number | undefined {
  return value === undefined ? undefined : u32Arg(value, name);
}

/** A PASID: {@link NO_PASID} (the RID) or a `__u32`; whether it fits the device is the attach's check. */
export function pasidArg(value: unknown): number {
  return value === NO_PASID || value === BigInt(NO_PASID) ? NO_PASID : u32Arg(value, 'PASID');
}

/** A flag. */
export function boolArg(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalid(name, value, 'a boolean');
  return value;
}

/** A name (vIOMMU type, vEVENTQ type). */
export function stringArg(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalid(name, value, 'a string');
  return value;
}

/** A request or options object (a struct the ioctl copies in). */
export function objectArg<T extends object>(value: unknown, name: string): T {
  if (typeof value !== 'object' || value === null) throw invalid(name, value, 'an object');
  return value as T;
}

/** An array argument (entries, ranges). */
export function arrayArg<T>(value: unknown, name: string): readonly T[] {
  if (!Array.isArray(value)) throw invalid(name, value, 'an array');
  return value as T[];
}

/**
 * A flags object: every key must be one of `known` (else `EOPNOTSUPP`, as unknown flag bits are) and
 * every value a boolean or absent.
 */
export function flagsArg<K extends string>(
  value: unknown,
  name: string,
  known: readonly K[],
): Partial<Record<K, boolean>> {
  if (value === undefined) return {};
  const flags = objectArg<Record<string, unknown>>(value, name);
  const out: Partial<Record<K, boolean>> = {};
  for (const [key, flag] of Object.entries(flags)) {
    if (!(known as readonly string[]).includes(key))
      throw new IommufdError('EOPNOTSUPP', `${name}: unknown flag "${key}"`);
    if (flag !== undefined) out[key as K] = boolArg(flag, `${name}.${key}`);
  }
  return out;
}

function invalid(name: string, value: unknown, want: string): IommufdError {
  return new IommufdError('EINVAL', `${name} must be ${want}, not ${describe(value)}`);
}

/** A short, never-throwing description of any value for an error message. */
function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}
