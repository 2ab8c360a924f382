/**
 * The mock driver's loops on hardware state are bounded: a fault log or page request queue whose TAIL the
 * driver can never reach (beyond the ring) ends the interrupt handler in ETIMEDOUT instead of spinning
 * forever, and an invalidation that never completes is ETIMEDOUT too.
 */
import { iova, MemoryBus, MmioWindow, POLL_LIMIT } from '@iommukit/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type MockIommuHardware, mockRegs } from '../src/index.js';
import { mockSystemsPerTest } from './fixtures.js';

const { R } = mockRegs;
const newSystem = mockSystemsPerTest();

/** Fails the test (instead of hanging it) when the driver reads ring entries far beyond any bound. */
function watchdog(): void {
  const readWords = MemoryBus.prototype.readWords;
  let reads = 0;
  vi.spyOn(MemoryBus.prototype, 'readWords').mockImplementation(function (this: MemoryBus, ...args) {
    if (++reads > 20 * POLL_LIMIT) throw new Error('watchdog: the driver is still draining');
    return readWords.apply(this, args);
  });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('mock driver: bounded loops on hardware state', () => {
  it.each([
    ['fault log', R.FLOG_TAIL, R.FLOG_LOG2, 'fault'],
    ['page request queue', R.PRQ_TAIL, R.PRQ_LOG2, 'prq'],
  ])('a %s TAIL beyond the ring ends the handler in ETIMEDOUT', async (what, tail, log2, line) => {
    const system = await newSystem();
    const hw = system.iommu('iommu0').hardware as MockIommuHardware;
    // Broken hardware: TAIL past the last entry, so HEAD (which wraps at the ring size) never meets it.
    hw.regs.set(tail, 2 ** hw.regs.get(log2) + 1);
    watchdog();
    system.interrupts.line(`iommu0.${line}`).raise();
    expect(() => system.serviceInterrupts()).toThrowError(new RegExp(`ETIMEDOUT: iommu0: the ${what}`));
  });

  it('an invalidation the hardware never completes is ETIMEDOUT', async () => {
    const system = await newSystem();
    const domain = system.iommu('iommu0').driver.domainAllocPaging();
    domain.map(iova(0x10_0000n), system.memory.allocFrames(1), 4096n, { read: true, write: true });
    // INV_DONE never moves (restored before the system is disposed).
    const read32 = MmioWindow.prototype.read32;
    vi.spyOn(MmioWindow.prototype, 'read32').mockImplementation(function (this: MmioWindow, at) {
      return at === R.INV_DONE ? 0 : read32.call(this, at);
    });
    expect(() => {
      domain.unmap(iova(0x10_0000n), 4096n);
      domain.iotlbSync();
    }).toThrowError(/ETIMEDOUT: iommu0: invalidation/);
  });
});
