/**
 * The VT-d second-stage format: entries at known bit positions (VT-d §9.8), kinds and reserved bits, the
 * rights down a walk, A/D with SSADE, and the io-pgtable matrix for 3, 4 and 5 levels.
 */
import { errnoOf, PERM_EXEC, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { machine, readDesc, writeDesc } from '../../test/fixtures.js';
import { runSelftestMatrix } from '../../test/selftest-matrix.js';
import { writeAddressRun } from '../address-run.js';
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
import { VTD_SS_LIMIT_NO_EXEC, VTD_SS_LIMIT_NO_READ, VTD_SS_LIMIT_NO_WRITE } from './ss-descriptors.js';
import { type VtdSsConfig, vtdSsFormat } from './ss-format.js';

const ss = (config: Partial<VtdSsConfig> = {}) => vtdSsFormat({ levels: 4, oas: 46, ...config });

function leaf(format = ss(), pa: number, level: number, prot: { read: boolean; write: boolean }) {
  const out = new Uint32Array(2);
  format.encodeLeaf(pa, level, format.leafTemplate(prot, false), out, 0);
  return [out[0]!, out[1]!];
}

describe('VT-d second-stage entries at known bit positions', () => {
  it('R, W, PS and the address in bits 51:12; SNP with forced coherency; tables R and W', () => {
    expect(leaf(ss(), 0x1_2345_6000, 1, { read: true, write: true })).toEqual([0x2345_6003, 1]);
    expect(leaf(ss(), 0x4020_0000, 2, { read: true, write: false })).toEqual([0x4020_0081, 0]);
    expect(leaf(ss(), 0x8_4000_0000, 3, { read: false, write: true })).toEqual([0x4000_0082, 8]);
    expect(leaf(ss({ forceSnoop: true }), 0x5000, 1, { read: true, write: false })).toEqual([0x5801, 0]);
    const out = new Uint32Array(2);
    ss().encodeTable(0x3_1234_5000, 2, out, 0);
    expect([...out]).toEqual([0x1234_5003, 3]);
  });

  it('keeps a leaf’s attributes (not A/D state bits beyond the template, not PS) when re-stamped', () => {
    const f = ss();
    expect(f.templateOf(0x4020_0b83, 0x4000_0000, 2)).toEqual({ lo: 0xb03, hi: 0x4000_0000 });
    expect(f.templateOf(0x5079, 0, 1)).toEqual({ lo: 0x79, hi: 0 });
    expect(f.decodeLeaf(0x5379, 0x4000_0000, 1, 0)).toEqual({
      readable: true,
      writable: false,
      executable: false,
      accessed: true,
      dirty: true,
      snoop: false,
      emt: 0b111,
      ipat: true,
      transientMapping: true,
    });
    expect(f.decodeLeaf(0x0800, 0, 1, 0)).toEqual({
      readable: false,
      writable: false,
      executable: false,
      accessed: false,
      dirty: false,
      snoop: true,
      emt: 0,
      ipat: false,
      transientMapping: false,
    });
  });

  it('writes runs of leaves as encodeLeaf writes each one, across 4 GiB', () => {
    const f = ss({ oas: 52 });
    const template = f.leafTemplate({ read: true, write: true }, false);
    for (const level of [1, 2, 3]) {
      const span = 2 ** f.levelShift(level);
      const run = new Uint32Array(8);
      f.encodeLeaves(2 ** 32 - 2 * span, level, template, run, 0, 4);
      const one = new Uint32Array(8);
      for (let k = 0; k < 4; k++) f.encodeLeaf(2 ** 32 + (k - 2) * span, level, template, one, 2 * k);
      expect([...run], `level ${level}`).toEqual([...one]);
    }
  });

  it('writeAddressRun carries into the high word as often as the run crosses 4 GiB boundaries', () => {
    const out = new Uint32Array(6);
    writeAddressRun(2 ** 32 - 2 ** 31, 2 ** 31, 1, 0x100, out, 0, 3);
    expect([...out]).toEqual([0x8000_0001, 0x100, 1, 0x101, 0x8000_0001, 0x101]);
  });
});

describe('VT-d second-stage geometry and kinds', () => {
  it('3, 4 and 5 levels address 39, 48 and 57 bits', () => {
    expect([3, 4, 5].map((levels) => vtdSsFormat({ levels: levels as 3, oas: 48 }).ias)).toEqual([
      39, 48, 57,
    ]);
    const f = ss();
    expect([f.startLevel, f.leafLevel, f.nextLevel(4), f.entries(4), f.levelShift(3)]).toEqual([
      4, 1, 3, 512, 30,
    ]);
    const iova = 0x1a5 * 2 ** 39 + 0x0c3 * 2 ** 30 + 0x1ff * 2 ** 21 + 0x101 * 2 ** 12;
    expect([4, 3, 2, 1].map((l) => f.index(iova, l))).toEqual([0x1a5, 0x0c3, 0x1ff, 0x101]);
    expect(f.name).toBe('vt-d second stage 4-level oas46 sllps3');
    expect(ss({ accessedDirty: true, sllps: 1 }).name).toBe('vt-d second stage 4-level oas46 sllps1 ad');
  });

  it('has 2 MiB and 1 GiB pages as SLLPS says', () => {
    expect([0, 1, 2, 3].map((sllps) => ss({ sllps }).pgsizeBitmap)).toEqual([
      1n << 12n,
      (1n << 12n) | (1n << 21n),
      (1n << 12n) | (1n << 30n),
      (1n << 12n) | (1n << 21n) | (1n << 30n),
    ]);
    expect([1, 2, 3, 4].map((l) => ss({ sllps: 2 }).leafAllowed(l))).toEqual([true, false, true, false]);
  });

  it.each([
    ['neither R nor W', 0x1000, 0, 1, DESC_INVALID],
    ['write only', 0x1002, 0, 1, DESC_LEAF],
    ['X (bit 2)', 0x1005, 0, 1, DESC_RESERVED],
    ['a table', 0x1003, 0, 2, DESC_TABLE],
    ['a 2 MiB page', 0x20_0081, 0, 2, DESC_LEAF],
    ['a 2 MiB page with bit 12 set', 0x20_1081, 0, 2, DESC_RESERVED],
    ['a 1 GiB page', 0x4000_0081, 0, 3, DESC_LEAF],
    ['a 1 GiB page with bit 29 set', 0x6000_0081, 0, 3, DESC_RESERVED],
    ['PS in an SS-PML4E', 0x1083, 0, 4, DESC_RESERVED],
    ['address bit 46 with a 46-bit width', 0x1003, 0x4000, 2, DESC_RESERVED],
    ['ignored bits 10, 61:52, 63', 0x1403, 0xbff0_0000, 1, DESC_LEAF],
  ])('%s', (_what, lo, hi, level, kind) => {
    expect(ss().kind(lo, hi, level)).toBe(kind);
  });

  it('PS where SLLPS has no such page is reserved', () => {
    expect(ss({ sllps: 2 }).kind(0x20_0081, 0, 2)).toBe(DESC_RESERVED);
    expect(ss({ sllps: 1 }).kind(0x4000_0081, 0, 3)).toBe(DESC_RESERVED);
  });

  it('refuses what the hardware cannot have', () => {
    for (const config of [
      { levels: 2 },
      { oas: 31 },
      { oas: 53 },
      { sllps: 4 },
      { sllps: -1 },
      { sllps: 1.5 },
    ]) {
      expect(
        errnoOf(() => ss(config as Partial<VtdSsConfig>)),
        JSON.stringify(config),
      ).toBe('EINVAL');
    }
    expect([ss({ oas: 32 }).oas, ss({ oas: 52 }).oas, ss({ sllps: 0 }).sllps]).toEqual([32, 52, 0]);
    expect(() => ss({ levels: 6 as 5, sllps: 9 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', context: { levels: 6, oas: 46, sllps: 9 } }),
    );
  });
});

describe('VT-d second-stage rights and A/D', () => {
  const f = ss();

  it('grants read and write as R and W say, down the walk; execute never without the legacy switch', () => {
    expect(f.permissions(f.decodeLeaf(0x3, 0, 1, 0), false, false)).toBe(PERM_READ | PERM_WRITE);
    expect(f.permissions(f.decodeLeaf(0x2, 0, 1, 0), true, false)).toBe(PERM_WRITE);
    expect(f.permissions(f.decodeLeaf(0x3, 0, 1, VTD_SS_LIMIT_NO_WRITE), false, false)).toBe(PERM_READ);
    expect(f.permissions(f.decodeLeaf(0x3, 0, 1, VTD_SS_LIMIT_NO_READ), false, false)).toBe(PERM_WRITE);
    // X = 0 limits execution too, which only the legacy switch ever grants.
    expect([
      f.tableLimits(0x1, 0),
      f.tableLimits(0x2, 0),
      f.tableLimits(0x3, 0),
      f.tableLimits(0x7, 0),
    ]).toEqual([
      VTD_SS_LIMIT_NO_WRITE | VTD_SS_LIMIT_NO_EXEC,
      VTD_SS_LIMIT_NO_READ | VTD_SS_LIMIT_NO_EXEC,
      VTD_SS_LIMIT_NO_EXEC,
      0,
    ]);
  });

  it('with the legacy execute switch, X is execute permission, on leaves and tables alike', () => {
    const x = ss({ executeRequests: true });
    expect(x.kind(0x1005, 0, 1)).toBe(DESC_LEAF);
    expect(x.name).toBe('vt-d second stage 4-level oas46 sllps3 x');
    expect(x.permissions(x.decodeLeaf(0x7, 0, 1, 0), false, false)).toBe(PERM_READ | PERM_WRITE | PERM_EXEC);
    expect(x.permissions(x.decodeLeaf(0x7, 0, 1, VTD_SS_LIMIT_NO_EXEC), false, false)).toBe(
      PERM_READ | PERM_WRITE,
    );
    expect(x.permissions(x.decodeLeaf(0x3, 0, 1, 0), false, false)).toBe(PERM_READ | PERM_WRITE);
    // Without the switch a leaf with X would be reserved; its rights never include execute.
    expect(f.permissions({ ...f.decodeLeaf(0x3, 0, 1, 0), executable: true }, false, false)).toBe(
      PERM_READ | PERM_WRITE,
    );
    const out = new Uint32Array(4);
    x.encodeTable(0x5000, 2, out, 0);
    x.encodeLeaf(0x6000, 1, x.leafTemplate({ read: true, write: false, exec: true }, false), out, 2);
    expect([...out]).toEqual([0x5007, 0, 0x6005, 0]);
    expect(x.templateOf(0x6005, 0, 1)).toEqual({ lo: 0x5, hi: 0 });
    x.encodeLeaf(0x6000, 1, x.leafTemplate({ read: true, write: false }, false), out, 2);
    expect(out[2]).toBe(0x6001);
  });

  it('without SSADE nothing is tracked or accessed; with it A and D follow the bits', () => {
    expect([f.accessFlag(0x3), f.dirtyState(0x3, 0), f.tableAccessFlag]).toEqual([
      true,
      DIRTY_UNTRACKED,
      false,
    ]);
    const ad = ss({ accessedDirty: true });
    expect([ad.accessFlag(0x3), ad.accessFlag(0x103), ad.setAccessFlag(0x3), ad.tableAccessFlag]).toEqual([
      false,
      true,
      0x103,
      true,
    ]);
    expect([ad.dirtyState(0x3, 0), ad.dirtyState(0x203, 0), ad.dirtyState(0x201, 0)]).toEqual([
      DIRTY_CLEAN,
      DIRTY_DIRTY,
      DIRTY_UNTRACKED,
    ]);
    expect([ad.markDirty(0x3), ad.markClean(0x303)]).toEqual([0x203, 0x103]);
  });

  it('a walk with SSADE sets A in each entry and D on a write, and dirty reads report and clear it', () => {
    const m = machine();
    const format = ss({ accessedDirty: true });
    const table = new IoPageTable(format, m, { pageSizes: 1n << 12n, dirtyTracking: true });
    const iova = 0x12_3456_7000;
    table.map(BigInt(iova), 0x9000_0000n, 0x1000n, { read: true, write: true });
    const steps: number[] = [];
    const options = {
      bus: m.bus,
      counter: m.bus.counter('hw'),
      hardwareAccessFlag: true,
      hardwareDirty: true,
    };
    const r = walk(format, table.rootPa, iova, {
      ...options,
      access: PERM_WRITE,
      onStep: (_l, a) => steps.push(a),
    });
    expect(r.ok && r.pa).toBe(0x9000_0000);
    expect(steps.map((a) => readDesc(m, a)[0] & 0x300)).toEqual([0x100, 0x100, 0x100, 0x300]);
    const dirty: bigint[] = [];
    table.readAndClearDirty(BigInt(iova), 0x1000n, (at) => dirty.push(at));
    expect(dirty).toEqual([BigInt(iova)]);
    expect(readDesc(m, steps[3]!)[0] & 0x200).toBe(0);
  });

  it('a reserved X bit stops a walk with a reserved fault', () => {
    const m = machine();
    const format = ss();
    const table = new IoPageTable(format, m);
    table.map(0x4000n, 0x9000_0000n, 0x1000n, { read: true, write: false });
    const steps: number[] = [];
    walk(format, table.rootPa, 0x4000, { bus: m.bus, counter: m.counter, onStep: (_l, a) => steps.push(a) });
    const [lo, hi] = readDesc(m, steps[3]!);
    writeDesc(m, steps[3]!, lo | 0x4, hi);
    const r = walk(format, table.rootPa, 0x4000, { bus: m.bus, counter: m.counter });
    expect(r.ok ? 'ok' : [r.fault.kind, r.fault.level]).toEqual(['reserved', 1]);
  });
});

describe('VT-d second-stage io-pgtable matrix', () => {
  for (const levels of [3, 4, 5] as const) {
    for (const sllps of [0, 3]) {
      it(`${levels} levels, SLLPS ${sllps}`, () => {
        runSelftestMatrix(vtdSsFormat({ levels, oas: 48, sllps }));
      });
    }
  }
  it('4 levels with the legacy execute switch', () => {
    runSelftestMatrix(vtdSsFormat({ levels: 4, oas: 48, executeRequests: true }));
  });
});
