/**
 * `IommuFd` entry points not covered by the per-concept tests: IOAS options and ranges, dirty tracking,
 * MSI set-up without a window or an MSI controller, FAULT reads and responses, and the argument checks
 * each entry point makes before it changes anything.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  asFakeDomain,
  FAKE_SW_MSI,
  type FakeIommufdDriver,
  fakeIommufdConfig,
  fakeIommufdRegistry,
} from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig, MiB, RW } from '../../test/iommufd-rig.js';
import { type Hpa, U64_MAX } from '../address/address.js';
import { errnoOf } from '../errors/iommufd-error.js';
import { NO_PASID } from '../iommu/translation.js';
import { createSystem } from '../system/create-system.js';
import { hostMemory } from './user-memory.js';

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

const PAGE = 0x1000n;
const driver = () => r.system.iommus[0]!.driver as FakeIommufdDriver;

describe('IOAS options and ranges', () => {
  it('IOMMU_IOAS_IOVA_RANGES: a fresh IOAS has the whole space and alignment 1; a 4 KiB domain raises it', () => {
    const ioas = r.fd.ioasAlloc();
    expect(r.fd.ioasIovaRanges(ioas)).toEqual({ ranges: [{ start: 0n, last: U64_MAX }], alignment: 1n });
    r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    expect(r.fd.ioasIovaRanges(ioas).alignment).toBe(PAGE);
    expect(errnoOf(() => r.fd.ioasIovaRanges(r.devId0))).toBe('ENOENT');
  });

  it('IOMMU_OPTION_HUGE_PAGES: off raises the alignment to PAGE_SIZE, on lowers it; a non-boolean is EINVAL', () => {
    const ioas = r.fd.ioasAlloc();
    r.fd.ioasSetHugePages(ioas, false);
    expect(r.fd.ioasIovaRanges(ioas).alignment).toBe(PAGE);
    r.fd.ioasSetHugePages(ioas, true);
    expect(r.fd.ioasIovaRanges(ioas).alignment).toBe(1n);
    expect(errnoOf(() => r.fd.ioasSetHugePages(ioas, 0 as never))).toBe('EINVAL');
  });

  it('IOMMU_IOAS_ALLOW_IOVAS: automatic IOVAs come from the allowed ranges; each range must be an object', () => {
    const ioas = r.fd.ioasAlloc();
    r.fd.ioasAllowIovas(ioas, [{ start: 0x4000_0000n, last: 0x7fff_ffffn }]);
    expect(r.fd.ioasMap({ ioasId: ioas, memory: r.memory, length: PAGE, ...RW })).toBe(0x4000_0000n);
    expect(errnoOf(() => r.fd.ioasAllowIovas(ioas, [null as never]))).toBe('EINVAL');
    expect(errnoOf(() => r.fd.ioasAllowIovas(ioas, [{ start: 0n, last: 'x' as never }]))).toBe('EINVAL');
  });

  it('IOMMU_IOAS_MAP: the offset selects the memory mapped; READ/WRITE become the area’s permissions', () => {
    const ioas = r.fd.ioasAlloc();
    const hwpt = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    r.fd.attach(r.devId0, hwpt);
    r.fd.ioasMap({
      ioasId: ioas,
      memory: r.memory,
      offset: 0x3000n,
      length: PAGE,
      iova: 0x10_0000n,
      readable: true,
      writeable: false,
    });
    const domain = asFakeDomain(r.system.iommuCore.domainAt(r.system.device('dev0')));
    expect(domain.mappings.get(0x10_0000n)).toMatchObject({
      paddr: r.buffer + 0x3000n,
      size: PAGE,
      prot: { read: true, write: false },
    });
    expect(
      errnoOf(() =>
        r.fd.ioasMap({ ioasId: ioas, memory: r.memory, length: PAGE, readable: 1 as never, writeable: true }),
      ),
    ).toBe('EINVAL');
    expect(errnoOf(() => r.fd.ioasMap({ ioasId: ioas, memory: {} as never, length: PAGE, ...RW }))).toBe(
      'EINVAL',
    );
  });

  it('IOMMU_IOAS_COPY: the copy maps the same memory at the destination IOVA, with the permissions asked', () => {
    const src = r.fd.ioasAlloc();
    const dst = r.fd.ioasAlloc();
    r.fd.ioasMap({
      ioasId: src,
      memory: r.memory,
      offset: 0x2000n,
      length: 0x2000n,
      iova: 0x10_0000n,
      ...RW,
    });
    const hwpt = r.fd.hwptAlloc({ devId: r.devId0, ptId: dst });
    r.fd.attach(r.devId0, hwpt);
    const at = r.fd.ioasCopy({
      srcIoasId: src,
      dstIoasId: dst,
      srcIova: 0x10_1000n,
      length: PAGE,
      dstIova: 0x20_0000n,
      readable: true,
      writeable: false,
    });
    expect(at).toBe(0x20_0000n);
    const domain = asFakeDomain(r.system.iommuCore.domainAt(r.system.device('dev0')));
    expect(domain.iovaToPhys(0x20_0000n as never)).toBe(r.buffer + 0x3000n);
    expect(domain.mappings.get(0x20_0000n)?.prot).toEqual({ read: true, write: false });
    expect(errnoOf(() => r.fd.ioasCopy(7 as never))).toBe('EINVAL');
    expect(
      errnoOf(() =>
        r.fd.ioasCopy({ srcIoasId: src, dstIoasId: 999, srcIova: 0x10_0000n, length: PAGE, ...RW }),
      ),
    ).toBe('ENOENT');
  });
});

describe('IOMMU_HWPT_SET_DIRTY_TRACKING', () => {
  function tracked(devId = r.devId0, device = 'dev0') {
    const ioas = r.fd.ioasAlloc();
    r.fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x4000n, iova: 0x10_0000n, ...RW });
    const hwpt = r.fd.hwptAlloc({ devId, ptId: ioas, flags: { dirtyTracking: true } });
    r.fd.attach(devId, hwpt);
    const domain = asFakeDomain(r.system.iommuCore.domainAt(r.system.device(device)));
    const read = () => {
      const bitmap = new Uint8Array(1);
      r.fd.hwptGetDirtyBitmap(hwpt, {
        iova: 0x10_0000n,
        length: 0x4000n,
        pageSize: PAGE,
        bitmap,
        noClear: true,
      });
      return bitmap[0];
    };
    return { hwpt, domain, read };
  }

  it('turns the domain’s tracking on and off; pages written while off stay clean', () => {
    const { hwpt, domain, read } = tracked();
    domain.write(0x10_0000n);
    expect(read()).toBe(0);
    r.fd.hwptSetDirtyTracking(hwpt, true);
    expect(domain.tracking).toBe(true);
    domain.write(0x10_1000n);
    r.fd.hwptSetDirtyTracking(hwpt, false);
    expect(domain.tracking).toBe(false);
    domain.write(0x10_2000n);
    // Disabling keeps what was logged.
    expect(read()).toBe(0b10);
  });

  it('enabling first clears the dirty state of every mapped page', () => {
    const { hwpt, domain, read } = tracked();
    r.fd.hwptSetDirtyTracking(hwpt, true);
    domain.write(0x10_3000n);
    r.fd.hwptSetDirtyTracking(hwpt, false);
    r.fd.hwptSetDirtyTracking(hwpt, true);
    expect(read()).toBe(0);
  });

  it('a HWPT allocated without dirty tracking is EOPNOTSUPP; a nested HWPT or non-boolean is refused', () => {
    const ioas = r.fd.ioasAlloc();
    const plain = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    expect(errnoOf(() => r.fd.hwptSetDirtyTracking(plain, true))).toBe('EOPNOTSUPP');
    const { hwpt } = tracked();
    expect(errnoOf(() => r.fd.hwptSetDirtyTracking(hwpt, 1 as never))).toBe('EINVAL');
    expect(errnoOf(() => r.fd.hwptSetDirtyTracking(-1, true))).toBe('EINVAL');
    const s2 = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { nestParent: true } });
    const nested = r.fd.hwptAlloc({ devId: r.devId0, ptId: s2, data: { tag: 1 } });
    expect(errnoOf(() => r.fd.hwptSetDirtyTracking(nested, true))).toBe('ENOENT');
  });

  it('a HWPT allocated without the flag is EOPNOTSUPP even when its domain could track', () => {
    const real = driver().domainAllocPaging.bind(driver());
    vi.spyOn(driver(), 'domainAllocPaging').mockImplementation((flags) =>
      real({ ...flags, dirtyTracking: true }),
    );
    const hwpt = r.fd.hwptAlloc({ devId: r.devId0, ptId: r.fd.ioasAlloc() });
    expect(errnoOf(() => r.fd.hwptSetDirtyTracking(hwpt, true))).toBe('EOPNOTSUPP');
  });

  it('a dirty-tracking HWPT whose domain lacks the dirty operations is EOPNOTSUPP', () => {
    const { hwpt, domain } = tracked();
    domain.readAndClearDirty = undefined;
    expect(errnoOf(() => r.fd.hwptSetDirtyTracking(hwpt, true))).toBe('EOPNOTSUPP');
    const other = tracked(r.devId1, 'dev1');
    other.domain.setDirtyTracking = undefined;
    expect(errnoOf(() => r.fd.hwptSetDirtyTracking(other.hwpt, false))).toBe('EOPNOTSUPP');
  });
});

describe('MSI set-up', () => {
  it('SW MSI: a device whose IOMMU has no SW MSI window programs the doorbell address itself', () => {
    vi.spyOn(driver(), 'reservedRegions').mockReturnValue([]);
    const doorbell = 0x0800_0040n as Hpa;
    expect(r.fd.deviceSetupSwMsi(r.devId0, doorbell)).toBe(doorbell);
    expect(errnoOf(() => r.fd.deviceSetupSwMsi(r.devId0, -1n as Hpa))).toBe('EINVAL');
  });

  it('IOMMU_OPTION_SW_MSI_START/SIZE: later doorbells go to the new window', () => {
    const start = FAKE_SW_MSI.start + MiB;
    r.fd.setSwMsiWindow(start, 0x1_0000n);
    r.fd.attach(r.devId0, r.fd.ioasAlloc());
    const dev0 = r.system.device('dev0');
    const doorbell = r.system.requireMsi().doorbellFor({ name: dev0.name, deviceId: dev0.streamId });
    expect(r.fd.deviceSetupSwMsi(r.devId0, doorbell.page)).toBe(start);
    expect(errnoOf(() => r.fd.setSwMsiWindow(start, 'x' as never))).toBe('EINVAL');
  });

  it('passthrough: ENODEV on a system without an MSI controller', async () => {
    const { msi: _, ...config } = fakeIommufdConfig();
    const system = await createSystem(config, { registry: fakeIommufdRegistry() });
    const fd = system.openIommufd();
    try {
      const devId = fd.bind(system.device('dev0'));
      expect(errnoOf(() => fd.ioasMapMsi(fd.ioasAlloc(), devId, 0x4000n))).toBe('ENODEV');
    } finally {
      fd.close();
      await system.dispose();
    }
  });

  it('passthrough: the doorbell goes into the domain the device has in that IOAS, not into one of another IOAS', () => {
    const ioas = r.fd.ioasAlloc();
    const other = r.fd.ioasAlloc();
    const hwpt = r.fd.attach(r.devId0, other);
    r.fd.ioasMapMsi(ioas, r.devId0, 0x4000n);
    expect(r.fd.msiPages(hwpt)).toEqual([]);
    const mine = r.fd.attach(r.devId1, ioas);
    r.fd.ioasMapMsi(ioas, r.devId1, 0x4000n);
    expect(r.fd.msiPages(mine).map((p) => p.iovaPage)).toEqual([0x4000n]);
  });

  it('msiPages of a nested HWPT lists its stage-2 parent’s pages; of anything else ENOENT', () => {
    const ioas = r.fd.ioasAlloc();
    const s2 = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { nestParent: true } });
    const nested = r.fd.hwptAlloc({ devId: r.devId0, ptId: s2, data: { tag: 1 } });
    r.fd.attach(r.devId0, nested);
    r.fd.ioasMapMsi(ioas, r.devId0, 0x4000n);
    expect(r.fd.msiPages(nested)).toEqual(r.fd.msiPages(s2));
    expect(r.fd.msiPages(s2).map((p) => p.iovaPage)).toEqual([0x4000n]);
    expect(errnoOf(() => r.fd.msiPages(ioas))).toBe('ENOENT');
  });
});

describe('FAULT read and respond', () => {
  function faulting() {
    const ioas = r.fd.ioasAlloc();
    const fault = r.fd.faultQueueAlloc();
    const hwpt = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId: fault });
    r.fd.attach(r.devId0, hwpt);
    r.system.iommuCore.reportPageRequest(r.system.device('dev0'), {
      pasid: NO_PASID,
      iova: 0x5000n,
      access: 2,
      groupIndex: 7,
      last: true,
    });
    return fault;
  }

  it('a response by cookie goes through the driver to the device with the group’s index and the code', () => {
    const fault = faulting();
    const [record] = r.fd.faultRead(fault);
    expect(record).toMatchObject({ devId: r.devId0, addr: 0x5000n, groupId: 7, perm: 2 });
    const respond = vi.spyOn(driver(), 'pageResponse');
    r.fd.faultRespond(fault, record!.cookie, 'success');
    expect(respond).toHaveBeenCalledWith(r.system.device('dev0'), {
      pasid: NO_PASID,
      groupIndex: 7,
      code: 'success',
    });
  });

  it('a code other than success or invalid is EINVAL and answers nothing; the group can still be answered', () => {
    const fault = faulting();
    const [record] = r.fd.faultRead(fault);
    const respond = vi.spyOn(driver(), 'pageResponse');
    expect(errnoOf(() => r.fd.faultRespond(fault, record!.cookie, 'failure' as never))).toBe('EINVAL');
    expect(respond).not.toHaveBeenCalled();
    r.fd.faultRespond(fault, record!.cookie, 'invalid');
    expect(respond).toHaveBeenCalledWith(r.system.device('dev0'), {
      pasid: NO_PASID,
      groupIndex: 7,
      code: 'invalid',
    });
    expect(errnoOf(() => r.fd.faultRespond(fault, -1, 'success'))).toBe('EINVAL');
    expect(errnoOf(() => r.fd.faultRead(r.devId0))).toBe('ENOENT');
  });
});

describe('user memory', () => {
  it('IOAS_MAP of memory backed by host pages maps their physical addresses', () => {
    const ioas = r.fd.ioasAlloc();
    const hwpt = r.fd.attach(r.devId0, ioas);
    r.fd.ioasMap({
      ioasId: ioas,
      memory: hostMemory(r.buffer + 0x8000n, 0x2000n),
      length: 0x2000n,
      iova: 0x30_0000n,
      ...RW,
    });
    const domain = asFakeDomain(r.system.iommuCore.domainAt(r.system.device('dev0')));
    expect(domain.iovaToPhys(0x30_1008n as never)).toBe(r.buffer + 0x9008n);
    expect(r.fd.attachedHwpt(r.devId0)).toBe(hwpt);
  });
});
