/**
 * Root and context tables (context-tables.ts): entries written where the hardware walks them (proved by
 * translations once TE is on), the write order, and the invalidations each change sends the unit (its
 * counters, and stale cache contents that only those invalidations remove).
 */
import { errnoOf, NO_PASID, PERM_READ, type TranslationRequest } from '@iommukit/core';
import { IoPageTable, vtdSsFormat } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { type DriverRig, driverRig } from '../../test/driver-rig.js';
import {
  CONTEXT_TT,
  decodeLegacyContext,
  decodeLegacyRootEntry,
  decodeScalableContext,
  decodeScalableRootEntry,
  rootEntryAddress,
} from '../hw/root-context.js';
import { enableTranslation, type ProbedUnit, probeUnit } from './probe.js';

const SID = (2 << 8) | 0x08;
const IOVA = 0x40_0000;

function setup(options: Record<string, unknown> = {}) {
  const r = driverRig({ options });
  const unit = probeUnit(r.context, r.lookup);
  const ss = new IoPageTable(vtdSsFormat({ levels: 4, oas: 48 }), r.tables);
  const data = Number(r.buffers.allocFrames(1));
  ss.map(BigInt(IOVA), BigInt(data), 0x1000n, { read: true, write: true });
  return { r, unit, ss, data };
}

function dma(r: DriverRig, sid: number, iova = IOVA, pasid = NO_PASID) {
  const request: TranslationRequest = {
    streamId: sid,
    pasid,
    iovaPfn: iova / 4096,
    offset: 0,
    access: PERM_READ,
  };
  return r.vtd.translate(request);
}

const counts = (r: DriverRig) => ({ ...r.vtd.invalidationQueue!.performed });
const delta = (r: DriverRig, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(counts(r)).map(([k, v]) => [k, v - before[k]!]));

/** Bus writes the driver makes while `fn` runs, by address. */
function writesDuring(r: DriverRig, unit: ProbedUnit, fn: () => void): number[] {
  const addresses: number[] = [];
  const writeWords = r.bus.writeWords.bind(r.bus);
  r.bus.writeWords = (addr, words, count, who, offset) => {
    if (who === unit.counter) addresses.push(addr);
    return writeWords(addr, words, count, who, offset);
  };
  try {
    fn();
  } finally {
    r.bus.writeWords = writeWords;
  }
  return addresses;
}

describe('legacy mode', () => {
  const legacy = { scalableMode: false };

  it('the root and context entries are where the unit walks: DMA translates once TE is on', () => {
    const { r, unit, ss, data } = setup(legacy);
    unit.contextTables.setLegacyContext(SID, {
      did: 5,
      tt: CONTEXT_TT.MULTI_LEVEL,
      aw: 2,
      slptptr: ss.rootPa,
    });
    enableTranslation(unit);
    expect(dma(r, SID)).toMatchObject({ ok: true, pfn: data / 4096 });
    const root = decodeLegacyRootEntry(r.words(rootEntryAddress(unit.contextTables.root, 2), 4));
    expect(root.p).toBe(true);
    const at = unit.contextTables.entryAt(SID)!;
    expect(at).toBe(root.ctp + 0x08 * 16);
    expect(decodeLegacyContext(r.words(at, 4))).toMatchObject({ p: true, fpd: false, did: 5, aw: 2, tt: 0 });
  });

  it('the entry is written present bit last (high qword, then qword 0); cleared present bit first', () => {
    const { r, unit, ss } = setup(legacy);
    unit.contextTables.setLegacyContext(SID, { did: 5, tt: 0, aw: 2, slptptr: ss.rootPa });
    const at = unit.contextTables.entryAt(SID)!;
    unit.contextTables.clearContext(SID);
    const sets = writesDuring(r, unit, () =>
      unit.contextTables.setLegacyContext(SID, { did: 5, tt: 0, aw: 2, slptptr: ss.rootPa }),
    );
    expect(sets).toEqual([at + 8, at]);
    const clears = writesDuring(r, unit, () => unit.contextTables.clearContext(SID));
    expect(clears.filter((a) => a === at || a === at + 8)).toEqual([at, at + 8]);
  });

  it('a present entry is not rewritten (EBUSY); pass-through needs no table', () => {
    const { r, unit, ss } = setup(legacy);
    unit.contextTables.setLegacyContext(SID, { did: 5, tt: 0, aw: 2, slptptr: ss.rootPa });
    expect(errnoOf(() => unit.contextTables.setLegacyContext(SID, { did: 6, tt: 0, aw: 2 }))).toBe('EBUSY');
    unit.contextTables.setLegacyContext(SID + 1, {
      did: 1,
      tt: CONTEXT_TT.PASS_THROUGH,
      aw: unit.unit.msagaw,
    });
    enableTranslation(unit);
    expect(dma(r, SID + 1, 0x1234_5000)).toMatchObject({ ok: true, pfn: 0x1234_5 });
  });

  it('not present → present without CAP.CM: no invalidation, a write-buffer flush with CAP.RWBF', () => {
    const { r, unit, ss } = setup({ ...legacy, writeBufferFlush: true });
    const before = counts(r);
    const commands = r.vtd.global.commands;
    unit.contextTables.setLegacyContext(SID, { did: 5, tt: 0, aw: 2, slptptr: ss.rootPa });
    expect(Object.values(delta(r, before)).every((n) => n === 0)).toBe(true);
    expect(r.vtd.global.commands - commands).toBe(1);
  });

  it('not present → present with CAP.CM: the cached not-present entry is invalidated (DID 0), then the DID', () => {
    const { r, unit, ss, data } = setup({ ...legacy, cachingMode: true });
    enableTranslation(unit);
    unit.contextTables.setLegacyContext(SID + 1, { did: 9, tt: 0, aw: 2, slptptr: ss.rootPa });
    expect(dma(r, SID).ok).toBe(false);
    const before = counts(r);
    unit.contextTables.setLegacyContext(SID, { did: 5, tt: 0, aw: 2, slptptr: ss.rootPa });
    expect(delta(r, before)).toMatchObject({ contextCache: 1, iotlb: 1, wait: 2 });
    expect(dma(r, SID)).toMatchObject({ ok: true, pfn: data / 4096 });
  });

  it('clearing a present entry: device-selective context-cache and domain-selective IOTLB invalidations', () => {
    const { r, unit, ss, data } = setup(legacy);
    unit.contextTables.setLegacyContext(SID, { did: 5, tt: 0, aw: 2, slptptr: ss.rootPa });
    enableTranslation(unit);
    expect(dma(r, SID)).toMatchObject({ ok: true, pfn: data / 4096 });
    const before = counts(r);
    unit.contextTables.clearContext(SID);
    expect(delta(r, before)).toMatchObject({ contextCache: 1, iotlb: 1, deviceTlb: 0 });
    expect(dma(r, SID)).toMatchObject({ ok: false, fault: { kind: 'bad-stream' } });
    // Nothing left to clear: no more invalidations.
    const after = counts(r);
    unit.contextTables.clearContext(SID);
    expect(Object.values(delta(r, after)).every((n) => n === 0)).toBe(true);
  });

  it('clearing the entry of an ATS device also invalidates its Device-TLB', () => {
    const { r, unit, ss } = setup(legacy);
    const port = r.endpoint(SID);
    unit.contextTables.setLegacyContext(SID, {
      did: 5,
      tt: CONTEXT_TT.DEVICE_TLB,
      aw: 2,
      slptptr: ss.rootPa,
    });
    enableTranslation(unit);
    unit.contextTables.clearContext(SID, { ats: { sid: SID, pfsid: SID, qdep: 0 } });
    expect(port.invalidations).toEqual([{ pasid: undefined, iova: 0n, size: 2n ** 64n }]);
  });

  it('a scalable-mode entry in legacy mode is EINVAL', () => {
    const { unit } = setup(legacy);
    expect(errnoOf(() => unit.contextTables.setScalableContext(SID, { pasidDir: 0, pdts: 0 }))).toBe(
      'EINVAL',
    );
  });
});

describe('scalable mode', () => {
  const LOWER = (4 << 8) | 0x10;
  const UPPER = (4 << 8) | 0x90;

  function withPasidTable(unit: ProbedUnit, sid: number, extra = {}) {
    const dir = unit.pasidTables.allocTable(sid, { pasidBits: 20 });
    unit.contextTables.setScalableContext(sid, { pasidDir: dir.dir, pdts: dir.pdts, paside: true, ...extra });
    return dir;
  }

  it('devfn 0–127 and 128–255 get the two halves of one root entry; both translate', () => {
    const { r, unit, ss, data } = setup();
    withPasidTable(unit, LOWER);
    withPasidTable(unit, UPPER);
    unit.pasidTables.setSecondStage(LOWER, 0, { did: 4, ssptptr: ss.rootPa, aw: 2 });
    unit.pasidTables.setPassThrough(UPPER, 0);
    enableTranslation(unit);
    expect(dma(r, LOWER)).toMatchObject({ ok: true, pfn: data / 4096 });
    expect(dma(r, UPPER, 0x7_7000)).toMatchObject({ ok: true, pfn: 0x77 });
    const root = decodeScalableRootEntry(r.words(rootEntryAddress(unit.contextTables.root, 4), 4));
    expect(root).toMatchObject({ lp: true, up: true });
    expect(root.lctp).not.toBe(root.uctp);
    expect(unit.contextTables.entryAt(UPPER)).toBe(root.uctp + 0x10 * 32);
    const ctx = decodeScalableContext(r.words(unit.contextTables.entryAt(LOWER)!, 8));
    expect(ctx).toMatchObject({
      p: true,
      fpd: false,
      paside: true,
      dte: false,
      pre: false,
      ridPasid: 0,
      pdts: 7,
    });
  });

  it('not present → present: no invalidation without CAP.CM; with CM device-selective context and DID-0 IOTLB', () => {
    const plain = setup();
    let before = counts(plain.r);
    withPasidTable(plain.unit, LOWER);
    expect(Object.values(delta(plain.r, before)).every((n) => n === 0)).toBe(true);
    const cm = setup({ cachingMode: true });
    before = counts(cm.r);
    withPasidTable(cm.unit, LOWER);
    expect(delta(cm.r, before)).toMatchObject({ contextCache: 1, iotlb: 1, pasidCache: 0 });
  });

  it('a present entry changed in place (PRE on): context cache, then each present PASID entry’s DID', () => {
    const { r, unit, ss } = setup();
    const port = r.endpoint(LOWER);
    const dir = withPasidTable(unit, LOWER);
    unit.pasidTables.setSecondStage(LOWER, 0, { did: 4, ssptptr: ss.rootPa, aw: 2 });
    unit.pasidTables.setPassThrough(LOWER, 5);
    expect(unit.pasidTables.presentDids(LOWER)).toEqual([4, 1]);
    enableTranslation(unit);
    const before = counts(r);
    unit.contextTables.setScalableContext(
      LOWER,
      { pasidDir: dir.dir, pdts: dir.pdts, paside: true, pre: true, dte: true },
      { ats: { sid: LOWER, pfsid: LOWER, qdep: 0 } },
    );
    expect(delta(r, before)).toMatchObject({ contextCache: 1, pasidCache: 2, iotlb: 2, deviceTlb: 1 });
    expect(port.invalidations).toHaveLength(1);
    expect(decodeScalableContext(r.words(unit.contextTables.entryAt(LOWER)!, 8))).toMatchObject({
      pre: true,
    });
  });

  it('clearing with no present PASID entries: only the context cache (Linux device_pasid_table_teardown)', () => {
    const { r, unit } = setup();
    withPasidTable(unit, LOWER);
    const before = counts(r);
    unit.contextTables.clearContext(LOWER);
    expect(delta(r, before)).toMatchObject({ contextCache: 1, pasidCache: 0, iotlb: 0 });
    expect(decodeScalableContext(r.words(unit.contextTables.entryAt(LOWER)!, 8)).p).toBe(false);
  });

  it('a legacy entry in scalable mode is EINVAL', () => {
    const { unit } = setup();
    expect(errnoOf(() => unit.contextTables.setLegacyContext(SID, { did: 2, tt: 0, aw: 2 }))).toBe('EINVAL');
  });
});
