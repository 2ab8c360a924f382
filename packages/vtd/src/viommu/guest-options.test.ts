/** The unit a nested vVT-d shows its guest, from the host's hw_info. */
import { errnoOf, type HwInfo } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { capWords, ecapWords } from '../hw/capabilities.js';
import { featuresFromOptions, VtdOptionsSchema } from '../hw/options.js';
import { guestOptionsFromHwInfo } from './guest-options.js';

function hwInfo(options: Record<string, unknown> = {}): HwInfo {
  const f = featuresFromOptions(VtdOptionsSchema.parse(options));
  const word = (w: { lo: number; hi: number }) => (BigInt(w.hi) << 32n) | BigInt(w.lo);
  return {
    type: 'intel-vtd',
    data: { cap_reg: word(capWords(f)), ecap_reg: word(ecapWords(f)), flags: 0 },
    maxPasidLog2: 0,
    capabilities: { dirtyTracking: false, pasidExec: false, pasidPriv: false },
  };
}

describe('guestOptionsFromHwInfo', () => {
  it('first stage only, caching mode, no IR; ATS, PRI and what the host walks for the guest are the host’s', () => {
    const o = guestOptionsFromHwInfo(
      hwInfo({ pasidBits: 10, firstStage5Level: false, supervisorRequests: true, maxAddressMask: 12 }),
    );
    expect(o).toMatchObject({
      scalableMode: true,
      firstStage: true,
      secondStage: false,
      nesting: false,
      cachingMode: true,
      deviceTlb: true,
      pageRequests: true,
      interruptRemapping: false,
      passThrough: true,
      pasidBits: 10,
      firstStage5Level: false,
      supervisorRequests: true,
      maxAddressMask: 12,
      mgawBits: 48,
    });
    const f = featuresFromOptions(o);
    expect(f.cachingMode).toBe(true);
    const noPri = guestOptionsFromHwInfo(hwInfo({ pageRequests: false, pageRequestDrain: false }));
    expect(noPri).toMatchObject({ deviceTlb: true, pageRequests: false, pageRequestDrain: false });
  });

  it('refuses a host that cannot nest a first stage, or is not VT-d (EOPNOTSUPP)', () => {
    expect(errnoOf(() => guestOptionsFromHwInfo(hwInfo({ nesting: false })))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => guestOptionsFromHwInfo(hwInfo({ scalableMode: false })))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => guestOptionsFromHwInfo({ ...hwInfo(), type: 'arm-smmuv3' }))).toBe('EOPNOTSUPP');
  });

  it('5-level first-stage paging follows the host, and so does the guest’s address width', () => {
    expect(guestOptionsFromHwInfo(hwInfo({ firstStage5Level: true }))).toMatchObject({
      firstStage5Level: true,
      mgawBits: 57,
    });
  });

  it('the rest: drain only with DT, PRS and PDS; SRS only with PASIDs; no Exe, snoop control or write-buffer flush; the host MGAW as the guest’s physical width', () => {
    const o = guestOptionsFromHwInfo(hwInfo({ mgawBits: 48 }));
    expect(o).toMatchObject({
      pageRequestDrain: true,
      executeRequests: false,
      snoopControl: false,
      writeBufferFlush: false,
      hostAddressBits: 48,
    });
    expect(guestOptionsFromHwInfo(hwInfo({ pageRequestDrain: false })).pageRequestDrain).toBe(false);
    expect(guestOptionsFromHwInfo(hwInfo({ executeRequests: true })).executeRequests).toBe(false);
    const noPasid = guestOptionsFromHwInfo(
      hwInfo({ pasidBits: 0, supervisorRequests: false, executeRequests: false }),
    );
    expect(noPasid).toMatchObject({ pasidBits: 0, supervisorRequests: false });
    const noDt = guestOptionsFromHwInfo(
      hwInfo({ deviceTlb: false, pageRequests: false, pageRequestDrain: false }),
    );
    expect(noDt).toMatchObject({ deviceTlb: false, pageRequests: false, pageRequestDrain: false });
  });
});
