import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FEATURES } from '../../test/features.js';
import { FR } from './fault-reasons.js';
import {
  CONTEXT_TT,
  type ContextRequest,
  checkLegacyContext,
  checkRootEntry,
  checkScalableContext,
  checkScalableContextRequest,
  contextEntryAddress,
  contextTablePointer,
  decodeLegacyContext,
  decodeLegacyRootEntry,
  decodeScalableContext,
  decodeScalableRootEntry,
  encodeLegacyContext,
  encodeLegacyRootEntry,
  encodeScalableContext,
  encodeScalableRootEntry,
  type LegacyContextEntry,
  levelsFromAw,
  pasidLimit,
  rootEntryAddress,
  type ScalableContextEntry,
  sagawSupports,
} from './root-context.js';

/** A 46-bit-HAW unit with 3- and 4-level second stages, 16-bit DIDs, DT, PT, PASID and PRS. */

const hex = (w: ArrayLike<number>) => Array.from(w, (x) => `0x${(x >>> 0).toString(16).padStart(8, '0')}`);
/** `words` with bit `bit` (absolute) set. */
const withBit = (words: Uint32Array, bit: number) => {
  const copy = Uint32Array.from(words);
  copy[bit >>> 5]! |= 1 << (bit & 31);
  return copy;
};
const HAW_LIMIT = 2 ** FEATURES.hostAddressBits;
const bool = fc.boolean();
const bits = (width: number) => fc.integer({ min: 0, max: 2 ** width - 1 });
const pointer = bits(52).map((x) => x * 4096);

describe('root entry (§9.1, §9.2)', () => {
  it('encodes a legacy root entry to the spec words', () => {
    // lo: P (bit 0) | CTP bits 63:12 as is; hi qword reserved.
    const w = encodeLegacyRootEntry({ p: true, ctp: 0x1_2345_6000 });
    expect(hex(w)).toEqual(hex([0x2345_6001, 0x0000_0001, 0, 0]));
    expect(decodeLegacyRootEntry(w)).toEqual({ p: true, ctp: 0x1_2345_6000 });
  });

  it('encodes a scalable-mode root entry to the spec words', () => {
    // lo: LP | LCTP; hi: UP (bit 64) | UCTP bits 127:76.
    const w = encodeScalableRootEntry({ lp: true, lctp: 0x1000, up: true, uctp: 0xab_cdef_0000 });
    expect(hex(w)).toEqual(hex([0x0000_1001, 0, 0xcdef_0001, 0x0000_00ab]));
    expect(decodeScalableRootEntry(w)).toEqual({ lp: true, lctp: 0x1000, up: true, uctp: 0xab_cdef_0000 });
  });

  it('round-trips every field value', () => {
    fc.assert(
      fc.property(bool, pointer, (p, ctp) => {
        expect(decodeLegacyRootEntry(encodeLegacyRootEntry({ p, ctp }))).toEqual({ p, ctp });
      }),
    );
    fc.assert(
      fc.property(fc.record({ lp: bool, lctp: pointer, up: bool, uctp: pointer }), (e) => {
        expect(decodeScalableRootEntry(encodeScalableRootEntry(e))).toEqual(e);
      }),
    );
  });

  it('refuses a pointer that is not 4 KiB aligned', () => {
    expect(errnoOf(() => encodeLegacyRootEntry({ ctp: 0x1800 }))).toBe('EINVAL');
  });

  it('locates the entry by bus and the context table by devfn half', () => {
    expect(rootEntryAddress(0x10_0000, 0x12)).toBe(0x10_0120);
    expect(rootEntryAddress(0x10_0000, 0xff)).toBe(0x10_0ff0);
    const scalable = { lp: true, lctp: 0x1000, up: true, uctp: 0x2000 };
    expect(contextTablePointer(scalable, 0x7f)).toBe(0x1000);
    expect(contextTablePointer(scalable, 0x80)).toBe(0x2000);
    expect(contextTablePointer({ p: true, ctp: 0x3000 }, 0x80)).toBe(0x3000);
  });

  describe('checkRootEntry', () => {
    const legacy = encodeLegacyRootEntry({ p: true, ctp: 0x5000 });
    const scalable = encodeScalableRootEntry({ lp: true, lctp: 0x5000, up: true, uctp: 0x6000 });

    it('accepts present entries', () => {
      expect(checkRootEntry(legacy, 0, false, FEATURES)).toBe(0);
      expect(checkRootEntry(scalable, 0x00, true, FEATURES)).toBe(0);
      expect(checkRootEntry(scalable, 0xff, true, FEATURES)).toBe(0);
    });

    it('legacy: P = 0 is 0x1, before reserved bits', () => {
      expect(checkRootEntry(withBit(new Uint32Array(4), 1), 0, false, FEATURES)).toBe(FR.ROOT_NOT_PRESENT);
    });

    it.each([1, 11, 64, 127])('legacy: reserved bit %d is 0xA', (bit) => {
      expect(checkRootEntry(withBit(legacy, bit), 0, false, FEATURES)).toBe(FR.ROOT_RESERVED);
    });

    it('legacy: a CTP at 2^HAW is 0xA, just below is not', () => {
      const at = encodeLegacyRootEntry({ p: true, ctp: HAW_LIMIT });
      const below = encodeLegacyRootEntry({ p: true, ctp: HAW_LIMIT - 4096 });
      expect(checkRootEntry(at, 0, false, FEATURES)).toBe(FR.ROOT_RESERVED);
      expect(checkRootEntry(below, 0, false, FEATURES)).toBe(0);
    });

    it('scalable: the half devfn selects must be present (0x39)', () => {
      const lowerOnly = encodeScalableRootEntry({ lp: true, lctp: 0x5000 });
      const upperOnly = encodeScalableRootEntry({ up: true, uctp: 0x6000 });
      expect(checkRootEntry(lowerOnly, 0x80, true, FEATURES)).toBe(FR.SM_ROOT_NOT_PRESENT);
      expect(checkRootEntry(upperOnly, 0x7f, true, FEATURES)).toBe(FR.SM_ROOT_NOT_PRESENT);
      expect(checkRootEntry(lowerOnly, 0x7f, true, FEATURES)).toBe(0);
    });

    it('scalable: reserved bits of the used half are 0x3A, the other half is not examined', () => {
      expect(checkRootEntry(withBit(scalable, 5), 0x10, true, FEATURES)).toBe(FR.SM_ROOT_RESERVED);
      expect(checkRootEntry(withBit(scalable, 65), 0x90, true, FEATURES)).toBe(FR.SM_ROOT_RESERVED);
      expect(checkRootEntry(withBit(scalable, 65), 0x10, true, FEATURES)).toBe(0);
      const farUpper = encodeScalableRootEntry({ lp: true, lctp: 0x5000, up: true, uctp: HAW_LIMIT });
      expect(checkRootEntry(farUpper, 0x90, true, FEATURES)).toBe(FR.SM_ROOT_RESERVED);
      expect(checkRootEntry(farUpper, 0x10, true, FEATURES)).toBe(0);
    });
  });
});

describe('legacy context entry (§9.3)', () => {
  const VALID: LegacyContextEntry = {
    p: true,
    fpd: true,
    tt: CONTEXT_TT.PASS_THROUGH,
    slptptr: 0x8_7654_3000,
    aw: 2,
    avail: 0xa,
    did: 0x1234,
  };

  it('encodes the spec words', () => {
    // lo: P | FPD << 1 | TT 10b << 2 | SLPTPTR; hi: AW 2 | AVAIL 0xA << 3 | DID << 8.
    const w = encodeLegacyContext(VALID);
    expect(hex(w)).toEqual(hex([0x7654_300b, 0x0000_0008, 0x0012_3452, 0]));
    expect(decodeLegacyContext(w)).toEqual(VALID);
  });

  it('round-trips every field value', () => {
    const arb = fc.record({
      p: bool,
      fpd: bool,
      tt: bits(2),
      slptptr: pointer,
      aw: bits(3),
      avail: bits(4),
      did: bits(16),
    });
    fc.assert(
      fc.property(arb, (e) => {
        expect(decodeLegacyContext(encodeLegacyContext(e))).toEqual(e);
      }),
    );
  });

  it('refuses a DID wider than 16 bits', () => {
    expect(errnoOf(() => encodeLegacyContext({ did: 0x1_0000 }))).toBe('EINVAL');
  });

  it('locates entries by devfn, 16 bytes each', () => {
    expect(contextEntryAddress(0x5000, 0x85, false)).toBe(0x5850);
    expect(contextEntryAddress(0x5000, 0xff, false)).toBe(0x5ff0);
  });

  describe('checkLegacyContext', () => {
    const valid = encodeLegacyContext(VALID);
    const check = (fields: Partial<LegacyContextEntry>, features = FEATURES) =>
      checkLegacyContext(encodeLegacyContext({ ...VALID, ...fields }), features);

    it('accepts every supported TT', () => {
      expect(checkLegacyContext(valid, FEATURES)).toBe(0);
      expect(check({ tt: CONTEXT_TT.MULTI_LEVEL })).toBe(0);
      expect(check({ tt: CONTEXT_TT.DEVICE_TLB })).toBe(0);
    });

    it('P = 0 is 0x2, before any other check', () => {
      expect(checkLegacyContext(withBit(encodeLegacyContext({ tt: 3 }), 4), FEATURES)).toBe(
        FR.CONTEXT_NOT_PRESENT,
      );
    });

    it.each([4, 11, 71, 88, 127])('reserved bit %d is 0xB', (bit) => {
      expect(checkLegacyContext(withBit(valid, bit), FEATURES)).toBe(FR.CONTEXT_RESERVED);
    });

    it('the AVAIL bits are not reserved', () => {
      expect(check({ avail: 0xf })).toBe(0);
    });

    it('an SLPTPTR at 2^HAW is 0xB', () => {
      expect(check({ slptptr: HAW_LIMIT })).toBe(FR.CONTEXT_RESERVED);
    });

    it('a DID beyond the ND width is 0xB', () => {
      const nd8 = { ...FEATURES, domainIdBits: 8 as const };
      expect(check({ did: 0xff }, nd8)).toBe(0);
      expect(check({ did: 0x100 }, nd8)).toBe(FR.CONTEXT_RESERVED);
    });

    it('reserved bits come before invalid programming', () => {
      expect(checkLegacyContext(withBit(encodeLegacyContext({ ...VALID, tt: 3 }), 4), FEATURES)).toBe(
        FR.CONTEXT_RESERVED,
      );
    });

    it('TT 11b, TT 01b without ECAP.DT and TT 10b without ECAP.PT are 0x3', () => {
      expect(check({ tt: 3 })).toBe(FR.CONTEXT_INVALID);
      expect(check({ tt: CONTEXT_TT.DEVICE_TLB }, { ...FEATURES, deviceTlb: false })).toBe(
        FR.CONTEXT_INVALID,
      );
      expect(check({ tt: CONTEXT_TT.PASS_THROUGH }, { ...FEATURES, passThrough: false })).toBe(
        FR.CONTEXT_INVALID,
      );
    });

    it.each([0, 3, 4, 7])('AW %d, not in SAGAW {3, 4 levels}, is 0x3', (aw) => {
      expect(check({ aw })).toBe(FR.CONTEXT_INVALID);
    });

    it('AW maps to levels as SAGAW counts them', () => {
      expect([1, 2, 3].map(levelsFromAw)).toEqual([3, 4, 5]);
      expect(sagawSupports({ ...FEATURES, sagaw: [5] }, 3)).toBe(true);
      expect(sagawSupports({ ...FEATURES, sagaw: [5] }, 2)).toBe(false);
    });
  });
});

describe('scalable-mode context entry (§9.4)', () => {
  const VALID: ScalableContextEntry = {
    p: true,
    fpd: false,
    dte: true,
    paside: true,
    pre: true,
    pdts: 7,
    pasidDirPtr: 0x2_0000_5000,
    ridPasid: 0xabcde,
    ridPriv: true,
  };

  it('encodes the spec words', () => {
    // qword 0: P | DTE << 2 | PASIDE << 3 | PRE << 4 | PDTS 7 << 9 | PASIDDIRPTR;
    // qword 1: RID_PASID | RID_PRIV << 20.
    const w = encodeScalableContext(VALID);
    expect(hex(w)).toEqual(hex([0x0000_5e1d, 0x0000_0002, 0x001a_bcde, 0, 0, 0, 0, 0]));
    expect(decodeScalableContext(w)).toEqual(VALID);
  });

  it('round-trips every field value', () => {
    const arb = fc.record({
      p: bool,
      fpd: bool,
      dte: bool,
      paside: bool,
      pre: bool,
      pdts: bits(3),
      pasidDirPtr: pointer,
      ridPasid: bits(20),
      ridPriv: bool,
    });
    fc.assert(
      fc.property(arb, (e) => {
        expect(decodeScalableContext(encodeScalableContext(e))).toEqual(e);
      }),
    );
  });

  it('locates entries by devfn & 0x7f, 32 bytes each', () => {
    expect(contextEntryAddress(0x5000, 0x05, true)).toBe(0x50a0);
    expect(contextEntryAddress(0x5000, 0x85, true)).toBe(0x50a0);
    expect(contextEntryAddress(0x5000, 0xff, true)).toBe(0x5fe0);
  });

  describe('checkScalableContext', () => {
    const valid = encodeScalableContext(VALID);

    it('accepts a valid entry', () => {
      expect(checkScalableContext(valid, FEATURES)).toBe(0);
    });

    it('P = 0 is 0x41, before reserved bits', () => {
      expect(checkScalableContext(withBit(new Uint32Array(8), 5), FEATURES)).toBe(FR.SM_CONTEXT_NOT_PRESENT);
    });

    it.each([5, 8, 85, 127, 128, 200, 255])('reserved bit %d is 0x42', (bit) => {
      expect(checkScalableContext(withBit(valid, bit), FEATURES)).toBe(FR.SM_CONTEXT_RESERVED);
    });

    it('a PASIDDIRPTR at 2^HAW is 0x42', () => {
      const far = encodeScalableContext({ ...VALID, pasidDirPtr: HAW_LIMIT });
      expect(checkScalableContext(far, FEATURES)).toBe(FR.SM_CONTEXT_RESERVED);
    });

    it('DTE, PASIDE and PRE without the capability are reserved (0x42)', () => {
      expect(checkScalableContext(valid, { ...FEATURES, deviceTlb: false })).toBe(FR.SM_CONTEXT_RESERVED);
      expect(checkScalableContext(valid, { ...FEATURES, pasidBits: 0 })).toBe(FR.SM_CONTEXT_RESERVED);
      expect(checkScalableContext(valid, { ...FEATURES, pageRequests: false })).toBe(FR.SM_CONTEXT_RESERVED);
      const none = encodeScalableContext({ ...VALID, dte: false, paside: false, pre: false });
      const bare = { ...FEATURES, deviceTlb: false, pasidBits: 0, pageRequests: false };
      expect(checkScalableContext(none, bare)).toBe(0);
    });
  });

  describe('checkScalableContextRequest', () => {
    const PLAIN: ContextRequest = { pasid: undefined, translationRequest: false, pageRequest: false };
    const entry = (fields: Partial<ScalableContextEntry>) =>
      decodeScalableContext(encodeScalableContext({ ...VALID, ...fields }));

    it('accepts requests the entry enables', () => {
      expect(checkScalableContextRequest(entry({}), PLAIN)).toBe(0);
      const all = { pasid: 0xf_ffff, translationRequest: true, pageRequest: true };
      expect(checkScalableContextRequest(entry({}), all)).toBe(0);
    });

    it('a translation request with DTE = 0 is 0x44', () => {
      const request = { ...PLAIN, translationRequest: true };
      expect(checkScalableContextRequest(entry({ dte: false }), request)).toBe(FR.SM_CONTEXT_DTE_CLEAR);
    });

    it('a request with PASID and PASIDE = 0 is 0x45', () => {
      const request = { ...PLAIN, pasid: 1 };
      expect(checkScalableContextRequest(entry({ paside: false }), request)).toBe(FR.SM_CONTEXT_PASIDE_CLEAR);
    });

    it('a PASID beyond the 2^(PDTS + 7)-entry directory is 0x46', () => {
      // PDTS 5: 2^12 directory entries of 64 PASIDs, so PASIDs below 2^18.
      expect(pasidLimit(5)).toBe(2 ** 18);
      const pdts5 = entry({ pdts: 5 });
      expect(checkScalableContextRequest(pdts5, { ...PLAIN, pasid: 2 ** 18 - 1 })).toBe(0);
      expect(checkScalableContextRequest(pdts5, { ...PLAIN, pasid: 2 ** 18 })).toBe(
        FR.SM_CONTEXT_PASID_TOO_LARGE,
      );
    });

    it('a page request with PRE = 0 is 0x47', () => {
      const request = { ...PLAIN, pageRequest: true };
      expect(checkScalableContextRequest(entry({ pre: false }), request)).toBe(FR.SM_CONTEXT_PRE_CLEAR);
    });

    it('a RID_PASID beyond the directory is 0x48 for a request without PASID only', () => {
      const far = entry({ pdts: 0, ridPasid: 2 ** 13 });
      expect(checkScalableContextRequest(far, PLAIN)).toBe(FR.SM_CONTEXT_RID_PASID);
      expect(checkScalableContextRequest(far, { ...PLAIN, pasid: 5 })).toBe(0);
      expect(checkScalableContextRequest(entry({ pdts: 0, ridPasid: 2 ** 13 - 1 }), PLAIN)).toBe(0);
    });

    it('checks DTE, then PASIDE, then the PASID size, then PRE', () => {
      const closed = entry({ dte: false, paside: false, pre: false, pdts: 0 });
      const everything = { pasid: 2 ** 19, translationRequest: true, pageRequest: true };
      expect(checkScalableContextRequest(closed, everything)).toBe(FR.SM_CONTEXT_DTE_CLEAR);
      expect(checkScalableContextRequest(closed, { ...everything, translationRequest: false })).toBe(
        FR.SM_CONTEXT_PASIDE_CLEAR,
      );
      const pasidOn = entry({ dte: false, pre: false, pdts: 0 });
      expect(checkScalableContextRequest(pasidOn, { ...everything, translationRequest: false })).toBe(
        FR.SM_CONTEXT_PASID_TOO_LARGE,
      );
    });
  });
});
