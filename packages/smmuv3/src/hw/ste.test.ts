import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURES } from '../../test/features.js';
import { DEFAULT_IDR_EXTRAS } from './features.js';
import {
  checkL1Std,
  checkSte,
  decodeL1Std,
  decodeSte,
  effectiveSplit,
  encodeL1Std,
  encodeSte,
  l1StdAddress,
  STE_CONFIG,
  STE_EATS,
  STE_LAYOUT,
  STE_S1DSS,
  STE_S1FMT,
  STE_WORDS,
  type Ste,
  steAddressFromL1Std,
  steAddressLinear,
  steConfigKind,
  steEffectiveS2PsBits,
  steStreamWorld,
} from './ste.js';

const FEATURES = DEFAULT_FEATURES;

const words = (w: Uint32Array) => Array.from(w, (x) => `0x${x.toString(16).padStart(8, '0')}`);
const hexWords = (...w: number[]) =>
  words(Uint32Array.from([...w, ...new Array(STE_WORDS - w.length).fill(0)]));

/** Config = S2 translate, VMID 5, 4K granule, T0SZ 24 (40-bit IPA), SL0 = level 1, PS 48, TTB 0x8_1234_5000. */
const S2_STE: Partial<Ste> = {
  v: true,
  config: STE_CONFIG.S2_TRANS,
  s2Vmid: 5,
  s2T0sz: 24,
  s2Sl0: 1,
  s2Ir0: 1,
  s2Or0: 1,
  s2Sh0: 3,
  s2Tg: 0,
  s2Ps: 5,
  s2Aa64: true,
  s2R: true,
  s2Ttb: 0x8_1234_5000,
};

/** Config = S1 translate through a 2-level CD table with 64 KiB leaves, 2^20 CDs, S1DSS = SSID0, full ATS. */
const S1_STE: Partial<Ste> = {
  v: true,
  config: STE_CONFIG.S1_TRANS,
  s1Fmt: STE_S1FMT.TWO_LEVEL_64K,
  s1ContextPtr: 0x1_2345_6000,
  s1CdMax: 20,
  s1Dss: STE_S1DSS.SSID0,
  s1Cir: 1,
  s1Cor: 1,
  s1Csh: 3,
  eats: STE_EATS.FULL,
};

const ste = (fields: Partial<Ste>): Ste => decodeSte(encodeSte(fields));

describe('STE encoding (SMMUv3 §5.2)', () => {
  it('encodes the stage 2 example to the exact words', () => {
    const w = encodeSte(S2_STE);
    // q0: V | Config 0b110 << 1; q2: S2VMID 5 | T0SZ 24, SL0 1 (<< 6), IR0/OR0 WBRA (<< 8, << 10), SH0 inner
    // (<< 12), PS 0b101 (<< 16), AA64 (bit 19), S2R (bit 26); q3: S2TTB address bits [55:4] as is.
    expect(words(w)).toEqual(hexWords(0x0000000d, 0, 0, 0, 0x00000005, 0x040d3558, 0x12345000, 0x00000008));
    expect(decodeSte(w)).toMatchObject(S2_STE);
  });

  it('encodes the stage 1 example to the exact words', () => {
    const w = encodeSte(S1_STE);
    // q0: V | Config 0b101 << 1 | S1Fmt 2 << 4 | S1ContextPtr | S1CDMax 20 << 59;
    // q1: S1DSS 2 | S1CIR 1 << 2 | S1COR 1 << 4 | S1CSH 3 << 6 | EATS 1 << 28.
    expect(words(w)).toEqual(hexWords(0x2345602b, 0xa0000001, 0x100000d6, 0));
  });

  it('encodes nothing as all zero, and decodes every field', () => {
    expect(encodeSte().every((x) => x === 0)).toBe(true);
    const zero = decodeSte(new Uint32Array(STE_WORDS));
    expect(Object.keys(zero).sort()).toEqual([...Object.keys(STE_LAYOUT), 's1ContextPtr', 's2Ttb'].sort());
    expect(zero.v).toBe(false);
    expect(zero.s2Vmid).toBe(0);
  });

  it('round-trips every field at its boundary values', () => {
    for (const [key, [, width]] of Object.entries(STE_LAYOUT)) {
      for (const value of width === 1 ? [true] : [1, 2 ** width - 1]) {
        const decoded = ste({ [key]: value });
        expect(decoded[key as keyof Ste], key).toBe(value);
        // Nothing else is set.
        const others = Object.entries(decoded).filter(([k, v]) => k !== key && v !== 0 && v !== false);
        expect(others, key).toEqual([]);
      }
    }
    for (const [key, max] of [
      ['s1ContextPtr', 2 ** 56 - 64],
      ['s2Ttb', 2 ** 56 - 16],
    ] as const) {
      expect(ste({ [key]: max })[key]).toBe(max);
      expect(ste({ [key]: 64 })[key]).toBe(64);
    }
  });

  it('round-trips random STEs (property)', () => {
    const scalar = Object.fromEntries(
      Object.entries(STE_LAYOUT).map(([k, [, w]]) => [
        k,
        w === 1 ? fc.boolean() : fc.integer({ min: 0, max: 2 ** w - 1 }),
      ]),
    );
    const arb = fc.record({
      ...scalar,
      s1ContextPtr: fc.integer({ min: 0, max: 2 ** 50 - 1 }).map((x) => x * 64),
      s2Ttb: fc.integer({ min: 0, max: 2 ** 52 - 1 }).map((x) => x * 16),
    });
    fc.assert(
      fc.property(arb, (fields) => {
        expect(decodeSte(encodeSte(fields as Partial<Ste>))).toEqual(fields);
      }),
    );
  });

  it('refuses values that do not fit their field', () => {
    expect(errnoOf(() => encodeSte({ config: 8 }))).toBe('EINVAL');
    expect(() => encodeSte({ s2Vmid: 0x1_0000 })).toThrow(/s2Vmid/);
    expect(errnoOf(() => encodeSte({ s1ContextPtr: 0x1_0000_0020 }))).toBe('EINVAL'); // not 64-byte aligned
  });
});

describe('STE.Config and StreamWorld', () => {
  it('names each Config; reserved 0b001–0b011 behave as abort', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(steConfigKind)).toEqual([
      'abort',
      'abort',
      'abort',
      'abort',
      'bypass',
      's1',
      's2',
      'nested',
    ]);
  });

  it('derives the StreamWorld from STRW only for stage-1-only STEs on a Hyp SMMU', () => {
    const el2 = ste({ ...S1_STE, strw: 0b10 });
    expect(steStreamWorld(el2, true, false)).toBe('NS-EL2');
    expect(steStreamWorld(el2, true, true)).toBe('NS-EL2-E2H');
    expect(steStreamWorld(el2, false, true)).toBe('NS-EL1');
    expect(steStreamWorld(ste({ ...el2, config: STE_CONFIG.NESTED }), true, true)).toBe('NS-EL1');
  });

  it('caps S2PS at the OAS, reserved 0b111 included', () => {
    expect(steEffectiveS2PsBits(ste({ s2Ps: 2 }), FEATURES)).toBe(40);
    expect(steEffectiveS2PsBits(ste({ s2Ps: 6 }), FEATURES)).toBe(48);
    expect(steEffectiveS2PsBits(ste({ s2Ps: 7 }), { ...FEATURES, oasBits: 52 })).toBe(52);
  });
});

describe('checkSte: the C_BAD_STE conditions (SMMUv3 §5.2.2)', () => {
  const good = (fields: Partial<Ste>, features = FEATURES, idr = DEFAULT_IDR_EXTRAS) =>
    expect(checkSte(ste(fields), features, idr)).toEqual({ ok: true });
  const bad = (
    fields: Partial<Ste>,
    reason: string | RegExp,
    features = FEATURES,
    idr = DEFAULT_IDR_EXTRAS,
  ) => {
    const r = checkSte(ste(fields), features, idr);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  };
  const NESTED: Partial<Ste> = { ...S2_STE, ...S1_STE, config: STE_CONFIG.NESTED };

  it('accepts the examples', () => {
    good(S2_STE);
    good(S1_STE);
    good(NESTED);
    good({ v: true, config: STE_CONFIG.BYPASS });
  });

  it('V == 0 is C_BAD_STE; Config 0b0xx aborts silently, reserved values included', () => {
    bad({ ...S2_STE, v: false }, 'STE.V is 0');
    good({ v: true, config: STE_CONFIG.ABORT });
    good({ v: true, config: 0b010, s2Tg: 3 }); // reserved: behaves as abort, other fields IGNORED
  });

  it('a stage the SMMU does not implement', () => {
    bad(S1_STE, 'STE.Config 0b101 enables stage 1, which is not implemented (SMMU_IDR0.S1P == 0)', {
      ...FEATURES,
      s1: false,
    });
    bad(S2_STE, /enables stage 2.*S2P == 0/, { ...FEATURES, s2: false });
    good(S2_STE, { ...FEATURES, s1: false });
  });

  it('EATS split-stage needs nested translation, S2S == 0 and NS1ATS == 0', () => {
    const splitAts = { ...DEFAULT_IDR_EXTRAS, ns1ats: false };
    bad(
      { ...S1_STE, eats: STE_EATS.SPLIT },
      /STE.EATS 0b10 .* needs STE.Config 0b111, not 0b101/,
      FEATURES,
      splitAts,
    );
    good({ ...NESTED, eats: STE_EATS.SPLIT }, FEATURES, splitAts);
    bad(
      { ...NESTED, eats: STE_EATS.SPLIT, s2S: true },
      'STE.EATS 0b10 (split-stage ATS) with STE.S2S == 1',
      FEATURES,
      splitAts,
    );
    // The model itself advertises NS1ATS == 1 (no split-stage ATS).
    bad({ ...NESTED, eats: STE_EATS.SPLIT }, /NS1ATS == 1/);
    good({ ...S1_STE, eats: STE_EATS.SPLIT }, { ...FEATURES, ats: false }); // EATS IGNORED without ATS
    good({ v: true, config: STE_CONFIG.BYPASS, eats: STE_EATS.SPLIT }); // and for bypass
  });

  it('EATS full ATS with S2S == 1 while stage 2 translates', () => {
    bad({ ...S2_STE, eats: STE_EATS.FULL, s2S: true }, /STE.EATS 0b01 \(full ATS\) with STE.S2S == 1/);
    good({ ...S2_STE, eats: STE_EATS.FULL });
    good({ ...S1_STE, eats: STE_EATS.FULL, s2S: true }); // S2* IGNORED for stage 1 only
    good({ ...S2_STE, eats: STE_EATS.FULL_DPT, s2S: true }); // 0b11 behaves as 0b00 without DPT
  });

  it('reserved STRW values when STRW is used', () => {
    const hyp = { ...DEFAULT_IDR_EXTRAS, hyp: true };
    bad({ ...S1_STE, strw: 0b01 }, 'STE.STRW 0b01 is reserved', FEATURES, hyp);
    bad({ ...S1_STE, strw: 0b11 }, 'STE.STRW 0b11 is reserved', FEATURES, hyp);
    good({ ...S1_STE, strw: 0b10 }, FEATURES, hyp);
    good({ ...S1_STE, strw: 0b01 }); // RES0 without Hyp: not used
    good({ ...S1_STE, strw: 0b01 }, { ...FEATURES, s2: false }, hyp); // Hyp is RES0 without stage 2
    good({ ...NESTED, strw: 0b01 }, FEATURES, hyp); // IGNORED when stage 2 translates
  });

  it('S1STALLD needs a configurable stall model', () => {
    bad({ ...S1_STE, s1Stalld: true }, /STE.S1STALLD is 1 .*STALL_MODEL == 0b01/, {
      ...FEATURES,
      stallModel: 'no-stall',
    });
    bad({ ...S1_STE, s1Stalld: true }, /STALL_MODEL == 0b10/, {
      ...FEATURES,
      stallModel: 'force-stall',
      s2: false,
    });
    good({ ...S1_STE, s1Stalld: true });
  });

  it('S1CDMax above SSIDSIZE', () => {
    const ssid8 = { ...FEATURES, ssidBits: 8 };
    bad({ ...S1_STE, s1CdMax: 9 }, 'STE.S1CDMax 9 exceeds SSIDSIZE 8', ssid8);
    good({ ...S1_STE, s1CdMax: 8 }, ssid8);
    good({ ...S1_STE, s1CdMax: 31 }, { ...FEATURES, ssidBits: 0 }); // IGNORED without substreams
  });

  it('2-level CD tables without CD2L', () => {
    const noCd2l = { ...FEATURES, twoLevelCdTable: false };
    bad(S1_STE, 'STE.S1Fmt 0b10 selects a 2-level CD table but SMMU_IDR0.CD2L == 0', noCd2l);
    bad({ ...S1_STE, s1Fmt: STE_S1FMT.TWO_LEVEL_4K }, /S1Fmt 0b01/, noCd2l);
    good({ ...S1_STE, s1Fmt: 0b11 }, noCd2l); // reserved, behaves as linear
    good({ ...S1_STE, s1CdMax: 0 }, noCd2l); // S1Fmt IGNORED without substreams
  });

  it('S1ContextPtr beyond the OAS (a PA) or the IAS (an IPA, nested)', () => {
    bad({ ...S1_STE, s1ContextPtr: 2 ** 48 }, 'STE.S1ContextPtr 0x1000000000000 is outside the 48-bit OAS');
    good({ ...S1_STE, s1ContextPtr: 2 ** 48 - 8192 });
    bad({ ...NESTED, s1ContextPtr: 2 ** 48 }, /outside the 48-bit IAS/);
    bad({ ...S1_STE, s1ContextPtr: 2 ** 52 }, /outside/, { ...FEATURES, oasBits: 52 });
  });

  it('S2S against the stall model', () => {
    bad(
      { ...S2_STE, s2S: true },
      'STE.S2S is 1 but stalls are not supported (SMMU_IDR0.STALL_MODEL == 0b01)',
      {
        ...FEATURES,
        stallModel: 'no-stall',
      },
    );
    bad(S2_STE, 'STE.S2S is 0 but stalls are forced (SMMU_IDR0.STALL_MODEL == 0b10)', {
      ...FEATURES,
      stallModel: 'force-stall',
    });
    good({ ...S2_STE, s2S: true });
  });

  it('S2AA64 == 0 when VMSAv8-32 LPAE tables are not implemented', () => {
    bad({ ...S2_STE, s2Aa64: false }, /STE.S2AA64 is 0 .*TTF == 0b10/);
    good({ ...S1_STE, s2Aa64: false }); // IGNORED without stage 2
  });

  it('S2HA/S2HD beyond HTTU', () => {
    bad({ ...S2_STE, s2Ha: true }, 'STE.S2HA is 1 but SMMU_IDR0.HTTU == 0b00', { ...FEATURES, httu: 'none' });
    bad({ ...S2_STE, s2Hd: true }, 'STE.S2HD is 1 but SMMU_IDR0.HTTU == 0b00', { ...FEATURES, httu: 'none' });
    bad({ ...S2_STE, s2Ha: true, s2Hd: true }, /S2HD is 1 but SMMU_IDR0.HTTU == 0b01/, {
      ...FEATURES,
      httu: 'access',
    });
    good({ ...S2_STE, s2Ha: true }, { ...FEATURES, httu: 'access' });
    good({ ...S2_STE, s2Ha: true, s2Hd: true });
  });

  it('S2TG reserved or not implemented', () => {
    bad({ ...S2_STE, s2Tg: 3 }, 'STE.S2TG 0b11 is reserved');
    bad(S2_STE, 'STE.S2TG selects the 4K granule, which is not implemented (SMMU_IDR5.GRAN4K == 0)', {
      ...FEATURES,
      granules: { g4k: false, g16k: true, g64k: true },
    });
  });

  it('S2TTB outside the effective S2PS, or above 48 bits with 4K/16K', () => {
    bad(
      { ...S2_STE, s2Ps: 2, s2Ttb: 2 ** 40 },
      'STE.S2TTB 0x10000000000 is outside the 40-bit effective S2PS',
    );
    good({ ...S2_STE, s2Ps: 2, s2Ttb: 2 ** 40 - 8192 });
    // S2PS above the OAS is not ILLEGAL: it is capped to the OAS, which then bounds S2TTB.
    good({ ...S2_STE, s2Ps: 6, s2Ttb: 2 ** 48 - 8192 });
    bad({ ...S2_STE, s2Ps: 6, s2Ttb: 2 ** 48 }, /outside the 48-bit effective S2PS/);
    const oas52 = { ...FEATURES, oasBits: 52 as const };
    bad({ ...S2_STE, s2Ps: 6, s2Ttb: 2 ** 48 }, /above 48 bits with the 4K granule/, oas52);
    good({ ...S2_STE, s2Ps: 6, s2Tg: 1, s2T0sz: 16, s2Sl0: 2, s2Ttb: 2 ** 48 }, oas52); // 64K: 52-bit TTB
  });

  it('S2T0SZ outside [MAX(16, 64 − IAS), 39] (12 with 64K)', () => {
    bad(
      { ...S2_STE, s2T0sz: 15, s2Sl0: 2 },
      'STE.S2T0SZ 15 is outside [16, 39] for the 4K granule and a 48-bit IAS',
    );
    bad({ ...S2_STE, s2T0sz: 40 }, /S2T0SZ 40 is outside \[16, 39\]/);
    bad(S2_STE, /S2T0SZ 24 is outside \[28, 39\] .* 36-bit IAS/, { ...FEATURES, oasBits: 36 });
    const oas52 = { ...FEATURES, oasBits: 52 as const };
    good({ ...S2_STE, s2Tg: 1, s2T0sz: 12, s2Sl0: 2, s2Ps: 6 }, oas52);
    bad(
      { ...S2_STE, s2Tg: 1, s2T0sz: 11, s2Sl0: 2, s2Ps: 6 },
      /outside \[12, 39\] for the 64K granule/,
      oas52,
    );
    bad({ ...S2_STE, s2T0sz: 12, s2Sl0: 2, s2Ps: 6 }, /outside \[16, 39\] for the 4K granule/, oas52);
  });

  it('S2SL0 inconsistent with S2T0SZ and S2TG', () => {
    // 4K, 40-bit IPA: level 2 would need 2^10 concatenated tables.
    bad(
      { ...S2_STE, s2Sl0: 0 },
      /STE.S2SL0 0b00 \(start level 2\) is inconsistent with S2T0SZ 24 .* concatenated tables/,
    );
    good({ ...S2_STE, s2Sl0: 2 }); // level 0, a 2-entry table
    bad({ ...S2_STE, s2Sl0: 2 }, /cannot start at level 0 .* 40-bit PA/, { ...FEATURES, oasBits: 40 });
    bad({ ...S2_STE, s2Sl0: 3 }, 'STE.S2SL0 0b11 is reserved for the 4K granule');
    bad({ ...S2_STE, s2T0sz: 39 }, /does not reach start level 1/);
    good({ ...S2_STE, s2T0sz: 39, s2Sl0: 0 });
    // 16K never starts at level 0; 40-bit needs 16 tables at level 2.
    good({ ...S2_STE, s2Tg: 2, s2Sl0: 1 });
    bad({ ...S2_STE, s2Tg: 2, s2Sl0: 2 }, /cannot start at level 1 .* 40-bit PA/, {
      ...FEATURES,
      oasBits: 40,
    });
  });

  it('S2ENDI against TTENDIAN', () => {
    bad(
      { ...S2_STE, s2Endi: true },
      'STE.S2ENDI selects big-endian tables but SMMU_IDR0.TTENDIAN == 0b10 (little-endian only)',
    );
    good({ ...S2_STE, s2Endi: true }, FEATURES, { ...DEFAULT_IDR_EXTRAS, ttEndian: 'mixed' });
    bad(S2_STE, /selects little-endian tables .* 0b11/, FEATURES, { ...DEFAULT_IDR_EXTRAS, ttEndian: 'big' });
  });

  it('S2VMID[15:8] without 16-bit VMIDs, unless S2VMID is IGNORED', () => {
    const vmid8 = { ...FEATURES, vmid16: false };
    bad({ ...S2_STE, s2Vmid: 0x100 }, 'STE.S2VMID 0x100 needs 16-bit VMIDs (SMMU_IDR0.VMID16 == 0)', vmid8);
    good({ ...S2_STE, s2Vmid: 0xff }, vmid8);
    bad({ ...S1_STE, s2Vmid: 0x100 }, /S2VMID/, vmid8); // stage 1 only still tags with the VMID
    good({ ...S1_STE, s2Vmid: 0x100 }, { ...vmid8, s2: false }); // no stage 2: IGNORED
    good({ v: true, config: STE_CONFIG.BYPASS, s2Vmid: 0x100 }, vmid8);
    // An EL2 StreamWorld does not use the VMID.
    good({ ...S1_STE, s2Vmid: 0x100, strw: 0b10 }, vmid8, { ...DEFAULT_IDR_EXTRAS, hyp: true });
  });
});

describe('2-level stream tables: L1STD (SMMUv3 §5.1)', () => {
  it('encodes Span and L2Ptr to the exact words and back', () => {
    const w = encodeL1Std({ span: 9, l2Ptr: 0x8_0000_4000 });
    expect(Array.from(w)).toEqual([0x00004009, 0x00000008]);
    expect(decodeL1Std(w)).toEqual({ span: 9, l2Ptr: 0x8_0000_4000 });
    expect(decodeL1Std(encodeL1Std({ span: 31, l2Ptr: 2 ** 56 - 64 }))).toEqual({
      span: 31,
      l2Ptr: 2 ** 56 - 64,
    });
  });

  it('Span 0, reserved Spans and Span > SPLIT + 1 are invalid', () => {
    expect(checkL1Std({ span: 0, l2Ptr: 0 }, 8)).toEqual({
      ok: false,
      reason: 'L1STD.Span is 0 (no level 2 array)',
    });
    expect(checkL1Std({ span: 12, l2Ptr: 0 }, 10)).toEqual({
      ok: false,
      reason: 'L1STD.Span 12 is reserved (behaves as 0)',
    });
    expect(checkL1Std({ span: 10, l2Ptr: 0 }, 8)).toEqual({
      ok: false,
      reason: 'L1STD.Span 10 exceeds SPLIT + 1 = 9',
    });
    expect(checkL1Std({ span: 9, l2Ptr: 0 }, 8)).toEqual({ ok: true });
    expect(checkL1Std({ span: 11, l2Ptr: 0 }, 10)).toEqual({ ok: true });
    expect(checkL1Std({ span: 8, l2Ptr: 0 }, 7)).toEqual({
      ok: false,
      reason: 'L1STD.Span 8 exceeds SPLIT + 1 = 7',
    });
  });

  it('reserved SPLIT values behave as 6', () => {
    expect([0, 6, 7, 8, 9, 10, 11, 31].map(effectiveSplit)).toEqual([6, 6, 6, 8, 6, 10, 6, 6]);
  });

  it('locates the L1STD and the STE of a StreamID', () => {
    // SPLIT 8 (256 STEs per L2 array, Linux's choice): StreamID 0x1234 uses L1STD 0x12, STE 0x34.
    expect(l1StdAddress(0x4000_0000, 0x1234, 8)).toBe(0x4000_0000 + 0x12 * 8);
    expect(steAddressFromL1Std({ span: 9, l2Ptr: 0x8_0000_4000 }, 0x1234, 8)).toEqual({
      ok: true,
      address: 0x8_0000_4000 + 0x34 * 64,
    });
    // L2Ptr bits below the array size are taken as zero.
    expect(steAddressFromL1Std({ span: 2, l2Ptr: 0x1040 }, 0x101, 8)).toEqual({
      ok: true,
      address: 0x1000 + 64,
    });
    expect(steAddressFromL1Std({ span: 3, l2Ptr: 0x1000 }, 0x1234, 8)).toEqual({
      ok: false,
      reason: 'StreamID 0x1234 index 52 is beyond L1STD.Span 3 (4 STEs)',
    });
    expect(steAddressFromL1Std({ span: 0, l2Ptr: 0x1000 }, 0, 8).ok).toBe(false);
    expect(steAddressLinear(0x10_0000, 5)).toBe(0x10_0000 + 5 * 64);
  });
});
