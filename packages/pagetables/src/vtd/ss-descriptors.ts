/**
 * VT-d second-stage paging entries (VT-d §9.8, second-stage paging entries; §3.7 second-stage translation):
 * bit positions, the attributes a leaf decodes to, and the rights they grant.
 *
 * An entry has no present bit: it is present when R or W is set. The address field is bits 51:12 (a
 * 2 MiB leaf uses 51:21, a 1 GiB leaf 51:30; the bits between are reserved). Bit 2 was X (execute) up to
 * spec 4.0 and is reserved since. Bits 10, 61:52 and 63 are ignored (software may use them).
 */
import { PERM_EXEC, PERM_READ, PERM_WRITE } from '@iommukit/core';

// Low word.
export const VTD_SS_R = 1 << 0;
export const VTD_SS_W = 1 << 1;
/** Execute up to spec 4.0 (with ECAP.ERS and the PASID entry's SSEE); reserved since. */
export const VTD_SS_X = 1 << 2;
/** Extended memory type (bits 5:3) and ignore-PAT (bit 6): meaningful with ECAP.MTS only. */
export const VTD_SS_EMT_SHIFT = 3;
export const VTD_SS_IPAT = 1 << 6;
/** Page size in an SS-PDE (2 MiB) or SS-PDPTE (1 GiB). */
export const VTD_SS_PS = 1 << 7;
/** Accessed and dirty: set by hardware with the PASID entry's SSADE (second-stage A/D enable). */
export const VTD_SS_A = 1 << 8;
export const VTD_SS_D = 1 << 9;
/** Snoop: the access snoops the processor caches whatever the request said. */
export const VTD_SS_SNP = 1 << 11;
// High word.
/** Transient mapping (bit 62): a hint for the Device-TLB, ignored by the IOMMU's own walk. */
export const VTD_SS_HI_TM = 1 << 30;

/** Restrictions a table entry imposes on everything below it (`tableLimits`), OR-ed down a walk. */
export const VTD_SS_LIMIT_NO_READ = 1;
export const VTD_SS_LIMIT_NO_WRITE = 2;
/** X = 0 forbids execution below the entry (only where X means execute: the legacy switch). */
export const VTD_SS_LIMIT_NO_EXEC = 4;

/** The limits one second-stage entry imposes: R = 0 forbids reads below it, W = 0 writes, X = 0 execution (§3.7.1). */
export function vtdSsEntryLimits(lo: number): number {
  return (
    ((lo & VTD_SS_R) === 0 ? VTD_SS_LIMIT_NO_READ : 0) |
    ((lo & VTD_SS_W) === 0 ? VTD_SS_LIMIT_NO_WRITE : 0) |
    ((lo & VTD_SS_X) === 0 ? VTD_SS_LIMIT_NO_EXEC : 0)
  );
}

/** A leaf's attributes with the limits of the tables above it applied (the effective rights). */
export interface VtdSsLeafAttributes {
  /** R = 1 here and in every table above. */
  readonly readable: boolean;
  /** W = 1 here and in every table above. */
  readonly writable: boolean;
  /** X = 1 here and in every table above (meaningful with the legacy execute switch only). */
  readonly executable: boolean;
  readonly accessed: boolean;
  readonly dirty: boolean;
  readonly snoop: boolean;
  /** Extended memory type (EMT) and whether the PAT is ignored (IPAT). */
  readonly emt: number;
  readonly ipat: boolean;
  readonly transientMapping: boolean;
}

export function decodeVtdSsAttributes(lo: number, hi: number, limits: number): VtdSsLeafAttributes {
  const own = vtdSsEntryLimits(lo) | limits;
  return {
    readable: (own & VTD_SS_LIMIT_NO_READ) === 0,
    writable: (own & VTD_SS_LIMIT_NO_WRITE) === 0,
    executable: (own & VTD_SS_LIMIT_NO_EXEC) === 0,
    accessed: (lo & VTD_SS_A) !== 0,
    dirty: (lo & VTD_SS_D) !== 0,
    snoop: (lo & VTD_SS_SNP) !== 0,
    emt: (lo >>> VTD_SS_EMT_SHIFT) & 0b111,
    ipat: (lo & VTD_SS_IPAT) !== 0,
    transientMapping: (hi & VTD_SS_HI_TM) !== 0,
  };
}

/**
 * The PERM_READ/WRITE(/EXEC) bits a leaf grants. The second stage has no privilege levels; it grants execute
 * only with the legacy switch (`executeRequests`), where X means execute — else X is reserved and execute
 * requests are the first stage's business.
 */
export function vtdSsPermissions(attrs: VtdSsLeafAttributes, executeRequests: boolean): number {
  return (
    (attrs.readable ? PERM_READ : 0) |
    (attrs.writable ? PERM_WRITE : 0) |
    (executeRequests && attrs.executable ? PERM_EXEC : 0)
  );
}

/** `vtdSsPermissions` from a leaf's low word and the limits of the tables above it, decoding nothing. */
export function vtdSsLeafPermissions(lo: number, tableLimits: number, executeRequests: boolean): number {
  const own = vtdSsEntryLimits(lo) | tableLimits;
  return (
    ((own & VTD_SS_LIMIT_NO_READ) === 0 ? PERM_READ : 0) |
    ((own & VTD_SS_LIMIT_NO_WRITE) === 0 ? PERM_WRITE : 0) |
    (executeRequests && (own & VTD_SS_LIMIT_NO_EXEC) === 0 ? PERM_EXEC : 0)
  );
}
