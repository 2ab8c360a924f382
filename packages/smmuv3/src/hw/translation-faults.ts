/**
 * What a failed SMMUv3 translation is and what it records (IHI 0070 §3.12, §7.3): the `Fault` an
 * outcome carries (event, stage, CLASS, IPA, whether the configuration asks to record or stall it), the
 * faults of each stage as their configuration shapes them, the core's `IommuFault`, and the event record
 * (§7.3.3–7.3.16: SSV/SubstreamID, the faulting access's RnW/PnU/InD, S2, CLASS, InputAddr, IPA or
 * FetchAddr).
 */
import {
  type FaultKind,
  type IommuFault,
  NO_PASID,
  PERM_EXEC,
  PERM_PRIV,
  PERM_WRITE,
  type TranslationOk,
  type TranslationRequest,
} from '@iommukit/core';
import type { WalkFault } from '@iommukit/pagetables';
import type { Cd } from './cd.js';
import {
  EVENT_CLASS,
  EVENT_FAULT_KIND,
  EVENT_ID,
  type EventName,
  type EventRecord,
  STAGE_EVENTS,
} from './events.js';
import { inputAccess } from './grants.js';
import type { Ste } from './ste.js';

/** A translation's result before it is reported: the output, or the fault. */
/** A translation's outcome: the core's result itself when it succeeds (so a hit builds one object), else the fault. */
export type Outcome = TranslationOk | { ok: false; fault: Fault };

export interface Fault {
  readonly event: EventName | 'ABORT' | 'GBPA_ABORT' | 'OAS_ABORT';
  /** Stage 2 fault (event S2 bit). */
  readonly s2?: boolean;
  readonly ipa?: number;
  readonly cls?: number;
  /** CLASS TT: whether the stage-1 descriptor read (true) or its hardware update (false) faulted. */
  readonly ttRnW?: boolean;
  readonly fetchAddr?: number;
  /** Whether the configuration asks for the fault to be recorded (CD.R / STE.S2R; always for C_* events). */
  readonly record: boolean;
  /** A translation-related fault whose stage is configured to stall (CD.S / STE.S2S). */
  readonly stall?: boolean;
  readonly reason?: string;
}

/** Aborts without an event record are configuration aborts; events map as the driver reports them. */
const KIND: Readonly<Record<Fault['event'], FaultKind>> = {
  ABORT: 'config-abort',
  GBPA_ABORT: 'config-abort',
  OAS_ABORT: 'address-size',
  ...EVENT_FAULT_KIND,
};

/**
 * The event of a table walk's fault (§7.3.12–7.3.15). VMSAv8-64 descriptors have no reserved-bit fault (the
 * walker never reports one for them); an invalid descriptor is a translation fault, so that is its event.
 */
export const WALK_EVENT: Readonly<Record<WalkFault['kind'], EventName>> = {
  translation: 'F_TRANSLATION',
  'address-size': 'F_ADDR_SIZE',
  'access-flag': 'F_ACCESS',
  'walk-abort': 'F_WALK_EABT',
  // Stryker disable next-line StringLiteral: unreachable with VMSAv8-64 tables (see above)
  reserved: 'F_TRANSLATION',
};

/** FetchAddr of an F_WALK_EABT: the PA of the descriptor access the bus refused. */
export function walkAbortAddress(fault: WalkFault): { fetchAddr?: number } {
  return fault.address !== undefined ? { fetchAddr: fault.address } : {};
}

/** A stage-1 translation-related fault: recorded as CD.R says, stalls as CD.S says (§3.12); CLASS IN. */
export function stage1Fault(event: EventName, ste: Ste, cd: Cd): Fault {
  return { event, record: cd.r, stall: cd.s && !ste.s1Stalld, s2: false, cls: EVENT_CLASS.IN };
}

/**
 * A stage-2 translation-related fault, recorded as STE.S2R says, stalling as STE.S2S says, with the IPA's
 * page. For a stage-1 table walk (CLASS TT), TTRnW tells a descriptor read from a hardware update (§7.3.16).
 */
export function stage2Fault(event: EventName, ste: Ste, ipa: number, cls: number, access: number): Fault {
  const ipaPage = Math.floor(ipa / 4096) * 4096;
  const fault = { event, record: ste.s2R, stall: ste.s2S, s2: true, ipa: ipaPage, cls };
  return cls === EVENT_CLASS.TT ? { ...fault, ttRnW: (access & PERM_WRITE) === 0 } : fault;
}

/** Whether the fault has an event record (configuration aborts have none). */
export function isEventFault(f: Fault): boolean {
  return f.event !== 'ABORT' && f.event !== 'GBPA_ABORT' && f.event !== 'OAS_ABORT';
}

/** The core's view of a fault (`recorded` is the caller's to set). */
export function coreFault(request: TranslationRequest, f: Fault, input: bigint): IommuFault {
  return {
    kind: KIND[f.event],
    vendorCode: f.event,
    // The stage is the record's S2 bit, for the events whose record has one (§7.3.12–7.3.16).
    ...(STAGE_EVENTS.has(f.event) ? { stage: f.s2 === true ? 2 : 1 } : {}),
    streamId: request.streamId,
    pasid: request.pasid,
    iova: input,
    access: request.access,
    recorded: false,
  };
}

/** The event record of a fault that has one (`isEventFault`). */
export function faultEventRecord(request: TranslationRequest, f: Fault): EventRecord {
  const ssv = request.pasid !== NO_PASID;
  const access = inputAccess(request.access, request.pasid);
  const id = EVENT_ID[f.event as EventName];
  const base = { id, streamId: request.streamId };
  const withSsid = ssv ? { ssv: true, substreamId: request.pasid } : {};
  switch (f.event) {
    // These records carry SSV and the SubstreamID of the transaction (§7.3.3–7.3.5).
    case 'C_BAD_STREAMID':
    case 'C_BAD_STE':
      return { ...base, ...withSsid };
    case 'F_STE_FETCH':
      return { ...base, ...withSsid, ...(f.fetchAddr !== undefined ? { fetchAddr: f.fetchAddr } : {}) };
    case 'F_STREAM_DISABLED':
      return base;
    case 'C_BAD_SUBSTREAMID':
      return { ...base, substreamId: ssv ? request.pasid : 0 };
    case 'F_CD_FETCH':
      return { ...base, ...withSsid, ...(f.fetchAddr !== undefined ? { fetchAddr: f.fetchAddr } : {}) };
    case 'C_BAD_CD':
    case 'F_BAD_ATS_TREQ':
      return { ...base, ...withSsid };
    default:
      return {
        ...base,
        ...withSsid,
        // The faulting access as the SMMU took it (§7.3.13–7.3.16): a write, or a transaction without a
        // SubstreamID, is Data (InD == 0); without a SubstreamID it is also Unprivileged (§13.7).
        rnw: (access & PERM_WRITE) === 0,
        pnu: (access & PERM_PRIV) !== 0,
        ind: (access & PERM_EXEC) !== 0,
        s2: f.s2 === true,
        class: f.cls ?? EVENT_CLASS.IN,
        inputAddrPage: request.iovaPfn,
        inputAddrOffset: request.offset,
        ...(f.ttRnW !== undefined && f.event === 'F_PERMISSION' ? { ttRnW: f.ttRnW } : {}),
        // F_WALK_EABT gives the descriptor's PA (FetchAddr) instead of an IPA (§7.3.12).
        ...(f.event === 'F_WALK_EABT'
          ? f.fetchAddr !== undefined
            ? { fetchAddr: f.fetchAddr }
            : {}
          : f.s2 && f.ipa !== undefined
            ? { ipa: f.ipa }
            : {}),
      };
  }
}
