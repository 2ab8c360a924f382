/**
 * The SMMUv3 a nested vSMMU shows its guest, derived from the host's IOMMU_GET_HW_INFO: what is taken from
 * the host's ID registers, what is withheld, and what the VMM chooses (guest-options.ts).
 */
import { errnoOf, type HwInfo } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { createDriverSystem } from '../../test/driver-system.js';
import { GUEST_SID_BITS, guestOptionsFromHwInfo } from './guest-options.js';

/** The host driver's hw_info for an endpoint behind an SMMU built with `options`. */
function hostInfo(options: Record<string, unknown>): HwInfo {
  const s = createDriverSystem({ options });
  const dev = s.device('dev0', 0x10, { pasidBits: 20 });
  s.probe(dev);
  return s.driver.hwInfo(dev);
}

describe('guestOptionsFromHwInfo', () => {
  it('takes SSIDSIZE, CD2L, granules, ASID16, ATS, HTTU, RIL, COHACC and IIDR from the host; withholds the rest', () => {
    const options = guestOptionsFromHwInfo(
      hostInfo({
        ssidBits: 12,
        granules: { g4k: true, g16k: false, g64k: true },
        twoLevelCdTable: true,
        asid16: false,
        ats: true,
        httu: 'access',
        rangeInvalidation: false,
        coherent: false,
        cmdqLog2: 6,
        evtqLog2: 9,
        // Bit 31 of IIDR set (ProductID 0x9ab): the fields are unsigned.
        iidr: { implementer: 0x43b, revision: 3, variant: 2, productId: 0x9ab },
      }),
    );
    expect(options).toMatchObject({
      s1: true,
      s2: false,
      nesting: false,
      sidBits: GUEST_SID_BITS,
      ssidBits: 12,
      oasBits: 48,
      granules: { g4k: true, g16k: false, g64k: true },
      twoLevelStreamTable: true,
      twoLevelCdTable: true,
      asid16: false,
      vmid16: false,
      ats: true,
      pri: false,
      stallModel: 'no-stall',
      httu: 'access',
      rangeInvalidation: false,
      msi: false,
      wiredIrqs: true,
      coherent: false,
      // The smaller of the VMM's sizes (256 commands, 128 events) and the host's.
      cmdqLog2: 6,
      evtqLog2: 7,
      priqLog2: 0,
      iidr: { implementer: 0x43b, revision: 3, variant: 2, productId: 0x9ab },
    });
    expect(GUEST_SID_BITS).toBe(16);
  });

  it('the opposite host choices come through too; queue sizes are capped at 256 commands and 128 events', () => {
    const options = guestOptionsFromHwInfo(
      hostInfo({
        ssidBits: 8,
        granules: { g4k: false, g16k: true, g64k: false },
        asid16: true,
        httu: 'access-dirty',
        rangeInvalidation: true,
        coherent: true,
        cmdqLog2: 19,
        evtqLog2: 5,
      }),
    );
    expect(options).toMatchObject({
      ssidBits: 8,
      granules: { g4k: false, g16k: true, g64k: false },
      asid16: true,
      httu: 'access-dirty',
      rangeInvalidation: true,
      coherent: true,
      cmdqLog2: 8,
      evtqLog2: 5,
    });
  });

  it('offers 2-level CD tables only when the host has CD2L and SubstreamIDs; no ATS without the host’s', () => {
    expect(guestOptionsFromHwInfo(hostInfo({ twoLevelCdTable: false, ssidBits: 8 })).twoLevelCdTable).toBe(
      false,
    );
    const noSsid = guestOptionsFromHwInfo(
      hostInfo({ twoLevelCdTable: false, ssidBits: 0, ats: false, pri: false }),
    );
    expect(noSsid).toMatchObject({ twoLevelCdTable: false, ssidBits: 0, ats: false });
    // A host hw_info that claims CD2L without SubstreamIDs: the guest still gets no 2-level CD tables.
    const host = hostInfo({ twoLevelCdTable: false, ssidBits: 0 });
    const idr0 = Number(host.data.idr0) | (1 << 19); // IDR0.CD2L (§6.3.1)
    expect(guestOptionsFromHwInfo({ ...host, data: { ...host.data, idr0 } }).twoLevelCdTable).toBe(false);
  });

  it('needs an arm-smmuv3 host: EOPNOTSUPP for another IOMMU', () => {
    const info: HwInfo = {
      type: 'intel-vtd',
      data: {},
      maxPasidLog2: 0,
      capabilities: { dirtyTracking: false, pasidExec: false, pasidPriv: false },
    };
    expect(errnoOf(() => guestOptionsFromHwInfo(info))).toBe('EOPNOTSUPP');
  });
});
