/**
 * Nesting through a vIOMMU: a nest-parent HWPT as stage 2 (the VM's GPA space), a vIOMMU and vDEVICE on
 * it, a nested HWPT from vendor data whose stage-1 table lives in "guest" memory, user invalidation with
 * the partial-failure convention, and vEVENTQ delivery with its lost-events marker.
 */
import { IommufdError, toHex } from '@iommukit/core';
import { expect, it } from 'vitest';
import { expectDmaFault, expectDmaOk, expectErrno } from '../expect-errno.js';
import type { Harness } from '../harness.js';
import type { NestingHooks } from '../options.js';

const KiB = 1024n;
/** Guest-physical address of the harness buffer in the stage-2 IOAS. */
const GPA_BASE = 0x4000_0000n;
/** Guest page the stage-1 tables start at (the first half of the buffer is data). */
const TABLES_GPA = GPA_BASE + 512n * KiB;
const DATA_IOVA = 0x1000_0000n;
const VIRT_ID = 0x42n;

interface Nest {
  readonly s2: number;
  readonly viommu: number;
  readonly vdevice: number;
  readonly nested: number;
}

/** Builds stage 2 (buffer at GPA_BASE), a vIOMMU, dev0's vDEVICE and a nested HWPT mapping DATA_IOVA → GPA_BASE. */
function nest(h: Harness, hooks: NestingHooks, tag = 7): Nest {
  const { fd, devId0, memory, system } = h;
  const s2Ioas = fd.ioasAlloc();
  fd.ioasMap({
    ioasId: s2Ioas,
    memory: memory(),
    length: 1024n * KiB,
    iova: GPA_BASE,
    readable: true,
    writeable: true,
  });
  const s2 = fd.hwptAlloc({ devId: devId0, ptId: s2Ioas, flags: { nestParent: true } });
  const viommu = fd.viommuAlloc(devId0, s2, hooks.viommuType);
  const vdevice = fd.vdeviceAlloc(viommu, devId0, VIRT_ID);
  let next = TABLES_GPA;
  const counter = system.bus.counter('conformance');
  const data = hooks.buildStage1({
    maps: [{ iova: DATA_IOVA, ipa: GPA_BASE }],
    tag,
    allocIpa: () => {
      const page = next;
      next += 4n * KiB;
      return page;
    },
    write: (ipa, words) => {
      if (ipa < GPA_BASE || ipa >= GPA_BASE + 1024n * KiB)
        throw new Error(`IPA ${toHex(ipa)} is outside the test's guest memory`);
      system.bus.writeWords(Number(h.buffer + (ipa - GPA_BASE)), words, words.length, counter);
    },
  });
  const nested = fd.hwptAlloc({ devId: devId0, ptId: viommu, data });
  return { s2, viommu, vdevice, nested };
}

export function nestingCases(h: () => Harness, hooks: NestingHooks | undefined): void {
  if (!hooks) return;

  it('a nested HWPT translates DMA through the guest stage-1 table and the stage-2 parent', () => {
    const { fd, devId0, dev0, buffer, read } = h();
    const { nested } = nest(h(), hooks);
    fd.attach(devId0, nested);
    expectDmaOk(dev0.dmaWrite(DATA_IOVA + 0x20n, Uint8Array.of(0xab)));
    expect(read(buffer + 0x20n, 1)[0]).toBe(0xab);
    expectDmaFault(dev0.dmaWrite(DATA_IOVA + 0x1000n, Uint8Array.of(1)));
  });

  it('vIOMMU and vDEVICE rules: nest parent only, one vDEVICE per device, unique virtual IDs, vendor data needed', () => {
    const { fd, devId0, devId1 } = h();
    const { s2, viommu } = nest(h(), hooks);
    const plain = fd.hwptAlloc({ devId: devId0, ptId: fd.ioasAlloc() });
    expectErrno(() => fd.viommuAlloc(devId0, plain, hooks.viommuType), 'EINVAL');
    expectErrno(() => fd.viommuAlloc(devId0, s2, 'default'), 'EOPNOTSUPP');
    expectErrno(() => fd.vdeviceAlloc(viommu, devId0, VIRT_ID + 1n), 'EEXIST');
    expectErrno(() => fd.vdeviceAlloc(viommu, devId1, VIRT_ID), 'EEXIST');
    expect(fd.vdeviceAlloc(viommu, devId1, VIRT_ID + 1n)).toBeGreaterThan(0);
    // iommufd_hwpt_nested_alloc: a driver that nests only through a vIOMMU is EOPNOTSUPP before the parent's
    // checks; one that nests on a HWPT refuses a parent that is not a nest parent with EINVAL.
    const nestsOnHwpt = h().system.iommus[0]!.driver.domainAllocNested !== undefined;
    expectErrno(
      () => fd.hwptAlloc({ devId: devId0, ptId: plain, data: {} }),
      nestsOnHwpt ? 'EINVAL' : 'EOPNOTSUPP',
    );
    // Linux iommufd_viommu_alloc_hwpt_nested: no vendor data (`!user_data->len`) is EOPNOTSUPP.
    expectErrno(() => fd.hwptAlloc({ devId: devId0, ptId: viommu }), 'EOPNOTSUPP');
  });

  it('HWPT_INVALIDATE stops at the first bad entry and reports how many took effect', () => {
    const { fd } = h();
    const { viommu } = nest(h(), hooks);
    const good = hooks.validInvalidation(7);
    expect(fd.hwptInvalidate(viommu, [good, good])).toEqual({ handled: 2 });
    expect(fd.hwptInvalidate(viommu, [])).toEqual({ handled: 0 });
    let error: unknown;
    try {
      fd.hwptInvalidate(viommu, [good, good, hooks.invalidInvalidation.entry, good]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IommufdError);
    expect((error as IommufdError).code).toBe(hooks.invalidInvalidation.errno);
    expect((error as IommufdError).context.handled).toBe(2);
  });

  it('a stale stage-1 translation stays until the guest invalidates it through the vIOMMU', () => {
    const { fd, devId0, dev0, buffer, read } = h();
    const { nested, viommu } = nest(h(), hooks);
    fd.attach(devId0, nested);
    expectDmaOk(dev0.dmaWrite(DATA_IOVA, Uint8Array.of(1)));
    // The guest rewrites its stage-1 table to point DATA_IOVA at the second data page, without invalidating.
    let next = TABLES_GPA + 128n * KiB;
    const counter = h().system.bus.counter('conformance');
    const data = hooks.buildStage1({
      maps: [{ iova: DATA_IOVA, ipa: GPA_BASE + 4n * KiB }],
      tag: 7,
      allocIpa: () => {
        const page = next;
        next += 4n * KiB;
        return page;
      },
      write: (ipa, words) =>
        h().system.bus.writeWords(Number(buffer + (ipa - GPA_BASE)), words, words.length, counter),
    });
    const moved = fd.hwptAlloc({ devId: devId0, ptId: viommu, data });
    fd.replace(devId0, moved);
    // Same tag on the same stage 2: the IOTLB may still serve the old translation until invalidated.
    expectDmaOk(dev0.dmaWrite(DATA_IOVA, Uint8Array.of(2)));
    fd.hwptInvalidate(viommu, [hooks.validInvalidation(7)]);
    expectDmaOk(dev0.dmaWrite(DATA_IOVA, Uint8Array.of(3)));
    expect(read(buffer + 4n * KiB, 1)[0]).toBe(3);
  });

  it('vEVENTQ: faults of a vDEVICE arrive in order with sequence numbers; overflow leaves one lost-events marker', () => {
    const { fd, devId0, dev0, service } = h();
    const { nested, viommu } = nest(h(), hooks);
    fd.attach(devId0, nested);
    const queue = fd.veventqAlloc(viommu, hooks.veventType, 2);
    expectErrno(() => fd.veventqAlloc(viommu, hooks.veventType, 2), 'EEXIST');
    for (let i = 1n; i <= 4n; i++) expectDmaFault(dev0.dmaWrite(DATA_IOVA + i * 0x1000n, Uint8Array.of(1)));
    service();
    const events = fd.veventqRead(queue);
    expect(events.map((e) => [e.sequence, e.lostEvents])).toEqual([
      [0, false],
      [1, false],
      [3, true],
    ]);
    expect(events[0]?.record?.length).toBeGreaterThan(0);
    expect(fd.veventqRead(queue)).toEqual([]);
    expectDmaFault(dev0.dmaWrite(DATA_IOVA + 0x9000n, Uint8Array.of(1)));
    service();
    expect(fd.veventqRead(queue).map((e) => e.sequence)).toEqual([4]);
  });

  it('destroy order: the parent is busy while a vIOMMU uses it, the vIOMMU while its objects live', () => {
    const { fd, devId0 } = h();
    const { s2, viommu, vdevice, nested } = nest(h(), hooks);
    fd.attach(devId0, nested);
    expectErrno(() => fd.destroy(s2), 'EBUSY');
    expectErrno(() => fd.destroy(viommu), 'EBUSY');
    fd.detach(devId0);
    fd.destroy(nested);
    fd.destroy(vdevice);
    fd.destroy(viommu);
    fd.destroy(s2);
  });

  it('unbinding a device destroys its vDEVICE and tombstones the ID: ENOENT, and the ID is not reused', () => {
    const { fd, devId0 } = h();
    const { viommu, vdevice } = nest(h(), hooks);
    fd.unbind(devId0);
    expectErrno(() => fd.destroy(vdevice), 'ENOENT');
    const fresh = fd.veventqAlloc(viommu, hooks.veventType, 4);
    expect(fresh).not.toBe(vdevice);
  });
}
