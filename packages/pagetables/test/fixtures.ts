/**
 * Test fixtures: a memory bus with one RAM region and a zeroing frame allocator over it, as createSystem
 * builds them, plus the counter a page table uses.
 */
import { type AccessCounter, FrameAllocator, MemoryBus } from '@iommukit/core';

export const RAM_BASE = 0x8000_0000;
export const RAM_SIZE = 256 * 1024 * 1024;

export interface Machine {
  readonly bus: MemoryBus;
  readonly memory: FrameAllocator;
  readonly counter: AccessCounter;
}

export function machine(base = RAM_BASE, size = RAM_SIZE): Machine {
  const bus = new MemoryBus();
  bus.addRam('ram', base, size);
  const memory = new FrameAllocator([{ base, size }], (b, bytes) => bus.discardRam(b, bytes));
  return { bus, memory, counter: bus.counter('pgtable') };
}

/** Reads the two words of the descriptor at `addr`. */
export function readDesc(m: Machine, addr: number): [number, number] {
  const w = new Uint32Array(2);
  if (!m.bus.readWords(addr, w, 2, m.counter)) throw new Error(`no memory at ${addr.toString(16)}`);
  return [w[0]!, w[1]!];
}

/** Writes a descriptor at `addr`. */
export function writeDesc(m: Machine, addr: number, lo: number, hi: number): void {
  if (!m.bus.writeWords(addr, Uint32Array.of(lo >>> 0, hi >>> 0), 2, m.counter))
    throw new Error('write failed');
}
