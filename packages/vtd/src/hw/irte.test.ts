import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IR_FR } from './fault-reasons.js';
import {
  checkIrte,
  decodeIrte,
  decodeRemappableMsi,
  encodeIrte,
  type Irte,
  type IrteInit,
  irteDestination,
  irteInterrupt,
  type PostedIrte,
  postedDescriptorAddress,
  type RemappedIrte,
  remappableMsiAddress,
  sourceAllowed,
} from './irte.js';

/** Words written from Linux's `struct irte` / VirtualBox VTD_BF_*_IRTE_* positions, not by the encoder. */
const REMAPPED: RemappedIrte = {
  mode: 'remapped',
  present: true,
  fpd: false,
  dm: true,
  rh: true,
  tm: true,
  dlm: 1,
  avail: 0xa,
  vector: 0x31,
  dst: 0x0500,
  sid: 0x00f8,
  sq: 2,
  svt: 1,
  reservedBit: undefined,
};
// P 0, DM 2, RH 3, TM 4, DLM 7:5, AVAIL 11:8, vector 23:16 | DST 63:32 | SID 79:64, SQ 81:80, SVT 83:82
const REMAPPED_WORDS = Uint32Array.of(0x0031_0a3d, 0x0000_0500, 0x0006_00f8, 0);

const POSTED: PostedIrte = {
  mode: 'posted',
  present: true,
  fpd: true,
  avail: 3,
  urg: true,
  vector: 0x45,
  pdaLow: 0x2345_6780 / 64,
  pdaHigh: 1,
  sid: 0x1234,
  sq: 0,
  svt: 2,
  reservedBit: undefined,
};
// P 0, FPD 1, AVAIL 11:8, URG 14, IM 15, vector 23:16 | PDA[31:6] 63:38 | SID, SQ, SVT | PDA[63:32] 127:96
const POSTED_WORDS = Uint32Array.of(0x0045_c303, 0x2345_6780, 0x0008_1234, 1);

const withBit = (w: Uint32Array, bit: number) => {
  const out = Uint32Array.from(w);
  out[bit >>> 5]! |= 2 ** (bit & 31);
  return out;
};
const PI = { postedInterrupts: true };
const NO_PI = { postedInterrupts: false };

describe('IRTE: spec vectors', () => {
  it('remapped format', () => {
    expect(encodeIrte(REMAPPED)).toEqual(REMAPPED_WORDS);
    expect(decodeIrte(REMAPPED_WORDS)).toEqual(REMAPPED);
  });

  it('posted format, and its descriptor address', () => {
    expect(encodeIrte(POSTED)).toEqual(POSTED_WORDS);
    expect(decodeIrte(POSTED_WORDS)).toEqual(POSTED);
    expect(postedDescriptorAddress(POSTED)).toBe(0x1_2345_6780);
  });

  it('writes only the fields given, the others 0', () => {
    expect(encodeIrte({ mode: 'posted', present: true })).toEqual(Uint32Array.of(0x8001, 0, 0, 0));
    expect(encodeIrte({ mode: 'remapped', vector: 0xff })).toEqual(Uint32Array.of(0x00ff_0000, 0, 0, 0));
  });

  it('refuses values its fields cannot hold', () => {
    expect(errnoOf(() => encodeIrte({ mode: 'remapped', vector: 0x100 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeIrte({ mode: 'posted', pdaLow: 2 ** 26 }))).toBe('EINVAL');
    expect(errnoOf(() => encodeIrte({ mode: 'bogus' } as unknown as IrteInit))).toBe('EINVAL');
  });
});

describe('IRTE: reserved bits depend on the format', () => {
  it.each([
    ['remapped', REMAPPED_WORDS, [12, 13, 14, 24, 31, 84, 96, 127]],
    ['posted', POSTED_WORDS, [2, 7, 12, 13, 24, 37, 84, 95]],
  ] as const)('%s: each reserved bit is reported', (_, w, bits) => {
    for (const bit of bits) expect(decodeIrte(withBit(w, bit)).reservedBit, `bit ${bit}`).toBe(bit);
  });

  it.each([
    ['remapped', REMAPPED_WORDS, [0, 1, 2, 3, 4, 5, 7, 8, 11, 16, 23, 32, 63, 64, 79, 80, 83]],
    ['posted', POSTED_WORDS, [0, 1, 8, 11, 14, 16, 23, 38, 63, 64, 83, 96, 127]],
  ] as const)('%s: defined bits are not reserved', (_, w, bits) => {
    for (const bit of bits) expect(decodeIrte(withBit(w, bit)).reservedBit, `bit ${bit}`).toBeUndefined();
  });

  it('reports the lowest reserved bit', () => {
    expect(decodeIrte(withBit(withBit(REMAPPED_WORDS, 100), 25)).reservedBit).toBe(25);
  });
});

describe('checkIrte', () => {
  const remapped = (fields: Partial<RemappedIrte>): Irte => ({ ...REMAPPED, ...fields });

  it.each<[string, Irte, number, boolean?]>([
    ['a usable remapped entry', REMAPPED, 0],
    ['a usable x2APIC destination', remapped({ dst: 0x1234_5678 }), 0, true],
    ['P = 0', decodeIrte(new Uint32Array(4)), IR_FR.IRTE_NOT_PRESENT],
    ['P = 0 before reserved bits', decodeIrte(withBit(new Uint32Array(4), 12)), IR_FR.IRTE_NOT_PRESENT],
    ['a reserved bit', decodeIrte(withBit(REMAPPED_WORDS, 84)), IR_FR.IRTE_RESERVED],
    ['xAPIC destination bits 39:32', remapped({ dst: 0x0501 }), IR_FR.IRTE_RESERVED],
    ['xAPIC destination bits 63:48', remapped({ dst: 0x1_0500 }), IR_FR.IRTE_RESERVED],
    ['SVT 0b11', remapped({ svt: 3 }), IR_FR.IRTE_RESERVED],
    ['delivery mode 0b011', remapped({ dlm: 3 }), IR_FR.IRTE_RESERVED],
    ['delivery mode 0b110', remapped({ dlm: 6 }), IR_FR.IRTE_RESERVED],
  ])('%s → %i', (_, e, fault, eim = false) => {
    expect(checkIrte(e, NO_PI, eim)).toBe(fault);
  });

  it('the posted format needs CAP.PI', () => {
    expect(checkIrte(POSTED, NO_PI, true)).toBe(IR_FR.IRTE_RESERVED);
    expect(checkIrte(POSTED, PI, true)).toBe(0);
    expect(checkIrte(decodeIrte(withBit(POSTED_WORDS, 2)), PI, true)).toBe(IR_FR.IRTE_RESERVED);
  });
});

describe('sourceAllowed', () => {
  const entry = (svt: number, sq: number, sid: number): Irte => ({ ...REMAPPED, svt, sq, sid });

  it('SVT 0: any requester', () => {
    expect(sourceAllowed(entry(0, 3, 0x0100), 0xffff)).toBe(true);
  });

  it.each([
    // SQ: SID bits ignored — none, bit 2, bits 2:1, bits 2:0
    [0, 0x0108, true],
    [0, 0x010c, false],
    [1, 0x010c, true],
    [1, 0x010a, false],
    [2, 0x010e, true],
    [2, 0x0109, false],
    [3, 0x010f, true],
    [3, 0x0100, false],
    [3, 0x0208, false],
  ])('SVT 1, SQ %i: requester %i against SID 0x0108 (264) → %s', (sq, sid, allowed) => {
    expect(sourceAllowed(entry(1, sq, 0x0108), sid)).toBe(allowed);
  });

  it.each([
    [0x0300, true],
    [0x04ff, true],
    [0x05ff, true],
    [0x02ff, false],
    [0x0600, false],
  ])('SVT 2: buses 3–5 (SID 0x0305), requester %i → %s', (sid, allowed) => {
    expect(sourceAllowed(entry(2, 0, 0x0305), sid)).toBe(allowed);
  });

  it('SVT 3 (reserved): nobody', () => {
    expect(sourceAllowed(entry(3, 0, 0x0108), 0x0108)).toBe(false);
  });
});

describe('IRTE → X86Interrupt', () => {
  it('xAPIC: the APIC ID from DST bits 15:8', () => {
    expect(irteInterrupt(REMAPPED, false)).toEqual({
      vector: 0x31,
      destination: 5,
      destinationMode: 'logical',
      deliveryMode: 'lowest-priority',
      trigger: 'level',
      redirectionHint: true,
    });
  });

  it('x2APIC: all 32 bits', () => {
    const e: RemappedIrte = { ...REMAPPED, dst: 0xffff_fffe, dm: false, tm: false, rh: false, dlm: 4 };
    expect(irteInterrupt(e, true)).toEqual({
      vector: 0x31,
      destination: 0xffff_fffe,
      destinationMode: 'physical',
      deliveryMode: 'nmi',
      trigger: 'edge',
      redirectionHint: false,
    });
  });

  it('a reserved delivery mode delivers nothing', () => {
    expect(irteInterrupt({ ...REMAPPED, dlm: 3 }, false)).toBeUndefined();
  });

  it('irteDestination places the APIC ID as the format wants', () => {
    expect(irteDestination(5, false)).toBe(0x0500);
    expect(irteDestination(0x1234_5678, true)).toBe(0x1234_5678);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xff }), fc.boolean(), (apic, eim) => {
        const e: RemappedIrte = { ...REMAPPED, dst: irteDestination(apic, eim) };
        expect(checkIrte(e, NO_PI, eim)).toBe(0);
        expect(irteInterrupt(e, eim)?.destination).toBe(apic);
      }),
    );
  });
});

describe('remappable MSI (§5.1.5.2)', () => {
  it('decodes the Linux-composed address for handle 0x8123 with a subhandle', () => {
    // 0xFEE | handle[14:0] << 5 | SHV 1 << 3 | format 1 << 4 | handle[15] << 2
    expect(decodeRemappableMsi(0xfee0_247cn, 2)).toEqual({
      remappable: true,
      handle: 0x8123,
      subhandleValid: true,
      index: 0x8125,
      reservedData: false,
    });
    expect(remappableMsiAddress(0x8123, true)).toBe(0xfee0_247cn);
  });

  it('ignores the data without SHV, and flags data bits 31:16', () => {
    expect(decodeRemappableMsi(0xfee0_0030n, 0x1_0007)).toEqual({
      remappable: true,
      handle: 1,
      subhandleValid: false,
      index: 1,
      reservedData: true,
    });
  });

  it('reads a compatibility-format request as not remappable', () => {
    expect(decodeRemappableMsi(0xfee0_1000n, 0x4031).remappable).toBe(false);
  });

  it('does not wrap handle + subhandle past 16 bits', () => {
    expect(decodeRemappableMsi(remappableMsiAddress(0xffff, true), 1).index).toBe(0x1_0000);
  });

  it('round-trips any handle', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.boolean(), (handle, shv) => {
        const msi = decodeRemappableMsi(remappableMsiAddress(handle, shv), 0);
        expect(msi).toEqual({
          remappable: true,
          handle,
          subhandleValid: shv,
          index: handle,
          reservedData: false,
        });
      }),
    );
    expect(errnoOf(() => remappableMsiAddress(0x1_0000))).toBe('EINVAL');
  });
});

describe('IRTE: round trips', () => {
  const u = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
  const shared = {
    present: fc.boolean(),
    fpd: fc.boolean(),
    avail: u(4),
    vector: u(8),
    sid: u(16),
    sq: u(2),
    svt: u(2),
  };
  const entry: fc.Arbitrary<Irte> = fc.oneof(
    fc.record({
      ...shared,
      mode: fc.constant('remapped' as const),
      dm: fc.boolean(),
      rh: fc.boolean(),
      tm: fc.boolean(),
      dlm: u(3),
      dst: u(32),
      reservedBit: fc.constant(undefined),
    }),
    fc.record({
      ...shared,
      mode: fc.constant('posted' as const),
      urg: fc.boolean(),
      pdaLow: u(26),
      pdaHigh: u(32),
      reservedBit: fc.constant(undefined),
    }),
  );

  it('decode(encode(e)) is e', () => {
    fc.assert(
      fc.property(entry, (e) => {
        expect(decodeIrte(encodeIrte(e))).toEqual(e);
      }),
    );
  });
});
