import { errnoOf, join64, PERM_EXEC, PERM_READ } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { DESC_INVALID, DESC_LEAF, DESC_TABLE, DIRTY_CLEAN, DIRTY_DIRTY, DIRTY_UNTRACKED } from '../format.js';
import { vmsaTemplate } from './descriptors.js';
import type { VmsaGranule } from './registers.js';
import { vmsaFormat, vmsaFormatFromRegisters } from './vmsa-format.js';

const words = new Uint32Array(2);
const asBig = () => join64(words[0]!, words[1]!);
const lo = (v: bigint) => Number(v & 0xffff_ffffn);
const hi = (v: bigint) => Number(v >> 32n);

describe('VMSAv8-64 descriptor encodings at known bit positions (Arm ARM D8.3)', () => {
  const s1k4 = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
  const s2k4 = vmsaFormat({ stage: 2, granule: 4096, ias: 48, oas: 48 });

  it('4K stage 1 page for PA 0x8765_4000 with AF, nG, AP=RO (AP[2:1]=0b10) and XN (PXN+UXN)', () => {
    // bits: 1:0 = 0b11 page, 7 = AP[2], 10 = AF, 11 = nG, 53 = PXN, 54 = UXN, 47:12 = PA.
    s1k4.encodeLeaf(0x8765_4000, 3, vmsaTemplate(1, { af: true, ng: true, ap: 0b10, xn: 0b11 }), words, 0);
    expect(asBig()).toBe(0x0060_0000_8765_4c83n);
    const a = s1k4.decodeLeaf(words[0]!, words[1]!, 3, 0);
    expect(a).toMatchObject({
      stage: 1,
      ap: 0b10,
      af: true,
      ng: true,
      xn: 0b11,
      memAttr: 0,
      sh: 0,
      dbm: false,
    });
    expect(s1k4.outputAddress(words[0]!, words[1]!, 3)).toBe(0x8765_4000);
  });

  it('the same page from a read-only, non-executable MapProt (Linux defaults: AttrIndx 1, SH=IS, EL0 access)', () => {
    s1k4.encodeLeaf(0x8765_4000, 3, s1k4.leafTemplate({ read: true, write: false }, false), words, 0);
    // + AttrIndx 1 (bit 2), AP[1] (bit 6), SH = 0b11 (bits 9:8)
    expect(asBig()).toBe(0x0060_0000_8765_4fc7n);
  });

  it('stage 1 privileged, writable, executable, device memory', () => {
    s1k4.encodeLeaf(
      0x4000_0000,
      1,
      s1k4.leafTemplate({ read: true, write: true, exec: true, priv: true, memType: 'device' }, false),
      words,
      0,
    );
    // 1 GiB block: type 0b01, AttrIndx 2 (bits 4:2 = 0b010), AP = 0b00, SH, AF, nG; UXN (bit 54): AP[1] = 0
    // leaves EL0 execution to UXN, and `priv` means as little as possible for unprivileged accesses
    expect(asBig()).toBe(0x0040_0000_4000_0f09n);
  });

  it('a privileged executable mapping gives unprivileged accesses nothing, not even a fetch', () => {
    s1k4.encodeLeaf(
      0x4000,
      3,
      s1k4.leafTemplate({ read: true, write: false, exec: true, priv: true }, false),
      words,
      0,
    );
    const attrs = s1k4.decodeLeaf(words[0]!, words[1]!, 3, 0)!;
    expect(s1k4.permissions(attrs, true, false)).toBe(PERM_READ | PERM_EXEC);
    expect(s1k4.permissions(attrs, false, false)).toBe(0);
  });

  it('4K stage 2 2 MiB block: S2AP RW, MemAttr 0xF, SH=IS, AF, XN = 0b10', () => {
    s2k4.encodeLeaf(0x1_2340_0000, 2, s2k4.leafTemplate({ read: true, write: true }, false), words, 0);
    // 0x3c = MemAttr 0xF at 5:2; 0xc0 = S2AP 0b11; 0x300 SH; 0x400 AF; bit 54 = XN[1]
    expect(asBig()).toBe(0x0040_0001_2340_07fdn);
    expect(s2k4.decodeLeaf(words[0]!, words[1]!, 2, 0)).toMatchObject({
      stage: 2,
      memAttr: 0xf,
      ap: 0b11,
      sh: 3,
      af: true,
      ng: false,
      xn: 0b10,
    });
  });

  it('stage 2 write-only and non-cacheable/device MemAttr', () => {
    s2k4.encodeLeaf(
      0x5000,
      3,
      s2k4.leafTemplate({ read: false, write: true, memType: 'noncached' }, false),
      words,
      0,
    );
    expect(asBig()).toBe(0x0040_0000_0000_5797n); // MemAttr 0x5 (0x14), S2AP 0b10 (0x80), page type 0b11
    s2k4.encodeLeaf(
      0x5000,
      3,
      s2k4.leafTemplate({ read: true, write: false, memType: 'device', exec: true }, false),
      words,
      0,
    );
    expect(asBig()).toBe(0x0000_0000_0000_5747n); // MemAttr 0x1 (0x04), S2AP 0b01 (0x40), XN 0
  });

  it('16K stage 1 32 MiB block and table descriptor', () => {
    const f = vmsaFormat({ stage: 1, granule: 16384, ias: 48, oas: 48 });
    f.encodeLeaf(
      0xab_c200_0000,
      2,
      vmsaTemplate(1, { memAttr: 1, ap: 0b01, sh: 3, af: true, ng: true }),
      words,
      0,
    );
    expect(asBig()).toBe(0x0000_00ab_c200_0f45n);
    f.encodeTable(0x1234_4000, 1, words, 0);
    expect(asBig()).toBe(0x1234_4003n);
    expect(f.tableAddress(words[0]!, words[1]!)).toBe(0x1234_4000);
  });

  it('64K stage 2 page and 512 MiB block', () => {
    const f = vmsaFormat({ stage: 2, granule: 65536, ias: 48, oas: 48 });
    f.encodeLeaf(0x7fff_0001_0000, 3, vmsaTemplate(2, { ap: 3, af: true }), words, 0);
    expect(asBig()).toBe(0x0000_7fff_0001_04c3n);
    f.encodeLeaf(
      0x7fff_e000_0000,
      2,
      vmsaTemplate(2, { ap: 1, af: true, contiguous: true, dbm: true }),
      words,
      0,
    );
    expect(asBig()).toBe(0x0018_7fff_e000_0441n); // bit 51 DBM, bit 52 Contiguous
    expect(f.decodeLeaf(words[0]!, words[1]!, 2, 0)).toMatchObject({ dbm: true, contiguous: true, ap: 1 });
    expect(f.outputAddress(words[0]!, words[1]!, 2)).toBe(0x7fff_e000_0000);
  });

  it('descriptor kinds: invalid, table, block, page, and the reserved encodings', () => {
    expect(s1k4.kind(0, 0, 0)).toBe(DESC_INVALID);
    expect(s1k4.kind(0xffff_fffe, 0xffff_ffff, 2)).toBe(DESC_INVALID); // bit 0 clear: invalid whatever else
    expect(s1k4.kind(3, 0, 0)).toBe(DESC_TABLE);
    expect(s1k4.kind(3, 0, 3)).toBe(DESC_LEAF);
    expect(s1k4.kind(1, 0, 3)).toBe(DESC_INVALID); // 0b01 at level 3 is reserved
    expect(s1k4.kind(1, 0, 0)).toBe(DESC_INVALID); // no level-0 blocks without FEAT_LPA2
    expect(s1k4.kind(1, 0, 1)).toBe(DESC_LEAF);
    const k16 = vmsaFormat({ stage: 1, granule: 16384, ias: 48, oas: 48 });
    expect(k16.kind(1, 0, 1)).toBe(DESC_INVALID); // 16K: blocks only at level 2
    const k64 = vmsaFormat({ stage: 1, granule: 65536, ias: 48, oas: 48 });
    expect(k64.kind(1, 0, 1)).toBe(DESC_INVALID); // 64K level 1 blocks need 52-bit PA
    const k64oa52 = vmsaFormat({ stage: 1, granule: 65536, ias: 48, oas: 52 });
    expect(k64oa52.kind(1, 0, 1)).toBe(DESC_LEAF);
  });
});

describe('52-bit output addresses with the 64K granule (OA[51:48] in bits 15:12)', () => {
  const f = vmsaFormat({ stage: 1, granule: 65536, ias: 52, oas: 52 });
  const none = vmsaTemplate(1, {});

  it('packs and unpacks OA 2^52 − 64K', () => {
    const oa = 2 ** 52 - 65536;
    f.encodeLeaf(oa, 3, none, words, 0);
    expect(asBig()).toBe(0x0000_ffff_ffff_f003n);
    expect(f.outputAddress(words[0]!, words[1]!, 3)).toBe(oa);
  });

  it('packs and unpacks OA 2^48', () => {
    f.encodeLeaf(2 ** 48, 3, none, words, 0);
    expect(asBig()).toBe(0x1003n);
    expect(f.outputAddress(words[0]!, words[1]!, 3)).toBe(2 ** 48);
  });

  it('table descriptors and 4 TB level-1 blocks carry the same bits', () => {
    f.encodeTable(2 ** 51 + 0x1_0000, 1, words, 0);
    expect(asBig()).toBe(0x0001_8003n);
    expect(f.tableAddress(words[0]!, words[1]!)).toBe(2 ** 51 + 0x1_0000);
    f.encodeLeaf(2 ** 51 + 2 ** 42, 1, none, words, 0);
    expect(asBig()).toBe(0x0000_0400_0000_8001n);
    expect(f.outputAddress(words[0]!, words[1]!, 1)).toBe(2 ** 51 + 2 ** 42);
    expect(f.pgsizeBitmap).toBe((1n << 16n) | (1n << 29n) | (1n << 42n));
  });

  it('with a 48-bit PA the same bits are RES0 and ignored', () => {
    const f48 = vmsaFormat({ stage: 1, granule: 65536, ias: 48, oas: 48 });
    expect(f48.outputAddress(lo(0xffff_ffff_f003n), hi(0xffff_ffff_f003n), 3)).toBe(0xffff_ffff_0000);
  });
});

describe('hardware-managed bits (FEAT_HAFDBS)', () => {
  for (const stage of [1, 2] as const) {
    it(`stage ${stage}: a tracked writable leaf starts dirty; clean and dirty flip one bit`, () => {
      const f = vmsaFormat({ stage, granule: 4096, ias: 48, oas: 48 });
      const t = f.leafTemplate({ read: true, write: true }, true);
      f.encodeLeaf(0x1000, 3, t, words, 0);
      const dirtyLo = words[0]!;
      expect(f.dirtyState(dirtyLo, words[1]!)).toBe(DIRTY_DIRTY);
      const cleanLo = f.markClean(dirtyLo);
      expect(f.dirtyState(cleanLo, words[1]!)).toBe(DIRTY_CLEAN);
      expect((cleanLo ^ dirtyLo) >>> 0).toBe(0x80); // bit 7: AP[2] (stage 1) / S2AP[1] (stage 2)
      expect(f.markDirty(cleanLo)).toBe(dirtyLo);
      f.encodeLeaf(0x1000, 3, f.leafTemplate({ read: true, write: false }, true), words, 0);
      expect(f.dirtyState(words[0]!, words[1]!)).toBe(DIRTY_UNTRACKED); // read-only: no DBM
      expect(f.setAccessFlag(0)).toBe(0x400);
      expect(f.accessFlag(0x400)).toBe(true);
    });
  }
});

describe('driver register values and their decoding', () => {
  it('stage 1 4K/48: T0SZ 16, TG0 0, IPS 5', () => {
    const f = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
    expect(f.translationControl(0x8000_0000n)).toEqual({
      stage: 1,
      t0sz: 16,
      tg: 0,
      ps: 5,
      ttb: 0x8000_0000n,
    });
  });

  it('stage 2 16K/40: S2TG 2, S2T0SZ 24, S2PS 2, S2SL0 1 (level 2, 16 tables)', () => {
    const f = vmsaFormat({ stage: 2, granule: 16384, ias: 40, oas: 40 });
    expect(f.translationControl(0n)).toEqual({ stage: 2, t0sz: 24, tg: 2, ps: 2, sl0: 1, ttb: 0n });
  });

  it('every stage 2 format comes back from its own register values', () => {
    for (const granule of [4096, 16384, 65536] as VmsaGranule[]) {
      for (const ias of [32, 36, 40, 42, 44, 48]) {
        const f = vmsaFormat({ stage: 2, granule, ias, oas: 48 });
        const back = vmsaFormatFromRegisters(f.translationControl(0n));
        expect([back.startLevel, back.rootTables, back.ias, back.oas, back.granule]).toEqual([
          f.startLevel,
          f.rootTables,
          ias,
          48,
          granule,
        ]);
      }
    }
  });

  it('reserved encodings and inconsistent SL0/T0SZ are EINVAL', () => {
    expect(errnoOf(() => vmsaFormatFromRegisters({ stage: 1, tg: 3, t0sz: 16, ps: 5 }))).toBe('EINVAL');
    expect(errnoOf(() => vmsaFormatFromRegisters({ stage: 1, tg: 0, t0sz: 16, ps: 7 }))).toBe('EINVAL');
    expect(errnoOf(() => vmsaFormatFromRegisters({ stage: 2, tg: 0, t0sz: 16, ps: 5, sl0: 3 }))).toBe(
      'EINVAL',
    );
    // 48-bit IPA starting at level 1 would need 512 concatenated tables.
    expect(errnoOf(() => vmsaFormatFromRegisters({ stage: 2, tg: 0, t0sz: 16, ps: 5, sl0: 1 }))).toBe(
      'EINVAL',
    );
    // 32-bit IPA cannot start at level 0.
    expect(errnoOf(() => vmsaFormatFromRegisters({ stage: 2, tg: 0, t0sz: 32, ps: 5, sl0: 2 }))).toBe(
      'EINVAL',
    );
  });
});

describe('format shape: name, leaf levels, table limits, memory types', () => {
  it('the name gives stage, granule, sizes, start level and concatenation', () => {
    expect(vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 }).name).toBe(
      'vmsav8-64 s1 4K ias48 oas48 L0',
    );
    // 4K stage 2 with a 40-bit IPA: two concatenated level-1 tables (Arm ARM D8.2, concatenated tables).
    expect(vmsaFormat({ stage: 2, granule: 4096, ias: 40, oas: 40 }).name).toBe(
      'vmsav8-64 s2 4K ias40 oas40 L1 2×concat',
    );
    expect(vmsaFormat({ stage: 2, granule: 65536, ias: 42, oas: 48 }).name).toBe(
      'vmsav8-64 s2 64K ias42 oas48 L2',
    );
  });

  it('leaves are allowed at block levels at or below the start level, and at level 3', () => {
    const s1 = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
    expect([0, 1, 2, 3].map((l) => s1.leafAllowed(l))).toEqual([false, true, true, true]);
    // Starts at level 2 (32-bit IPA folded): the level-1 block size exists but level 1 is not walked.
    const s2 = vmsaFormat({ stage: 2, granule: 4096, ias: 32, oas: 40 });
    expect(s2.startLevel).toBe(2);
    expect([0, 1, 2, 3].map((l) => s2.leafAllowed(l))).toEqual([false, false, true, true]);
  });

  it('stage 1 table descriptors carry PXNTable/UXNTable/APTable in bits 62:59; stage 2 ones none', () => {
    // Arm ARM D8.3.1: the hierarchical attributes exist in stage 1 table descriptors only.
    const s1 = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
    const s2 = vmsaFormat({ stage: 2, granule: 4096, ias: 48, oas: 48 });
    expect(s1.tableLimits(0, 0x7800_0000)).toBe(0xf);
    expect(s1.tableLimits(0, 0x0800_0000)).toBe(0x1); // bit 59 PXNTable
    expect(s1.tableLimits(0, 0x8000_0000)).toBe(0); // bit 63 NSTable is not a limit
    expect(s2.tableLimits(0, 0xffff_ffff)).toBe(0);
  });

  it('stage 1 non-cacheable memory uses MAIR slot 0, device slot 2', () => {
    const s1 = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
    const attr = (memType: 'noncached' | 'device') =>
      (s1.leafTemplate({ read: true, write: true, memType }, false).lo >>> 2) & 7;
    expect(attr('noncached')).toBe(0);
    expect(attr('device')).toBe(2);
  });

  it('a 64K 4 TB block ignores the RES0 output-address bits 41:16 below the block size', () => {
    const f = vmsaFormat({ stage: 1, granule: 65536, ias: 52, oas: 52 });
    // Level 1 covers 2^42 bytes: bits 41:32 of the descriptor are below the block's output address.
    expect(f.outputAddress(0xffff_0001, 0x0000_07ff, 1)).toBe(2 ** 42);
    expect(f.outputAddress(0xffff_0001, 0x0000_03ff, 2)).toBe(0x3ff_e000_0000);
  });
});

describe('formats decoded from CD and STE fields', () => {
  const thrown = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      return error as { code: string; context: unknown };
    }
    throw new Error('did not throw');
  };

  it('stage 1 from TG0, T0SZ and IPS (SMMUv3 5.4 CD)', () => {
    // 16K: 36 − 14 = 22 table bits, 11 per level: two levels, starting at level 2.
    const f = vmsaFormatFromRegisters({ stage: 1, tg: 2, t0sz: 28, ps: 2 });
    expect([f.stage, f.granule, f.ias, f.oas, f.startLevel]).toEqual([1, 16384, 36, 40, 2]);
  });

  it('a reserved TG or PS names both fields', () => {
    expect(thrown(() => vmsaFormatFromRegisters({ stage: 1, tg: 3, t0sz: 16, ps: 5 }))).toMatchObject({
      code: 'EINVAL',
      context: { tg: 3, ps: 5 },
    });
    expect(thrown(() => vmsaFormatFromRegisters({ stage: 2, tg: 0, t0sz: 16, ps: 7, sl0: 2 }))).toMatchObject(
      {
        code: 'EINVAL',
        context: { tg: 0, ps: 7 },
      },
    );
  });

  it('stage 2 without S2SL0, or with a reserved one, names SL0', () => {
    expect(thrown(() => vmsaFormatFromRegisters({ stage: 2, tg: 0, t0sz: 24, ps: 5 }))).toMatchObject({
      code: 'EINVAL',
      context: { sl0: undefined },
    });
    expect(thrown(() => vmsaFormatFromRegisters({ stage: 2, tg: 1, t0sz: 24, ps: 5, sl0: 3 }))).toMatchObject(
      {
        code: 'EINVAL',
        context: { sl0: 3 },
      },
    );
  });
});

describe('encodeLeaves', () => {
  it('writes what encodeLeaf writes for each leaf of a run, across 2^32 and with 52-bit outputs', () => {
    for (const [f, pa, level, count] of [
      [vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 }), 0xffff_c000, 3, 8],
      [vmsaFormat({ stage: 2, granule: 4096, ias: 48, oas: 48 }), 0x1_ffc0_0000, 2, 5],
      [vmsaFormat({ stage: 1, granule: 65536, ias: 52, oas: 52 }), 2 ** 48 - 2 * 65536, 3, 4],
      [vmsaFormat({ stage: 1, granule: 65536, ias: 52, oas: 52 }), 2 ** 51 - 2 ** 42, 1, 1],
    ] as const) {
      const template = f.leafTemplate({ read: true, write: true }, false);
      const run = new Uint32Array(2 * count + 2).fill(0xffff_ffff);
      f.encodeLeaves(pa, level, template, run, 2, count);
      const one = new Uint32Array(2);
      const span = f.levelShift(level);
      for (let k = 0; k < count; k++) {
        f.encodeLeaf(pa + k * 2 ** span, level, template, one, 0);
        expect([run[2 + 2 * k], run[3 + 2 * k]], `${f.name} leaf ${k}`).toEqual([one[0], one[1]]);
        expect(f.outputAddress(one[0]!, one[1]!, level)).toBe(pa + k * 2 ** span);
      }
      expect([run[0], run[1]]).toEqual([0xffff_ffff, 0xffff_ffff]);
    }
  });
});
