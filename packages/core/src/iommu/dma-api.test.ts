import { describe, expect, it } from 'vitest';
import { recordingDriver, testDevice } from '../../test/recording-driver.js';
import { hpa, iova } from '../address/address.js';
import { errnoOf } from '../errors/iommufd-error.js';
import { DmaApiDomain } from './dma-api.js';
import type { ReservedRegion } from './driver.js';
import { IommuCore } from './iommu-core.js';

const RW = { read: true, write: true };
const SW_MSI: ReservedRegion = { start: 0x800_0000n, length: 0x10_0000n, type: 'sw-msi' };

function setup(options: Parameters<typeof recordingDriver>[0] = {}) {
  const core = new IommuCore();
  const rec = recordingDriver(options);
  const dev = testDevice('nvme0');
  core.addDevice(dev, rec.driver);
  return { core, dev, ...rec };
}

describe('DmaApiDomain (Linux dma-iommu)', () => {
  it('gives the device a paging domain of its own, attached at its RID', () => {
    const { core, dev, log } = setup();
    const dma = new DmaApiDomain(dev, core);
    expect(dma.domain.type).toBe('paging');
    expect(core.domainAt(dev)).toBe(dma.domain);
    expect(log).toEqual(['attach nvme0 d1']);
    expect(dma.msiWindow).toBeUndefined();
  });

  it('frees its domain and rethrows when the attach fails, leaving the device blocked', () => {
    const { core, dev, log, blockedDomain } = setup({ refuseAttach: true });
    expect(errnoOf(() => new DmaApiDomain(dev, core))).toBe('EINVAL');
    expect(log).toEqual(['attach nvme0 d1', 'free d1']);
    expect(core.domainAt(dev)).toBe(blockedDomain);
  });

  it('dma_map_single maps whole pages top-down from the aperture end and keeps the in-page offset', () => {
    const { core, dev, log } = setup();
    const dma = new DmaApiDomain(dev, core);
    expect(dma.map(hpa(0x4000_0123n), 0x10n, RW)).toBe(0xffff_ffff_f123n);
    // 0x20 bytes from 0xff0 cross a page boundary: two pages.
    expect(dma.map(hpa(0x5000_0ff0n), 0x20n, { read: true, write: false })).toBe(0xffff_ffff_dff0n);
    expect(log.slice(1)).toEqual([
      'map d1 0xfffffffff000 -> 0x40000000 +0x1000 rw',
      'map d1 0xffffffffd000 -> 0x50000000 +0x2000 r-',
    ]);
  });

  it.each([0n, -1n])('refuses a mapping of %i bytes with EINVAL and maps nothing', (size) => {
    const { core, dev, log } = setup();
    const dma = new DmaApiDomain(dev, core);
    expect(errnoOf(() => dma.map(hpa(0x4000_0123n), size, RW))).toBe('EINVAL');
    expect(log).toEqual(['attach nvme0 d1']);
  });

  it('dma_unmap_single unmaps the whole mapping and syncs the IOTLB before returning; the IOVA is reused', () => {
    const { core, dev, log } = setup();
    const dma = new DmaApiDomain(dev, core);
    const at = dma.map(hpa(0x5000_0ff0n), 0x20n, RW);
    log.length = 0;
    // Any address inside the first page of the mapping names it.
    dma.unmap(iova(at - 0xff0n + 0x10n));
    expect(log).toEqual(['unmap d1 0xffffffffe000 +0x2000', 'sync d1']);
    expect(dma.map(hpa(0x6000_0000n), 0x2000n, RW)).toBe(0xffff_ffff_e000n);
  });

  it('unmapping an IOVA that is not mapped (or twice) is EINVAL and touches nothing', () => {
    const { core, dev, log } = setup();
    const dma = new DmaApiDomain(dev, core);
    const at = dma.map(hpa(0x4000_0000n), 0x1000n, RW);
    expect(errnoOf(() => dma.unmap(iova(0x1000n)))).toBe('EINVAL');
    dma.unmap(at);
    log.length = 0;
    expect(errnoOf(() => dma.unmap(at))).toBe('EINVAL');
    expect(log).toEqual([]);
  });

  it('never hands out IOVA page 0, and never goes below the aperture start', () => {
    const low = setup({ aperture: { start: 0n, end: 0x2fffn } });
    const fromZero = new DmaApiDomain(low.dev, low.core);
    expect(fromZero.map(hpa(0x4000_0000n), 0x1000n, RW)).toBe(0x2000n);
    expect(fromZero.map(hpa(0x4000_0000n), 0x1000n, RW)).toBe(0x1000n);
    expect(errnoOf(() => fromZero.map(hpa(0x4000_0000n), 0x1000n, RW))).toBe('ENOSPC');

    const high = setup({ aperture: { start: 0x1_0000n, end: 0x1_1fffn } });
    const fromHigh = new DmaApiDomain(high.dev, high.core);
    expect(fromHigh.map(hpa(0x4000_0000n), 0x1000n, RW)).toBe(0x1_1000n);
    expect(fromHigh.map(hpa(0x4000_0000n), 0x1000n, RW)).toBe(0x1_0000n);
    expect(errnoOf(() => fromHigh.map(hpa(0x4000_0000n), 0x1000n, RW))).toBe('ENOSPC');
  });

  it("skips the driver's reserved regions; the SW MSI window is the sw-msi one", () => {
    const reserved: ReservedRegion[] = [
      { start: 0x2000n, length: 0x1000n, type: 'msi' },
      { start: 0x3000n, length: 0x1000n, type: 'sw-msi' },
    ];
    const { core, dev } = setup({ aperture: { start: 0n, end: 0x4fffn }, reserved });
    const dma = new DmaApiDomain(dev, core);
    expect(dma.msiWindow).toBe(reserved[1]);
    expect(dma.map(hpa(0x4000_0000n), 0x1000n, RW)).toBe(0x4000n);
    expect(dma.map(hpa(0x4000_0000n), 0x1000n, RW)).toBe(0x1000n);
    expect(errnoOf(() => dma.map(hpa(0x4000_0000n), 0x1000n, RW))).toBe('ENOSPC');
  });

  it('maps an MSI doorbell page once, write-only, into the SW MSI window (the same cookie as prepareMsi)', () => {
    const { core, dev, log } = setup({ reserved: [SW_MSI] });
    const dma = new DmaApiDomain(dev, core);
    expect(dma.mapMsiDoorbell(hpa(0x2f00_0040n))).toBe(0x800_0040n);
    expect(dma.mapMsiDoorbell(hpa(0x2f00_0040n))).toBe(0x800_0040n);
    expect(core.prepareMsi(dev, hpa(0x2f00_0044n))).toBe(0x800_0044n);
    expect(dma.mapMsiDoorbell(hpa(0x3f00_0040n))).toBe(0x800_1040n);
    expect(log.slice(1)).toEqual([
      'map d1 0x8000000 -> 0x2f000000 +0x1000 -w',
      'map d1 0x8001000 -> 0x3f000000 +0x1000 -w',
    ]);
  });

  it('without a SW MSI window, mapping a doorbell is EOPNOTSUPP', () => {
    const { core, dev } = setup({ reserved: [{ ...SW_MSI, type: 'msi' }] });
    const dma = new DmaApiDomain(dev, core);
    expect(errnoOf(() => dma.mapMsiDoorbell(hpa(0x2f00_0040n)))).toBe('EOPNOTSUPP');
  });

  it('mapIdentity maps a firmware region one to one, write-only', () => {
    const { core, dev, log } = setup();
    const dma = new DmaApiDomain(dev, core);
    dma.mapIdentity(0x800_0000n, 0x10_0000n);
    expect(log.slice(1)).toEqual(['map d1 0x8000000 -> 0x8000000 +0x100000 -w']);
  });

  it('release blocks the device, then frees the domain', () => {
    const { core, dev, log, blockedDomain } = setup();
    const dma = new DmaApiDomain(dev, core);
    log.length = 0;
    dma.release();
    expect(log).toEqual(['attach nvme0 d0', 'free d1']);
    expect(core.domainAt(dev)).toBe(blockedDomain);
  });
});
