/**
 * The page request descriptor (VT-d specification §7.5.1): the 32-byte record the unit writes into the page
 * request queue at PQA_REG for each PCIe page request (PRI) it receives, and the response codes software
 * returns in a page group response descriptor (§7.7, inv-descriptors.ts).
 *
 * Layout (absolute bits, 64·qword + bit): type 7:0, PASID present 8, private data present 9, RID 31:16,
 * PASID 51:32, execute 52, privileged 53; read 64, write 65, LPIG 66, PRG index 75:67, address 127:76;
 * private data 255:128. Sources: Linux intel/prq.c `struct page_req_dsc` (older kernels, e.g. 5.x svm.c,
 * also decode bit 9 and the private data; current ones keep bits 15:9 reserved and ignore qwords 2–3),
 * QEMU intel_iommu_internal.h VTD_PRD_* (type 1).
 */
import {
  checkFieldAddress,
  checkFieldValue,
  entryAddress,
  entryField,
  IommufdError,
  type ScalarLayoutOf,
  setEntryAddress,
  setEntryField,
} from '@iommukit/core';

export const PAGE_REQUEST_WORDS = 8;
export const PAGE_REQUEST_BYTES = 32;
/** The type of a page request descriptor (QEMU VTD_PRD_TYPE). */
export const PAGE_REQUEST_TYPE = 1;

/** Page group response codes (§7.7; Linux QI_RESP_*). */
export const PAGE_RESPONSE = { SUCCESS: 0x0, INVALID: 0x1, FAILURE: 0xf } as const;

export interface PageRequest {
  readonly type: number;
  readonly pasidPresent: boolean;
  readonly privateDataPresent: boolean;
  /** Requester ID (bus:device.function). */
  readonly rid: number;
  readonly pasid: number;
  /** Execute requested (meaningful with a PASID). */
  readonly exe: boolean;
  /** Privileged-mode access requested (meaningful with a PASID). */
  readonly priv: boolean;
  readonly read: boolean;
  readonly write: boolean;
  /** Last page in group: the device waits for a page group response. */
  readonly lpig: boolean;
  /** Page request group index. */
  readonly prgIndex: number;
  /** Page address, bits 63:12 (a byte address). */
  readonly addr: number;
  /** Bits 255:128 as four 32-bit words, low first. */
  readonly privateData: readonly number[];
}

const LAYOUT = {
  type: [0, 8],
  pasidPresent: [8, 1],
  privateDataPresent: [9, 1],
  rid: [16, 16],
  pasid: [32, 20],
  exe: [52, 1],
  priv: [53, 1],
  read: [64, 1],
  write: [65, 1],
  lpig: [66, 1],
  prgIndex: [67, 9],
} as const satisfies ScalarLayoutOf<Omit<PageRequest, 'addr' | 'privateData'>>;
const ADDR = [76, 127] as const;
/** The first word of the private data. */
const PRIVATE_DATA_WORD = 4;
const PRIVATE_DATA_WORDS = 4;

/** The bit offset of the descriptor at word `at`; queue entries are 32-byte aligned. */
function bitBase(at: number, length: number): number {
  if (!Number.isInteger(at) || at < 0 || at % PAGE_REQUEST_WORDS !== 0 || at + PAGE_REQUEST_WORDS > length)
    throw new RangeError(`page request descriptor at word ${at}: needs a multiple of 8 with 8 words`);
  return 32 * at;
}

/** Decodes the page request descriptor at word `at` (hardware-written, so nothing is refused). */
export function decodePageRequest(words: ArrayLike<number>, at: number): PageRequest {
  const base = bitBase(at, words.length);
  const get = ([lsb, width]: readonly [number, number]): number => entryField(words, base + lsb, width);
  const flag = (bits: readonly [number, number]): boolean => get(bits) === 1;
  const data = at + PRIVATE_DATA_WORD;
  return {
    type: get(LAYOUT.type),
    pasidPresent: flag(LAYOUT.pasidPresent),
    privateDataPresent: flag(LAYOUT.privateDataPresent),
    rid: get(LAYOUT.rid),
    pasid: get(LAYOUT.pasid),
    exe: flag(LAYOUT.exe),
    priv: flag(LAYOUT.priv),
    read: flag(LAYOUT.read),
    write: flag(LAYOUT.write),
    lpig: flag(LAYOUT.lpig),
    prgIndex: get(LAYOUT.prgIndex),
    addr: entryAddress(words, base + ADDR[0], base + ADDR[1]),
    privateData: [words[data]! >>> 0, words[data + 1]! >>> 0, words[data + 2]! >>> 0, words[data + 3]! >>> 0],
  };
}

/**
 * Writes a page request descriptor at word `at` of `out` (what the unit does when a request arrives); fields
 * not given are 0, the type defaults to `PAGE_REQUEST_TYPE`. `EINVAL` naming the field for a value it
 * cannot hold.
 */
export function encodePageRequest(pr: Partial<PageRequest>, out: Uint32Array, at: number): void {
  const base = bitBase(at, out.length);
  out.fill(0, at, at + PAGE_REQUEST_WORDS);
  const fields: Readonly<Record<string, unknown>> = { ...pr, type: pr.type ?? PAGE_REQUEST_TYPE };
  for (const [key, [lsb, width]] of Object.entries(LAYOUT))
    if (fields[key] !== undefined)
      setEntryField(out, base + lsb, width, checkFieldValue('page_req_dsc', key, fields[key], width));
  if (pr.addr !== undefined)
    setEntryAddress(
      out,
      base + ADDR[0],
      base + ADDR[1],
      checkFieldAddress('page_req_dsc', 'addr', pr.addr, ...ADDR),
    );
  if (pr.privateData !== undefined) {
    if (pr.privateData.length !== PRIVATE_DATA_WORDS)
      throw new IommufdError('EINVAL', 'page_req_dsc.privateData must be 4 32-bit words', {
        structure: 'page_req_dsc',
        field: 'privateData',
      });
    pr.privateData.forEach((word, i) => {
      out[at + PRIVATE_DATA_WORD + i] = checkFieldValue('page_req_dsc', `privateData[${i}]`, word, 32);
    });
  }
}
