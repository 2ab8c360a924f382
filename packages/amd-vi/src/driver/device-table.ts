/**
 * The device table as the driver keeps it (AMD pub. 48882 §2.2.2 "Device Table", §2.2.2.1 the 256-bit
 * DTE, §3.4 Device Table Base Address 0000h): Linux init.c `alloc_dev_table`, `iommu_set_device_table`,
 * `init_device_table_dma`, and iommu.c `set_dte_entry`, `make_clear_dte`, `clear_dte_entry`,
 * `set_dte_gcr3_table`, `update_dte256`, `write_dte_upper128` / `write_dte_lower128`, `iommu_flush_dte_sync`,
 * `device_flush_dte`.
 *
 * - The table covers every DeviceID of the segment: 64K entries, 2 MiB, DevTblBase.Size 0x1ff (Linux
 *   `dev_table_size` for last_bdf 0xffff).
 * - At boot every entry gets V = 1, TV = 1 with Mode 0 and IR = IW = 0 (`init_device_table_dma`; TV is
 *   left 0 only with SEV-SNP): a DMA is denied by the permissions, an interrupt half is still unused. No
 *   entry gets SysMgt, so Linux's erratum 63 fix (`amd_iommu_apply_erratum_63`, IW for SysMgt 01b, applied
 *   while parsing IVHD device flags) never applies.
 * - A device's entry is built whole (`set_dte_entry`: V, TV, Mode and root, IR, IW, PPR, I for ATS,
 *   DomainID; with a GCR3 table `set_dte_gcr3_table` adds GV, GLX, the root in its three pieces,
 *   GuestPagingMode, and GIoV when the RID's domain is v2) or cleared to V = 1 only, blocking all DMA
 *   (`make_clear_dte`), and installed by `update_dte256`: each 128-bit half is one write; the translation
 *   fields but GuestPagingMode live in the lower half. The upper half keeps the interrupt fields of data[2]
 *   (all but bits 55:52, Linux DTE_DATA2_INTR_MASK) that interrupt remapping owns. The order of the halves
 *   is `update_dte256`'s, its cases in its order: the old entry invalid, upper first (V appears last); the
 *   new one invalid, lower first (V goes first); the old one without GV, upper first (GV appears last); the
 *   new one without GV, lower first (GV goes first); both with GV and
 *   the same GuestPagingMode, the lower half alone; a GuestPagingMode change disables the entry (lower
 *   half zeroed, flushed) before writing upper then lower. Then INVALIDATE_DEVTAB_ENTRY and a completion
 *   wait, except after the lower-half-only write, which the caller's `device_flush_dte` flushes.
 */
import { allocDriverPages, freeDriverPages, readDriverMemory, writeDriverMemory } from '@iommukit/core';
import {
  buildInvalidateDevtabEntry,
  buildInvalidateIotlbPages,
  WHOLE_ADDRESS_SPACE,
} from '../hw/command-encoders.js';
import { DTE_BYTES, DTE_WORDS, dteAddress, encodeDte, GUEST_PAGING_MODE } from '../hw/dte.js';
import { REG } from '../hw/regs.js';
import type { CommandQueue } from './command-queue.js';
import type { AmdDriverBase } from './driver-host.js';

/** DeviceIDs the table covers. */
export const DEV_TABLE_ENTRIES = 65536;
/** 4 KiB pages of the table; DevTblBase.Size is this minus one (0x1ff). */
export const DEV_TABLE_PAGES = (DEV_TABLE_ENTRIES * DTE_BYTES) / 4096;
/** data[2] bits 55:52 (GuestPagingMode and reserved) are the translation's; the rest of data[2] the interrupts'. */
const DATA2_TRANSLATION_HI = 0x00f0_0000;
/** V (bit 0) and GV (bit 55) in the words of an entry. */
const V = (words: Uint32Array) => (words[0]! & 1) !== 0;
const GV = (words: Uint32Array) => (words[1]! & (1 << 23)) !== 0;

/** The GCR3 table a DTE points to (Linux `set_dte_gcr3_table`). */
export interface DteGcr3 {
  readonly root: number;
  readonly glx: number;
  /** The x86 guest tables' levels, the unit-wide choice (Linux `amd_iommu_gpt_level`). */
  readonly guestLevels: 4 | 5;
  /** GIoV: the RID's domain is v2, its requests translate through GCR3[0] (`pdom_is_v2_pgtbl_mode`). */
  readonly giov: boolean;
}

/** What `set_dte_entry` puts in a device's entry. */
export interface DteConfig {
  /** Host page-table levels (DTE.Mode); 0 passes addresses through with IR/IW (identity, v2). */
  readonly mode: number;
  /**
   * IR and IW (default true). False only for a blocked RID whose PASIDs stay attached: Mode 0 with no
   * permission denies DMA without PASID, as Linux's boot entry (`init_device_table_dma`) does.
   */
  readonly rw?: boolean;
  /** The v1 table's root (Mode ≠ 0). */
  readonly root: number;
  readonly domainId: number;
  /** ATS is enabled at the device (DTE.I, Linux `dev_data->ats_enabled`). */
  readonly ats: boolean;
  /** Peripheral page requests are logged (DTE.PPR, Linux `dev_data->ppr`). */
  readonly ppr: boolean;
  readonly gcr3?: DteGcr3;
}

/** Linux `set_dte_entry` with `set_dte_gcr3_table`: V, TV, Mode, root, IR, IW, PPR, I, DomainID, GV…. */
export function dteFor(config: DteConfig): Uint32Array {
  const rw = config.rw ?? true;
  const { gcr3 } = config;
  return encodeDte({
    v: true,
    tv: true,
    mode: config.mode,
    hostPageTableRootPtr: config.mode === 0 ? 0 : config.root,
    ir: rw,
    iw: rw,
    ppr: config.ppr,
    i: config.ats,
    domainId: config.domainId,
    ...(gcr3 && {
      gv: true,
      glx: gcr3.glx,
      gcr3TableRootPtr: gcr3.root,
      giov: gcr3.giov,
      guestPagingMode: gcr3.guestLevels === 5 ? GUEST_PAGING_MODE.LEVEL_5 : GUEST_PAGING_MODE.LEVEL_4,
    }),
  });
}

/** Linux `make_clear_dte`: V only, the entry that blocks all DMA. */
export function clearedDte(): Uint32Array {
  return encodeDte({ v: true });
}

export class DriverDeviceTable {
  /** The table's address (Linux `pci_seg->dev_table`). */
  readonly base: number;
  private readonly entry = new Uint32Array(DTE_WORDS);

  constructor(
    private readonly host: AmdDriverBase,
    private readonly queue: CommandQueue,
  ) {
    this.base = allocDriverPages(host.memory, DEV_TABLE_PAGES);
  }

  /** Linux `iommu_set_device_table`: the base with Size = pages − 1. */
  program(): void {
    this.host.mmio.write64(REG.DEV_TBL_BASE, BigInt(this.base) | BigInt(DEV_TABLE_PAGES - 1));
  }

  /** Linux `init_device_table_dma`: V and TV in every entry (Mode 0, IR = IW = 0: DMA denied). */
  initDma(): void {
    const words = new Uint32Array(DEV_TABLE_ENTRIES * DTE_WORDS);
    for (let i = 0; i < words.length; i += DTE_WORDS) words[i] = 0b11;
    writeDriverMemory(this.host, this.base, words);
  }

  /** The entry of `deviceId` as it is in memory. */
  read(deviceId: number): Uint32Array {
    const out = new Uint32Array(DTE_WORDS);
    readDriverMemory(this.host, dteAddress(this.base, deviceId), out);
    return out;
  }

  /** Linux `update_dte256`: the two halves in the order the old and new entries need (module comment). */
  update(deviceId: number, next: Uint32Array): void {
    const at = dteAddress(this.base, deviceId);
    const old = this.entry;
    readDriverMemory(this.host, at, old);
    const upper = next.slice(4, 8);
    upper[0] = old[4]!;
    upper[1] = (old[5]! & ~DATA2_TRANSLATION_HI) | (next[5]! & DATA2_TRANSLATION_HI);
    const lower = next.subarray(0, 4);
    const writeUpper = () => writeDriverMemory(this.host, at + 16, upper);
    const writeLower = () => writeDriverMemory(this.host, at, lower);
    const flush = () => this.queue.submit([buildInvalidateDevtabEntry(deviceId)]);
    if (!V(old)) {
      writeUpper();
      writeLower();
    } else if (!V(next)) {
      writeLower();
      writeUpper();
    } else if (!GV(old)) {
      writeUpper();
      writeLower();
    } else if (!GV(next)) {
      writeLower();
      writeUpper();
    } else if (((old[5]! ^ next[5]!) & DATA2_TRANSLATION_HI) !== 0) {
      writeDriverMemory(this.host, at, new Uint32Array(4));
      flush();
      writeUpper();
      writeLower();
    } else {
      writeLower();
      return;
    }
    flush();
  }

  /**
   * Linux `device_flush_dte` then `iommu_completion_wait`: the entry again, and with ATS the device's whole
   * IOTLB (`device_flush_iotlb` over every address, no PASID; `qdep` is its ATS invalidate queue depth).
   */
  flushDevice(deviceId: number, ats: { readonly qdep: number } | undefined): void {
    this.queue.queue(buildInvalidateDevtabEntry(deviceId));
    if (ats)
      this.queue.queue(buildInvalidateIotlbPages(deviceId, ats.qdep, 0, WHOLE_ADDRESS_SPACE, 0, false));
    this.queue.completionWait();
  }

  /** Returns the table's pages (after the unit stopped using it). */
  free(): void {
    freeDriverPages(this.host.memory, this.base, DEV_TABLE_PAGES);
  }
}
