/**
 * The VT-d table walks of an IOTLB miss (VT-d specification §3.6 first-stage, §3.7 second-stage, §3.8
 * nested translation) through `@iommukit/pagetables`: the second stage with the VT-d second-stage format
 * (A/D updates with the PASID entry's SSADE), the first stage with the x86-64 format (A always, D on a
 * write, EA with EAFE; U/S, R/W with WPE, XD), and nested, where the first-stage root, every first-stage
 * table and the first-stage output are guest-physical addresses walked through the second stage.
 *
 * A failed walk is the fault reason the unit records (§7.1.3, the tables in fault-reasons.ts): legacy
 * codes for a legacy-mode second stage (0x4–0x7, 0xC; a not-present entry is the read or write
 * permission fault of the access, as QEMU reports it), scalable-mode codes otherwise (0x70–0x7C, 0x80–0x86).
 * Each walk starts from the deepest table its paging-structure cache holds (caches.ts).
 *
 * Permissions are kept as core's stage grants (what a leaf gives a supervisor and a user access), so an
 * IOTLB hit checks any later access with a shift and a mask.
 * A miss allocates nothing but a fault reason: each stage has one options object and one walk state.
 */
import {
  type AccessCounter,
  grantedTo,
  type ITracer,
  type MemoryBus,
  PERM_EXEC,
  PERM_READ,
  PERM_WRITE,
  stageGrants,
} from '@iommukit/core';
import {
  type TableWalkCache,
  type VtdSsFormat,
  type WalkFault,
  type WalkOptions,
  WalkState,
  type WalkStepTracer,
  walkInto,
  walkStepTracer,
  type X86Format,
} from '@iommukit/pagetables';
import { FR } from './fault-reasons.js';
import type { VtdFeatures } from './features.js';

/** Why a second-stage walk runs: the request's input, or (nested) a first-stage table or output. */
export const SS_FOR_INPUT = 0;
export const SS_FOR_FS_ROOT = 1;
export const SS_FOR_FS_TABLE = 2;

/** The result of the last successful walk of a stage, valid until its next walk. */
export class StageLeaf {
  pa = 0;
  pageShift = 0;
  level = 0;
  grants = 0;
  /** First-stage G = 1: the translation belongs to every PASID of the domain. */
  // Stryker disable next-line BooleanLiteral: read only after a successful walk has written it
  global = false;
}

export interface StageWalkContext {
  readonly instance: string;
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly tracer: ITracer;
  readonly features: VtdFeatures;
}

type Options = { -readonly [K in keyof WalkOptions]: WalkOptions[K] };

/** A nested first-stage walk's table fetch the second stage refused (the reason is kept aside). */
// Stryker disable next-line ObjectLiteral,StringLiteral: the walk's fault is never read, the reason kept aside is returned
const SS_REFUSED: WalkFault = { kind: 'translation', level: 0 };

export class VtdStageWalker {
  walks = 0;
  /** Whether the last failed second-stage walk stopped at a not-present entry (R = W = 0). */
  // Stryker disable next-line BooleanLiteral: read only after a second-stage walk has set it
  secondNotPresent = false;
  readonly first = new StageLeaf();
  readonly second = new StageLeaf();
  private readonly fsOptions: Options;
  private readonly ssOptions: Options;
  private readonly fsState = new WalkState();
  private readonly ssState = new WalkState();
  /** The second stage a nested first-stage walk translates its tables through, and why it stopped. */
  private nestedFormat: VtdSsFormat | undefined;
  private nestedRoot = 0;
  /** The second-stage paging-structure cache the table fetches of a nested walk go through. */
  private nestedCache: TableWalkCache | undefined;
  private nestedStartLevel = 0;
  private nestedReason = 0;
  private readonly nestedTableAddress = (gpa: number, level: number, access: number): number | WalkFault => {
    const purpose = level === this.nestedStartLevel ? SS_FOR_FS_ROOT : SS_FOR_FS_TABLE;
    const reason = this.secondStage(
      this.nestedFormat!,
      this.nestedRoot,
      gpa,
      access,
      false,
      purpose,
      this.nestedCache,
    );
    if (reason === 0) return this.second.pa;
    this.nestedReason = reason;
    return SS_REFUSED;
  };
  private readonly traceFirst: WalkStepTracer;
  private readonly traceSecond: WalkStepTracer;

  constructor(private readonly ctx: StageWalkContext) {
    this.traceFirst = walkStepTracer(ctx.tracer, ctx.instance, 'FS', 'FS');
    this.traceSecond = walkStepTracer(ctx.tracer, ctx.instance, 'SS', 'SS');
    const options = (): Options => ({
      bus: ctx.bus,
      counter: ctx.counter,
      access: 0,
      // Stryker disable next-line BooleanLiteral: every walk sets it first (these give the object its shape)
      hardwareAccessFlag: false,
      // Stryker disable next-line BooleanLiteral: every walk sets it first (these give the object its shape)
      hardwareDirty: false,
      translateTableAddress: undefined,
      onStep: undefined,
      tableCache: undefined,
    });
    this.fsOptions = options();
    this.ssOptions = options();
  }

  /**
   * Second-stage walk of `input` from `root` for `access`: 0 with the result in {@link second}, or the fault
   * reason. `legacy` selects the legacy-mode fault codes; `purpose` the nested codes of a first-stage fetch.
   */
  secondStage(
    format: VtdSsFormat,
    root: number,
    input: number,
    access: number,
    legacy: boolean,
    purpose: number,
    cache?: TableWalkCache,
  ): number {
    this.walks++;
    // Cleared before any early return: a refusal before the walk stopped at no entry at all.
    this.secondNotPresent = false;
    const write = (access & PERM_WRITE) !== 0;
    if (input >= 2 ** format.ias || input >= 2 ** this.ctx.features.mgawBits)
      return legacy
        ? FR.ADDRESS_BEYOND_MGAW
        : nestedOr(purpose, FR.SM_NESTED_FS_BEYOND_MGAW, FR.SM_ADDRESS_BEYOND_MAX);
    const options = this.ssOptions;
    options.access = access;
    options.hardwareAccessFlag = format.accessedDirty;
    options.hardwareDirty = format.accessedDirty;
    options.onStep = this.ctx.tracer.enabled ? this.traceSecond : undefined;
    options.tableCache = cache;
    const state = this.ssState;
    if (!walkInto(format, root, input, options, state)) {
      this.secondNotPresent = state.faultKind === 'translation';
      if (purpose !== SS_FOR_INPUT) return nestedFetchReason(purpose, write);
      return secondStageFault(state, legacy, write, format.startLevel);
    }
    // Execute permission is not a second-stage property since spec 4.0: a fetch needs read.
    const rw = format.leafPermissions(state.lo, 0);
    const perm = (rw & (PERM_READ | PERM_WRITE)) | ((rw & PERM_READ) !== 0 ? PERM_EXEC : 0);
    const need = write ? PERM_WRITE : PERM_READ;
    if ((perm & need) === 0) {
      if (purpose !== SS_FOR_INPUT) return nestedFetchReason(purpose, write);
      if (legacy) return write ? FR.WRITE_DENIED : FR.READ_DENIED;
      return write ? FR.SM_WRITE_DENIED : FR.SM_READ_DENIED;
    }
    const leaf = this.second;
    leaf.pa = state.pa;
    leaf.pageShift = state.pageShift;
    leaf.level = state.level;
    leaf.grants = stageGrants(perm, perm);
    leaf.global = false;
    return 0;
  }

  /**
   * First-stage walk of `input` from `root` (a GPA when `nested` gives the second stage): 0 with the
   * result in {@link first} (its `pa` a GPA when nested), or the fault reason.
   */
  firstStage(
    format: X86Format,
    root: number,
    input: number,
    access: number,
    cache: TableWalkCache | undefined,
    nested:
      | { readonly format: VtdSsFormat; readonly root: number; readonly cache?: TableWalkCache }
      | undefined,
  ): number {
    this.walks++;
    // The x86-64 format's input range is the lower canonical half (2^47 or 2^56): above it is non-canonical.
    if (input >= 2 ** format.ias) return FR.SM_NON_CANONICAL;
    const options = this.fsOptions;
    options.access = access;
    options.hardwareAccessFlag = true;
    options.hardwareDirty = true;
    options.onStep = this.ctx.tracer.enabled ? this.traceFirst : undefined;
    options.tableCache = cache;
    options.translateTableAddress = nested ? this.nestedTableAddress : undefined;
    this.nestedFormat = nested?.format;
    this.nestedRoot = nested?.root ?? 0;
    this.nestedCache = nested?.cache;
    this.nestedStartLevel = format.startLevel;
    this.nestedReason = 0;
    const state = this.fsState;
    if (!walkInto(format, root, input, options, state)) {
      if (this.nestedReason !== 0) return this.nestedReason;
      return firstStageFault(state, format.startLevel);
    }
    // Words to permissions directly: a walk miss decodes no attribute object.
    const supervisor = format.leafPermissions(state.lo, state.hi, state.tableLimits, true);
    const user = format.leafPermissions(state.lo, state.hi, state.tableLimits, false);
    const leaf = this.first;
    leaf.pa = state.pa;
    leaf.pageShift = state.pageShift;
    leaf.level = state.level;
    leaf.grants = stageGrants(supervisor, user);
    leaf.global = format.isGlobal(state.lo);
    return permissionFault(leaf.grants, access);
  }
}

function nestedOr(purpose: number, nested: number, direct: number): number {
  return purpose === SS_FOR_INPUT ? direct : nested;
}

/** A second-stage refusal of a nested first-stage fetch (§7.1.3 0x75–0x77). */
function nestedFetchReason(purpose: number, write: boolean): number {
  if (write) return FR.SM_NESTED_FS_WRITE;
  return purpose === SS_FOR_FS_ROOT ? FR.SM_NESTED_FS_ROOT_READ : FR.SM_NESTED_FS_READ;
}

function secondStageFault(state: WalkState, legacy: boolean, write: boolean, startLevel: number): number {
  switch (state.faultKind) {
    case 'walk-abort':
      if (legacy) return FR.PAGING_ENTRY_ACCESS;
      return state.faultLevel === startLevel ? FR.SM_SSPTPTR_INVALID : FR.SM_SS_ACCESS;
    case 'reserved':
      return legacy ? FR.PAGING_ENTRY_RESERVED : FR.SM_SS_RESERVED;
    case 'address-size':
      return legacy ? FR.PAGING_ENTRY_RESERVED : FR.SM_SS_OUTPUT_BEYOND_MAX;
    default:
      // Not present (R = W = 0): legacy mode reports the access's permission fault.
      if (legacy) return write ? FR.WRITE_DENIED : FR.READ_DENIED;
      return FR.SM_SS_PERMISSION;
  }
}

function firstStageFault(state: WalkState, startLevel: number): number {
  switch (state.faultKind) {
    case 'walk-abort':
      return state.faultLevel === startLevel ? FR.SM_FS_ROOT_ACCESS : FR.SM_FS_ACCESS;
    case 'reserved':
    case 'address-size':
      return FR.SM_FS_RESERVED;
    default:
      return FR.SM_FS_NOT_PRESENT;
  }
}

/**
 * The permission fault of `access` against `grants`, or 0 (§3.6.2: U/S, then XD, then R/W). A read or
 * fetch needs read permission, which only a second-stage leaf can lack (write-only, R = 0 W = 1).
 */
export function permissionFault(grants: number, access: number): number {
  const granted = grantedTo(grants, access);
  if (granted === 0) return FR.SM_USER_SUPERVISOR;
  if ((access & PERM_WRITE) === 0 && (granted & PERM_READ) === 0) return FR.SM_READ_DENIED;
  if ((access & PERM_EXEC) !== 0 && (access & PERM_WRITE) === 0 && (granted & PERM_EXEC) === 0)
    return FR.SM_EXECUTE_DENIED;
  if ((access & PERM_WRITE) !== 0 && (granted & PERM_WRITE) === 0) return FR.SM_WRITE_DENIED;
  return 0;
}
