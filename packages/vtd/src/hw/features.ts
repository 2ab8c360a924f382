/**
 * What one VT-d remapping unit implements: the instance options resolved into the features the capability
 * registers advertise (VT-d specification §11.4.2 CAP_REG, §11.4.3 ECAP_REG) and the structure checks,
 * the translation pipeline and the invalidation interface consult. Everything that differs between two
 * implementations is here, so the model, its capability registers and its checks cannot disagree.
 */

/** Second-stage table depths by the SAGAW bit that advertises them (§11.4.2: bit 1 39-bit, 2 48-bit, 3 57-bit). */
export const SS_LEVELS = [3, 4, 5] as const;
export type SsLevels = (typeof SS_LEVELS)[number];

export interface VtdFeatures {
  /** VER_REG: architecture version the unit reports (major 7:4, minor 3:0). */
  readonly version: { readonly major: number; readonly minor: number };

  // --- CAP_REG (§11.4.2) ---
  /** Domain-ID width in bits: CAP.ND encodes 2^(4 + 2·ND) domains, so 4, 6, 8, 10, 12, 14 or 16. */
  readonly domainIdBits: 4 | 6 | 8 | 10 | 12 | 14 | 16;
  /** CAP.RWBF: software must flush the write buffer (GCMD.WBF) after changing a structure. */
  readonly writeBufferFlush: boolean;
  /** CAP.PLMR / CAP.PHMR: protected low / high memory regions. */
  readonly protectedLowMemory: boolean;
  readonly protectedHighMemory: boolean;
  /** CAP.CM: caching mode (not-present and erroneous entries may be cached; invalid ones tagged DID 0). */
  readonly cachingMode: boolean;
  /** CAP.SAGAW: the second-stage depths (legacy context AW, scalable PASID entry AW) the unit walks. */
  readonly sagaw: readonly SsLevels[];
  /** CAP.MGAW + 1: the widest input (guest) address the unit translates, in bits. */
  readonly mgawBits: number;
  /** CAP.ZLR: zero-length reads are supported. */
  readonly zeroLengthRead: boolean;
  /** CAP.NFR + 1: number of fault recording registers. */
  readonly faultRecords: number;
  /** CAP.PSI: page-selective IOTLB invalidation (else a PSI request is performed as domain-selective). */
  readonly pageSelectiveInvalidation: boolean;
  /** CAP.MAMV: the largest address mask (AM) a page-selective invalidation accepts. */
  readonly maxAddressMask: number;
  /** CAP.SLLPS: second-stage large pages, 2 MiB (bit 0) and 1 GiB (bit 1). */
  readonly secondStage2MiB: boolean;
  readonly secondStage1GiB: boolean;
  /** CAP.DWD / CAP.DRD: write and read draining on IOTLB invalidation. */
  readonly drainWrites: boolean;
  readonly drainReads: boolean;
  /** CAP.FL1GP: first-stage 1 GiB pages. */
  readonly firstStage1GiB: boolean;
  /** CAP.FL5LP: first-stage 5-level paging (PASID entry FLPM = 1). */
  readonly firstStage5Level: boolean;
  /** CAP.PI: posted interrupts. */
  readonly postedInterrupts: boolean;
  /** CAP.ESRTPS / CAP.ESIRTPS: SRTP / SIRTP also invalidate the caches they make stale. */
  readonly srtpInvalidates: boolean;
  readonly sirtpInvalidates: boolean;

  // --- ECAP_REG (§11.4.3) ---
  /** ECAP.C: page-walk coherency (legacy mode). */
  readonly coherent: boolean;
  /** ECAP.QI: queued invalidation. */
  readonly queuedInvalidation: boolean;
  /** ECAP.DT: device-TLBs (PCIe ATS). */
  readonly deviceTlb: boolean;
  /** ECAP.IR / ECAP.EIM: interrupt remapping, and x2APIC (32-bit) destinations. */
  readonly interruptRemapping: boolean;
  readonly extendedInterruptMode: boolean;
  /** ECAP.PT: pass-through translation type. */
  readonly passThrough: boolean;
  /** ECAP.SC: snoop control (the SNP bit of second-stage entries, PGSNP). */
  readonly snoopControl: boolean;
  /** ECAP.NEST: nested translation (PGTT = nested). */
  readonly nesting: boolean;
  /** ECAP.PRS: page requests (PRI) and the page request queue. */
  readonly pageRequests: boolean;
  /** ECAP.ERS / ECAP.SRS: execute and supervisor requests. */
  readonly executeRequests: boolean;
  readonly supervisorRequests: boolean;
  /** ECAP.PASID with ECAP.PSS + 1: PASID width in bits; 0 when PASIDs are not supported. */
  readonly pasidBits: number;
  /** ECAP.SMTS: scalable-mode translation (RTADDR.TTM = 01). */
  readonly scalableMode: boolean;
  /** ECAP.FLTS / ECAP.SLTS: first- and second-stage translation in scalable mode. */
  readonly firstStage: boolean;
  readonly secondStage: boolean;
  /** ECAP.SLADS: second-stage accessed/dirty (PASID entry SSADE), for dirty tracking. */
  readonly secondStageAccessDirty: boolean;
  /** ECAP.SMPWCS: page-walk coherency in scalable mode. */
  readonly scalableWalkCoherency: boolean;
  /** ECAP.ADMS: abort-DMA mode (RTADDR.TTM = 11). */
  readonly abortDmaMode: boolean;
  /** ECAP.PDS: page-request drain in invalidation-wait descriptors. */
  readonly pageRequestDrain: boolean;

  // --- Platform (ACPI DMAR), not a register ---
  /** Host address width: output addresses at or above 2^hostAddressBits are out of range. */
  readonly hostAddressBits: number;
}
