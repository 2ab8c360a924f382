/**
 * Access permissions as every vendor's translator checks them and its TLB keeps them: a stage's "grants"
 * are the PERM_READ/WRITE/EXEC bits its leaf gives a privileged (supervisor) access, in bits 3:0, and an
 * unprivileged (user) one, in bits 7:4. A TLB entry holds one such number per stage, not the verdict on the
 * access that cached it, so a hit checks any later access's privilege and type with a shift and a mask.
 */
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from './translation.js';

const RWX = PERM_READ | PERM_WRITE | PERM_EXEC;

/** Grants from what a stage gives privileged and unprivileged accesses (PERM_* bits). */
export function stageGrants(privileged: number, unprivileged: number): number {
  return (privileged & RWX) | ((unprivileged & RWX) << 4);
}

/** The grants of a stage that does not translate: everything, at both privilege levels. */
export const ALL_GRANTS = stageGrants(RWX, RWX);

/** The PERM_READ/WRITE/EXEC bits `grants` give an access with `access`'s privilege (PERM_PRIV). */
export function grantedTo(grants: number, access: number): number {
  return ((access & PERM_PRIV) !== 0 ? grants : grants >>> 4) & RWX;
}
