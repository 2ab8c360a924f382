/** Assertion helpers the suites share: the errno a call must fail with, and DMA outcomes. */
import { type DmaReadResult, type DmaWriteResult, errnoOf } from '@iommukit/core';
import { expect } from 'vitest';

/** Asserts `fn` throws an IommufdError with `errno` (the kernel's choice for this mistake). */
export function expectErrno(fn: () => unknown, errno: string): void {
  expect(errnoOf(fn), `expected ${errno}`).toBe(errno);
}

export function expectDmaOk(result: DmaWriteResult | DmaReadResult): void {
  expect(
    result.ok,
    result.ok
      ? ''
      : `DMA failed: ${JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`,
  ).toBe(true);
}

export function expectDmaFault(result: DmaWriteResult | DmaReadResult): void {
  expect(result.ok, 'the DMA should have faulted').toBe(false);
  if (!result.ok) expect(result.reason).toBe('fault');
}
