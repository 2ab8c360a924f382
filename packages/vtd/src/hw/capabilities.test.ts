import { IommufdError } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CapFields,
  capWords,
  decodeCap,
  decodeEcap,
  type EcapFields,
  ecapWords,
  FAULT_RECORD_OFFSET,
  IOTLB_REG_OFFSET,
} from './capabilities.js';
import type { SsLevels, VtdFeatures } from './features.js';
import { featuresFromOptions, VtdOptionsSchema } from './options.js';

/**
 * A Sapphire Rapids DMAR unit as Linux logs it ("ver 6:0 cap 19ed008c40780c66 ecap 3ee9e86f050df";
 * intel/intel-device-plugins-for-kubernetes issue #1836), split into halves.
 */
const SPR_CAP = { lo: 0x4078_0c66, hi: 0x19ed_008c };
const SPR_ECAP = { lo: 0x86f0_50df, hi: 0x0003_ee9e };

describe('decodeCap / decodeEcap', () => {
  it('decodes a real CAP_REG field by field (§11.4.2 bit positions)', () => {
    expect(decodeCap(SPR_CAP.lo, SPR_CAP.hi)).toEqual({
      nd: 6, // 2:0 = 110: 16-bit domain IDs
      afl: false,
      rwbf: false,
      plmr: true, // bit 5
      phmr: true, // bit 6
      cm: false,
      sagaw: 0b01100, // 12:8: 4- and 5-level
      mgaw: 56, // 21:16 = 0x38: 57-bit
      zlr: true, // bit 22
      fro: 0x40, // 33:24: records at 0x400
      sllps: 0b0011, // 37:34: 2 MiB and 1 GiB
      psi: true, // bit 39
      nfr: 0, // 47:40: one record
      mamv: 45, // 53:48 = 0x2d
      dwd: true, // bit 54
      drd: true, // bit 55
      fl1gp: true, // bit 56
      pi: true, // bit 59
      fl5lp: true, // bit 60
      ecmds: false,
      esirtps: false,
      esrtps: false,
    });
  });

  it('decodes a real ECAP_REG field by field (§11.4.3 bit positions)', () => {
    expect(decodeEcap(SPR_ECAP.lo, SPR_ECAP.hi)).toEqual({
      c: true,
      qi: true,
      dt: true,
      ir: true,
      eim: true,
      pt: true,
      sc: true,
      iro: 0x50, // 17:8: IOTLB registers at 0x500
      mhmv: 15, // 23:20
      mts: true, // bit 25
      nest: true, // bit 26
      prs: false,
      ers: false,
      srs: true, // bit 31
      nwfs: true, // bit 33
      eafs: true, // bit 34
      pss: 19, // 39:35: 20-bit PASIDs
      pasid: false,
      dit: true, // bit 41
      pds: true, // bit 42
      smts: true, // bit 43
      vcs: false,
      slads: true, // bit 45
      slts: true, // bit 46
      flts: true, // bit 47
      smpwcs: true, // bit 48
      rps: true, // bit 49
      pms: false,
      adms: false,
      rprivs: false,
    });
  });

  it('reads the top bits and the fields VirtualBox alone documents', () => {
    // CAP bits 63, 62, 61 (ESRTPS, ESIRTPS, ECMDS); ECAP bit 52 (ADMS), 53 (RPRIVS), 51 (PMS), 44 (VCS).
    expect(decodeCap(0, 0xe000_0000)).toMatchObject({
      esrtps: true,
      esirtps: true,
      ecmds: true,
      fl5lp: false,
    });
    const ecap = decodeEcap(0, (1 << 20) | (1 << 21) | (1 << 19) | (1 << 12));
    expect(ecap).toMatchObject({ adms: true, rprivs: true, pms: true, vcs: true, rps: false, smts: false });
  });
});

/** Every well-formed feature set the encoders take (rules between fields are the options' business). */
const featuresArb: fc.Arbitrary<VtdFeatures> = fc.record({
  version: fc.record({ major: fc.integer({ min: 0, max: 15 }), minor: fc.integer({ min: 0, max: 15 }) }),
  domainIdBits: fc.constantFrom(4, 6, 8, 10, 12, 14, 16),
  writeBufferFlush: fc.boolean(),
  protectedLowMemory: fc.boolean(),
  protectedHighMemory: fc.boolean(),
  cachingMode: fc.boolean(),
  sagaw: fc.subarray<SsLevels>([3, 4, 5], { minLength: 1 }),
  mgawBits: fc.integer({ min: 1, max: 64 }),
  zeroLengthRead: fc.boolean(),
  faultRecords: fc.integer({ min: 1, max: 256 }),
  pageSelectiveInvalidation: fc.boolean(),
  maxAddressMask: fc.integer({ min: 0, max: 63 }),
  secondStage2MiB: fc.boolean(),
  secondStage1GiB: fc.boolean(),
  drainWrites: fc.boolean(),
  drainReads: fc.boolean(),
  firstStage1GiB: fc.boolean(),
  firstStage5Level: fc.boolean(),
  postedInterrupts: fc.boolean(),
  srtpInvalidates: fc.boolean(),
  sirtpInvalidates: fc.boolean(),
  coherent: fc.boolean(),
  queuedInvalidation: fc.boolean(),
  deviceTlb: fc.boolean(),
  interruptRemapping: fc.boolean(),
  extendedInterruptMode: fc.boolean(),
  passThrough: fc.boolean(),
  snoopControl: fc.boolean(),
  nesting: fc.boolean(),
  pageRequests: fc.boolean(),
  executeRequests: fc.boolean(),
  supervisorRequests: fc.boolean(),
  pasidBits: fc.integer({ min: 0, max: 20 }),
  scalableMode: fc.boolean(),
  firstStage: fc.boolean(),
  secondStage: fc.boolean(),
  secondStageAccessDirty: fc.boolean(),
  scalableWalkCoherency: fc.boolean(),
  abortDmaMode: fc.boolean(),
  pageRequestDrain: fc.boolean(),
  hostAddressBits: fc.integer({ min: 32, max: 52 }),
});

/** The CAP features a driver reads back from decoded fields (the inverse of the encoding, written apart). */
function capFeatures(c: CapFields) {
  return {
    domainIdBits: 4 + 2 * c.nd,
    writeBufferFlush: c.rwbf,
    protectedLowMemory: c.plmr,
    protectedHighMemory: c.phmr,
    cachingMode: c.cm,
    sagaw: ([3, 4, 5] as const).filter((levels) => (c.sagaw >> (levels - 2)) & 1),
    mgawBits: c.mgaw + 1,
    zeroLengthRead: c.zlr,
    faultRecords: c.nfr + 1,
    pageSelectiveInvalidation: c.psi,
    maxAddressMask: c.mamv,
    secondStage2MiB: (c.sllps & 1) === 1,
    secondStage1GiB: (c.sllps & 2) === 2,
    drainWrites: c.dwd,
    drainReads: c.drd,
    firstStage1GiB: c.fl1gp,
    firstStage5Level: c.fl5lp,
    postedInterrupts: c.pi,
    srtpInvalidates: c.esrtps,
    sirtpInvalidates: c.esirtps,
  };
}

function ecapFeatures(e: EcapFields) {
  return {
    coherent: e.c,
    queuedInvalidation: e.qi,
    deviceTlb: e.dt,
    interruptRemapping: e.ir,
    extendedInterruptMode: e.eim,
    passThrough: e.pt,
    snoopControl: e.sc,
    nesting: e.nest,
    pageRequests: e.prs,
    executeRequests: e.ers,
    supervisorRequests: e.srs,
    pasidBits: e.pasid ? e.pss + 1 : 0,
    scalableMode: e.smts,
    firstStage: e.flts,
    secondStage: e.slts,
    secondStageAccessDirty: e.slads,
    scalableWalkCoherency: e.smpwcs,
    abortDmaMode: e.adms,
    pageRequestDrain: e.pds,
  };
}

describe('capWords / ecapWords', () => {
  it('encode the defaults as the Sapphire Rapids unit, but for the register offsets and unmodelled bits', () => {
    const f = featuresFromOptions(VtdOptionsSchema.parse({}));
    // CAP: identical but FRO, 0x40 there and 0x22 (0x220 / 16) here.
    expect(capWords(f)).toEqual({ lo: 0x2278_0c66, hi: SPR_CAP.hi });
    // ECAP lo: C QI DT IR EIM PT SC (0xdf), IRO 0x0f (0xf00), MHMV 15 (0xf00000), NEST (bit 26), PRS (29),
    // SRS (31); the sample also has MTS (25) and no PRS, and IRO 0x50.
    expect(ecapWords(f).lo).toBe(0xa4f0_0fdf);
    // ECAP hi: EAFS (bit 34: 0x4), PSS 19 (0x98), PASID (0x100), PDS (0x400), SMTS (0x800), SLADS (0x2000),
    // SLTS (0x4000), FLTS (0x8000), SMPWCS (0x1_0000), RPS (bit 49: 0x2_0000), RPRIVS (bit 53: 0x20_0000); the
    // sample also has NWFS and DIT, no PASID and no RPRIVS.
    expect(ecapWords(f).hi).toBe(0x0023_ed9c);
  });

  it('place the fault records and the IOTLB registers at the exported offsets', () => {
    const f = featuresFromOptions(VtdOptionsSchema.parse({}));
    const cap = capWords(f);
    const ecap = ecapWords(f);
    expect(decodeCap(cap.lo, cap.hi).fro * 16).toBe(FAULT_RECORD_OFFSET);
    expect(decodeEcap(ecap.lo, ecap.hi).iro * 16).toBe(IOTLB_REG_OFFSET);
    expect([FAULT_RECORD_OFFSET, IOTLB_REG_OFFSET]).toEqual([0x220, 0xf0]);
  });

  it('report MHMV 15 with interrupt remapping and 0 without', () => {
    const f = featuresFromOptions(VtdOptionsSchema.parse({}));
    const withIr = ecapWords(f);
    const withoutIr = ecapWords({ ...f, interruptRemapping: false, extendedInterruptMode: false });
    expect((withIr.lo >>> 20) & 0xf).toBe(15);
    expect((withoutIr.lo >>> 20) & 0x1f).toBe(0);
  });

  it('decode back to the features they encode', () => {
    fc.assert(
      fc.property(featuresArb, (f) => {
        const cap = capWords(f);
        const ecap = ecapWords(f);
        const decodedCap = decodeCap(cap.lo, cap.hi);
        const decodedEcap = decodeEcap(ecap.lo, ecap.hi);
        const { sagaw, ...capRest } = capFeatures(decodedCap);
        expect(sagaw).toEqual([...f.sagaw].sort());
        expect(capRest).toEqual({
          domainIdBits: f.domainIdBits,
          writeBufferFlush: f.writeBufferFlush,
          protectedLowMemory: f.protectedLowMemory,
          protectedHighMemory: f.protectedHighMemory,
          cachingMode: f.cachingMode,
          mgawBits: f.mgawBits,
          zeroLengthRead: f.zeroLengthRead,
          faultRecords: f.faultRecords,
          pageSelectiveInvalidation: f.pageSelectiveInvalidation,
          maxAddressMask: f.maxAddressMask,
          secondStage2MiB: f.secondStage2MiB,
          secondStage1GiB: f.secondStage1GiB,
          drainWrites: f.drainWrites,
          drainReads: f.drainReads,
          firstStage1GiB: f.firstStage1GiB,
          firstStage5Level: f.firstStage5Level,
          postedInterrupts: f.postedInterrupts,
          srtpInvalidates: f.srtpInvalidates,
          sirtpInvalidates: f.sirtpInvalidates,
        });
        expect(ecapFeatures(decodedEcap)).toEqual({
          coherent: f.coherent,
          queuedInvalidation: f.queuedInvalidation,
          deviceTlb: f.deviceTlb,
          interruptRemapping: f.interruptRemapping,
          extendedInterruptMode: f.extendedInterruptMode,
          passThrough: f.passThrough,
          snoopControl: f.snoopControl,
          nesting: f.nesting,
          pageRequests: f.pageRequests,
          executeRequests: f.executeRequests,
          supervisorRequests: f.supervisorRequests,
          pasidBits: f.pasidBits,
          scalableMode: f.scalableMode,
          firstStage: f.firstStage,
          secondStage: f.secondStage,
          secondStageAccessDirty: f.secondStageAccessDirty,
          scalableWalkCoherency: f.scalableWalkCoherency,
          abortDmaMode: f.abortDmaMode,
          pageRequestDrain: f.pageRequestDrain,
        });
        // Features the model never implements read 0; RID_PASID, RID_PRIV and EAFE come with scalable mode.
        expect(decodedCap).toMatchObject({ afl: false, ecmds: false });
        expect(decodedEcap).toMatchObject({
          mts: false,
          nwfs: false,
          eafs: f.scalableMode && f.firstStage,
          dit: false,
          vcs: false,
          rps: f.scalableMode,
          pms: false,
          rprivs: f.scalableMode,
        });
      }),
    );
  });

  it('refuse a feature value its field cannot hold', () => {
    const f = featuresFromOptions(VtdOptionsSchema.parse({}));
    expect(() => capWords({ ...f, faultRecords: 257 })).toThrow(IommufdError);
    expect(() => capWords({ ...f, faultRecords: 257 })).toThrow(/CAP_REG\.nfr = 0x100/);
    expect(() => ecapWords({ ...f, pasidBits: 33 })).toThrow(/ECAP_REG\.pss = 0x20/);
  });
});
