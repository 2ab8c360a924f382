import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../memory/memory-bus.js';
import { MmioWindow } from './mmio-window.js';
import { RegisterFile } from './register-file.js';

const BASE = 0x900_0000n;

function setup() {
  const bus = new MemoryBus();
  const regs = new RegisterFile(0x100, [
    { name: 'ID', offset: 0x0, access: 'ro', reset: 0x4321_8765 },
    { name: 'CTRL', offset: 0x8, access: 'rw' },
    { name: 'BASE_LO', offset: 0x10, access: 'rw' },
    { name: 'BASE_HI', offset: 0x14, access: 'rw' },
  ]);
  const writes: string[] = [];
  bus.addMmio('dev', BASE, 0x100, {
    read: (offset, size) => regs.read(offset, size),
    write: (offset, size, value) => {
      writes.push(`${offset.toString(16)}=${value.toString(16)}`);
      regs.write(offset, size, value);
    },
  });
  const counter = bus.counter('driver');
  return { window: new MmioWindow(bus, BASE, counter), regs, writes, counter };
}

describe('MmioWindow (readl / writel / lo_hi_writeq)', () => {
  it('reads and writes 32-bit registers at offsets from its base', () => {
    const { window, regs, counter } = setup();
    expect(window.read32(0x0)).toBe(0x4321_8765);
    window.write32(0x8, 0xdead_beef);
    expect(regs.get(0x8)).toBe(0xdead_beef);
    expect(window.read32(0x8)).toBe(0xdead_beef);
    // A negative number is written as its 32-bit pattern.
    window.write32(0x8, -1);
    expect(regs.get(0x8)).toBe(0xffff_ffff);
    expect(counter.snapshot()).toMatchObject({ reads: 2, writes: 2, aborts: 0 });
  });

  it('writes a 64-bit register as two 32-bit writes, low half first, and reads it back joined', () => {
    const { window, writes } = setup();
    window.write64(0x10, 0x1234_5678_9abc_def0n);
    expect(writes).toEqual(['10=9abcdef0', '14=12345678']);
    expect(window.read64(0x10)).toBe(0x1234_5678_9abc_def0n);
  });

  it('an address register as a number: low half first, exact up to 2^53', () => {
    const { window, writes } = setup();
    window.writeAddress(0x10, 0x1f_ffff_ffff_f000 + 0x803);
    expect(writes).toEqual(['10=fffff803', '14=1fffff']);
    expect(window.readAddress(0x10)).toBe(0x1f_ffff_ffff_f803);
  });

  it('a read that aborts (nothing at the address) returns all ones, as a PCIe master abort', () => {
    const { window, counter } = setup();
    expect(window.read32(0x100)).toBe(0xffff_ffff);
    expect(window.read64(0x100)).toBe(0xffff_ffff_ffff_ffffn);
    expect(counter.aborts).toBe(3);
  });
});
