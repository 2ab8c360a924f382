/**
 * 64-bit values as two 32-bit halves (DESIGN.md §3, tier 3): hardware registers and in-memory structures
 * are `Uint32Array` words, a 64-bit register is its low half at +0 and high half at +4. JavaScript's bitwise
 * operators truncate to 32 bits, so these helpers are the only place 64-bit values are split or joined.
 */
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
  if (width === 32) return word >>> 0;
  const mask = 2 ** width - 1;
  return ((word >>> lsb) & mask) >>> 0;
}

/** Returns `word` with `width` bits at `lsb` replaced by `value`. */
export function deposit32(word: number, lsb: number, width: number, value: number): number {
  const mask = width === 32 ? 0xffff_ffff : (((1 << width) - 1) << lsb) >>> 0;
  return ((word & ~mask) | ((value << lsb) & mask)) >>> 0;
}
