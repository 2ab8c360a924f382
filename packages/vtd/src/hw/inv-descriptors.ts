/**
 * VT-d queued-invalidation descriptors (VT-d specification §6.5.2): the entries software writes into the
 * invalidation queue at IQA_REG. A descriptor is 128 bits, or 256 bits when IQA_REG.DW = 1; the type is
 * bits 3:0 with bits 11:9 as its high bits (types 0x10 and up are all undefined today). Positions here are
 * absolute (64·qword + bit), one field table per type, read and written by one generic codec, as the
 * SMMUv3 command tables are.
 *
 * `decodeInvDescriptor` returns the descriptor, or what the hardware reports as an Invalidation Queue Error
 * (FSTS_REG.IQE with IQERCD_REG.IQEI, §11.4.11.9): an undefined type (IQEI 3); a set reserved bit, in the
 * 128-bit body or, with 256-bit descriptors, in bits 255:128 (IQEI 4); a reserved granularity (IQEI 4);
 * PD = 1 in a wait descriptor when the unit reports no page-request drain (ECAP.PDS = 0; IQEI 4).
 * Field positions and reserved masks: Linux intel/iommu.h QI_*, QEMU intel_iommu_internal.h
 * VTD_INV_DESC_*_RSVD, VirtualBox iommu-intel.h VTD_BF_*_INV_DSC. IQEI codes: VirtualBox VTDIQEI.
 *
 * Not decided here, and why: whether a descriptor type is valid in the current translation mode (a 128-bit
 * descriptor in scalable mode, PASID-based types in legacy mode) depends on RTADDR_REG.TTM, which the
 * queue knows; the spec text for it was not available (VirtualBox reports a 128-bit wait descriptor in
 * scalable mode as IQEI 3 and notes hardware may report IQEI 5). AM above CAP.MAMV and DID bits above the
 * domain-ID width (ignored by hardware, per QEMU's quote of §6.5.2.2) are left to the invalidation logic.
 * Bits 255:128 of a 256-bit page group response carry private data (Linux up to 6.x wrote them there when
 * PDP = 1); whether they are reserved when PDP = 0 is unconfirmed, so they are never reserved-checked.
 */
import {
  checkFieldAddress,
  checkFieldValue,
  entryAddress,
  entryField,
  IommufdError,
  setEntryAddress,
  setEntryField,
} from '@iommukit/core';
import type { VtdFeatures } from './features.js';
import { CONTEXT_GRANULARITY, IOTLB_GRANULARITY } from './regs.js';

/** Words (32-bit) of a 128-bit and of a 256-bit descriptor. */
export const INV_DESC_WORDS = 4;
export const WIDE_INV_DESC_WORDS = 8;

/** Descriptor types (§6.5.2; Linux QI_*_TYPE). 0xA, the legacy page stream response, is not modelled. */
export const INV_TYPE = {
  CONTEXT_CACHE: 0x1,
  IOTLB: 0x2,
  DEVICE_TLB: 0x3,
  IEC: 0x4,
  WAIT: 0x5,
  PASID_IOTLB: 0x6,
  PASID_CACHE: 0x7,
  PASID_DEVICE_TLB: 0x8,
  PAGE_GROUP_RESPONSE: 0x9,
} as const;
export type InvType = (typeof INV_TYPE)[keyof typeof INV_TYPE];

/** IQERCD_REG.IQEI, why the queue stopped (§11.4.11.9; VirtualBox VTDIQEI). */
export const IQEI = {
  INFO_NOT_AVAILABLE: 0,
  INVALID_TAIL: 1,
  FETCH_ERROR: 2,
  INVALID_TYPE: 3,
  RESERVED_FIELD: 4,
  INVALID_WIDTH: 5,
  TAIL_MISALIGNED: 6,
  INVALID_TTM: 7,
} as const;
export type Iqei = (typeof IQEI)[keyof typeof IQEI];

/**
 * Granularity encodings per type; the values not listed are reserved (QEMU rejects them as IQE). The
 * context-cache and IOTLB descriptors use the CCMD.CIRG and IOTLB.IIRG encodings (regs.ts), as Linux's
 * QI_CC_GRAN/QI_IOTLB_GRAN shift them into place.
 */
export const IEC_GRANULARITY = { GLOBAL: 0, INDEX: 1 } as const;
export const PASID_IOTLB_GRANULARITY = { PASID: 2, PAGE: 3 } as const;
export const PASID_CACHE_GRANULARITY = { DOMAIN: 0, PASID: 1, GLOBAL: 3 } as const;
/** PASID-based device-TLB G (qw1 bit 0): every PASID of the device (Linux QI_DEV_IOTLB_GRAN_ALL). */
export const PASID_DEVICE_TLB_GRANULARITY = { PASID: 0, ALL_PASIDS: 1 } as const;

/** Context-cache invalidate (§6.5.2.1). */
export interface ContextCacheInv {
  readonly type: typeof INV_TYPE.CONTEXT_CACHE;
  readonly granularity: number;
  readonly did: number;
  readonly sid: number;
  /** Function mask: how many low SID bits to ignore (device-selective). */
  readonly fm: number;
}

/** IOTLB invalidate (§6.5.2.3). */
export interface IotlbInv {
  readonly type: typeof INV_TYPE.IOTLB;
  readonly granularity: number;
  /** Drain writes / reads (CAP.DWD / CAP.DRD). */
  readonly dw: boolean;
  readonly dr: boolean;
  readonly did: number;
  /** Address mask: the invalidation covers 2^am pages at `addr`. */
  readonly am: number;
  /** Invalidation hint: only leaf entries changed. */
  readonly ih: boolean;
  /** Byte address, bits 63:12. */
  readonly addr: number;
}

/** Device-TLB invalidate (§6.5.2.5). */
export interface DeviceTlbInv {
  readonly type: typeof INV_TYPE.DEVICE_TLB;
  /** Physical-function source ID, for SR-IOV virtual functions. */
  readonly pfsid: number;
  /** Invalidate queue depth of the device (the spec's MIP; Linux QDEP). */
  readonly qdep: number;
  readonly sid: number;
  /** S: the range is encoded in `addr` (the lowest clear bit at or above 12). */
  readonly size: boolean;
  readonly addr: number;
}

/** Interrupt entry cache invalidate (§6.5.2.7). */
export interface IecInv {
  readonly type: typeof INV_TYPE.IEC;
  readonly granularity: number;
  /** Index mask: 2^im entries from `iidx` (index-selective). */
  readonly im: number;
  readonly iidx: number;
}

/** Invalidation wait (§6.5.2.8). */
export interface WaitInv {
  readonly type: typeof INV_TYPE.WAIT;
  /** IF: raise the invalidation completion event. */
  readonly iflag: boolean;
  /** SW: write `statusData` to `statusAddr`. */
  readonly sw: boolean;
  /** FN: fence, later descriptors wait for this one. */
  readonly fn: boolean;
  /** PD: drain page requests (ECAP.PDS). */
  readonly pd: boolean;
  readonly statusData: number;
  /** Byte address, bits 63:2 (a value at or above 2^53 is inexact, and beyond any host address width). */
  readonly statusAddr: number;
}

/** PASID-based IOTLB invalidate (§6.5.2.4). */
export interface PasidIotlbInv {
  readonly type: typeof INV_TYPE.PASID_IOTLB;
  readonly granularity: number;
  readonly did: number;
  readonly pasid: number;
  readonly am: number;
  readonly ih: boolean;
  readonly addr: number;
}

/** PASID-cache invalidate (§6.5.2.2). */
export interface PasidCacheInv {
  readonly type: typeof INV_TYPE.PASID_CACHE;
  readonly granularity: number;
  readonly did: number;
  readonly pasid: number;
}

/** PASID-based device-TLB invalidate (§6.5.2.6). */
export interface PasidDeviceTlbInv {
  readonly type: typeof INV_TYPE.PASID_DEVICE_TLB;
  readonly qdep: number;
  readonly pfsid: number;
  readonly sid: number;
  readonly pasid: number;
  readonly granularity: number;
  readonly size: boolean;
  readonly addr: number;
}

/** Page group response (§7.7, responding to page requests): the answer to a page request group. */
export interface PageGroupResponseInv {
  readonly type: typeof INV_TYPE.PAGE_GROUP_RESPONSE;
  readonly pasidPresent: boolean;
  /** PDP: the request carried private data, echoed in `privateData`. */
  readonly privateDataPresent: boolean;
  /** Response code (`PAGE_RESPONSE`, page-requests.ts). */
  readonly respCode: number;
  /** Requester ID. */
  readonly rid: number;
  readonly pasid: number;
  /** Last page in group. */
  readonly lpig: boolean;
  readonly prgIndex: number;
  /** Bits 255:128 as four 32-bit words, low first; only in 256-bit descriptors. */
  readonly privateData?: readonly number[];
}

export type InvDescriptor =
  | ContextCacheInv
  | IotlbInv
  | DeviceTlbInv
  | IecInv
  | WaitInv
  | PasidIotlbInv
  | PasidCacheInv
  | PasidDeviceTlbInv
  | PageGroupResponseInv;

/** What the queue reports instead of a descriptor: IQE with this IQEI. */
export interface InvalidInvDescriptor {
  readonly invalid: string;
  readonly iqei: Iqei;
}

type Init<D extends InvDescriptor> = Pick<D, 'type'> & Partial<Omit<D, 'type'>>;
/** A descriptor to encode: its type, and the fields to set (the others are 0). */
export type InvDescriptorInit =
  | Init<ContextCacheInv>
  | Init<IotlbInv>
  | Init<DeviceTlbInv>
  | Init<IecInv>
  | Init<WaitInv>
  | Init<PasidIotlbInv>
  | Init<PasidCacheInv>
  | Init<PasidDeviceTlbInv>
  | Init<PageGroupResponseInv>;

type Piece = readonly [lsb: number, width: number];
/** `uint`/`bool`: pieces low first (PFSID is split); `addr`: a byte address at bits msb:lsb of one qword. */
type Field =
  | { readonly kind: 'uint' | 'bool'; readonly pieces: readonly Piece[] }
  | { readonly kind: 'addr'; readonly lsb: number; readonly msb: number }
  | { readonly kind: 'words'; readonly lsb: number; readonly count: number };

interface Spec<D extends InvDescriptor> {
  /** The spec's structure name, for messages. */
  readonly name: string;
  readonly fields: { readonly [K in Exclude<keyof D, 'type'>]-?: Field };
  /** The granularity values that are not reserved. */
  readonly granularities?: readonly number[];
}

const uint = (lsb: number, width: number): Field => ({ kind: 'uint', pieces: [[lsb, width]] });
const bool = (lsb: number): Field => ({ kind: 'bool', pieces: [[lsb, 1]] });
/** Bits 63:12 of qword 1: the page address of address-based invalidations. */
const PAGE_ADDR: Field = { kind: 'addr', lsb: 76, msb: 127 };
/** PFSID[3:0] at bits 15:12, PFSID[15:4] at bits 63:52. */
const PFSID: Field = {
  kind: 'uint',
  pieces: [
    [12, 4],
    [52, 12],
  ],
};
const DID = uint(16, 16);
const PASID = uint(32, 20);
const G = uint(4, 2);

type Specs = { readonly [T in InvType]: Spec<Extract<InvDescriptor, { type: T }>> };

const SPECS: Specs = {
  [INV_TYPE.CONTEXT_CACHE]: {
    name: 'cc_inv_dsc',
    fields: { granularity: G, did: DID, sid: uint(32, 16), fm: uint(48, 2) },
    granularities: Object.values(CONTEXT_GRANULARITY),
  },
  [INV_TYPE.IOTLB]: {
    name: 'iotlb_inv_dsc',
    fields: {
      granularity: G,
      dw: bool(6),
      dr: bool(7),
      did: DID,
      am: uint(64, 6),
      ih: bool(70),
      addr: PAGE_ADDR,
    },
    granularities: Object.values(IOTLB_GRANULARITY),
  },
  [INV_TYPE.DEVICE_TLB]: {
    name: 'dev_tlb_inv_dsc',
    fields: { pfsid: PFSID, qdep: uint(16, 5), sid: uint(32, 16), size: bool(64), addr: PAGE_ADDR },
  },
  [INV_TYPE.IEC]: {
    name: 'iec_inv_dsc',
    fields: { granularity: uint(4, 1), im: uint(27, 5), iidx: uint(32, 16) },
  },
  [INV_TYPE.WAIT]: {
    name: 'inv_wait_dsc',
    fields: {
      iflag: bool(4),
      sw: bool(5),
      fn: bool(6),
      pd: bool(7),
      statusData: uint(32, 32),
      statusAddr: { kind: 'addr', lsb: 66, msb: 127 },
    },
  },
  [INV_TYPE.PASID_IOTLB]: {
    name: 'p_iotlb_inv_dsc',
    fields: { granularity: G, did: DID, pasid: PASID, am: uint(64, 6), ih: bool(70), addr: PAGE_ADDR },
    granularities: Object.values(PASID_IOTLB_GRANULARITY),
  },
  [INV_TYPE.PASID_CACHE]: {
    name: 'pc_inv_dsc',
    fields: { granularity: G, did: DID, pasid: PASID },
    granularities: Object.values(PASID_CACHE_GRANULARITY),
  },
  [INV_TYPE.PASID_DEVICE_TLB]: {
    name: 'p_dev_tlb_inv_dsc',
    fields: {
      qdep: uint(4, 5),
      pfsid: PFSID,
      sid: uint(16, 16),
      pasid: PASID,
      granularity: uint(64, 1),
      size: bool(75),
      addr: PAGE_ADDR,
    },
  },
  [INV_TYPE.PAGE_GROUP_RESPONSE]: {
    name: 'page_grp_resp_dsc',
    fields: {
      pasidPresent: bool(4),
      privateDataPresent: bool(5),
      respCode: uint(12, 4),
      rid: uint(16, 16),
      pasid: PASID,
      lpig: bool(66),
      prgIndex: uint(67, 9),
      privateData: { kind: 'words', lsb: 128, count: 4 },
    },
  },
};

/** A spec of any type, for the generic codec. */
type AnySpec = Spec<InvDescriptor> & { readonly fields: Readonly<Record<string, Field>> };
const specOf = (type: number): AnySpec | undefined => (SPECS as Record<number, AnySpec | undefined>)[type];

/** Sets `width` bits from `lsb` (any width, across words). */
function fillBits(mask: Uint32Array, lsb: number, width: number): void {
  for (let at = 0; at < width; at += 32) {
    const w = Math.min(32, width - at);
    setEntryField(mask, lsb + at, w, 2 ** w - 1);
  }
}

/** The bits each type defines (type, fields) over 256 bits: everything else is reserved. */
const DEFINED: ReadonlyMap<number, Uint32Array> = new Map(
  Object.values(INV_TYPE).map((type) => {
    const mask = new Uint32Array(WIDE_INV_DESC_WORDS);
    fillBits(mask, 0, 4);
    fillBits(mask, 9, 3);
    for (const field of Object.values(specOf(type)!.fields)) {
      if (field.kind === 'addr') fillBits(mask, field.lsb, field.msb - field.lsb + 1);
      else if (field.kind === 'words') fillBits(mask, field.lsb, 32 * field.count);
      else for (const [lsb, width] of field.pieces) fillBits(mask, lsb, width);
    }
    return [type, mask];
  }),
);

/** The bit offset of the descriptor at word `at`; descriptors are 16-byte aligned, so `at` is a multiple of 4. */
function bitBase(at: number, words: number, length: number): number {
  if (!Number.isInteger(at) || at < 0 || at % INV_DESC_WORDS !== 0 || at + words > length)
    throw new RangeError(`invalidation descriptor at word ${at}: needs a multiple of 4 with ${words} words`);
  return 32 * at;
}

function invalid(iqei: Iqei, reason: string): InvalidInvDescriptor {
  return { invalid: reason, iqei };
}

/**
 * Decodes the descriptor at word `at` (128-bit, or 256-bit when `wide`): the descriptor, or the IQE the
 * unit raises for it. With `features`, PD needs ECAP.PDS.
 */
export function decodeInvDescriptor(
  words: ArrayLike<number>,
  at: number,
  wide: boolean,
  features?: Pick<VtdFeatures, 'pageRequestDrain'>,
): InvDescriptor | InvalidInvDescriptor {
  const count = wide ? WIDE_INV_DESC_WORDS : INV_DESC_WORDS;
  const base = bitBase(at, count, words.length);
  const type = entryField(words, base, 4) + 16 * entryField(words, base + 9, 3);
  const spec = specOf(type);
  if (spec === undefined)
    return invalid(IQEI.INVALID_TYPE, `descriptor type 0x${type.toString(16)} is not defined`);
  const mask = DEFINED.get(type)!;
  for (let i = 0; i < count; i++) {
    const extra = (words[at + i]! & ~mask[i]!) >>> 0;
    if (extra !== 0) {
      const bit = 32 * i + 31 - Math.clz32(extra & -extra);
      return invalid(IQEI.RESERVED_FIELD, `${spec.name}: reserved bit ${bit} is set`);
    }
  }
  const out: Record<string, unknown> = { type };
  for (const [key, field] of Object.entries(spec.fields)) {
    if (field.kind === 'addr') out[key] = entryAddress(words, base + field.lsb, base + field.msb);
    else if (field.kind === 'words') {
      if (wide)
        out[key] = Array.from({ length: field.count }, (_, i) => words[at + field.lsb / 32 + i]! >>> 0);
    } else {
      let value = 0;
      let shift = 0;
      for (const [lsb, width] of field.pieces) {
        value += entryField(words, base + lsb, width) * 2 ** shift;
        shift += width;
      }
      out[key] = field.kind === 'bool' ? value === 1 : value;
    }
  }
  if (spec.granularities !== undefined && !spec.granularities.includes(out.granularity as number))
    return invalid(IQEI.RESERVED_FIELD, `${spec.name}: granularity ${out.granularity} is reserved`);
  if (type === INV_TYPE.WAIT && out.pd === true && features !== undefined && !features.pageRequestDrain)
    return invalid(
      IQEI.RESERVED_FIELD,
      'inv_wait_dsc: PD is reserved without page-request drain (ECAP.PDS = 0)',
    );
  return out as unknown as InvDescriptor;
}

/**
 * Writes `d` at word `at` of `out` (128-bit, or 256-bit when `wide`), zeroing the rest of the slot. Any
 * value its field can hold is written, reserved granularities included (so a driver's mistake reaches the
 * queue as it would on hardware); a value the field cannot hold, or private data in a 128-bit descriptor,
 * is `EINVAL` naming the structure and field.
 */
export function encodeInvDescriptor(d: InvDescriptorInit, out: Uint32Array, at: number, wide: boolean): void {
  const count = wide ? WIDE_INV_DESC_WORDS : INV_DESC_WORDS;
  const base = bitBase(at, count, out.length);
  const spec = specOf(d.type);
  if (spec === undefined)
    throw new IommufdError('EINVAL', `invalidation descriptor type ${String(d.type)} is not defined`, {
      field: 'type',
    });
  out.fill(0, at, at + count);
  setEntryField(out, base, 4, d.type);
  const fields = d as Readonly<Record<string, unknown>>;
  for (const [key, field] of Object.entries(spec.fields)) {
    const raw = fields[key];
    if (raw === undefined) continue;
    if (field.kind === 'addr') {
      const address = checkFieldAddress(spec.name, key, raw, field.lsb, field.msb);
      setEntryAddress(out, base + field.lsb, base + field.msb, address);
    } else if (field.kind === 'words') {
      writeWords(out, at + field.lsb / 32, field.count, raw, wide, spec.name, key);
    } else {
      const width = field.pieces.reduce((sum, [, w]) => sum + w, 0);
      let rest = checkFieldValue(spec.name, key, raw, width);
      for (const [lsb, w] of field.pieces) {
        setEntryField(out, base + lsb, w, rest % 2 ** w);
        rest = Math.floor(rest / 2 ** w);
      }
    }
  }
}

function writeWords(
  out: Uint32Array,
  first: number,
  count: number,
  raw: unknown,
  wide: boolean,
  structure: string,
  field: string,
): void {
  if (!wide || !Array.isArray(raw) || raw.length !== count)
    throw new IommufdError(
      'EINVAL',
      `${structure}.${field} must be ${count} 32-bit words in a 256-bit descriptor`,
      { structure, field },
    );
  raw.forEach((word, i) => {
    out[first + i] = checkFieldValue(structure, `${field}[${i}]`, word, 32);
  });
}
