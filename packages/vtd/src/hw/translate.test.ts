import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, type TranslationResult } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { RAM_BASE, RW, request, sid, translationRig } from '../../test/translation-rig.js';
import { FR } from './fault-reasons.js';
import { PGTT } from './pasid-entry.js';
import { TTM } from './regs.js';

const IOVA = 0x4000_0000;
const PA = 0x1_0020_0000;
const DEV = sid(3, 0x10);

const pfn = (r: TranslationResult) => (r.ok ? r.pfn * 4096 : `fault ${r.fault.vendorCode}`);
const code = (r: TranslationResult) => (r.ok ? 'ok' : r.fault.vendorCode);
const fr = (reason: number) => `DMAR_FR_0x${reason.toString(16).padStart(2, '0')}`;

describe('VT-d translation: disabled and abort-DMA', () => {
  it('passes requests untranslated while GSTS.TES = 0, and blocks them unrecorded in abort-DMA mode', () => {
    const rig = translationRig({ abortDmaMode: true });
    rig.setState({ enabled: false });
    expect(pfn(rig.translator.translate(request(DEV, IOVA)))).toBe(IOVA);
    rig.setState({ enabled: true, ttm: TTM.ABORT_DMA });
    const r = rig.translator.translate(request(DEV, IOVA));
    expect(code(r)).toBe('DMAR_ABORT_DMA_MODE');
    expect(rig.faults).toEqual([]);
  });
});

describe('VT-d translation: legacy mode (§3.4.1)', () => {
  function legacy() {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x2000n, RW);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa, aw: 2 });
    return { rig, ss };
  }

  it('translates through the second stage and caches the leaf in the IOTLB by DID', () => {
    const { rig } = legacy();
    expect(pfn(rig.translator.translate(request(DEV, IOVA + 0x1234, PERM_WRITE)))).toBe(PA + 0x1000);
    expect(rig.caches.iotlb.size).toBe(1);
    expect(rig.caches.iotlb.entries()[0]).toMatchObject({ outputBase: PA + 0x1000, pageShift: 12, level: 1 });
    expect(rig.faults).toEqual([]);
  });

  it('keeps a stale translation until the IOTLB invalidation of its domain or page', () => {
    const { rig, ss } = legacy();
    rig.translator.translate(request(DEV, IOVA));
    ss.unmap(BigInt(IOVA), 0x1000n);
    expect(pfn(rig.translator.translate(request(DEV, IOVA)))).toBe(PA);
    rig.caches.invalidateIotlbPages(8, IOVA, 0x1000, false);
    expect(pfn(rig.translator.translate(request(DEV, IOVA)))).toBe(PA);
    rig.caches.invalidateIotlbPages(7, IOVA, 0x1000, false);
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.READ_DENIED));
  });

  it('reports a not-present entry as the permission fault of the access, and records it', () => {
    const { rig } = legacy();
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x10_0000, PERM_WRITE)))).toBe(
      fr(FR.WRITE_DENIED),
    );
    expect(rig.faults).toEqual([
      {
        sid: DEV,
        address: IOVA + 0x10_0000,
        reason: FR.WRITE_DENIED,
        write: true,
        pasid: undefined,
        execute: false,
        privileged: false,
      },
    ]);
  });

  it('refuses a write to a read-only page (0x5) and an input beyond the AGAW (0x4)', () => {
    const { rig, ss } = legacy();
    ss.map(BigInt(IOVA + 0x20_0000), BigInt(PA), 0x1000n, { read: true, write: false });
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x20_0000, PERM_WRITE)))).toBe(
      fr(FR.WRITE_DENIED),
    );
    expect(pfn(rig.translator.translate(request(DEV, IOVA + 0x20_0000)))).toBe(PA);
    expect(code(rig.translator.translate(request(DEV, 2 ** 48)))).toBe(fr(FR.ADDRESS_BEYOND_MGAW));
  });

  it('root and context faults: not present, pass-through, a PASID request (0x31), FPD', () => {
    const { rig } = legacy();
    expect(code(rig.translator.translate(request(sid(4, 0), IOVA)))).toBe(fr(FR.ROOT_NOT_PRESENT));
    expect(code(rig.translator.translate(request(sid(3, 0x11), IOVA)))).toBe(fr(FR.CONTEXT_NOT_PRESENT));
    expect(code(rig.translator.translate(request(DEV, IOVA, PERM_READ, 5)))).toBe(
      fr(FR.SM_TTM0_PASID_REQUEST),
    );
    rig.legacyContext(sid(3, 0x12), { did: 9, tt: 2 });
    expect(pfn(rig.translator.translate(request(sid(3, 0x12), 0x1234_5000)))).toBe(0x1234_5000);
    rig.legacyContext(sid(3, 0x13), { did: 9, fpd: true, slptptr: rig.page() });
    const before = rig.faults.length;
    const r = rig.translator.translate(request(sid(3, 0x13), IOVA));
    expect(r.ok === false && [r.fault.vendorCode, r.fault.recorded]).toEqual([fr(FR.READ_DENIED), false]);
    expect(rig.faults.length).toBe(before);
  });

  it('refuses an output in the interrupt window (0xE)', () => {
    const { rig, ss } = legacy();
    ss.map(BigInt(IOVA + 0x40_0000), 0xfee0_0000n, 0x1000n, RW);
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x40_0000)))).toBe(fr(FR.INTERRUPT_ADDRESS));
  });
});

describe('VT-d translation: caching mode (§6.1)', () => {
  it('with CM = 1 a not-present context entry stays cached (faulting) until the context cache is invalidated', () => {
    const rig = translationRig({ cachingMode: true }, false);
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.ROOT_NOT_PRESENT));
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.ROOT_NOT_PRESENT));
    rig.caches.invalidateContextDevice(0, DEV, 0);
    expect(pfn(rig.translator.translate(request(DEV, IOVA)))).toBe(PA);
  });

  it('with CM = 1 a not-present second-stage leaf stays cached until the IOTLB invalidation of its page', () => {
    const rig = translationRig({ cachingMode: true }, false);
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA + 0x1000), BigInt(PA), 0x1000n, { read: true, write: false });
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.READ_DENIED));
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    // The cached not-present entry answers with the access's own flavour of the fault.
    expect(code(rig.translator.translate(request(DEV, IOVA, PERM_WRITE)))).toBe(fr(FR.WRITE_DENIED));
    rig.caches.invalidateIotlbPages(7, IOVA, 0x1000, true);
    expect(pfn(rig.translator.translate(request(DEV, IOVA)))).toBe(PA);
    // A present leaf the access may not use is a translation, not a not-present entry: a read still works.
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x1000, PERM_WRITE)))).toBe(fr(FR.WRITE_DENIED));
    expect(pfn(rig.translator.translate(request(DEV, IOVA + 0x1000)))).toBe(PA);
  });

  it('without CM a fixed entry is used at once', () => {
    const rig = translationRig({}, false);
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.ROOT_NOT_PRESENT));
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    expect(pfn(rig.translator.translate(request(DEV, IOVA)))).toBe(PA);
  });
});

describe('VT-d translation: scalable mode (§3.4.3)', () => {
  function scalable() {
    const rig = translationRig();
    const fs = rig.firstStage(4);
    fs.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    fs.map(BigInt(IOVA + 0x1000), BigInt(PA + 0x1000), 0x1000n, { read: true, write: false });
    const dir = rig.scalableContext(DEV, { paside: true, ridPasid: 0 });
    rig.pasidEntry(dir, 0, { pgtt: PGTT.FIRST_STAGE, did: 3, fsptptr: fs.rootPa, sre: true });
    rig.pasidEntry(dir, 9, { pgtt: PGTT.FIRST_STAGE, did: 4, fsptptr: fs.rootPa });
    return { rig, fs, dir };
  }

  it('a request without PASID uses RID_PASID; first-stage leaves are cached by DID and PASID', () => {
    const { rig } = scalable();
    expect(pfn(rig.translator.translate(request(DEV, IOVA)))).toBe(PA);
    expect(pfn(rig.translator.translate(request(DEV, IOVA, PERM_READ, 9)))).toBe(PA);
    expect(rig.caches.iotlb.size).toBe(2);
  });

  it('first-stage permissions: write to read-only (0x85), supervisor request without SRE (0x5D), user page rules', () => {
    const { rig } = scalable();
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x1000, PERM_WRITE, 9)))).toBe(
      fr(FR.SM_WRITE_DENIED),
    );
    expect(code(rig.translator.translate(request(DEV, IOVA, PERM_READ | PERM_PRIV, 9)))).toBe(
      fr(FR.SM_PASID_SRE_CLEAR),
    );
    // IoPageTable maps user-accessible pages; a supervisor request through PASID 0 (SRE = 1) may use them.
    expect(pfn(rig.translator.translate(request(DEV, IOVA, PERM_READ | PERM_PRIV, 0)))).toBe(PA);
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x10_0000, PERM_READ, 9)))).toBe(
      fr(FR.SM_FS_NOT_PRESENT),
    );
    expect(code(rig.translator.translate(request(DEV, 2 ** 47, PERM_READ, 9)))).toBe(fr(FR.SM_NON_CANONICAL));
    // The whole lower canonical half is reachable: just below 2^47 is an ordinary not-present page.
    expect(code(rig.translator.translate(request(DEV, 2 ** 47 - 4096, PERM_READ, 9)))).toBe(
      fr(FR.SM_FS_NOT_PRESENT),
    );
  });

  it('a stale first-stage leaf goes with the PASID-based invalidation, or with any IOTLB one of its DID (§6.5.2.3)', () => {
    for (const invalidate of [
      (rig: ReturnType<typeof scalable>['rig']) => rig.caches.invalidatePasidIotlb(4, 9),
      (rig: ReturnType<typeof scalable>['rig']) =>
        rig.caches.invalidateIotlbPages(4, 0x7000_0000, 4096, true),
    ]) {
      const { rig, fs } = scalable();
      rig.translator.translate(request(DEV, IOVA, PERM_READ, 9));
      fs.unmap(BigInt(IOVA), 0x1000n);
      rig.caches.invalidateIotlbDomain(5);
      expect(pfn(rig.translator.translate(request(DEV, IOVA, PERM_READ, 9)))).toBe(PA);
      invalidate(rig);
      expect(code(rig.translator.translate(request(DEV, IOVA, PERM_READ, 9)))).toBe(fr(FR.SM_FS_NOT_PRESENT));
    }
  });

  it('second-stage-only and pass-through PASID entries', () => {
    const { rig, dir } = scalable();
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA + 0x5000), 0x1000n, RW);
    rig.pasidEntry(dir, 10, { pgtt: PGTT.SECOND_STAGE, did: 5, ssptptr: ss.rootPa, aw: 2 });
    rig.pasidEntry(dir, 11, { pgtt: PGTT.PASS_THROUGH, did: 5 });
    expect(pfn(rig.translator.translate(request(DEV, IOVA, PERM_WRITE, 10)))).toBe(PA + 0x5000);
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x1000, PERM_READ, 10)))).toBe(
      fr(FR.SM_SS_PERMISSION),
    );
    expect(pfn(rig.translator.translate(request(DEV, 0x7777_7000, PERM_READ, 11)))).toBe(0x7777_7000);
  });

  it('nested: the first-stage tables and output are GPAs walked through the second stage', () => {
    const { rig, dir } = scalable();
    const GPA = 0x2_0000_0000;
    const fs = rig.firstStage(4);
    fs.map(BigInt(IOVA), BigInt(GPA), 0x1000n, RW);
    const ss = rig.secondStage(4);
    // The guest's tables are where the host put them: RAM is identity-mapped, the data page is not.
    ss.map(BigInt(RAM_BASE), BigInt(RAM_BASE), 0x40_0000n, RW);
    ss.map(BigInt(GPA), BigInt(PA + 0x7000), 0x1000n, RW);
    rig.pasidEntry(dir, 12, { pgtt: PGTT.NESTED, did: 6, fsptptr: fs.rootPa, ssptptr: ss.rootPa, aw: 2 });
    expect(pfn(rig.translator.translate(request(DEV, IOVA + 0x10, PERM_WRITE, 12)))).toBe(PA + 0x7000);
    // The first-stage output the second stage does not map is a second-stage fault.
    fs.map(BigInt(IOVA + 0x1000), BigInt(GPA + 0x1000), 0x1000n, RW);
    expect(code(rig.translator.translate(request(DEV, IOVA + 0x1000, PERM_READ, 12)))).toBe(
      fr(FR.SM_SS_PERMISSION),
    );
  });

  it('nested: the first-stage table fetches go through the second-stage paging-structure cache too', () => {
    const { rig, dir } = scalable();
    const fs = rig.firstStage(4);
    fs.map(BigInt(IOVA), BigInt(RAM_BASE + 0x10_0000), 0x1000n, RW);
    const ss = rig.secondStage(4);
    // One 2 MiB leaf: every second-stage walk of this test ends at the same level-2 entry.
    ss.map(BigInt(RAM_BASE), BigInt(RAM_BASE), 0x20_0000n, RW);
    rig.pasidEntry(dir, 12, { pgtt: PGTT.NESTED, did: 6, fsptptr: fs.rootPa, ssptptr: ss.rootPa, aw: 2 });
    rig.translator.translate(request(DEV, IOVA, PERM_READ, 12));
    // The context and PASID entries stay cached; the translations and both paging-structure caches go.
    rig.caches.invalidateIotlbDomain(6);
    const counter = rig.bus.counter('vtd');
    const before = counter.reads;
    expect(pfn(rig.translator.translate(request(DEV, IOVA + 0x10, PERM_READ, 12)))).toBe(
      RAM_BASE + 0x10_0000,
    );
    // 4 first-stage reads; the first second-stage walk (the FS root) reads 3 levels and fills the cache, the
    // other three tables and the output then read their leaf only: 4 + 3 + 4 × 1 (19 if the table fetches
    // bypassed the cache).
    expect(counter.reads - before).toBe(11);
  });

  it('nested: a second stage that maps the first-stage tables read-only refuses the D update of a write (0x77)', () => {
    const { rig, dir } = scalable();
    const fs = rig.firstStage(4, true);
    fs.map(BigInt(IOVA), BigInt(0x2_0000_0000), 0x1000n, RW);
    const ss = rig.secondStage(4);
    ss.map(BigInt(RAM_BASE), BigInt(RAM_BASE), 0x40_0000n, { read: true, write: false });
    rig.pasidEntry(dir, 13, { pgtt: PGTT.NESTED, did: 6, fsptptr: fs.rootPa, ssptptr: ss.rootPa, aw: 2 });
    expect(code(rig.translator.translate(request(DEV, IOVA, PERM_WRITE, 13)))).toBe(
      fr(FR.SM_NESTED_FS_WRITE),
    );
  });
});

describe('VT-d translation: the hit memo', () => {
  it('answers a repeated hit with the same result object and the same cache counters', () => {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    const first = rig.translator.translate(request(DEV, IOVA));
    const second = rig.translator.translate(request(DEV, IOVA));
    const third = rig.translator.translate(request(DEV, IOVA));
    expect(third).toBe(second);
    expect(first).toEqual(second);
    expect(rig.caches.iotlb.hits).toBe(2);
    expect(rig.caches.context.hits).toBe(2);
    expect(rig.translator.translate(request(DEV, IOVA, PERM_EXEC))).toEqual(first);
  });
});

describe('VT-d translation: the translation table mode (RTADDR.TTM)', () => {
  it('TTM 10, abort-DMA without ECAP.ADMS and scalable mode on a legacy unit: 0x30, recorded', () => {
    const rig = translationRig({}, false);
    rig.legacyContext(DEV, { did: 1, tt: 2 });
    for (const ttm of [0b10, TTM.ABORT_DMA]) {
      rig.setState({ ttm });
      expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.SM_ROOT_TABLE_ADDRESS));
    }
    rig.setState({ ttm: TTM.LEGACY });
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe('ok');
    const legacyUnit = translationRig({ scalableMode: false }, false);
    legacyUnit.setState({ ttm: TTM.SCALABLE });
    expect(code(legacyUnit.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.SM_ROOT_TABLE_ADDRESS));
    expect([rig.faults.length, legacyUnit.faults.length]).toEqual([2, 1]);
  });

  it('a unit with abort-DMA mode translates as usual in legacy mode', () => {
    const rig = translationRig({ abortDmaMode: true }, false);
    rig.legacyContext(DEV, { did: 1, tt: 2 });
    expect(pfn(rig.translator.translate(request(DEV, IOVA)))).toBe(IOVA);
  });

  it('an untranslated request beyond the host address width faults 0x83 (recorded)', () => {
    const rig = translationRig({}, false);
    rig.setState({ enabled: false });
    expect(pfn(rig.translator.translate(request(DEV, 2 ** 48 - 4096)))).toBe(2 ** 48 - 4096);
    const r = rig.translator.translate(request(DEV, 2 ** 48));
    expect(r.ok === false && [r.fault.vendorCode, r.fault.recorded]).toEqual([
      fr(FR.SM_ADDRESS_BEYOND_MAX),
      true,
    ]);
  });
});

describe('VT-d translation: scalable-mode request checks', () => {
  function unit() {
    const rig = translationRig({ executeRequests: true });
    const fs = rig.firstStage(4);
    fs.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    fs.map(BigInt(IOVA + 0x1000), BigInt(PA + 0x1000), 0x1000n, { read: true, write: false, exec: true });
    return { rig, fs };
  }

  it('a request without PASID uses RID_PASID even with PASIDE = 0; one with a PASID then faults 0x45', () => {
    const { rig, fs } = unit();
    const dir = rig.scalableContext(DEV, { paside: false, ridPasid: 5 });
    rig.pasidEntry(dir, 5, { pgtt: PGTT.FIRST_STAGE, did: 3, fsptptr: fs.rootPa });
    expect(pfn(rig.translator.translate(request(DEV, IOVA)))).toBe(PA);
    expect(code(rig.translator.translate(request(DEV, IOVA, PERM_READ, 5)))).toBe(
      fr(FR.SM_CONTEXT_PASIDE_CLEAR),
    );
    expect(code(rig.translator.translate(request(DEV, IOVA, PERM_READ, 6)))).toBe(
      fr(FR.SM_CONTEXT_PASIDE_CLEAR),
    );
  });

  it('RID_PRIV gives a request without PASID its privilege (SRE = 0: 0x5D)', () => {
    const { rig, fs } = unit();
    const dir = rig.scalableContext(DEV, { paside: true, ridPasid: 0, ridPriv: true });
    rig.pasidEntry(dir, 0, { pgtt: PGTT.FIRST_STAGE, did: 3, fsptptr: fs.rootPa });
    expect(code(rig.translator.translate(request(DEV, IOVA)))).toBe(fr(FR.SM_PASID_SRE_CLEAR));
    // The PRIV bit of a request without PASID means nothing: RID_PRIV decides.
    const other = sid(3, 0x11);
    rig.pasidEntry(rig.scalableContext(other, { paside: true, ridPasid: 0 }), 0, {
      pgtt: PGTT.FIRST_STAGE,
      did: 3,
      fsptptr: fs.rootPa,
    });
    expect(pfn(rig.translator.translate(request(other, IOVA, PERM_READ | PERM_PRIV)))).toBe(PA);
  });

  it('execute requests: ERE = 0 refuses them (0x5C), XD pages too (0x82); with the write bit none is one', () => {
    const { rig, fs } = unit();
    const dir = rig.scalableContext(DEV, { paside: true });
    rig.pasidEntry(dir, 1, { pgtt: PGTT.FIRST_STAGE, did: 3, fsptptr: fs.rootPa });
    rig.pasidEntry(dir, 2, { pgtt: PGTT.FIRST_STAGE, did: 4, fsptptr: fs.rootPa, ere: true });
    const t = rig.translator;
    expect(code(t.translate(request(DEV, IOVA + 0x1000, PERM_EXEC, 1)))).toBe(fr(FR.SM_PASID_ERE_CLEAR));
    expect(pfn(t.translate(request(DEV, IOVA, PERM_EXEC | PERM_WRITE, 1)))).toBe(PA);
    expect(code(t.translate(request(DEV, IOVA, PERM_EXEC, 2)))).toBe(fr(FR.SM_EXECUTE_DENIED));
    const r = t.translate(request(DEV, IOVA + 0x1000, PERM_EXEC | PERM_READ, 2));
    expect(r.ok && r.perm).toBe(PERM_READ | PERM_EXEC);
  });
});

describe('VT-d translation: answers from the IOTLB', () => {
  it('a hit inside a large page keeps the offset', () => {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x20_0000n, RW);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    expect(pfn(rig.translator.translate(request(DEV, IOVA + 0x3000)))).toBe(PA + 0x3000);
    const hit = rig.translator.translate(request(DEV, IOVA + 0x1_5000, PERM_WRITE));
    expect(hit).toEqual({
      ok: true,
      pfn: (PA + 0x1_5000) / 4096,
      perm: PERM_READ | PERM_WRITE | PERM_EXEC,
      pageShift: 21,
    });
    expect([rig.caches.iotlb.hits, rig.translator.walker.walks]).toEqual([1, 1]);
  });

  it('checks permissions on a hit: read-only (0x5), write-only (0x6) in legacy mode', () => {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, { read: true, write: false });
    ss.map(BigInt(IOVA + 0x1000), BigInt(PA), 0x1000n, { read: false, write: true });
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    const t = rig.translator;
    expect(pfn(t.translate(request(DEV, IOVA)))).toBe(PA);
    expect(code(t.translate(request(DEV, IOVA, PERM_WRITE)))).toBe(fr(FR.WRITE_DENIED));
    expect(pfn(t.translate(request(DEV, IOVA + 0x1000, PERM_WRITE)))).toBe(PA);
    expect(code(t.translate(request(DEV, IOVA + 0x1000)))).toBe(fr(FR.READ_DENIED));
    expect([rig.caches.iotlb.hits, t.walker.walks]).toEqual([2, 2]);
  });

  it('checks the privilege on a first-stage hit (0x81)', () => {
    const rig = translationRig();
    const fs = rig.firstStage(4);
    fs.map(BigInt(IOVA), BigInt(PA), 0x1000n, { read: true, write: true, priv: true });
    const dir = rig.scalableContext(DEV, { paside: true });
    rig.pasidEntry(dir, 1, { pgtt: PGTT.FIRST_STAGE, did: 3, fsptptr: fs.rootPa, sre: true });
    const t = rig.translator;
    expect(pfn(t.translate(request(DEV, IOVA, PERM_READ | PERM_PRIV, 1)))).toBe(PA);
    expect(code(t.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(fr(FR.SM_USER_SUPERVISOR));
    expect([rig.caches.iotlb.hits, t.walker.walks]).toEqual([1, 1]);
  });

  it('legacy leaves are cached dirty: a write after a read needs no walk', () => {
    const rig = translationRig({}, false);
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa });
    rig.translator.translate(request(DEV, IOVA));
    expect(pfn(rig.translator.translate(request(DEV, IOVA, PERM_WRITE)))).toBe(PA);
    expect(rig.translator.walker.walks).toBe(1);
  });

  it('with A/D tracking a leaf read first is cached clean: the first write walks to set D, later ones hit', () => {
    for (const stage of ['first', 'second'] as const) {
      const rig = translationRig();
      const dir = rig.scalableContext(DEV, { paside: true });
      const table = stage === 'first' ? rig.firstStage(4, true) : rig.secondStage(4, true);
      table.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
      rig.pasidEntry(
        dir,
        1,
        stage === 'first'
          ? { pgtt: PGTT.FIRST_STAGE, did: 3, fsptptr: table.rootPa }
          : { pgtt: PGTT.SECOND_STAGE, did: 3, ssptptr: table.rootPa, aw: 2, ssade: true },
      );
      const t = rig.translator;
      const dirty = () => {
        const pages: bigint[] = [];
        table.readAndClearDirty(BigInt(IOVA), 0x1000n, (iova) => pages.push(iova), { clear: false });
        return pages.length;
      };
      expect(pfn(t.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(PA);
      expect(pfn(t.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(PA);
      expect([t.walker.walks, dirty()]).toEqual([1, 0]);
      expect(pfn(t.translate(request(DEV, IOVA, PERM_WRITE, 1)))).toBe(PA);
      expect([t.walker.walks, dirty()]).toEqual([2, 1]);
      expect(pfn(t.translate(request(DEV, IOVA + 8, PERM_WRITE, 1)))).toBe(PA);
      expect(t.walker.walks).toBe(2);
    }
  });

  it('a second-stage-only PASID entry without SSADE caches its leaves dirty', () => {
    const rig = translationRig();
    const ss = rig.secondStage(4);
    ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
    rig.pasidEntry(rig.scalableContext(DEV, { paside: true }), 1, {
      pgtt: PGTT.SECOND_STAGE,
      did: 3,
      ssptptr: ss.rootPa,
      aw: 2,
    });
    rig.translator.translate(request(DEV, IOVA, PERM_READ, 1));
    rig.translator.translate(request(DEV, IOVA, PERM_WRITE, 1));
    expect(rig.translator.walker.walks).toBe(1);
  });

  it('refuses a first-stage output in the interrupt window (0x87), and only there', () => {
    const rig = translationRig();
    const fs = rig.firstStage(4);
    fs.map(BigInt(IOVA), 0xfee0_0000n, 0x1000n, RW);
    fs.map(BigInt(IOVA + 0x1000), 0xfeef_f000n, 0x1000n, RW);
    fs.map(BigInt(IOVA + 0x2000), 0xfef0_0000n, 0x1000n, RW);
    fs.map(BigInt(IOVA + 0x3000), 0xfedf_f000n, 0x1000n, RW);
    rig.pasidEntry(rig.scalableContext(DEV, { paside: true }), 1, {
      pgtt: PGTT.FIRST_STAGE,
      did: 3,
      fsptptr: fs.rootPa,
    });
    const t = rig.translator;
    expect(code(t.translate(request(DEV, IOVA, PERM_READ, 1)))).toBe(fr(FR.SM_INTERRUPT_ADDRESS));
    expect(code(t.translate(request(DEV, IOVA + 0x1000, PERM_READ, 1)))).toBe(fr(FR.SM_INTERRUPT_ADDRESS));
    expect(pfn(t.translate(request(DEV, IOVA + 0x2000, PERM_READ, 1)))).toBe(0xfef0_0000);
    expect(pfn(t.translate(request(DEV, IOVA + 0x3000, PERM_READ, 1)))).toBe(0xfedf_f000);
  });

  it('nested: the smaller page of the two stages, and only what both grant', () => {
    const rig = translationRig();
    const GPA = 0x2_0000_0000;
    const fs = rig.firstStage(4);
    fs.map(BigInt(IOVA), BigInt(GPA), 0x20_0000n, RW);
    const ss = rig.secondStage(4);
    ss.map(BigInt(RAM_BASE), BigInt(RAM_BASE), 0x40_0000n, RW);
    ss.map(BigInt(GPA), BigInt(PA + 0x7000), 0x1000n, { read: true, write: false });
    ss.map(BigInt(GPA + 0x1000), BigInt(PA + 0x3000), 0x1000n, RW);
    rig.pasidEntry(rig.scalableContext(DEV, { paside: true }), 1, {
      pgtt: PGTT.NESTED,
      did: 6,
      fsptptr: fs.rootPa,
      ssptptr: ss.rootPa,
      aw: 2,
    });
    const t = rig.translator;
    expect(t.translate(request(DEV, IOVA + 0x10, PERM_READ, 1))).toEqual({
      ok: true,
      pfn: (PA + 0x7000) / 4096,
      perm: PERM_READ,
      pageShift: 12,
    });
    expect(pfn(t.translate(request(DEV, IOVA + 0x1010, PERM_READ, 1)))).toBe(PA + 0x3000);
    expect(pfn(t.translate(request(DEV, IOVA + 0x1010, PERM_READ, 1)))).toBe(PA + 0x3000);
    expect(rig.caches.iotlb.entries().map((e) => e.pageShift)).toEqual([12, 12]);
  });
});
