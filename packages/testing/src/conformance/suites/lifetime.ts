/** Object lifetimes: IDs, EBUSY while referenced, ENOENT for unknown or wrong-typed IDs, leaf-first close. */
import { expect, it } from 'vitest';
import { expectDmaFault, expectErrno } from '../expect-errno.js';
import type { Harness } from '../harness.js';

export function lifetimeCases(h: () => Harness): void {
  it('IOMMU_DESTROY refuses objects in use (EBUSY) and succeeds leaf first', () => {
    const { fd, devId0 } = h();
    const ioas = fd.ioasAlloc();
    const hwpt = fd.hwptAlloc({ devId: devId0, ptId: ioas });
    fd.attach(devId0, hwpt);
    expectErrno(() => fd.destroy(ioas), 'EBUSY');
    expectErrno(() => fd.destroy(hwpt), 'EBUSY');
    expectErrno(() => fd.destroy(devId0), 'EBUSY');
    fd.detach(devId0);
    fd.destroy(hwpt);
    fd.destroy(ioas);
    expectErrno(() => fd.destroy(ioas), 'ENOENT');
  });

  it('unknown IDs and IDs of the wrong type are ENOENT', () => {
    const { fd, devId0 } = h();
    expectErrno(() => fd.destroy(4242), 'ENOENT');
    expectErrno(() => fd.attach(devId0, devId0), 'ENOENT');
    expectErrno(
      () =>
        fd.ioasMap({
          ioasId: devId0,
          memory: h().memory(0n, 4096n),
          length: 4096n,
          readable: true,
          writeable: true,
        }),
      'ENOENT',
    );
  });

  it('IDs start at 1 and the lowest free one is reused', () => {
    const { fd, devId0, devId1 } = h();
    expect([devId0, devId1]).toEqual([1, 2]);
    const a = fd.ioasAlloc();
    const b = fd.ioasAlloc();
    fd.destroy(a);
    expect(fd.ioasAlloc()).toBe(a);
    expect(b).toBe(a + 1);
  });

  it('a device is bound to one context at a time; closing a context releases it, blocked', () => {
    const { fd, dev0, devId0, system, memory } = h();
    expectErrno(() => system.openIommufd().bind(dev0), 'EBUSY');
    const ioas = fd.ioasAlloc();
    fd.ioasMap({
      ioasId: ioas,
      memory: memory(0n, 4096n),
      length: 4096n,
      iova: 0x10_0000n,
      readable: true,
      writeable: true,
    });
    fd.attach(devId0, ioas);
    fd.close();
    expectDmaFault(dev0.dmaRead(0x10_0000n, 4));
    const again = system.openIommufd();
    expect(again.bind(dev0)).toBe(1);
    again.close();
  });
}
