/**
 * IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC and IOMMU_VEVENTQ_ALLOC (viommu-alloc.ts, Linux viommu.c and
 * eventq.c) through `IommuFd` on the fake iommufd plugin: what each allocates, the references it takes,
 * and the errno of each misuse.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  FAKE_VIOMMU_TYPE,
  type FakeIommufdDriver,
  fakeIommufdConfig,
  fakeIommufdRegistry,
} from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig } from '../../test/iommufd-rig.js';
import { errnoOf } from '../errors/iommufd-error.js';
import type { ViommuEventSink } from '../iommu/driver.js';
import { createSystem } from '../system/create-system.js';

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

const driver = () => r.system.iommus[0]!.driver as FakeIommufdDriver;
const usersOf = (id: number) => r.fd.objects().find((o) => o.id === id)?.users;
const nestParent = () =>
  r.fd.hwptAlloc({ devId: r.devId0, ptId: r.fd.ioasAlloc(), flags: { nestParent: true } });

/** A system with a second fake IOMMU and `dev2` behind it, for the "other IOMMU" rules. */
async function twoIommus() {
  const config = fakeIommufdConfig();
  const system = await createSystem(
    {
      ...config,
      iommus: [...(config.iommus as object[]), { name: 'iommu1', base: '0x0a00_0000' }],
      devices: [...(config.devices as object[]), { name: 'dev2', rid: '00:04.0', iommu: 'iommu1' }],
    },
    { registry: fakeIommufdRegistry() },
  );
  const fd = system.openIommufd();
  return {
    fd,
    dev0: fd.bind(system.device('dev0')),
    dev2: fd.bind(system.device('dev2')),
    dispose: async () => {
      fd.close();
      await system.dispose();
    },
  };
}

describe('IOMMU_VIOMMU_ALLOC', () => {
  it('makes the driver’s vIOMMU on the nest parent, which it holds (EBUSY) until destroyed', () => {
    const s2 = nestParent();
    const viommu = r.fd.viommuAlloc(r.devId0, s2, FAKE_VIOMMU_TYPE);
    expect(r.fd.objects().find((o) => o.id === viommu)).toEqual({ id: viommu, type: 'viommu', users: 1 });
    expect(driver().viommus).toHaveLength(1);
    expect(usersOf(s2)).toBe(2);
    expect(errnoOf(() => r.fd.destroy(s2))).toBe('EBUSY');
    r.fd.destroy(viommu);
    expect(driver().viommus).toHaveLength(0);
    expect(usersOf(s2)).toBe(1);
  });

  it('type "default" is EOPNOTSUPP, a type the driver lacks EOPNOTSUPP, a non-string EINVAL', () => {
    const s2 = nestParent();
    expect(errnoOf(() => r.fd.viommuAlloc(r.devId0, s2, 'default'))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => r.fd.viommuAlloc(r.devId0, s2, 'other'))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => r.fd.viommuAlloc(r.devId0, s2, 7 as never))).toBe('EINVAL');
    expect(usersOf(s2)).toBe(1);
    // iommufd_viommu_alloc refuses the default type first, before it looks at the HWPT.
    const plain = r.fd.hwptAlloc({ devId: r.devId0, ptId: r.fd.ioasAlloc() });
    expect(errnoOf(() => r.fd.viommuAlloc(r.devId0, plain, 'default'))).toBe('EOPNOTSUPP');
  });

  it('a HWPT that is not a nest parent is EINVAL, before the driver is asked', () => {
    const plain = r.fd.hwptAlloc({ devId: r.devId0, ptId: r.fd.ioasAlloc() });
    const alloc = vi.spyOn(driver(), 'viommuAlloc');
    expect(errnoOf(() => r.fd.viommuAlloc(r.devId0, plain, FAKE_VIOMMU_TYPE))).toBe('EINVAL');
    expect(alloc).not.toHaveBeenCalled();
    expect(errnoOf(() => r.fd.viommuAlloc(r.devId0, r.fd.ioasAlloc(), FAKE_VIOMMU_TYPE))).toBe('ENOENT');
  });

  it('a driver without vIOMMU support is EOPNOTSUPP; nothing is allocated', () => {
    const s2 = nestParent();
    Object.defineProperty(driver(), 'viommuAlloc', { value: undefined });
    expect(errnoOf(() => r.fd.viommuAlloc(r.devId0, s2, FAKE_VIOMMU_TYPE))).toBe('EOPNOTSUPP');
    expect(usersOf(s2)).toBe(1);
    expect(r.fd.objects().some((o) => o.type === 'viommu')).toBe(false);
  });

  it('a nest parent of another IOMMU than the device’s is EINVAL', async () => {
    const two = await twoIommus();
    try {
      const s2 = two.fd.hwptAlloc({ devId: two.dev0, ptId: two.fd.ioasAlloc(), flags: { nestParent: true } });
      expect(errnoOf(() => two.fd.viommuAlloc(two.dev2, s2, FAKE_VIOMMU_TYPE))).toBe('EINVAL');
      expect(two.fd.viommuAlloc(two.dev0, s2, FAKE_VIOMMU_TYPE)).toBeGreaterThan(0);
    } finally {
      await two.dispose();
    }
  });

  it('events the driver reports reach the vEVENTQ of their type; an event reported during allocation is dropped', () => {
    const real = driver().viommuAlloc.bind(driver());
    vi.spyOn(driver(), 'viommuAlloc').mockImplementation((parent, type, events: ViommuEventSink) => {
      events.report('fake-event', Uint32Array.of(0xdead));
      return real(parent, type, events);
    });
    const viommu = r.fd.viommuAlloc(r.devId0, nestParent(), FAKE_VIOMMU_TYPE);
    const queue = r.fd.veventqAlloc(viommu, 'fake-event', 4);
    driver().viommus[0]!.events.report('fake-event', Uint32Array.of(1, 2));
    driver().viommus[0]!.events.report('other-event', Uint32Array.of(3));
    expect(r.fd.veventqRead(queue)).toEqual([
      { sequence: 0, lostEvents: false, record: Uint32Array.of(1, 2) },
    ]);
  });
});

describe('IOMMU_VDEVICE_ALLOC', () => {
  it('binds the virtual ID to the device in the driver’s vIOMMU; the vDEVICE holds the vIOMMU', () => {
    const viommu = r.fd.viommuAlloc(r.devId0, nestParent(), FAKE_VIOMMU_TYPE);
    const vdev = r.fd.vdeviceAlloc(viommu, r.devId0, 0x42n);
    expect(driver().viommus[0]!.vdevices.get(r.system.device('dev0'))).toBe(0x42n);
    expect(usersOf(viommu)).toBe(2);
    expect(errnoOf(() => r.fd.destroy(viommu))).toBe('EBUSY');
    r.fd.destroy(vdev);
    expect(driver().viommus[0]!.vdevices.size).toBe(0);
    expect(usersOf(viommu)).toBe(1);
  });

  it('one vDEVICE per device and one per virtual ID on a vIOMMU (EEXIST); the ID is free again after destroy', () => {
    const viommu = r.fd.viommuAlloc(r.devId0, nestParent(), FAKE_VIOMMU_TYPE);
    const vdev = r.fd.vdeviceAlloc(viommu, r.devId0, 1n);
    expect(errnoOf(() => r.fd.vdeviceAlloc(viommu, r.devId0, 2n))).toBe('EEXIST');
    expect(errnoOf(() => r.fd.vdeviceAlloc(viommu, r.devId1, 1n))).toBe('EEXIST');
    expect(driver().viommus[0]!.vdevices.size).toBe(1);
    expect(r.fd.vdeviceAlloc(viommu, r.devId1, 2n)).toBeGreaterThan(vdev);
    r.fd.destroy(vdev);
    expect(r.fd.vdeviceAlloc(viommu, r.devId0, 1n)).toBe(vdev);
  });

  it('a device behind another IOMMU than the vIOMMU is EINVAL', async () => {
    const two = await twoIommus();
    try {
      const s2 = two.fd.hwptAlloc({ devId: two.dev0, ptId: two.fd.ioasAlloc(), flags: { nestParent: true } });
      const viommu = two.fd.viommuAlloc(two.dev0, s2, FAKE_VIOMMU_TYPE);
      expect(errnoOf(() => two.fd.vdeviceAlloc(viommu, two.dev2, 1n))).toBe('EINVAL');
      expect(two.fd.objects().some((o) => o.type === 'vdevice')).toBe(false);
    } finally {
      await two.dispose();
    }
  });

  it('a nested HWPT of the vIOMMU attaches only once the device has its vDEVICE there (the mock’s ENOENT)', () => {
    const viommu = r.fd.viommuAlloc(r.devId0, nestParent(), FAKE_VIOMMU_TYPE);
    const nested = r.fd.hwptAlloc({ devId: r.devId0, ptId: viommu, data: { tag: 1 } });
    expect(errnoOf(() => r.fd.attach(r.devId0, nested))).toBe('ENOENT');
    r.fd.vdeviceAlloc(viommu, r.devId0, 5n);
    expect(r.fd.attach(r.devId0, nested)).toBe(nested);
  });
});

describe('IOMMU_VEVENTQ_ALLOC and read', () => {
  it('one queue per type on a vIOMMU (EEXIST); it holds the vIOMMU', () => {
    const viommu = r.fd.viommuAlloc(r.devId0, nestParent(), FAKE_VIOMMU_TYPE);
    const queue = r.fd.veventqAlloc(viommu, 'a', 2);
    expect(errnoOf(() => r.fd.veventqAlloc(viommu, 'a', 2))).toBe('EEXIST');
    expect(r.fd.veventqAlloc(viommu, 'b', 2)).toBeGreaterThan(queue);
    expect(usersOf(viommu)).toBe(3);
    expect(errnoOf(() => r.fd.destroy(viommu))).toBe('EBUSY');
  });

  it('type "default" is EOPNOTSUPP, depth 0 EINVAL, a negative depth EINVAL, an unknown vIOMMU ENOENT', () => {
    const viommu = r.fd.viommuAlloc(r.devId0, nestParent(), FAKE_VIOMMU_TYPE);
    expect(errnoOf(() => r.fd.veventqAlloc(viommu, 'default', 2))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => r.fd.veventqAlloc(viommu, 'a', 0))).toBe('EINVAL');
    expect(errnoOf(() => r.fd.veventqAlloc(viommu, 'a', -1))).toBe('EINVAL');
    expect(errnoOf(() => r.fd.veventqAlloc(999, 'a', 1))).toBe('ENOENT');
    expect(r.fd.veventqAlloc(viommu, 'a', 1)).toBeGreaterThan(0);
  });

  it('a read takes at most `max` events, oldest first', () => {
    const viommu = r.fd.viommuAlloc(r.devId0, nestParent(), FAKE_VIOMMU_TYPE);
    const queue = r.fd.veventqAlloc(viommu, 'a', 8);
    for (let n = 0; n < 3; n++) driver().viommus[0]!.events.report('a', Uint32Array.of(n));
    expect(r.fd.veventqRead(queue, 2).map((e) => e.sequence)).toEqual([0, 1]);
    expect(r.fd.veventqRead(queue).map((e) => e.sequence)).toEqual([2]);
    expect(errnoOf(() => r.fd.veventqRead(queue, -1))).toBe('EINVAL');
    expect(errnoOf(() => r.fd.veventqRead(viommu))).toBe('ENOENT');
  });
});
