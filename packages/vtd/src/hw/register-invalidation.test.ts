import { MemoryBus, RegisterFile } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { IOTLB_SECOND, NO_PASID_TAG, VtdCaches } from './caches.js';
import type { InvalidationTargets } from './invalidation.js';
import { featuresFromOptions, VtdOptionsSchema } from './options.js';
import { RegisterInvalidation } from './register-invalidation.js';
import { GSTS_QIES, REG, VTD_MMIO_SIZE, vtdRegisterTable } from './regs.js';

const GIB4 = 2 ** 32;

const MMIO = 0xfed9_0000;

// CCMD_REG high half (§11.4.7): ICC bit 31, CIRG 30:29, CAIG 28:27, FM 1:0; low half: SID 31:16, DID 15:0.
const ICC = 0x8000_0000;
const cirg = (g: number) => g << 29;
const caigOf = (hi: number) => (hi >>> 27) & 3;
// IOTLB_REG high half (§11.4.8.1): IVT bit 31, IIRG 29:28, IAIG 26:25, DID 15:0.
// IVA_REG: AM 5:0, IH 6, ADDR 63:12.
const IVT = 0x8000_0000;
const iirg = (g: number) => g << 28;
const iaigOf = (hi: number) => (hi >>> 25) & 3;

function rig(
  options: Record<string, unknown> = { version: { major: 5, minor: 0 } },
  scalable = false,
  traced = true,
) {
  const features = featuresFromOptions(VtdOptionsSchema.parse(options));
  const regs = new RegisterFile(VTD_MMIO_SIZE, vtdRegisterTable(features));
  const bus = new MemoryBus();
  bus.addMmio('vtd', MMIO, VTD_MMIO_SIZE, regs);
  const caches = new VtdCaches<{ did: number }, { did: number }>(
    {
      iotlb: { sets: 4, ways: 8, policy: 'lru' },
      context: { sets: 4, ways: 4, policy: 'lru' },
      pasid: { sets: 4, ways: 4, policy: 'lru' },
      pagingStructure: { sets: 4, ways: 4, policy: 'lru' },
    },
    { context: (e) => e.did, pasid: (e) => e.did },
  );
  for (const [sid, did] of [
    [0x0100, 1],
    [0x0101, 1],
    [0x0200, 2],
  ] as const)
    caches.context.set(sid, 0, { did });
  // Second-stage leaves of DID 1 at pages 0x10–0x13, one of DID 2 at page 0x10.
  for (const page of [0x10, 0x11, 0x12, 0x13])
    caches.cacheLeaf(IOTLB_SECOND, 1, NO_PASID_TAG, page * 4096, 12);
  caches.cacheLeaf(IOTLB_SECOND, 2, NO_PASID_TAG, 0x10 * 4096, 12);
  const traces: string[] = [];
  const targets: InvalidationTargets = {
    caches,
    endpoint: () => undefined,
    iec: { invalidateAll: () => {}, invalidateIndex: () => {} },
    scalable: () => scalable,
    ...(traced
      ? {
          tracer: {
            enabled: true,
            trace: (name: string, message: string) => traces.push(`${name}: ${message}`),
          },
        }
      : {}),
  };
  const commands = new RegisterInvalidation({ regs, features, targets });
  const sids = () =>
    caches.context
      .entries()
      .map(([sid]) => sid)
      .sort((a, b) => a - b);
  const leafCount = () => caches.iotlb.entries().length;
  const ccmd = (lo: number, hi: number) => {
    regs.write(REG.CCMD, 4, lo);
    regs.write(REG.CCMD + 4, 4, hi);
    return regs.read(REG.CCMD + 4, 4);
  };
  const iotlb = (hi: number, iva = 0, ivaHi = 0) => {
    regs.write(REG.IVA, 4, iva);
    regs.write(REG.IVA + 4, 4, ivaHi);
    regs.write(REG.IOTLB + 4, 4, hi);
    return regs.read(REG.IOTLB + 4, 4);
  };
  return { regs, bus, caches, commands, sids, leafCount, ccmd, iotlb, traces };
}

describe('CCMD_REG: context-cache invalidation (§6.5.1.1, §11.4.7)', () => {
  it('global: every entry; ICC reads clear and CAIG = 1', () => {
    const r = rig();
    const hi = r.ccmd(0, ICC | cirg(1));
    expect([hi & ICC, caigOf(hi), r.sids()]).toEqual([0, 1, []]);
  });

  it('domain-selective: the DID of the low half; CAIG = 2', () => {
    const r = rig();
    const hi = r.ccmd(1, ICC | cirg(2));
    expect([hi & ICC, caigOf(hi), r.sids()]).toEqual([0, 2, [0x0200]]);
  });

  it('device-selective: SID and DID of the low half, FM of the high half; CAIG = 3', () => {
    const r = rig();
    let hi = r.ccmd((0x0101 << 16) | 1, ICC | cirg(3));
    expect([caigOf(hi), r.sids()]).toEqual([3, [0x0100, 0x0200]]);
    // FM = 3 ignores function bits 2:0: SID 0x0106 names 0x0100 too.
    hi = r.ccmd((0x0106 << 16) | 1, ICC | cirg(3) | 3);
    expect([caigOf(hi), r.sids()]).toEqual([3, [0x0200]]);
    expect(r.commands.contextPerformed).toBe(2);
  });

  it('takes effect on the high half: a 64-bit write (low half first) uses its own DID', () => {
    const r = rig();
    // A low-half write alone does nothing.
    r.regs.write(REG.CCMD, 4, 2);
    expect(r.sids()).toHaveLength(3);
    r.bus.write(MMIO + REG.CCMD, 8, (BigInt(ICC | cirg(2)) << 32n) | 1n, r.bus.counter('cpu'));
    expect(r.sids()).toEqual([0x0200]);
    // The high half without ICC does nothing either.
    r.regs.write(REG.CCMD, 4, 2);
    r.regs.write(REG.CCMD + 4, 4, cirg(2));
    expect(r.sids()).toEqual([0x0200]);
  });

  it('CIRG 0 (reserved): ignored, yet completed with CAIG = 0', () => {
    const r = rig();
    const hi = r.ccmd(1, ICC);
    expect([hi & ICC, caigOf(hi), r.sids().length, r.commands.ignored]).toEqual([0, 0, 3, 1]);
  });
});

describe('IOTLB_REG and IVA_REG: IOTLB invalidation (§6.5.1.2, §11.4.8)', () => {
  it('global: every leaf; IVT reads clear and IAIG = 1', () => {
    const r = rig();
    const hi = r.iotlb(IVT | iirg(1));
    expect([hi & IVT, iaigOf(hi), r.leafCount()]).toEqual([0, 1, 0]);
  });

  it('domain-selective: the DID of the high half; IAIG = 2', () => {
    const r = rig();
    const hi = r.iotlb(IVT | iirg(2) | 1);
    expect([iaigOf(hi), r.leafCount()]).toEqual([2, 1]);
  });

  it('page-selective: IVA.ADDR with AM low page bits ignored; IAIG = 3', () => {
    const r = rig();
    // AM = 1 at page 0x13: pages 0x12–0x13 of DID 1.
    const hi = r.iotlb(IVT | iirg(3) | 1, 0x13 * 4096 + 1);
    expect([iaigOf(hi), r.leafCount(), r.commands.iotlbPerformed]).toEqual([3, 3, 1]);
  });

  it('page-selective without CAP.PSI: performed domain-selective, IAIG = 2', () => {
    const r = rig({ version: { major: 5 }, pageSelectiveInvalidation: false, maxAddressMask: 0 });
    const hi = r.iotlb(IVT | iirg(3) | 1, 0x13 * 4096);
    expect([iaigOf(hi), r.leafCount()]).toEqual([2, 1]);
  });

  it('AM above CAP.MAMV (45): ignored, completed with IAIG = 0', () => {
    const r = rig();
    const hi = r.iotlb(IVT | iirg(3) | 1, 46);
    expect([hi & IVT, iaigOf(hi), r.leafCount(), r.commands.ignored]).toEqual([0, 0, 5, 1]);
  });

  it('IIRG 0 (reserved): ignored, completed with IAIG = 0', () => {
    const r = rig();
    const hi = r.iotlb(IVT | 1);
    expect([hi & IVT, iaigOf(hi), r.leafCount()]).toEqual([0, 0, 5]);
  });
});

describe('register-based invalidation refused (left as written)', () => {
  it('while queued invalidation is enabled: ICC and IVT stay set, nothing is invalidated', () => {
    const r = rig();
    r.regs.set(REG.GSTS, GSTS_QIES);
    expect(r.commands.refusal()).toBe('queued invalidation is enabled');
    expect(r.ccmd(0, ICC | cirg(1)) >>> 0).toBe((ICC | cirg(1)) >>> 0);
    expect((r.iotlb(IVT | iirg(1)) & IVT) >>> 0).toBe(IVT);
    expect([r.sids().length, r.leafCount(), r.commands.refused]).toEqual([3, 5, 2]);
    // Once QI is off, the next request is performed.
    r.regs.set(REG.GSTS, 0);
    expect(caigOf(r.ccmd(0, ICC | cirg(1)))).toBe(1);
  });

  it('on a VER 6.0 unit (the default) and in scalable mode', () => {
    const v6 = rig({});
    expect(v6.commands.refusal()).toBe('not supported by a VER 6.0 unit');
    expect(v6.ccmd(0, ICC | cirg(1)) & ICC).not.toBe(0);
    expect(v6.sids()).toHaveLength(3);
    const scalable = rig({ version: { major: 5 } }, true);
    expect(scalable.commands.refusal()).toBe('the unit is in scalable mode');
    expect(scalable.iotlb(IVT | iirg(1)) & IVT).not.toBe(0);
    expect(scalable.leafCount()).toBe(5);
  });

  it('reports its counters as stats', () => {
    const r = rig();
    r.ccmd(0, ICC | cirg(1));
    r.iotlb(IVT);
    expect(r.commands.stats()).toEqual({
      regContextInvalidations: 1,
      regIotlbInvalidations: 0,
      regInvalidationsIgnored: 1,
      regInvalidationsRefused: 0,
    });
  });
});

describe('what the command registers read after a command', () => {
  it('CCMD keeps CIRG, FM and the low half as written; CAIG replaces the previous one', () => {
    const r = rig();
    // Device-selective (CAIG 3), then global (CAIG 1): CAIG's bits 28:27 go from 11 to 01.
    expect(r.ccmd((0x0101 << 16) | 1, ICC | cirg(3) | 2) >>> 0).toBe((cirg(3) | (3 << 27) | 2) >>> 0);
    expect(r.ccmd(0, ICC | cirg(1)) >>> 0).toBe((cirg(1) | (1 << 27)) >>> 0);
    expect(r.regs.get(REG.CCMD)).toBe(0);
  });

  it('IOTLB keeps IIRG and the DID as written; IAIG replaces the previous one', () => {
    const r = rig();
    expect(r.iotlb(IVT | iirg(3) | 1, 0x10 * 4096) >>> 0).toBe((iirg(3) | (3 << 25) | 1) >>> 0);
    expect(r.iotlb(IVT | iirg(1) | 2) >>> 0).toBe((iirg(1) | (1 << 25) | 2) >>> 0);
  });

  it('an IOTLB high-half write without IVT does nothing', () => {
    const r = rig();
    expect(r.iotlb(iirg(1)) >>> 0).toBe(iirg(1) >>> 0);
    expect([r.leafCount(), r.commands.iotlbPerformed]).toEqual([5, 0]);
  });
});

describe('IVA_REG in page-selective requests', () => {
  it('ADDR above 4 GiB: the high half of IVA holds bits 63:32', () => {
    const r = rig();
    r.caches.cacheLeaf(IOTLB_SECOND, 1, NO_PASID_TAG, GIB4 + 0x10 * 4096, 12).level = 7;
    r.iotlb(IVT | iirg(3) | 1, 0x10 * 4096, 1);
    // The leaf at 4 GiB + 0x10000 (level 7) goes; the five below 4 GiB stay.
    const levels = r.caches.iotlb.entries().map((e) => e.level);
    expect([levels.length, levels.includes(7)]).toEqual([5, false]);
  });

  it('IH = 1 keeps the paging-structure entries of the range, IH = 0 drops them', () => {
    const r = rig();
    const tables = r.caches.secondStageTables!.select(IOTLB_SECOND, 1, NO_PASID_TAG);
    tables.fill(1, 21, 0x20_0000, 0x8000, 0);
    r.iotlb(IVT | iirg(3) | 1, 0x20_0000 | 0x40);
    expect(tables.find(0x20_0000)).toBe(1);
    r.iotlb(IVT | iirg(3) | 1, 0x20_0000);
    expect(tables.find(0x20_0000)).toBe(-1);
  });

  it('AM is only checked against CAP.MAMV for page-selective requests', () => {
    const r = rig();
    const hi = r.iotlb(IVT | iirg(2) | 1, 46);
    expect([iaigOf(hi), r.leafCount(), r.commands.ignored]).toEqual([2, 1, 0]);
  });
});

describe('the trace of register-based invalidation', () => {
  it('without a trace hook, ignored and refused requests complete as with one', () => {
    const r = rig(undefined, false, false);
    expect(caigOf(r.ccmd(0, ICC))).toBe(0);
    r.regs.set(REG.GSTS, GSTS_QIES);
    expect(r.ccmd(0, ICC | cirg(1)) & ICC).not.toBe(0);
    expect([r.commands.ignored, r.commands.refused]).toEqual([1, 1]);
  });

  it('says which register was refused and why, and why a request was ignored', () => {
    const r = rig();
    r.ccmd(0, ICC);
    r.iotlb(IVT);
    r.iotlb(IVT | iirg(3) | 1, 46);
    r.regs.set(REG.GSTS, GSTS_QIES);
    r.ccmd(0, ICC | cirg(1));
    r.iotlb(IVT | iirg(1));
    expect(r.traces).toEqual([
      'register-invalidation: CCMD: CIRG 0 is reserved: ignored',
      'register-invalidation: IOTLB: IIRG 0 is reserved: ignored',
      'register-invalidation: IOTLB: IVA.AM 46 exceeds CAP.MAMV 45: ignored',
      'register-invalidation: CCMD: register-based invalidation refused, queued invalidation is enabled',
      'register-invalidation: IOTLB: register-based invalidation refused, queued invalidation is enabled',
    ]);
  });
});
