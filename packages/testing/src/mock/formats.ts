/**
 * In-memory formats of the mock IOMMU: the context entry (used both for device table entries and PASID
 * table entries), the page table entry, the fault record and the page request record. Everything is
 * little-endian 32-bit words; addresses are 4 KiB aligned and below 2^52. packages/testing/README.md is
 * the specification.
 */
import { join64ToNumber, numberHi32 } from '@iommukit/core';

/** Context entry: 32 bytes (8 words). Device table entries are indexed by stream ID, PASID entries by PASID. */
export const CTX_WORDS = 8;
export const CTX_BYTES = 32;
/** w0 bits. */
export const CTX_V = 1 << 0;
/** w0[2:1] MODE. */
export const MODE_ABORT = 0;
export const MODE_BYPASS = 1;
export const MODE_TRANSLATE = 2;
export const MODE_NESTED = 3;
/** w0[3]: hardware dirty-bit updates enabled. */
export const CTX_HD = 1 << 3;

export interface ContextEntry {
  readonly valid: boolean;
  readonly mode: number;
  readonly dirtyUpdates: boolean;
  /** w0[31:16]: domain ID tagging the IOTLB (the stage-2 domain's when nested). */
  readonly domainId: number;
  /** w1[4:0] (device table entries only): PASID table size as log2 entries; 0 = no PASID table. */
  readonly pasidLog2: number;
  /** w1[31:16] (nested): stage-1 tag, the nested domain's ID. */
  readonly s1Tag: number;
  /** w2/w3: page table root (translate) or stage-2 root (nested), as a frame number. */
  readonly rootPfn: number;
  /** w4/w5 (device table entries only): PASID table base frame. */
  readonly pasidTablePfn: number;
  /** w6/w7 (nested): stage-1 root as an intermediate (guest-physical) frame number. */
  readonly s1RootPfn: number;
}

export const EMPTY_CONTEXT: ContextEntry = {
  valid: false,
  mode: MODE_ABORT,
  dirtyUpdates: false,
  domainId: 0,
  pasidLog2: 0,
  s1Tag: 0,
  rootPfn: 0,
  pasidTablePfn: 0,
  s1RootPfn: 0,
};

const pfnOf = (lo: number, hi: number) =>
  Math.floor(join64ToNumber(lo & 0xffff_f000, hi & 0x000f_ffff) / 4096);

export function decodeContext(w: ArrayLike<number>): ContextEntry {
  const w0 = w[0]! >>> 0;
  const w1 = w[1]! >>> 0;
  return {
    valid: (w0 & CTX_V) !== 0,
    mode: (w0 >>> 1) & 0b11,
    dirtyUpdates: (w0 & CTX_HD) !== 0,
    domainId: w0 >>> 16,
    pasidLog2: w1 & 0x1f,
    s1Tag: w1 >>> 16,
    rootPfn: pfnOf(w[2]!, w[3]!),
    pasidTablePfn: pfnOf(w[4]!, w[5]!),
    s1RootPfn: pfnOf(w[6]!, w[7]!),
  };
}

export function encodeContext(e: ContextEntry): Uint32Array {
  const addr = (pfn: number) => [(pfn * 4096) >>> 0, numberHi32(pfn * 4096)];
  return Uint32Array.of(
    (e.valid ? CTX_V : 0) | (e.mode << 1) | (e.dirtyUpdates ? CTX_HD : 0) | (e.domainId << 16),
    (e.pasidLog2 & 0x1f) | (e.s1Tag << 16),
    ...addr(e.rootPfn),
    ...addr(e.pasidTablePfn),
    ...addr(e.s1RootPfn),
  );
}

/**
 * Page table (stage 1, stage 2 and single-stage alike): 3 levels of 512 8-byte entries, 4 KiB pages,
 * 39-bit input. Bits: [0] P present, [1] R, [2] W, [6] D dirty, [51:12] address (next table or page).
 */
export const PT_LEVELS = 3;
export const PT_IOVA_BITS = 39;
export const PTE_P = 1 << 0;
export const PTE_R = 1 << 1;
export const PTE_W = 1 << 2;
export const PTE_D = 1 << 6;

/** Page numbers one entry covers at each level, 512^(PT_LEVELS − 1 − level): a table, not a power per lookup. */
const PAGES_PER_ENTRY = Array.from({ length: PT_LEVELS }, (_, level) => 512 ** (PT_LEVELS - 1 - level));

export function ptIndex(iovaPfn: number, level: number): number {
  return Math.floor(iovaPfn / PAGES_PER_ENTRY[level]!) % 512;
}

export function pteAddressPfn(lo: number, hi: number): number {
  return pfnOf(lo, hi);
}

export function pteWords(pfn: number, flags: number): [number, number] {
  const addr = pfn * 4096;
  return [((addr >>> 0) | flags) >>> 0, numberHi32(addr)];
}

/**
 * Fault record: 32 bytes. w0[7:0] code, [8] write, [9] PASID valid, [10] stage 2; w1 stream ID;
 * w2 PASID; w3 the interrupt remapping entry index (interrupt faults); w4/w5 IOVA (for a stage-2 fault
 * of a nested walk: still the input IOVA; for an interrupt fault, the MSI address).
 */
export const FAULT_WORDS = 8;
export const FAULT_BYTES = 32;
export const FAULT_WRITE = 1 << 8;
export const FAULT_PASID_VALID = 1 << 9;
export const FAULT_STAGE2 = 1 << 10;

/** Fault codes, with the vendor-neutral kind each one is. */
export const FAULT_CODES = {
  1: { code: 'MOCK_BAD_SID', kind: 'bad-stream' },
  2: { code: 'MOCK_CTX_INVALID', kind: 'bad-config' },
  3: { code: 'MOCK_ABORT', kind: 'config-abort' },
  4: { code: 'MOCK_NOT_PRESENT', kind: 'translation' },
  5: { code: 'MOCK_PERMISSION', kind: 'permission' },
  6: { code: 'MOCK_WALK_ABORT', kind: 'walk-abort' },
  7: { code: 'MOCK_ADDR_SIZE', kind: 'address-size' },
  8: { code: 'MOCK_BAD_PASID', kind: 'bad-pasid' },
  9: { code: 'MOCK_CTX_FETCH_ABORT', kind: 'walk-abort' },
  // Interrupt requests (w3 of the record holds the entry index; the IOVA words, the MSI address).
  10: { code: 'MOCK_IR_INDEX', kind: 'interrupt' },
  11: { code: 'MOCK_IR_NOT_PRESENT', kind: 'interrupt' },
  12: { code: 'MOCK_IR_SOURCE', kind: 'interrupt' },
  13: { code: 'MOCK_IR_COMPAT', kind: 'interrupt' },
  14: { code: 'MOCK_IR_RESERVED', kind: 'interrupt' },
  15: { code: 'MOCK_IR_FETCH_ABORT', kind: 'interrupt' },
} as const;
export type FaultCode = keyof typeof FAULT_CODES;

/**
 * Page request record: 32 bytes. w0 stream ID; w1 PASID; w2[8:0] group index, [9] last, [10] PASID
 * valid, [11] read, [12] write, [13] exec, [14] privileged; w4/w5 page address.
 */
export const PRQ_WORDS = 8;
export const PRQ_BYTES = 32;
export const PRQ_LAST = 1 << 9;
export const PRQ_PASID_VALID = 1 << 10;
export const PRQ_READ = 1 << 11;
export const PRQ_WRITE = 1 << 12;
export const PRQ_EXEC = 1 << 13;
export const PRQ_PRIV = 1 << 14;
