/**
 * The SMMUv3 a nested vSMMU shows its guest, derived from the host's `IOMMU_GET_HW_INFO` (IDR0–5, IIDR,
 * AIDR): what the host can honour for a guest whose stage 1 the physical SMMU walks through the VM's
 * stage 2, and nothing else.
 * - Taken from the host: SubstreamID width, 2-level CD tables, granules, output size (the guest's IPA
 *   space is the host stage 2's input), ASID16, HTTU (the host walker updates the guest's tables), RIL
 *   and ATS (the guest's range TLBIs and ATC_INVs are forwarded as they are), coherency, IIDR.
 * - Withheld: stage 2 and nesting (the host's), PRI (page requests are not forwarded), stalls (a guest
 *   cannot resume through iommufd: STALL_MODEL = 0b01), MSIs (the vSMMU signals the guest on wired lines),
 *   SEV (no WFE wake-up events reach the guest's vCPUs).
 * - The VMM's own: 16-bit vSIDs in a 2-level Stream table the vSMMU reads from guest memory, and queue
 *   sizes (a 256-entry Command queue, a 128-entry Event queue).
 */
import { type HwInfo, IommufdError } from '@iommukit/core';
import { featuresFromIdrs, IDR0_COHACC } from '../hw/idr.js';
import { type Smmuv3Options, Smmuv3OptionsSchema } from '../hw/options.js';

/** vSID width the VMM gives its guests. */
export const GUEST_SID_BITS = 16;
const GUEST_CMDQ_LOG2 = 8;
const GUEST_EVTQ_LOG2 = 7;

export function guestOptionsFromHwInfo(hw: HwInfo): Smmuv3Options {
  if (hw.type !== 'arm-smmuv3') {
    throw new IommufdError('EOPNOTSUPP', `a vSMMUv3 needs an arm-smmuv3 host IOMMU, not ${hw.type}`);
  }
  const reg = (name: string) => Number(hw.data[name] ?? 0) >>> 0;
  const idr0 = reg('idr0');
  const host = featuresFromIdrs(
    { IDR0: idr0, IDR1: reg('idr1'), IDR3: reg('idr3'), IDR5: reg('idr5') },
    { wiredIrqs: true },
  );
  const iidr = reg('iidr');
  return Smmuv3OptionsSchema.parse({
    s1: true,
    s2: false,
    nesting: false,
    sidBits: GUEST_SID_BITS,
    ssidBits: host.ssidBits,
    oasBits: host.oasBits,
    granules: host.granules,
    twoLevelStreamTable: true,
    twoLevelCdTable: host.twoLevelCdTable && host.ssidBits > 0,
    asid16: host.asid16,
    vmid16: false,
    ats: host.ats,
    pri: false,
    stallModel: 'no-stall',
    httu: host.httu,
    rangeInvalidation: host.rangeInvalidation,
    msi: false,
    wiredIrqs: true,
    coherent: (idr0 & IDR0_COHACC) !== 0,
    cmdqLog2: Math.min(GUEST_CMDQ_LOG2, host.cmdqLog2),
    evtqLog2: Math.min(GUEST_EVTQ_LOG2, host.evtqLog2),
    priqLog2: 0,
    iidr: {
      implementer: iidr & 0xfff,
      revision: (iidr >>> 12) & 0xf,
      variant: (iidr >>> 16) & 0xf,
      productId: iidr >>> 20,
    },
  });
}
