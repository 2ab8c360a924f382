/**
 * The model's shortcut for repeated translations — not a structure of any IOMMU. A translation that hit
 * in every cache it looked in (the STE, CD and TLB of an SMMU; a VT-d context, PASID and IOTLB entry…)
 * is remembered with the set and slot of each hit. The same request again, while none of those caches has
 * changed content, would find the same entries and reach the same result, so the memo replays the hits —
 * the same hit counts, the same recency updates, hence the same later replacement choices — and returns
 * the result without the lookups. Nothing a driver or a test can observe differs; the translation costs
 * a few comparisons instead of three cache searches.
 *
 * A request is four numbers (for example StreamID, PASID, page number, access) and a context object whose
 * identity stands for the register state the translation read (a new object whenever it changes). Entries
 * are direct-mapped: a new request takes its line from the one before.
 */
import { IommufdError } from '../errors/iommufd-error.js';
import type { SetAssociativeCache } from './set-associative-cache.js';

const KEYS = 4;

export class HitMemo<R> {
  private readonly mask: number;
  private readonly keys: Float64Array;
  /** The sum of the caches' versions when the line was recorded: versions only grow, so an equal sum means none changed. */
  private readonly versions: Float64Array;
  /** Per line and cache: the set and slot its hit was in, or -1 for a cache the translation did not use. */
  private readonly sets: Int32Array;
  private readonly slots: Int32Array;
  private readonly contexts: (object | undefined)[];
  private readonly results: (R | undefined)[];

  /**
   * @param lines a power of two
   * @param caches every cache a translation can look in, in a fixed order
   */
  constructor(
    lines: number,
    private readonly caches: readonly SetAssociativeCache[],
  ) {
    if (!Number.isSafeInteger(lines) || lines <= 0 || (lines & (lines - 1)) !== 0 || lines > 2 ** 20)
      throw new IommufdError('EINVAL', `a hit memo needs a power of two of lines up to 2^20 (got ${lines})`);
    this.mask = lines - 1;
    this.keys = new Float64Array(lines * KEYS).fill(Number.NaN);
    this.versions = new Float64Array(lines);
    this.sets = new Int32Array(lines * caches.length);
    this.slots = new Int32Array(lines * caches.length);
    this.contexts = new Array(lines).fill(undefined);
    this.results = new Array(lines).fill(undefined);
  }

  /** The remembered result of this request, its cache hits replayed; undefined when there is none or it is stale. */
  get(k0: number, k1: number, k2: number, k3: number, context: object): R | undefined {
    const line = this.line(k0, k1, k2);
    const k = line * KEYS;
    const keys = this.keys;
    if (keys[k] !== k0 || keys[k + 1] !== k1 || keys[k + 2] !== k2 || keys[k + 3] !== k3) return undefined;
    if (this.contexts[line] !== context || this.versions[line] !== this.versionSum()) return undefined;
    const caches = this.caches;
    const base = line * caches.length;
    for (let c = 0; c < caches.length; c++) {
      const slot = this.slots[base + c]!;
      if (slot >= 0) caches[c]!.replayHit(this.sets[base + c]!, slot);
    }
    return this.results[line];
  }

  /**
   * Remembers `result` for the request whose translation just ran: `used` has bit c set for each cache c
   * it looked in, and each of those must have hit (its last lookup); otherwise nothing is remembered.
   */
  record(k0: number, k1: number, k2: number, k3: number, context: object, used: number, result: R): void {
    const caches = this.caches;
    const line = this.line(k0, k1, k2);
    const base = line * caches.length;
    for (let c = 0; c < caches.length; c++) {
      const cache = caches[c]!;
      const inUse = ((used >>> c) & 1) === 1;
      if (inUse && cache.lastSlot < 0) return;
      this.sets[base + c] = inUse ? cache.lastSet : -1;
      this.slots[base + c] = inUse ? cache.lastSlot : -1;
    }
    const k = line * KEYS;
    this.keys[k] = k0;
    this.keys[k + 1] = k1;
    this.keys[k + 2] = k2;
    this.keys[k + 3] = k3;
    this.versions[line] = this.versionSum();
    this.contexts[line] = context;
    this.results[line] = result;
  }

  private line(k0: number, k1: number, k2: number): number {
    // The page number varies fastest, then the stream; `>>> 0` keeps the low 32 bits of each exactly.
    return ((k2 >>> 0) + Math.imul(k0 >>> 0, 0x9e37_79b1) + (k1 | 0)) & this.mask;
  }

  private versionSum(): number {
    let sum = 0;
    for (let c = 0; c < this.caches.length; c++) sum += this.caches[c]!.version;
    return sum;
  }
}
