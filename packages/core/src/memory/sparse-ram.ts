/**
 * Sparse RAM: 4 KiB pages are allocated on the first write; reads of pages never written return zeros
 * without allocating (docs/design.md §4). Offsets are byte offsets into the region as `number`s.
 */
import { PAGE_SIZE } from '../address/address.js';

const PAGE_MASK = PAGE_SIZE - 1;

export class SparseRam {
  readonly size: number;
  private readonly pages = new Map<number, DataView>();

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
      throw new RangeError(`RAM size ${size} must be a positive multiple of ${PAGE_SIZE}`);
    }
    this.size = size;
  }

  /** Bytes of host memory the model holds for this RAM (allocated pages only). */
  get allocatedBytes(): number {
    return this.pages.size * PAGE_SIZE;
  }

  get allocatedPages(): number {
    return this.pages.size;
  }

  /** Reads a little-endian unsigned 32-bit word; `offset` must be 4-byte aligned. */
  read32(offset: number): number {
    const page = this.pages.get(Math.floor(offset / PAGE_SIZE));
    return page === undefined ? 0 : page.getUint32(offset & PAGE_MASK, true);
  }

  /** Writes a little-endian 32-bit word; `offset` must be 4-byte aligned. */
  write32(offset: number, value: number): void {
    this.pageForWrite(offset).setUint32(offset & PAGE_MASK, value >>> 0, true);
  }

  read8(offset: number): number {
    const page = this.pages.get(Math.floor(offset / PAGE_SIZE));
    return page === undefined ? 0 : page.getUint8(offset & PAGE_MASK);
  }

  write8(offset: number, value: number): void {
    this.pageForWrite(offset).setUint8(offset & PAGE_MASK, value);
  }

  /** Copies `length` bytes starting at `offset` into `out` at `outOffset`. */
  readBytes(offset: number, out: Uint8Array, outOffset = 0, length = out.length - outOffset): void {
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const inPage = at & PAGE_MASK;
      const chunk = Math.min(PAGE_SIZE - inPage, length - done);
      const page = this.pages.get(Math.floor(at / PAGE_SIZE));
      if (page === undefined) out.fill(0, outOffset + done, outOffset + done + chunk);
      else out.set(new Uint8Array(page.buffer, inPage, chunk), outOffset + done);
      done += chunk;
    }
  }

  /** Copies `data` into RAM at `offset`, allocating pages as needed. */
  writeBytes(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const at = offset + done;
      const inPage = at & PAGE_MASK;
      const chunk = Math.min(PAGE_SIZE - inPage, data.length - done);
      new Uint8Array(this.pageForWrite(at).buffer, inPage, chunk).set(data.subarray(done, done + chunk));
      done += chunk;
    }
  }

  /**
   * Zeroes a page-aligned range by dropping its pages: what a freshly allocated zeroed page looks like,
   * without allocating anything.
   */
  discard(offset: number, length: number): void {
    for (let p = Math.floor(offset / PAGE_SIZE); p < Math.ceil((offset + length) / PAGE_SIZE); p++)
      this.pages.delete(p);
  }

  /** Drops every page (the RAM reads as zeros again) and returns the bytes released. */
  clear(): number {
    const released = this.allocatedBytes;
    this.pages.clear();
    return released;
  }

  private pageForWrite(offset: number): DataView {
    const index = Math.floor(offset / PAGE_SIZE);
    let page = this.pages.get(index);
    if (page === undefined) {
      page = new DataView(new ArrayBuffer(PAGE_SIZE));
      this.pages.set(index, page);
    }
    return page;
  }
}
