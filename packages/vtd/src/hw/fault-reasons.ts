/**
 * Fault reason codes a VT-d remapping unit records in FRCD_REG.FR (VT-d specification §7.1.3 "Fault
 * Conditions and Remapping Hardware Behavior", Appendix "Non-Recoverable Fault Reason Encodings"), by name.
 * `FR` holds the DMA-remapping reasons (legacy 0x1–0xE, scalable mode 0x30–0x91), `IR_FR` the
 * interrupt-remapping ones (0x20–0x26, §5.1.4.1).
 *
 * Sources: the set of codes and their meaning follow the Linux list in drivers/iommu/intel/dmar.c
 * (`dma_remap_fault_reasons`, `dma_remap_sm_fault_reasons`, `irq_remap_fault_reasons`). Two codes Linux
 * does not list come from QEMU hw/i386/intel_iommu_internal.h: 0xE (output address in the interrupt range,
 * spec condition LGN.4) and 0x91 (first-stage A/D update failed, condition SFS.10). Names are this model's.
 *
 * Qualified faults (§7.1.1) are the ones a set FPD in the context, PASID-directory or PASID entry used by
 * the request suppresses; unqualified faults are always recorded. See `isQualified` for which answers a
 * source confirms and which are inferred.
 */

/** DMA-remapping fault reasons, by name. */
export const FR = {
  // --- Legacy mode (RTADDR.TTM = 00) ---
  /** The root entry's P field is 0. */
  ROOT_NOT_PRESENT: 0x1,
  /** The context entry's P field is 0. */
  CONTEXT_NOT_PRESENT: 0x2,
  /** A present context entry is programmed with a value the unit does not support (TT, AW, SLPTPTR). */
  CONTEXT_INVALID: 0x3,
  /** The input address is above 2^X − 1, X the smaller of MGAW and the context entry's AGAW. */
  ADDRESS_BEYOND_MGAW: 0x4,
  /** A write with no write permission in the second-stage entries. */
  WRITE_DENIED: 0x5,
  /** A read with no read permission in the second-stage entries. */
  READ_DENIED: 0x6,
  /** Reading a second-stage paging entry (other than the first one) failed. */
  PAGING_ENTRY_ACCESS: 0x7,
  /** Reading the root entry failed (root table address invalid). */
  ROOT_TABLE_ACCESS: 0x8,
  /** Reading the context entry failed (context-table pointer invalid). */
  CONTEXT_TABLE_ACCESS: 0x9,
  /** A present root entry has a reserved field set. */
  ROOT_RESERVED: 0xa,
  /** A present context entry has a reserved field set. */
  CONTEXT_RESERVED: 0xb,
  /** A present second-stage paging entry has a reserved field set. */
  PAGING_ENTRY_RESERVED: 0xc,
  /** The context entry's TT blocks this kind of request (e.g. a translation request with TT = 00). */
  TT_BLOCKED: 0xd,
  /** The translated address lies in the interrupt range 0xFEEx_xxxx (LGN.4; QEMU, not in Linux's list). */
  INTERRUPT_ADDRESS: 0xe,

  // --- Scalable mode (RTADDR.TTM = 01) ---
  /** RTADDR holds an invalid root table address. */
  SM_ROOT_TABLE_ADDRESS: 0x30,
  /** A request with PASID while RTADDR.TTM = 00 (legacy). */
  SM_TTM0_PASID_REQUEST: 0x31,
  /** A page request while RTADDR.TTM = 00 (legacy). */
  SM_TTM0_PAGE_REQUEST: 0x32,
  /** Reading the scalable-mode root entry failed. */
  SM_ROOT_ACCESS: 0x38,
  /** The used half of the scalable-mode root entry (LP or UP) is 0. */
  SM_ROOT_NOT_PRESENT: 0x39,
  /** The used half of a present scalable-mode root entry has a reserved field set. */
  SM_ROOT_RESERVED: 0x3a,
  /** Reading the scalable-mode context entry failed. */
  SM_CONTEXT_ACCESS: 0x40,
  /** The scalable-mode context entry's P field is 0. */
  SM_CONTEXT_NOT_PRESENT: 0x41,
  /** A present scalable-mode context entry has a reserved field set. */
  SM_CONTEXT_RESERVED: 0x42,
  /** A present scalable-mode context entry is programmed with an unsupported value. */
  SM_CONTEXT_INVALID: 0x43,
  /** A translation request (ATS) through a context entry with DTE = 0. */
  SM_CONTEXT_DTE_CLEAR: 0x44,
  /** A request with PASID through a context entry with PASIDE = 0. */
  SM_CONTEXT_PASIDE_CLEAR: 0x45,
  /** The request's PASID is beyond the PASID directory the context entry's PDTS sizes. */
  SM_CONTEXT_PASID_TOO_LARGE: 0x46,
  /** A page request through a context entry with PRE = 0. */
  SM_CONTEXT_PRE_CLEAR: 0x47,
  /** The context entry's RID_PASID cannot be used for a request without PASID. */
  SM_CONTEXT_RID_PASID: 0x48,
  /** Reading the PASID directory entry failed. */
  SM_PASID_DIR_ACCESS: 0x50,
  /** The PASID directory entry's P field is 0. */
  SM_PASID_DIR_NOT_PRESENT: 0x51,
  /** A present PASID directory entry has a reserved field set. */
  SM_PASID_DIR_RESERVED: 0x52,
  /** Reading the PASID table entry failed. */
  SM_PASID_ACCESS: 0x58,
  /** The PASID table entry's P field is 0. */
  SM_PASID_NOT_PRESENT: 0x59,
  /** A present PASID table entry has a reserved field set. */
  SM_PASID_RESERVED: 0x5a,
  /** A present PASID table entry is programmed with an unsupported value (PGTT, AW, FLPM). */
  SM_PASID_INVALID: 0x5b,
  /** An execute request through a PASID entry with ERE = 0. */
  SM_PASID_ERE_CLEAR: 0x5c,
  /** A supervisor request through a PASID entry with SRE = 0. */
  SM_PASID_SRE_CLEAR: 0x5d,
  /** Reading a first-stage paging entry (other than the first one) failed. */
  SM_FS_ACCESS: 0x70,
  /** A first-stage paging entry's P field is 0. */
  SM_FS_NOT_PRESENT: 0x71,
  /** A present first-stage paging entry has a reserved field set. */
  SM_FS_RESERVED: 0x72,
  /** Reading the first first-stage entry (FL-PML4E or PML5E, through FSPTPTR) failed. */
  SM_FS_ROOT_ACCESS: 0x73,
  /** Nested: a first-stage entry's address is beyond the second stage's MGAW. */
  SM_NESTED_FS_BEYOND_MGAW: 0x74,
  /** Nested: the second stage denies reading the first first-stage entry. */
  SM_NESTED_FS_ROOT_READ: 0x75,
  /** Nested: the second stage denies reading a first-stage paging entry. */
  SM_NESTED_FS_READ: 0x76,
  /** Nested: the second stage denies the A/D update of a first-stage paging entry. */
  SM_NESTED_FS_WRITE: 0x77,
  /** Reading a second-stage paging entry failed. */
  SM_SS_ACCESS: 0x78,
  /** A second-stage paging entry's R/W permission stops the walk (R = W = 0 reads as not present). */
  SM_SS_PERMISSION: 0x79,
  /** A present second-stage paging entry has a reserved field set. */
  SM_SS_RESERVED: 0x7a,
  /** The PASID entry's SSPTPTR cannot be walked. */
  SM_SSPTPTR_INVALID: 0x7b,
  /** A second-stage A/D update is needed while the walk is non-snooped. */
  SM_SS_AD_NO_SNOOP: 0x7c,
  /** The first-stage input address is not canonical. */
  SM_NON_CANONICAL: 0x80,
  /** A user request reached a first-stage page with U/S = 0. */
  SM_USER_SUPERVISOR: 0x81,
  /** An execute request (ER = 1) to a page without execute permission. */
  SM_EXECUTE_DENIED: 0x82,
  /** The input address is beyond what the unit can translate. */
  SM_ADDRESS_BEYOND_MAX: 0x83,
  /** A second-stage entry's output address is beyond the host address width. */
  SM_SS_OUTPUT_BEYOND_MAX: 0x84,
  /** A write or atomic request without write permission. */
  SM_WRITE_DENIED: 0x85,
  /** A read or atomic request without read permission. */
  SM_READ_DENIED: 0x86,
  /** The translated address lies in the interrupt range 0xFEEx_xxxx (SGN.8). */
  SM_INTERRUPT_ADDRESS: 0x87,
  /** A first-stage A/D update is needed while the walk is non-snooped. */
  SM_FS_AD_NO_SNOOP: 0x90,
  /** A first-stage A/D update failed (SFS.10; QEMU, not in Linux's list). */
  SM_FS_AD_UPDATE_FAILED: 0x91,
} as const;

export type FaultReason = (typeof FR)[keyof typeof FR];

/** What a structure check returns: 0 when the structure is usable, else the reason the unit records. */
export type FaultCheck = 0 | FaultReason;

/** Interrupt-remapping fault reasons (§5.1.4.1), by name. */
export const IR_FR = {
  /** The interrupt request has a reserved field set. */
  REQUEST_RESERVED: 0x20,
  /** The interrupt index is beyond the interrupt remapping table (IRTA.S). */
  INDEX_BEYOND_TABLE: 0x21,
  /** The IRTE's P field is 0. */
  IRTE_NOT_PRESENT: 0x22,
  /** Reading the IRTE from the table at IRTA failed. */
  IRTE_ACCESS_ERROR: 0x23,
  /** A present IRTE has a reserved field set. */
  IRTE_RESERVED: 0x24,
  /** A compatibility-format interrupt was blocked (IRTA.EIME = 1 or GSTS.CFIS = 0). */
  COMPAT_BLOCKED: 0x25,
  /** The request's source-id fails the IRTE's SVT/SQ/SID verification. */
  SOURCE_INVALID: 0x26,
  /**
   * Posted interrupts: reading the posted-interrupt descriptor failed, or it has a reserved control bit set
   * (not in Linux's list: VirtualBox VTDINTRFAULT_PID_READ_FAILED and VTDINTRFAULT_PID_RSVD).
   */
  PID_ACCESS_ERROR: 0x27,
  PID_RESERVED: 0x28,
} as const;

export type IrFaultReason = (typeof IR_FR)[keyof typeof IR_FR];

const NAMES = new Map<number, string>(
  [...Object.entries(FR), ...Object.entries(IR_FR)].map(([name, code]) => [code, name]),
);

/** The name of a fault reason (its key in `FR` or `IR_FR`), or `UNKNOWN_0x…` for an unassigned code. */
export function faultReasonName(code: number): string {
  return NAMES.get(code) ?? `UNKNOWN_0x${code.toString(16).padStart(2, '0')}`;
}

/**
 * Qualified DMA-remapping reasons whose qualification QEMU's `vtd_qualified_faults` table states
 * (hw/i386/intel_iommu.c), which follows the spec's "Qualified" column for the codes QEMU reports.
 */
const QUALIFIED_CONFIRMED: ReadonlySet<number> = new Set([
  FR.CONTEXT_NOT_PRESENT,
  FR.CONTEXT_INVALID,
  FR.ADDRESS_BEYOND_MGAW,
  FR.WRITE_DENIED,
  FR.READ_DENIED,
  FR.PAGING_ENTRY_ACCESS,
  FR.PAGING_ENTRY_RESERVED,
  FR.TT_BLOCKED,
  FR.INTERRUPT_ADDRESS,
  FR.SM_PASID_DIR_NOT_PRESENT,
  FR.SM_PASID_NOT_PRESENT,
  FR.SM_PASID_INVALID,
  FR.SM_FS_ACCESS,
  FR.SM_FS_NOT_PRESENT,
  FR.SM_FS_RESERVED,
  FR.SM_FS_ROOT_ACCESS,
  FR.SM_NON_CANONICAL,
  FR.SM_USER_SUPERVISOR,
  FR.SM_WRITE_DENIED,
  FR.SM_INTERRUPT_ADDRESS,
  FR.SM_FS_AD_UPDATE_FAILED,
]);

/**
 * Unqualified reasons QEMU states (root-table and entry-table access failures, root P = 0, root and
 * context reserved fields; 0xB by omission from the table, like every unlisted code).
 */
const UNQUALIFIED_CONFIRMED: ReadonlySet<number> = new Set([
  FR.ROOT_NOT_PRESENT,
  FR.ROOT_TABLE_ACCESS,
  FR.CONTEXT_TABLE_ACCESS,
  FR.ROOT_RESERVED,
  FR.CONTEXT_RESERVED,
  FR.SM_PASID_DIR_ACCESS,
  FR.SM_PASID_ACCESS,
]);

/**
 * Unqualified reasons inferred from the pattern of the confirmed ones (no stored source states them):
 * everything found before a context entry is known (RTADDR, root entry), failing to read an entry of the
 * context/PASID-directory/PASID tables, and reserved fields in those entries. Every other DMA-remapping
 * reason — not-present and invalid entries, request-type checks, paging-structure faults — is inferred
 * qualified, as its confirmed counterparts are.
 */
const UNQUALIFIED_INFERRED: ReadonlySet<number> = new Set([
  FR.SM_ROOT_TABLE_ADDRESS,
  FR.SM_TTM0_PASID_REQUEST,
  FR.SM_TTM0_PAGE_REQUEST,
  FR.SM_ROOT_ACCESS,
  FR.SM_ROOT_NOT_PRESENT,
  FR.SM_ROOT_RESERVED,
  FR.SM_CONTEXT_ACCESS,
  FR.SM_CONTEXT_RESERVED,
  FR.SM_PASID_DIR_RESERVED,
  FR.SM_PASID_RESERVED,
]);

const DMA_REASONS: ReadonlySet<number> = new Set(Object.values(FR));

/**
 * Whether a DMA-remapping fault is qualified: suppressed, not recorded, when the FPD field of the context
 * entry (or, in scalable mode, of the PASID-directory or PASID entry) that processed the request is 1.
 * False for unqualified and unknown codes, and for interrupt-remapping reasons (their suppression is the
 * IRTE's FPD, outside this table).
 */
export function isQualified(code: number): boolean {
  return DMA_REASONS.has(code) && !UNQUALIFIED_CONFIRMED.has(code) && !UNQUALIFIED_INFERRED.has(code);
}

/** Whether a source confirms `isQualified(code)` for a DMA-remapping reason (false: inferred). */
export function isQualificationConfirmed(code: number): boolean {
  return QUALIFIED_CONFIRMED.has(code) || UNQUALIFIED_CONFIRMED.has(code);
}
