/**
 * The translation pipeline against tables in memory built with the shared page-table engine: global
 * bypass/abort, the stream table (linear and 2-level) and its faults, substreams and CDs, stage 1,
 * stage 2 and nested walks with their read counts, recorded faults, caches that stay stale until
 * invalidated, and ATS.
 */
import { FrameAllocator, MemoryBus, PERM_READ, PERM_WRITE, Tracer } from '@iommukit/core';
import { IoPageTable, vmsaFormat, walk } from '@iommukit/pagetables';
import { beforeEach, describe, expect, it } from 'vitest';
import { testCd } from '../../test/cd-fixture.js';
import { testS2Fields } from '../../test/ste-fixture.js';
import { translationRequest as req } from '../../test/translation-rig.js';
import { encodeL1Cd } from './cd.js';
import { decodeEvent, EVENT_CLASS, EVENT_ID, type EventRecord, encodeEvent } from './events.js';
import { DEFAULT_IDR_EXTRAS } from './features.js';
import { featuresFromOptions, Smmuv3OptionsSchema } from './options.js';
import type { TranslationState } from './programming-interface.js';
import { encodeL1Std, encodeSte, STE_CONFIG, STE_EATS, STE_S1DSS, STE_S1FMT, STE_STRW, TG0 } from './ste.js';
import { emptyTlbEntry, Smmuv3Tlb } from './tlb.js';
import { Smmuv3Translator } from './translate.js';

const RAM = 0x8000_0000;
const STRTAB = RAM;
const CD_TABLE = RAM + 0x10_0000;
const RW = { read: true, write: true } as const;
const features = featuresFromOptions(Smmuv3OptionsSchema.parse({}));

let bus: MemoryBus;
let memory: FrameAllocator;
let events: EventRecord[];
let state: TranslationState;
let translator: Smmuv3Translator;
let tlb: Smmuv3Tlb;
const counter = () => bus.counter('smmu');

function put(addr: number, words: Uint32Array): void {
  bus.writeWords(addr, words, words.length, bus.counter('test'));
}

const s1Format = () => vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
const s2Format = () => vmsaFormat({ stage: 2, granule: 4096, ias: 48, oas: 48 });
const table = (format: ReturnType<typeof s1Format>) =>
  new IoPageTable(format, { bus, memory, counter: bus.counter('pt') });

const cdFor = (root: number, asid = 3, over = {}) => testCd(root, { asid, ...over });

beforeEach(() => {
  bus = new MemoryBus();
  bus.addRam('dram', RAM, 256 * 2 ** 20);
  memory = new FrameAllocator([{ base: RAM + 0x40_0000, size: 128 * 2 ** 20 }], (b, n) =>
    bus.discardRam(b, n),
  );
  events = [];
  state = {
    smmuEnabled: true,
    gbpaAbort: false,
    strtabBase: STRTAB,
    strtabFmt: 0,
    strtabSplit: 8,
    strtabLog2Size: 8,
    recordInvalidStreamIds: true,
    e2h: false,
  };
  tlb = new Smmuv3Tlb({ sets: 16, ways: 4, policy: 'lru' }, 'tlb', emptyTlbEntry);
  translator = makeTranslator();
});

/** A translator for `f` and `idr` over the test's bus, state, TLB and event list. */
function makeTranslator(f = features, idr = DEFAULT_IDR_EXTRAS, tracer = new Tracer()): Smmuv3Translator {
  return new Smmuv3Translator({
    instance: 'smmu0',
    bus,
    counter: counter(),
    tracer,
    features: f,
    idr,
    tlb,
    configCache: { sets: 4, ways: 4, policy: 'lru' },
    state: () => state,
    recordEvent: (record) => {
      // Records go through the real encoder and decoder, as they would through the event queue.
      events.push(decodeEvent(encodeEvent(record)));
      return true;
    },
    // The translator alone holds nothing: a stalling fault is terminated (the device model tests stalls).
    holdStall: () => undefined,
  });
}

describe('global state and the stream table', () => {
  it('bypasses or aborts everything with SMMUEN = 0, per GBPA.ABORT, recording nothing', () => {
    state = { ...state, smmuEnabled: false };
    expect(translator.translate(req(1, 0x1234_5678))).toMatchObject({ ok: true, pfn: 0x12345 });
    state = { ...state, gbpaAbort: true };
    expect(translator.translate(req(1, 0x1000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'GBPA_ABORT', recorded: false },
    });
    expect(events).toEqual([]);
  });

  it('C_BAD_STREAMID beyond the table, C_BAD_STE for V = 0, silent abort for Config = abort, bypass passes', () => {
    put(STRTAB + 64 * 1, encodeSte({ v: true, config: STE_CONFIG.BYPASS }));
    put(STRTAB + 64 * 2, encodeSte({ v: true, config: STE_CONFIG.ABORT }));
    expect(translator.translate(req(1, 0x4000))).toMatchObject({ ok: true, pfn: 4 });
    expect(translator.translate(req(2, 0x4000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'ABORT', recorded: false },
    });
    expect(translator.translate(req(3, 0x4000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_STE', kind: 'bad-config', recorded: true },
    });
    expect(translator.translate(req(0x100, 0x4000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_STREAMID' },
    });
    expect(events.map((e) => [e.id, e.streamId])).toEqual([
      [0x04, 3],
      [0x02, 0x100],
    ]);
  });

  it('terminates an out-of-range StreamID without recording C_BAD_STREAMID when CR2.RECINVSID == 0 (§6.3.12)', () => {
    state = { ...state, recordInvalidStreamIds: false };
    expect(translator.translate(req(0x100, 0x4000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_STREAMID', recorded: false },
    });
    expect(translator.translate(req(3, 0x4000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_STE', recorded: true },
    });
    expect(events.map((e) => [e.id, e.streamId])).toEqual([[0x04, 3]]);
  });

  it('walks a 2-level stream table; an L1 descriptor with Span 0 is C_BAD_STREAMID', () => {
    state = { ...state, strtabFmt: 1, strtabSplit: 8, strtabLog2Size: 16 };
    const l2 = RAM + 0x8_0000;
    put(STRTAB + 8 * 1, encodeL1Std({ span: 9, l2Ptr: l2 }));
    put(l2 + 64 * 0x23, encodeSte({ v: true, config: STE_CONFIG.BYPASS }));
    expect(translator.translate(req(0x123, 0x4000))).toMatchObject({ ok: true });
    expect(translator.translate(req(0x223, 0x4000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_STREAMID' },
    });
  });

  it('keeps using a cached STE until it is invalidated (what CFGI_STE is for)', () => {
    put(STRTAB + 64, encodeSte({ v: true, config: STE_CONFIG.BYPASS }));
    expect(translator.translate(req(1, 0x4000)).ok).toBe(true);
    put(STRTAB + 64, encodeSte({ v: true, config: STE_CONFIG.ABORT }));
    expect(translator.translate(req(1, 0x4000)).ok).toBe(true);
    translator.steCache.delete(1);
    expect(translator.translate(req(1, 0x4000)).ok).toBe(false);
  });
});

describe('stage 1', () => {
  function s1Stream(over = {}) {
    const pt = table(s1Format());
    put(CD_TABLE, cdFor(pt.rootPa, 3, over));
    put(
      STRTAB + 64 * 4,
      encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE, s2Vmid: 0 }),
    );
    return pt;
  }

  it('translates through the CD’s table, then hits the TLB without reading memory', () => {
    const pt = s1Stream();
    pt.map(0x1_2345_6000n, 0x9000_0000n, 0x1000n, RW);
    const before = counter().reads;
    expect(translator.translate(req(4, 0x1_2345_6010, PERM_WRITE))).toMatchObject({
      ok: true,
      pfn: 0x9000_0,
    });
    // STE (1 read of 16 words), CD (1 read), 4 descriptors.
    expect(counter().reads - before).toBe(6);
    const after = counter().reads;
    expect(translator.translate(req(4, 0x1_2345_6ff0))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    expect(counter().reads).toBe(after);
    expect(tlb.hits).toBe(1);
  });

  it('without hardware dirty state (HTTU = access flag only) a write hits the entry a read cached', () => {
    translator = makeTranslator(featuresFromOptions(Smmuv3OptionsSchema.parse({ httu: 'access' })));
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 3));
    put(STRTAB + 64 * 4, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE }));
    expect(translator.translate(req(4, 0x7000))).toMatchObject({ ok: true });
    const before = counter().reads;
    expect(translator.translate(req(4, 0x7000, PERM_WRITE))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    expect(counter().reads - before, 'no dirty state to update: the TLB answers').toBe(0);
  });

  it('traces a TLB hit that translates, and only the fault for a hit that faults', () => {
    const tracer = new Tracer();
    translator = makeTranslator(features, DEFAULT_IDR_EXTRAS, tracer);
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, { read: true, write: false });
    put(CD_TABLE, cdFor(pt.rootPa, 3));
    put(STRTAB + 64 * 4, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE }));
    translator.translate(req(4, 0x7000));
    tracer.startRecording();
    translator.translate(req(4, 0x7000));
    translator.translate(req(4, 0x7000, PERM_WRITE));
    expect(tracer.records.map((r) => [r.layer, r.source, r.name])).toEqual([
      ['hw', 'smmu0', 'tlb.hit'],
      ['hw', 'smmu0', 'fault'],
    ]);
  });

  it('records F_TRANSLATION with the input address when CD.R = 1, and nothing when R = 0', () => {
    s1Stream();
    expect(translator.translate(req(4, 0x5000, PERM_WRITE))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', stage: 1, recorded: true },
    });
    expect(events[0]).toMatchObject({
      id: 0x10,
      streamId: 4,
      rnw: false,
      s2: false,
      class: 0b10,
      inputAddrPage: 5,
    });
    events = [];
    translator.cdCache.clear();
    s1Stream({ r: false });
    expect(translator.translate(req(4, 0x5000))).toMatchObject({ ok: false, fault: { recorded: false } });
    expect(events).toEqual([]);
  });

  it('F_PERMISSION for a write to a read-only page', () => {
    const pt = s1Stream();
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, { read: true, write: false });
    expect(translator.translate(req(4, 0x7000, PERM_WRITE))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_PERMISSION', kind: 'permission' },
    });
  });

  it('SubstreamIDs: a linear CD table per SSID, C_BAD_SUBSTREAMID beyond S1CDMax, S1DSS for SSID-less traffic', () => {
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE + 64 * 2, cdFor(pt.rootPa, 9));
    const ste = (s1Dss: number) =>
      encodeSte({
        v: true,
        config: STE_CONFIG.S1_TRANS,
        s1ContextPtr: CD_TABLE,
        s1CdMax: 4,
        s1Fmt: STE_S1FMT.LINEAR,
        s1Dss,
      });
    put(STRTAB + 64 * 4, ste(STE_S1DSS.TERMINATE));
    expect(translator.translate(req(4, 0x7000, PERM_READ, 2))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    expect(translator.translate(req(4, 0x7000, PERM_READ, 16))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_SUBSTREAMID' },
    });
    expect(translator.translate(req(4, 0x7000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_STREAM_DISABLED' },
    });
    translator.steCache.clear();
    put(STRTAB + 64 * 4, ste(STE_S1DSS.BYPASS));
    expect(translator.translate(req(4, 0x7000))).toMatchObject({ ok: true, pfn: 7 });
  });

  it('S1DSS = SSID0 gives CD 0 to SSID-less traffic and refuses SubstreamID 0; reserved 0b11 terminates', () => {
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 9));
    put(CD_TABLE + 64, cdFor(pt.rootPa, 10));
    const ste = (s1Dss: number) =>
      encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE, s1CdMax: 4, s1Dss });
    put(STRTAB + 64 * 4, ste(STE_S1DSS.SSID0));
    expect(translator.translate(req(4, 0x7000))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    expect(translator.translate(req(4, 0x7000, PERM_READ, 1))).toMatchObject({ ok: true });
    expect(translator.translate(req(4, 0x7000, PERM_READ, 0))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_STREAM_DISABLED', recorded: true },
    });
    expect(events.at(-1)).toMatchObject({ id: EVENT_ID.F_STREAM_DISABLED, streamId: 4 });
    translator.steCache.clear();
    put(STRTAB + 64 * 4, ste(0b11));
    expect(translator.translate(req(4, 0x7000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_STREAM_DISABLED' },
    });
  });

  it('an aborted descriptor fetch is F_WALK_EABT, CLASS TT with FetchAddr, recorded even with CD.R = 0', () => {
    // A table descriptor pointing outside RAM: the next level's read aborts on the bus.
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    const root = pt.rootPa;
    put(root, Uint32Array.of(0x4000_0003, 0)); // level-0 entry 0 → a table at 0x4000_0000 (no memory)
    put(CD_TABLE, cdFor(root, 3, { r: false }));
    put(STRTAB + 64 * 4, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE }));
    expect(translator.translate(req(4, 0x7000, PERM_WRITE))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_WALK_EABT', recorded: true, stage: 1 },
    });
    expect(events.at(-1)).toMatchObject({
      id: EVENT_ID.F_WALK_EABT,
      s2: false,
      class: EVENT_CLASS.TT,
      rnw: false,
      fetchAddr: 0x4000_0000,
      inputAddrPage: 7,
    });
  });

  it('an aborted STE fetch is F_STE_FETCH with the STE address as FetchAddr', () => {
    state = { ...state, strtabBase: 0x4000_0000 };
    expect(translator.translate(req(2, 0x1000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_STE_FETCH' },
    });
    expect(events.at(-1)).toMatchObject({
      id: EVENT_ID.F_STE_FETCH,
      streamId: 2,
      fetchAddr: 0x4000_0000 + 2 * 64,
    });
  });

  it('2-level CD tables: the L1CD locates the CD; L1CD.V = 0 is C_BAD_SUBSTREAMID', () => {
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    const l2 = CD_TABLE + 0x1_0000;
    put(CD_TABLE + 8 * 1, encodeL1Cd({ v: true, l2Ptr: l2 }));
    put(l2 + 64 * 5, cdFor(pt.rootPa, 9));
    put(
      STRTAB + 64 * 4,
      encodeSte({
        v: true,
        config: STE_CONFIG.S1_TRANS,
        s1ContextPtr: CD_TABLE,
        s1CdMax: 10,
        s1Fmt: STE_S1FMT.TWO_LEVEL_4K,
      }),
    );
    expect(translator.translate(req(4, 0x7000, PERM_READ, 64 + 5))).toMatchObject({ ok: true });
    expect(translator.translate(req(4, 0x7000, PERM_READ, 128))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_SUBSTREAMID' },
    });
  });
});

describe('stage 1: CD.EPD0', () => {
  it('disables TTB0 walks: a mapped address is a stage-1 F_TRANSLATION with no descriptor read', () => {
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 3, { epd0: true }));
    put(STRTAB + 64 * 4, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE }));
    const before = counter().reads;
    expect(translator.translate(req(4, 0x7000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', stage: 1 },
    });
    expect(counter().reads - before, 'the STE and the CD only').toBe(2);
  });
});

describe('stage 2 and nested', () => {
  it('stage-2-only streams translate IPA → PA and record stage-2 faults with the IPA', () => {
    const s2 = table(s2Format());
    s2.map(0x4000_0000n, 0x9000_0000n, 0x20_0000n, RW);
    put(STRTAB + 64 * 6, encodeSte({ v: true, config: STE_CONFIG.S2_TRANS, ...testS2Fields(s2.rootPa) }));
    expect(translator.translate(req(6, 0x4010_0000))).toMatchObject({ ok: true, pfn: 0x9010_0 });
    expect(translator.translate(req(6, 0x5000_0000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', stage: 2 },
    });
    expect(events[0]).toMatchObject({ id: 0x10, s2: true, ipa: 0x5000_0000 });
  });

  it('a nested 4-level × 4-level miss reads 24 descriptors (30 with the STE and the CD through stage 2)', () => {
    // Stage 2 maps 1:1 with 4 KiB pages only, so every stage-2 walk takes 4 reads and the guest's
    // stage-1 tables sit at IPAs equal to their PAs.
    const s2 = new IoPageTable(
      s2Format(),
      { bus, memory, counter: bus.counter('pt') },
      { pageSizes: 1n << 12n },
    );
    const s1 = table(s1Format());
    s1.map(0x1_2345_6000n, 0x9000_0000n, 0x2000n, RW);
    s2.map(0x9000_0000n, 0x9000_0000n, 0x2000n, RW);
    nestedOver(s1, s2, 0x1_2345_6000);
    let before = counter().reads;
    expect(translator.translate(req(7, 0x1_2345_6000))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    expect(counter().reads - before).toBe(1 + (4 + 1) + 24);
    before = counter().reads;
    expect(translator.translate(req(7, 0x1_2345_7000))).toMatchObject({ ok: true, pfn: 0x9000_1 });
    expect(counter().reads - before).toBe(24);
  });

  /** A nested stream 7 over `s1` whose CD and stage-1 tables (for `iova`) sit at IPA == PA in `s2`. */
  function nestedOver(s1: IoPageTable, s2: IoPageTable, iova: number): void {
    const pages = new Set<number>([CD_TABLE]);
    walk(s1Format(), s1.rootPa, iova, {
      bus,
      counter: bus.counter('probe'),
      onStep: (_l, addr) => pages.add(Math.floor(addr / 4096) * 4096),
    });
    for (const page of pages) s2.map(BigInt(page), BigInt(page), 0x1000n, RW);
    put(CD_TABLE, cdFor(s1.rootPa, 3));
    put(
      STRTAB + 64 * 7,
      encodeSte({ v: true, config: STE_CONFIG.NESTED, s1ContextPtr: CD_TABLE, ...testS2Fields(s2.rootPa) }),
    );
  }
  const s2PagesOnly = () =>
    new IoPageTable(s2Format(), { bus, memory, counter: bus.counter('pt') }, { pageSizes: 1n << 12n });

  it('nested: a read-only stage-2 page limits what a writable stage-1 page grants, on a miss as on a hit', () => {
    const s1 = table(s1Format());
    s1.map(0x7000n, 0xa000_0000n, 0x1000n, RW);
    const s2 = s2PagesOnly();
    s2.map(0xa000_0000n, 0x9000_0000n, 0x1000n, { read: true, write: false });
    nestedOver(s1, s2, 0x7000);
    // The walk's grant is what both stages allow, so no write: the same as the TLB hit reports.
    const miss = translator.translate(req(7, 0x7000));
    expect(miss).toMatchObject({ ok: true, pfn: 0x9000_0, perm: PERM_READ });
    expect(translator.translate(req(7, 0x7000))).toEqual(miss);
    expect(translator.translate(req(7, 0x7000, PERM_WRITE))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_PERMISSION', stage: 2 },
    });
  });

  it('nested: a stage-2 refusal on a TLB hit records the IPA the entry gives the access (§7.3.16)', () => {
    const s1 = table(s1Format());
    s1.map(0x7000n, 0xa000_0000n, 0x1000n, RW);
    const s2 = s2PagesOnly();
    s2.map(0xa000_0000n, 0x9000_0000n, 0x1000n, { read: true, write: false });
    nestedOver(s1, s2, 0x7000);
    // The entry is made by an access near the end of the page and hit near its start: an entry whose IPA
    // were taken from the wrong end of the page would give the next IPA page.
    expect(translator.translate(req(7, 0x7ff0))).toMatchObject({ ok: true });
    const walks = translator.walks;
    expect(translator.translate(req(7, 0x7008, PERM_WRITE))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_PERMISSION', stage: 2, iova: 0x7008n, recorded: true },
    });
    expect(translator.walks, 'answered by the TLB').toBe(walks);
    expect(events).toEqual([
      expect.objectContaining({
        id: EVENT_ID.F_PERMISSION,
        s2: true,
        class: EVENT_CLASS.IN,
        rnw: false,
        ipa: 0xa000_0000,
        inputAddrPage: 7,
        inputAddrOffset: 0x008,
      }),
    ]);
  });

  it('nested: a stage-1 block over stage-2 pages caches the smaller page, so its neighbour walks again', () => {
    const s1 = table(s1Format());
    s1.map(0x4000_0000n, 0xa000_0000n, 0x20_0000n, RW); // one 2 MiB block
    const s2 = s2PagesOnly();
    // The two IPA pages of the block go to unrelated PAs.
    s2.map(0xa000_0000n, 0x9000_0000n, 0x1000n, RW);
    s2.map(0xa000_1000n, 0x9100_0000n, 0x1000n, RW);
    nestedOver(s1, s2, 0x4000_0000);
    expect(translator.translate(req(7, 0x4000_0000))).toMatchObject({
      ok: true,
      pfn: 0x9000_0,
      pageShift: 12,
    });
    // A 2 MiB entry would answer 0x9000_1 from the first page's output.
    expect(translator.translate(req(7, 0x4000_1000))).toMatchObject({
      ok: true,
      pfn: 0x9100_0,
      pageShift: 12,
    });
  });

  it('tracing: every descriptor a nested walk reads, by stage and level, then the TLB hit, then a fault', () => {
    const tracer = new Tracer();
    translator = makeTranslator(features, DEFAULT_IDR_EXTRAS, tracer);
    const s1 = table(s1Format());
    s1.map(0x7000n, 0xa000_0000n, 0x1000n, RW);
    const s2 = s2PagesOnly();
    s2.map(0xa000_0000n, 0x9000_0000n, 0x1000n, RW);
    nestedOver(s1, s2, 0x7000);
    const s1Steps: [number, number][] = [];
    walk(s1Format(), s1.rootPa, 0x7000, {
      bus,
      counter: bus.counter('probe'),
      onStep: (level, addr) => s1Steps.push([level, addr]),
    });
    tracer.startRecording();
    translator.translate(req(7, 0x7000));
    const steps = tracer.records.filter((r) => r.name === 'walk.step').map((r) => r.args);
    expect(steps.filter((a) => a.stage === 1).map((a) => [a.level, a.addr])).toEqual(s1Steps);
    // Six 4-level stage-2 walks: the CD, the four stage-1 descriptors and the output.
    const s2Levels = steps.filter((a) => a.stage === 2).map((a) => a.level);
    expect(s2Levels).toEqual(Array.from({ length: 24 }, (_, i) => i % 4));
    // Walks are counted per stage: six stage-2 walks and the stage-1 walk.
    expect(translator.walks).toBe(7);
    const before = tracer.records.length;
    translator.translate(req(7, 0x7000));
    expect(tracer.records.slice(before).map((r) => [r.layer, r.name])).toEqual([['hw', 'tlb.hit']]);
    expect(translator.walks).toBe(7);
    translator.translate(req(7, 0x9000));
    expect(tracer.records.at(-1)).toMatchObject({ layer: 'hw', source: 'smmu0', name: 'fault' });
  });

  it('a stage-2 walk that aborts records F_WALK_EABT with S2 = 1, CLASS = IN and the descriptor address', () => {
    const s2 = table(s2Format());
    s2.map(0x4000_0000n, 0x9000_0000n, 0x1000n, RW);
    const hole = 0x10_0000_0000; // no memory there
    put(s2.rootPa, Uint32Array.of(0b11, hole / 2 ** 32)); // level-0 entry 0: a table where no memory is
    put(STRTAB + 64 * 6, encodeSte({ v: true, config: STE_CONFIG.S2_TRANS, ...testS2Fields(s2.rootPa) }));
    expect(translator.translate(req(6, 0x4000_0123))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_WALK_EABT' },
    });
    // The record names the descriptor's PA (FetchAddr): level-1 entry 1 of the table at the hole.
    expect(events).toEqual([
      expect.objectContaining({
        id: EVENT_ID.F_WALK_EABT,
        s2: true,
        class: EVENT_CLASS.IN,
        fetchAddr: hole + 8,
      }),
    ]);
    expect(events[0]).not.toHaveProperty('ipa');
  });

  it('a stage-2 fault while fetching a stage-1 table is recorded with S2 = 1 and CLASS = TT', () => {
    const s2 = table(s2Format());
    s2.map(BigInt(CD_TABLE), BigInt(CD_TABLE), 0x1000n, RW);
    const s1 = table(s1Format());
    s1.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(s1.rootPa, 3));
    put(
      STRTAB + 64 * 7,
      encodeSte({ v: true, config: STE_CONFIG.NESTED, s1ContextPtr: CD_TABLE, ...testS2Fields(s2.rootPa) }),
    );
    expect(translator.translate(req(7, 0x7000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', stage: 2 },
    });
    expect(events[0]).toMatchObject({ id: 0x10, s2: true, class: 0b01, ipa: s1.rootPa });
  });
});

describe('ATS', () => {
  it('needs STE.EATS: F_BAD_ATS_TREQ otherwise; translation failures are completions, not events', () => {
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 3));
    put(STRTAB + 64 * 4, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE }));
    expect(translator.atsTranslate(req(4, 0x7000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_BAD_ATS_TREQ', recorded: true },
    });
    translator.steCache.clear();
    put(
      STRTAB + 64 * 4,
      encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE, eats: STE_EATS.FULL }),
    );
    expect(translator.atsTranslate(req(4, 0x7000))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    expect(translator.atsTranslate(req(4, 0x8000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_TRANSLATION', recorded: false },
    });
    expect(events.map((e) => e.id)).toEqual([0x05]);
    // EATS 0b11 (DPT) behaves as 0b00 on an SMMU without the Device Permission Table.
    translator.steCache.clear();
    put(
      STRTAB + 64 * 4,
      encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE, eats: STE_EATS.FULL_DPT }),
    );
    expect(translator.atsTranslate(req(4, 0x7000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_BAD_ATS_TREQ' },
    });
  });
});

describe('spec corner cases', () => {
  it('a SubstreamID on a bypass stream is C_BAD_SUBSTREAMID (§5.2 Config)', () => {
    put(STRTAB + 64 * 1, encodeSte({ v: true, config: STE_CONFIG.BYPASS }));
    expect(translator.translate(req(1, 0x4000, PERM_READ, 3))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_SUBSTREAMID', recorded: true },
    });
    expect(translator.translate(req(1, 0x4000))).toMatchObject({ ok: true });
  });

  it('with S1CDMax = 0 a transaction with a SubstreamID, even 0, is C_BAD_SUBSTREAMID (§5.2 S1CDMax)', () => {
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 9));
    put(STRTAB + 64 * 4, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE }));
    expect(translator.translate(req(4, 0x7000))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    expect(translator.translate(req(4, 0x7000, PERM_READ, 0))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_SUBSTREAMID', recorded: true },
    });
    expect(events).toEqual([{ id: EVENT_ID.C_BAD_SUBSTREAMID, streamId: 4, substreamId: 0 }]);
  });

  it('a stage-2-only stream has no substreams whatever its (IGNORED) S1CDMax says', () => {
    const s2 = table(s2Format());
    s2.map(0x4000_0000n, 0x9000_0000n, 0x1000n, RW);
    put(
      STRTAB + 64 * 6,
      encodeSte({ v: true, config: STE_CONFIG.S2_TRANS, s1CdMax: 4, ...testS2Fields(s2.rootPa) }),
    );
    expect(translator.translate(req(6, 0x4000_0000))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    expect(translator.translate(req(6, 0x4000_0000, PERM_READ, 1))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_SUBSTREAMID' },
    });
  });

  it('an SMMU without substreams (SSIDSIZE = 0) ignores S1CDMax and S1DSS: one CD, SubstreamIDs refused', () => {
    translator = makeTranslator(
      featuresFromOptions(Smmuv3OptionsSchema.parse({ ssidBits: 0, twoLevelCdTable: false })),
    );
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 9));
    put(
      STRTAB + 64 * 4,
      encodeSte({
        v: true,
        config: STE_CONFIG.S1_TRANS,
        s1ContextPtr: CD_TABLE,
        s1CdMax: 4,
        s1Dss: STE_S1DSS.TERMINATE,
      }),
    );
    expect(translator.translate(req(4, 0x7000))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    expect(translator.translate(req(4, 0x7000, PERM_READ, 0))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_SUBSTREAMID' },
    });
  });

  it('an ATS request to an aborting stream is refused without an event', () => {
    put(STRTAB + 64 * 2, encodeSte({ v: true, config: STE_CONFIG.ABORT, eats: STE_EATS.FULL }));
    expect(translator.atsTranslate(req(2, 0x4000))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'ABORT', recorded: false },
    });
    expect(events).toEqual([]);
  });

  it('STRW == EL2 is NS-EL2 or, with CR2.E2H, NS-EL2-E2H, whose CD.ASID must fit the ASID size (§6.3.12, §5.4)', () => {
    const hyp = { ...DEFAULT_IDR_EXTRAS, hyp: true };
    const asid8 = featuresFromOptions(Smmuv3OptionsSchema.parse({ asid16: false }));
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 0x100));
    put(
      STRTAB + 64 * 4,
      encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE, strw: STE_STRW.EL2 }),
    );
    for (const [e2h, expected] of [
      [false, { ok: true, pfn: 0x9000_0 }],
      [true, { ok: false, fault: { vendorCode: 'C_BAD_CD' } }],
    ] as const) {
      state = { ...state, e2h };
      tlb.clear();
      expect(makeTranslator(asid8, hyp).translate(req(4, 0x7000)), `E2H ${e2h}`).toMatchObject(expected);
    }
  });

  it('CD.EPD0 is IGNORED (effectively 0) for an NS-EL2 stream: TTB0 is walked; NS-EL2-E2H honours it (§5.4 EPD0)', () => {
    const hyp = { ...DEFAULT_IDR_EXTRAS, hyp: true };
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 3, { epd0: true }));
    put(
      STRTAB + 64 * 4,
      encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE, strw: STE_STRW.EL2 }),
    );
    for (const [e2h, expected] of [
      [false, { ok: true, pfn: 0x9000_0 }],
      [true, { ok: false, fault: { vendorCode: 'F_TRANSLATION', stage: 1 } }],
    ] as const) {
      state = { ...state, e2h };
      tlb.clear();
      expect(makeTranslator(features, hyp).translate(req(4, 0x7000)), `E2H ${e2h}`).toMatchObject(expected);
    }
  });

  it('a 52-bit IPS with the 4K granule walks with 48-bit outputs (no DS), as a 52-bit S2PS does (§5.4 IPS, §5.2 S2PS)', () => {
    translator = makeTranslator(featuresFromOptions(Smmuv3OptionsSchema.parse({ oasBits: 52 })));
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 3, { ips: 0b110 }));
    put(STRTAB + 64 * 4, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE }));
    expect(translator.translate(req(4, 0x7000))).toMatchObject({ ok: true, pfn: 0x9000_0 });
    const s2 = table(s2Format());
    s2.map(0x4000_0000n, 0x9000_0000n, 0x1000n, RW);
    put(
      STRTAB + 64 * 6,
      encodeSte({ v: true, config: STE_CONFIG.S2_TRANS, ...testS2Fields(s2.rootPa, { s2Ps: 0b110 }) }),
    );
    expect(translator.translate(req(6, 0x4000_0000))).toMatchObject({ ok: true, pfn: 0x9000_0 });
  });

  it('a 52-bit IPS with the 64K granule keeps 52-bit outputs: a page above 2^48 translates (§5.4 IPS)', () => {
    translator = makeTranslator(featuresFromOptions(Smmuv3OptionsSchema.parse({ oasBits: 52 })));
    const pt = table(vmsaFormat({ stage: 1, granule: 65536, ias: 48, oas: 52 }));
    const high = 2 ** 50;
    pt.map(0x1_0000n, BigInt(high), 0x1_0000n, RW);
    put(CD_TABLE, cdFor(pt.rootPa, 3, { ips: 0b110, tg0: TG0.SIZE_64K }));
    put(STRTAB + 64 * 4, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE }));
    expect(translator.translate(req(4, 0x1_2000))).toMatchObject({ ok: true, pfn: (high + 0x2000) / 4096 });
  });

  it('APTable limits of stage-1 table descriptors apply, unless CD.HAD0 disables them (§5.4 HAD0)', () => {
    const pt = table(s1Format());
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    const top = pt.rootPa + s1Format().index(0x7000, 0) * 8;
    const words = new Uint32Array(2);
    bus.readWords(top, words, 2, bus.counter('test'));
    put(top, Uint32Array.of(words[0]!, words[1]! | (1 << 30))); // APTable[1]: read-only below
    put(CD_TABLE, cdFor(pt.rootPa, 3));
    put(CD_TABLE + 64, cdFor(pt.rootPa, 4, { had0: true }));
    const ste = { v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE, s1CdMax: 1 };
    put(STRTAB + 64 * 4, encodeSte({ ...ste, s1Dss: STE_S1DSS.SSID0 }));
    expect(translator.translate(req(4, 0x7000, PERM_WRITE))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_PERMISSION' },
    });
    expect(translator.translate(req(4, 0x7000, PERM_WRITE, 1))).toMatchObject({ ok: true, pfn: 0x9000_0 });
  });

  it('CD.HD without CD.HA does not update the dirty state (§5.4: behaves as both 0)', () => {
    const pt = new IoPageTable(
      s1Format(),
      { bus, memory, counter: bus.counter('pt') },
      { dirtyTracking: true },
    );
    pt.map(0x7000n, 0x9000_0000n, 0x1000n, RW);
    const dirtyNow = () => {
      let dirty = false;
      pt.readAndClearDirty(
        0x7000n,
        0x1000n,
        () => {
          dirty = true;
        },
        { clear: true },
      );
      return dirty;
    };
    dirtyNow(); // new writable mappings start dirty: clear it first
    for (const [ha, expected] of [
      [false, false],
      [true, true],
    ] as const) {
      translator.cdCache.clear();
      tlb.clear();
      put(CD_TABLE, cdFor(pt.rootPa, 3, { hd: true, ha }));
      put(STRTAB + 64 * 4, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD_TABLE }));
      translator.steCache.clear();
      const result = translator.translate(req(4, 0x7000, PERM_WRITE));
      expect(result.ok, `HA=${ha}`).toBe(expected);
      expect(dirtyNow(), `HA=${ha}`).toBe(expected);
    }
  });
});

describe('the STE a PRI auto-response checks (§8.1 STE.PPAR)', () => {
  it('is the stream’s valid STE; none while SMMUEN is 0, for V = 0 or beyond the table; nothing is recorded', () => {
    put(STRTAB + 64 * 1, encodeSte({ v: true, config: STE_CONFIG.BYPASS, ppar: true }));
    put(STRTAB + 64 * 2, encodeSte({ v: false, config: STE_CONFIG.BYPASS }));
    state = { ...state, smmuEnabled: false };
    const before = counter().reads;
    expect(translator.steForResponse(1)).toBeUndefined();
    expect(counter().reads, 'no STE fetch while SMMUEN == 0').toBe(before);
    state = { ...state, smmuEnabled: true };
    expect(translator.steForResponse(1)).toMatchObject({ v: true, config: STE_CONFIG.BYPASS, ppar: true });
    expect(translator.steForResponse(2)).toBeUndefined();
    expect(translator.steForResponse(0x1000)).toBeUndefined();
    expect(events).toEqual([]);
  });
});
