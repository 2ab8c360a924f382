/**
 * The ITS's in-memory tables. Where they live is architected (GITS_BASER<n>, flat or two-level, §12.19.1;
 * the ITT from MAPD); what an entry holds is IMPLEMENTATION DEFINED (§5.2), so this model defines its own
 * 8-byte entries, documented here and in the package README:
 *
 * | table | bits |
 * |---|---|
 * | device table entry (DTE) | V [63] · ITT address [51:8] · Size [4:0] (EventID bits − 1) |
 * | interrupt translation entry (ITE), GITS_TYPER.ITT_entry_size = 8 | V [63] · ICID [47:32] · pINTID [31:0] |
 * | collection table entry (CTE) | V [63] · RDbase [15:0] (a processor number, PTA = 0) |
 *
 * Software must never write these tables; the ITS reads and writes them as commands say.
 */
import type { AccessCounter, MemoryBus } from '@iommukit/core';
import type { Baser } from './registers.js';

export const ITS_ENTRY_BYTES = 8;
const VALID = 1n << 63n;

export interface DeviceTableEntry {
  readonly ittAddress: bigint;
  /** EventID bits − 1. */
  readonly size: number;
}

export interface InterruptTranslationEntry {
  readonly intid: number;
  readonly icid: number;
}

export const encodeDte = (e: DeviceTableEntry): bigint =>
  VALID | (e.ittAddress & 0x000f_ffff_ffff_ff00n) | BigInt(e.size & 0x1f);

export const decodeDte = (v: bigint): DeviceTableEntry | undefined =>
  (v & VALID) === 0n ? undefined : { ittAddress: v & 0x000f_ffff_ffff_ff00n, size: Number(v & 0x1fn) };

export const encodeIte = (e: InterruptTranslationEntry): bigint =>
  VALID | (BigInt(e.icid & 0xffff) << 32n) | BigInt(e.intid >>> 0);

export const decodeIte = (v: bigint): InterruptTranslationEntry | undefined =>
  (v & VALID) === 0n ? undefined : { intid: Number(v & 0xffff_ffffn), icid: Number((v >> 32n) & 0xffffn) };

export const encodeCte = (rdbase: number): bigint => VALID | BigInt(rdbase & 0xffff);

export const decodeCte = (v: bigint): number | undefined =>
  (v & VALID) === 0n ? undefined : Number(v & 0xffffn);

/** Where the entry for an ID is: an address, `unbacked` (no memory describes it), or `abort` (a bus error). */
export type EntryLocation = number | 'unbacked' | 'abort';

/** A GITS_BASER table, flat or two-level (level-1 entries: V [63], level-2 page address [51:12]). */
export class ItsTable {
  constructor(readonly baser: Baser) {}

  /** How many IDs the table can describe. */
  get capacity(): number {
    const { pages, pageSize, entrySize, indirect } = this.baser;
    const bytes = pages * pageSize;
    return indirect
      ? (bytes / ITS_ENTRY_BYTES) * Math.floor(pageSize / entrySize)
      : Math.floor(bytes / entrySize);
  }

  locate(id: number, bus: MemoryBus, who: AccessCounter): EntryLocation {
    const { address, pageSize, entrySize, indirect, valid } = this.baser;
    if (!valid || id < 0 || id >= this.capacity) return 'unbacked';
    if (!indirect) return Number(address) + id * entrySize;
    const perPage = Math.floor(pageSize / entrySize);
    const l1 = bus.read(Number(address) + Math.floor(id / perPage) * ITS_ENTRY_BYTES, 8, who);
    if (!l1.ok) return 'abort';
    if ((l1.value & VALID) === 0n) return 'unbacked';
    const page = l1.value & 0x000f_ffff_ffff_f000n & ~BigInt(pageSize - 1);
    return Number(page) + (id % perPage) * entrySize;
  }
}
