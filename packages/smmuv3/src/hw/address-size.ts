/**
 * Address sizes (IHI 0070 §3.4) on every translation path; IAS = OAS here (VMSAv8-64 only, IDR0.TTF):
 * - SMMUEN == 0, GBPA bypass: an input at or above 2^OAS aborts without an event (`OAS_ABORT`).
 * - STE.Config == bypass: an input at or above 2^OAS is a stage-1 F_ADDR_SIZE (CLASS IN, S2 = 0).
 * - Stage 1 bypassed (Config == stage 2 only, or S1DSS == bypass with or without stage 2): an input at or
 *   above 2^IAS is a stage-1 F_ADDR_SIZE (CLASS IN, S2 = 0); otherwise stage 2, if any, checks it.
 * - Stage 1 translating (the walker): a VA outside T0SZ is F_TRANSLATION; a table or output address at or
 *   above the effective IPS (capped to the OAS) is a stage-1 F_ADDR_SIZE.
 * - Stage 2 translating (the walker): an IPA outside S2T0SZ is a stage-2 F_TRANSLATION, a table or output
 *   address at or above the effective S2PS a stage-2 F_ADDR_SIZE. When nested, stage-1 output, stage-1
 *   table and CD/L1CD addresses are IPAs and go through these checks.
 * - Stage 2 bypassed: the IPA (below the effective IPS, so the OAS) is the PA; nothing is truncated.
 * - SMMU-originated accesses (§3.4.3): S1ContextPtr beyond the OAS/IAS is C_BAD_STE (`checkSte`), an
 *   L1CD.L2Ptr beyond it C_BAD_SUBSTREAMID; STE and descriptor fetches from no memory abort (F_STE_FETCH,
 *   F_WALK_EABT).
 * This module has the bypass rules; the walks (`stage-walks.ts`) and the configuration checks apply the
 * others. The bypass faults are not caused by a stage configured to stall: they are recorded and terminate.
 */
import { PERM_READ, PERM_WRITE } from '@iommukit/core';
import { EVENT_CLASS } from './events.js';
import type { Outcome } from './translation-faults.js';

// A configuration abort has no event record (isEventFault): its `record` is never read, its reason is only
// the words of the trace message.
const GBPA_ABORT: Outcome = {
  ok: false,
  fault: {
    event: 'GBPA_ABORT',
    // Stryker disable next-line BooleanLiteral: never read (no event record)
    record: false,
  },
};
const OAS_ABORT: Outcome = {
  ok: false,
  fault: {
    event: 'OAS_ABORT',
    // Stryker disable next-line BooleanLiteral: never read (no event record)
    record: false,
    // Stryker disable next-line StringLiteral: the words of the trace message
    reason: 'input beyond the OAS',
  },
};

/** An input beyond the IAS (the OAS when nothing translates) with stage 1 bypassed: CLASS IN, S2 = 0. */
export const BYPASS_ADDR_SIZE: Outcome = {
  ok: false,
  fault: { event: 'F_ADDR_SIZE', record: true, stall: false, s2: false, cls: EVENT_CLASS.IN },
};

/** SMMUEN == 0: traffic aborts as GBPA.ABORT says, or passes untranslated within the OAS (§3.4, §6.3.14). */
export function smmuDisabledOutcome(gbpaAbort: boolean, input: number, addressLimit: number): Outcome {
  if (gbpaAbort) return GBPA_ABORT;
  if (input >= addressLimit) return OAS_ABORT;
  return { ok: true, pfn: Math.floor(input / 4096), perm: PERM_READ | PERM_WRITE, pageShift: 12 };
}

/** Both stages bypassed (STE bypass, or S1DSS bypass without stage 2): the input, within the IAS, is the PA. */
export function bypassOutcome(input: number, addressLimit: number): Outcome {
  if (input >= addressLimit) return BYPASS_ADDR_SIZE;
  return { ok: true, pfn: Math.floor(input / 4096), perm: PERM_READ | PERM_WRITE, pageShift: 12 };
}
