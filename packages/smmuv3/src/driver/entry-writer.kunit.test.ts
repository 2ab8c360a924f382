/**
 * A port of the Linux arm-smmu-v3 KUnit hitless-update tests (arm-smmu-v3-test.c, `arm_smmu_v3_write_ste_test_*`
 * and `arm_smmu_v3_write_cd_test_*`, including the v7.0 nested cases) to `writeEntry` with `steUsed`/`cdUsed`
 * and the entries of `ste-builders.ts`.
 *
 * For every transition, as KUnit does: after each sync the entry, masked by its own used bits, equals the
 * initial or the target entry masked the same way; the entry ends equal to the target; the sync count is
 * Linux's; and "V = 0 seen at a sync" equals "not hitless" (KUnit's notion: it also counts a transition
 * from or to an invalid CD).
 *
 * Beyond KUnit, the SMMU is simulated fetching the entry between every two qword stores, not only at syncs
 * (SMMUv3 §3.21.3 promises 64-bit single-copy atomicity only): after each `writeQword` the entry is decoded
 * with the codecs and must be the initial or the target configuration (used-masked words, same Config kind,
 * same `checkSte`/`checkCd` verdict), or V = 0 during a breaking update. Since one fetch may also read its
 * qwords at different moments, every mix of old and new qwords written between two syncs is checked the
 * same way (a CFGI + CMD_SYNC completes fetches that started before it, so no fetch spans a sync).
 *
 * The Linux fixtures use register values that are ILLEGAL for a real SMMU (T0SZ 4, a 52-bit TTB with a 16K
 * granule, S1CDMax 31); here they are legal values from `@iommukit/pagetables` formats with the same qword
 * layout, so the codecs' verdicts mean something and the sync counts are unchanged.
 */
import { FrameAllocator, MemoryBus } from '@iommukit/core';
import { IoPageTable } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import {
  ATS,
  BYPASS,
  CD_CASES,
  CD_TABLE,
  cdTable,
  FEATURES,
  IPS_48,
  invalidCd,
  type Kind,
  NESTED_STE_CASES,
  NONE,
  nestedCdTable,
  S1_FORMAT,
  S1_ROOT,
  S2_FORMAT,
  S2_ROOT,
  SSID0,
  STALL,
  STE_CASES,
  SVA_PGD,
  s1CdWithAsid,
  s2,
  sva,
  svaRelease,
} from '../../test/kunit-cases.js';
import { CD_LAYOUT, checkCd, decodeCd, encodeCd } from '../hw/cd.js';
import {
  checkSte,
  decodeSte,
  encodeSte,
  STE_CONFIG,
  STE_EATS,
  STE_LAYOUT,
  STE_S1FMT,
  STE_WORDS,
  steConfigKind,
} from '../hw/ste.js';
import { cdUsed, steUpdateSafe, steUsed } from './entry-used.js';
import { type EntryWords, type WriteOutcome, writeEntry } from './entry-writer.js';
import {
  abortSte,
  builderCaps,
  bypassSte,
  cdTableSte,
  DEFAULT_BUILDER_CAPS,
  nestedSte,
  releasedCd,
  s1CdForTable,
  svaCd,
} from './ste-builders.js';

// ---------------------------------------------------------------------------------------------------------
// The simulated writer run.

const ZERO = new Uint32Array(STE_WORDS);

const usedOf = (kind: Kind) => (kind === 'ste' ? steUsed : cdUsed);
const isValid = (kind: Kind, w: ArrayLike<number>) => (kind === 'ste' ? decodeSte(w).v : decodeCd(w).v);

/** What the codecs make of an entry: its kind of configuration and the validity check's verdict. */
function decoded(kind: Kind, w: ArrayLike<number>): string {
  if (kind === 'ste') {
    const ste = decodeSte(w);
    const check = checkSte(ste, FEATURES);
    const what = ste.v ? steConfigKind(ste.config) : 'V=0';
    return `${what}/${check.ok ? 'ok' : check.reason}`;
  }
  const cd = decodeCd(w);
  const check = checkCd(cd, FEATURES);
  const what = cd.v ? (cd.epd0 ? 'TTB0 disabled' : 'translating') : 'V=0';
  return `${what}/${check.ok ? 'ok' : check.reason}`;
}

/** Linux arm_smmu_entry_differs_in_used_bits: `entry` and `ref` differ in `used` minus `safe`. */
function differs(
  entry: ArrayLike<number>,
  used: EntryWords,
  ref: ArrayLike<number>,
  safe: EntryWords,
): boolean {
  for (let w = 0; w < used.length; w++) {
    const mask = used[w]! & ~safe[w]!;
    if (((entry[w]! ^ ref[w]!) & mask) !== 0) return true;
  }
  return false;
}

const hex = (w: ArrayLike<number>) =>
  Array.from(w, (x) => x.toString(16).padStart(8, '0'))
    .join(' ')
    .replace(/( 00000000)+$/, ' …');

interface Run {
  readonly entry: Uint32Array;
  readonly memory: Uint32Array;
  readonly outcome: WriteOutcome;
  readonly syncs: number;
  /** KUnit invalid_entry_written: V = 0 at some sync. */
  readonly invalidAtSync: boolean;
  /** The SMMU could fetch V = 0 where neither end of the update is invalid: a breaking update. */
  readonly transientInvalid: boolean;
  /** Fetch points checked: after every qword store, and every mix of a step's stores. */
  readonly fetches: number;
  readonly violations: readonly string[];
}

/**
 * Runs `writeEntry(from → to)` against a simulated SMMU reading the memory the writer stores to. With
 * `relaxed`, the writer gets Linux v7.0's update-safe hook (`steUpdateSafe`, as the stream table gives it)
 * and the oracle ignores safe bits as the v7.0 KUnit test does; without, it runs the pre-v7.0 algorithm.
 */
function run(kind: Kind, from: Uint32Array, to: Uint32Array, relaxed = false): Run {
  const used = usedOf(kind);
  const safe = (a: ArrayLike<number>, b: ArrayLike<number>) => (relaxed ? steUpdateSafe(a, b) : ZERO);
  const entry = Uint32Array.from(from);
  const memory = Uint32Array.from(from);
  const violations: string[] = [];
  let syncs = 0;
  let fetches = 0;
  let invalidAtSync = false;
  let transientInvalid = false;
  let stepBase = Uint32Array.from(memory);
  let stepWrites: { index: number; lo: number; hi: number }[] = [];

  const fetch = (state: Uint32Array, where: string): void => {
    fetches++;
    const u = used(state);
    const isFrom = !differs(state, u, from, safe(state, from));
    const isTo = !differs(state, u, to, safe(state, to));
    if (isFrom || isTo) {
      const ref = isFrom ? from : to;
      if (decoded(kind, state) !== decoded(kind, ref)) {
        violations.push(
          `${where}: decodes as ${decoded(kind, state)}, not ${decoded(kind, ref)}: ${hex(state)}`,
        );
      }
      return;
    }
    if (!isValid(kind, state)) {
      transientInvalid = true;
      return;
    }
    violations.push(`${where}: neither configuration (${decoded(kind, state)}): ${hex(state)}`);
  };

  const outcome = writeEntry(entry, to, {
    used: (e: EntryWords) => used(e),
    ...(relaxed ? { updateSafe: steUpdateSafe } : {}),
    writeQword(index, lo, hi) {
      if (stepWrites.some((w) => w.index === index)) violations.push(`qword ${index} stored twice in a step`);
      stepWrites.push({ index, lo, hi });
      memory[2 * index] = lo >>> 0;
      memory[2 * index + 1] = hi >>> 0;
      fetch(memory, `sync ${syncs + 1}, after storing qword ${index}`);
    },
    sync() {
      syncs++;
      if (hex(memory) !== hex(entry)) violations.push(`sync ${syncs}: memory is not the writer's entry`);
      // KUnit arm_smmu_test_writer_record_syncs.
      if (!isValid(kind, memory)) invalidAtSync = true;
      else {
        const u = used(memory);
        if (differs(memory, u, from, safe(memory, from)) && differs(memory, u, to, safe(memory, to))) {
          violations.push(`sync ${syncs}: neither the initial nor the target entry: ${hex(memory)}`);
        }
      }
      // A fetch reading each qword at its own moment within the step: every mix of old and new qwords.
      for (let mix = 1; mix < 2 ** stepWrites.length - 1; mix++) {
        const state = Uint32Array.from(stepBase);
        stepWrites.forEach((w, i) => {
          if ((mix >>> i) & 1) {
            state[2 * w.index] = w.lo;
            state[2 * w.index + 1] = w.hi;
          }
        });
        fetch(state, `step ${syncs}, torn mix ${mix.toString(2)}`);
      }
      stepBase = Uint32Array.from(memory);
      stepWrites = [];
    },
  });
  if (stepWrites.length !== 0) violations.push('stores after the last sync');
  return { entry, memory, outcome, syncs, invalidAtSync, transientInvalid, fetches, violations };
}

/** The KUnit expectations, and the writer's own `hitless` (no transient V = 0: see WriteOutcome). */
function expectTransition(kind: Kind, from: Uint32Array, to: Uint32Array, syncs: number, hitless: boolean) {
  const r = run(kind, from, to);
  expect(r.violations).toEqual([]);
  expect(Array.from(r.entry)).toEqual(Array.from(to));
  expect(Array.from(r.memory)).toEqual(Array.from(to));
  expect(r.syncs).toBe(syncs);
  expect(r.outcome.syncs).toBe(syncs);
  expect(r.invalidAtSync).toBe(!hitless);
  // The writer reports the path it took: a CD written from or to V = 0 is "hitless" for it (no V = 0 step
  // between two valid configurations) although KUnit counts the invalid end.
  const endpointInvalid = !isValid(kind, from) || !isValid(kind, to);
  expect(r.outcome.hitless).toBe(hitless || endpointInvalid);
  expect(r.transientInvalid).toBe(!r.outcome.hitless);
  expect(r.fetches).toBeGreaterThan(0);
  return r;
}

describe('Linux KUnit hitless STE updates (arm-smmu-v3-test.c) on writeEntry + steUsed', () => {
  for (const c of STE_CASES) {
    it(`${c.title} [${c.linux}]`, () => {
      expectTransition(c.kind, c.from(), c.to(), c.syncs, c.hitless);
    });
  }
});

describe('Linux KUnit hitless CD updates (arm-smmu-v3-test.c) on writeEntry + cdUsed', () => {
  for (const c of CD_CASES) {
    it(`${c.title} [${c.linux}]`, () => {
      expectTransition(c.kind, c.from(), c.to(), c.syncs, c.hitless);
    });
  }
});

/**
 * The v7.0 nested cases. Linux makes them hitless with get_update_safe (MEV and EATS may differ mid-update),
 * and so does `writeEntry` given `updateSafe`. Without the hook (the pre-v7.0 writer) they take the
 * breaking path: never torn, but V = 0 meanwhile, so traffic aborts and raises C_BAD_STE — the symptom that
 * led Linux to the relaxation.
 */
describe('Linux KUnit nested STE updates (v7.0, update-safe MEV/EATS)', () => {
  const cases = NESTED_STE_CASES;
  for (const c of cases) {
    it(`${c.title}, with the update-safe hook [${c.linux}]`, () => {
      const r = run('ste', c.from(), c.to(), true);
      expect(r.violations).toEqual([]);
      expect(Array.from(r.entry)).toEqual(Array.from(c.to()));
      expect(r.syncs).toBe(c.syncs);
      expect(r.invalidAtSync).toBe(false);
      expect(r.transientInvalid).toBe(false);
      expect(r.outcome).toEqual({ hitless: true, syncs: c.syncs });
    });
    it(`${c.title.replace(/: Linux.*/, '')}: without the hook (pre-v7.0) breaking, 3 syncs [${c.linux}]`, () => {
      expectTransition('ste', c.from(), c.to(), 3, false);
    });
  }
});

describe('transitions beyond KUnit', () => {
  it('S1 CD table → S2 with a real (non-zero) VMID: breaking, 3 syncs (S2VMID is used by both)', () => {
    // KUnit's S2 STE has VMID 0 only because its domain is zeroed; Linux reserves VMID 0 for stage-1 STEs.
    expectTransition('ste', cdTable(SSID0, ATS), s2(ATS, 5), 3, false);
    expectTransition('ste', s2(ATS, 5), cdTable(SSID0, ATS), 3, false);
  });

  it('nested (guest S1) → nested (guest bypass = host S2 alone) with ATS: breaking, 3 syncs; hitless, 3 syncs with update-safe', () => {
    const from = nestedCdTable(SSID0, ATS);
    const guestBypass = encodeSte({ v: true, config: STE_CONFIG.BYPASS });
    const to = nestedSte(guestBypass, s2(ATS));
    expectTransition('ste', from, to, 3, false); // MEV 1 → 0 in qword 1 besides Config in qword 0
    const relaxed = run('ste', from, to, true);
    expect(relaxed.violations).toEqual([]);
    expect(relaxed.outcome).toEqual({ hitless: true, syncs: 3 });
  });

  it('S1 CD for an IoPageTable: ASID change is hitless with 1 sync, release and back with 2', () => {
    const bus = new MemoryBus();
    bus.addRam('ram', 0x8000_0000, 16 * 1024 * 1024);
    const memory = new FrameAllocator([{ base: 0x8000_0000, size: 16 * 1024 * 1024 }], (b, n) =>
      bus.discardRam(b, n),
    );
    const table = new IoPageTable(S1_FORMAT, { bus, memory, counter: bus.counter('pgtable') });
    const a = s1CdForTable(table, { asid: 1 });
    const b = s1CdForTable(table, { asid: 2 });
    expect(decodeCd(a)).toMatchObject({ ttb0: table.rootPa, t0sz: 16, tg0: 0, ips: IPS_48, asid: 1 });
    expectTransition('cd', a, b, 1, true);
    expectTransition('cd', b, releasedCd(b), 2, true);
    expectTransition('cd', releasedCd(b), b, 2, true);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('fixtures', () => {
  const stes: [string, Uint32Array][] = [
    ['abort', abortSte()],
    ['bypass', bypassSte()],
    ['CD table SSID0 ATS', cdTable(SSID0, ATS)],
    ['CD table bypass ATS', cdTable(BYPASS, ATS)],
    ['CD table STALL', cdTable(SSID0, STALL)],
    ['S2 ATS', s2(ATS)],
    ['S2 STALL', s2(STALL)],
    ['S2 VMID 5', s2(ATS, 5)],
    ['nested S1DSS bypass ATS', nestedCdTable(BYPASS, ATS)],
  ];
  const cds: [string, Uint32Array][] = [
    ['S1 ASID 1997', s1CdWithAsid(1997)],
    ['SVA', sva(1997)],
    ['quiet SVA', svaRelease(1997)],
    ['released S1', releasedCd(s1CdWithAsid(1))],
  ];

  it('are legal (checkSte / checkCd) and set no bit outside their own used mask', () => {
    for (const [name, ste] of stes) {
      expect(checkSte(decodeSte(ste), FEATURES), name).toEqual({ ok: true });
      const used = steUsed(ste);
      expect(
        ste.every((w, i) => (w & ~used[i]!) === 0),
        name,
      ).toBe(true);
    }
    for (const [name, cd] of cds) {
      expect(checkCd(decodeCd(cd), FEATURES), name).toEqual({ ok: true });
      const used = cdUsed(cd);
      expect(
        cd.every((w, i) => (w & ~used[i]!) === 0),
        name,
      ).toBe(true);
    }
  });

  it('match the Linux builders field by field', () => {
    expect(decodeSte(cdTable(BYPASS, ATS))).toMatchObject({
      config: STE_CONFIG.S1_TRANS,
      s1Fmt: STE_S1FMT.TWO_LEVEL_64K,
      s1ContextPtr: CD_TABLE,
      s1CdMax: 20,
      s1Dss: BYPASS,
      s1Cir: 1,
      s1Cor: 1,
      s1Csh: 3,
      s1Stalld: true,
      eats: STE_EATS.FULL,
      shCfg: 1,
      strw: 0,
      s2Vmid: 0,
    });
    expect(decodeSte(cdTable(SSID0, STALL))).toMatchObject({ s1Stalld: false, eats: 0, shCfg: 0 });
    const tc = S2_FORMAT.translationControl(S2_ROOT);
    expect(decodeSte(s2(STALL, 7))).toMatchObject({
      config: STE_CONFIG.S2_TRANS,
      eats: 0,
      shCfg: 1,
      s2Vmid: 7,
      s2T0sz: tc.t0sz,
      s2Sl0: tc.sl0,
      s2Tg: tc.tg,
      s2Ps: tc.ps,
      s2Ir0: 1,
      s2Or0: 1,
      s2Sh0: 3,
      s2Aa64: true,
      s2Ptw: true,
      s2S: true,
      s2R: true,
      s2Ttb: S2_ROOT,
    });
    const nested = decodeSte(nestedCdTable(BYPASS, ATS));
    expect(nested).toMatchObject({
      config: STE_CONFIG.NESTED,
      mev: true,
      eats: STE_EATS.FULL,
      s1Dss: BYPASS,
    });
    expect(Array.from(nestedCdTable(BYPASS, ATS).subarray(4))).toEqual(Array.from(s2(ATS).subarray(4)));
    expect(decodeCd(s1CdWithAsid(1997))).toMatchObject({
      v: true,
      epd0: false,
      epd1: true,
      aa64: true,
      r: true,
      a: true,
      aset: true,
      s: false,
      asid: 1997,
      ips: IPS_48,
      ttb0: S1_ROOT,
      mair0: 0xf404ff44,
    });
    expect(decodeCd(svaRelease(5))).toMatchObject({
      v: true,
      epd0: true,
      s: false,
      r: false,
      ttb0: 0,
      t0sz: 0,
    });
    expect(
      decodeCd(svaCd({ asid: 5, ips: IPS_48, stall: true }, { ...DEFAULT_BUILDER_CAPS, stallForce: true })),
    ).toMatchObject({ epd0: true, s: true, r: true });
    expect(decodeCd(svaCd({ asid: 5, ttb0: SVA_PGD, ips: IPS_48, btm: true }))).toMatchObject({
      aset: false,
    });
  });

  it('nestedSte maps a guest abort / invalid vSTE to abort and a guest bypass to the host S2', () => {
    const host = s2(ATS, 3);
    expect(nestedSte(encodeSte({ v: true, config: STE_CONFIG.ABORT }), host)).toEqual(abortSte());
    expect(nestedSte(new Uint32Array(STE_WORDS), host)).toEqual(abortSte());
    expect(nestedSte(encodeSte({ v: true, config: STE_CONFIG.BYPASS }), host)).toEqual(host);
    // Stage 1: the guest's S1 fields over the host's S2 STE, Config = nested, MEV; the guest's EATS is ignored.
    const guest = encodeSte({ ...decodeSte(cdTable(SSID0, NONE)), eats: STE_EATS.ABORT });
    expect(decodeSte(nestedSte(guest, host))).toEqual({
      ...decodeSte(host),
      config: STE_CONFIG.NESTED,
      s1Fmt: STE_S1FMT.TWO_LEVEL_64K,
      s1ContextPtr: CD_TABLE,
      s1CdMax: 20,
      s1Dss: SSID0,
      s1Cir: decodeSte(guest).s1Cir,
      s1Cor: decodeSte(guest).s1Cor,
      s1Csh: decodeSte(guest).s1Csh,
      s1Stalld: decodeSte(guest).s1Stalld,
      mev: true,
    });
  });

  it('builderCaps follows the stall model', () => {
    expect(builderCaps({ ...FEATURES, stallModel: 'no-stall' })).toMatchObject({
      stalls: false,
      stallForce: false,
    });
    expect(builderCaps({ ...FEATURES, stallModel: 'force-stall' })).toMatchObject({
      stalls: true,
      stallForce: true,
    });
    const noStalls = builderCaps({ ...FEATURES, stallModel: 'no-stall' });
    expect(decodeSte(cdTableSte({ cdTable: CD_TABLE }, noStalls)).s1Stalld).toBe(false);
  });
});

describe('used bits (Linux arm_smmu_get_ste_used / arm_smmu_get_cd_used)', () => {
  /** The fields a used mask covers, by decoding it: a field is listed when all its bits are used. */
  function steFields(mask: Uint32Array): string[] {
    const ste = decodeSte(mask) as unknown as Record<string, number | boolean>;
    return Object.entries(STE_LAYOUT)
      .filter(([key, [, width]]) => ste[key] === (width === 1 ? true : 2 ** width - 1))
      .map(([key]) => key)
      .sort();
  }
  function cdFields(mask: Uint32Array): string[] {
    const cd = decodeCd(mask) as unknown as Record<string, number | boolean>;
    return Object.entries(CD_LAYOUT)
      .filter(([key, [, width]]) => cd[key] === (width === 1 ? true : 2 ** width - 1))
      .map(([key]) => key)
      .sort();
  }
  const S1 = [
    's1Fmt',
    's1CdMax',
    's1Dss',
    's1Cir',
    's1Cor',
    's1Csh',
    's1Stalld',
    'strw',
    'eats',
    'mev',
    's2Vmid',
  ];
  const S2 = [
    ...[
      'eats',
      'shCfg',
      's2Fwb',
      'mev',
      's2Vmid',
      's2T0sz',
      's2Sl0',
      's2Ir0',
      's2Or0',
      's2Sh0',
      's2Tg',
      's2Ps',
    ],
    ...['s2Aa64', 's2Endi', 's2Ptw', 's2S', 's2R'],
  ];
  const set = (...keys: string[]) => [...new Set(keys)].sort();

  it('STE: V = 0 uses only V, abort V and Config, bypass adds SHCFG', () => {
    expect(steFields(steUsed(encodeSte({ config: STE_CONFIG.S1_TRANS, s1Dss: BYPASS })))).toEqual(['v']);
    expect(steFields(steUsed(abortSte()))).toEqual(['config', 'v']);
    expect(steFields(steUsed(bypassSte()))).toEqual(['config', 'shCfg', 'v']);
  });

  it('STE: stage 1 fields, SHCFG only with S1DSS = bypass, and S1ContextPtr', () => {
    expect(steFields(steUsed(cdTable(SSID0, ATS)))).toEqual(set('v', 'config', ...S1));
    expect(steFields(steUsed(cdTable(BYPASS, ATS)))).toEqual(set('v', 'config', 'shCfg', ...S1));
    const used = steUsed(cdTable(SSID0, ATS));
    expect(decodeSte(used).s1ContextPtr).toBe(2 ** 56 - 64);
    expect(decodeSte(used).s2Ttb).toBe(0);
  });

  it('STE: stage 2 fields and S2TTB; nested is the union; S2HA/S2HD/S2AFFD are not listed (Linux)', () => {
    const s2Used = steUsed(s2(ATS));
    expect(steFields(s2Used)).toEqual(set('v', 'config', ...S2));
    expect(decodeSte(s2Used).s2Ttb).toBe(2 ** 56 - 16);
    expect(steFields(steUsed(nestedCdTable(SSID0, ATS)))).toEqual(set('v', 'config', ...S1, ...S2));
    expect(Array.from(s2Used.subarray(8)).every((w) => w === 0)).toBe(true);
  });

  it('STE: Config is tested bit by bit, so the reserved 0b001 is given the stage 1 bits', () => {
    expect(steFields(steUsed(encodeSte({ v: true, config: 0b001 })))).toEqual(set('v', 'config', ...S1));
    expect(steFields(steUsed(encodeSte({ v: true, config: 0b010 })))).toEqual(set('v', 'config', ...S2));
  });

  it('CD: V = 0 uses only V; V = 1 every bit; EPD0 = 1 frees T0SZ, TG0, IR0, OR0, SH0 and TTB0', () => {
    expect(cdFields(cdUsed(invalidCd()))).toEqual(['v']);
    expect(cdUsed(sva(1)).every((w) => w === 0xffff_ffff)).toBe(true);
    const released = cdUsed(svaRelease(1));
    const all = Object.keys(CD_LAYOUT);
    expect(cdFields(released)).toEqual(
      all.filter((k) => !['t0sz', 'tg0', 'ir0', 'or0', 'sh0'].includes(k)).sort(),
    );
    expect(decodeCd(released).ttb0).toBe(0);
    expect(decodeCd(released).ttb1).toBe(2 ** 56 - 16);
    // Every bit outside those fields stays used, reserved ones included.
    const freed = encodeCd({ t0sz: 63, tg0: 3, ir0: 3, or0: 3, sh0: 3, ttb0: 2 ** 56 - 16 });
    expect(released.every((w, i) => w === (0xffff_ffff & ~freed[i]!) >>> 0)).toBe(true);
  });

  it('update-safe: MEV always; EATS full-ATS bit unless S2S or split-stage EATS on either side', () => {
    const mev = encodeSte({ mev: true });
    const eatsFull = encodeSte({ eats: STE_EATS.FULL });
    const both = Array.from(mev, (w, i) => (w | eatsFull[i]!) >>> 0);
    expect(Array.from(steUpdateSafe(s2(ATS), s2(NONE)))).toEqual(both);
    expect(Array.from(steUpdateSafe(s2(STALL), s2(NONE)))).toEqual(Array.from(mev));
    expect(Array.from(steUpdateSafe(s2(NONE), s2(STALL)))).toEqual(Array.from(mev));
    const split = encodeSte({ ...decodeSte(nestedCdTable(SSID0, NONE)), eats: STE_EATS.SPLIT });
    expect(Array.from(steUpdateSafe(split, s2(NONE)))).toEqual(Array.from(mev));
    // The writer relaxes only safe bits both sides use: abort ignores EATS and MEV, so S2 → abort is
    // sequenced exactly as without the hook.
    const hooked = run('ste', s2(ATS), abortSte(), true);
    expect(hooked.violations).toEqual([]);
    expect(hooked.outcome).toEqual(run('ste', s2(ATS), abortSte()).outcome);
  });
});
