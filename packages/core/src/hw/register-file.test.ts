import { describe, expect, it } from 'vitest';
import type { RegDef } from './register-file.js';
import { RegisterFile } from './register-file.js';

const ID = 0x00;
const CTRL = 0x04;
const STATUS = 0x08;
const DOORBELL = 0x0c;
const BASE_LO = 0x10;
const BASE_HI = 0x14;
const UNLISTED = 0x20;

const TABLE: readonly RegDef[] = [
  { name: 'ID', offset: ID, access: 'ro', reset: 0x1234_abcd },
  { name: 'CTRL', offset: CTRL, access: 'rw', writable: 0x0000_ff0f, reset: 0x8000_0000 },
  { name: 'STATUS', offset: STATUS, access: 'w1c', writable: 0x0000_00ff, reset: 0 },
  { name: 'DOORBELL', offset: DOORBELL, access: 'wo' },
  { name: 'BASE_LO', offset: BASE_LO, access: 'rw' },
  { name: 'BASE_HI', offset: BASE_HI, access: 'rw' },
];

const make = () => new RegisterFile(0x40, TABLE);

describe('RegisterFile', () => {
  it('starts at the reset values', () => {
    const regs = make();
    expect(regs.read(ID, 4)).toBe(0x1234_abcd);
    expect(regs.read(CTRL, 4)).toBe(0x8000_0000);
    expect(regs.read(BASE_LO, 4)).toBe(0);
  });

  it('read-only registers ignore writes', () => {
    const regs = make();
    regs.write(ID, 4, 0);
    regs.write(ID, 1, 0xff);
    expect(regs.read(ID, 4)).toBe(0x1234_abcd);
  });

  it('read-write registers only change the writable bits', () => {
    const regs = make();
    regs.write(CTRL, 4, 0xffff_ffff);
    expect(regs.read(CTRL, 4)).toBe(0x8000_ff0f);
    regs.write(CTRL, 4, 0);
    expect(regs.read(CTRL, 4)).toBe(0x8000_0000);
  });

  it('registers without a writable mask take every bit and read back unsigned', () => {
    const regs = make();
    regs.write(BASE_LO, 4, -1);
    expect(regs.read(BASE_LO, 4)).toBe(0xffff_ffff);
    regs.write(BASE_HI, 4, 0x0000_0001);
    expect(regs.get64(BASE_LO)).toBe(0x1_ffff_ffffn);
  });

  it('W1C registers clear only the bits written as 1, within the writable mask', () => {
    const regs = make();
    regs.set(STATUS, 0xf000_00f5);
    regs.write(STATUS, 4, 0x0000_0011);
    expect(regs.read(STATUS, 4)).toBe(0xf000_00e4);
    // Writing 0 changes nothing; bits outside `writable` cannot be cleared.
    regs.write(STATUS, 4, 0);
    regs.write(STATUS, 4, 0xf000_0000);
    expect(regs.read(STATUS, 4)).toBe(0xf000_00e4);
  });

  it('write-only registers read as zero but hold the written value for the hardware', () => {
    const regs = make();
    regs.write(DOORBELL, 4, 0x55);
    expect(regs.read(DOORBELL, 4)).toBe(0);
    expect(regs.read(DOORBELL, 1)).toBe(0);
    expect(regs.get(DOORBELL)).toBe(0x55);
  });

  it.each([UNLISTED, 0x3c, 0x40, 0x1000])('offset %s is RES0/WI', (offset) => {
    const regs = make();
    regs.write(offset, 4, 0xffff_ffff);
    expect(regs.read(offset, 4)).toBe(0);
    expect(regs.read(offset, 1)).toBe(0);
  });

  it.each([
    [0, 1, 0xef],
    [1, 1, 0xbe],
    [2, 1, 0xad],
    [3, 1, 0xde],
    [0, 2, 0xbeef],
    [2, 2, 0xdead],
  ] as const)('a read at +%s of size %s selects lane %s', (lane, size, value) => {
    const regs = make();
    regs.write(BASE_LO, 4, 0xdead_beef);
    expect(regs.read(BASE_LO + lane, size)).toBe(value);
  });

  it.each([
    [0, 1, 0x1_2345, 0x1111_1145],
    [1, 1, 0x45, 0x1111_4511],
    [2, 1, 0x45, 0x1145_1111],
    [3, 1, 0x45, 0x4511_1111],
    [0, 2, 0x9_abcd, 0x1111_abcd],
    [2, 2, 0xabcd, 0xabcd_1111],
  ] as const)('a write at +%s of size %s merges %s into its lanes only', (lane, size, value, word) => {
    const regs = make();
    regs.write(BASE_LO, 4, 0x1111_1111);
    regs.write(BASE_LO + lane, size, value);
    expect(regs.read(BASE_LO, 4)).toBe(word);
  });

  it('a write8 at offset + 2 changes only bits 23:16, still honouring the writable mask', () => {
    const regs = make();
    regs.write(CTRL, 4, 0x0000_ff0f);
    regs.write(CTRL + 2, 1, 0xff);
    // CTRL's bits 23:16 are not writable, so nothing changes.
    expect(regs.read(CTRL, 4)).toBe(0x8000_ff0f);
    regs.write(CTRL + 1, 1, 0x00);
    expect(regs.read(CTRL, 4)).toBe(0x8000_000f);
  });

  it('a byte write to a W1C register clears bits in its lane only', () => {
    const regs = make();
    regs.set(STATUS, 0x0000_00ff);
    regs.write(STATUS + 1, 1, 0xff);
    expect(regs.read(STATUS, 4)).toBe(0xff);
    regs.write(STATUS, 1, 0x0f);
    expect(regs.read(STATUS, 4)).toBe(0xf0);
  });

  it('write hooks receive the new and the old value', () => {
    const regs = make();
    const calls: [number, number][] = [];
    regs.onWrite(CTRL, (value, old) => calls.push([value, old]));
    regs.write(CTRL, 4, 0x0000_0003);
    regs.write(CTRL, 1, 0x01);
    regs.write(BASE_LO, 4, 1);
    expect(calls).toEqual([
      [0x8000_0003, 0x8000_0000],
      [0x8000_0001, 0x8000_0003],
    ]);
  });

  it('hooks do not run for read-only registers or hardware updates', () => {
    const regs = make();
    let calls = 0;
    regs.onWrite(ID, () => calls++);
    regs.write(ID, 4, 1);
    regs.set(ID, 2);
    expect(calls).toBe(0);
    expect(regs.get(ID)).toBe(2);
  });

  it('onWrite rejects offsets with no register', () => {
    expect(() => make().onWrite(UNLISTED, () => {})).toThrow(RangeError);
  });

  it('reset restores every reset value and clears the rest', () => {
    const regs = make();
    regs.write(CTRL, 4, 0xffff_ffff);
    regs.write(BASE_LO, 4, 7);
    regs.write(DOORBELL, 4, 7);
    regs.set(ID, 0);
    regs.set(UNLISTED, 9);
    regs.reset();
    expect([ID, CTRL, STATUS, DOORBELL, BASE_LO, UNLISTED].map((o) => regs.get(o))).toEqual([
      0x1234_abcd, 0x8000_0000, 0, 0, 0, 0,
    ]);
  });

  it('looks definitions up by name', () => {
    const regs = make();
    expect(regs.definition('STATUS')?.offset).toBe(STATUS);
    expect(regs.definition('NOPE')).toBeUndefined();
    expect(regs.definitions()).toBe(TABLE);
  });

  it.each([
    ['an overlapping definition', [TABLE[0]!, { name: 'ID2', offset: ID, access: 'rw' }]],
    ['an unaligned offset', [{ name: 'X', offset: 2, access: 'rw' }]],
    ['an offset past the end', [{ name: 'X', offset: 0x40, access: 'rw' }]],
  ] as const)('rejects %s', (_case, table: readonly RegDef[]) => {
    expect(() => new RegisterFile(0x40, table)).toThrow(RangeError);
  });

  it('names both registers when definitions overlap', () => {
    expect(
      () =>
        new RegisterFile(0x40, [
          { name: 'A', offset: 8, access: 'ro' },
          { name: 'B', offset: 8, access: 'rw' },
        ]),
    ).toThrow(/B overlaps A/);
  });
});

describe('RegisterFile.definitionAt', () => {
  it('finds the register at an offset and nothing where the table has none', () => {
    const file = new RegisterFile(0x20, [{ name: 'CTRL', offset: 0x8, access: 'rw' }]);
    expect(file.definitionAt(0x8)?.name).toBe('CTRL');
    expect(file.definitionAt(0xc)).toBeUndefined();
  });
});
