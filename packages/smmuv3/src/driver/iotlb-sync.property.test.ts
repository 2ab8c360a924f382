/**
 * The TLBIs `iotlbSync` emits after an unmap cover exactly what the unmap changed, for every granule,
 * with and without range invalidation (IDR3.RIL), and for unmaps of a page, a block, and a lone page whose
 * removal frees whole tables up to a level-0 (or level-1) entry — the 16K level-0 entry spans 2^33
 * granules, more than one SCALE can say alone (§4.4.1.1: (NUM + 1) · 2^SCALE granules, SCALE ≤ 31).
 */
import { hpa, iova } from '@iommukit/core';
import type { VmsaGranule } from '@iommukit/pagetables';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commandsSince, createDriverSystem } from '../../test/driver-system.js';
import { type Command, TLBI_TG, tlbiGranule, tlbiRangePages } from '../hw/commands.js';
import { CMDQ_MAX_TLBI_OPS, type Smmuv3Domain } from './domain.js';

const PAGE = 4096;
const RW = { read: true, write: true };
const GRANULES: readonly VmsaGranule[] = [4096, 16384, 65536];
const ONLY: Readonly<Record<VmsaGranule, object>> = {
  4096: { g4k: true, g16k: false, g64k: false },
  16384: { g4k: false, g16k: true, g64k: false },
  65536: { g4k: false, g16k: false, g64k: true },
};

/** Bytes one entry at `level` maps: granule · (granule / 8)^(3 − level). */
const entrySpan = (granule: number, level: number) => granule * (granule / 8) ** (3 - level);

type Unmap =
  | { readonly kind: 'page'; readonly slot: number }
  | { readonly kind: 'block'; readonly slot: number }
  | { readonly kind: 'tables'; readonly level: number; readonly slot: number };

/** Merges [start, end) byte intervals. */
function union(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Runs one unmap + iotlbSync and returns the TLBIs emitted and what they had to cover. */
function run(granule: VmsaGranule, ril: boolean, unmap: Unmap) {
  const s = createDriverSystem({ options: { granules: ONLY[granule], rangeInvalidation: ril } });
  const dev = s.device('dev0', 0x10);
  s.probe(dev);
  const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
  s.driver.attachDev(domain, dev);
  // A page at IOVA 0 keeps the tables on the way to it alive.
  domain.map(iova(0n), s.buffer(granule, granule), BigInt(granule), RW);
  let start: number;
  let size: number;
  let expected: [number, number];
  if (unmap.kind === 'page') {
    // A neighbour in the same leaf table keeps that table.
    start = (2 + unmap.slot) * granule;
    size = granule;
    domain.map(iova(BigInt(start)), s.buffer(granule, granule), BigInt(granule), RW);
    expected = [start, start + size];
  } else if (unmap.kind === 'block') {
    // A level-2 block next to the level-3 table of IOVA 0, in the same level-2 table.
    size = entrySpan(granule, 2);
    start = (1 + unmap.slot) * size;
    domain.map(iova(BigInt(start)), hpa(BigInt(size) * 4n), BigInt(size), RW);
    expected = [start, start + size];
  } else {
    // The only page under a level-`level` entry other than IOVA 0's: its tables are freed with it.
    const span = entrySpan(granule, unmap.level);
    start = (1 + unmap.slot) * span;
    size = granule;
    domain.map(iova(BigInt(start)), s.buffer(granule, granule), BigInt(granule), RW);
    expected = [start, start + span];
  }
  expect(start).toBeLessThan(2 ** domain.format.ias);
  const before = s.driver.cmdq.producer;
  domain.unmap(iova(BigInt(start)), BigInt(size));
  domain.iotlbSync();
  const tlbis = commandsSince(s, before).filter((c) => c.op !== 'SYNC');
  return { domain, tlbis, expected, granulePages: granule / PAGE };
}

/** The byte range one TLBI_NH_VA covers: its range, or the one leaf entry holding the address (TG == 0). */
function covered(c: Extract<Command, { op: 'TLBI_NH_VA' }>, granulePages: number): [number, number] {
  const range = tlbiRangePages(c);
  const first = range?.firstPage ?? c.addressPage;
  const count = range?.pageCount ?? granulePages;
  return [first * PAGE, (first + count) * PAGE];
}

describe('iotlbSync after unmap: the TLBIs cover exactly the unmapped or freed range', () => {
  /** Every unmap size for a table walk starting at `top`: a page, a block, tables freed below each level. */
  const cases = (top: number): { name: string; unmap: fc.Arbitrary<Unmap> }[] => [
    { name: 'a page', unmap: fc.record({ kind: fc.constant('page' as const), slot: fc.nat(100) }) },
    { name: 'a level-2 block', unmap: fc.record({ kind: fc.constant('block' as const), slot: fc.nat(5) }) },
    ...Array.from({ length: 3 - top }, (_, i) => top + i).map((level) => ({
      name: `the tables under a level-${level} entry`,
      unmap: fc.record({
        kind: fc.constant('tables' as const),
        level: fc.constant(level),
        // Level-0 entry 1 (a 16K level-0 table has only two entries).
        slot: fc.nat(level === 0 ? 0 : 3),
      }),
    })),
  ];

  for (const granule of GRANULES) {
    const probe = createDriverSystem({ options: { granules: ONLY[granule] } });
    const top = (probe.driver.domainAllocPaging() as Smmuv3Domain).format.startLevel;
    for (const ril of [true, false]) {
      for (const { name, unmap } of cases(top)) {
        it(`${granule / 1024}K granule, RIL ${ril ? 'on' : 'off'}: ${name}`, () => {
          fc.assert(
            fc.property(unmap, (u) => {
              const { domain, tlbis, expected, granulePages } = run(granule, ril, u);
              const granules = (expected[1] - expected[0]) / PAGE / granulePages;
              if (!ril && granules >= CMDQ_MAX_TLBI_OPS) {
                // Too many single-granule TLBIs: Linux's fallback to the whole ASID.
                expect(tlbis).toEqual([{ op: 'TLBI_NH_ASID', vmid: 0, asid: domain.asid }]);
                return;
              }
              const leaf = u.kind !== 'tables';
              const ranges = tlbis.map((c) => {
                expect(c).toMatchObject({ op: 'TLBI_NH_VA', vmid: 0, asid: domain.asid, leaf });
                const va = c as Extract<Command, { op: 'TLBI_NH_VA' }>;
                if (!ril) expect(va.tg).toBe(TLBI_TG.NONE);
                else if (va.tg !== TLBI_TG.NONE) expect(tlbiGranule(va.tg)).toBe(granule);
                return covered(va, granulePages);
              });
              const total = ranges.reduce((n, [s, e]) => n + (e - s), 0);
              // Exactly the range, each byte once.
              expect(union(ranges)).toEqual([expected]);
              expect(total).toBe(expected[1] - expected[0]);
            }),
            { numRuns: 4 },
          );
        });
      }
    }
  }

  it('16K, RIL: a freed level-1 table (a level-0 entry, 2^33 granules) is one TLBI with SCALE 31', () => {
    const { tlbis, expected } = run(16384, true, { kind: 'tables', level: 0, slot: 0 });
    expect(expected).toEqual([2 ** 47, 2 ** 48]);
    expect(tlbis).toMatchObject([
      { op: 'TLBI_NH_VA', leaf: false, addressPage: 2 ** 35, num: 3, scale: 31, tg: TLBI_TG.SIZE_16K },
    ]);
  });
});
