/**
 * The driver's queued invalidation (qi.ts): submissions as the unit performs them (its counters and the
 * descriptors in the ring), the wait and its status write, IQE handling as Linux `qi_check_fault`, the
 * bounded waits, the register interface without ECAP.QI, and the builders' encodings as the hardware
 * decodes them.
 */
import { errnoOf, isIommufdError, NO_PASID, PERM_READ, Tracer } from '@iommukit/core';
import { IoPageTable, vtdSsFormat } from '@iommukit/pagetables';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DriverRig, driverRig } from '../../test/driver-rig.js';
import { decodeInvDescriptor, INV_TYPE, IQEI } from '../hw/inv-descriptors.js';
import { deviceTlbRange } from '../hw/invalidation.js';
import { FSTS_IQE, GCMD_TE, GSTS_QIES, IOTLB_GRANULARITY, IVA_IH, REG } from '../hw/regs.js';
import { enableTranslation, type ProbedUnit, probeUnit } from './probe.js';
import {
  contextDevice,
  contextGlobal,
  DEVTLB_ALL,
  deviceTlb,
  iec,
  iotlbDomain,
  iotlbGlobal,
  iotlbPages,
  iotlbRange,
  pasidCache,
  pasidDeviceTlb,
  pasidIotlb,
  pasidIotlbRange,
  psiAligned,
  QI_LENGTH,
} from './qi.js';

function probed(options: Record<string, unknown> = {}, tracer?: Tracer): { r: DriverRig; unit: ProbedUnit } {
  const r = driverRig({ options, ...(tracer && { tracer }) });
  return { r, unit: probeUnit(r.context, r.lookup) };
}

/** The descriptor the driver wrote in ring slot `slot`. */
function slot(r: DriverRig, unit: ProbedUnit, index: number) {
  const words = unit.qi.wide ? 8 : 4;
  return decodeInvDescriptor(r.words(unit.qi.base! + index * 4 * words, words), 0, unit.qi.wide);
}

type Counts = Readonly<Record<string, number>>;
const performed = (r: DriverRig): Counts => ({ ...r.vtd.invalidationQueue!.performed });
/** Descriptors performed since `before`, by type. */
const since = (r: DriverRig, before: Counts) =>
  Object.fromEntries(Object.entries(performed(r)).map(([k, v]) => [k, v - (before[k] ?? 0)]));

describe('submission', () => {
  it('descriptors then a wait with a status write; returns once the unit completed them', () => {
    const { r, unit } = probed();
    const before = performed(r);
    const head = r.reg(REG.IQH) >>> 5;
    unit.qi.submit([contextDevice(0, 0x108), iotlbDomain(7)]);
    expect(since(r, before)).toMatchObject({ contextCache: 1, iotlb: 1, wait: 1, iec: 0 });
    expect(r.reg(REG.IQH)).toBe(r.reg(REG.IQT));
    expect(r.reg(REG.IQH) >>> 5).toBe(head + 3);
    expect(slot(r, unit, head)).toMatchObject({ type: INV_TYPE.CONTEXT_CACHE, granularity: 3, sid: 0x108 });
    expect(slot(r, unit, head + 1)).toMatchObject({ type: INV_TYPE.IOTLB, did: 7, dw: true, dr: true });
    const wait = slot(r, unit, head + 2);
    expect(wait).toMatchObject({ type: INV_TYPE.WAIT, sw: true, iflag: false, statusData: 2 });
    expect(r.words((wait as { statusAddr: number }).statusAddr, 1)[0]).toBe(2);
  });

  it('IOTLB descriptors carry DW/DR as CAP.DWD/DRD say', () => {
    const { r, unit } = probed({ drainWrites: false, drainReads: false });
    const head = r.reg(REG.IQH) >>> 5;
    unit.qi.submit([iotlbGlobal()]);
    expect(slot(r, unit, head)).toMatchObject({ type: INV_TYPE.IOTLB, dw: false, dr: false });
  });

  it('the ring wraps: many submissions keep working', () => {
    const { r, unit } = probed();
    const before = performed(r);
    for (let i = 0; i < QI_LENGTH + 50; i++) unit.qi.submit([iec()]);
    expect(since(r, before)).toMatchObject({ iec: QI_LENGTH + 50, wait: QI_LENGTH + 50 });
    expect(r.reg(REG.IQH)).toBe(r.reg(REG.IQT));
  });

  it('index-selective IEC invalidation with a mask', () => {
    const { r, unit } = probed();
    const head = r.reg(REG.IQH) >>> 5;
    unit.qi.submit([iec(16, 4)]);
    expect(slot(r, unit, head)).toMatchObject({ type: INV_TYPE.IEC, granularity: 1, iidx: 16, im: 4 });
  });
});

describe('Invalidation Queue Error (Linux qi_check_fault)', () => {
  it('a refused descriptor is replaced, IQE cleared, the rest performed, and the submission fails EINVAL', () => {
    const { r, unit } = probed();
    const before = performed(r);
    const head = r.reg(REG.IQH) >>> 5;
    let error: unknown;
    try {
      unit.qi.submit([contextGlobal(), { type: INV_TYPE.CONTEXT_CACHE, granularity: 0 }, iotlbGlobal()]);
    } catch (e) {
      error = e;
    }
    expect(isIommufdError(error, 'EINVAL')).toBe(true);
    expect((error as Error).message).toContain(
      `descriptor 1 of the submission refused, IQEI ${IQEI.RESERVED_FIELD}`,
    );
    expect(r.vtd.invalidationQueue!.errors[IQEI.RESERVED_FIELD]).toBe(1);
    expect(r.reg(REG.FSTS) & FSTS_IQE).toBe(0);
    // The bad slot now holds a wait without status write; both good descriptors and the wait ran.
    expect(slot(r, unit, head + 1)).toMatchObject({ type: INV_TYPE.WAIT, sw: false, iflag: false });
    expect(since(r, before)).toMatchObject({ contextCache: 1, iotlb: 1, wait: 2 });
    expect(unit.qi.stats.errors).toBe(1);
    const after = performed(r);
    unit.qi.submit([iotlbGlobal()]);
    expect(since(r, after)).toMatchObject({ iotlb: 1, wait: 1 });
  });

  it('two refused descriptors in one submission are both replaced', () => {
    const { r, unit } = probed();
    const bad = { type: INV_TYPE.IOTLB, granularity: 0 } as const;
    expect(errnoOf(() => unit.qi.submit([bad, iotlbGlobal(), bad]))).toBe('EINVAL');
    expect(unit.qi.stats.errors).toBe(2);
    expect(r.reg(REG.IQH)).toBe(r.reg(REG.IQT));
  });

  it('a PASID-based descriptor in a 128-bit (legacy) queue is an invalid type (IQEI 3)', () => {
    const { r, unit } = probed({ scalableMode: false });
    expect(errnoOf(() => unit.qi.submit([pasidCache(2, 'all')]))).toBe('EINVAL');
    expect(r.vtd.invalidationQueue!.errors[IQEI.INVALID_TYPE]).toBe(1);
  });
});

describe('bounded waits (ETIMEDOUT)', () => {
  it('a full ring whose head never moves', () => {
    const { r, unit } = probed();
    const tail = r.reg(REG.IQT) >>> 5;
    // Two free slots: fewer than one descriptor, its wait and the gap need.
    r.vtd.regs.set(REG.IQH, ((tail + 2) % QI_LENGTH) << 5);
    expect(errnoOf(() => unit.qi.submit([iotlbGlobal()]))).toBe('ETIMEDOUT');
    expect(unit.qi.stats.fullWaits).toBe(1);
  });

  it('a wait the unit never performs (queued invalidation switched off behind the driver)', () => {
    const { r, unit } = probed();
    r.vtd.regs.set(REG.GSTS, 0);
    r.vtd.invalidationQueue!.setEnabled(false);
    expect(errnoOf(() => unit.qi.submit([iotlbGlobal()]))).toBe('ETIMEDOUT');
  });
});

describe('register-based invalidation (no ECAP.QI)', () => {
  const legacyNoQi = {
    version: { major: 5, minor: 0 },
    scalableMode: false,
    queuedInvalidation: false,
    deviceTlb: false,
    interruptRemapping: false,
    extendedInterruptMode: false,
    postedInterrupts: false,
  };

  it('context-cache and IOTLB requests go through CCMD and IOTLB_REG; page-selective keeps its AM', () => {
    const { r, unit } = probed(legacyNoQi);
    const ri = r.vtd.registerInvalidation;
    const [cc, tlb] = [ri.contextPerformed, ri.iotlbPerformed];
    unit.qi.submit([contextDevice(3, 0x100), iotlbPages(3, 0x40_0000, 4)]);
    expect([ri.contextPerformed - cc, ri.iotlbPerformed - tlb]).toEqual([1, 1]);
    // IAIG: performed page-selective.
    expect((r.reg(REG.IOTLB + 4) >>> 25) & 3).toBe(IOTLB_GRANULARITY.PAGE);
    // IVA: the block's address with AM 2 (four pages).
    expect(r.reg(REG.IVA)).toBe(0x40_0000 + 2);
  });

  it('descriptors only the queue has are EOPNOTSUPP', () => {
    const { unit } = probed(legacyNoQi);
    expect(errnoOf(() => unit.qi.submit([pasidCache(2, 5)]))).toBe('EOPNOTSUPP');
  });
});

describe('Device-TLB invalidation', () => {
  const target = { sid: 0x210, pfsid: 0x210, qdep: 8 };

  it('whole-space flushes reach the endpoint only with translation on (Linux qi_flush_dev_iotlb)', () => {
    const { r, unit } = probed();
    const port = r.endpoint(0x210);
    unit.qi.flushDeviceTlbAll(target);
    expect(port.invalidations).toEqual([]);
    enableTranslation(unit);
    expect(unit.commands.has(GCMD_TE)).toBe(true);
    unit.qi.flushDeviceTlbAll(target);
    unit.qi.flushDeviceTlbAll(target, 5);
    expect(port.invalidations).toEqual([
      { pasid: undefined, iova: 0n, size: 2n ** 64n },
      { pasid: 5, iova: 0n, size: 2n ** 64n },
    ]);
  });

  it('the ATS range encoding of 2^order pages decodes to that range', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: DEVTLB_ALL }),
        fc.integer({ min: 0, max: 2 ** 20 }),
        (order, block) => {
          const size = 4096 * 2 ** order;
          // Aligned addresses below 2^52.
          const addr = order >= 40 ? 0 : (block % 2 ** (40 - order)) * size;
          const d = deviceTlb(target, addr, order) as { addr: number; size: boolean };
          const p = pasidDeviceTlb(target, 3, addr, order) as { addr: number; size: boolean };
          const expected = { iova: BigInt(addr), size: BigInt(size) };
          expect(deviceTlbRange(d.addr, d.size)).toEqual(expected);
          expect(deviceTlbRange(p.addr, p.size)).toEqual(expected);
        },
      ),
    );
  });

  it('QDEP 32 and above is written 0; an unaligned range is EINVAL', () => {
    expect(deviceTlb({ ...target, qdep: 32 }, 0, 0)).toMatchObject({ qdep: 0 });
    expect(errnoOf(() => deviceTlb(target, 0x1000, 1))).toBe('EINVAL');
  });
});

describe('page-selective address masks (Linux calculate_psi_aligned_address)', () => {
  it('aligned ranges take log2 of the pages rounded up; unaligned ones grow to the shared high bits', () => {
    expect(psiAligned(0x1_0000, 4)).toEqual({ addr: 0x1_0000, am: 2, pages: 4 });
    expect(psiAligned(0x1_0000, 3)).toEqual({ addr: 0x1_0000, am: 2, pages: 4 });
    // Pages 1–2: the first and last page numbers agree from bit 2 up.
    expect(psiAligned(0x1000, 2)).toEqual({ addr: 0, am: 2, pages: 4 });
    // Pages 3–4 cross an 8-page boundary only at bit 3.
    expect(psiAligned(0x3000, 2)).toEqual({ addr: 0, am: 3, pages: 8 });
  });

  it('the block always covers the range and is aligned to its size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 36 }), fc.integer({ min: 1, max: 4096 }), (pfn, pages) => {
        const r = psiAligned(pfn * 4096, pages);
        const bytes = 4096 * r.pages;
        expect(r.pages).toBe(2 ** r.am);
        expect(r.addr % bytes).toBe(0);
        expect(r.addr).toBeLessThanOrEqual(pfn * 4096);
        expect(r.addr + bytes).toBeGreaterThanOrEqual((pfn + pages) * 4096);
      }),
    );
  });

  it('iotlbRange falls back to domain-selective without PSI or beyond MAMV (Linux cache_tag_flush_iotlb)', () => {
    expect(iotlbRange({ psi: true, mamv: 9 }, 4, 0x20_0000, 512)).toMatchObject({ granularity: 3, am: 9 });
    expect(iotlbRange({ psi: true, mamv: 8 }, 4, 0x20_0000, 512)).toEqual(iotlbDomain(4));
    expect(iotlbRange({ psi: false, mamv: 9 }, 4, 0x20_0000, 1)).toEqual(iotlbDomain(4));
  });

  it('pasidIotlbRange is PASID-selective for the whole space or beyond MAMV, else page-selective', () => {
    const range = { addr: 0x20_0000, pages: 512 };
    expect(pasidIotlbRange({ mamv: 9 }, 4, 7, range, true)).toEqual(pasidIotlb(4, 7, range, true));
    expect(pasidIotlbRange({ mamv: 8 }, 4, 7, range)).toEqual(pasidIotlb(4, 7));
    expect(pasidIotlbRange({ mamv: 9 }, 4, 7, undefined)).toEqual(pasidIotlb(4, 7));
  });

  it('PASID-based IOTLB: the whole PASID, or pages rounded up to a power of two, aligned down (qi_flush_piotlb)', () => {
    expect(pasidIotlb(3, 9)).toEqual({ type: INV_TYPE.PASID_IOTLB, granularity: 2, did: 3, pasid: 9 });
    expect(pasidIotlb(3, 9, { addr: 0x5000, pages: 3 }, true)).toMatchObject({
      granularity: 3,
      addr: 0x4000,
      am: 2,
      ih: true,
    });
    const { r, unit } = probed();
    const before = performed(r);
    unit.qi.submit([pasidIotlb(3, 9, { addr: 0x5000, pages: 3 })]);
    expect(since(r, before)).toMatchObject({ pasidIotlb: 1 });
  });

  it('a page-selective IOTLB descriptor removes the stale translations of its block, not others', () => {
    const { r, unit } = probed({ scalableMode: false });
    const sid = 0x208;
    const ss = new IoPageTable(vtdSsFormat({ levels: 4, oas: 48 }), r.tables);
    const data = Number(r.buffers.allocFrames(8));
    ss.map(0x10_0000n, BigInt(data), 0x8000n, { read: true, write: true });
    unit.contextTables.setLegacyContext(sid, { did: 6, tt: 0, aw: 2, slptptr: ss.rootPa });
    enableTranslation(unit);
    const dma = (page: number) =>
      r.vtd.translate({
        streamId: sid,
        pasid: NO_PASID,
        iovaPfn: 0x100 + page,
        offset: 0,
        access: PERM_READ,
      });
    for (let page = 0; page < 8; page++) expect(dma(page).ok).toBe(true);
    ss.unmap(0x10_0000n, 0x8000n);
    // Pages 1–2 of the eight: AM 2 covers pages 0–3, so pages 4–7 stay cached.
    unit.qi.submit([iotlbPages(6, 0x10_1000, 2)]);
    expect([0, 1, 2, 3, 4, 7].map((page) => dma(page).ok)).toEqual([false, false, false, false, true, true]);
  });
});

/** The error `fn` throws. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('nothing thrown');
}

describe('submission limits and bookkeeping', () => {
  it('a submission fits when its descriptors, the wait and the gap fit the ring (254 do, 255 do not)', () => {
    const { r, unit } = probed();
    const before = performed(r);
    unit.qi.submit(Array.from({ length: QI_LENGTH - 2 }, () => iec()));
    expect(since(r, before)).toMatchObject({ iec: QI_LENGTH - 2, wait: 1 });
    const error = thrown(() => unit.qi.submit(Array.from({ length: QI_LENGTH - 1 }, () => iec())));
    expect(isIommufdError(error, 'EINVAL')).toBe(true);
    expect(error.message).toContain(`${QI_LENGTH - 1} descriptors do not fit the queue`);
  });

  it('stats count submissions and their descriptors', () => {
    const { unit } = probed();
    const { submissions, descriptors } = unit.qi.stats;
    unit.qi.submit([iec(), iotlbGlobal()]);
    unit.qi.submit([iec()]);
    expect(unit.qi.stats).toMatchObject({ submissions: submissions + 2, descriptors: descriptors + 3 });
  });

  it('drain sets the wait’s PD; without it PD is clear', () => {
    const { r, unit } = probed();
    const head = r.reg(REG.IQH) >>> 5;
    unit.qi.submit([iotlbGlobal()], { drain: true });
    unit.qi.submit([iotlbGlobal()]);
    expect(slot(r, unit, head + 1)).toMatchObject({ type: INV_TYPE.WAIT, pd: true });
    expect(slot(r, unit, head + 3)).toMatchObject({ type: INV_TYPE.WAIT, pd: false });
  });

  it('a ring with exactly the slots a submission needs takes it without waiting', () => {
    const { r, unit } = probed();
    const tail = r.reg(REG.IQT) >>> 5;
    r.vtd.regs.set(REG.GSTS, 0);
    r.vtd.invalidationQueue!.setEnabled(false);
    // Three free slots: one descriptor, its wait and the gap.
    r.vtd.regs.set(REG.IQH, ((tail + 3) % QI_LENGTH) << 5);
    const error = thrown(() => unit.qi.submit([iotlbGlobal()]));
    expect(error.message).toContain('never completed');
    expect(unit.qi.stats.fullWaits).toBe(0);
  });

  it('a full ring that never drains says so', () => {
    const { r, unit } = probed();
    const tail = r.reg(REG.IQT) >>> 5;
    r.vtd.regs.set(REG.IQH, ((tail + 2) % QI_LENGTH) << 5);
    expect(thrown(() => unit.qi.submit([iotlbGlobal()])).message).toContain(
      'the invalidation queue never drained',
    );
  });

  it('a wait never performed: ETIMEDOUT naming its slot, its status word left QI_IN_USE, no IQE counted', () => {
    const { r, unit } = probed();
    const index = r.reg(REG.IQT) >>> 5;
    r.vtd.regs.set(REG.GSTS, 0);
    r.vtd.invalidationQueue!.setEnabled(false);
    const error = thrown(() => unit.qi.submit([iotlbGlobal(), iec()]));
    expect(isIommufdError(error, 'ETIMEDOUT')).toBe(true);
    expect(error.message).toContain(`invalidation wait at ${index + 2} never completed`);
    const wait = slot(r, unit, index + 2) as { statusAddr: number };
    expect(r.words(wait.statusAddr, 1)[0]).toBe(1);
    expect(unit.qi.stats.errors).toBe(0);
  });

  it('an IQE at a descriptor outside the submission is not this submission’s to handle', () => {
    const { r, unit } = probed();
    const index = r.reg(REG.IQT) >>> 5;
    r.vtd.regs.set(REG.GSTS, 0);
    r.vtd.invalidationQueue!.setEnabled(false);
    r.vtd.regs.set(REG.IQH, ((index + 6) % QI_LENGTH) << 5);
    r.vtd.regs.set(REG.FSTS, FSTS_IQE);
    expect(errnoOf(() => unit.qi.submit([iotlbGlobal()]))).toBe('ETIMEDOUT');
    expect(unit.qi.stats.errors).toBe(0);
    expect(slot(r, unit, index)).toMatchObject({ type: INV_TYPE.IOTLB });
  });

  it('several refusals are listed in one message, with the unit named in the error', () => {
    const { unit } = probed();
    const bad = { type: INV_TYPE.IOTLB, granularity: 0 } as const;
    const error = thrown(() => unit.qi.submit([bad, iotlbGlobal(), bad]));
    expect(error.message).toContain(
      `descriptor 0 of the submission refused, IQEI ${IQEI.RESERVED_FIELD}; descriptor 2 of the submission refused`,
    );
    expect(error).toMatchObject({ context: { instance: unit.instance } });
  });

  it('with tracing on, submissions and IQE handling are logged', () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const { unit } = probed({}, tracer);
    unit.qi.submit([iotlbGlobal()]);
    expect(errnoOf(() => unit.qi.submit([{ type: INV_TYPE.IOTLB, granularity: 0 }]))).toBe('EINVAL');
    const messages = tracer.records.filter((t) => t.name.startsWith('qi.')).map((t) => t.message);
    expect(messages.some((m) => /^1 descriptor\(s\) \+ wait at \d+, IQT \d+$/.test(m))).toBe(true);
    expect(messages.some((m) => m.startsWith('VT-d detected Invalidation Queue Error: Reason'))).toBe(true);
    expect(messages).toContain('Invalidation Queue Error (IQE) cleared');
  });
});

describe('enable, disable and free', () => {
  it('disable turns QIE off once; a second disable issues no command', () => {
    const { r, unit } = probed();
    unit.qi.disable();
    expect(r.reg(REG.GSTS) & GSTS_QIES).toBe(0);
    const commands = r.vtd.global.commands;
    unit.qi.disable();
    expect(r.vtd.global.commands).toBe(commands);
  });

  it('disable gives up waiting for IQH after a bounded poll and turns QIE off anyway', () => {
    const { r, unit } = probed();
    const tail = r.reg(REG.IQT) >>> 5;
    r.vtd.regs.set(REG.IQH, ((tail + 9) % QI_LENGTH) << 5);
    unit.qi.disable();
    expect(r.reg(REG.GSTS) & GSTS_QIES).toBe(0);
  });

  it('free returns the ring and status pages once; submitting after it is EINVAL; a unit without QI has none', () => {
    const { r, unit } = probed();
    unit.qi.disable();
    const frames = r.memory.allocatedFrameCount;
    unit.qi.free();
    expect(r.memory.allocatedFrameCount).toBe(frames - 3);
    unit.qi.free();
    expect(r.memory.allocatedFrameCount).toBe(frames - 3);
    expect(unit.qi.base).toBeUndefined();
    const error = thrown(() => unit.qi.submit([iotlbGlobal()]));
    expect(isIommufdError(error, 'EINVAL')).toBe(true);
    expect(error.message).toContain('queued invalidation is not enabled');
    const noQi = probed({ ...legacyNoQiOptions });
    const before = noQi.r.memory.allocatedFrameCount;
    noQi.unit.qi.free();
    expect(noQi.r.memory.allocatedFrameCount).toBe(before);
  });
});

const legacyNoQiOptions = {
  version: { major: 5, minor: 0 },
  scalableMode: false,
  queuedInvalidation: false,
  deviceTlb: false,
  interruptRemapping: false,
  extendedInterruptMode: false,
  postedInterrupts: false,
};

describe('register interface fields', () => {
  it('CCMD carries the DID, the SID and the function mask', () => {
    const { r, unit } = probed(legacyNoQiOptions);
    const ss = new IoPageTable(vtdSsFormat({ levels: 4, oas: 48 }), r.tables);
    const data = Number(r.buffers.allocFrames(1));
    ss.map(0x10_0000n, BigInt(data), 0x1000n, { read: true, write: true });
    const sids = [0x100, 0x101, 0x108];
    for (const sid of sids)
      unit.contextTables.setLegacyContext(sid, { did: 3, tt: 0, aw: 2, slptptr: ss.rootPa });
    enableTranslation(unit);
    const dma = (sid: number) =>
      r.vtd.translate({ streamId: sid, pasid: NO_PASID, iovaPfn: 0x100, offset: 0, access: PERM_READ }).ok;
    const misses = (fn: () => void) => {
      for (const sid of sids) expect(dma(sid)).toBe(true);
      fn();
      return sids.map((sid) => {
        const before = r.vtd.caches.stats().contextCacheMisses!;
        dma(sid);
        return r.vtd.caches.stats().contextCacheMisses! - before;
      });
    };
    expect(misses(() => unit.qi.submit([contextDevice(3, 0x101)]))).toEqual([0, 1, 0]);
    expect(r.reg(REG.CCMD) & 0xffff).toBe(3);
    // FM 3 ignores function bits 2:0: every function of device 0x100's slot, not 0x108.
    expect(misses(() => unit.qi.submit([contextDevice(3, 0x100, 3)]))).toEqual([1, 1, 0]);
    expect(misses(() => unit.qi.submit([contextDevice(4, 0x108)]))).toEqual([0, 0, 0]);
  });

  it('IOTLB: IVA only for page-selective requests, with IH; the DID in IOTLB_REG', () => {
    const { r, unit } = probed(legacyNoQiOptions);
    unit.qi.submit([iotlbPages(3, 0x40_0000, 4, true)]);
    expect(r.reg(REG.IVA)).toBe(0x40_0000 + IVA_IH + 2);
    unit.qi.submit([iotlbDomain(5)]);
    expect(r.reg(REG.IVA)).toBe(0x40_0000 + IVA_IH + 2);
    expect(r.reg(REG.IOTLB + 4) & 0xffff).toBe(5);
  });

  it('a wait needs nothing from the register interface', () => {
    const { r, unit } = probed(legacyNoQiOptions);
    const ri = r.vtd.registerInvalidation;
    const [cc, tlb] = [ri.contextPerformed, ri.iotlbPerformed];
    expect(errnoOf(() => unit.qi.submit([{ type: INV_TYPE.WAIT }]))).toBeUndefined();
    expect([ri.contextPerformed - cc, ri.iotlbPerformed - tlb]).toEqual([0, 0]);
  });
});

describe('builder edge cases', () => {
  it('psiAligned refuses an empty, fractional or unaligned range', () => {
    for (const [start, pages] of [
      [0, 0],
      [0, -1],
      [0, 1.5],
      [0x800, 1],
    ] as const) {
      const error = thrown(() => psiAligned(start, pages));
      expect(isIommufdError(error, 'EINVAL')).toBe(true);
      expect(error.message).toContain(`no page range of ${pages} pages`);
    }
  });

  it('the ATS range refuses a negative, fractional, too-large or misaligned order', () => {
    const target = { sid: 0x210, pfsid: 0x210, qdep: 8 };
    for (const [addr, order] of [
      [0, -1],
      [0, 1.5],
      [0, DEVTLB_ALL + 1],
      [0x1000, 1],
    ] as const)
      expect(errnoOf(() => deviceTlb(target, addr, order))).toBe('EINVAL');
    expect(deviceTlb(target, 0, 0)).toMatchObject({ qdep: 8, size: false });
    expect(pasidDeviceTlb({ ...target, qdep: 31 }, 2, 0, 0)).toMatchObject({ qdep: 31 });
    expect(pasidDeviceTlb({ ...target, qdep: 40 }, 2, 0, 0)).toMatchObject({ qdep: 0 });
  });

  it('IH is clear unless asked for; PASID-cache and IEC granularities', () => {
    expect(iotlbRange({ psi: true, mamv: 9 }, 4, 0x20_0000, 2)).toMatchObject({ granularity: 3, ih: false });
    expect(iotlbRange({ psi: true, mamv: 9 }, 4, 0x20_0000, 2, true)).toMatchObject({ ih: true });
    expect(pasidIotlb(3, 9, { addr: 0x5000, pages: 1 })).toMatchObject({ granularity: 3, ih: false });
    expect(pasidCache(2, 5)).toEqual({ type: INV_TYPE.PASID_CACHE, granularity: 1, did: 2, pasid: 5 });
    expect(pasidCache(2, 'all')).toEqual({ type: INV_TYPE.PASID_CACHE, granularity: 0, did: 2 });
    expect(iec()).toEqual({ type: INV_TYPE.IEC, granularity: 0 });
  });
});
