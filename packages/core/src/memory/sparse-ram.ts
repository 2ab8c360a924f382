/**
 * Sparse RAM: 4 KiB pages are allocated on the first write; reads of pages never written return zeros
 * without allocating (docs/design.md §4). Offsets are byte offsets into the region as `number`s.
 *
 * Word and byte accesses go to typed-array views of each page, looked up once per page an access touches
 * through a small direct-mapped cache of recently used pages in front of the page map (a table walk
 * touches one page per level, DMA one or two). Words are little-endian:
 * on a little-endian host (every platform Node ships for but s390x) through a Uint32Array, elsewhere
 * through a DataView.
 */
import { PAGE_SIZE } from '../address/address.js';

const PAGE_MASK = PAGE_SIZE - 1;
const PAGE_WORDS = PAGE_SIZE / 4;
/** From this many words a copy is one native `set`; below, a loop is cheaper than the view it needs. */
const BULK_WORDS = 32;
// On a little-endian host both paths below give the same bytes, so mutants of this test are equivalent here.
// Stryker disable next-line all: see above
const LITTLE_ENDIAN_HOST = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** Pages carved from one ArrayBuffer: one allocation for many table pages or a buffer's worth. */
const SLAB_PAGES = 16;
/** Slots of the recent-page cache (a power of two): enough for the levels of a few walks and a DMA buffer. */
const RECENT_PAGES = 256;

/**
 * The recent-page slot of page `index`: its low bits folded with the bits above them, so pages a table or a
 * buffer apart (1 MiB, 2 MiB, 1 GiB strides) do not all share slot 0.
 */
function recentSlot(index: number): number {
  return (index ^ (index >>> 6) ^ (index >>> 12) ^ (index >>> 18)) & (RECENT_PAGES - 1);
}

/**
 * One allocated page. Word accesses (descriptors, queues) use `words`; the byte and DataView views are made
 * the first time a byte access or a big-endian host needs them.
 */
class Page {
  readonly words: Uint32Array;
  private byteView: Uint8Array | undefined;
  private dataView: DataView | undefined;

  constructor(buffer: ArrayBuffer, byteOffset: number) {
    this.words = new Uint32Array(buffer, byteOffset, PAGE_WORDS);
  }

  get bytes(): Uint8Array {
    this.byteView ??= new Uint8Array(this.words.buffer, this.words.byteOffset, PAGE_SIZE);
    return this.byteView;
  }

  get view(): DataView {
    this.dataView ??= new DataView(this.words.buffer, this.words.byteOffset, PAGE_SIZE);
    return this.dataView;
  }
}

export class SparseRam {
  readonly size: number;
  private readonly pages = new Map<number, Page>();
  /** Where new pages come from: the next unused page of the current slab. */
  private slab = new ArrayBuffer(0);
  private slabNext = SLAB_PAGES;
  /** The recent-page cache: slot {@link recentSlot} of a page index holds that index (-1: empty) and its page. */
  private readonly recentIndex = new Float64Array(RECENT_PAGES).fill(-1);
  private readonly recentPage: (Page | undefined)[] = new Array(RECENT_PAGES).fill(undefined);

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
    const page = this.page(Math.floor(offset / PAGE_SIZE));
    if (page === undefined) return 0;
    const at = offset & PAGE_MASK;
    // Stryker disable next-line all: the DataView path runs on big-endian hosts only; the CI host is little-endian
    return LITTLE_ENDIAN_HOST ? page.words[at >>> 2]! : page.view.getUint32(at, true);
  }

  /** Writes a little-endian 32-bit word; `offset` must be 4-byte aligned. */
  write32(offset: number, value: number): void {
    const page = this.pageForWrite(Math.floor(offset / PAGE_SIZE));
    const at = offset & PAGE_MASK;
    // Stryker disable next-line all: the DataView path runs on big-endian hosts only; the CI host is little-endian
    if (LITTLE_ENDIAN_HOST) page.words[at >>> 2] = value;
    // Stryker disable next-line all: the DataView path runs on big-endian hosts only; the CI host is little-endian
    else page.view.setUint32(at, value >>> 0, true);
  }

  /** Reads `count` little-endian words from `offset` (4-byte aligned) into `out` from `outOffset`. */
  readWords(offset: number, out: Uint32Array, outOffset: number, count: number): void {
    const start = (offset & PAGE_MASK) >>> 2;
    // A descriptor or a queue entry: within one page and short, so no chunking and no view.
    // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: the general loop below reads the same words (speed only)
    if (LITTLE_ENDIAN_HOST && count < BULK_WORDS && start + count <= PAGE_WORDS) {
      const page = this.page(Math.floor(offset / PAGE_SIZE));
      if (page === undefined) for (let i = 0; i < count; i++) out[outOffset + i] = 0;
      else {
        const words = page.words;
        // Stryker disable next-line ConditionalExpression,EqualityOperator: the loop copies the same two words (speed only)
        if (count === 2) {
          // One descriptor: every table walk's read, without the loop.
          out[outOffset] = words[start]!;
          out[outOffset + 1] = words[start + 1]!;
        } else for (let i = 0; i < count; i++) out[outOffset + i] = words[start + i]!;
      }
      return;
    }
    let done = 0;
    while (done < count) {
      const at = offset + done * 4;
      const first = (at & PAGE_MASK) >>> 2;
      const n = Math.min(PAGE_WORDS - first, count - done);
      const page = this.page(Math.floor(at / PAGE_SIZE));
      if (page === undefined) out.fill(0, outOffset + done, outOffset + done + n);
      // Stryker disable next-line all: the DataView path runs on big-endian hosts only; the CI host is little-endian
      else if (!LITTLE_ENDIAN_HOST)
        // Stryker disable next-line all: the DataView path runs on big-endian hosts only; the CI host is little-endian
        for (let i = 0; i < n; i++) out[outOffset + done + i] = page.view.getUint32((first + i) * 4, true);
      // A table page or a queue's worth is one native copy; a descriptor or two is cheaper as a loop.
      // Stryker disable next-line ConditionalExpression,EqualityOperator: both copies give the same words (speed only)
      else if (n >= BULK_WORDS) out.set(page.words.subarray(first, first + n), outOffset + done);
      else for (let i = 0; i < n; i++) out[outOffset + done + i] = page.words[first + i]!;
      done += n;
    }
  }

  /** Writes `count` words from `words` at `inOffset` as little-endian words at `offset` (4-byte aligned). */
  writeWords(offset: number, words: ArrayLike<number>, inOffset: number, count: number): void {
    let done = 0;
    while (done < count) {
      const at = offset + done * 4;
      const first = (at & PAGE_MASK) >>> 2;
      const n = Math.min(PAGE_WORDS - first, count - done);
      const page = this.pageForWrite(Math.floor(at / PAGE_SIZE));
      const from = inOffset + done;
      // Stryker disable next-line all: the DataView path runs on big-endian hosts only; the CI host is little-endian
      if (!LITTLE_ENDIAN_HOST)
        // Stryker disable next-line all: the DataView path runs on big-endian hosts only; the CI host is little-endian
        for (let i = 0; i < n; i++) page.view.setUint32((first + i) * 4, words[from + i]! >>> 0, true);
      // A copy from a typed array is one native set when long (subarray needs a typed array: a plain one loops).
      // Stryker disable next-line ConditionalExpression,EqualityOperator: both copies store the same words (speed only)
      else if (n >= BULK_WORDS && words instanceof Uint32Array)
        page.words.set(words.subarray(from, from + n), first);
      else for (let i = 0; i < n; i++) page.words[first + i] = words[from + i]!;
      done += n;
    }
  }

  read8(offset: number): number {
    const page = this.page(Math.floor(offset / PAGE_SIZE));
    return page === undefined ? 0 : page.bytes[offset & PAGE_MASK]!;
  }

  write8(offset: number, value: number): void {
    this.pageForWrite(Math.floor(offset / PAGE_SIZE)).bytes[offset & PAGE_MASK] = value;
  }

  /** Copies `length` bytes starting at `offset` into `out` at `outOffset`. */
  readBytes(offset: number, out: Uint8Array, outOffset = 0, length = out.length - outOffset): void {
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const inPage = at & PAGE_MASK;
      const chunk = Math.min(PAGE_SIZE - inPage, length - done);
      const page = this.page(Math.floor(at / PAGE_SIZE));
      if (page === undefined) out.fill(0, outOffset + done, outOffset + done + chunk);
      else out.set(page.bytes.subarray(inPage, inPage + chunk), outOffset + done);
      done += chunk;
    }
  }

  /** Copies `data` into RAM at `offset`, allocating pages as needed. */
  writeBytes(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const at = offset + done;
      const inPage = at & PAGE_MASK;
      // Stryker disable next-line ArithmeticOperator: a longer chunk is clamped by subarray to the same bytes and ends the loop
      const chunk = Math.min(PAGE_SIZE - inPage, data.length - done);
      const page = this.pageForWrite(Math.floor(at / PAGE_SIZE));
      // Data within one page (a descriptor, most DMA) is copied without a view of it.
      // Stryker disable next-line ConditionalExpression: a view of all of `data` is `data`
      page.bytes.set(chunk === data.length ? data : data.subarray(done, done + chunk), inPage);
      done += chunk;
    }
  }

  /**
   * Zeroes a page-aligned range by dropping its pages: what a freshly allocated zeroed page looks like,
   * without allocating anything.
   */
  discard(offset: number, length: number): void {
    for (let p = Math.floor(offset / PAGE_SIZE); p < Math.ceil((offset + length) / PAGE_SIZE); p++) {
      this.pages.delete(p);
      const slot = recentSlot(p);
      if (this.recentIndex[slot] === p) this.forgetSlot(slot);
    }
  }

  /** Drops every page (the RAM reads as zeros again) and returns the bytes released. */
  clear(): number {
    const released = this.allocatedBytes;
    this.pages.clear();
    this.recentIndex.fill(-1);
    this.recentPage.fill(undefined);
    return released;
  }

  /** The page at `index`, if it was ever written. */
  private page(index: number): Page | undefined {
    // The cache only saves a Map lookup; a miss is not remembered (pageForWrite fills the slot).
    const slot = recentSlot(index);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: see above
    if (this.recentIndex[slot] === index) return this.recentPage[slot];
    const page = this.pages.get(index);
    // Stryker disable next-line ConditionalExpression,BlockStatement: see above
    if (page !== undefined) this.remember(slot, index, page);
    return page;
  }

  private pageForWrite(index: number): Page {
    let page = this.page(index);
    if (page === undefined) {
      if (this.slabNext === SLAB_PAGES) {
        this.slab = new ArrayBuffer(SLAB_PAGES * PAGE_SIZE);
        this.slabNext = 0;
      }
      page = new Page(this.slab, this.slabNext++ * PAGE_SIZE);
      this.pages.set(index, page);
      this.remember(recentSlot(index), index, page);
    }
    return page;
  }

  private remember(slot: number, index: number, page: Page): void {
    this.recentIndex[slot] = index;
    this.recentPage[slot] = page;
  }

  private forgetSlot(slot: number): void {
    this.recentIndex[slot] = -1;
    this.recentPage[slot] = undefined;
  }
}
