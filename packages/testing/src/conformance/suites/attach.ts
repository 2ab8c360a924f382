/** Device attach, replace and detach at the RID: busy rules, auto HWPT sharing, atomic replace. */
import { expect, it } from 'vitest';
import { expectDmaFault, expectDmaOk, expectErrno } from '../expect-errno.js';
import type { Harness } from '../harness.js';

const KiB = 1024n;
const RW = { readable: true, writeable: true };

export function attachCases(h: () => Harness): void {
  it('attach where attached is EBUSY, replace with nothing attached is EINVAL, detaching nothing is a no-op', () => {
    const { fd, devId0 } = h();
    const ioas = fd.ioasAlloc();
    expectErrno(() => fd.replace(devId0, ioas), 'EINVAL');
    fd.attach(devId0, ioas);
    expectErrno(() => fd.attach(devId0, ioas), 'EBUSY');
    fd.detach(devId0);
    fd.detach(devId0);
    expect(fd.attachedHwpt(devId0)).toBeUndefined();
  });

  it('devices attached to one IOAS share its auto HWPT, which is freed with its last device', () => {
    const { fd, devId0, devId1 } = h();
    const ioas = fd.ioasAlloc();
    const a = fd.attach(devId0, ioas);
    const b = fd.attach(devId1, ioas);
    expect(b).toBe(a);
    fd.detach(devId0);
    expectErrno(() => fd.destroy(a), 'EBUSY');
    fd.detach(devId1);
    expectErrno(() => fd.destroy(a), 'ENOENT');
  });

  it('replace moves a device atomically: DMA before goes through the old HWPT, after through the new', () => {
    const { fd, devId0, dev0, memory, buffer, read } = h();
    const first = fd.ioasAlloc();
    const second = fd.ioasAlloc();
    fd.ioasMap({ ioasId: first, memory: memory(0n, 4n * KiB), length: 4n * KiB, iova: 0x10_0000n, ...RW });
    fd.ioasMap({
      ioasId: second,
      memory: memory(8n * KiB, 4n * KiB),
      length: 4n * KiB,
      iova: 0x10_0000n,
      ...RW,
    });
    const auto = fd.attach(devId0, first);
    const explicit = fd.hwptAlloc({ devId: devId0, ptId: second });
    expectDmaOk(dev0.dmaWrite(0x10_0000n, Uint8Array.of(1)));
    expect(fd.replace(devId0, explicit)).toBe(explicit);
    expectDmaOk(dev0.dmaWrite(0x10_0000n, Uint8Array.of(2)));
    expect([read(buffer, 1)[0], read(buffer + 8n * KiB, 1)[0]]).toEqual([1, 2]);
    expectErrno(() => fd.destroy(auto), 'ENOENT'); // the replaced-away auto HWPT was freed
    expect(fd.replace(devId0, explicit)).toBe(explicit); // same HWPT: a no-op
  });

  it('a replace that fails changes nothing: the device keeps translating through the old HWPT', () => {
    const { fd, devId0, dev0, system, memory, buffer, read } = h();
    const region = system.iommu('iommu0').driver.reservedRegions?.(dev0)[0];
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 4n * KiB), length: 4n * KiB, iova: 0x10_0000n, ...RW });
    const hwpt = fd.attach(devId0, ioas);
    const clash = fd.ioasAlloc();
    if (region) {
      // An area where the device has a reserved region: attaching there must fail with EADDRINUSE.
      fd.ioasMap({
        ioasId: clash,
        memory: memory(0n, 4n * KiB),
        length: 4n * KiB,
        iova: region.start,
        ...RW,
      });
      expectErrno(() => fd.replace(devId0, clash), 'EADDRINUSE');
    } else {
      expectErrno(() => fd.replace(devId0, 999), 'ENOENT');
    }
    expect(fd.attachedHwpt(devId0)).toBe(hwpt);
    expectDmaOk(dev0.dmaWrite(0x10_0000n, Uint8Array.of(9)));
    expect(read(buffer, 1)[0]).toBe(9);
  });

  it('detach blocks DMA again', () => {
    const { fd, devId0, dev0, memory } = h();
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 4n * KiB), length: 4n * KiB, iova: 0x10_0000n, ...RW });
    fd.attach(devId0, ioas);
    expectDmaOk(dev0.dmaRead(0x10_0000n, 4));
    fd.detach(devId0);
    expectDmaFault(dev0.dmaRead(0x10_0000n, 4));
  });

  it('a map made after attach reaches the attached domain, and one made before attach is filled in', () => {
    const { fd, devId0, dev0, memory } = h();
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 4n * KiB), length: 4n * KiB, iova: 0x10_0000n, ...RW });
    fd.attach(devId0, ioas);
    fd.ioasMap({
      ioasId: ioas,
      memory: memory(4n * KiB, 4n * KiB),
      length: 4n * KiB,
      iova: 0x20_0000n,
      ...RW,
    });
    expectDmaOk(dev0.dmaRead(0x10_0000n, 4));
    expectDmaOk(dev0.dmaRead(0x20_0000n, 4));
  });
}
