/**
 * The compatibility-format MSI (Intel SDM vol. 3A §11.11, figures 11-24 and 11-25): a 32-bit write to
 * 0xFEEx_xxxx whose address names the destination and whose data names the vector. Address bits: [19:12]
 * destination ID, [4] interrupt format (1 = the remappable format of VT-d §5.1.5.2, meaningful only to a
 * remapping unit), [3] redirection hint, [2] destination mode. Data bits: [7:0] vector, [10:8] delivery
 * mode, [14] level (assert), [15] trigger mode.
 *
 * With the extended destination ID (KVM_FEATURE_MSI_EXT_DEST_ID, which hypervisors advertise to guests),
 * address bits [11:5] — reserved otherwise — carry destination bits [14:8]: APIC IDs up to 32767.
 */
import {
  decodeDeliveryMode,
  encodeDeliveryMode,
  IommufdError,
  inInterruptWindow,
  type MsiMessage,
  toHex,
  X86_INTERRUPT_WINDOW,
  type X86Interrupt,
} from '@iommukit/core';

/** A physical destination of all ones: every local APIC (x2APIC's broadcast; xAPIC's is 0xFF). */
export const BROADCAST = 0xffff_ffff;
/** The 8-bit broadcast ID of a compatibility-format message and of xAPIC mode. */
export const XAPIC_BROADCAST = 0xff;
/** Highest destination the extended destination ID can name: 8 + 7 bits. */
export const MAX_EXTENDED_DESTINATION = 0x7fff;

const ADDRESS_DEST_SHIFT = 12;
const ADDRESS_EXT_DEST_SHIFT = 5;
const ADDRESS_REMAPPABLE = 1 << 4;
const ADDRESS_REDIRECTION_HINT = 1 << 3;
const ADDRESS_DEST_LOGICAL = 1 << 2;
const DATA_DELIVERY_SHIFT = 8;
const DATA_LEVEL_ASSERT = 1 << 14;
const DATA_TRIGGER_LEVEL = 1 << 15;

export interface MsiFormatOptions {
  /** Address bits [11:5] are destination bits [14:8]. */
  readonly extendedDestinationId: boolean;
}

export type DecodedMsi =
  | { readonly ok: true; readonly interrupt: X86Interrupt }
  | { readonly ok: false; readonly reason: string };

/** Decodes what a compatibility-format MSI asks for; a message the APIC cannot take says why. */
export function decodeCompatibilityMsi(address: bigint, data: number, options: MsiFormatOptions): DecodedMsi {
  if (!inInterruptWindow(address))
    return { ok: false, reason: `${toHex(address)} is outside the interrupt window 0xfee00000` };
  const offset = Number(address - X86_INTERRUPT_WINDOW.base);
  if (offset & ADDRESS_REMAPPABLE)
    return { ok: false, reason: 'remappable-format MSI (address bit 4) without an interrupt remapping unit' };
  const modeBits = (data >>> DATA_DELIVERY_SHIFT) & 7;
  const deliveryMode = decodeDeliveryMode(modeBits);
  if (deliveryMode === undefined)
    return { ok: false, reason: `reserved delivery mode 0b${modeBits.toString(2)}` };
  const level = (data & DATA_TRIGGER_LEVEL) !== 0;
  // A level-triggered deassert message carries no interrupt (SDM §11.11.2).
  if (level && (data & DATA_LEVEL_ASSERT) === 0)
    return { ok: false, reason: 'level-triggered deassert message' };
  const low = (offset >>> ADDRESS_DEST_SHIFT) & 0xff;
  const high = options.extendedDestinationId ? (offset >>> ADDRESS_EXT_DEST_SHIFT) & 0x7f : 0;
  // 0xFF is the broadcast in every mode, as the chipset widens it for x2APIC targets.
  const destination = low === XAPIC_BROADCAST && high === 0 ? BROADCAST : (high << 8) | low;
  return {
    ok: true,
    interrupt: {
      vector: data & 0xff,
      destination,
      destinationMode: offset & ADDRESS_DEST_LOGICAL ? 'logical' : 'physical',
      deliveryMode,
      trigger: level ? 'level' : 'edge',
      redirectionHint: (offset & ADDRESS_REDIRECTION_HINT) !== 0,
    },
  };
}

/** Whether a compatibility-format message can name APIC ID `apicId` as its physical destination. */
export function compatibilityReachable(apicId: number, options: MsiFormatOptions): boolean {
  const limit = options.extendedDestinationId ? MAX_EXTENDED_DESTINATION : XAPIC_BROADCAST - 1;
  return apicId <= limit && apicId !== XAPIC_BROADCAST;
}

/** The compatibility-format message for `interrupt`; `EINVAL` for a destination the format cannot hold. */
export function encodeCompatibilityMsi(interrupt: X86Interrupt, options: MsiFormatOptions): MsiMessage {
  const { destination } = interrupt;
  const broadcast = destination === BROADCAST;
  if (!broadcast && !compatibilityReachable(destination, options))
    throw new IommufdError(
      'EINVAL',
      `destination ${toHex(destination)} does not fit a compatibility-format MSI${options.extendedDestinationId ? ' with the extended destination ID' : ''}`,
    );
  const dest = broadcast ? XAPIC_BROADCAST : destination;
  let offset = ((dest & 0xff) << ADDRESS_DEST_SHIFT) | ((dest >>> 8) << ADDRESS_EXT_DEST_SHIFT);
  if (interrupt.destinationMode === 'logical') offset |= ADDRESS_DEST_LOGICAL;
  if (interrupt.redirectionHint) offset |= ADDRESS_REDIRECTION_HINT;
  let data = (interrupt.vector & 0xff) | (encodeDeliveryMode(interrupt.deliveryMode) << DATA_DELIVERY_SHIFT);
  if (interrupt.trigger === 'level') data |= DATA_TRIGGER_LEVEL | DATA_LEVEL_ASSERT;
  return { address: X86_INTERRUPT_WINDOW.base + BigInt(offset), data };
}
