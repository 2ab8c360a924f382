/** IOMMU_IOAS_COPY (ioas-copy.ts) through `IommuFd`: ranges over several areas, rollback, argument checks. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asFakeDomain } from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig, RW } from '../../test/iommufd-rig.js';
import { iova, U64_MAX } from '../address/address.js';
import { errnoOf } from '../errors/iommufd-error.js';

const PAGE = 0x1000n;
const SRC = 0x10_0000n;
const DST = 0x40_0000n;

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

/** A source IOAS with three adjacent areas from different parts of the buffer: [IOVA offset, buffer offset, length]. */
const AREAS = [
  [0n, 0n, 2n * PAGE],
  [2n * PAGE, 0x8000n, PAGE],
  [3n * PAGE, 0x2_0000n, 3n * PAGE],
] as const;

function setup() {
  const { fd, memory } = r;
  const src = fd.ioasAlloc();
  for (const [at, offset, length] of AREAS)
    fd.ioasMap({ ioasId: src, memory, offset, iova: SRC + at, length, ...RW });
  const dst = fd.ioasAlloc();
  // dev1 attached to the destination shows what is mapped there.
  fd.attach(r.devId1, dst);
  const domain = asFakeDomain(r.system.iommuCore.domainAt(r.system.device('dev1')));
  const physAt = (at: bigint) => domain.iovaToPhys(iova(at));
  const copy = (srcIova: bigint, length: bigint, dstIova?: bigint) =>
    fd.ioasCopy({ srcIoasId: src, dstIoasId: dst, srcIova, length, dstIova, ...RW });
  return { src, dst, physAt, copy };
}

describe('IOAS_COPY', () => {
  it('a range over three areas maps each piece of memory after the previous one, clipped at both ends', () => {
    const { fd } = r;
    const { dst, physAt, copy } = setup();
    // From the second page of the first area to the second page of the third.
    expect(copy(SRC + PAGE, 4n * PAGE, DST)).toBe(DST);
    expect([0n, 1n, 2n, 3n, 4n].map((n) => physAt(DST + n * PAGE))).toEqual([
      r.buffer + PAGE,
      r.buffer + 0x8000n,
      r.buffer + 0x2_0000n,
      r.buffer + 0x2_1000n,
      undefined,
    ]);
    expect(physAt(DST - PAGE)).toBeUndefined();
    // One destination area per source piece: each unmaps alone.
    expect(fd.ioasUnmap(dst, DST + PAGE, PAGE)).toBe(PAGE);
    expect(errnoOf(() => fd.ioasUnmap(dst, DST + 2n * PAGE, PAGE))).toBe('ENOENT');
    expect(fd.ioasUnmap(dst, DST, U64_MAX - DST)).toBe(3n * PAGE);
  });

  it('without a destination IOVA the pieces still follow each other from the IOVA it picked', () => {
    const { physAt, copy } = setup();
    const at = copy(SRC + PAGE, 4n * PAGE);
    expect([0n, 1n, 2n, 3n].map((n) => physAt(at + n * PAGE))).toEqual([
      r.buffer + PAGE,
      r.buffer + 0x8000n,
      r.buffer + 0x2_0000n,
      r.buffer + 0x2_1000n,
    ]);
  });

  it('a failure part-way (the third piece hits a mapped area) unmaps the pieces already copied', () => {
    const { fd } = r;
    const { dst, physAt, copy } = setup();
    fd.ioasMap({
      ioasId: dst,
      memory: r.memory,
      offset: 0x4_0000n,
      iova: DST + 3n * PAGE,
      length: PAGE,
      ...RW,
    });
    expect(errnoOf(() => copy(SRC, 4n * PAGE, DST + PAGE))).toBe('EEXIST');
    expect([1n, 2n, 3n, 4n].map((n) => physAt(DST + n * PAGE))).toEqual([
      undefined,
      undefined,
      r.buffer + 0x4_0000n,
      undefined,
    ]);
    expect(fd.ioasUnmap(dst, 0n, U64_MAX)).toBe(PAGE);
  });

  it.each([
    ['a length of 2^64 − 1', { srcIova: 0n, length: U64_MAX }, 'EOVERFLOW'],
    ['a source IOVA of 2^64 − 1, before the zero length', { srcIova: U64_MAX, length: 0n }, 'EOVERFLOW'],
    ['a destination IOVA of 2^64 − 1, before the zero length', { dstIova: U64_MAX, length: 0n }, 'EOVERFLOW'],
    ['a source range past 2^64 − 1', { srcIova: U64_MAX - PAGE + 1n, length: 2n * PAGE }, 'EOVERFLOW'],
    ['an unmapped source range ending at 2^64 − 1', { srcIova: U64_MAX - PAGE + 1n, length: PAGE }, 'ENOENT'],
    [
      'neither READABLE nor WRITEABLE, before the unmapped source',
      { srcIova: 0x9000_0000n, readable: false, writeable: false },
      'EINVAL',
    ],
  ])('%s is %s (iommufd_ioas_copy)', (_, change, code) => {
    const { src, dst } = setup();
    const request = {
      srcIoasId: src,
      dstIoasId: dst,
      srcIova: SRC,
      length: PAGE,
      dstIova: DST,
      ...RW,
      ...change,
    };
    expect(errnoOf(() => r.fd.ioasCopy(request))).toBe(code);
  });

  it.each([
    ['read-only', { readable: true, writeable: false }],
    ['write-only', { readable: false, writeable: true }],
  ])('a %s copy is allowed', (_, prot) => {
    const { src, dst, physAt } = setup();
    expect(
      r.fd.ioasCopy({ srcIoasId: src, dstIoasId: dst, srcIova: SRC, length: PAGE, dstIova: DST, ...prot }),
    ).toBe(DST);
    expect(physAt(DST)).toBe(r.buffer);
  });
});
