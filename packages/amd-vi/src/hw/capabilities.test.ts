import { IommufdError } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  capabilityHeaderWord,
  decodeCapabilityHeader,
  decodeEfr,
  decodeEfr2,
  type Efr2Fields,
  type EfrFields,
  efr2Words,
  efrWords,
} from './capabilities.js';
import {
  type AmdFeatures,
  GCR3_LEVELS,
  GUEST_LEVELS,
  HOST_LEVELS,
  INTERRUPT_REMAP_ENTRIES,
} from './features.js';
import { AmdOptionsSchema, featuresFromOptions } from './options.js';

/**
 * A Genoa (EPYC 9004) unit's EFR as Linux logs it, "AMD-Vi: Extended features (0xa5bf732fa2295afe): PPR
 * X2APIC NX GT [5] IA GA PC GA_vAPIC" (openvelinux/kernel pull request #50), and the EFR2 a Genoa SEV-SNP
 * host (Dell PowerEdge R6615) logs beside its EFR, "(0xa5bf7320a2294aee, 0x1d)" (permaweb/hb-os README.md).
 */
const GENOA_EFR = { lo: 0xa229_5afe, hi: 0xa5bf_732f };
const GENOA_SNP_EFR2 = { lo: 0x1d, hi: 0 };

const defaults = () => featuresFromOptions(AmdOptionsSchema.parse({}));

describe('decodeEfr / decodeEfr2 / decodeCapabilityHeader', () => {
  it('decodes a real EFR field by field', () => {
    expect(decodeEfr(GENOA_EFR.lo, GENOA_EFR.hi)).toEqual({
      preFSup: false, // bit 0 of 0xfe
      pprSup: true,
      xtSup: true,
      nxSup: true,
      gtSup: true, // bit 4; bit 5 (Linux's "[5]") is not a field
      iaSup: true,
      gaSup: true,
      heSup: false, // 15:8 = 0x5a: HE 0, PC 1, HATS 10b, GATS 01b, GLXSup 01b
      pcSup: true,
      hats: 2,
      gats: 1,
      glxSup: 1,
      smiFSup: 1, // 23:16 = 0x29: SmiFSup 01b, SmiFRC 010b, GAMSup 001b
      smiFRC: 2,
      gamSup: 1,
      dualPprLogSup: 2, // 31:24 = 0xa2: 25:24 = 10b, 29:28 = 10b, bit 31 not a field
      dualEventLogSup: 2,
      pasMax: 15, // 39:32 = 0x2f: PASmax 01111b, USSup, DevTblSegSup 0
      usSup: true,
      devTblSegSup: 0,
      pprOvrflwEarlySup: true, // 47:40 = 0x73: 40, 41, 44, 45, 46
      pprAutoRspSup: true,
      marcSup: 0,
      blkStopMrkSup: true,
      perfOptSup: true,
      msiCapMmioSup: true,
      gIoSup: true, // 55:48 = 0xbf: 48–53 and 55, not 54
      haSup: true,
      ephSup: true,
      attrFwSup: true,
      hdSup: true,
      invIotlbTypeSup: false,
      gaUpdateDisSup: true, // 63:56 = 0xa5: 56, 58, 61, 63
      forcePhyDestSup: false,
      snpSup: true,
    });
  });

  it('decodes a real EFR2 and the top fields of both registers', () => {
    expect(decodeEfr2(GENOA_SNP_EFR2.lo, GENOA_SNP_EFR2.hi)).toEqual({
      sevSnpIoSup: false,
      tmpmSup: true, // bit 2
      gcr3TrpMode: true, // bit 3
      gappiDisSup: true, // bit 4; bit 0 is not a field
      snpAvicSup: 0,
      numIntRemapSup: 0, // 512 IRTEs per device
      htRangeIgnore: false,
    });
    expect(decodeEfr2(0x0000_0b22, 0)).toEqual({
      sevSnpIoSup: true,
      tmpmSup: false,
      gcr3TrpMode: false,
      gappiDisSup: false,
      snpAvicSup: 1, // 7:5
      numIntRemapSup: 3, // 9:8
      htRangeIgnore: true, // 11
    });
    expect(decodeEfr(0, 0x6000_001f)).toMatchObject({
      pasMax: 31,
      usSup: false,
      forcePhyDestSup: true,
      gaUpdateDisSup: true,
      snpSup: false,
    });
  });

  it("decodes QEMU's emulated capability header", () => {
    // AMDVI_CAPAB_FEATURES: FLAT_EXT, EFR_SUP, NPCACHE, HTTUNNEL, IOTLBSUP, type 3, ID 0Fh.
    expect(decodeCapabilityHeader(0x1f03_000f)).toEqual({
      capId: 0x0f,
      capPtr: 0,
      capType: 3,
      capRev: 0,
      iotlbSup: true,
      htTunnel: true,
      npCache: true,
      efrSup: true,
      capExt: true,
    });
  });
});

/** Every well-formed feature set the encoders take (rules between fields are the options' business). */
const featuresArb: fc.Arbitrary<AmdFeatures> = fc
  .record({
    pageRequests: fc.boolean(),
    x2apic: fc.boolean(),
    noExecute: fc.boolean(),
    guestTranslation: fc.boolean(),
    invalidateAll: fc.boolean(),
    guestVirtualApic: fc.boolean(),
    guestVapicMode: fc.boolean(),
    hardwareErrors: fc.boolean(),
    hostLevels: fc.constantFrom(...HOST_LEVELS),
    guestLevels: fc.constantFrom(...GUEST_LEVELS),
    gcr3Levels: fc.constantFrom(...GCR3_LEVELS),
    pasidBits: fc.integer({ min: 1, max: 20 }),
    msiCapMmio: fc.boolean(),
    guestIoProtection: fc.boolean(),
    hostAccess: fc.boolean(),
    hostDirty: fc.boolean(),
    enhancedPpr: fc.boolean(),
    gcr3TrpMode: fc.boolean(),
    interruptRemapEntries: fc.constantFrom(...INTERRUPT_REMAP_ENTRIES),
    npCache: fc.boolean(),
    iotlbSupport: fc.boolean(),
  })
  // Without guest translation the guest fields are the zero encodings, as featuresFromOptions gives them.
  .map((f) => ({
    ...f,
    ...(f.guestTranslation ? {} : { guestLevels: 4 as const, gcr3Levels: 1 as const, pasidBits: 0 }),
    maxDeviceTableEntries: 65_536,
    caches: defaults().caches,
  }));

/** The features a driver reads back from decoded fields (the inverse of the encoding, written apart). */
function efrFeatures(e: EfrFields, e2: Efr2Fields) {
  return {
    pageRequests: e.pprSup,
    x2apic: e.xtSup,
    noExecute: e.nxSup,
    guestTranslation: e.gtSup,
    invalidateAll: e.iaSup,
    guestVirtualApic: e.gaSup,
    guestVapicMode: e.gamSup === 1,
    hardwareErrors: e.heSup,
    hostLevels: 4 + e.hats,
    guestLevels: 4 + e.gats,
    gcr3Levels: 1 + e.glxSup,
    pasidBits: e.gtSup ? e.pasMax + 1 : 0,
    msiCapMmio: e.msiCapMmioSup,
    guestIoProtection: e.gIoSup,
    hostAccess: e.haSup,
    hostDirty: e.hdSup,
    enhancedPpr: e.ephSup,
    gcr3TrpMode: e2.gcr3TrpMode,
    interruptRemapEntries: e2.numIntRemapSup === 1 ? 2048 : 512,
  };
}

describe('efrWords / efr2Words / capabilityHeaderWord', () => {
  it('encode the defaults as the Genoa unit, but for the fields the model does not implement', () => {
    const f = defaults();
    // Low half: PPR XT NX GT IA GA (0xde), HATS 10b (0x800), GATS 01b (0x1000), GLXSup 01b (0x4000),
    // GAMSup 1 (bit 21); Genoa also has bit 5, PC (bit 9), SmiFSup/SmiFRC and the dual logs (bits 16, 19,
    // 25, 29) and bit 31.
    // High half: PASmax 15 (0xf), MsiCapMmioSup (bit 46: 0x4000), GIoSup, HASup, EPHSup (bits 48–50:
    // 0x7_0000), HDSup (bit 52: 0x10_0000); Genoa also has USSup, PprOvrflwEarly, PprAutoRsp, BlkStopMrk,
    // PerfOpt, AttrFW, bits 53, 55, 56, 58, 61 and SNPSup.
    expect(efrWords(f)).toEqual({ lo: 0x0020_58de, hi: 0x0017_400f });
    // So the defaults are the Genoa EFR without exactly those bits: lo 5, 9, 16, 19, 25, 29, 31; hi 37, 40,
    // 41, 44, 45, 51, 53, 55, 56, 58, 61, 63.
    const dropped = { lo: 0xa209_0220, hi: 0xa5a8_3320 };
    expect({ lo: (GENOA_EFR.lo & ~dropped.lo) >>> 0, hi: (GENOA_EFR.hi & ~dropped.hi) >>> 0 }).toEqual(
      efrWords(f),
    );
    // EFR2: GCR3TRPMode (bit 3); the Genoa SNP host also reports bits 0, 2 (TMPM) and 4 (GAPPIDis).
    expect(efr2Words(f)).toEqual({ lo: 0x8, hi: 0 });
    // Capability header: ID 0Fh, type 3, IotlbSup (bit 24), EFRSup (bit 27).
    expect(capabilityHeaderWord(f)).toBe(0x0903_000f);
  });

  it('report the guest-translation fields 0 without GT', () => {
    const noGt = featuresFromOptions(AmdOptionsSchema.parse({ guestTranslation: false }));
    expect(decodeEfr(efrWords(noGt).lo, efrWords(noGt).hi)).toMatchObject({
      gtSup: false,
      gats: 0,
      glxSup: 0,
      pasMax: 0,
      gIoSup: true,
    });
    // Even from features that still carry guest values: the GT bit decides.
    const { lo, hi } = efrWords({ ...defaults(), guestTranslation: false });
    expect(decodeEfr(lo, hi)).toMatchObject({ gats: 0, glxSup: 0, pasMax: 0 });
  });

  it('set NumIntRemapSup, NpCache and IotlbSup from their features', () => {
    const f = featuresFromOptions(
      AmdOptionsSchema.parse({ interruptRemapEntries: 2048, npCache: true, iotlbSupport: false }),
    );
    expect(efr2Words(f)).toEqual({ lo: 0x108, hi: 0 });
    expect(capabilityHeaderWord(f)).toBe(0x0c03_000f);
  });

  it('decode back to the features they encode', () => {
    fc.assert(
      fc.property(featuresArb, (f) => {
        const efr = efrWords(f);
        const efr2 = efr2Words(f);
        const decoded = decodeEfr(efr.lo, efr.hi);
        const decoded2 = decodeEfr2(efr2.lo, efr2.hi);
        expect(efrFeatures(decoded, decoded2)).toEqual({
          pageRequests: f.pageRequests,
          x2apic: f.x2apic,
          noExecute: f.noExecute,
          guestTranslation: f.guestTranslation,
          invalidateAll: f.invalidateAll,
          guestVirtualApic: f.guestVirtualApic,
          guestVapicMode: f.guestVapicMode,
          hardwareErrors: f.hardwareErrors,
          hostLevels: f.hostLevels,
          guestLevels: f.guestLevels,
          gcr3Levels: f.gcr3Levels,
          pasidBits: f.pasidBits,
          msiCapMmio: f.msiCapMmio,
          guestIoProtection: f.guestIoProtection,
          hostAccess: f.hostAccess,
          hostDirty: f.hostDirty,
          enhancedPpr: f.enhancedPpr,
          gcr3TrpMode: f.gcr3TrpMode,
          interruptRemapEntries: f.interruptRemapEntries,
        });
        const header = decodeCapabilityHeader(capabilityHeaderWord(f));
        expect(header).toMatchObject({ iotlbSup: f.iotlbSupport, npCache: f.npCache, efrSup: true });
        // Features the model never implements read 0.
        expect(decoded).toMatchObject({
          preFSup: false,
          pcSup: false,
          smiFSup: 0,
          smiFRC: 0,
          dualPprLogSup: 0,
          dualEventLogSup: 0,
          usSup: false,
          devTblSegSup: 0,
          marcSup: 0,
          attrFwSup: false,
          invIotlbTypeSup: false,
          snpSup: false,
        });
        expect(decoded2).toMatchObject({ sevSnpIoSup: false, tmpmSup: false, snpAvicSup: 0 });
      }),
    );
  });

  it('refuse a feature value its field cannot hold', () => {
    const f = defaults();
    expect(() => efrWords({ ...f, pasidBits: 33 })).toThrow(IommufdError);
    expect(() => efrWords({ ...f, pasidBits: 33 })).toThrow(/EFR\.pasMax = 0x20/);
    expect(() => efrWords({ ...f, pasidBits: 0 })).toThrow(/EFR\.pasMax/);
  });
});
