import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { type VmsaConcatenation, vmsaGeometry } from './geometry.js';
import { sl0Encoding, startLevelFromSl0, type VmsaGranule } from './registers.js';

/** [granule, IAS, start level, concatenated tables, root entries, SL0 (stage 2 only)] */
type Row = [VmsaGranule, number, number, number, number, number?];

// ias = 64 − T0SZ; levels = ceil((ias − pg_shift) / bpl); start = 4 − levels (Arm ARM D8.2).
const STAGE1: Row[] = [
  [4096, 32, 1, 1, 4],
  [4096, 36, 1, 1, 64],
  [4096, 40, 0, 1, 2],
  [4096, 42, 0, 1, 8],
  [4096, 44, 0, 1, 32],
  [4096, 48, 0, 1, 512],
  [16384, 32, 2, 1, 128],
  [16384, 36, 2, 1, 2048],
  [16384, 40, 1, 1, 16],
  [16384, 42, 1, 1, 64],
  [16384, 44, 1, 1, 256],
  [16384, 48, 0, 1, 2],
  [65536, 32, 2, 1, 8],
  [65536, 36, 2, 1, 128],
  [65536, 40, 2, 1, 2048],
  [65536, 42, 2, 1, 8192],
  [65536, 44, 1, 1, 4],
  [65536, 48, 1, 1, 64],
  [65536, 52, 1, 1, 1024],
];

// Stage 2 with OAS = IAS (as the Linux SMMUv3 driver configures it), folding every root of ≤ 16 entries.
const STAGE2_FOLD: Row[] = [
  [4096, 32, 2, 4, 2048, 0],
  [4096, 36, 1, 1, 64, 1],
  [4096, 40, 1, 2, 1024, 1], // mandatory (R_SRKBC: L0 needs PA ≥ 44)
  [4096, 42, 1, 8, 4096, 1], // mandatory
  [4096, 44, 0, 1, 32, 2],
  [4096, 48, 0, 1, 512, 2],
  [16384, 32, 2, 1, 128, 1],
  [16384, 36, 2, 1, 2048, 1],
  [16384, 40, 2, 16, 32768, 1], // mandatory (L1 needs PA ≥ 42)
  [16384, 42, 1, 1, 64, 2],
  [16384, 44, 1, 1, 256, 2],
  [16384, 48, 1, 2, 4096, 2], // mandatory (R_DXBSH: 16K never starts at L0)
  [65536, 32, 3, 8, 65536, 0],
  [65536, 36, 2, 1, 128, 1],
  [65536, 40, 2, 1, 2048, 1],
  [65536, 42, 2, 1, 8192, 1],
  [65536, 44, 2, 4, 32768, 1],
  [65536, 48, 1, 1, 64, 2],
  [65536, 52, 1, 1, 1024, 2],
];

// Stage 2, concatenating only where the architecture requires it (Linux io-pgtable-arm since 4dcac8407fe1).
const STAGE2_MANDATORY: Row[] = [
  [4096, 32, 1, 1, 4, 1],
  [4096, 36, 1, 1, 64, 1],
  [4096, 40, 1, 2, 1024, 1],
  [4096, 42, 1, 8, 4096, 1],
  [4096, 44, 0, 1, 32, 2],
  [4096, 48, 0, 1, 512, 2],
  [16384, 32, 2, 1, 128, 1],
  [16384, 36, 2, 1, 2048, 1],
  [16384, 40, 2, 16, 32768, 1],
  [16384, 42, 1, 1, 64, 2],
  [16384, 44, 1, 1, 256, 2],
  [16384, 48, 1, 2, 4096, 2],
  [65536, 32, 2, 1, 8, 1],
  [65536, 36, 2, 1, 128, 1],
  [65536, 40, 2, 1, 2048, 1],
  [65536, 42, 2, 1, 8192, 1],
  [65536, 44, 1, 1, 4, 2],
  [65536, 48, 1, 1, 64, 2],
  [65536, 52, 1, 1, 1024, 2],
];

function check(stage: 1 | 2, rows: Row[], concatenation?: VmsaConcatenation): void {
  for (const [granule, ias, start, tables, entries, sl0] of rows) {
    it(`${granule / 1024}K IAS ${ias}: level ${start}, ${tables} table(s), ${entries} root entries`, () => {
      const g = vmsaGeometry({ stage, granule, ias, oas: ias, ...(concatenation ? { concatenation } : {}) });
      expect([g.startLevel, g.levels, g.rootTables, g.rootEntries, g.rootBytes]).toEqual([
        start,
        4 - start,
        tables,
        entries,
        entries * 8,
      ]);
      if (sl0 !== undefined) {
        expect(sl0Encoding(granule, start)).toBe(sl0);
        expect(startLevelFromSl0(granule, sl0)).toBe(start);
      }
    });
  }
}

describe('VMSAv8-64 geometry', () => {
  describe('stage 1', () => check(1, STAGE1));
  describe('stage 2, fold ≤ 16 tables (default)', () => check(2, STAGE2_FOLD));
  describe('stage 2, mandatory concatenation only', () => check(2, STAGE2_MANDATORY, 'mandatory'));

  it('page and block sizes per granule, from the start level down', () => {
    const sizes = (granule: VmsaGranule, ias: number, stage: 1 | 2 = 1, oas = 48) =>
      vmsaGeometry({ stage, granule, ias, oas }).pgsizeBitmap;
    expect(sizes(4096, 48)).toBe((1n << 12n) | (1n << 21n) | (1n << 30n));
    expect(sizes(4096, 32, 2)).toBe((1n << 12n) | (1n << 21n)); // folded to level 2: no 1 GiB blocks
    expect(sizes(16384, 48)).toBe((1n << 14n) | (1n << 25n));
    expect(sizes(65536, 48)).toBe((1n << 16n) | (1n << 29n));
    expect(sizes(65536, 52, 1, 52)).toBe((1n << 16n) | (1n << 29n) | (1n << 42n));
    expect(sizes(65536, 32, 2)).toBe(1n << 16n); // folded to level 3: pages only
  });

  it('the SL0 encodings (VTCR_EL2.SL0 / STE.S2SL0)', () => {
    expect([0, 1, 2, 3].map((l) => sl0Encoding(4096, l))).toEqual([2, 1, 0, undefined]);
    expect([0, 1, 2, 3].map((l) => sl0Encoding(16384, l))).toEqual([undefined, 2, 1, 0]);
    expect([0, 1, 2, 3].map((l) => sl0Encoding(65536, l))).toEqual([undefined, 2, 1, 0]);
    expect(startLevelFromSl0(4096, 3)).toBeUndefined();
  });

  it('an explicit start level (from SL0) sets the concatenation', () => {
    const g = vmsaGeometry({ stage: 2, granule: 4096, ias: 40, oas: 48, startLevel: 1 });
    expect([g.startLevel, g.rootTables]).toEqual([1, 2]);
    expect(vmsaGeometry({ stage: 2, granule: 4096, ias: 40, oas: 48, startLevel: 0 }).rootEntries).toBe(2);
  });

  it('rejects unsupported combinations with EINVAL', () => {
    const bad = [
      { stage: 1, granule: 8192, ias: 48, oas: 48 },
      { stage: 1, granule: 4096, ias: 52, oas: 48 }, // 52-bit VA needs 64K here (no FEAT_LPA2)
      { stage: 1, granule: 16384, ias: 48, oas: 52 },
      { stage: 1, granule: 4096, ias: 24, oas: 48 }, // T0SZ 40 needs FEAT_TTST
      { stage: 1, granule: 4096, ias: 48, oas: 46 },
      { stage: 2, granule: 4096, ias: 48, oas: 44 }, // stage 2 input above the PA size
      { stage: 2, granule: 4096, ias: 40, oas: 40, startLevel: 0 }, // L0 with a 40-bit PA
      { stage: 2, granule: 4096, ias: 25, oas: 40, startLevel: 3 }, // 4K L3 start needs FEAT_TTST
      { stage: 2, granule: 4096, ias: 48, oas: 48, startLevel: 2 }, // 2^18 tables
      { stage: 1, granule: 4096, ias: 40, oas: 40, startLevel: 1 }, // stage 1 has no SL0
      { stage: 3, granule: 4096, ias: 40, oas: 40 },
    ] as const;
    for (const config of bad) {
      expect(
        errnoOf(() => vmsaGeometry(config as never)),
        JSON.stringify(config),
      ).toBe('EINVAL');
    }
    expect(() => vmsaGeometry({ stage: 2, granule: 16384, ias: 44, oas: 40 })).toThrow(
      /stage 2 input range cannot exceed the output size/,
    );
  });
});
