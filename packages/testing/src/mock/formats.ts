/**
 * In-memory formats of the mock IOMMU: the device table entry, the page table entry and the fault record.
 * Everything is little-endian 32-bit words; addresses are 4 KiB aligned and below 2^52.
 */
import { join64ToNumber, numberHi32 } from '@iommukit/core';

/** Device table entry: 16 bytes (4 words) indexed by stream ID. */
export const DTE_WORDS = 4;
export const DTE_BYTES = 16;
export const DTE_V = 1 << 0;
/** w0[2:1] MODE. */
export const MODE_ABORT = 0;
export const MODE_BYPASS = 1;
export const MODE_TRANSLATE = 2;
/** w0[31:16] domain ID; w2/w3 page table root (bits 51:12). */

export interface Dte {
  readonly valid: boolean;
  readonly mode: number;
  readonly domainId: number;
  readonly rootPfn: number;
}

export function decodeDte(w: ArrayLike<number>): Dte {
  const w0 = w[0]! >>> 0;
  return {
    valid: (w0 & DTE_V) !== 0,
    mode: (w0 >>> 1) & 0b11,
    domainId: w0 >>> 16,
    rootPfn: Math.floor(join64ToNumber(w[2]! & 0xffff_f000, w[3]! & 0x000f_ffff) / 4096),
  };
}

export function encodeDte(dte: Dte): Uint32Array {
  const root = dte.rootPfn * 4096;
  return Uint32Array.of(
    (dte.valid ? DTE_V : 0) | (dte.mode << 1) | (dte.domainId << 16),
    0,
    root >>> 0,
    numberHi32(root),
  );
}

/**
 * Page table: 3 levels of 512 8-byte entries, 4 KiB pages, 39-bit IOVA. Bits: [0] P present,
 * [1] R, [2] W, [6] D dirty (set by hardware on write when dirty tracking is on), [51:12] address
 * (next table, or the page at the last level).
 */
export const PT_LEVELS = 3;
export const PT_IOVA_BITS = 39;
export const PTE_P = 1 << 0;
export const PTE_R = 1 << 1;
export const PTE_W = 1 << 2;
export const PTE_D = 1 << 6;

export function ptIndex(iovaPfn: number, level: number): number {
  return Math.floor(iovaPfn / 2 ** (9 * (PT_LEVELS - 1 - level))) % 512;
}

export function pteAddressPfn(lo: number, hi: number): number {
  return Math.floor(join64ToNumber(lo & 0xffff_f000, hi & 0x000f_ffff) / 4096);
}

export function pteWords(pfn: number, flags: number): [number, number] {
  const addr = pfn * 4096;
  return [((addr >>> 0) | flags) >>> 0, numberHi32(addr)];
}

/** Fault record: 32 bytes. w0[7:0] code, w0[8] write, w0[9] PASID valid; w1 stream; w2 PASID; w4/w5 IOVA. */
export const FAULT_WORDS = 8;
export const FAULT_BYTES = 32;
export const FAULT_WRITE = 1 << 8;
export const FAULT_PASID_VALID = 1 << 9;

/** Fault codes, with the vendor-neutral kind each one is. */
export const FAULT_CODES = {
  1: { code: 'MOCK_BAD_SID', kind: 'bad-stream' },
  2: { code: 'MOCK_DTE_INVALID', kind: 'bad-config' },
  3: { code: 'MOCK_ABORT', kind: 'config-abort' },
  4: { code: 'MOCK_NOT_PRESENT', kind: 'translation' },
  5: { code: 'MOCK_PERMISSION', kind: 'permission' },
  6: { code: 'MOCK_WALK_ABORT', kind: 'walk-abort' },
  7: { code: 'MOCK_ADDR_SIZE', kind: 'address-size' },
  8: { code: 'MOCK_BAD_PASID', kind: 'bad-pasid' },
  9: { code: 'MOCK_DTE_FETCH_ABORT', kind: 'walk-abort' },
} as const;
export type FaultCode = keyof typeof FAULT_CODES;
