/**
 * Interrupt remapping: the x86 contract between devices, an IOMMU's remapping unit, its driver and the
 * platform's interrupt controller (Linux `drivers/iommu/irq_remapping.c` and the vendors' IR domains).
 *
 * On x86 a device write without PASID into the interrupt window 0xFEEx_xxxx is not DMA: it is an interrupt
 * request (VT-d §3.14, §5.1; AMD IOMMU §2.2.5). An IOMMU with a remapping unit looks the request up in its
 * interrupt remapping table and hands the platform the interrupt the entry names — or blocks it and
 * records a fault. A request in the compatibility format (or any request while remapping is off) goes on
 * to the interrupt controller as it is, unless the vendor's rules block it. Requests with a PASID are
 * translated like any DMA write.
 *
 * The driver half is the kernel's IR domain: it owns the table, allocates an entry per device vector,
 * writes it and invalidates the remapping unit's interrupt-entry cache through its queue, and composes the
 * message the device must send (the remappable format: an entry handle, not a destination).
 */
import type { IommuDeviceRef } from '../iommu/driver.js';
import type { IommuFault } from '../iommu/translation.js';
import type { MsiMessage, MsiOutcome, MsiRequester } from './msi-controller.js';

/** The x86 interrupt window: a DMA write without PASID here is an interrupt request. */
export const X86_INTERRUPT_WINDOW = Object.freeze({ base: 0xfee0_0000n, size: 0x10_0000n });

/** Whether `address` lies in the x86 interrupt window. */
export function inInterruptWindow(address: bigint): boolean {
  return (
    address >= X86_INTERRUPT_WINDOW.base && address < X86_INTERRUPT_WINDOW.base + X86_INTERRUPT_WINDOW.size
  );
}

/** x86 delivery modes (Intel SDM vol. 3 §11.11.2, the MSI data register's bits 10:8). */
export type DeliveryMode = 'fixed' | 'lowest-priority' | 'smi' | 'nmi' | 'init' | 'extint';

/**
 * The 3-bit delivery-mode encoding every x86 interrupt format shares (the MSI data register, the ICR, VT-d
 * and AMD remapping entries); 0b011 and 0b110 are reserved.
 */
const DELIVERY_MODE_CODES: readonly (DeliveryMode | undefined)[] = [
  'fixed',
  'lowest-priority',
  'smi',
  undefined,
  'nmi',
  'init',
  undefined,
  'extint',
];

/** The delivery mode a 3-bit field encodes (its low three bits); undefined for a reserved one. */
export function decodeDeliveryMode(bits: number): DeliveryMode | undefined {
  return DELIVERY_MODE_CODES[bits & 7];
}

/** The 3-bit encoding of a delivery mode. */
export function encodeDeliveryMode(mode: DeliveryMode): number {
  return DELIVERY_MODE_CODES.indexOf(mode);
}

/** An interrupt as the platform's interrupt controller takes it: what a remapping entry names. */
export interface X86Interrupt {
  /** 0–255; 0x10–0xFF for fixed and lowest-priority delivery. */
  readonly vector: number;
  /** A local APIC ID: 8 bits in xAPIC mode, 32 bits in x2APIC mode (0xFFFFFFFF / 0xFF: broadcast). */
  readonly destination: number;
  readonly destinationMode: 'physical' | 'logical';
  readonly deliveryMode: DeliveryMode;
  readonly trigger: 'edge' | 'level';
  /** Redirection hint: lowest-priority arbitration among the logical destinations (the RH bit). */
  readonly redirectionHint?: boolean;
}

/**
 * A posted interrupt: the remapping unit records the vector in memory for a virtual CPU instead of
 * interrupting a physical one (VT-d posted-interrupt descriptor, §5.2.3; AMD guest virtual APIC, GA
 * mode, §2.2.5.2), and raises `notify` when the target must be told.
 */
export interface PostedInterrupt {
  /** Host-physical address of the posting structure (PI descriptor; AMD vAPIC backing page). */
  readonly descriptor: bigint;
  /** The guest vector posted. */
  readonly vector: number;
  /** The notification event sent to a host CPU, absent when none was needed (already pending, suppressed). */
  readonly notify?: X86Interrupt;
}

/** What the remapping unit made of an interrupt request. */
export type InterruptRequestOutcome =
  /** Remapped through entry `index` to `interrupt`, which the platform now delivers. */
  | { readonly kind: 'remapped'; readonly index: number; readonly interrupt: X86Interrupt }
  /** Posted through entry `index`. */
  | { readonly kind: 'posted'; readonly index: number; readonly posted: PostedInterrupt }
  /** Not remapped (compatibility format, or remapping off): the write reaches the controller unchanged. */
  | { readonly kind: 'passthrough' }
  /** Blocked; `fault.recorded` says whether the IOMMU logged it (some entries suppress fault recording). */
  | { readonly kind: 'blocked'; readonly fault: IommuFault };

/** An IOMMU's interrupt remapping unit, as devices reach it (beside {@link IommuHardware.translate}). */
export interface InterruptRemappingHardware {
  /** Looks up an interrupt request (a 32-bit write of `data` to `address` in the window) from `streamId`. */
  request(streamId: number, address: bigint, data: number): InterruptRequestOutcome;
}

/** The platform's interrupt controller, as a remapping unit hands it an interrupt (`IMsiController.deliverRemapped`). */
export interface InterruptDelivery {
  deliverRemapped(interrupt: X86Interrupt, requester: MsiRequester): MsiOutcome;
}

/** What an entry should do: remap to an interrupt, or post for a virtual CPU. */
export type InterruptTarget =
  | { readonly kind: 'remap'; readonly interrupt: X86Interrupt }
  | { readonly kind: 'post'; readonly descriptor: bigint; readonly vector: number };

/** What a remapping driver can do. */
export interface InterruptRemappingCapabilities {
  /** 32-bit destination IDs (VT-d EIM, AMD XTEn with 128-bit entries): x2APIC beyond APIC ID 255. */
  readonly x2apic: boolean;
  /** Entries may post instead of remap (VT-d PI, AMD GA). */
  readonly posting: boolean;
}

/**
 * The driver's interrupt remapping (Linux `irq_remapping_ops` and the vendor IR domain): entries are the
 * driver's, indexes are handles into its table. Misuse throws a coded error: an index the device does not
 * own is `EINVAL`, a full table `ENOSPC`, posting without the capability `EOPNOTSUPP`.
 */
export interface InterruptRemappingDriver {
  readonly capabilities: InterruptRemappingCapabilities;
  /** Allocates `count` consecutive entries for the device (Linux `alloc_irte`); returns the first index. */
  allocate(device: IommuDeviceRef, count: number): number;
  /**
   * Writes entry `index` (Linux `modify_irte`) and invalidates the unit's cached copy — unless
   * `invalidate` is false, which leaves the stale entry in effect (a driver bug a model should show).
   */
  program(
    device: IommuDeviceRef,
    index: number,
    target: InterruptTarget,
    options?: { readonly invalidate?: boolean },
  ): void;
  /** The message the device must send to use entry `index` (Linux `irq_compose_msi_msg` of the IR domain). */
  compose(device: IommuDeviceRef, index: number): MsiMessage;
  /** Invalidates the cached copies of entries `[index, index + count)` (VT-d IEC, AMD INVALIDATE_INTERRUPT_TABLE). */
  invalidate(device: IommuDeviceRef, index: number, count: number): void;
  /** Clears and releases entries `[index, index + count)`, invalidating them. */
  free(device: IommuDeviceRef, index: number, count: number): void;
}

/** A driver's remapping bound to one device: what an MSI controller's kernel driver uses. */
export interface DeviceInterruptRemapper {
  readonly capabilities: InterruptRemappingCapabilities;
  allocate(count: number): number;
  program(index: number, target: InterruptTarget, options?: { readonly invalidate?: boolean }): void;
  compose(index: number): MsiMessage;
  invalidate(index: number, count: number): void;
  free(index: number, count: number): void;
}

/** Binds a driver's remapping to `device`. */
export function remapperFor(
  driver: InterruptRemappingDriver,
  device: IommuDeviceRef,
): DeviceInterruptRemapper {
  return {
    capabilities: driver.capabilities,
    allocate: (count) => driver.allocate(device, count),
    program: (index, target, options) => driver.program(device, index, target, options),
    compose: (index) => driver.compose(device, index),
    invalidate: (index, count) => driver.invalidate(device, index, count),
    free: (index, count) => driver.free(device, index, count),
  };
}
