import { describe, expect, it } from 'vitest';
import { decodeVmsaAttributes, vmsaTemplate } from './descriptors.js';

// Arm ARM D8.3: stage 1 leaves carry AttrIndx[2:0] at 4:2, NS at 5 and nG at 11; stage 2 leaves carry
// MemAttr[3:0] at 5:2 and bit 11 is RES0. Each vector sets one field so a misplaced bit shows alone.
describe('vmsaTemplate: one attribute field at a time (Arm ARM D8.3)', () => {
  const cases: [string, 1 | 2, Parameters<typeof vmsaTemplate>[1], number, number][] = [
    ['stage 1 AttrIndx 7', 1, { memAttr: 7 }, 0x1c, 0],
    ['stage 1 AttrIndx keeps only 3 bits', 1, { memAttr: 0xf }, 0x1c, 0],
    ['stage 2 MemAttr 0xF uses bits 5:2', 2, { memAttr: 0xf }, 0x3c, 0],
    ['stage 2 MemAttr keeps only 4 bits', 2, { memAttr: 0x1f }, 0x3c, 0],
    ['stage 1 NS is bit 5', 1, { ns: true }, 0x20, 0],
    ['stage 2 has no NS bit (bit 5 is MemAttr[3])', 2, { ns: true }, 0, 0],
    ['AP[2:1] at 7:6', 1, { ap: 3 }, 0xc0, 0],
    ['AP keeps only 2 bits', 2, { ap: 7 }, 0xc0, 0],
    ['SH at 9:8', 1, { sh: 3 }, 0x300, 0],
    ['SH keeps only 2 bits', 2, { sh: 6 }, 0x200, 0],
    ['AF is bit 10', 2, { af: true }, 0x400, 0],
    ['stage 1 nG is bit 11', 1, { ng: true }, 0x800, 0],
    ['stage 2 bit 11 stays RES0', 2, { ng: true }, 0, 0],
    ['DBM is bit 51', 1, { dbm: true }, 0, 1 << 19],
    ['Contiguous is bit 52', 2, { contiguous: true }, 0, 1 << 20],
    ['XN at 54:53', 1, { xn: 3 }, 0, 3 << 21],
    ['XN keeps only 2 bits', 2, { xn: 6 }, 0, 2 << 21],
    ['false flags set nothing', 1, { ns: false, af: false, ng: false, dbm: false, contiguous: false }, 0, 0],
    ['no fields, no bits', 2, {}, 0, 0],
  ];
  for (const [name, stage, fields, lo, hi] of cases) {
    it(name, () => {
      expect(vmsaTemplate(stage, fields)).toEqual({ lo, hi });
    });
  }
});

describe('decodeVmsaAttributes (Arm ARM D8.3)', () => {
  const none = {
    memAttr: 0,
    ns: false,
    ap: 0,
    sh: 0,
    af: false,
    ng: false,
    dbm: false,
    contiguous: false,
    xn: 0,
  };

  it('an all-zero stage 1 leaf decodes to nothing but the inherited table limits', () => {
    expect(decodeVmsaAttributes(1, 0, 0, 0b1010)).toEqual({ stage: 1, ...none, tableLimits: 0b1010 });
  });

  it('every stage 1 field from an all-ones descriptor', () => {
    expect(decodeVmsaAttributes(1, 0xffff_ffff, 0xffff_ffff, 0xf)).toEqual({
      stage: 1,
      memAttr: 7, // bit 5 is NS, not part of AttrIndx
      ns: true,
      ap: 3,
      sh: 3,
      af: true,
      ng: true,
      dbm: true,
      contiguous: true,
      xn: 3,
      tableLimits: 0xf,
    });
  });

  it('every stage 2 field from an all-ones descriptor: bit 5 is MemAttr[3], no NS, no nG, no table limits', () => {
    expect(decodeVmsaAttributes(2, 0xffff_ffff, 0xffff_ffff, 0xf)).toEqual({
      stage: 2,
      memAttr: 0xf,
      ns: false,
      ap: 3,
      sh: 3,
      af: true,
      ng: false,
      dbm: true,
      contiguous: true,
      xn: 3,
      tableLimits: 0,
    });
  });

  it('single bits decode to single fields', () => {
    expect(decodeVmsaAttributes(1, 0x20, 0, 0)).toEqual({ stage: 1, ...none, ns: true, tableLimits: 0 });
    expect(decodeVmsaAttributes(1, 0x800, 0, 0)).toEqual({ stage: 1, ...none, ng: true, tableLimits: 0 });
    expect(decodeVmsaAttributes(2, 0x20, 0, 0)).toEqual({ stage: 2, ...none, memAttr: 8, tableLimits: 0 });
    expect(decodeVmsaAttributes(2, 0x400, 0, 0)).toEqual({ stage: 2, ...none, af: true, tableLimits: 0 });
    expect(decodeVmsaAttributes(2, 0, 1 << 19, 0)).toEqual({ stage: 2, ...none, dbm: true, tableLimits: 0 });
    expect(decodeVmsaAttributes(2, 0, 1 << 20, 0)).toEqual({
      stage: 2,
      ...none,
      contiguous: true,
      tableLimits: 0,
    });
    expect(decodeVmsaAttributes(1, 0x100, 1 << 22, 0)).toEqual({
      stage: 1,
      ...none,
      sh: 1,
      xn: 2,
      tableLimits: 0,
    });
  });

  it('round-trips every field through vmsaTemplate', () => {
    const fields = {
      memAttr: 5,
      ns: true,
      ap: 2,
      sh: 2,
      af: true,
      ng: true,
      dbm: true,
      contiguous: false,
      xn: 1,
    };
    const { lo, hi } = vmsaTemplate(1, fields);
    expect(decodeVmsaAttributes(1, lo, hi, 0)).toEqual({ stage: 1, ...fields, tableLimits: 0 });
  });
});
