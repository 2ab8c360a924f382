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
 * The address held in bits `msb:lsb` of an entry, as a byte address (its low `lsb % 64` bits zero), for
 * fields like SMMUv3 S1ContextPtr (bits 51:6 of qword 0). Exact: the result is below 2^52.
 */
export function entryAddress(words: ArrayLike<number>, lsb: number, msb: number): number {
  const q = lsb >>> 6;
  const low = lsb & 63;
  const high = msb & 63;
  const lo = words[2 * q]! >>> 0;
  const hi = words[2 * q + 1]! >>> 0;
  // Keep bits high..low of the 64-bit word {hi, lo}. Each branch below agrees with the other at its
  // boundary (32): a mask of 2^k·2^32 reads as 0 in 32-bit logic, a fractional one as 0, and the division
  // by 2^(low - 32) is exact; mutants that move the boundary or take one branch for both are equivalent.
  // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
  const hiMask = high >= 32 ? 2 ** (high - 31) - 1 : 0;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
  const loMaskedFrom = low >= 32 ? 0 : ((lo >>> low) * 2 ** low) >>> 0;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
  const loKept = high >= 32 ? loMaskedFrom : (loMaskedFrom & (2 ** (high + 1) - 1)) >>> 0;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
  // `>>> 0`: a field reaching bit 63 keeps the high half's top bit, which `&` alone reads as a sign.
  const hiBits = (hi & hiMask) >>> 0;
  const hiKept = low >= 32 ? Math.floor(hiBits / 2 ** (low - 32)) * 2 ** (low - 32) : hiBits;
  return hiKept * 2 ** 32 + loKept;
}

/**
 * Writes a byte address into bits `msb:lsb` of an entry. `EINVAL` unless the address fits them exactly
 * (`checkFieldAddress`: a non-negative integer, its bits below `lsb % 64` zero).
 */
export function setEntryAddress(words: Uint32Array, lsb: number, msb: number, address: number): void {
  checkFieldAddress('entry', 'address', address, lsb, msb);
  const q = lsb >>> 6;
  const low = lsb & 63;
  const high = msb & 63;
  const lo = address >>> 0;
  const hi = Math.floor(address / 2 ** 32);
  // The same holds for the writes: a mask past the 32-bit word reads as 0, so no bit changes.
  // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
  if (low < 32) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
    const loMask = (high >= 31 ? 0xffff_ffff : 2 ** (high + 1) - 1) - (2 ** low - 1);
    words[2 * q] = ((words[2 * q]! & ~loMask) | (lo & loMask)) >>> 0;
  }
  // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
  if (high >= 32) {
    const from = Math.max(low, 32) - 32;
    const hiMask = 2 ** (high - 31) - 2 ** from;
    words[2 * q + 1] = ((words[2 * q + 1]! & ~hiMask) | (hi & hiMask)) >>> 0;
  }
}
