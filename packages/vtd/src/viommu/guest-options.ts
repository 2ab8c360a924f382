/**
 * The VT-d unit a nested vVT-d shows its guest, derived from the host's `IOMMU_GET_HW_INFO` (`cap_reg`,
 * `ecap_reg`): a scalable-mode unit with first-stage translation only — the shape of QEMU's
 * `intel-iommu,x-flts=on` — whose first-stage tables the host walks through the VM's stage 2.
 * - Taken from the host: PASID width, supervisor requests (SRS), 1 GiB and 5-level first-stage pages
 *   (FL1GP, FL5LP), the address mask limit (MAMV), page-walk coherency, MGAW (the guest's physical space
 *   is the stage 2's input).
 * - Taken from the host too: Device-TLBs and page requests (ECAP.DT, PRS, PDS): the guest's ATS devices
 *   use the host's nested translations, and their page requests reach the guest's page request queue
 *   through iommufd's fault queue (nested-vvtd.ts).
 * - Withheld: second stage and nesting (the host's), interrupt remapping (no vIR), execute requests,
 *   snoop control.
 * - The VMM's own: caching mode (CM = 1) — the guest must invalidate after every PASID-entry change,
 *   not-present to present included, which is where the vVT-d learns of it — pass-through entries (the
 *   device then uses stage 2 alone), queued invalidation, 16-bit DIDs.
 */
import { type HwInfo, IommufdError } from '@iommukit/core';
import { decodeCap, decodeEcap } from '../hw/capabilities.js';
import { type VtdOptions, VtdOptionsSchema } from '../hw/options.js';

const word = (value: number | bigint | undefined) => {
  const v = BigInt(value ?? 0);
  return { lo: Number(v & 0xffff_ffffn), hi: Number((v >> 32n) & 0xffff_ffffn) };
};

export function guestOptionsFromHwInfo(hw: HwInfo): VtdOptions {
  if (hw.type !== 'intel-vtd')
    throw new IommufdError('EOPNOTSUPP', `a nested vVT-d needs an intel-vtd host IOMMU, not ${hw.type}`);
  const capWord = word(hw.data.cap_reg);
  const ecapWord = word(hw.data.ecap_reg);
  const cap = decodeCap(capWord.lo, capWord.hi);
  const ecap = decodeEcap(ecapWord.lo, ecapWord.hi);
  if (!ecap.smts || !ecap.nest || !ecap.flts)
    throw new IommufdError(
      'EOPNOTSUPP',
      'a nested vVT-d needs a host unit with scalable mode, first-stage translation and nesting (ECAP.SMTS, FLTS, NEST)',
    );
  const pasidBits = ecap.pasid ? ecap.pss + 1 : 0;
  const fl5lp = cap.fl5lp;
  return VtdOptionsSchema.parse({
    scalableMode: true,
    firstStage: true,
    secondStage: false,
    nesting: false,
    pasidBits,
    pageRequests: ecap.dt && ecap.prs,
    pageRequestDrain: ecap.dt && ecap.prs && ecap.pds,
    secondStageAccessDirty: false,
    scalableWalkCoherency: ecap.smpwcs,
    supervisorRequests: ecap.srs && pasidBits > 0,
    executeRequests: false,
    firstStage1GiB: cap.fl1gp,
    firstStage5Level: fl5lp,
    queuedInvalidation: true,
    deviceTlb: ecap.dt,
    interruptRemapping: false,
    extendedInterruptMode: false,
    postedInterrupts: false,
    sirtpInvalidates: false,
    srtpInvalidates: cap.esrtps,
    passThrough: true,
    snoopControl: false,
    coherent: ecap.c,
    cachingMode: true,
    writeBufferFlush: false,
    domainIdBits: 16,
    // The first stage bounds the input; its output, a GPA, the host's stage-2 input (MGAW).
    mgawBits: fl5lp ? 57 : 48,
    hostAddressBits: Math.min(cap.mgaw + 1, 52),
    pageSelectiveInvalidation: true,
    maxAddressMask: cap.mamv,
  });
}
