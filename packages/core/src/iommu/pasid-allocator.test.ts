import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import { FIRST_GLOBAL_PASID, IPasidAllocator, PASID_BITS_MAX, PasidAllocator } from './pasid-allocator.js';

describe('PasidAllocator', () => {
  it('iommu_alloc_global_pasid: the lowest free PASID, from IOMMU_FIRST_GLOBAL_PASID = 1 (PASID 0 is never handed out)', () => {
    const pasids = new PasidAllocator();
    expect(FIRST_GLOBAL_PASID).toBe(1);
    expect([pasids.alloc(), pasids.alloc(), pasids.alloc()]).toEqual([1, 2, 3]);
    expect(pasids.isAllocated(0)).toBe(false);
    expect(pasids.allocated).toBe(3);
  });

  it('the default space is the 20-bit PCIe PASID space', () => {
    expect(new PasidAllocator().limit).toBe(2 ** PASID_BITS_MAX);
  });

  it('ENOSPC when [1, limit) is exhausted', () => {
    const pasids = new PasidAllocator(4);
    expect([pasids.alloc(), pasids.alloc(), pasids.alloc()]).toEqual([1, 2, 3]);
    expect(errnoOf(() => pasids.alloc())).toBe('ENOSPC');
    expect(pasids.allocated).toBe(3);
  });

  it('a freed PASID is free again, and the lowest free one is reused first', () => {
    const pasids = new PasidAllocator(8);
    for (let i = 0; i < 5; i++) pasids.alloc();
    pasids.free(4);
    pasids.free(2);
    expect(pasids.isAllocated(2)).toBe(false);
    expect(pasids.alloc()).toBe(2);
    expect(pasids.alloc()).toBe(4);
    expect(pasids.alloc()).toBe(6);
  });

  it('a PASID freed after exhaustion can be allocated again', () => {
    const pasids = new PasidAllocator(3);
    pasids.alloc();
    pasids.alloc();
    expect(errnoOf(() => pasids.alloc())).toBe('ENOSPC');
    pasids.free(1);
    expect(pasids.alloc()).toBe(1);
  });

  it.each([
    ['a PASID never allocated', 5],
    ['PASID 0', 0],
    ['a PASID freed twice', 1],
  ])('freeing %s is EINVAL', (_, pasid) => {
    const pasids = new PasidAllocator(8);
    pasids.alloc();
    if (pasid === 1) pasids.free(1);
    expect(errnoOf(() => pasids.free(pasid))).toBe('EINVAL');
  });

  it("iommu_sva_bind_device: alloc(max) honours a device's smaller PASID width ([1, max − 1])", () => {
    const pasids = new PasidAllocator(1 << 20);
    expect(pasids.alloc(4)).toBe(1);
    expect(pasids.alloc(4)).toBe(2);
    expect(pasids.alloc(4)).toBe(3);
    expect(errnoOf(() => pasids.alloc(4))).toBe('ENOSPC');
    // A wider device still gets the next free PASID of the shared space.
    expect(pasids.alloc()).toBe(4);
  });

  it('alloc(max) above the global limit is capped at the limit', () => {
    const pasids = new PasidAllocator(3);
    expect(pasids.alloc(1 << 20)).toBe(1);
    expect(pasids.alloc(1 << 20)).toBe(2);
    expect(errnoOf(() => pasids.alloc(1 << 20))).toBe('ENOSPC');
  });

  it.each([0, 1])('alloc(%i) has no PASID to give: ENOSPC', (max) => {
    expect(errnoOf(() => new PasidAllocator(16).alloc(max))).toBe('ENOSPC');
  });

  it('property: alloc always returns the lowest PASID ≥ 1 not in use, whatever was freed before', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('alloc' as const), max: fc.option(fc.integer({ min: 0, max: 20 })) }),
      fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const limit = 16;
        const pasids = new PasidAllocator(limit);
        const used = new Set<number>();
        for (const s of steps) {
          if (s.kind === 'alloc') {
            const end = Math.min(s.max ?? limit, limit);
            let expected: number | undefined;
            for (let p = 1; p < end && expected === undefined; p++) if (!used.has(p)) expected = p;
            if (expected === undefined) {
              expect(errnoOf(() => pasids.alloc(s.max ?? undefined))).toBe('ENOSPC');
            } else {
              expect(pasids.alloc(s.max ?? undefined)).toBe(expected);
              used.add(expected);
            }
          } else if (used.size > 0) {
            const pasid = [...used][s.pick % used.size]!;
            pasids.free(pasid);
            used.delete(pasid);
          }
          expect(pasids.allocated).toBe(used.size);
        }
      }),
    );
  });
});

describe('PasidAllocator errors and token', () => {
  const thrown = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it('ENOSPC says how many PASIDs are allocated; EINVAL names the PASID freed', () => {
    const pasids = new PasidAllocator(3);
    pasids.alloc();
    pasids.alloc();
    expect(thrown(() => pasids.alloc())).toMatchObject({ code: 'ENOSPC', context: { allocated: 2 } });
    expect(thrown(() => pasids.free(7))).toMatchObject({ code: 'EINVAL', context: { pasid: 7 } });
  });

  it('its DI token is the global symbol iommukit.PasidAllocator (every copy of the core shares it)', () => {
    expect(IPasidAllocator).toBe(Symbol.for('iommukit.PasidAllocator'));
  });
});
