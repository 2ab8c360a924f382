/** `IommuFd` driven directly, on the fake iommufd plugin: argument checks and the kernel's errno choices. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  asFakeDomain,
  FAKE_IOMMU_PASID_BITS,
  FAKE_VIOMMU_TYPE,
  fakeIommufdConfig,
  fakeIommufdRegistry,
} from '../../test/fake-iommufd-plugin.js';
import { iommufdErrorOf } from '../../test/iommufd-error-of.js';
import type { Hpa } from '../address/address.js';
import { errnoOf } from '../errors/iommufd-error.js';
import { createSystem } from '../system/create-system.js';
import type { System } from '../system/system.js';
import type { IommuFd } from './iommufd.js';
import { hostMemory } from './user-memory.js';

const KiB = 1024n;
const MiB = 1024n * KiB;
const RW = { readable: true, writeable: true };

let system: System;
let fd: IommuFd;
let devId0: number;
let devId1: number;
/** A 1 MiB host buffer in the middle of RAM, with host pages on both sides. */
let buffer: Hpa;

beforeEach(async () => {
  system = await createSystem(fakeIommufdConfig(), { registry: fakeIommufdRegistry() });
  buffer = system.memory.allocBytes(Number(MiB), Number(MiB));
  fd = system.openIommufd();
  devId0 = fd.bind(system.device('dev0'));
  devId1 = fd.bind(system.device('dev1'));
});

afterEach(async () => {
  fd.close();
  await system.dispose();
});

/** A paging HWPT on a fresh IOAS with `length` bytes of the buffer mapped at `iova`. */
function mappedHwpt(iova: bigint, length: bigint, flags = {}) {
  const ioas = fd.ioasAlloc();
  fd.ioasMap({ ioasId: ioas, memory: hostMemory(buffer, MiB), length, iova, ...RW });
  return { ioas, hwpt: fd.hwptAlloc({ devId: devId0, ptId: ioas, flags }) };
}

describe('IommuFd: user memory ranges (IOAS_MAP, IOAS_COPY)', () => {
  it('IOAS_MAP with a negative offset is refused and maps nothing outside the memory', () => {
    const ioas = fd.ioasAlloc();
    const memory = hostMemory(buffer, MiB);
    expect(
      errnoOf(() => fd.ioasMap({ ioasId: ioas, memory, offset: -0x1000n, length: 0x2000n, ...RW })),
    ).toBe('EINVAL');
    expect(
      errnoOf(() =>
        fd.ioasMap({ ioasId: ioas, memory, offset: MiB - 0x1000n, length: 0x2000n, iova: 0n, ...RW }),
      ),
    ).toBe('EINVAL');
    expect(fd.ioasIovaRanges(ioas).ranges).toHaveLength(1);
    expect(fd.ioasUnmap(ioas, 0n, (1n << 64n) - 1n)).toBe(0n);
  });

  it('IOAS_MAP with a negative or fractional length is refused; unmap-all and close still work', () => {
    const ioas = fd.ioasAlloc();
    const memory = hostMemory(buffer, MiB);
    expect(errnoOf(() => fd.ioasMap({ ioasId: ioas, memory, length: -0x1000n, ...RW }))).toBe('EINVAL');
    expect(errnoOf(() => fd.ioasMap({ ioasId: ioas, memory, length: 0.5 as unknown as bigint, ...RW }))).toBe(
      'EINVAL',
    );
    expect(fd.ioasUnmap(ioas, 0n, (1n << 64n) - 1n)).toBe(0n);
    fd.close();
    expect(fd.objects()).toEqual([]);
  });

  it('IOAS_MAP takes a number where a bigint is expected, as the same value', () => {
    const ioas = fd.ioasAlloc();
    const memory = hostMemory(buffer, MiB);
    const at = fd.ioasMap({
      ioasId: ioas,
      memory,
      offset: 0x1000 as unknown as bigint,
      length: 0x2000 as unknown as bigint,
      iova: 0x10_0000 as unknown as bigint,
      ...RW,
    });
    expect(at).toBe(0x10_0000n);
    expect(fd.ioasUnmap(ioas, 0x10_0000n, 0x2000n)).toBe(0x2000n);
  });

  it('IOAS_COPY with a negative length is EINVAL, zero length EINVAL, a hole ENOENT', () => {
    const src = fd.ioasAlloc();
    const dst = fd.ioasAlloc();
    fd.ioasMap({ ioasId: src, memory: hostMemory(buffer, MiB), length: 0x4000n, iova: 0x10_0000n, ...RW });
    const copy = (length: bigint) => () =>
      fd.ioasCopy({ srcIoasId: src, dstIoasId: dst, srcIova: 0x10_0000n, length, ...RW });
    expect(errnoOf(copy(-0x1000n))).toBe('EINVAL');
    expect(errnoOf(copy(0n))).toBe('EINVAL');
    expect(errnoOf(copy(0x8000n))).toBe('ENOENT');
    expect(typeof copy(0x2000n)()).toBe('bigint');
  });

  it('IOAS_ALLOW_IOVAS refuses a negative bound and non-array input', () => {
    const ioas = fd.ioasAlloc();
    expect(errnoOf(() => fd.ioasAllowIovas(ioas, [{ start: -1n, last: 5n }]))).toBe('EINVAL');
    expect(errnoOf(() => fd.ioasAllowIovas(ioas, 5 as never))).toBe('EINVAL');
    fd.ioasAllowIovas(ioas, [{ start: 0x1000n, last: 0xffffn }]);
  });
});

describe('IommuFd: numbers and bigints at the API boundary', () => {
  it('vDEVICE_ALLOC: 8 and 8n are the same virtual ID on one vIOMMU', () => {
    const { hwpt } = mappedHwpt(0x10_0000n, 0x1000n, { nestParent: true });
    const viommu = fd.viommuAlloc(devId0, hwpt, FAKE_VIOMMU_TYPE);
    fd.vdeviceAlloc(viommu, devId0, 8 as unknown as bigint);
    expect(errnoOf(() => fd.vdeviceAlloc(viommu, devId1, 8n))).toBe('EEXIST');
  });

  it.each([
    ['ioasUnmap with a number IOVA', () => fd.ioasUnmap(fd.ioasAlloc(), 0x1000 as never, 0x1000n)],
    ['ioasUnmap with NaN', () => fd.ioasUnmap(fd.ioasAlloc(), Number.NaN as never, 0x1000n)],
    ['setSwMsiWindow with numbers', () => fd.setSwMsiWindow(0x100_0000 as never, 0.5 as never)],
    ['vdeviceAlloc with a string', () => fd.vdeviceAlloc(1, devId0, 'x' as never)],
    ['destroy with a fractional ID', () => fd.destroy(1.5)],
    ['ioasMap without a request', () => fd.ioasMap(undefined as never)],
    ['hwptAlloc with a bigint device ID', () => fd.hwptAlloc({ devId: 1n as never, ptId: 3 })],
  ])('%s throws a coded error, not a raw TypeError', (_, call) => {
    const error = iommufdErrorOf(call);
    expect(error).toBeDefined();
    expect(errnoOf(() => call())).toBeDefined();
  });
});

describe('IommuFd: kernel errno choices', () => {
  it('GET_HW_INFO reports min(device PASID width, IOMMU width), 0 and no PASID caps without PASID', () => {
    expect(fd.hwInfo(devId0).maxPasidLog2).toBe(Math.min(8, FAKE_IOMMU_PASID_BITS));
    const none = fd.hwInfo(devId1);
    expect(none.maxPasidLog2).toBe(0);
    expect(none.capabilities.pasidExec).toBe(false);
    expect(none.capabilities.pasidPriv).toBe(false);
  });

  it('HWPT_ALLOC: a missing pt_id or one that cannot be a parent is EINVAL, not ENOENT', () => {
    const fault = fd.faultQueueAlloc();
    expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: 999 }))).toBe('EINVAL');
    expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: devId1 }))).toBe('EINVAL');
    expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: fault }))).toBe('EINVAL');
    expect(errnoOf(() => fd.hwptAlloc({ devId: 999, ptId: fd.ioasAlloc() }))).toBe('ENOENT');
  });

  it('HWPT_ALLOC: unsupported flag combinations are EOPNOTSUPP before the fault ID is looked up', () => {
    const ioas = fd.ioasAlloc();
    expect(
      errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: ioas, flags: { nestParent: true }, faultId: 999 })),
    ).toBe('EOPNOTSUPP');
    expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: ioas, flags: { bogus: true } as never }))).toBe(
      'EOPNOTSUPP',
    );
    expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: ioas, faultId: 999 }))).toBe('ENOENT');
    expect(fd.objects().map((o) => o.type)).toEqual(['device', 'device', 'ioas']);
  });

  // Linux iommufd_hwpt_nested_alloc / iommufd_viommu_alloc_hwpt_nested: `!user_data->len` is EOPNOTSUPP.
  describe('HWPT_ALLOC of a nested HWPT without vendor data (data_len 0)', () => {
    function nestParent() {
      return mappedHwpt(0x10_0000n, 0x1000n, { nestParent: true }).hwpt;
    }

    it('on a nest-parent HWPT is EOPNOTSUPP, and nothing is allocated', () => {
      const s2 = nestParent();
      const before = fd.objects();
      expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: s2 }))).toBe('EOPNOTSUPP');
      expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: s2, data: undefined }))).toBe('EOPNOTSUPP');
      expect(fd.objects()).toEqual(before);
      expect(fd.hwptAlloc({ devId: devId0, ptId: s2, data: { tag: 1 } })).toBeGreaterThan(0);
    });

    it('on a vIOMMU is EOPNOTSUPP, and nothing is allocated', () => {
      const viommu = fd.viommuAlloc(devId0, nestParent(), FAKE_VIOMMU_TYPE);
      const before = fd.objects();
      expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: viommu }))).toBe('EOPNOTSUPP');
      expect(fd.objects()).toEqual(before);
      expect(fd.hwptAlloc({ devId: devId0, ptId: viommu, data: { tag: 1 } })).toBeGreaterThan(0);
    });

    it('is checked with the flags, before the parent: a plain or auto HWPT parent is still EOPNOTSUPP', () => {
      const { ioas, hwpt: plain } = mappedHwpt(0x10_0000n, 0x1000n);
      const auto = fd.attach(devId1, ioas);
      expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: plain }))).toBe('EOPNOTSUPP');
      expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: auto }))).toBe('EOPNOTSUPP');
      // With vendor data the parent check answers.
      expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: plain, data: { tag: 1 } }))).toBe('EINVAL');
      expect(
        errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: nestParent(), flags: { dirtyTracking: true } })),
      ).toBe('EOPNOTSUPP');
    });

    it('with vendor data, a driver that nests only through a vIOMMU is EOPNOTSUPP before the parent checks', () => {
      const { hwpt: plain } = mappedHwpt(0x10_0000n, 0x1000n);
      const s2 = nestParent();
      // A driver without domainAllocNested (SMMUv3 nests through its vIOMMU only).
      Object.defineProperty(system.iommus[0]!.driver, 'domainAllocNested', { value: undefined });
      const before = fd.objects();
      expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: plain, data: { tag: 1 } }))).toBe(
        'EOPNOTSUPP',
      );
      expect(errnoOf(() => fd.hwptAlloc({ devId: devId0, ptId: s2, data: { tag: 1 } }))).toBe('EOPNOTSUPP');
      expect(fd.objects()).toEqual(before);
    });

    it('on a vIOMMU of another IOMMU is EINVAL first, whatever the flags and data (iommufd_hwpt_alloc)', async () => {
      const config = fakeIommufdConfig();
      const two = await createSystem(
        {
          ...config,
          iommus: [...(config.iommus as object[]), { name: 'iommu1', base: '0x0a00_0000' }],
          devices: [...(config.devices as object[]), { name: 'dev2', rid: '00:04.0', iommu: 'iommu1' }],
        },
        { registry: fakeIommufdRegistry() },
      );
      const fd2 = two.openIommufd();
      try {
        const dev0 = fd2.bind(two.device('dev0'));
        const dev2 = fd2.bind(two.device('dev2'));
        const s2 = fd2.hwptAlloc({ devId: dev0, ptId: fd2.ioasAlloc(), flags: { nestParent: true } });
        const viommu = fd2.viommuAlloc(dev0, s2, FAKE_VIOMMU_TYPE);
        expect(errnoOf(() => fd2.hwptAlloc({ devId: dev2, ptId: viommu }))).toBe('EINVAL');
        expect(errnoOf(() => fd2.hwptAlloc({ devId: dev2, ptId: viommu, flags: { nestParent: true } }))).toBe(
          'EINVAL',
        );
        expect(errnoOf(() => fd2.hwptAlloc({ devId: dev0, ptId: viommu, flags: { nestParent: true } }))).toBe(
          'EOPNOTSUPP',
        );
      } finally {
        fd2.close();
        await two.dispose();
      }
    });
  });

  it('DESTROY of a bound device is EBUSY; after unbind it can be bound again', () => {
    expect(errnoOf(() => fd.destroy(devId1))).toBe('EBUSY');
    fd.unbind(devId1);
    expect(fd.bind(system.device('dev1'))).toBeGreaterThan(0);
  });

  it('HWPT_INVALIDATE on an object that is neither a nested HWPT nor a vIOMMU is EINVAL', () => {
    expect(errnoOf(() => fd.hwptInvalidate(devId0, []))).toBe('EINVAL');
    expect(errnoOf(() => fd.hwptInvalidate(999, []))).toBe('ENOENT');
  });
});

describe('IommuFd: GET_DIRTY_BITMAP into a caller-provided bitmap', () => {
  function dirtyHwpt() {
    const { hwpt } = mappedHwpt(0x10_0000n, 16n * KiB, { dirtyTracking: true });
    fd.attach(devId0, hwpt);
    fd.hwptSetDirtyTracking(hwpt, true);
    const domain = asFakeDomain(system.iommuCore.domainAt(system.device('dev0')));
    return { hwpt, domain };
  }

  it('sets one bit per page (u64 words, little-endian bit order) and clears unless noClear', () => {
    const { hwpt, domain } = dirtyHwpt();
    domain.write(0x10_1000n);
    domain.write(0x10_3ff0n);
    const request = { iova: 0x10_0000n, length: 16n * KiB, pageSize: 4n * KiB };
    const bytes = new Uint8Array(1);
    fd.hwptGetDirtyBitmap(hwpt, { ...request, bitmap: bytes, noClear: true });
    expect([...bytes]).toEqual([0b1010]);
    const words = new BigUint64Array(1);
    fd.hwptGetDirtyBitmap(hwpt, { ...request, bitmap: words });
    expect(words[0]).toBe(0b1010n);
    const again = new Uint8Array(1);
    fd.hwptGetDirtyBitmap(hwpt, { ...request, bitmap: again });
    expect([...again]).toEqual([0]);
  });

  it('a huge range needs a bitmap of its size: too small is EFAULT, nothing allocated or cleared', () => {
    const { hwpt, domain } = dirtyHwpt();
    domain.write(0x10_0000n);
    const huge = { iova: 0n, length: 1n << 50n, pageSize: 4n * KiB };
    expect(errnoOf(() => fd.hwptGetDirtyBitmap(hwpt, { ...huge, bitmap: new Uint8Array(8) }))).toBe('EFAULT');
    const bits = new Uint8Array(1);
    fd.hwptGetDirtyBitmap(hwpt, { iova: 0x10_0000n, length: 16n * KiB, pageSize: 4n * KiB, bitmap: bits });
    expect([...bits]).toEqual([1]);
  });

  it.each([
    ['a zero page size', { pageSize: 0n }, 'EINVAL'],
    ['a page size that is not a power of two', { pageSize: 3n * KiB }, 'EINVAL'],
    ['a misaligned IOVA', { iova: 0x10_0800n }, 'EINVAL'],
    ['a range past 2^64 − 1', { iova: (1n << 63n) + 4096n, length: 1n << 63n }, 'EOVERFLOW'],
    ['a negative length', { length: -4096n }, 'EINVAL'],
    ['no bitmap', { bitmap: undefined }, 'EINVAL'],
  ])('%s is %s', (_, change, code) => {
    const { hwpt } = dirtyHwpt();
    const request = {
      iova: 0x10_0000n,
      length: 16n * KiB,
      pageSize: 4n * KiB,
      bitmap: new Uint8Array(8),
      ...change,
    };
    expect(errnoOf(() => fd.hwptGetDirtyBitmap(hwpt, request as never))).toBe(code);
  });
});
