/**
 * The ITS driver's command queue waits are bounded: an ITS that stops consuming (disabled behind the
 * driver's back, as a guest can do to its vITS) fails the command with ETIMEDOUT, as Linux's
 * its_wait_for_range_completion gives up ("ITS queue timeout").
 */
import { isIommufdError } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { gicRig } from '../../test/gic-rig.js';
import { GITS } from '../hw/registers.js';

const device = { name: 'nic0', deviceId: 0x10 };

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('ItsCommandQueue: bounded waits', () => {
  it('an ITS disabled behind the driver: CREADR stays short of CWRITER → ETIMEDOUT', () => {
    const r = gicRig();
    r.bus.write(r.gic.spec.its[0]!.base + BigInt(GITS.CTLR), 4, 0, r.bus.counter('cpu'));
    const error = errorOf(() => r.msi.allocateVectors(device, 1));
    expect(isIommufdError(error, 'ETIMEDOUT')).toBe(true);
    expect((error as Error).message).toMatch(/ITS queue timeout: CREADR 0x[0-9a-f]+ short of CWRITER/);
  });
});
