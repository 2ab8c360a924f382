/**
 * Typed 64-bit addresses (docs/design.md §3, tier 1). Each address space has its own brand so an IOVA can
 * never be passed where a host physical address is expected. Values are exact `bigint`s checked to lie
 * in [0, 2^64); arithmetic goes through the checked helpers below, never raw `+` across spaces.
 */
import { IommufdError } from '../errors/iommufd-error.js';

/** I/O virtual address: what a device puts on the bus before the IOMMU translates it. */
export type Iova = bigint & { readonly __space: 'IOVA' };
/** Guest physical address: an address in a VM's RAM view. */
export type Gpa = bigint & { readonly __space: 'GPA' };
/** Host physical address: an address on the system's physical memory bus. */
export type Hpa = bigint & { readonly __space: 'HPA' };
/** Intermediate physical address: the output of stage 1 and input of stage 2 (ARM terminology). */
export type Ipa = bigint & { readonly __space: 'IPA' };

export type AddressSpace = 'IOVA' | 'GPA' | 'HPA' | 'IPA';
export type Address = Iova | Gpa | Hpa | Ipa;

export const U64_MAX = (1n << 64n) - 1n;
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** Checks that `value` is an integer in [0, 2^64) and returns it as a bigint. */
export function checkU64(value: bigint | number, what = 'value'): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new IommufdError('EINVAL', `${what} ${value} is not an exact integer; pass a bigint`, { what });
    }
    value = BigInt(value);
  }
  if (value < 0n) throw new IommufdError('EINVAL', `${what} ${value} is negative`, { what });
  if (value > U64_MAX)
    throw new IommufdError('EOVERFLOW', `${what} ${toHex(value)} does not fit in 64 bits`, { what });
  return value;
}

export const iova = (value: bigint | number): Iova => checkU64(value, 'IOVA') as Iova;
export const gpa = (value: bigint | number): Gpa => checkU64(value, 'GPA') as Gpa;
export const hpa = (value: bigint | number): Hpa => checkU64(value, 'HPA') as Hpa;
export const ipa = (value: bigint | number): Ipa => checkU64(value, 'IPA') as Ipa;

/** `a + n` in the same space, or `undefined` when the sum passes 2^64 − 1. */
export function checkedAdd<A extends Address>(a: A, n: bigint): A | undefined {
  const sum = a + n;
  return sum > U64_MAX || sum < 0n ? undefined : (sum as A);
}

/** `a + n`, throwing `EOVERFLOW` when the sum passes 2^64 − 1. */
export function addOrThrow<A extends Address>(a: A, n: bigint): A {
  const sum = checkedAdd(a, n);
  if (sum === undefined) throw new IommufdError('EOVERFLOW', `${toHex(a)} + ${toHex(n)} overflows 64 bits`);
  return sum;
}

/** Rounds `a` down to a multiple of `align` (a power of two). */
export function alignDown<A extends bigint>(a: A, align: bigint): A {
  assertPowerOfTwo(align);
  return (a & ~(align - 1n)) as A;
}

/** Rounds `a` up to a multiple of `align` (a power of two); `EOVERFLOW` past 2^64 − 1. */
export function alignUp<A extends bigint>(a: A, align: bigint): A {
  assertPowerOfTwo(align);
  const up = (a + align - 1n) & ~(align - 1n);
  if (up > U64_MAX)
    throw new IommufdError('EOVERFLOW', `aligning ${toHex(a)} up to ${toHex(align)} overflows`);
  return up as A;
}

export function isAligned(a: bigint, align: bigint): boolean {
  assertPowerOfTwo(align);
  return (a & (align - 1n)) === 0n;
}

/**
 * The 4 KiB page frame number of `a` as a `number` (tier 2). Any 64-bit address shifted right by 12 is
 * below 2^52, so it is exact in a double.
 */
export function toPfn(a: bigint): number {
  return Number(a >> BigInt(PAGE_SHIFT));
}

/** The byte offset of `a` inside its 4 KiB page. */
export function pageOffset(a: bigint): number {
  return Number(a & BigInt(PAGE_SIZE - 1));
}

/** Rebuilds an address from a page frame number and in-page offset. */
export function fromPfn<A extends Address>(make: (v: bigint) => A, pfn: number, offset = 0): A {
  return make((BigInt(pfn) << BigInt(PAGE_SHIFT)) + BigInt(offset));
}

/** `0x`-prefixed lowercase hex, the form JSON, traces and the CLI use for addresses. */
export function toHex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

function assertPowerOfTwo(align: bigint): void {
  if (align <= 0n || (align & (align - 1n)) !== 0n) {
    throw new IommufdError('EINVAL', `alignment ${align} is not a power of two`);
  }
}
