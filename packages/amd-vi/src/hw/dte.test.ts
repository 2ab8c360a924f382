import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkDte,
  checkDteInterrupt,
  type DeviceTableEntry,
  DMA_DISPOSITION,
  DTE_HAD,
  DTE_ILLEGAL,
  type DteFeatures,
  decodeDte,
  deviceTableHolds,
  dmaDisposition,
  dteAddress,
  encodeDte,
  GUEST_PAGING_MODE,
  INT_CTL,
} from './dte.js';

/** A unit with every feature the checks consult: 6 host levels, 3 GCR3 levels, 5-level guest tables. */
const FEATURES: DteFeatures = {
  guestTranslation: true,
  guestIoProtection: true,
  guestLevels: 5,
  hostLevels: 6,
  gcr3Levels: 3,
  pageRequests: true,
  enhancedPpr: true,
};
/** A v1-only unit: 4 host levels, no guest translation, PPR, GIoV or hardware vIOMMU. */
const V1_ONLY: DteFeatures = {
  guestTranslation: false,
  guestIoProtection: false,
  guestLevels: 4,
  hostLevels: 4,
  gcr3Levels: 1,
  pageRequests: false,
  enhancedPpr: false,
};

const hex = (w: ArrayLike<number>) => Array.from(w, (x) => `0x${(x >>> 0).toString(16).padStart(8, '0')}`);
const withBit = (words: Uint32Array, bit: number) => {
  const copy = Uint32Array.from(words);
  copy[bit >>> 5]! |= 1 << (bit & 31);
  return copy;
};
/** The absolute bit numbers set in `words`. */
const bitsSet = (words: ArrayLike<number>) =>
  Array.from({ length: words.length * 32 }, (_, bit) => bit).filter(
    (bit) => ((words[bit >>> 5]! >>> (bit & 31)) & 1) === 1,
  );
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
const check = (words: Uint32Array, features = FEATURES) => checkDte(decodeDte(words), words, features);
const checkInterrupt = (words: Uint32Array) => checkDteInterrupt(decodeDte(words), words);
/** The bits of 255:0 that, set alone on `base`, make `test` answer `reason`. */
const bitsGiving = (base: Uint32Array, test: (w: Uint32Array) => number, reason: number) =>
  range(0, 255).filter((bit) => test(withBit(base, bit)) === reason);

/** As Linux programs a device: v1 table, GCR3 table (GV, GLX 1, GIoV, PPR, ATS) and interrupt remapping. */
const LINUX: DeviceTableEntry = {
  v: true,
  tv: true,
  had: DTE_HAD.NONE,
  mode: 4,
  hostPageTableRootPtr: 0x1_2345_6000,
  ppr: true,
  gprp: false,
  giov: true,
  gv: true,
  glx: 1,
  gcr3TableRootPtr: 0x8_9abc_d000,
  ir: true,
  iw: true,
  domainId: 5,
  i: true,
  se: false,
  sa: false,
  ioCtl: 0,
  cache: false,
  sd: false,
  ex: false,
  sysMgt: 0,
  sats: false,
  iv: true,
  intTabLen: 11,
  ig: false,
  intTablePtr: 0x2_3456_7880,
  guestPagingMode: GUEST_PAGING_MODE.LEVEL_4,
  initPass: false,
  eIntPass: false,
  nmiPass: false,
  hptMode: false,
  intCtl: INT_CTL.REMAP,
  lint0Pass: false,
  lint1Pass: false,
  vImuEn: false,
  gDeviceId: 0,
  guestId: 0,
  attrV: false,
  mode0Fc: false,
  snoopAttr: 0,
};

/** Every other field set: flags of data[1], the pass-through bits, HAD 3, 5-level guest, hardware vIOMMU. */
const OTHERS: DeviceTableEntry = {
  ...LINUX,
  had: DTE_HAD.ACCESSED_DIRTY,
  mode: 0,
  hostPageTableRootPtr: 0,
  ppr: false,
  gprp: true,
  giov: false,
  gv: false,
  glx: 0,
  gcr3TableRootPtr: 0,
  ir: false,
  iw: false,
  domainId: 0x1234,
  i: false,
  se: true,
  sa: true,
  ioCtl: 1,
  cache: true,
  sd: true,
  ex: true,
  sysMgt: 2,
  sats: true,
  iv: false,
  intTabLen: 0,
  ig: true,
  intTablePtr: 0,
  guestPagingMode: GUEST_PAGING_MODE.LEVEL_5,
  initPass: true,
  eIntPass: true,
  nmiPass: true,
  hptMode: true,
  intCtl: INT_CTL.FORWARD_UNMAPPED,
  lint0Pass: true,
  lint1Pass: true,
  vImuEn: true,
  gDeviceId: 0x0123,
  guestId: 0x0abc,
  attrV: true,
  mode0Fc: true,
  snoopAttr: 0x5a,
};

describe('device table entry layout (§2.2.2.1)', () => {
  it('encodes a Linux-style DTE to the spec words and decodes it field by field', () => {
    // data[0]: V | TV << 1 | Mode 4 << 9 | root 0x1_2345_6000 (51:12) | PPR 52 | GIoV 54 | GV 55 | GLX 1 << 56
    //   | GCR3[14:12] = 5 << 58 | IR 61 | IW 62.
    // data[1]: DomainID 5 | GCR3[30:15] = 0x3579 << 16 | I 32 | GCR3[51:31] = 0x11 << 43.
    // data[2]: IV | IntTabLen 11 << 1 | IntTablePtr 0x2_3456_7880 (51:6) | IntCtl 2 << 60.
    const w = encodeDte(LINUX);
    expect(hex(w)).toEqual(
      hex([0x2345_6803, 0x75d0_0001, 0x3579_0005, 0x0000_8801, 0x3456_7897, 0x2000_0002, 0, 0]),
    );
    expect(decodeDte(w)).toEqual(LINUX);
  });

  it('encodes every other field to the spec words', () => {
    // data[0]: V | TV | HAD 3 << 7 | GPRP 53.  data[1]: DomainID | SE 33 | SA 34 | IoCtl 1 << 35 | Cache 37
    //   | SD 38 | EX 39 | SysMgt 2 << 40 | SATS 42.  data[2]: IG 5 | GuestPagingMode 1 << 54 | InitPass 56
    //   | EIntPass 57 | NMIPass 58 | HPTMode 59 | IntCtl 1 << 60 | Lint0Pass 62 | Lint1Pass 63.
    // data[3]: vImuEn 15 | GDeviceID << 16 | GuestID << 32 | AttrV 54 | Mode0FC 55 | SnoopAttr << 56.
    const w = encodeDte(OTHERS);
    expect(hex(w)).toEqual(
      hex([
        0x0000_0183, 0x0020_0000, 0x0000_1234, 0x0000_06ee, 0x0000_0020, 0xdf40_0000, 0x0123_8000,
        0x5ac0_0abc,
      ]),
    );
    expect(decodeDte(w)).toEqual(OTHERS);
  });

  /** Each field at its absolute bits [lsb, msb] (FreeBSD struct amdiommu_dte), with its all-ones value. */
  const FIELD_BITS: [keyof DeviceTableEntry, number, number, number | boolean][] = [
    ['v', 0, 0, true],
    ['tv', 1, 1, true],
    ['had', 7, 8, 3],
    ['mode', 9, 11, 7],
    ['hostPageTableRootPtr', 12, 51, 2 ** 52 - 2 ** 12],
    ['ppr', 52, 52, true],
    ['gprp', 53, 53, true],
    ['giov', 54, 54, true],
    ['gv', 55, 55, true],
    ['glx', 56, 57, 3],
    ['ir', 61, 61, true],
    ['iw', 62, 62, true],
    ['domainId', 64, 79, 0xffff],
    ['i', 96, 96, true],
    ['se', 97, 97, true],
    ['sa', 98, 98, true],
    ['ioCtl', 99, 100, 3],
    ['cache', 101, 101, true],
    ['sd', 102, 102, true],
    ['ex', 103, 103, true],
    ['sysMgt', 104, 105, 3],
    ['sats', 106, 106, true],
    ['iv', 128, 128, true],
    ['intTabLen', 129, 132, 15],
    ['ig', 133, 133, true],
    ['intTablePtr', 134, 179, 2 ** 52 - 2 ** 6],
    ['guestPagingMode', 182, 183, 3],
    ['initPass', 184, 184, true],
    ['eIntPass', 185, 185, true],
    ['nmiPass', 186, 186, true],
    ['hptMode', 187, 187, true],
    ['intCtl', 188, 189, 3],
    ['lint0Pass', 190, 190, true],
    ['lint1Pass', 191, 191, true],
    ['vImuEn', 207, 207, true],
    ['gDeviceId', 208, 223, 0xffff],
    ['guestId', 224, 239, 0xffff],
    ['attrV', 246, 246, true],
    ['mode0Fc', 247, 247, true],
    ['snoopAttr', 248, 255, 0xff],
  ];

  it.each(FIELD_BITS)('places %s at bits %d to %d', (field, lsb, msb, ones) => {
    const w = encodeDte({ [field]: ones } as Partial<DeviceTableEntry>);
    expect(bitsSet(w)).toEqual(range(lsb, msb));
    expect(decodeDte(w)[field]).toBe(ones);
  });

  it('splits the GCR3 root into bits 60:58, 95:80 and 127:107', () => {
    const w = encodeDte({ gcr3TableRootPtr: 2 ** 52 - 2 ** 12 });
    expect(bitsSet(w)).toEqual([...range(58, 60), ...range(80, 95), ...range(107, 127)]);
    // Address bit 12 is entry bit 58, bit 15 is entry bit 80, bit 31 is entry bit 107.
    expect(bitsSet(encodeDte({ gcr3TableRootPtr: 2 ** 12 + 2 ** 15 + 2 ** 31 }))).toEqual([58, 80, 107]);
    expect(decodeDte(w).gcr3TableRootPtr).toBe(2 ** 52 - 2 ** 12);
  });

  it('round-trips every field value', () => {
    const bool = fc.boolean();
    const bits = (width: number) => fc.integer({ min: 0, max: 2 ** width - 1 });
    const aligned = (shift: number) => bits(52 - shift).map((x) => x * 2 ** shift);
    const arb = fc.record({
      v: bool,
      tv: bool,
      had: bits(2),
      mode: bits(3),
      hostPageTableRootPtr: aligned(12),
      ppr: bool,
      gprp: bool,
      giov: bool,
      gv: bool,
      glx: bits(2),
      gcr3TableRootPtr: aligned(12),
      ir: bool,
      iw: bool,
      domainId: bits(16),
      i: bool,
      se: bool,
      sa: bool,
      ioCtl: bits(2),
      cache: bool,
      sd: bool,
      ex: bool,
      sysMgt: bits(2),
      sats: bool,
      iv: bool,
      intTabLen: bits(4),
      ig: bool,
      intTablePtr: aligned(6),
      guestPagingMode: bits(2),
      initPass: bool,
      eIntPass: bool,
      nmiPass: bool,
      hptMode: bool,
      intCtl: bits(2),
      lint0Pass: bool,
      lint1Pass: bool,
      vImuEn: bool,
      gDeviceId: bits(16),
      guestId: bits(16),
      attrV: bool,
      mode0Fc: bool,
      snoopAttr: bits(8),
    });
    fc.assert(
      fc.property(arb, (dte) => {
        expect(decodeDte(encodeDte(dte))).toEqual(dte);
      }),
    );
  });

  it('refuses values a field cannot hold with EINVAL', () => {
    expect(errnoOf(() => encodeDte({ domainId: 0x1_0000 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeDte({ mode: 8 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeDte({ hostPageTableRootPtr: 0x1800 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeDte({ gcr3TableRootPtr: 0x1800 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeDte({ gcr3TableRootPtr: 2 ** 52 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeDte({ intTablePtr: 0x20 }))).toBe('EINVAL');
    expect(encodeDte({ intTablePtr: 0x40 })[4]).toBe(0x40);
  });

  it('locates a DTE at DevTblBase + 32 · DeviceID, inside the table DevTblBase.Size gives', () => {
    expect(dteAddress(0x10_0000, 0x0123)).toBe(0x10_2460);
    expect(dteAddress(0x10_0000, 0xffff)).toBe(0x10_0000 + 0xffff * 32);
    expect(deviceTableHolds(0, 127)).toBe(true);
    expect(deviceTableHolds(0, 128)).toBe(false);
    expect(deviceTableHolds(0x1ff, 0xffff)).toBe(true);
    expect(deviceTableHolds(0x1fe, 0xffff)).toBe(false);
  });
});

describe('what a DTE does with a DMA', () => {
  it('V = 0 forwards untranslated whatever TV says; V = 1, TV = 0 blocks; TV = 1 translates', () => {
    expect(dmaDisposition({ v: false, tv: true })).toBe(DMA_DISPOSITION.UNTRANSLATED);
    expect(dmaDisposition({ v: false, tv: false })).toBe(DMA_DISPOSITION.UNTRANSLATED);
    expect(dmaDisposition({ v: true, tv: false })).toBe(DMA_DISPOSITION.BLOCKED);
    expect(dmaDisposition({ v: true, tv: true })).toBe(DMA_DISPOSITION.TRANSLATE);
  });
});

describe('checkDte: the translation half (V = 1)', () => {
  const VALID = encodeDte({ v: true });

  it('accepts the vectors above on a unit with every feature, but never the hardware vIOMMU fields', () => {
    expect(check(encodeDte(LINUX))).toBe(0);
    expect(check(encodeDte({ ...OTHERS, vImuEn: false, gDeviceId: 0, guestId: 0 }))).toBe(0);
    expect(check(encodeDte(OTHERS))).toBe(DTE_ILLEGAL.RESERVED_BITS);
  });

  it('checks nothing when V = 0', () => {
    const invalid = withBit(encodeDte({ tv: true, mode: 7, gv: true, glx: 3 }), 2);
    expect(check(invalid, V1_ONLY)).toBe(0);
  });

  it('rejects exactly bits 6:2, 63, 244:192 (206:192, 244:240 and the hardware vIOMMU fields) on a unit with every feature', () => {
    expect(bitsGiving(VALID, (w) => check(w), DTE_ILLEGAL.RESERVED_BITS)).toEqual([
      ...range(2, 6),
      63,
      ...range(192, 244),
    ]);
  });

  it('also rejects the bits of every feature a v1-only unit lacks', () => {
    expect(bitsGiving(VALID, (w) => check(w, V1_ONLY), DTE_ILLEGAL.RESERVED_BITS)).toEqual([
      ...range(2, 6),
      ...range(52, 60), // PPR, GPRP, GIoV, GV, GLX, GCR3[14:12]
      63,
      ...range(80, 95), // GCR3[30:15]
      ...range(107, 127), // GCR3[51:31]
      182, // GuestPagingMode
      183,
      ...range(192, 244), // 206:192, vImuEn, GDeviceID, GuestID, 244:240
    ]);
  });

  it.each<[string, Partial<DteFeatures>, number[]]>([
    ['EFR.GTSup', { guestTranslation: true }, [55, 56, 57, 58, 59, 60, 80, 95, 107, 127, 182, 183]],
    ['EFR.GIoSup', { guestIoProtection: true }, [54]],
    ['EFR.EPHSup', { enhancedPpr: true }, [53]],
    ['EFR.PPRSup and EFR.EPHSup', { pageRequests: true, enhancedPpr: true }, [52, 53]],
  ])('%s makes its bits usable', (_, feature, bits) => {
    for (const bit of bits) {
      expect(check(withBit(VALID, bit), V1_ONLY), `bit ${bit} without`).toBe(DTE_ILLEGAL.RESERVED_BITS);
      expect(check(withBit(VALID, bit), { ...V1_ONLY, ...feature }), `bit ${bit} with`).toBe(0);
    }
  });

  it('PPR needs EFR.PPRSup as well as EFR.EPHSup', () => {
    expect(check(withBit(VALID, 52), { ...V1_ONLY, enhancedPpr: true })).toBe(DTE_ILLEGAL.RESERVED_BITS);
    expect(check(withBit(VALID, 52), { ...V1_ONLY, pageRequests: true })).toBe(DTE_ILLEGAL.RESERVED_BITS);
  });

  describe('host translation (TV = 1)', () => {
    const host = (fields: Partial<DeviceTableEntry>, features = FEATURES) =>
      check(encodeDte({ v: true, tv: true, ...fields }), features);

    it('rejects Mode 7 and Mode above the levels EFR.HATS advertises', () => {
      expect(host({ mode: 6 })).toBe(0);
      expect(host({ mode: 7 })).toBe(DTE_ILLEGAL.HOST_TRANSLATION);
      expect(host({ mode: 4 }, V1_ONLY)).toBe(0);
      expect(host({ mode: 5 }, V1_ONLY)).toBe(DTE_ILLEGAL.HOST_TRANSLATION);
    });

    it('rejects HAD 2, accepts 0, 1 and 3', () => {
      expect([0, 1, 2, 3].map((had) => host({ had }))).toEqual([0, 0, DTE_ILLEGAL.HOST_TRANSLATION, 0]);
    });

    it('does not read the host fields when TV = 0', () => {
      expect(check(encodeDte({ v: true, mode: 7, had: 2 }))).toBe(0);
    });

    it('reports reserved bits before host translation', () => {
      expect(check(withBit(encodeDte({ v: true, tv: true, mode: 7 }), 3))).toBe(DTE_ILLEGAL.RESERVED_BITS);
    });
  });

  describe('guest translation (GV = 1)', () => {
    const guest = (fields: Partial<DeviceTableEntry>, features = FEATURES) =>
      check(encodeDte({ v: true, tv: true, gv: true, gcr3TableRootPtr: 0x5000, ...fields }), features);

    it('rejects GLX 3 and GLX above EFR.GLXSup', () => {
      expect([0, 1, 2, 3].map((glx) => guest({ glx }))).toEqual([0, 0, 0, DTE_ILLEGAL.GUEST_TRANSLATION]);
      expect(guest({ glx: 2 }, { ...FEATURES, gcr3Levels: 2 })).toBe(DTE_ILLEGAL.GUEST_TRANSLATION);
      expect(guest({ glx: 1 }, { ...FEATURES, gcr3Levels: 2 })).toBe(0);
    });

    it('rejects GuestPagingMode 2 and 3, and 5-level without EFR.GATS support', () => {
      expect([0, 1, 2, 3].map((guestPagingMode) => guest({ guestPagingMode }))).toEqual([
        0,
        0,
        DTE_ILLEGAL.GUEST_TRANSLATION,
        DTE_ILLEGAL.GUEST_TRANSLATION,
      ]);
      const fourLevel: DteFeatures = { ...FEATURES, guestLevels: 4 };
      expect(guest({ guestPagingMode: GUEST_PAGING_MODE.LEVEL_5 }, fourLevel)).toBe(
        DTE_ILLEGAL.GUEST_TRANSLATION,
      );
      expect(guest({ guestPagingMode: GUEST_PAGING_MODE.LEVEL_4 }, fourLevel)).toBe(0);
    });

    it('does not read GLX or GuestPagingMode when GV = 0', () => {
      expect(check(encodeDte({ v: true, tv: true, glx: 3, guestPagingMode: 3 }))).toBe(0);
    });

    it('reports host translation before guest translation', () => {
      expect(guest({ mode: 7, glx: 3 })).toBe(DTE_ILLEGAL.HOST_TRANSLATION);
    });
  });
});

describe('checkDteInterrupt: the interrupt half (IV = 1)', () => {
  const VALID = encodeDte({ iv: true, intCtl: INT_CTL.REMAP, intTabLen: 9, intTablePtr: 0x8000 });

  it('accepts a remapping DTE and checks nothing when IV = 0', () => {
    expect(checkInterrupt(VALID)).toBe(0);
    expect(checkInterrupt(withBit(encodeDte({ intCtl: 3, intTabLen: 15 }), 180))).toBe(0);
  });

  it('rejects exactly bits 181:180 as reserved', () => {
    expect(bitsGiving(VALID, checkInterrupt, DTE_ILLEGAL.RESERVED_BITS)).toEqual([180, 181]);
  });

  it('rejects IntCtl 3', () => {
    expect([0, 1, 2, 3].map((intCtl) => checkInterrupt(encodeDte({ iv: true, intCtl })))).toEqual([
      0,
      0,
      0,
      DTE_ILLEGAL.INT_CTL,
    ]);
  });

  it('rejects IntTabLen above 11 only when IntCtl remaps', () => {
    const remap = (intTabLen: number, intCtl: number = INT_CTL.REMAP) =>
      checkInterrupt(encodeDte({ iv: true, intCtl, intTabLen }));
    expect(remap(11)).toBe(0);
    expect([12, 13, 14, 15].map((n) => remap(n))).toEqual(new Array(4).fill(DTE_ILLEGAL.INT_TAB_LEN));
    expect(remap(15, INT_CTL.FORWARD_UNMAPPED)).toBe(0);
  });

  it('reports reserved bits before IntCtl', () => {
    expect(checkInterrupt(withBit(encodeDte({ iv: true, intCtl: 3 }), 181))).toBe(DTE_ILLEGAL.RESERVED_BITS);
  });

  it('does not read the translation half', () => {
    expect(checkInterrupt(withBit(withBit(VALID, 2), 200))).toBe(0);
  });
});
