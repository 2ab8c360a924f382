/**
 * Memory the driver hands the SMMU for its tables and queues: whole frames, aligned to their size as the
 * SMMU requires (it ignores address bits below a table's or queue's size, §6.3.24–6.3.26).
 */
import { type AccessCounter, hpa, type IFrameAllocator, type ITracer, type MemoryBus } from '@iommukit/core';
import type { Smmuv3Cmdq } from './cmdq.js';

const PAGE = 4096;

export interface TableBlock {
  readonly base: number;
  readonly frames: number;
}

export function allocSizeAligned(memory: IFrameAllocator, bytes: number): TableBlock {
  const frames = Math.max(1, Math.ceil(bytes / PAGE));
  return { base: Number(memory.allocFrames(frames, 2 ** Math.ceil(Math.log2(frames)))), frames };
}

export function freeBlock(memory: IFrameAllocator, block: TableBlock): void {
  memory.freeFrames(hpa(block.base), block.frames);
}

/** What a Stream table or CD table needs from its driver. */
export interface TableHost {
  readonly instance: string;
  readonly bus: MemoryBus;
  readonly memory: IFrameAllocator;
  readonly counter: AccessCounter;
  readonly cmdq: Smmuv3Cmdq;
  readonly tracer?: ITracer;
}
