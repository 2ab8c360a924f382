/**
 * A host driver's own memory (its tables, queues and logs), as every vendor driver reaches it: zeroed pages
 * from the frame allocator, aligned to their size as Linux's `iommu_alloc_pages_node` gives them, and word
 * reads and writes over the bus. Memory the driver allocated always exists, so a bus abort is a model bug
 * or a test's deliberate hole: `EIO` naming the access.
 */
import { hpa, toHex } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { AccessCounter } from '../memory/access-counter.js';
import type { IFrameAllocator } from '../memory/frame-allocator.js';
import type { MemoryBus } from '../memory/memory-bus.js';

/** What a driver's memory accesses go through. */
export interface DriverMemoryAccess {
  readonly instance: string;
  readonly bus: MemoryBus;
  /** Every access the driver makes is counted here. */
  readonly counter: AccessCounter;
}

/** Allocates `pages` zeroed 4 KiB pages aligned to their size; returns the address. */
export function allocDriverPages(memory: IFrameAllocator, pages: number): number {
  return Number(memory.allocBytes(4096 * pages, 4096 * pages));
}

/** Returns `pages` frames from `allocDriverPages`. */
export function freeDriverPages(memory: IFrameAllocator, address: number, pages: number): void {
  memory.freeFrames(hpa(BigInt(address)), pages);
}

/** Writes `count` of `words` to driver memory at `address`. */
export function writeDriverMemory(
  host: DriverMemoryAccess,
  address: number,
  words: Uint32Array,
  count = words.length,
): void {
  if (!host.bus.writeWords(address, words, count, host.counter)) throw busError(host, address, true);
}

/** Reads `count` words of driver memory at `address` into `out`. */
export function readDriverMemory(
  host: DriverMemoryAccess,
  address: number,
  out: Uint32Array,
  count = out.length,
): void {
  if (!host.bus.readWords(address, out, count, host.counter)) throw busError(host, address, false);
}

function busError(host: DriverMemoryAccess, address: number, write: boolean): IommufdError {
  const what = `${host.instance}: driver memory ${write ? 'write' : 'read'} at ${toHex(address)} aborted`;
  return new IommufdError('EIO', what, { instance: host.instance, address });
}
