/**
 * A device's MSI-X table (PCIe §7.7.2): one address/data pair per vector, written by whoever owns the
 * device's interrupts — the host kernel for a kernel-owned device, the host's VFIO on the guest's behalf
 * for an assigned one. A vector the owner has not programmed, or has masked, sends nothing.
 */
import { IommufdError } from '../errors/iommufd-error.js';
import type { MsiMessage } from '../msi/msi-controller.js';

interface MsixEntry {
  message: MsiMessage | undefined;
  masked: boolean;
}

export class MsixTable {
  private readonly entries: MsixEntry[];

  constructor(readonly size: number) {
    this.entries = Array.from({ length: size }, () => ({ message: undefined, masked: false }));
  }

  /** Writes a vector's address and data and unmasks it. */
  program(vector: number, message: MsiMessage): void {
    const entry = this.entry(vector);
    entry.message = message;
    entry.masked = false;
  }

  setMasked(vector: number, masked: boolean): void {
    this.entry(vector).masked = masked;
  }

  /** The message a vector sends now, or undefined when it is unprogrammed or masked. */
  message(vector: number): MsiMessage | undefined {
    const entry = this.entry(vector);
    return entry.masked ? undefined : entry.message;
  }

  /** Clears every vector (function reset). */
  reset(): void {
    // A vector with no message sends nothing, masked or not; programming it unmasks it.
    for (const entry of this.entries) entry.message = undefined;
  }

  private entry(vector: number): MsixEntry {
    const entry = this.entries[vector];
    if (!Number.isInteger(vector) || entry === undefined)
      throw new IommufdError('EINVAL', `MSI-X vector ${vector} does not exist (table size ${this.size})`);
    return entry;
  }
}
