/**
 * Nesting: a nest-parent HWPT as stage 2 (the VM's GPA space), a nested HWPT from vendor data whose
 * stage-1 table lives in "guest" memory, user invalidation with the partial-failure convention. Through a
 * vIOMMU (SMMUv3, AMD): a vIOMMU and vDEVICE on the parent, nested HWPTs and invalidations on the vIOMMU,
 * and vEVENTQ delivery with its lost-events marker. On the parent itself (VT-d, no vIOMMU object): nested
 * HWPTs on the parent HWPT, invalidated through their own ids; the vIOMMU cases are skipped as not
 * applicable.
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
  /** The vIOMMU, when the plugin nests through one. */
  readonly viommu: number | undefined;
  readonly vdevice: number | undefined;
  readonly nested: number;
  /** What nested HWPTs are allocated on: the vIOMMU, or the parent HWPT. */
  readonly nestOn: number;
  /** What user invalidations go to: the vIOMMU, or the nested HWPT `nested`. */
  invalidateTarget(nested: number): number;
}

/** Writes a stage-1 table at `from` in the test's guest memory mapping `maps`; returns the vendor data. */
function guestStage1(h: Harness, hooks: NestingHooks, maps: { iova: bigint; ipa: bigint }[], from: bigint) {
  let next = from;
  const counter = h.system.bus.counter('conformance');
  return hooks.buildStage1({
    maps,
    tag: 7,
    allocIpa: () => {
      const page = next;
      next += 4n * KiB;
      return page;
    },
    write: (ipa, words) => {
      if (ipa < GPA_BASE || ipa >= GPA_BASE + 1024n * KiB)
        throw new Error(`IPA ${toHex(ipa)} is outside the test's guest memory`);
      h.system.bus.writeWords(Number(h.buffer + (ipa - GPA_BASE)), words, words.length, counter);
    },
  });
}

/**
 * Builds stage 2 (buffer at GPA_BASE), a vIOMMU and dev0's vDEVICE when the plugin nests through one, and a
 * nested HWPT mapping DATA_IOVA → GPA_BASE.
 */
function nest(h: Harness, hooks: NestingHooks): Nest {
  const { fd, devId0, memory } = h;
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
  const viommu = hooks.viommuType === undefined ? undefined : fd.viommuAlloc(devId0, s2, hooks.viommuType);
  const vdevice = viommu === undefined ? undefined : fd.vdeviceAlloc(viommu, devId0, VIRT_ID);
  const nestOn = viommu ?? s2;
  const data = guestStage1(h, hooks, [{ iova: DATA_IOVA, ipa: GPA_BASE }], TABLES_GPA);
  const nested = fd.hwptAlloc({ devId: devId0, ptId: nestOn, data });
  return { s2, viommu, vdevice, nested, nestOn, invalidateTarget: (n) => viommu ?? n };
}

/** Registers a case that needs a vIOMMU, or reports it skipped with the reason when the plugin has none. */
function viommuCase(
  hooks: NestingHooks,
  name: string,
  body: (viommuType: string, veventType: string) => void,
) {
  const { viommuType, veventType } = hooks;
  if (viommuType === undefined || veventType === undefined)
    it.skip(`${name} — not applicable: the plugin nests on the parent HWPT, without a vIOMMU`, () => {});
  else it(name, () => body(viommuType, veventType));
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

  it('nested HWPT rules: a nest parent only, vendor data needed, no flags but PASID', () => {
    const { fd, devId0 } = h();
    const { nestOn } = nest(h(), hooks);
    const plain = fd.hwptAlloc({ devId: devId0, ptId: fd.ioasAlloc() });
    const data = guestStage1(h(), hooks, [{ iova: DATA_IOVA, ipa: GPA_BASE }], TABLES_GPA + 256n * KiB);
    // iommufd_hwpt_nested_alloc: a driver that nests only through a vIOMMU is EOPNOTSUPP before the parent's
    // checks; one that nests on a HWPT refuses a parent that is not a nest parent with EINVAL.
    const nestsOnHwpt = h().system.iommus[0]!.driver.domainAllocNested !== undefined;
    expectErrno(
      () => fd.hwptAlloc({ devId: devId0, ptId: plain, data }),
      nestsOnHwpt ? 'EINVAL' : 'EOPNOTSUPP',
    );
    // No vendor data (`!user_data->len`) and flags other than PASID are EOPNOTSUPP.
    expectErrno(() => fd.hwptAlloc({ devId: devId0, ptId: nestOn }), 'EOPNOTSUPP');
    expectErrno(
      () => fd.hwptAlloc({ devId: devId0, ptId: nestOn, data, flags: { nestParent: true } }),
      'EOPNOTSUPP',
    );
    expectErrno(
      () => fd.hwptAlloc({ devId: devId0, ptId: nestOn, data, flags: { dirtyTracking: true } }),
      'EOPNOTSUPP',
    );
    if (hooks.viommuType === undefined)
      expectErrno(() => fd.viommuAlloc(devId0, nestOn, 'arm-smmuv3'), 'EOPNOTSUPP');
  });

  viommuCase(
    hooks,
    'vIOMMU and vDEVICE rules: nest parent only, one vDEVICE per device, unique virtual IDs',
    (viommuType) => {
      const { fd, devId0, devId1 } = h();
      const { s2, viommu: v } = nest(h(), hooks);
      const viommu = v!;
      const plain = fd.hwptAlloc({ devId: devId0, ptId: fd.ioasAlloc() });
      expectErrno(() => fd.viommuAlloc(devId0, plain, viommuType), 'EINVAL');
      expectErrno(() => fd.viommuAlloc(devId0, s2, 'default'), 'EOPNOTSUPP');
      expectErrno(() => fd.vdeviceAlloc(viommu, devId0, VIRT_ID + 1n), 'EEXIST');
      expectErrno(() => fd.vdeviceAlloc(viommu, devId1, VIRT_ID), 'EEXIST');
      expect(fd.vdeviceAlloc(viommu, devId1, VIRT_ID + 1n)).toBeGreaterThan(0);
    },
  );

  it('HWPT_INVALIDATE stops at the first bad entry and reports how many took effect', () => {
    const { fd } = h();
    const { nested, invalidateTarget } = nest(h(), hooks);
    const target = invalidateTarget(nested);
    const good = hooks.validInvalidation(7);
    expect(fd.hwptInvalidate(target, [good, good])).toEqual({ handled: 2 });
    expect(fd.hwptInvalidate(target, [])).toEqual({ handled: 0 });
    let error: unknown;
    try {
      fd.hwptInvalidate(target, [good, good, hooks.invalidInvalidation.entry, good]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IommufdError);
    expect((error as IommufdError).code).toBe(hooks.invalidInvalidation.errno);
    expect((error as IommufdError).context.handled).toBe(2);
  });

  it('a stale stage-1 translation stays until the guest invalidates it', () => {
    const { fd, devId0, dev0, buffer, read } = h();
    const { nested, nestOn, invalidateTarget } = nest(h(), hooks);
    fd.attach(devId0, nested);
    expectDmaOk(dev0.dmaWrite(DATA_IOVA, Uint8Array.of(1)));
    // The guest rewrites its stage-1 table to point DATA_IOVA at the second data page, without invalidating.
    const data = guestStage1(
      h(),
      hooks,
      [{ iova: DATA_IOVA, ipa: GPA_BASE + 4n * KiB }],
      TABLES_GPA + 128n * KiB,
    );
    const moved = fd.hwptAlloc({ devId: devId0, ptId: nestOn, data });
    fd.replace(devId0, moved);
    // Same tag on the same stage 2: the IOTLB may still serve the old translation until invalidated.
    expectDmaOk(dev0.dmaWrite(DATA_IOVA, Uint8Array.of(2)));
    fd.hwptInvalidate(invalidateTarget(moved), [hooks.validInvalidation(7)]);
    expectDmaOk(dev0.dmaWrite(DATA_IOVA, Uint8Array.of(3)));
    expect(read(buffer + 4n * KiB, 1)[0]).toBe(3);
  });

  viommuCase(
    hooks,
    'vEVENTQ: faults of a vDEVICE arrive in order with sequence numbers; overflow leaves one lost-events marker',
    (_, veventType) => {
      const { fd, devId0, dev0, service } = h();
      const { nested, viommu: v } = nest(h(), hooks);
      const viommu = v!;
      fd.attach(devId0, nested);
      const queue = fd.veventqAlloc(viommu, veventType, 2);
      expectErrno(() => fd.veventqAlloc(viommu, veventType, 2), 'EEXIST');
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
    },
  );

  it('destroy order: the parent is busy while a vIOMMU or nested HWPT uses it, each while its users live', () => {
    const { fd, devId0 } = h();
    const { s2, viommu, vdevice, nested } = nest(h(), hooks);
    fd.attach(devId0, nested);
    expectErrno(() => fd.destroy(s2), 'EBUSY');
    expectErrno(() => fd.destroy(viommu ?? nested), 'EBUSY');
    fd.detach(devId0);
    fd.destroy(nested);
    if (vdevice !== undefined) fd.destroy(vdevice);
    if (viommu !== undefined) fd.destroy(viommu);
    fd.destroy(s2);
  });

  viommuCase(
    hooks,
    'unbinding a device destroys its vDEVICE and tombstones the ID: ENOENT, and the ID is not reused',
    (_, veventType) => {
      const { fd, devId0 } = h();
      const { viommu, vdevice } = nest(h(), hooks);
      fd.unbind(devId0);
      expectErrno(() => fd.destroy(vdevice!), 'ENOENT');
      const fresh = fd.veventqAlloc(viommu!, veventType, 4);
      expect(fresh).not.toBe(vdevice);
    },
  );
}
