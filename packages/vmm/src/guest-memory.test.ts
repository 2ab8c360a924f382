import { errnoOf, FrameAllocator, MemoryBus } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { GUEST_RAM_BASE, GuestMemory } from './guest-memory.js';

const MiB = 2 ** 20;
const HOST_RAM = 0x8000_0000;

function host() {
  const bus = new MemoryBus();
  const ram = bus.addRam('dram', HOST_RAM, 64 * MiB);
  const memory = new FrameAllocator([ram], (base, bytes) => bus.discardRam(base, bytes));
  return { bus, memory, who: bus.counter('test') };
}

describe('GuestMemory', () => {
  it('refuses a size that is not a positive whole number of 2 MiB', () => {
    const h = host();
    for (const size of [0, -2 * MiB, MiB, 3 * MiB, 2 * MiB + 0.5, Number.MAX_SAFE_INTEGER + 1]) {
      expect(errnoOf(() => new GuestMemory('vm0', h, size))).toBe('EINVAL');
    }
    expect(h.memory.allocatedFrameCount).toBe(0);
    // The refusal is the VM's own, before the host allocator is asked for anything.
    expect(() => new GuestMemory('vm0', h, 0)).toThrow(
      'vm0: guest RAM of 0x0 bytes is not a whole number of 2 MiB',
    );
    expect(() => new GuestMemory('vm0', h, -2 * MiB)).toThrow('vm0: guest RAM of');
    expect(new GuestMemory('vm0', h, 2 * MiB).size).toBe(2 * MiB);
  });

  it('backs GPA 0x4000_0000 onward with a 2 MiB aligned host block the guest and the host share', () => {
    const h = host();
    h.memory.allocFrames(1); // push the next block off 2 MiB alignment if the allocator did not align
    const m = new GuestMemory('vm0', h, 4 * MiB);
    expect(m.bus.listRegions().map((r) => r.name)).toEqual(['vm0.ram']);
    expect([m.gpaBase, m.gpaEnd]).toEqual([GUEST_RAM_BASE, GUEST_RAM_BASE + 4 * MiB]);
    expect(Number(m.hostBase) % (2 * MiB)).toBe(0);
    expect(h.memory.allocatedFrameCount).toBe(1 + 1024);
    const who = m.bus.counter('guest');
    expect(m.bus.write(GUEST_RAM_BASE + 0x1234, 4, 0xdead_beef, who).ok).toBe(true);
    expect(h.bus.read(Number(m.hostBase) + 0x1234, 4, h.who)).toMatchObject({
      ok: true,
      value: 0xdead_beefn,
    });
    expect(m.bus.read(GUEST_RAM_BASE + 4 * MiB, 4, who).ok).toBe(false);
    expect(m.bus.read(GUEST_RAM_BASE - 4, 4, who).ok).toBe(false);
  });

  it('translates GPAs inside guest RAM to host addresses, and nothing outside', () => {
    const m = new GuestMemory('vm0', host(), 2 * MiB);
    expect(m.gpaToHpa(GUEST_RAM_BASE)).toBe(m.hostBase);
    expect(m.gpaToHpa(BigInt(GUEST_RAM_BASE + 2 * MiB - 1))).toBe(m.hostBase + BigInt(2 * MiB - 1));
    expect(m.gpaToHpa(GUEST_RAM_BASE + 2 * MiB)).toBeUndefined();
    expect(m.gpaToHpa(GUEST_RAM_BASE - 1)).toBeUndefined();
  });

  it('gives iommufd the host block as user memory', () => {
    const m = new GuestMemory('vm0', host(), 2 * MiB);
    const user = m.userMemory();
    expect(user.length).toBe(BigInt(2 * MiB));
    expect(user.physAt(0x5000n)).toBe(m.hostBase + 0x5000n);
  });

  it('the guest allocator hands out guest-physical pages inside guest RAM', () => {
    const m = new GuestMemory('vm0', host(), 2 * MiB);
    const page = Number(m.allocator.allocFrames(1));
    expect(page).toBeGreaterThanOrEqual(GUEST_RAM_BASE);
    expect(page).toBeLessThan(m.gpaEnd);
    // A page the guest frees is zeroed before it is handed out again.
    const who = m.bus.counter('guest');
    m.bus.write(page, 4, 0x1234_5678, who);
    m.allocator.freeFrames(BigInt(page) as never, 1);
    expect(Number(m.allocator.allocFrames(1))).toBe(page);
    expect(m.bus.read(page, 4, who)).toMatchObject({ ok: true, value: 0n });
  });

  it('release takes its regions off the guest bus and returns the host block, once', () => {
    const h = host();
    const m = new GuestMemory('vm0', h, 2 * MiB);
    m.bus.addRam('mmio-ish', 0x0900_0000, 0x1000);
    m.release();
    expect(m.bus.listRegions()).toEqual([]);
    expect(h.memory.allocatedFrameCount).toBe(0);
    m.release();
    expect(h.memory.allocatedFrameCount).toBe(0);
  });
});
