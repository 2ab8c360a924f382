/**
 * The mock's record rings in memory (the fault log and the page request queue): a base, a log2 size,
 * a HEAD software advances and a TAIL the hardware advances, and a STATUS whose OVERFLOW bit the hardware
 * sets when a record finds the ring full (or unprogrammed) and is dropped.
 */
import type { AccessCounter, MemoryBus, RegisterFile } from '@iommukit/core';
import { QUEUE_OVERFLOW } from './regs.js';

/** A ring's registers, by offset. */
export interface RingRegisters {
  readonly base: number;
  readonly log2: number;
  readonly head: number;
  readonly tail: number;
  readonly status: number;
}

/**
 * Appends `record` (`bytes` per entry) at TAIL and advances it; returns the record's address, or undefined
 * when the ring is full or has no base (OVERFLOW is then set and nothing is written).
 */
export function appendRecord(
  regs: RegisterFile,
  ring: RingRegisters,
  bytes: number,
  record: readonly number[],
  bus: MemoryBus,
  who: AccessCounter,
): number | undefined {
  const size = 2 ** regs.get(ring.log2);
  const base = Number(regs.get64(ring.base));
  const head = regs.get(ring.head) % size;
  const tail = regs.get(ring.tail) % size;
  if (base === 0 || (tail + 1) % size === head) {
    regs.set(ring.status, regs.get(ring.status) | QUEUE_OVERFLOW);
    return undefined;
  }
  const addr = base + tail * bytes;
  bus.writeWords(addr, record, record.length, who);
  regs.set(ring.tail, (tail + 1) % size);
  return addr;
}
