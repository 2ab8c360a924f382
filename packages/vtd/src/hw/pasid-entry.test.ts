import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FEATURES } from '../../test/features.js';
import { FR } from './fault-reasons.js';
import type { VtdFeatures } from './features.js';
import {
  checkPasidDirEntry,
  checkPasidEntry,
  decodePasidDirEntry,
  decodePasidEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  FLPM,
  firstStageLevels,
  PASID_ENTRY_WORDS,
  type PasidEntry,
  type PasidRequest,
  PGTT,
  pasidDirEntryAddress,
  pasidEntryAddress,
} from './pasid-entry.js';

/** A 46-bit-HAW unit with every PGTT, 3- and 4-level second stages, SRS, SLADS and SC; no ERS, no FL5LP. */

const hex = (w: ArrayLike<number>) => Array.from(w, (x) => `0x${(x >>> 0).toString(16).padStart(8, '0')}`);
const withBit = (words: Uint32Array, bit: number) => {
  const copy = Uint32Array.from(words);
  copy[bit >>> 5]! |= 1 << (bit & 31);
  return copy;
};
const bool = fc.boolean();
const bits = (width: number) => fc.integer({ min: 0, max: 2 ** width - 1 });
const pointer = bits(52).map((x) => x * 4096);

describe('PASID directory entry (§9.5)', () => {
  it('encodes the spec words', () => {
    // P | FPD << 1 | SMPTBLPTR bits 63:12.
    const w = encodePasidDirEntry({ p: true, fpd: true, pasidTablePtr: 0x3_4567_8000 });
    expect(hex(w)).toEqual(hex([0x4567_8003, 0x0000_0003]));
    expect(decodePasidDirEntry(w)).toEqual({ p: true, fpd: true, pasidTablePtr: 0x3_4567_8000 });
  });

  it('round-trips every field value', () => {
    fc.assert(
      fc.property(fc.record({ p: bool, fpd: bool, pasidTablePtr: pointer }), (e) => {
        expect(decodePasidDirEntry(encodePasidDirEntry(e))).toEqual(e);
      }),
    );
  });

  it('is indexed by PASID[19:6], 8 bytes per entry', () => {
    expect(pasidDirEntryAddress(0x10_0000, 0x1_2345)).toBe(0x10_0000 + 0x48d * 8);
    expect(pasidDirEntryAddress(0x10_0000, 0xf_ffff)).toBe(0x10_0000 + 0x3fff * 8);
    expect(pasidDirEntryAddress(0x10_0000, 0x3f)).toBe(0x10_0000);
  });

  describe('checkPasidDirEntry', () => {
    const valid = encodePasidDirEntry({ p: true, pasidTablePtr: 0x7000 });

    it('accepts a present entry', () => {
      expect(checkPasidDirEntry(valid, FEATURES)).toBe(0);
    });

    it('P = 0 is 0x51, before reserved bits, whatever FPD says', () => {
      expect(checkPasidDirEntry(withBit(encodePasidDirEntry({ fpd: true }), 2), FEATURES)).toBe(
        FR.SM_PASID_DIR_NOT_PRESENT,
      );
    });

    it.each([2, 11])('reserved bit %d is 0x52', (bit) => {
      expect(checkPasidDirEntry(withBit(valid, bit), FEATURES)).toBe(FR.SM_PASID_DIR_RESERVED);
    });

    it('a PASID table pointer at 2^HAW is 0x52', () => {
      const far = encodePasidDirEntry({ p: true, pasidTablePtr: 2 ** 46 });
      expect(checkPasidDirEntry(far, FEATURES)).toBe(FR.SM_PASID_DIR_RESERVED);
    });
  });
});

describe('PASID table entry (§9.6)', () => {
  /** Nested translation with every flag of qwords 1 and 2 set. */
  const FULL: PasidEntry = {
    p: true,
    fpd: true,
    aw: 2,
    ssee: true,
    pgtt: PGTT.NESTED,
    ssade: true,
    ssptptr: 0x1_0000_2000,
    did: 0x00ab,
    pwsnp: true,
    pgsnp: true,
    cd: true,
    emte: true,
    emt: 6,
    pwt: true,
    pcd: true,
    pat: 0x0007_0406,
    sre: true,
    ere: true,
    flpm: FLPM.LEVEL_5,
    wpe: true,
    nxe: true,
    smep: true,
    eafe: true,
    fsptptr: 0x5_6789_a000,
  };

  it('encodes the spec words', () => {
    // qword 0: P | FPD << 1 | AW 2 << 2 | SSEE << 5 | PGTT 3 << 6 | SSADE << 9 | SSPTPTR.
    // qword 1: DID | PWSNP << 23 | PGSNP << 24 | CD << 25 | EMTE << 26 | EMT 6 << 27 | PWT << 30 | PCD << 31
    //   | PAT << 32.
    // qword 2: SRE | ERE << 1 | FLPM 1 << 2 | WPE << 4 | NXE << 5 | SMEP << 6 | EAFE << 7 | FSPTPTR.
    const w = encodePasidEntry(FULL);
    const expected = [0x0000_22eb, 0x0000_0001, 0xf780_00ab, 0x0007_0406, 0x6789_a0f7, 0x0000_0005];
    expect(hex(w)).toEqual(hex([...expected, ...new Array(PASID_ENTRY_WORDS - expected.length).fill(0)]));
    expect(decodePasidEntry(w)).toEqual(FULL);
  });

  it('round-trips every field value', () => {
    const arb = fc.record({
      p: bool,
      fpd: bool,
      aw: bits(3),
      ssee: bool,
      pgtt: bits(3),
      ssade: bool,
      ssptptr: pointer,
      did: bits(16),
      pwsnp: bool,
      pgsnp: bool,
      cd: bool,
      emte: bool,
      emt: bits(3),
      pwt: bool,
      pcd: bool,
      pat: bits(32),
      sre: bool,
      ere: bool,
      flpm: bits(2),
      wpe: bool,
      nxe: bool,
      smep: bool,
      eafe: bool,
      fsptptr: pointer,
    });
    fc.assert(
      fc.property(arb, (e) => {
        expect(decodePasidEntry(encodePasidEntry(e))).toEqual(e);
      }),
    );
  });

  it('refuses values a field cannot hold', () => {
    expect(errnoOf(() => encodePasidEntry({ pgtt: 8 }))).toBe('EINVAL');
    expect(errnoOf(() => encodePasidEntry({ fsptptr: 0x1_0000_0800 }))).toBe('EINVAL');
  });

  it('is indexed by PASID[5:0], 64 bytes per entry', () => {
    expect(pasidEntryAddress(0x20_0000, 0x1_2345)).toBe(0x20_0000 + 5 * 64);
    expect(pasidEntryAddress(0x20_0000, 0x3f)).toBe(0x20_0000 + 0xfc0);
  });

  it('FLPM selects 4- or 5-level first-stage tables', () => {
    expect(firstStageLevels(FLPM.LEVEL_4)).toBe(4);
    expect(firstStageLevels(FLPM.LEVEL_5)).toBe(5);
  });

  describe('checkPasidEntry', () => {
    const USER: PasidRequest = { privileged: false, execute: false };
    const SECOND_STAGE: Partial<PasidEntry> = {
      p: true,
      pgtt: PGTT.SECOND_STAGE,
      aw: 2,
      did: 3,
      ssptptr: 0x9000,
    };
    const check = (
      fields: Partial<PasidEntry>,
      features: VtdFeatures = FEATURES,
      request: PasidRequest = USER,
    ) => checkPasidEntry(encodePasidEntry({ ...SECOND_STAGE, ...fields }), features, request);

    it('accepts each translation type the unit implements', () => {
      expect(check({})).toBe(0);
      expect(check({ pgtt: PGTT.FIRST_STAGE, aw: 0, fsptptr: 0xa000 })).toBe(0);
      expect(check({ pgtt: PGTT.NESTED, fsptptr: 0xa000 })).toBe(0);
      expect(check({ pgtt: PGTT.PASS_THROUGH, aw: 7 })).toBe(0);
    });

    it('P = 0 is 0x59, before any other check', () => {
      expect(check({ p: false, pgtt: 0, did: 0xffff })).toBe(FR.SM_PASID_NOT_PRESENT);
    });

    it.each([10, 11, 80, 86, 136, 139])('reserved bit %d is 0x5A', (bit) => {
      const words = withBit(encodePasidEntry(SECOND_STAGE), bit);
      expect(checkPasidEntry(words, FEATURES, USER)).toBe(FR.SM_PASID_RESERVED);
    });

    it('a DID beyond the ND width is 0x5A', () => {
      const nd4 = { ...FEATURES, domainIdBits: 4 as const };
      expect(check({ did: 0xf }, nd4)).toBe(0);
      expect(check({ did: 0x10 }, nd4)).toBe(FR.SM_PASID_RESERVED);
    });

    it('SSADE, PGSNP, SRE and ERE without their capability are 0x5A', () => {
      expect(check({ ssade: true }, { ...FEATURES, secondStageAccessDirty: false })).toBe(
        FR.SM_PASID_RESERVED,
      );
      expect(check({ pgsnp: true }, { ...FEATURES, snoopControl: false })).toBe(FR.SM_PASID_RESERVED);
      expect(check({ sre: true }, { ...FEATURES, supervisorRequests: false })).toBe(FR.SM_PASID_RESERVED);
      expect(check({ ere: true })).toBe(FR.SM_PASID_RESERVED);
      expect(check({ ere: true }, { ...FEATURES, executeRequests: true })).toBe(0);
      expect(check({ ssade: true, pgsnp: true, sre: true })).toBe(0);
    });

    it('reserved fields come before invalid programming', () => {
      expect(check({ pgtt: 0, ere: true })).toBe(FR.SM_PASID_RESERVED);
    });

    it.each([0, 5, 6, 7])('reserved PGTT %d is 0x5B', (pgtt) => {
      expect(check({ pgtt })).toBe(FR.SM_PASID_INVALID);
    });

    it('a PGTT the unit does not implement is 0x5B', () => {
      expect(check({ pgtt: PGTT.FIRST_STAGE }, { ...FEATURES, firstStage: false })).toBe(FR.SM_PASID_INVALID);
      expect(check({ pgtt: PGTT.SECOND_STAGE }, { ...FEATURES, secondStage: false })).toBe(
        FR.SM_PASID_INVALID,
      );
      expect(check({ pgtt: PGTT.NESTED }, { ...FEATURES, nesting: false })).toBe(FR.SM_PASID_INVALID);
      expect(check({ pgtt: PGTT.PASS_THROUGH }, { ...FEATURES, passThrough: false })).toBe(
        FR.SM_PASID_INVALID,
      );
    });

    it('AW outside SAGAW is 0x5B for second-stage and nested, ignored otherwise', () => {
      expect(check({ aw: 3 })).toBe(FR.SM_PASID_INVALID);
      expect(check({ pgtt: PGTT.NESTED, aw: 0 })).toBe(FR.SM_PASID_INVALID);
      expect(check({ pgtt: PGTT.FIRST_STAGE, aw: 3 })).toBe(0);
    });

    it('FLPM reserved or 5-level without CAP.FL5LP is 0x5B when a first stage is used', () => {
      expect(check({ pgtt: PGTT.FIRST_STAGE, flpm: FLPM.LEVEL_5 })).toBe(FR.SM_PASID_INVALID);
      expect(check({ pgtt: PGTT.NESTED, flpm: 2 })).toBe(FR.SM_PASID_INVALID);
      expect(check({ pgtt: PGTT.FIRST_STAGE, flpm: 3 }, { ...FEATURES, firstStage5Level: true })).toBe(
        FR.SM_PASID_INVALID,
      );
      expect(
        check({ pgtt: PGTT.FIRST_STAGE, flpm: FLPM.LEVEL_5 }, { ...FEATURES, firstStage5Level: true }),
      ).toBe(0);
      expect(check({ flpm: 3 })).toBe(0);
    });

    it('an execute request through ERE = 0 is 0x5C', () => {
      const ers = { ...FEATURES, executeRequests: true };
      expect(check({}, ers, { privileged: false, execute: true })).toBe(FR.SM_PASID_ERE_CLEAR);
      expect(check({ ere: true }, ers, { privileged: false, execute: true })).toBe(0);
    });

    it('a supervisor request through SRE = 0 is 0x5D', () => {
      expect(check({}, FEATURES, { privileged: true, execute: false })).toBe(FR.SM_PASID_SRE_CLEAR);
      expect(check({ sre: true }, FEATURES, { privileged: true, execute: false })).toBe(0);
    });

    it('invalid programming comes before the request checks, ERE before SRE', () => {
      const ers = { ...FEATURES, executeRequests: true };
      const both = { privileged: true, execute: true };
      expect(check({ pgtt: 0 }, ers, both)).toBe(FR.SM_PASID_INVALID);
      expect(check({}, ers, both)).toBe(FR.SM_PASID_ERE_CLEAR);
    });
  });
});
