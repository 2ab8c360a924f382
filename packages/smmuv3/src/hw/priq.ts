/**
 * PRI queue entries (SMMUv3 §8): one PCIe Page Request per 16-byte entry, four little-endian words, written
 * by the SMMU when an endpoint asks system software to make pages resident. Requests of one Page Request
 * Group share PRGIndex; the last one has Last set; software answers the group with CMD_PRI_RESP.
 *
 * Layout (absolute bits): StreamID [31:0], SubstreamID [51:32], Priv 58, eXecute 59, Read 60, Write 61,
 * Last 62, SSV 63, PRGIndex [72:64], Page address[63:12] at [127:76] (a 4 KiB page number: it can exceed
 * 2^53 bytes). With SSV == 0, X and Priv are 0 and SubstreamID is UNKNOWN.
 */
import { checkFieldValue, entryField, setEntryField } from '@iommukit/core';

export const PRI_ENTRY_WORDS = 4;
export const PRI_ENTRY_BYTES = 16;

export interface PriEntry {
  readonly streamId: number;
  readonly substreamId: number;
  readonly priv: boolean;
  readonly exec: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly last: boolean;
  readonly ssv: boolean;
  readonly prgIndex: number;
  /** Page address[63:12], as a 4 KiB page number. */
  readonly addressPage: number;
}

const LAYOUT: Readonly<
  Record<Exclude<keyof PriEntry, 'addressPage'>, readonly [lsb: number, width: number]>
> = {
  streamId: [0, 32],
  substreamId: [32, 20],
  priv: [58, 1],
  exec: [59, 1],
  read: [60, 1],
  write: [61, 1],
  last: [62, 1],
  ssv: [63, 1],
  prgIndex: [64, 9],
};

/** Page address bits [63:12] live at [127:76]: 20 bits in word 2, 32 in word 3. */
const ADDRESS_LO = [76, 20] as const;
const ADDRESS_HI = [96, 32] as const;

export function decodePriEntry(words: ArrayLike<number>): PriEntry {
  const out: Record<string, number | boolean> = {};
  for (const [key, [lsb, width]] of Object.entries(LAYOUT)) {
    const value = entryField(words, lsb, width);
    out[key] = width === 1 ? value === 1 : value;
  }
  out.addressPage = entryField(words, ...ADDRESS_LO) + entryField(words, ...ADDRESS_HI) * 2 ** ADDRESS_LO[1];
  return out as unknown as PriEntry;
}

/** Encodes a PRI queue entry; fields not given are 0. `EINVAL` naming the field for a value it cannot hold. */
export function encodePriEntry(fields: Partial<PriEntry> = {}): Uint32Array {
  const words = new Uint32Array(PRI_ENTRY_WORDS);
  const given = fields as Readonly<Record<string, unknown>>;
  for (const [key, [lsb, width]] of Object.entries(LAYOUT)) {
    const raw = given[key];
    if (raw !== undefined) setEntryField(words, lsb, width, checkFieldValue('PRI entry', key, raw, width));
  }
  if (fields.addressPage !== undefined) {
    const page = checkFieldValue(
      'PRI entry',
      'addressPage',
      fields.addressPage,
      ADDRESS_LO[1] + ADDRESS_HI[1],
    );
    setEntryField(words, ...ADDRESS_LO, page % 2 ** ADDRESS_LO[1]);
    setEntryField(words, ...ADDRESS_HI, Math.floor(page / 2 ** ADDRESS_LO[1]));
  }
  return words;
}

/**
 * A PCIe Stop PASID marker: a request with a PASID (SSV == 1) and Last/Write/Read == 0b100 (§8). Without a
 * PASID the same bits are an ordinary page request.
 */
export function isStopMarker(entry: PriEntry): boolean {
  return entry.ssv && entry.last && !entry.write && !entry.read;
}
