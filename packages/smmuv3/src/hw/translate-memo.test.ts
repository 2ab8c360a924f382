/**
 * The translator's hit memo (core HitMemo) must be invisible: an SMMU that replays remembered hits gives
 * the same results, the same cache statistics (hence the same later replacement choices) and the same
 * event records as one that looks every translation up. Tracing turns the memo off (a traced hit reports
 * itself), so two rigs — one traced, one not — run the same random programs side by side, on caches small
 * enough to evict all the time.
 */
import { NO_PASID, PERM_READ, PERM_WRITE, Tracer } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  IOVA,
  NESTED_STREAM,
  OUT,
  S1_STREAM,
  S2_STREAM,
  SSID,
  type TranslationRig,
  translationRig,
} from '../../test/translation-rig.js';
import {
  encodeCfgiAll,
  encodeCfgiCd,
  encodeCfgiSte,
  encodeCmdSync,
  encodeTlbiNhAll,
  encodeTlbiNhVa,
  encodeTlbiS12Vmall,
} from './command-codec.js';
import { CR0_CMDQEN, CR0_EVENTQEN, CR0_SMMUEN, REG } from './regs.js';

const PAGES = 16;
/** Pages the random programs touch: few, so the same request comes back often. */
const TOUCHED = 4;
const RW = { read: true, write: true } as const;

/** The translation rig with PAGES pages mapped on every stream, caches of a few entries, and `traced`. */
function rig(traced: boolean): TranslationRig {
  const tracer = new Tracer();
  if (traced) tracer.startRecording();
  const r = translationRig({
    tracer,
    smmu: {
      tlbEntries: 8,
      tlbWays: 2,
      tlbReplacement: 'lru',
      configCacheEntries: 4,
      configCacheWays: 2,
      walkCacheEntries: 8,
      walkCacheWays: 2,
    },
  });
  // Pages 2 and 3 are read-only at stage 1, so the access decides the answer there.
  r.s1.map(BigInt(IOVA), BigInt(OUT), 0x2000n, RW);
  r.s1.map(BigInt(IOVA + 0x2000), BigInt(OUT + 0x2000), 0x2000n, { read: true, write: false });
  r.s1.map(BigInt(IOVA + 0x4000), BigInt(OUT + 0x4000), BigInt((PAGES - 4) * 4096), RW);
  r.s2.map(BigInt(OUT), BigInt(OUT), BigInt(PAGES * 4096), RW);
  r.mapStage1TablesInStage2(IOVA);
  r.s1Stream();
  r.s2Stream();
  r.nestedStream();
  return r;
}

type Step =
  | { kind: 'translate'; stream: number; page: number; write: boolean; ssid: boolean }
  | { kind: 'command'; which: number; page: number; stream: number }
  | { kind: 'unmap'; page: number }
  | { kind: 'toggle' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('translate' as const),
      stream: fc.constantFrom(S1_STREAM, S2_STREAM, NESTED_STREAM),
      page: fc.nat(TOUCHED - 1),
      write: fc.boolean(),
      ssid: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('command' as const),
      which: fc.nat(5),
      page: fc.nat(TOUCHED - 1),
      stream: fc.constantFrom(S1_STREAM, S2_STREAM, NESTED_STREAM),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unmap' as const), page: fc.nat(TOUCHED - 1) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'toggle' as const }) },
);

/** Runs `s` on `r`; what a translation returned (results compared by value). */
function run(r: TranslationRig, s: Step, enabled: { on: boolean }): unknown {
  switch (s.kind) {
    case 'translate': {
      const base = s.stream === S2_STREAM ? OUT : IOVA;
      const access = s.write ? PERM_WRITE : PERM_READ;
      return r.translate(s.stream, base + s.page * 4096, access, s.ssid ? SSID : NO_PASID);
    }
    case 'command': {
      const commands = [
        encodeTlbiNhAll({ vmid: 0 }),
        encodeTlbiNhVa({ vmid: 0, asid: 1, addressPage: IOVA / 4096 + s.page, leaf: true }),
        encodeTlbiS12Vmall({ vmid: 0 }),
        encodeCfgiSte({ streamId: s.stream }),
        encodeCfgiCd({ streamId: s.stream, substreamId: 0 }),
        encodeCfgiAll(),
      ];
      r.submit(commands[s.which]!, encodeCmdSync());
      return undefined;
    }
    case 'unmap':
      // Memory changes without an invalidation: cached entries keep translating until one comes.
      r.s1.unmap(BigInt(IOVA + s.page * 4096), 0x1000n);
      return undefined;
    case 'toggle':
      enabled.on = !enabled.on;
      r.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN | (enabled.on ? CR0_SMMUEN : 0));
      return undefined;
  }
}

describe('the translator hit memo', () => {
  it('changes no result, statistic or event record (traced: no memo; untraced: memo)', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 40, maxLength: 120, size: 'max' }), (steps) => {
        const traced = rig(true);
        const plain = rig(false);
        const on = [{ on: true }, { on: true }];
        for (const s of steps) {
          const expected = run(traced, s, on[0]!);
          expect(run(plain, s, on[1]!), JSON.stringify(s)).toEqual(expected);
        }
        expect(plain.smmu.stats()).toEqual(traced.smmu.stats());
        expect(plain.records()).toEqual(traced.records());
      }),
      { numRuns: 60 },
    );
  });

  it('answers repeated hits without looking the caches up, counting them as hits all the same', () => {
    const r = rig(false);
    r.translate(S1_STREAM, IOVA, PERM_READ); // a miss: walked, not remembered
    const first = r.translate(S1_STREAM, IOVA, PERM_READ); // a hit in every cache: remembered
    const before = r.smmu.stats();
    const again = r.translate(S1_STREAM, IOVA, PERM_READ);
    // The same answer object: nothing was looked up or built.
    expect(again).toBe(first);
    const after = r.smmu.stats();
    expect(after.tlbHits).toBe(before.tlbHits! + 1);
    expect(after.steCacheHits).toBe(before.steCacheHits! + 1);
    expect(after.cdCacheHits).toBe(before.cdCacheHits! + 1);
    // A change of the caches' content (here a TLBI) ends the replay: the next one looks up again.
    r.submit(encodeTlbiNhAll({ vmid: 0 }), encodeCmdSync());
    const refetched = r.translate(S1_STREAM, IOVA, PERM_READ);
    expect(refetched).not.toBe(first);
    expect(refetched).toEqual(first);
  });

  it('ends the replay when the registers change, though no cache does', () => {
    const r = rig(false);
    for (let i = 0; i < 3; i++)
      expect(r.translate(S1_STREAM, IOVA, PERM_READ)).toMatchObject({ pfn: OUT / 4096 });
    r.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
    // SMMUEN == 0 with GBPA.ABORT == 0: the transaction bypasses (§6.3.9.6).
    expect(r.translate(S1_STREAM, IOVA, PERM_READ)).toMatchObject({ ok: true, pfn: IOVA / 4096 });
  });
});
