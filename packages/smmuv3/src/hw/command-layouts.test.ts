/**
 * The command field tables and the bit helpers the codec builds on (IHI 0070 §4.1.5, §4.1.6): SSec in
 * every command that has it, fields wider than 32 bits, and the lowest set RES0 bit.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURES } from '../../test/features.js';
import { decodeCommand } from './command-codec.js';
import { DEFINED_MASKS, firstReservedBit, getWide, OPS, SSEC_BIT, setWide } from './command-layouts.js';
import { CMD_WORDS, type CommandName } from './command-set.js';
import { DEFAULT_IDR_EXTRAS } from './features.js';

const FEATURES = { ...DEFAULT_FEATURES, sidBits: 32 };
const IDR = { ...DEFAULT_IDR_EXTRAS, hyp: true };
const withBit = (opcode: number, bit: number) => {
  const words = new Uint32Array(CMD_WORDS);
  words[0] = opcode;
  words[bit >>> 5]! |= 1 << (bit & 31);
  return words;
};
const decode = (words: Uint32Array, checkReserved: boolean) =>
  decodeCommand(words, FEATURES, { checkReserved, idr: IDR });

describe('command layouts (IHI 0070 §4)', () => {
  // §4.1.6: SSec is a parameter of the configuration, prefetch, RESUME and STALL_TERM commands; on the
  // Non-secure Command queue SSec == 1 is CERROR_ILL whether or not RES0 bits are checked.
  const WITH_SSEC: CommandName[] = [
    'PREFETCH_CONFIG',
    'PREFETCH_ADDR',
    'CFGI_STE',
    'CFGI_STE_RANGE',
    'CFGI_ALL',
    'CFGI_CD',
    'CFGI_CD_ALL',
    'RESUME',
    'STALL_TERM',
  ];

  it('has SSec in exactly the commands the spec gives it', () => {
    const ssec = (Object.keys(OPS) as CommandName[]).filter((name) => OPS[name].ssec === true);
    expect(ssec.sort()).toEqual([...WITH_SSEC].sort());
  });

  it.each(WITH_SSEC)('%s with SSec == 1 is CERROR_ILL, even without RES0 checks', (name) => {
    const words = withBit(OPS[name].opcode, SSEC_BIT);
    if (name === 'CFGI_ALL') words[2] = 31; // Range 31
    expect(decode(words, false)).toEqual({
      ok: false,
      error: 'ILL',
      reason: `CMD_${name}: SSec is 1 on the Non-secure Command queue`,
    });
  });

  it('bit 10 of a command without SSec is RES0: ILL only when RES0 bits are checked', () => {
    for (const name of ['TLBI_NH_ALL', 'TLBI_NSNH_ALL', 'SYNC'] as const) {
      const words = withBit(OPS[name].opcode, SSEC_BIT);
      expect(decode(words, true)).toMatchObject({ ok: false, reason: `CMD_${name}: RES0 bit 10 is set` });
      expect(decode(words, false)).toMatchObject({ ok: true, command: { op: name } });
    }
  });

  it('leaves SSec out of the defined bits, with the opcode and every field in', () => {
    const mask = DEFINED_MASKS.get('CFGI_STE')!;
    // Opcode [7:0], StreamID [63:32], Leaf (bit 64); SSec (bit 10) is checked on its own.
    expect(Array.from(mask)).toEqual([0xff, 0xffff_ffff, 1, 0]);
  });
});

describe('wide fields', () => {
  it('setWide writes exactly bits [lsb+width-1:lsb], across words, keeping the others', () => {
    const words = new Uint32Array(CMD_WORDS).fill(0xffff_ffff);
    setWide(words, 76, 40, 0); // IPA[51:12] of TLBI_S2_IPA: bits 115:76
    expect(Array.from(words)).toEqual([0xffff_ffff, 0xffff_ffff, 0x0000_0fff, 0xfff0_0000]);
    setWide(words, 76, 40, 2 ** 40 - 2);
    expect(Array.from(words)).toEqual([0xffff_ffff, 0xffff_ffff, 0xffff_efff, 0xffff_ffff]);
  });

  it('getWide reads exactly bits [lsb+width-1:lsb] as a number', () => {
    const ones = new Uint32Array(CMD_WORDS).fill(0xffff_ffff);
    expect(getWide(ones, 76, 40)).toBe(2 ** 40 - 1);
    expect(getWide(ones, 76, 52)).toBe(2 ** 52 - 1);
    const words = Uint32Array.from([0, 0, 0x1234_5000, 0xffff_8000]); // VA 0xffff_8000_1234_5000
    expect(getWide(words, 76, 40)).toBe(0xf8_0001_2345);
    expect(getWide(words, 76, 52)).toBe(0xf_fff8_0001_2345);
  });
});

describe('firstReservedBit', () => {
  it('is the lowest set bit outside the mask, or undefined', () => {
    const mask = Uint32Array.from([0xff, 0xffff_ffff, 1, 0]);
    expect(firstReservedBit([0x12, 7, 1, 0], mask)).toBeUndefined();
    expect(firstReservedBit([0x0000_8c00, 0, 0, 0], mask)).toBe(10);
    expect(firstReservedBit([0, 0, 0x6, 0x8000_0000], mask)).toBe(65);
    expect(firstReservedBit([0, 0, 1, 0x8000_0010], mask)).toBe(100);
  });
});
