/**
 * The GCR3 table the driver owns for one device (AMD pub. 48882 §2.2.2.1 GV, GLX and the GCR3 Table Root
 * Pointer; the table format is hw/gcr3.ts): Linux iommu.c `struct gcr3_tbl_info`, `get_gcr3_levels`,
 * `setup_gcr3_table`, `__get_gcr3_pte`, `update_gcr3`, `free_gcr3_table`.
 *
 * - Levels (`get_gcr3_levels`): GLX is ⌈log2(PASIDs) / 9⌉ − 1 for the device's PASID count (Linux
 *   `dev_data->max_pasids`), refused with `EINVAL` above the unit's EFR.GLXSup (`amd_iommu_max_glx_val`).
 * - The table takes a DomainID of its own (`gcr3_info.domid`): while it exists the device's DTE carries
 *   that DomainID, and its guest translations are flushed under it (domain-flush.ts).
 * - An entry is written as `update_gcr3` writes it: intermediate levels allocated zeroed on the way down
 *   and linked as `table | GCR3_VALID`, the last level `(cr3 & PAGE_MASK) | GCR3_VALID`, or 0 to clear.
 *   The caller then flushes that PASID (`amd_iommu_dev_flush_pasid_all`).
 * - `free` returns every level and the DomainID (`free_gcr3_table` walks at most two levels down).
 */
import {
  allocDriverPages,
  freeDriverPages,
  IommufdError,
  readDriverMemory,
  writeDriverMemory,
} from '@iommukit/core';
import {
  decodeGcr3Entry,
  encodeGcr3Entry,
  GCR3_ENTRY_WORDS,
  GCR3_INDEX_BITS,
  GCR3_TABLE_ENTRIES,
  gcr3EntryAddress,
} from '../hw/gcr3.js';
import type { AmdDriverBase } from './driver-host.js';

/**
 * Linux `get_gcr3_levels` for `pasids` PASIDs: the GLX value (levels − 1), `EINVAL` above `glxSup`.
 * `pasids` is at least 1 (Linux's count order of 1 is 0: one level).
 */
export function gcr3Glx(pasids: number, glxSup: number): number {
  const order = Math.ceil(Math.log2(pasids));
  const glx = order === 0 ? 0 : Math.ceil(order / GCR3_INDEX_BITS) - 1;
  if (glx > glxSup)
    throw new IommufdError('EINVAL', `${pasids} PASIDs need GLX ${glx}; EFR.GLXSup allows ${glxSup}`, {
      pasids,
    });
  return glx;
}

export class Gcr3Table {
  /** The root level's address (the DTE's GCR3 Table Root Pointer). */
  readonly root: number;
  private readonly words = new Uint32Array(GCR3_ENTRY_WORDS);

  /** Linux `setup_gcr3_table`: the root level, zeroed; `domainId` is the table's own. */
  constructor(
    private readonly host: AmdDriverBase,
    readonly glx: number,
    readonly domainId: number,
  ) {
    this.root = allocDriverPages(host.memory, 1);
  }

  /** Linux `update_gcr3`: `pasid`'s entry holds `cr3` (4 KiB aligned), or is cleared when `cr3` is undefined. */
  update(pasid: number, cr3: number | undefined): void {
    const at = this.leafAddress(pasid);
    writeDriverMemory(
      this.host,
      at,
      cr3 === undefined ? new Uint32Array(2) : encodeGcr3Entry({ valid: true, pointer: cr3 }),
    );
  }

  /** The last-level entry of `pasid`'s address, the levels above it allocated and linked as needed. */
  private leafAddress(pasid: number): number {
    let table = this.root;
    for (let level = this.glx; level > 0; level--) {
      const at = gcr3EntryAddress(table, pasid, level);
      readDriverMemory(this.host, at, this.words);
      const entry = decodeGcr3Entry(this.words);
      if (entry.valid) table = entry.pointer;
      else {
        table = allocDriverPages(this.host.memory, 1);
        writeDriverMemory(this.host, at, encodeGcr3Entry({ valid: true, pointer: table }));
      }
    }
    return gcr3EntryAddress(table, pasid, 0);
  }

  /** Linux `free_gcr3_table`: every level below the root, then the root (the caller frees the DomainID). */
  free(): void {
    freeLevel(this.host, this.root, this.glx);
  }
}

/** The table at `table` of level `level` and every valid table it points to below level 0. */
function freeLevel(host: AmdDriverBase, table: number, level: number): void {
  if (level > 0) {
    const words = new Uint32Array(GCR3_TABLE_ENTRIES * GCR3_ENTRY_WORDS);
    readDriverMemory(host, table, words);
    for (let i = 0; i < GCR3_TABLE_ENTRIES; i++) {
      const entry = decodeGcr3Entry(words.subarray(i * GCR3_ENTRY_WORDS, (i + 1) * GCR3_ENTRY_WORDS));
      if (entry.valid) freeLevel(host, entry.pointer, level - 1);
    }
  }
  freeDriverPages(host.memory, table, 1);
}
