/**
 * The iommufd context's own rules (iommufd.ts): binding devices, object IDs and references, IOMMU_DESTROY,
 * and what closing the context (close(/dev/iommu)) releases.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fakeIommufdConfig, fakeIommufdRegistry } from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig } from '../../test/iommufd-rig.js';
import { errnoOf } from '../errors/iommufd-error.js';
import type { IommuDeviceRef } from '../iommu/driver.js';
import { createSystem } from '../system/create-system.js';

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

describe('binding devices (VFIO cdev bind)', () => {
  it('a bound device is a device object with the binding as its second user, blocked until attached', () => {
    expect(r.fd.objects()).toEqual([
      { id: r.devId0, type: 'device', users: 2 },
      { id: r.devId1, type: 'device', users: 2 },
    ]);
    expect([r.devId0, r.devId1]).toEqual([1, 2]);
    expect(r.system.iommuCore.domainAt(r.system.device('dev0'))?.type).toBe('blocked');
  });

  it('a device is bound to one context at a time (EBUSY), again once unbound or its context closed', () => {
    const other = r.system.openIommufd();
    const dev0 = r.system.device('dev0');
    expect(errnoOf(() => other.bind(dev0))).toBe('EBUSY');
    expect(errnoOf(() => r.fd.bind(dev0))).toBe('EBUSY');
    r.fd.unbind(r.devId0);
    expect(other.bind(dev0)).toBe(1);
    expect(errnoOf(() => r.fd.bind(dev0))).toBe('EBUSY');
    other.close();
    expect(r.fd.bind(dev0)).toBe(r.devId0);
  });

  it('a device not behind an IOMMU is ENODEV; a non-object EINVAL; nothing is bound', () => {
    const stray = { name: 'stray', rid: 0x100, pasidBits: 0 } as unknown as IommuDeviceRef;
    expect(errnoOf(() => r.fd.bind(stray))).toBe('ENODEV');
    expect(errnoOf(() => r.fd.bind(undefined as never))).toBe('EINVAL');
    expect(r.fd.objects()).toHaveLength(2);
  });

  it('unbind frees the ID; unbinding it again, or an ID that is not a device, is ENOENT', () => {
    const ioas = r.fd.ioasAlloc();
    r.fd.attach(r.devId1, ioas);
    r.fd.unbind(r.devId1);
    expect(r.system.iommuCore.domainAt(r.system.device('dev1'))?.type).toBe('blocked');
    expect(r.fd.objects().map((o) => o.type)).toEqual(['device', 'ioas']);
    expect(errnoOf(() => r.fd.unbind(r.devId1))).toBe('ENOENT');
    expect(errnoOf(() => r.fd.unbind(ioas))).toBe('ENOENT');
    expect(errnoOf(() => r.fd.unbind(-1))).toBe('EINVAL');
    expect(r.fd.ioasAlloc()).toBe(r.devId1);
  });
});

describe('IOMMU_DESTROY', () => {
  it('an unused object goes and its ID is reused (lowest free first)', () => {
    const a = r.fd.ioasAlloc();
    const b = r.fd.ioasAlloc();
    r.fd.destroy(a);
    expect(r.fd.objects().map((o) => o.id)).toEqual([r.devId0, r.devId1, b]);
    expect(r.fd.faultQueueAlloc()).toBe(a);
  });

  it('an unknown ID is ENOENT, a negative or fractional one EINVAL', () => {
    expect(errnoOf(() => r.fd.destroy(99))).toBe('ENOENT');
    expect(errnoOf(() => r.fd.destroy(-1))).toBe('EINVAL');
    expect(errnoOf(() => r.fd.destroy(2.5))).toBe('EINVAL');
  });

  it('EBUSY while another object holds it: an IOAS with a HWPT, a FAULT with a HWPT', () => {
    const ioas = r.fd.ioasAlloc();
    const fault = r.fd.faultQueueAlloc();
    const hwpt = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, faultId: fault });
    expect(errnoOf(() => r.fd.destroy(ioas))).toBe('EBUSY');
    expect(errnoOf(() => r.fd.destroy(fault))).toBe('EBUSY');
    r.fd.destroy(hwpt);
    r.fd.destroy(fault);
    r.fd.destroy(ioas);
    expect(r.fd.objects().map((o) => o.type)).toEqual(['device', 'device']);
  });
});

describe('close(/dev/iommu)', () => {
  it('releases the devices (blocked, bindable elsewhere) and destroys every object, leaving no frame behind', async () => {
    const system = await createSystem(fakeIommufdConfig(), { registry: fakeIommufdRegistry() });
    const frames = system.memory.allocatedFrameCount;
    const fd = system.openIommufd();
    const dev0 = system.device('dev0');
    const devId = fd.bind(dev0);
    const ioas = fd.ioasAlloc();
    fd.attach(devId, ioas);
    const s2 = fd.hwptAlloc({ devId, ptId: ioas, flags: { nestParent: true } });
    fd.vdeviceAlloc(fd.viommuAlloc(devId, s2, 'fake'), devId, 1n);
    fd.close();
    expect(fd.objects()).toEqual([]);
    expect(system.iommuCore.domainAt(dev0)?.type).toBe('blocked');
    const next = system.openIommufd();
    expect(next.bind(dev0)).toBe(1);
    next.close();
    expect(system.memory.allocatedFrameCount).toBe(frames);
    await system.dispose();
  });

  it('is idempotent, and afterwards every operation that makes something is EINVAL', () => {
    r.fd.close();
    r.fd.close();
    const fd = r.fd;
    expect(errnoOf(() => fd.ioasAlloc())).toBe('EINVAL');
    expect(errnoOf(() => fd.faultQueueAlloc())).toBe('EINVAL');
    expect(errnoOf(() => fd.bind(r.system.device('dev0')))).toBe('EINVAL');
    expect(errnoOf(() => fd.destroy(1))).toBe('EINVAL');
    expect(errnoOf(() => fd.setSwMsiWindow(0x100_0000n, 0x1000n))).toBe('EINVAL');
    expect(errnoOf(() => fd.hwInfo(1))).toBe('ENOENT');
    expect(fd.objects()).toEqual([]);
  });
});
