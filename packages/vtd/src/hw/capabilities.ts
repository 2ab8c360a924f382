/**
 * The capability registers (VT-d §11.4.2 CAP_REG, §11.4.3 ECAP_REG): the model encodes them from its
 * {@link VtdFeatures}; a driver decodes what it read back into plain objects named after the spec fields.
 * Both directions go through one layout of absolute bit positions (bit 32 is bit 0 of the high half), so
 * the model and the driver cannot disagree on a field.
 *
 * Decoded values are the raw field contents, as the register holds them: MGAW is the width minus one,
 * NFR the record count minus one, FRO and IRO are offsets in 16-byte units, ND is the domain-ID code,
 * SAGAW and SLLPS are bit masks. Fields of features the model never implements are encoded 0: AFL
 * (advanced fault logging), ECMDS (enhanced commands), MTS (memory types and MTRRs), NWFS, EAFS, DIT, VCS
 * (virtual commands), RPS (RID_PASID), PMS (performance monitoring), RPRIVS. ECAP.MHMV is 15 with
 * interrupt remapping (any handle mask in an IEC invalidation), as QEMU and the Sapphire Rapids sample
 * report.
 *
 * Bit positions: Linux drivers/iommu/intel/iommu.h (cap_*, ecap_*), cross-checked with VirtualBox
 * include/VBox/iommu-intel.h (VTD_BF_CAP_REG_*, VTD_BF_ECAP_REG_*), which is also the only source found
 * for ECAP.ADMS (bit 52) and ECAP.RPRIVS (bit 53). CAP bit 23 (ISOCH, deprecated) is not decoded.
 */
import { entryReader, type ScalarLayoutOf, writeScalars } from '@iommukit/core';
import type { SsLevels, VtdFeatures } from './features.js';

/**
 * Where the fault recording registers start (CAP.FRO · 16). QEMU's intel-iommu uses 0x220, right after the
 * MTRR block; 256 records (the most CAP.NFR can describe) end at 0x1220. Real parts differ (0x100 on
 * Xeon E5 IIO units, 0x400 on Sapphire Rapids), which is why software reads FRO instead of assuming it.
 */
export const FAULT_RECORD_OFFSET = 0x220;

/** Where IVA_REG and IOTLB_REG sit (ECAP.IRO · 16): QEMU's 0xF0, the free slot below the MTRR block. */
export const IOTLB_REG_OFFSET = 0xf0;

/** ECAP.MHMV with interrupt remapping: every handle mask an IEC invalidation can carry (QEMU's value). */
export const MAX_HANDLE_MASK_VALUE = 15;

/** CAP_REG (§11.4.2), every field the spec defines, raw. */
export interface CapFields {
  /** Domain-ID code: 2^(4 + 2·ND) domains. */
  readonly nd: number;
  readonly afl: boolean;
  readonly rwbf: boolean;
  readonly plmr: boolean;
  readonly phmr: boolean;
  readonly cm: boolean;
  /** Bit 1: 3-level (39-bit), bit 2: 4-level (48-bit), bit 3: 5-level (57-bit) second-stage tables. */
  readonly sagaw: number;
  /** Maximum guest address width minus one. */
  readonly mgaw: number;
  readonly zlr: boolean;
  /** Fault recording registers' offset / 16. */
  readonly fro: number;
  /** Bit 0: 2 MiB, bit 1: 1 GiB second-stage pages. */
  readonly sllps: number;
  readonly psi: boolean;
  /** Fault recording registers minus one. */
  readonly nfr: number;
  readonly mamv: number;
  readonly dwd: boolean;
  readonly drd: boolean;
  readonly fl1gp: boolean;
  readonly pi: boolean;
  readonly fl5lp: boolean;
  readonly ecmds: boolean;
  readonly esirtps: boolean;
  readonly esrtps: boolean;
}

/** ECAP_REG (§11.4.3), every field the spec defines, raw. */
export interface EcapFields {
  readonly c: boolean;
  readonly qi: boolean;
  readonly dt: boolean;
  readonly ir: boolean;
  readonly eim: boolean;
  readonly pt: boolean;
  readonly sc: boolean;
  /** IVA_REG's offset / 16 (IOTLB_REG follows at +8). */
  readonly iro: number;
  readonly mhmv: number;
  readonly mts: boolean;
  readonly nest: boolean;
  readonly prs: boolean;
  readonly ers: boolean;
  readonly srs: boolean;
  readonly nwfs: boolean;
  readonly eafs: boolean;
  /** PASID width minus one (valid with `pasid`). */
  readonly pss: number;
  readonly pasid: boolean;
  readonly dit: boolean;
  readonly pds: boolean;
  readonly smts: boolean;
  readonly vcs: boolean;
  readonly slads: boolean;
  readonly slts: boolean;
  readonly flts: boolean;
  readonly smpwcs: boolean;
  readonly rps: boolean;
  readonly pms: boolean;
  readonly adms: boolean;
  readonly rprivs: boolean;
}

/** CAP_REG field positions, absolute bits of the 64-bit register. */
export const CAP_LAYOUT: ScalarLayoutOf<CapFields> = {
  nd: [0, 3],
  afl: [3, 1],
  rwbf: [4, 1],
  plmr: [5, 1],
  phmr: [6, 1],
  cm: [7, 1],
  sagaw: [8, 5],
  mgaw: [16, 6],
  zlr: [22, 1],
  fro: [24, 10],
  sllps: [34, 4],
  psi: [39, 1],
  nfr: [40, 8],
  mamv: [48, 6],
  dwd: [54, 1],
  drd: [55, 1],
  fl1gp: [56, 1],
  pi: [59, 1],
  fl5lp: [60, 1],
  ecmds: [61, 1],
  esirtps: [62, 1],
  esrtps: [63, 1],
};

/** ECAP_REG field positions, absolute bits of the 64-bit register. */
export const ECAP_LAYOUT: ScalarLayoutOf<EcapFields> = {
  c: [0, 1],
  qi: [1, 1],
  dt: [2, 1],
  ir: [3, 1],
  eim: [4, 1],
  pt: [6, 1],
  sc: [7, 1],
  iro: [8, 10],
  mhmv: [20, 4],
  mts: [25, 1],
  nest: [26, 1],
  prs: [29, 1],
  ers: [30, 1],
  srs: [31, 1],
  nwfs: [33, 1],
  eafs: [34, 1],
  pss: [35, 5],
  pasid: [40, 1],
  dit: [41, 1],
  pds: [42, 1],
  smts: [43, 1],
  vcs: [44, 1],
  slads: [45, 1],
  slts: [46, 1],
  flts: [47, 1],
  smpwcs: [48, 1],
  rps: [49, 1],
  pms: [51, 1],
  adms: [52, 1],
  rprivs: [53, 1],
};

/** A 64-bit register as its two unsigned 32-bit halves. */
export interface RegWords {
  readonly lo: number;
  readonly hi: number;
}

const readCap = entryReader<CapFields>({ scalars: CAP_LAYOUT, addresses: {} });
const readEcap = entryReader<EcapFields>({ scalars: ECAP_LAYOUT, addresses: {} });

/** CAP_REG decoded from the halves a driver read. */
export function decodeCap(lo: number, hi: number): CapFields {
  return readCap([lo >>> 0, hi >>> 0]);
}

/** ECAP_REG decoded from the halves a driver read. */
export function decodeEcap(lo: number, hi: number): EcapFields {
  return readEcap([lo >>> 0, hi >>> 0]);
}

/** The SAGAW bit of a second-stage depth: levels − 2 (§11.4.2). */
function sagawBit(levels: SsLevels): number {
  return levels - 2;
}

function encode<T>(layout: ScalarLayoutOf<T>, fields: T, register: string): RegWords {
  const words = new Uint32Array(2);
  writeScalars(words, layout, fields as Readonly<Record<string, unknown>>, register);
  return { lo: words[0]!, hi: words[1]! };
}

/** CAP_REG of a unit with these features. */
export function capWords(f: VtdFeatures): RegWords {
  return encode<CapFields>(
    CAP_LAYOUT,
    {
      nd: (f.domainIdBits - 4) / 2,
      afl: false,
      rwbf: f.writeBufferFlush,
      plmr: f.protectedLowMemory,
      phmr: f.protectedHighMemory,
      cm: f.cachingMode,
      sagaw: f.sagaw.reduce((mask, levels) => mask | (1 << sagawBit(levels)), 0),
      mgaw: f.mgawBits - 1,
      zlr: f.zeroLengthRead,
      fro: FAULT_RECORD_OFFSET / 16,
      sllps: (f.secondStage2MiB ? 1 : 0) | (f.secondStage1GiB ? 2 : 0),
      psi: f.pageSelectiveInvalidation,
      nfr: f.faultRecords - 1,
      mamv: f.maxAddressMask,
      dwd: f.drainWrites,
      drd: f.drainReads,
      fl1gp: f.firstStage1GiB,
      pi: f.postedInterrupts,
      fl5lp: f.firstStage5Level,
      ecmds: false,
      esirtps: f.sirtpInvalidates,
      esrtps: f.srtpInvalidates,
    },
    'CAP_REG',
  );
}

/** ECAP_REG of a unit with these features. */
export function ecapWords(f: VtdFeatures): RegWords {
  return encode<EcapFields>(
    ECAP_LAYOUT,
    {
      c: f.coherent,
      qi: f.queuedInvalidation,
      dt: f.deviceTlb,
      ir: f.interruptRemapping,
      eim: f.extendedInterruptMode,
      pt: f.passThrough,
      sc: f.snoopControl,
      iro: IOTLB_REG_OFFSET / 16,
      mhmv: f.interruptRemapping ? MAX_HANDLE_MASK_VALUE : 0,
      mts: false,
      nest: f.nesting,
      prs: f.pageRequests,
      ers: f.executeRequests,
      srs: f.supervisorRequests,
      nwfs: false,
      // The first stage sets EA when the PASID entry asks (EAFE), and scalable-mode context entries'
      // RID_PASID and RID_PRIV are honoured: ECAP.EAFS, RPS and RPRIVS say so (rev 5.10 §11.4.3).
      eafs: f.scalableMode && f.firstStage,
      pss: f.pasidBits > 0 ? f.pasidBits - 1 : 0,
      pasid: f.pasidBits > 0,
      dit: false,
      pds: f.pageRequestDrain,
      smts: f.scalableMode,
      vcs: false,
      slads: f.secondStageAccessDirty,
      slts: f.secondStage,
      flts: f.firstStage,
      smpwcs: f.scalableWalkCoherency,
      rps: f.scalableMode,
      pms: false,
      adms: f.abortDmaMode,
      rprivs: f.scalableMode,
    },
    'ECAP_REG',
  );
}
