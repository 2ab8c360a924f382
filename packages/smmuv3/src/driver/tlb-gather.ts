/**
 * What a domain's `unmap` (and dirty clearing) left stale in the TLB until `iotlbSync` (Linux
 * `struct iommu_iotlb_gather`): leaf ranges and walk ranges, merged when the commands are made.
 */

export type Range = readonly [start: number, end: number];

/** The IOVA ranges `unmap` (and dirty clearing) left stale in the TLB, until `iotlbSync`. */
export class Gather {
  leaves: Range[] = [];
  walks: Range[] = [];

  get empty(): boolean {
    return this.leaves.length === 0 && this.walks.length === 0;
  }

  /** The smallest range covering everything gathered. */
  span(): Range {
    const all = [...this.leaves, ...this.walks];
    return [Math.min(...all.map((r) => r[0])), Math.max(...all.map((r) => r[1]))];
  }
}

/** Sorts and merges overlapping or adjacent ranges. */
export function merge(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out[out.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}
