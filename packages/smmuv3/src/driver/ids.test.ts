import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { asidAllocator, IdAllocator, vmidAllocator } from './ids.js';

describe('ASID and VMID allocation', () => {
  it('8-bit IDs: 1..255 are handed out lowest first, 0 never; then ENOSPC', () => {
    const asids = asidAllocator({ asid16: false });
    const got = Array.from({ length: 255 }, () => asids.alloc());
    expect(got[0]).toBe(1);
    expect(got.at(-1)).toBe(255);
    expect(new Set(got).size).toBe(255);
    expect(got).not.toContain(0);
    expect(errnoOf(() => asids.alloc())).toBe('ENOSPC');
    expect(asids.used).toBe(255);
  });

  it('a freed ID is reused (lowest free first)', () => {
    const vmids = vmidAllocator({ vmid16: false });
    for (let i = 0; i < 255; i++) vmids.alloc();
    vmids.free(200);
    vmids.free(7);
    expect(vmids.alloc()).toBe(7);
    expect(vmids.alloc()).toBe(200);
    expect(errnoOf(() => vmids.alloc())).toBe('ENOSPC');
  });

  it('16-bit IDs with IDR0.ASID16 / VMID16', () => {
    const asids = asidAllocator({ asid16: true });
    const vmids = vmidAllocator({ vmid16: true });
    expect([asids.name, vmids.name, asids.bits]).toEqual(['ASID', 'VMID', 16]);
    expect(asids.capacity).toBe(65535);
    expect(vmids.max).toBe(65535);
    for (let i = 0; i < 65535; i++) vmids.alloc();
    expect(errnoOf(() => vmids.alloc())).toBe('ENOSPC');
  });

  it('freeing an ID that is not allocated is EINVAL', () => {
    const ids = new IdAllocator('ASID', 8);
    expect(errnoOf(() => ids.free(3))).toBe('EINVAL');
    expect(errnoOf(() => ids.free(0))).toBe('EINVAL');
    ids.alloc();
    ids.free(1);
    expect(errnoOf(() => ids.free(1))).toBe('EINVAL');
  });

  it('has() answers only for allocated IDs in [first, max]; IDs below first or above max never are', () => {
    const ids = new IdAllocator('VMID', 8, 4);
    expect(ids.alloc()).toBe(4);
    expect([3, 4, 5, 255, 256, -1].map((id) => ids.has(id))).toEqual([
      false,
      true,
      false,
      false,
      false,
      false,
    ]);
    expect(errnoOf(() => ids.free(256))).toBe('EINVAL');
    expect(errnoOf(() => ids.free(3))).toBe('EINVAL');
  });

  it('freeing an ID above the lowest free one leaves the next allocation where it was', () => {
    const ids = new IdAllocator('ASID', 8);
    for (let i = 0; i < 5; i++) ids.alloc();
    ids.free(2);
    ids.free(4);
    expect([ids.alloc(), ids.alloc(), ids.alloc()]).toEqual([2, 4, 6]);
  });

  it('its errors name the IDs and carry their width or the ID', () => {
    const ids = new IdAllocator('VMID', 1);
    ids.alloc();
    let error: unknown;
    try {
      ids.alloc();
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      message: expect.stringContaining('all 1 1-bit VMIDs are in use'),
      context: { bits: 1 },
    });
    try {
      ids.free(9);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      message: expect.stringContaining('VMID 9 is not allocated'),
      context: { id: 9 },
    });
  });
});
