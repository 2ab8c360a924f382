/**
 * The device class's wiring, through MMIO as a driver programs it: what one unit's part does to another
 * (SRTP with CAP.ESRTPS, the fault index reset, interrupt remapping and its IEC behind the queue, page
 * requests refused or queued), and what the unit reports (identify, stats).
 */
import {
  type EndpointPort,
  NO_PASID,
  type PageRequest,
  type PageResponse,
  PERM_READ,
  PERM_WRITE,
  Tracer,
  type TranslationRequest,
  toHex,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { legacyRig, type MmioRig, mmioRig, RAM_BASE, VTD_BASE } from '../../test/mmio-rig.js';
import { FR, IR_FR } from './fault-reasons.js';
import { encodeInvDescriptor, INV_TYPE, type InvDescriptorInit } from './inv-descriptors.js';
import { encodeIrte, remappableMsiAddress } from './irte.js';
import {
  decodeFaultRecord,
  FRCD_WORD3_F,
  FSTS_IQE,
  FSTS_PFO,
  frcdOffset,
  GCMD_CFI,
  GCMD_IRE,
  GCMD_QIE,
  GCMD_SIRTP,
  GCMD_SRTP,
  GCMD_TE,
  REG,
  TTM,
} from './regs.js';
import { encodeScalableContext, encodeScalableRootEntry } from './root-context.js';

const DEV = (2 << 8) | 0x08;
const IOVA = 0x10_0000;

function dma(rig: MmioRig, iova: number, access = PERM_READ) {
  const request: TranslationRequest = {
    streamId: DEV,
    pasid: NO_PASID,
    iovaPfn: iova / 4096,
    offset: 0,
    access,
  };
  return rig.vtd.translate(request);
}

/** The fault record at `index`, decoded, and its F cleared as dmar_fault does. */
function takeRecord(rig: MmioRig, index: number) {
  const words = Uint32Array.from([0, 1, 2, 3], (w) => rig.reg(frcdOffset(index) + 4 * w));
  rig.mmio(frcdOffset(index) + 12, FRCD_WORD3_F);
  return decodeFaultRecord(words);
}

/** Which fault records hold a fault (F set). */
const fullRecords = (rig: MmioRig, count: number) =>
  Array.from({ length: count }, (_, i) => i).filter(
    (i) => (rig.reg(frcdOffset(i) + 12) & FRCD_WORD3_F) !== 0,
  );

/** A legacy-mode unit with DEV's second stage mapping IOVA (two pages) and its root table latched. */
function legacy(options: Record<string, unknown> = {}, tracer?: Tracer) {
  return legacyRig({ sid: DEV, did: 5, iova: IOVA }, options, tracer);
}

/** Queued invalidation with 128-bit descriptors; `submit` puts them at the tail, then moves IQT past them. */
function queue(rig: MmioRig, enable = true) {
  const base = rig.pages();
  rig.mmio64(REG.IQA, base);
  if (enable) rig.command(GCMD_QIE);
  let tail = 0;
  return (...descriptors: InvDescriptorInit[]) => {
    for (const d of descriptors) {
      const words = new Uint32Array(4);
      encodeInvDescriptor(d, words, 0, false);
      rig.put(base + tail, words);
      tail = (tail + 16) % 4096;
    }
    rig.mmio(REG.IQT, tail);
  };
}

/** An invalidation wait whose status write sets IQT to `tail`. */
const moveTail = (tail: number): InvDescriptorInit => ({
  type: INV_TYPE.WAIT,
  sw: true,
  iflag: false,
  fn: false,
  pd: false,
  statusData: tail,
  statusAddr: VTD_BASE + REG.IQT,
});

/** An endpoint that records the page responses it gets. */
function endpoint(responses: PageResponse[]): EndpointPort {
  return {
    invalidateAtc: () => {},
    pageResponse: (response) => responses.push(response),
    completeStalled: () => {},
  };
}

const request = (fields: Partial<PageRequest> = {}): PageRequest => ({
  pasid: 5,
  iova: 0x1234_5678n,
  access: PERM_READ,
  groupIndex: 7,
  last: true,
  ...fields,
});

describe('VT-d wiring: construction', () => {
  it('counts its table reads on the bus as hw:<instance>', () => {
    const { rig } = legacy();
    rig.command(GCMD_TE);
    expect(dma(rig, IOVA).ok).toBe(true);
    const reads = rig.bus.counter('hw:dmar0').reads;
    expect(reads).toBeGreaterThan(0);
    expect(rig.vtd.stats().tableReads).toBe(reads);
  });

  it('sizes each cache as entries / ways sets of its ways', () => {
    const rig = mmioRig({ contextCacheEntries: 4, contextCacheWays: 4 });
    const config = { kind: 'fault', reason: 1, fpd: false } as const;
    for (let sid = 0; sid < 8; sid++) rig.vtd.caches.context.set(sid, 0, config);
    expect(rig.vtd.caches.context.entries()).toHaveLength(4);
  });

  it('has paging-structure caches only with pagingStructureCacheEntries above 0', () => {
    expect(mmioRig().vtd.caches.secondStageTables).toBeDefined();
    expect(mmioRig({ pagingStructureCacheEntries: 0 }).vtd.caches.secondStageTables).toBeUndefined();
  });

  it('with EIM, its event messages go to the upper address register too', () => {
    const { rig } = legacy({ extendedInterruptMode: true });
    // mmioRig's pages lie above 4 GiB.
    const target = rig.pages();
    expect(target).toBeGreaterThanOrEqual(RAM_BASE);
    rig.mmio(REG.FEDATA, 0x4041);
    rig.mmio(REG.FEADDR, target - 2 ** 32);
    rig.mmio(REG.FEUADDR, 1);
    rig.mmio(REG.FECTL, 0);
    rig.command(GCMD_TE);
    expect(dma(rig, 0x4000_0000, PERM_WRITE).ok).toBe(false);
    expect(rig.word(target)).toBe(0x4041);
  });
});

describe('VT-d wiring: global commands', () => {
  it('SRTP with CAP.ESRTPS drops what the caches hold; without it a stale translation stays', () => {
    for (const srtpInvalidates of [true, false]) {
      const { rig, ss } = legacy({ srtpInvalidates });
      rig.command(GCMD_TE);
      expect(dma(rig, IOVA).ok).toBe(true);
      ss.unmap(BigInt(IOVA), 0x1000n);
      rig.command(GCMD_SRTP);
      expect(dma(rig, IOVA).ok).toBe(!srtpInvalidates);
    }
  });

  it('the fault recording index restarts at 0 once TE and IRE are both off, not before', () => {
    const { rig } = legacy({ faultRecords: 4 });
    const fault = () => {
      expect(dma(rig, 0x4000_0000, PERM_WRITE).ok).toBe(false);
      const [index] = fullRecords(rig, 4);
      takeRecord(rig, index!);
      return index;
    };
    rig.command(GCMD_TE);
    expect([fault(), fault()]).toEqual([0, 1]);
    // TE off with IRE off: back to record 0.
    rig.command(GCMD_TE, false);
    rig.command(GCMD_TE);
    expect(fault()).toBe(0);
    // IRE on while TE is on, then TE off and on again: IRES keeps the index.
    rig.command(GCMD_IRE);
    expect(fault()).toBe(1);
    rig.command(GCMD_TE, false);
    rig.command(GCMD_TE);
    expect(fault()).toBe(2);
    // IRE off while TE is on keeps it; IRE and TE both off resets it.
    rig.command(GCMD_IRE, false);
    expect(fault()).toBe(3);
    rig.command(GCMD_IRE);
    rig.command(GCMD_TE, false);
    rig.command(GCMD_IRE, false);
    rig.command(GCMD_TE);
    expect(fault()).toBe(0);
  });

  it('QIE runs what IQT already holds; clearing it resets IQH', () => {
    const rig = mmioRig();
    const submit = queue(rig, false);
    submit({ type: INV_TYPE.CONTEXT_CACHE, granularity: 1, did: 0, sid: 0, fm: 0 });
    expect(rig.reg(REG.IQH)).toBe(0);
    rig.command(GCMD_QIE);
    expect(rig.reg(REG.IQH)).toBe(16);
    rig.command(GCMD_QIE, false);
    expect(rig.reg(REG.IQH)).toBe(0);
  });

  it('only clearing FSTS.IQE resumes the queue: clearing PFO leaves what the bound left', () => {
    const { rig } = legacy();
    // Two faults with one fault record: PFO.
    rig.command(GCMD_TE);
    dma(rig, 0x4000_0000, PERM_WRITE);
    dma(rig, 0x4000_0000, PERM_WRITE);
    expect(rig.reg(REG.FSTS) & FSTS_PFO).toBe(FSTS_PFO);
    // A queue that feeds itself stops after one queue of descriptors, with some left.
    const submit = queue(rig);
    // All 256 slots written: IQT wraps back to IQH (empty), then the driver moves it one slot on.
    submit(...Array.from({ length: 256 }, (_, i) => moveTail(((i + 2) * 16) % 4096)));
    rig.mmio(REG.IQT, 0x10);
    expect([rig.reg(REG.IQH), rig.reg(REG.IQT), rig.vtd.invalidationQueue!.boundReached]).toEqual([
      0, 0x10, 1,
    ]);
    rig.mmio(REG.FSTS, FSTS_PFO);
    expect([rig.reg(REG.FSTS) & FSTS_PFO, rig.vtd.stats().invalidationDescriptors]).toEqual([0, 256]);
    expect(rig.reg(REG.FSTS) & FSTS_IQE).toBe(0);
  });

  it('register-based invalidation is refused once SRTP latched scalable mode (VER 5)', () => {
    const rig = mmioRig({ version: { major: 5, minor: 0 } });
    const ICC = 0x8000_0000;
    const global = 1 << 29;
    rig.mmio(REG.CCMD + 4, ICC | global);
    expect(rig.reg(REG.CCMD + 4) & ICC).toBe(0);
    rig.mmio64(REG.RTADDR, rig.pages() + (TTM.SCALABLE << 10));
    rig.command(GCMD_SRTP);
    rig.mmio(REG.CCMD + 4, ICC | global);
    expect(rig.reg(REG.CCMD + 4) & ICC).not.toBe(0);
  });
});

describe('VT-d wiring: interrupt remapping', () => {
  const SID = 0x0010;
  /** Remapping on, with a 16-entry table whose entry 3 has vector `vector`. */
  function remapping() {
    const rig = mmioRig();
    const table = rig.pages();
    const irte = (vector: number) =>
      rig.put(table + 3 * 16, encodeIrte({ mode: 'remapped', present: true, vector }));
    irte(0x40);
    rig.mmio64(REG.IRTA, table + 3);
    rig.command(GCMD_SIRTP);
    rig.command(GCMD_IRE);
    const ir = rig.vtd.interruptRemapping!;
    const vector = () => {
      const outcome = ir.request(SID, remappableMsiAddress(3), 0);
      return outcome.kind === 'remapped' ? outcome.interrupt.vector : outcome.kind;
    };
    return { rig, irte, vector };
  }

  it('records a fault with the interrupt index in FI, as a write', () => {
    const { rig } = remapping();
    expect(rig.vtd.interruptRemapping!.request(SID, remappableMsiAddress(100), 0).kind).toBe('blocked');
    expect(takeRecord(rig, 0)).toMatchObject({
      f: true,
      sid: SID,
      fr: IR_FR.INDEX_BEYOND_TABLE,
      fi: 100 * 2 ** 48,
      t: false,
      pp: false,
    });
  });

  it('GCMD.CFI lets compatibility-format interrupts through', () => {
    const { rig } = remapping();
    const compatibility = () => rig.vtd.interruptRemapping!.request(SID, 0xfee0_0000n, 0x30).kind;
    expect(compatibility()).toBe('blocked');
    rig.command(GCMD_CFI);
    expect(compatibility()).toBe('passthrough');
    rig.command(GCMD_CFI, false);
    expect(compatibility()).toBe('blocked');
  });

  it('IEC invalidation descriptors reach the interrupt entry cache: index-selective, then global', () => {
    const { rig, irte, vector } = remapping();
    const submit = queue(rig);
    expect(vector()).toBe(0x40);
    irte(0x41);
    expect(vector()).toBe(0x40);
    submit({ type: INV_TYPE.IEC, granularity: 1, im: 0, iidx: 4 });
    expect(vector()).toBe(0x40);
    submit({ type: INV_TYPE.IEC, granularity: 1, im: 0, iidx: 3 });
    expect(vector()).toBe(0x41);
    irte(0x42);
    submit({ type: INV_TYPE.IEC, granularity: 0, im: 0, iidx: 0 });
    expect(vector()).toBe(0x42);
  });
});

describe('VT-d wiring: page requests refused', () => {
  it('in legacy mode: recorded 0x32 as a page request, and a last one answered Invalid', () => {
    const rig = mmioRig({ faultRecords: 4 });
    const responses: PageResponse[] = [];
    rig.vtd.connectEndpoint(DEV, endpoint(responses));
    rig.vtd.pageRequest(DEV, request());
    rig.vtd.pageRequest(DEV, request({ pasid: NO_PASID, last: false, groupIndex: 8 }));
    expect(takeRecord(rig, 0)).toEqual({
      sid: DEV,
      t2: true,
      priv: false,
      exe: false,
      pp: true,
      fr: FR.SM_TTM0_PAGE_REQUEST,
      pasid: 5,
      at: 0,
      t: false,
      f: true,
      fi: 0x1234_5000,
    });
    expect(takeRecord(rig, 1)).toMatchObject({ fr: FR.SM_TTM0_PAGE_REQUEST, pp: false, pasid: 0 });
    expect(responses).toEqual([{ pasid: 5, groupIndex: 7, code: 'invalid' }]);
  });

  it('a requester not connected, or disconnected, gets no answer', () => {
    const rig = mmioRig({ faultRecords: 4 });
    const responses: PageResponse[] = [];
    rig.vtd.connectEndpoint(DEV, endpoint(responses));
    rig.vtd.disconnectEndpoint(DEV);
    rig.vtd.pageRequest(DEV, request());
    rig.vtd.pageRequest(DEV + 1, request());
    expect([responses, rig.vtd.stats().faultsRecorded]).toEqual([[], 2]);
  });

  it('a unit without page requests ignores them', () => {
    const rig = mmioRig({ pageRequests: false, pageRequestDrain: false });
    rig.vtd.pageRequest(DEV, request());
    expect(rig.vtd.stats().faultsRecorded).toBe(0);
  });
});

describe('VT-d wiring: page requests in scalable mode', () => {
  const QUEUED = (2 << 8) | 0x08; // PRE, PASIDE, no DTE
  const NO_PRE = (2 << 8) | 0x10;
  const NO_PASIDE = (2 << 8) | 0x18;
  const NO_ROOT = 3 << 8;

  function scalable() {
    const rig = mmioRig({ faultRecords: 8 });
    const root = rig.pages();
    const contexts = rig.pages();
    rig.put(root + 2 * 16, encodeScalableRootEntry({ lp: true, lctp: contexts }));
    const context = (sid: number, fields: Parameters<typeof encodeScalableContext>[0]) =>
      rig.put(
        contexts + (sid & 0x7f) * 32,
        encodeScalableContext({ p: true, pdts: 7, pasidDirPtr: rig.pages(), ...fields }),
      );
    context(QUEUED, { pre: true, paside: true });
    context(NO_PRE, { paside: true });
    context(NO_PASIDE, { pre: true });
    rig.mmio64(REG.RTADDR, root + (TTM.SCALABLE << 10));
    rig.command(GCMD_SRTP);
    const prq = rig.pages();
    rig.mmio64(REG.PQA, prq);
    const responses = new Map<number, PageResponse[]>();
    for (const sid of [QUEUED, NO_PRE, NO_PASIDE]) {
      responses.set(sid, []);
      rig.vtd.connectEndpoint(sid, endpoint(responses.get(sid)!));
    }
    /** The page request's outcome: queued (PQT moved), or the fault reason recorded. */
    const outcome = (sid: number, pr: PageRequest) => {
      const tail = rig.reg(REG.PQT);
      rig.vtd.pageRequest(sid, pr);
      if (rig.reg(REG.PQT) !== tail) return 'queued';
      const [index] = fullRecords(rig, 8);
      return index === undefined ? 'dropped' : takeRecord(rig, index).fr;
    };
    return { rig, outcome, responses };
  }

  it('queued through a context entry with PRE, whatever DTE says', () => {
    const { outcome } = scalable();
    expect(outcome(QUEUED, request())).toBe('queued');
    expect(outcome(QUEUED, request({ pasid: NO_PASID }))).toBe('queued');
  });

  it('refused through a context entry without PRE (0x47), answered Invalid', () => {
    const { outcome, responses } = scalable();
    expect(outcome(NO_PRE, request())).toBe(FR.SM_CONTEXT_PRE_CLEAR);
    expect(responses.get(NO_PRE)).toEqual([{ pasid: 5, groupIndex: 7, code: 'invalid' }]);
  });

  it('with a PASID, refused through a context entry without PASIDE (0x45); without one, queued', () => {
    const { outcome } = scalable();
    expect(outcome(NO_PASIDE, request())).toBe(FR.SM_CONTEXT_PASIDE_CLEAR);
    expect(outcome(NO_PASIDE, request({ pasid: NO_PASID }))).toBe('queued');
  });

  it('refused with the fault the context fetch found', () => {
    const { outcome } = scalable();
    expect(outcome(NO_ROOT, request())).toBe(FR.SM_ROOT_NOT_PRESENT);
  });

  it('a full queue drops the request and answers a last one Success', () => {
    const { rig, outcome, responses } = scalable();
    expect(outcome(QUEUED, request({ last: false }))).toBe('queued');
    // Software's head one past the tail: the queue is full.
    rig.mmio(REG.PQH, 0x40);
    expect(outcome(QUEUED, request())).toBe('dropped');
    expect(responses.get(QUEUED)).toEqual([{ pasid: 5, groupIndex: 7, code: 'success' }]);
    // A requester no longer connected gets nothing, and the unit goes on.
    rig.vtd.disconnectEndpoint(QUEUED);
    expect(outcome(QUEUED, request({ groupIndex: 8 }))).toBe('dropped');
    expect(responses.get(QUEUED)).toHaveLength(1);
  });
});

describe('VT-d wiring: what the unit reports', () => {
  it('identify: VER, and CAP and ECAP as 64-bit values', () => {
    const rig = mmioRig();
    const reg64 = (offset: number) => toHex(rig.reg(offset + 4) * 2 ** 32 + rig.reg(offset));
    expect(rig.vtd.identify()).toEqual({
      VER: toHex(rig.reg(REG.VER)),
      CAP: reg64(REG.CAP),
      ECAP: reg64(REG.ECAP),
    });
    expect(rig.reg(REG.ECAP + 4)).not.toBe(0);
  });

  it('stats: descriptors performed, register invalidations, page requests, interrupt remapping, commands', () => {
    const rig = mmioRig();
    const submit = queue(rig);
    submit(
      { type: INV_TYPE.CONTEXT_CACHE, granularity: 1, did: 0, sid: 0, fm: 0 },
      { type: INV_TYPE.IOTLB, granularity: 1, did: 0, am: 0, ih: false, addr: 0, dw: false, dr: false },
    );
    rig.vtd.interruptRemapping!.request(0x10, 0xfee0_0000n, 0);
    expect(rig.vtd.stats()).toMatchObject({
      invalidationDescriptors: 2,
      registerInvalidations: 0,
      prqQueued: 0,
      requests: 1,
      globalCommands: 1,
    });
  });

  it('stats: register invalidations of both kinds', () => {
    const rig = mmioRig({ version: { major: 5, minor: 0 }, scalableMode: false });
    rig.mmio(REG.CCMD + 4, 0x8000_0000 | (1 << 29));
    rig.mmio(REG.IOTLB + 4, 0x8000_0000 | (1 << 28));
    expect(rig.vtd.stats().registerInvalidations).toBe(2);
  });

  it('stats of a unit without queued invalidation, page requests and interrupt remapping', () => {
    const rig = mmioRig({
      scalableMode: false,
      interruptRemapping: false,
      extendedInterruptMode: false,
      postedInterrupts: false,
      queuedInvalidation: false,
      deviceTlb: false,
      pageRequests: false,
      pageRequestDrain: false,
    });
    const stats = rig.vtd.stats();
    expect(stats).toMatchObject({ iotlbHits: 0, registerInvalidations: 0, globalCommands: 0 });
    for (const key of ['invalidationDescriptors', 'prqQueued', 'requests'])
      expect(stats).not.toHaveProperty(key);
  });

  it('traces the invalidations it performs as hw records of the instance', () => {
    const tracer = new Tracer();
    const rig = mmioRig({}, tracer);
    const submit = queue(rig);
    tracer.startRecording();
    submit({ type: INV_TYPE.CONTEXT_CACHE, granularity: 1, did: 0, sid: 0, fm: 0 });
    expect(tracer.records.map(({ layer, source, name }) => [layer, source, name])).toContainEqual([
      'hw',
      'dmar0',
      'context-cache',
    ]);
  });
});

describe('hooks for a vIOMMU built on the model (VtdHardwareHooks)', () => {
  it('each queued descriptor is forwarded after the unit performed it; a refusal stops the queue there with IQE', () => {
    const seen: { type: number; iotlbEntries: number }[] = [];
    let refuse = false;
    const rig = mmioRig({ scalableMode: false }, new Tracer(), {
      forwardInvalidation: (d) => {
        seen.push({ type: d.type, iotlbEntries: rig.vtd.caches.iotlb.entries().length });
        return refuse ? { iqei: 0, invalid: 'refused by the test' } : undefined;
      },
    });
    rig.vtd.caches.cacheLeaf(1, 5, 0, 0x1000, 12);
    const submit = queue(rig);
    submit({ type: INV_TYPE.IOTLB, granularity: 2, did: 5 });
    // The IOTLB entry was gone when the hook saw the descriptor.
    expect(seen).toEqual([{ type: INV_TYPE.IOTLB, iotlbEntries: 0 }]);
    refuse = true;
    submit({ type: INV_TYPE.CONTEXT_CACHE, granularity: 1, did: 0, sid: 0, fm: 0 });
    expect(rig.reg(REG.FSTS) & FSTS_IQE).toBe(FSTS_IQE);
    expect(rig.reg(REG.IQH)).toBe(16);
    expect(rig.reg(REG.IQERCD) & 0xf).toBe(0);
  });

  it('TE and SRTP report the state translations read', () => {
    const states: { enabled: boolean; rootTable: number }[] = [];
    const rig = mmioRig({}, new Tracer(), {
      translationChanged: (state) => states.push({ enabled: state.enabled, rootTable: state.rootTable }),
    });
    const root = rig.pages();
    rig.mmio64(REG.RTADDR, root);
    rig.command(GCMD_SRTP);
    rig.command(GCMD_TE);
    rig.command(GCMD_TE, false);
    expect(states).toEqual([
      { enabled: false, rootTable: root },
      { enabled: true, rootTable: root },
      { enabled: false, rootTable: root },
    ]);
  });
});
