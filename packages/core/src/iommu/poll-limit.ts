/**
 * The bound on every driver wait for hardware state (an acknowledgement register, a queue's CONS, an
 * invalidation's completion). Linux bounds each such poll in time — the SMMUv3 driver's
 * ARM_SMMU_POLL_TIMEOUT_US (one second), `readl_relaxed_poll_timeout` elsewhere — and fails with
 * -ETIMEDOUT. The model counts polls instead of microseconds, so a run is deterministic; a wait that
 * reaches the bound throws {@link pollTimeout}, so hardware (or a guest) that never answers cannot hang
 * the process.
 */
import { type ErrorContext, IommufdError } from '../errors/iommufd-error.js';

/** Reads of the awaited hardware state before a driver gives up. */
export const POLL_LIMIT = 1000;

/** The coded error of a wait that reached {@link POLL_LIMIT} (Linux -ETIMEDOUT). */
export function pollTimeout(instance: string, what: string, context: ErrorContext = {}): IommufdError {
  return new IommufdError('ETIMEDOUT', `${instance}: ${what}`, { instance, ...context });
}
