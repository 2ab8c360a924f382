/**
 * The VT-d remapping unit's register map (VT-d §11.4) for the core RegisterFile: spec offsets, access
 * types, writable bits (bits of features the unit lacks, and reserved bits, read 0 and ignore writes) and
 * reset values. A 64-bit register is two 32-bit registers, `<NAME>_LO` at +0 and `<NAME>_HI` at +4; a
 * 128-bit fault recording register is four, `FRCD<i>_0` to `FRCD<i>_3`. Offsets: Linux
 * drivers/iommu/intel/iommu.h (DMAR_*_REG), QEMU hw/i386/intel_iommu_internal.h, VirtualBox
 * include/VBox/iommu-intel.h; bit positions from the same three, which agree.
 *
 * Access types: GCMD is write-only (reads 0; software keeps its own copy and polls GSTS), and so is IVA.
 * VER, CAP, ECAP, GSTS, IQH and IQERCD are read-only. FSTS, ICS, PRS and the fault records' fourth words
 * are write-1-to-clear: their RW1CS bits clear when written with 1, their other bits are status only the
 * hardware changes. Elsewhere read-only fields (FECTL.IP, CCMD.CAIG, IOTLB.IAIG, PMEN.PRS) are left out of
 * the writable bits of a read-write register. One deviation: CCMD.SID and CCMD.FM are write-only in the
 * spec (QEMU reads them as 0) but read back here, since a RegisterFile register has one access type.
 *
 * Section numbers: §11.4.1–§11.4.8 follow the spec's register order (VER, CAP, ECAP, GCMD, GSTS, RTADDR,
 * CCMD, the IOTLB registers); the later registers are cited by name, their subsection numbers unchecked.
 *
 * Present only with their feature (absent registers read 0 and ignore writes, RES0):
 * - IQH, IQT, IQA, ICS, IECTL, IEDATA, IEADDR, IEUADDR, IQERCD with ECAP.QI;
 * - IRTA with ECAP.IR; PQH, PQT, PQA, PRS, PECTL, PEDATA, PEADDR, PEUADDR with ECAP.PRS;
 * - PMEN with CAP.PLMR or CAP.PHMR, PLMBASE/PLMLIMIT with PLMR, PHMBASE/PHMLIMIT with PHMR;
 * - never: AFLOG (CAP.AFL), the MTRRs (ECAP.MTS), the virtual command registers (ECAP.VCS), the
 *   performance monitor (ECAP.PMS) and enhanced commands (CAP.ECMDS), none of which the model implements.
 *
 * Feature-dependent bits: GCMD.WBF with CAP.RWBF, QIE with QI, IRE/SIRTP/CFI with IR (SFL and EAFL need
 * advanced fault logging: never); RTADDR.TTM bit 10 with scalable or abort-DMA mode, bit 11 with abort-DMA
 * mode (01 on an abort-DMA-only unit is left to the SRTP check); IQA.DW with scalable mode; IRTA.EIME and
 * the upper event addresses (FEUADDR, IEUADDR, PEUADDR) with ECAP.EIM; FSTS.IQE with QI, ICE/ITE with
 * Device-TLBs; IOTLB.DR/DW with CAP.DRD/DWD; domain IDs (CCMD.DID, IOTLB.DID) as wide as CAP.ND says.
 * Address fields keep bits below the host address width (IVA: below MGAW), the rest reading 0. The
 * protected-memory registers implement bits 31:20 (1 MiB alignment, N = 19 as Intel client parts report;
 * the spec leaves N to the implementation). FSTS.PRO (bit 7, page request overflow in older revisions and
 * still named by Linux) is reserved in newer ones (VirtualBox: "deprecated, MBZ"; PRS_REG.PRO is the
 * overflow flag), so the model never sets it.
 *
 * The window is 8 KiB: fault records start at 0x220 and 256 of them end at 0x1220. Records past the 14th
 * lie where the spec puts the performance monitor (0x300) and enhanced command registers (0x400), which
 * this model does not implement, so nothing overlaps.
 */
import {
  type EntryLayout,
  type EntryReader,
  entryReader,
  type RegDef,
  type ScalarLayoutOf,
} from '@iommukit/core';
import { capWords, ecapWords, FAULT_RECORD_OFFSET, IOTLB_REG_OFFSET } from './capabilities.js';
import type { VtdFeatures } from './features.js';

/** The register window: a power of two holding 256 fault records at FAULT_RECORD_OFFSET. */
export const VTD_MMIO_SIZE = 0x2000;

/** Register offsets by spec name (_REG dropped); 64-bit registers by their low half (§11.4). */
export const REG = {
  VER: 0x00,
  CAP: 0x08,
  ECAP: 0x10,
  GCMD: 0x18,
  GSTS: 0x1c,
  RTADDR: 0x20,
  CCMD: 0x28,
  FSTS: 0x34,
  FECTL: 0x38,
  FEDATA: 0x3c,
  FEADDR: 0x40,
  FEUADDR: 0x44,
  AFLOG: 0x58,
  PMEN: 0x64,
  PLMBASE: 0x68,
  PLMLIMIT: 0x6c,
  PHMBASE: 0x70,
  PHMLIMIT: 0x78,
  IQH: 0x80,
  IQT: 0x88,
  IQA: 0x90,
  ICS: 0x9c,
  IECTL: 0xa0,
  IEDATA: 0xa4,
  IEADDR: 0xa8,
  IEUADDR: 0xac,
  IQERCD: 0xb0,
  IRTA: 0xb8,
  PQH: 0xc0,
  PQT: 0xc8,
  PQA: 0xd0,
  PRS: 0xdc,
  PECTL: 0xe0,
  PEDATA: 0xe4,
  PEADDR: 0xe8,
  PEUADDR: 0xec,
  IVA: IOTLB_REG_OFFSET,
  IOTLB: IOTLB_REG_OFFSET + 8,
  MTRRCAP: 0x100,
  MTRRDEF: 0x108,
  MTRR_FIX64K_00000: 0x120,
  MTRR_FIX16K_80000: 0x128,
  MTRR_FIX16K_A0000: 0x130,
  MTRR_FIX4K_C0000: 0x138,
  MTRR_FIX4K_C8000: 0x140,
  MTRR_FIX4K_D0000: 0x148,
  MTRR_FIX4K_D8000: 0x150,
  MTRR_FIX4K_E0000: 0x158,
  MTRR_FIX4K_E8000: 0x160,
  MTRR_FIX4K_F0000: 0x168,
  MTRR_FIX4K_F8000: 0x170,
  MTRR_PHYSBASE0: 0x180,
  MTRR_PHYSMASK0: 0x188,
  MTRR_PHYSBASE1: 0x190,
  MTRR_PHYSMASK1: 0x198,
  MTRR_PHYSBASE2: 0x1a0,
  MTRR_PHYSMASK2: 0x1a8,
  MTRR_PHYSBASE3: 0x1b0,
  MTRR_PHYSMASK3: 0x1b8,
  MTRR_PHYSBASE4: 0x1c0,
  MTRR_PHYSMASK4: 0x1c8,
  MTRR_PHYSBASE5: 0x1d0,
  MTRR_PHYSMASK5: 0x1d8,
  MTRR_PHYSBASE6: 0x1e0,
  MTRR_PHYSMASK6: 0x1e8,
  MTRR_PHYSBASE7: 0x1f0,
  MTRR_PHYSMASK7: 0x1f8,
  MTRR_PHYSBASE8: 0x200,
  MTRR_PHYSMASK8: 0x208,
  MTRR_PHYSBASE9: 0x210,
  MTRR_PHYSMASK9: 0x218,
  FRCD: FAULT_RECORD_OFFSET,
  /** Virtual command registers, at the offsets of spec 3.3 and later (Linux DMAR_VC*_REG). */
  VCMD: 0xe00,
  VCRSP: 0xe10,
  VCCAP: 0xe30,
} as const;
export type RegName = keyof typeof REG;

/** Bytes per fault recording register. */
export const FRCD_BYTES = 16;

/** The offset of fault recording register `index`. */
export function frcdOffset(index: number): number {
  return FAULT_RECORD_OFFSET + FRCD_BYTES * index;
}

/** A multi-bit field of a 32-bit register (or of one half of a 64-bit register). */
export interface RegField {
  readonly lsb: number;
  readonly width: number;
}

/** An address field of a 64-bit register, by absolute bit numbers (bit 32 is bit 0 of the high half). */
export interface Reg64Field {
  readonly lsb: number;
  readonly msb: number;
}

// VER_REG (§11.4.1).
export const VER_MIN: RegField = { lsb: 0, width: 4 };
export const VER_MAX: RegField = { lsb: 4, width: 4 };

// GCMD_REG and GSTS_REG (§11.4.4, §11.4.5): each command bit and the status bit in the same position.
export const GCMD_TE = 0x8000_0000;
export const GCMD_SRTP = 1 << 30;
export const GCMD_SFL = 1 << 29;
export const GCMD_EAFL = 1 << 28;
export const GCMD_WBF = 1 << 27;
export const GCMD_QIE = 1 << 26;
export const GCMD_IRE = 1 << 25;
export const GCMD_SIRTP = 1 << 24;
export const GCMD_CFI = 1 << 23;
export const GSTS_TES = GCMD_TE;
export const GSTS_RTPS = GCMD_SRTP;
export const GSTS_FLS = GCMD_SFL;
export const GSTS_AFLS = GCMD_EAFL;
export const GSTS_WBFS = GCMD_WBF;
export const GSTS_QIES = GCMD_QIE;
export const GSTS_IRES = GCMD_IRE;
export const GSTS_IRTPS = GCMD_SIRTP;
export const GSTS_CFIS = GCMD_CFI;

// RTADDR_REG (§11.4.6).
export const RTADDR_TTM: RegField = { lsb: 10, width: 2 };
export const RTADDR_RTA: Reg64Field = { lsb: 12, msb: 63 };
/** RTADDR.TTM: 10 is reserved; abort-DMA needs ECAP.ADMS. */
export const TTM = { LEGACY: 0b00, SCALABLE: 0b01, ABORT_DMA: 0b11 } as const;

// CCMD_REG (§11.4.7).
export const CCMD_DID: RegField = { lsb: 0, width: 16 };
export const CCMD_SID: RegField = { lsb: 16, width: 16 };
export const CCMD_HI_FM: RegField = { lsb: 0, width: 2 };
export const CCMD_HI_CAIG: RegField = { lsb: 27, width: 2 };
export const CCMD_HI_CIRG: RegField = { lsb: 29, width: 2 };
export const CCMD_HI_ICC = 0x8000_0000;
/** CCMD.CIRG/CAIG: 0 is reserved. */
export const CONTEXT_GRANULARITY = { GLOBAL: 1, DOMAIN: 2, DEVICE: 3 } as const;

// IOTLB_REG and IVA_REG (§11.4.8.1, §11.4.8.2), at IOTLB_REG_OFFSET + 8 and IOTLB_REG_OFFSET.
export const IOTLB_HI_DID: RegField = { lsb: 0, width: 16 };
export const IOTLB_HI_DW = 1 << 16;
export const IOTLB_HI_DR = 1 << 17;
export const IOTLB_HI_IAIG: RegField = { lsb: 25, width: 2 };
export const IOTLB_HI_IIRG: RegField = { lsb: 28, width: 2 };
export const IOTLB_HI_IVT = 0x8000_0000;
/** IOTLB.IIRG/IAIG: 0 is reserved. */
export const IOTLB_GRANULARITY = { GLOBAL: 1, DOMAIN: 2, PAGE: 3 } as const;
export const IVA_AM: RegField = { lsb: 0, width: 6 };
export const IVA_IH = 1 << 6;
export const IVA_ADDR: Reg64Field = { lsb: 12, msb: 63 };

// FSTS_REG.
export const FSTS_PFO = 1 << 0;
export const FSTS_PPF = 1 << 1;
export const FSTS_IQE = 1 << 4;
export const FSTS_ICE = 1 << 5;
export const FSTS_ITE = 1 << 6;
/** Page request overflow in older revisions; reserved now (PRS_REG.PRO), never set by this model. */
export const FSTS_PRO = 1 << 7;
export const FSTS_FRI: RegField = { lsb: 8, width: 8 };

// FECTL_REG, IECTL_REG, PECTL_REG : the same layout.
export const EVENT_CTL_IM = 0x8000_0000;
export const EVENT_CTL_IP = 1 << 30;
/** FEDATA/IEDATA/PEDATA: the interrupt message data (bits 31:16, EIMD, are reserved now). */
export const EVENT_DATA_MASK = 0xffff;
/** FEADDR/IEADDR/PEADDR: a DWORD-aligned message address. */
export const EVENT_ADDR_MASK = 0xffff_fffc;

// PMEN_REG, PLMBASE/PLMLIMIT, PHMBASE/PHMLIMIT.
export const PMEN_PRS = 1 << 0;
export const PMEN_EPM = 0x8000_0000;
/** Implemented bits of the low halves of the protected-memory base and limit registers. */
export const PMR_ADDR_MASK = 0xfff0_0000;

// IQH/IQT: byte offset of the descriptor, bits 18:4.
export const IQ_INDEX_MASK = 0x0007_fff0;
// IQA_REG.
export const IQA_QS: RegField = { lsb: 0, width: 3 };
/** IQA.DW: 0 = 128-bit, 1 = 256-bit descriptors (scalable mode). */
export const IQA_DW = 1 << 11;
export const IQA_IQA: Reg64Field = { lsb: 12, msb: 63 };
// ICS_REG.
export const ICS_IWC = 1 << 0;
// IQERCD_REG.
export const IQERCD_IQEI: RegField = { lsb: 0, width: 4 };
export const IQERCD_HI_ITESID: RegField = { lsb: 0, width: 16 };
export const IQERCD_HI_ICESID: RegField = { lsb: 16, width: 16 };

// IRTA_REG: 2^(S + 1) entries.
export const IRTA_S: RegField = { lsb: 0, width: 4 };
export const IRTA_EIME = 1 << 11;
export const IRTA_IRTA: Reg64Field = { lsb: 12, msb: 63 };

// PQH/PQT: byte offset of the 32-byte page request descriptor, bits 18:5.
export const PQ_INDEX_MASK = 0x0007_ffe0;
// PQA_REG: 2^PQS 4 KiB pages.
export const PQA_PQS: RegField = { lsb: 0, width: 3 };
export const PQA_PQA: Reg64Field = { lsb: 12, msb: 63 };
// PRS_REG.
export const PRS_PPR = 1 << 0;
export const PRS_PRO = 1 << 1;

/** A fault recording register, 128 bits, decoded. */
export interface FaultRecord {
  /** Source-id (requester ID) of the faulted request. */
  readonly sid: number;
  /** T2 (spec 4.x): with `t`, the request type (write 00, page request 01, read 10, AtomicOp 11). */
  readonly t2: boolean;
  readonly priv: boolean;
  readonly exe: boolean;
  /** PASID present: `pasid` is valid. */
  readonly pp: boolean;
  /** Fault reason. */
  readonly fr: number;
  readonly pasid: number;
  /** Address type of the faulted request (with Device-TLBs). */
  readonly at: number;
  /** T (T1 in spec 4.x): 0 write, 1 read or AtomicOp. */
  readonly t: boolean;
  /** Fault: the record is valid; software clears it by writing 1. */
  readonly f: boolean;
  /** Fault information: the page address of a DMA fault (interrupt_index in bits 63:48 for an IR fault). */
  readonly fi: number;
}

/**
 * Fault record field positions, absolute bits over its 128 bits: Linux dmar.c reads F, T, FR, SID, PP and
 * the PASID; PRIV, EXE, T2 and AT are VirtualBox's VTD_BF_1_FRCD_REG_* (EXE/PRIV agree with the field order
 * Intel datasheets draw).
 */
export const FRCD_SCALARS: ScalarLayoutOf<Omit<FaultRecord, 'fi'>> = {
  sid: [64, 16],
  t2: [92, 1],
  priv: [93, 1],
  exe: [94, 1],
  pp: [95, 1],
  fr: [96, 8],
  pasid: [104, 20],
  at: [124, 2],
  t: [126, 1],
  f: [127, 1],
};
export const FRCD_LAYOUT: EntryLayout = { scalars: FRCD_SCALARS, addresses: { fi: [12, 63] } };

/** A fault record decoded from its four words (FRCD<i>_0 to FRCD<i>_3). */
export const decodeFaultRecord: EntryReader<FaultRecord> = entryReader<FaultRecord>(FRCD_LAYOUT);

/** FRCD.F in the record's fourth word (bit 127): the only bit software can change (W1C). */
export const FRCD_WORD3_F = 0x8000_0000;

/** The bits of a multi-bit field, in place. */
function fieldMask(field: RegField): number {
  return (2 ** field.width - 1) * 2 ** field.lsb;
}

/** Address bits 31:12 of a 4 KiB-aligned address field's low half. */
const PAGE_LO = 0xffff_f000;

/** Bits of the high half of an address field that lie below a `bits`-wide address. */
function addressHiMask(bits: number): number {
  return bits >= 64 ? 0xffff_ffff : 2 ** (bits - 32) - 1;
}

/** The register table of a unit with these features (VER, CAP and ECAP reset to what it implements). */
export function vtdRegisterTable(f: VtdFeatures): RegDef[] {
  const defs: RegDef[] = [];
  const reg = (name: string, offset: number, access: RegDef['access'], writable = 0, reset = 0) =>
    defs.push({ name, offset, access, writable: writable >>> 0, reset: reset >>> 0 });
  // A half without writable bits is read-only (reserved, or status the hardware keeps).
  const reg64 = (name: string, offset: number, access: RegDef['access'], lo: number, hi: number) => {
    reg(`${name}_LO`, offset, lo === 0 ? 'ro' : access, lo);
    reg(`${name}_HI`, offset + 4, hi === 0 ? 'ro' : access, hi);
  };
  const hostHi = addressHiMask(f.hostAddressBits);
  const did = 2 ** f.domainIdBits - 1;
  const eimUpper = f.extendedInterruptMode ? 0xffff_ffff : 0;
  const on = (feature: boolean, bits: number) => (feature ? bits : 0);

  reg('VER', REG.VER, 'ro', 0, (f.version.major << VER_MAX.lsb) | f.version.minor);
  const cap = capWords(f);
  reg('CAP_LO', REG.CAP, 'ro', 0, cap.lo);
  reg('CAP_HI', REG.CAP + 4, 'ro', 0, cap.hi);
  const ecap = ecapWords(f);
  reg('ECAP_LO', REG.ECAP, 'ro', 0, ecap.lo);
  reg('ECAP_HI', REG.ECAP + 4, 'ro', 0, ecap.hi);
  reg(
    'GCMD',
    REG.GCMD,
    'wo',
    GCMD_TE |
      GCMD_SRTP |
      on(f.writeBufferFlush, GCMD_WBF) |
      on(f.queuedInvalidation, GCMD_QIE) |
      on(f.interruptRemapping, GCMD_IRE | GCMD_SIRTP | GCMD_CFI),
  );
  reg('GSTS', REG.GSTS, 'ro');
  const ttm =
    on(f.scalableMode || f.abortDmaMode, 1 << RTADDR_TTM.lsb) | on(f.abortDmaMode, 2 << RTADDR_TTM.lsb);
  reg64('RTADDR', REG.RTADDR, 'rw', PAGE_LO | ttm, hostHi);
  reg64(
    'CCMD',
    REG.CCMD,
    'rw',
    fieldMask(CCMD_SID) | did,
    CCMD_HI_ICC | fieldMask(CCMD_HI_CIRG) | fieldMask(CCMD_HI_FM),
  );
  reg(
    'FSTS',
    REG.FSTS,
    'w1c',
    FSTS_PFO | on(f.queuedInvalidation, FSTS_IQE) | on(f.deviceTlb, FSTS_ICE | FSTS_ITE),
  );
  reg('FECTL', REG.FECTL, 'rw', EVENT_CTL_IM, EVENT_CTL_IM);
  reg('FEDATA', REG.FEDATA, 'rw', EVENT_DATA_MASK);
  reg('FEADDR', REG.FEADDR, 'rw', EVENT_ADDR_MASK);
  reg('FEUADDR', REG.FEUADDR, 'rw', eimUpper);
  if (f.protectedLowMemory || f.protectedHighMemory) reg('PMEN', REG.PMEN, 'rw', PMEN_EPM);
  if (f.protectedLowMemory) {
    reg('PLMBASE', REG.PLMBASE, 'rw', PMR_ADDR_MASK);
    reg('PLMLIMIT', REG.PLMLIMIT, 'rw', PMR_ADDR_MASK);
  }
  if (f.protectedHighMemory) {
    reg64('PHMBASE', REG.PHMBASE, 'rw', PMR_ADDR_MASK, hostHi);
    reg64('PHMLIMIT', REG.PHMLIMIT, 'rw', PMR_ADDR_MASK, hostHi);
  }
  if (f.queuedInvalidation) {
    reg64('IQH', REG.IQH, 'ro', 0, 0);
    reg64('IQT', REG.IQT, 'rw', IQ_INDEX_MASK, 0);
    reg64('IQA', REG.IQA, 'rw', PAGE_LO | on(f.scalableMode, IQA_DW) | fieldMask(IQA_QS), hostHi);
    reg('ICS', REG.ICS, 'w1c', ICS_IWC);
    reg('IECTL', REG.IECTL, 'rw', EVENT_CTL_IM, EVENT_CTL_IM);
    reg('IEDATA', REG.IEDATA, 'rw', EVENT_DATA_MASK);
    reg('IEADDR', REG.IEADDR, 'rw', EVENT_ADDR_MASK);
    reg('IEUADDR', REG.IEUADDR, 'rw', eimUpper);
    reg64('IQERCD', REG.IQERCD, 'ro', 0, 0);
  }
  if (f.interruptRemapping)
    reg64(
      'IRTA',
      REG.IRTA,
      'rw',
      PAGE_LO | on(f.extendedInterruptMode, IRTA_EIME) | fieldMask(IRTA_S),
      hostHi,
    );
  if (f.pageRequests) {
    reg64('PQH', REG.PQH, 'rw', PQ_INDEX_MASK, 0);
    reg64('PQT', REG.PQT, 'rw', PQ_INDEX_MASK, 0);
    reg64('PQA', REG.PQA, 'rw', PAGE_LO | fieldMask(PQA_PQS), hostHi);
    reg('PRS', REG.PRS, 'w1c', PRS_PPR | PRS_PRO);
    reg('PECTL', REG.PECTL, 'rw', EVENT_CTL_IM, EVENT_CTL_IM);
    reg('PEDATA', REG.PEDATA, 'rw', EVENT_DATA_MASK);
    reg('PEADDR', REG.PEADDR, 'rw', EVENT_ADDR_MASK);
    reg('PEUADDR', REG.PEUADDR, 'rw', eimUpper);
  }
  reg64('IVA', REG.IVA, 'wo', PAGE_LO | IVA_IH | fieldMask(IVA_AM), addressHiMask(f.mgawBits));
  reg64(
    'IOTLB',
    REG.IOTLB,
    'rw',
    0,
    IOTLB_HI_IVT |
      fieldMask(IOTLB_HI_IIRG) |
      on(f.drainReads, IOTLB_HI_DR) |
      on(f.drainWrites, IOTLB_HI_DW) |
      did,
  );
  for (let i = 0; i < f.faultRecords; i++) {
    const at = frcdOffset(i);
    reg(`FRCD${i}_0`, at, 'ro');
    reg(`FRCD${i}_1`, at + 4, 'ro');
    reg(`FRCD${i}_2`, at + 8, 'ro');
    reg(`FRCD${i}_3`, at + 12, 'w1c', FRCD_WORD3_F);
  }
  return defs;
}
