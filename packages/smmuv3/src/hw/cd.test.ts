import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURES } from '../../test/features.js';
import {
  CD_LAYOUT,
  CD_TG1,
  CD_WORDS,
  type Cd,
  cdAddressFromL1Cd,
  cdEffectiveIpsBits,
  cdOrL1CdAddress,
  cdTableGeometry,
  checkCd,
  DEFAULT_CD_CONTEXT,
  decodeCd,
  decodeL1Cd,
  encodeCd,
  encodeL1Cd,
  granuleFromTg1,
} from './cd.js';
import { DEFAULT_IDR_EXTRAS } from './features.js';
import { STE_S1FMT, TG0 } from './ste.js';

const FEATURES = DEFAULT_FEATURES;

/** A Linux-style stage 1 CD: 48-bit VA, 4K granule, TTB1 disabled, ASID 0x1234, R/A/ASET set. */
const S1_CD: Partial<Cd> = {
  t0sz: 16,
  tg0: TG0.SIZE_4K,
  ir0: 1,
  or0: 1,
  sh0: 3,
  epd1: true,
  v: true,
  ips: 5,
  aa64: true,
  r: true,
  a: true,
  aset: true,
  asid: 0x1234,
  ttb0: 0x8_8000_1000,
  mair0: 0x0004ff44,
};

const cd = (fields: Partial<Cd>): Cd => decodeCd(encodeCd(fields));

describe('CD encoding (SMMUv3 §5.4)', () => {
  it('encodes the example to the exact words', () => {
    const w = encodeCd(S1_CD);
    // q0: T0SZ 16 | IR0 1 << 8 | OR0 1 << 10 | SH0 3 << 12 | EPD1 (30) | V (31) | IPS 5 (32) | AA64 (41) |
    //     R (45) | A (46) | ASET (47) | ASID << 48; q1: TTB0 address bits [55:4] as is; q3: MAIR0.
    expect(Array.from(w)).toEqual([
      0xc0003510, 0x1234e205, 0x80001000, 0x00000008, 0, 0, 0x0004ff44, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(decodeCd(w)).toMatchObject(S1_CD);
  });

  it('encodes nothing as all zero and decodes every field', () => {
    expect(encodeCd().every((x) => x === 0)).toBe(true);
    expect(Object.keys(decodeCd(new Uint32Array(CD_WORDS))).sort()).toEqual(
      [...Object.keys(CD_LAYOUT), 'ttb0', 'ttb1'].sort(),
    );
  });

  it('round-trips every field at its boundary values', () => {
    for (const [key, [, width]] of Object.entries(CD_LAYOUT)) {
      for (const value of width === 1 ? [true] : [1, 2 ** width - 1]) {
        const decoded = cd({ [key]: value });
        expect(decoded[key as keyof Cd], key).toBe(value);
        expect(
          Object.entries(decoded).filter(([k, v]) => k !== key && v !== 0 && v !== false),
          key,
        ).toEqual([]);
      }
    }
    for (const key of ['ttb0', 'ttb1'] as const) {
      expect(cd({ [key]: 2 ** 56 - 16 })[key]).toBe(2 ** 56 - 16);
      expect(cd({ [key]: 16 })[key]).toBe(16);
    }
  });

  it('round-trips random CDs (property)', () => {
    const scalar = Object.fromEntries(
      Object.entries(CD_LAYOUT).map(([k, [, w]]) => [
        k,
        w === 1 ? fc.boolean() : fc.integer({ min: 0, max: 2 ** w - 1 }),
      ]),
    );
    const arb = fc.record({
      ...scalar,
      ttb0: fc.integer({ min: 0, max: 2 ** 52 - 1 }).map((x) => x * 16),
      ttb1: fc.integer({ min: 0, max: 2 ** 52 - 1 }).map((x) => x * 16),
    });
    fc.assert(
      fc.property(arb, (fields) => {
        expect(decodeCd(encodeCd(fields as Partial<Cd>))).toEqual(fields);
      }),
    );
  });

  it('refuses values that do not fit', () => {
    expect(() => encodeCd({ asid: 0x1_0000 })).toThrow(/CD.asid/);
    expect(errnoOf(() => encodeCd({ ttb0: 8 }))).toBe('EINVAL');
  });

  it('TG1 has its own encoding; IPS is capped at the OAS', () => {
    expect([0, 1, 2, 3].map(granuleFromTg1)).toEqual([undefined, 16384, 4096, 65536]);
    expect(cdEffectiveIpsBits(cd({ ips: 6 }), FEATURES)).toBe(48);
    expect(cdEffectiveIpsBits(cd({ ips: 2 }), FEATURES)).toBe(40);
  });
});

describe('checkCd: the C_BAD_CD conditions (SMMUv3 §5.4.2)', () => {
  const good = (
    fields: Partial<Cd>,
    features = FEATURES,
    context = DEFAULT_CD_CONTEXT,
    idr = DEFAULT_IDR_EXTRAS,
  ) => expect(checkCd(cd(fields), features, context, idr)).toEqual({ ok: true });
  const bad = (
    fields: Partial<Cd>,
    reason: string | RegExp,
    features = FEATURES,
    context = DEFAULT_CD_CONTEXT,
    idr = DEFAULT_IDR_EXTRAS,
  ) => {
    const r = checkCd(cd(fields), features, context, idr);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  };

  it('accepts the example', () => good(S1_CD));

  it('V == 0', () => bad({ ...S1_CD, v: false }, 'CD.V is 0'));

  it('CD.S under STE.S1STALLD', () => {
    bad({ ...S1_CD, s: true }, 'CD.S is 1 but the STE sets S1STALLD', FEATURES, {
      ...DEFAULT_CD_CONTEXT,
      s1Stalld: true,
    });
    good({ ...S1_CD, s: true });
  });

  it('CD.A == 0 with TERM_MODEL == 1', () => {
    bad(
      { ...S1_CD, a: false },
      'CD.A is 0 but terminated transactions always abort (SMMU_IDR0.TERM_MODEL == 1)',
    );
    good({ ...S1_CD, a: false }, FEATURES, DEFAULT_CD_CONTEXT, {
      ...DEFAULT_IDR_EXTRAS,
      termModelAbort: false,
    });
  });

  it('CD.S against the stall model', () => {
    bad({ ...S1_CD, s: true }, /CD.S is 1 but stalls are not supported/, {
      ...FEATURES,
      stallModel: 'no-stall',
    });
    bad(S1_CD, /CD.S is 0 but stalls are forced/, { ...FEATURES, stallModel: 'force-stall' });
    good({ ...S1_CD, s: true }, { ...FEATURES, stallModel: 'force-stall' });
  });

  it('ENDI against TTENDIAN, unless both TTBs are disabled', () => {
    bad({ ...S1_CD, endi: true }, /CD.ENDI selects big-endian tables .*little-endian only/);
    good({ ...S1_CD, endi: true, epd0: true }); // EPD0 and EPD1: ENDI IGNORED
    good({ ...S1_CD, endi: true }, FEATURES, DEFAULT_CD_CONTEXT, {
      ...DEFAULT_IDR_EXTRAS,
      ttEndian: 'mixed',
    });
    bad(S1_CD, /selects little-endian/, FEATURES, DEFAULT_CD_CONTEXT, {
      ...DEFAULT_IDR_EXTRAS,
      ttEndian: 'big',
    });
  });

  it('AA64 == 0 without VMSAv8-32 LPAE support', () => {
    bad(
      { ...S1_CD, aa64: false },
      'CD.AA64 is 0 (VMSAv8-32 LPAE), which is not implemented (SMMU_IDR0.TTF == 0b10)',
    );
  });

  it('HA/HD beyond HTTU', () => {
    bad({ ...S1_CD, ha: true }, 'CD.HA is 1 but SMMU_IDR0.HTTU == 0b00', { ...FEATURES, httu: 'none' });
    bad({ ...S1_CD, ha: true, hd: true }, 'CD.HD is 1 but SMMU_IDR0.HTTU == 0b01 (access flag only)', {
      ...FEATURES,
      httu: 'access',
    });
    good({ ...S1_CD, ha: true }, { ...FEATURES, httu: 'access' });
    good({ ...S1_CD, ha: true, hd: true });
  });

  it('ASID[15:8] without 16-bit ASIDs, where the StreamWorld uses the ASID', () => {
    const asid8 = { ...FEATURES, asid16: false };
    bad(S1_CD, 'CD.ASID 0x1234 needs 16-bit ASIDs (SMMU_IDR0.ASID16 == 0)', asid8);
    good({ ...S1_CD, asid: 0xff }, asid8);
    bad(S1_CD, /ASID/, asid8, { ...DEFAULT_CD_CONTEXT, streamWorld: 'NS-EL2-E2H' });
    good(S1_CD, asid8, { ...DEFAULT_CD_CONTEXT, streamWorld: 'NS-EL2' }); // EL2: ASID IGNORED
  });

  it('T0SZ/T1SZ outside [16, 39] for an enabled TTB', () => {
    bad({ ...S1_CD, t0sz: 15 }, 'CD.T0SZ 15 is outside [16, 39]');
    bad({ ...S1_CD, t0sz: 40 }, 'CD.T0SZ 40 is outside [16, 39]');
    good({ ...S1_CD, t0sz: 39 });
    good({ ...S1_CD, epd0: true, t0sz: 0, tg0: 3, ttb0: 2 ** 55 }); // EPD0: all TTB0 fields IGNORED
    bad({ ...S1_CD, epd1: false }, 'CD.T1SZ 0 is outside [16, 39]');
  });

  it('TG0/TG1 reserved or not implemented', () => {
    bad({ ...S1_CD, tg0: 3 }, 'CD.TG0 0b11 is reserved');
    bad(S1_CD, 'CD.TG0 selects the 4K granule, which is not implemented (SMMU_IDR5.GRAN4K == 0)', {
      ...FEATURES,
      granules: { g4k: false, g16k: true, g64k: true },
    });
    bad({ ...S1_CD, epd1: false, t1sz: 16 }, 'CD.TG1 0b00 is reserved');
    good({ ...S1_CD, epd1: false, t1sz: 16, tg1: CD_TG1.SIZE_4K });
    bad({ ...S1_CD, epd1: false, t1sz: 16, tg1: CD_TG1.SIZE_16K }, /CD.TG1 selects the 16K granule/, {
      ...FEATURES,
      granules: { g4k: true, g16k: false, g64k: true },
    });
  });

  it('TTB0/TTB1 outside the effective IPS, or above 48 bits with 4K/16K', () => {
    bad({ ...S1_CD, ips: 2, ttb0: 2 ** 40 }, 'CD.TTB0 0x10000000000 is outside the 40-bit effective IPS');
    good({ ...S1_CD, ips: 2, ttb0: 2 ** 40 - 4096 });
    good({ ...S1_CD, ips: 6, ttb0: 2 ** 48 - 4096 }); // IPS 52 capped at the 48-bit OAS
    bad({ ...S1_CD, ips: 6, ttb0: 2 ** 48 }, /outside the 48-bit effective IPS/);
    const oas52 = { ...FEATURES, oasBits: 52 as const };
    bad(
      { ...S1_CD, ips: 6, ttb0: 2 ** 48 },
      'CD.TTB0 0x1000000000000 is above 48 bits with the 4K granule (DS == 0)',
      oas52,
    );
    good({ ...S1_CD, ips: 6, tg0: TG0.SIZE_64K, ttb0: 2 ** 48 }, oas52);
    bad(
      { ...S1_CD, epd1: false, t1sz: 16, tg1: CD_TG1.SIZE_4K, ttb1: 2 ** 48 },
      /CD.TTB1 .* outside the 48-bit/,
    );
  });

  it('NS-EL2: EPDx are IGNORED and TTB1 is unreachable', () => {
    const el2 = { ...DEFAULT_CD_CONTEXT, streamWorld: 'NS-EL2' as const };
    bad({ ...S1_CD, epd0: true, t0sz: 0 }, 'CD.T0SZ 0 is outside [16, 39]', FEATURES, el2);
    good({ ...S1_CD, epd1: false, t1sz: 0, tg1: 0 }, FEATURES, el2);
  });
});

describe('CD tables (SMMUv3 §5.2 S1Fmt, §5.3 L1CD)', () => {
  it('encodes an L1CD to the exact words', () => {
    const w = encodeL1Cd({ v: true, l2Ptr: 0x1_2340_0000 });
    expect(Array.from(w)).toEqual([0x23400001, 0x00000001]);
    expect(decodeL1Cd(w)).toEqual({ v: true, l2Ptr: 0x1_2340_0000 });
    expect(decodeL1Cd(encodeL1Cd({ l2Ptr: 2 ** 56 - 4096 }))).toEqual({ v: false, l2Ptr: 2 ** 56 - 4096 });
  });

  it('a single CD when S1CDMax == 0 or without substreams', () => {
    const single = { format: 'single', entries: 1, l2Bits: 0, l1Entries: 0, align: 64 };
    expect(cdTableGeometry(STE_S1FMT.TWO_LEVEL_4K, 0, 20)).toEqual(single);
    expect(cdTableGeometry(STE_S1FMT.LINEAR, 5, 0)).toEqual(single);
    expect(cdOrL1CdAddress(0x1000, cdTableGeometry(0, 0, 20), 0)).toEqual({ ok: true, address: 0x1000 });
  });

  it('a linear table, indexed by SubstreamID[S1CDMax − 1:0] and aligned to its size', () => {
    const g = cdTableGeometry(STE_S1FMT.LINEAR, 3, 20);
    expect(g).toEqual({ format: 'linear', entries: 8, l2Bits: 0, l1Entries: 0, align: 512 });
    expect(cdOrL1CdAddress(0x4000, g, 5)).toEqual({ ok: true, address: 0x4000 + 5 * 64 });
    expect(cdOrL1CdAddress(0x4100, g, 5)).toEqual({ ok: true, address: 0x4000 + 5 * 64 }); // RES0 bits as zero
    expect(cdOrL1CdAddress(0x4000, g, 8)).toEqual({
      ok: false,
      reason: 'SubstreamID 0x8 is outside the 8-entry CD table (S1CDMax)',
    });
    expect(cdTableGeometry(0b11, 3, 20).format).toBe('linear'); // reserved S1Fmt behaves as linear
  });

  it('2-level with 4 KiB leaves: L1 by SubstreamID[S1CDMax − 1:6], L2 by SubstreamID[5:0]', () => {
    const g = cdTableGeometry(STE_S1FMT.TWO_LEVEL_4K, 8, 20);
    expect(g).toEqual({ format: 'two-level', entries: 256, l2Bits: 6, l1Entries: 4, align: 64 });
    expect(cdOrL1CdAddress(0x8000, g, 133)).toEqual({ ok: true, address: 0x8000 + 2 * 8 });
    expect(cdAddressFromL1Cd({ v: true, l2Ptr: 0x2_0000_0000 }, g, 133, 48)).toEqual({
      ok: true,
      address: 0x2_0000_0000 + 5 * 64,
    });
    expect(cdTableGeometry(STE_S1FMT.TWO_LEVEL_4K, 6, 20).l1Entries).toBe(1);
    expect(cdTableGeometry(STE_S1FMT.TWO_LEVEL_4K, 14, 20).align).toBe(8 * 256);
  });

  it('2-level with 64 KiB leaves: L1 by SubstreamID[S1CDMax − 1:10], L2 by SubstreamID[9:0]', () => {
    const g = cdTableGeometry(STE_S1FMT.TWO_LEVEL_64K, 20, 20);
    expect(g).toEqual({ format: 'two-level', entries: 2 ** 20, l2Bits: 10, l1Entries: 1024, align: 8192 });
    expect(cdOrL1CdAddress(0x1_2345_6000, g, 0x12345)).toEqual({
      ok: true,
      address: 0x1_2345_6000 + 0x48 * 8,
    });
    // L2Ptr[15:12] are RES0 for 64 KiB leaves: taken as zero.
    expect(cdAddressFromL1Cd({ v: true, l2Ptr: 0x3_0001_f000 }, g, 0x12345, 48)).toEqual({
      ok: true,
      address: 0x3_0001_0000 + 0x345 * 64,
    });
  });

  it('an invalid or out-of-range L1CD gives C_BAD_SUBSTREAMID', () => {
    const g = cdTableGeometry(STE_S1FMT.TWO_LEVEL_4K, 8, 20);
    expect(cdAddressFromL1Cd({ v: false, l2Ptr: 0x1000 }, g, 3, 48)).toEqual({
      ok: false,
      reason: 'L1CD.V is 0 for SubstreamID 0x3',
    });
    expect(cdAddressFromL1Cd({ v: true, l2Ptr: 2 ** 48 }, g, 3, 48)).toEqual({
      ok: false,
      reason: 'L1CD.L2Ptr 0x1000000000000 is outside the 48-bit address range',
    });
    expect(cdAddressFromL1Cd({ v: true, l2Ptr: 0x1000 }, g, 256, 48).ok).toBe(false);
    expect(cdAddressFromL1Cd({ v: true, l2Ptr: 0x1000 }, cdTableGeometry(0, 3, 20), 1, 48).ok).toBe(false);
  });
});
