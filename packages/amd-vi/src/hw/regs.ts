/**
 * The AMD IOMMU's MMIO register map (AMD IOMMU Specification, pub. 48882 rev 3.x, §3.4 "IOMMU MMIO
 * Registers") for the core RegisterFile: spec offsets, access types, writable bits (bits of features the
 * unit lacks, and reserved bits, read 0 and ignore writes) and reset values. A 64-bit register is two
 * 32-bit registers, `<NAME>_LO` at +0 and `<NAME>_HI` at +4. Registers are cited by name and offset; the
 * spec's subsection numbers are not checked. Offsets: Linux drivers/iommu/amd/amd_iommu_types.h (MMIO_*),
 * QEMU hw/i386/amd_iommu.h (AMDVI_MMIO_*), VirtualBox include/VBox/iommu-amd.h (IOMMU_MMIO_OFF_*) and
 * FreeBSD sys/x86/iommu/amd_reg.h (AMDIOMMU_*), which agree on every register here.
 *
 * Field layouts and writable bits (VirtualBox's *_VALID_MASK values, QEMU's read-only and W1C masks):
 * - Device Table Base: base 51:12, Size 8:0 = 4 KiB pages − 1. Command Buffer, Event Log, PPR Log and GA
 *   Log Base: base 51:12, length 59:56 = log2 of the entry count, 8 (256 entries) to 15 (32768; FreeBSD's
 *   AMDIOMMU_EVNTLOG_MIN/MAX and 512 KiB command buffer). Smaller lengths are reserved (VirtualBox ignores
 *   the write); that check belongs to the write hook, since a RegisterFile stores bits, not values. The GA
 *   log's entries are 8 bytes and Linux programs length 8 for 512 of them (GA_LOG_SIZE_512), so there the
 *   length seems to count 16-byte units; not confirmed.
 * - Head and tail pointers: byte offsets in bits 18:4 (16-byte entries; QEMU, VirtualBox, FreeBSD, Linux
 *   MMIO_CMD_HEAD_MASK). The GA log's entries are 8 bytes, so its pointers keep bits 18:3 — inferred, not
 *   found in a source (VirtualBox's GA pointer struct is self-contradictory).
 * - Exclusion Base: ExEn 0, Allow 1, base 51:12. Exclusion Limit: limit 51:12, bits 11:0 read as ones
 *   (QEMU AMDVI_MMIO_EXCL_LIMIT_LOW and VirtualBox both force them), the limit being inclusive.
 * - Status: EvtOverflow 0, EvtLogInt 1, ComWaitInt 2, PPROverflow 5, PPRInt 6, GALogOverflow 9, GAInt 10
 *   are RW1C; EvtLogRun 3, CmdBufRun 4, PPRLogRun 7, GALogRun 8 are read-only (VirtualBox's RW1C mask
 *   0x68e67, QEMU's W1C 0x67 / RO 0x98; bits 11–18 belong to the dual logs, not modelled).
 * - Control: the bits below, each writable only with its feature; HtTunEn, PassPW, ResPassPW, Coherent and
 *   Isoc (HyperTransport controls Linux sets from the IVHD flags) and IRTCacheDis are always writable.
 * - XT interrupt control (0170h/0178h/0180h): destination mode 2, destination 31:8 and 63:56, vector 39:32,
 *   delivery mode 40 (VirtualBox; Linux's union intcapxt leaves bit 40 reserved and writes it 0).
 * - MSI capability mirror (0158h–0164h, EFR.MsiCapMmioSup; VirtualBox): the header reads capability ID 05h
 *   and Msi64BitEn, only MsiEn (bit 16) is writable; the address is DWORD aligned, the data 16 bits. Linux
 *   programs the same registers through PCI configuration space (pci_enable_msi) and names the MMIO offsets
 *   MMIO_MSI_ADDR_LO/HI/DATA without using them.
 *
 * Present only with their feature (absent registers read 0 and ignore writes): PPR Log Base and PPR
 * head/tail with PPRSup; the hardware error registers with HESup (upper and lower read-write, as VirtualBox
 * found the spec marks them; status HEV/HEO RW1C); the GA log base, tail address and head/tail with the
 * virtual-APIC mode (GAMSup); the MSI mirror with MsiCapMmioSup; the XT interrupt controls with XTSup (the
 * PPR one also with PPRSup, the GA one with GAMSup). Never: SMI filters, dual-log and segment registers,
 * MARC, performance counters (0x4000 on) — none of which the model implements.
 *
 * The window is 16 KiB (0x0000–0x3FFF): QEMU's AMDVI_MMIO_SIZE, and what Linux maps for a unit without
 * performance counters (MMIO_CNTR_CONF_OFFSET; with PCSup it maps 512 KiB, to MMIO_REG_END_OFFSET).
 */
import type { RegDef } from '@iommukit/core';
import { efr2Words, efrWords } from './capabilities.js';
import type { AmdFeatures } from './features.js';

/** The register window: everything below the performance-counter block. */
export const AMD_MMIO_SIZE = 0x4000;

/** Register offsets by spec name; 64-bit registers by their low half. */
export const REG = {
  DEV_TBL_BASE: 0x0000,
  CMD_BUF_BASE: 0x0008,
  EVT_LOG_BASE: 0x0010,
  CONTROL: 0x0018,
  EXCL_BASE: 0x0020,
  EXCL_LIMIT: 0x0028,
  EFR: 0x0030,
  PPR_LOG_BASE: 0x0038,
  HW_EVENT_UPPER: 0x0040,
  HW_EVENT_LOWER: 0x0048,
  HW_EVENT_STATUS: 0x0050,
  GA_LOG_BASE: 0x00e0,
  GA_LOG_TAIL_ADDR: 0x00e8,
  MSI_CAP_HDR: 0x0158,
  MSI_ADDR_LOW: 0x015c,
  MSI_ADDR_HIGH: 0x0160,
  MSI_DATA: 0x0164,
  XT_GEN_INTR: 0x0170,
  XT_PPR_INTR: 0x0178,
  XT_GA_INTR: 0x0180,
  EFR2: 0x01a0,
  CMD_HEAD: 0x2000,
  CMD_TAIL: 0x2008,
  EVT_HEAD: 0x2010,
  EVT_TAIL: 0x2018,
  STATUS: 0x2020,
  PPR_HEAD: 0x2030,
  PPR_TAIL: 0x2038,
  GA_HEAD: 0x2040,
  GA_TAIL: 0x2048,
} as const;
export type RegName = keyof typeof REG;

/** A multi-bit field of a 32-bit register (or of one half of a 64-bit register). */
export interface RegField {
  readonly lsb: number;
  readonly width: number;
}

// Device Table Base Address Register (0000h): Size 8:0 = number of 4 KiB pages − 1.
export const DEV_TBL_SIZE: RegField = { lsb: 0, width: 9 };

// Command Buffer / Event Log / PPR Log / GA Log Base Address Registers: length 59:56 in the high half.
export const LOG_HI_LEN: RegField = { lsb: 24, width: 4 };
/** Log lengths (log2 of the entry count) the base registers accept: 256 to 32768 entries. */
export const LOG_LEN_MIN = 8;
export const LOG_LEN_MAX = 15;

// Control Register (0018h), low half.
export const CTRL_IOMMU_EN = 1 << 0;
export const CTRL_HT_TUN_EN = 1 << 1;
export const CTRL_EVENT_LOG_EN = 1 << 2;
export const CTRL_EVENT_INT_EN = 1 << 3;
export const CTRL_COM_WAIT_INT_EN = 1 << 4;
export const CTRL_INV_TIMEOUT: RegField = { lsb: 5, width: 3 };
export const CTRL_PASS_PW = 1 << 8;
export const CTRL_RES_PASS_PW = 1 << 9;
export const CTRL_COHERENT = 1 << 10;
export const CTRL_ISOC = 1 << 11;
export const CTRL_CMD_BUF_EN = 1 << 12;
export const CTRL_PPR_LOG_EN = 1 << 13;
export const CTRL_PPR_INT_EN = 1 << 14;
export const CTRL_PPR_EN = 1 << 15;
export const CTRL_GT_EN = 1 << 16;
export const CTRL_GA_EN = 1 << 17;
export const CTRL_GAM_EN: RegField = { lsb: 25, width: 3 };
export const CTRL_GA_LOG_EN = 1 << 28;
export const CTRL_GA_INT_EN = 1 << 29;
/**
 * Control.InvTimeOut → the IOTLB invalidation timeout in ms: 0 none, then 1 ms to 100 s by tens; 7 is
 * reserved (Linux CTRL_INV_TO_*; FreeBSD's AMDIOMMU_CTRL_INVTOUT_100S is 0xb0, a typo for 6 << 5 = 0xc0).
 */
export const INV_TIMEOUT_MS = [0, 1, 10, 100, 1_000, 10_000, 100_000] as const;
/** Control.GAMEn: legacy remapping only (IRTE.GM ignored) or the virtual-APIC mode too. */
export const GAM_EN = { LEGACY: 0, VAPIC: 1 } as const;

// Control Register, high half (absolute bit − 32).
export const CTRL_HI_NUM_INT_REMAP_MODE: RegField = { lsb: 11, width: 2 };
export const CTRL_HI_EPH_EN = 1 << 13;
export const CTRL_HI_HAD_UPDATE: RegField = { lsb: 14, width: 2 };
export const CTRL_HI_GD_UPDATE_DIS = 1 << 16;
export const CTRL_HI_XT_EN = 1 << 18;
export const CTRL_HI_INT_CAP_XT_EN = 1 << 19;
export const CTRL_HI_GCR3_TRP_MODE = 1 << 26;
export const CTRL_HI_IRT_CACHE_DIS = 1 << 27;
/** Control.NumIntRemapMode: 512 or (with EFR2.NumIntRemapSup) 2048 IRTEs per device. */
export const NUM_INT_REMAP_MODE = { E512: 0, E2048: 1 } as const;

// Exclusion Range Base (0020h) and Limit (0028h).
export const EXCL_EN = 1 << 0;
export const EXCL_ALLOW = 1 << 1;
/** Exclusion Limit bits 11:0: read as ones, the limit covering its whole last page. */
export const EXCL_LIMIT_LOW_ONES = 0xfff;

// Hardware Event Status (0050h).
export const HW_EVENT_VALID = 1 << 0;
export const HW_EVENT_OVERFLOW = 1 << 1;

// MSI capability mirror (0158h): MsiEn, and the read-only ID and 64-bit address bits.
export const MSI_CAP_EN = 1 << 16;
export const MSI_CAP_RESET = (1 << 23) | 0x05;
export const MSI_ADDR_LOW_MASK = 0xffff_fffc;
export const MSI_DATA_MASK = 0xffff;

// XT interrupt control registers (0170h, 0178h, 0180h).
export const XT_DEST_MODE = 1 << 2;
export const XT_DEST_LO: RegField = { lsb: 8, width: 24 };
export const XT_HI_VECTOR: RegField = { lsb: 0, width: 8 };
export const XT_HI_DELIVERY_MODE = 1 << 8;
export const XT_HI_DEST_HI: RegField = { lsb: 24, width: 8 };

/** Head and tail pointers of the 16-byte-entry buffers: a byte offset in bits 18:4. */
export const LOG_PTR_MASK = 0x0007_fff0;
/** GA log head and tail (8-byte entries): bits 18:3. */
export const GA_PTR_MASK = 0x0007_fff8;

// Status Register (2020h).
export const STATUS_EVT_OVERFLOW = 1 << 0;
export const STATUS_EVT_LOG_INT = 1 << 1;
export const STATUS_COM_WAIT_INT = 1 << 2;
export const STATUS_EVT_LOG_RUN = 1 << 3;
export const STATUS_CMD_BUF_RUN = 1 << 4;
export const STATUS_PPR_OVERFLOW = 1 << 5;
export const STATUS_PPR_INT = 1 << 6;
export const STATUS_PPR_LOG_RUN = 1 << 7;
export const STATUS_GA_LOG_RUN = 1 << 8;
export const STATUS_GA_LOG_OVERFLOW = 1 << 9;
export const STATUS_GA_INT = 1 << 10;

/** The bits of a multi-bit field, in place. */
export function fieldMask(field: RegField): number {
  return (2 ** field.width - 1) * 2 ** field.lsb;
}

/** Address bits 31:12 of a 4 KiB-aligned address field's low half. */
const PAGE_LO = 0xffff_f000;
/** Address bits 51:32 in a high half: the 52-bit physical addresses every base register holds. */
const ADDR_HI = 0x000f_ffff;
/** A log base register's high half: address bits 51:32 and the length 59:56. */
const LOG_BASE_HI = ADDR_HI | fieldMask(LOG_HI_LEN);
/** An XT interrupt control register's halves. */
const XT_LO = XT_DEST_MODE | fieldMask(XT_DEST_LO);
const XT_HI = fieldMask(XT_HI_VECTOR) | XT_HI_DELIVERY_MODE | fieldMask(XT_HI_DEST_HI);

/** The register table of a unit with these features (EFR and EFR2 reset to what it implements). */
export function amdRegisterTable(f: AmdFeatures): RegDef[] {
  const defs: RegDef[] = [];
  const reg = (name: string, offset: number, access: RegDef['access'], writable = 0, reset = 0) =>
    defs.push({ name, offset, access, writable: writable >>> 0, reset: reset >>> 0 });
  // A half without writable bits is read-only (reserved, or status the hardware keeps).
  const reg64 = (
    name: string,
    offset: number,
    access: RegDef['access'],
    lo: number,
    hi: number,
    reset = 0,
  ) => {
    reg(`${name}_LO`, offset, lo === 0 ? 'ro' : access, lo, reset);
    reg(`${name}_HI`, offset + 4, hi === 0 ? 'ro' : access, hi);
  };
  const on = (feature: boolean, bits: number) => (feature ? bits : 0);
  const ppr = f.pageRequests;
  const gaLog = f.guestVapicMode;

  reg64('DEV_TBL_BASE', REG.DEV_TBL_BASE, 'rw', PAGE_LO | fieldMask(DEV_TBL_SIZE), ADDR_HI);
  reg64('CMD_BUF_BASE', REG.CMD_BUF_BASE, 'rw', PAGE_LO, LOG_BASE_HI);
  reg64('EVT_LOG_BASE', REG.EVT_LOG_BASE, 'rw', PAGE_LO, LOG_BASE_HI);
  reg64(
    'CONTROL',
    REG.CONTROL,
    'rw',
    CTRL_IOMMU_EN |
      CTRL_HT_TUN_EN |
      CTRL_EVENT_LOG_EN |
      CTRL_EVENT_INT_EN |
      CTRL_COM_WAIT_INT_EN |
      fieldMask(CTRL_INV_TIMEOUT) |
      CTRL_PASS_PW |
      CTRL_RES_PASS_PW |
      CTRL_COHERENT |
      CTRL_ISOC |
      CTRL_CMD_BUF_EN |
      on(ppr, CTRL_PPR_LOG_EN | CTRL_PPR_INT_EN | CTRL_PPR_EN) |
      on(f.guestTranslation, CTRL_GT_EN) |
      on(f.guestVirtualApic, CTRL_GA_EN) |
      on(gaLog, fieldMask(CTRL_GAM_EN) | CTRL_GA_LOG_EN | CTRL_GA_INT_EN),
    on(f.interruptRemapEntries === 2048, fieldMask(CTRL_HI_NUM_INT_REMAP_MODE)) |
      on(f.enhancedPpr, CTRL_HI_EPH_EN) |
      on(f.hostAccess || f.hostDirty, fieldMask(CTRL_HI_HAD_UPDATE)) |
      on(f.guestTranslation, CTRL_HI_GD_UPDATE_DIS) |
      on(f.x2apic, CTRL_HI_XT_EN | CTRL_HI_INT_CAP_XT_EN) |
      on(f.gcr3TrpMode, CTRL_HI_GCR3_TRP_MODE) |
      CTRL_HI_IRT_CACHE_DIS,
  );
  reg64('EXCL_BASE', REG.EXCL_BASE, 'rw', PAGE_LO | EXCL_ALLOW | EXCL_EN, ADDR_HI);
  reg64('EXCL_LIMIT', REG.EXCL_LIMIT, 'rw', PAGE_LO, ADDR_HI, EXCL_LIMIT_LOW_ONES);
  const efr = efrWords(f);
  reg('EFR_LO', REG.EFR, 'ro', 0, efr.lo);
  reg('EFR_HI', REG.EFR + 4, 'ro', 0, efr.hi);
  if (ppr) reg64('PPR_LOG_BASE', REG.PPR_LOG_BASE, 'rw', PAGE_LO, LOG_BASE_HI);
  if (f.hardwareErrors) {
    reg64('HW_EVENT_UPPER', REG.HW_EVENT_UPPER, 'rw', 0xffff_ffff, 0xffff_ffff);
    reg64('HW_EVENT_LOWER', REG.HW_EVENT_LOWER, 'rw', 0xffff_ffff, 0xffff_ffff);
    reg64('HW_EVENT_STATUS', REG.HW_EVENT_STATUS, 'w1c', HW_EVENT_VALID | HW_EVENT_OVERFLOW, 0);
  }
  if (gaLog) {
    reg64('GA_LOG_BASE', REG.GA_LOG_BASE, 'rw', PAGE_LO, LOG_BASE_HI);
    reg64('GA_LOG_TAIL_ADDR', REG.GA_LOG_TAIL_ADDR, 'rw', 0xffff_fff8, ADDR_HI);
  }
  if (f.msiCapMmio) {
    reg('MSI_CAP_HDR', REG.MSI_CAP_HDR, 'rw', MSI_CAP_EN, MSI_CAP_RESET);
    reg('MSI_ADDR_LOW', REG.MSI_ADDR_LOW, 'rw', MSI_ADDR_LOW_MASK);
    reg('MSI_ADDR_HIGH', REG.MSI_ADDR_HIGH, 'rw', 0xffff_ffff);
    reg('MSI_DATA', REG.MSI_DATA, 'rw', MSI_DATA_MASK);
  }
  if (f.x2apic) {
    reg64('XT_GEN_INTR', REG.XT_GEN_INTR, 'rw', XT_LO, XT_HI);
    if (ppr) reg64('XT_PPR_INTR', REG.XT_PPR_INTR, 'rw', XT_LO, XT_HI);
    if (gaLog) reg64('XT_GA_INTR', REG.XT_GA_INTR, 'rw', XT_LO, XT_HI);
  }
  const efr2 = efr2Words(f);
  reg('EFR2_LO', REG.EFR2, 'ro', 0, efr2.lo);
  reg('EFR2_HI', REG.EFR2 + 4, 'ro', 0, efr2.hi);
  reg64('CMD_HEAD', REG.CMD_HEAD, 'rw', LOG_PTR_MASK, 0);
  reg64('CMD_TAIL', REG.CMD_TAIL, 'rw', LOG_PTR_MASK, 0);
  reg64('EVT_HEAD', REG.EVT_HEAD, 'rw', LOG_PTR_MASK, 0);
  reg64('EVT_TAIL', REG.EVT_TAIL, 'rw', LOG_PTR_MASK, 0);
  reg64(
    'STATUS',
    REG.STATUS,
    'w1c',
    STATUS_EVT_OVERFLOW |
      STATUS_EVT_LOG_INT |
      STATUS_COM_WAIT_INT |
      on(ppr, STATUS_PPR_OVERFLOW | STATUS_PPR_INT) |
      on(gaLog, STATUS_GA_LOG_OVERFLOW | STATUS_GA_INT),
    0,
  );
  if (ppr) {
    reg64('PPR_HEAD', REG.PPR_HEAD, 'rw', LOG_PTR_MASK, 0);
    reg64('PPR_TAIL', REG.PPR_TAIL, 'rw', LOG_PTR_MASK, 0);
  }
  if (gaLog) {
    reg64('GA_HEAD', REG.GA_HEAD, 'rw', GA_PTR_MASK, 0);
    reg64('GA_TAIL', REG.GA_TAIL, 'rw', GA_PTR_MASK, 0);
  }
  return defs;
}
