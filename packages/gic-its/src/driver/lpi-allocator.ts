/**
 * LPI INTIDs for devices, first fit over [8192, 2^idBits), in contiguous ranges per device (Linux
 * its_lpi_alloc keeps a free-range list the same way).
 */
import { IommufdError } from '@iommukit/core';
import { LPI_BASE } from '../hw/registers.js';

export class LpiAllocator {
  /** Free ranges [start, end), sorted. */
  private free: { start: number; end: number }[];

  constructor(idBits: number) {
    this.free = [{ start: LPI_BASE, end: 2 ** idBits }];
  }

  alloc(count: number): number {
    const range = this.free.find((r) => r.end - r.start >= count);
    if (!range) throw new IommufdError('ENOSPC', `no ${count} contiguous LPIs left`);
    const start = range.start;
    range.start += count;
    this.free = this.free.filter((r) => r.end > r.start);
    return start;
  }

  release(start: number, count: number): void {
    this.free.push({ start, end: start + count });
    this.free.sort((a, b) => a.start - b.start);
    const merged: { start: number; end: number }[] = [];
    for (const r of this.free) {
      const last = merged.at(-1);
      if (last && last.end === r.start) last.end = r.end;
      else merged.push({ ...r });
    }
    this.free = merged;
  }
}
