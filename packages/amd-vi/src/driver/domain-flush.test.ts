/**
 * Domain flushes (domain-flush.ts): the commands `amd_iommu_domain_flush_pages` queues — INVALIDATE_IOMMU_PAGES
 * of the DomainID with Linux's range encoding, INVALIDATE_IOTLB_PAGES per ATS device — NpCache's aligned
 * blocks, and nothing for a domain attached nowhere.
 */
import { describe, expect, it } from 'vitest';
import { driverRig } from '../../test/driver-rig.js';
import { ALL_PAGES_ADDRESS } from '../hw/command-encoders.js';
import { type AmdCommand, decodeInvalidationRange } from '../hw/commands.js';
import { REG } from '../hw/regs.js';
import { flushDomainAll, flushDomainPages, flushGuestPages, flushPasidAll } from './domain-flush.js';
import { probeUnit } from './probe.js';

function setup(npCache = false) {
  const r = driverRig({ options: { npCache } });
  const unit = probeUnit(r.context, () => undefined);
  const host = { queue: unit.queue, npCache };
  const run = (action: () => void): AmdCommand[] => {
    const from = r.reg(REG.CMD_TAIL);
    action();
    return r.commands(unit.queue.base, from, r.reg(REG.CMD_TAIL));
  };
  return { host, run };
}

const ranges = (commands: AmdCommand[]) =>
  commands.flatMap((c) =>
    c.op === 'invalidate-iommu-pages' ? [decodeInvalidationRange(c.address, c.s)] : [],
  );

describe('flushDomainPages', () => {
  const plain = [{ deviceId: 0x10, ats: undefined }];

  it('one INVALIDATE_IOMMU_PAGES covering the range (its smallest aligned block), PDE, then the wait', () => {
    const { host, run } = setup();
    const commands = run(() => flushDomainPages(host, 9, plain, 0x3000, 0x2000));
    expect(commands[0]).toEqual({
      op: 'invalidate-iommu-pages',
      pasid: 0,
      domainId: 9,
      s: true,
      pde: true,
      gn: false,
      // 0x3000..0x4fff differ from bit 14 down: the 32 KiB block at 0.
      address: 0x3000,
    });
    expect(ranges(commands)).toEqual([{ start: 0, size: 0x8000 }]);
    expect(commands.slice(1).map((c) => c.op)).toEqual(['completion-wait']);
  });

  it('each ATS device gets INVALIDATE_IOTLB_PAGES over the same range', () => {
    const { host, run } = setup();
    const devices = [
      { deviceId: 0x10, ats: { qdep: 0 } },
      { deviceId: 0x11, ats: undefined },
      { deviceId: 0x12, ats: { qdep: 5 } },
    ];
    const commands = run(() => flushDomainPages(host, 9, devices, 0x3000, 0x1000));
    expect(
      commands.map((c) => (c.op === 'invalidate-iotlb-pages' ? `iotlb ${c.deviceId} ${c.maxPend}` : c.op)),
    ).toEqual(['invalidate-iommu-pages', 'iotlb 16 0', 'iotlb 18 5', 'completion-wait']);
  });

  it('a domain attached nowhere sends nothing', () => {
    const { host, run } = setup();
    expect(run(() => flushDomainPages(host, 9, [], 0, 0x1000))).toEqual([]);
  });

  it('with NpCache: naturally aligned blocks, the address’s alignment or the largest power of two left', () => {
    const { host, run } = setup(true);
    const commands = run(() => flushDomainPages(host, 9, plain, 0x3000, 0x6000));
    expect(ranges(commands)).toEqual([
      { start: 0x3000, size: 0x1000 },
      { start: 0x4000, size: 0x4000 },
      { start: 0x8000, size: 0x1000 },
    ]);
  });

  it('everything: one command with Linux’s all-pages address, NpCache or not', () => {
    for (const np of [false, true]) {
      const { host, run } = setup(np);
      const commands = run(() => flushDomainAll(host, 9, plain));
      expect(commands[0]).toMatchObject({
        op: 'invalidate-iommu-pages',
        s: true,
        address: ALL_PAGES_ADDRESS,
      });
      expect(commands.length).toBe(2);
    }
  });
});

describe('flushGuestPages and flushPasidAll (v2 domains)', () => {
  const targets = [
    { deviceId: 0x10, ats: { qdep: 2 }, domainId: 30, pasid: 0 },
    { deviceId: 0x11, ats: undefined, domainId: 31, pasid: 7 },
  ];
  const ops = (commands: AmdCommand[]) =>
    commands.map((c) =>
      c.op === 'invalidate-iommu-pages'
        ? `pages ${c.domainId} ${c.pasid} ${c.gn}`
        : c.op === 'invalidate-iotlb-pages'
          ? `iotlb ${c.deviceId} ${c.pasid} ${c.gn}`
          : c.op,
    );

  it('GN = 1 under each place’s GCR3 DomainID and PASID, then the ATS devices’ IOTLBs, then one wait', () => {
    const { host, run } = setup();
    expect(ops(run(() => flushGuestPages(host, targets, 0x3000, 0x1000)))).toEqual([
      'pages 30 0 true',
      'pages 31 7 true',
      'iotlb 16 0 true',
      'completion-wait',
    ]);
    expect(run(() => flushGuestPages(host, [], 0x3000, 0x1000))).toEqual([]);
  });

  it('with NpCache the same blocks as v1; a PASID flush is everything at once', () => {
    const { host, run } = setup(true);
    expect(ranges(run(() => flushGuestPages(host, [targets[1]!], 0x3000, 0x6000)))).toEqual([
      { start: 0x3000, size: 0x1000 },
      { start: 0x4000, size: 0x4000 },
      { start: 0x8000, size: 0x1000 },
    ]);
    const all = run(() => flushPasidAll(host, targets[0]!));
    expect(ops(all)).toEqual(['pages 30 0 true', 'iotlb 16 0 true', 'completion-wait']);
    expect(all[0]).toMatchObject({ s: true, address: ALL_PAGES_ADDRESS });
  });
});
