import { describe, expect, it } from 'vitest';
import { RecordingDomain, recordingDriver, testDevice } from '../../test/recording-driver.js';
import { hpa } from '../address/address.js';
import { errnoOf } from '../errors/iommufd-error.js';
import type { ReservedRegion } from './driver.js';
import { SwMsiCookie, swMsiSlot, swMsiWindowOf } from './sw-msi-cookie.js';

const WINDOW = { start: 0x800_0000n, length: 0x2000n };

describe('SW MSI window', () => {
  it('is the sw-msi region the driver reserves; a hardware msi window or plain reserved region is not', () => {
    const dev = testDevice('dev0');
    expect(swMsiWindowOf(recordingDriver().driver, dev)).toBeUndefined();
    const others: ReservedRegion[] = [
      { start: 0x1000n, length: 0x1000n, type: 'reserved' },
      { start: 0x2000n, length: 0x1000n, type: 'msi' },
    ];
    expect(swMsiWindowOf(recordingDriver({ reserved: others }).driver, dev)).toBeUndefined();
    const swMsi: ReservedRegion = { ...WINDOW, type: 'sw-msi' };
    expect(swMsiWindowOf(recordingDriver({ reserved: [...others, swMsi] }).driver, dev)).toBe(swMsi);
  });

  it('slot n is the n-th page of the window; a slot that does not fit whole is ENOSPC', () => {
    expect(swMsiSlot(WINDOW, 0)).toBe(0x800_0000n);
    expect(swMsiSlot(WINDOW, 1)).toBe(0x800_1000n);
    expect(errnoOf(() => swMsiSlot(WINDOW, 2))).toBe('ENOSPC');
    // A window one and a half pages long holds one page.
    expect(errnoOf(() => swMsiSlot({ start: 0x800_0000n, length: 0x1800n }, 1))).toBe('ENOSPC');
  });
});

describe('SwMsiCookie (iommu_dma_prepare_msi)', () => {
  it('maps each doorbell page once, write-only, in the order asked, and keeps the in-page offset', () => {
    const log: string[] = [];
    const cookie = new SwMsiCookie(new RecordingDomain(7, { start: 0n, end: 0xffff_ffffn }, log), WINDOW);
    expect(cookie.map(hpa(0x2f02_0040n))).toBe(0x800_0040n);
    expect(cookie.map(hpa(0x2f02_0ffcn))).toBe(0x800_0ffcn);
    expect(cookie.map(hpa(0x2f01_0000n))).toBe(0x800_1000n);
    expect(log).toEqual([
      'map d7 0x8000000 -> 0x2f020000 +0x1000 -w',
      'map d7 0x8001000 -> 0x2f010000 +0x1000 -w',
    ]);
  });

  it('a doorbell page beyond the window is ENOSPC and maps nothing', () => {
    const log: string[] = [];
    const cookie = new SwMsiCookie(new RecordingDomain(7, { start: 0n, end: 0xffff_ffffn }, log), WINDOW);
    cookie.map(hpa(0x2f00_0000n));
    cookie.map(hpa(0x2f00_1000n));
    expect(errnoOf(() => cookie.map(hpa(0x2f00_2000n)))).toBe('ENOSPC');
    expect(log).toHaveLength(2);
    // The pages already mapped still answer.
    expect(cookie.map(hpa(0x2f00_1004n))).toBe(0x800_1004n);
  });
});
