/**
 * 64-bit values as two 32-bit halves (docs/design.md §3, tier 3): hardware registers and in-memory structures
 * are `Uint32Array` words, a 64-bit register is its low half at +0 and high half at +4. JavaScript's bitwise
 * operators truncate to 32 bits, so these helpers are the only place 64-bit values are split or joined.
 */
import { checkFieldAddress } from './field-values.js';

const TWO_32 = 2 ** 32;
const TWO_21 = 2 ** 21;

/** Low 32 bits of a 64-bit value. */
export function lo32(value: bigint): number {
  return Number(value & 0xffff_ffffn);
}

/** High 32 bits of a 64-bit value. */
export function hi32(value: bigint): number {
  return Number((value >> 32n) & 0xffff_ffffn);
}

/** Joins two unsigned 32-bit halves into an exact bigint. */
export function join64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/**
 * Joins two halves into a `number`, for values known to be below 2^53 (aligned physical addresses,
 * frame numbers). Throws when the high half would make the result inexact.
 */
export function join64ToNumber(lo: number, hi: number): number {
  if (hi >>> 0 >= TWO_21)
    throw new RangeError(`0x${(hi >>> 0).toString(16)}_${(lo >>> 0).toString(16)} is not below 2^53`);
  return (hi >>> 0) * TWO_32 + (lo >>> 0);
}

/** Low 32 bits of a non-negative integer `number` below 2^53 (exact: ToUint32 is modulo 2^32). */
export function numberLo32(value: number): number {
  return value >>> 0;
}

/** High bits of a non-negative integer `number` below 2^53. */
export function numberHi32(value: number): number {
  return Math.floor(value / TWO_32);
}

/** Extracts `width` bits at `lsb` from a 32-bit word (`width` ≤ 32, `lsb + width` ≤ 32). */
export function field32(word: number, lsb: number, width: number): number {
  // Stryker disable next-line ConditionalExpression: `& (2^32 - 1)` is `& -1`, the same 32 bits
  if (width === 32) return word >>> 0;
  const mask = 2 ** width - 1;
  return ((word >>> lsb) & mask) >>> 0;
}

/** Returns `word` with `width` bits at `lsb` replaced by `value`. */
export function deposit32(word: number, lsb: number, width: number, value: number): number {
  const mask = width === 32 ? 0xffff_ffff : (((1 << width) - 1) << lsb) >>> 0;
  return ((word & ~mask) | ((value << lsb) & mask)) >>> 0;
}

/**
 * Fields of multi-word hardware entries (an SMMUv3 STE is 16 words, a VT-d PASID entry 16, an AMD DTE 8),
 * addressed by absolute bit number as specifications write them: bit 64·N + b is bit b of 64-bit word N.
 * A field may straddle a 32-bit boundary; `width` ≤ 32 for `entryField`, and address fields up to 52 bits
 * go through `entryAddress`, which returns an exact `number`.
 */
export function entryField(words: ArrayLike<number>, lsb: number, width: number): number {
  const index = lsb >>> 5;
  const shift = lsb & 31;
  const lo = words[index]! >>> shift;
  // Masks by shifts, not powers: this runs for every field of every structure a cache miss decodes.
  // (1 << 31) - 1 is -2^31 - 1, which `&` reads as 2^31 - 1.
  // Stryker disable next-line EqualityOperator: at exactly 32 the two-word path adds a high part of 0
  if (shift + width <= 32) return width === 32 ? lo : (lo & ((1 << width) - 1)) >>> 0;
  // Stryker disable next-line ArithmeticOperator: `<<` counts modulo 32, so ±32 shift the same
  const hi = words[index + 1]! & ((1 << (shift + width - 32)) - 1);
  return (lo + hi * ((1 << (32 - shift)) >>> 0)) >>> 0;
}

/** Writes `value` (width ≤ 32 bits) into the field at absolute bit `lsb`. */
export function setEntryField(words: Uint32Array, lsb: number, width: number, value: number): void {
  const index = lsb >>> 5;
  const shift = lsb & 31;
  const lowWidth = Math.min(width, 32 - shift);
  words[index] = deposit32(words[index]!, shift, lowWidth, value % 2 ** lowWidth);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: a 0-bit deposit leaves the word as it is
  if (lowWidth < width)
    words[index + 1] = deposit32(words[index + 1]!, 0, width - lowWidth, Math.floor(value / 2 ** lowWidth));
}

/**
 * The bits of the low half (bits 31:0) of a 64-bit word that a field at bits `high:low` of it covers, as a
 * mask: 0 for a field wholly in the high half. Every reader and writer of address fields, compiled
 * (`entryReader`) or not, takes its masks from here and from {@link highHalfMask}.
 */
export function lowHalfMask(low: number, high: number): number {
  // Stryker disable next-line ConditionalExpression,EqualityOperator: at low = 32 the formula gives 0 too
  if (low >= 32) return 0;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: at high = 31 both give 2^32 − 2^low
  return (high >= 31 ? 2 ** 32 : 2 ** (high + 1)) - 2 ** low;
}

/** The bits of the high half (bits 63:32) of a 64-bit word that a field at bits `high:low` of it covers. */
export function highHalfMask(low: number, high: number): number {
  // Stryker disable next-line ConditionalExpression,EqualityOperator: at high = 31 the formula gives 0 too
  if (high < 32) return 0;
  return 2 ** (high - 31) - 2 ** Math.max(low - 32, 0);
}

/**
 * The address held in bits `msb:lsb` of an entry, as a byte address (its low `lsb % 64` bits zero), for
 * fields like SMMUv3 S1ContextPtr (bits 51:6 of qword 0). Exact: the field holds at most 53 significant bits.
 */
export function entryAddress(words: ArrayLike<number>, lsb: number, msb: number): number {
  const at = 2 * (lsb >>> 6);
  const low = lsb & 63;
  const high = msb & 63;
  // `>>> 0`: a field reaching bit 63 keeps the high half's top bit, which `&` alone reads as a sign.
  const hi = (words[at + 1]! & highHalfMask(low, high)) >>> 0;
  return hi * 2 ** 32 + ((words[at]! & lowHalfMask(low, high)) >>> 0);
}

/**
 * Writes a byte address into bits `msb:lsb` of an entry. `EINVAL` unless the address fits them exactly
 * (`checkFieldAddress`: a non-negative integer, its bits below `lsb % 64` zero).
 */
export function setEntryAddress(words: Uint32Array, lsb: number, msb: number, address: number): void {
  checkFieldAddress('entry', 'address', address, lsb, msb);
  const at = 2 * (lsb >>> 6);
  const loMask = lowHalfMask(lsb & 63, msb & 63);
  const hiMask = highHalfMask(lsb & 63, msb & 63);
  // A mask of 0 leaves its half as it is.
  words[at] = ((words[at]! & ~loMask) | ((address >>> 0) & loMask)) >>> 0;
  words[at + 1] = ((words[at + 1]! & ~hiMask) | (Math.floor(address / 2 ** 32) & hiMask)) >>> 0;
}
