import { PERM_READ, type TranslationResult } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { RW, request, sid, translationRig } from '../../test/translation-rig.js';
import {
  type ConfigFault,
  contextDid,
  type LegacyContext,
  type PasidConfig,
  pasidDid,
  type ScalableContext,
} from './config-fetch.js';
import { FR } from './fault-reasons.js';
import { encodePasidDirEntry, PGTT, pasidDirEntryAddress } from './pasid-entry.js';
import { encodeLegacyRootEntry, encodeScalableRootEntry, rootEntryAddress } from './root-context.js';

const DEV = sid(3, 0x10);
const IOVA = 0x4000_0000;
const PA = 0x1_0020_0000;
const HOLE = 0x8000_0000; // no RAM: a read there aborts

const code = (r: TranslationResult) => (r.ok ? 'ok' : r.fault.vendorCode);
const fr = (reason: number) => `DMAR_FR_0x${reason.toString(16).padStart(2, '0')}`;

describe('the DID a cached configuration is tagged with', () => {
  it('legacy context: its DID; scalable context: none (-1); PASID entry: its DID; a fault: DID 0', () => {
    const fault: ConfigFault = { kind: 'fault', reason: FR.CONTEXT_NOT_PRESENT, fpd: false };
    expect(contextDid({ kind: 'legacy', did: 7 } as LegacyContext)).toBe(7);
    expect(contextDid({ kind: 'scalable' } as ScalableContext)).toBe(-1);
    expect(contextDid(fault)).toBe(0);
    expect(pasidDid({ kind: 'pasid', did: 9 } as PasidConfig)).toBe(9);
    expect(pasidDid(fault)).toBe(0);
  });
});

describe('root and context fetch', () => {
  it('a root table that cannot be read: 0x8 legacy, 0x38 scalable, both recorded', () => {
    for (const scalable of [false, true]) {
      const rig = translationRig({}, scalable);
      rig.setState({ rootTable: HOLE });
      expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(
        fr(scalable ? FR.SM_ROOT_ACCESS : FR.ROOT_TABLE_ACCESS),
      );
      expect(rig.faults.length).toBe(1);
    }
  });

  it('a context table that cannot be read: 0x9 legacy, 0x40 scalable', () => {
    const legacy = translationRig({}, false);
    legacy.write(rootEntryAddress(legacy.rootTable, 3), encodeLegacyRootEntry({ p: true, ctp: HOLE }));
    expect(code(legacy.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.CONTEXT_TABLE_ACCESS));
    const scalable = translationRig();
    scalable.write(
      rootEntryAddress(scalable.rootTable, 3),
      encodeScalableRootEntry({ lp: true, lctp: HOLE }),
    );
    expect(code(scalable.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.SM_CONTEXT_ACCESS));
  });

  it('legacy: TT selects pass-through or translation (Device-TLB allowed with TT = 01), without A/D', () => {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    rig.legacyContext(sid(3, 1), { did: 1, tt: 0, slptptr: ss.rootPa });
    rig.legacyContext(sid(3, 2), { did: 2, tt: 1, slptptr: ss.rootPa });
    rig.legacyContext(sid(3, 3), { did: 3, tt: 2 });
    const context = (source: number) =>
      rig.translator.config.context(source, rig.rootTable, false) as LegacyContext;
    expect(context(sid(3, 1))).toMatchObject({
      kind: 'legacy',
      did: 1,
      passThrough: false,
      deviceTlb: false,
    });
    expect(context(sid(3, 2))).toMatchObject({ kind: 'legacy', did: 2, passThrough: false, deviceTlb: true });
    expect(context(sid(3, 3))).toMatchObject({ passThrough: true, deviceTlb: false, secondStage: undefined });
    // Legacy second-stage tables have no accessed/dirty flags.
    expect(context(sid(3, 1)).secondStage!.accessedDirty).toBe(false);
    expect(context(sid(3, 2)).secondStage).toBe(context(sid(3, 1)).secondStage);
  });

  it('scalable: a context entry that is not present is 0x41; a present one is cached until invalidated', () => {
    const rig = translationRig();
    rig.contextTable(3, true);
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.SM_CONTEXT_NOT_PRESENT));
    const dir = rig.scalableContext(DEV, { paside: true });
    rig.pasidEntry(dir, 0, { pgtt: PGTT.PASS_THROUGH, did: 4 });
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe('ok');
    // RID_PASID moved to an absent PASID: the cached context entry still names PASID 0.
    rig.scalableContext(DEV, { paside: true, pasidDirPtr: dir, ridPasid: 5 });
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x1000)))).toBe('ok');
    // A scalable-mode context entry carries no DID: a domain-selective invalidation of any DID reaches it.
    rig.caches.invalidateContextDomain(1234);
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x2000)))).toBe(fr(FR.SM_PASID_NOT_PRESENT));
  });
});

describe('PASID fetch', () => {
  function scalable(options = {}) {
    const rig = translationRig(options);
    const dir = rig.scalableContext(DEV, { paside: true });
    const context = () => rig.translator.config.context(DEV, rig.rootTable, true) as ScalableContext;
    const pasid = (p: number) => rig.translator.config.pasid(DEV, p, context());
    return { rig, dir, context, pasid };
  }

  it('directory entry not present 0x51, PASID entry not present 0x59', () => {
    const { rig, dir, pasid } = scalable();
    expect(pasid(100)).toEqual({ kind: 'fault', reason: FR.SM_PASID_DIR_NOT_PRESENT, fpd: false });
    rig.pasidEntry(dir, 1, { pgtt: PGTT.PASS_THROUGH, did: 4 });
    expect(pasid(2)).toEqual({ kind: 'fault', reason: FR.SM_PASID_NOT_PRESENT, fpd: false });
  });

  it('FPD in the directory or the PASID entry suppresses the faults found through it', () => {
    const { rig, dir, pasid } = scalable();
    const table = rig.page();
    rig.write(
      pasidDirEntryAddress(dir, 64),
      encodePasidDirEntry({ p: true, fpd: true, pasidTablePtr: table }),
    );
    expect(pasid(64)).toEqual({ kind: 'fault', reason: FR.SM_PASID_NOT_PRESENT, fpd: true });
    rig.pasidEntry(dir, 3, { pgtt: PGTT.FIRST_STAGE, did: 4, fsptptr: rig.firstStage().rootPa, fpd: true });
    rig.pasidEntry(dir, 4, { pgtt: PGTT.FIRST_STAGE, did: 4, fsptptr: rig.firstStage().rootPa });
    expect(pasid(3)).toMatchObject({ kind: 'pasid', fpd: true });
    expect(pasid(4)).toMatchObject({ kind: 'pasid', fpd: false });
    const t = rig.translator;
    const fault = (p: number) => {
      const r = t.translate(request(DEV, IOVA, PERM_READ, p));
      return r.ok ? 'ok' : [r.fault.vendorCode, r.fault.recorded];
    };
    expect(fault(64)).toEqual([fr(FR.SM_PASID_NOT_PRESENT), false]);
    expect(fault(3)).toEqual([fr(FR.SM_FS_NOT_PRESENT), false]);
    expect(fault(4)).toEqual([fr(FR.SM_FS_NOT_PRESENT), true]);
    expect(rig.faults.map((f) => f.pasid)).toEqual([4]);
  });

  it('decodes the formats of the stages PGTT selects, each built once per encoding', () => {
    const { rig, dir, pasid } = scalable({ sagaw: [3, 4, 5] });
    const fs = rig.firstStage().rootPa;
    const ss = rig.secondStage().rootPa;
    rig.pasidEntry(dir, 1, { pgtt: PGTT.FIRST_STAGE, did: 1, fsptptr: fs });
    rig.pasidEntry(dir, 2, { pgtt: PGTT.SECOND_STAGE, did: 1, ssptptr: ss, aw: 2 });
    rig.pasidEntry(dir, 3, { pgtt: PGTT.NESTED, did: 1, fsptptr: fs, ssptptr: ss, aw: 2 });
    rig.pasidEntry(dir, 4, { pgtt: PGTT.PASS_THROUGH, did: 1 });
    rig.pasidEntry(dir, 5, { pgtt: PGTT.FIRST_STAGE, did: 2, fsptptr: fs });
    rig.pasidEntry(dir, 6, { pgtt: PGTT.SECOND_STAGE, did: 2, ssptptr: ss, aw: 2 });
    const config = (p: number) => pasid(p) as PasidConfig;
    expect(config(1)).toMatchObject({
      kind: 'pasid',
      did: 1,
      pgtt: PGTT.FIRST_STAGE,
      secondStage: undefined,
    });
    expect(config(2)).toMatchObject({ pgtt: PGTT.SECOND_STAGE, firstStage: undefined });
    expect(config(4)).toMatchObject({
      pgtt: PGTT.PASS_THROUGH,
      firstStage: undefined,
      secondStage: undefined,
    });
    expect(config(3).firstStage).toBe(config(1).firstStage);
    expect(config(3).secondStage).toBe(config(2).secondStage);
    expect(config(5).firstStage).toBe(config(1).firstStage);
    expect(config(6).secondStage).toBe(config(2).secondStage);
    expect(config(1).firstStage!.startLevel).toBe(4);
    expect(config(2).secondStage).toMatchObject({ startLevel: 4, accessedDirty: false });
  });

  it('a second-stage format per depth and SSADE', () => {
    const { rig, dir, pasid } = scalable({ sagaw: [3, 4, 5] });
    const ss = rig.secondStage().rootPa;
    const encodings = [
      [1, false],
      [1, true],
      [2, false],
      [2, true],
      [3, false],
      [3, true],
    ] as const;
    encodings.forEach(([aw, ssade], i) => {
      rig.pasidEntry(dir, 10 + i, { pgtt: PGTT.SECOND_STAGE, did: 1, ssptptr: ss, aw, ssade });
    });
    const formats = encodings.map((_, i) => (pasid(10 + i) as PasidConfig).secondStage!);
    expect(formats.map((f) => [f.startLevel, f.accessedDirty])).toEqual(
      encodings.map(([aw, ssade]) => [aw + 2, ssade]),
    );
    expect(new Set(formats).size).toBe(6);
  });

  it('a first-stage format per depth, WPE and EAFE', () => {
    const { rig, dir, pasid } = scalable();
    const fs = rig.firstStage().rootPa;
    const encodings: [number, boolean, boolean][] = [];
    for (const flpm of [0, 1])
      for (const wpe of [false, true]) for (const eafe of [false, true]) encodings.push([flpm, wpe, eafe]);
    encodings.forEach(([flpm, wpe, eafe], i) => {
      rig.pasidEntry(dir, 20 + i, { pgtt: PGTT.FIRST_STAGE, did: 1, fsptptr: fs, flpm, wpe, eafe });
    });
    const formats = encodings.map((_, i) => (pasid(20 + i) as PasidConfig).firstStage!);
    expect(formats.map((f) => [f.startLevel, f.rules.supervisorWriteProtect, f.extendedAccessed])).toEqual(
      encodings.map(([flpm, wpe, eafe]) => [flpm === 1 ? 5 : 4, wpe, eafe]),
    );
    expect(new Set(formats).size).toBe(8);
  });

  it('keeps a usable PASID entry until a PASID-cache invalidation of its DID', () => {
    const { rig, dir } = scalable();
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    rig.pasidEntry(dir, 7, { pgtt: PGTT.SECOND_STAGE, did: 5, ssptptr: ss.rootPa, aw: 2 });
    const t = rig.translator;
    expect(code(t.translate(request(DEV, IOVA, PERM_READ, 7)))).toBe('ok');
    rig.pasidEntry(dir, 7, { p: false });
    expect(code(t.translate(request(DEV, IOVA, PERM_READ, 7)))).toBe('ok');
    rig.caches.invalidatePasidDomain(6);
    expect(code(t.translate(request(DEV, IOVA, PERM_READ, 7)))).toBe('ok');
    rig.caches.invalidatePasidDomain(5);
    expect(code(t.translate(request(DEV, IOVA, PERM_READ, 7)))).toBe(fr(FR.SM_PASID_NOT_PRESENT));
  });

  it('caches a faulting PASID entry only in caching mode (tagged DID 0)', () => {
    for (const cachingMode of [false, true]) {
      const { rig, dir } = scalable({ cachingMode });
      const t = rig.translator;
      rig.pasidEntry(dir, 1, { p: false });
      expect(code(t.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(fr(FR.SM_PASID_NOT_PRESENT));
      rig.pasidEntry(dir, 1, { pgtt: PGTT.PASS_THROUGH, did: 5 });
      expect(code(t.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(
        cachingMode ? fr(FR.SM_PASID_NOT_PRESENT) : 'ok',
      );
      rig.caches.invalidatePasidDomain(0);
      expect(code(t.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe('ok');
    }
  });
});
