/**
 * Builds a page-table tree where the caller decides the addresses and does the writes: tables come from
 * `allocTable` (zeroed pages of `tableBytes`), descriptors go out through `write`. What a guest driver
 * does in its own memory, seen from outside — the tables live at guest-physical addresses the builder
 * never dereferences. `IoPageTable` is the owner-side equivalent on the host bus.
 */
import type { MapProt, PageTableFormat } from './format.js';

/** One leaf of the smallest page size: `iova` → `pa`. */
export interface TableMapping {
  readonly iova: bigint;
  readonly pa: bigint;
}

export interface TableBuilderTarget {
  /** A zeroed table's address (4 KiB-aligned for every supported format). */
  allocTable(): bigint;
  /** Writes a descriptor's words at `address`. */
  write(address: bigint, words: Uint32Array): void;
}

/** Writes tables mapping each of `maps` with `prot` (smallest pages), sharing tables between them; returns the root. */
export function buildTableAt(
  format: PageTableFormat,
  maps: readonly TableMapping[],
  prot: MapProt,
  target: TableBuilderTarget,
): bigint {
  const root = target.allocTable();
  // Tables below the root by the indices leading to them, so maps sharing a prefix share tables.
  const tables = new Map<string, bigint>();
  const descriptor = new Uint32Array(2);
  const leaf = format.leafTemplate(prot, false);
  const bytes = BigInt(format.descriptorBytes);
  for (const { iova, pa } of maps) {
    const va = Number(iova);
    let table = root;
    // Stryker disable next-line StringLiteral: any common prefix of the keys names the same tables
    let path = '';
    for (let level = format.startLevel; level !== format.leafLevel; level = format.nextLevel(level)) {
      const index = format.index(va, level);
      path += `/${index}`;
      let next = tables.get(path);
      if (next === undefined) {
        next = target.allocTable();
        tables.set(path, next);
        format.encodeTable(Number(next), level, descriptor, 0);
        target.write(table + BigInt(index) * bytes, descriptor);
      }
      table = next;
    }
    format.encodeLeaf(Number(pa), format.leafLevel, leaf, descriptor, 0);
    target.write(table + BigInt(format.index(va, format.leafLevel)) * bytes, descriptor);
  }
  return root;
}
