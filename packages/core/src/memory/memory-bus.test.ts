import { describe, expect, it } from 'vitest';
import { iommufdErrorOf } from '../../test/iommufd-error-of.js';
import type { Errno } from '../errors/errno.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { AccessSize, MmioHandler } from './memory-bus.js';
import { MemoryBus, PHYS_ADDR_LIMIT } from './memory-bus.js';

const PAGE = 4096;
const RAM_BASE = 0x8000_0000;
const MMIO_BASE = 0x1000_0000;

type Access = { op: 'read' | 'write'; offset: number; size: 1 | 2 | 4; value?: number; deviceId?: number };

/** An MMIO device that logs every access and reads back `0x1000_0000 + offset`. */
class RecordingMmio implements MmioHandler {
  readonly log: Access[] = [];
  read(offset: number, size: 1 | 2 | 4): number {
    this.log.push({ op: 'read', offset, size });
    return (0x1000_0000 + offset) >>> 0;
  }
  write(offset: number, size: 1 | 2 | 4, value: number, deviceId?: number): void {
    this.log.push({ op: 'write', offset, size, value, ...(deviceId === undefined ? {} : { deviceId }) });
  }
}

function setup() {
  const bus = new MemoryBus();
  const ram = bus.addRam('ram', RAM_BASE, 16 * PAGE);
  const mmio = new RecordingMmio();
  bus.addMmio('dev', MMIO_BASE, PAGE, mmio);
  return { bus, ram, mmio, who: bus.counter('test') };
}

describe('MemoryBus placement', () => {
  it('keeps regions sorted by base', () => {
    const bus = new MemoryBus();
    bus.addRam('high', 0x2000_0000n, PAGE);
    bus.addMmio('low', 0, PAGE, new RecordingMmio());
    bus.addRam('mid', 0x1000_0000, 2n * BigInt(PAGE));
    expect(bus.listRegions().map((r) => [r.name, r.kind, r.base, r.end])).toEqual([
      ['low', 'mmio', 0, PAGE],
      ['mid', 'ram', 0x1000_0000, 0x1000_0000 + 2 * PAGE],
      ['high', 'ram', 0x2000_0000, 0x2000_0000 + PAGE],
    ]);
  });

  it.each([
    ['same base', RAM_BASE, PAGE],
    ['inside', RAM_BASE + PAGE, PAGE],
    ['covering', RAM_BASE - PAGE, 32 * PAGE],
    ['last byte', RAM_BASE + 16 * PAGE - 1, PAGE],
    ['first byte', RAM_BASE - PAGE + 1, PAGE],
  ])('rejects an overlap (%s) with EADDRINUSE naming both regions', (_case, base, size) => {
    const { bus } = setup();
    const error = iommufdErrorOf(() => bus.addMmio('newdev', base, size, new RecordingMmio()));
    expect(error.code).toBe<Errno>('EADDRINUSE');
    expect(error.message).toContain('"newdev"');
    expect(error.message).toContain('"ram"');
    expect(bus.listRegions()).toHaveLength(2);
  });

  it('accepts regions that touch without overlapping', () => {
    const { bus } = setup();
    bus.addRam('below', RAM_BASE - PAGE, PAGE);
    bus.addRam('above', RAM_BASE + 16 * PAGE, PAGE);
    expect(bus.listRegions().map((r) => r.name)).toEqual(['dev', 'below', 'ram', 'above']);
  });

  it('rejects a duplicate name with EEXIST', () => {
    const { bus } = setup();
    expect(iommufdErrorOf(() => bus.addRam('ram', 0, PAGE)).code).toBe<Errno>('EEXIST');
    expect(iommufdErrorOf(() => bus.addMmio('ram', 0, PAGE, new RecordingMmio())).code).toBe<Errno>('EEXIST');
  });

  it.each([
    ['ending past 2^52', PHYS_ADDR_LIMIT - PAGE, 2 * PAGE],
    ['starting at 2^52', PHYS_ADDR_LIMIT, PAGE],
    ['starting at 2^64', 2n ** 64n, PAGE],
    ['negative base', -PAGE, PAGE],
    ['zero size', 0, 0],
    ['negative size', 0, -PAGE],
  ])('rejects a region %s with EINVAL', (_case, base, size) => {
    const bus = new MemoryBus();
    expect(iommufdErrorOf(() => bus.addRam('r', base, size)).code).toBe<Errno>('EINVAL');
    expect(iommufdErrorOf(() => bus.addMmio('m', base, size, new RecordingMmio())).code).toBe<Errno>(
      'EINVAL',
    );
  });

  it('accepts a region ending exactly at 2^52', () => {
    const bus = new MemoryBus();
    const top = bus.addRam('top', BigInt(PHYS_ADDR_LIMIT - PAGE), PAGE);
    expect(top.end).toBe(PHYS_ADDR_LIMIT);
    const who = bus.counter('t');
    expect(bus.write(PHYS_ADDR_LIMIT - 8, 8, 0x0102_0304_0506_0708n, who).ok).toBe(true);
    expect(bus.read(PHYS_ADDR_LIMIT - 8, 8, who)).toEqual({ ok: true, value: 0x0102_0304_0506_0708n });
  });
});

describe('MemoryBus RAM access', () => {
  it.each([
    [1, 0xabn, [0xab]],
    [2, 0xbeefn, [0xef, 0xbe]],
    [4, 0xdead_beefn, [0xef, 0xbe, 0xad, 0xde]],
    [8, 0x0123_4567_89ab_cdefn, [0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]],
  ] as const)('a %s-byte write of %s is little-endian', (size, value, bytes) => {
    const { bus, who } = setup();
    const addr = RAM_BASE + 0x100;
    expect(bus.write(addr, size, value, who)).toEqual({ ok: true });
    expect(bus.read(BigInt(addr), size, who)).toEqual({ ok: true, value });
    const back = bus.readBytes(addr, size + 1, who);
    expect(back.ok && [...back.data]).toEqual([...bytes, 0]);
  });

  it('keeps only the low bytes of a wide value', () => {
    const { bus, who } = setup();
    bus.write(RAM_BASE, 2, 0x1234_5678, who);
    bus.write(RAM_BASE + 4, 4, -1, who);
    expect(bus.read(RAM_BASE, 8, who)).toEqual({ ok: true, value: 0xffff_ffff_0000_5678n });
  });

  it('allows unaligned RAM access, including across a page boundary', () => {
    const { bus, who } = setup();
    const addr = RAM_BASE + PAGE - 3;
    expect(bus.write(addr, 8, 0x1122_3344_5566_7788n, who).ok).toBe(true);
    expect(bus.read(addr, 8, who)).toEqual({ ok: true, value: 0x1122_3344_5566_7788n });
    expect(bus.allocatedBytes).toBe(2 * PAGE);
  });

  it('writeBytes / readBytes copy ranges that span pages', () => {
    const { bus, who } = setup();
    const data = Uint8Array.from({ length: PAGE + 100 }, (_, i) => i & 0xff);
    expect(bus.writeBytes(RAM_BASE + PAGE - 50, data, who)).toEqual({ ok: true });
    const back = bus.readBytes(RAM_BASE + PAGE - 50, data.length, who);
    expect(back.ok && back.data).toEqual(data);
  });

  it('accounts allocated bytes across RAM regions', () => {
    const { bus, who } = setup();
    bus.addRam('ram2', 0x1_0000_0000, 4 * PAGE);
    expect(bus.allocatedBytes).toBe(0);
    bus.read(RAM_BASE, 8, who);
    expect(bus.allocatedBytes).toBe(0);
    bus.write(RAM_BASE, 1, 1, who);
    bus.write(0x1_0000_0000 + 3 * PAGE, 4, 1, who);
    bus.write(MMIO_BASE, 4, 1, who);
    expect(bus.allocatedBytes).toBe(2 * PAGE);
  });

  it('discardRam zeroes and frees pages; non-RAM ranges are EINVAL', () => {
    const { bus, who } = setup();
    bus.write(RAM_BASE, 4, 0xffff_ffff, who);
    bus.write(RAM_BASE + PAGE, 4, 0xffff_ffff, who);
    bus.discardRam(RAM_BASE, PAGE);
    expect(bus.read(RAM_BASE, 4, who)).toEqual({ ok: true, value: 0n });
    expect(bus.read(RAM_BASE + PAGE, 4, who)).toEqual({ ok: true, value: 0xffff_ffffn });
    expect(bus.allocatedBytes).toBe(PAGE);
    expect(iommufdErrorOf(() => bus.discardRam(MMIO_BASE, PAGE)).code).toBe<Errno>('EINVAL');
    expect(iommufdErrorOf(() => bus.discardRam(0, PAGE)).code).toBe<Errno>('EINVAL');
    expect(iommufdErrorOf(() => bus.discardRam(RAM_BASE + 15 * PAGE, 2 * PAGE)).code).toBe<Errno>('EINVAL');
  });

  it('removeRegion unmaps the region and releases its pages', () => {
    const { bus, ram, who } = setup();
    bus.write(RAM_BASE, 4, 7, who);
    expect(bus.regionAt(RAM_BASE)).toBe(ram);
    bus.removeRegion('ram');
    expect(ram.ram.allocatedBytes).toBe(0);
    expect(bus.allocatedBytes).toBe(0);
    expect(bus.regionAt(RAM_BASE)).toBeUndefined();
    expect(bus.read(RAM_BASE, 4, who)).toMatchObject({ ok: false, abort: { reason: 'unmapped' } });
    expect(bus.listRegions().map((r) => r.name)).toEqual(['dev']);
    expect(iommufdErrorOf(() => bus.removeRegion('ram')).code).toBe<Errno>('ENOENT');
    // The name and range are free again.
    const again = bus.addRam('ram', RAM_BASE, PAGE);
    expect(bus.read(RAM_BASE, 4, who)).toEqual({ ok: true, value: 0n });
    expect(bus.regionAt(RAM_BASE)).toBe(again);
  });
});

describe('MemoryBus MMIO access', () => {
  it.each([1, 2, 4] as const)('forwards a %s-byte access with the region offset', (size) => {
    const { bus, mmio, who } = setup();
    const offset = 0x40;
    expect(bus.read(MMIO_BASE + offset, size, who)).toEqual({ ok: true, value: 0x1000_0040n });
    expect(bus.write(MMIO_BASE + offset, size, 0xaabb_ccdd_eeffn, who)).toEqual({ ok: true });
    const lowBytes = Number(BigInt.asUintN(size * 8, 0xaabb_ccdd_eeffn));
    expect(mmio.log).toEqual([
      { op: 'read', offset, size },
      { op: 'write', offset, size, value: lowBytes },
    ]);
  });

  it('splits an 8-byte read into two 4-byte reads, low half first', () => {
    const { bus, mmio, who } = setup();
    expect(bus.read(MMIO_BASE + 0x18, 8, who)).toEqual({ ok: true, value: 0x1000_001c_1000_0018n });
    expect(mmio.log).toEqual([
      { op: 'read', offset: 0x18, size: 4 },
      { op: 'read', offset: 0x1c, size: 4 },
    ]);
  });

  it('splits an 8-byte write into two 4-byte writes, low half first', () => {
    const { bus, mmio, who } = setup();
    expect(bus.write(MMIO_BASE + 0x20, 8, 0xfedc_ba98_7654_3210n, who).ok).toBe(true);
    expect(mmio.log).toEqual([
      { op: 'write', offset: 0x20, size: 4, value: 0x7654_3210 },
      { op: 'write', offset: 0x24, size: 4, value: 0xfedc_ba98 },
    ]);
  });

  it("passes a device write's DeviceID sideband to the handler (what a GIC ITS translates with)", () => {
    const { bus, mmio, who } = setup();
    bus.write(MMIO_BASE + 0x40, 4, 7, who, 0x10);
    bus.write(MMIO_BASE + 0x40, 4, 8, who);
    expect(mmio.log).toEqual([
      { op: 'write', offset: 0x40, size: 4, value: 7, deviceId: 0x10 },
      { op: 'write', offset: 0x40, size: 4, value: 8 },
    ]);
  });

  it.each([
    [2, 1],
    [4, 2],
    [8, 4],
    [4, 0x103],
  ] as const)('aborts a %s-byte access at offset %s as unaligned-mmio', (size, offset) => {
    const { bus, mmio, who } = setup();
    const addr = MMIO_BASE + offset;
    expect(bus.read(addr, size, who)).toEqual({
      ok: false,
      abort: { addr: BigInt(addr), size, write: false, reason: 'unaligned-mmio' },
    });
    expect(bus.write(addr, size, 0, who)).toEqual({
      ok: false,
      abort: { addr: BigInt(addr), size, write: true, reason: 'unaligned-mmio' },
    });
    expect(mmio.log).toEqual([]);
  });

  it('refuses byte-range copies to and from MMIO', () => {
    const { bus, mmio, who } = setup();
    expect(bus.readBytes(MMIO_BASE, 4, who)).toMatchObject({
      ok: false,
      abort: { write: false, reason: 'bulk-mmio' },
    });
    expect(bus.writeBytes(MMIO_BASE, new Uint8Array(4), who)).toMatchObject({
      ok: false,
      abort: { write: true, reason: 'bulk-mmio' },
    });
    expect(mmio.log).toEqual([]);
  });
});

describe('MemoryBus aborts', () => {
  it.each([
    ['below every region', 0x100],
    ['between regions', 0x4000_0000],
    ['just past the RAM', RAM_BASE + 16 * PAGE],
    ['beyond 2^53', 2n ** 60n],
  ])('an access %s is an unmapped abort, not an exception', (_case, addr) => {
    const { bus, who } = setup();
    expect(bus.read(addr, 4, who)).toEqual({
      ok: false,
      abort: { addr: BigInt(addr), size: 4, write: false, reason: 'unmapped' },
    });
    expect(bus.write(addr, 8, 1n, who)).toEqual({
      ok: false,
      abort: { addr: BigInt(addr), size: 8, write: true, reason: 'unmapped' },
    });
    expect(bus.readBytes(addr, 16, who)).toMatchObject({ ok: false, abort: { reason: 'unmapped' } });
    expect(bus.writeBytes(addr, new Uint8Array(16), who)).toMatchObject({
      ok: false,
      abort: { reason: 'unmapped' },
    });
  });

  it.each([
    ['RAM', RAM_BASE + 16 * PAGE - 4, 8],
    ['RAM', RAM_BASE + 16 * PAGE - 1, 2],
    ['MMIO', MMIO_BASE + PAGE - 4, 8],
  ] as const)('an access straddling the end of %s aborts', (_kind, addr, size: AccessSize) => {
    const { bus, who } = setup();
    // Map the following page so the straddle is not simply an access into nothing.
    bus.addRam('next', addr + size, PAGE);
    expect(bus.read(addr, size, who)).toMatchObject({ ok: false, abort: { reason: 'unmapped' } });
    expect(bus.write(addr, size, 0, who)).toMatchObject({ ok: false, abort: { reason: 'unmapped' } });
    expect(bus.readBytes(addr, size, who)).toMatchObject({ ok: false });
  });

  it('the straddle check also applies right after a hit on the same region', () => {
    const { bus, who } = setup();
    expect(bus.read(RAM_BASE + 16 * PAGE - 8, 8, who).ok).toBe(true);
    expect(bus.read(RAM_BASE + 16 * PAGE - 4, 8, who).ok).toBe(false);
  });

  it('an address past 2^53 (inexact as a number) is an unmapped abort', () => {
    const { bus, who } = setup();
    expect(bus.read(2 ** 53 + 2, 1, who)).toEqual({
      ok: false,
      abort: { addr: 2n ** 53n + 2n, size: 1, write: false, reason: 'unmapped' },
    });
  });

  it.each([
    ['fractional', RAM_BASE + 0.5],
    ['NaN', Number.NaN],
  ])('a %s address is no address: EINVAL, not a raw RangeError, and nothing is accessed', (_case, addr) => {
    const { bus, who } = setup();
    bus.write(RAM_BASE, 8, 0x0102_0304_0506_0708n, who);
    expect(iommufdErrorOf(() => bus.read(addr, 1, who)).code).toBe<Errno>('EINVAL');
    expect(iommufdErrorOf(() => bus.write(addr, 1, 0xff, who)).code).toBe<Errno>('EINVAL');
    expect(iommufdErrorOf(() => bus.readBytes(addr, 4, who)).code).toBe<Errno>('EINVAL');
    expect(iommufdErrorOf(() => bus.writeBytes(addr, new Uint8Array(4), who)).code).toBe<Errno>('EINVAL');
    expect(bus.read(RAM_BASE, 8, who)).toEqual({ ok: true, value: 0x0102_0304_0506_0708n });
  });

  it.each([-1, 1.5, Number.NaN])(
    'a byte-range read of length %s is EINVAL, not a raw RangeError',
    (length) => {
      const { bus, who } = setup();
      expect(iommufdErrorOf(() => bus.readBytes(RAM_BASE, length, who)).code).toBe<Errno>('EINVAL');
    },
  );

  it('an abort writes nothing to RAM', () => {
    const { bus, who } = setup();
    bus.write(RAM_BASE + 16 * PAGE - 4, 8, 0xffff_ffff_ffff_ffffn, who);
    expect(bus.allocatedBytes).toBe(0);
  });
});

describe('MemoryBus word hot path', () => {
  it('writeWords / readWords move 32-bit words through RAM', () => {
    const { bus, who } = setup();
    expect(bus.writeWords(RAM_BASE + 8, [0x11, 0xffff_ffff, 0x1234_5678, 0x99], 2, who, 1)).toBe(true);
    const out = new Uint32Array(4);
    expect(bus.readWords(RAM_BASE + 4, out, 3, who, 1)).toBe(true);
    expect([...out]).toEqual([0, 0, 0xffff_ffff, 0x1234_5678]);
    expect(bus.read(RAM_BASE + 8, 8, who)).toEqual({ ok: true, value: 0x1234_5678_ffff_ffffn });
  });

  it('readWords / writeWords on MMIO call the handler once per word', () => {
    const { bus, mmio, who } = setup();
    const out = new Uint32Array(2);
    expect(bus.readWords(MMIO_BASE + 0x10, out, 2, who)).toBe(true);
    expect([...out]).toEqual([0x1000_0010, 0x1000_0014]);
    expect(bus.writeWords(MMIO_BASE + 0x10, [1, 2], 2, who)).toBe(true);
    expect(mmio.log).toEqual([
      { op: 'read', offset: 0x10, size: 4 },
      { op: 'read', offset: 0x14, size: 4 },
      { op: 'write', offset: 0x10, size: 4, value: 1 },
      { op: 'write', offset: 0x14, size: 4, value: 2 },
    ]);
  });

  it.each([
    ['unmapped', 0x100],
    ['unaligned', RAM_BASE + 2],
    ['straddling', RAM_BASE + 16 * PAGE - 4],
  ])('returns false on a %s access and leaves the output untouched', (_case, addr) => {
    const { bus, who } = setup();
    const out = Uint32Array.of(7, 7);
    expect(bus.readWords(addr, out, 2, who)).toBe(false);
    expect([...out]).toEqual([7, 7]);
    expect(bus.writeWords(addr, [1, 2], 2, who)).toBe(false);
    expect(bus.allocatedBytes).toBe(0);
    expect(who.snapshot()).toEqual({ reads: 1, writes: 1, bytesRead: 0, bytesWritten: 0, aborts: 2 });
  });
});

describe('MemoryBus access counters', () => {
  it('returns the same counter for the same tag', () => {
    const bus = new MemoryBus();
    const walker = bus.counter('walker');
    expect(bus.counter('walker')).toBe(walker);
    expect(bus.counter('queue')).not.toBe(walker);
    expect(walker.tag).toBe('walker');
    expect(bus.listCounters().map((c) => c.tag)).toEqual(['walker', 'queue']);
  });

  it('counts reads, writes, bytes and aborts for each requester separately', () => {
    const { bus } = setup();
    const a = bus.counter('a');
    const b = bus.counter('b');
    bus.read(RAM_BASE, 8, a);
    bus.read(MMIO_BASE, 4, a);
    bus.write(RAM_BASE, 2, 1, a);
    bus.writeBytes(RAM_BASE, new Uint8Array(10), a);
    bus.readBytes(RAM_BASE, 100, a);
    bus.readWords(RAM_BASE, new Uint32Array(3), 3, a);
    bus.read(0, 4, b);
    bus.write(MMIO_BASE + 1, 4, 0, b);
    expect(a.snapshot()).toEqual({ reads: 4, writes: 2, bytesRead: 124, bytesWritten: 12, aborts: 0 });
    expect(b.snapshot()).toEqual({ reads: 1, writes: 1, bytesRead: 0, bytesWritten: 0, aborts: 2 });
    a.reset();
    expect(a.snapshot()).toEqual({ reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, aborts: 0 });
  });
});

describe('MemoryBus RAM aliases (guest RAM on host pages)', () => {
  const setup = () => {
    const host = new MemoryBus();
    host.addRam('dram', 0x8000_0000, 0x100_0000);
    const guest = new MemoryBus();
    guest.addRamAlias('vm0.ram', 0x4000_0000, 0x10_0000, { bus: host, addr: 0x8020_0000 });
    const who = host.counter('test');
    return { host, guest, who };
  };

  it('shares bytes both ways at the aliased offset, for every access width', () => {
    const { host, guest, who } = setup();
    guest.write(0x4000_0010, 4, 0xdead_beef, who);
    expect(host.read(0x8020_0010, 4, who)).toEqual({ ok: true, value: 0xdead_beefn });
    host.writeWords(0x8020_1000, Uint32Array.of(1, 2), 2, who);
    const out = new Uint32Array(2);
    expect(guest.readWords(0x4000_1000, out, 2, who)).toBe(true);
    expect(Array.from(out)).toEqual([1, 2]);
    guest.writeBytes(0x4000_2000, Uint8Array.of(9, 8, 7), who);
    expect(host.readBytes(0x8020_2000, 3, who)).toEqual({ ok: true, data: Uint8Array.of(9, 8, 7) });
  });

  it('counts the pages once (on the owner), keeps them when the alias goes, and refuses non-RAM targets', () => {
    const { host, guest, who } = setup();
    guest.write(0x4000_0000, 1, 1, who);
    expect(host.allocatedBytes).toBe(4096);
    expect(guest.allocatedBytes).toBe(0);
    guest.removeRegion('vm0.ram');
    expect(host.read(0x8020_0000, 1, who)).toEqual({ ok: true, value: 1n });
    expect(() => guest.addRamAlias('bad', 0, 0x1000, { bus: host, addr: 0x1000 })).toThrow(IommufdError);
    expect(() => guest.addRamAlias('too-long', 0, 0x200_0000, { bus: host, addr: 0x8000_0000 })).toThrow(
      /not RAM/,
    );
  });

  it('an alias of an alias reaches the owner at the combined offset', () => {
    const { host, guest, who } = setup();
    const nested = new MemoryBus();
    nested.addRamAlias('l2.ram', 0x1000_0000, 0x1000, { bus: guest, addr: 0x4000_3000 });
    nested.write(0x1000_0010, 4, 0xcafe_f00d, who);
    expect(host.read(0x8020_3010, 4, who)).toEqual({ ok: true, value: 0xcafe_f00dn });
    expect(guest.read(0x4000_3010, 4, who)).toEqual({ ok: true, value: 0xcafe_f00dn });
  });

  it('discards through the alias', () => {
    const { host, guest, who } = setup();
    host.write(0x8020_3000, 4, 5, who);
    guest.discardRam(0x4000_3000, 4096);
    expect(host.read(0x8020_3000, 4, who)).toEqual({ ok: true, value: 0n });
  });
});
