/** HWPT_ALLOC (hwpt-alloc.ts) through `IommuFd`: what a HWPT allocated with a fault ID sends to its FAULT queue. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  asFakeDomain,
  FAKE_VIOMMU_TYPE,
  type FakeIommufdDriver,
  fakeIommufdConfig,
  fakeIommufdRegistry,
} from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig, RW } from '../../test/iommufd-rig.js';
import { iova } from '../address/address.js';
import { errnoOf } from '../errors/iommufd-error.js';
import { NO_PASID } from '../iommu/translation.js';
import { createSystem } from '../system/create-system.js';

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

describe('HWPT_ALLOC with IOMMU_HWPT_FAULT_ID_VALID', () => {
  it('each I/O page fault record names the dev_id of the device that faulted (struct iommu_hwpt_pgfault.dev_id)', () => {
    const { fd, system } = r;
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x1000n, iova: 0x10_0000n, ...RW });
    const faultId = fd.faultQueueAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId });
    fd.attach(r.devId0, hwpt);
    fd.attach(r.devId1, hwpt);
    const fault = (device: string, iova: bigint) =>
      system.iommuCore.reportPageRequest(system.device(device), {
        pasid: NO_PASID,
        iova,
        access: 1,
        groupIndex: 0,
        last: true,
      });
    fault('dev1', 0x20_0000n);
    fault('dev0', 0x30_0000n);
    expect(fd.faultRead(faultId).map((f) => [f.devId, f.addr])).toEqual([
      [r.devId1, 0x20_0000n],
      [r.devId0, 0x30_0000n],
    ]);
  });
});

describe('HWPT_ALLOC flags', () => {
  /** A nest-parent HWPT on an IOAS with one page mapped. */
  const nestParent = () => {
    const ioas = r.fd.ioasAlloc();
    r.fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x1000n, iova: 0x10_0000n, ...RW });
    return r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { nestParent: true } });
  };

  it('IOMMU_HWPT_ALLOC_PASID: only a HWPT allocated with it, paging or nested, attaches at a PASID', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const plain = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const pasid = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    expect(errnoOf(() => fd.attach(r.devId0, plain, 1))).toBe('EINVAL');
    expect(fd.attach(r.devId0, pasid, 1)).toBe(pasid);
    fd.detach(r.devId0, 1);
    const s2 = nestParent();
    const nested = fd.hwptAlloc({ devId: r.devId0, ptId: s2, data: { tag: 1 } });
    const nestedPasid = fd.hwptAlloc({ devId: r.devId0, ptId: s2, data: { tag: 2 }, flags: { pasid: true } });
    expect(errnoOf(() => fd.attach(r.devId0, nested, 1))).toBe('EINVAL');
    expect(fd.attach(r.devId0, nestedPasid, 1)).toBe(nestedPasid);
  });

  it('a dirty-tracking HWPT needs an IOMMU with dirty tracking (EOPNOTSUPP), and nothing is left behind', () => {
    const { fd, system } = r;
    const ioas = fd.ioasAlloc();
    const driver = system.iommus[0]!.driver;
    const hwInfo = driver.hwInfo.bind(driver);
    Object.defineProperty(driver, 'hwInfo', {
      value: (device: never) => {
        const info = hwInfo(device);
        return { ...info, capabilities: { ...info.capabilities, dirtyTracking: false } };
      },
    });
    const before = fd.objects();
    expect(errnoOf(() => fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { dirtyTracking: true } }))).toBe(
      'EOPNOTSUPP',
    );
    expect(fd.objects()).toEqual(before);
    expect(fd.hwptAlloc({ devId: r.devId0, ptId: ioas })).toBeGreaterThan(0);
  });
});

describe('HWPT_ALLOC: what a HWPT holds and what a failure leaves', () => {
  const fakeDriver = () => r.system.iommus[0]!.driver as FakeIommufdDriver;

  it('a paging HWPT is filled with the IOAS’s areas and holds the IOAS', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x2000n, iova: 0x10_0000n, ...RW });
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, hwpt);
    const domain = asFakeDomain(r.system.iommuCore.domainAt(r.system.device('dev0')));
    expect(domain.iovaToPhys(iova(0x10_1000n))).toBe(r.buffer + 0x1000n);
    expect(fd.objects().find((o) => o.id === ioas)?.users).toBe(2);
  });

  it('a domain the IOAS refuses (its aperture misses an allowed range: EADDRINUSE) is freed again', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    fd.ioasAllowIovas(ioas, [{ start: 1n << 50n, last: (1n << 50n) + 0xfffn }]);
    const domains = fakeDriver().domains.size;
    expect(errnoOf(() => fd.hwptAlloc({ devId: r.devId0, ptId: ioas }))).toBe('EADDRINUSE');
    expect(fakeDriver().domains.size).toBe(domains);
    expect(fd.objects().map((o) => o.type)).toEqual(['device', 'device', 'ioas']);
  });

  it('the driver allocates a nested domain for the device the HWPT is allocated through', () => {
    const { fd, system } = r;
    const s2 = fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { nestParent: true } });
    const driver = system.iommus[0]!.driver as FakeIommufdDriver;
    fd.hwptAlloc({ devId: r.devId1, ptId: s2, data: { tag: 1 } });
    expect([...driver.nestedFor.values()].map((d) => d.name)).toEqual(['dev1']);
  });

  it('a nested HWPT on a nest parent holds the parent; one on a vIOMMU holds the vIOMMU', () => {
    const { fd } = r;
    const users = (id: number) => fd.objects().find((o) => o.id === id)?.users;
    const s2 = fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { nestParent: true } });
    const nested = fd.hwptAlloc({ devId: r.devId0, ptId: s2, data: { tag: 1 } });
    expect(users(s2)).toBe(2);
    const viommu = fd.viommuAlloc(r.devId0, s2, FAKE_VIOMMU_TYPE);
    expect(users(s2)).toBe(3);
    const viaViommu = fd.hwptAlloc({ devId: r.devId0, ptId: viommu, data: { tag: 2 } });
    expect(users(viommu)).toBe(2);
    expect(users(s2)).toBe(3);
    expect(errnoOf(() => fd.destroy(viommu))).toBe('EBUSY');
    fd.destroy(viaViommu);
    fd.destroy(viommu);
    fd.destroy(nested);
    expect(users(s2)).toBe(1);
  });

  it('a nested HWPT for a device behind another IOMMU than its nest parent is EINVAL', async () => {
    const config = fakeIommufdConfig();
    const two = await createSystem(
      {
        ...config,
        iommus: [...(config.iommus as object[]), { name: 'iommu1', base: '0x0a00_0000' }],
        devices: [...(config.devices as object[]), { name: 'dev2', rid: '00:04.0', iommu: 'iommu1' }],
      },
      { registry: fakeIommufdRegistry() },
    );
    const fd = two.openIommufd();
    try {
      const dev0 = fd.bind(two.device('dev0'));
      const dev2 = fd.bind(two.device('dev2'));
      const s2 = fd.hwptAlloc({ devId: dev0, ptId: fd.ioasAlloc(), flags: { nestParent: true } });
      expect(errnoOf(() => fd.hwptAlloc({ devId: dev2, ptId: s2, data: { tag: 1 } }))).toBe('EINVAL');
      expect(fd.objects().some((o) => o.type === 'hwpt-nested')).toBe(false);
    } finally {
      fd.close();
      await two.dispose();
    }
  });

  it('an auto HWPT is never a nest parent (EINVAL), even for vendor data', () => {
    const { fd } = r;
    const auto = fd.attach(r.devId0, fd.ioasAlloc());
    expect(errnoOf(() => fd.hwptAlloc({ devId: r.devId0, ptId: auto, data: { tag: 1 } }))).toBe('EINVAL');
  });

  it('a fault queue ID that does not exist (ENOENT) leaves no HWPT and no domain behind', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const domains = fakeDriver().domains.size;
    expect(errnoOf(() => fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId: ioas }))).toBe('ENOENT');
    expect(fakeDriver().domains.size).toBe(domains);
    expect(fd.objects().find((o) => o.id === ioas)?.users).toBe(1);
  });

  it('the HWPT holds its FAULT object (EBUSY) and routes its domain’s faults there; destroying it releases the FAULT', () => {
    const { fd, system } = r;
    const ioas = fd.ioasAlloc();
    const faultId = fd.faultQueueAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId });
    expect(errnoOf(() => fd.destroy(faultId))).toBe('EBUSY');
    fd.attach(r.devId0, hwpt);
    const request = { pasid: NO_PASID, iova: 0x7000n, access: 1, groupIndex: 1, last: true };
    system.iommuCore.reportPageRequest(system.device('dev0'), request);
    expect(fd.faultRead(faultId).map((f) => f.addr)).toEqual([0x7000n]);
    fd.detach(r.devId0);
    fd.destroy(hwpt);
    fd.destroy(faultId);
    expect(fd.objects().map((o) => o.type)).toEqual(['device', 'device', 'ioas']);
  });
});
