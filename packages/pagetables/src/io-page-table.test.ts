import { errnoOf, FrameAllocator, MemoryBus, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { machine } from '../test/fixtures.js';
import { runSelftestMatrix } from '../test/selftest-matrix.js';
import { DIRTY_DIRTY, DIRTY_UNTRACKED } from './format.js';
import { IoPageTable } from './io-page-table.js';
import type { VmsaGranule } from './vmsa/registers.js';
import { vmsaFormat } from './vmsa/vmsa-format.js';
import { walk } from './walk.js';
import { x86Format } from './x86/x86-format.js';

const GiB = 1n << 30n;
const OUT_BASE = 1n << 40n; // output addresses differ from IOVAs, aligned for every block size
const RW = { read: true, write: true } as const;

// The io-pgtable selftest matrix (Linux arm_lpae_run_tests), for both stages, every granule and IAS, OAS 48.
describe('IoPageTable: the io-pgtable selftest matrix', () => {
  for (const stage of [1, 2] as const) {
    for (const granule of [4096, 16384, 65536] as VmsaGranule[]) {
      for (const ias of [32, 36, 40, 42, 44, 48]) {
        it(`stage ${stage} ${granule / 1024}K IAS ${ias}`, () => {
          runSelftestMatrix(vmsaFormat({ stage, granule, ias, oas: 48 }));
        });
      }
    }
  }
});

describe('IoPageTable behaviour', () => {
  const format = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });

  it('uses the largest size the alignment of iova, pa and the remaining size allows', () => {
    const m = machine();
    const t = new IoPageTable(format, m);
    const walker = m.bus.counter('w');
    const shiftAt = (iova: bigint) => {
      const r = walk(format, t.rootPa, Number(iova), { bus: m.bus, counter: walker });
      return r.ok ? r.pageShift : -1;
    };
    // [1G − 4K, 2G + 2M + 4K): 4K page, then a 1G block, then a 2M block, then a 4K page.
    t.map(GiB - 4096n, OUT_BASE + GiB - 4096n, GiB + (2n << 20n) + 8192n, RW);
    expect([shiftAt(GiB - 1n), shiftAt(GiB), shiftAt(2n * GiB), shiftAt(2n * GiB + (2n << 20n))]).toEqual([
      12, 30, 21, 12,
    ]);
    // An output address aligned to 4K only forces 4K pages even where the IOVA is 1G aligned.
    t.map(4n * GiB, OUT_BASE + 4096n, 4n << 20n, RW);
    expect(shiftAt(4n * GiB)).toBe(12);
    expect(t.iovaToPhys(4n * GiB + (3n << 20n))).toBe(OUT_BASE + 4096n + (3n << 20n));
  });

  it('refuses bad arguments with EINVAL before touching memory', () => {
    const m = machine();
    const t = new IoPageTable(format, m);
    const writes = m.counter.writes;
    expect(errnoOf(() => t.map(0x1000n, 0x2000n, 0n, RW))).toBe('EINVAL');
    expect(errnoOf(() => t.map(0x1001n, 0x2000n, 0x1000n, RW))).toBe('EINVAL');
    expect(errnoOf(() => t.map(0x1000n, 0x2001n, 0x1000n, RW))).toBe('EINVAL');
    expect(errnoOf(() => t.map(0x1000n, 0x2000n, 0x1800n, RW))).toBe('EINVAL');
    expect(errnoOf(() => t.map((1n << 48n) - 0x1000n, 0n, 0x2000n, RW))).toBe('EINVAL');
    expect(errnoOf(() => t.map(0n, (1n << 48n) - 0x1000n, 0x2000n, RW))).toBe('EINVAL');
    expect(errnoOf(() => t.map(0n, 0n, 0x1000n, { read: false, write: false }))).toBe('EINVAL');
    expect(errnoOf(() => t.unmap(0x800n, 0x1000n))).toBe('EINVAL');
    expect(errnoOf(() => new IoPageTable(format, m, { pageSizes: 1n << 13n }))).toBe('EINVAL');
    expect(m.counter.writes).toBe(writes);
  });

  it('unmap skips holes and returns only what was mapped; unmapping nothing returns 0', () => {
    const m = machine();
    const t = new IoPageTable(format, m);
    t.map(0x10000n, 0x8_0000n, 0x2000n, RW);
    t.map(0x20000n, 0x9_0000n, 0x1000n, RW);
    expect(t.unmap(0x0n, 0x100000n)).toBe(0x3000n);
    expect(t.unmap(0x0n, 0x100000n)).toBe(0n);
    expect(t.tablePages).toBe(1);
  });

  it('rolls a map back when a table allocation fails part-way', () => {
    const m = machine(0x8000_0000, 5 * 4096); // the root and 4 tables fit
    const t = new IoPageTable(format, m);
    const frames = m.memory.allocatedFrameCount;
    // [512G − 4K, 512G + 4K) needs two level-1, two level-2 and two level-3 tables: the 5th allocation fails.
    expect(errnoOf(() => t.map((512n << 30n) - 4096n, 0n, 8192n, RW))).toBe('ENOMEM');
    expect(t.iovaToPhys((512n << 30n) - 4096n)).toBeUndefined();
    expect(t.tablePages).toBe(1);
    expect(m.memory.allocatedFrameCount).toBe(frames);
  });

  it('page sizes can be restricted (pgsize_bitmap), and a split keeps the attributes', () => {
    const m = machine();
    const only4k = new IoPageTable(format, m, { pageSizes: 1n << 12n });
    only4k.map(0n, 0n, 2n << 20n, RW);
    const r = walk(format, only4k.rootPa, 0, { bus: m.bus, counter: m.counter });
    expect(r.ok && r.pageShift).toBe(12);

    const t = new IoPageTable(format, m);
    t.map(0n, OUT_BASE, GiB, { read: true, write: false, priv: true });
    expect(t.unmap(0x5000n, 0x1000n)).toBe(0x1000n);
    const leaf = walk(format, t.rootPa, 0x6000, { bus: m.bus, counter: m.counter });
    expect(leaf.ok && [leaf.pageShift, leaf.attrs.ap, leaf.attrs.xn]).toEqual([12, 0b10, 0b11]);
    const block = walk(format, t.rootPa, 0x20_0000, { bus: m.bus, counter: m.counter });
    expect(block.ok && [block.pageShift, block.attrs.ap]).toEqual([21, 0b10]);
    expect(t.tablePages).toBe(4); // root, level 1, the 1G block's 2M entries, the first 2M block's pages
  });

  it('tells its flush ops what changed', () => {
    const m = machine();
    const pages: [bigint, bigint][] = [];
    const walks: [bigint, bigint][] = [];
    const t = new IoPageTable(format, m, {
      flush: { tlbAddPage: (i, s) => pages.push([i, s]), tlbFlushWalk: (i, s) => walks.push([i, s]) },
    });
    t.map(0n, 0n, 4n << 20n, RW); // two 2M blocks
    t.unmap(0x20_0000n, 0x1000n); // splits the second block
    expect(walks).toEqual([[0x20_0000n, 0x20_0000n]]);
    expect(pages).toEqual([[0x20_0000n, 0x1000n]]);
    t.unmap(0n, 4n << 20n);
    // Leaves: the split table's pages, then the first 2M block. Walks: the freed level-3, 2 and 1 tables.
    expect(pages.slice(1)).toEqual([
      [0x20_1000n, 0x1f_f000n],
      [0n, 0x20_0000n],
    ]);
    expect(walks.slice(1)).toEqual([
      [0x20_0000n, 0x20_0000n],
      [0n, 1n << 30n],
      [0n, 1n << 39n],
    ]);
    expect(t.tablePages).toBe(1);
  });

  it('is unusable after free', () => {
    const m = machine();
    const t = new IoPageTable(format, m);
    t.free();
    expect(errnoOf(() => t.map(0n, 0n, 4096n, RW))).toBe('EINVAL');
    expect(errnoOf(() => t.free())).toBe('EINVAL');
    expect(m.memory.allocatedFrameCount).toBe(0);
  });

  it('traces map and unmap when a tracer listens', async () => {
    const { Tracer } = await import('@iommukit/core');
    const tracer = new Tracer();
    tracer.startRecording();
    const t = new IoPageTable(format, { ...machine(), tracer, source: 'smmu0/d1' });
    t.map(0n, 0n, 4096n, RW);
    t.unmap(0n, 4096n);
    expect(tracer.stopRecording().map((r) => [r.source, r.name])).toEqual([
      ['smmu0/d1', 'pgtable.map'],
      ['smmu0/d1', 'pgtable.unmap'],
    ]);
  });

  it('traces what each step changed, with its numbers', async () => {
    const { Tracer } = await import('@iommukit/core');
    const tracer = new Tracer();
    tracer.startRecording();
    const m = machine();
    const t = new IoPageTable(format, { ...m, tracer });
    t.map(0n, 0n, 0x20_0000n, RW); // one 2 MiB block
    t.unmap(0x1000n, 0x1000n); // splits it
    t.free();
    expect(tracer.stopRecording().map((r) => [r.source, r.name, r.args])).toEqual([
      ['pgtable', 'pgtable.map', { iova: 0n, pa: 0n, size: 0x20_0000n }],
      ['pgtable', 'pgtable.split', { iova: 0, level: 2 }],
      ['pgtable', 'pgtable.unmap', { iova: 0x1000n, size: 0x1000n, unmapped: 0x1000 }],
      ['pgtable', 'pgtable.free', { root: t.root }],
    ]);
  });

  it('maps a head, a run of blocks and a tail in one call, each at its own output address', () => {
    const m = machine();
    const t = new IoPageTable(format, m);
    const iova = 0x20_0000n - 0x1000n;
    const size = 0x1000n + 0x40_0000n + 0x2000n; // a page, two 2 MiB blocks, two pages
    t.map(iova, OUT_BASE + iova, size, RW);
    for (const at of [iova, 0x20_0000n, 0x40_0000n + 0x1000n, 0x60_0000n, 0x60_1000n + 0x42n])
      expect(t.iovaToPhys(at), at.toString(16)).toBe(OUT_BASE + at);
    expect(t.iovaToPhys(0x60_2000n)).toBeUndefined();
    const r = walk(format, t.rootPa, 0x40_0000, { bus: m.bus, counter: m.counter });
    expect(r.ok && r.pageShift).toBe(21);
  });

  it('answers iova_to_phys outside the input range with nothing', () => {
    const t = new IoPageTable(format, machine());
    t.map(0n, OUT_BASE, 0x1000n, RW);
    expect(t.iovaToPhys(0n)).toBe(OUT_BASE);
    expect(t.iovaToPhys(-0x1000n)).toBeUndefined();
    expect(t.iovaToPhys(1n << BigInt(format.ias))).toBeUndefined();
  });

  it('refuses bad output addresses and page-size sets, naming the operation and the values', () => {
    const t = new IoPageTable(format, machine());
    expect(() => t.map(0n, -0x1000n, 0x1000n, RW)).toThrow(
      expect.objectContaining({ code: 'EINVAL', context: { pa: -0x1000n, size: 0x1000n } }),
    );
    expect(errnoOf(() => t.map(0n, 0x800n, 0x1000n, RW))).toBe('EINVAL');
    expect(errnoOf(() => t.map(0n, 1n << 48n, 0x1000n, RW))).toBe('EINVAL');
    expect(errnoOf(() => t.map(0n, (1n << 48n) - 0x1000n, 0x1000n, RW))).toBeUndefined();
    expect(() => t.map(0x800n, 0n, 0x1000n, RW)).toThrow(/^EINVAL: map 0x800\+0x1000:/);
    expect(() => t.unmap(0x800n, 0x1000n)).toThrow(/^EINVAL: unmap 0x800\+0x1000:/);
    expect(() => t.readAndClearDirty(0n, 0n, () => {})).toThrow(/^EINVAL: readAndClearDirty 0x0\+0x0:/);
    expect(() => t.unmap(1n << 48n, 0x1000n)).toThrow(
      expect.objectContaining({ context: { iova: 1n << 48n, size: 0x1000n } }),
    );
    expect(() => t.unmap(0n, 0n)).toThrow(expect.objectContaining({ context: { iova: 0n, size: 0n } }));
    expect(errnoOf(() => new IoPageTable(format, machine(), { pageSizes: 0n }))).toBe('EINVAL');
  });

  it('writes dirty-tracking leaves only when asked', () => {
    const m = machine();
    const plain = new IoPageTable(format, m);
    const tracked = new IoPageTable(format, m, { dirtyTracking: true });
    plain.map(0n, OUT_BASE, 0x1000n, RW);
    tracked.map(0n, OUT_BASE, 0x1000n, RW);
    const state = (t: IoPageTable) => {
      const r = walk(format, t.rootPa, 0, { bus: m.bus, counter: m.counter });
      return r.ok ? format.dirtyState(r.lo, r.hi) : -1;
    };
    expect([state(plain), state(tracked)]).toEqual([DIRTY_UNTRACKED, DIRTY_DIRTY]);
  });

  it('gives every table back when freed with mappings still in it', () => {
    const m = machine();
    const t = new IoPageTable(format, m);
    t.map(0n, OUT_BASE, 0x20_0000n, RW);
    t.map(1n << 39n, OUT_BASE, 0x1000n, RW);
    expect(m.memory.allocatedFrameCount).toBeGreaterThan(4);
    t.free();
    expect(m.memory.allocatedFrameCount).toBe(0);
  });

  it('needs none of the flush ops', () => {
    const m = machine();
    const t = new IoPageTable(format, m, { flush: {}, dirtyTracking: true });
    t.map(0n, OUT_BASE, 0x40_0000n, RW);
    t.unmap(0x1000n, 0x1000n);
    t.readAndClearDirty(0n, 0x40_0000n, () => {});
    expect(t.unmap(0n, 0x40_0000n)).toBe(0x3f_f000n);
  });
});

describe('readAndClearDirty', () => {
  for (const stage of [1, 2] as const) {
    it(`stage ${stage}: tracked leaves start dirty; clear; a hardware write dirties one page again`, () => {
      const m = machine();
      const format = vmsaFormat({ stage, granule: 4096, ias: 40, oas: 48 });
      const t = new IoPageTable(format, m, { dirtyTracking: true });
      t.map(0n, OUT_BASE, 4n << 20n, RW); // two 2M blocks
      t.map(0x100_0000n, OUT_BASE, 0x1000n, { read: true, write: false }); // read-only: untracked
      const seen: [bigint, bigint][] = [];
      const collect = (clear?: boolean) => {
        seen.length = 0;
        t.readAndClearDirty(0n, 1n << 40n, (i, s) => seen.push([i, s]), clear === undefined ? {} : { clear });
        return [...seen];
      };
      expect(collect(false)).toEqual([
        [0n, 0x20_0000n],
        [0x20_0000n, 0x20_0000n],
      ]);
      expect(collect()).toHaveLength(2); // no-clear left them dirty; this read clears them
      expect(collect()).toEqual([]);

      const walker = m.bus.counter('hw');
      const write = (iova: number, hardwareDirty: boolean) =>
        walk(format, t.rootPa, iova, { bus: m.bus, counter: walker, access: PERM_WRITE, hardwareDirty });
      // Without HD the writable-clean leaf is not writable and stays clean.
      const denied = write(0x21_0000, false);
      expect(denied.ok && format.permissions(denied.attrs, false, false) & PERM_WRITE).toBe(0);
      expect(collect()).toEqual([]);
      // A read with HD changes nothing either.
      walk(format, t.rootPa, 0x21_0000, {
        bus: m.bus,
        counter: walker,
        access: PERM_READ,
        hardwareDirty: true,
      });
      expect(collect()).toEqual([]);
      const w = walker.writes;
      const r = write(0x21_0000, true);
      expect(r.ok && format.permissions(r.attrs, false, false) & PERM_WRITE).toBe(PERM_WRITE);
      expect(walker.writes).toBe(w + 1);
      // The range is clipped to what was asked.
      seen.length = 0;
      t.readAndClearDirty(0x21_0000n, 0x1000n, (i, s) => seen.push([i, s]));
      expect(seen).toEqual([[0x21_0000n, 0x1000n]]);
      expect(collect()).toEqual([]);
    });
  }
});

describe('addresses above 2^53 (the upper part of a 5-level input space)', () => {
  it('maps, refuses to map twice, reads back and unmaps the last page below 2^56', () => {
    const bus = new MemoryBus();
    bus.addRam('r', 0x1000_0000, 16 * 2 ** 20);
    const memory = new FrameAllocator([{ base: 0x1000_0000, size: 16 * 2 ** 20 }], (a, b) =>
      bus.discardRam(a, b),
    );
    const table = new IoPageTable(x86Format({ levels: 5, oas: 52, gigaPages: true }), {
      bus,
      memory,
      counter: bus.counter('t'),
    });
    const top = 2n ** 56n - 0x1000n;
    table.map(top, 0x4000_6000n, 0x1000n, { read: true, write: true });
    expect(errnoOf(() => table.map(top, 0x4000_7000n, 0x1000n, { read: true, write: true }))).toBe('EEXIST');
    expect(table.iovaToPhys(top + 0x10n)).toBe(0x4000_6010n);
    expect(table.unmap(top, 0x1000n)).toBe(0x1000n);
    expect(table.iovaToPhys(top)).toBeUndefined();
  });
});
