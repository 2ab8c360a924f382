/** Attach at a PASID with the kernel's compatibility rules (iommufd_device_attach with a pasid). */
import type { IommuPlugin } from '@iommukit/core';
import { expect, it } from 'vitest';
import { expectDmaFault, expectDmaOk, expectErrno } from '../expect-errno.js';
import type { Harness } from '../harness.js';

const KiB = 1024n;
const RW = { readable: true, writeable: true };

export function pasidCases(h: () => Harness, plugin: IommuPlugin): void {
  if (!plugin.capabilities.pasid) {
    it('without PASID support, attaching at a PASID is refused', () => {
      const { fd, devId0 } = h();
      const hwpt = fd.hwptAlloc({ devId: devId0, ptId: fd.ioasAlloc() });
      const errno = (() => {
        try {
          fd.attach(devId0, hwpt, 1);
          return 'ok';
        } catch (e) {
          return (e as { code?: string }).code;
        }
      })();
      expect(['EINVAL', 'EOPNOTSUPP']).toContain(errno);
    });
    return;
  }

  it('a PASID-compatible HWPT at a PASID translates DMA tagged with that PASID, and only that', () => {
    const { fd, devId0, dev0, memory, buffer, read } = h();
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 4n * KiB), length: 4n * KiB, iova: 0x10_0000n, ...RW });
    const hwpt = fd.hwptAlloc({ devId: devId0, ptId: ioas, flags: { pasid: true } });
    expect(fd.attach(devId0, hwpt, 5)).toBe(hwpt);
    expectDmaOk(dev0.dmaWrite(0x10_0000n, Uint8Array.of(0x55), { pasid: 5 }));
    expect(read(buffer, 1)[0]).toBe(0x55);
    expectDmaFault(dev0.dmaWrite(0x10_0000n, Uint8Array.of(1), { pasid: 6 }));
    expectDmaFault(dev0.dmaWrite(0x10_0000n, Uint8Array.of(1)));
    fd.detach(devId0, 5);
    expectDmaFault(dev0.dmaWrite(0x10_0000n, Uint8Array.of(1), { pasid: 5 }));
  });

  it('PASID attach rules: IOAS, non-compatible HWPT, no capability, out of range are EINVAL; twice is EBUSY', () => {
    const { fd, devId0, devId1 } = h();
    const ioas = fd.ioasAlloc();
    const plain = fd.hwptAlloc({ devId: devId0, ptId: ioas });
    const compat = fd.hwptAlloc({ devId: devId0, ptId: ioas, flags: { pasid: true } });
    expectErrno(() => fd.attach(devId0, ioas, 3), 'EINVAL');
    expectErrno(() => fd.attach(devId0, plain, 3), 'EINVAL');
    expectErrno(() => fd.attach(devId1, compat, 3), 'EINVAL');
    expectErrno(() => fd.attach(devId0, compat, 256), 'EINVAL');
    fd.attach(devId0, compat, 3);
    expectErrno(() => fd.attach(devId0, compat, 3), 'EBUSY');
  });

  it('the RID and the PASIDs must agree: no non-compatible RID HWPT while PASIDs are attached, and vice versa', () => {
    const { fd, devId0 } = h();
    const ioas = fd.ioasAlloc();
    const plain = fd.hwptAlloc({ devId: devId0, ptId: ioas });
    const compat = fd.hwptAlloc({ devId: devId0, ptId: ioas, flags: { pasid: true } });
    fd.attach(devId0, compat, 7);
    expectErrno(() => fd.attach(devId0, plain), 'EINVAL');
    fd.attach(devId0, compat);
    expectErrno(() => fd.replace(devId0, plain), 'EINVAL');
    fd.detach(devId0, 7);
    fd.replace(devId0, plain);
    expectErrno(() => fd.attach(devId0, compat, 7), 'EINVAL');
  });
}
