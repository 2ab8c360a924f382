/**
 * AMD IOMMU interrupt remapping table entries (AMD I/O Virtualization Technology (IOMMU) Specification,
 * pub. 48882 rev 3.x, §2.2.5 "Interrupt Remapping Tables"; §2.2.5.1 the 32-bit entry, §2.2.5.2 the 128-bit
 * entries of the guest virtual APIC mode), the message that selects one, the checks the unit applies to a
 * fetched entry and the event flags each failure is logged with. Section numbers are as QEMU and VirtualBox
 * cite them, not checked against the PDF.
 *
 * Which format: Control.GAEn = 0, 4-byte entries; GAEn = 1 (EFR.GASup), 16-byte entries (QEMU
 * amdvi_int_remap_msi reads `ga_enabled`, Linux sizes its tables by AMD_IOMMU_GUEST_IR_GA). Within a 16-byte
 * entry GuestMode (bit 7) selects the guest virtual APIC (posted) layout, honoured only with Control.GAMEn =
 * 1 (regs.ts: with GAMEn = 0 the unit ignores it and the entry is remapped).
 *
 * Layouts (absolute bits; Linux amd_iommu_types.h `union irte`, `union irte_ga_lo/hi`; VirtualBox
 * iommu-amd.h IRTE_T, IRTE_GVA_T; QEMU amd_iommu.h):
 * - 32-bit: RemapEn 0, SupIOPF 1, IntType 4:2, RqEoi 5, DM 6, GuestMode 7, Destination 15:8, Vector 23:16,
 *   31:24 reserved. Bit 7 is Linux's rsvd_1; VirtualBox names it GuestMode and faults it like a reserved bit
 *   (a 32-bit entry cannot post), which the model follows.
 * - 128-bit remapped (GuestMode = 0): RemapEn, SupIOPF, IntType, RqEoi, DM as above, Destination[23:0]
 *   31:8, Vector 71:64, Destination[31:24] 127:120; 63:32 and 119:72 reserved (QEMU rsvd_1/rsvd_2; Linux's
 *   union gives them the posted names but its remapped writers, irte_ga_prepare and
 *   amd_iommu_deactivate_guest_mode, always zero them).
 * - 128-bit guest virtual APIC (GuestMode = 1): RemapEn 0, SupIOPF 1, GALogIntr 2, IsRun 6, Destination as
 *   above, GATag 63:32, Vector 71:64, GA root pointer 115:76 (address bits 51:12 of the vAPIC backing page);
 *   5:3, 75:72 and 119:116 reserved. VirtualBox's IRTE_GVA_T has an 8-bit destination and 127:116 reserved
 *   (an older revision); Linux's 24 + 8-bit destination is followed. Newer Linux puts GAPPIDis at bit 5 with
 *   EFR2.GAPPIDisSup, which the model does not implement, so bit 5 stays reserved.
 * The destination is 32 bits only with Control.XTEn (Linux APICID_TO_IRTE_DEST_LO/HI, QEMU with xtsup);
 * without it bits 15:8 are the APIC ID and the others are ignored, as QEMU masks them.
 *
 * The message: the entry index is MSI data[10:0] (QEMU AMDVI_IRTE_OFFSET "MSI data 10:0 bits (section
 * 2.2.5.1 Fig 14)", VirtualBox IOMMU_MSI_DATA_IRTE_OFFSET_MASK); data[10:8] is also the message type, so in
 * the 512-entry mode a fixed or arbitrated message reaches indexes 0–511 only. An index at or beyond the
 * DTE's 2^IntTabLen entries is an IO_PAGE_FAULT with I = 1, PR = 0 (VirtualBox iommuAmdIrteRead). Linux
 * composes data = index, address 0xFEE00000, plus DM = 1 "regardless of the actual destination mode"
 * when EFR2 advertises 2048 entries (fill_msi_msg): see interrupt-remapping.ts for what the unit makes of it.
 *
 * Checks (`checkIrte`, VirtualBox iommuAmdIntrRemap's order), each an IO_PAGE_FAULT with I = 1, RW = 0
 * (VirtualBox sets RW for memory writes only) and the DTE's DomainID: RemapEn = 0 (PR = 0); a reserved bit
 * (PR = 1, RZ = 1); IntType other than fixed (0) or arbitrated (1) (PR = 1, RZ = 1; QEMU refuses it too).
 * VirtualBox checks no reserved bit but GuestMode; checking the others is the model's choice. SupIOPF
 * suppresses the event of every check (VirtualBox iommuAmdIoPageFaultEventRaise), the interrupt is dropped
 * either way.
 *
 * The remapped interrupt (`irteInterrupt`): vector, destination, DM and IntType from the entry; trigger mode
 * (data bit 15) and redirection hint (address bit 3) from the message (VirtualBox iommuAmdIrteRemapMsi keeps
 * every bit the entry does not replace). QEMU maps RqEoi to the redirection hint instead; RqEoi is decoded
 * and otherwise unused. A posted entry is decoded, not posted: the vAPIC backing page, the doorbell to a
 * running vCPU (IsRun) and the GA log (GALogIntr) are not modelled.
 */
import {
  checkFieldValue,
  entryAddress,
  entryField,
  type MsiMessage,
  setEntryField,
  writeAddress,
  writeScalars,
  X86_INTERRUPT_WINDOW,
  type X86Interrupt,
} from '@iommukit/core';
import { EVENT_FLAG } from './events.js';

/** Bytes per entry: 32-bit format (GAEn = 0), 128-bit format (GAEn = 1). */
export const IRTE32_BYTES = 4;
export const IRTE128_BYTES = 16;
export const IRTE128_WORDS = 4;

/** IntType (and the MSI data's message type, bits 10:8): the x86 delivery-mode encoding. */
export const INT_TYPE = { FIXED: 0, ARBITRATED: 1, SMI: 2, NMI: 4, INIT: 5, EXTINT: 7 } as const;

interface IrteCommon {
  /** RemapEn: the entry is valid; 0 faults. */
  readonly remapEn: boolean;
  /** SupIOPF: faults through this entry log no IO_PAGE_FAULT. */
  readonly supIopf: boolean;
  /** Destination APIC ID as stored: 8 bits (32-bit format) or the 32 bits of the 128-bit format's pieces. */
  readonly destination: number;
  readonly vector: number;
  /** A bit its format reserves is set. */
  readonly reserved: boolean;
}

/** The remapped format: the 32-bit entry, or a 128-bit entry with GuestMode = 0 (or GAMEn = 0). */
export interface RemappedIrte extends IrteCommon {
  readonly guestMode: false;
  /** Delivery mode (`INT_TYPE`); only fixed and arbitrated are valid. */
  readonly intType: number;
  /** RqEoi: request EOI (not used by the model). */
  readonly rqEoi: boolean;
  /** DM: logical destination mode. */
  readonly dm: boolean;
}

/** The guest virtual APIC (posted) format: a 128-bit entry with GuestMode = 1 and GAMEn = 1. */
export interface VapicIrte extends IrteCommon {
  readonly guestMode: true;
  /** GALogIntr: log to the GA log when the vCPU is not running. */
  readonly gaLogIntr: boolean;
  /** IsRun: the vCPU runs on the destination's physical CPU. */
  readonly isRun: boolean;
  /** GATag: names the vCPU in GA log entries. */
  readonly gaTag: number;
  /** The vAPIC backing page's byte address (4 KiB aligned). */
  readonly gaRootPtr: number;
}

export type Irte = RemappedIrte | VapicIrte;

type Bits = readonly [lsb: number, width: number];
const IRTE32 = {
  remapEn: [0, 1],
  supIopf: [1, 1],
  intType: [2, 3],
  rqEoi: [5, 1],
  dm: [6, 1],
  destination: [8, 8],
  vector: [16, 8],
} as const satisfies Record<string, Bits>;
const IRTE128_REMAPPED = {
  remapEn: [0, 1],
  supIopf: [1, 1],
  intType: [2, 3],
  rqEoi: [5, 1],
  dm: [6, 1],
  vector: [64, 8],
} as const satisfies Record<string, Bits>;
const IRTE128_VAPIC = {
  remapEn: [0, 1],
  supIopf: [1, 1],
  gaLogIntr: [2, 1],
  isRun: [6, 1],
  gaTag: [32, 32],
  vector: [64, 8],
} as const satisfies Record<string, Bits>;
const GUEST_MODE_BIT = 7;
/** Destination[23:0] and [31:24] of the 128-bit formats. */
const DEST_LO: Bits = [8, 24];
const DEST_HI: Bits = [120, 8];
const GA_ROOT: readonly [lsb: number, msb: number] = [76, 115];

/** Reserved bits per 32-bit word. The 32-bit format: 31:24 and GuestMode (7). */
const IRTE32_RESERVED = 0xff00_0080;
/** 128-bit remapped: 63:32, 119:72. */
const IRTE128_REMAPPED_RESERVED = [0, 0xffff_ffff, 0xffff_ff00, 0x00ff_ffff] as const;
/** 128-bit guest virtual APIC: 5:3, 75:72, 119:116. */
const IRTE128_VAPIC_RESERVED = [0x38, 0, 0xf00, 0x00f0_0000] as const;

function anySet(words: ArrayLike<number>, masks: readonly number[]): boolean {
  for (let i = 0; i < masks.length; i++) if ((words[i]! & masks[i]!) !== 0) return true;
  return false;
}

const get = (words: ArrayLike<number>, [lsb, width]: Bits): number => entryField(words, lsb, width);
const flag = (words: ArrayLike<number>, [lsb]: Bits): boolean => entryField(words, lsb, 1) === 1;

const field32 = (word: number, [lsb, width]: Bits): number => (word >>> lsb) & (2 ** width - 1);

/** Decodes a 32-bit entry (GAEn = 0). */
export function decodeIrte32(word: number): RemappedIrte {
  return {
    guestMode: false,
    remapEn: field32(word, IRTE32.remapEn) === 1,
    supIopf: field32(word, IRTE32.supIopf) === 1,
    intType: field32(word, IRTE32.intType),
    rqEoi: field32(word, IRTE32.rqEoi) === 1,
    dm: field32(word, IRTE32.dm) === 1,
    destination: field32(word, IRTE32.destination),
    vector: field32(word, IRTE32.vector),
    reserved: (word & IRTE32_RESERVED) !== 0,
  };
}

/** Destination[31:0] from the two pieces of a 128-bit entry. */
function destination128(words: ArrayLike<number>): number {
  return get(words, DEST_LO) + get(words, DEST_HI) * 2 ** 24;
}

/**
 * Decodes a 128-bit entry (GAEn = 1) from its four words. `vapic` is Control.GAMEn = 1: only then does
 * GuestMode select the posted format.
 */
export function decodeIrte128(words: ArrayLike<number>, vapic: boolean): Irte {
  if (vapic && entryField(words, GUEST_MODE_BIT, 1) === 1)
    return {
      guestMode: true,
      remapEn: flag(words, IRTE128_VAPIC.remapEn),
      supIopf: flag(words, IRTE128_VAPIC.supIopf),
      gaLogIntr: flag(words, IRTE128_VAPIC.gaLogIntr),
      isRun: flag(words, IRTE128_VAPIC.isRun),
      destination: destination128(words),
      gaTag: get(words, IRTE128_VAPIC.gaTag),
      vector: get(words, IRTE128_VAPIC.vector),
      gaRootPtr: entryAddress(words, GA_ROOT[0], GA_ROOT[1]),
      reserved: anySet(words, IRTE128_VAPIC_RESERVED),
    };
  return {
    guestMode: false,
    remapEn: flag(words, IRTE128_REMAPPED.remapEn),
    supIopf: flag(words, IRTE128_REMAPPED.supIopf),
    intType: get(words, IRTE128_REMAPPED.intType),
    rqEoi: flag(words, IRTE128_REMAPPED.rqEoi),
    dm: flag(words, IRTE128_REMAPPED.dm),
    destination: destination128(words),
    vector: get(words, IRTE128_REMAPPED.vector),
    reserved: anySet(words, IRTE128_REMAPPED_RESERVED),
  };
}

type Init<E extends Irte> = Partial<Omit<E, 'guestMode' | 'reserved'>>;
/** A 32-bit entry to encode: fields not given are 0. */
export type Irte32Init = Init<RemappedIrte>;
/** A 128-bit entry to encode: remapped unless `guestMode` is true. */
export type Irte128Init =
  | ({ readonly guestMode?: false } & Init<RemappedIrte>)
  | ({ readonly guestMode: true } & Init<VapicIrte>);

/**
 * Encodes a 32-bit entry as Linux's irte_prepare writes one (`EINVAL` naming the field for a value it
 * cannot hold, an APIC ID above 255 included).
 */
export function encodeIrte32(fields: Irte32Init): number {
  const words = new Uint32Array(1);
  writeScalars(words, IRTE32, fields, 'IRTE');
  return words[0]!;
}

/**
 * Encodes a 128-bit entry as Linux's irte_ga_prepare (remapped) or amd_iommu_activate_guest_mode (posted)
 * write one: the destination split into bits 31:8 and 127:120, the GA root pointer 4 KiB aligned.
 */
export function encodeIrte128(fields: Irte128Init): Uint32Array {
  const words = new Uint32Array(IRTE128_WORDS);
  const record = fields as Readonly<Record<string, unknown>>;
  if (fields.guestMode === true) {
    setEntryField(words, GUEST_MODE_BIT, 1, 1);
    writeScalars(words, IRTE128_VAPIC, record, 'IRTE');
    writeAddress(words, GA_ROOT, fields.gaRootPtr, 'IRTE', 'gaRootPtr');
  } else writeScalars(words, IRTE128_REMAPPED, record, 'IRTE');
  if (fields.destination !== undefined) {
    const apicId = checkFieldValue('IRTE', 'destination', fields.destination, 32);
    setEntryField(words, DEST_LO[0], DEST_LO[1], apicId % 2 ** 24);
    setEntryField(words, DEST_HI[0], DEST_HI[1], Math.floor(apicId / 2 ** 24));
  }
  return words;
}

/** Why the unit refuses an entry (each an IO_PAGE_FAULT, `irteFaultFlags`). */
export const IRTE_FAULT = {
  /** RemapEn = 0. */
  REMAP_DISABLED: 1,
  /** A reserved bit (GuestMode in a 32-bit entry among them). */
  RESERVED_BITS: 2,
  /** IntType other than fixed or arbitrated. */
  INT_TYPE: 3,
} as const;
export type IrteCheck = 0 | (typeof IRTE_FAULT)[keyof typeof IRTE_FAULT];

/** Whether the unit may use a fetched entry: 0, or the first `IRTE_FAULT` in the module comment's order. */
export function checkIrte(e: Irte): IrteCheck {
  if (!e.remapEn) return IRTE_FAULT.REMAP_DISABLED;
  if (e.reserved) return IRTE_FAULT.RESERVED_BITS;
  if (!e.guestMode && e.intType > INT_TYPE.ARBITRATED) return IRTE_FAULT.INT_TYPE;
  return 0;
}

/** The IO_PAGE_FAULT flags of a refused entry: I, and PR and RZ once RemapEn is set (VirtualBox). */
export function irteFaultFlags(check: Exclude<IrteCheck, 0>): number {
  return check === IRTE_FAULT.REMAP_DISABLED ? EVENT_FLAG.I : EVENT_FLAG.I | EVENT_FLAG.PR | EVENT_FLAG.RZ;
}

/** The IO_PAGE_FAULT flags of an index beyond the DTE's table: I only (VirtualBox, PR = RZ = 0). */
export const INDEX_BEYOND_TABLE_FLAGS = EVENT_FLAG.I;

// The MSI (address, data) as the unit reads it.
/** Data bits 10:0: the entry index. */
export const MSI_DATA_INDEX_MASK = 0x7ff;
/** Data bits 10:8: the message type (`INT_TYPE`). */
export const MSI_DATA_TYPE_SHIFT = 8;
/** Data bit 15: level-triggered. */
export const MSI_DATA_LEVEL = 1 << 15;
/** Address bit 2: logical destination mode. */
export const MSI_ADDRESS_DM = 1 << 2;
/** Address bit 3: redirection hint. */
export const MSI_ADDRESS_RH = 1 << 3;

/** The entry index an MSI's data selects. */
export function msiIrteIndex(data: number): number {
  return data & MSI_DATA_INDEX_MASK;
}

/** The message type (delivery mode) of an MSI's data. */
export function msiType(data: number): number {
  return (data >>> MSI_DATA_TYPE_SHIFT) & 7;
}

/** The byte address of entry `index` of the table at `intTablePtr`; `ga` is Control.GAEn. */
export function irteAddress(intTablePtr: number, index: number, ga: boolean): number {
  return intTablePtr + index * (ga ? IRTE128_BYTES : IRTE32_BYTES);
}

/**
 * The message a device sends to use entry `index` (Linux fill_msi_msg): data = index, address 0xFEE00000,
 * with DM = 1 when the unit is in the 2048-entry mode (`twoK`).
 */
export function remappedMsi(index: number, twoK: boolean): MsiMessage {
  checkFieldValue('remapped MSI', 'index', index, 11);
  const dm = twoK ? BigInt(MSI_ADDRESS_DM) : 0n;
  return { address: X86_INTERRUPT_WINDOW.base | dm, data: index };
}

/**
 * The interrupt a usable remapped entry delivers for the message (`addressLow`, `data`): `xt` is
 * Control.XTEn (32-bit destinations; otherwise bits 7:0 of the stored destination).
 */
export function irteInterrupt(e: RemappedIrte, xt: boolean, addressLow: number, data: number): X86Interrupt {
  return {
    vector: e.vector,
    destination: xt ? e.destination : e.destination & 0xff,
    destinationMode: e.dm ? 'logical' : 'physical',
    deliveryMode: e.intType === INT_TYPE.FIXED ? 'fixed' : 'lowest-priority',
    trigger: (data & MSI_DATA_LEVEL) !== 0 ? 'level' : 'edge',
    redirectionHint: (addressLow & MSI_ADDRESS_RH) !== 0,
  };
}
