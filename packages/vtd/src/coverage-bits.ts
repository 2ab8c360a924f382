/**
 * Where each field of the VT-d structures, registers and descriptors sits, found from the code: every field
 * encoded alone through its codec (or written through its layout), and read back as the bits it set. The
 * coverage page (coverage-doc.ts) and its drift tests take positions from here, never from a table.
 */
import {
  allOnes,
  type BitRun,
  bitRuns,
  fieldBits,
  probedFieldBits,
  writeEntryFields,
  writeScalars,
} from '@iommukit/core';
import type { InvDescriptorFieldName, InvDescriptorOf, InvTypeName } from './coverage.js';
import { CAP_LAYOUT, decodeCap, decodeEcap, ECAP_LAYOUT } from './hw/capabilities.js';
import type { VtdFeatures } from './hw/features.js';
import {
  decodeInvDescriptor,
  encodeInvDescriptor,
  INV_TYPE,
  PASID_IOTLB_GRANULARITY,
  WIDE_INV_DESC_WORDS,
} from './hw/inv-descriptors.js';
import { decodeIrte, encodeIrte, IRTE_WORDS, type Irte, type IrteInit } from './hw/irte.js';
import { featuresFromOptions, type VtdOptions, VtdOptionsSchema } from './hw/options.js';
import {
  decodePageRequest,
  encodePageRequest,
  PAGE_REQUEST_WORDS,
  type PageRequest,
} from './hw/page-requests.js';
import {
  decodePasidDirEntry,
  decodePasidEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  PASID_DIR_ENTRY_WORDS,
  PASID_ENTRY_WORDS,
} from './hw/pasid-entry.js';
import {
  CONTEXT_GRANULARITY,
  decodeFaultRecord,
  type FaultRecord,
  FRCD_LAYOUT,
  IOTLB_GRANULARITY,
} from './hw/regs.js';
import {
  decodeLegacyContext,
  decodeLegacyRootEntry,
  decodeScalableContext,
  decodeScalableRootEntry,
  encodeLegacyContext,
  encodeLegacyRootEntry,
  encodeScalableContext,
  encodeScalableRootEntry,
  LEGACY_CONTEXT_WORDS,
  ROOT_ENTRY_WORDS,
  SCALABLE_CONTEXT_WORDS,
} from './hw/root-context.js';

/** The options every key of which is at its default, and the features they describe. */
export function defaultVtdOptions(): VtdOptions {
  return VtdOptionsSchema.parse({});
}

export function defaultVtdFeatures(): VtdFeatures {
  return featuresFromOptions(defaultVtdOptions());
}

// ---------------------------------------------------------------------------------------------------------
// Field positions, each from the structure's own codec.

const words = (count: number, write: (w: Uint32Array) => void): Uint32Array => {
  const w = new Uint32Array(count);
  write(w);
  return w;
};

export const faultRecordFieldBits = (): Record<keyof FaultRecord, BitRun[]> =>
  fieldBits(decodeFaultRecord(allOnes(4)), (f) =>
    words(4, (w) => writeEntryFields(w, FRCD_LAYOUT, f, 'FRCD_REG')),
  );
export const capFieldBits = () =>
  fieldBits(decodeCap(0xffff_ffff, 0xffff_ffff), (f) =>
    words(2, (w) => writeScalars(w, CAP_LAYOUT, f, 'CAP')),
  );
export const ecapFieldBits = () =>
  fieldBits(decodeEcap(0xffff_ffff, 0xffff_ffff), (f) =>
    words(2, (w) => writeScalars(w, ECAP_LAYOUT, f, 'ECAP')),
  );
export const legacyRootFieldBits = () =>
  fieldBits(decodeLegacyRootEntry(allOnes(ROOT_ENTRY_WORDS)), encodeLegacyRootEntry);
export const scalableRootFieldBits = () =>
  fieldBits(decodeScalableRootEntry(allOnes(ROOT_ENTRY_WORDS)), encodeScalableRootEntry);
export const legacyContextFieldBits = () =>
  fieldBits(decodeLegacyContext(allOnes(LEGACY_CONTEXT_WORDS)), encodeLegacyContext);
export const scalableContextFieldBits = () =>
  fieldBits(decodeScalableContext(allOnes(SCALABLE_CONTEXT_WORDS)), encodeScalableContext);
export const pasidDirFieldBits = () =>
  fieldBits(decodePasidDirEntry(allOnes(PASID_DIR_ENTRY_WORDS)), encodePasidDirEntry);
export const pasidEntryFieldBits = () =>
  fieldBits(decodePasidEntry(allOnes(PASID_ENTRY_WORDS)), encodePasidEntry);

/** Type 0 keeps the descriptor type out of every other field (the encoder writes 01h when none is given). */
export const pageRequestFieldBits = (): Record<keyof PageRequest, BitRun[]> =>
  fieldBits(decodePageRequest(allOnes(PAGE_REQUEST_WORDS), 0), (f) =>
    words(PAGE_REQUEST_WORDS, (w) => encodePageRequest({ type: 0, ...f }, w, 0)),
  );

/** The fields of one IRTE format, IM (`mode`) included: the bit telling the two formats apart. */
export function irteFieldBits(mode: Irte['mode']): Record<string, BitRun[]> {
  // All ones but IM for the remapped format: decoding all ones gives the posted one.
  const ones = allOnes(IRTE_WORDS);
  if (mode === 'remapped') ones[0] = (ones[0]! & ~(1 << 15)) >>> 0;
  const { mode: _mode, reservedBit: _reserved, ...largest } = decodeIrte(ones);
  const encode = (f: object) => encodeIrte({ ...f, mode } as IrteInit);
  const im = bitRuns(
    Array.from(encodeIrte({ mode: 'posted' }), (w, i) => w ^ encodeIrte({ mode: 'remapped' })[i]!),
  );
  return { ...fieldBits(largest, encode), mode: im };
}

/** A valid descriptor of each type: granularities 0 are reserved for three of them. */
export const VALID_DESCRIPTOR: { readonly [K in InvTypeName]?: { readonly granularity: number } } = {
  CONTEXT_CACHE: { granularity: CONTEXT_GRANULARITY.GLOBAL },
  IOTLB: { granularity: IOTLB_GRANULARITY.GLOBAL },
  PASID_IOTLB: { granularity: PASID_IOTLB_GRANULARITY.PASID },
};

/** Encodes a 256-bit descriptor of type `name` with `fields`. */
export function encodeWideDescriptor(name: InvTypeName, fields: object): Uint32Array {
  return words(WIDE_INV_DESC_WORDS, (w) =>
    encodeInvDescriptor(
      { ...fields, type: INV_TYPE[name] } as Parameters<typeof encodeInvDescriptor>[0],
      w,
      0,
      true,
    ),
  );
}

/** A valid 256-bit descriptor of type `name`, decoded: every field of the type, at its base value. */
export function sampleDescriptor<K extends InvTypeName>(name: K): InvDescriptorOf<K> {
  const decoded = decodeInvDescriptor(encodeWideDescriptor(name, VALID_DESCRIPTOR[name] ?? {}), 0, true);
  if ('invalid' in decoded) throw new Error(`${name}: ${decoded.invalid}`);
  return decoded as InvDescriptorOf<K>;
}

export function invDescriptorFieldBits<K extends InvTypeName>(
  name: K,
): Record<InvDescriptorFieldName<K>, BitRun[]> {
  const { type: _type, ...sample } = sampleDescriptor(name) as InvDescriptorOf<K> & { type: number };
  return probedFieldBits(sample, (f) => encodeWideDescriptor(name, f)) as Record<
    InvDescriptorFieldName<K>,
    BitRun[]
  >;
}

// ---------------------------------------------------------------------------------------------------------
// Reserved bits: which the model refuses.
