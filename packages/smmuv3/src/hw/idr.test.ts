import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_IDR_EXTRAS } from './features.js';
import {
  featuresFromIdrs,
  IDR0_HTTU,
  IDR0_HYP,
  IDR0_NS1ATS,
  IDR0_PRI,
  IDR0_SEV,
  IDR0_STALL_MODEL,
  IDR0_TERM_MODEL,
  IDR0_TTENDIAN,
  IDR5_OAS,
  idrFixedFieldsFromIdr0,
  idrValues,
} from './idr.js';
import { featuresFromOptions, type Smmuv3Options, Smmuv3OptionsSchema } from './options.js';

function idrsOf(input: Record<string, unknown>) {
  const options = Smmuv3OptionsSchema.parse(input);
  return idrValues(featuresFromOptions(options), options);
}

describe('idrValues', () => {
  it('encodes the default instance with every field at its spec position (SMMUv3 §6.3.1–6.3.8)', () => {
    // IDR0: S2P[0] S1P[1] TTF[3:2]=2 COHACC[4] HTTU[7:6]=2 ATS[10] NS1ATS[11] ASID16[12] MSI[13] PRI[16]
    // VMID16[18] CD2L[19] TTENDIAN[22:21]=2 STALL_MODEL[25:24]=0 TERM_MODEL[26] ST_LEVEL[28:27]=1.
    // IDR1: SIDSIZE[5:0]=16 SSIDSIZE[10:6]=20 PRIQS[15:11]=19 EVENTQS[20:16]=19 CMDQS[25:21]=19.
    // IDR3: HAD[2] XNX[4] RIL[10]. IDR5: OAS[2:0]=5 (48) GRAN4K[4] GRAN16K[5] GRAN64K[6] STALL_MAX[31:16]=64.
    expect(idrsOf({})).toEqual({
      IDR0: 0x0c4d_3c9b,
      IDR1: 0x0273_9d10,
      IDR2: 0,
      IDR3: 0x0000_0414,
      IDR4: 0,
      IDR5: 0x0040_0075,
      IIDR: 0,
      AIDR: 0x0000_0001,
    });
  });

  it('IDR0.SEV (bit 14) follows the sev option, off by default (§6.3.1)', () => {
    expect(idrsOf({}).IDR0 & IDR0_SEV).toBe(0);
    expect(idrsOf({ sev: true }).IDR0).toBe((idrsOf({}).IDR0 | IDR0_SEV) >>> 0);
    expect(IDR0_SEV).toBe(1 << 14);
  });

  it("matches QEMU's documented stage-1 values (qemu-baseline §1) except its IDR3.BBML = 2", () => {
    const ids = idrsOf({
      s2: false,
      nesting: false,
      ssidBits: 0,
      twoLevelCdTable: false,
      ats: false,
      pri: false,
      msi: false,
      stallModel: 'no-stall',
      httu: 'none',
      oasBits: 44,
      priqLog2: 0,
    });
    expect(ids.IDR0).toBe(0x0d44_101a);
    expect(ids.IDR1).toBe(0x0273_0010);
    expect(ids.IDR3).toBe(0x1404 & ~0x1800);
    expect(ids.IDR5).toBe(0x74);
    expect(idrsOf({ s1: false, nesting: false, ats: false, pri: false, msi: false }).IDR0 & 0b11).toBe(0b01);
  });

  it('encodes IIDR and AIDR from the options', () => {
    const ids = idrsOf({
      iidr: { implementer: 0x43b, revision: 2, variant: 1, productId: 0x483 },
      archVersion: '3.0',
    });
    expect(ids.IIDR).toBe(0x4831_243b);
    expect(ids.AIDR).toBe(0);
    // SMMUv3.0: HAD optional (not advertised), XNX RES0.
    expect(ids.IDR3).toBe(0x400);
  });

  it('keeps RES0 fields zero', () => {
    // STALL_MAX is RES0 when STALL_MODEL == 0b01; NS1ATS needs ATS, S1P and S2P.
    const noStall = idrsOf({ stallModel: 'no-stall' });
    expect(noStall.IDR5 >>> 16).toBe(0);
    expect((noStall.IDR0 >>> IDR0_STALL_MODEL.lsb) & 0b11).toBe(1);
    const options0 = Smmuv3OptionsSchema.parse({ s2: false, nesting: false });
    const hypNs1ats = { ...DEFAULT_IDR_EXTRAS, hyp: true, ns1ats: true };
    expect(
      idrValues(featuresFromOptions(options0), options0, hypNs1ats).IDR0 & (IDR0_HYP | IDR0_NS1ATS),
    ).toBe(0);
    // PRI is RES0 when ATS == 0, even if the features (unvalidated) claim it.
    const options = Smmuv3OptionsSchema.parse({});
    const f = { ...featuresFromOptions(options), ats: false, pri: true };
    expect(idrValues(f, options).IDR0 & IDR0_PRI).toBe(0);
  });

  it('encodes VAX for 52-bit VAs and OAS 52', () => {
    const ids = idrsOf({ oasBits: 52, vaBits: 52 });
    expect(ids.IDR5 & 0b111).toBe(6);
    expect((ids.IDR5 >>> 10) & 0b11).toBe(1);
  });
});

describe('featuresFromIdrs', () => {
  const options = Smmuv3OptionsSchema.parse({});
  const ids = idrValues(featuresFromOptions(options), options);

  it('round-trips any valid configuration (fast-check)', () => {
    const bool = fc.boolean();
    const raw = fc.record({
      s1: bool,
      s2: bool,
      sidBits: fc.integer({ min: 0, max: 32 }),
      ssidBits: fc.integer({ min: 0, max: 20 }),
      oasBits: fc.constantFrom(32, 36, 40, 42, 44, 48, 52),
      granules: fc.record({ g4k: bool, g16k: bool, g64k: bool }),
      vaBits: fc.constantFrom(48, 52),
      twoLevelStreamTable: bool,
      twoLevelCdTable: bool,
      asid16: bool,
      vmid16: bool,
      ats: bool,
      pri: bool,
      stallModel: fc.constantFrom('stall', 'no-stall', 'force-stall'),
      stallMax: fc.integer({ min: 1, max: 0xffff }),
      httu: fc.constantFrom('none', 'access', 'access-dirty'),
      rangeInvalidation: bool,
      msi: bool,
      wiredIrqs: bool,
      coherent: bool,
      cmdqLog2: fc.integer({ min: 0, max: 19 }),
      evtqLog2: fc.integer({ min: 0, max: 19 }),
      priqLog2: fc.integer({ min: 0, max: 19 }),
      archVersion: fc.constantFrom('3.0', '3.1'),
    });
    fc.assert(
      fc.property(raw, (input) => {
        const parsed = Smmuv3OptionsSchema.safeParse({ ...input, nesting: input.s1 && input.s2 });
        fc.pre(parsed.success);
        const o = parsed.data as Smmuv3Options;
        const features = featuresFromOptions(o);
        const back = featuresFromIdrs(idrValues(features, o), { wiredIrqs: o.wiredIrqs });
        expect(back).toEqual(features);
      }),
      { numRuns: 500 },
    );
  });

  it('takes wired interrupts from the platform, not the registers', () => {
    expect(featuresFromIdrs(ids, { wiredIrqs: false }).wiredIrqs).toBe(false);
    expect(featuresFromIdrs(ids, { wiredIrqs: true }).wiredIrqs).toBe(true);
  });

  it('reads HTTU = 3 (table Access flag too) as access-dirty', () => {
    const idr0 = ids.IDR0 | (3 << IDR0_HTTU.lsb);
    expect(featuresFromIdrs({ ...ids, IDR0: idr0 }, { wiredIrqs: true }).httu).toBe('access-dirty');
  });

  it('ignores IDR0.PRI when ATS is 0 (PRI is RES0 then)', () => {
    const idr0 = (ids.IDR0 & ~(1 << 10)) | IDR0_PRI;
    expect(featuresFromIdrs({ ...ids, IDR0: idr0 }, { wiredIrqs: true }).pri).toBe(false);
  });

  it('rejects reserved and unrepresentable encodings', () => {
    const w = { wiredIrqs: true };
    expect(() => featuresFromIdrs({ ...ids, IDR0: ids.IDR0 | (3 << 24) }, w)).toThrow(/STALL_MODEL/);
    expect(() => featuresFromIdrs({ ...ids, IDR0: ids.IDR0 | (2 << 27) }, w)).toThrow(/ST_LEVEL/);
    expect(() => featuresFromIdrs({ ...ids, IDR5: ids.IDR5 | (7 << IDR5_OAS.lsb) }, w)).toThrow(/OAS/);
  });
});

describe('fixed IDR0 fields', () => {
  const options = Smmuv3OptionsSchema.parse({});
  const features = featuresFromOptions(options);

  it('encode Hyp, TERM_MODEL, TTENDIAN and NS1ATS at their positions and decode back', () => {
    for (const fixed of [
      DEFAULT_IDR_EXTRAS,
      { hyp: true, termModelAbort: false, ttEndian: 'mixed', ns1ats: true },
      { hyp: false, termModelAbort: true, ttEndian: 'big', ns1ats: true },
    ] as const) {
      const idr0 = idrValues(features, options, fixed).IDR0;
      expect(idrFixedFieldsFromIdr0(idr0)).toEqual(fixed);
      expect((idr0 & IDR0_HYP) !== 0).toBe(fixed.hyp);
      expect((idr0 & IDR0_TERM_MODEL) !== 0).toBe(fixed.termModelAbort);
      expect((idr0 & IDR0_NS1ATS) !== 0).toBe(fixed.ns1ats);
      expect((idr0 >>> IDR0_TTENDIAN.lsb) & 3).toBe({ mixed: 0, little: 2, big: 3 }[fixed.ttEndian]);
      // The features are unaffected.
      expect(featuresFromIdrs(idrValues(features, options, fixed), { wiredIrqs: true })).toEqual(features);
    }
    expect(() => idrFixedFieldsFromIdr0(1 << IDR0_TTENDIAN.lsb)).toThrow(/TTENDIAN/);
  });
});
