/**
 * The table walks of an AMD IOMMU IOTLB miss (AMD IOMMU spec pub. 48882 §2.2.3 host (v1) I/O page tables,
 * §2.2.6–§2.2.7 guest (v2) translation) through `@iommukit/pagetables`: the host walk with the AMD v1 format
 * (NextLevel, level skipping, NextLevel-7 page sizes, IR/IW down the walk, A/D per the DTE's HAD), the guest
 * walk with the x86-64 format (U/S, R/W, NX; A always and D on a write, as the IOMMU updates guest entries),
 * and the nested guest walk, where the guest CR3 and every guest table pointer are guest physical addresses
 * the host tables translate.
 *
 * A failed walk leaves its kind in {@link AmdStageWalker.failure}, which translate.ts turns into the event:
 * - NOT_PRESENT: an entry with PR = 0 (IO_PAGE_FAULT, PR = 0);
 * - PERMISSION: the leaf (and the tables above it) do not allow the access (IO_PAGE_FAULT, PR = 1, PE = 1);
 * - RESERVED: a reserved bit or an output address beyond the unit's width (PR = 1, RZ = 1);
 * - LEVEL: an invalid level encoding — an input beyond what the tables translate, a NextLevel the entry's
 *   level cannot have (PR = 1, RZ = 0, PE = 0: VirtualBox's reading of RZ = 0 as "invalid level encoding");
 * - TABLE_ABORT: a table read the bus aborted (PAGE_TAB_HARDWARE_ERROR at {@link failureAddress}).
 * With {@link failureInHost} the failure was the host walk of a nested guest's table pointer or output.
 *
 * Permissions are core's stage grants: the host tables grant the same to every privilege (v1 entries have
 * no U/S) and never execution, which needs read; the guest tables grant per U/S.
 * A miss allocates nothing: each stage has one options object, one walk state and one leaf.
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
  AMD_LIMIT_NO_READ,
  AMD_LIMIT_NO_WRITE,
  type AmdV1Format,
  amdV1EntryLimits,
  type TableWalkCache,
  type WalkFault,
  type WalkOptions,
  WalkState,
  type WalkStepTracer,
  walkInto,
  walkStepTracer,
  type X86Format,
} from '@iommukit/pagetables';

/** How a walk failed (see the module comment). */
export const WALK_FAILURE = {
  NONE: 0,
  NOT_PRESENT: 1,
  PERMISSION: 2,
  RESERVED: 3,
  LEVEL: 4,
  TABLE_ABORT: 5,
} as const;

/** The result of the last successful walk of a stage, valid until its next walk. */
export class StageLeaf {
  pa = 0;
  pageShift = 0;
  level = 0;
  grants = 0;
}

export interface StageWalkContext {
  readonly instance: string;
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly tracer: ITracer;
}

type Options = { -readonly [K in keyof WalkOptions]: WalkOptions[K] };

/** A nested guest walk's table fetch the host refused (the failure is kept in the walker). */
// Stryker disable next-line ObjectLiteral,StringLiteral: the walk's fault is never read, the walker's failure is
const HOST_REFUSED: WalkFault = { kind: 'translation', level: 0 };

export class AmdStageWalker {
  walks = 0;
  /** How the last failed walk failed (`WALK_FAILURE`). */
  failure: number = WALK_FAILURE.NONE;
  /** TABLE_ABORT: the address of the entry that could not be read. */
  failureAddress = 0;
  /** The failure was the host walk of a nested guest's table or output address. */
  // Stryker disable next-line BooleanLiteral: every walk sets it before a failure is read
  failureInHost = false;
  /** The input of the last host walk: with {@link failureInHost}, the guest physical address it refused. */
  hostInput = 0;
  readonly host = new StageLeaf();
  readonly guest = new StageLeaf();
  private readonly hostOptions: Options;
  private readonly guestOptions: Options;
  private readonly hostState = new WalkState();
  private readonly guestState = new WalkState();
  private nestedFormat: AmdV1Format | undefined;
  private nestedRoot = 0;
  private nestedCache: TableWalkCache | undefined;
  private readonly nestedTableAddress = (gpa: number, _level: number, access: number): number | WalkFault => {
    if (this.hostWalk(this.nestedFormat!, this.nestedRoot, gpa, access, this.nestedCache))
      return this.host.pa;
    this.failureInHost = true;
    return HOST_REFUSED;
  };
  private readonly traceHost: WalkStepTracer;
  private readonly traceGuest: WalkStepTracer;

  constructor(private readonly ctx: StageWalkContext) {
    this.traceHost = walkStepTracer(ctx.tracer, ctx.instance, 'host', 'host');
    this.traceGuest = walkStepTracer(ctx.tracer, ctx.instance, 'guest', 'guest');
    const options = (): Options => ({ bus: ctx.bus, counter: ctx.counter });
    this.hostOptions = options();
    this.guestOptions = options();
  }

  /**
   * Host (v1) walk of `input` from `root` for `access`: true with the result in {@link host}, or false with
   * {@link failure} set. The DTE's IR/IW are the caller's to apply.
   */
  hostWalk(
    format: AmdV1Format,
    root: number,
    input: number,
    access: number,
    cache?: TableWalkCache,
  ): boolean {
    this.walks++;
    this.failureInHost = false;
    this.hostInput = input;
    if (input >= 2 ** format.ias) return this.fail(WALK_FAILURE.LEVEL);
    const options = this.hostOptions;
    options.access = access;
    options.hardwareAccessFlag = format.hostAccessDirty !== 'none';
    options.hardwareDirty = format.hostAccessDirty === 'accessed-dirty';
    options.onStep = this.ctx.tracer.enabled ? this.traceHost : undefined;
    options.tableCache = cache;
    const state = this.hostState;
    if (!walkInto(format, root, input, options, state)) return this.walkFailed(state);
    const limits = state.tableLimits | amdV1EntryLimits(state.hi);
    const read = (limits & AMD_LIMIT_NO_READ) === 0 ? PERM_READ | PERM_EXEC : 0;
    const perm = read | ((limits & AMD_LIMIT_NO_WRITE) === 0 ? PERM_WRITE : 0);
    const leaf = this.host;
    leaf.pa = state.pa;
    leaf.pageShift = state.pageShift;
    leaf.level = state.level;
    leaf.grants = stageGrants(perm, perm);
    return this.permitted(leaf.grants, access);
  }

  /**
   * Guest (v2) walk of `input` from `root` (a GPA when `nested` gives the host tables): true with the result
   * in {@link guest} (its `pa` a GPA when nested), or false with {@link failure} set.
   */
  guestWalk(
    format: X86Format,
    root: number,
    input: number,
    access: number,
    cache: TableWalkCache | undefined,
    nested:
      | { readonly format: AmdV1Format; readonly root: number; readonly cache?: TableWalkCache }
      | undefined,
  ): boolean {
    this.walks++;
    this.failureInHost = false;
    // The x86-64 format translates the lower canonical half (2^47 or 2^56).
    if (input >= 2 ** format.ias) return this.fail(WALK_FAILURE.LEVEL);
    const options = this.guestOptions;
    options.access = access;
    options.hardwareAccessFlag = true;
    options.hardwareDirty = true;
    options.onStep = this.ctx.tracer.enabled ? this.traceGuest : undefined;
    options.tableCache = cache;
    options.translateTableAddress = nested ? this.nestedTableAddress : undefined;
    this.nestedFormat = nested?.format;
    this.nestedRoot = nested?.root ?? 0;
    this.nestedCache = nested?.cache;
    const state = this.guestState;
    if (!walkInto(format, root, input, options, state)) {
      // The host's failure is already recorded.
      if (this.failureInHost) return false;
      return this.walkFailed(state);
    }
    const leaf = this.guest;
    leaf.pa = state.pa;
    leaf.pageShift = state.pageShift;
    leaf.level = state.level;
    leaf.grants = stageGrants(
      format.leafPermissions(state.lo, state.hi, state.tableLimits, true),
      format.leafPermissions(state.lo, state.hi, state.tableLimits, false),
    );
    return this.permitted(leaf.grants, access);
  }

  /** Whether `grants` allow `access`; a PERMISSION failure when not. */
  permitted(grants: number, access: number): boolean {
    return grantsAllow(grants, access) || this.fail(WALK_FAILURE.PERMISSION);
  }

  private walkFailed(state: WalkState): false {
    switch (state.faultKind) {
      case 'walk-abort':
        this.failureAddress = state.faultAddress;
        return this.fail(WALK_FAILURE.TABLE_ABORT);
      case 'reserved':
        // A NextLevel the entry's level cannot have is "reserved" to the format; both are RZ-worthy only
        // when a bit is actually reserved, which the format does not distinguish: the model reports RZ.
        return this.fail(WALK_FAILURE.RESERVED);
      case 'address-size':
        return this.fail(WALK_FAILURE.RESERVED);
      default:
        return this.fail(WALK_FAILURE.NOT_PRESENT);
    }
  }

  private fail(kind: number): false {
    this.failure = kind;
    return false;
  }
}

/**
 * Whether `grants` allow `access`: a write needs W, a read or an execute request R (and X, which the guest
 * tables remove with NX; the host tables grant it with R).
 */
export function grantsAllow(grants: number, access: number): boolean {
  const granted = grantedTo(grants, access);
  if ((access & PERM_WRITE) !== 0) return (granted & PERM_WRITE) !== 0;
  if ((granted & PERM_READ) === 0) return false;
  return (access & PERM_EXEC) === 0 || (granted & PERM_EXEC) !== 0;
}
