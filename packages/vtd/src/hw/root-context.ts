/**
 * The device-to-domain structures of VT-d: the root table (one 16-byte entry per bus, at RTADDR) and the
 * context tables its entries point to, in legacy mode (RTADDR.TTM = 00, §9.1 Root Entry, §9.3 Context
 * Entry) and scalable mode (TTM = 01, §9.2 Scalable-Mode Root Entry, §9.4 Scalable-Mode Context Entry).
 * Bit numbers are absolute, 64 · qword + bit, as the spec draws them; entries are little-endian 32-bit
 * words.
 *
 * Field positions: Linux drivers/iommu/intel/iommu.h, QEMU hw/i386/intel_iommu_internal.h and VirtualBox
 * include/VBox/iommu-intel.h agree on every field decoded here. Pointer fields are read as bits 63:12, so
 * a pointer at or above 2^HAW (the spec's "bits 63:HAW are reserved") is seen, not silently truncated.
 *
 * Checks return 0 for a usable entry or the fault reason the unit records (`FR`), in this order:
 * - Root entry: not present (0x1 / 0x39), then reserved fields (0xA / 0x3A). In scalable mode only the half
 *   the devfn selects is examined (LP/LCTP for devfn 0–127, UP/UCTP for 128–255); QEMU checks the reserved
 *   bits of both halves, the spec's choice is not confirmed by a stored source.
 * - Legacy context entry: not present (0x2), reserved fields (0xB), then invalid programming (0x3): TT 11b
 *   (reserved), TT 01b without ECAP.DT, TT 10b without ECAP.PT, AW not in CAP.SAGAW — all 0x3 as QEMU's
 *   `vtd_ce_type_check` and AW check report them. A request TT blocks (0xD) depends on the request, not
 *   the entry, and is the translation path's check.
 * - Scalable-mode context entry: not present (0x41), then reserved fields (0x42). DTE without ECAP.DT,
 *   PASIDE without PASID support and PRE without ECAP.PRS count as reserved fields: the spec treats those
 *   fields as Reserved(0) on such units (recalled spec wording; no stored source states the code). No
 *   stored source names an entry-only condition for 0x43, so it is not produced here.
 * - Scalable-mode context entry against one request (`checkScalableContextRequest`): DTE clear for a
 *   translation request (0x44), PASIDE clear for a request with PASID (0x45), the PASID beyond the PASID
 *   directory PDTS sizes (0x46), PRE clear for a page request (0x47), RID_PASID beyond that directory for a
 *   request without PASID (0x48). Meanings from Linux's fault strings; this order is the model's choice.
 *
 * Reserved fields checked (spec §9.1–§9.4, as QEMU's VTD_*_RSVD masks and VirtualBox's valid masks have
 * them): root entry bits 11:1 and, legacy, all of qword 1; legacy context bits 11:4, 71 and 127:88;
 * scalable context bits 8:5, 127:85 and 255:128; every pointer at or above 2^HAW; DID values at or above
 * 2^(CAP.ND width) (spec: "unused DID bits are treated as reserved", recalled, not in a stored source).
 */
import {
  type EntryLayout,
  entryAddress,
  entryField,
  entryReader,
  type ScalarLayoutOf,
  writeEntryFields,
} from '@iommukit/core';
import { type FaultCheck, FR } from './fault-reasons.js';
import type { SsLevels, VtdFeatures } from './features.js';

export const ROOT_ENTRY_WORDS = 4;
export const ROOT_ENTRY_BYTES = 16;
/** Root table: 4 KiB, one entry per bus. */
export const ROOT_TABLE_ENTRIES = 256;
export const LEGACY_CONTEXT_WORDS = 4;
export const LEGACY_CONTEXT_BYTES = 16;
/** Legacy context table: 4 KiB, one entry per devfn. */
export const LEGACY_CONTEXT_ENTRIES = 256;
export const SCALABLE_CONTEXT_WORDS = 8;
export const SCALABLE_CONTEXT_BYTES = 32;
/** Scalable-mode context table: 4 KiB, one entry per devfn & 0x7f (LCTP holds devfn 0–127, UCTP 128–255). */
export const SCALABLE_CONTEXT_ENTRIES = 128;

/** Legacy context entry TT (§9.3). 11b is reserved. */
export const CONTEXT_TT = { MULTI_LEVEL: 0b00, DEVICE_TLB: 0b01, PASS_THROUGH: 0b10 } as const;

/** Legacy root entry (§9.1). */
export interface LegacyRootEntry {
  readonly p: boolean;
  /** Context-table pointer, bits 63:12, as a byte address. */
  readonly ctp: number;
}

/** Scalable-mode root entry (§9.2): the lower half serves devfn 0–127, the upper half devfn 128–255. */
export interface ScalableRootEntry {
  readonly lp: boolean;
  readonly lctp: number;
  readonly up: boolean;
  readonly uctp: number;
}

/** Legacy context entry (§9.3). */
export interface LegacyContextEntry {
  readonly p: boolean;
  /** Fault processing disable: qualified faults of requests through this entry are not recorded. */
  readonly fpd: boolean;
  /** Translation type (`CONTEXT_TT`). */
  readonly tt: number;
  /** Second-stage page-table pointer, bits 63:12 (ignored with TT = pass-through). */
  readonly slptptr: number;
  /** Adjusted guest address width: 1 = 39-bit/3-level, 2 = 48-bit/4-level, 3 = 57-bit/5-level. */
  readonly aw: number;
  /** Bits 70:67, ignored by hardware, available to software. */
  readonly avail: number;
  readonly did: number;
}

/** Scalable-mode context entry (§9.4). */
export interface ScalableContextEntry {
  readonly p: boolean;
  readonly fpd: boolean;
  /** Device-TLB enable: translation requests (ATS) are allowed. */
  readonly dte: boolean;
  /** PASID enable: requests with PASID are allowed. */
  readonly paside: boolean;
  /** Page request enable: page requests (PRI) are allowed. */
  readonly pre: boolean;
  /** PASID directory size: 2^(PDTS + 7) entries. */
  readonly pdts: number;
  /** PASID directory pointer, bits 63:12. */
  readonly pasidDirPtr: number;
  /** PASID that requests without PASID are processed with. */
  readonly ridPasid: number;
  /** Privilege of requests without PASID: 1 = supervisor. */
  readonly ridPriv: boolean;
}

/** Legacy root entry fields, absolute bits (§9.1). */
export const LEGACY_ROOT_LAYOUT = { p: [0, 1] } as const satisfies ScalarLayoutOf<
  Omit<LegacyRootEntry, 'ctp'>
>;

/** Scalable-mode root entry fields, absolute bits (§9.2). */
export const SCALABLE_ROOT_LAYOUT = { lp: [0, 1], up: [64, 1] } as const satisfies ScalarLayoutOf<
  Omit<ScalableRootEntry, 'lctp' | 'uctp'>
>;

/** Legacy context entry fields, absolute bits (§9.3). */
export const LEGACY_CONTEXT_LAYOUT = {
  p: [0, 1],
  fpd: [1, 1],
  tt: [2, 2],
  aw: [64, 3],
  avail: [67, 4],
  did: [72, 16],
} as const satisfies ScalarLayoutOf<Omit<LegacyContextEntry, 'slptptr'>>;

/** Scalable-mode context entry fields, absolute bits (§9.4). */
export const SCALABLE_CONTEXT_LAYOUT = {
  p: [0, 1],
  fpd: [1, 1],
  dte: [2, 1],
  paside: [3, 1],
  pre: [4, 1],
  pdts: [9, 3],
  ridPasid: [64, 20],
  ridPriv: [84, 1],
} as const satisfies ScalarLayoutOf<Omit<ScalableContextEntry, 'pasidDirPtr'>>;

/** A 4 KiB-aligned pointer in bits 63:12 of qword `q`. */
const pointerIn = (q: number) => [64 * q + 12, 64 * q + 63] as const;

const LEGACY_ROOT_ENTRY = { scalars: LEGACY_ROOT_LAYOUT, addresses: { ctp: pointerIn(0) } };
const SCALABLE_ROOT_ENTRY = {
  scalars: SCALABLE_ROOT_LAYOUT,
  addresses: { lctp: pointerIn(0), uctp: pointerIn(1) },
};
const LEGACY_CONTEXT_ENTRY = { scalars: LEGACY_CONTEXT_LAYOUT, addresses: { slptptr: pointerIn(0) } };
const SCALABLE_CONTEXT_ENTRY = { scalars: SCALABLE_CONTEXT_LAYOUT, addresses: { pasidDirPtr: pointerIn(0) } };

export const decodeLegacyRootEntry = entryReader<LegacyRootEntry>(LEGACY_ROOT_ENTRY);
export const decodeScalableRootEntry = entryReader<ScalableRootEntry>(SCALABLE_ROOT_ENTRY);
export const decodeLegacyContext = entryReader<LegacyContextEntry>(LEGACY_CONTEXT_ENTRY);
export const decodeScalableContext = entryReader<ScalableContextEntry>(SCALABLE_CONTEXT_ENTRY);

/**
 * Encoders: the host driver writes these entries. Fields not given are 0; a value a field cannot hold is
 * `EINVAL` naming the field.
 */
export function encodeLegacyRootEntry(fields: Partial<LegacyRootEntry> = {}): Uint32Array {
  return encode(ROOT_ENTRY_WORDS, LEGACY_ROOT_ENTRY, fields, 'root entry');
}

export function encodeScalableRootEntry(fields: Partial<ScalableRootEntry> = {}): Uint32Array {
  return encode(ROOT_ENTRY_WORDS, SCALABLE_ROOT_ENTRY, fields, 'scalable-mode root entry');
}

export function encodeLegacyContext(fields: Partial<LegacyContextEntry> = {}): Uint32Array {
  return encode(LEGACY_CONTEXT_WORDS, LEGACY_CONTEXT_ENTRY, fields, 'context entry');
}

export function encodeScalableContext(fields: Partial<ScalableContextEntry> = {}): Uint32Array {
  return encode(SCALABLE_CONTEXT_WORDS, SCALABLE_CONTEXT_ENTRY, fields, 'scalable-mode context entry');
}

function encode(
  count: number,
  layout: EntryLayout,
  fields: Readonly<Record<string, unknown>>,
  structure: string,
): Uint32Array {
  const words = new Uint32Array(count);
  writeEntryFields(words, layout, fields, structure);
  return words;
}

/** Address of the root entry for `bus` in the root table at `rtaddr` (RTADDR_REG.RTA). */
export function rootEntryAddress(rtaddr: number, bus: number): number {
  return rtaddr + (bus & 0xff) * ROOT_ENTRY_BYTES;
}

/**
 * Address of the context entry for `devfn` in the context table at `ctp`: 16-byte entries indexed by
 * devfn in legacy mode, 32-byte entries indexed by devfn & 0x7f in scalable mode.
 */
export function contextEntryAddress(ctp: number, devfn: number, scalable: boolean): number {
  return scalable
    ? ctp + (devfn & 0x7f) * SCALABLE_CONTEXT_BYTES
    : ctp + (devfn & 0xff) * LEGACY_CONTEXT_BYTES;
}

/** The context table a root entry gives `devfn`: CTP (legacy), LCTP or UCTP for devfn ≥ 128 (scalable). */
export function contextTablePointer(root: LegacyRootEntry | ScalableRootEntry, devfn: number): number {
  if ('ctp' in root) return root.ctp;
  return (devfn & 0x80) !== 0 ? root.uctp : root.lctp;
}

/** Second-stage table depth an AW encoding selects (AW + 2; CAP.SAGAW bit AW advertises it). */
export function levelsFromAw(aw: number): number {
  return aw + 2;
}

/** Whether CAP.SAGAW advertises the second-stage depth an AW encoding selects. */
export function sagawSupports(features: VtdFeatures, aw: number): boolean {
  return features.sagaw.includes(levelsFromAw(aw) as SsLevels);
}

/** Whether any bit of `masks[i]` is set in `words[i]`: reserved fields of a structure. */
export function reservedBitsSet(words: ArrayLike<number>, masks: readonly number[]): boolean {
  for (let i = 0; i < masks.length; i++) if ((words[i]! & masks[i]!) !== 0) return true;
  return false;
}

/** A pointer field (bits 63:12 of qword `q`) at or above 2^HAW, whose bits 63:HAW are reserved. */
export function pointerBeyondHaw(words: ArrayLike<number>, q: number, features: VtdFeatures): boolean {
  return entryAddress(words, 64 * q + 12, 64 * q + 63) >= 2 ** features.hostAddressBits;
}

/** A DID above the CAP.ND width, whose unused upper bits are reserved. */
export function didBeyondNd(did: number, features: VtdFeatures): boolean {
  return did >= 2 ** features.domainIdBits;
}

// Reserved bits per 32-bit word (bits 31:0, 63:32, 95:64, …), pointers and DID checked apart.
const LEGACY_ROOT_RESERVED = [0x0000_0ffe, 0, 0xffff_ffff, 0xffff_ffff];
const SCALABLE_ROOT_LOWER_RESERVED = [0x0000_0ffe];
const SCALABLE_ROOT_UPPER_RESERVED = [0, 0, 0x0000_0ffe];
const LEGACY_CONTEXT_RESERVED = [0x0000_0ff0, 0, 0xff00_0080, 0xffff_ffff];
const SCALABLE_CONTEXT_RESERVED = [
  0x0000_01e0, 0, 0xffe0_0000, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff,
];

const field = (words: ArrayLike<number>, [lsb, width]: readonly [number, number]) =>
  entryField(words, lsb, width);

/** The root entry for a request from `devfn` (§9.1, §9.2): 0, or 0x1/0xA (legacy), 0x39/0x3A (scalable). */
export function checkRootEntry(
  words: ArrayLike<number>,
  devfn: number,
  scalable: boolean,
  features: VtdFeatures,
): FaultCheck {
  if (!scalable) {
    if (field(words, LEGACY_ROOT_LAYOUT.p) === 0) return FR.ROOT_NOT_PRESENT;
    const reserved = reservedBitsSet(words, LEGACY_ROOT_RESERVED) || pointerBeyondHaw(words, 0, features);
    return reserved ? FR.ROOT_RESERVED : 0;
  }
  const upper = (devfn & 0x80) !== 0;
  const present = upper ? SCALABLE_ROOT_LAYOUT.up : SCALABLE_ROOT_LAYOUT.lp;
  if (field(words, present) === 0) return FR.SM_ROOT_NOT_PRESENT;
  const masks = upper ? SCALABLE_ROOT_UPPER_RESERVED : SCALABLE_ROOT_LOWER_RESERVED;
  const reserved = reservedBitsSet(words, masks) || pointerBeyondHaw(words, upper ? 1 : 0, features);
  return reserved ? FR.SM_ROOT_RESERVED : 0;
}

/** A legacy context entry (§9.3): 0, or 0x2, 0xB, 0x3 in that order (see the module comment). */
export function checkLegacyContext(words: ArrayLike<number>, features: VtdFeatures): FaultCheck {
  if (field(words, LEGACY_CONTEXT_LAYOUT.p) === 0) return FR.CONTEXT_NOT_PRESENT;
  if (
    reservedBitsSet(words, LEGACY_CONTEXT_RESERVED) ||
    pointerBeyondHaw(words, 0, features) ||
    didBeyondNd(field(words, LEGACY_CONTEXT_LAYOUT.did), features)
  )
    return FR.CONTEXT_RESERVED;
  const tt = field(words, LEGACY_CONTEXT_LAYOUT.tt);
  const ttSupported =
    tt === CONTEXT_TT.MULTI_LEVEL ||
    (tt === CONTEXT_TT.DEVICE_TLB && features.deviceTlb) ||
    (tt === CONTEXT_TT.PASS_THROUGH && features.passThrough);
  if (!ttSupported || !sagawSupports(features, field(words, LEGACY_CONTEXT_LAYOUT.aw)))
    return FR.CONTEXT_INVALID;
  return 0;
}

/** A scalable-mode context entry on its own (§9.4): 0, or 0x41, 0x42 (see the module comment). */
export function checkScalableContext(words: ArrayLike<number>, features: VtdFeatures): FaultCheck {
  if (field(words, SCALABLE_CONTEXT_LAYOUT.p) === 0) return FR.SM_CONTEXT_NOT_PRESENT;
  const capabilityReserved =
    (field(words, SCALABLE_CONTEXT_LAYOUT.dte) === 1 && !features.deviceTlb) ||
    (field(words, SCALABLE_CONTEXT_LAYOUT.paside) === 1 && features.pasidBits === 0) ||
    (field(words, SCALABLE_CONTEXT_LAYOUT.pre) === 1 && !features.pageRequests);
  if (
    capabilityReserved ||
    reservedBitsSet(words, SCALABLE_CONTEXT_RESERVED) ||
    pointerBeyondHaw(words, 0, features)
  )
    return FR.SM_CONTEXT_RESERVED;
  return 0;
}

/** What a request asks of the scalable-mode context entry that processes it. */
export interface ContextRequest {
  /** The request's PASID, or `undefined` for a request without PASID (processed with RID_PASID). */
  readonly pasid: number | undefined;
  /** A translation request (PCIe ATS), which needs DTE. */
  readonly translationRequest: boolean;
  /** A page request (PCIe PRI), which needs PRE. */
  readonly pageRequest: boolean;
}

/** PASIDs a PASID directory of 2^(PDTS + 7) entries, 64 PASIDs each, reaches. */
export function pasidLimit(pdts: number): number {
  return 2 ** (pdts + 7 + 6);
}

/**
 * A present, well-formed scalable-mode context entry (`checkScalableContext` returned 0) against one
 * request: 0, or 0x44–0x48 in the order of the module comment.
 */
export function checkScalableContextRequest(e: ScalableContextEntry, request: ContextRequest): FaultCheck {
  if (request.translationRequest && !e.dte) return FR.SM_CONTEXT_DTE_CLEAR;
  if (request.pasid !== undefined) {
    if (!e.paside) return FR.SM_CONTEXT_PASIDE_CLEAR;
    if (request.pasid >= pasidLimit(e.pdts)) return FR.SM_CONTEXT_PASID_TOO_LARGE;
  }
  if (request.pageRequest && !e.pre) return FR.SM_CONTEXT_PRE_CLEAR;
  if (request.pasid === undefined && e.ridPasid >= pasidLimit(e.pdts)) return FR.SM_CONTEXT_RID_PASID;
  return 0;
}
