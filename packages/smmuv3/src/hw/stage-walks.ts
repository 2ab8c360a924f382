/**
 * The SMMUv3 table walks of a TLB miss (IHI 0070 §3.3, §5.2 STE.S2*, §5.4 CD): stage 1 from a CD,
 * stage 2 from an STE, and nested, where every stage-1 descriptor address and the stage-1 output are IPAs
 * that go through stage 2 (§3.13.5: a hardware update of a stage-1 descriptor needs stage-2 write
 * permission). The walks run through `@iommukit/pagetables` with the hardware Access/Dirty flag updates the
 * configuration enables (HA/HD, S2HA/S2HD, with IDR0.HTTU) and check the leaf's permissions for the access;
 * a failure is the fault the event records (`translation-faults.ts`).
 * Each walk starts from the deepest table its walk cache holds (tlb.ts), so a nested miss next to
 * an earlier one reads a few descriptors instead of 24.
 *
 * A miss allocates nothing but a fault: each stage has one walk-options object, one walk state and one
 * result, rewritten per walk. Walks do not nest within a stage (a stage-1 walk runs stage-2 walks, never
 * the reverse), so neither is rewritten while a walk reads it; a caller reads a result before the next walk
 * of its stage.
 */
import {
  type AccessCounter,
  ALL_GRANTS,
  grantedTo,
  type ITracer,
  type MemoryBus,
  PERM_WRITE,
} from '@iommukit/core';
import {
  LO_NG,
  psEncoding,
  type TableWalkCache,
  type VmsaFormat,
  vmsaFormatFromRegisters,
  type WalkFault,
  type WalkOptions,
  WalkState,
  type WalkStepTracer,
  walkInto,
  walkStepTracer,
} from '@iommukit/pagetables';
import { type Cd, cdEffectiveIpsBits } from './cd.js';
import type { CdContext } from './config-fetch.js';
import { EVENT_CLASS } from './events.js';
import type { Smmuv3Features } from './features.js';
import { grantsAllow, leafGrants } from './grants.js';
import { type Ste, steEffectiveS2PsBits, TG0 } from './ste.js';
import { GLOBAL_ASID, TLB_KIND_CODE } from './tlb.js';
import { type Fault, stage1Fault, stage2Fault, WALK_EVENT, walkAbortAddress } from './translation-faults.js';

/** What the walks read through and report to. */
export interface WalkContext {
  readonly instance: string;
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly tracer: ITracer;
  readonly features: Smmuv3Features;
  /** The stage-1 and stage-2 walk caches; none when the SMMU is built without them. */
  readonly walkCaches?: { readonly s1: TableWalkCache; readonly s2: TableWalkCache } | undefined;
}

/**
 * A stage-1 walk's leaf as the TLB caches it: both stages' grants (all for a bypassed stage), output and IPA.
 * Every successful walk writes every field before anyone reads it: the initial values only give it a shape.
 */
// Stryker disable BooleanLiteral: see above
export class WalkedLeaf {
  pa = 0;
  ipa = 0;
  pageShift = 0;
  /** What both stages grant this access. */
  perm = 0;
  s1Grants = 0;
  s2Grants = 0;
  /** The walk was for a write, so HD marked the leaf dirty. */
  dirty = false;
  /** Stage-1 nG: the leaf belongs to the CD's ASID rather than to every ASID. */
  ng = false;
}
// Stryker restore BooleanLiteral

/** A stage-2 walk's leaf: the PA, what it grants this access and in general, and its size. */
export class Stage2Leaf {
  pa = 0;
  perm = 0;
  grants = 0;
  pageShift = 0;
}

/**
 * The output size a walk checks: the effective (S2)PS, but at most 48 bits with the 4K and 16K granules,
 * whose descriptors hold no more without DS; above that the output bits are zero and no Address Size fault
 * can occur (IHI 0070 §5.4 IPS, §5.2 S2PS). `tg` is a TG0/S2TG encoding (0b01: 64K).
 */
function descriptorOutputBits(effectiveBits: number, tg: number): number {
  return tg === TG0.SIZE_64K ? effectiveBits : Math.min(effectiveBits, 48);
}

/** Walk options rewritten for every walk of a stage. */
type ReusedWalkOptions = { -readonly [K in keyof WalkOptions]: WalkOptions[K] };

/**
 * What a nested stage-1 walk's table fetch gets when stage 2 refuses it (the stage-2 fault is kept aside):
 * the walker only tells a fault from an address, so its content is never read.
 */
// Stryker disable next-line ObjectLiteral,StringLiteral: see above
const STAGE2_REFUSED: WalkFault = { kind: 'translation', level: 0 };

export class Smmuv3StageWalker {
  /** Table walks started (stage 1 and stage 2 separately). */
  walks = 0;
  /** Formats by their encoded translation-control fields; null for an ILLEGAL encoding. */
  private readonly formats = new Map<number, VmsaFormat | null>();

  // Built once: a walk is handed a step tracer only while tracing is on.
  private readonly traceStage1: WalkStepTracer;
  private readonly traceStage2: WalkStepTracer;

  /** The last successful stage-1 walk (`stage1`), valid until the next one. */
  readonly leaf = new WalkedLeaf();
  /** The last successful stage-2 walk (`stage2`), valid until the next one: a nested stage 1 runs several. */
  readonly s2Leaf = new Stage2Leaf();
  private readonly s1Options: ReusedWalkOptions;
  private readonly s2Options: ReusedWalkOptions;
  private readonly s1State = new WalkState();
  private readonly s2State = new WalkState();
  /** The stream a nested stage-1 walk translates its table addresses for, and the stage-2 fault that stopped it. */
  private nestedSte: Ste | undefined;
  private nestedFormat: VmsaFormat | undefined;
  private nestedFault: Fault | undefined;
  // A hardware update of a stage-1 descriptor writes its IPA: stage 2 must allow it (§3.13.5).
  private readonly nestedTableAddress = (
    ipa: number,
    _level: number,
    tableAccess: number,
  ): number | WalkFault => {
    const fault = this.stage2(this.nestedSte!, this.nestedFormat!, ipa, tableAccess, EVENT_CLASS.TT);
    if (fault === undefined) return this.s2Leaf.pa;
    this.nestedFault = fault;
    return STAGE2_REFUSED;
  };

  constructor(private readonly ctx: WalkContext) {
    this.traceStage1 = walkStepTracer(ctx.tracer, ctx.instance, 'S1', 1);
    this.traceStage2 = walkStepTracer(ctx.tracer, ctx.instance, 'S2', 2);
    // Every walk sets the fields that vary before walking: these values only give the objects their shape.
    // Stryker disable BooleanLiteral: see above
    const options = (): ReusedWalkOptions => ({
      bus: ctx.bus,
      counter: ctx.counter,
      access: 0,
      hardwareAccessFlag: false,
      accessFlagFaultDisable: false,
      hardwareDirty: false,
      hierarchicalPermissions: true,
      translateTableAddress: undefined,
      onStep: undefined,
      tableCache: undefined,
    });
    // Stryker restore BooleanLiteral
    this.s1Options = options();
    this.s2Options = options();
  }

  /**
   * Stage 1 from the CD's TTB0 and, when nested (`s2Format`), every IPA it uses through stage 2: the fault,
   * or undefined with the result in {@link leaf}.
   */
  stage1(
    ste: Ste,
    cd: CdContext,
    s2Format: VmsaFormat | undefined,
    input: number,
    access: number,
  ): Fault | undefined {
    if (cd.epd0) return { ...stage1Fault('F_TRANSLATION', ste, cd), reason: 'CD.EPD0 disables TTB0 walks' };
    const format = cd.s1Format;
    this.walks++;
    // {HD, HA} = {1, 0} behaves as both 0 (§5.4 CD.HD). HA or HD beyond IDR0.HTTU is C_BAD_CD (cd.ts).
    const hd = cd.hd && cd.ha;
    const options = this.s1Options;
    options.access = access;
    options.hardwareAccessFlag = cd.ha;
    options.accessFlagFaultDisable = cd.affd;
    options.hardwareDirty = hd;
    options.hierarchicalPermissions = !cd.had0;
    options.onStep = this.ctx.tracer.enabled ? this.traceStage1 : undefined;
    options.tableCache = this.ctx.walkCaches?.s1.select(
      TLB_KIND_CODE[s2Format ? 's12' : 's1'],
      ste.s2Vmid,
      cd.asid,
    );
    options.translateTableAddress = s2Format ? this.nestedTableAddress : undefined;
    this.nestedSte = ste;
    this.nestedFormat = s2Format;
    this.nestedFault = undefined;
    const result = this.s1State;
    if (!walkInto(format, cd.ttb0, input, options, result)) {
      const s2Fault = this.nestedFault;
      if (s2Fault) return s2Fault;
      const event = WALK_EVENT[result.faultKind];
      // A descriptor fetch that aborts is CLASS TT with its PA, and always recorded (§7.3.12, §5.5).
      if (event === 'F_WALK_EABT')
        return { event, record: true, s2: false, cls: EVENT_CLASS.TT, ...walkAbortAddress(result.fault()) };
      return stage1Fault(event, ste, cd);
    }
    const s1Grants = leafGrants(1, result.lo, result.hi, result.tableLimits, hd);
    if (!grantsAllow(s1Grants, access)) return stage1Fault('F_PERMISSION', ste, cd);
    const leaf = this.leaf;
    leaf.perm = grantedTo(s1Grants, access);
    leaf.pa = result.pa;
    leaf.ipa = result.pa;
    leaf.pageShift = result.pageShift;
    leaf.s1Grants = s1Grants;
    leaf.s2Grants = ALL_GRANTS;
    leaf.dirty = (access & PERM_WRITE) !== 0;
    leaf.ng = (result.lo & LO_NG) !== 0;
    if (s2Format) {
      const fault = this.stage2(ste, s2Format, leaf.ipa, access, EVENT_CLASS.IN);
      if (fault) return fault;
      const t = this.s2Leaf;
      leaf.pa = t.pa;
      leaf.perm &= t.perm;
      leaf.pageShift = Math.min(leaf.pageShift, t.pageShift);
      leaf.s2Grants = t.grants;
    }
    return undefined;
  }

  /**
   * Stage 2 of an IPA from the STE's S2TTB; `cls` is what the IPA is for (CLASS IN: the input or stage-1
   * output, TT: a stage-1 descriptor, CD: a CD or L1CD fetch). The fault, or undefined with the result in
   * {@link s2Leaf}.
   */
  stage2(ste: Ste, format: VmsaFormat, ipa: number, access: number, cls: number): Fault | undefined {
    this.walks++;
    // {S2HA, S2HD} = {0, 1} behaves as both 0 (§5.2 STE.S2HD). Either beyond IDR0.HTTU is C_BAD_STE (ste.ts).
    const hd = ste.s2Hd && ste.s2Ha;
    const options = this.s2Options;
    options.access = access;
    options.hardwareAccessFlag = ste.s2Ha;
    options.accessFlagFaultDisable = ste.s2Affd;
    options.hardwareDirty = hd;
    options.onStep = this.ctx.tracer.enabled ? this.traceStage2 : undefined;
    options.tableCache = this.ctx.walkCaches?.s2.select(TLB_KIND_CODE.s2, ste.s2Vmid, GLOBAL_ASID);
    const result = this.s2State;
    if (!walkInto(format, ste.s2Ttb, ipa, options, result)) {
      const event = WALK_EVENT[result.faultKind];
      // The record gives the descriptor's PA (FetchAddr), no IPA (§7.3.12).
      if (event === 'F_WALK_EABT')
        return { event, record: true, s2: true, cls, ...walkAbortAddress(result.fault()) };
      return stage2Fault(event, ste, ipa, cls, access);
    }
    const grants = leafGrants(2, result.lo, result.hi, 0, hd);
    if (!grantsAllow(grants, access)) return stage2Fault('F_PERMISSION', ste, ipa, cls, access);
    const leaf = this.s2Leaf;
    leaf.pa = result.pa;
    leaf.perm = grantedTo(grants, access);
    leaf.grants = grants;
    leaf.pageShift = result.pageShift;
    return undefined;
  }

  /** The stage-2 table format of an STE, or undefined when its translation control is ILLEGAL. */
  stage2Format(ste: Ste): VmsaFormat | undefined {
    const ps =
      psEncoding(descriptorOutputBits(steEffectiveS2PsBits(ste, this.ctx.features), ste.s2Tg)) ?? ste.s2Ps;
    return this.format(2, ste.s2Tg, ste.s2T0sz, ste.s2Sl0, ps);
  }

  /** The stage-1 table format of a CD: checkCd refuses (C_BAD_CD) every TG0 and T0SZ it cannot have. */
  stage1Format(cd: Cd): VmsaFormat {
    const ps = psEncoding(descriptorOutputBits(cdEffectiveIpsBits(cd, this.ctx.features), cd.tg0)) ?? cd.ips;
    return this.format(1, cd.tg0, cd.t0sz, 0, ps)!;
  }

  /**
   * The format the translation-control fields select, built once per distinct encoding (formats are
   * immutable), so a configuration-cache miss does not rebuild one; undefined when they are ILLEGAL.
   */
  private format(stage: 1 | 2, tg: number, t0sz: number, sl0: number, ps: number): VmsaFormat | undefined {
    // stage (1 bit), TG (2), T0SZ (6), SL0 (2) and PS (3) in one number.
    const key = (((((stage - 1) * 4 + tg) * 64 + t0sz) * 4 + sl0) * 8 + ps) | 0;
    if (this.formats.has(key)) return this.formats.get(key) ?? undefined;
    let format: VmsaFormat | null;
    try {
      format = vmsaFormatFromRegisters(stage === 2 ? { stage, tg, t0sz, sl0, ps } : { stage, tg, t0sz, ps });
    } catch {
      format = null;
    }
    this.formats.set(key, format);
    return format ?? undefined;
  }
}
