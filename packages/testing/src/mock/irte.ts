/**
 * The mock's interrupt remapping formats (packages/testing/README.md, "Interrupt remapping"): a 16-byte
 * table entry, and the remappable MSI address that names one. The layout is the mock's own, with the
 * fields every x86 remapping entry has (VT-d §9.10, AMD IOMMU §2.2.5): present, the interrupt it delivers,
 * and the requester allowed to use it.
 *
 * Entry words: w0 [0] P, [1] destination mode logical, [2] level-triggered, [3] redirection hint,
 * [6:4] delivery mode (the x86 encoding), [23:16] vector, every other bit reserved; w1 the 32-bit
 * destination APIC ID; w2 [15:0] source ID, [16] SVT (validate the source), the rest reserved; w3 reserved.
 *
 * Remappable MSI: address 0xFEE0_0000 | index[14:0] << 5 | 1 << 4 (bit 4 set: remappable; clear: the
 * compatibility format); the data is not used.
 */
import { decodeDeliveryMode, encodeDeliveryMode, type X86Interrupt } from '@iommukit/core';

export const IRTE_WORDS = 4;
export const IRTE_BYTES = 16;
/** Entries a remappable address can name. */
export const IRTE_MAX_LOG2 = 15;

export const IRTE_P = 1 << 0;
const IRTE_LOGICAL = 1 << 1;
const IRTE_LEVEL = 1 << 2;
const IRTE_RH = 1 << 3;
const W0_USED = 0x00ff_007f;
export const IRTE_SVT = 1 << 16;
const W2_USED = 0x1_ffff;

/** Address bit 4: the request is in the remappable format. */
export const MSI_REMAPPABLE = 0x10;

/** The words of a present entry delivering `interrupt`, usable only by `sourceId`. */
export function encodeIrte(interrupt: X86Interrupt, sourceId: number): Uint32Array {
  return Uint32Array.of(
    IRTE_P |
      (interrupt.destinationMode === 'logical' ? IRTE_LOGICAL : 0) |
      (interrupt.trigger === 'level' ? IRTE_LEVEL : 0) |
      (interrupt.redirectionHint ? IRTE_RH : 0) |
      (encodeDeliveryMode(interrupt.deliveryMode) << 4) |
      (interrupt.vector << 16),
    interrupt.destination >>> 0,
    (sourceId & 0xffff) | IRTE_SVT,
    0,
  );
}

/** What a present entry's words mean, or why the hardware refuses them. */
export type IrteLookup =
  | {
      readonly ok: true;
      readonly interrupt: X86Interrupt;
      readonly sourceId: number;
      readonly validateSource: boolean;
    }
  | { readonly ok: false; readonly reason: 'not-present' | 'reserved' };

export function decodeIrte(w: ArrayLike<number>): IrteLookup {
  const w0 = w[0]!;
  if ((w0 & IRTE_P) === 0) return { ok: false, reason: 'not-present' };
  const deliveryMode = decodeDeliveryMode(w0 >>> 4);
  if ((w0 & ~W0_USED) !== 0 || (w[2]! & ~W2_USED) !== 0 || w[3] !== 0 || deliveryMode === undefined)
    return { ok: false, reason: 'reserved' };
  return {
    ok: true,
    interrupt: {
      vector: (w0 >>> 16) & 0xff,
      destination: w[1]! >>> 0,
      destinationMode: w0 & IRTE_LOGICAL ? 'logical' : 'physical',
      deliveryMode,
      trigger: w0 & IRTE_LEVEL ? 'level' : 'edge',
      redirectionHint: (w0 & IRTE_RH) !== 0,
    },
    sourceId: w[2]! & 0xffff,
    validateSource: (w[2]! & IRTE_SVT) !== 0,
  };
}

/** The remappable MSI address naming entry `index`. */
export function remappableAddress(index: number): bigint {
  return 0xfee0_0000n | BigInt(index << 5) | BigInt(MSI_REMAPPABLE);
}

/** The entry index a remappable address names. */
export function remappableIndex(address: bigint): number {
  return Number((address >> 5n) & 0x7fffn);
}
