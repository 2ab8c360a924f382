/** The kernel DMA API on the mock: IOVA allocation, map/unmap with synchronous invalidation, the SW MSI cookie. */
import { errnoOf, hpa } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { MOCK_SW_MSI_BASE, MOCK_SW_MSI_LENGTH } from '../src/index.js';
import { mockSystemsPerTest } from './fixtures.js';

const newSystem = mockSystemsPerTest();

async function setup() {
  const system = await newSystem();
  const read = (addr: bigint, n: number) => {
    const r = system.bus.readBytes(addr, n, system.bus.counter('test'));
    if (!r.ok) throw new Error('abort');
    return [...r.data];
  };
  return { system, dma: system.kernelDma('nic0'), nic: system.device('nic0'), read };
}

describe('DmaApiDomain', () => {
  it('dma_map returns an IOVA outside IOVA 0 and the SW MSI window, keeping the page offset', async () => {
    const { system, dma, nic, read } = await setup();
    const buffer = system.memory.allocFrames(2);
    const iova = dma.map(hpa(buffer + 0x123n), 0x1000n, { read: true, write: true });
    expect(iova % 0x1000n).toBe(0x123n);
    expect(iova >= 0x1000n).toBe(true);
    expect(iova >= MOCK_SW_MSI_BASE && iova < MOCK_SW_MSI_BASE + MOCK_SW_MSI_LENGTH).toBe(false);
    expect(nic.dmaWrite(iova, Uint8Array.of(1, 2))).toMatchObject({ ok: true });
    expect(read(buffer + 0x123n, 2)).toEqual([1, 2]);
  });

  it('dma_unmap returns after the IOTLB flush: the next DMA to the IOVA faults', async () => {
    const { system, dma, nic } = await setup();
    const iova = dma.map(system.memory.allocFrames(1), 0x1000n, { read: true, write: true });
    expect(nic.dmaRead(iova, 4)).toMatchObject({ ok: true });
    dma.unmap(iova);
    expect(nic.dmaRead(iova, 4)).toMatchObject({ ok: false, reason: 'fault' });
    expect(errnoOf(() => dma.unmap(iova))).toBe('EINVAL');
  });

  it('the SW MSI cookie maps each doorbell page once into the window; the MSI write reaches the doorbell', async () => {
    const { system, dma, nic, read } = await setup();
    const doorbellPage = system.memory.allocFrames(2);
    const a = dma.mapMsiDoorbell(hpa(doorbellPage + 0x40n));
    const b = dma.mapMsiDoorbell(hpa(doorbellPage + 0x44n));
    const c = dma.mapMsiDoorbell(hpa(doorbellPage + 0x1040n));
    expect([a, b, c]).toEqual([
      MOCK_SW_MSI_BASE + 0x40n,
      MOCK_SW_MSI_BASE + 0x44n,
      MOCK_SW_MSI_BASE + 0x1040n,
    ]);
    expect(nic.msiWrite(a, 0x2a)).toMatchObject({ ok: true });
    expect(read(doorbellPage + 0x40n, 4)).toEqual([0x2a, 0, 0, 0]);
  });

  it('release blocks the device again and frees the domain', async () => {
    const { system, dma, nic } = await setup();
    const iova = dma.map(system.memory.allocFrames(1), 0x1000n, { read: true, write: true });
    dma.release();
    expect(nic.dmaRead(iova, 4)).toMatchObject({ ok: false, fault: { vendorCode: 'MOCK_ABORT' } });
  });
});
