/**
 * Attach, replace and detach (device.ts, Linux `iommufd_device_attach/replace/detach`) driven through
 * `IommuFd` on the fake iommufd plugin: what the device ends up attached to, the references each
 * attachment holds, the device's reserved regions in the IOAS, and the errno of each misuse.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  FAKE_SW_MSI,
  type FakeIommufdDriver,
  fakeIommufdConfig,
  fakeIommufdPlugin,
  fakeIommufdRegistry,
} from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig, RW } from '../../test/iommufd-rig.js';
import { U64_MAX } from '../address/address.js';
import { errnoOf, IommufdError } from '../errors/iommufd-error.js';
import type { ReservedRegion } from '../iommu/driver.js';
import { NO_PASID } from '../iommu/translation.js';
import { PluginRegistry } from '../plugin/plugin-registry.js';
import { createSystem } from '../system/create-system.js';

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

const driver = () => r.system.iommus[0]!.driver as FakeIommufdDriver;
const dev = (name: string) => r.system.device(name);
/** The domain the core has at the device's RID or PASID. */
const domainAt = (name: string, pasid = NO_PASID) => r.system.iommuCore.domainAt(dev(name), pasid);
const usersOf = (id: number) => r.fd.objects().find((o) => o.id === id)?.users;
const idsOf = (type: string) =>
  r.fd
    .objects()
    .filter((o) => o.type === type)
    .map((o) => o.id);
/** IOVA_RANGES of an IOAS without HWPTs, and of one with a fake domain (48-bit aperture) on it. */
const WHOLE_SPACE = [{ start: 0n, last: U64_MAX }];
const APERTURE = [{ start: 0n, last: (1n << 48n) - 1n }];
/** IOVA_RANGES of an IOAS with a fake domain and a device attached: its SW MSI window is reserved. */
const AROUND_SW_MSI = [
  { start: 0n, last: FAKE_SW_MSI.start - 1n },
  { start: FAKE_SW_MSI.start + FAKE_SW_MSI.length, last: (1n << 48n) - 1n },
];

/** What the error thrown by `fn` is (an IommufdError), for its code and context. */
function errorOf(fn: () => unknown): IommufdError {
  try {
    fn();
  } catch (error) {
    if (error instanceof IommufdError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

describe('attach at the RID', () => {
  it('a paging HWPT: the core attaches its domain; the HWPT and the device each gain a user', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    expect(usersOf(r.devId0)).toBe(2); // the table and the binding
    expect(fd.attach(r.devId0, hwpt)).toBe(hwpt);
    expect(fd.attachedHwpt(r.devId0)).toBe(hwpt);
    expect(domainAt('dev0')?.type).toBe('paging');
    expect(usersOf(hwpt)).toBe(2);
    expect(usersOf(r.devId0)).toBe(3);
    expect(errnoOf(() => fd.destroy(hwpt))).toBe('EBUSY');
  });

  it('attaching where a HWPT is attached is EBUSY and changes nothing (use replace)', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const a = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const b = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, a);
    const domain = domainAt('dev0');
    const error = errorOf(() => fd.attach(r.devId0, b));
    expect(error.code).toBe('EBUSY');
    expect(error.context).toMatchObject({ device: 'dev0', devId: r.devId0, pasid: undefined });
    expect(domainAt('dev0')).toBe(domain);
    expect(fd.attachedHwpt(r.devId0)).toBe(a);
    expect(usersOf(b)).toBe(1);
    expect(usersOf(r.devId0)).toBe(3);
  });

  it('the device’s reserved regions (the SW MSI window) are reserved in the HWPT’s IOAS while attached', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
    fd.attach(r.devId0, hwpt);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(AROUND_SW_MSI);
    expect(
      errnoOf(() =>
        fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x1000n, iova: FAKE_SW_MSI.start, ...RW }),
      ),
    ).toBe('EINVAL');
    fd.detach(r.devId0);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
  });

  it('an IOAS with an area over the SW MSI window cannot take the device (EADDRINUSE); nothing is attached or reserved', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x1000n, iova: FAKE_SW_MSI.start, ...RW });
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    expect(errnoOf(() => fd.attach(r.devId0, hwpt))).toBe('EADDRINUSE');
    expect(domainAt('dev0')?.type).toBe('blocked');
    expect(fd.attachedHwpt(r.devId0)).toBeUndefined();
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
    expect(usersOf(hwpt)).toBe(1);
    expect(usersOf(r.devId0)).toBe(2);
  });

  it('a driver refusal leaves the device blocked, unreserved and unreferenced', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    vi.spyOn(driver(), 'attachDev').mockImplementationOnce(() => {
      throw new IommufdError('ENOMEM', 'no memory');
    });
    expect(errnoOf(() => fd.attach(r.devId0, hwpt))).toBe('ENOMEM');
    expect(domainAt('dev0')?.type).toBe('blocked');
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
    expect(usersOf(hwpt)).toBe(1);
    expect(usersOf(r.devId0)).toBe(2);
  });

  it('a dirty-tracking HWPT needs a device whose IOMMU tracks dirty pages (EINVAL)', () => {
    const { fd } = r;
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { dirtyTracking: true } });
    const info = driver().hwInfo();
    vi.spyOn(driver(), 'hwInfo').mockReturnValue({
      ...info,
      capabilities: { ...info.capabilities, dirtyTracking: false },
    });
    expect(errnoOf(() => fd.attach(r.devId0, hwpt))).toBe('EINVAL');
    expect(domainAt('dev0')?.type).toBe('blocked');
  });

  it('a HWPT of another IOMMU is EINVAL', async () => {
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
      const ioas = fd.ioasAlloc();
      const hwpt = fd.hwptAlloc({ devId: dev0, ptId: ioas });
      expect(errnoOf(() => fd.attach(dev2, hwpt))).toBe('EINVAL');
      expect(two.iommuCore.domainAt(two.device('dev2'))?.type).toBe('blocked');
      // Auto HWPTs: the first one of the IOAS is iommu0's, so dev2 gets one of its own.
      const auto0 = fd.attach(dev0, ioas);
      const auto2 = fd.attach(dev2, ioas);
      expect(auto2).not.toBe(auto0);
      expect(fd.objects().filter((o) => o.type === 'hwpt-paging')).toHaveLength(3);
    } finally {
      fd.close();
      await two.dispose();
    }
  });
});

describe('a paging HWPT across instances (capabilities.crossInstanceDomains)', () => {
  it('reaches the other instance’s driver, which decides', async () => {
    const config = fakeIommufdConfig();
    const sharing = {
      ...fakeIommufdPlugin,
      capabilities: { ...fakeIommufdPlugin.capabilities, crossInstanceDomains: true },
    };
    const two = await createSystem(
      {
        ...config,
        msi: { controller: 'none' },
        iommus: [...(config.iommus as object[]), { name: 'iommu1', base: '0x0a00_0000' }],
        devices: [...(config.devices as object[]), { name: 'dev2', rid: '00:04.0', iommu: 'iommu1' }],
      },
      { registry: new PluginRegistry({ 'fake-iommufd': async () => ({ default: sharing }) }) },
    );
    const fd = two.openIommufd();
    try {
      const dev0 = fd.bind(two.device('dev0'));
      const dev2 = fd.bind(two.device('dev2'));
      const hwpt = fd.hwptAlloc({ devId: dev0, ptId: fd.ioasAlloc() });
      const attachDev = vi.spyOn(two.iommu('iommu1').driver, 'attachDev');
      // The fake driver accepts only its own domains: the EINVAL is its answer, not the core's.
      expect(errnoOf(() => fd.attach(dev2, hwpt))).toBe('EINVAL');
      expect(attachDev).toHaveBeenCalledTimes(1);
      expect(attachDev.mock.calls[0]![1]).toBe(two.device('dev2'));
      fd.attach(dev0, hwpt);
      attachDev.mockImplementationOnce(() => {});
      fd.attach(dev2, hwpt);
      expect(two.iommuCore.domainAt(two.device('dev2'))).toBe(two.iommuCore.domainAt(two.device('dev0')));
    } finally {
      fd.close();
      await two.dispose();
    }
  });
});

describe('attach to an IOAS: auto HWPTs (iommufd_device_auto_get_domain)', () => {
  it('the first device gets a new auto HWPT, the next compatible one reuses it; it goes with its last device', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const auto = fd.attach(r.devId0, ioas);
    expect(idsOf('hwpt-paging')).toEqual([auto]);
    expect(fd.attach(r.devId1, ioas)).toBe(auto);
    expect(usersOf(auto)).toBe(3);
    expect(domainAt('dev1')).toBe(domainAt('dev0'));
    fd.detach(r.devId0);
    expect(idsOf('hwpt-paging')).toEqual([auto]);
    const domains = driver().domains.size;
    fd.detach(r.devId1);
    expect(idsOf('hwpt-paging')).toEqual([]);
    expect(driver().domains.size).toBe(domains - 1);
    expect(usersOf(ioas)).toBe(1);
  });

  it('a HWPT allocated by the user on the IOAS is never picked', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const manual = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const auto = fd.attach(r.devId0, ioas);
    expect(auto).not.toBe(manual);
    expect(usersOf(manual)).toBe(1);
  });

  it('an auto HWPT the driver refuses with EINVAL is skipped: the device gets a new one', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const first = fd.attach(r.devId0, ioas);
    vi.spyOn(driver(), 'attachDev').mockImplementationOnce(() => {
      throw new IommufdError('EINVAL', 'incompatible');
    });
    const second = fd.attach(r.devId1, ioas);
    expect(second).not.toBe(first);
    expect(idsOf('hwpt-paging')).toEqual([first, second]);
    expect(domainAt('dev1')).not.toBe(domainAt('dev0'));
  });

  it('any other refusal of an existing auto HWPT fails the attach; no new HWPT is made', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const first = fd.attach(r.devId0, ioas);
    vi.spyOn(driver(), 'attachDev').mockImplementationOnce(() => {
      throw new IommufdError('ENOMEM', 'no memory');
    });
    expect(errnoOf(() => fd.attach(r.devId1, ioas))).toBe('ENOMEM');
    expect(idsOf('hwpt-paging')).toEqual([first]);
    expect(domainAt('dev1')?.type).toBe('blocked');
  });

  it('when the new auto HWPT cannot be attached it is destroyed again, domain and all', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const domains = driver().domains.size;
    vi.spyOn(driver(), 'attachDev').mockImplementationOnce(() => {
      throw new IommufdError('ENOMEM', 'no memory');
    });
    expect(errnoOf(() => fd.attach(r.devId0, ioas))).toBe('ENOMEM');
    expect(idsOf('hwpt-paging')).toEqual([]);
    expect(driver().domains.size).toBe(domains);
    expect(usersOf(ioas)).toBe(1);
  });

  it('an IOAS cannot be attached at a PASID (auto HWPTs are not PASID-compatible): EINVAL', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    expect(errnoOf(() => fd.attach(r.devId0, ioas, 1))).toBe('EINVAL');
    expect(fd.objects().filter((o) => o.type === 'hwpt-paging')).toEqual([]);
  });
});

describe('attach at a PASID', () => {
  const pasidHwpt = (ioas = r.fd.ioasAlloc()) =>
    r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });

  it('the domain goes to that PASID only; the RID stays blocked', () => {
    const { fd } = r;
    const hwpt = pasidHwpt();
    expect(fd.attach(r.devId0, hwpt, 5)).toBe(hwpt);
    expect(r.system.iommuCore.attachedPasids(dev('dev0'))).toEqual([5]);
    expect(domainAt('dev0', 5)?.type).toBe('paging');
    expect(domainAt('dev0')?.type).toBe('blocked');
    expect(fd.attachedHwpt(r.devId0, 5)).toBe(hwpt);
    expect(fd.attachedHwpt(r.devId0)).toBeUndefined();
    expect(usersOf(r.devId0)).toBe(3);
  });

  it('a PASID attachment reserves nothing in the IOAS', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    fd.attach(r.devId0, pasidHwpt(ioas), 1);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
  });

  it('the PASID must fit the device’s width (8 bits on dev0): 255 attaches, 256 is EINVAL', () => {
    const { fd } = r;
    const hwpt = pasidHwpt();
    const error = errorOf(() => fd.attach(r.devId0, hwpt, 256));
    expect(error.code).toBe('EINVAL');
    expect(error.context).toMatchObject({ device: 'dev0', devId: r.devId0, pasid: 256 });
    expect(fd.attach(r.devId0, hwpt, 255)).toBe(hwpt);
    expect(fd.attach(r.devId0, hwpt, 0)).toBe(hwpt);
    expect(r.system.iommuCore.attachedPasids(dev('dev0')).sort()).toEqual([0, 255]);
  });

  it('a device without the PASID capability is EINVAL at any PASID', () => {
    const hwpt = pasidHwpt();
    expect(errnoOf(() => r.fd.attach(r.devId1, hwpt, 0))).toBe('EINVAL');
    expect(r.system.iommuCore.attachedPasids(dev('dev1'))).toEqual([]);
  });

  it('a driver without PASID attach is EOPNOTSUPP', () => {
    const hwpt = pasidHwpt();
    Object.defineProperty(driver(), 'setDevPasid', { value: undefined });
    expect(errnoOf(() => r.fd.attach(r.devId0, hwpt, 1))).toBe('EOPNOTSUPP');
  });

  it('attaching at an attached PASID is EBUSY', () => {
    const { fd } = r;
    const a = pasidHwpt();
    const b = pasidHwpt();
    fd.attach(r.devId0, a, 3);
    expect(errnoOf(() => fd.attach(r.devId0, b, 3))).toBe('EBUSY');
    expect(fd.attachedHwpt(r.devId0, 3)).toBe(a);
    expect(fd.attach(r.devId0, b, 4)).toBe(b);
  });

  it('the RID’s HWPT must be PASID-compatible too (EINVAL)', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    fd.attach(r.devId0, fd.hwptAlloc({ devId: r.devId0, ptId: ioas }));
    expect(errnoOf(() => fd.attach(r.devId0, pasidHwpt(), 1))).toBe('EINVAL');
    fd.replace(r.devId0, pasidHwpt(ioas));
    expect(fd.attach(r.devId0, pasidHwpt(), 1)).toBeGreaterThan(0);
  });

  it('with a PASID attached the RID takes only a PASID-compatible HWPT (EINVAL), by attach or replace', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const plain = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const compat = pasidHwpt(ioas);
    fd.attach(r.devId0, pasidHwpt(), 1);
    expect(errnoOf(() => fd.attach(r.devId0, plain))).toBe('EINVAL');
    expect(errnoOf(() => fd.attach(r.devId0, ioas))).toBe('EINVAL');
    expect(domainAt('dev0')?.type).toBe('blocked');
    fd.attach(r.devId0, compat);
    expect(errnoOf(() => fd.replace(r.devId0, plain))).toBe('EINVAL');
    expect(fd.attachedHwpt(r.devId0)).toBe(compat);
    fd.detach(r.devId0, 1);
    expect(fd.replace(r.devId0, plain)).toBe(plain);
  });
});

describe('replace', () => {
  it('needs an attachment at that PASID (EINVAL)', () => {
    const { fd } = r;
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { pasid: true } });
    expect(errnoOf(() => fd.replace(r.devId0, hwpt))).toBe('EINVAL');
    fd.attach(r.devId0, hwpt);
    expect(errnoOf(() => fd.replace(r.devId0, hwpt, 1))).toBe('EINVAL');
    expect(fd.attachedHwpt(r.devId0, 1)).toBeUndefined();
  });

  it('to the attached HWPT is a no-op: no driver call, no new reference', () => {
    const { fd } = r;
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc() });
    fd.attach(r.devId0, hwpt);
    const attachDev = vi.spyOn(driver(), 'attachDev');
    expect(fd.replace(r.devId0, hwpt)).toBe(hwpt);
    expect(attachDev).not.toHaveBeenCalled();
    expect(usersOf(hwpt)).toBe(2);
    expect(usersOf(r.devId0)).toBe(3);
  });

  it('to the IOAS whose auto HWPT is attached keeps that HWPT', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const auto = fd.attach(r.devId0, ioas);
    const attachDev = vi.spyOn(driver(), 'attachDev');
    expect(fd.replace(r.devId0, ioas)).toBe(auto);
    expect(attachDev).not.toHaveBeenCalled();
    expect(usersOf(auto)).toBe(2);
  });

  it('moves the references: the old HWPT loses its user, the device keeps one per attachment', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const a = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const b = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, a);
    const before = domainAt('dev0');
    expect(fd.replace(r.devId0, b)).toBe(b);
    expect(domainAt('dev0')).not.toBe(before);
    expect(usersOf(a)).toBe(1);
    expect(usersOf(b)).toBe(2);
    expect(usersOf(r.devId0)).toBe(3);
    fd.destroy(a);
  });

  it('to another IOAS: the reserved regions move with it, and the old auto HWPT is freed', () => {
    const { fd } = r;
    const ioas1 = fd.ioasAlloc();
    const ioas2 = fd.ioasAlloc();
    const auto = fd.attach(r.devId0, ioas1);
    const hwpt2 = fd.hwptAlloc({ devId: r.devId0, ptId: ioas2 });
    expect(fd.replace(r.devId0, hwpt2)).toBe(hwpt2);
    expect(fd.ioasIovaRanges(ioas1).ranges).toEqual(WHOLE_SPACE);
    expect(fd.ioasIovaRanges(ioas2).ranges).toEqual(AROUND_SW_MSI);
    expect(errnoOf(() => fd.destroy(auto))).toBe('ENOENT');
    expect(usersOf(ioas1)).toBe(1);
  });

  it('between two HWPTs of one IOAS the reservation stays', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const a = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const b = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, a);
    fd.replace(r.devId0, b);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(AROUND_SW_MSI);
  });

  it('a failing replace leaves the old HWPT attached, its domain in the core and the reservations as they were', () => {
    const { fd } = r;
    const ioas1 = fd.ioasAlloc();
    const ioas2 = fd.ioasAlloc();
    const a = fd.hwptAlloc({ devId: r.devId0, ptId: ioas1 });
    const b = fd.hwptAlloc({ devId: r.devId0, ptId: ioas2 });
    fd.attach(r.devId0, a);
    const domain = domainAt('dev0');
    vi.spyOn(driver(), 'attachDev').mockImplementationOnce(() => {
      throw new IommufdError('ENOMEM', 'no memory');
    });
    expect(errnoOf(() => fd.replace(r.devId0, b))).toBe('ENOMEM');
    expect(fd.attachedHwpt(r.devId0)).toBe(a);
    expect(domainAt('dev0')).toBe(domain);
    expect(fd.ioasIovaRanges(ioas1).ranges).toEqual(AROUND_SW_MSI);
    expect(fd.ioasIovaRanges(ioas2).ranges).toEqual(APERTURE);
    expect(usersOf(a)).toBe(2);
    expect(usersOf(b)).toBe(1);
  });

  it('at a PASID: the new domain replaces the old one there', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const a = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    const b = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    fd.attach(r.devId0, a, 2);
    const before = domainAt('dev0', 2);
    expect(fd.replace(r.devId0, b, 2)).toBe(b);
    expect(domainAt('dev0', 2)).not.toBe(before);
    expect(usersOf(a)).toBe(1);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
  });
});

describe('detach', () => {
  it('the RID goes back to blocking DMA; the HWPT and the device lose their users', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, hwpt);
    fd.detach(r.devId0);
    expect(domainAt('dev0')).toBe(driver().blockedDomain);
    expect(fd.attachedHwpt(r.devId0)).toBeUndefined();
    expect(usersOf(hwpt)).toBe(1);
    expect(usersOf(r.devId0)).toBe(2);
    // A user HWPT stays after its last device left.
    fd.destroy(hwpt);
  });

  it('a PASID loses its domain; the RID and other PASIDs keep theirs', () => {
    const { fd } = r;
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { pasid: true } });
    fd.attach(r.devId0, hwpt);
    fd.attach(r.devId0, hwpt, 1);
    fd.attach(r.devId0, hwpt, 2);
    fd.detach(r.devId0, 1);
    expect(r.system.iommuCore.attachedPasids(dev('dev0'))).toEqual([2]);
    expect(domainAt('dev0')?.type).toBe('paging');
    expect(usersOf(hwpt)).toBe(3);
    expect(usersOf(r.devId0)).toBe(4);
  });

  it('where nothing is attached it is a silent no-op', () => {
    const { fd } = r;
    fd.detach(r.devId0);
    fd.detach(r.devId0, 7);
    expect(usersOf(r.devId0)).toBe(2);
    expect(domainAt('dev0')?.type).toBe('blocked');
  });
});

describe('unbind (the device object destroyed)', () => {
  it('detaches every PASID and the RID, drops the reservations and frees an auto HWPT', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    fd.attach(r.devId0, hwpt, 1);
    fd.attach(r.devId0, hwpt);
    const other = fd.ioasAlloc();
    fd.attach(r.devId1, other);
    fd.unbind(r.devId0);
    fd.unbind(r.devId1);
    expect(r.system.iommuCore.attachedPasids(dev('dev0'))).toEqual([]);
    expect(domainAt('dev0')?.type).toBe('blocked');
    expect(domainAt('dev1')?.type).toBe('blocked');
    expect(usersOf(hwpt)).toBe(1);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
    expect(fd.objects().map((o) => o.type)).toEqual(['ioas', 'hwpt-paging', 'ioas']);
  });

  it('tears the PASIDs down before it blocks the RID', () => {
    const { fd } = r;
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { pasid: true } });
    fd.attach(r.devId0, hwpt);
    fd.attach(r.devId0, hwpt, 1);
    const calls: string[] = [];
    vi.spyOn(driver(), 'removeDevPasid').mockImplementation(() => calls.push('removeDevPasid'));
    vi.spyOn(driver(), 'attachDev').mockImplementation((domain) => calls.push(`attachDev ${domain.type}`));
    fd.unbind(r.devId0);
    expect(calls).toEqual(['removeDevPasid', 'attachDev blocked']);
  });

  it('destroys the device’s vDEVICE and leaves its ID a tombstone (ENOENT) until close', () => {
    const { fd } = r;
    const s2 = fd.hwptAlloc({ devId: r.devId0, ptId: fd.ioasAlloc(), flags: { nestParent: true } });
    const viommu = fd.viommuAlloc(r.devId0, s2, 'fake');
    const vdev = fd.vdeviceAlloc(viommu, r.devId0, 3n);
    fd.unbind(r.devId0);
    expect(errnoOf(() => fd.destroy(vdev))).toBe('ENOENT');
    expect(usersOf(viommu)).toBe(1);
    // The tombstone keeps its ID from being reused; the device ID is free again.
    const again = fd.bind(dev('dev0'));
    expect(again).toBe(r.devId0);
    expect(fd.vdeviceAlloc(viommu, again, 3n)).not.toBe(vdev);
  });
});

describe('what follows the device between HWPTs', () => {
  it('replace to a nested HWPT: the core gets the nested domain; the IOAS of its parent keeps the reservation', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const s2 = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { nestParent: true } });
    const nested = fd.hwptAlloc({ devId: r.devId0, ptId: s2, data: { tag: 1 } });
    fd.attach(r.devId0, s2);
    expect(fd.replace(r.devId0, nested)).toBe(nested);
    expect(domainAt('dev0')?.type).toBe('nested');
    expect(usersOf(nested)).toBe(2);
    expect(usersOf(s2)).toBe(2); // the nested HWPT only
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
  });

  it('detaching a PASID keeps the reservation the RID’s attachment to the same IOAS needs', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    fd.attach(r.devId0, hwpt);
    fd.attach(r.devId0, hwpt, 1);
    fd.detach(r.devId0, 1);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(AROUND_SW_MSI);
  });

  it('a driver without reserved regions reserves nothing', () => {
    const { fd } = r;
    Object.defineProperty(driver(), 'reservedRegions', { value: undefined });
    const ioas = fd.ioasAlloc();
    fd.attach(r.devId0, fd.hwptAlloc({ devId: r.devId0, ptId: ioas }));
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
  });

  it('when one of the device’s regions cannot be reserved, the ones reserved before it are released', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x1000n, iova: 0x4000_0000n, ...RW });
    const regions: readonly ReservedRegion[] = [
      { ...FAKE_SW_MSI, type: 'sw-msi' },
      { start: 0x4000_0000n, length: 0x1000n, type: 'sw-msi' },
    ];
    vi.spyOn(driver(), 'reservedRegions').mockReturnValue(regions as never);
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    expect(errnoOf(() => fd.attach(r.devId0, hwpt))).toBe('EADDRINUSE');
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(APERTURE);
  });

  it('a SW MSI doorbell stays in the old domain when the move to a new one fails', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const a = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const b = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    fd.attach(r.devId0, a);
    const doorbell = r.system.requireMsi().doorbellFor({ name: 'dev0', deviceId: dev('dev0').streamId });
    fd.deviceSetupSwMsi(r.devId0, doorbell.page);
    vi.spyOn(driver(), 'attachDev').mockImplementationOnce(() => {
      throw new IommufdError('ENOMEM', 'no memory');
    });
    expect(errnoOf(() => fd.replace(r.devId0, b))).toBe('ENOMEM');
    expect(fd.msiPages(a).map((p) => p.iovaPage)).toEqual([FAKE_SW_MSI.start]);
    expect(fd.msiPages(b)).toEqual([]);
    fd.replace(r.devId0, b);
    expect(fd.msiPages(a)).toEqual([]);
    expect(fd.msiPages(b).map((p) => p.iovaPage)).toEqual([FAKE_SW_MSI.start]);
  });

  it('unbind releases the GPAs the device’s passthrough doorbells reserved', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    fd.ioasMapMsi(ioas, r.devId0, 0x4000n);
    expect(fd.ioasIovaRanges(ioas).ranges).not.toEqual(WHOLE_SPACE);
    fd.unbind(r.devId0);
    expect(fd.ioasIovaRanges(ioas).ranges).toEqual(WHOLE_SPACE);
  });

  it('detach and replace answer the device’s unanswered faults on the old HWPT invalid (iommufd_auto_response_faults)', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const fault = fd.faultQueueAlloc();
    const a = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId: fault });
    const b = fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    const respond = vi.spyOn(driver(), 'pageResponse');
    const request = (groupIndex: number) =>
      r.system.iommuCore.reportPageRequest(dev('dev0'), {
        pasid: NO_PASID,
        iova: 0x1000n,
        access: 1,
        groupIndex,
        last: true,
      });
    fd.attach(r.devId0, a);
    request(1);
    fd.replace(r.devId0, b);
    expect(respond).toHaveBeenLastCalledWith(dev('dev0'), {
      pasid: NO_PASID,
      groupIndex: 1,
      code: 'invalid',
    });
    fd.replace(r.devId0, a);
    request(2);
    fd.detach(r.devId0);
    expect(respond).toHaveBeenLastCalledWith(dev('dev0'), {
      pasid: NO_PASID,
      groupIndex: 2,
      code: 'invalid',
    });
    expect(respond).toHaveBeenCalledTimes(2);
    expect(fd.faultRead(fault)).toEqual([]);
  });

  it('the first attachment on a HWPT with a fault queue turns I/O page faults on, the last one off (idev->iopf_enabled)', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const fault = fd.faultQueueAlloc();
    const withFault = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId: fault, flags: { pasid: true } });
    const other = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId: fault, flags: { pasid: true } });
    const plain = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    const enable = vi.spyOn(driver(), 'enableIopf');
    const disable = vi.spyOn(driver(), 'disableIopf');
    fd.attach(r.devId0, plain);
    expect(enable).not.toHaveBeenCalled();
    fd.replace(r.devId0, withFault);
    expect(enable).toHaveBeenCalledOnce();
    expect(enable).toHaveBeenCalledWith(dev('dev0'));
    // A second user (a PASID) and a move between two HWPTs with fault queues change nothing at the device.
    fd.attach(r.devId0, other, 3);
    fd.replace(r.devId0, other);
    fd.detach(r.devId0, 3);
    expect(enable).toHaveBeenCalledOnce();
    expect(disable).not.toHaveBeenCalled();
    fd.replace(r.devId0, plain);
    expect(disable).toHaveBeenCalledOnce();
    expect(disable).toHaveBeenCalledWith(dev('dev0'));
    fd.replace(r.devId0, withFault);
    fd.detach(r.devId0);
    expect(enable).toHaveBeenCalledTimes(2);
    expect(disable).toHaveBeenCalledTimes(2);
  });

  it('a driver refusing I/O page faults fails the attach, and a failed attach turns them off again', () => {
    const { fd } = r;
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId: fd.faultQueueAlloc() });
    vi.spyOn(driver(), 'enableIopf').mockImplementationOnce(() => {
      throw new IommufdError('ENODEV', 'no PRI');
    });
    const disable = vi.spyOn(driver(), 'disableIopf');
    const users = usersOf(hwpt);
    expect(errnoOf(() => fd.attach(r.devId0, hwpt))).toBe('ENODEV');
    expect(fd.attachedHwpt(r.devId0)).toBeUndefined();
    expect(usersOf(hwpt)).toBe(users);
    expect(disable).not.toHaveBeenCalled();
    vi.spyOn(driver(), 'attachDev').mockImplementationOnce(() => {
      throw new IommufdError('ENOMEM', 'no memory');
    });
    expect(errnoOf(() => fd.attach(r.devId0, hwpt))).toBe('ENOMEM');
    expect(disable).toHaveBeenCalledOnce();
    fd.attach(r.devId0, hwpt);
    expect(fd.attachedHwpt(r.devId0)).toBe(hwpt);
  });
});
