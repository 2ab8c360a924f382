/** IOAS semantics end to end: map → DMA lands; unmap → DMA faults; the kernel's mapping rules. */
import { U64_MAX } from '@iommukit/core';
import { expect, it } from 'vitest';
import { expectDmaFault, expectDmaOk, expectErrno } from '../expect-errno.js';
import type { Harness } from '../harness.js';

const KiB = 1024n;
const RW = { readable: true, writeable: true };

export function ioasCases(h: () => Harness): void {
  it('IOAS_MAP + attach: a device DMA lands in the mapped host memory', () => {
    const { fd, devId0, dev0, buffer, memory, read } = h();
    const ioas = fd.ioasAlloc();
    fd.attach(devId0, ioas);
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 64n * KiB), length: 64n * KiB, iova: 0x10_0000n, ...RW });
    const payload = Uint8Array.of(0xde, 0xad, 0xbe, 0xef);
    expectDmaOk(dev0.dmaWrite(0x10_0ffen, payload));
    expect([...read(buffer + 0xffen, 4)]).toEqual([...payload]);
  });

  it('IOAS_UNMAP: returns the bytes unmapped, and DMA to them then faults (no stale IOTLB hit)', () => {
    // dev1 has no ATS: its DMA is untranslated, so the fault is the IOMMU's to record and report
    // (a failed ATS translation is a completion, not an event).
    const { fd, devId1: devId0, dev1: dev0, memory, system, service } = h();
    const ioas = fd.ioasAlloc();
    fd.attach(devId0, ioas);
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 64n * KiB), length: 64n * KiB, iova: 0x10_0000n, ...RW });
    expectDmaOk(dev0.dmaWrite(0x10_0000n, Uint8Array.of(1))); // fills the IOTLB
    expect(fd.ioasUnmap(ioas, 0x10_0000n, 64n * KiB)).toBe(64n * KiB);
    expectDmaFault(dev0.dmaWrite(0x10_0000n, Uint8Array.of(2)));
    service();
    expect(
      system.iommu('iommu0').faults.records.some((f) => f.device === 'dev1' && f.fault.iova === 0x10_0000n),
    ).toBe(true);
  });

  it('auto IOVA: never 0, aligned to the mapping, inside the usable ranges', () => {
    const { fd, memory } = h();
    const ioas = fd.ioasAlloc();
    const a = fd.ioasMap({ ioasId: ioas, memory: memory(0n, 64n * KiB), length: 64n * KiB, ...RW });
    const b = fd.ioasMap({ ioasId: ioas, memory: memory(64n * KiB, 4n * KiB), length: 4n * KiB, ...RW });
    expect(a).not.toBe(0n);
    expect(a % (64n * KiB)).toBe(0n);
    expect(b === a || (b >= a && b < a + 64n * KiB)).toBe(false);
  });

  it('IOAS_UNMAP removes whole areas only: a cut is ENOENT, (0, U64_MAX) unmaps all, even when empty', () => {
    const { fd, memory } = h();
    const ioas = fd.ioasAlloc();
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 8n * KiB), length: 8n * KiB, iova: 0x20_0000n, ...RW });
    fd.ioasMap({
      ioasId: ioas,
      memory: memory(8n * KiB, 4n * KiB),
      length: 4n * KiB,
      iova: 0x30_0000n,
      ...RW,
    });
    expectErrno(() => fd.ioasUnmap(ioas, 0x20_0000n, 4n * KiB), 'ENOENT');
    expectErrno(() => fd.ioasUnmap(ioas, 0x40_0000n, 4n * KiB), 'ENOENT');
    expectErrno(() => fd.ioasUnmap(ioas, 0x20_0000n, 0n), 'EINVAL');
    expect(fd.ioasUnmap(ioas, 0n, U64_MAX)).toBe(12n * KiB);
    expect(fd.ioasUnmap(ioas, 0n, U64_MAX)).toBe(0n);
  });

  it('IOAS_MAP at a fixed IOVA: EEXIST over an area, EINVAL without READ/WRITE or misaligned once a domain is attached', () => {
    const { fd, devId0, memory } = h();
    const ioas = fd.ioasAlloc();
    fd.attach(devId0, ioas);
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 8n * KiB), length: 8n * KiB, iova: 0x20_0000n, ...RW });
    expectErrno(
      () =>
        fd.ioasMap({ ioasId: ioas, memory: memory(0n, 4n * KiB), length: 4n * KiB, iova: 0x20_1000n, ...RW }),
      'EEXIST',
    );
    expectErrno(
      () =>
        fd.ioasMap({
          ioasId: ioas,
          memory: memory(0n, 4n * KiB),
          length: 4n * KiB,
          iova: 0x50_0000n,
          readable: false,
          writeable: false,
        }),
      'EINVAL',
    );
    expectErrno(
      () =>
        fd.ioasMap({ ioasId: ioas, memory: memory(0n, 4n * KiB), length: 4n * KiB, iova: 0x50_0800n, ...RW }),
      'EINVAL',
    );
  });

  it("the device's reserved regions are reserved in the IOAS while it is attached", () => {
    const { fd, devId0, dev0, system, memory } = h();
    const regions = system.iommu('iommu0').driver.reservedRegions?.(dev0) ?? [];
    const ioas = fd.ioasAlloc();
    fd.attach(devId0, ioas);
    const { ranges } = fd.ioasIovaRanges(ioas);
    for (const region of regions) {
      const last = region.start + region.length - 1n;
      expect(ranges.some((r) => r.start <= last && region.start <= r.last)).toBe(false);
      expectErrno(
        () =>
          fd.ioasMap({
            ioasId: ioas,
            memory: memory(0n, 4n * KiB),
            length: 4n * KiB,
            iova: region.start,
            ...RW,
          }),
        'EINVAL',
      );
    }
    fd.detach(devId0);
    const after = fd.ioasIovaRanges(ioas).ranges;
    for (const region of regions)
      expect(after.some((r) => r.start <= region.start && region.start <= r.last)).toBe(true);
  });

  it('IOAS_COPY: the copy maps the same pages, so DMA through it lands in the same memory', () => {
    const { fd, devId0, dev0, memory, buffer, read } = h();
    const src = fd.ioasAlloc();
    const dst = fd.ioasAlloc();
    fd.ioasMap({ ioasId: src, memory: memory(0n, 16n * KiB), length: 16n * KiB, iova: 0x10_0000n, ...RW });
    const iova = fd.ioasCopy({
      srcIoasId: src,
      dstIoasId: dst,
      srcIova: 0x10_2000n,
      length: 8n * KiB,
      dstIova: 0x90_0000n,
      ...RW,
    });
    expect(iova).toBe(0x90_0000n);
    fd.attach(devId0, dst);
    expectDmaOk(dev0.dmaWrite(0x90_0010n, Uint8Array.of(7)));
    expect(read(buffer + 0x2010n, 1)[0]).toBe(7);
    expectErrno(
      () => fd.ioasCopy({ srcIoasId: src, dstIoasId: dst, srcIova: 0x20_0000n, length: 4n * KiB, ...RW }),
      'ENOENT',
    );
  });

  it('IOAS_ALLOW_IOVAS: auto allocation stays inside; a range over a reserved region is EADDRINUSE', () => {
    const { fd, devId0, dev0, system, memory } = h();
    const ioas = fd.ioasAlloc();
    fd.ioasAllowIovas(ioas, [{ start: 0x7000_0000n, last: 0x7fff_ffffn }]);
    const iova = fd.ioasMap({ ioasId: ioas, memory: memory(0n, 4n * KiB), length: 4n * KiB, ...RW });
    expect(iova >= 0x7000_0000n && iova <= 0x7fff_ffffn).toBe(true);
    const region = system.iommu('iommu0').driver.reservedRegions?.(dev0)[0];
    if (!region) return;
    fd.ioasAllowIovas(ioas, []);
    fd.attach(devId0, ioas);
    expectErrno(
      () => fd.ioasAllowIovas(ioas, [{ start: region.start, last: region.start + region.length - 1n }]),
      'EADDRINUSE',
    );
  });

  it('IOMMU_OPTION_HUGE_PAGES off: refused while domains and areas exist', () => {
    const { fd, devId0, memory } = h();
    const ioas = fd.ioasAlloc();
    fd.ioasSetHugePages(ioas, false);
    fd.ioasSetHugePages(ioas, true);
    fd.attach(devId0, ioas);
    fd.ioasMap({ ioasId: ioas, memory: memory(0n, 4n * KiB), length: 4n * KiB, iova: 0x10_0000n, ...RW });
    expectErrno(() => fd.ioasSetHugePages(ioas, false), 'EINVAL');
  });
}
