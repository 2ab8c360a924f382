/**
 * Access permissions of a VMSAv8-64 leaf (Arm ARM D8.4 "Memory access control"): what a read, write or
 * instruction fetch, privileged or not, may do through it. The walker reports attributes; whoever owns the
 * transaction (an SMMU model, with the PnU/InD/RnW of the request) decides with these helpers whether it is
 * a permission fault.
 *
 * Stage 1, EL1&0 regime (the regime SMMUv3 stage 1 uses with StreamWorld NS-EL1):
 * - AP[2] = 1 makes the page read-only; AP[1] = 1 gives unprivileged (EL0) accesses the same data access.
 * - Privileged execution needs PXN = 0, and is never allowed from memory writable at EL0 (AP[2:1] = 0b01).
 * - Unprivileged execution needs UXN = 0 (and no UXNTable) only: AP[1] and APTable[0] remove unprivileged
 *   data access, not execution (D8.4.1.2.3), so AP[1] = 0 with UXN = 0 is execute-only at EL0.
 * - Table descriptors above may remove rights: APTable[0] no EL0 access, APTable[1] read-only,
 *   PXNTable/UXNTable execute-never (hierarchical permissions; SMMUv3 CD.HAD0 disables them in a walk).
 * Stage 2:
 * - S2AP[0] read, S2AP[1] write; XN[1:0] = 0b00 executable, 0b01 not at EL1, 0b10 never, 0b11 not at EL0
 *   (bit 53 is XN[0] with FEAT_XNX; without it bit 53 is RES0 and only 0b00/0b10 occur).
 * Dirty state (FEAT_HAFDBS): with hardware dirty management a DBM = 1 leaf that is not yet writable
 * (stage 1 AP[2] = 1, stage 2 S2AP[1] = 0) is writable-clean: a write is allowed and makes it dirty.
 */
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import {
  HI_DBM,
  HI_XN_SHIFT,
  LIMIT_AP_TABLE_NO_EL0,
  LIMIT_AP_TABLE_RO,
  LIMIT_PXN_TABLE,
  LIMIT_UXN_TABLE,
  LO_AP_SHIFT,
  type VmsaLeafAttributes,
} from './descriptors.js';

/** The PERM_READ/WRITE/EXEC bits `attrs` grant to a privileged or unprivileged access. */
export function vmsaPermissions(
  attrs: VmsaLeafAttributes,
  privileged: boolean,
  hardwareDirty = false,
): number {
  return permissionBits(
    attrs.stage,
    attrs.ap,
    attrs.xn,
    attrs.dbm,
    attrs.tableLimits,
    privileged,
    hardwareDirty,
  );
}

/**
 * {@link vmsaPermissions} of the leaf descriptor `lo`/`hi` at `stage` under `tableLimits` (ignored at stage 2),
 * without decoding its attributes into an object: what a TLB-miss path calls.
 */
export function vmsaLeafPermissions(
  stage: 1 | 2,
  lo: number,
  hi: number,
  tableLimits: number,
  privileged: boolean,
  hardwareDirty = false,
): number {
  return permissionBits(
    stage,
    (lo >>> LO_AP_SHIFT) & 3,
    (hi >>> HI_XN_SHIFT) & 3,
    (hi & HI_DBM) !== 0,
    stage === 1 ? tableLimits : 0,
    privileged,
    hardwareDirty,
  );
}

function permissionBits(
  stage: 1 | 2,
  ap: number,
  xn: number,
  dbm: boolean,
  limits: number,
  privileged: boolean,
  hardwareDirty: boolean,
): number {
  if (stage === 2) {
    let perm = 0;
    if (ap & 1) perm |= PERM_READ;
    if (ap & 2 || (hardwareDirty && dbm)) perm |= PERM_WRITE;
    if (privileged ? xn === 0 || xn === 3 : xn === 0 || xn === 1) perm |= PERM_EXEC;
    return perm;
  }
  const el0 = (ap & 1) !== 0 && (limits & LIMIT_AP_TABLE_NO_EL0) === 0;
  const tableRo = (limits & LIMIT_AP_TABLE_RO) !== 0;
  const readOnly = (ap & 2) !== 0 || tableRo;
  const writable = !readOnly || (hardwareDirty && dbm && !tableRo);
  if (privileged) {
    let perm = PERM_READ;
    if (writable) perm |= PERM_WRITE;
    const el0Writable = el0 && !readOnly;
    if ((xn & 1) === 0 && (limits & LIMIT_PXN_TABLE) === 0 && !el0Writable) perm |= PERM_EXEC;
    return perm;
  }
  let perm = 0;
  if (el0) perm |= writable ? PERM_READ | PERM_WRITE : PERM_READ;
  if ((xn & 2) === 0 && (limits & LIMIT_UXN_TABLE) === 0) perm |= PERM_EXEC;
  return perm;
}

/**
 * The permission an access needs: W for a write, X alone for an instruction fetch (a read marked EXEC; a
 * write is never one), R for a data read. Only the execute-never controls remove execution (D8.4.1.2.3), so
 * an execute-only page (stage 1 EL0 with AP[1] = 0, stage 2 S2AP = 0b00) can be executed.
 */
export function permissionNeeded(access: number): number {
  if (access & PERM_WRITE) return PERM_WRITE;
  return access & PERM_EXEC ? PERM_EXEC : access & PERM_READ;
}

/**
 * Whether an access may go through `attrs`. `access` is PERM_* bits as in a translation request: READ or
 * WRITE, optionally EXEC (instruction fetch) and PRIV (privileged).
 */
export function vmsaAccessAllowed(attrs: VmsaLeafAttributes, access: number, hardwareDirty = false): boolean {
  const granted = vmsaPermissions(attrs, (access & PERM_PRIV) !== 0, hardwareDirty);
  const needed = permissionNeeded(access);
  return (needed & granted) === needed;
}
