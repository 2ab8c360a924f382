/**
 * Every leaf of a table tree over an input range, read through the caller's reader: what a VMM does when
 * it shadows a guest's tables (it reads guest memory, which is not the host bus the tables' owner writes
 * through). Invalid and reserved entries are skipped, an entry the reader cannot fetch too; each leaf is
 * reported once with its input base, size and raw descriptor, for the format to decode. Work is bounded
 * by the tables present: an empty range below a missing table costs one read.
 */
import { DESC_LEAF, DESC_TABLE, type PageTableFormat, pow2 } from './format.js';

/** Reads the descriptor at `address` into `out[0]`, `out[1]`; false when nothing can be read there. */
export type DescriptorReader = (address: number, out: Uint32Array) => boolean;

/** A leaf found: its input base, log2 of its size, its words and level. */
export type LeafVisitor = (iova: number, shift: number, lo: number, hi: number, level: number) => void;

/** Calls `visit` for each leaf of the tree at `root` that overlaps [start, end) (a granule multiple). */
export function forEachLeaf(
  format: PageTableFormat,
  root: number,
  start: number,
  end: number,
  read: DescriptorReader,
  visit: LeafVisitor,
): void {
  scan(format, root, format.startLevel, start, end, read, visit, new Uint32Array(2));
}

function scan(
  f: PageTableFormat,
  table: number,
  level: number,
  start: number,
  end: number,
  read: DescriptorReader,
  visit: LeafVisitor,
  words: Uint32Array,
): void {
  // An empty range (a skipping table's reach can leave none) reads nothing: end − 1 would wrap the index.
  if (end <= start) return;
  const span = pow2(f.levelShift(level));
  const first = f.index(start, level);
  // The last page's index: end − 1 would round up past 2^53 (2^56 − 1 is not a double).
  const last = f.index(end - pow2(f.granuleShift), level);
  const firstBase = Math.floor(start / span) * span;
  for (let k = 0; k <= last - first; k++) {
    if (!read(table + (first + k) * f.descriptorBytes, words)) continue;
    const lo = words[0]!;
    const hi = words[1]!;
    const kind = f.kind(lo, hi, level);
    const base = firstBase + k * span;
    if (kind === DESC_LEAF) visit(base, f.leafShift(lo, hi, level), lo, hi, level);
    else if (kind === DESC_TABLE) {
      const next = f.tableNextLevel(lo, hi, level);
      // A table that skips levels (AMD v1 NextLevel) translates only inputs whose skipped bits are 0.
      const reach = Math.min(span, pow2(f.levelShift(next)) * f.entries(next));
      scan(
        f,
        f.tableAddress(lo, hi),
        next,
        Math.max(start, base),
        Math.min(end, base + reach),
        read,
        visit,
        words,
      );
    }
  }
}
