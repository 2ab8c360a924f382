/**
 * x86-64 paging-structure entries (Intel SDM Vol. 3A §4.5, Tables 4-15 to 4-20; the same layout is the VT-d
 * first-stage table, VT-d §3.6 / §9.7, and the AMD IOMMU v2 guest table): bit positions, the attributes a
 * leaf decodes to, and what they grant.
 *
 * A descriptor is its two 32-bit halves, `lo` (bits 31:0) and `hi` (bits 63:32). The address field is bits
 * 51:12 (a 2 MiB leaf uses 51:21, a 1 GiB leaf 51:30; the bits between are reserved, and bit 12 is PAT).
 */
import { PERM_EXEC, PERM_READ, PERM_WRITE } from '@iommukit/core';

// Low word.
export const X86_P = 1 << 0;
export const X86_RW = 1 << 1;
export const X86_US = 1 << 2;
export const X86_PWT = 1 << 3;
export const X86_PCD = 1 << 4;
export const X86_A = 1 << 5;
export const X86_D = 1 << 6;
/** Page size in a PDE or PDPTE (a leaf); PAT in a PTE. */
export const X86_PS = 1 << 7;
export const X86_PAT_4K = 1 << 7;
export const X86_G = 1 << 8;
/** VT-d first stage: extended-accessed, set by hardware with the PASID entry's EAFE (VT-d §3.6.2). */
export const X86_EA = 1 << 10;
/** PAT of a 2 MiB or 1 GiB leaf. */
export const X86_PAT_LARGE = 1 << 12;
// High word.
/** Execute-disable, bit 63 (reserved when the table's owner does not enable it). */
export const X86_HI_XD = 0x8000_0000;

/** The attribute bits a leaf template carries, in the 4 KiB PTE's positions (PAT at bit 7). */
export const X86_TEMPLATE_LO = X86_RW | X86_US | X86_PWT | X86_PCD | X86_A | X86_D | X86_PAT_4K | X86_G;

/** Restrictions a table entry imposes on everything below it (`tableLimits`), OR-ed down a walk. */
export const LIMIT_READ_ONLY = 1;
export const LIMIT_SUPERVISOR = 2;
export const LIMIT_NO_EXEC = 4;

/** The limits one paging-structure entry imposes (R/W = 0, U/S = 0, XD = 1: §4.6). */
export function x86EntryLimits(lo: number, hi: number): number {
  return (
    ((lo & X86_RW) === 0 ? LIMIT_READ_ONLY : 0) |
    ((lo & X86_US) === 0 ? LIMIT_SUPERVISOR : 0) |
    ((hi & X86_HI_XD) !== 0 ? LIMIT_NO_EXEC : 0)
  );
}

/** A leaf's attributes with the limits of the tables above it applied (the effective rights, §4.6). */
export interface X86LeafAttributes {
  /** R/W = 1 here and in every table above. */
  readonly writable: boolean;
  /** U/S = 1 here and in every table above: user-mode (unprivileged) accesses are allowed. */
  readonly user: boolean;
  /** XD = 1 here or in any table above. */
  readonly executeDisable: boolean;
  readonly accessed: boolean;
  readonly dirty: boolean;
  readonly global: boolean;
  readonly pwt: boolean;
  readonly pcd: boolean;
  readonly pat: boolean;
  /** VT-d's extended-accessed bit. */
  readonly extendedAccessed: boolean;
}

export function decodeX86Attributes(
  lo: number,
  hi: number,
  level: number,
  limits: number,
): X86LeafAttributes {
  const own = x86EntryLimits(lo, hi) | limits;
  return {
    writable: (own & LIMIT_READ_ONLY) === 0,
    user: (own & LIMIT_SUPERVISOR) === 0,
    executeDisable: (own & LIMIT_NO_EXEC) !== 0,
    accessed: (lo & X86_A) !== 0,
    dirty: (lo & X86_D) !== 0,
    global: (lo & X86_G) !== 0,
    pwt: (lo & X86_PWT) !== 0,
    pcd: (lo & X86_PCD) !== 0,
    pat: (lo & (level === 1 ? X86_PAT_4K : X86_PAT_LARGE)) !== 0,
    extendedAccessed: (lo & X86_EA) !== 0,
  };
}

/** How a table's owner configured the checks a walk applies (CR0.WP, EFER.NXE or their IOMMU equivalents). */
export interface X86AccessRules {
  /**
   * Supervisor writes honour R/W (CR0.WP = 1; VT-d's PASID-entry WPE). Off, a privileged access may write a
   * read-only page.
   */
  readonly supervisorWriteProtect: boolean;
}

/**
 * The PERM_READ/WRITE/EXEC bits a leaf grants (SDM §4.6.1): a present page is readable; a user access needs
 * U/S = 1 all the way down; a write needs R/W = 1 all the way down, except a supervisor write without write
 * protection; execution needs XD = 0 everywhere. `hardwareDirty` changes nothing: the D bit never limits a
 * write.
 */
export function x86Permissions(attrs: X86LeafAttributes, privileged: boolean, rules: X86AccessRules): number {
  return x86LimitPermissions(
    (attrs.writable ? 0 : LIMIT_READ_ONLY) |
      (attrs.user ? 0 : LIMIT_SUPERVISOR) |
      (attrs.executeDisable ? LIMIT_NO_EXEC : 0),
    privileged,
    rules,
  );
}

/**
 * `x86Permissions` from a leaf's words and the limits of the tables above it, decoding nothing: what a walk
 * that must not allocate uses.
 */
export function x86LeafPermissions(
  lo: number,
  hi: number,
  tableLimits: number,
  privileged: boolean,
  rules: X86AccessRules,
): number {
  return x86LimitPermissions(x86EntryLimits(lo, hi) | tableLimits, privileged, rules);
}

function x86LimitPermissions(limits: number, privileged: boolean, rules: X86AccessRules): number {
  if (!privileged && (limits & LIMIT_SUPERVISOR) !== 0) return 0;
  const write = (limits & LIMIT_READ_ONLY) === 0 || (privileged && !rules.supervisorWriteProtect);
  return PERM_READ | (write ? PERM_WRITE : 0) | ((limits & LIMIT_NO_EXEC) !== 0 ? 0 : PERM_EXEC);
}
