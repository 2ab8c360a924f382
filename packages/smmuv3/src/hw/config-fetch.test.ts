/**
 * The configuration fetches alone (IHI 0070 §3.3, §5.2, §5.4): what a CD fetch through a linear or
 * 2-level CD table returns when a table read aborts, an L1CD is invalid, the CD is ILLEGAL, or (nested) a
 * table pointer IPA has no stage-2 mapping, and the trace of each fetch.
 */
import { FrameAllocator, MemoryBus, Tracer } from '@iommukit/core';
import { IoPageTable, type VmsaFormat, vmsaFormat } from '@iommukit/pagetables';
import { beforeEach, describe, expect, it } from 'vitest';
import { testCd } from '../../test/cd-fixture.js';
import { testS2Fields } from '../../test/ste-fixture.js';
import { decodeCd, encodeCd, encodeL1Cd } from './cd.js';
import { Smmuv3ConfigFetch } from './config-fetch.js';
import { EVENT_CLASS } from './events.js';
import { DEFAULT_IDR_EXTRAS } from './features.js';
import { featuresFromOptions, Smmuv3OptionsSchema } from './options.js';
import type { TranslationState } from './programming-interface.js';
import { Smmuv3StageWalker } from './stage-walks.js';
import { decodeSte, encodeSte, STE_CONFIG, STE_S1FMT, type Ste } from './ste.js';

const RAM = 0x8000_0000;
const STRTAB = RAM;
const L1 = RAM + 0x10_0000;
const L2 = RAM + 0x11_0000;
/** Outside the bus's RAM: a fetch there aborts. */
const NOWHERE = 0x4000_0000;
const features = featuresFromOptions(Smmuv3OptionsSchema.parse({}));
const state: TranslationState = {
  smmuEnabled: true,
  gbpaAbort: false,
  strtabBase: STRTAB,
  strtabFmt: 0,
  strtabSplit: 8,
  strtabLog2Size: 8,
  recordInvalidStreamIds: true,
  e2h: false,
};

let bus: MemoryBus;
let tracer: Tracer;
let fetch: Smmuv3ConfigFetch;
let s2: IoPageTable;
let s2Format: VmsaFormat;
const put = (addr: number, words: Uint32Array) =>
  bus.writeWords(addr, words, words.length, bus.counter('test'));
const reads = () => bus.counter('smmu').reads;

beforeEach(() => {
  bus = new MemoryBus();
  bus.addRam('dram', RAM, 16 * 2 ** 20);
  tracer = new Tracer();
  const ctx = {
    instance: 'smmu0',
    bus,
    counter: bus.counter('smmu'),
    tracer,
    features,
    idr: DEFAULT_IDR_EXTRAS,
    configCache: { sets: 2, ways: 4, policy: 'lru' as const },
    state: () => state,
  };
  fetch = new Smmuv3ConfigFetch(ctx, new Smmuv3StageWalker(ctx));
  s2Format = vmsaFormat({ stage: 2, granule: 4096, ias: 48, oas: 48 });
  const memory = new FrameAllocator([{ base: RAM + 0x80_0000, size: 0x40_0000 }]);
  s2 = new IoPageTable(s2Format, { bus, memory, counter: bus.counter('pt') }, { pageSizes: 1n << 12n });
});

/** A stage-1 STE whose 2-level CD table (4 KiB leaves, 256 SubstreamIDs) starts at `l1`. */
const twoLevel = (l1: number, over: Partial<Ste> = {}): Ste =>
  decodeSte(
    encodeSte({
      v: true,
      config: STE_CONFIG.S1_TRANS,
      s1ContextPtr: l1,
      s1CdMax: 8,
      s1Fmt: STE_S1FMT.TWO_LEVEL_4K,
      ...over,
    }),
  );
const nested = (l1: number) =>
  twoLevel(l1, { config: STE_CONFIG.NESTED, ...testS2Fields(s2.rootPa, { s2R: true }) });
/** SubstreamID 65 is entry 1 of the level-2 table that L1CD 1 locates (2^6 CDs per level-2 table). */
const SSID = 65;

describe('CD fetches through a 2-level CD table (§5.3)', () => {
  it('the L1CD selects the level-2 table; the CD is cached, so a second fetch reads nothing', () => {
    put(L1 + 8, encodeL1Cd({ v: true, l2Ptr: L2 }));
    put(L2 + 64, testCd(0x8070_0000, { asid: 9 }));
    const before = reads();
    expect(fetch.cd(1, SSID, twoLevel(L1), undefined)).toMatchObject({ asid: 9, ttb0: 0x8070_0000 });
    expect(reads() - before, 'the L1CD and the CD').toBe(2);
    fetch.cd(1, SSID, twoLevel(L1), undefined);
    expect(reads() - before).toBe(2);
  });

  it('an L1CD read that aborts is F_CD_FETCH at the L1CD address', () => {
    expect(fetch.cd(1, SSID, twoLevel(NOWHERE), undefined)).toStrictEqual({
      event: 'F_CD_FETCH',
      record: true,
      fetchAddr: NOWHERE + 8,
    });
  });

  it('an invalid L1CD is C_BAD_SUBSTREAMID, recorded (§5.3.1)', () => {
    put(L1 + 8, encodeL1Cd({ v: false, l2Ptr: L2 }));
    expect(fetch.cd(1, SSID, twoLevel(L1), undefined)).toMatchObject({
      event: 'C_BAD_SUBSTREAMID',
      record: true,
    });
  });

  it('a CD read that aborts is F_CD_FETCH at the CD address', () => {
    put(L1 + 8, encodeL1Cd({ v: true, l2Ptr: NOWHERE }));
    expect(fetch.cd(1, SSID, twoLevel(L1), undefined)).toStrictEqual({
      event: 'F_CD_FETCH',
      record: true,
      fetchAddr: NOWHERE + 64,
    });
  });

  it('an ILLEGAL CD is C_BAD_CD, recorded, and not cached: the fixed CD is used without a CFGI', () => {
    put(L1 + 8, encodeL1Cd({ v: true, l2Ptr: L2 }));
    put(L2 + 64, testCd(0x8070_0000, { v: false }));
    expect(fetch.cd(1, SSID, twoLevel(L1), undefined)).toMatchObject({ event: 'C_BAD_CD', record: true });
    put(L2 + 64, testCd(0x8070_0000, { asid: 4 }));
    expect(fetch.cd(1, SSID, twoLevel(L1), undefined)).toMatchObject({ asid: 4 });
  });
});

describe('nested: the CD table pointers are IPAs that stage 2 translates (CLASS CD)', () => {
  it('an L1CD IPA without a stage-2 mapping is the stage-2 F_TRANSLATION of that IPA, CLASS CD', () => {
    expect(fetch.cd(3, SSID, nested(L1), s2Format)).toMatchObject({
      event: 'F_TRANSLATION',
      s2: true,
      cls: EVENT_CLASS.CD,
      ipa: L1,
      record: true,
    });
  });

  it('with the L1CD page mapped, the L2 table IPA is the one that faults', () => {
    s2.map(BigInt(L1), BigInt(L1), 0x1000n, { read: true, write: false });
    put(L1 + 8, encodeL1Cd({ v: true, l2Ptr: L2 }));
    expect(fetch.cd(3, SSID, nested(L1), s2Format)).toMatchObject({
      event: 'F_TRANSLATION',
      s2: true,
      cls: EVENT_CLASS.CD,
      ipa: L2,
    });
    s2.map(BigInt(L2), BigInt(L2), 0x1000n, { read: true, write: false });
    put(L2 + 64, testCd(0x8070_0000, { asid: 6 }));
    expect(fetch.cd(3, SSID, nested(L1), s2Format)).toMatchObject({ asid: 6 });
  });
});

describe('tracing the fetches', () => {
  it('each STE and CD fetch is a "ste.fetch" / "cd.fetch" hardware trace record of the instance', () => {
    put(STRTAB + 64 * 2, encodeSte({ v: true, config: STE_CONFIG.BYPASS }));
    put(L1 + 8, encodeL1Cd({ v: true, l2Ptr: L2 }));
    put(L2 + 64, testCd(0x8070_0000));
    tracer.startRecording();
    expect(fetch.ste(2, state)).toMatchObject({ ok: true });
    fetch.cd(1, SSID, twoLevel(L1), undefined);
    expect(tracer.stopRecording().map(({ layer, source, name }) => [layer, source, name])).toEqual([
      ['hw', 'smmu0', 'ste.fetch'],
      ['hw', 'smmu0', 'cd.fetch'],
    ]);
  });
});

describe('decoded once: the configuration caches hold what each translation needs', () => {
  it('a CD carries its stage-1 table format; CDs with the same TG0, T0SZ and IPS share one format object', () => {
    put(L1 + 8, encodeL1Cd({ v: true, l2Ptr: L2 }));
    put(L2 + 64, testCd(0x8070_0000, { asid: 9 }));
    put(L2 + 128, testCd(0x8071_0000, { asid: 10 }));
    const a = fetch.cd(1, SSID, twoLevel(L1), undefined);
    const b = fetch.cd(1, SSID + 1, twoLevel(L1), undefined);
    if ('event' in a || 'event' in b) throw new Error('the CDs are valid');
    expect(a.s1Format).toMatchObject({ stage: 1, granule: 4096, ias: 48 });
    expect(b.s1Format).toBe(a.s1Format);
  });

  it('an STE carries what its Config selects and its stage-2 format, shared by STEs with the same fields', () => {
    const fields = testS2Fields(s2.rootPa);
    put(STRTAB + 64, encodeSte({ v: true, config: STE_CONFIG.S2_TRANS, ...fields }));
    put(STRTAB + 128, encodeSte({ v: true, config: STE_CONFIG.S2_TRANS, ...fields, s2Vmid: 6 }));
    put(STRTAB + 192, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: L1 }));
    const [one, two, three] = [1, 2, 3].map((sid) => fetch.ste(sid, state));
    if (!one?.ok || !two?.ok || !three?.ok) throw new Error('the STEs are valid');
    expect([one.kind, three.kind]).toEqual(['s2', 's1']);
    expect(one.s2Format).toMatchObject({ stage: 2, granule: 4096 });
    expect(two.s2Format).toBe(one.s2Format);
    expect(three.s2Format).toBeUndefined();
  });
});

describe('the walker keeps one format per translation-control encoding', () => {
  const ctx = () => ({
    instance: 'smmu0',
    bus,
    counter: bus.counter('smmu'),
    tracer,
    features: featuresFromOptions(Smmuv3OptionsSchema.parse({ oasBits: 52 })),
  });

  it('answers every stage-1 and stage-2 encoding as a walker that never saw another one does', () => {
    const shared = new Smmuv3StageWalker(ctx());
    const cds = [0, 1, 2].flatMap((tg0) =>
      Array.from({ length: 25 }, (_, i) => 16 + i).flatMap((t0sz) =>
        [0, 1, 2, 3, 4, 5, 6].map((ips) => decodeCd(encodeCd({ tg0, t0sz, ips }))),
      ),
    );
    const stes = [0, 1, 2].flatMap((s2Tg) =>
      [16, 24, 25, 33, 34, 40, 42].flatMap((s2T0sz) =>
        [0, 1, 2, 3].flatMap((s2Sl0) =>
          [0, 2, 5, 6].map((s2Ps) => decodeSte(encodeSte({ s2Tg, s2T0sz, s2Sl0, s2Ps }))),
        ),
      ),
    );
    // Fill the shared walker first, so a key two encodings shared would hand one the other's format.
    for (const cd of cds) shared.stage1Format(cd);
    for (const ste of stes) shared.stage2Format(ste);
    for (const cd of cds)
      expect(shared.stage1Format(cd)?.name).toBe(new Smmuv3StageWalker(ctx()).stage1Format(cd)?.name);
    const illegal = stes.filter((ste) => new Smmuv3StageWalker(ctx()).stage2Format(ste) === undefined);
    expect(illegal.length).toBeGreaterThan(0);
    for (const ste of stes)
      expect(shared.stage2Format(ste)?.name).toBe(new Smmuv3StageWalker(ctx()).stage2Format(ste)?.name);
  });
});
