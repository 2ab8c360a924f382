/**
 * Every wait of the host driver on SMMU state is bounded (Linux ARM_SMMU_POLL_TIMEOUT_US, modelled as
 * POLL_LIMIT polls) and ends in ETIMEDOUT: an SMMU — or a guest behind a vSMMU — that never acknowledges,
 * never finishes a GBPA update or never stops producing events cannot hang the process.
 */
import { isIommufdError, MmioWindow, POLL_LIMIT } from '@iommukit/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createDriverSystem } from '../../test/driver-system.js';
import { GBPA_UPDATE, REG } from '../hw/regs.js';

/** More register reads than any bounded wait makes: reaching it means the driver is stuck polling. */
const WATCHDOG = 20 * POLL_LIMIT;

/**
 * Makes the driver read `answer(real value)` at `offset` of its register window, and fails the test (instead
 * of hanging it) after WATCHDOG reads there.
 */
function misbehave(offset: number, answer: (real: number) => number): { reads: () => number } {
  const read32 = MmioWindow.prototype.read32;
  let reads = 0;
  vi.spyOn(MmioWindow.prototype, 'read32').mockImplementation(function (this: MmioWindow, at) {
    const real = read32.call(this, at);
    if (at !== offset) return real;
    if (++reads > WATCHDOG) throw new Error(`watchdog: the driver is still polling register ${at}`);
    return answer(real);
  });
  return { reads: () => reads };
}

/** The coded error `fn` throws (the test fails on anything else, or on no error). */
function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('Smmuv3Driver: bounded polls (Linux ARM_SMMU_POLL_TIMEOUT_US → -ETIMEDOUT)', () => {
  it.each([
    ['CR0ACK', REG.CR0ACK],
    ['IRQ_CTRLACK', REG.IRQ_CTRLACK],
  ])('an SMMU that never updates %s fails probe with ETIMEDOUT after POLL_LIMIT reads', (_name, ack) => {
    const s = createDriverSystem({ noProbe: true });
    // Stuck at a value no enable pattern the driver writes can match.
    const reg = misbehave(ack, () => 0xdead_beef);
    const error = errorOf(() => s.driver.probe());
    expect(isIommufdError(error, 'ETIMEDOUT')).toBe(true);
    expect((error as Error).message).toMatch(/did not acknowledge/);
    expect(reg.reads()).toBe(POLL_LIMIT);
  });

  it('a GBPA update that never completes (Update stays 1) fails probe with ETIMEDOUT', () => {
    const s = createDriverSystem({ noProbe: true });
    const reg = misbehave(REG.GBPA, (real) => real | GBPA_UPDATE);
    expect(() => s.driver.probe()).toThrowError(/^ETIMEDOUT: smmu0: GBPA not responding to update/);
    expect(reg.reads()).toBe(POLL_LIMIT);
  });

  it.each([
    ['Event queue', 'eventq', REG.EVENTQ_PROD, {}],
    ['PRI queue', 'priq', REG.PRIQ_PROD, { ats: true, pri: true }],
  ])('the %s: a PROD that never stops moving ends its handler in ETIMEDOUT', (name, line, prod, options) => {
    const s = createDriverSystem({ options });
    // Every read of PROD shows one more (zeroed) record: the handler would drain forever.
    let moved = 0;
    misbehave(prod, () => ++moved & 0xff);
    s.ic.line(`smmu0.${line}`).raise();
    expect(() => s.service()).toThrowError(new RegExp(`ETIMEDOUT: smmu0: the ${name} never drained`));
    // The first look at PROD, then one after each of POLL_LIMIT passes.
    expect(moved).toBe(POLL_LIMIT + 1);
  });
});
