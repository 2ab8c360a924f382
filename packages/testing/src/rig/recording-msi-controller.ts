/**
 * A recording MSI controller for the vendor packages' driver tests (no test framework inside: the main entry
 * may export it).
 */
import { hpa, type MemoryBus, type MsiRequester, type MsiVector } from '@iommukit/core';

/** A message the MSI window received. */
export interface MsiWrite {
  readonly address: number;
  readonly data: number;
  readonly deviceId: number | undefined;
}

/**
 * The platform MSI controller, reduced to what an IOMMU host driver uses for its unit's own interrupts
 * (allocate vectors, request a handler, free): it records every message the window receives and runs the
 * handler of a message it allocated when the test services interrupts.
 */
export class RecordingMsiController {
  readonly writes: MsiWrite[] = [];
  readonly freed: string[] = [];
  private readonly vectors = new Map<number, { requester: string; handler?: () => void }>();
  private pending: number[] = [];
  private next = 0x40;

  constructor(
    bus: MemoryBus,
    /** The x86 interrupt window's base, where every message is written. */
    private readonly window = 0xfee0_0000,
  ) {
    bus.addMmio('msi', window, 0x10_0000, {
      read: () => 0,
      write: (offset, _size, data, deviceId) => {
        this.writes.push({ address: window + offset, data, deviceId });
        if (offset === 0 && this.vectors.has(data)) this.pending.push(data);
      },
    });
  }

  /** Vectors numbered from 0x40: the message is a write of the vector to the window's first address. */
  allocateVectors(device: MsiRequester, count: number): readonly MsiVector[] {
    const doorbell = { name: 'msi', address: hpa(this.window), page: hpa(this.window) };
    return Array.from({ length: count }, () => {
      const vector = this.next++;
      this.vectors.set(vector, { requester: device.name });
      return {
        message: { address: BigInt(this.window), data: vector },
        eventId: vector,
        intid: vector,
        cpu: 0,
        doorbell,
      };
    });
  }

  freeVectors(device: MsiRequester): void {
    for (const [vector, v] of this.vectors) if (v.requester === device.name) this.vectors.delete(vector);
    this.freed.push(device.name);
  }

  requestIrq(intid: number, handler: () => void): () => void {
    const v = this.vectors.get(intid);
    if (v === undefined) throw new Error(`vector ${intid} was not allocated`);
    v.handler = handler;
    return () => {
      v.handler = undefined;
    };
  }

  /** Whether a handler is installed for `intid`. */
  hasHandler(intid: number): boolean {
    return this.vectors.get(intid)?.handler !== undefined;
  }

  /** Runs the handlers of the messages that arrived since the last call; returns how many ran. */
  service(): number {
    const due = this.pending;
    this.pending = [];
    let ran = 0;
    for (const vector of due) {
      const handler = this.vectors.get(vector)?.handler;
      if (handler === undefined) continue;
      handler();
      ran++;
    }
    return ran;
  }
}
