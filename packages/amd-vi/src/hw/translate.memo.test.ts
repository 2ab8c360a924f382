/**
 * The hit memo changes nothing a driver or a test can observe: random programs of translations, unmaps the
 * unit is not told about, INVALIDATE_IOMMU_PAGES and exclusion-range writes run on two units, one with the
 * memo and one with tracing on (which turns it off), and every result and counter must agree.
 */
import { PERM_READ, PERM_WRITE } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RW, unitRig } from '../../test/unit-rig.js';
import { buildInvalidateIommuPages } from './command-encoders.js';
import { EXCL_ALLOW, EXCL_EN, REG } from './regs.js';

const DEV = 0x10;
const IOVA = 0x4000_0000;
const PAGES = 8;

type Op =
  | { kind: 'translate'; page: number; write: boolean }
  | { kind: 'unmap'; page: number }
  | { kind: 'invalidate'; page: number }
  | { kind: 'exclude'; on: boolean };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('translate' as const),
      page: fc.nat(PAGES - 1),
      write: fc.boolean(),
    }),
  },
  fc.record({ kind: fc.constant('unmap' as const), page: fc.nat(PAGES - 1) }),
  fc.record({ kind: fc.constant('invalidate' as const), page: fc.nat(PAGES - 1) }),
  fc.record({ kind: fc.constant('exclude' as const), on: fc.boolean() }),
);

function unit(traced: boolean) {
  const r = unitRig({ iotlbEntries: 4, iotlbWays: 2, cacheReplacement: 'lru' });
  const table = r.hostTable(4);
  const mapped = new Set<number>();
  for (let page = 0; page < PAGES; page++) {
    table.map(BigInt(IOVA + page * 4096), BigInt(r.page()), 0x1000n, RW);
    mapped.add(page);
  }
  r.dte(DEV, {
    v: true,
    tv: true,
    mode: 4,
    hostPageTableRootPtr: table.rootPa,
    ir: true,
    iw: true,
    domainId: 3,
  });
  if (traced) r.tracer.startRecording();
  const outcomes: string[] = [];
  const run = (o: Op) => {
    if (o.kind === 'translate') {
      const result = r.translate(DEV, IOVA + o.page * 4096, o.write ? PERM_WRITE : PERM_READ);
      outcomes.push(result.ok ? `ok ${result.pfn} ${result.perm}` : `fault ${result.fault.kind}`);
    } else if (o.kind === 'unmap') {
      if (mapped.delete(o.page)) table.unmap(BigInt(IOVA + o.page * 4096), 0x1000n);
    } else if (o.kind === 'invalidate') {
      r.submit(buildInvalidateIommuPages(IOVA + o.page * 4096, 0x1000, 3, 0, false));
    } else {
      r.mmio64(REG.EXCL_BASE, o.on ? IOVA + (EXCL_EN | EXCL_ALLOW) : 0);
      r.mmio64(REG.EXCL_LIMIT, IOVA + 0x1000);
    }
  };
  return { r, run, outcomes };
}

describe('the AMD translation hit memo', () => {
  it('gives the results and counters a unit without it gives', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const memo = unit(false);
        const plain = unit(true);
        for (const o of ops) {
          memo.run(o);
          plain.run(o);
        }
        expect(memo.outcomes).toEqual(plain.outcomes);
        expect(memo.r.unit.stats()).toEqual(plain.r.unit.stats());
        expect(memo.r.events()).toEqual(plain.r.events());
      }),
      {
        numRuns: 60,
        // A hit remembered, then the exclusion range laid over its page: the memo must not answer.
        examples: [
          [
            [
              { kind: 'translate', page: 0, write: false },
              { kind: 'translate', page: 0, write: false },
              { kind: 'exclude', on: true },
              { kind: 'translate', page: 0, write: false },
            ],
          ],
        ],
      },
    );
  });
});
