/**
 * VtdPagingDomain against a real VtdHardware: the domain's table installed by hand-written context / PASID
 * entries, a recording DomainFlush that also performs the invalidations through the invalidation queue,
 * and the unit's translations showing what the domain's flushes did.
 */
import {
  errnoOf,
  FrameAllocator,
  hpa,
  iova,
  NO_PASID,
  PERM_READ,
  PERM_WRITE,
  type TranslationResult,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { FEATURES } from '../../test/features.js';
import { type MmioRig, mmioRig } from '../../test/mmio-rig.js';
import { encodeInvDescriptor, INV_TYPE, type InvDescriptorInit } from '../hw/inv-descriptors.js';
import {
  decodePasidEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  PASID_ENTRY_WORDS,
  PGTT,
  pasidDirEntryAddress,
  pasidEntryAddress,
} from '../hw/pasid-entry.js';
import { GCMD_QIE, GCMD_SRTP, GCMD_TE, IQA_DW, REG, TTM } from '../hw/regs.js';
import {
  contextEntryAddress,
  encodeLegacyContext,
  encodeLegacyRootEntry,
  encodeScalableContext,
  encodeScalableRootEntry,
  rootEntryAddress,
} from '../hw/root-context.js';
import {
  type DomainFlush,
  VtdPagingDomain,
  type VtdPagingDomainConfig,
  type VtdStage,
  vtdDomainLevels,
} from './paging-domain.js';

const DEV = (2 << 8) | 0x08;
const DID = 7;
const RW = { read: true, write: true };
const KiB = 1024;
const MiB = 1024 * KiB;

type FlushCall =
  | { op: 'range'; iova: number; size: number; leafOnly: boolean }
  | { op: 'all' }
  | { op: 'mapped'; iova: number; size: number };

/** The invalidation queue as the driver runs it: descriptors, then a wait whose status write says they ran. */
function invalidationQueue(rig: MmioRig, wide: boolean) {
  const base = rig.pages();
  const status = rig.pages();
  const bytes = wide ? 32 : 16;
  rig.mmio64(REG.IQA, base + (wide ? IQA_DW : 0));
  rig.command(GCMD_QIE);
  let tail = 0;
  return (...descriptors: InvDescriptorInit[]) => {
    const wait: InvDescriptorInit = { type: INV_TYPE.WAIT, sw: true, statusData: 1, statusAddr: status };
    for (const d of [...descriptors, wait]) {
      const words = new Uint32Array(bytes / 4);
      encodeInvDescriptor(d, words, 0, wide);
      rig.put(base + tail, words);
      tail = (tail + bytes) % 4096;
    }
    rig.put(status, Uint32Array.of(0));
    rig.mmio(REG.IQT, tail);
    if (rig.word(status) !== 1) throw new Error('the invalidation queue did not complete');
  };
}

/** PSI address and mask covering `[iova, iova + size)` (Linux `calculate_psi_aligned_address`). */
function psi(start: number, size: number): { addr: number; am: number } {
  let am = 0;
  while (Math.floor(start / 2 ** (12 + am)) !== Math.floor((start + size - 1) / 2 ** (12 + am))) am++;
  return { addr: Math.floor(start / 2 ** (12 + am)) * 2 ** (12 + am), am };
}

/**
 * A unit with one device, DEV: scalable mode (its RID_PASID entry installs the domain) or legacy mode
 * (its context entry does). `perform: false` records flushes without invalidating anything.
 */
function unit(options: Record<string, unknown> = {}, perform = true) {
  const rig = mmioRig(options);
  const scalable = rig.vtd.features.scalableMode;
  const arena = rig.pages(2048);
  const memory = new FrameAllocator([{ base: arena, size: 2048 * 4096 }], (base, bytes) =>
    rig.put(Number(base), new Uint32Array(bytes / 4)),
  );
  const sync = invalidationQueue(rig, scalable);
  const calls: FlushCall[] = [];
  const iotlb = (d: VtdPagingDomain, granularity: number, addr = 0, am = 0, ih = false) =>
    sync(
      d.stage === 'second'
        ? { type: INV_TYPE.IOTLB, granularity, did: DID, addr, am, ih }
        : { type: INV_TYPE.PASID_IOTLB, granularity, did: DID, pasid: 0, addr, am, ih },
    );
  // Stage 2: IOTLB PSI 3 / DSI 2; stage 1: PASID-based IOTLB page-selective 3 / PASID 2.
  const flush: DomainFlush = {
    range: (d, at, size, leafOnly) => {
      calls.push({ op: 'range', iova: at, size, leafOnly });
      if (perform) iotlb(d, 3, psi(at, size).addr, psi(at, size).am, leafOnly);
    },
    all: (d) => {
      calls.push({ op: 'all' });
      if (perform) iotlb(d, 2);
    },
    mapped: (d, at, size) => {
      calls.push({ op: 'mapped', iova: at, size });
      if (perform) iotlb(d, 3, psi(at, size).addr, psi(at, size).am);
    },
  };
  const root = rig.pages();
  const contexts = rig.pages();
  const pasidDir = rig.pages();
  const pasidTable = rig.pages();
  const pasidEntryAt = pasidEntryAddress(pasidTable, 0);
  const domain = (config: Partial<VtdPagingDomainConfig> & { stage?: VtdStage } = {}) => {
    const stage = config.stage ?? 'second';
    return new VtdPagingDomain({
      id: 1,
      stage,
      levels: vtdDomainLevels(stage, rig.vtd.features, 48),
      features: rig.vtd.features,
      context: { bus: rig.bus, memory, counter: rig.driver },
      cachingMode: rig.vtd.features.cachingMode,
      flush,
      ...config,
    });
  };
  /** Installs `d` for DEV's requests without PASID, then SRTP and TE. */
  const attach = (d: VtdPagingDomain) => {
    if (scalable) {
      rig.put(rootEntryAddress(root, DEV >>> 8), encodeScalableRootEntry({ lp: true, lctp: contexts }));
      rig.put(
        contextEntryAddress(contexts, DEV & 0xff, true),
        encodeScalableContext({ p: true, pasidDirPtr: pasidDir, ridPasid: 0 }),
      );
      rig.put(pasidDirEntryAddress(pasidDir, 0), encodePasidDirEntry({ p: true, pasidTablePtr: pasidTable }));
      rig.put(
        pasidEntryAt,
        encodePasidEntry(
          d.stage === 'second'
            ? { p: true, pgtt: PGTT.SECOND_STAGE, aw: d.levels - 2, ssptptr: d.rootPa, did: DID }
            : { p: true, pgtt: PGTT.FIRST_STAGE, flpm: d.levels - 4, fsptptr: d.rootPa, did: DID },
        ),
      );
    } else {
      rig.put(rootEntryAddress(root, DEV >>> 8), encodeLegacyRootEntry({ p: true, ctp: contexts }));
      rig.put(
        contextEntryAddress(contexts, DEV & 0xff, false),
        encodeLegacyContext({ p: true, did: DID, aw: d.levels - 2, slptptr: d.rootPa }),
      );
    }
    d.attachments++;
    rig.mmio64(REG.RTADDR, root + (scalable ? TTM.SCALABLE << 10 : 0));
    rig.command(GCMD_SRTP);
    rig.command(GCMD_TE);
  };
  /** The driver's SSADE rewrite (Linux `intel_pasid_setup_dirty_tracking`): entry, PASID cache, DSI. */
  const setSsade = (enabled: boolean) => {
    const words = new Uint32Array(PASID_ENTRY_WORDS);
    rig.bus.readWords(pasidEntryAt, words, PASID_ENTRY_WORDS, rig.driver);
    rig.put(pasidEntryAt, encodePasidEntry({ ...decodePasidEntry(words), ssade: enabled }));
    sync(
      { type: INV_TYPE.PASID_CACHE, granularity: 1, did: DID, pasid: 0 },
      { type: INV_TYPE.IOTLB, granularity: 2, did: DID },
    );
  };
  const dma = (at: number, access = PERM_READ): TranslationResult =>
    rig.vtd.translate({ streamId: DEV, pasid: NO_PASID, iovaPfn: Math.floor(at / 4096), offset: 0, access });
  const buffer = (bytes: number, align = 4096) => memory.allocBytes(bytes, align);
  return { rig, memory, calls, domain, attach, setSsade, dma, buffer, pasidEntryAt };
}

const pfnOf = (pa: bigint) => Number(pa) / 4096;

describe('vtdDomainLevels', () => {
  it('second stage: the deepest SAGAW depth the width needs at most (Linux __iommu_calculate_agaw)', () => {
    expect(vtdDomainLevels('second', { ...FEATURES, sagaw: [4, 5] })).toBe(5);
    expect(vtdDomainLevels('second', { ...FEATURES, sagaw: [4, 5] }, 48)).toBe(4);
    expect(vtdDomainLevels('second', { ...FEATURES, sagaw: [3, 4] })).toBe(4);
    expect(vtdDomainLevels('second', { ...FEATURES, sagaw: [3, 4, 5] }, 40)).toBe(4);
    expect(vtdDomainLevels('second', { ...FEATURES, sagaw: [3, 4, 5] }, 39)).toBe(3);
    expect(errnoOf(() => vtdDomainLevels('second', { ...FEATURES, sagaw: [4, 5] }, 39))).toBe('EINVAL');
    try {
      vtdDomainLevels('second', { ...FEATURES, sagaw: [4, 5] }, 39);
    } catch (error) {
      expect((error as { context: unknown }).context).toEqual({ addressWidth: 39 });
    }
  });

  it('first stage: 5 levels only with FL5LP and a width above 48 bits', () => {
    expect(vtdDomainLevels('first', { ...FEATURES, firstStage5Level: true })).toBe(5);
    expect(vtdDomainLevels('first', { ...FEATURES, firstStage5Level: true }, 48)).toBe(4);
    expect(vtdDomainLevels('first', { ...FEATURES, firstStage5Level: false })).toBe(4);
  });
});

describe('geometry and allocation checks', () => {
  it('second stage: aperture to the table width capped by MGAW, page sizes from SLLPS', () => {
    const u = unit({ sagaw: [4], mgawBits: 46, secondStage1GiB: false });
    const d = u.domain();
    expect(d.levels).toBe(4);
    expect(d.aperture.end).toBe(2n ** 46n - 1n);
    expect(d.pgsizeBitmap).toBe((1n << 12n) | (1n << 21n));
    expect(errnoOf(() => d.map(iova(2n ** 46n - 4096n), hpa(0x1_0000_0000n), 8192n, RW))).toBe('EINVAL');
  });

  it('first stage: the lower canonical half, 2 MiB always and 1 GiB with FL1GP', () => {
    const u = unit({ firstStage1GiB: false });
    const four = u.domain({ stage: 'first' });
    expect(four.aperture.end).toBe(2n ** 47n - 1n);
    expect(four.pgsizeBitmap).toBe((1n << 12n) | (1n << 21n));
    const five = u.domain({ stage: 'first', levels: 5 });
    expect(five.aperture.end).toBe(2n ** 56n - 1n);
  });

  it('refuses what the unit cannot walk: EINVAL for a depth, EOPNOTSUPP for a missing feature', () => {
    const u = unit({ sagaw: [4], mgawBits: 48, firstStage5Level: false, secondStageAccessDirty: false });
    expect(errnoOf(() => u.domain({ levels: 5 }))).toBe('EINVAL');
    expect(errnoOf(() => u.domain({ stage: 'first', levels: 5 }))).toBe('EINVAL');
    expect(errnoOf(() => u.domain({ stage: 'first', levels: 3 }))).toBe('EINVAL');
    expect(errnoOf(() => u.domain({ dirtyTracking: true }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => unit().domain({ stage: 'first', dirtyTracking: true }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => unit({ scalableMode: false }).domain({ stage: 'first' }))).toBe('EOPNOTSUPP');
    // Nothing was allocated by the refusals.
    expect(u.memory.allocatedFrameCount).toBe(0);
  });
});

describe('map, unmap and iotlbSync on the unit', () => {
  for (const [mode, options] of [
    ['scalable mode, second stage', {}],
    ['legacy mode, second stage', { scalableMode: false }],
    ['scalable mode, first stage', { stage: 'first' }],
  ] as const) {
    it(`${mode}: DMA translates; an unmapped page stays cached until iotlbSync's flush`, () => {
      const stage: VtdStage = 'stage' in options ? options.stage : 'second';
      const u = unit('stage' in options ? {} : options);
      const d = u.domain({ stage });
      const data = u.buffer(0x2000);
      d.map(iova(0x10_0000n), data, 0x2000n, RW);
      u.attach(d);
      expect(u.dma(0x10_1000, PERM_WRITE)).toMatchObject({ ok: true, pfn: pfnOf(data) + 1 });
      expect(d.iovaToPhys(iova(0x10_1234n))).toBe(data + 0x1234n);
      expect(d.unmap(iova(0x10_1000n), 0x1000n)).toBe(0x1000n);
      // Unmapped, not yet invalidated: the IOTLB still has it.
      expect(u.dma(0x10_1000).ok).toBe(true);
      expect(u.calls).toEqual([]);
      d.iotlbSync();
      expect(u.calls).toEqual([{ op: 'range', iova: 0x10_1000, size: 0x1000, leafOnly: true }]);
      expect(u.dma(0x10_1000).ok).toBe(false);
      expect(u.dma(0x10_0000)).toMatchObject({ ok: true, pfn: pfnOf(data) });
      // Nothing gathered: nothing sent.
      d.iotlbSync();
      expect(u.calls).toHaveLength(1);
    });
  }

  it('merges adjacent unmaps into one range and keeps disjoint ones apart', () => {
    const u = unit();
    const d = u.domain();
    d.map(iova(0x10_0000n), u.buffer(64 * KiB), BigInt(64 * KiB), RW);
    u.attach(d);
    d.unmap(iova(0x10_2000n), 0x1000n);
    d.unmap(iova(0x10_1000n), 0x1000n);
    d.unmap(iova(0x10_8000n), 0x2000n);
    d.iotlbSync();
    expect(u.calls).toEqual([
      { op: 'range', iova: 0x10_1000, size: 0x2000, leafOnly: true },
      { op: 'range', iova: 0x10_8000, size: 0x2000, leafOnly: true },
    ]);
  });

  it('a freed table makes its range a full (non-leaf) flush; the paging-structure caches forget it', () => {
    const u = unit();
    const d = u.domain();
    const keep = u.buffer(4096);
    const gone = u.buffer(4096);
    d.map(iova(0n), keep, 4096n, RW);
    d.map(iova(BigInt(2 * MiB)), gone, 4096n, RW);
    u.attach(d);
    expect(u.dma(2 * MiB).ok).toBe(true);
    const pages = d.table.tablePages;
    d.unmap(iova(BigInt(2 * MiB)), 4096n);
    // The leaf table of [2 MiB, 4 MiB) went with its only page.
    expect(d.table.tablePages).toBe(pages - 1);
    d.iotlbSync();
    expect(u.calls).toEqual([{ op: 'range', iova: 2 * MiB, size: 2 * MiB, leafOnly: false }]);
    expect(u.dma(2 * MiB).ok).toBe(false);
    expect(u.dma(0).ok).toBe(true);
  });

  it('a split block is a walk range too: unmapping 4 KiB of a 2 MiB page', () => {
    const u = unit();
    const d = u.domain();
    const big = u.buffer(2 * MiB, 2 * MiB);
    d.map(iova(BigInt(2 * MiB)), big, BigInt(2 * MiB), RW);
    u.attach(d);
    expect(u.dma(2 * MiB + 0x5000)).toMatchObject({ ok: true, pfn: pfnOf(big) + 5 });
    d.unmap(iova(BigInt(2 * MiB + 0x5000)), 4096n);
    d.iotlbSync();
    expect(u.calls).toEqual([{ op: 'range', iova: 2 * MiB, size: 2 * MiB, leafOnly: false }]);
    expect(u.dma(2 * MiB + 0x5000).ok).toBe(false);
    expect(u.dma(2 * MiB + 0x6000)).toMatchObject({ ok: true, pfn: pfnOf(big) + 6 });
  });

  it('flushIotlbAll sends flush.all and drops what was gathered', () => {
    const u = unit();
    const d = u.domain();
    d.map(iova(0n), u.buffer(8192), 8192n, RW);
    u.attach(d);
    expect(u.dma(0x1000).ok).toBe(true);
    d.unmap(iova(0x1000n), 4096n);
    d.flushIotlbAll();
    d.iotlbSync();
    expect(u.calls).toEqual([{ op: 'all' }]);
    expect(u.dma(0x1000).ok).toBe(false);
  });
});

describe('not-present → present (caching mode, write-buffer flushing)', () => {
  it('caching mode: a second-stage map calls flush.mapped with its range; a first-stage map does not', () => {
    const u = unit({ cachingMode: true });
    const second = u.domain();
    second.map(iova(0x40_0000n), u.buffer(0x3000), 0x3000n, RW);
    expect(second.syncMap).toBe(true);
    expect(u.calls).toEqual([{ op: 'mapped', iova: 0x40_0000, size: 0x3000 }]);
    const first = u.domain({ stage: 'first' });
    first.map(iova(0x40_0000n), u.buffer(0x1000), 0x1000n, RW);
    expect(first.syncMap).toBe(false);
    expect(u.calls).toHaveLength(1);
  });

  it('without caching mode nothing is flushed on map, unless CAP.RWBF asks for the write buffer', () => {
    const plain = unit();
    plain.domain().map(iova(0n), plain.buffer(4096), 4096n, RW);
    expect(plain.calls).toEqual([]);
    const rwbf = unit({ writeBufferFlush: true });
    const first = rwbf.domain({ stage: 'first' });
    first.map(iova(0n), rwbf.buffer(4096), 4096n, { read: true, write: false });
    expect(rwbf.calls).toEqual([{ op: 'mapped', iova: 0, size: 4096 }]);
  });
});

describe('dirty tracking (second stage, SSADE)', () => {
  function tracked(perform = true) {
    const u = unit({}, perform);
    const d = u.domain({ dirtyTracking: true, onDirtyTracking: u.setSsade });
    const data = u.buffer(0x4000);
    d.map(iova(0x10_0000n), data, 0x4000n, RW);
    u.attach(d);
    const dirty = (clear = true) => {
      const pages: [bigint, bigint][] = [];
      d.readAndClearDirty(iova(0x10_0000n), 0x4000n, (at, size) => pages.push([at, size]), clear);
      return pages;
    };
    return { ...u, d, dirty };
  }

  it('enabling sets SSADE through the hook; a write marks its page; reading clears it and flushes', () => {
    const { d, dirty, dma, calls, rig, pasidEntryAt } = tracked();
    const ssade = () => {
      const words = new Uint32Array(PASID_ENTRY_WORDS);
      rig.bus.readWords(pasidEntryAt, words, PASID_ENTRY_WORDS, rig.driver);
      return decodePasidEntry(words).ssade;
    };
    // Off: the unit sets no D bit.
    expect(dma(0x10_1000, PERM_WRITE).ok).toBe(true);
    expect(dirty()).toEqual([]);
    d.setDirtyTracking(true);
    expect(d.dirtyTrackingEnabled).toBe(true);
    expect(ssade()).toBe(true);
    expect(dma(0x10_2000, PERM_WRITE).ok).toBe(true);
    expect(dma(0x10_3000, PERM_READ).ok).toBe(true);
    // Without clearing: reported, left dirty, nothing flushed.
    expect(dirty(false)).toEqual([[0x10_2000n, 0x1000n]]);
    expect(calls).toEqual([]);
    expect(dirty()).toEqual([[0x10_2000n, 0x1000n]]);
    expect(calls).toEqual([{ op: 'range', iova: 0x10_2000, size: 0x1000, leafOnly: true }]);
    expect(dirty()).toEqual([]);
    // Flushed, so the next write walks again and marks the page.
    expect(dma(0x10_2000, PERM_WRITE).ok).toBe(true);
    expect(dirty()).toEqual([[0x10_2000n, 0x1000n]]);
    d.setDirtyTracking(false);
    expect(ssade()).toBe(false);
    expect(d.dirtyTrackingEnabled).toBe(false);
  });

  it('without the flush a cached dirty entry lets the next write through unmarked', () => {
    const { d, dirty, dma } = tracked(false);
    d.setDirtyTracking(true);
    expect(dma(0x10_2000, PERM_WRITE).ok).toBe(true);
    expect(dirty()).toHaveLength(1);
    expect(dma(0x10_2000, PERM_WRITE).ok).toBe(true);
    expect(dirty()).toEqual([]);
  });

  it('the hook runs only on a change; its failure leaves the state; untracked domains refuse', () => {
    const u = unit();
    const seen: boolean[] = [];
    const d = u.domain({ dirtyTracking: true, onDirtyTracking: (on) => seen.push(on) });
    d.setDirtyTracking(false);
    d.setDirtyTracking(true);
    d.setDirtyTracking(true);
    expect(seen).toEqual([true]);
    d.onDirtyTracking = () => {
      throw new Error('PASID entry gone');
    };
    expect(() => d.setDirtyTracking(false)).toThrow('PASID entry gone');
    expect(d.dirtyTrackingEnabled).toBe(true);
    const plain = u.domain();
    expect(errnoOf(() => plain.setDirtyTracking(true))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => plain.readAndClearDirty(iova(0n), 4096n, () => {}, true))).toBe('EOPNOTSUPP');
  });
});

describe('free', () => {
  it('refuses while attached (EBUSY), then releases every table frame; a freed domain refuses use', () => {
    const u = unit();
    const d = u.domain();
    d.map(iova(0x10_0000n), u.buffer(4096), 4096n, RW);
    u.attach(d);
    const before = u.memory.allocatedFrameCount;
    expect(errnoOf(() => d.free())).toBe('EBUSY');
    d.attachments--;
    d.free();
    expect(d.isFreed).toBe(true);
    expect(u.memory.allocatedFrameCount).toBe(before - d.levels);
    expect(errnoOf(() => d.map(iova(0n), hpa(0x1_0000_0000n), 4096n, RW))).toBe('ENOENT');
    expect(errnoOf(() => d.unmap(iova(0n), 4096n))).toBe('ENOENT');
    expect(errnoOf(() => d.iovaToPhys(iova(0n)))).toBe('ENOENT');
    expect(errnoOf(() => d.flushIotlbAll())).toBe('ENOENT');
    d.free();
    expect(u.calls).toEqual([]);
  });
});
