/** ShadowMirror on a real iommufd context: what the IOAS maps after each sync, seen through an attached device. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { asFakeDomain } from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig, MiB } from '../../test/iommufd-rig.js';
import { iova } from '../address/address.js';
import { type ShadowLeaf, ShadowMirror } from './shadow-mirror.js';

const GPA = 0x4000_0000n;
const PAGE = 4096n;

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
});
afterEach(() => r.dispose());

function setup() {
  const ioasId = r.fd.ioasAlloc();
  r.fd.attach(r.devId0, ioasId);
  const mirror = new ShadowMirror(r.fd, ioasId, { gpa: GPA, memory: r.memory });
  const domain = asFakeDomain(r.system.iommuCore.domainAt(r.system.device('dev0')));
  /** The host address IOVA page `pfn` reaches, or undefined. */
  const at = (pfn: number) => domain.iovaToPhys(iova(BigInt(pfn) * PAGE));
  const gpaPage = (n: number) => Number(GPA / PAGE) + n;
  return { mirror, at, gpaPage };
}

const leaves = (entries: [number, ShadowLeaf][]) => new Map(entries);

describe('ShadowMirror', () => {
  it('maps what is wanted, unmaps what went or changed, and leaves the rest of the range and outside it alone', () => {
    const { mirror, at, gpaPage } = setup();
    expect(
      mirror.sync(
        0x100,
        0x200,
        leaves([
          [0x100, { gpaPfn: gpaPage(1), writable: true }],
          [0x101, { gpaPfn: gpaPage(2), writable: false }],
          [0x300, { gpaPfn: gpaPage(3), writable: true }], // outside the range: not looked at
        ]),
      ),
    ).toEqual({ mapped: 2, unmapped: 0, outsideRam: 0 });
    expect([at(0x100), at(0x101), at(0x300)]).toEqual([r.buffer + PAGE, r.buffer + 2n * PAGE, undefined]);
    // 0x101 now writable (changed), 0x100 gone, 0x102 new; a sync of another range keeps them.
    const second = leaves([
      [0x101, { gpaPfn: gpaPage(2), writable: true }],
      [0x102, { gpaPfn: gpaPage(4), writable: true }],
    ]);
    expect(mirror.sync(0x100, 0x200, second)).toEqual({ mapped: 2, unmapped: 2, outsideRam: 0 });
    expect(mirror.sync(0x200, 0x300, new Map())).toEqual({ mapped: 0, unmapped: 0, outsideRam: 0 });
    expect([at(0x100), at(0x101), at(0x102)]).toEqual([
      undefined,
      r.buffer + 2n * PAGE,
      r.buffer + 4n * PAGE,
    ]);
    expect([...mirror.mapped.keys()]).toEqual([0x101, 0x102]);
  });

  it('a page outside guest RAM is not mapped, and counted', () => {
    const { mirror, at } = setup();
    const beyond = Number((GPA + MiB) / PAGE);
    expect(mirror.sync(0, 16, leaves([[1, { gpaPfn: beyond, writable: true }]]))).toEqual({
      mapped: 0,
      unmapped: 0,
      outsideRam: 1,
    });
    expect(at(1)).toBeUndefined();
  });

  it('identity maps guest RAM at its GPA; a sync leaves identity and syncs everything', () => {
    const { mirror, at, gpaPage } = setup();
    mirror.sync(0, 16, leaves([[1, { gpaPfn: gpaPage(0), writable: true }]]));
    mirror.setIdentity();
    expect([at(1), at(gpaPage(5))]).toEqual([undefined, r.buffer + 5n * PAGE]);
    mirror.setIdentity();
    expect(mirror.sync(0, 16, leaves([[2, { gpaPfn: gpaPage(7), writable: true }]]))).toEqual({
      mapped: 1,
      unmapped: 0,
      outsideRam: 0,
    });
    expect([at(2), at(gpaPage(5))]).toEqual([r.buffer + 7n * PAGE, undefined]);
    mirror.clear();
    expect(at(2)).toBeUndefined();
    expect(mirror.identity).toBe(false);
  });

  it('the range is half-open and a repeated sync changes nothing; map calls carry the page and its permission', () => {
    const { mirror, at, gpaPage } = setup();
    const map = vi.spyOn(r.fd, 'ioasMap');
    const unmap = vi.spyOn(r.fd, 'ioasUnmap');
    mirror.clear();
    expect(unmap).not.toHaveBeenCalled();
    mirror.sync(0x200, 0x300, leaves([[0x200, { gpaPfn: gpaPage(1), writable: false }]]));
    const wanted = leaves([
      [0x100, { gpaPfn: gpaPage(2), writable: true }],
      [0x1ff, { gpaPfn: gpaPage(3), writable: true }],
      [0x200, { gpaPfn: gpaPage(4), writable: true }],
    ]);
    expect(mirror.sync(0x100, 0x200, wanted)).toEqual({ mapped: 2, unmapped: 0, outsideRam: 0 });
    expect(mirror.sync(0x100, 0x200, wanted)).toEqual({ mapped: 0, unmapped: 0, outsideRam: 0 });
    // 0x200 is outside [0x100, 0x200): it keeps what the first sync gave it.
    expect(mirror.mapped.get(0x200)).toEqual({ gpaPfn: gpaPage(1), writable: false });
    expect(at(0x200)).toBe(r.buffer + PAGE);
    expect(map.mock.calls[0]![0]).toMatchObject({
      iova: 0x200n * PAGE,
      length: PAGE,
      readable: true,
      writeable: false,
    });
  });

  it('guest RAM bounds are exact: its first and last page map, the pages around it do not', () => {
    const { mirror, gpaPage } = setup();
    const pages = Number(MiB / PAGE);
    const result = mirror.sync(
      0,
      16,
      leaves([
        [1, { gpaPfn: gpaPage(0), writable: true }],
        [2, { gpaPfn: gpaPage(pages - 1), writable: true }],
        [3, { gpaPfn: gpaPage(-1), writable: true }],
        [4, { gpaPfn: gpaPage(pages), writable: true }],
      ]),
    );
    expect(result).toEqual({ mapped: 2, unmapped: 0, outsideRam: 2 });
  });

  it('identity is mapped once, readable and writable', () => {
    const { mirror } = setup();
    const map = vi.spyOn(r.fd, 'ioasMap');
    mirror.setIdentity();
    mirror.setIdentity();
    expect(map).toHaveBeenCalledTimes(1);
    expect(map.mock.calls[0]![0]).toMatchObject({ iova: GPA, readable: true, writeable: true });
  });
});
