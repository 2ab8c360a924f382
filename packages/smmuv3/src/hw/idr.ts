/**
 * The ID registers (SMMUv3 §6.3.1–6.3.8: IDR0–IDR5, IIDR, AIDR): the model encodes them from its features,
 * a few options (coherency, VA size, STALL_MAX, identification) and its fixed IDR0 fields (Hyp, TERM_MODEL,
 * TTENDIAN, NS1ATS); a driver decodes them back after reading them, so both sides go through the same field
 * positions. Fields for features this model does not implement are 0 (or their "not supported" encoding).
 */
import { deposit32, field32 } from '@iommukit/core';
import {
  DEFAULT_IDR_EXTRAS,
  OAS_BITS,
  type OasBits,
  type Smmuv3Features,
  type Smmuv3IdrExtras,
} from './features.js';
import type { Smmuv3Options } from './options.js';

/** A multi-bit register field. */
export interface RegField {
  readonly lsb: number;
  readonly width: number;
}

// SMMU_IDR0 (§6.3.1).
export const IDR0_S2P = 1 << 0;
export const IDR0_S1P = 1 << 1;
export const IDR0_TTF: RegField = { lsb: 2, width: 2 };
export const IDR0_COHACC = 1 << 4;
export const IDR0_BTM = 1 << 5;
export const IDR0_HTTU: RegField = { lsb: 6, width: 2 };
export const IDR0_DORMHINT = 1 << 8;
export const IDR0_HYP = 1 << 9;
export const IDR0_ATS = 1 << 10;
export const IDR0_NS1ATS = 1 << 11;
export const IDR0_ASID16 = 1 << 12;
export const IDR0_MSI = 1 << 13;
export const IDR0_SEV = 1 << 14;
/** With IDR0.SEV: the platform signal (by name) that carries the SMMU's WFE wake-up events to the PEs. */
export const WFE_EVENT_LINE = 'sev';
export const IDR0_ATOS = 1 << 15;
export const IDR0_PRI = 1 << 16;
export const IDR0_VMW = 1 << 17;
export const IDR0_VMID16 = 1 << 18;
export const IDR0_CD2L = 1 << 19;
export const IDR0_VATOS = 1 << 20;
export const IDR0_TTENDIAN: RegField = { lsb: 21, width: 2 };
export const IDR0_ATSRECERR = 1 << 23;
export const IDR0_STALL_MODEL: RegField = { lsb: 24, width: 2 };
export const IDR0_TERM_MODEL = 1 << 26;
export const IDR0_ST_LEVEL: RegField = { lsb: 27, width: 2 };
export const IDR0_RME_IMPL = 1 << 30;

/** IDR0.TTF: 1 VMSAv8-32 LPAE, 2 VMSAv8-64, 3 both. */
export const TTF_AARCH64 = 0b10;
/** IDR0.TTENDIAN: 0 mixed, 2 little-endian only, 3 big-endian only; 1 reserved. */
export const TTENDIAN_ENCODING = { mixed: 0b00, little: 0b10, big: 0b11 } as const;
/** IDR0.HTTU: 0 none, 1 Access flag, 2 Access flag and Dirty state, 3 also table Access flag. */
export const HTTU_ENCODING = { none: 0, access: 1, 'access-dirty': 2 } as const;
/** IDR0.STALL_MODEL: 0 stall and terminate, 1 terminate only, 2 stall forced; 3 reserved. */
export const STALL_MODEL_ENCODING = { stall: 0, 'no-stall': 1, 'force-stall': 2 } as const;

// SMMU_IDR1 (§6.3.2).
export const IDR1_SIDSIZE: RegField = { lsb: 0, width: 6 };
export const IDR1_SSIDSIZE: RegField = { lsb: 6, width: 5 };
export const IDR1_PRIQS: RegField = { lsb: 11, width: 5 };
export const IDR1_EVENTQS: RegField = { lsb: 16, width: 5 };
export const IDR1_CMDQS: RegField = { lsb: 21, width: 5 };
export const IDR1_ATTR_PERMS_OVR = 1 << 26;
export const IDR1_ATTR_TYPES_OVR = 1 << 27;
export const IDR1_REL = 1 << 28;
export const IDR1_QUEUES_PRESET = 1 << 29;
export const IDR1_TABLES_PRESET = 1 << 30;
export const IDR1_ECMDQ = 0x8000_0000;

// SMMU_IDR2 (§6.3.3).
export const IDR2_BA_VATOS: RegField = { lsb: 0, width: 10 };

// SMMU_IDR3 (§6.3.4).
export const IDR3_HAD = 1 << 2;
export const IDR3_PBHA = 1 << 3;
export const IDR3_XNX = 1 << 4;
export const IDR3_PPS = 1 << 5;
export const IDR3_MPAM = 1 << 7;
export const IDR3_FWB = 1 << 8;
export const IDR3_STT = 1 << 9;
export const IDR3_RIL = 1 << 10;
export const IDR3_BBML: RegField = { lsb: 11, width: 2 };
export const IDR3_E0PD = 1 << 13;
export const IDR3_PTWNNC = 1 << 14;
export const IDR3_DPT = 1 << 15;
export const IDR3_PASIDTT = 1 << 16;
export const IDR3_EPAN = 1 << 17;
export const IDR3_S1PI = 1 << 18;
export const IDR3_S2PI = 1 << 19;
export const IDR3_S2PO = 1 << 20;
export const IDR3_THE = 1 << 21;
export const IDR3_MTEPERM = 1 << 22;
export const IDR3_AIE = 1 << 23;

// SMMU_IDR5 (§6.3.6).
export const IDR5_OAS: RegField = { lsb: 0, width: 3 };
export const IDR5_GRAN4K = 1 << 4;
export const IDR5_GRAN16K = 1 << 5;
export const IDR5_GRAN64K = 1 << 6;
export const IDR5_DS = 1 << 7;
export const IDR5_D128 = 1 << 8;
export const IDR5_VAX: RegField = { lsb: 10, width: 2 };
export const IDR5_STALL_MAX: RegField = { lsb: 16, width: 16 };

// SMMU_IIDR (§6.3.7) and SMMU_AIDR (§6.3.8).
export const IIDR_IMPLEMENTER: RegField = { lsb: 0, width: 12 };
export const IIDR_REVISION: RegField = { lsb: 12, width: 4 };
export const IIDR_VARIANT: RegField = { lsb: 16, width: 4 };
export const IIDR_PRODUCTID: RegField = { lsb: 20, width: 12 };
export const AIDR_ARCH_MINOR_REV: RegField = { lsb: 0, width: 4 };
export const AIDR_ARCH_MAJOR_REV: RegField = { lsb: 4, width: 4 };

export interface IdrValues {
  readonly IDR0: number;
  readonly IDR1: number;
  readonly IDR2: number;
  readonly IDR3: number;
  readonly IDR4: number;
  readonly IDR5: number;
  readonly IIDR: number;
  readonly AIDR: number;
}

/** The options the ID registers need beyond the features. */
export type IdrOptions = Pick<
  Smmuv3Options,
  'coherent' | 'stallMax' | 'vaBits' | 'iidr' | 'archVersion' | 'sev'
>;

function put(word: number, f: RegField, value: number): number {
  return deposit32(word, f.lsb, f.width, value);
}

function get(word: number, f: RegField): number {
  return field32(word, f.lsb, f.width);
}

function flag(on: boolean, bit: number): number {
  return on ? bit : 0;
}

/** Encodes the ID registers of an instance. */
export function idrValues(
  features: Smmuv3Features,
  options: IdrOptions,
  fixed: Smmuv3IdrExtras = DEFAULT_IDR_EXTRAS,
): IdrValues {
  const f = features;
  const v31 = options.archVersion !== '3.0';
  const bothStages = f.s1 && f.s2;
  let idr0 =
    flag(f.s2, IDR0_S2P) |
    flag(f.s1, IDR0_S1P) |
    flag(options.coherent, IDR0_COHACC) |
    flag(fixed.hyp && bothStages, IDR0_HYP) |
    flag(f.ats, IDR0_ATS) |
    flag(fixed.ns1ats && f.ats && bothStages, IDR0_NS1ATS) |
    flag(f.asid16, IDR0_ASID16) |
    flag(f.msi, IDR0_MSI) |
    flag(options.sev, IDR0_SEV) |
    // PRI is RES0 when ATS == 0.
    flag(f.pri && f.ats, IDR0_PRI) |
    flag(f.vmid16, IDR0_VMID16) |
    flag(f.twoLevelCdTable, IDR0_CD2L) |
    flag(fixed.termModelAbort, IDR0_TERM_MODEL);
  idr0 = put(idr0, IDR0_TTF, TTF_AARCH64);
  idr0 = put(idr0, IDR0_HTTU, HTTU_ENCODING[f.httu]);
  idr0 = put(idr0, IDR0_TTENDIAN, TTENDIAN_ENCODING[fixed.ttEndian]);
  idr0 = put(idr0, IDR0_STALL_MODEL, STALL_MODEL_ENCODING[f.stallModel]);
  idr0 = put(idr0, IDR0_ST_LEVEL, f.twoLevelStreamTable ? 1 : 0);

  let idr1 = put(0, IDR1_SIDSIZE, f.sidBits);
  idr1 = put(idr1, IDR1_SSIDSIZE, f.ssidBits);
  // PRIQS is IMPLEMENTATION SPECIFIC when PRI == 0; the model reports its configured size regardless.
  idr1 = put(idr1, IDR1_PRIQS, f.priqLog2);
  idr1 = put(idr1, IDR1_EVENTQS, f.evtqLog2);
  idr1 = put(idr1, IDR1_CMDQS, f.cmdqLog2);

  // HAD is mandatory with stage 1 and XNX with stage 2 from SMMUv3.1 (§6.3.4).
  const idr3 =
    flag(v31 && f.s1, IDR3_HAD) | flag(v31 && f.s2, IDR3_XNX) | flag(f.rangeInvalidation, IDR3_RIL);

  let idr5 = put(0, IDR5_OAS, OAS_BITS.indexOf(f.oasBits));
  idr5 |=
    flag(f.granules.g4k, IDR5_GRAN4K) |
    flag(f.granules.g16k, IDR5_GRAN16K) |
    flag(f.granules.g64k, IDR5_GRAN64K);
  idr5 = put(idr5, IDR5_VAX, options.vaBits === 52 ? 1 : 0);
  // STALL_MAX is RES0 when STALL_MODEL == 0b01.
  idr5 = put(idr5, IDR5_STALL_MAX, f.stallModel === 'no-stall' ? 0 : options.stallMax);

  let iidr = put(0, IIDR_IMPLEMENTER, options.iidr.implementer);
  iidr = put(iidr, IIDR_REVISION, options.iidr.revision);
  iidr = put(iidr, IIDR_VARIANT, options.iidr.variant);
  iidr = put(iidr, IIDR_PRODUCTID, options.iidr.productId);

  const aidr = put(0, AIDR_ARCH_MINOR_REV, v31 ? 1 : 0);

  return {
    IDR0: idr0 >>> 0,
    IDR1: idr1 >>> 0,
    IDR2: 0,
    IDR3: idr3 >>> 0,
    IDR4: 0,
    IDR5: idr5 >>> 0,
    IIDR: iidr >>> 0,
    AIDR: aidr >>> 0,
  };
}

/** The fixed IDR0 fields, as a driver reads them. TTENDIAN 0b01 is reserved and throws. */
export function idrFixedFieldsFromIdr0(idr0: number): Smmuv3IdrExtras {
  const endian = get(idr0, IDR0_TTENDIAN);
  if (endian === 1) throw new RangeError('IDR0.TTENDIAN = 0b01 is reserved');
  return {
    hyp: (idr0 & IDR0_HYP) !== 0,
    termModelAbort: (idr0 & IDR0_TERM_MODEL) !== 0,
    ttEndian: endian === 0 ? 'mixed' : endian === 2 ? 'little' : 'big',
    ns1ats: (idr0 & IDR0_NS1ATS) !== 0,
  };
}

/**
 * The features a driver learns from the ID registers. Wired interrupts are not advertised by any ID
 * register (the platform describes them), so the caller supplies them. Encodings the feature contract
 * cannot express (reserved values, a 56-bit OAS) throw; HTTU = 3 (also the table Access flag) reads as
 * Access flag and Dirty state.
 */
export function featuresFromIdrs(
  idrs: Pick<IdrValues, 'IDR0' | 'IDR1' | 'IDR3' | 'IDR5'>,
  platform: { readonly wiredIrqs: boolean },
): Smmuv3Features {
  const { IDR0: idr0, IDR1: idr1, IDR3: idr3, IDR5: idr5 } = idrs;
  const stall = get(idr0, IDR0_STALL_MODEL);
  if (stall === 3) throw new RangeError('IDR0.STALL_MODEL = 0b11 is reserved');
  const stLevel = get(idr0, IDR0_ST_LEVEL);
  if (stLevel > 1) throw new RangeError(`IDR0.ST_LEVEL = ${stLevel} is reserved`);
  const oas = OAS_BITS[get(idr5, IDR5_OAS)] as OasBits | undefined;
  if (oas === undefined) throw new RangeError(`IDR5.OAS = ${get(idr5, IDR5_OAS)} is not supported`);
  const httu = get(idr0, IDR0_HTTU);
  const ats = (idr0 & IDR0_ATS) !== 0;
  return {
    s1: (idr0 & IDR0_S1P) !== 0,
    s2: (idr0 & IDR0_S2P) !== 0,
    sidBits: get(idr1, IDR1_SIDSIZE),
    ssidBits: get(idr1, IDR1_SSIDSIZE),
    oasBits: oas,
    granules: {
      g4k: (idr5 & IDR5_GRAN4K) !== 0,
      g16k: (idr5 & IDR5_GRAN16K) !== 0,
      g64k: (idr5 & IDR5_GRAN64K) !== 0,
    },
    twoLevelStreamTable: stLevel === 1,
    twoLevelCdTable: (idr0 & IDR0_CD2L) !== 0,
    asid16: (idr0 & IDR0_ASID16) !== 0,
    vmid16: (idr0 & IDR0_VMID16) !== 0,
    ats,
    pri: ats && (idr0 & IDR0_PRI) !== 0,
    stallModel: stall === 0 ? 'stall' : stall === 1 ? 'no-stall' : 'force-stall',
    httu: httu === 0 ? 'none' : httu === 1 ? 'access' : 'access-dirty',
    rangeInvalidation: (idr3 & IDR3_RIL) !== 0,
    msi: (idr0 & IDR0_MSI) !== 0,
    wiredIrqs: platform.wiredIrqs,
    cmdqLog2: get(idr1, IDR1_CMDQS),
    evtqLog2: get(idr1, IDR1_EVENTQS),
    priqLog2: get(idr1, IDR1_PRIQS),
  };
}
