import { errnoOf } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { machine } from '../test/fixtures.js';
import { IoPageTable } from './io-page-table.js';
import { vmsaFormat } from './vmsa/vmsa-format.js';
import { walk } from './walk.js';

const PAGE = 4096;
const WINDOW_PAGES = 1024; // 4 MiB: two 2 MiB blocks' worth
const WINDOW_BASE = 2 ** 30 - 2 ** 21; // straddles a 1 GiB boundary, so several tables are involved
const PA_BASE = 2 ** 32;

type Op =
  | { kind: 'map'; page: number; count: number; paPage: number }
  | { kind: 'unmap'; page: number; count: number };

const range = fc
  .tuple(fc.integer({ min: 0, max: WINDOW_PAGES - 1 }), fc.integer({ min: 1, max: 600 }))
  .map(([page, count]) => ({ page, count: Math.min(count, WINDOW_PAGES - page) }));
// Block-aligned ranges make the table use 2 MiB blocks, and later ops split them.
const blockRange = fc.constantFrom(
  { page: 0, count: 512 },
  { page: 512, count: 512 },
  { page: 0, count: 1024 },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc
    .tuple(fc.oneof(range, blockRange), fc.boolean(), fc.integer({ min: 0, max: 2047 }))
    .map(([r, aligned, pa]) => ({ kind: 'map' as const, ...r, paPage: aligned ? r.page + 512 : pa })),
  fc.oneof(range, blockRange).map((r) => ({ kind: 'unmap' as const, ...r })),
);

describe('IoPageTable against a page-by-page model (fast-check)', () => {
  const formats = [
    vmsaFormat({ stage: 1, granule: 4096, ias: 36, oas: 48 }),
    vmsaFormat({ stage: 2, granule: 4096, ias: 32, oas: 48 }), // root: 4 concatenated level-2 tables
  ];
  for (const format of formats) {
    it(`random map/unmap sequences: ${format.name}`, () => {
      fc.assert(
        fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
          const m = machine();
          const table = new IoPageTable(format, m);
          const frames = m.memory.allocatedFrameCount;
          const model = new Map<number, number>();
          const iovaOf = (page: number) => BigInt(WINDOW_BASE + page * PAGE);
          const expectPages = (from: number, count: number) => {
            const wrong: string[] = [];
            for (let p = from; p < from + count; p++) {
              const want = model.get(p);
              const got = table.iovaToPhys(iovaOf(p) + 7n);
              if (got !== (want === undefined ? undefined : BigInt(PA_BASE + want * PAGE + 7))) {
                wrong.push(`page ${p}: ${got} instead of ${want}`);
              }
            }
            expect(wrong).toEqual([]);
          };
          for (const o of ops) {
            const size = BigInt(o.count * PAGE);
            if (o.kind === 'map') {
              let overlaps = false;
              for (let p = o.page; p < o.page + o.count; p++) overlaps ||= model.has(p);
              const error = errnoOf(() =>
                table.map(iovaOf(o.page), BigInt(PA_BASE + o.paPage * PAGE), size, {
                  read: true,
                  write: true,
                }),
              );
              expect(error).toBe(overlaps ? 'EEXIST' : undefined);
              if (!overlaps) for (let p = 0; p < o.count; p++) model.set(o.page + p, o.paPage + p);
            } else {
              let mapped = 0;
              for (let p = o.page; p < o.page + o.count; p++) if (model.delete(p)) mapped++;
              expect(table.unmap(iovaOf(o.page), size)).toBe(BigInt(mapped * PAGE));
            }
            expectPages(
              Math.max(0, o.page - 1),
              Math.min(WINDOW_PAGES, o.page + o.count + 1) - Math.max(0, o.page - 1),
            );
          }
          expectPages(0, WINDOW_PAGES);
          // The hardware walker agrees with the software walk on a sample.
          const hw = m.bus.counter('hw');
          for (let p = 0; p < WINDOW_PAGES; p += 37) {
            const r = walk(format, table.rootPa, WINDOW_BASE + p * PAGE, { bus: m.bus, counter: hw });
            const want = model.get(p);
            expect(r.ok ? r.pa : undefined).toBe(want === undefined ? undefined : PA_BASE + want * PAGE);
          }
          table.unmap(iovaOf(0), BigInt(WINDOW_PAGES * PAGE));
          expect(table.tablePages).toBe(format.rootTables);
          expect(m.memory.allocatedFrameCount).toBe(frames);
        }),
        { numRuns: 60 },
      );
    });
  }
});
