/**
 * IOMMU_HWPT_INVALIDATE (hwpt-invalidate.ts, Linux `iommufd_hwpt_invalidate`) through `IommuFd` on the
 * fake iommufd plugin, whose entries are `{ op: 'all' }` (handled) or anything else (EINVAL): the entries
 * run in order, and on the first failure the kernel returns its errno with `entry_num` = the entries
 * handled before it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { asFakeDomain, FAKE_VIOMMU_TYPE, type FakeIommufdDriver } from '../../test/fake-iommufd-plugin.js';
import { iommufdErrorOf } from '../../test/iommufd-error-of.js';
import { type IommufdRig, iommufdRig } from '../../test/iommufd-rig.js';
import { errnoOf, IommufdError } from '../errors/iommufd-error.js';

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

const ALL = { op: 'all' } as const;
const BAD = { op: 'bogus' } as const;
const driver = () => r.system.iommus[0]!.driver as FakeIommufdDriver;
const nestParent = () =>
  r.fd.hwptAlloc({ devId: r.devId0, ptId: r.fd.ioasAlloc(), flags: { nestParent: true } });

/** The two targets: a nested HWPT (VT-d style) and a vIOMMU (SMMUv3 style). */
const targets = {
  'a nested HWPT': () => r.fd.hwptAlloc({ devId: r.devId0, ptId: nestParent(), data: { tag: 1 } }),
  'a vIOMMU': () => r.fd.viommuAlloc(r.devId0, nestParent(), FAKE_VIOMMU_TYPE),
};

describe.each(Object.entries(targets))('IOMMU_HWPT_INVALIDATE on %s', (_, make) => {
  it('runs every entry and reports them all handled; zero entries is a legal probe', () => {
    const id = make();
    expect(r.fd.hwptInvalidate(id, [ALL, ALL, ALL])).toEqual({ handled: 3 });
    expect(r.fd.hwptInvalidate(id, [])).toEqual({ handled: 0 });
  });

  it('the first failing entry throws its errno with context.handled = the entries before it', () => {
    const id = make();
    const error = iommufdErrorOf(() => r.fd.hwptInvalidate(id, [ALL, ALL, BAD, ALL]));
    expect(error.code).toBe('EINVAL');
    expect(error.context.handled).toBe(2);
    // The driver's own error is the cause; its errno prefix is not repeated in the message.
    expect(error.cause).toBeInstanceOf(IommufdError);
    expect((error.cause as IommufdError).code).toBe('EINVAL');
    expect(error.message).toBe((error.cause as IommufdError).message);
    expect(iommufdErrorOf(() => r.fd.hwptInvalidate(id, [BAD])).context.handled).toBe(0);
  });

  it('entries must be an array (EINVAL)', () => {
    const id = make();
    expect(errnoOf(() => r.fd.hwptInvalidate(id, ALL as never))).toBe('EINVAL');
  });
});

describe('IOMMU_HWPT_INVALIDATE targets', () => {
  it('a paging HWPT, an IOAS or a device is EINVAL; an unknown ID ENOENT', () => {
    const ioas = r.fd.ioasAlloc();
    const paging = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const s2 = nestParent();
    for (const id of [paging, s2, ioas, r.devId0])
      expect(errnoOf(() => r.fd.hwptInvalidate(id, [ALL]))).toBe('EINVAL');
    expect(errnoOf(() => r.fd.hwptInvalidate(999, [ALL]))).toBe('ENOENT');
    expect(errnoOf(() => r.fd.hwptInvalidate(-1, [ALL]))).toBe('EINVAL');
  });

  it('a nested HWPT whose domain has no user-managed caches is EOPNOTSUPP', () => {
    const s2 = nestParent();
    const nested = r.fd.hwptAlloc({ devId: r.devId0, ptId: s2, data: { tag: 1 } });
    r.fd.attach(r.devId0, nested);
    const domain = asFakeDomain(r.system.iommuCore.domainAt(r.system.device('dev0')));
    domain.cacheInvalidateUser = undefined;
    expect(errnoOf(() => r.fd.hwptInvalidate(nested, [ALL]))).toBe('EOPNOTSUPP');
  });

  it('a vIOMMU’s entries go to the driver’s vIOMMU, not to its nested HWPTs', () => {
    const viommu = r.fd.viommuAlloc(r.devId0, nestParent(), FAKE_VIOMMU_TYPE);
    const invalidate = vi.spyOn(driver().viommus[0]!, 'cacheInvalidate');
    r.fd.hwptInvalidate(viommu, [ALL, ALL]);
    expect(invalidate).toHaveBeenCalledWith([ALL, ALL]);
  });
});
