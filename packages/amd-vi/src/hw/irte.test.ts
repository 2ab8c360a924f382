import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkIrte,
  decodeIrte32,
  decodeIrte128,
  encodeIrte32,
  encodeIrte128,
  INDEX_BEYOND_TABLE_FLAGS,
  INT_TYPE,
  IRTE_FAULT,
  irteAddress,
  irteFaultFlags,
  irteInterrupt,
  msiIrteIndex,
  msiType,
  type RemappedIrte,
  remappedMsi,
} from './irte.js';

/** Sets absolute bit `bit` of a 128-bit entry. */
const withBit = (bit: number, words: readonly number[] = [0, 0, 0, 0]) => {
  const out = Uint32Array.from(words);
  out[bit >>> 5] = (out[bit >>> 5]! | (1 << (bit & 31))) >>> 0;
  return out;
};
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

describe('32-bit IRTE (§2.2.5.1): the words Linux irte_prepare writes', () => {
  it('vector 0x41, fixed, physical, APIC 5 is 0x00410501; logical sets bit 6', () => {
    const fields = { remapEn: true, intType: INT_TYPE.FIXED, dm: false, destination: 5, vector: 0x41 };
    expect(encodeIrte32(fields)).toBe(0x0041_0501);
    expect(encodeIrte32({ ...fields, dm: true })).toBe(0x0041_0541);
    expect(decodeIrte32(0x0041_0541)).toEqual({
      guestMode: false,
      remapEn: true,
      supIopf: false,
      intType: 0,
      rqEoi: false,
      dm: true,
      destination: 5,
      vector: 0x41,
      reserved: false,
    });
  });

  it('SupIOPF is bit 1, IntType 4:2, RqEoi 5', () => {
    expect(encodeIrte32({ supIopf: true })).toBe(0x2);
    expect(encodeIrte32({ intType: 7 })).toBe(0x1c);
    expect(encodeIrte32({ rqEoi: true })).toBe(0x20);
    expect(decodeIrte32(0x3e)).toMatchObject({ supIopf: true, intType: 7, rqEoi: true, remapEn: false });
  });

  it('Linux marks an allocated, unprogrammed entry ~1: RemapEn clear', () => {
    expect(checkIrte(decodeIrte32(0xffff_fffe))).toBe(IRTE_FAULT.REMAP_DISABLED);
  });

  it('reserves 31:24 and GuestMode (7), nothing else', () => {
    for (let bit = 0; bit < 32; bit++)
      expect([bit, decodeIrte32((1 << bit) >>> 0).reserved]).toEqual([bit, bit === 7 || bit >= 24]);
  });

  it('round-trips every field', () => {
    fc.assert(
      fc.property(
        fc.record({
          remapEn: fc.boolean(),
          supIopf: fc.boolean(),
          intType: fc.integer({ min: 0, max: 7 }),
          rqEoi: fc.boolean(),
          dm: fc.boolean(),
          destination: fc.integer({ min: 0, max: 0xff }),
          vector: fc.integer({ min: 0, max: 0xff }),
        }),
        (fields) => {
          expect(decodeIrte32(encodeIrte32(fields))).toEqual({
            ...fields,
            guestMode: false,
            reserved: false,
          });
        },
      ),
    );
  });

  it('refuses an APIC ID above 255 and an IntType above 7 (EINVAL)', () => {
    expect(errnoOf(() => encodeIrte32({ destination: 0x100 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeIrte32({ intType: 8 }))).toBe('EINVAL');
  });
});

describe('128-bit IRTE, remapped format (§2.2.5.2, GuestMode = 0): Linux irte_ga_prepare', () => {
  it('xAPIC: vector 0x41 in bits 71:64, APIC 5 in 15:8', () => {
    const words = encodeIrte128({ remapEn: true, intType: 0, dm: false, destination: 5, vector: 0x41 });
    expect([...words]).toEqual([0x0000_0501, 0, 0x41, 0]);
  });

  it('x2APIC 0x12345678: bits 31:8 take 0x345678, bits 127:120 take 0x12', () => {
    const words = encodeIrte128({ remapEn: true, dm: true, destination: 0x1234_5678, vector: 0x41 });
    expect([...words]).toEqual([0x3456_7841, 0, 0x41, 0x1200_0000]);
    expect(decodeIrte128(words, false)).toEqual({
      guestMode: false,
      remapEn: true,
      supIopf: false,
      intType: 0,
      rqEoi: false,
      dm: true,
      destination: 0x1234_5678,
      vector: 0x41,
      reserved: false,
    });
  });

  it('Linux marks an allocated entry with vector 0xFF only: RemapEn clear', () => {
    expect(checkIrte(decodeIrte128([0, 0, 0xff, 0], true))).toBe(IRTE_FAULT.REMAP_DISABLED);
  });

  it('reserves 63:32 and 119:72, nothing else (GuestMode ignored with GAMEn = 0)', () => {
    for (let bit = 0; bit < 128; bit++) {
      const reserved = (bit >= 32 && bit <= 63) || (bit >= 72 && bit <= 119);
      expect([bit, decodeIrte128(withBit(bit), false).reserved]).toEqual([bit, reserved]);
    }
    expect(decodeIrte128(withBit(7, [1, 0, 0x41, 0]), false)).toMatchObject({
      guestMode: false,
      remapEn: true,
      vector: 0x41,
      reserved: false,
    });
  });

  it('round-trips every field', () => {
    fc.assert(
      fc.property(
        fc.record({
          remapEn: fc.boolean(),
          supIopf: fc.boolean(),
          intType: fc.integer({ min: 0, max: 7 }),
          rqEoi: fc.boolean(),
          dm: fc.boolean(),
          destination: fc.integer({ min: 0, max: 0xffff_ffff }),
          vector: fc.integer({ min: 0, max: 0xff }),
        }),
        fc.boolean(),
        (fields, vapic) => {
          expect(decodeIrte128(encodeIrte128(fields), vapic)).toEqual({
            ...fields,
            guestMode: false,
            reserved: false,
          });
        },
      ),
    );
  });
});

describe('128-bit IRTE, guest virtual APIC format (GuestMode = 1): Linux amd_iommu_activate_guest_mode', () => {
  it('running vCPU on APIC 0x01020304: IsRun, no GALogIntr, tag 0xABCD, root 0x1_2345_6000, vector 0x51', () => {
    const words = encodeIrte128({
      guestMode: true,
      remapEn: true,
      isRun: true,
      gaLogIntr: false,
      destination: 0x0102_0304,
      gaTag: 0xabcd,
      gaRootPtr: 0x1_2345_6000,
      vector: 0x51,
    });
    expect([...words]).toEqual([0x0203_04c1, 0xabcd, 0x2345_6051, 0x0100_0001]);
    expect(decodeIrte128(words, true)).toEqual({
      guestMode: true,
      remapEn: true,
      supIopf: false,
      gaLogIntr: false,
      isRun: true,
      destination: 0x0102_0304,
      gaTag: 0xabcd,
      vector: 0x51,
      gaRootPtr: 0x1_2345_6000,
      reserved: false,
    });
  });

  it('blocked vCPU: IsRun clear, GALogIntr (bit 2) set', () => {
    expect(encodeIrte128({ guestMode: true, remapEn: true, gaLogIntr: true })[0]).toBe(0x85);
  });

  it('reserves 5:3, 75:72 and 119:116, nothing else', () => {
    for (let bit = 0; bit < 128; bit++) {
      const reserved = (bit >= 3 && bit <= 5) || (bit >= 72 && bit <= 75) || (bit >= 116 && bit <= 119);
      expect([bit, decodeIrte128(withBit(bit, [0x80, 0, 0, 0]), true).reserved]).toEqual([bit, reserved]);
    }
  });

  it('the same words are a remapped entry with reserved bits when GAMEn = 0', () => {
    const words = encodeIrte128({ guestMode: true, remapEn: true, gaTag: 1, vector: 0x51 });
    expect(decodeIrte128(words, false)).toMatchObject({ guestMode: false, reserved: true });
    expect(checkIrte(decodeIrte128(words, false))).toBe(IRTE_FAULT.RESERVED_BITS);
  });

  it('round-trips every field', () => {
    fc.assert(
      fc.property(
        fc.record({
          remapEn: fc.boolean(),
          supIopf: fc.boolean(),
          gaLogIntr: fc.boolean(),
          isRun: fc.boolean(),
          destination: fc.integer({ min: 0, max: 0xffff_ffff }),
          gaTag: fc.integer({ min: 0, max: 0xffff_ffff }),
          vector: fc.integer({ min: 0, max: 0xff }),
          gaRootPtr: fc.integer({ min: 0, max: 2 ** 40 - 1 }).map((pfn) => pfn * 4096),
        }),
        (fields) => {
          expect(decodeIrte128(encodeIrte128({ ...fields, guestMode: true }), true)).toEqual({
            ...fields,
            guestMode: true,
            reserved: false,
          });
        },
      ),
    );
  });

  it('refuses a root pointer not 4 KiB aligned or at 2^52, and a destination at 2^32 (EINVAL)', () => {
    expect(errnoOf(() => encodeIrte128({ guestMode: true, gaRootPtr: 0x1800 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeIrte128({ guestMode: true, gaRootPtr: 2 ** 52 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeIrte128({ destination: 2 ** 32 }))).toBe('EINVAL');
  });
});

describe('checkIrte and the IO_PAGE_FAULT flags', () => {
  const valid: RemappedIrte = decodeIrte32(0x0041_0501);

  it('accepts fixed and arbitrated entries, refuses IntType 2–7', () => {
    expect(checkIrte(valid)).toBe(0);
    expect(checkIrte({ ...valid, intType: INT_TYPE.ARBITRATED })).toBe(0);
    for (let intType = 2; intType < 8; intType++)
      expect(checkIrte({ ...valid, intType })).toBe(IRTE_FAULT.INT_TYPE);
  });

  it('checks RemapEn, then reserved bits, then IntType', () => {
    expect(checkIrte({ ...valid, remapEn: false, reserved: true, intType: 7 })).toBe(
      IRTE_FAULT.REMAP_DISABLED,
    );
    expect(checkIrte({ ...valid, reserved: true, intType: 7 })).toBe(IRTE_FAULT.RESERVED_BITS);
  });

  it('a posted entry has no IntType to refuse', () => {
    expect(checkIrte(decodeIrte128(encodeIrte128({ guestMode: true, remapEn: true }), true))).toBe(0);
  });

  it('RemapEn clear is I only; the others I, PR and RZ; an index beyond the table I only', () => {
    expect(irteFaultFlags(IRTE_FAULT.REMAP_DISABLED)).toBe(0x008);
    expect(irteFaultFlags(IRTE_FAULT.RESERVED_BITS)).toBe(0x098);
    expect(irteFaultFlags(IRTE_FAULT.INT_TYPE)).toBe(0x098);
    expect(INDEX_BEYOND_TABLE_FLAGS).toBe(0x008);
  });
});

describe('the MSI that selects an entry', () => {
  it('index is data[10:0], the type data[10:8]', () => {
    expect(msiIrteIndex(0xffff_f9ab)).toBe(0x1ab);
    expect(msiType(0x0000_0541)).toBe(INT_TYPE.INIT);
    expect(range(0, 7).map((t) => msiType(t << 8))).toEqual(range(0, 7));
  });

  it('entries are 4 bytes apart with GAEn = 0, 16 with GAEn = 1', () => {
    expect(irteAddress(0x10_0000, 3, false)).toBe(0x10_000c);
    expect(irteAddress(0x10_0000, 3, true)).toBe(0x10_0030);
  });

  it('Linux fill_msi_msg: data = index, DM = 1 only in the 2048-entry mode; 11 bits at most', () => {
    expect(remappedMsi(0x1ff, false)).toEqual({ address: 0xfee0_0000n, data: 0x1ff });
    expect(remappedMsi(0x7ff, true)).toEqual({ address: 0xfee0_0004n, data: 0x7ff });
    expect(errnoOf(() => remappedMsi(0x800, true))).toBe('EINVAL');
  });

  it('the interrupt takes vector, destination, DM, IntType from the entry; trigger and RH from the message', () => {
    const words = encodeIrte128({ remapEn: true, intType: 1, destination: 0x0102_0304, vector: 0x61 });
    const e = decodeIrte128(words, false) as RemappedIrte;
    expect(irteInterrupt(e, true, 0xfee0_0008, 0x8000)).toEqual({
      vector: 0x61,
      destination: 0x0102_0304,
      destinationMode: 'physical',
      deliveryMode: 'lowest-priority',
      trigger: 'level',
      redirectionHint: true,
    });
    expect(irteInterrupt({ ...e, dm: true, intType: 0 }, false, 0xfee0_0000, 0)).toEqual({
      vector: 0x61,
      destination: 0x04,
      destinationMode: 'logical',
      deliveryMode: 'fixed',
      trigger: 'edge',
      redirectionHint: false,
    });
  });
});
