import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURES } from '../../test/features.js';
import {
  ATC_INV_SIZE_ALL,
  atcInvPages,
  atcInvSpan,
  CMD_OPCODE,
  CMD_WORDS,
  type Command,
  cfgiSteRangeStreamIds,
  decodeCommand,
  encodeAtcInv,
  encodeCfgiAll,
  encodeCfgiCd,
  encodeCfgiSte,
  encodeCfgiSteRange,
  encodeCmdSync,
  encodeCommand,
  encodePriResp,
  encodeResume,
  encodeTlbiEl2All,
  encodeTlbiEl3All,
  encodeTlbiEl3Va,
  encodeTlbiNhAll,
  encodeTlbiNhAsid,
  encodeTlbiNhVa,
  encodeTlbiNhVaa,
  encodeTlbiS2Ipa,
  splitTlbiRange,
  TLBI_TG,
  type TlbiRangeRequest,
  tlbiRangePages,
} from './commands.js';
import { DEFAULT_IDR_EXTRAS, type Smmuv3Features } from './features.js';

/** The widest StreamIDs and OAS, so the decoder's field checks are not masked by narrower features. */
const FEATURES: Smmuv3Features = { ...DEFAULT_FEATURES, sidBits: 32, oasBits: 52 };
const HYP = { ...DEFAULT_IDR_EXTRAS, hyp: true };

const decode = (words: Uint32Array, features: Smmuv3Features = FEATURES, checkReserved = true) =>
  decodeCommand(words, features, { checkReserved, idr: HYP });
const cmd = (...w: number[]) => Uint32Array.from([...w, ...new Array(CMD_WORDS - w.length).fill(0)]);
const expectIll = (words: Uint32Array, reason: string | RegExp, features: Smmuv3Features = FEATURES) => {
  const r = decode(words, features);
  expect(r.ok, JSON.stringify(r)).toBe(false);
  if (!r.ok) {
    expect(r.error).toBe('ILL');
    expect(r.reason).toMatch(reason);
  }
};

/** One command of each kind the Non-secure queue accepts, with fields at or near their limits. */
const SAMPLES: readonly Command[] = [
  { op: 'PREFETCH_CONFIG', streamId: 0xffff_ffff, ssv: true, substreamId: 0xf_ffff },
  { op: 'PREFETCH_ADDR', streamId: 7, ssv: false, substreamId: 0, size: 31, addressPage: 2 ** 52 - 1 },
  { op: 'CFGI_STE', streamId: 0x1234, leaf: true },
  { op: 'CFGI_STE_RANGE', streamId: 0x100, range: 30 },
  { op: 'CFGI_ALL' },
  { op: 'CFGI_CD', streamId: 3, substreamId: 0x1_2345, leaf: false },
  { op: 'CFGI_CD_ALL', streamId: 9 },
  { op: 'TLBI_NH_ALL', vmid: 0xffff },
  { op: 'TLBI_NH_ASID', vmid: 1, asid: 0xffff },
  {
    op: 'TLBI_NH_VA',
    vmid: 5,
    asid: 0x1234,
    addressPage: 0xf_fff8_0001_2345,
    leaf: true,
    num: 3,
    scale: 0,
    tg: TLBI_TG.SIZE_4K,
    ttl: 3,
  },
  { op: 'TLBI_NH_VAA', vmid: 5, addressPage: 0x12345, leaf: false, num: 31, scale: 31, tg: 3, ttl: 0 },
  { op: 'TLBI_EL2_ALL' },
  { op: 'TLBI_EL2_ASID', asid: 7 },
  { op: 'TLBI_EL2_VA', asid: 7, addressPage: 1, leaf: true, num: 0, scale: 0, tg: 0, ttl: 0 },
  { op: 'TLBI_EL2_VAA', addressPage: 1, leaf: false, num: 1, scale: 2, tg: 2, ttl: 2 },
  { op: 'TLBI_S12_VMALL', vmid: 0x42 },
  { op: 'TLBI_S2_IPA', vmid: 0x42, addressPage: 2 ** 40 - 1, leaf: true, num: 0, scale: 0, tg: 1, ttl: 3 },
  { op: 'TLBI_NSNH_ALL' },
  { op: 'ATC_INV', streamId: 0x10, ssv: true, substreamId: 5, global: true, size: 52, addressPage: 0 },
  { op: 'PRI_RESP', streamId: 3, ssv: true, substreamId: 9, prgIndex: 0x1ff, resp: 2 },
  { op: 'RESUME', streamId: 7, stag: 0xabcd, action: 1, abort: false },
  { op: 'STALL_TERM', streamId: 7 },
  { op: 'SYNC', cs: 1, msh: 3, msiAttr: 0xf, msiData: 0xdead_beef, msiAddress: 0xf_ffff_ffff_fffc },
];

describe('command encodings (SMMUv3 §4)', () => {
  it.each(SAMPLES.map((c) => [c.op, c] as const))('%s encodes and decodes back', (_, command) => {
    expect(decode(encodeCommand(command))).toEqual({ ok: true, command });
  });

  it('TLBI_NH_VA to the exact words', () => {
    const w = encodeTlbiNhVa({
      vmid: 5,
      asid: 0x1234,
      addressPage: 0xf_fff8_0001_2345, // VA 0xffff_8000_1234_5000
      leaf: true,
      num: 3,
      tg: TLBI_TG.SIZE_4K,
      ttl: 3,
    });
    // q0: opcode 0x12 | NUM 3 << 12 | VMID << 32 | ASID << 48; q1: Leaf | TTL 3 << 8 | TG 1 << 10 | VA[63:12].
    expect(Array.from(w)).toEqual([0x00003012, 0x12340005, 0x12345701, 0xffff8000]);
  });

  it('CMD_SYNC, ATC_INV, CFGI_STE, CFGI_ALL, RESUME and PRI_RESP to the exact words', () => {
    expect(
      Array.from(
        encodeCmdSync({ cs: 1, msh: 3, msiAttr: 0xf, msiData: 0xdead_beef, msiAddress: 0x1_2345_6780 }),
      ),
    ).toEqual([0x0fc01046, 0xdeadbeef, 0x23456780, 0x00000001]);
    expect(
      Array.from(
        encodeAtcInv({ streamId: 0x10, ssv: true, substreamId: 5, global: true, size: 4, addressPage: 0 }),
      ),
    ).toEqual([0x00005a40, 0x10, 0x4, 0]);
    expect(Array.from(encodeCfgiSte({ streamId: 0x1234, leaf: true }))).toEqual([0x03, 0x1234, 0x1, 0]);
    expect(Array.from(encodeCfgiAll())).toEqual([0x04, 0, 0x1f, 0]);
    expect(Array.from(encodeResume({ streamId: 7, stag: 0xabcd, action: 1 }))).toEqual([
      0x1044, 7, 0xabcd, 0,
    ]);
    expect(
      Array.from(encodePriResp({ streamId: 3, ssv: true, substreamId: 9, prgIndex: 0x1ff, resp: 2 })),
    ).toEqual([0x9841, 3, 0x21ff, 0]);
    // TLBI_S2_IPA: IPA[51:12] at q1 bits [51:12].
    expect(Array.from(encodeTlbiS2Ipa({ vmid: 1, addressPage: 0xf_1234_5678 }))).toEqual([
      0x2a, 0x1, 0x45678000, 0x0000f123,
    ]);
  });

  it('every opcode of the spec table decodes, or is ILL for the reason the spec gives', () => {
    const ill: Record<number, RegExp> = {
      [CMD_OPCODE.CFGI_VMS_PIDM]: /MPAM/,
      [CMD_OPCODE.TLBI_EL3_ALL]: /Secure Command queue/,
      [CMD_OPCODE.TLBI_EL3_VA]: /Secure Command queue/,
      [CMD_OPCODE.TLBI_S_EL2_ALL]: /Secure Command queue/,
      [CMD_OPCODE.TLBI_S_EL2_ASID]: /Secure Command queue/,
      [CMD_OPCODE.TLBI_S_EL2_VA]: /Secure Command queue/,
      [CMD_OPCODE.TLBI_S_EL2_VAA]: /Secure Command queue/,
      [CMD_OPCODE.TLBI_S_S12_VMALL]: /Secure Command queue/,
      [CMD_OPCODE.TLBI_S_S2_IPA]: /Secure Command queue/,
      [CMD_OPCODE.TLBI_SNH_ALL]: /Secure Command queue/,
      [CMD_OPCODE.DPTI_ALL]: /DPT/,
      [CMD_OPCODE.DPTI_PA]: /DPT/,
    };
    for (const [name, opcode] of Object.entries(CMD_OPCODE)) {
      const r = decode(cmd(opcode));
      const expected = ill[opcode];
      if (expected) {
        expect(r.ok, name).toBe(false);
        if (!r.ok) expect(r.reason, name).toMatch(expected);
      } else {
        expect(r.ok, name).toBe(true);
        if (r.ok) expect(r.command.op, name).toBe(name);
      }
    }
  });

  it('round-trips random commands (property)', () => {
    const u = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
    const range = fc
      .record({ num: u(5), scale: u(5), tg: fc.integer({ min: 1, max: 3 }), ttl: u(2) })
      .filter((r) => r.num !== 0 || r.scale !== 0 || (r.ttl !== 0 && !(r.tg === 2 && r.ttl === 1)));
    const arb: fc.Arbitrary<Command> = fc.oneof(
      fc
        .record({ vmid: u(16), asid: u(16), addressPage: u(52), leaf: fc.boolean() })
        .chain((f) => range.map((r) => ({ op: 'TLBI_NH_VA' as const, ...f, ...r }))),
      fc
        .record({ vmid: u(16), addressPage: u(40), leaf: fc.boolean() })
        .chain((f) => range.map((r) => ({ op: 'TLBI_S2_IPA' as const, ...f, ...r }))),
      fc.record({
        op: fc.constant('ATC_INV' as const),
        streamId: u(32),
        ssv: fc.boolean(),
        substreamId: u(20),
        global: fc.boolean(),
        size: fc.integer({ min: 0, max: 52 }),
        addressPage: u(52),
      }),
      fc.record({
        op: fc.constant('SYNC' as const),
        cs: fc.integer({ min: 0, max: 2 }),
        msh: u(2),
        msiAttr: u(4),
        msiData: u(32),
        msiAddress: u(50).map((x) => x * 4),
      }),
      fc.record({
        op: fc.constant('CFGI_CD' as const),
        streamId: u(32),
        substreamId: u(20),
        leaf: fc.boolean(),
      }),
      fc.record({
        op: fc.constant('PRI_RESP' as const),
        streamId: u(32),
        ssv: fc.boolean(),
        substreamId: u(20),
        prgIndex: u(9),
        resp: fc.integer({ min: 0, max: 2 }),
      }),
    );
    fc.assert(
      fc.property(arb, (command) => {
        expect(decode(encodeCommand(command))).toEqual({ ok: true, command });
      }),
    );
  });

  it('encoders refuse values that do not fit', () => {
    expect(() => encodeTlbiNhVa({ num: 32 })).toThrow(/num/);
    expect(errnoOf(() => encodeTlbiNhVa({ addressPage: 2 ** 52 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeCmdSync({ msiAddress: 0x1002 }))).toBe('EINVAL'); // not word aligned
    expect(errnoOf(() => encodeCmdSync({ msiAddress: -4 }))).toBe('EINVAL'); // negative, though aligned
    expect(() => encodeCfgiSteRange({ range: 31 })).toThrow(/encodeCfgiAll/);
  });
});

describe('CERROR_ILL (SMMUv3 §4.1.3)', () => {
  it('Reserved and IMPLEMENTATION DEFINED opcodes', () => {
    expectIll(cmd(0x00), 'Reserved command opcode 0x0');
    expectIll(cmd(0x09), 'Reserved command opcode 0x9');
    expectIll(cmd(0x47), 'Reserved command opcode 0x47');
    // §4.1.1: 0x80–0x8F are IMPLEMENTATION DEFINED (none here), 0x74–0x7F and 0x90–0xFF Reserved.
    expectIll(cmd(0x7f), 'Reserved command opcode 0x7f');
    expectIll(cmd(0x80), 'IMPLEMENTATION DEFINED command opcode 0x80');
    expectIll(cmd(0x85), 'IMPLEMENTATION DEFINED command opcode 0x85');
    expectIll(cmd(0x8f), 'IMPLEMENTATION DEFINED command opcode 0x8f');
    expectIll(cmd(0x90), 'Reserved command opcode 0x90');
    expectIll(cmd(0xff), 'Reserved command opcode 0xff');
  });

  it('EL3 commands on the Non-secure queue', () => {
    expectIll(encodeTlbiEl3All(), 'CMD_TLBI_EL3_ALL is valid only on the Secure Command queue');
    expectIll(encodeTlbiEl3Va({ leaf: true }), /CMD_TLBI_EL3_VA is valid only on the Secure/);
  });

  it('commands for a stage, ATS, PRI, stalls or Hyp the SMMU does not implement', () => {
    const noS1 = { ...FEATURES, s1: false };
    expectIll(encodeCfgiCd({ streamId: 1 }), 'CMD_CFGI_CD needs stage 1 (SMMU_IDR0.S1P == 0)', noS1);
    expectIll(cmd(CMD_OPCODE.CFGI_CD_ALL), /CMD_CFGI_CD_ALL needs stage 1/, noS1);
    expectIll(encodeTlbiNhAll(), /CMD_TLBI_NH_ALL needs stage 1/, noS1);
    expectIll(encodeTlbiEl2All(), /CMD_TLBI_EL2_ALL needs stage 1/, noS1);
    expectIll(encodeTlbiS2Ipa({ vmid: 1 }), 'CMD_TLBI_S2_IPA needs stage 2 (SMMU_IDR0.S2P == 0)', {
      ...FEATURES,
      s2: false,
    });
    expectIll(cmd(CMD_OPCODE.TLBI_S12_VMALL), /needs stage 2/, { ...FEATURES, s2: false });
    expectIll(encodeAtcInv(), 'CMD_ATC_INV needs ATS (SMMU_IDR0.ATS == 0)', { ...FEATURES, ats: false });
    expectIll(encodePriResp(), 'CMD_PRI_RESP needs PRI (SMMU_IDR0.PRI == 0)', { ...FEATURES, pri: false });
    const noStall = { ...FEATURES, stallModel: 'no-stall' as const };
    expectIll(encodeResume(), /CMD_RESUME needs stall support/, noStall);
    expectIll(cmd(CMD_OPCODE.STALL_TERM), /CMD_STALL_TERM needs stall support/, noStall);
    // TLBI_EL2_* need IDR0.Hyp, which is RES0 unless both stages exist.
    const r = decodeCommand(encodeTlbiEl2All(), FEATURES);
    expect(r).toEqual({ ok: false, error: 'ILL', reason: 'CMD_TLBI_EL2_ALL needs SMMU_IDR0.Hyp == 1' });
    expectIll(encodeTlbiEl2All(), /Hyp == 1/, { ...FEATURES, s2: false });
    // Always valid: NSNH_ALL, CMD_SYNC, CFGI_STE.
    expect(decode(cmd(CMD_OPCODE.TLBI_NSNH_ALL), { ...noS1, s2: false, ats: false, pri: false }).ok).toBe(
      true,
    );
  });

  it('SSec == 1 on the Non-secure queue', () => {
    const w = encodeCfgiSte({ streamId: 1 });
    w[0]! |= 1 << 10;
    expectIll(w, 'CMD_CFGI_STE: SSec is 1 on the Non-secure Command queue');
    expect(decode(w, FEATURES, false).ok).toBe(false); // not optional
  });

  it('CMD_SYNC CS 0b11 and PRI_RESP Resp 0b11 are reserved', () => {
    expectIll(cmd(CMD_OPCODE.SYNC | (3 << 12)), 'CMD_SYNC: CS 0b11 is reserved');
    expect(decode(encodeCmdSync({ cs: 2 })).ok).toBe(true); // SIG_SEV
    expectIll(encodePriResp({ resp: 3 }), 'CMD_PRI_RESP: Resp 0b11 is reserved');
  });

  it('range TLBI: TG != 0 with NUM == 0, SCALE == 0 and TTL == 0 is reserved', () => {
    expectIll(
      encodeTlbiNhVa({ tg: TLBI_TG.SIZE_4K }),
      'CMD_TLBI_NH_VA: TG != 0 with NUM == 0, SCALE == 0 and TTL == 0 is reserved',
    );
    expect(decode(encodeTlbiNhVa({ tg: TLBI_TG.SIZE_4K, ttl: 3 })).ok).toBe(true);
    expect(decode(encodeTlbiNhVa({ tg: TLBI_TG.SIZE_4K, num: 1 })).ok).toBe(true);
    expect(decode(encodeTlbiNhVa({ tg: TLBI_TG.SIZE_4K, scale: 1 })).ok).toBe(true);
    // 16K with TTL 0b01 is reserved without DS and treated as TTL 0b00.
    expectIll(encodeTlbiNhVaa({ tg: TLBI_TG.SIZE_16K, ttl: 1 }), /TG != 0 with NUM == 0/);
    expect(decode(encodeTlbiNhVaa({ tg: TLBI_TG.SIZE_16K, ttl: 2 })).ok).toBe(true);
    expect(decode(encodeTlbiNhVaa({ tg: TLBI_TG.SIZE_64K, ttl: 1 })).ok).toBe(true);
    expectIll(encodeTlbiS2Ipa({ tg: TLBI_TG.SIZE_64K }), /CMD_TLBI_S2_IPA: TG != 0/);
  });

  it('range fields without RIL, and NUM/SCALE/TTL with TG == 0, are RES0', () => {
    const noRil = { ...FEATURES, rangeInvalidation: false };
    const ranged = encodeTlbiNhVa({ tg: TLBI_TG.SIZE_4K, ttl: 3, num: 4 });
    expectIll(
      ranged,
      'CMD_TLBI_NH_VA: NUM/SCALE/TG/TTL are RES0 without range invalidation (SMMU_IDR3.RIL == 0)',
      noRil,
    );
    expect(decodeCommand(ranged, noRil, { checkReserved: false }).ok).toBe(true);
    // Each of the four alone is enough (§4.4.1.1: every one is RES0 when SMMU_IDR3.RIL == 0).
    for (const fields of [{ num: 1 }, { scale: 1 }, { ttl: 1 }, { tg: TLBI_TG.SIZE_4K }]) {
      expectIll(
        encodeTlbiS2Ipa(fields),
        /CMD_TLBI_S2_IPA: NUM\/SCALE\/TG\/TTL are RES0 without range/,
        noRil,
      );
    }
    expect(decode(encodeTlbiS2Ipa({}), noRil).ok).toBe(true);
    expectIll(encodeTlbiNhVa({ num: 4 }), 'CMD_TLBI_NH_VA: NUM/SCALE/TTL are RES0 when TG == 0');
    expectIll(encodeTlbiNhVa({ ttl: 2 }), /RES0 when TG == 0/);
    expectIll(encodeTlbiNhVa({ scale: 1 }), /RES0 when TG == 0/);
  });

  it('VMID and ASID wider than implemented; VMID without stage 2', () => {
    expectIll(
      encodeTlbiNhAll({ vmid: 0x100 }),
      'CMD_TLBI_NH_ALL: VMID 0x100 needs 16-bit VMIDs (SMMU_IDR0.VMID16 == 0)',
      {
        ...FEATURES,
        vmid16: false,
      },
    );
    expect(decode(encodeTlbiNhAll({ vmid: 0xff }), { ...FEATURES, vmid16: false }).ok).toBe(true);
    expectIll(
      encodeTlbiNhAsid({ asid: 0x1234 }),
      'CMD_TLBI_NH_ASID: ASID 0x1234 needs 16-bit ASIDs (SMMU_IDR0.ASID16 == 0)',
      {
        ...FEATURES,
        asid16: false,
      },
    );
    expectIll(
      encodeTlbiNhAll({ vmid: 5 }),
      'CMD_TLBI_NH_ALL: VMID is RES0 without stage 2 (SMMU_IDR0.S2P == 0)',
      {
        ...FEATURES,
        s2: false,
      },
    );
    expect(
      decodeCommand(encodeTlbiNhAll({ vmid: 5 }), { ...FEATURES, s2: false }, { checkReserved: false }).ok,
    ).toBe(true);
  });

  it('ATC_INV Size above 52', () => {
    expectIll(encodeAtcInv({ size: 53 }), 'CMD_ATC_INV: Size 53 exceeds 52');
    expect(decode(encodeAtcInv({ size: ATC_INV_SIZE_ALL })).ok).toBe(true);
  });

  it('any other set RES0 bit', () => {
    expectIll(cmd(CMD_OPCODE.CFGI_STE, 0, 0, 1), 'CMD_CFGI_STE: RES0 bit 96 is set');
    expectIll(cmd(CMD_OPCODE.TLBI_NH_VA | (1 << 25), 0, 0x701), 'CMD_TLBI_NH_VA: RES0 bit 25 is set'); // SCALE[5], DS == 0
    expectIll(cmd(CMD_OPCODE.TLBI_NH_VA, 0, 0x781), 'CMD_TLBI_NH_VA: RES0 bit 71 is set'); // TTL128
    expectIll(cmd(CMD_OPCODE.TLBI_S2_IPA, 0, 0x701, 1 << 20), 'CMD_TLBI_S2_IPA: RES0 bit 116 is set'); // IPA[52]
    expectIll(cmd(CMD_OPCODE.SYNC, 0, 0, 1 << 20), 'CMD_SYNC: RES0 bit 116 is set'); // MSIAddress[52]
    expectIll(cmd(CMD_OPCODE.CFGI_CD | (1 << 11)), 'CMD_CFGI_CD: RES0 bit 11 is set'); // no SSV in CFGI_CD
    expectIll(cmd(CMD_OPCODE.TLBI_NSNH_ALL, 1), 'CMD_TLBI_NSNH_ALL: RES0 bit 32 is set');
    expect(decode(cmd(CMD_OPCODE.TLBI_NSNH_ALL, 1), FEATURES, false).ok).toBe(true);
    // Unchecked, MSIAddress[55:52] (bits 119:116) stay out of the address: it is MSIAddress[51:2] (§4.1.6).
    expect(decode(cmd(CMD_OPCODE.SYNC, 0, 0x8, 0x00f0_0001), FEATURES, false)).toMatchObject({
      ok: true,
      command: { msiAddress: 0x1_0000_0008 },
    });
    // CFGI_ALL ignores the StreamID; PREFETCH_ADDR's Stride/NS bits are not checked.
    expect(decode(cmd(CMD_OPCODE.CFGI_STE_RANGE, 0x1234, 31))).toEqual({
      ok: true,
      command: { op: 'CFGI_ALL' },
    });
    expect(decode(cmd(CMD_OPCODE.PREFETCH_ADDR, 0, 0xfe0)).ok).toBe(true);
  });

  it('SSV without substreams is not ILL (CONSTRAINED UNPREDICTABLE)', () => {
    const r = decode(encodeAtcInv({ ssv: true, substreamId: 3 }), { ...FEATURES, ssidBits: 0 });
    expect(r.ok).toBe(true);
  });
});

describe('invalidation ranges', () => {
  it('the StreamIDs of CFGI_STE_RANGE', () => {
    expect(cfgiSteRangeStreamIds(0x1235, 3)).toEqual({ first: 0x1230, count: 16 });
    expect(cfgiSteRangeStreamIds(0xffff_ffff, 31)).toEqual({ first: 0, count: 2 ** 32 });
  });

  it('the range a TLBI covers: (NUM + 1) · 2^SCALE · granule from Address', () => {
    expect(tlbiRangePages({ addressPage: 0x10, num: 3, scale: 2, tg: TLBI_TG.SIZE_64K })).toEqual({
      firstPage: 0x10,
      pageCount: 4 * 4 * 16,
    });
    expect(tlbiRangePages({ addressPage: 7, num: 0, scale: 0, tg: TLBI_TG.SIZE_4K })).toEqual({
      firstPage: 7,
      pageCount: 1,
    });
    expect(tlbiRangePages({ addressPage: 7, num: 31, scale: 31, tg: TLBI_TG.SIZE_16K })).toEqual({
      firstPage: 7,
      pageCount: 32 * 2 ** 31 * 4,
    });
    expect(tlbiRangePages({ addressPage: 7, num: 0, scale: 0, tg: 0 })).toBeUndefined();
  });

  /** Fewest terms n · 2^s (1 ≤ n ≤ 32) summing to each count ≤ max: the lower bound for any splitter. */
  const fewest = (max: number): number[] => {
    const best = [0];
    for (let n = 1; n <= max; n++) {
      let b = Number.POSITIVE_INFINITY;
      for (let s = 0; 2 ** s <= n; s++) {
        for (let k = 1; k <= 32 && k * 2 ** s <= n; k++) b = Math.min(b, best[n - k * 2 ** s]! + 1);
      }
      best.push(b);
    }
    return best;
  };

  /** Checks that the commands tile [start, start + count) exactly, in order, and decode as valid TLBIs. */
  const expectExactCover = (request: TlbiRangeRequest, rangeInvalidation = true) => {
    const chunks = splitTlbiRange(request, rangeInvalidation);
    let next = request.startPage;
    for (const c of chunks) {
      const covered = tlbiRangePages(c) ?? {
        firstPage: c.addressPage,
        pageCount: (request.leafSize ?? request.granule) / 4096,
      };
      expect(covered.firstPage).toBe(next);
      next += covered.pageCount;
      const r = decodeCommand(encodeTlbiNhVa({ ...c, leaf: request.leaf, vmid: 1, asid: 2 }), {
        ...FEATURES,
        rangeInvalidation,
      });
      expect(r.ok, JSON.stringify(c)).toBe(true);
    }
    expect(next).toBe(request.startPage + request.pageCount);
    return chunks;
  };

  it('covers every page of the range and nothing outside it, in the fewest commands (brute force)', () => {
    const best = fewest(600);
    for (let count = 1; count <= 600; count++) {
      for (const start of [0, 1, 0x7ff, 2 ** 40 + 3]) {
        const leaf = expectExactCover({ startPage: start, pageCount: count, granule: 4096, leaf: true });
        expect(leaf.length, `leaf ${count}`).toBe(best[count]);
        const nonLeaf = expectExactCover({ startPage: start, pageCount: count, granule: 4096, leaf: false });
        expect(nonLeaf.length, `non-leaf ${count}`).toBe(best[count]);
      }
    }
    // 4800 exhaustive cases: seconds on a loaded 2-core machine, so no default 5 s limit.
  }, 60_000);

  it('hand-derived splits', () => {
    const split = (pageCount: number, leaf = true) =>
      splitTlbiRange({ startPage: 0x1000, pageCount, granule: 4096, leaf }, true);
    expect(split(1)).toEqual([{ addressPage: 0x1000, num: 0, scale: 0, tg: 1, ttl: 3 }]);
    expect(split(64)).toEqual([{ addressPage: 0x1000, num: 0, scale: 6, tg: 1, ttl: 3 }]);
    // 33 = 1 + 32: two commands, the minimum (33 is odd and above 32).
    expect(split(33)).toEqual([
      { addressPage: 0x1000, num: 0, scale: 0, tg: 1, ttl: 3 },
      { addressPage: 0x1001, num: 0, scale: 5, tg: 1, ttl: 3 },
    ]);
    // 63 = 31 + 32.
    expect(split(63)).toEqual([
      { addressPage: 0x1000, num: 30, scale: 0, tg: 1, ttl: 3 },
      { addressPage: 0x101f, num: 0, scale: 5, tg: 1, ttl: 3 },
    ]);
    // 2047 = 31 + 31 · 32 + 1024: no two terms n · 2^s sum to 2047.
    expect(split(2047).map((c) => [c.num + 1, c.scale])).toEqual([
      [31, 0],
      [31, 5],
      [1, 10],
    ]);
    // Non-leaf, 33 pages: the lone granule becomes a non-range command (Linux would invalidate 34 pages).
    expect(split(33, false)).toEqual([
      { addressPage: 0x1000, num: 0, scale: 0, tg: 0, ttl: 0 },
      { addressPage: 0x1001, num: 0, scale: 5, tg: 1, ttl: 0 },
    ]);
  });

  it('16K and 64K: each later command starts where the one before ended, counted in 4K pages', () => {
    const split = (granule: 16384 | 65536, granules: number, leaf = true) =>
      splitTlbiRange(
        { startPage: 0x1_0000, pageCount: granules * (granule / 4096), granule, leaf },
        true,
      ).map((c) => [c.addressPage, c.num + 1, c.scale, c.tg]);
    // 33 granules = 1 + 32: the second command starts one granule (4 or 16 pages) in.
    expect(split(16384, 33)).toEqual([
      [0x1_0000, 1, 0, TLBI_TG.SIZE_16K],
      [0x1_0004, 1, 5, TLBI_TG.SIZE_16K],
    ]);
    expect(split(65536, 33)).toEqual([
      [0x1_0000, 1, 0, TLBI_TG.SIZE_64K],
      [0x1_0010, 1, 5, TLBI_TG.SIZE_64K],
    ]);
    // Non-leaf: the lone granule is a non-range command, and the range starts after it.
    expect(split(16384, 33, false)).toEqual([
      [0x1_0000, 1, 0, TLBI_TG.NONE],
      [0x1_0004, 1, 5, TLBI_TG.SIZE_16K],
    ]);
    // 2047 = 31 + 31 · 32 + 1024 granules of 64K: the third starts (31 + 992) · 16 pages in.
    expect(split(65536, 2047)).toEqual([
      [0x1_0000, 31, 0, TLBI_TG.SIZE_64K],
      [0x1_01f0, 31, 5, TLBI_TG.SIZE_64K],
      [0x1_3ff0, 1, 10, TLBI_TG.SIZE_64K],
    ]);
  });

  it('sets TTL from the leaf size and counts in granules', () => {
    // Three 2 MiB blocks: 1536 pages of 4K = 3 · 2^9 → NUM 2, SCALE 9, TTL 2 (level 2).
    expect(
      splitTlbiRange(
        { startPage: 0x200, pageCount: 1536, granule: 4096, leaf: true, leafSize: 2 ** 21 },
        true,
      ),
    ).toEqual([{ addressPage: 0x200, num: 2, scale: 9, tg: 1, ttl: 2 }]);
    expect(
      splitTlbiRange(
        { startPage: 0, pageCount: 2 ** 18, granule: 4096, leaf: true, leafSize: 2 ** 30 },
        true,
      ),
    ).toEqual([{ addressPage: 0, num: 0, scale: 18, tg: 1, ttl: 1 }]);
    // Five 64K pages.
    expect(splitTlbiRange({ startPage: 0x30, pageCount: 80, granule: 65536, leaf: true }, true)).toEqual([
      { addressPage: 0x30, num: 4, scale: 0, tg: 3, ttl: 3 },
    ]);
    // 32 MiB blocks of the 16K granule sit at level 2.
    expect(
      splitTlbiRange(
        { startPage: 0, pageCount: 2 * 8192, granule: 16384, leaf: true, leafSize: 2 ** 25 },
        true,
      ),
    ).toEqual([{ addressPage: 0, num: 0, scale: 12, tg: 2, ttl: 2 }]);
    expectExactCover({ startPage: 2 ** 36, pageCount: 2 ** 30 + 3 * 2 ** 12, granule: 4096, leaf: true });
    expectExactCover({ startPage: 16, pageCount: 16 * 33, granule: 65536, leaf: false });
  });

  it('without range invalidation: one non-range command per leaf entry', () => {
    expect(splitTlbiRange({ startPage: 8, pageCount: 3, granule: 4096, leaf: true }, false)).toEqual([
      { addressPage: 8, num: 0, scale: 0, tg: 0, ttl: 0 },
      { addressPage: 9, num: 0, scale: 0, tg: 0, ttl: 0 },
      { addressPage: 10, num: 0, scale: 0, tg: 0, ttl: 0 },
    ]);
    const blocks = expectExactCover(
      { startPage: 0, pageCount: 1024, granule: 4096, leaf: true, leafSize: 2 ** 21 },
      false,
    );
    expect(blocks.map((c) => c.addressPage)).toEqual([0, 512]);
  });

  it('refuses misaligned, empty, negative and fractional requests and non-leaf sizes with EINVAL', () => {
    const split = (request: TlbiRangeRequest) => () => splitTlbiRange(request, true);
    for (const request of [
      { startPage: 1, pageCount: 16, granule: 65536, leaf: true },
      { startPage: 0, pageCount: 8, granule: 65536, leaf: true },
      { startPage: 0, pageCount: 0, granule: 4096, leaf: true },
      { startPage: -16, pageCount: 16, granule: 65536, leaf: true },
      { startPage: 0, pageCount: -16, granule: 65536, leaf: true },
      { startPage: 0.5, pageCount: 1, granule: 4096, leaf: true },
      { startPage: 0, pageCount: 1.5, granule: 4096, leaf: false },
      { startPage: 2 ** 53, pageCount: 1, granule: 4096, leaf: true },
    ] as const) {
      expect(errnoOf(split(request)), JSON.stringify(request)).toBe('EINVAL');
      expect(
        errnoOf(() => splitTlbiRange(request, false)),
        JSON.stringify(request),
      ).toBe('EINVAL');
    }
    expect(split({ startPage: 0, pageCount: 2, granule: 4096, leaf: true, leafSize: 8192 })).toThrow(
      /not a page or block size/,
    );
    expect(
      split({ startPage: 0, pageCount: 2 ** 24, granule: 16384, leaf: true, leafSize: 2 ** 36 }),
    ).toThrow(/not a page or block size/);
    expect(errnoOf(split({ startPage: 0, pageCount: 2, granule: 4096, leaf: true, leafSize: 8192 }))).toBe(
      'EINVAL',
    );
  });

  it('alignment follows the leaf size for leaf or non-range commands and the granule for non-leaf ranges', () => {
    const block = { granule: 4096, leafSize: 2 ** 21 } as const;
    // Non-leaf with range invalidation: any granule-aligned range (table entries of any level go).
    expect(splitTlbiRange({ startPage: 1, pageCount: 2, leaf: false, ...block }, true)).toEqual([
      { addressPage: 1, num: 0, scale: 1, tg: TLBI_TG.SIZE_4K, ttl: 0 },
    ]);
    // Leaf, or without range invalidation: whole 2 MiB blocks only.
    for (const [leaf, ril] of [
      [true, true],
      [true, false],
      [false, false],
    ] as const) {
      const misaligned = () => splitTlbiRange({ startPage: 1, pageCount: 512, leaf, ...block }, ril);
      expect(misaligned, `leaf ${leaf} RIL ${ril}`).toThrow(/not aligned to 2048K/);
    }
    let error: unknown;
    try {
      splitTlbiRange({ startPage: 1, pageCount: 512, leaf: true, ...block }, true);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: 'EINVAL',
      context: { startPage: 1, pageCount: 512, granule: 4096, leafSize: 2 ** 21 },
    });
    // A "leaf" smaller than the granule (level 4) is no page or block size.
    expect(
      errnoOf(() =>
        splitTlbiRange({ startPage: 0, pageCount: 1, granule: 4096, leaf: true, leafSize: 8 }, true),
      ),
    ).toBe('EINVAL');
  });

  it('counts beyond 2^31 granules use SCALE 31 with up to 32 chunks: a 16K level-0 entry is one command', () => {
    // 2^47 bytes of 16K granules = 2^33 granules = 4 · 2^31.
    expect(
      splitTlbiRange({ startPage: 2 ** 35, pageCount: 2 ** 35, granule: 16384, leaf: false }, true),
    ).toEqual([{ addressPage: 2 ** 35, num: 3, scale: 31, tg: TLBI_TG.SIZE_16K, ttl: 0 }]);
    // 2^40 granules: 16 commands of 32 · 2^31 (the most one command covers).
    const big = expectExactCover({ startPage: 0, pageCount: 2 ** 40, granule: 4096, leaf: false });
    expect(big).toHaveLength(16);
    expect(big.every((c) => c.num === 31 && c.scale === 31)).toBe(true);
  });

  it('covers any range of the 52-bit VA space exactly with legal NUM/SCALE (property)', () => {
    const granules = [4096, 16384, 65536] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...granules),
        fc.boolean(),
        fc.bigInt({ min: 0n, max: 2n ** 40n - 1n }),
        fc.bigInt({ min: 1n, max: 2n ** 40n }),
        (granule, leaf, startGranule, countGranules) => {
          const granulePages = granule / 4096;
          const maxGranules = 2 ** 52 / granule;
          const start = Number(startGranule) % maxGranules;
          const count = Math.min(Number(countGranules), maxGranules - start);
          const chunks = expectExactCover({
            startPage: start * granulePages,
            pageCount: count * granulePages,
            granule,
            leaf,
          });
          for (const c of chunks) {
            expect(c.scale).toBeLessThanOrEqual(31);
            expect(c.num).toBeLessThanOrEqual(31);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('ATC_INV span rounding: pages [7, 10] become [0, 15]', () => {
    expect(atcInvSpan(7, 10)).toEqual({ addressPage: 0, size: 4 });
    expect(atcInvPages(atcInvSpan(7, 10))).toEqual({ firstPage: 0, pageCount: 16 });
    expect(atcInvSpan(5, 5)).toEqual({ addressPage: 5, size: 0 });
    expect(atcInvSpan(8, 15)).toEqual({ addressPage: 8, size: 3 });
    expect(atcInvSpan(2 ** 40 + 5, 2 ** 40 + 6)).toEqual({ addressPage: 2 ** 40 + 4, size: 2 });
    expect(atcInvSpan(2 ** 32 - 1, 2 ** 32)).toEqual({ addressPage: 0, size: 33 });
    expect(atcInvSpan(0, 2 ** 52 - 1)).toEqual({ addressPage: 0, size: 52 });
    // Size above 52 (reserved, decoded with checkReserved off) is everything too.
    expect(atcInvPages({ addressPage: 123, size: 63 })).toEqual({ firstPage: 0, pageCount: 2 ** 52 });
    expect(atcInvPages({ addressPage: 123, size: ATC_INV_SIZE_ALL })).toEqual({
      firstPage: 0,
      pageCount: 2 ** 52,
    });
  });

  it('ATC_INV span is the smallest aligned power of two holding the range (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 52 - 1 }),
        fc.integer({ min: 0, max: 2 ** 52 - 1 }),
        (a, b) => {
          const [first, last] = a <= b ? [a, b] : [b, a];
          const { addressPage, size } = atcInvSpan(first, last);
          const span = 2 ** size;
          expect(addressPage % span).toBe(0);
          expect(addressPage <= first && last < addressPage + span).toBe(true);
          if (size > 0) {
            // Half the span cannot hold both ends.
            const half = span / 2;
            expect(Math.floor(first / half)).not.toBe(Math.floor(last / half));
          }
        },
      ),
    );
  });
});
