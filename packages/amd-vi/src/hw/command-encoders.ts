/**
 * The commands a host driver queues, built as Linux `drivers/iommu/amd/iommu.c` builds them
 * (build_completion_wait, build_inv_dte, build_inv_iommu_pages with build_inv_address, build_inv_iotlb_pages,
 * build_complete_ppr, build_inv_all, build_inv_irt), for the AMD IOMMU Specification (publication 48882
 * rev 3.x) §2.4 "Commands". Each returns the decoded command; `encodeCommand` (commands.ts) writes it.
 *
 * What Linux fixes and callers therefore cannot choose: a completion wait always stores (S) and never
 * interrupts or flushes; INVALIDATE_IOMMU_PAGES always sets PDE; INVALIDATE_IOTLB_PAGES writes the DeviceID
 * as QueueID, only PASID bits 15:0 and Type 0; the PASID of page and PPR commands is written only with GN;
 * COMPLETE_PPR_REQUEST keeps the tag's low 9 bits (the PRG index) and the status's low 4.
 */
import type {
  CompletePprRequestCommand,
  CompletionWaitCommand,
  InvalidateDevtabEntryCommand,
  InvalidateInterruptTableCommand,
  InvalidateIommuAllCommand,
  InvalidateIommuPagesCommand,
  InvalidateIotlbPagesCommand,
} from './commands.js';

const PAGE = 4096;
const TWO_32 = 2 ** 32;
const TWO_52 = 2 ** 52;

/**
 * Linux's CMD_INV_IOMMU_ALL_PAGES_ADDRESS as an encoded address (S = 1, no clear bit in 62:12): every page.
 * Exact as a number (bits 62:12 set, 51 significant bits).
 */
export const ALL_PAGES_ADDRESS = 2 ** 63 - PAGE;

/**
 * The size a caller passes to invalidate everything, in place of Linux's CMD_INV_IOMMU_ALL_PAGES_ADDRESS
 * (2^63 − 1, which a number cannot hold): any range reaching past bit 51 is encoded as every page.
 */
export const WHOLE_ADDRESS_SPACE = 2 ** 64;

/** The most significant set bit of a value below 2^52 (non-zero), exact on numbers. */
function msb(value: number): number {
  const hi = Math.floor(value / TWO_32);
  return hi !== 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(value >>> 0);
}

/**
 * build_inv_address: the address field and S for invalidating `size` bytes from `address`. One page: the
 * page's address, S = 0. More: S = 1 and every address bit below the most significant bit in which the first
 * and last byte differ set, so the lowest clear bit gives the smallest naturally aligned block covering the
 * range (decodeInvalidationRange); a range whose ends differ at bit 52 or above is every page. `address` is
 * an integer below 2^64 (bits above 51 are kept, as Linux keeps sign-extended guest addresses); `size` a
 * positive integer, up to `WHOLE_ADDRESS_SPACE`.
 */
export function encodeInvalidationRange(address: number, size: number): { address: number; s: boolean } {
  if (!Number.isInteger(address) || address < 0 || address >= 2 ** 64)
    throw new RangeError(`invalidation address ${address} is not an integer below 2^64`);
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`invalidation size ${size} is not positive`);
  const inPage = address % PAGE;
  if (inPage + size <= PAGE) return { address: address - inPage, s: false };
  // Bits 63:52 and 51:0 apart, each exact: the range stays within one 2^52 block or needs everything.
  const top = Math.floor(address / TWO_52) * TWO_52;
  const low = address - top;
  if (size - 1 >= TWO_52 - low) return { address: ALL_PAGES_ADDRESS, s: true };
  const end = low + size - 1;
  const bit = msb((Math.floor(low / TWO_32) ^ Math.floor(end / TWO_32)) * TWO_32 + ((low ^ end) >>> 0));
  const block = 2 ** bit;
  // The first byte has bit `bit` clear; set everything below it, then clear bits 11:0.
  return { address: top + (low - (low % block)) + block - PAGE, s: true };
}

/** build_completion_wait: store `storeData` (two 32-bit halves) at the 8-byte aligned `storeAddress`. */
export function buildCompletionWait(
  storeAddress: number,
  storeDataLo: number,
  storeDataHi = 0,
): CompletionWaitCommand {
  return {
    op: 'completion-wait',
    store: true,
    interrupt: false,
    flush: false,
    storeAddress,
    storeDataLo,
    storeDataHi,
  };
}

/** build_inv_dte. */
export function buildInvalidateDevtabEntry(deviceId: number): InvalidateDevtabEntryCommand {
  return { op: 'invalidate-devtab-entry', deviceId };
}

/** build_inv_iommu_pages: PDE always set, the PASID only with GN. */
export function buildInvalidateIommuPages(
  address: number,
  size: number,
  domainId: number,
  pasid: number,
  gn: boolean,
): InvalidateIommuPagesCommand {
  const range = encodeInvalidationRange(address, size);
  return {
    op: 'invalidate-iommu-pages',
    pasid: gn ? pasid : 0,
    domainId,
    s: range.s,
    pde: true,
    gn,
    address: range.address,
  };
}

/**
 * build_inv_iotlb_pages: MaxPend is the device's ATS queue depth (low 8 bits), QueueID the DeviceID, and
 * with GN the PASID's bits 15:0 (Linux has no PASID[19:16] piece).
 */
export function buildInvalidateIotlbPages(
  deviceId: number,
  queueDepth: number,
  address: number,
  size: number,
  pasid: number,
  gn: boolean,
): InvalidateIotlbPagesCommand {
  const range = encodeInvalidationRange(address, size);
  return {
    op: 'invalidate-iotlb-pages',
    deviceId,
    maxPend: queueDepth & 0xff,
    queueId: deviceId,
    pasid: gn ? pasid & 0xffff : 0,
    s: range.s,
    gn,
    type: 0,
    address: range.address,
  };
}

/** build_complete_ppr: the PRG response `status` for the request logged with `tag`. */
export function buildCompletePpr(
  deviceId: number,
  pasid: number,
  status: number,
  tag: number,
  gn: boolean,
): CompletePprRequestCommand {
  return {
    op: 'complete-ppr-request',
    deviceId,
    pasid: gn ? pasid : 0,
    gn,
    tag: tag & 0x1ff,
    status: status & 0xf,
  };
}

/** build_inv_all (the unit needs EFR.IASup; Linux checks FEATURE_IA first). */
export function buildInvalidateIommuAll(): InvalidateIommuAllCommand {
  return { op: 'invalidate-iommu-all' };
}

/** build_inv_irt. */
export function buildInvalidateInterruptTable(deviceId: number): InvalidateInterruptTableCommand {
  return { op: 'invalidate-interrupt-table', deviceId };
}
