/**
 * The guest CR3 (GCR3) table of AMD IOMMU guest (v2) translation (AMD I/O Virtualization Technology (IOMMU)
 * Specification, pub. 48882 rev 3.x, §2.2.2.1 DTE fields GV, GLX and GCR3 Table Root Pointer; the GCR3
 * table in the guest-translation part of §2.2): per device, indexed by PASID, 8-byte entries, 512 to a
 * 4 KiB table, one to three levels as DTE.GLX is 0, 1 or 2. The PASID is split 9 bits per level from the
 * top: with GLX = 2 the root table takes PASID[26:18], the next PASID[17:9], the last PASID[8:0]. Every
 * level's entry has the same format, valid bit 0 and a 4 KiB-aligned pointer in bits 51:12: an intermediate
 * entry points to the next level's table, a last-level entry holds the guest CR3, the root of that PASID's
 * x86 (4- or 5-level, DTE.GuestPagingMode) guest page tables.
 *
 * Sources: Linux drivers/iommu/amd (GCR3_VALID = bit 0; `__get_gcr3_pte` indexes `(pasid >> 9·level) & 0x1ff`
 * from level GLX down to 0 and writes intermediate entries as `table | GCR3_VALID`, leaves as
 * `(cr3 & PAGE_MASK) | GCR3_VALID`; `get_gcr3_levels` and the 512-entry free loops); FreeBSD
 * sys/x86/iommu/amd_reg.h (GLX 0/1/2 = 1/2/3 levels, 3 reserved).
 *
 * Not in a stored source, so the model's choice: bits 11:1 and 63:52 of an entry are reserved (Linux writes
 * nothing there: the PWT/PCD bits of an x86 CR3 are masked off with PAGE_MASK). The unit checks an entry as
 * VirtualBox checks the entries of a v1 walk — valid first, then reserved bits — and the walker reports both
 * as IO_PAGE_FAULT with GN = 1 (the request carries a PASID): PR = 0 for an entry that is not valid, PR = 1
 * and RZ = 1 for reserved bits (the flags the spec gives a page-table fault; the spec's event for the GCR3
 * table is not confirmed). A PASID the GLX levels cannot index (at or above 2^(9 · (GLX + 1))) is likewise
 * the model's IO_PAGE_FAULT (VirtualBox names an IO_PAGE_FAULT kind for a PASID out of range).
 *
 * How the walk reads the table (the walker's job; these are pure functions), the model's reading, as no
 * stored source walks a GCR3 table: with Control.GCR3TRPMode = 0 the DTE's GCR3 root and the table levels
 * are system physical addresses read directly (Linux, owning the table, links its levels by physical
 * address), and the guest CR3
 * of the last level is a guest physical address translated by the DTE's host (v1) tables, as is every
 * pointer of the guest tables under nesting (Mode 0 makes a GPA the SPA). With GCR3TRPMode = 1 (EFR2
 * GCR3TRPMode; FreeBSD "GCR3 is GPA (otherwise SPA)", Linux requires it of a nest parent) the GCR3 root is
 * itself a guest physical address: the walker translates the root and every intermediate pointer through
 * the host v1 tables before reading each level, so a GCR3 level the host tables do not map faults as a host
 * translation would.
 */
import { entryField, entryReader, type ScalarLayoutOf, writeEntryFields } from '@iommukit/core';

export const GCR3_ENTRY_WORDS = 2;
export const GCR3_ENTRY_BYTES = 8;
/** Entries of one 4 KiB GCR3 table level. */
export const GCR3_TABLE_ENTRIES = 512;
/** PASID bits each level indexes. */
export const GCR3_INDEX_BITS = 9;

/** DTE.GLX: GCR3 table levels − 1. 3 is reserved. */
export const GLX = { LEVELS_1: 0, LEVELS_2: 1, LEVELS_3: 2 } as const;

/** One GCR3 table entry, at any level. */
export interface Gcr3Entry {
  /** GCR3_VALID: the pointer is valid. */
  readonly valid: boolean;
  /** Bits 51:12: the next level's table, or the guest CR3 at the last level. */
  readonly pointer: number;
}

/** GCR3 entry fields, absolute bits. */
export const GCR3_ENTRY_LAYOUT = { valid: [0, 1] } as const satisfies ScalarLayoutOf<
  Omit<Gcr3Entry, 'pointer'>
>;

const GCR3_ENTRY = { scalars: GCR3_ENTRY_LAYOUT, addresses: { pointer: [12, 51] as const } };

export const decodeGcr3Entry = entryReader<Gcr3Entry>(GCR3_ENTRY);

/** Encodes a GCR3 entry; fields not given are 0, `EINVAL` for a value a field cannot hold. */
export function encodeGcr3Entry(fields: Partial<Gcr3Entry> = {}): Uint32Array {
  const words = new Uint32Array(GCR3_ENTRY_WORDS);
  writeEntryFields(words, GCR3_ENTRY, fields, 'GCR3 table entry');
  return words;
}

/** Levels of the GCR3 table a DTE.GLX selects. */
export function gcr3Levels(glx: number): number {
  return glx + 1;
}

/** PASIDs a GCR3 table of GLX levels indexes: 2^(9 · levels). */
export function gcr3PasidLimit(glx: number): number {
  return 2 ** (GCR3_INDEX_BITS * gcr3Levels(glx));
}

/**
 * Index of `pasid` in a table at `level`, counted from 0 (the last level, holding guest CR3s) up to GLX
 * (the root): PASID[9·level + 8 : 9·level].
 */
export function gcr3TableIndex(pasid: number, level: number): number {
  return (pasid >>> (GCR3_INDEX_BITS * level)) & (GCR3_TABLE_ENTRIES - 1);
}

/** Address of the entry for `pasid` in the level-`level` table at `tableBase`. */
export function gcr3EntryAddress(tableBase: number, pasid: number, level: number): number {
  return tableBase + gcr3TableIndex(pasid, level) * GCR3_ENTRY_BYTES;
}

/** Why a GCR3 entry stops a walk (the walker reports both as IO_PAGE_FAULT, see the module comment). */
export const GCR3_FAULT = {
  /** GCR3_VALID is 0: PR = 0. */
  NOT_VALID: 1,
  /** A reserved bit is set: PR = 1, RZ = 1. */
  RESERVED_BITS: 2,
} as const;
export type Gcr3Check = 0 | (typeof GCR3_FAULT)[keyof typeof GCR3_FAULT];

/** Reserved bits per 32-bit word: 11:1 and 63:52 (the model's choice, see the module comment). */
export const GCR3_ENTRY_RESERVED = [0x0000_0ffe, 0xfff0_0000] as const;

/** A GCR3 entry read during a walk: 0 (usable), or NOT_VALID before RESERVED_BITS. */
export function checkGcr3Entry(words: ArrayLike<number>): Gcr3Check {
  if (entryField(words, GCR3_ENTRY_LAYOUT.valid[0], 1) === 0) return GCR3_FAULT.NOT_VALID;
  if ((words[0]! & GCR3_ENTRY_RESERVED[0]) !== 0 || (words[1]! & GCR3_ENTRY_RESERVED[1]) !== 0)
    return GCR3_FAULT.RESERVED_BITS;
  return 0;
}
