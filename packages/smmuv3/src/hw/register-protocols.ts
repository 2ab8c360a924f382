/**
 * The handshakes of the SMMUv3 control registers, as pure functions the device model calls from its write
 * hooks: the GERROR/GERRORN toggle protocol (§6.3.19, §6.3.20, §7.5), the GBPA Update flag (§6.3.14.1), and
 * the CR0 → CR0ACK and IRQ_CTRL → IRQ_CTRLACK acknowledgements (§6.3.9, §6.3.10, §6.3.16, §6.3.18).
 */
import { CR0_FIELDS, GBPA_UPDATE, IRQ_CTRL_FIELDS } from './regs.js';

/** Global errors active now: the bits where GERROR differs from GERRORN. */
export function activeGlobalErrors(gerror: number, gerrorn: number): number {
  return (gerror ^ gerrorn) >>> 0;
}

/**
 * GERROR after the SMMU raises the errors in `bits`: each toggles only if it is not already active (the SMMU
 * does not toggle a bit whose error is active, so a second occurrence before acknowledgement is not seen).
 */
export function toggleGlobalError(gerror: number, gerrorn: number, bits: number): number {
  return (gerror ^ (bits & ~activeGlobalErrors(gerror, gerrorn))) >>> 0;
}

/**
 * The errors a GERRORN write acknowledged: active before it, inactive after it. (Toggling a bit of an
 * inactive error is CONSTRAINED UNPREDICTABLE; this model then sees the bits differ, an active error.)
 */
export function acknowledgedGlobalErrors(
  gerror: number,
  gerrornBefore: number,
  gerrornAfter: number,
): number {
  return (activeGlobalErrors(gerror, gerrornBefore) & ~activeGlobalErrors(gerror, gerrornAfter)) >>> 0;
}

/**
 * GBPA after a software write. Software must write it with Update = 1 and poll until Update reads 0; in this
 * model the update completes at once, so the written attributes stay and Update reads back 0. A write with
 * Update = 0 is IGNORED (the only behaviour SMMUv3.2 permits, one of those SMMUv3.1 permits), so the
 * previous value stays. (A write while Update == 1 cannot happen: Update never stays 1.)
 */
export function gbpaAfterWrite(written: number, previous: number): number {
  return (written & GBPA_UPDATE ? written & ~GBPA_UPDATE : previous) >>> 0;
}

/**
 * CR0ACK once every CR0 field has completed its Update: each CR0 field is mirrored (SMMUEN, PRIQEN, EVENTQEN,
 * CMDQEN, ATSCHK, VMW, DPT_WALK_EN); reserved bits are not reflected. The side effects of each Update (queues
 * drained or started, SMMUEN's bypass switch) must be complete before the device writes this value.
 */
export function ackFor(cr0: number): number {
  return (cr0 & CR0_FIELDS) >>> 0;
}

/**
 * IRQ_CTRLACK once the IRQ_CTRL enables have completed their Update: GERROR_IRQEN, PRIQ_IRQEN and
 * EVENTQ_IRQEN are mirrored. Disabling completes only after earlier MSIs have completed.
 */
export function irqCtrlAckFor(irqCtrl: number): number {
  return (irqCtrl & IRQ_CTRL_FIELDS) >>> 0;
}
