import { describe, expect, it } from 'vitest';
import { FrameAllocator } from '../memory/frame-allocator.js';
import { MemoryBus } from '../memory/memory-bus.js';
import { allocDriverPages, freeDriverPages, readDriverMemory, writeDriverMemory } from './driver-memory.js';

const RAM = 0x1_0000_0000;

function host() {
  const bus = new MemoryBus();
  bus.addRam('ram', RAM, 0x10_0000);
  const memory = new FrameAllocator([{ base: RAM, size: 0x10_0000 }], (b, n) => bus.discardRam(b, n));
  return { memory, access: { instance: 'iommu0', bus, counter: bus.counter('driver:iommu0') } };
}

describe('driver memory', () => {
  it('allocates pages aligned to their size, and takes them back', () => {
    const { memory } = host();
    allocDriverPages(memory, 1);
    const block = allocDriverPages(memory, 8);
    expect(block % (8 * 4096)).toBe(0);
    freeDriverPages(memory, block, 8);
    expect(allocDriverPages(memory, 8)).toBe(block);
    expect(memory.allocatedFrameCount).toBe(9);
  });

  it('reads back what it wrote, counting each access', () => {
    const { memory, access } = host();
    const at = allocDriverPages(memory, 1);
    writeDriverMemory(access, at, Uint32Array.of(1, 2, 3), 2);
    const out = new Uint32Array(3);
    readDriverMemory(access, at, out);
    expect([...out]).toEqual([1, 2, 0]);
    expect(access.counter.writes).toBeGreaterThan(0);
    expect(access.counter.reads).toBeGreaterThan(0);
  });

  it('an access the bus aborts is EIO naming the instance, the access and the address', () => {
    const { access } = host();
    expect(() => writeDriverMemory(access, 0x4000_0000, new Uint32Array(1))).toThrow(
      expect.objectContaining({
        code: 'EIO',
        message: 'EIO: iommu0: driver memory write at 0x40000000 aborted',
        context: { instance: 'iommu0', address: 0x4000_0000 },
      }),
    );
    expect(() => readDriverMemory(access, 0x4000_0000, new Uint32Array(1))).toThrow(
      'EIO: iommu0: driver memory read at 0x40000000 aborted',
    );
  });
});
