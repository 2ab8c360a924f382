/**
 * Updating an STE or CD the hardware may be reading (the Linux arm-smmu-v3 "used bits" writer). The SMMU
 * only promises 64-bit single-copy atomicity when it fetches an entry (SMMUv3 §3.21.3), so an update
 * must never let it see a mix of old and new qwords that decodes to neither configuration.
 *
 * Each configuration *uses* some bits; the others are ignored by the hardware. With `cur` the entry in
 * memory and `target` the wanted one, `unused = (cur & used(cur)) | (target & ~used(cur))` is the entry
 * with every bit the hardware ignores already set to its target value. A qword is *critical* when that is
 * not yet the target in the bits the target uses. Then:
 * - no critical qword: write the changes, one sync;
 * - exactly one: *hitless* — write the unused bits, sync, write the critical qword (one 64-bit store, so
 *   the hardware sees old or new), sync, write the rest, sync;
 * - two or more: *breaking* — write qword 0 as 0 (V = 0: the hardware aborts traffic meanwhile), sync,
 *   write qwords 1..n−1, sync, write qword 0, sync.
 * A sync is the CFGI + CMD_SYNC pair, issued only when the step changed memory.
 *
 * Some bits may change in either order even though both configurations use them (Linux v7.0
 * `get_update_safe`: STE.MEV, and STE.EATS under conditions): `updateSafe` names them, and the writer
 * treats those the current entry uses as unused, so they go out with the first step.
 */

/** An entry as 64-bit qwords, each two 32-bit halves: word 2i is the low half of qword i. */
export type EntryWords = Uint32Array;

export interface EntryWriterOps {
  /** Which bits the hardware uses for the configuration in `entry` (same shape as the entry). */
  used(entry: EntryWords): EntryWords;
  /** Stores qword `index` (a single 64-bit write the hardware sees all at once). */
  writeQword(index: number, lo: number, hi: number): void;
  /** Makes the writes so far visible and the hardware's cached copy stale (CFGI_* + CMD_SYNC). */
  sync(): void;
  /** Bits whose order of update does not matter between `cur` and `target`. Absent: none. */
  updateSafe?(cur: EntryWords, target: EntryWords): EntryWords;
}

export interface WriteOutcome {
  /** The update never made the entry invalid. */
  readonly hitless: boolean;
  readonly syncs: number;
}

/** Brings `cur` (the entry as in memory, updated in place) to `target` without a torn configuration. */
export function writeEntry(cur: EntryWords, target: EntryWords, ops: EntryWriterOps): WriteOutcome {
  // Stryker disable next-line ArithmeticOperator: `set` skips a qword past the end (both sides read undefined)
  const qwords = cur.length / 2;
  const curUsed = ops.used(cur);
  const targetUsed = ops.used(target);
  if (ops.updateSafe) {
    // Only bits both configurations use are relaxed; a bit one side ignores is sequenced by that side.
    const safe = ops.updateSafe(cur, target);
    // Stryker disable next-line EqualityOperator: a typed array ignores the store one past its end
    for (let w = 0; w < cur.length; w++) curUsed[w] = (curUsed[w]! & ~(safe[w]! & targetUsed[w]!)) >>> 0;
  }
  const unused = new Uint32Array(cur.length);
  let critical = 0;
  let criticalIndex = -1;
  for (let w = 0; w < cur.length; w++) {
    unused[w] = ((cur[w]! & curUsed[w]!) | (target[w]! & ~curUsed[w]!)) >>> 0;
    if ((unused[w]! & targetUsed[w]!) >>> 0 !== target[w]) {
      const q = w >>> 1;
      if (q !== criticalIndex) {
        critical++;
        criticalIndex = q;
      }
    }
  }
  let syncs = 0;
  const set = (source: EntryWords, first: number, count: number): void => {
    let changed = false;
    for (let q = first; q < first + count; q++) {
      if (cur[2 * q] === source[2 * q] && cur[2 * q + 1] === source[2 * q + 1]) continue;
      cur[2 * q] = source[2 * q]!;
      cur[2 * q + 1] = source[2 * q + 1]!;
      ops.writeQword(q, cur[2 * q]!, cur[2 * q + 1]!);
      changed = true;
    }
    if (changed) {
      ops.sync();
      syncs++;
    }
  };
  if (critical === 0) {
    set(target, 0, qwords);
    return { hitless: true, syncs };
  }
  if (critical === 1) {
    unused[2 * criticalIndex] = cur[2 * criticalIndex]!;
    unused[2 * criticalIndex + 1] = cur[2 * criticalIndex + 1]!;
    set(unused, 0, qwords);
    set(target, criticalIndex, 1);
    set(target, 0, qwords);
    return { hitless: true, syncs };
  }
  unused[0] = 0;
  unused[1] = 0;
  set(unused, 0, 1);
  // Stryker disable next-line ArithmeticOperator: `set` skips qwords past the end (both sides read undefined)
  set(target, 1, qwords - 1);
  set(target, 0, 1);
  return { hitless: false, syncs };
}
