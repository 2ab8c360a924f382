/**
 * The mock's record rings in memory (the fault log and the page request queue): a base, a log2 size,
 * a HEAD software advances and a TAIL the hardware advances, and a STATUS whose OVERFLOW bit the hardware
 * sets when a record finds the ring full (or unprogrammed) and is dropped. The hardware appends; the
 * driver drains, through the registers.
 */
import {
  type AccessCounter,
  type MemoryBus,
  type MmioWindow,
  pollTimeout,
  type RegisterFile,
} from '@iommukit/core';
import { QUEUE_OVERFLOW } from './regs.js';

/** A ring's registers, by offset. */
export interface RingRegisters {
  /** For messages: `the fault log`. */
  readonly name: string;
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

/** A ring the driver allocated: where, and how many records it holds. */
export interface RingMemory {
  readonly base: bigint;
  readonly entries: number;
}

/**
 * The driver's side: reads each record from HEAD to TAIL into `words` and hands it to `take`, writes HEAD
 * back and acknowledges OVERFLOW. Returns whether records were lost. A TAIL that HEAD can never reach (more
 * records than the ring holds) is a poll timeout, never a hang.
 */
export function drainRing(
  regs: MmioWindow,
  ring: RingRegisters,
  memory: RingMemory,
  words: Uint32Array,
  bus: MemoryBus,
  who: AccessCounter,
  instance: string,
  take: (words: Uint32Array) => void,
): boolean {
  const bytes = words.length * 4;
  let head = regs.read32(ring.head);
  const tail = regs.read32(ring.tail);
  for (let n = 0; head !== tail; n++) {
    if (n === memory.entries) throw pollTimeout(instance, `${ring.name} TAIL ${tail} is never reached`);
    bus.readWords(Number(memory.base) + head * bytes, words, words.length, who);
    take(words);
    head = (head + 1) % memory.entries;
  }
  regs.write32(ring.head, head);
  const lost = (regs.read32(ring.status) & QUEUE_OVERFLOW) !== 0;
  if (lost) regs.write32(ring.status, QUEUE_OVERFLOW);
  return lost;
}
