import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, Tracer, type TranslationResult } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { RAM_BASE, type Rig, RW, request, sid, translationRig } from '../../test/translation-rig.js';
import { VtdCaches } from './caches.js';
import { type ContextConfig, contextDid, type PasidLookup, pasidDid } from './config-fetch.js';
import { FR } from './fault-reasons.js';
import { PGTT } from './pasid-entry.js';
import { TTM } from './regs.js';
import { faultKind, type TranslationFaultReport, VtdTranslator } from './translate.js';

const IOVA = 0x4000_0000;
const PA = 0x1_0020_0000;
const DEV = sid(3, 0x10);
const HOLE = 0x8000_0000; // no RAM: a read there aborts

const pfn = (r: TranslationResult) => (r.ok ? r.pfn * 4096 : `fault ${r.fault.vendorCode}`);
const code = (r: TranslationResult) => (r.ok ? 'ok' : r.fault.vendorCode);
const fr = (reason: number) => `DMAR_FR_0x${reason.toString(16).padStart(2, '0')}`;

/** A second translator over a rig's memory and features, with its own caches, tracer and fault recorder. */
function translatorOver(
  rig: Rig,
  options: { pagingStructure?: boolean; recorded?: boolean; scalable?: boolean } = {},
) {
  const geometry = { sets: 4, ways: 4, policy: 'lru' } as const;
  const caches = new VtdCaches<ContextConfig, PasidLookup>(
    {
      iotlb: geometry,
      context: geometry,
      pasid: geometry,
      pagingStructure: options.pagingStructure === false ? undefined : geometry,
    },
    { context: contextDid, pasid: pasidDid },
  );
  const tracer = new Tracer();
  const faults: TranslationFaultReport[] = [];
  const state = {
    enabled: true,
    rootTable: rig.rootTable,
    ttm: options.scalable === false ? TTM.LEGACY : TTM.SCALABLE,
  };
  const translator = new VtdTranslator({
    instance: 'dmar1',
    bus: rig.bus,
    counter: rig.bus.counter('dmar1'),
    tracer,
    features: rig.features,
    caches,
    state: () => state,
    recordFault: (report) => {
      faults.push(report);
      return options.recorded !== false;
    },
  });
  return { translator, caches, tracer, faults };
}

describe('VT-d translation: the fault a request gets', () => {
  it('reports the full address, the access, and with a PASID its execute and privilege bits', () => {
    const rig = translationRig({ executeRequests: true });
    const fs = rig.firstStage(4);
    const dir = rig.scalableContext(DEV, { paside: true, ridPasid: 1 });
    rig.pasidEntry(dir, 1, { pgtt: PGTT.FIRST_STAGE, did: 3, fsptptr: fs.rootPa, sre: true, ere: true });
    const t = rig.translator;
    const r = t.translate(request(DEV, IOVA + 0x123, PERM_READ | PERM_EXEC | PERM_PRIV, 1));
    expect(r).toEqual({
      ok: false,
      fault: {
        kind: 'translation',
        vendorCode: fr(FR.SM_FS_NOT_PRESENT),
        streamId: DEV,
        pasid: 1,
        iova: BigInt(IOVA + 0x123),
        access: PERM_READ | PERM_EXEC | PERM_PRIV,
        recorded: true,
      },
    });
    t.translate(request(DEV, IOVA + 0x456, PERM_WRITE, 1));
    // Without a PASID the request has no execute or privilege bit to report (RID_PASID, RID_PRIV = 0).
    t.translate(request(DEV, IOVA + 0x789, PERM_WRITE | PERM_EXEC | PERM_PRIV));
    const report = { sid: DEV, reason: FR.SM_FS_NOT_PRESENT };
    expect(rig.faults).toEqual([
      { ...report, address: IOVA + 0x123, write: false, pasid: 1, execute: true, privileged: true },
      { ...report, address: IOVA + 0x456, write: true, pasid: 1, execute: false, privileged: false },
      { ...report, address: IOVA + 0x789, write: true, pasid: undefined, execute: false, privileged: false },
    ]);
    expect(t.faults).toBe(3);
  });

  it('a fault the recorder could not keep (overflow) is reported unrecorded', () => {
    const rig = translationRig({}, false);
    rig.legacyContext(DEV, { did: 7, slptptr: rig.secondStage(4).rootPa });
    const { translator, faults } = translatorOver(rig, { recorded: false, scalable: false });
    const r = translator.translate(request(DEV, IOVA));
    expect(r.ok === false && [r.fault.vendorCode, r.fault.recorded]).toEqual([fr(FR.READ_DENIED), false]);
    expect(faults.length).toBe(1);
  });

  it('FPD suppresses only qualified faults: a PASID-directory read error is recorded anyway', () => {
    const rig = translationRig();
    rig.scalableContext(DEV, { paside: true, fpd: true, pasidDirPtr: HOLE });
    const r = rig.translator.translate(request(DEV, IOVA, PERM_READ, 1));
    expect(r.ok === false && [r.fault.vendorCode, r.fault.recorded]).toEqual([
      fr(FR.SM_PASID_DIR_ACCESS),
      true,
    ]);
    // A qualified one through the same context entry is not.
    const r2 = rig.translator.translate(request(DEV, IOVA, PERM_READ, 1 << 20));
    expect(r2.ok === false && [r2.fault.vendorCode, r2.fault.recorded]).toEqual([
      fr(FR.SM_CONTEXT_PASID_TOO_LARGE),
      false,
    ]);
    expect(rig.faults.length).toBe(1);
  });

  it('classifies every reason for the vendor-neutral fault kind', () => {
    const kinds: Record<string, number[]> = {
      'bad-stream': [
        FR.ROOT_NOT_PRESENT,
        FR.CONTEXT_NOT_PRESENT,
        FR.SM_ROOT_NOT_PRESENT,
        FR.SM_CONTEXT_NOT_PRESENT,
      ],
      'bad-pasid': [
        FR.SM_TTM0_PASID_REQUEST,
        FR.SM_CONTEXT_PASIDE_CLEAR,
        FR.SM_CONTEXT_PASID_TOO_LARGE,
        FR.SM_PASID_DIR_NOT_PRESENT,
        FR.SM_PASID_NOT_PRESENT,
      ],
      'config-abort': [
        FR.ROOT_TABLE_ACCESS,
        FR.CONTEXT_TABLE_ACCESS,
        FR.SM_ROOT_ACCESS,
        FR.SM_CONTEXT_ACCESS,
        FR.SM_PASID_DIR_ACCESS,
        FR.SM_PASID_ACCESS,
      ],
      'ats-disabled': [FR.SM_CONTEXT_DTE_CLEAR],
      'walk-abort': [
        FR.PAGING_ENTRY_ACCESS,
        FR.SM_FS_ACCESS,
        FR.SM_FS_ROOT_ACCESS,
        FR.SM_SS_ACCESS,
        FR.SM_SSPTPTR_INVALID,
        FR.SM_NESTED_FS_ROOT_READ,
        FR.SM_NESTED_FS_READ,
        FR.SM_NESTED_FS_WRITE,
      ],
      'address-size': [
        FR.ADDRESS_BEYOND_MGAW,
        FR.SM_NESTED_FS_BEYOND_MGAW,
        FR.SM_NON_CANONICAL,
        FR.SM_ADDRESS_BEYOND_MAX,
        FR.SM_SS_OUTPUT_BEYOND_MAX,
      ],
      permission: [
        FR.WRITE_DENIED,
        FR.READ_DENIED,
        FR.SM_USER_SUPERVISOR,
        FR.SM_EXECUTE_DENIED,
        FR.SM_WRITE_DENIED,
        FR.SM_READ_DENIED,
        FR.INTERRUPT_ADDRESS,
        FR.SM_INTERRUPT_ADDRESS,
      ],
      translation: [
        FR.SM_FS_NOT_PRESENT,
        FR.SM_SS_PERMISSION,
        FR.PAGING_ENTRY_RESERVED,
        FR.SM_FS_RESERVED,
        FR.SM_SS_RESERVED,
      ],
      'bad-config': [
        FR.CONTEXT_INVALID,
        FR.CONTEXT_RESERVED,
        FR.SM_ROOT_TABLE_ADDRESS,
        FR.SM_CONTEXT_INVALID,
        FR.SM_PASID_RESERVED,
        FR.SM_PASID_SRE_CLEAR,
      ],
    };
    for (const [kind, reasons] of Object.entries(kinds))
      expect(reasons.map((reason) => [faultReasonLabel(reason), faultKind(reason)])).toEqual(
        reasons.map((reason) => [faultReasonLabel(reason), kind]),
      );
  });
});

const faultReasonLabel = (reason: number) => `0x${reason.toString(16)}`;

describe('VT-d translation: tracing', () => {
  it('traces a fault with its reason and whether it was recorded', () => {
    const rig = translationRig({}, false);
    rig.legacyContext(DEV, { did: 7, slptptr: rig.secondStage(4).rootPa });
    rig.legacyContext(sid(3, 0x11), { did: 7, slptptr: rig.secondStage(4).rootPa, fpd: true });
    const { translator, tracer } = translatorOver(rig, { scalable: false });
    tracer.startRecording();
    translator.translate(request(DEV, IOVA));
    translator.translate(request(sid(3, 0x11), IOVA));
    const faults = tracer.stopRecording().filter((r) => r.name === 'fault');
    expect(faults.map((r) => [r.layer, r.source])).toEqual([
      ['hw', 'dmar1'],
      ['hw', 'dmar1'],
    ]);
    expect(faults[0]!.message).toContain('READ_DENIED');
    expect(faults[0]!.message).toContain('recorded');
    expect(faults[1]!.message).toContain('FPD');
  });

  it('with tracing on every request runs the whole pipeline, and the memo learns nothing from it', () => {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    const { translator: t, tracer, caches } = translatorOver(rig, { scalable: false });
    t.translate(request(DEV, IOVA));
    const remembered = t.translate(request(DEV, IOVA));
    tracer.startRecording();
    const traced = t.translate(request(DEV, IOVA));
    expect(traced).not.toBe(remembered);
    expect(traced).toEqual(remembered);
    const tracedAgain = t.translate(request(DEV, IOVA));
    expect(tracedAgain).not.toBe(traced);
    tracer.stopRecording();
    expect(t.translate(request(DEV, IOVA))).toBe(remembered);
    expect(caches.iotlb.hits).toBe(4);
  });
});

describe('VT-d translation: caching mode and the IOTLB', () => {
  it('a scalable second stage caches a not-present leaf (0x79) until the IOTLB invalidation of its page', () => {
    const rig = translationRig({ cachingMode: true });
    const ss = rig.secondStage(4);
    rig.pasidEntry(rig.scalableContext(DEV, { paside: true }), 1, {
      pgtt: PGTT.SECOND_STAGE,
      did: 5,
      ssptptr: ss.rootPa,
      aw: 2,
    });
    const t = rig.translator;
    expect(code(t.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(fr(FR.SM_SS_PERMISSION));
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    expect(code(t.translate(request(DEV, IOVA, PERM_WRITE, 1)))).toBe(fr(FR.SM_SS_PERMISSION));
    expect(rig.caches.iotlb.entries()).toEqual([
      { outputBase: 0, pageShift: 12, grants: 0, level: 0, dirty: false, notPresent: FR.SM_SS_PERMISSION },
    ]);
    rig.caches.invalidateIotlbPages(5, IOVA, 0x1000, true);
    expect(pfn(t.translate(request(DEV, IOVA, PERM_WRITE, 1)))).toBe(PA);
    expect(rig.caches.iotlb.entries()[0]).toMatchObject({ notPresent: 0, outputBase: PA });
  });

  it('never caches a not-present first-stage entry', () => {
    const rig = translationRig({ cachingMode: true });
    const fs = rig.firstStage(4);
    rig.pasidEntry(rig.scalableContext(DEV, { paside: true }), 1, {
      pgtt: PGTT.FIRST_STAGE,
      did: 5,
      fsptptr: fs.rootPa,
    });
    expect(code(rig.translator.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(fr(FR.SM_FS_NOT_PRESENT));
    fs.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    expect(pfn(rig.translator.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(PA);
  });

  it('without caching mode a not-present second-stage leaf is not cached', () => {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.READ_DENIED));
    expect(rig.caches.iotlb.size).toBe(0);
  });

  it('an input beyond the AGAW keeps its own reason after a not-present walk (nothing cached for it)', () => {
    const rig = translationRig({ cachingMode: true }, false);
    rig.legacyContext(DEV, { did: 7, slptptr: rig.secondStage(4).rootPa });
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.READ_DENIED));
    for (let i = 0; i < 2; i++)
      expect(code(rig.translator.translate(request(DEV, 2 ** 48)))).toBe(fr(FR.ADDRESS_BEYOND_MGAW));
    expect(rig.caches.iotlb.size).toBe(1);
  });
});

describe('VT-d translation: a unit without paging-structure caches', () => {
  it('walks every stage from its root', () => {
    const rig = translationRig();
    const GPA = 0x2_0000_0000;
    const fs = rig.firstStage(4);
    fs.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    fs.map(BigInt(IOVA + 0x1000), BigInt(GPA), 0x1000n, RW);
    const ss = rig.secondStage(4);
    ss.map(BigInt(RAM_BASE), BigInt(RAM_BASE), 0x40_0000n, RW);
    ss.map(BigInt(GPA), BigInt(PA + 0x5000), 0x1000n, RW);
    const dir = rig.scalableContext(DEV, { paside: true });
    rig.pasidEntry(dir, 1, { pgtt: PGTT.FIRST_STAGE, did: 3, fsptptr: fs.rootPa });
    rig.pasidEntry(dir, 2, { pgtt: PGTT.SECOND_STAGE, did: 4, ssptptr: ss.rootPa, aw: 2 });
    rig.pasidEntry(dir, 3, { pgtt: PGTT.NESTED, did: 5, fsptptr: fs.rootPa, ssptptr: ss.rootPa, aw: 2 });
    const { translator: t, caches } = translatorOver(rig, { pagingStructure: false });
    expect(pfn(t.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(PA);
    expect(pfn(t.translate(request(DEV, GPA, PERM_READ, 2)))).toBe(PA + 0x5000);
    expect(pfn(t.translate(request(DEV, IOVA + 0x1000, PERM_READ, 3)))).toBe(PA + 0x5000);
    expect(caches.stats()).toMatchObject({ firstStagePscMisses: 0, secondStagePscMisses: 0 });
  });
});
