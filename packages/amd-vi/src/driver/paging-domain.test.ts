/**
 * v1 paging domains (paging-domain.ts): the depth for an address width and EFR.HATS, the aperture, what
 * `map`, `unmap` and `iotlbSync` hand to the driver's flush, and the domain's life cycle.
 */
import { errnoOf, FrameAllocator, hpa, iova, MemoryBus } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { AmdPagingDomain, amdDomainLevels, type DomainFlush } from './paging-domain.js';

const RW = { read: true, write: true };

function domain(options: { levels?: number; npCache?: boolean } = {}) {
  const bus = new MemoryBus();
  bus.addRam('ram', 0x1000_0000, 0x100_0000);
  const memory = new FrameAllocator([{ base: 0x1000_0000, size: 0x100_0000 }], (b, n) =>
    bus.discardRam(b, n),
  );
  const flushes: string[] = [];
  const flush: DomainFlush = {
    pages: (_d, at, size) => flushes.push(`pages ${at.toString(16)}+${size.toString(16)}`),
    all: () => flushes.push('all'),
  };
  let released = 0;
  const d = new AmdPagingDomain({
    pageTable: 'v1',
    id: 7,
    domainId: 3,
    levels: options.levels ?? 4,
    context: { bus, memory, counter: bus.counter('t') },
    npCache: options.npCache ?? false,
    flush,
    released: () => released++,
  });
  return { d, flushes, memory, released: () => released };
}

describe('amdDomainLevels', () => {
  it('takes the levels a width needs (⌈(width − 12) / 9⌉), 4 for the default 48 bits', () => {
    expect(amdDomainLevels(6)).toBe(4);
    expect([21, 39, 40, 57, 64].map((w) => amdDomainLevels(6, w))).toEqual([1, 3, 4, 5, 6]);
  });

  it('refuses a width deeper than EFR.HATS allows', () => {
    expect(amdDomainLevels(4, 48)).toBe(4);
    expect(errnoOf(() => amdDomainLevels(4, 49))).toBe('EINVAL');
  });
});

describe('a v1 domain', () => {
  it('translates what its depth covers: 2^48 for 4 levels, 2^64 for 6', () => {
    expect(domain().d.aperture.end).toBe(2n ** 48n - 1n);
    expect(domain({ levels: 6 }).d.aperture.end).toBe(2n ** 64n - 1n);
    const { d } = domain();
    expect(errnoOf(() => d.map(iova(2n ** 48n - 0x1000n), hpa(0x2000_0000n), 0x2000n, RW))).toBe('EINVAL');
  });

  it('maps without a flush, unmaps into the gather, and iotlbSync flushes its span once', () => {
    const { d, flushes } = domain();
    for (const at of [0x1000n, 0x2000n, 0x8000n]) d.map(iova(at), hpa(0x2000_0000n + at), 0x1000n, RW);
    expect(flushes).toEqual([]);
    expect(d.iovaToPhys(iova(0x2010n))).toBe(0x2000_2010n);
    d.unmap(iova(0x2000n), 0x1000n);
    d.unmap(iova(0x8000n), 0x1000n);
    expect(flushes).toEqual([]);
    d.iotlbSync();
    expect(flushes).toEqual(['pages 2000+7000']);
    d.iotlbSync();
    expect(flushes).toEqual(['pages 2000+7000']);
  });

  it('with NpCache flushes each map’s range', () => {
    const { d, flushes } = domain({ npCache: true });
    d.map(iova(0x4000n), hpa(0x2000_0000n), 0x2000n, RW);
    expect(flushes).toEqual(['pages 4000+2000']);
  });

  it('flushIotlbAll drops the gather and flushes everything', () => {
    const { d, flushes } = domain();
    d.map(iova(0x1000n), hpa(0x2000_0000n), 0x1000n, RW);
    d.map(iova(0x2000n), hpa(0x2000_0000n), 0x1000n, RW);
    d.unmap(iova(0x1000n), 0x1000n);
    d.flushIotlbAll();
    d.iotlbSync();
    expect(flushes).toEqual(['all']);
  });

  it('free: EBUSY while attached, then the table and the DomainID go, and the domain is unusable', () => {
    const { d, memory, released } = domain();
    d.map(iova(0x1000n), hpa(0x2000_0000n), 0x1000n, RW);
    d.attachments = 1;
    expect(errnoOf(() => d.free())).toBe('EBUSY');
    d.attachments = 0;
    d.free();
    d.free();
    expect(released()).toBe(1);
    expect(memory.allocatedFrameCount).toBe(0);
    expect(errnoOf(() => d.map(iova(0n), hpa(0n), 0x1000n, RW))).toBe('ENOENT');
  });
});
