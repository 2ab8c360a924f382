import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Hpa, hpa, type Iova, iova as makeIova, PAGE_SIZE, U64_MAX } from '../address/address.js';
import { errnoOf, IommufdError } from '../errors/iommufd-error.js';
import type { IommuDomain, Prot } from '../iommu/driver.js';
import { IoPagetable } from './io-pagetable.js';
import { hostMemory, type UserMemory } from './user-memory.js';

const PAGE = BigInt(PAGE_SIZE);
const KiB = 1024n;
const MiB = 1024n * KiB;
const RW: Prot = { read: true, write: true };
const BASE = 0x8000_0000n;
const FULL = [{ start: 0n, last: U64_MAX }];

type Call =
  | { op: 'map'; iova: bigint; paddr: bigint; size: bigint }
  | { op: 'unmap'; iova: bigint; size: bigint }
  | { op: 'sync' };

interface FakeOptions {
  pgsizeBitmap?: bigint;
  aperture?: { start: bigint; end: bigint };
  /** 1-based number of the map call that throws ENOMEM. */
  failOnMapCall?: number;
}

let nextDomainId = 1;

/**
 * A recording paging domain that behaves like a real one where it matters: map is refused when it is
 * not 4 KiB aligned or hits a mapped page, unmap only queues the invalidation until iotlbSync.
 */
class FakeDomain implements IommuDomain {
  readonly id = nextDomainId++;
  readonly type = 'paging' as const;
  readonly pgsizeBitmap: bigint;
  readonly aperture: { readonly start: Iova; readonly end: Iova };
  readonly calls: Call[] = [];
  failOnMapCall: number | undefined;
  /** IOVA page → physical page. */
  readonly pages = new Map<bigint, bigint>();
  /** An unmap happened and no iotlbSync since. */
  unsynced = false;
  private mapCalls = 0;

  constructor(options: FakeOptions = {}) {
    this.pgsizeBitmap = options.pgsizeBitmap ?? PAGE | (2n * MiB) | (1024n * MiB);
    const aperture = options.aperture ?? { start: 0n, end: U64_MAX };
    this.aperture = { start: makeIova(aperture.start), end: makeIova(aperture.end) };
    this.failOnMapCall = options.failOnMapCall;
  }

  map(iova: Iova, paddr: Hpa, size: bigint, _prot: Prot): void {
    this.mapCalls++;
    this.calls.push({ op: 'map', iova, paddr, size });
    if (this.mapCalls === this.failOnMapCall) throw new IommufdError('ENOMEM', 'injected map failure');
    if (iova % PAGE !== 0n || paddr % PAGE !== 0n || size % PAGE !== 0n || size === 0n)
      throw new IommufdError('EINVAL', 'fake domain: misaligned map');
    for (let off = 0n; off < size; off += PAGE)
      if (this.pages.has(iova + off)) throw new IommufdError('EEXIST', 'fake domain: already mapped');
    for (let off = 0n; off < size; off += PAGE) this.pages.set(iova + off, paddr + off);
  }

  unmap(iova: Iova, size: bigint): bigint {
    this.calls.push({ op: 'unmap', iova, size });
    let unmapped = 0n;
    for (const page of [...this.pages.keys()]) {
      if (page >= iova && page < iova + size) {
        this.pages.delete(page);
        unmapped += PAGE;
      }
    }
    this.unsynced = true;
    return unmapped;
  }

  iotlbSync(): void {
    this.calls.push({ op: 'sync' });
    this.unsynced = false;
  }

  iovaToPhys(iova: Iova): Hpa | undefined {
    const phys = this.pages.get(iova - (iova % PAGE));
    return phys === undefined ? undefined : hpa(phys + (iova % PAGE));
  }

  free(): void {}

  ops(): string[] {
    return this.calls.map((c) => c.op);
  }
}

/** What a domain must hold: every page of every area, at the physical address the memory has there. */
function expectedPages(iopt: IoPagetable): Map<bigint, bigint> {
  const out = new Map<bigint, bigint>();
  for (const a of iopt.listAreas())
    for (let off = 0n; off < a.length; off += PAGE) out.set(a.iova + off, a.memory.physAt(a.offset + off));
  return out;
}

function expectMirrors(iopt: IoPagetable, domain: FakeDomain): void {
  expect(domain.pages).toEqual(expectedPages(iopt));
  expect(domain.unsynced).toBe(false);
}

/** `length` bytes in two physically discontiguous halves. */
function splitMemory(first: bigint, second: bigint, length: bigint): UserMemory {
  const half = length / 2n;
  return {
    length,
    physAt: (offset) => hpa(offset < half ? first + offset : second + (offset - half)),
    contiguousFrom: (offset) => (offset < half ? half - offset : length - offset),
    description: 'split memory',
  };
}

describe('IoPagetable: keeping domains filled with the areas', () => {
  it('IOAS_MAP: a new area is mapped into every attached domain', () => {
    const iopt = new IoPagetable();
    const d1 = new FakeDomain();
    const d2 = new FakeDomain();
    iopt.addDomain(d1);
    iopt.addDomain(d2);
    iopt.map(0x10_0000n, hostMemory(BASE, 16n * KiB), 0n, 16n * KiB, RW);
    for (const d of [d1, d2]) {
      expect(d.calls).toEqual([{ op: 'map', iova: 0x10_0000n, paddr: BASE, size: 16n * KiB }]);
      expectMirrors(iopt, d);
    }
  });

  it('HWPT_ALLOC on an IOAS (iopt_table_add_domain): a domain added later is filled with every existing area', () => {
    const iopt = new IoPagetable();
    iopt.map(0x40_0000n, hostMemory(BASE + MiB, 8n * KiB), 0n, 8n * KiB, RW);
    iopt.map(0x10_0000n, hostMemory(BASE, 16n * KiB), 4n * KiB, 12n * KiB, RW);
    const d = new FakeDomain();
    iopt.addDomain(d);
    expect(d.calls).toEqual([
      { op: 'map', iova: 0x10_0000n, paddr: BASE + 4n * KiB, size: 12n * KiB },
      { op: 'map', iova: 0x40_0000n, paddr: BASE + MiB, size: 8n * KiB },
    ]);
    expect(iopt.listDomains()).toEqual([d]);
    expectMirrors(iopt, d);
  });

  it('filling maps one call per physically contiguous run of the memory', () => {
    const iopt = new IoPagetable();
    const d = new FakeDomain();
    iopt.addDomain(d);
    iopt.map(0x10_0000n, splitMemory(BASE, BASE + MiB, 16n * KiB), 0n, 16n * KiB, RW);
    expect(d.calls).toEqual([
      { op: 'map', iova: 0x10_0000n, paddr: BASE, size: 8n * KiB },
      { op: 'map', iova: 0x10_2000n, paddr: BASE + MiB, size: 8n * KiB },
    ]);
    expectMirrors(iopt, d);
  });

  it('IOAS_UNMAP: every removed area is unmapped and iotlbSync-ed on every domain, area by area', () => {
    const iopt = new IoPagetable();
    const d1 = new FakeDomain();
    const d2 = new FakeDomain();
    iopt.addDomain(d1);
    iopt.addDomain(d2);
    iopt.map(0x10_0000n, hostMemory(BASE, 16n * KiB), 0n, 16n * KiB, RW);
    iopt.map(0x20_0000n, hostMemory(BASE + MiB, 8n * KiB), 0n, 8n * KiB, RW);
    iopt.map(0x30_0000n, hostMemory(BASE + 2n * MiB, 4n * KiB), 0n, 4n * KiB, RW);
    for (const d of [d1, d2]) d.calls.length = 0;

    expect(iopt.unmap(0x10_0000n, 0x20_0000n)).toBe(24n * KiB);
    for (const d of [d1, d2]) {
      expect(d.calls).toEqual([
        { op: 'unmap', iova: 0x10_0000n, size: 16n * KiB },
        { op: 'sync' },
        { op: 'unmap', iova: 0x20_0000n, size: 8n * KiB },
        { op: 'sync' },
      ]);
      expectMirrors(iopt, d);
    }
    expect(iopt.listAreas().map((a) => a.iova)).toEqual([0x30_0000n]);
  });

  it('IOAS_MAP rollback: a domain map failure unmaps the domains already filled and adds no area', () => {
    const iopt = new IoPagetable();
    const d1 = new FakeDomain();
    const d2 = new FakeDomain({ failOnMapCall: 1 });
    const d3 = new FakeDomain();
    for (const d of [d1, d2, d3]) iopt.addDomain(d);
    const memory = hostMemory(BASE, 16n * KiB);

    expect(errnoOf(() => iopt.map(0x10_0000n, memory, 0n, 16n * KiB, RW))).toBe('ENOMEM');
    expect(d1.calls).toEqual([
      { op: 'map', iova: 0x10_0000n, paddr: BASE, size: 16n * KiB },
      { op: 'unmap', iova: 0x10_0000n, size: 16n * KiB },
      { op: 'sync' },
    ]);
    expect(d2.ops()).toEqual(['map']);
    expect(d3.calls).toEqual([]);
    expect(iopt.listAreas()).toEqual([]);
    for (const d of [d1, d2, d3]) expectMirrors(iopt, d);

    // Nothing was left behind: the same range maps once the domain works.
    expect(iopt.map(0x10_0000n, memory, 0n, 16n * KiB, RW)).toBe(0x10_0000n);
    for (const d of [d1, d2, d3]) expectMirrors(iopt, d);
  });

  it('IOAS_MAP rollback: the failing domain undoes its own partial fill (unmap + iotlbSync of what it mapped)', () => {
    const iopt = new IoPagetable();
    iopt.setHugePages(false); // one map call per page
    const d1 = new FakeDomain();
    const d2 = new FakeDomain({ failOnMapCall: 3 });
    iopt.addDomain(d1);
    iopt.addDomain(d2);

    expect(errnoOf(() => iopt.map(0x10_0000n, hostMemory(BASE, 16n * KiB), 0n, 16n * KiB, RW))).toBe(
      'ENOMEM',
    );
    expect(d2.ops()).toEqual(['map', 'map', 'map', 'unmap', 'sync']);
    expect(d2.calls[3]).toEqual({ op: 'unmap', iova: 0x10_0000n, size: 8n * KiB });
    expect(d1.ops()).toEqual(['map', 'map', 'map', 'map', 'unmap', 'sync']);
    expect(d1.calls[4]).toEqual({ op: 'unmap', iova: 0x10_0000n, size: 16n * KiB });
    expect(iopt.listAreas()).toEqual([]);
    for (const d of [d1, d2]) expectMirrors(iopt, d);
  });

  it('iopt_table_add_domain rollback: a fill failure empties the domain, does not add it and drops its reservations', () => {
    const iopt = new IoPagetable();
    iopt.map(0x10_0000n, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW);
    iopt.map(0x20_0000n, hostMemory(BASE + MiB, 4n * KiB), 0n, 4n * KiB, RW);
    const d = new FakeDomain({ aperture: { start: 0x1000n, end: 0xffff_ffffn }, failOnMapCall: 2 });

    expect(errnoOf(() => iopt.addDomain(d))).toBe('ENOMEM');
    expect(d.calls).toEqual([
      { op: 'map', iova: 0x10_0000n, paddr: BASE, size: 4n * KiB },
      { op: 'map', iova: 0x20_0000n, paddr: BASE + MiB, size: 4n * KiB },
      { op: 'unmap', iova: 0x10_0000n, size: 4n * KiB },
      { op: 'sync' },
    ]);
    expect(d.pages.size).toBe(0);
    expect(iopt.listDomains()).toEqual([]);
    expect(iopt.iovaRanges()).toEqual(FULL);
    expect(iopt.iovaAlignment).toBe(1n);
  });

  it('HWPT destroy (iopt_table_remove_domain): every area is unmapped + synced and the aperture reservations go', () => {
    const iopt = new IoPagetable();
    const d = new FakeDomain({ aperture: { start: 0x1000n, end: 0xffff_ffffn } });
    iopt.addDomain(d);
    iopt.map(0x10_0000n, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW);
    iopt.map(0x20_0000n, hostMemory(BASE + MiB, 8n * KiB), 0n, 8n * KiB, RW);
    d.calls.length = 0;

    iopt.removeDomain(d);
    expect(d.calls).toEqual([
      { op: 'unmap', iova: 0x10_0000n, size: 4n * KiB },
      { op: 'sync' },
      { op: 'unmap', iova: 0x20_0000n, size: 8n * KiB },
      { op: 'sync' },
    ]);
    expect(d.pages.size).toBe(0);
    expect(iopt.listDomains()).toEqual([]);
    expect(iopt.iovaRanges()).toEqual(FULL);
    // The areas stay; later maps no longer reach the removed domain.
    expect(iopt.listAreas()).toHaveLength(2);
    iopt.map(0x30_0000n, hostMemory(BASE + 2n * MiB, 4n * KiB), 0n, 4n * KiB, RW);
    expect(d.calls).toHaveLength(4);
  });

  it('removeDomain of a domain that was never added does nothing', () => {
    const iopt = new IoPagetable();
    iopt.map(0x10_0000n, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW);
    const d = new FakeDomain();
    iopt.removeDomain(d);
    expect(d.calls).toEqual([]);
    expect(iopt.listAreas()).toHaveLength(1);
  });

  it('property: whatever maps, unmaps, domain adds and removes happen, every domain holds exactly the areas', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('map' as const),
        page: fc.integer({ min: 0, max: 31 }),
        pages: fc.integer({ min: 1, max: 6 }),
      }),
      fc.record({
        kind: fc.constant('unmap' as const),
        page: fc.integer({ min: 0, max: 31 }),
        pages: fc.integer({ min: 1, max: 12 }),
      }),
      fc.record({ kind: fc.constant('toggle' as const), domain: fc.integer({ min: 0, max: 1 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const iopt = new IoPagetable();
        const domains = [new FakeDomain(), new FakeDomain()];
        const model: { start: bigint; last: bigint }[] = [];
        const at = (page: number) => 0x10_0000n + BigInt(page) * PAGE;
        for (const o of ops) {
          if (o.kind === 'toggle') {
            const d = domains[o.domain]!;
            if (iopt.listDomains().includes(d)) iopt.removeDomain(d);
            else iopt.addDomain(d);
          } else {
            const start = at(o.page);
            const length = BigInt(o.pages) * PAGE;
            const last = start + length - 1n;
            const hit = model.filter((a) => a.start <= last && start <= a.last);
            if (o.kind === 'map') {
              const memory = hostMemory(BASE + BigInt(o.page) * MiB, length);
              const errno = errnoOf(() => iopt.map(start, memory, 0n, length, RW));
              expect(errno).toBe(hit.length > 0 ? 'EEXIST' : undefined);
              if (!errno) model.push({ start, last });
            } else {
              const cut = hit.some((a) => a.start < start || a.last > last);
              if (cut || hit.length === 0) {
                expect(errnoOf(() => iopt.unmap(start, length))).toBe('ENOENT');
              } else {
                const bytes = hit.reduce((sum, a) => sum + a.last - a.start + 1n, 0n);
                expect(iopt.unmap(start, length)).toBe(bytes);
                for (const a of hit) model.splice(model.indexOf(a), 1);
              }
            }
          }
          for (const d of domains) {
            if (iopt.listDomains().includes(d)) expectMirrors(iopt, d);
            else expect(d.pages.size).toBe(0);
          }
          expect(iopt.listAreas().map((a) => a.iova)).toEqual(
            model.map((a) => a.start).sort((x, y) => (x < y ? -1 : 1)),
          );
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('IoPagetable: addDomain refusals', () => {
  it.each([
    ['8 KiB', 0x2000n | (2n * MiB)],
    ['64 KiB', 0x1_0000n],
    ['2 MiB', 2n * MiB],
  ])('iopt_table_add_domain: a domain whose smallest page is %s (> PAGE_SIZE) is EINVAL', (_, bitmap) => {
    const iopt = new IoPagetable();
    const d = new FakeDomain({ pgsizeBitmap: bitmap, aperture: { start: 0x1000n, end: 0xffff_ffffn } });
    expect(errnoOf(() => iopt.addDomain(d))).toBe('EINVAL');
    expect(iopt.listDomains()).toEqual([]);
    expect(iopt.iovaRanges()).toEqual(FULL);
    expect(iopt.iovaAlignment).toBe(1n);
  });

  it.each([
    ['4 KiB | 2 MiB | 1 GiB', PAGE | (2n * MiB) | (1024n * MiB), PAGE],
    ['1 KiB | 4 KiB', 0x400n | PAGE, 0x400n],
    ['empty bitmap (treated as PAGE_SIZE)', 0n, PAGE],
  ])(
    'iova_alignment: a domain with page sizes %s sets the alignment to its smallest page',
    (_, bitmap, align) => {
      const iopt = new IoPagetable();
      const d = new FakeDomain({ pgsizeBitmap: bitmap });
      iopt.addDomain(d);
      expect(iopt.iovaAlignment).toBe(align);
      iopt.removeDomain(d);
      expect(iopt.iovaAlignment).toBe(1n);
    },
  );

  it.each([
    ['its IOVA', 0x10_0800n, 0x800n, BASE + 0x800n],
    ['its length', 0x10_0000n, 0x1800n, BASE],
    ['its page offset', 0x10_0000n, 0x1000n, BASE + 0x800n],
  ])(
    'iopt_check_iova_alignment: an existing area misaligned in %s for the new domain is EADDRINUSE',
    (_, at, length, phys) => {
      const iopt = new IoPagetable(); // fresh IOAS: alignment 1, any byte range maps
      iopt.map(at, hostMemory(phys, length), 0n, length, RW);
      const d = new FakeDomain({ aperture: { start: 0x1000n, end: U64_MAX } });
      expect(errnoOf(() => iopt.addDomain(d))).toBe('EADDRINUSE');
      expect(d.calls).toEqual([]);
      expect(iopt.listDomains()).toEqual([]);
      expect(iopt.iovaRanges()).toEqual(FULL);
    },
  );

  it.each([
    ['below the aperture', 0x0n],
    ['above the aperture', 0x2_0000_0000n],
  ])(
    'iopt_table_add_domain: an area %s is EADDRINUSE and no aperture reservation is left behind',
    (_, at) => {
      const iopt = new IoPagetable();
      iopt.map(at, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW);
      const d = new FakeDomain({ aperture: { start: 0x1000n, end: 0xffff_ffffn } });
      expect(errnoOf(() => iopt.addDomain(d))).toBe('EADDRINUSE');
      expect(d.calls).toEqual([]);
      expect(iopt.listDomains()).toEqual([]);
      expect(iopt.iovaRanges()).toEqual(FULL);
    },
  );

  it('iopt_reserve_iova: an aperture that excludes an allowed range is EADDRINUSE', () => {
    const iopt = new IoPagetable();
    iopt.setAllowed([{ start: 0x1_0000_0000n, last: 0x1_ffff_ffffn }]);
    const d = new FakeDomain({ aperture: { start: 0n, end: 0xffff_ffffn } });
    expect(errnoOf(() => iopt.addDomain(d))).toBe('EADDRINUSE');
    expect(iopt.listDomains()).toEqual([]);
    expect(iopt.iovaRanges()).toEqual(FULL);
  });

  it('the aperture holes of a domain become reserved ranges, released by removeDomain', () => {
    const iopt = new IoPagetable();
    const d = new FakeDomain({ aperture: { start: 0x10_0000n, end: 0xffff_ffffn } });
    iopt.addDomain(d);
    expect(iopt.iovaRanges()).toEqual([{ start: 0x10_0000n, last: 0xffff_ffffn }]);
    const memory = hostMemory(BASE, 4n * KiB);
    expect(errnoOf(() => iopt.map(0x1000n, memory, 0n, 4n * KiB, RW))).toBe('EINVAL');
    expect(errnoOf(() => iopt.map(0x1_0000_0000n, memory, 0n, 4n * KiB, RW))).toBe('EINVAL');
    // A fixed range straddling the aperture end is refused too.
    expect(errnoOf(() => iopt.map(0xffff_f000n, hostMemory(BASE, 8n * KiB), 0n, 8n * KiB, RW))).toBe(
      'EINVAL',
    );
    const auto = iopt.map(undefined, memory, 0n, 4n * KiB, RW);
    expect(auto >= 0x10_0000n && auto + 4n * KiB - 1n <= 0xffff_ffffn).toBe(true);
    iopt.unmap(auto, 4n * KiB);

    iopt.removeDomain(d);
    expect(iopt.iovaRanges()).toEqual(FULL);
    expect(iopt.map(0x1000n, memory, 0n, 4n * KiB, RW)).toBe(0x1000n);
  });
});

describe('IoPagetable: IOAS_MAP and IOAS_UNMAP argument checks', () => {
  it('IOAS_MAP: a fixed range running past 2^64 − 1 is EOVERFLOW; one ending exactly at 2^64 − 1 maps', () => {
    const iopt = new IoPagetable();
    expect(errnoOf(() => iopt.map(U64_MAX - 0xfffn, hostMemory(BASE, 8n * KiB), 0n, 8n * KiB, RW))).toBe(
      'EOVERFLOW',
    );
    expect(iopt.map(U64_MAX - 0xfffn, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW)).toBe(U64_MAX - 0xfffn);
    expect(iopt.unmap(U64_MAX - 0xfffn, 4n * KiB)).toBe(4n * KiB);
  });

  it.each([
    ['zero length', 0n, RW],
    ['neither READABLE nor WRITEABLE', 4n * KiB, { read: false, write: false }],
    ['a range past the end of the memory', 12n * KiB, RW],
  ])('IOAS_MAP: %s is EINVAL', (_, length, prot) => {
    const iopt = new IoPagetable();
    expect(errnoOf(() => iopt.map(0x10_0000n, hostMemory(BASE, 8n * KiB), 0n, length, prot))).toBe('EINVAL');
    expect(iopt.listAreas()).toEqual([]);
  });

  it.each([
    ['the length is not a multiple of the alignment', 0x10_0000n, BASE, 0x1800n],
    ["the memory's page offset differs from the IOVA's", 0x10_0000n, BASE + 0x800n, 0x1000n],
  ])('IOAS_MAP with a 4 KiB domain attached: EINVAL when %s', (_, at, phys, length) => {
    const iopt = new IoPagetable();
    const d = new FakeDomain();
    iopt.addDomain(d);
    expect(errnoOf(() => iopt.map(at, hostMemory(phys, length), 0n, length, RW))).toBe('EINVAL');
    expect(d.calls).toEqual([]);
    expect(iopt.listAreas()).toEqual([]);
  });

  it('IOAS_MAP: a fixed range over a reserved range is EINVAL, over an area EEXIST', () => {
    const iopt = new IoPagetable();
    iopt.reserve({}, 0x20_0000n, 0x1000n);
    iopt.map(0x10_0000n, hostMemory(BASE, 8n * KiB), 0n, 8n * KiB, RW);
    const memory = hostMemory(BASE, 8n * KiB);
    expect(errnoOf(() => iopt.map(0x1f_f000n, memory, 0n, 8n * KiB, RW))).toBe('EINVAL');
    expect(errnoOf(() => iopt.map(0x10_1000n, memory, 0n, 8n * KiB, RW))).toBe('EEXIST');
    expect(errnoOf(() => iopt.map(0xf_f000n, memory, 0n, 8n * KiB, RW))).toBe('EEXIST');
    expect(iopt.map(0x10_2000n, memory, 0n, 8n * KiB, RW)).toBe(0x10_2000n); // adjacent is fine
  });

  it.each([
    ['the range runs past 2^64 − 1', 0x2000n, U64_MAX - 0x1000n],
    ['the length is ULONG_MAX with an IOVA other than 0', 1n, U64_MAX],
    ['the IOVA is ULONG_MAX', U64_MAX, 1n],
  ])('IOAS_UNMAP: EOVERFLOW when %s (only (0, ULONG_MAX) means unmap all)', (_, at, length) => {
    const iopt = new IoPagetable();
    iopt.map(0x10_0000n, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW);
    expect(errnoOf(() => iopt.unmap(at, length))).toBe('EOVERFLOW');
    expect(iopt.listAreas()).toHaveLength(1);
  });

  it.each([
    ['the IOVA is ULONG_MAX', U64_MAX, 1n],
    ['the length is ULONG_MAX', 0n, U64_MAX],
  ])('IOAS_MAP: EOVERFLOW when %s', (_, at, length) => {
    const iopt = new IoPagetable();
    expect(errnoOf(() => iopt.map(at, hostMemory(0n, length), 0n, length, RW))).toBe('EOVERFLOW');
    expect(iopt.listAreas()).toEqual([]);
  });
});

describe('IoPagetable: automatic IOVA allocation (iopt_alloc_iova)', () => {
  it.each([
    // [what, length, physical address, huge pages, expected IOVA on an empty IOAS]
    ['64 KiB buffer, 2 GiB-aligned: aligned to roundup_pow2(length)', 64n * KiB, BASE, true, 0x1_0000n],
    ['12 KiB buffer: roundup_pow2 gives 16 KiB', 12n * KiB, BASE, true, 0x4000n],
    [
      '64 KiB buffer at a 16 KiB boundary: the physical alignment wins',
      64n * KiB,
      BASE + 0x4000n,
      true,
      0x4000n,
    ],
    ['4 MiB buffer with huge pages: capped at 2 MiB', 4n * MiB, BASE, true, 2n * MiB],
    ['4 MiB buffer without huge pages: capped at 4 KiB', 4n * MiB, BASE, false, 0x1000n],
    ['8 KiB buffer at physical 0: roundup_pow2(length)', 8n * KiB, 0n, true, 0x2000n],
    ['6 KiB at page offset 0x800: the page offset is kept', 6n * KiB, BASE + 0x800n, true, 0x1800n],
  ])('%s', (_, length, phys, huge, expected) => {
    const iopt = new IoPagetable();
    iopt.setHugePages(huge);
    const got = iopt.map(undefined, hostMemory(phys, length), 0n, length, RW);
    expect(got).toBe(expected);
    expect(got % PAGE).toBe(phys % PAGE);
  });

  it('the alignment uses the physical address of the mapped offset, not of the memory start', () => {
    const iopt = new IoPagetable();
    const got = iopt.map(undefined, hostMemory(BASE, 2n * MiB), 0x3000n, 64n * KiB, RW);
    expect(got).toBe(0x1000n); // BASE + 0x3000 is only 4 KiB aligned
  });

  it('IOVA 0 is never returned, even when an allowed range starts at 0', () => {
    const iopt = new IoPagetable();
    iopt.setAllowed([{ start: 0n, last: 0xf_ffffn }]);
    const got = iopt.map(undefined, hostMemory(0n, 4n * KiB), 0n, 4n * KiB, RW);
    expect(got).toBe(0x1000n);
    iopt.setAllowed([{ start: 0n, last: 0xfffn }]);
    expect(errnoOf(() => iopt.map(undefined, hostMemory(0n, 4n * KiB), 0n, 4n * KiB, RW))).toBe('ENOSPC');
  });

  it('holes: the next aligned hole past areas and reserved ranges is used', () => {
    const iopt = new IoPagetable();
    iopt.map(0x1_0000n, hostMemory(BASE, 64n * KiB), 0n, 64n * KiB, RW);
    iopt.reserve({}, 0x2_0000n, 0x1000n);
    const got = iopt.map(undefined, hostMemory(BASE + MiB, 64n * KiB), 0n, 64n * KiB, RW);
    expect(got).toBe(0x3_0000n);
    // A small buffer still fits in the gap below the first area.
    expect(iopt.map(undefined, hostMemory(BASE + 2n * MiB, 4n * KiB), 0n, 4n * KiB, RW)).toBe(0x1000n);
  });

  it('IOMMU_IOAS_ALLOW_IOVAS: allocation stays inside the allowed ranges, moving to the next one when full; ENOSPC when none fits', () => {
    const iopt = new IoPagetable();
    iopt.setAllowed([
      { start: 0x5000_0000n, last: 0x5000_ffffn },
      { start: 0x4000_0000n, last: 0x4000_ffffn },
    ]);
    const memory = hostMemory(BASE, 64n * KiB);
    expect(iopt.map(undefined, memory, 0n, 64n * KiB, RW)).toBe(0x4000_0000n);
    expect(iopt.map(undefined, memory, 0n, 64n * KiB, RW)).toBe(0x5000_0000n);
    expect(errnoOf(() => iopt.map(undefined, memory, 0n, 4n * KiB, RW))).toBe('ENOSPC');
    expect(errnoOf(() => iopt.map(undefined, hostMemory(BASE, MiB), 0n, MiB, RW))).toBe('ENOSPC');
    // Clearing the list makes the whole space usable again.
    iopt.setAllowed([]);
    expect(iopt.map(undefined, memory, 0n, 4n * KiB, RW)).toBe(0x1000n);
  });

  it('ENOSPC when every hole is reserved', () => {
    const iopt = new IoPagetable();
    iopt.reserve({}, 0n, U64_MAX + 1n);
    expect(errnoOf(() => iopt.map(undefined, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW))).toBe('ENOSPC');
  });

  it.each([
    ['ULONG_MAX / 2', U64_MAX / 2n],
    ['2^63', 1n << 63n],
  ])('iopt_alloc_iova: a length of %s or more is EOVERFLOW', (_, length) => {
    const iopt = new IoPagetable();
    expect(errnoOf(() => iopt.map(undefined, hostMemory(BASE, length), 0n, length, RW))).toBe('EOVERFLOW');
    expect(iopt.listAreas()).toEqual([]);
  });

  it('an auto map with a domain attached is filled into the domain at the chosen IOVA', () => {
    const iopt = new IoPagetable();
    const d = new FakeDomain({ aperture: { start: 0x100_0000n, end: 0xffff_ffffn } });
    iopt.addDomain(d);
    const got = iopt.map(undefined, hostMemory(BASE, 64n * KiB), 0n, 64n * KiB, RW);
    expect(got).toBe(0x100_0000n);
    expect(d.calls).toEqual([{ op: 'map', iova: got, paddr: BASE, size: 64n * KiB }]);
  });
});

describe('IoPagetable: IOVA ranges, allowed ranges, slices', () => {
  it('IOMMU_IOAS_IOVA_RANGES: a fresh IOAS has the whole 64-bit space', () => {
    expect(new IoPagetable().iovaRanges()).toEqual(FULL);
  });

  it.each([
    [
      'one range in the middle',
      [[0x1000n, 0x1fffn]],
      [
        [0n, 0xfffn],
        [0x2000n, U64_MAX],
      ],
    ],
    ['a range at 0', [[0n, 0xfffn]], [[0x1000n, U64_MAX]]],
    ['a range at the top', [[0xf000n, U64_MAX]], [[0n, 0xefffn]]],
    [
      'overlapping ranges',
      [
        [0x1000n, 0x2fffn],
        [0x2000n, 0x3fffn],
      ],
      [
        [0n, 0xfffn],
        [0x4000n, U64_MAX],
      ],
    ],
    [
      'adjacent ranges',
      [
        [0x1000n, 0x1fffn],
        [0x2000n, 0x2fffn],
      ],
      [
        [0n, 0xfffn],
        [0x3000n, U64_MAX],
      ],
    ],
    [
      'a range inside another',
      [
        [0x1000n, 0x8fffn],
        [0x2000n, 0x2fffn],
      ],
      [
        [0n, 0xfffn],
        [0x9000n, U64_MAX],
      ],
    ],
    ['everything', [[0n, U64_MAX]], []],
  ])('IOMMU_IOAS_IOVA_RANGES is the complement of the reserved ranges: %s', (_, reserved, holes) => {
    const iopt = new IoPagetable();
    for (const [start, last] of reserved) iopt.reserve({}, start!, last! - start! + 1n);
    expect(iopt.iovaRanges()).toEqual(holes.map(([start, last]) => ({ start, last })));
  });

  it('property: the IOVA ranges are sorted, disjoint, avoid every reserved byte and are bounded by reserved bytes', () => {
    const point = fc.oneof(
      fc.bigInt({ min: 0n, max: 0xffffn }),
      fc.bigInt({ min: U64_MAX - 0xffffn, max: U64_MAX }),
    );
    const range = fc.tuple(point, point).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [bigint, bigint]);
    fc.assert(
      fc.property(fc.array(range, { maxLength: 8 }), (reserved) => {
        const iopt = new IoPagetable();
        for (const [start, last] of reserved) iopt.reserve({}, start, last - start + 1n);
        const holes = iopt.iovaRanges();
        const isReserved = (x: bigint) => reserved.some(([s, l]) => s <= x && x <= l);
        let prevLast = -2n;
        let holeBytes = 0n;
        for (const h of holes) {
          expect(h.start <= h.last).toBe(true);
          expect(h.start > prevLast + 1n).toBe(true); // sorted, disjoint, never adjacent
          expect(reserved.some(([s, l]) => s <= h.last && h.start <= l)).toBe(false);
          if (h.start > 0n) expect(isReserved(h.start - 1n)).toBe(true);
          if (h.last < U64_MAX) expect(isReserved(h.last + 1n)).toBe(true);
          prevLast = h.last;
          holeBytes += h.last - h.start + 1n;
        }
        // Holes plus the union of the reserved ranges cover the space exactly.
        const sorted = [...reserved].sort((a, b) => (a[0] < b[0] ? -1 : 1));
        let covered = 0n;
        let next = 0n;
        for (const [s, l] of sorted) {
          const from = s > next ? s : next;
          if (l >= from) {
            covered += l - from + 1n;
            next = l + 1n;
          }
        }
        expect(holeBytes + covered).toBe(U64_MAX + 1n);
      }),
    );
  });

  it('IOMMU_IOAS_ALLOW_IOVAS does not change IOMMU_IOAS_IOVA_RANGES', () => {
    const iopt = new IoPagetable();
    iopt.setAllowed([{ start: 0x4000_0000n, last: 0x4fff_ffffn }]);
    expect(iopt.iovaRanges()).toEqual(FULL);
  });

  it('releaseReserved drops only the ranges of that owner', () => {
    const iopt = new IoPagetable();
    const a = {};
    const b = {};
    iopt.reserve(a, 0x1000n, 0x1000n);
    iopt.reserve(b, 0x3000n, 0x1000n);
    iopt.reserve(a, 0x5000n, 0x1000n);
    iopt.releaseReserved(a);
    expect(iopt.iovaRanges()).toEqual([
      { start: 0n, last: 0x2fffn },
      { start: 0x4000n, last: U64_MAX },
    ]);
  });

  it.each([
    [
      'ranges overlap each other',
      [
        [0x1000n, 0x1fffn],
        [0x1800n, 0x2fffn],
      ],
    ],
    [
      'ranges overlap (given out of order)',
      [
        [0x1800n, 0x2fffn],
        [0x1000n, 0x1fffn],
      ],
    ],
    ['a range is empty (start > last)', [[0x2000n, 0x1fffn]]],
    ['a range has start == last', [[0x2000n, 0x2000n]]],
  ])('IOMMU_IOAS_ALLOW_IOVAS: EINVAL when %s, and the old list stays', (_, ranges) => {
    const iopt = new IoPagetable();
    iopt.setAllowed([{ start: 0x4000_0000n, last: 0x4000_ffffn }]);
    expect(
      errnoOf(() => iopt.setAllowed(ranges.map(([start, last]) => ({ start: start!, last: last! })))),
    ).toBe('EINVAL');
    expect(iopt.map(undefined, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW)).toBe(0x4000_0000n);
  });

  it('IOMMU_IOAS_ALLOW_IOVAS: adjacent ranges are accepted', () => {
    const iopt = new IoPagetable();
    iopt.setAllowed([
      { start: 0x1000n, last: 0x1fffn },
      { start: 0x2000n, last: 0x2fffn },
    ]);
    expect(iopt.map(undefined, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW)).toBe(0x1000n);
    expect(iopt.map(undefined, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW)).toBe(0x2000n);
  });

  it('IOMMU_IOAS_ALLOW_IOVAS: a range over a reserved range is EADDRINUSE; a reservation over an allowed range is EADDRINUSE', () => {
    const iopt = new IoPagetable();
    iopt.reserve({}, 0x8000_0000n, 0x10_0000n);
    expect(errnoOf(() => iopt.setAllowed([{ start: 0x7000_0000n, last: 0x8000_0fffn }]))).toBe('EADDRINUSE');
    iopt.setAllowed([{ start: 0x1000n, last: 0xffffn }]);
    expect(errnoOf(() => iopt.reserve({}, 0xf000n, 0x2000n))).toBe('EADDRINUSE');
    expect(iopt.iovaRanges()).toEqual([
      { start: 0n, last: 0x7fff_ffffn },
      { start: 0x8010_0000n, last: U64_MAX },
    ]);
  });

  it('iopt_reserve_iova: reserving over a mapped area is EADDRINUSE', () => {
    const iopt = new IoPagetable();
    iopt.map(0x10_0000n, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW);
    expect(errnoOf(() => iopt.reserve({}, 0x10_0fffn, 1n))).toBe('EADDRINUSE');
    expect(iopt.iovaRanges()).toEqual(FULL);
  });

  it('slice: the areas covering a range contiguously, clipped to it, with their memory offsets', () => {
    const iopt = new IoPagetable();
    const a = hostMemory(BASE, 16n * KiB);
    const b = hostMemory(BASE + MiB, 16n * KiB);
    iopt.map(0x10_0000n, a, 0n, 16n * KiB, RW);
    iopt.map(0x10_4000n, b, 4n * KiB, 8n * KiB, { read: true, write: false });
    expect(iopt.slice(0x10_2000n, 0x3000n)).toEqual([
      { iova: 0x10_2000n, length: 0x2000n, memory: a, offset: 0x2000n, prot: RW },
      { iova: 0x10_4000n, length: 0x1000n, memory: b, offset: 0x1000n, prot: { read: true, write: false } },
    ]);
    expect(iopt.slice(0x10_0000n, 0x4000n)).toEqual([iopt.listAreas()[0]]);
  });

  it.each([
    ['starts in a hole', 0xf_f000n, 0x2000n],
    ['crosses a hole between areas', 0x10_3000n, 0x6000n],
    ['runs past the last area', 0x10_5000n, 0x2000n],
    ['lies entirely in a hole', 0x20_0000n, 0x1000n],
  ])('slice: ENOENT when the range %s', (_, at, length) => {
    const iopt = new IoPagetable();
    iopt.map(0x10_0000n, hostMemory(BASE, 16n * KiB), 0n, 16n * KiB, RW);
    iopt.map(0x10_5000n, hostMemory(BASE + MiB, 4n * KiB), 0n, 4n * KiB, RW);
    expect(errnoOf(() => iopt.slice(at, length))).toBe('ENOENT');
  });
});

describe('IoPagetable: IOMMU_OPTION_HUGE_PAGES', () => {
  it.each([
    [false, false, 'accepted'],
    [true, false, 'accepted'],
    [false, true, 'accepted'],
    [true, true, 'EINVAL'],
  ])('IOMMU_OPTION_HUGE_PAGES=0 with domains=%s, areas=%s: %s', (withDomain, withArea, outcome) => {
    const iopt = new IoPagetable();
    if (withDomain) iopt.addDomain(new FakeDomain());
    if (withArea) iopt.map(0x10_0000n, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW);
    expect(errnoOf(() => iopt.setHugePages(false))).toBe(outcome === 'accepted' ? undefined : outcome);
    expect(iopt.hugePages).toBe(outcome !== 'accepted');
  });

  it('huge pages are on by default; off raises iova_alignment to PAGE_SIZE; on again lowers it', () => {
    const iopt = new IoPagetable();
    expect(iopt.hugePages).toBe(true);
    expect(iopt.iovaAlignment).toBe(1n);
    iopt.setHugePages(false);
    expect(iopt.iovaAlignment).toBe(PAGE);
    iopt.setHugePages(true);
    expect(iopt.iovaAlignment).toBe(1n);
  });

  it('disabling again while already disabled is not refused, even with domains and areas', () => {
    const iopt = new IoPagetable();
    iopt.setHugePages(false);
    iopt.addDomain(new FakeDomain());
    iopt.map(0x10_0000n, hostMemory(BASE, 4n * KiB), 0n, 4n * KiB, RW);
    expect(errnoOf(() => iopt.setHugePages(false))).toBeUndefined();
    iopt.setHugePages(true); // enabling is always allowed
    expect(iopt.hugePages).toBe(true);
  });

  it.each([
    ['its IOVA', 0x10_0800n, 0x800n, BASE + 0x800n],
    ['its page offset', 0x10_0000n, 0x1000n, BASE + 0x800n],
  ])(
    'iopt_disable_large_pages: an area misaligned in %s makes disabling EADDRINUSE',
    (_, at, length, phys) => {
      const iopt = new IoPagetable();
      iopt.map(at, hostMemory(phys, length), 0n, length, RW);
      expect(errnoOf(() => iopt.setHugePages(false))).toBe('EADDRINUSE');
      expect(iopt.hugePages).toBe(true);
    },
  );

  it('with huge pages off every area is mapped page by page, also into a domain added later', () => {
    const iopt = new IoPagetable();
    iopt.setHugePages(false);
    const d1 = new FakeDomain();
    iopt.addDomain(d1);
    iopt.map(0x20_0000n, hostMemory(BASE, 16n * KiB), 0n, 16n * KiB, RW);
    const pages = [0n, 1n, 2n, 3n].map((i) => ({
      op: 'map',
      iova: 0x20_0000n + i * PAGE,
      paddr: BASE + i * PAGE,
      size: PAGE,
    }));
    expect(d1.calls).toEqual(pages);
    const d2 = new FakeDomain();
    iopt.addDomain(d2);
    expect(d2.calls).toEqual(pages);
    // Unmap still takes the area in one call.
    iopt.unmap(0x20_0000n, 16n * KiB);
    expect(d1.calls.slice(4)).toEqual([{ op: 'unmap', iova: 0x20_0000n, size: 16n * KiB }, { op: 'sync' }]);
  });

  it('with huge pages on a contiguous area is mapped in one call', () => {
    const iopt = new IoPagetable();
    const d = new FakeDomain();
    iopt.addDomain(d);
    iopt.map(0x20_0000n, hostMemory(BASE, 4n * MiB), 0n, 4n * MiB, RW);
    expect(d.calls).toEqual([{ op: 'map', iova: 0x20_0000n, paddr: BASE, size: 4n * MiB }]);
  });
});

describe('auto IOVA inside allowed ranges', () => {
  it('never hands out the last page of the address space (clipped as the kernel clips allowed ranges)', () => {
    const iopt = new IoPagetable();
    iopt.setAllowed([{ start: U64_MAX - 0x1fffn, last: U64_MAX }]);
    const iova = iopt.map(undefined, hostMemory(0x8000_0000n, 0x1000n), 0n, 0x1000n, {
      read: true,
      write: true,
    });
    expect(iova).toBe(U64_MAX - 0x1fffn);
    expect(
      errnoOf(() =>
        iopt.map(undefined, hostMemory(0x8000_0000n, 0x1000n), 0n, 0x1000n, { read: true, write: true }),
      ),
    ).toBe('ENOSPC');
  });
});
