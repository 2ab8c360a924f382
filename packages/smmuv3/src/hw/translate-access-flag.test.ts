/**
 * The Access flag and hardware updates of descriptors: CD.AFFD and STE.S2AFFD (an AF of 0 faults with the
 * flag clear and is used as 1 with it set, unless HA/S2HA update it; §5.4 AFFD, §5.2 S2AFFD, §3.13.1), and
 * HTTU in a nested configuration, where a stage-1 descriptor update writes the descriptor's IPA and so
 * needs stage-2 write permission (§3.13.5; F_PERMISSION with CLASS = TT and TTRnW, §7.3.16).
 */
import { PERM_READ, PERM_WRITE } from '@iommukit/core';
import { HI_DBM, LO_AF, LO_AP1_S2AP_R, LO_AP2_S2AP_W, LO_NG } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import {
  IOVA,
  IPA,
  NESTED_STREAM,
  OUT,
  S1_STREAM,
  S2_STREAM,
  translationRig,
} from '../../test/translation-rig.js';
import { encodeCmdSync, encodeTlbiNhAsid } from './commands.js';
import { EVENT_CLASS, EVENT_ID } from './events.js';

const RW = { read: true, write: true } as const;

const clearAf = (lo: number, hi: number): [number, number] => [lo & ~LO_AF, hi];
const afOf = (lo: number) => (lo & LO_AF) !== 0;

describe('CD.AFFD: an Access flag of 0 at stage 1 (§5.4)', () => {
  function stage1(cd: { affd: boolean; ha: boolean }) {
    const rig = translationRig();
    rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, RW);
    const leaf = rig.leafAddress(1, IOVA);
    rig.editDescriptor(leaf, clearAf);
    rig.s1Stream(cd);
    return { rig, leaf };
  }

  it('AFFD = 0, HA = 0: F_ACCESS, stage 1, CLASS IN', () => {
    const { rig } = stage1({ affd: false, ha: false });
    expect(rig.translate(S1_STREAM, IOVA, PERM_READ)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_ACCESS' },
    });
    expect(rig.records()).toMatchObject([{ id: EVENT_ID.F_ACCESS, s2: false, class: EVENT_CLASS.IN }]);
  });

  it('AFFD = 1, HA = 0: the descriptor is used as if AF were 1 and left as it is', () => {
    const { rig, leaf } = stage1({ affd: true, ha: false });
    expect(rig.translate(S1_STREAM, IOVA, PERM_WRITE)).toMatchObject({ ok: true, pfn: OUT / 4096 });
    expect(afOf(rig.readDescriptor(leaf)[0])).toBe(false);
    expect(rig.records()).toEqual([]);
  });

  it('HA = 1: AFFD is IGNORED, the SMMU sets AF', () => {
    const { rig, leaf } = stage1({ affd: true, ha: true });
    expect(rig.translate(S1_STREAM, IOVA, PERM_READ)).toMatchObject({ ok: true });
    expect(afOf(rig.readDescriptor(leaf)[0])).toBe(true);
  });
});

describe('STE.S2AFFD: an Access flag of 0 at stage 2 (§5.2)', () => {
  function stage2(ste: { s2Affd: boolean; s2Ha: boolean }) {
    const rig = translationRig();
    rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RW);
    const leaf = rig.leafAddress(2, IPA);
    rig.editDescriptor(leaf, clearAf);
    rig.s2Stream(ste);
    return { rig, leaf };
  }

  it('S2AFFD = 0, S2HA = 0: F_ACCESS, stage 2, with the IPA', () => {
    const { rig } = stage2({ s2Affd: false, s2Ha: false });
    expect(rig.translate(S2_STREAM, IPA, PERM_READ)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_ACCESS', stage: 2 },
    });
    expect(rig.records()).toMatchObject([
      { id: EVENT_ID.F_ACCESS, s2: true, class: EVENT_CLASS.IN, ipa: IPA },
    ]);
  });

  it('S2AFFD = 1, S2HA = 0: used as if AF were 1, left as it is', () => {
    const { rig, leaf } = stage2({ s2Affd: true, s2Ha: false });
    expect(rig.translate(S2_STREAM, IPA, PERM_READ)).toMatchObject({ ok: true, pfn: OUT / 4096 });
    expect(afOf(rig.readDescriptor(leaf)[0])).toBe(false);
  });

  it('S2HA = 1: S2AFFD is IGNORED, the SMMU sets AF', () => {
    const { rig, leaf } = stage2({ s2Affd: true, s2Ha: true });
    expect(rig.translate(S2_STREAM, IPA, PERM_READ)).toMatchObject({ ok: true });
    expect(afOf(rig.readDescriptor(leaf)[0])).toBe(true);
  });

  it('applies to the stage-2 translation of a stage-1 table fetch too (CLASS TT)', () => {
    for (const s2Affd of [false, true]) {
      const rig = translationRig();
      rig.s1.map(BigInt(IOVA), BigInt(IPA), 0x1000n, RW);
      rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RW);
      rig.mapStage1TablesInStage2(IOVA);
      const s1Leaf = rig.leafAddress(1, IOVA);
      const tablePage = Math.floor(s1Leaf / 4096) * 4096;
      rig.editDescriptor(rig.leafAddress(2, tablePage), clearAf);
      rig.nestedStream({}, { s2Affd });
      const result = rig.translate(NESTED_STREAM, IOVA, PERM_READ);
      if (s2Affd) {
        expect(result).toMatchObject({ ok: true, pfn: OUT / 4096 });
      } else {
        expect(result).toMatchObject({ ok: false, fault: { vendorCode: 'F_ACCESS', stage: 2 } });
        expect(rig.records()).toMatchObject([
          { id: EVENT_ID.F_ACCESS, s2: true, class: EVENT_CLASS.TT, ipa: tablePage },
        ]);
      }
    }
  });
});

describe('HTTU with two stages: a stage-1 descriptor update is a write to its IPA (§3.13.5)', () => {
  /** A nested stream whose stage-1 leaf has AF = 0 and CD.HA = 1; `tablePageProt` maps the leaf's page. */
  function nested(tablePageProt: { read: boolean; write: boolean }, s2DirtyTracking = false) {
    const rig = translationRig({ s2DirtyTracking });
    rig.s1.map(BigInt(IOVA), BigInt(IPA), 0x1000n, RW);
    rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RW);
    const s1Leaf = rig.leafAddress(1, IOVA);
    const tablePage = Math.floor(s1Leaf / 4096) * 4096;
    rig.s2.map(BigInt(tablePage), BigInt(tablePage), 0x1000n, tablePageProt);
    rig.mapStage1TablesInStage2(IOVA);
    rig.editDescriptor(s1Leaf, clearAf);
    return { rig, s1Leaf, tablePage, s2Leaf: rig.leafAddress(2, tablePage) };
  }

  it('stage 2 read-only for the stage-1 table: a stage-2 F_PERMISSION on the walk (CLASS TT, TTRnW = 0), nothing written', () => {
    const { rig, s1Leaf, tablePage } = nested({ read: true, write: false });
    rig.nestedStream({ ha: true }, { s2Ha: true });
    const before = rig.readDescriptor(s1Leaf);
    for (let i = 0; i < 2; i++) {
      expect(rig.translate(NESTED_STREAM, IOVA + 0x10, PERM_READ)).toMatchObject({
        ok: false,
        fault: { vendorCode: 'F_PERMISSION', stage: 2 },
      });
    }
    expect(rig.readDescriptor(s1Leaf)).toEqual(before);
    const record = {
      id: EVENT_ID.F_PERMISSION,
      streamId: NESTED_STREAM,
      rnw: true, // the input transaction's
      ttRnW: false, // the descriptor write caused it
      s2: true,
      class: EVENT_CLASS.TT,
      inputAddrPage: IOVA / 4096,
      ipa: tablePage,
    };
    expect(rig.records()).toMatchObject([record, record]);
  });

  it('a stage-2 read refusal on a stage-1 table fetch has TTRnW = 1', () => {
    const { rig, s2Leaf, tablePage } = nested({ read: true, write: true });
    rig.editDescriptor(s2Leaf, (lo, hi) => [lo & ~(LO_AP1_S2AP_R | LO_AP2_S2AP_W), hi]); // S2AP = 0b00
    rig.nestedStream({ ha: true });
    expect(rig.translate(NESTED_STREAM, IOVA, PERM_WRITE).ok).toBe(false);
    expect(rig.records()).toMatchObject([
      { id: EVENT_ID.F_PERMISSION, rnw: false, ttRnW: true, s2: true, class: EVENT_CLASS.TT, ipa: tablePage },
    ]);
  });

  it('with stage-2 write access the update happens, and S2HA sets the table page’s stage-2 AF as usual', () => {
    const { rig, s1Leaf, s2Leaf } = nested({ read: true, write: true });
    rig.editDescriptor(s2Leaf, clearAf);
    rig.nestedStream({ ha: true }, { s2Ha: true });
    expect(rig.translate(NESTED_STREAM, IOVA, PERM_READ)).toMatchObject({ ok: true, pfn: OUT / 4096 });
    expect(afOf(rig.readDescriptor(s1Leaf)[0])).toBe(true);
    expect(afOf(rig.readDescriptor(s2Leaf)[0])).toBe(true);
  });

  it('a writable-clean stage-2 page for the table: the update needs S2HD, which makes it dirty', () => {
    for (const s2Hd of [false, true]) {
      const { rig, s1Leaf, s2Leaf, tablePage } = nested({ read: true, write: true }, true);
      // Every stage-2 mapping is writable-clean now (DBM = 1, S2AP[1] = 0).
      rig.s2.readAndClearDirty(0n, 2n ** 48n, () => {});
      rig.nestedStream({ ha: true }, { s2Ha: true, s2Hd });
      const result = rig.translate(NESTED_STREAM, IOVA, PERM_READ);
      expect(result.ok, `S2HD = ${s2Hd}`).toBe(s2Hd);
      expect(afOf(rig.readDescriptor(s1Leaf)[0]), `S2HD = ${s2Hd}`).toBe(s2Hd);
      expect((rig.readDescriptor(s2Leaf)[0] & LO_AP2_S2AP_W) !== 0, `S2HD = ${s2Hd}`).toBe(s2Hd);
      if (!s2Hd) {
        expect(rig.records()).toMatchObject([
          { id: EVENT_ID.F_PERMISSION, class: EVENT_CLASS.TT, ipa: tablePage },
        ]);
      }
    }
  });
});

describe('HD needs HA (§5.2 STE.S2HD); a TLB entry a read cached is clean', () => {
  it('a write after a read walks again, so S2HD marks the stage-2 page dirty', () => {
    const rig = translationRig({ s2DirtyTracking: true });
    rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RW);
    rig.s2.readAndClearDirty(0n, 2n ** 48n, () => {});
    const leaf = rig.leafAddress(2, IPA);
    rig.s2Stream({ s2Ha: true, s2Hd: true });
    expect(rig.translate(S2_STREAM, IPA, PERM_READ)).toMatchObject({ ok: true });
    expect(rig.readDescriptor(leaf)[0] & LO_AP2_S2AP_W).toBe(0);
    expect(rig.translate(S2_STREAM, IPA, PERM_WRITE)).toMatchObject({ ok: true, pfn: OUT / 4096 });
    expect(rig.readDescriptor(leaf)[0] & LO_AP2_S2AP_W).not.toBe(0);
  });

  it('S2HD = 1 with S2HA = 0 behaves as both 0: a write to a writable-clean page is a stage-2 F_PERMISSION', () => {
    const rig = translationRig({ s2DirtyTracking: true });
    rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RW);
    rig.s2.readAndClearDirty(0n, 2n ** 48n, () => {});
    rig.s2Stream({ s2Hd: true, s2Ha: false });
    expect(rig.translate(S2_STREAM, IPA, PERM_WRITE)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_PERMISSION', stage: 2 },
    });
  });
});

describe('stage 1 TLB entries remember the leaf: dirty state and nG', () => {
  it('HD: a write after a read walks again, so the writable-clean stage-1 leaf becomes dirty (AP[2] := 0)', () => {
    const rig = translationRig();
    rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, RW);
    const leaf = rig.leafAddress(1, IOVA);
    rig.editDescriptor(leaf, (lo, hi) => [lo | LO_AP2_S2AP_W, hi | HI_DBM]);
    rig.s1Stream({ ha: true, hd: true });
    expect(rig.translate(S1_STREAM, IOVA, PERM_READ)).toMatchObject({ ok: true });
    expect(rig.readDescriptor(leaf)[0] & LO_AP2_S2AP_W).not.toBe(0);
    expect(rig.translate(S1_STREAM, IOVA, PERM_WRITE)).toMatchObject({ ok: true, pfn: OUT / 4096 });
    expect(rig.readDescriptor(leaf)[0] & LO_AP2_S2AP_W).toBe(0);
  });

  it('a global leaf (nG = 0) is cached for every ASID: TLBI_NH_ASID leaves it, a non-global one goes', () => {
    for (const global of [true, false]) {
      const rig = translationRig();
      rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, RW);
      const leaf = rig.leafAddress(1, IOVA);
      if (global) rig.editDescriptor(leaf, (lo, hi) => [lo & ~LO_NG, hi]);
      rig.s1Stream({ asid: 1 });
      expect(rig.translate(S1_STREAM, IOVA, PERM_READ)).toMatchObject({ ok: true });
      rig.editDescriptor(leaf, () => [0, 0]);
      rig.submit(encodeTlbiNhAsid({ vmid: 0, asid: 1 }), encodeCmdSync());
      expect(rig.translate(S1_STREAM, IOVA, PERM_READ).ok).toBe(global);
    }
  });
});
