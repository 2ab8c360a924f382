/**
 * Writing a run of leaves whose output address sits whole in bits 51:12 of the entry (x86-64, VT-d second
 * stage, AMD v1): each entry is the address's two halves with the same low-word and high-word bits, the
 * address advancing by `span` per entry. Shared by the formats whose addresses need no repacking.
 */
import { pow2 } from './format.js';

const TWO_32 = pow2(32);

/**
 * Writes `count` entries from `out[at]`: the first maps `pa`, each next one `span` further; `loBits` and
 * `hiBits` are OR-ed into every entry's halves. `pa` and `span` are multiples of 4 KiB.
 */
export function writeAddressRun(
  pa: number,
  span: number,
  loBits: number,
  hiBits: number,
  out: Uint32Array,
  at: number,
  count: number,
): void {
  // The address as two exact halves, advanced by the span with a carry (no division per entry).
  let hi = Math.floor(pa / TWO_32);
  let lo = pa - hi * TWO_32;
  let hiWord = (hi | hiBits) >>> 0;
  const end = at + 2 * count;
  for (let i = at; i < end; i += 2) {
    out[i] = (lo | loBits) >>> 0;
    out[i + 1] = hiWord;
    lo += span;
    // Stryker disable next-line ConditionalExpression: a carry of 0 changes nothing (the test only saves the work)
    if (lo >= TWO_32) {
      const carry = Math.floor(lo / TWO_32);
      hi += carry;
      lo -= carry * TWO_32;
      hiWord = (hi | hiBits) >>> 0;
    }
  }
}
