/**
 * How scenario steps report: a failed expectation, and the text for bytes and failed DMAs that step
 * summaries share (core steps, MSI steps, the VMM's guest steps).
 */
import { toHex } from '../address/address.js';
import type { DmaFailure } from '../device/endpoint.js';

/** A failed expectation inside a step (its message is the step's summary). */
export class StepFailure extends Error {}

/** The vendor code of a DMA that failed to translate (a stalled one too: it is held, not terminated). */
export function faultCode(failure: DmaFailure): string | undefined {
  return failure.reason === 'fault' || failure.reason === 'stalled' ? failure.fault.vendorCode : undefined;
}

export function describeFailure(failure: DmaFailure): string {
  switch (failure.reason) {
    case 'fault':
      return `fault ${failure.fault.vendorCode} (${failure.fault.kind}${failure.fault.recorded ? ', recorded' : ''})`;
    case 'stalled':
      return `stalled on fault ${failure.fault.vendorCode} (held by the IOMMU${failure.fault.recorded ? ', recorded' : ''})`;
    case 'abort':
      return `bus abort at ${toHex(failure.abort.addr)} (${failure.abort.reason})`;
    case 'page-request':
      return `page request sent (group ${failure.groupIndex})`;
    case 'pri-exhausted':
      return 'no page request credits left';
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function showBytes(bytes: Uint8Array): string {
  const printable = bytes.every((b) => b >= 0x20 && b < 0x7f);
  if (printable) return JSON.stringify(new TextDecoder().decode(bytes));
  const hex = [...bytes.subarray(0, 16)].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `hex:${hex}${bytes.length > 16 ? `… (${bytes.length} bytes)` : ''}`;
}
