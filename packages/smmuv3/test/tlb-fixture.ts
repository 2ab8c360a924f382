/** Caching a whole entry in a TLB or walk cache, for tests that set up a cache's contents directly. */
import type { Smmuv3Tlb, TlbTags } from '../src/hw/tlb.js';

/** Fills the slot `entry`'s tags select with all of its fields (the model writes the payload itself). */
export function cacheEntry<E extends TlbTags>(tlb: Smmuv3Tlb<E>, entry: E): void {
  Object.assign(tlb.insert(entry.kind, entry.vmid, entry.asid, entry.inputBase, entry.pageShift), entry);
}
