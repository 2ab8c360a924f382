/**
 * The used-bits writer on a toy 3-qword entry whose layout makes each case easy to see: q0 bit 0 is V,
 * q0 bits 1–2 a mode; mode 1 uses q1, mode 2 uses q2, mode 3 both; V = 0 uses nothing else. The STE/CD
 * oracle cases (Linux KUnit) run against the real layouts in the driver's tests.
 */
import { describe, expect, it } from 'vitest';
import { type EntryWords, writeEntry } from './entry-writer.js';

const entry = (...qwords: [number, number, number]) => Uint32Array.from(qwords.flatMap((q) => [q, 0]));

function used(e: EntryWords): EntryWords {
  const mask = new Uint32Array(e.length);
  mask[0] = 1;
  if ((e[0]! & 1) === 0) return mask;
  mask[0] = 0b111;
  const mode = (e[0]! >>> 1) & 3;
  if (mode === 1) mask[2] = 0xffff_ffff;
  if (mode === 2) mask[4] = 0xffff_ffff;
  if (mode === 3) mask[2] = mask[4] = 0xffff_ffff;
  return mask;
}

/** Decodes what the hardware would use: the configuration the entry selects, or 'invalid'. */
function config(e: EntryWords): string {
  const u = used(e);
  return [...e].map((w, i) => (w & u[i]!) >>> 0).join(',');
}

function run(from: EntryWords, to: EntryWords) {
  const cur = Uint32Array.from(from);
  const seen: string[] = [];
  /** The qwords written, with 'sync' where each sync went. */
  const steps: (number | 'sync')[] = [];
  let vZeroWritten = false;
  const outcome = writeEntry(cur, to, {
    used,
    writeQword(index, lo) {
      steps.push(index);
      if (index === 0 && (lo & 1) === 0 && (to[0]! & 1) === 1) vZeroWritten = true;
    },
    sync: () => {
      steps.push('sync');
      seen.push(config(cur));
    },
  });
  return { cur, outcome, seen, steps, vZeroWritten };
}

describe('writeEntry (used-bits algorithm)', () => {
  it('changes only unused bits with one sync when no used bit differs', () => {
    const { cur, outcome, vZeroWritten } = run(entry(0b011, 5, 77), entry(0b011, 5, 99));
    expect(cur).toEqual(entry(0b011, 5, 99));
    expect(outcome).toEqual({ hitless: true, syncs: 1 });
    expect(vZeroWritten).toBe(false);
  });

  it('is hitless when one qword carries the change: every sync shows the old or the new configuration', () => {
    const from = entry(0b011, 5, 0);
    const to = entry(0b101, 0, 9); // mode 1 → mode 2: q0 is the only critical qword
    const { cur, outcome, seen, vZeroWritten } = run(from, to);
    expect(cur).toEqual(to);
    expect(outcome.hitless).toBe(true);
    expect(outcome.syncs).toBe(3);
    for (const c of seen) expect([config(from), config(to)]).toContain(c);
    expect(vZeroWritten).toBe(false);
  });

  it('breaks (V = 0) when two qwords carry used changes, and never shows a torn configuration', () => {
    const from = entry(0b011, 5, 0);
    const to = entry(0b011, 6, 0);
    // Same mode, but q1 changes while q0 stays: one critical qword (q1) — hitless.
    expect(run(from, to).outcome).toEqual({ hitless: true, syncs: 1 });
    // Mode 1 → mode 2 while also changing q2 and q1: q0 and q2 are both critical.
    const wide = run(entry(0b011, 5, 1), entry(0b101, 7, 2));
    expect(wide.outcome).toEqual({ hitless: false, syncs: 3 });
    expect(wide.vZeroWritten).toBe(true);
    expect(wide.seen[0]).toBe(config(entry(0, 0, 0)));
  });

  // Linux's contract (arm_smmu_entry_qword_diff): a target sets no bit its own configuration ignores.
  it('no critical qword: the changes to unused bits go out together, with one sync', () => {
    // Mode 1 ignores q2: clearing a stale value there changes nothing the hardware uses.
    const { cur, outcome, steps } = run(entry(0b011, 5, 77), entry(0b011, 5, 0));
    expect(cur).toEqual(entry(0b011, 5, 0));
    expect(outcome).toEqual({ hitless: true, syncs: 1 });
    expect(steps).toEqual([2, 'sync']);
  });

  it('only qword 1 critical: the unused changes go first, then qword 1 alone', () => {
    // Mode 1 uses q1 (critical: 5 → 6) and ignores q2 (77 → 0), which can change first.
    const from = entry(0b011, 5, 77);
    const to = entry(0b011, 6, 0);
    const { cur, outcome, seen, steps } = run(from, to);
    expect(cur).toEqual(to);
    expect(outcome).toEqual({ hitless: true, syncs: 2 });
    expect(steps).toEqual([2, 'sync', 1, 'sync']);
    expect(seen).toEqual([config(from), config(to)]);
  });

  it('only qword 0 critical: unused bits, then qword 0, then what the new configuration ignores', () => {
    // Mode 1 → mode 2: q2 is unused before (written first), q1 unused after (cleared last).
    const from = entry(0b011, 5, 0);
    const to = entry(0b101, 0, 9);
    const { outcome, steps, seen } = run(from, to);
    expect(outcome).toEqual({ hitless: true, syncs: 3 });
    expect(steps).toEqual([2, 'sync', 0, 'sync', 1, 'sync']);
    expect(seen).toEqual([config(from), config(to), config(to)]);
  });

  it('breaking: qword 0 is cleared first, then qwords 1..n−1, then qword 0', () => {
    // Mode 3 uses q1 and q2: both change, so no single 64-bit store switches the configuration.
    const from = entry(0b111, 5, 1);
    const to = entry(0b111, 6, 2);
    const { cur, outcome, steps, seen } = run(from, to);
    expect(cur).toEqual(to);
    expect(outcome).toEqual({ hitless: false, syncs: 3 });
    expect(steps).toEqual([0, 'sync', 1, 2, 'sync', 0, 'sync']);
    expect(seen).toEqual([config(entry(0, 0, 0)), config(entry(0, 0, 0)), config(to)]);
  });

  it('does nothing (no sync) when the entry is already the target', () => {
    expect(run(entry(0b011, 5, 0), entry(0b011, 5, 0)).outcome).toEqual({ hitless: true, syncs: 0 });
  });
});
