/**
 * The kernel-owned PASID tables (pasid-table.ts): directory sizing as Linux `intel_pasid_alloc_table`,
 * entries the unit finds and translates with (first stage, second stage, pass-through, nested), the
 * set-up and teardown invalidations (unit counters, and cached translations they remove), and the
 * capability checks.
 */
import { errnoOf, NO_PASID, PERM_READ, type TranslationRequest } from '@iommukit/core';
import { IoPageTable, vtdSsFormat, x86Format } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { BUFFERS_BASE, BUFFERS_SIZE, type DriverRig, driverRig } from '../../test/driver-rig.js';
import { decodePasidDirEntry, FLPM, PGTT, pasidDirEntryAddress } from '../hw/pasid-entry.js';
import { FLPT_DEFAULT_DID } from './domain-ids.js';
import { RID_PASID } from './pasid-table.js';
import { enableTranslation, probeUnit } from './probe.js';

const SID = (6 << 8) | 0x20;
const IOVA = 0x20_0000;
const ATS = { sid: SID, pfsid: SID, qdep: 0 };

function setup(options: Record<string, unknown> = {}, pasidBits = 20) {
  const r = driverRig({ options });
  const unit = probeUnit(r.context, r.lookup);
  const dir = unit.pasidTables.allocTable(SID, { pasidBits });
  unit.contextTables.setScalableContext(SID, { pasidDir: dir.dir, pdts: dir.pdts, paside: true });
  const data = Number(r.buffers.allocFrames(1));
  const ss = new IoPageTable(vtdSsFormat({ levels: 4, oas: 48 }), r.tables);
  ss.map(BigInt(IOVA), BigInt(data), 0x1000n, { read: true, write: true });
  const fs = new IoPageTable(x86Format({ levels: 4, oas: 48 }), r.tables);
  fs.map(BigInt(IOVA), BigInt(data), 0x1000n, { read: true, write: true });
  return { r, unit, dir, data, ss, fs };
}

function dma(r: DriverRig, pasid = NO_PASID, iova = IOVA) {
  const request: TranslationRequest = {
    streamId: SID,
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

describe('the PASID directory (Linux intel_pasid_alloc_table)', () => {
  it.each([
    ['a 20-bit device on a 20-bit unit', 20, {}, { pages: 32, maxPasid: 2 ** 20, pdts: 7 }],
    ['a device without PASIDs: one page, still RID_PASID', 0, {}, { pages: 1, maxPasid: 2 ** 15, pdts: 2 }],
    ['a 20-bit device on a 10-bit unit', 20, { pasidBits: 10 }, { pages: 1, maxPasid: 2 ** 15, pdts: 2 }],
    ['a 17-bit device', 17, {}, { pages: 4, maxPasid: 2 ** 17, pdts: 4 }],
  ])('%s', (_what, bits, options, expected) => {
    const { unit } = setup(options, bits);
    expect(unit.pasidTables.directory(SID)).toMatchObject(expected);
  });

  it('a second table for the device is EEXIST; freeing returns every page it took', () => {
    const { r, unit } = setup();
    expect(errnoOf(() => unit.pasidTables.allocTable(SID, { pasidBits: 20 }))).toBe('EEXIST');
    const frames = r.memory.allocatedFrameCount;
    unit.pasidTables.setPassThrough(SID, 3 * 64 + 1);
    expect(r.memory.allocatedFrameCount).toBe(frames + 1);
    unit.pasidTables.freeTable(SID);
    expect(r.memory.allocatedFrameCount).toBe(frames - 32);
    expect(unit.pasidTables.directory(SID)).toBeUndefined();
  });

  it('PASID tables are made on demand and linked from their directory entry', () => {
    const { r, unit, dir } = setup();
    unit.pasidTables.setPassThrough(SID, 200);
    const entry = decodePasidDirEntry(r.words(pasidDirEntryAddress(dir.dir, 200), 2));
    expect(entry.p).toBe(true);
    expect(decodePasidDirEntry(r.words(pasidDirEntryAddress(dir.dir, 0), 2)).p).toBe(false);
  });
});

describe('entries the unit translates with', () => {
  it('first stage at a PASID', () => {
    const { r, unit, fs, data } = setup();
    unit.pasidTables.setFirstStage(SID, 5, { did: FLPT_DEFAULT_DID, fsptptr: fs.rootPa });
    enableTranslation(unit);
    expect(dma(r, 5)).toMatchObject({ ok: true, pfn: data / 4096 });
    expect(unit.pasidTables.entry(SID, 5)).toMatchObject({
      p: true,
      fpd: false,
      pgtt: PGTT.FIRST_STAGE,
      did: FLPT_DEFAULT_DID,
      flpm: FLPM.LEVEL_4,
      fsptptr: fs.rootPa,
      aw: unit.unit.agaw,
      pwsnp: true,
      sre: false,
    });
  });

  it('second stage at RID_PASID serves requests without PASID', () => {
    const { r, unit, ss, data } = setup();
    unit.pasidTables.setSecondStage(SID, RID_PASID, { did: 7, ssptptr: ss.rootPa, aw: 2, ssade: true });
    enableTranslation(unit);
    expect(dma(r)).toMatchObject({ ok: true, pfn: data / 4096 });
    expect(unit.pasidTables.entry(SID, RID_PASID)).toMatchObject({
      pgtt: PGTT.SECOND_STAGE,
      did: 7,
      aw: 2,
      ssade: true,
    });
  });

  it('pass-through with FLPT_DEFAULT_DID', () => {
    const { r, unit } = setup();
    unit.pasidTables.setPassThrough(SID, RID_PASID);
    enableTranslation(unit);
    expect(dma(r, NO_PASID, 0xabc_d000)).toMatchObject({ ok: true, pfn: 0xabcd });
    expect(unit.pasidTables.entry(SID, RID_PASID)).toMatchObject({ pgtt: PGTT.PASS_THROUGH, did: 1 });
  });

  it('nested: the first stage’s tables are guest-physical, translated by the second stage', () => {
    const { r, unit, fs, data } = setup();
    // The guest's memory is the test's buffers, mapped one to one by the second stage.
    const gpa = new IoPageTable(vtdSsFormat({ levels: 4, oas: 48 }), r.tables);
    gpa.map(BigInt(BUFFERS_BASE), BigInt(BUFFERS_BASE), BigInt(BUFFERS_SIZE), { read: true, write: true });
    unit.pasidTables.setNested(SID, 9, {
      did: 12,
      fsptptr: fs.rootPa,
      ssptptr: gpa.rootPa,
      aw: 2,
      sre: true,
      wpe: true,
    });
    enableTranslation(unit);
    expect(dma(r, 9)).toMatchObject({ ok: true, pfn: data / 4096 });
    expect(unit.pasidTables.entry(SID, 9)).toMatchObject({ pgtt: PGTT.NESTED, sre: true, wpe: true, aw: 2 });
  });
});

describe('set-up and teardown invalidations', () => {
  it('set-up without CAP.CM sends nothing; with CM PASID-cache and PASID-based IOTLB for the PASID', () => {
    const plain = setup();
    let before = counts(plain.r);
    plain.unit.pasidTables.setPassThrough(SID, 4);
    expect(Object.values(delta(plain.r, before)).every((n) => n === 0)).toBe(true);
    const cm = setup({ cachingMode: true });
    before = counts(cm.r);
    cm.unit.pasidTables.setPassThrough(SID, 4);
    expect(delta(cm.r, before)).toMatchObject({ pasidCache: 1, pasidIotlb: 1, iotlb: 0 });
  });

  it('a present entry is not reprogrammed (EBUSY) and is left as it was', () => {
    const { r, unit, ss } = setup();
    unit.pasidTables.setPassThrough(SID, 4);
    const before = counts(r);
    expect(
      errnoOf(() => unit.pasidTables.setSecondStage(SID, 4, { did: 3, ssptptr: ss.rootPa, aw: 2 })),
    ).toBe('EBUSY');
    expect(unit.pasidTables.entry(SID, 4)).toMatchObject({ pgtt: PGTT.PASS_THROUGH });
    expect(Object.values(delta(r, before)).every((n) => n === 0)).toBe(true);
  });

  it('first stage torn down: PASID-cache and PASID-based IOTLB; the cached translation is gone', () => {
    const { r, unit, fs, data } = setup();
    unit.pasidTables.setFirstStage(SID, 5, { did: 1, fsptptr: fs.rootPa });
    enableTranslation(unit);
    expect(dma(r, 5)).toMatchObject({ ok: true, pfn: data / 4096 });
    const before = counts(r);
    unit.pasidTables.clear(SID, 5);
    expect(delta(r, before)).toMatchObject({ pasidCache: 1, pasidIotlb: 1, iotlb: 0 });
    expect(dma(r, 5)).toMatchObject({ ok: false, fault: { kind: 'bad-pasid' } });
    expect(unit.pasidTables.presentDids(SID)).toEqual([]);
  });

  it('second stage torn down: PASID-cache and domain-selective IOTLB', () => {
    const { r, unit, ss, data } = setup();
    unit.pasidTables.setSecondStage(SID, RID_PASID, { did: 7, ssptptr: ss.rootPa, aw: 2 });
    enableTranslation(unit);
    expect(dma(r)).toMatchObject({ ok: true, pfn: data / 4096 });
    const before = counts(r);
    unit.pasidTables.clear(SID, RID_PASID);
    expect(delta(r, before)).toMatchObject({ pasidCache: 1, pasidIotlb: 0, iotlb: 1 });
    expect(dma(r).ok).toBe(false);
  });

  it('an ATS device’s Device-TLB: without PASID for RID_PASID, PASID-based for other PASIDs', () => {
    const { r, unit } = setup();
    const port = r.endpoint(SID);
    unit.pasidTables.setAts(SID, ATS);
    unit.pasidTables.setPassThrough(SID, RID_PASID);
    unit.pasidTables.setPassThrough(SID, 6);
    enableTranslation(unit);
    unit.pasidTables.clear(SID, RID_PASID);
    unit.pasidTables.clear(SID, 6);
    expect(port.invalidations).toEqual([
      { pasid: undefined, iova: 0n, size: 2n ** 64n },
      { pasid: 6, iova: 0n, size: 2n ** 64n },
    ]);
  });

  it('faults ignored: the cleared entry keeps FPD; a PASID that is not present needs nothing', () => {
    const { r, unit } = setup();
    unit.pasidTables.setPassThrough(SID, 8);
    unit.pasidTables.clear(SID, 8, { faultIgnore: true });
    expect(unit.pasidTables.entry(SID, 8)).toMatchObject({ p: false, fpd: true });
    const before = counts(r);
    unit.pasidTables.clear(SID, 8);
    unit.pasidTables.clear(SID, 4000);
    expect(Object.values(delta(r, before)).every((n) => n === 0)).toBe(true);
  });
});

describe('extended accessed flags', () => {
  it('EAFE is written when the unit reports ECAP.EAFS, and the entry translates', () => {
    const { r, unit, fs, data } = setup();
    unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: fs.rootPa, eafe: true });
    expect(unit.pasidTables.entry(SID, 1)).toMatchObject({ p: true, eafe: true });
    enableTranslation(unit);
    const request = { streamId: SID, pasid: 1, iovaPfn: IOVA / 4096, offset: 0, access: PERM_READ };
    expect(r.vtd.translate(request)).toMatchObject({ ok: true, pfn: data / 4096 });
  });
});

describe('what Linux refuses', () => {
  it.each([
    [
      '5-level first stage without CAP.FL5LP',
      { firstStage5Level: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: u.fs.rootPa, flpm: FLPM.LEVEL_5 }),
    ],
    [
      'SRE without ECAP.SRS',
      { supervisorRequests: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: u.fs.rootPa, sre: true }),
    ],
    [
      'SSADE without ECAP.SLADS',
      { secondStageAccessDirty: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setSecondStage(SID, 1, { did: 3, ssptptr: u.ss.rootPa, aw: 2, ssade: true }),
    ],
    [
      'an AW outside CAP.SAGAW',
      {},
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setSecondStage(SID, 1, { did: 3, ssptptr: u.ss.rootPa, aw: 1 }),
    ],
    [
      'pass-through without ECAP.PT',
      { passThrough: false },
      (u: ReturnType<typeof setup>) => u.unit.pasidTables.setPassThrough(SID, 1),
    ],
    [
      'nesting without ECAP.NEST',
      { nesting: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setNested(SID, 1, { did: 3, fsptptr: u.fs.rootPa, ssptptr: u.ss.rootPa, aw: 2 }),
    ],
  ])('%s: EINVAL, nothing written', (_what, options, call) => {
    const u = setup(options);
    expect(errnoOf(() => call(u))).toBe('EINVAL');
    expect(u.unit.pasidTables.entry(SID, 1)).toBeUndefined();
  });

  it('a PASID beyond the directory, or a device without a table: ENODEV', () => {
    const { unit } = setup({}, 0);
    expect(errnoOf(() => unit.pasidTables.setPassThrough(SID, 2 ** 15))).toBe('ENODEV');
    expect(errnoOf(() => unit.pasidTables.setPassThrough(SID + 1, 0))).toBe('ENODEV');
  });
});

describe('refusals name what the unit lacks', () => {
  it.each([
    [
      'first stage without ECAP.FLTS',
      { firstStage: false, nesting: false, firstStage1GiB: false, firstStage5Level: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: u.fs.rootPa }),
      'first-stage translation (ECAP.FLTS)',
    ],
    [
      'second stage without ECAP.SLTS',
      { secondStage: false, nesting: false, secondStageAccessDirty: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setSecondStage(SID, 1, { did: 3, ssptptr: u.ss.rootPa, aw: 2 }),
      'second-stage translation (ECAP.SLTS)',
    ],
    [
      'pass-through without ECAP.PT',
      { passThrough: false },
      (u: ReturnType<typeof setup>) => u.unit.pasidTables.setPassThrough(SID, 1),
      'pass-through (ECAP.PT)',
    ],
    [
      'nesting without ECAP.NEST',
      { nesting: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setNested(SID, 1, { did: 3, fsptptr: u.fs.rootPa, ssptptr: u.ss.rootPa, aw: 2 }),
      'nested translation (ECAP.NEST)',
    ],
    [
      'PGSNP on a first stage without ECAP.SC',
      { snoopControl: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: u.fs.rootPa, pgsnp: true }),
      'snoop control (ECAP.SC) for PGSNP',
    ],
    [
      'PGSNP on a second stage without ECAP.SC',
      { snoopControl: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setSecondStage(SID, 1, { did: 3, ssptptr: u.ss.rootPa, aw: 2, pgsnp: true }),
      'snoop control (ECAP.SC) for PGSNP',
    ],
    [
      'a first-stage paging mode that is neither 4- nor 5-level',
      {},
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: u.fs.rootPa, flpm: 2 }),
      'first-stage paging mode 2',
    ],
    [
      'SRE without ECAP.SRS',
      { supervisorRequests: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: u.fs.rootPa, sre: true }),
      'supervisor requests (ECAP.SRS)',
    ],
    [
      'SSADE without ECAP.SLADS',
      { secondStageAccessDirty: false },
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setSecondStage(SID, 1, { did: 3, ssptptr: u.ss.rootPa, aw: 2, ssade: true }),
      'second-stage dirty tracking (ECAP.SLADS)',
    ],
    [
      'an AW outside CAP.SAGAW',
      {},
      (u: ReturnType<typeof setup>) =>
        u.unit.pasidTables.setSecondStage(SID, 1, { did: 3, ssptptr: u.ss.rootPa, aw: 1 }),
      'second-stage AW 1 (CAP.SAGAW)',
    ],
  ])('%s', (_what, options, call, lacking) => {
    const u = setup(options);
    expect(() => call(u)).toThrow(`no ${lacking}`);
    expect(u.unit.pasidTables.entry(SID, 1)).toBeUndefined();
  });

  it('EAFE on a unit whose ECAP lacks EAFS (probe decoded it so): EINVAL', () => {
    const u = setup();
    (u.unit.unit.ecap as { eafs: boolean }).eafs = false;
    expect(() =>
      u.unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: u.fs.rootPa, eafe: true }),
    ).toThrow('no extended accessed flags (ECAP.EAFS)');
    u.unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: u.fs.rootPa });
    expect(u.unit.pasidTables.entry(SID, 1)).toMatchObject({ p: true, eafe: false });
  });
});

describe('what is only written when asked for', () => {
  it('features not asked for are not checked, and are written clear', () => {
    const { unit, fs, ss } = setup({
      snoopControl: false,
      supervisorRequests: false,
      secondStageAccessDirty: false,
    });
    unit.pasidTables.setFirstStage(SID, 1, { did: 1, fsptptr: fs.rootPa, wpe: true });
    expect(unit.pasidTables.entry(SID, 1)).toMatchObject({
      p: true,
      flpm: FLPM.LEVEL_4,
      sre: false,
      wpe: false,
      eafe: false,
      pgsnp: false,
    });
    unit.pasidTables.setSecondStage(SID, 2, { did: 3, ssptptr: ss.rootPa, aw: 2 });
    expect(unit.pasidTables.entry(SID, 2)).toMatchObject({ p: true, ssade: false, pgsnp: false });
  });

  it('features asked for are written: SRE with WPE, PGSNP, SSADE, 5-level paging', () => {
    const { unit, fs, ss } = setup({ firstStage5Level: true });
    unit.pasidTables.setFirstStage(SID, 1, {
      did: 1,
      fsptptr: fs.rootPa,
      sre: true,
      wpe: true,
      pgsnp: true,
      flpm: FLPM.LEVEL_5,
    });
    expect(unit.pasidTables.entry(SID, 1)).toMatchObject({
      sre: true,
      wpe: true,
      pgsnp: true,
      flpm: FLPM.LEVEL_5,
    });
    unit.pasidTables.setFirstStage(SID, 3, { did: 1, fsptptr: fs.rootPa, sre: true });
    expect(unit.pasidTables.entry(SID, 3)).toMatchObject({ sre: true, wpe: false });
    unit.pasidTables.setSecondStage(SID, 2, { did: 3, ssptptr: ss.rootPa, aw: 2, ssade: true, pgsnp: true });
    expect(unit.pasidTables.entry(SID, 2)).toMatchObject({ ssade: true, pgsnp: true });
  });
});

describe('entries are written within their 64 bytes', () => {
  it('programming or clearing one PASID leaves its neighbours as they were', () => {
    const { unit, ss } = setup();
    unit.pasidTables.setPassThrough(SID, 5);
    unit.pasidTables.setSecondStage(SID, 4, { did: 3, ssptptr: ss.rootPa, aw: 2 });
    expect(unit.pasidTables.entry(SID, 5)).toMatchObject({ p: true, pgtt: PGTT.PASS_THROUGH });
    unit.pasidTables.setPassThrough(SID, 6);
    unit.pasidTables.clear(SID, 5);
    expect(unit.pasidTables.entry(SID, 6)).toMatchObject({ p: true, pgtt: PGTT.PASS_THROUGH });
    expect(unit.pasidTables.entry(SID, 5)).toMatchObject({ p: false, fpd: false });
    expect(unit.pasidTables.presentDids(SID).sort()).toEqual([FLPT_DEFAULT_DID, 3]);
  });
});

describe('teardown details', () => {
  it('pass-through torn down: PASID-based IOTLB, as for a first stage', () => {
    const { r, unit } = setup();
    unit.pasidTables.setPassThrough(SID, 9);
    const before = counts(r);
    unit.pasidTables.clear(SID, 9);
    expect(delta(r, before)).toMatchObject({ pasidCache: 1, pasidIotlb: 1, iotlb: 0 });
  });

  it('clearing a PASID whose PASID table was never made allocates nothing', () => {
    const { r, unit, dir } = setup();
    const frames = r.memory.allocatedFrameCount;
    unit.pasidTables.clear(SID, 4000);
    expect(r.memory.allocatedFrameCount).toBe(frames);
    expect(decodePasidDirEntry(r.words(pasidDirEntryAddress(dir.dir, 4000), 2)).p).toBe(false);
    expect(unit.pasidTables.entry(SID, 4000)).toBeUndefined();
  });

  it('a device without a table: freeing it is a no-op, it has no present DIDs', () => {
    const { r, unit } = setup();
    const frames = r.memory.allocatedFrameCount;
    expect(() => unit.pasidTables.freeTable(SID + 1)).not.toThrow();
    expect(unit.pasidTables.presentDids(SID + 1)).toEqual([]);
    expect(r.memory.allocatedFrameCount).toBe(frames);
  });

  it('EBUSY names the device and PASID', () => {
    const { unit } = setup();
    unit.pasidTables.setPassThrough(SID, 4);
    let caught: unknown;
    try {
      unit.pasidTables.setPassThrough(SID, 4);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'EBUSY', context: { sid: SID, pasid: 4 } });
  });

  it('set-up without CAP.CM flushes the write buffer with CAP.RWBF', () => {
    const { r, unit } = setup({ writeBufferFlush: true });
    const commands = r.vtd.global.commands;
    unit.pasidTables.setPassThrough(SID, 4);
    expect(r.vtd.global.commands - commands).toBe(1);
  });

  it('a negative or fractional PASID is ENODEV', () => {
    const { unit } = setup();
    for (const pasid of [-1, 1.5])
      expect(errnoOf(() => unit.pasidTables.setPassThrough(SID, pasid))).toBe('ENODEV');
    expect(unit.pasidTables.presentDids(SID)).toEqual([]);
  });
});
