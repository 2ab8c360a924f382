/**
 * The capability registers of an AMD IOMMU (AMD IOMMU Specification, pub. 48882 rev 3.x, §3.4 "IOMMU MMIO
 * Registers": the Extended Feature Register, EFR, at 0030h and the Extended Feature 2 Register, EFR2, at
 * 01A0h; §3.2 "IOMMU PCI Configuration Registers": the IOMMU Capability Header): the model encodes them
 * from its {@link AmdFeatures}; a driver decodes what it read into plain objects named after the spec
 * fields. Both directions go through one layout of absolute bit positions (bit 32 is bit 0 of the high
 * half), so the model and the driver cannot disagree on a field.
 *
 * Decoded values are the raw field contents: HATS 0/1/2 = 4/5/6-level host tables (3 reserved; Linux then
 * disables host translation), GATS 0/1 = 4/5-level guest tables, GLXSup 0/1/2 = 1/2/3-level GCR3 tables,
 * PASmax = PASID width − 1, NumIntRemapSup 0/1 = 512/2048 IRTEs per device. Fields of features the model
 * never implements are encoded 0: PreFSup (PREFETCH_IOMMU_PAGES), PCSup (performance counters, which would
 * widen the MMIO window to 512 KiB), SMI filters, dual PPR and event logs, USSup, segmented device tables,
 * PPR early overflow and auto response, MARC, BlkStopMrk, PerfOpt, AttrFW, InvIotlbTypeSup, GAUpdateDisSup,
 * ForcePhyDestSup, SNPSup; in EFR2 SEV-TIO, TMPM, GAPPIDis, SNPAVICSup and HTRangeIgnore.
 *
 * Bit positions: Linux drivers/iommu/amd/amd_iommu_types.h (FEATURE_*: PreF..PC 0–9, HATS 11:10, GATS
 * 13:12, GLX 15:14, GAM_VAPIC 21, PASMAX 36:32, GIOSUP 48, HASUP 49, EPHSUP 50, HDSUP 52, SNP 63; EFR2
 * SEVSNPIO 1, GCR3TRPMODE 3, SNPAVICSUP 7:5, NUM_INT_REMAP_SUP 9:8, HT_RANGE_IGNORE 11; IOMMU_CAP_IOTLB 24,
 * NPCACHE 26, EFR 27), cross-checked with VirtualBox include/VBox/iommu-amd.h (IOMMU_EXT_FEAT_BF_*,
 * IOMMU_BF_CAPHDR_*), which alone gives SmiFSup..InvIotlbTypeSup and bits 61/62, and FreeBSD
 * sys/x86/iommu/amd_reg.h (AMDIOMMU_EFR_HATS_4LVL/5LVL/6LVL = 0/1/2, AMDIOMMU_EFR2_*), which alone gives
 * EFR2 bit 2 (TMPMSup). All three agree on every position they share.
 * Disagreements, none about a field this model sets:
 * - GAMSup: VirtualBox a 3-bit field 23:21 (the modes supported), Linux the single bit 21 (GA_vAPIC). Value 1
 *   sets bit 21 either way.
 * - Bit 63: SNPSup in Linux; reserved in VirtualBox, which predates SEV-SNP. Bits 61/62 (GAUpdateDisSup,
 *   ForcePhyDestSup) are VirtualBox's alone; a Genoa unit reports bit 61 set.
 * - GATS: QEMU's emulated unit reports GATS = 2 (AMDVI_GATS_MODE), which Linux does not accept as 5-level;
 *   FreeBSD and Linux read only 0 and 1.
 * - Capability header bit 28: QEMU calls it FLAT_EXT and sets it, VirtualBox CapExt (Miscellaneous
 *   Information Register 1 present). The model has no PCI configuration space beyond this word, so 0;
 *   CapRev is 0 as in QEMU (no revision value was found in a source).
 */
import { entryReader, type ScalarLayoutOf, writeScalars } from '@iommukit/core';
import type { AmdFeatures } from './features.js';

/** EFR (MMIO 0030h), every field the sources define, raw. */
export interface EfrFields {
  readonly preFSup: boolean;
  readonly pprSup: boolean;
  readonly xtSup: boolean;
  readonly nxSup: boolean;
  readonly gtSup: boolean;
  readonly iaSup: boolean;
  readonly gaSup: boolean;
  readonly heSup: boolean;
  readonly pcSup: boolean;
  /** Host address translation size: 0/1/2 = 4/5/6 levels. */
  readonly hats: number;
  /** Guest address translation size: 0/1 = 4/5 levels. */
  readonly gats: number;
  /** Deepest GCR3 table: 0/1/2 = 1/2/3 levels. */
  readonly glxSup: number;
  readonly smiFSup: number;
  readonly smiFRC: number;
  /** Guest virtual-APIC modes: 1 = virtual-APIC mode as well as legacy remapping. */
  readonly gamSup: number;
  readonly dualPprLogSup: number;
  readonly dualEventLogSup: number;
  /** PASID width minus one. */
  readonly pasMax: number;
  readonly usSup: boolean;
  readonly devTblSegSup: number;
  readonly pprOvrflwEarlySup: boolean;
  readonly pprAutoRspSup: boolean;
  readonly marcSup: number;
  readonly blkStopMrkSup: boolean;
  readonly perfOptSup: boolean;
  readonly msiCapMmioSup: boolean;
  readonly gIoSup: boolean;
  readonly haSup: boolean;
  readonly ephSup: boolean;
  readonly attrFwSup: boolean;
  readonly hdSup: boolean;
  readonly invIotlbTypeSup: boolean;
  readonly gaUpdateDisSup: boolean;
  readonly forcePhyDestSup: boolean;
  readonly snpSup: boolean;
}

/** EFR2 (MMIO 01A0h), every field the sources define, raw. */
export interface Efr2Fields {
  readonly sevSnpIoSup: boolean;
  readonly tmpmSup: boolean;
  readonly gcr3TrpMode: boolean;
  readonly gappiDisSup: boolean;
  readonly snpAvicSup: number;
  /** Interrupt-remapping table size per device: 0/1 = 512/2048 entries. */
  readonly numIntRemapSup: number;
  readonly htRangeIgnore: boolean;
}

/** The IOMMU Capability Header (PCI configuration space, at the capability pointer), raw. */
export interface CapabilityHeaderFields {
  /** 0Fh: secure device. */
  readonly capId: number;
  readonly capPtr: number;
  /** 3: IOMMU. */
  readonly capType: number;
  readonly capRev: number;
  readonly iotlbSup: boolean;
  readonly htTunnel: boolean;
  readonly npCache: boolean;
  readonly efrSup: boolean;
  readonly capExt: boolean;
}

/** EFR field positions, absolute bits of the 64-bit register. */
export const EFR_LAYOUT: ScalarLayoutOf<EfrFields> = {
  preFSup: [0, 1],
  pprSup: [1, 1],
  xtSup: [2, 1],
  nxSup: [3, 1],
  gtSup: [4, 1],
  iaSup: [6, 1],
  gaSup: [7, 1],
  heSup: [8, 1],
  pcSup: [9, 1],
  hats: [10, 2],
  gats: [12, 2],
  glxSup: [14, 2],
  smiFSup: [16, 2],
  smiFRC: [18, 3],
  gamSup: [21, 3],
  dualPprLogSup: [24, 2],
  dualEventLogSup: [28, 2],
  pasMax: [32, 5],
  usSup: [37, 1],
  devTblSegSup: [38, 2],
  pprOvrflwEarlySup: [40, 1],
  pprAutoRspSup: [41, 1],
  marcSup: [42, 2],
  blkStopMrkSup: [44, 1],
  perfOptSup: [45, 1],
  msiCapMmioSup: [46, 1],
  gIoSup: [48, 1],
  haSup: [49, 1],
  ephSup: [50, 1],
  attrFwSup: [51, 1],
  hdSup: [52, 1],
  invIotlbTypeSup: [54, 1],
  gaUpdateDisSup: [61, 1],
  forcePhyDestSup: [62, 1],
  snpSup: [63, 1],
};

/** EFR2 field positions, absolute bits of the 64-bit register. */
export const EFR2_LAYOUT: ScalarLayoutOf<Efr2Fields> = {
  sevSnpIoSup: [1, 1],
  tmpmSup: [2, 1],
  gcr3TrpMode: [3, 1],
  gappiDisSup: [4, 1],
  snpAvicSup: [5, 3],
  numIntRemapSup: [8, 2],
  htRangeIgnore: [11, 1],
};

/** Capability header field positions in its 32-bit word. */
export const CAPABILITY_HEADER_LAYOUT: ScalarLayoutOf<CapabilityHeaderFields> = {
  capId: [0, 8],
  capPtr: [8, 8],
  capType: [16, 3],
  capRev: [19, 5],
  iotlbSup: [24, 1],
  htTunnel: [25, 1],
  npCache: [26, 1],
  efrSup: [27, 1],
  capExt: [28, 1],
};

/** Capability ID of the IOMMU capability block (secure device) and its capability type. */
export const IOMMU_CAP_ID = 0x0f;
export const IOMMU_CAP_TYPE = 3;

/** A 64-bit register as its two unsigned 32-bit halves. */
export interface RegWords {
  readonly lo: number;
  readonly hi: number;
}

const readEfr = entryReader<EfrFields>({ scalars: EFR_LAYOUT, addresses: {} });
const readEfr2 = entryReader<Efr2Fields>({ scalars: EFR2_LAYOUT, addresses: {} });
const readCapabilityHeader = entryReader<CapabilityHeaderFields>({
  scalars: CAPABILITY_HEADER_LAYOUT,
  addresses: {},
});

/** EFR decoded from the halves a driver read. */
export function decodeEfr(lo: number, hi: number): EfrFields {
  return readEfr([lo >>> 0, hi >>> 0]);
}

/** EFR2 decoded from the halves a driver read. */
export function decodeEfr2(lo: number, hi: number): Efr2Fields {
  return readEfr2([lo >>> 0, hi >>> 0]);
}

/** The capability header decoded from the word a driver read from PCI configuration space. */
export function decodeCapabilityHeader(word: number): CapabilityHeaderFields {
  return readCapabilityHeader([word >>> 0]);
}

function encode<T>(layout: ScalarLayoutOf<T>, fields: T, register: string, words: number): Uint32Array {
  const out = new Uint32Array(words);
  writeScalars(out, layout, fields as Readonly<Record<string, unknown>>, register);
  return out;
}

/** The EFR of a unit with these features. */
export function efrWords(f: AmdFeatures): RegWords {
  const words = encode<EfrFields>(
    EFR_LAYOUT,
    {
      preFSup: false,
      pprSup: f.pageRequests,
      xtSup: f.x2apic,
      nxSup: f.noExecute,
      gtSup: f.guestTranslation,
      iaSup: f.invalidateAll,
      gaSup: f.guestVirtualApic,
      heSup: f.hardwareErrors,
      pcSup: false,
      hats: f.hostLevels - 4,
      // GATS, GLXSup and PASmax describe the guest tables: 0 without guest translation.
      gats: f.guestTranslation ? f.guestLevels - 4 : 0,
      glxSup: f.guestTranslation ? f.gcr3Levels - 1 : 0,
      smiFSup: 0,
      smiFRC: 0,
      gamSup: f.guestVapicMode ? 1 : 0,
      dualPprLogSup: 0,
      dualEventLogSup: 0,
      pasMax: f.guestTranslation ? f.pasidBits - 1 : 0,
      usSup: false,
      devTblSegSup: 0,
      pprOvrflwEarlySup: false,
      pprAutoRspSup: false,
      marcSup: 0,
      blkStopMrkSup: false,
      perfOptSup: false,
      msiCapMmioSup: f.msiCapMmio,
      gIoSup: f.guestIoProtection,
      haSup: f.hostAccess,
      ephSup: f.enhancedPpr,
      attrFwSup: false,
      hdSup: f.hostDirty,
      invIotlbTypeSup: false,
      gaUpdateDisSup: false,
      forcePhyDestSup: false,
      snpSup: false,
    },
    'EFR',
    2,
  );
  return { lo: words[0]!, hi: words[1]! };
}

/** The EFR2 of a unit with these features. */
export function efr2Words(f: AmdFeatures): RegWords {
  const words = encode<Efr2Fields>(
    EFR2_LAYOUT,
    {
      sevSnpIoSup: false,
      tmpmSup: false,
      gcr3TrpMode: f.gcr3TrpMode,
      gappiDisSup: false,
      snpAvicSup: 0,
      numIntRemapSup: f.interruptRemapEntries === 2048 ? 1 : 0,
      htRangeIgnore: false,
    },
    'EFR2',
    2,
  );
  return { lo: words[0]!, hi: words[1]! };
}

/** The capability header word of a unit with these features (EFRSup always: the EFR is implemented). */
export function capabilityHeaderWord(f: AmdFeatures): number {
  return encode<CapabilityHeaderFields>(
    CAPABILITY_HEADER_LAYOUT,
    {
      capId: IOMMU_CAP_ID,
      capPtr: 0,
      capType: IOMMU_CAP_TYPE,
      capRev: 0,
      iotlbSup: f.iotlbSupport,
      htTunnel: false,
      npCache: f.npCache,
      efrSup: true,
      capExt: false,
    },
    'IOMMU capability header',
    1,
  )[0]!;
}
