/**
 * The ranges invalidation commands cover (IHI 0070 §4.3.2, §4.4.1.1, §4.5.1): the StreamIDs of a
 * CMD_CFGI_STE_RANGE, the addresses of a range TLBI (TG, NUM, SCALE, TTL) and the splitter that covers a
 * range with the fewest TLBIs as Linux does, and the aligned span of a CMD_ATC_INV.
 */
import { IommufdError, toHex } from '@iommukit/core';
import type { VmsaGranule } from '@iommukit/pagetables';
import { ATC_INV_SIZE_ALL, TLBI_TG, type TlbiAddressFields } from './command-set.js';

/** A run of 4 KiB pages. */
export interface PageRange {
  readonly firstPage: number;
  readonly pageCount: number;
}

/** StreamIDs a CMD_CFGI_STE_RANGE covers: an aligned block of 2^(Range + 1) (§4.3.2). */
export function cfgiSteRangeStreamIds(streamId: number, range: number): { first: number; count: number } {
  const count = 2 ** (range + 1);
  return { first: Math.floor(streamId / count) * count, count };
}

/** The granule a TLBI TG selects (1 → 4K, 2 → 16K, 3 → 64K); 0 means no range. */
export function tlbiGranule(tg: number): VmsaGranule | undefined {
  return tg === TLBI_TG.SIZE_4K
    ? 4096
    : tg === TLBI_TG.SIZE_16K
      ? 16384
      : tg === TLBI_TG.SIZE_64K
        ? 65536
        : undefined;
}

export function tlbiTg(granule: VmsaGranule): number {
  return granule === 4096 ? TLBI_TG.SIZE_4K : granule === 16384 ? TLBI_TG.SIZE_16K : TLBI_TG.SIZE_64K;
}

/**
 * The addresses a range TLBI covers (§4.4.1.1): Range = (NUM + 1) · 2^SCALE · granule, starting at the
 * Address, not aligned. `undefined` when TG == 0 (a single address, any entry size).
 */
export function tlbiRangePages(
  fields: Pick<TlbiAddressFields, 'addressPage' | 'num' | 'scale' | 'tg'>,
): PageRange | undefined {
  const granule = tlbiGranule(fields.tg);
  if (granule === undefined) return undefined;
  return {
    firstPage: fields.addressPage,
    pageCount: (fields.num + 1) * 2 ** fields.scale * (granule / 4096),
  };
}

/** What to invalidate: a range of IOVA pages, the table's granule, and the size of its leaf entries. */
export interface TlbiRangeRequest {
  /** First 4 KiB page; aligned to `granule` (and to `leafSize` when `leaf`). */
  readonly startPage: number;
  /** Length in 4 KiB pages; a multiple of the granule. */
  readonly pageCount: number;
  readonly granule: VmsaGranule;
  /** Only last-level entries changed (Leaf == 1; the TTL hint is set from `leafSize`). */
  readonly leaf: boolean;
  /** Bytes mapped by each leaf entry in the range (a page or block size); default `granule`. */
  readonly leafSize?: number;
}

/** The address and range fields of one TLBI the splitter emits (merge with VMID/ASID and Leaf). */
export type TlbiRangeFields = Pick<TlbiAddressFields, 'addressPage' | 'num' | 'scale' | 'tg' | 'ttl'>;

function lowestSetBit(value: number): number {
  let bit = 0;
  while (Math.floor(value / 2 ** bit) % 2 === 0) bit++;
  return bit;
}

/** Largest TLBI SCALE: the field is 5 bits (§4.4.1.1). */
export const TLBI_SCALE_MAX = 31;
/** Largest TLBI NUM + 1: NUM is 5 bits (§4.4.1.1). */
const TLBI_CHUNKS_MAX = 32;

function badRange(message: string, request: TlbiRangeRequest): IommufdError {
  return new IommufdError('EINVAL', message, {
    startPage: request.startPage,
    pageCount: request.pageCount,
    granule: request.granule,
    leafSize: request.leafSize,
  });
}

/**
 * Splits a range into TLBI address/range fields the way Linux's __arm_smmu_tlb_inv_range does. With range
 * invalidation, each command takes the lowest 5-bit window of the remaining granule count (SCALE = its
 * lowest set bit, NUM + 1 = the window), which is the fewest commands for the range; a count whose lowest
 * set bit is above 31 is taken in chunks of 2^31 granules (SCALE = 31, up to 32 of them: 2^36 granules
 * per command), since SCALE is 5 bits (§4.4.1.1) — so a freed 16K level-1 table (2^33 granules) is one
 * command. Without range invalidation, one non-range command per leaf entry. One deviation: for a non-leaf
 * invalidation whose count is 1 mod 32, Linux adds a granule (NUM == 0, SCALE == 0, TTL == 0 is reserved)
 * and so invalidates one granule past the end; here that granule gets a non-range (TG == 0) command
 * instead — as many commands, exact range. Throws `EINVAL` for a negative, fractional, empty or misaligned
 * range, or a leaf size that is not a page or block size of the granule.
 */
export function splitTlbiRange(request: TlbiRangeRequest, rangeInvalidation: boolean): TlbiRangeFields[] {
  const { startPage, pageCount, granule, leaf } = request;
  const leafSize = request.leafSize ?? granule;
  if (
    !Number.isSafeInteger(startPage) ||
    startPage < 0 ||
    !Number.isSafeInteger(pageCount) ||
    pageCount <= 0
  ) {
    throw badRange(
      // Stryker disable next-line StringLiteral: the wording of the error message
      `range of ${pageCount} pages at page ${startPage} is not a non-empty range of whole pages`,
      request,
    );
  }
  const granulePages = granule / 4096;
  const leafPages = leafSize / 4096;
  // A page or block size: granule · 2^(k · (granule shift − 3)), at level 3 − k (TTL = level).
  const bitsPerLevel = Math.log2(granule) - 3;
  const levelsUp = (Math.log2(leafSize) - Math.log2(granule)) / bitsPerLevel;
  const level = 3 - levelsUp;
  // Levels holding leaves without FEAT_LPA2: 4K 1–3, 16K 2–3, 64K 1–3 (level 1 only with 52-bit PAs).
  if (!Number.isInteger(levelsUp) || level > 3 || level < (granule === 16384 ? 2 : 1)) {
    throw badRange(
      // Stryker disable next-line ArithmeticOperator: the wording of the error message
      `leaf size ${leafSize} is not a page or block size of the ${granule / 1024}K granule`,
      request,
    );
  }
  const ttl = leaf ? level : 0;
  const step = leaf || !rangeInvalidation ? leafPages : granulePages;
  if (startPage % step !== 0 || pageCount % step !== 0) {
    throw badRange(
      `range of ${pageCount} pages at page ${toHex(startPage)} is not aligned to ${step * 4}K`,
      request,
    );
  }
  const out: TlbiRangeFields[] = [];
  if (!rangeInvalidation) {
    for (let page = startPage; page < startPage + pageCount; page += leafPages) {
      out.push({ addressPage: page, num: 0, scale: 0, tg: TLBI_TG.NONE, ttl: 0 });
    }
    return out;
  }
  const tg = tlbiTg(granule);
  let page = startPage;
  let remaining = pageCount / granulePages;
  if (ttl === 0 && remaining % 32 === 1) {
    out.push({ addressPage: page, num: 0, scale: 0, tg: TLBI_TG.NONE, ttl: 0 });
    page += granulePages;
    remaining -= 1;
  }
  while (remaining > 0) {
    const scale = Math.min(lowestSetBit(remaining), TLBI_SCALE_MAX);
    // Below SCALE 31 the window is odd (SCALE is its lowest set bit); at 31 it may be 0: take 32 chunks.
    const chunks = Math.floor(remaining / 2 ** scale) % TLBI_CHUNKS_MAX || TLBI_CHUNKS_MAX;
    out.push({ addressPage: page, num: chunks - 1, scale, tg, ttl });
    page += chunks * 2 ** scale * granulePages;
    remaining -= chunks * 2 ** scale;
  }
  return out;
}

/** Index of the most significant set bit plus one (Linux fls) of `a XOR b`, for numbers below 2^53. */
function flsXor(a: number, b: number): number {
  const hi = (Math.floor(a / 2 ** 32) ^ Math.floor(b / 2 ** 32)) >>> 0;
  if (hi !== 0) return 64 - Math.clz32(hi);
  const lo = ((a >>> 0) ^ (b >>> 0)) >>> 0;
  return 32 - Math.clz32(lo);
}

/**
 * The CMD_ATC_INV span covering 4 KiB pages [firstPage, lastPage] (§4.5.1; Linux arm_smmu_atc_inv_to_cmd):
 * the grain is always 4 KiB and the span is the smallest aligned power of two holding both ends,
 * log2span = fls(firstPage ^ lastPage). Pages [7, 10] become [0, 15] (Size 4).
 */
export function atcInvSpan(firstPage: number, lastPage: number): { addressPage: number; size: number } {
  const size = flsXor(firstPage, lastPage);
  return { addressPage: Math.floor(firstPage / 2 ** size) * 2 ** size, size };
}

/** The pages a CMD_ATC_INV invalidates: Address aligned to 2^Size pages; Size ≥ 52 is everything. */
export function atcInvPages(fields: { readonly addressPage: number; readonly size: number }): PageRange {
  // Stryker disable next-line EqualityOperator: Size 52 aligns any 52-bit page number down to 0, the same range
  if (fields.size >= ATC_INV_SIZE_ALL) return { firstPage: 0, pageCount: 2 ** ATC_INV_SIZE_ALL };
  const pageCount = 2 ** fields.size;
  return { firstPage: Math.floor(fields.addressPage / pageCount) * pageCount, pageCount };
}
