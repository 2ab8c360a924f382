/**
 * Access permissions as the translator checks them and the TLB keeps them (IHI 0070 §13.4, Arm ARM D8.4):
 * a stage's "grants" are the PERM_READ/WRITE/EXEC bits its leaf gives a privileged access (bits 3:0) and an
 * unprivileged one (bits 7:4). A TLB entry holds one such number per stage, not the verdict on the access
 * that cached it, so a hit checks every access's PnU, InD and RnW with a shift and a mask.
 */
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { type VmsaLeafAttributes, vmsaPermissions } from '@iommukit/pagetables';

const RWX = PERM_READ | PERM_WRITE | PERM_EXEC;

/** Grants from what a stage gives privileged and unprivileged accesses (PERM_* bits). */
export function stageGrants(privileged: number, unprivileged: number): number {
  return (privileged & RWX) | ((unprivileged & RWX) << 4);
}

/** The grants of a stage that does not translate (stage 2 of a stage-1-only entry, and the reverse). */
export const ALL_GRANTS = stageGrants(RWX, RWX);

/** What a VMSAv8-64 leaf grants, with hardware dirty-state management on or off. */
export function leafGrants(attrs: VmsaLeafAttributes, hardwareDirty: boolean): number {
  return stageGrants(
    vmsaPermissions(attrs, true, hardwareDirty),
    vmsaPermissions(attrs, false, hardwareDirty),
  );
}

/** The PERM_READ/WRITE/EXEC bits `grants` give an access with `access`'s privilege (PERM_PRIV). */
export function grantedTo(grants: number, access: number): number {
  return (access & PERM_PRIV ? grants : grants >>> 4) & RWX;
}

/** Whether `grants` allow every PERM_READ/WRITE/EXEC bit of `access` at its privilege. */
export function grantsAllow(grants: number, access: number): boolean {
  const need = access & RWX;
  return (grantedTo(grants, access) & need) === need;
}

/** Writes are Data whatever the device marks them: only a read can be an instruction fetch (§13.1.2). */
export function inputAccess(access: number): number {
  return access & PERM_WRITE ? access & ~PERM_EXEC : access;
}

/**
 * What an ATS Translation Completion grants from `perm`, the R/W/X a translation gives the request's
 * privilege level (§13.7.1): R; W only for a request with NW == 0 (with NW == 1 it may be withheld, and is,
 * so no write reaches a page whose dirty state was never set); Exe only when requested, and only with R.
 */
export function atsCompletionGrant(perm: number, access: number): number {
  const read = perm & PERM_READ;
  const write = access & PERM_WRITE ? perm & PERM_WRITE : 0;
  const exec = access & PERM_EXEC && read ? perm & PERM_EXEC : 0;
  return read | write | exec;
}
