/** How steps describe failed DMAs and bytes. */
import { describe, expect, it } from 'vitest';
import type { DmaFailure } from '../device/endpoint.js';
import type { IommuFault } from '../iommu/translation.js';
import { describeFailure, faultCode, sameBytes, showBytes } from './step-reporting.js';

const fault = (recorded: boolean): IommuFault => ({
  kind: 'translation',
  vendorCode: 'F_TRANSLATION',
  streamId: 1,
  pasid: -1,
  iova: 0x1000n,
  access: 1,
  recorded,
});
const progress = { iova: 0x1000n, bytesDone: 0 };

describe('describeFailure and faultCode', () => {
  it.each<[DmaFailure, string, string | undefined]>([
    [
      { ...progress, ok: false, reason: 'fault', fault: fault(true) },
      'fault F_TRANSLATION (translation, recorded)',
      'F_TRANSLATION',
    ],
    [
      { ...progress, ok: false, reason: 'fault', fault: fault(false) },
      'fault F_TRANSLATION (translation)',
      'F_TRANSLATION',
    ],
    [
      { ...progress, ok: false, reason: 'stalled', fault: fault(true), stallId: 4 },
      'stalled on fault F_TRANSLATION (held by the IOMMU, recorded)',
      'F_TRANSLATION',
    ],
    [
      { ...progress, ok: false, reason: 'stalled', fault: fault(false), stallId: 4 },
      'stalled on fault F_TRANSLATION (held by the IOMMU)',
      'F_TRANSLATION',
    ],
    [
      {
        ...progress,
        ok: false,
        reason: 'abort',
        abort: { addr: 0x9000n, size: 4, write: true, reason: 'unmapped' },
      },
      'bus abort at 0x9000 (unmapped)',
      undefined,
    ],
    [
      { ...progress, ok: false, reason: 'page-request', groupIndex: 7 },
      'page request sent (group 7)',
      undefined,
    ],
    [{ ...progress, ok: false, reason: 'pri-exhausted' }, 'no page request credits left', undefined],
  ])('%#: %s', (failure, text, code) => {
    expect(describeFailure(failure)).toBe(text);
    expect(faultCode(failure)).toBe(code);
  });
});

describe('showBytes and sameBytes', () => {
  it('shows printable bytes as text and others as hex, cut after 16 bytes', () => {
    expect(showBytes(new TextEncoder().encode('hi "x"'))).toBe('"hi \\"x\\""');
    expect(showBytes(Uint8Array.of(0x20, 0x7e))).toBe('" ~"');
    expect(showBytes(Uint8Array.of(0x1f))).toBe('hex:1f');
    expect(showBytes(Uint8Array.of(0x7f, 0x41))).toBe('hex:7f41');
    expect(showBytes(new Uint8Array(16).fill(0xab))).toBe(`hex:${'ab'.repeat(16)}`);
    expect(showBytes(new Uint8Array(17).fill(1))).toBe(`hex:${'01'.repeat(16)}… (17 bytes)`);
  });

  it('compares length and every byte', () => {
    expect(sameBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(sameBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(sameBytes(Uint8Array.of(1, 2), Uint8Array.of(1))).toBe(false);
    expect(sameBytes(Uint8Array.of(1), Uint8Array.of(1, 2))).toBe(false);
  });
});
