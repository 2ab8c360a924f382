/**
 * What a paging domain's `unmap` (and dirty clearing) left stale in the IOTLB until `iotlbSync` (Linux
 * `struct iommu_iotlb_gather`): leaf ranges and walk ranges (tables freed, blocks split), kept apart so a
 * driver can invalidate leaves only where no paging-structure entry changed, and merged when the
 * invalidations are made. Shared by the vendor drivers (SMMUv3, VT-d).
 */

/** A half-open IOVA range `[start, end)`. */
export type IovaRange = readonly [start: number, end: number];

/** The IOVA ranges `unmap` (and dirty clearing) left stale in the IOTLB, until `iotlbSync`. */
export class IotlbGather {
  leaves: IovaRange[] = [];
  walks: IovaRange[] = [];

  get empty(): boolean {
    return this.leaves.length === 0 && this.walks.length === 0;
  }

  /** The smallest range covering everything gathered. */
  span(): IovaRange {
    const all = [...this.leaves, ...this.walks];
    return [Math.min(...all.map((r) => r[0])), Math.max(...all.map((r) => r[1]))];
  }
}

/** Sorts and merges overlapping or adjacent ranges. */
export function mergeRanges(ranges: readonly IovaRange[]): IovaRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out[out.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}
