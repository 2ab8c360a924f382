/**
 * The STEs and CDs the driver installs, built as Linux arm-smmu-v3 builds them (`arm_smmu_make_*_ste`,
 * `arm_smmu_make_s1_cd`, `arm_smmu_make_sva_cd`, and the iommufd nested STE), through the codecs
 * (`encodeSte`/`encodeCd`). Every builder sets only bits that `steUsed`/`cdUsed` mark used for the result,
 * which the hitless writer relies on (a target bit outside its own used mask would make its qword look
 * critical forever).
 *
 * The SMMU properties the builders consult are the few Linux consults ({@link BuilderCaps}); the defaults are
 * the SMMU of the Linux KUnit test (stalls and attribute-type overrides supported, no E2H).
 */
import { type IoPageTable, LINUX_MAIR, tgEncoding, VmsaFormat, type VmsaGranule } from '@iommukit/pagetables';
import { type Cd, decodeCd, encodeCd } from '../hw/cd.js';
import type { Smmuv3Features } from '../hw/features.js';
import {
  decodeSte,
  encodeSte,
  REGION_ATTR,
  SHAREABILITY,
  STE_CONFIG,
  STE_EATS,
  STE_S1DSS,
  STE_S1FMT,
  STE_STRW,
} from '../hw/ste.js';

/** What the builders need to know about the SMMU (Linux `ARM_SMMU_FEAT_*`). */
export interface BuilderCaps {
  /** Stalls supported (IDR0.STALL_MODEL 0b00 or 0b10): S1STALLD is set for masters that do not stall. */
  readonly stalls: boolean;
  /** Stalls forced (IDR0.STALL_MODEL 0b10): the quiet SVA CD keeps CD.S and CD.R. */
  readonly stallForce: boolean;
  /** IDR1.ATTR_TYPES_OVR: SHCFG = "use incoming" is set where the configuration uses it. */
  readonly attrTypesOverride: boolean;
  /** The host runs at EL2 with E2H: stage-1 STEs use STRW = EL2 (and no VMID). */
  readonly e2h: boolean;
}

export const DEFAULT_BUILDER_CAPS: BuilderCaps = {
  stalls: true,
  stallForce: false,
  attrTypesOverride: true,
  e2h: false,
};

/** Builder capabilities of an SMMU instance; IDR1.ATTR_TYPES_OVR and E2H are not in `Smmuv3Features`. */
export function builderCaps(
  features: Smmuv3Features,
  extra: { readonly attrTypesOverride?: boolean; readonly e2h?: boolean } = {},
): BuilderCaps {
  return {
    stalls: features.stallModel !== 'no-stall',
    stallForce: features.stallModel === 'force-stall',
    attrTypesOverride: extra.attrTypesOverride ?? true,
    e2h: extra.e2h ?? false,
  };
}

/** Cacheability and shareability of table walks: write-back inner shareable when coherent, else NC/outer. */
function walkAttrs(coherent: boolean) {
  return coherent
    ? { ir: REGION_ATTR.WB_RA_WA, or: REGION_ATTR.WB_RA_WA, sh: SHAREABILITY.INNER }
    : { ir: REGION_ATTR.NC, or: REGION_ATTR.NC, sh: SHAREABILITY.OUTER };
}

// ---------------------------------------------------------------------------------------------------------
// STEs

/** V = 1, Config = abort: every transaction of the stream is terminated. */
export function abortSte(): Uint32Array {
  return encodeSte({ v: true, config: STE_CONFIG.ABORT });
}

/** V = 1, Config = bypass, SHCFG = incoming when attribute overrides exist. */
export function bypassSte(caps: BuilderCaps = DEFAULT_BUILDER_CAPS): Uint32Array {
  return encodeSte({
    v: true,
    config: STE_CONFIG.BYPASS,
    ...(caps.attrTypesOverride ? { shCfg: SHAREABILITY.INCOMING } : {}),
  });
}

export interface CdTableSteOptions {
  /** Address of the CD table (or of its L1 table). */
  readonly cdTable: number;
  /** Default linear. */
  readonly s1Fmt?: number;
  /** log2 of the CDs; default 0 (one CD, no substreams). */
  readonly s1CdMax?: number;
  /** What traffic without a SubstreamID uses; default SSID0 (CD 0). */
  readonly s1Dss?: number;
  /** EATS = full ATS. */
  readonly ats?: boolean;
  /** The master stalls on faults (S1STALLD stays 0). */
  readonly stall?: boolean;
}

/**
 * Stage 1 through a CD table (Linux `arm_smmu_make_cdtable_ste`): table walks write-back inner shareable,
 * S1STALLD for a non-stalling master on a stalling SMMU, SHCFG = incoming for S1DSS = bypass, STRW = EL2
 * with E2H, else NS-EL1 with the VMID 0 Linux reserves for stage-1 STEs.
 */
export function cdTableSte(
  options: CdTableSteOptions,
  caps: BuilderCaps = DEFAULT_BUILDER_CAPS,
): Uint32Array {
  const s1Dss = options.s1Dss ?? STE_S1DSS.SSID0;
  return encodeSte({
    v: true,
    config: STE_CONFIG.S1_TRANS,
    s1Fmt: options.s1Fmt ?? STE_S1FMT.LINEAR,
    s1ContextPtr: options.cdTable,
    s1CdMax: options.s1CdMax ?? 0,
    s1Dss,
    s1Cir: REGION_ATTR.WB_RA_WA,
    s1Cor: REGION_ATTR.WB_RA_WA,
    s1Csh: SHAREABILITY.INNER,
    s1Stalld: caps.stalls && options.stall !== true,
    eats: options.ats === true ? STE_EATS.FULL : STE_EATS.ABORT,
    ...(caps.attrTypesOverride && s1Dss === STE_S1DSS.BYPASS ? { shCfg: SHAREABILITY.INCOMING } : {}),
    strw: caps.e2h ? STE_STRW.EL2 : STE_STRW.NS_EL1,
    s2Vmid: 0,
  });
}

export interface S2SteOptions {
  /** A stage-2 `VmsaFormat`; S2T0SZ/S2SL0/S2TG/S2PS come from its `translationControl`. */
  readonly format: VmsaFormat;
  /** The root table's address (S2TTB). */
  readonly root: number;
  readonly vmid: number;
  readonly ats?: boolean;
  /** The master stalls: S2S = 1. */
  readonly stall?: boolean;
  /** The table was built for FWB (Linux `IO_PGTABLE_QUIRK_ARM_S2FWB`). */
  readonly s2fwb?: boolean;
  /** Default true: table walks write-back inner shareable. */
  readonly coherentWalk?: boolean;
}

/**
 * Stage 2 only (Linux `arm_smmu_make_s2_domain_ste`): AArch64 tables, S2PTW (stage-1 walks of a nested
 * configuration go through stage 2 too), S2R (faults are recorded), S2S for a stalling master.
 */
export function s2Ste(options: S2SteOptions, caps: BuilderCaps = DEFAULT_BUILDER_CAPS): Uint32Array {
  if (options.format.stage !== 2) throw new RangeError(`${options.format.name} is not a stage 2 format`);
  const tc = options.format.translationControl(options.root);
  const walk = walkAttrs(options.coherentWalk ?? true);
  return encodeSte({
    v: true,
    config: STE_CONFIG.S2_TRANS,
    eats: options.ats === true ? STE_EATS.FULL : STE_EATS.ABORT,
    s2Fwb: options.s2fwb === true,
    ...(caps.attrTypesOverride ? { shCfg: SHAREABILITY.INCOMING } : {}),
    s2Vmid: options.vmid,
    s2T0sz: tc.t0sz,
    s2Sl0: tc.sl0!,
    s2Ir0: walk.ir,
    s2Or0: walk.or,
    s2Sh0: walk.sh,
    s2Tg: tc.tg,
    s2Ps: tc.ps,
    s2Aa64: true,
    s2Ptw: true,
    s2S: options.stall === true,
    s2R: true,
    s2Ttb: options.root,
  });
}

/**
 * The physical STE for a guest's vSTE on a nested domain (Linux iommufd `arm_smmu_make_nested_domain_ste`),
 * given the host's stage-2 STE for the master (`s2Ste` of the nest parent, with the EATS the host chose):
 * - vSTE.V = 0 or Config = abort (or reserved) → abort;
 * - Config = bypass → the host's stage 2 alone;
 * - Config = stage 1 → Config = nested (0b111): the host's stage 2 plus the guest's S1Fmt, S1ContextPtr
 *   (an IPA), S1CDMax, S1DSS, S1CIR, S1COR, S1CSH, S1STALLD, and MEV = 1 (merged fault records limit what
 *   a guest can flood the event queue with). Other vSTE fields are not taken (the guest's EATS included:
 *   the host's decides); rejecting them is the vIOMMU's job (`validateGuestSte`).
 * `forceS1Stalld` sets S1STALLD whatever the guest wrote (beyond Linux: see nested-domain.ts).
 */
export function nestedSte(
  guest: ArrayLike<number>,
  hostS2: ArrayLike<number>,
  options: { readonly forceS1Stalld?: boolean } = {},
): Uint32Array {
  const g = decodeSte(guest);
  const config = g.v ? g.config : STE_CONFIG.ABORT;
  if (config === STE_CONFIG.BYPASS) return Uint32Array.from(hostS2);
  if (config !== STE_CONFIG.S1_TRANS) return abortSte();
  const host = decodeSte(hostS2);
  return encodeSte({
    ...host,
    config: STE_CONFIG.NESTED,
    s1Fmt: g.s1Fmt,
    s1ContextPtr: g.s1ContextPtr,
    s1CdMax: g.s1CdMax,
    s1Dss: g.s1Dss,
    s1Cir: g.s1Cir,
    s1Cor: g.s1Cor,
    s1Csh: g.s1Csh,
    s1Stalld: g.s1Stalld || options.forceS1Stalld === true,
    mev: true,
  });
}

// ---------------------------------------------------------------------------------------------------------
// CDs

/** The 64-bit MAIR as the CD's two halves. */
function mairFields(mair: bigint): Pick<Cd, 'mair0' | 'mair1'> {
  return { mair0: Number(mair & 0xffff_ffffn), mair1: Number((mair >> 32n) & 0xffff_ffffn) };
}

/** Fields every CD the driver builds has: TTB1 disabled, valid, AArch64, R = A = 1, and the ASID. */
function cdCommon(asid: number, ips: number, stall: boolean, aset: boolean): Partial<Cd> {
  return { epd1: true, v: true, ips, aa64: true, s: stall, r: true, a: true, aset, asid };
}

export interface S1CdOptions {
  /** A stage-1 `VmsaFormat`: T0SZ, TG0 and IPS (from its output size) come from `translationControl`. */
  readonly format: VmsaFormat;
  readonly root: number;
  readonly asid: number;
  /** The master stalls: CD.S = 1. */
  readonly stall?: boolean;
  /** HA = HD = 1 (Linux `IO_PGTABLE_QUIRK_ARM_HD`). */
  readonly dirtyTracking?: boolean;
  /** Default Linux's io-pgtable MAIR. */
  readonly mair?: bigint;
  /** Default true: table walks write-back inner shareable. */
  readonly coherentWalk?: boolean;
}

/**
 * The CD for a driver-owned stage-1 table (Linux `arm_smmu_make_s1_cd`): EPD1 = 1 (no TTB1), R = A = ASET
 * = 1 (ASET: the ASID is not shared with the CPU, so broadcast TLB invalidations do not apply), AA64 = 1.
 */
export function s1Cd(options: S1CdOptions): Uint32Array {
  if (options.format.stage !== 1) throw new RangeError(`${options.format.name} is not a stage 1 format`);
  const tc = options.format.translationControl(options.root);
  const walk = walkAttrs(options.coherentWalk ?? true);
  const hw = options.dirtyTracking === true;
  return encodeCd({
    ...cdCommon(options.asid, tc.ps, options.stall === true, true),
    t0sz: tc.t0sz,
    tg0: tc.tg,
    ir0: walk.ir,
    or0: walk.or,
    sh0: walk.sh,
    ha: hw,
    hd: hw,
    ttb0: options.root,
    ...mairFields(options.mair ?? LINUX_MAIR),
  });
}

/** `s1Cd` for an `IoPageTable` over a stage-1 `VmsaFormat` (its root, and HA/HD when it tracks dirty). */
export function s1CdForTable(
  table: IoPageTable,
  options: Omit<S1CdOptions, 'format' | 'root' | 'dirtyTracking'>,
): Uint32Array {
  if (!(table.format instanceof VmsaFormat)) {
    throw new RangeError(`a CD needs a VMSAv8-64 table, not ${table.format.name}`);
  }
  return s1Cd({ ...options, format: table.format, root: table.rootPa, dirtyTracking: table.dirtyTracking });
}

export interface SvaCdOptions {
  readonly asid: number;
  /** The process's table root; absent for the quiet CD of an address space that is gone. */
  readonly ttb0?: number;
  /** Default 48 (T0SZ = 64 − vaBits). */
  readonly vaBits?: number;
  /** The CPU's page size; default 4K. */
  readonly granule?: VmsaGranule;
  /** CD.IPS: the CPU's physical address range (ID_AA64MMFR0_EL1.PARange encoding). */
  readonly ips: number;
  /** The CPU's MAIR_EL1; default Linux's io-pgtable MAIR. */
  readonly mair?: bigint;
  readonly stall?: boolean;
  /** Broadcast TLB maintenance reaches the SMMU: ASET = 0 so the CPU's invalidations apply. */
  readonly btm?: boolean;
}

/**
 * The CD of an SVA binding (Linux `arm_smmu_make_sva_cd`): the CPU's table with T0SZ from the VA size,
 * the CPU granule, write-back inner shareable walks. Without `ttb0` it is the quiet CD installed when the
 * address space goes away while DMA may continue: still valid (no C_BAD_CD) but EPD0 = 1 so every access
 * faults, with S and R cleared (abort at once, nothing recorded) unless stalls are forced. The two differ
 * only in bits the EPD0 = 1 side does not use plus qword 0, so the writer switches between them hitlessly.
 */
export function svaCd(options: SvaCdOptions, caps: BuilderCaps = DEFAULT_BUILDER_CAPS): Uint32Array {
  const common = cdCommon(options.asid, options.ips, options.stall === true, options.btm !== true);
  const mair = mairFields(options.mair ?? LINUX_MAIR);
  if (options.ttb0 === undefined) {
    const keep = caps.stallForce;
    return encodeCd({ ...common, epd0: true, s: keep && options.stall === true, r: keep, ...mair });
  }
  const walk = walkAttrs(true);
  return encodeCd({
    ...common,
    t0sz: 64 - (options.vaBits ?? 48),
    tg0: tgEncoding(options.granule ?? 4096),
    ir0: walk.ir,
    or0: walk.or,
    sh0: walk.sh,
    ttb0: options.ttb0,
    ...mair,
  });
}

/**
 * A valid `cd` with TTB0 disabled: EPD0 = 1 and the TTB0 walk's fields (T0SZ, TG0, IR0, OR0, SH0, TTB0) cleared,
 * since they become unused. The CD stays valid, so traffic faults instead of raising C_BAD_CD; the writer
 * goes there and back hitlessly in two syncs.
 */
export function releasedCd(cd: ArrayLike<number>): Uint32Array {
  return encodeCd({ ...decodeCd(cd), epd0: true, t0sz: 0, tg0: 0, ir0: 0, or0: 0, sh0: 0, ttb0: 0 });
}
