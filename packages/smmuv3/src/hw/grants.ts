/**
 * Access permissions as the SMMU checks them (IHI 0070 §13.4, Arm ARM D8.4), on core's stage grants (the
 * rights a leaf gives privileged and unprivileged accesses, one number per stage in a TLB entry): what a
 * VMSAv8-64 leaf grants, whether grants allow an access, the access a transaction carries, and what an ATS
 * completion grants.
 */
import {
  grantedTo,
  NO_PASID,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  stageGrants,
} from '@iommukit/core';
import { vmsaLeafPermissions } from '@iommukit/pagetables';

const RWX = PERM_READ | PERM_WRITE | PERM_EXEC;

/**
 * What the VMSAv8-64 leaf `lo`/`hi` grants at `stage` under `tableLimits`, with hardware dirty-state
 * management on or off.
 */
export function leafGrants(
  stage: 1 | 2,
  lo: number,
  hi: number,
  tableLimits: number,
  hardwareDirty: boolean,
): number {
  return stageGrants(
    vmsaLeafPermissions(stage, lo, hi, tableLimits, true, hardwareDirty),
    vmsaLeafPermissions(stage, lo, hi, tableLimits, false, hardwareDirty),
  );
}

/**
 * Whether `grants` allow `access` (an {@link inputAccess}: a write carries no EXEC) at its privilege: a data
 * read needs R, a write W and an instruction fetch X alone ("a normal (non-ATS) transaction for Exe == 1
 * will succeed to an XO translation", IHI 0070 §13.7.1; on the PE only execute-never removes execution,
 * Arm ARM D8.4.1.2.3). The rule of `permissionNeeded`, written out: this runs on every TLB hit.
 */
export function grantsAllow(grants: number, access: number): boolean {
  const need = access & PERM_EXEC ? PERM_EXEC : access & RWX;
  return (grantedTo(grants, access) & need) === need;
}

/**
 * The access the SMMU checks, from what a transaction carries (§13.7, §13.1.2). Every master of the model
 * is a PCIe function, whose Priv and Exe travel only in the PASID TLP prefix: a transaction without a
 * SubstreamID is Data, Unprivileged (IDR1.ATTR_PERMS_OVR == 0, so no STE.PRIVCFG/INSTCFG override). Writes
 * are Data whatever the device marks them: only a read can be an instruction fetch.
 */
export function inputAccess(access: number, pasid: number): number {
  if (pasid === NO_PASID) return access & ~(PERM_PRIV | PERM_EXEC);
  return access & PERM_WRITE ? access & ~PERM_EXEC : access;
}

/**
 * What an ATS Translation Completion grants from `perm`, the R/W/X a translation gives the request's
 * privilege level (§13.7.1): R; W only for a request with NW == 0 (with NW == 1 it may be withheld, and is,
 * so no write reaches a page whose dirty state was never set); Exe only when requested, and only with R
 * ("Exe implies R in an ATS response", §13.7): an execute-only page grants an ATS request nothing, though
 * an untranslated fetch from it succeeds (`grantsAllow`).
 */
export function atsCompletionGrant(perm: number, access: number): number {
  const read = perm & PERM_READ;
  const write = access & PERM_WRITE ? perm & PERM_WRITE : 0;
  const exec = access & PERM_EXEC && read ? perm & PERM_EXEC : 0;
  return read | write | exec;
}
