/**
 * The address-size rules of IHI 0070 §3.4, one test per translation path, on the device model programmed
 * over MMIO with an OAS (and so an IAS: VMSAv8-64 only) of 40 bits. Records are read back from the Event
 * queue. The paths and their rules are listed in `address-size.ts`.
 */
import { FrameAllocator, NO_PASID, PERM_READ, type TranslationRequest } from '@iommukit/core';
import { IoPageTable, psEncoding, sl0Encoding, t0szFor, vmsaFormat } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { testCd } from '../../test/cd-fixture.js';
import { mmioRig, RAM_BASE } from '../../test/mmio-rig.js';
import { decodeEvent, EVENT_CLASS, EVENT_ID, EVENT_WORDS, type EventRecord } from './events.js';
import { CR0_CMDQEN, CR0_EVENTQEN, CR0_SMMUEN, GBPA_ABORT, GBPA_UPDATE, REG } from './regs.js';
import { encodeSte, STE_CONFIG, STE_S1DSS, type Ste } from './ste.js';

const OAS = 40;
const STRTAB = RAM_BASE;
const CMDQ = RAM_BASE + 0x1_0000;
const EVTQ = RAM_BASE + 0x2_0000;
const CD = RAM_BASE + 0x3_0000;
/** The first input address beyond the OAS (= IAS). */
const BEYOND = 2 ** OAS;
/** An IPA inside the IAS but beyond the 39-bit stage 2 input range below. */
const BEYOND_S2 = 2 ** 39;

function system({ enable = true } = {}) {
  const rig = mmioRig({ sidBits: 8, ssidBits: 8, oasBits: OAS, vaBits: 48 });
  const { bus, mmio, mmio64 } = rig;
  mmio64(REG.STRTAB_BASE, STRTAB);
  mmio(REG.STRTAB_BASE_CFG, 8);
  mmio64(REG.CMDQ_BASE, CMDQ + 3);
  mmio64(REG.EVENTQ_BASE, EVTQ + 5);
  mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN | (enable ? CR0_SMMUEN : 0));
  const memory = new FrameAllocator([{ base: RAM_BASE + 0x10_0000, size: 0x100_0000 }]);
  const counter = bus.counter('pt');
  const s1 = new IoPageTable(vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: OAS }), {
    bus,
    memory,
    counter,
  });
  const s2 = new IoPageTable(vmsaFormat({ stage: 2, granule: 4096, ias: 39, oas: OAS }), {
    bus,
    memory,
    counter,
  });
  // A 39-bit stage 2 starting at level 1; S2R = 1 and S2S = 1 unless a test says otherwise.
  const s2Fields: Partial<Ste> = {
    s2Vmid: 1,
    s2T0sz: t0szFor(39),
    s2Sl0: sl0Encoding(4096, 1)!,
    s2Tg: 0,
    s2Ps: psEncoding(OAS)!,
    s2Aa64: true,
    s2R: true,
    s2Ttb: s2.rootPa,
  };
  const ste = (sid: number, fields: Partial<Ste>) =>
    rig.put(STRTAB + 64 * sid, encodeSte({ v: true, ...fields }));
  const records = (): EventRecord[] => {
    const count = rig.reg(REG.EVENTQ_PROD) & 0x1f;
    const words = new Uint32Array(EVENT_WORDS);
    const out: EventRecord[] = [];
    for (let i = 0; i < count; i++) {
      bus.readWords(EVTQ + 32 * i, words, EVENT_WORDS, rig.driver);
      out.push(decodeEvent(words));
    }
    return out;
  };
  return { ...rig, s1, s2, s2Fields, ste, records };
}

const req = (streamId: number, address: number, pasid = NO_PASID): TranslationRequest => ({
  streamId,
  pasid,
  iovaPfn: Math.floor(address / 4096),
  offset: address % 4096,
  access: PERM_READ,
});

/** A stage-1 F_ADDR_SIZE for a read of `address` caused by stage 1 bypass: CLASS IN, S2 = 0 (§7.3.14). */
const s1BypassAddrSize = (streamId: number, address: number) => ({
  id: EVENT_ID.F_ADDR_SIZE,
  streamId,
  s2: false,
  class: EVENT_CLASS.IN,
  rnw: true,
  stall: false,
  inputAddrPage: Math.floor(address / 4096),
  inputAddrOffset: address % 4096,
});

describe('address sizes (§3.4), path by path', () => {
  it('SMMUEN = 0 with GBPA bypass: an input beyond the OAS aborts, and no event is recorded', () => {
    const s = system({ enable: false });
    expect(s.smmu.translate(req(1, BEYOND - 4096))).toMatchObject({ ok: true, pfn: BEYOND / 4096 - 1 });
    expect(s.smmu.translate(req(1, BEYOND))).toMatchObject({
      ok: false,
      fault: { kind: 'address-size', recorded: false },
    });
    // GBPA.ABORT aborts everything, in range or not.
    s.mmio(REG.GBPA, GBPA_UPDATE | GBPA_ABORT);
    expect(s.smmu.translate(req(1, 0x1000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'GBPA_ABORT' },
    });
    expect(s.records()).toEqual([]);
  });

  it('STE.Config = bypass: an input beyond the OAS is a stage-1 F_ADDR_SIZE (CLASS IN, S2 = 0)', () => {
    const s = system();
    s.ste(1, { config: STE_CONFIG.BYPASS });
    expect(s.smmu.translate(req(1, BEYOND - 4096))).toMatchObject({ ok: true });
    expect(s.smmu.translate(req(1, BEYOND + 0x123))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_ADDR_SIZE', stage: 1, recorded: true },
    });
    expect(s.records()).toMatchObject([s1BypassAddrSize(1, BEYOND + 0x123)]);
  });

  it('stage 2 only: input >= IAS is a stage-1 F_ADDR_SIZE, recorded and not stalled even with S2R = 0, S2S = 1', () => {
    const s = system();
    s.ste(2, { config: STE_CONFIG.S2_TRANS, ...s.s2Fields, s2R: false, s2S: true });
    const r = s.smmu.translate(req(2, BEYOND));
    expect(r).toMatchObject({ ok: false, fault: { vendorCode: 'F_ADDR_SIZE', stage: 1, recorded: true } });
    expect(r.ok ? undefined : r.stallId).toBeUndefined();
    expect(s.records()).toMatchObject([s1BypassAddrSize(2, BEYOND)]);
  });

  it('stage 2 only: an IPA inside the IAS but outside S2T0SZ is a stage-2 F_TRANSLATION (stage 2 check 1)', () => {
    const s = system();
    s.ste(2, { config: STE_CONFIG.S2_TRANS, ...s.s2Fields });
    expect(s.smmu.translate(req(2, BEYOND_S2))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', stage: 2 },
    });
    expect(s.records()).toMatchObject([{ id: EVENT_ID.F_TRANSLATION, s2: true, ipa: BEYOND_S2 }]);
  });

  it('stage 2 only: an output beyond S2PS is a stage-2 F_ADDR_SIZE (stage 2 check 2)', () => {
    const s = system();
    // A 32-bit stage 2 (IPA and PA) whose leaf points above 4 GiB.
    const narrow = new IoPageTable(vmsaFormat({ stage: 2, granule: 4096, ias: 32, oas: OAS }), {
      bus: s.bus,
      memory: new FrameAllocator([{ base: RAM_BASE + 0x200_0000, size: 0x10_0000 }]),
      counter: s.bus.counter('pt'),
    });
    narrow.map(0x1000n, 0x1_0000_0000n, 0x1000n, { read: true, write: true });
    s.ste(2, {
      config: STE_CONFIG.S2_TRANS,
      ...s.s2Fields,
      s2T0sz: t0szFor(32),
      s2Sl0: sl0Encoding(4096, narrow.format.startLevel)!,
      s2Ps: psEncoding(32)!,
      s2Ttb: narrow.rootPa,
    });
    expect(s.smmu.translate(req(2, 0x1000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_ADDR_SIZE', stage: 2 },
    });
    expect(s.records()).toMatchObject([{ id: EVENT_ID.F_ADDR_SIZE, s2: true, ipa: 0x1000 }]);
  });

  it('stage 1 only, S1DSS = bypass: input >= IAS is a stage-1 F_ADDR_SIZE; in range it passes through', () => {
    const s = system();
    s.ste(3, { config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD, s1CdMax: 2, s1Dss: STE_S1DSS.BYPASS });
    expect(s.smmu.translate(req(3, BEYOND - 4096))).toMatchObject({ ok: true, pfn: BEYOND / 4096 - 1 });
    expect(s.smmu.translate(req(3, BEYOND))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_ADDR_SIZE', stage: 1 },
    });
    expect(s.records()).toMatchObject([s1BypassAddrSize(3, BEYOND)]);
  });

  it('nested, S1DSS = bypass: input >= IAS is a stage-1 F_ADDR_SIZE before stage 2 is consulted', () => {
    const s = system();
    s.ste(4, {
      config: STE_CONFIG.NESTED,
      ...s.s2Fields,
      s1ContextPtr: CD,
      s1CdMax: 2,
      s1Dss: STE_S1DSS.BYPASS,
    });
    expect(s.smmu.translate(req(4, BEYOND))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_ADDR_SIZE', stage: 1 },
    });
    expect(s.records()).toMatchObject([s1BypassAddrSize(4, BEYOND)]);
  });

  it('stage 1 translating: a VA outside T0SZ is F_TRANSLATION, an output beyond CD.IPS is F_ADDR_SIZE', () => {
    const s = system();
    s.put(CD, testCd(s.s1.rootPa, { ips: psEncoding(32)! }));
    s.ste(5, { config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD });
    s.s1.map(0x2000n, 0x1_0000_0000n, 0x1000n, { read: true, write: true });
    expect(s.smmu.translate(req(5, 2 ** 48))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', stage: 1 },
    });
    expect(s.smmu.translate(req(5, 0x2000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_ADDR_SIZE' },
    });
    expect(s.records()).toMatchObject([
      { id: EVENT_ID.F_TRANSLATION, s2: false, class: EVENT_CLASS.IN },
      { id: EVENT_ID.F_ADDR_SIZE, s2: false, class: EVENT_CLASS.IN },
    ]);
  });

  it('nested: a stage-1 output IPA outside the stage 2 input range is a stage-2 F_TRANSLATION', () => {
    const s = system();
    s.put(CD, testCd(s.s1.rootPa));
    s.ste(6, { config: STE_CONFIG.NESTED, ...s.s2Fields, s1ContextPtr: CD });
    // The CD and the stage-1 tables are read through stage 2: map the RAM holding them 1:1.
    s.s2.map(BigInt(RAM_BASE), BigInt(RAM_BASE), 0x120_0000n, { read: true, write: true });
    s.s1.map(0x3000n, BigInt(BEYOND_S2), 0x1000n, { read: true, write: true });
    expect(s.smmu.translate(req(6, 0x3000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', stage: 2 },
    });
    expect(s.records()).toMatchObject([
      { id: EVENT_ID.F_TRANSLATION, s2: true, class: EVENT_CLASS.IN, ipa: BEYOND_S2 },
    ]);
  });

  it('an ATS request to a stage-2-only stream beyond the IAS fails without an event', () => {
    const s = system();
    s.ste(2, { config: STE_CONFIG.S2_TRANS, ...s.s2Fields, eats: 1 });
    expect(s.smmu.atsTranslate(req(2, BEYOND))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_ADDR_SIZE', stage: 1, recorded: false },
    });
    expect(s.records()).toEqual([]);
  });
});
