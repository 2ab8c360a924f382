/** hw_info, allocation flags, and dirty tracking (IOMMU_HWPT_SET_DIRTY_TRACKING / GET_DIRTY_BITMAP). */
import type { IommuPlugin } from '@iommukit/core';
import { expect, it } from 'vitest';
import { expectDmaOk, expectErrno } from '../expect-errno.js';
import type { Harness } from '../harness.js';

const KiB = 1024n;
const RW = { readable: true, writeable: true };

export function capabilityCases(h: () => Harness, plugin: IommuPlugin): void {
  it('GET_HW_INFO reports the vendor info and capabilities the plugin declares', () => {
    const { fd, devId0, devId1 } = h();
    const info = fd.hwInfo(devId0);
    expect(typeof info.type).toBe('string');
    expect(info.capabilities.dirtyTracking).toBe(plugin.capabilities.dirtyTracking);
    expect(info.maxPasidLog2 > 0).toBe(plugin.capabilities.pasid);
    // The width is the device's and the IOMMU's smaller one: 0 for dev1, which has no PASID capability.
    expect(fd.hwInfo(devId1).maxPasidLog2).toBe(0);
    expectErrno(() => fd.hwInfo(999), 'ENOENT');
  });

  it('HWPT_ALLOC: a nest parent cannot take a fault queue (EOPNOTSUPP)', () => {
    const { fd, devId0 } = h();
    const fault = fd.faultQueueAlloc();
    expectErrno(
      () =>
        fd.hwptAlloc({ devId: devId0, ptId: fd.ioasAlloc(), flags: { nestParent: true }, faultId: fault }),
      'EOPNOTSUPP',
    );
  });

  if (!plugin.capabilities.dirtyTracking) {
    it('without dirty tracking, HWPT_ALLOC with DIRTY_TRACKING is EOPNOTSUPP', () => {
      const { fd, devId0 } = h();
      expectErrno(
        () => fd.hwptAlloc({ devId: devId0, ptId: fd.ioasAlloc(), flags: { dirtyTracking: true } }),
        'EOPNOTSUPP',
      );
    });
    return;
  }

  it('dirty tracking reports the pages DMA wrote, clears them on read unless NO_CLEAR', () => {
    const { fd, devId0, dev0, memory } = h();
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 16n * KiB), length: 16n * KiB, iova: 0x10_0000n, ...RW });
    const hwpt = fd.hwptAlloc({ devId: devId0, ptId: ioas, flags: { dirtyTracking: true } });
    fd.attach(devId0, hwpt);
    expectDmaOk(dev0.dmaWrite(0x10_0000n, Uint8Array.of(1))); // before tracking: not reported
    fd.hwptSetDirtyTracking(hwpt, true);
    expectDmaOk(dev0.dmaWrite(0x10_1000n, Uint8Array.of(1)));
    expectDmaOk(dev0.dmaRead(0x10_2000n, 4));
    expectDmaOk(dev0.dmaWrite(0x10_3ff0n, Uint8Array.of(1)));
    /** The bitmap of the 4 pages at 0x10_0000, read into a fresh zeroed buffer. */
    const dirty = (noClear = false) => {
      const bitmap = new Uint8Array(1);
      fd.hwptGetDirtyBitmap(hwpt, {
        iova: 0x10_0000n,
        length: 16n * KiB,
        pageSize: 4n * KiB,
        bitmap,
        noClear,
      });
      return [...bitmap];
    };
    expect(dirty(true)).toEqual([0b1010]);
    expect(dirty()).toEqual([0b1010]);
    expect(dirty()).toEqual([0]);
    expectDmaOk(dev0.dmaWrite(0x10_1000n, Uint8Array.of(2)));
    expect(dirty()).toEqual([0b0010]);
    const bitmap = new Uint8Array(1);
    expectErrno(
      () => fd.hwptGetDirtyBitmap(hwpt, { iova: 0x10_0800n, length: 4n * KiB, pageSize: 4n * KiB, bitmap }),
      'EINVAL',
    );
    expectErrno(
      () => fd.hwptSetDirtyTracking(fd.hwptAlloc({ devId: devId0, ptId: ioas }), true),
      'EOPNOTSUPP',
    );
  });
}
