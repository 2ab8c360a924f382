/** The nested domain and its uAPI checks (nested-domain.ts), alone: data, entries, the domain's contract. */
import { errnoOf, IommufdError } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { FLPM } from '../hw/pasid-entry.js';
import {
  checkInvalidation,
  checkVtdS1Data,
  type NestedDomainHost,
  VTD_INV_ALL_PAGES,
  VTD_INV_FLAGS_LEAF,
  VTD_S1,
  VtdNestedDomain,
} from './nested-domain.js';
import type { VtdPagingDomain } from './paging-domain.js';

const messageOf = (f: () => unknown) => {
  try {
    f();
  } catch (error) {
    return (error as Error).message;
  }
  return 'no error';
};

function domain(addrWidth = 48, flags = 0n, host: Partial<NestedDomainHost> = {}) {
  const released: VtdNestedDomain[] = [];
  const invalidated: unknown[] = [];
  const d = new VtdNestedDomain(
    12,
    7,
    {} as VtdPagingDomain,
    { flags, pgtblAddr: 0x4000_1234n, addrWidth },
    {
      invalidate: (_, inv) => invalidated.push(inv),
      release: (x) => released.push(x),
      ...host,
    },
  );
  return { d, released, invalidated };
}

describe('checkVtdS1Data (struct iommu_hwpt_vtd_s1)', () => {
  it('takes flags, the root GPA and the width as numbers or bigints; each bad field is named', () => {
    expect(checkVtdS1Data({ pgtblAddr: 0x1000, addrWidth: 57, flags: 5 })).toEqual({
      flags: 5n,
      pgtblAddr: 0x1000n,
      addrWidth: 57,
    });
    expect(checkVtdS1Data({ pgtblAddr: 0x1000n, addrWidth: 48 }).flags).toBe(0n);
    expect(messageOf(() => checkVtdS1Data('data'))).toContain('iommu_hwpt_vtd_s1 must be');
    expect(messageOf(() => checkVtdS1Data({ addrWidth: 48 }))).toContain('iommu_hwpt_vtd_s1.pgtbl_addr');
    expect(messageOf(() => checkVtdS1Data({ pgtblAddr: 0, addrWidth: -1 }))).toContain(
      'iommu_hwpt_vtd_s1.addr_width',
    );
    expect(messageOf(() => checkVtdS1Data({ pgtblAddr: 0, addrWidth: 48, flags: 'x' }))).toContain(
      'iommu_hwpt_vtd_s1.flags',
    );
    expect(errnoOf(() => checkVtdS1Data({ pgtblAddr: 0, addrWidth: 48, flags: 8 }))).toBe('EOPNOTSUPP');
  });
});

describe('checkInvalidation (struct iommu_hwpt_vtd_s1_invalidate)', () => {
  it('a range, LEAF as the hint; 2^64 − 1 pages at 0, or a range past 2^57, is everything', () => {
    expect(checkInvalidation({ addr: 0x2000, npages: 3 })).toEqual({
      addr: 0x2000,
      pages: 3,
      leafOnly: false,
    });
    expect(checkInvalidation({ addr: 0x2000n, npages: 1n, flags: VTD_INV_FLAGS_LEAF })).toMatchObject({
      leafOnly: true,
    });
    expect(checkInvalidation({ addr: 0, npages: VTD_INV_ALL_PAGES })).toEqual({
      addr: 0,
      pages: undefined,
      leafOnly: false,
    });
    // Up to 2^57 exactly is a range; one page more is the whole space.
    const last = 2n ** 57n - 4096n;
    expect(checkInvalidation({ addr: last, npages: 1 })).toMatchObject({ addr: Number(last), pages: 1 });
    expect(checkInvalidation({ addr: last, npages: 2 })).toMatchObject({ addr: 0, pages: undefined });
  });

  it('refuses in Linux order, naming the field', () => {
    expect(errnoOf(() => checkInvalidation({ addr: 0x800, npages: 1, flags: 2 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => checkInvalidation({ addr: 0x800, npages: 1, reserved: 1 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => checkInvalidation({ addr: 0x800, npages: 1 }))).toBe('EINVAL');
    expect(errnoOf(() => checkInvalidation({ addr: 0x1000, npages: VTD_INV_ALL_PAGES }))).toBe('EINVAL');
    expect(messageOf(() => checkInvalidation(null))).toContain('iommu_hwpt_vtd_s1_invalidate must be');
    expect(messageOf(() => checkInvalidation({ addr: 0, npages: 1, flags: -1 }))).toContain('.flags');
    expect(messageOf(() => checkInvalidation({ addr: 0, npages: 1, reserved: -1 }))).toContain('.__reserved');
    expect(messageOf(() => checkInvalidation({ npages: 1 }))).toContain('iommu_hwpt_vtd_s1_invalidate.addr');
    expect(messageOf(() => checkInvalidation({ addr: 0 }))).toContain('iommu_hwpt_vtd_s1_invalidate.npages');
  });
});

describe('VtdNestedDomain', () => {
  it('is a nested domain over the lower canonical half of its width, with no table of its own', () => {
    const { d } = domain(48);
    expect(d.type).toBe('nested');
    expect(d.pgsizeBitmap).toBe(0n);
    expect(d.aperture).toEqual({ start: 0n, end: 2n ** 47n - 1n });
    expect(domain(57).d.aperture.end).toBe(2n ** 56n - 1n);
    expect(errnoOf(() => d.map())).toBe('EOPNOTSUPP');
    expect(errnoOf(() => d.unmap())).toBe('EOPNOTSUPP');
    expect(d.iovaToPhys()).toBeUndefined();
    d.iotlbSync();
  });

  it('the first-stage fields of its PASID entry, judged as Linux judges them at attach', () => {
    const all = VTD_S1.SRE | VTD_S1.WPE | VTD_S1.EAFE;
    expect(domain(57, all).d.s1Config({ fl5lp: true })).toEqual({
      fsptptr: 0x4000_1000,
      flpm: FLPM.LEVEL_5,
      sre: true,
      wpe: true,
      eafe: true,
    });
    expect(domain(48, VTD_S1.WPE).d.s1Config({ fl5lp: false })).toEqual({
      fsptptr: 0x4000_1000,
      flpm: FLPM.LEVEL_4,
      sre: false,
      wpe: true,
      eafe: false,
    });
    expect(errnoOf(() => domain(57).d.s1Config({ fl5lp: false }))).toBe('EINVAL');
    expect(errnoOf(() => domain(39).d.s1Config({ fl5lp: true }))).toBe('EINVAL');
  });

  it('user invalidation stops at the first bad entry; a host error of another kind is thrown', () => {
    const { d, invalidated } = domain();
    expect(
      d.cacheInvalidateUser([
        { addr: 0, npages: 1 },
        { addr: 1, npages: 1 },
        { addr: 0, npages: 1 },
      ]),
    ).toMatchObject({
      handled: 1,
      error: { code: 'EINVAL' },
    });
    expect(invalidated).toHaveLength(1);
    const failing = domain(48, 0n, {
      invalidate: () => {
        throw new TypeError('a bug');
      },
    });
    expect(() => failing.d.cacheInvalidateUser([{ addr: 0, npages: 1 }])).toThrow(TypeError);
  });

  it('free: EBUSY while attached, released once, and a freed domain takes no invalidation', () => {
    const { d, released } = domain();
    d.attachments = 1;
    const busy = messageOf(() => d.free());
    expect(busy).toContain('still attached');
    expect(errnoOf(() => d.free())).toBe('EBUSY');
    try {
      d.free();
    } catch (error) {
      expect((error as IommufdError).context).toEqual({ domain: 12 });
    }
    expect(d.isFreed).toBe(false);
    d.attachments = 0;
    d.free();
    d.free();
    expect(released).toEqual([d]);
    expect(d.isFreed).toBe(true);
    const result = d.cacheInvalidateUser([{ addr: 0, npages: 1 }]);
    expect(result.handled).toBe(0);
    expect(result.error).toBeInstanceOf(IommufdError);
    expect(result.error?.code).toBe('ENOENT');
  });
});
