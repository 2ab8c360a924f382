/**
 * The SMMUv3 TLB (SMMUv3 §3.17, §4.4): translations cached with the tags the invalidation commands
 * address — VMID, ASID (or global, for nG = 0 stage-1 leaves), the kind of translation (stage 1 only,
 * stage 2 only, or a combined stage 1 + 2 entry), the input range the leaf covers (its page or block size)
 * and the level it came from. Capacity is fixed and replacement is least-recently-used, so a missing
 * invalidation leaves a stale entry the model will keep using, as real hardware does.
 *
 * An entry holds each stage's permissions for both privilege levels (grants.ts), not the verdict
 * on the access that cached it: a hit checks every access's PnU, InD and RnW against them (§13.4), and a
 * combined entry keeps the IPA so a stage-2 refusal on a hit is reported as the walk reports it.
 *
 * Combined (nested) entries are tagged with the stage-1 ASID and the VMID, so TLBI_NH_* removes them; a
 * TLBI_S2_IPA does not (the IPA they came through is not tagged), which is why Linux follows a stage-2
 * change of a nest parent with TLBI_NH_ALL — the model makes that requirement observable.
 */
import { LruCache } from '@iommukit/core';

export type TlbKind = 's1' | 's2' | 's12';

/** `asid` of an entry that matches every ASID of its VMID (a stage-1 leaf with nG = 0, or any stage-2 entry). */
export const GLOBAL_ASID = -1;

export interface TlbEntry {
  readonly kind: TlbKind;
  readonly vmid: number;
  readonly asid: number;
  /** First input address the leaf covers (aligned to its size). */
  readonly inputBase: number;
  /** log2 of the leaf's size. */
  readonly pageShift: number;
  /** Lookup level of the leaf (TLBI's TTL hint and LEAF filter use it). */
  readonly level: number;
  /** Output address of `inputBase`. */
  readonly outputBase: number;
  /** The IPA of `inputBase`: the stage-1 output for a combined entry, the input itself for a stage-2 entry. */
  readonly ipaBase: number;
  /** Stage 1 permissions (`stageGrants`); `ALL_GRANTS` for a stage-2 entry. */
  readonly s1Grants: number;
  /** Stage 2 permissions; `ALL_GRANTS` for a stage-1 entry. */
  readonly s2Grants: number;
  /** The leaf was dirty (or not writable-clean) when cached: a write through it needs no walk. */
  readonly dirty: boolean;
}

export class Smmuv3Tlb {
  private readonly cache: LruCache<string, TlbEntry>;
  /** How many cached entries use each page shift: lookups try only the sizes present. */
  private readonly shifts = new Map<number, number>();

  constructor(capacity: number) {
    // Stryker disable next-line ArrowFunction: `shifts` only narrows the sizes a lookup probes; a stale size finds nothing
    this.cache = new LruCache(capacity, (_key, evicted) => this.forget(evicted));
  }

  get size(): number {
    return this.cache.size;
  }

  get hits(): number {
    return this.cache.hits;
  }

  get misses(): number {
    return this.cache.misses;
  }

  get evictions(): number {
    return this.cache.evictions;
  }

  /** The entry translating `address` for (kind, VMID, ASID): the ASID's own entries first, then global ones. */
  lookup(kind: TlbKind, vmid: number, asid: number, address: number): TlbEntry | undefined {
    for (const shift of this.shifts.keys()) {
      const vpn = Math.floor(address / 2 ** shift);
      const own = key(kind, vmid, asid, shift, vpn);
      if (this.cache.peek(own)) return this.cache.get(own);
      // Stryker disable next-line ConditionalExpression: for GLOBAL_ASID the global key is the one just probed
      if (asid === GLOBAL_ASID) continue;
      const global = key(kind, vmid, GLOBAL_ASID, shift, vpn);
      if (this.cache.peek(global)) return this.cache.get(global);
    }
    this.cache.misses++;
    return undefined;
  }

  insert(entry: TlbEntry): void {
    const k = key(
      entry.kind,
      entry.vmid,
      entry.asid,
      entry.pageShift,
      Math.floor(entry.inputBase / 2 ** entry.pageShift),
    );
    const old = this.cache.peek(k);
    // Stryker disable next-line ConditionalExpression,BlockStatement: set() replaces the entry anyway; forgetting it only keeps `shifts` exact
    if (old) {
      this.cache.delete(k);
      this.forget(old);
    }
    this.cache.set(k, entry);
    this.shifts.set(entry.pageShift, (this.shifts.get(entry.pageShift) ?? 0) + 1);
  }

  /** Drops every entry for which `match` holds; returns how many. */
  invalidate(match: (entry: TlbEntry) => boolean): number {
    return this.cache.deleteWhere((entry) => {
      if (!match(entry)) return false;
      this.forget(entry);
      return true;
    });
  }

  clear(): number {
    this.shifts.clear();
    return this.cache.clear();
  }

  /** Entries, least recently used first (for inspection). */
  entries(): TlbEntry[] {
    return [...this.cache].map(([, e]) => e);
  }

  // A size kept after its last entry only costs lookups a probe: the mutants that keep one are equivalent.
  // Stryker disable next-line BlockStatement: keeps every size
  private forget(entry: TlbEntry): void {
    // Stryker disable next-line ArithmeticOperator: `+ 1` keeps every size
    const left = (this.shifts.get(entry.pageShift) ?? 1) - 1;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: `true` and `>=` keep a size at 0
    if (left > 0) this.shifts.set(entry.pageShift, left);
    else this.shifts.delete(entry.pageShift);
  }
}

function key(kind: TlbKind, vmid: number, asid: number, shift: number, vpn: number): string {
  return `${kind}/${vmid}/${asid}/${shift}/${vpn}`;
}

/** Does the leaf `e` overlap input range [start, start + size)? */
export function overlaps(e: TlbEntry, start: number, size: number): boolean {
  return e.inputBase < start + size && start < e.inputBase + 2 ** e.pageShift;
}
