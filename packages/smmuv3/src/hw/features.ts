/**
 * What one SMMUv3 instance implements: the options a config gives, resolved into the features the ID
 * registers advertise (SMMUv3 §6.3.1–6.3.6, IDR0–IDR5) and the structure checks consult. Everything that
 * differs between two SMMU implementations is here, so the model, its ID registers and its validity checks
 * cannot disagree.
 */

/** Output address sizes by IDR5.OAS / STE.S2PS / CD.IPS encoding (SMMUv3 §6.3.6). */
export const OAS_BITS = [32, 36, 40, 42, 44, 48, 52] as const;
export type OasBits = (typeof OAS_BITS)[number];

export interface Smmuv3Features {
  /** Stage 1 translation (IDR0.S1P). */
  readonly s1: boolean;
  /** Stage 2 translation (IDR0.S2P). Nesting needs both. */
  readonly s2: boolean;
  /** StreamID width (IDR1.SIDSIZE), 0..32. */
  readonly sidBits: number;
  /** SubstreamID width (IDR1.SSIDSIZE), 0..20; 0 means no substreams. */
  readonly ssidBits: number;
  /** Output address size (IDR5.OAS). */
  readonly oasBits: OasBits;
  /** Translation granules (IDR5.GRAN4K/16K/64K). */
  readonly granules: { readonly g4k: boolean; readonly g16k: boolean; readonly g64k: boolean };
  /** 2-level stream table (IDR0.ST_LEVEL = 1). */
  readonly twoLevelStreamTable: boolean;
  /** 2-level CD tables (IDR0.CD2L). */
  readonly twoLevelCdTable: boolean;
  /** 16-bit ASIDs (IDR0.ASID16); else 8-bit. */
  readonly asid16: boolean;
  /** 16-bit VMIDs (IDR0.VMID16); else 8-bit. */
  readonly vmid16: boolean;
  /** ATS (IDR0.ATS). */
  readonly ats: boolean;
  /** PRI (IDR0.PRI). */
  readonly pri: boolean;
  /** Stall model (IDR0.STALL_MODEL): stalls supported, not supported, or forced. */
  readonly stallModel: 'stall' | 'no-stall' | 'force-stall';
  /** Hardware table updates (IDR0.HTTU): none, access flag, or access flag and dirty state. */
  readonly httu: 'none' | 'access' | 'access-dirty';
  /** Range invalidation in TLBI commands (IDR3.RIL). */
  readonly rangeInvalidation: boolean;
  /** MSIs for queue and GERROR interrupts and CMD_SYNC completion (IDR0.MSI). */
  readonly msi: boolean;
  /** Wired interrupt lines (IDR0 does not advertise them; the platform does). */
  readonly wiredIrqs: boolean;
  /** Queue sizes as log2 of entries (IDR1.CMDQS/EVTQS/PRIQS), the largest the hardware accepts. */
  readonly cmdqLog2: number;
  readonly evtqLog2: number;
  readonly priqLog2: number;
}

/**
 * ID register fields the checks depend on that `Smmuv3Features` does not carry (yet). The defaults are
 * what this model implements; other values exist so the rules can be tested both ways.
 */
export interface Smmuv3IdrExtras {
  /** IDR0.Hyp: EL2 StreamWorlds (STE.STRW) and CMD_TLBI_EL2_*; RES0 unless both stages are implemented. */
  readonly hyp: boolean;
  /** IDR0.TERM_MODEL == 1: terminated transactions always abort, so CD.A must be 1 (§5.4.2). */
  readonly termModelAbort: boolean;
  /** IDR0.TTENDIAN: translation table endianness the walker supports. */
  readonly ttEndian: 'mixed' | 'little' | 'big';
  /** IDR0.NS1ATS: split-stage ATS (STE.EATS == 0b10) not supported. */
  readonly ns1ats: boolean;
}

export const DEFAULT_IDR_EXTRAS: Smmuv3IdrExtras = {
  hyp: false,
  termModelAbort: true,
  ttEndian: 'little',
  // Split-stage ATS needs ATS Translated transactions to go through stage 2, which endpoints here do not
  // send: the model says it lacks the feature, so STE.EATS == 0b10 is ILLEGAL (C_BAD_STE).
  ns1ats: true,
};
