import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeCommand,
  encodeCommand,
  ITS_OPCODES,
  type ItsCommand,
  type ItsCommandWords,
} from './commands.js';

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
/** ITT_addr: 256-byte aligned, below 2^52. */
const ittAddress = fc.bigInt({ min: 0n, max: (1n << 44n) - 1n }).map((v) => v << 8n);
const size = fc.integer({ min: 0, max: 31 });
const event = { deviceId: u32, eventId: u32 };

const commandArb: fc.Arbitrary<ItsCommand> = fc.oneof(
  fc.record({ op: fc.constant('MAPD' as const), deviceId: u32, size, ittAddress, valid: fc.boolean() }),
  fc.record({ op: fc.constant('MAPC' as const), icid: u16, rdbase: u16, valid: fc.boolean() }),
  fc.record({ op: fc.constant('MAPTI' as const), ...event, intid: u32, icid: u16 }),
  fc.record({ op: fc.constant('MAPI' as const), ...event, icid: u16 }),
  fc.record({ op: fc.constant('MOVI' as const), ...event, icid: u16 }),
  fc.record({
    op: fc.constantFrom('DISCARD' as const, 'INV' as const, 'INT' as const, 'CLEAR' as const),
    ...event,
  }),
  fc.record({ op: fc.constant('INVALL' as const), icid: u16 }),
  fc.record({ op: fc.constant('SYNC' as const), rdbase: u16 }),
  fc.record({ op: fc.constant('MOVALL' as const), rdbase1: u16, rdbase2: u16 }),
);

const KNOWN_OPCODES = new Set<number>(Object.values(ITS_OPCODES));

describe('ITS command encoding', () => {
  it('round-trips every command kind over valid field ranges', () => {
    fc.assert(
      fc.property(commandArb, (command) => {
        const words = encodeCommand(command);
        expect(words).toHaveLength(4);
        for (const w of words) expect(w >= 0n && w < 1n << 64n).toBe(true);
        expect(decodeCommand(words)).toEqual(command);
      }),
      { numRuns: 2000 },
    );
  });

  it('covers every opcode the ITS implements', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(commandArb, (command) => {
        seen.add(command.op);
      }),
      { numRuns: 500 },
    );
    expect([...seen].sort()).toEqual(Object.keys(ITS_OPCODES).sort());
  });

  it('puts the opcode in DW0[7:0] and the DeviceID in DW0[63:32]', () => {
    for (const [op, opcode] of Object.entries(ITS_OPCODES)) {
      const command = { op, deviceId: 0, eventId: 0, icid: 0, rdbase: 0, rdbase1: 0, rdbase2: 0 };
      const words = encodeCommand({
        ...command,
        intid: 0,
        size: 0,
        ittAddress: 0n,
        valid: false,
      } as ItsCommand);
      expect(words[0] & 0xffn).toBe(BigInt(opcode));
    }
    const [dw0] = encodeCommand({ op: 'INT', deviceId: 0xdead_beef, eventId: 0 });
    expect(dw0).toBe(0xdead_beef_0000_0003n);
  });

  it('MAPD: Size in DW1[4:0], ITT_addr in DW2[51:8], V in DW2[63]', () => {
    expect(
      encodeCommand({
        op: 'MAPD',
        deviceId: 0x1234_5678,
        size: 31,
        ittAddress: 0x000f_ffff_ffff_ff00n,
        valid: true,
      }),
    ).toEqual([0x1234_5678_0000_0008n, 0x1fn, 0x800f_ffff_ffff_ff00n, 0n]);
    expect(
      encodeCommand({ op: 'MAPD', deviceId: 1, size: 4, ittAddress: 0x4000_0100n, valid: false }),
    ).toEqual([0x0000_0001_0000_0008n, 0x4n, 0x4000_0100n, 0n]);
    // Bits outside the fields are ignored on decode.
    expect(
      decodeCommand([
        0x0000_0007_0000_ff08n,
        0xffff_ffff_ffff_ffe5n,
        0xfff0_0000_1234_56ffn,
        ~0n & (2n ** 64n - 1n),
      ]),
    ).toEqual({ op: 'MAPD', deviceId: 7, size: 5, ittAddress: 0x1234_5600n, valid: true });
  });

  it('MAPTI: EventID in DW1[31:0], pINTID in DW1[63:32], ICID in DW2[15:0]', () => {
    expect(
      encodeCommand({ op: 'MAPTI', deviceId: 0xdead_beef, eventId: 0x1234, intid: 0x2000, icid: 0xabcd }),
    ).toEqual([0xdead_beef_0000_000an, 0x0000_2000_0000_1234n, 0xabcdn, 0n]);
    expect(
      encodeCommand({ op: 'MAPTI', deviceId: 0, eventId: 0xffff_ffff, intid: 0xffff_ffff, icid: 0xffff }),
    ).toEqual([0x0an, 0xffff_ffff_ffff_ffffn, 0xffffn, 0n]);
    expect(
      decodeCommand([0x0000_0010_0000_000an, 0x0000_2345_0000_0003n, 0xffff_0000_0000_0007n, 0n]),
    ).toEqual({
      op: 'MAPTI',
      deviceId: 0x10,
      eventId: 3,
      intid: 0x2345,
      icid: 7,
    });
  });

  it('MAPI and MOVI: EventID in DW1, ICID in DW2[15:0]', () => {
    expect(encodeCommand({ op: 'MAPI', deviceId: 2, eventId: 0x8000_0000, icid: 3 })).toEqual([
      0x0000_0002_0000_000bn,
      0x8000_0000n,
      3n,
      0n,
    ]);
    expect(encodeCommand({ op: 'MOVI', deviceId: 0xffff_ffff, eventId: 9, icid: 0xffff })).toEqual([
      0xffff_ffff_0000_0001n,
      9n,
      0xffffn,
      0n,
    ]);
  });

  it('MAPC: ICID in DW2[15:0], RDbase in DW2[51:16], V in DW2[63]', () => {
    expect(encodeCommand({ op: 'MAPC', icid: 0x1234, rdbase: 0xfedc, valid: true })).toEqual([
      0x09n,
      0n,
      0x8000_0000_fedc_1234n,
      0n,
    ]);
    // RDbase is a 36-bit field: its top bit is DW2[51].
    const [, , dw2] = encodeCommand({ op: 'MAPC', icid: 0, rdbase: 2 ** 36 - 1, valid: false });
    expect(dw2).toBe(0x000f_ffff_ffff_0000n);
    expect(decodeCommand([0x09n, 0n, 0x0000_0000_0003_0002n, 0n])).toEqual({
      op: 'MAPC',
      icid: 2,
      rdbase: 3,
      valid: false,
    });
  });

  it('SYNC: RDbase in DW2[51:16]; INVALL: ICID in DW2[15:0]', () => {
    expect(encodeCommand({ op: 'SYNC', rdbase: 5 })).toEqual([0x05n, 0n, 0x5_0000n, 0n]);
    expect(encodeCommand({ op: 'INVALL', icid: 0xbeef })).toEqual([0x0dn, 0n, 0xbeefn, 0n]);
  });

  it('MOVALL: RDbase1 in DW2[51:16], RDbase2 in DW3[51:16]', () => {
    expect(encodeCommand({ op: 'MOVALL', rdbase1: 0x11, rdbase2: 0x22 })).toEqual([
      0x0en,
      0n,
      0x11_0000n,
      0x22_0000n,
    ]);
    expect(decodeCommand([0x0en, 0n, 0xfff0_0001_0000_ffffn, 0x0000_0002_0000_0000n])).toEqual({
      op: 'MOVALL',
      rdbase1: 0x1_0000,
      rdbase2: 0x2_0000,
    });
  });

  it('DISCARD, INV, INT and CLEAR: DeviceID in DW0[63:32], EventID in DW1[31:0], nothing else', () => {
    const opcodes = { DISCARD: 0x0fn, INV: 0x0cn, INT: 0x03n, CLEAR: 0x04n } as const;
    for (const [op, opcode] of Object.entries(opcodes)) {
      const command = { op, deviceId: 0x8000_0001, eventId: 0x7fff_fffe } as ItsCommand;
      expect(encodeCommand(command)).toEqual([0x8000_0001_0000_0000n | opcode, 0x7fff_fffen, 0n, 0n]);
    }
  });

  it('decodes an unknown opcode to UNKNOWN with the opcode', () => {
    for (const opcode of [0x00, 0x02, 0x06, 0x07, 0x10, 0x20, 0x2a, 0xff]) {
      const words: ItsCommandWords = [0x1234_0000_0000_0000n | BigInt(opcode), 1n, 2n, 3n];
      expect(decodeCommand(words)).toEqual({ op: 'UNKNOWN', opcode });
    }
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xff }).filter((o) => !KNOWN_OPCODES.has(o)),
        (opcode) => {
          const words = encodeCommand({ op: 'UNKNOWN', opcode });
          expect(words).toEqual([BigInt(opcode), 0n, 0n, 0n]);
          expect(decodeCommand(words)).toEqual({ op: 'UNKNOWN', opcode });
        },
      ),
    );
  });
});
