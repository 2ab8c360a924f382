/**
 * The x86-64 format: entries at known bit positions (Intel SDM Vol. 3A Tables 4-15 to 4-20), kinds and
 * reserved bits, the rights a walk grants, the hardware-managed A/D (and VT-d EA) bits, and the io-pgtable
 * matrix for 4 and 5 levels.
 */
import { errnoOf, PERM_EXEC, PERM_READ, PERM_WRITE } from '@iommukit/core';
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
import { LIMIT_NO_EXEC, LIMIT_READ_ONLY, LIMIT_SUPERVISOR, type X86LeafAttributes } from './descriptors.js';
import { type X86Config, x86Format } from './x86-format.js';

const RWX = PERM_READ | PERM_WRITE | PERM_EXEC;
const four = (config: Partial<X86Config> = {}) => x86Format({ levels: 4, oas: 46, ...config });

/** The two words `encodeLeaf` writes. */
function leaf(
  format = four(),
  pa: number,
  level: number,
  prot: Parameters<typeof format.leafTemplate>[0],
  tracked = false,
) {
  const out = new Uint32Array(2);
  format.encodeLeaf(pa, level, format.leafTemplate(prot, tracked), out, 0);
  return [out[0]!, out[1]!];
}

describe('x86-64 entries at known bit positions', () => {
  it('a 4 KiB page, read-write, user, not executable: P R/W U/S A D, XD (bit 63), address 51:12', () => {
    expect(leaf(four(), 0x1_2345_6000, 1, { read: true, write: true })).toEqual([0x2345_6067, 0x8000_0001]);
  });

  it('a 2 MiB page, read-only, supervisor, executable, device memory: PS, PCD and PWT, no D', () => {
    expect(
      leaf(four(), 0x4020_0000, 2, { read: true, write: false, exec: true, priv: true, memType: 'device' }),
    ).toEqual([0x4020_00b9, 0]);
  });

  it('a 1 GiB page, noncached: PCD only', () => {
    expect(leaf(four(), 0x80_4000_0000, 3, { read: true, write: true, memType: 'noncached' })).toEqual([
      0x4000_00f7, 0x8000_0080,
    ]);
  });

  it('a tracked writable leaf starts clean (D = 0); a table entry is P, R/W, U/S and A', () => {
    expect(leaf(four(), 0x5000, 1, { read: true, write: true }, true)).toEqual([0x5027, 0x8000_0000]);
    const out = new Uint32Array(2);
    four().encodeTable(0x3_1234_5000, 2, out, 0);
    expect([...out]).toEqual([0x1234_5027, 3]);
  });

  it('without XD enabled no entry gets XD; an executable mapping never has it', () => {
    expect(leaf(four({ executeDisable: false }), 0x5000, 1, { read: true, write: false })[1]).toBe(0);
    expect(leaf(four(), 0x5000, 1, { read: true, write: false, exec: true })[1]).toBe(0);
  });

  it('keeps PAT where each level has it: bit 7 in a PTE, bit 12 in a large leaf (with PS at bit 7)', () => {
    const f = four();
    const largeWithPat = 0x4020_0000 | 0x1000 | 0x80 | 0x27;
    const template = f.templateOf(largeWithPat, 0x8000_0000, 2);
    expect(template).toEqual({ lo: 0xa6, hi: 0x8000_0000 });
    const out = new Uint32Array(4);
    f.encodeLeaf(0x4020_1000, 1, template, out, 0);
    f.encodeLeaf(0x4040_0000, 2, template, out, 2);
    expect([...out]).toEqual([0x4020_10a7, 0x8000_0000, 0x4040_10a7, 0x8000_0000]);
    expect(f.templateOf(0x5000 | 0x80 | 0x400 | 0x67, 0, 1)).toEqual({ lo: 0x4e6, hi: 0 });
    // In a PTE bit 12 is an address bit: no PAT from it, and bit 7 is PAT, not PS.
    expect(f.templateOf(0x1067, 0, 1)).toEqual({ lo: 0x66, hi: 0 });
    expect(f.decodeLeaf(0x60a1, 0, 1, 0).pat).toBe(true);
    expect(f.decodeLeaf(0x1021, 0, 1, 0).pat).toBe(false);
    expect(f.decodeLeaf(0x4020_10a1, 0, 2, 0).pat).toBe(true);
    expect(f.decodeLeaf(0x4020_00a1, 0, 2, 0).pat).toBe(false);
    expect(f.decodeLeaf(0x50a1, 0, 1, 0).pat).toBe(true);
  });

  it('writes runs of leaves across a 4 GiB boundary as encodeLeaf writes each one', () => {
    const f = four({ oas: 52 });
    const template = f.leafTemplate({ read: true, write: true }, false);
    for (const level of [1, 2, 3]) {
      const span = 2 ** f.levelShift(level);
      const start = 2 ** 32 - 2 * span;
      // One entry more than the run: it must stay untouched.
      const run = new Uint32Array(10).fill(0xdead);
      f.encodeLeaves(start, level, template, run, 0, 4);
      expect([run[8], run[9]]).toEqual([0xdead, 0xdead]);
      const one = new Uint32Array(10).fill(0xdead);
      for (let k = 0; k < 4; k++) f.encodeLeaf(start + k * span, level, template, one, 2 * k);
      expect([...run], `level ${level}`).toEqual([...one]);
      expect(f.outputAddress(run[6]!, run[7]!, level)).toBe(start + 3 * span);
    }
  });
});

describe('x86-64 geometry and kinds', () => {
  it('4 levels index bits 47:12 from level 4 down; 5 levels add bits 56:48', () => {
    const f4 = four();
    const f5 = x86Format({ levels: 5, oas: 52 });
    expect([f4.startLevel, f4.leafLevel, f4.ias, f4.levels, f4.name]).toEqual([
      4,
      1,
      47,
      4,
      'x86-64 4-level oas46',
    ]);
    expect([f5.startLevel, f5.ias, f5.name]).toEqual([5, 56, 'x86-64 5-level oas52']);
    expect([1, 2, 3, 4, 5].map((l) => f5.levelShift(l))).toEqual([12, 21, 30, 39, 48]);
    expect([4, 3, 2].map((l) => f4.nextLevel(l))).toEqual([3, 2, 1]);
    const iova = 0x3d * 2 ** 48 + 0x1a5 * 2 ** 39 + 0x0c3 * 2 ** 30 + 0x1ff * 2 ** 21 + 0x101 * 2 ** 12 + 0x7;
    expect([5, 4, 3, 2, 1].map((l) => f5.index(iova, l))).toEqual([0x3d, 0x1a5, 0x0c3, 0x1ff, 0x101]);
    expect(f4.entries(4)).toBe(512);
  });

  it('leaves at levels 1 and 2, and 3 with 1 GiB pages', () => {
    expect(four().pgsizeBitmap).toBe((1n << 12n) | (1n << 21n) | (1n << 30n));
    expect(four({ gigaPages: false }).pgsizeBitmap).toBe((1n << 12n) | (1n << 21n));
    expect([1, 2, 3, 4].map((l) => four().leafAllowed(l))).toEqual([true, true, true, false]);
    expect(four({ gigaPages: false }).leafAllowed(3)).toBe(false);
    expect(four({ gigaPages: false }).name).toBe('x86-64 4-level oas46 no1G');
  });

  it.each([
    ['not present', 0x1006, 0, 1, DESC_INVALID],
    ['a PTE, bit 7 being PAT', 0x1081, 0, 1, DESC_LEAF],
    ['a PDE pointing at a table', 0x1001, 0, 2, DESC_TABLE],
    ['a 2 MiB page', 0x20_0081, 0, 2, DESC_LEAF],
    ['a 2 MiB page with PAT', 0x20_1081, 0, 2, DESC_LEAF],
    ['a 2 MiB page with bit 13 set', 0x20_2081, 0, 2, DESC_RESERVED],
    ['a 2 MiB page with bit 20 set', 0x30_0081, 0, 2, DESC_RESERVED],
    ['a 1 GiB page', 0x4000_0081, 0, 3, DESC_LEAF],
    ['a 1 GiB page with bit 29 set', 0x6000_0081, 0, 3, DESC_RESERVED],
    ['PS in a PML4E', 0x1081, 0, 4, DESC_RESERVED],
    ['a PML4E', 0x1001, 0, 4, DESC_TABLE],
    ['address bit 46 with a 46-bit width', 0x1001, 0x4000, 2, DESC_RESERVED],
    ['address bit 45 with a 46-bit width', 0x1001, 0x2000, 2, DESC_TABLE],
    ['address bit 51', 0x1001, 0x8_0000, 1, DESC_RESERVED],
    ['XD, enabled', 0x1001, 0x8000_0000, 1, DESC_LEAF],
    ['bits 62:52 (ignored)', 0x1001, 0x7ff0_0000, 1, DESC_LEAF],
  ])('%s', (_what, lo, hi, level, kind) => {
    expect(four().kind(lo, hi, level)).toBe(kind);
  });

  it('PS in a PDPTE without 1 GiB pages, and XD where XD is not enabled, are reserved', () => {
    expect(four({ gigaPages: false }).kind(0x4000_0081, 0, 3)).toBe(DESC_RESERVED);
    expect(four({ executeDisable: false }).kind(0x1001, 0x8000_0000, 1)).toBe(DESC_RESERVED);
    expect(x86Format({ levels: 4, oas: 52 }).kind(0x1001, 0x8_0000, 1)).toBe(DESC_LEAF);
  });

  it('refuses a level count or address width x86 does not have', () => {
    for (const [levels, oas] of [
      [3, 46],
      [4, 31],
      [5, 53],
      [4, 40.5],
    ] as const) {
      expect(errnoOf(() => x86Format({ levels: levels as 4, oas }))).toBe('EINVAL');
    }
    expect(x86Format({ levels: 4, oas: 32 }).oas).toBe(32);
    expect(() => x86Format({ levels: 3 as 4, oas: 60 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', context: { levels: 3, oas: 60 } }),
    );
  });
});

describe('x86-64 rights (SDM §4.6)', () => {
  const f = four();
  const attrs = (lo: number, hi = 0, limits = 0): X86LeafAttributes => f.decodeLeaf(lo | 1, hi, 1, limits);

  it('a user read-write executable page grants everything at both privilege levels', () => {
    expect(f.permissions(attrs(0x6), false, false)).toBe(RWX);
    expect(f.permissions(attrs(0x6), true, false)).toBe(RWX);
  });

  it('a supervisor page grants nothing to a user access', () => {
    expect(f.permissions(attrs(0x2), false, false)).toBe(0);
    expect(f.permissions(attrs(0x2), true, false)).toBe(RWX);
  });

  it('read-only stops writes, and supervisor writes only with write protection', () => {
    expect(f.permissions(attrs(0x4), false, false)).toBe(PERM_READ | PERM_EXEC);
    expect(f.permissions(attrs(0x4), true, false)).toBe(PERM_READ | PERM_EXEC);
    const noWp = four({ supervisorWriteProtect: false });
    expect(noWp.permissions(attrs(0x4), true, false)).toBe(RWX);
    expect(noWp.permissions(attrs(0x4), false, false)).toBe(PERM_READ | PERM_EXEC);
  });

  it('XD stops execution; the table limits above a leaf apply as its own bits would', () => {
    expect(f.permissions(attrs(0x6, 0x8000_0000), false, false)).toBe(PERM_READ | PERM_WRITE);
    expect(f.permissions(attrs(0x6, 0, LIMIT_READ_ONLY), false, false)).toBe(PERM_READ | PERM_EXEC);
    expect(f.permissions(attrs(0x6, 0, LIMIT_SUPERVISOR), false, false)).toBe(0);
    expect(f.permissions(attrs(0x6, 0, LIMIT_NO_EXEC), true, false)).toBe(PERM_READ | PERM_WRITE);
    expect(f.tableLimits(0x1, 0x8000_0000)).toBe(LIMIT_READ_ONLY | LIMIT_SUPERVISOR | LIMIT_NO_EXEC);
    expect(f.tableLimits(0x7, 0)).toBe(0);
  });

  it('decodes every attribute bit', () => {
    expect(attrs(0x567, 0x8000_0000)).toEqual({
      writable: true,
      user: true,
      executeDisable: true,
      accessed: true,
      dirty: true,
      global: true,
      pwt: false,
      pcd: false,
      pat: false,
      extendedAccessed: true,
    });
    expect(attrs(0x18)).toMatchObject({
      writable: false,
      user: false,
      pwt: true,
      pcd: true,
      accessed: false,
      dirty: false,
      global: false,
      extendedAccessed: false,
    });
  });
});

describe('x86-64 hardware-managed bits', () => {
  it('every writable leaf is tracked: D clear is clean, set is dirty; read-only leaves are untracked', () => {
    const f = four();
    expect(f.dirtyState(0x23, 0)).toBe(DIRTY_CLEAN);
    expect(f.dirtyState(0x63, 0)).toBe(DIRTY_DIRTY);
    expect(f.dirtyState(0x61, 0)).toBe(DIRTY_UNTRACKED);
    expect(f.markDirty(0x23)).toBe(0x63);
    expect(f.markClean(0x8000_0063)).toBe(0x8000_0023);
  });

  it('the accessed flag is A, or A and EA where the owner enables EA', () => {
    expect([four().accessFlag(0x21), four().accessFlag(0x1), four().setAccessFlag(0x1)]).toEqual([
      true,
      false,
      0x21,
    ]);
    const ea = four({ extendedAccessed: true });
    expect([ea.accessFlag(0x21), ea.accessFlag(0x421), ea.setAccessFlag(0x1)]).toEqual([false, true, 0x421]);
  });
});

describe('x86-64 walks', () => {
  const IOVA = 0x12_3456_7000;

  function mapped(config: Partial<X86Config> = {}, tracked = false) {
    const m = machine();
    const format = four(config);
    const table = new IoPageTable(format, m, { pageSizes: 1n << 12n, dirtyTracking: tracked });
    table.map(BigInt(IOVA), 0x9000_0000n, 0x1000n, { read: true, write: true });
    const steps: number[] = [];
    walk(format, table.rootPa, IOVA, {
      bus: m.bus,
      counter: m.counter,
      onStep: (_l, address) => steps.push(address),
    });
    const run = (options: { access?: number; hardwareAccessFlag?: boolean; hardwareDirty?: boolean } = {}) =>
      walk(format, table.rootPa, IOVA + 0x10, { bus: m.bus, counter: m.bus.counter('walker'), ...options });
    return { m, format, table, steps, run };
  }

  it('translates through four levels (five with PML5)', () => {
    const { run, steps } = mapped();
    const r = run();
    expect(r.ok && [r.pa, r.level, r.pageShift, r.reads]).toEqual([0x9000_0010, 1, 12, 4]);
    expect(steps).toHaveLength(4);
    const m = machine();
    const f5 = x86Format({ levels: 5, oas: 52 });
    const t5 = new IoPageTable(f5, m);
    t5.map(2n ** 50n, 0x9000_0000n, 0x1000n, { read: true, write: false });
    const r5 = walk(f5, t5.rootPa, 2 ** 50 + 4, { bus: m.bus, counter: m.counter });
    expect(r5.ok && [r5.pa, r5.reads]).toEqual([0x9000_0004, 5]);
  });

  it('a non-canonical input (at or above 2^47 with 4 levels) faults before any read', () => {
    const { format, table, m } = mapped();
    const r = walk(format, table.rootPa, 2 ** 47, { bus: m.bus, counter: m.counter });
    expect(r.ok ? 'ok' : [r.fault.kind, r.reads]).toEqual(['translation', 0]);
  });

  it('sets A in every entry it uses with hardware A (and EA where enabled), and writes nothing when set', () => {
    for (const extendedAccessed of [false, true]) {
      const { m, steps, run } = mapped({ extendedAccessed });
      const bits = extendedAccessed ? 0x420 : 0x20;
      for (const at of steps) {
        const [lo, hi] = readDesc(m, at);
        writeDesc(m, at, lo & ~0x420, hi);
      }
      const writes = m.counter.writes;
      const r = run({ hardwareAccessFlag: true });
      expect(r.ok).toBe(true);
      for (const at of steps) expect(readDesc(m, at)[0] & bits, `entry at ${at.toString(16)}`).toBe(bits);
      const written = m.bus.counter('walker').writes;
      expect(written).toBe(4);
      run({ hardwareAccessFlag: true });
      expect(m.bus.counter('walker').writes).toBe(written);
      expect(m.counter.writes).toBe(writes);
    }
  });

  it('a nested walk translates a table entry for the write that sets its A, and stops if that is refused', () => {
    const { m, steps, format, table } = mapped();
    const [lo, hi] = readDesc(m, steps[1]!);
    writeDesc(m, steps[1]!, lo & ~0x20, hi);
    const calls: [number, number, number][] = [];
    const nested = (refuse: boolean) =>
      walk(format, table.rootPa, IOVA, {
        bus: m.bus,
        counter: m.counter,
        hardwareAccessFlag: true,
        translateTableAddress: (address, level, access) => {
          calls.push([address, level, access]);
          return refuse && access === PERM_WRITE ? { kind: 'translation', level: 3 } : address;
        },
      });
    const refused = nested(true);
    expect(refused.ok ? 'ok' : [refused.fault.kind, refused.fault.level, refused.fault.address]).toEqual([
      'translation',
      3,
      steps[1],
    ]);
    expect(calls).toEqual([
      [steps[0], 4, PERM_READ],
      [steps[1], 3, PERM_READ],
      [steps[1], 3, PERM_WRITE],
    ]);
    expect(readDesc(m, steps[1]!)[0] & 0x20).toBe(0);
    calls.length = 0;
    expect(nested(false).ok).toBe(true);
    expect(calls.filter(([, , access]) => access === PERM_WRITE)).toEqual([[steps[1], 3, PERM_WRITE]]);
    expect(readDesc(m, steps[1]!)[0] & 0x20).toBe(0x20);
  });

  it('without hardware A, table entries are used as they are and a leaf without A faults', () => {
    const { m, steps, run } = mapped();
    const [lo, hi] = readDesc(m, steps[0]!);
    writeDesc(m, steps[0]!, lo & ~0x20, hi);
    expect(run().ok).toBe(true);
    const [leafLo, leafHi] = readDesc(m, steps[3]!);
    writeDesc(m, steps[3]!, leafLo & ~0x20, leafHi);
    const r = run();
    expect(r.ok ? 'ok' : [r.fault.kind, r.fault.level]).toEqual(['access-flag', 1]);
  });

  it('sets D on a write through a clean writable leaf', () => {
    const { m, steps, run } = mapped({}, true);
    expect(readDesc(m, steps[3]!)[0] & 0x40).toBe(0);
    expect(run({ access: PERM_READ, hardwareAccessFlag: true, hardwareDirty: true }).ok).toBe(true);
    expect(readDesc(m, steps[3]!)[0] & 0x40).toBe(0);
    expect(run({ access: PERM_WRITE, hardwareAccessFlag: true, hardwareDirty: true }).ok).toBe(true);
    expect(readDesc(m, steps[3]!)[0] & 0x40).toBe(0x40);
  });

  it('a reserved bit stops the walk with a reserved fault at its level', () => {
    const { m, steps, run } = mapped();
    const [lo, hi] = readDesc(m, steps[2]!);
    writeDesc(m, steps[2]!, lo, hi | 0x4000);
    const r = run();
    expect(r.ok ? 'ok' : [r.fault.kind, r.fault.level, r.reads]).toEqual(['reserved', 2, 3]);
    writeDesc(m, steps[2]!, lo, hi);
    const [top, topHi] = readDesc(m, steps[0]!);
    writeDesc(m, steps[0]!, top | 0x80, topHi);
    const r4 = run();
    expect(r4.ok ? 'ok' : [r4.fault.kind, r4.fault.level]).toEqual(['reserved', 4]);
  });

  it('an io-pgtable leaves a reserved entry alone: occupied for map, skipped by unmap', () => {
    const { m, steps, table } = mapped();
    const [lo, hi] = readDesc(m, steps[3]!);
    writeDesc(m, steps[3]!, lo, hi | 0x4000);
    expect(table.iovaToPhys(BigInt(IOVA))).toBeUndefined();
    expect(errnoOf(() => table.map(BigInt(IOVA), 0x9000_0000n, 0x1000n, { read: true, write: true }))).toBe(
      'EEXIST',
    );
    expect(table.unmap(BigInt(IOVA), 0x1000n)).toBe(0n);
    expect(readDesc(m, steps[3]!)).toEqual([lo, (hi | 0x4000) >>> 0]);
  });
});

describe('x86-64 io-pgtable matrix', () => {
  for (const levels of [4, 5] as const) {
    for (const gigaPages of [true, false]) {
      for (const oas of [46, 52]) {
        it(`${levels} levels, ${gigaPages ? 'with' : 'without'} 1 GiB pages, ${oas}-bit addresses`, () => {
          runSelftestMatrix(x86Format({ levels, oas, gigaPages }));
        });
      }
    }
  }
});
