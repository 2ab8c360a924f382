/**
 * The AMD v1 host page table: entries at known bit positions (48882 §2.2.3), kinds by NextLevel, walks that
 * skip levels and read NextLevel-7 leaves of encoded sizes, rights down the walk, HAD, and the io-pgtable
 * matrix for Modes 3 to 5.
 */
import { errnoOf, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { machine, readDesc, writeDesc } from '../../test/fixtures.js';
import { runSelftestMatrix } from '../../test/selftest-matrix.js';
import {
  DESC_INVALID,
  DESC_LEAF,
  DESC_RESERVED,
  DESC_TABLE,
  DIRTY_CLEAN,
  DIRTY_DIRTY,
  DIRTY_UNTRACKED,
} from '../format.js';
import { IoPageTable } from '../io-page-table.js';
import { walk } from '../walk.js';
import { AMD_LIMIT_NO_READ, AMD_LIMIT_NO_WRITE, amdSizedLeafShift } from './v1-descriptors.js';
import { type AmdV1Config, amdV1Format } from './v1-format.js';

const v1 = (config: Partial<AmdV1Config> = {}) => amdV1Format({ levels: 4, oas: 48, ...config });
const RW = { read: true, write: true } as const;

describe('AMD v1 entries at known bit positions', () => {
  it('a leaf: PR, NextLevel 0, the address, IR (61) and IW (62); FC (60) when forced', () => {
    const f = v1();
    const out = new Uint32Array(6);
    f.encodeLeaf(0x1_2345_6000, 1, f.leafTemplate(RW, false), out, 0);
    f.encodeLeaf(0x4020_0000, 2, f.leafTemplate({ read: true, write: false }, false), out, 2);
    const fc = v1({ forceCoherent: true });
    fc.encodeLeaf(0x5000, 1, fc.leafTemplate({ read: false, write: true }, false), out, 4);
    expect([...out]).toEqual([0x2345_6001, 0x6000_0001, 0x4020_0001, 0x2000_0000, 0x5001, 0x5000_0000]);
  });

  it('a table entry: PR, NextLevel of the level below, IR and IW', () => {
    const out = new Uint32Array(2);
    v1().encodeTable(0x3_1234_5000, 4, out, 0);
    expect([...out]).toEqual([0x1234_5601, 0x6000_0003]);
  });

  it('keeps A, D, IR, IW, FC, U and PMC when re-stamped', () => {
    expect(v1().templateOf(0x4020_0061, 0xfe00_0003, 2)).toEqual({ lo: 0x60, hi: 0x7e00_0000 });
    expect(v1().decodeLeaf(0x61, 0x7e00_0000, 1, 0)).toEqual({
      readable: true,
      writable: true,
      accessed: true,
      dirty: true,
      forceCoherent: true,
      untranslatedOnly: true,
      pmc: 0b11,
    });
    expect(v1().decodeLeaf(0x1, 0, 1, 0)).toEqual({
      readable: false,
      writable: false,
      accessed: false,
      dirty: false,
      forceCoherent: false,
      untranslatedOnly: false,
      pmc: 0,
    });
  });

  it('reads the size of a NextLevel-7 leaf from the ones above bit 11', () => {
    expect(amdSizedLeafShift(0x0000_0e01, 0)).toBe(13); // no ones from bit 12: 8 KiB
    expect(amdSizedLeafShift(0x0000_1e01, 0)).toBe(14); // 16 KiB
    expect(amdSizedLeafShift(0x001f_fe01, 0)).toBe(22); // nine ones: 4 MiB
    expect(amdSizedLeafShift(0xffff_fe01, 0x3)).toBe(35); // twenty plus two ones
    expect(amdSizedLeafShift(0xffff_fe01, 0)).toBe(33);
    // High-word ones count only after twenty in the low word, and only in the address field (bits 51:32).
    expect(amdSizedLeafShift(0x0000_1e01, 1 << 13)).toBe(14);
    expect(amdSizedLeafShift(0xffff_fe01, 0xffff_ffff)).toBe(53);
  });
});

describe('AMD v1 geometry and kinds', () => {
  it('Mode 1 to 6 decode 21 to 64 input bits; leaves of 4 KiB, 2 MiB and 1 GiB below the top level', () => {
    expect([1, 2, 3, 4, 5, 6].map((levels) => v1({ levels: levels as 4 }).ias)).toEqual([
      21, 30, 39, 48, 57, 64,
    ]);
    expect(v1().pgsizeBitmap).toBe((1n << 12n) | (1n << 21n) | (1n << 30n));
    expect(v1({ levels: 2 }).pgsizeBitmap).toBe(1n << 12n);
    expect(v1({ levels: 3 }).pgsizeBitmap).toBe((1n << 12n) | (1n << 21n));
    expect([1, 2, 3, 4].map((l) => v1({ levels: 6 }).leafAllowed(l))).toEqual([true, true, true, false]);
    expect(v1({ hostAccessDirty: 'accessed-dirty' }).name).toBe('amd v1 mode 4 oas48 had=accessed-dirty');
    expect(v1().name).toBe('amd v1 mode 4 oas48');
  });

  it.each([
    ['not present', 0x1000, 0x6000_0000, 1, DESC_INVALID],
    ['a 4 KiB page', 0x1001, 0x6000_0000, 1, DESC_LEAF],
    ['NextLevel 1 at level 1', 0x1201, 0, 1, DESC_RESERVED],
    ['a table of level 1 under level 2', 0x1201, 0, 2, DESC_TABLE],
    ['a table of level 1 under level 3 (skipping 2)', 0x1201, 0, 3, DESC_TABLE],
    ['NextLevel 3 at level 3', 0x1601, 0, 3, DESC_RESERVED],
    ['a natural 2 MiB page', 0x20_0001, 0, 2, DESC_LEAF],
    ['a natural 2 MiB page, misaligned', 0x20_1001, 0, 2, DESC_RESERVED],
    ['a natural leaf at level 4', 0x1, 0, 4, DESC_RESERVED],
    ['an 8 KiB page at level 1', 0x0e01, 0, 1, DESC_LEAF],
    ['a 1 MiB page at level 1 (256 × 4 KiB)', 0x7_fe01, 0, 1, DESC_LEAF],
    ['a 2 MiB page at level 1 (too large)', 0xf_fe01, 0, 1, DESC_RESERVED],
    ['a 4 MiB page at level 2', 0x1f_fe01, 0, 2, DESC_LEAF],
    ['an 8 KiB page at level 2 (too small)', 0x0e01, 0, 2, DESC_RESERVED],
    ['a sized leaf at level 4', 0x0e01, 0, 4, DESC_RESERVED],
    ['address bit 48 with a 48-bit width', 0x1001, 0x1_0000, 1, DESC_RESERVED],
  ])('%s', (_what, lo, hi, level, kind) => {
    expect(v1().kind(lo, hi, level)).toBe(kind);
  });

  it('no leaf of any kind at the top level, and sized leaves only up to level 3', () => {
    // A 4 MiB sized leaf at level 2: fine below the top (Mode 3), reserved at the top (Mode 2).
    expect(v1({ levels: 3 }).kind(0x1f_fe01, 0, 2)).toBe(DESC_LEAF);
    expect(v1({ levels: 2 }).kind(0x1f_fe01, 0, 2)).toBe(DESC_RESERVED);
    expect(v1({ levels: 2 }).kind(0x20_0001, 0, 2)).toBe(DESC_RESERVED);
    // A 512 GiB sized leaf (26 ones) at level 4, below the top of Mode 6: reserved all the same.
    expect(v1({ levels: 6 }).kind(0xffff_fe01, 0x3f, 4)).toBe(DESC_RESERVED);
    // A sized leaf of exactly the natural size is one.
    expect(v1().kind(0x0f_fe01, 0, 2)).toBe(DESC_LEAF);
  });

  it('refuses a Mode or width the hardware cannot have', () => {
    for (const config of [
      { levels: 0 },
      { levels: 7 },
      { levels: 2.5 },
      { oas: 31 },
      { oas: 53 },
      { oas: 40.5 },
    ])
      expect(
        errnoOf(() => v1(config as Partial<AmdV1Config>)),
        JSON.stringify(config),
      ).toBe('EINVAL');
    expect(() => v1({ levels: 9 as 6 })).toThrow(
      expect.objectContaining({ context: { levels: 9, oas: 48 } }),
    );
    expect([v1({ oas: 32 }).oas, v1({ oas: 52 }).oas, v1({ levels: 1 }).levels]).toEqual([32, 52, 1]);
  });
});

describe('AMD v1 rights and A/D', () => {
  it('grants reads and writes as IR and IW say, down the walk', () => {
    const f = v1();
    const perm = (hi: number, limits = 0) => f.permissions(f.decodeLeaf(0x1, hi, 1, limits), false, false);
    expect([perm(0x6000_0000), perm(0x2000_0000), perm(0x4000_0000), perm(0)]).toEqual([
      PERM_READ | PERM_WRITE,
      PERM_READ,
      PERM_WRITE,
      0,
    ]);
    expect([perm(0x6000_0000, AMD_LIMIT_NO_READ), perm(0x6000_0000, AMD_LIMIT_NO_WRITE)]).toEqual([
      PERM_WRITE,
      PERM_READ,
    ]);
    expect([f.tableLimits(0, 0x2000_0000), f.tableLimits(0, 0x4000_0000)]).toEqual([
      AMD_LIMIT_NO_WRITE,
      AMD_LIMIT_NO_READ,
    ]);
  });

  it('HAD none, A, or A and D', () => {
    const none = v1();
    expect([none.accessFlag(0x1), none.tableAccessFlag, none.dirtyState(0x1, 0x6000_0000)]).toEqual([
      true,
      false,
      DIRTY_UNTRACKED,
    ]);
    const a = v1({ hostAccessDirty: 'accessed' });
    expect([a.accessFlag(0x1), a.accessFlag(0x21), a.setAccessFlag(0x1), a.tableAccessFlag]).toEqual([
      false,
      true,
      0x21,
      true,
    ]);
    expect(a.dirtyState(0x1, 0x6000_0000)).toBe(DIRTY_UNTRACKED);
    const ad = v1({ hostAccessDirty: 'accessed-dirty' });
    expect([
      ad.dirtyState(0x1, 0x6000_0000),
      ad.dirtyState(0x41, 0x6000_0000),
      ad.dirtyState(0x1, 0x2000_0000),
    ]).toEqual([DIRTY_CLEAN, DIRTY_DIRTY, DIRTY_UNTRACKED]);
    expect([ad.markDirty(0x1), ad.markClean(0x41)]).toEqual([0x41, 0x1]);
  });
});

describe('AMD v1 walks', () => {
  it('follows a PDE that skips a level when the skipped index bits are zero, and faults otherwise', () => {
    const m = machine();
    const f = v1({ levels: 3 });
    const root = 0x8000_0000;
    const pt = 0x8000_1000;
    const page = 0x9000_0000;
    // Level 3 → straight to a level-1 table (NextLevel 1): level 2's index bits (29:21) must be zero.
    writeDesc(m, root + 8 * 1, (pt | 0x201) >>> 0, 0x6000_0000);
    writeDesc(m, pt + 8 * 5, (page | 0x1) >>> 0, 0x6000_0000);
    const iova = 2 ** 30 + 5 * 4096 + 0x10;
    const r = walk(f, root, iova, { bus: m.bus, counter: m.counter });
    expect(r.ok && [r.pa, r.level, r.pageShift, r.reads]).toEqual([page + 0x10, 1, 12, 2]);
    const off = walk(f, root, iova + 2 ** 21, { bus: m.bus, counter: m.counter });
    expect(off.ok ? 'ok' : [off.fault.kind, off.fault.level, off.reads]).toEqual(['translation', 3, 1]);
  });

  it('a skipping table is not offered to a walk cache; a normal one is', () => {
    const m = machine();
    const f = v1({ levels: 3 });
    const root = 0x8000_0000;
    writeDesc(m, root, 0x8000_1201, 0x6000_0000); // skips level 2
    writeDesc(m, 0x8000_1000, 0x9000_0001, 0x6000_0000);
    const filled: number[] = [];
    const cache = { find: () => -1, table: 0, limits: 0, fill: (level: number) => filled.push(level) };
    expect(walk(f, root, 0, { bus: m.bus, counter: m.counter, tableCache: cache }).ok).toBe(true);
    expect(filled).toEqual([]);
    const t = new IoPageTable(f, m);
    t.map(1n << 31n, 0x9000_0000n, 0x1000n, RW);
    expect(walk(f, t.rootPa, 2 ** 31, { bus: m.bus, counter: m.counter, tableCache: cache }).ok).toBe(true);
    expect(filled).toEqual([2, 1]);
  });

  it('reads a NextLevel-7 leaf replicated over the entries it covers, at its encoded size', () => {
    const m = machine();
    const f = v1({ levels: 3 });
    const t = new IoPageTable(f, m, { pageSizes: 1n << 12n });
    t.map(0n, 0x9000_0000n, 0x1000n, RW); // builds the tables
    const steps: number[] = [];
    walk(f, t.rootPa, 0, { bus: m.bus, counter: m.counter, onStep: (_l, a) => steps.push(a) });
    // A 16 KiB page at 0x9000_4000: address bits 12..13 = 1, 0 (one one from bit 12), in entries 4 to 7.
    const lo = (0x9000_4000 | 0x1000 | 0xe01) >>> 0;
    for (let k = 4; k < 8; k++) writeDesc(m, steps[2]! + 8 * (k - 0), lo, 0x6000_0000);
    const r = walk(f, t.rootPa, 6 * 4096 + 0x42, { bus: m.bus, counter: m.counter });
    expect(r.ok && [r.pa, r.pageShift]).toEqual([0x9000_4000 + 2 * 4096 + 0x42, 14]);
    expect(readDesc(m, steps[2]! + 8 * 7)[0]).toBe(lo);
  });

  it('with HAD A/D sets A in every entry it uses and D on a write', () => {
    const m = machine();
    const f = v1({ hostAccessDirty: 'accessed-dirty' });
    const t = new IoPageTable(f, m, { pageSizes: 1n << 12n, dirtyTracking: true });
    t.map(0x1234_5000n, 0x9000_0000n, 0x1000n, RW);
    const steps: number[] = [];
    const r = walk(f, t.rootPa, 0x1234_5000, {
      bus: m.bus,
      counter: m.bus.counter('hw'),
      access: PERM_WRITE,
      hardwareAccessFlag: true,
      hardwareDirty: true,
      onStep: (_l, a) => steps.push(a),
    });
    expect(r.ok).toBe(true);
    expect(steps.map((a) => readDesc(m, a)[0] & 0x60)).toEqual([0x20, 0x20, 0x20, 0x60]);
  });
});

describe('AMD v1 io-pgtable matrix', () => {
  for (const levels of [3, 4, 5] as const) {
    it(`Mode ${levels}`, () => {
      runSelftestMatrix(amdV1Format({ levels, oas: 48 }));
    });
  }
});
