/**
 * The AMD IOMMU Device Table Entry (AMD I/O Virtualization Technology (IOMMU) Specification, pub. 48882
 * rev 3.x, §2.2.2 Device Table, §2.2.2.1 Device Table Entry Format): 256 bits, eight little-endian 32-bit
 * words, the entry of the 16-bit DeviceID at DevTblBase + 32 · DeviceID. Bits are absolute, 64 · N + b for
 * bit b of data[N], as the spec draws them. The entry selects, per device, the host (v1) translation
 * (V, TV, Mode, host page-table root, IR/IW, DomainID), the guest (v2) translation (GV, GLX, the GCR3 table
 * root in three pieces, GuestPagingMode, GIoV, PPR), ATS and fault controls, and the interrupt remapping
 * table (IV, IntTabLen, IntTablePtr, IntCtl and the pass-through bits).
 *
 * Field positions: FreeBSD sys/x86/iommu/amd_reg.h (`struct amdiommu_dte`, 2024) gives every field;
 * VirtualBox include/VBox/iommu-amd.h (`DTE_T`) and Linux drivers/iommu/amd/amd_iommu_types.h (DTE_*,
 * DEV_ENTRY_*) agree on all they define. Only FreeBSD defines SATS (106), HPTMode (187), vImuEn (207),
 * GDeviceID (223:208) and GuestID (239:224); VirtualBox's DTE_T calls 106, 187 and 245:192 reserved (an
 * older revision; its newest valid mask already accepts 187). Linux names GuestPagingMode (183:182) and the
 * reserved 181:180. Bit 245 is "not checked, available to software" (FreeBSD): neither decoded nor reserved.
 *
 * What the bits mean for a DMA (`dmaDisposition`): V = 0, the entry is not valid and the access is forwarded
 * untranslated (VirtualBox iommuAmdDteLookup, citing spec Table 5 "Feature Enablement for Address
 * Translation"; QEMU amdvi_as_to_dte). V = 1, TV = 0: the translation fields are not valid and a request
 * needing a walk ends there: QEMU drops it ("walk terminated"), VirtualBox logs IO_PAGE_FAULT (PR = 0) and
 * target-aborts, and mainline Linux writes exactly V = 1, TV = 0 as its blocking DTE (clear_dte_entry:
 * "block all DMA"). V = 1, TV = 1, Mode = 0: no host translation, the address is the system physical
 * address, but IR/IW still decide the access (VirtualBox "GPA=SPA, but the permission bits are important";
 * Linux's identity domain is V | TV | IR | IW with Mode 0; QEMU's DTE mode-0 qtest). Mode 1–6: that many
 * host levels; 7 is reserved.
 *
 * Checks (`checkDte`, `checkDteInterrupt`) return 0 or a reason the unit reports as ILLEGAL_DEV_TABLE_ENTRY
 * (spec §2.5, event log; section numbers here are as the sources cite them, not checked against the PDF). Following VirtualBox, the entry is two halves checked by the path that uses them:
 * a DMA checks the translation half only when V = 1 (bits 127:0 there; here also 255:192 and
 * GuestPagingMode, which FreeBSD and Linux show are translation fields), an interrupt checks the interrupt
 * half only when IV = 1 (VirtualBox checks 255:128 there; QEMU checks all four qwords on every fetch).
 *
 * `checkDte` (V = 1), in this order — reserved bits before encodings as VirtualBox orders them, the order
 * among encodings the model's:
 * 1. RESERVED_BITS: fixed reserved bits 6:2, 63, 206:192, 244:240 (VirtualBox's valid masks, FreeBSD's
 *    rsrv fields); and bits reserved because the unit lacks a feature: GV, GLX, the GCR3 root (60:58,
 *    95:80, 127:107) and GuestPagingMode without EFR.GTSup (VirtualBox's GTSup mask has 55:60 and 80:95;
 *    127:107 and 183:182 complete the same fields); GIoV without EFR.GIoSup; PPR and GPRP without
 *    EFR.EPHSup (VirtualBox's EPHSup mask; PPR also needs EFR.PPRSup, as Linux only sets it with GT, PPR and
 *    EPHSup); vImuEn, GDeviceID and GuestID without the hardware vIOMMU.
 * 2. With TV = 1, HOST_TRANSLATION: Mode 7 (FreeBSD PGMODE_RSRV), Mode above the host levels EFR.HATS
 *    advertises (VirtualBox raises IO_PAGE_FAULT here and says it is unsure; the model treats a depth the
 *    unit lacks like the spec's HATDis case, which QEMU quotes as ILLEGAL_DEV_TABLE_ENTRY); HAD = 2
 *    (FreeBSD HAD_RSRV). Units with host translation disabled (HATDis) are not modelled.
 * 3. With GV = 1, GUEST_TRANSLATION: GLX 3 (FreeBSD GLX_RSRV) or above EFR.GLXSup, GuestPagingMode 2 or 3
 *    (FreeBSD GPM_RSRV), 5-level without EFR.GATS 5-level support (Linux validate_gdte_nested).
 * `checkDteInterrupt` (IV = 1), for fixed and arbitrated interrupts, the ones IntCtl governs: reserved bits
 * 181:180 (RESERVED_BITS), IntCtl 3 (INT_CTL), then with IntCtl = remap IntTabLen above 11 (INT_TAB_LEN:
 * VirtualBox's exclusive maximum 12; Linux's 2048-entry value is 11), VirtualBox's order.
 * Not checked: IoCtl 3 and SysMgt (no port I/O or system-management messages are modelled); HAD without
 * EFR.HASup/HDSup (Linux sets HAD only with HDSup, but no stored source calls the bits reserved without it).
 */
import {
  checkFieldAddress,
  type EntryLayout,
  entryField,
  entryReader,
  type ScalarLayoutOf,
  setEntryField,
  writeEntryFields,
} from '@iommukit/core';
import type { AmdFeatures } from './features.js';

export const DTE_WORDS = 8;
export const DTE_BYTES = 32;

/** Mode (bits 11:9): host page-table levels; 0 is no host translation, 7 is reserved. */
export const DTE_MODE = { NONE: 0, MAX_LEVELS: 6, RESERVED: 7 } as const;

/** HAD (bits 8:7): host access/dirty updates in the v1 tables. 2 is reserved. */
export const DTE_HAD = { NONE: 0, ACCESSED: 1, RESERVED: 2, ACCESSED_DIRTY: 3 } as const;

/** GuestPagingMode (bits 183:182): the x86 guest tables' depth. 2 and 3 are reserved. */
export const GUEST_PAGING_MODE = { LEVEL_4: 0, LEVEL_5: 1 } as const;

/** IntCtl (bits 189:188): fixed and arbitrated interrupts. 3 is reserved. */
export const INT_CTL = { TARGET_ABORT: 0, FORWARD_UNMAPPED: 1, REMAP: 2, RESERVED: 3 } as const;

/** IoCtl (bits 100:99): port I/O space transactions. 3 is reserved. */
export const IO_CTL = { TARGET_ABORT: 0, FORWARD: 1, MAPPED: 2 } as const;

/** SysMgt (bits 105:104): system-management messages (FreeBSD: target abort, forward all, INT, translate). */
export const SYS_MGT = { DENY: 0, FORWARD_ALL: 1, FORWARD_INT: 2, TRANSLATE: 3 } as const;

/** The largest IntTabLen: 2^11 = 2048 interrupt table entries. */
export const INT_TAB_LEN_MAX = 11;

/** The Device Table Entry, every field (§2.2.2.1). */
export interface DeviceTableEntry {
  // data[0]
  /** V: the entry is valid; 0 forwards DMA untranslated. */
  readonly v: boolean;
  /** TV: the translation fields are valid; 0 with V = 1 blocks DMA. */
  readonly tv: boolean;
  /** HAD: host access/dirty update (`DTE_HAD`). */
  readonly had: number;
  /** Mode: host page-table levels (`DTE_MODE`). */
  readonly mode: number;
  /** Host (v1) page-table root, bits 51:12, as a byte address. */
  readonly hostPageTableRootPtr: number;
  /** PPR: peripheral page requests of this device are logged (enhanced PPR handling). */
  readonly ppr: boolean;
  /** GPRP: guest PPR responses carry the PASID. */
  readonly gprp: boolean;
  /** GIoV: requests without PASID are translated by the guest tables of PASID 0. */
  readonly giov: boolean;
  /** GV: guest translation is valid (the GCR3 table is used for requests with PASID). */
  readonly gv: boolean;
  /** GLX: GCR3 table levels − 1. */
  readonly glx: number;
  /** GCR3 table root pointer (bits 60:58, 95:80, 127:107 hold address bits 14:12, 30:15, 51:31). */
  readonly gcr3TableRootPtr: number;
  /** IR / IW: read and write permission, ANDed with every level's. */
  readonly ir: boolean;
  readonly iw: boolean;
  // data[1]
  /** DomainID: tags this device's translations in the IOMMU's caches. */
  readonly domainId: number;
  /** I: IOTLB enable, the device may send ATS translation requests. */
  readonly i: boolean;
  /** SE: suppress I/O page fault events after the first for this device. */
  readonly se: boolean;
  /** SA: suppress all I/O page fault events for this device. */
  readonly sa: boolean;
  /** IoCtl: port I/O control (`IO_CTL`). */
  readonly ioCtl: number;
  /** Cache: IOTLB cache hint. */
  readonly cache: boolean;
  /** SD: snoop disable for this device's translated accesses. */
  readonly sd: boolean;
  /** EX: the exclusion range applies to this device. */
  readonly ex: boolean;
  /** SysMgt: system-management message handling (`SYS_MGT`). */
  readonly sysMgt: number;
  /** SATS: secure ATS. */
  readonly sats: boolean;
  // data[2]
  /** IV: the interrupt fields are valid; 0 forwards interrupts unremapped. */
  readonly iv: boolean;
  /** IntTabLen: the interrupt table holds 2^IntTabLen entries. */
  readonly intTabLen: number;
  /** IG: unmapped interrupts are dropped without an event. */
  readonly ig: boolean;
  /** Interrupt remapping table root, bits 51:6 (128-byte aligned by software). */
  readonly intTablePtr: number;
  /** GuestPagingMode (`GUEST_PAGING_MODE`). */
  readonly guestPagingMode: number;
  /** INIT, ExtInt, NMI pass-through. */
  readonly initPass: boolean;
  readonly eIntPass: boolean;
  readonly nmiPass: boolean;
  /** HPTMode: host page-table mode hint. */
  readonly hptMode: boolean;
  /** IntCtl: fixed and arbitrated interrupt control (`INT_CTL`). */
  readonly intCtl: number;
  /** LINT0 / LINT1 pass-through. */
  readonly lint0Pass: boolean;
  readonly lint1Pass: boolean;
  // data[3]
  /** vImuEn: the hardware vIOMMU handles this device. */
  readonly vImuEn: boolean;
  /** GDeviceID: the DeviceID the guest sees through the hardware vIOMMU. */
  readonly gDeviceId: number;
  /** GuestID: the hardware vIOMMU guest this device belongs to. */
  readonly guestId: number;
  /** AttrV: Mode0FC and SnoopAttr are valid. */
  readonly attrV: boolean;
  /** Mode0FC: force-coherent for Mode 0 accesses (what PTE.FC says with translation). */
  readonly mode0Fc: boolean;
  /** SnoopAttr: guest PTE.PAT to ATS N-bit translation. */
  readonly snoopAttr: number;
}

/**
 * Scalar fields, absolute [lsb, width] (§2.2.2.1). The GCR3 root is an address in three pieces
 * (`GCR3_ROOT_PIECES`); the two pointers are read whole (`DTE_ADDRESSES`).
 */
export const DTE_LAYOUT = {
  v: [0, 1],
  tv: [1, 1],
  had: [7, 2],
  mode: [9, 3],
  ppr: [52, 1],
  gprp: [53, 1],
  giov: [54, 1],
  gv: [55, 1],
  glx: [56, 2],
  ir: [61, 1],
  iw: [62, 1],
  domainId: [64, 16],
  i: [96, 1],
  se: [97, 1],
  sa: [98, 1],
  ioCtl: [99, 2],
  cache: [101, 1],
  sd: [102, 1],
  ex: [103, 1],
  sysMgt: [104, 2],
  sats: [106, 1],
  iv: [128, 1],
  intTabLen: [129, 4],
  ig: [133, 1],
  guestPagingMode: [182, 2],
  initPass: [184, 1],
  eIntPass: [185, 1],
  nmiPass: [186, 1],
  hptMode: [187, 1],
  intCtl: [188, 2],
  lint0Pass: [190, 1],
  lint1Pass: [191, 1],
  vImuEn: [207, 1],
  gDeviceId: [208, 16],
  guestId: [224, 16],
  attrV: [246, 1],
  mode0Fc: [247, 1],
  snoopAttr: [248, 8],
} as const satisfies ScalarLayoutOf<
  Omit<DeviceTableEntry, 'hostPageTableRootPtr' | 'gcr3TableRootPtr' | 'intTablePtr'>
>;

/** Pointer fields, absolute [lsb, msb], read as byte addresses. */
export const DTE_ADDRESSES = {
  hostPageTableRootPtr: [12, 51],
  intTablePtr: [134, 179],
} as const;

/** The GCR3 root's pieces: absolute [lsb, width] in the entry, and the address bit each piece starts at. */
export const GCR3_ROOT_PIECES = [
  { bits: [58, 3], addressLsb: 12 },
  { bits: [80, 16], addressLsb: 15 },
  { bits: [107, 21], addressLsb: 31 },
] as const;

const STRUCTURE = 'device table entry';
const [GCR3_LOW, GCR3_MID, GCR3_HIGH] = GCR3_ROOT_PIECES;
const ENCODED: EntryLayout = { scalars: DTE_LAYOUT, addresses: DTE_ADDRESSES };

type Writable<T> = { -readonly [K in keyof T]: T[K] };

// The compiled reader fills gcr3TableRootPtr with the low piece and `decodeDte` completes it in place, so a
// miss allocates one object of one shape (see `entryReader`).
const readDte = entryReader<Writable<DeviceTableEntry>>({
  scalars: { ...DTE_LAYOUT, gcr3TableRootPtr: GCR3_LOW.bits },
  addresses: DTE_ADDRESSES,
});

/** Decodes a DTE from its eight words (the DTE-cache miss path). */
export function decodeDte(words: ArrayLike<number>): DeviceTableEntry {
  const dte = readDte(words);
  dte.gcr3TableRootPtr =
    dte.gcr3TableRootPtr * 2 ** GCR3_LOW.addressLsb +
    entryField(words, GCR3_MID.bits[0], GCR3_MID.bits[1]) * 2 ** GCR3_MID.addressLsb +
    entryField(words, GCR3_HIGH.bits[0], GCR3_HIGH.bits[1]) * 2 ** GCR3_HIGH.addressLsb;
  return dte;
}

/**
 * Encodes a DTE, as a driver writes one. Fields not given are 0; a value a field cannot hold (a GCR3 root
 * not 4 KiB aligned or at or above 2^52 included) is `EINVAL` naming the field.
 */
export function encodeDte(fields: Partial<DeviceTableEntry> = {}): Uint32Array {
  const words = new Uint32Array(DTE_WORDS);
  writeEntryFields(words, ENCODED, fields, STRUCTURE);
  if (fields.gcr3TableRootPtr !== undefined) {
    const root = checkFieldAddress(STRUCTURE, 'gcr3TableRootPtr', fields.gcr3TableRootPtr, 12, 51);
    // setEntryField keeps the low `width` bits: each piece takes the address bits from its own up.
    for (const { bits, addressLsb } of GCR3_ROOT_PIECES)
      setEntryField(words, bits[0], bits[1], Math.floor(root / 2 ** addressLsb));
  }
  return words;
}

/** Address of the DTE of `deviceId` in the device table at `devTblBase`. */
export function dteAddress(devTblBase: number, deviceId: number): number {
  return devTblBase + (deviceId & 0xffff) * DTE_BYTES;
}

/**
 * Whether a device table of DevTblBase.Size (bits 8:0: 4 KiB pages − 1) holds the DTE of `deviceId`.
 * VirtualBox reports a DTE beyond it as IO_PAGE_FAULT (iommuAmdDteRead).
 */
export function deviceTableHolds(sizeField: number, deviceId: number): boolean {
  return ((deviceId & 0xffff) + 1) * DTE_BYTES <= (sizeField + 1) * 4096;
}

/** What a DTE does with a DMA before any table is read. */
export const DMA_DISPOSITION = {
  /** V = 0: forwarded untranslated, no permission check. */
  UNTRANSLATED: 0,
  /** V = 1, TV = 0: blocked, the walk ends at the DTE. */
  BLOCKED: 1,
  /** V = 1, TV = 1: IR/IW apply; host translation by Mode (0: the address is the SPA), guest by GV. */
  TRANSLATE: 2,
} as const;
export type DmaDisposition = (typeof DMA_DISPOSITION)[keyof typeof DMA_DISPOSITION];

/** The disposition of a DMA through `dte` (see the module comment for the sources). */
export function dmaDisposition(dte: Pick<DeviceTableEntry, 'v' | 'tv'>): DmaDisposition {
  if (!dte.v) return DMA_DISPOSITION.UNTRANSLATED;
  return dte.tv ? DMA_DISPOSITION.TRANSLATE : DMA_DISPOSITION.BLOCKED;
}

/** What the DTE checks consult of the unit's features. */
export type DteFeatures = Pick<
  AmdFeatures,
  | 'guestTranslation'
  | 'guestIoProtection'
  | 'guestLevels'
  | 'hostLevels'
  | 'gcr3Levels'
  | 'pageRequests'
  | 'enhancedPpr'
>;

/** Why a DTE is illegal (all reported as ILLEGAL_DEV_TABLE_ENTRY; RESERVED_BITS is the one with RZ = 1). */
export const DTE_ILLEGAL = {
  /** A reserved bit, or a bit of a feature the unit lacks, is set. */
  RESERVED_BITS: 1,
  /** Mode 7 or beyond EFR.HATS, a host root without host translation, or HAD 2. */
  HOST_TRANSLATION: 2,
  /** GLX 3 or beyond EFR.GLXSup, or a GuestPagingMode the unit does not walk. */
  GUEST_TRANSLATION: 3,
  /** IntCtl 3. */
  INT_CTL: 4,
  /** IntTabLen above 11 with IntCtl = remap. */
  INT_TAB_LEN: 5,
} as const;
export type DteCheck = 0 | (typeof DTE_ILLEGAL)[keyof typeof DTE_ILLEGAL];

// Reserved bits per 32-bit word (bits 31:0, 63:32, …), the half each check reads.
/** 6:2, 63, 206:192, 244:240. */
export const DTE_RESERVED_TRANSLATION = [0x7c, 0x8000_0000, 0, 0, 0, 0, 0x7fff, 0x001f_0000] as const;
/** 181:180. */
export const DTE_RESERVED_INTERRUPT = [0, 0, 0, 0, 0, 0x0030_0000, 0, 0] as const;

function reservedBitsSet(words: ArrayLike<number>, masks: readonly number[]): boolean {
  for (let i = 0; i < masks.length; i++) if ((words[i]! & masks[i]!) !== 0) return true;
  return false;
}

/** Bits of fields the unit does not implement. */
function featureBitsSet(dte: DeviceTableEntry, f: DteFeatures): boolean {
  return (
    (!f.guestTranslation &&
      (dte.gv || dte.glx !== 0 || dte.gcr3TableRootPtr !== 0 || dte.guestPagingMode !== 0)) ||
    (!f.guestIoProtection && dte.giov) ||
    (!(f.enhancedPpr && f.pageRequests) && dte.ppr) ||
    (!f.enhancedPpr && dte.gprp) ||
    // The model has no hardware vIOMMU (not in mainline Linux): its fields are always reserved.
    dte.vImuEn ||
    dte.gDeviceId !== 0 ||
    dte.guestId !== 0
  );
}

/**
 * The translation half of a DTE a DMA, translation request or page request uses: 0 (usable, or V = 0 and
 * nothing to check), or the first `DTE_ILLEGAL` reason in the order of the module comment.
 */
export function checkDte(dte: DeviceTableEntry, words: ArrayLike<number>, features: DteFeatures): DteCheck {
  if (!dte.v) return 0;
  if (reservedBitsSet(words, DTE_RESERVED_TRANSLATION) || featureBitsSet(dte, features))
    return DTE_ILLEGAL.RESERVED_BITS;
  if (
    dte.tv &&
    // Mode 7 is above every EFR.HATS (at most 6 levels).
    (dte.mode > features.hostLevels || dte.had === DTE_HAD.RESERVED)
  )
    return DTE_ILLEGAL.HOST_TRANSLATION;
  if (
    dte.gv &&
    // GLX 3 is at or above every EFR.GLXSup (at most 3 levels).
    (dte.glx >= features.gcr3Levels ||
      dte.guestPagingMode > GUEST_PAGING_MODE.LEVEL_5 ||
      (dte.guestPagingMode === GUEST_PAGING_MODE.LEVEL_5 && features.guestLevels < 5))
  )
    return DTE_ILLEGAL.GUEST_TRANSLATION;
  return 0;
}

/**
 * The interrupt half of a DTE a fixed or arbitrated interrupt uses: 0 (usable, or IV = 0: forwarded
 * unremapped), or the first `DTE_ILLEGAL` reason in the order of the module comment.
 */
export function checkDteInterrupt(dte: DeviceTableEntry, words: ArrayLike<number>): DteCheck {
  if (!dte.iv) return 0;
  if (reservedBitsSet(words, DTE_RESERVED_INTERRUPT)) return DTE_ILLEGAL.RESERVED_BITS;
  if (dte.intCtl === INT_CTL.RESERVED) return DTE_ILLEGAL.INT_CTL;
  if (dte.intCtl === INT_CTL.REMAP && dte.intTabLen > INT_TAB_LEN_MAX) return DTE_ILLEGAL.INT_TAB_LEN;
  return 0;
}
