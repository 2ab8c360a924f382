/**
 * Permission checks on every path a translation takes: a TLB hit checks the access's PnU, InD and RnW
 * against the permissions the entry holds for each stage (AP, UXN, PXN and "EL0-writable ⇒ PXN" at stage 1,
 * S2AP and XN[1:0] at stage 2), as a walk would, and gives the fault record the walk would give (§13.4,
 * §7.3.16); event records carry the faulting access's PnU, InD and RnW (§7.3.13–7.3.16), a write being Data
 * whatever the device marks it (§13.1.2).
 */
import { NO_PASID, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { HI_PXN, HI_UXN, HI_XN_SHIFT } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import {
  IOVA,
  IPA,
  NESTED_STREAM,
  OUT,
  S1_STREAM,
  S2_STREAM,
  SSID,
  stage1Page,
  type TranslationRig,
  translationRig,
} from '../../test/translation-rig.js';
import { EVENT_CLASS, EVENT_ID } from './events.js';

const FETCH = PERM_READ | PERM_EXEC;

/**
 * Translates `access` twice, through the TLB entry an earlier access cached and after emptying the TLB (a
 * walk): both must fault with the same record. Returns that record. The access carries SubstreamID SSID
 * (none on a stage-2-only stream): without a PASID a PCIe transaction is Data, Unprivileged (§13.7).
 */
function faultOnHitAsOnWalk(
  rig: TranslationRig,
  streamId: number,
  iova: number,
  access: number,
  pasid: number = SSID,
) {
  const hits = rig.smmu.tlb.hits;
  const onHit = rig.translate(streamId, iova, access, pasid);
  expect(rig.smmu.tlb.hits, 'the access hits the TLB').toBe(hits + 1);
  rig.smmu.tlb.clear();
  const onWalk = rig.translate(streamId, iova, access, pasid);
  expect(onHit).toMatchObject({ ok: false, fault: { vendorCode: 'F_PERMISSION', recorded: true } });
  expect(onWalk).toEqual(onHit);
  const [hitRecord, walkRecord] = rig.records().slice(-2);
  expect(hitRecord).toEqual(walkRecord);
  return hitRecord;
}

const stage1Record = (access: number) => ({
  id: EVENT_ID.F_PERMISSION,
  streamId: S1_STREAM,
  rnw: (access & PERM_WRITE) === 0,
  pnu: (access & PERM_PRIV) !== 0,
  ind: (access & PERM_EXEC) !== 0,
  s2: false,
  class: EVENT_CLASS.IN,
  inputAddrPage: IOVA / 4096,
});

describe('a TLB hit checks the access against the permissions the entry holds (§13.4)', () => {
  it('stage 1: an unprivileged read of an EL1-only page faults after a privileged read cached it', () => {
    const rig = stage1Page({ write: true, priv: true });
    expect(rig.translate(S1_STREAM, IOVA, PERM_READ | PERM_PRIV, SSID)).toMatchObject({ ok: true });
    expect(faultOnHitAsOnWalk(rig, S1_STREAM, IOVA, PERM_READ)).toMatchObject(stage1Record(PERM_READ));
  });

  it('stage 1: a fetch from a UXN page faults unprivileged and not privileged after a data read', () => {
    // AP[2:1] = 0b11 (read-only at EL0 and EL1), UXN = 1, PXN = 0.
    const rig = stage1Page({ write: false, exec: true }, (lo, hi) => [lo, hi | HI_UXN]);
    expect(rig.translate(S1_STREAM, IOVA, PERM_READ, SSID)).toMatchObject({ ok: true });
    expect(faultOnHitAsOnWalk(rig, S1_STREAM, IOVA, FETCH)).toMatchObject(stage1Record(FETCH));
    expect(rig.translate(S1_STREAM, IOVA, FETCH | PERM_PRIV, SSID)).toMatchObject({ ok: true });
  });

  it('stage 1: a fetch from a PXN page faults privileged and not unprivileged after a data read', () => {
    const rig = stage1Page({ write: false, exec: true }, (lo, hi) => [lo, hi | HI_PXN]);
    expect(rig.translate(S1_STREAM, IOVA, PERM_READ | PERM_PRIV, SSID)).toMatchObject({ ok: true });
    expect(faultOnHitAsOnWalk(rig, S1_STREAM, IOVA, FETCH | PERM_PRIV)).toMatchObject(
      stage1Record(FETCH | PERM_PRIV),
    );
    expect(rig.translate(S1_STREAM, IOVA, FETCH, SSID)).toMatchObject({ ok: true });
  });

  it('stage 1: memory writable at EL0 is never executable privileged, though UXN = PXN = 0 (Arm ARM D8.4)', () => {
    const rig = stage1Page({ write: true, exec: true }); // AP[2:1] = 0b01
    expect(rig.translate(S1_STREAM, IOVA, FETCH, SSID)).toMatchObject({
      ok: true,
      perm: PERM_READ | PERM_WRITE | PERM_EXEC,
    });
    // The hit answers for the privileged requester, not for the one that cached the entry.
    expect(rig.translate(S1_STREAM, IOVA, PERM_READ | PERM_PRIV, SSID)).toMatchObject({
      ok: true,
      perm: PERM_READ | PERM_WRITE,
    });
    expect(faultOnHitAsOnWalk(rig, S1_STREAM, IOVA, FETCH | PERM_PRIV)).toMatchObject(
      stage1Record(FETCH | PERM_PRIV),
    );
  });

  it('stage 2: S2AP and XN[1:0] (FEAT_XNX: 0b01 executable at EL0 only)', () => {
    // PCIe traffic on a stage-2-only stream has no PASID, so no Priv or Exe: the privileged and
    // instruction accesses go through the nested stream, over a stage 1 that grants R and X to both levels.
    const rig = translationRig();
    rig.s1.map(BigInt(IOVA), BigInt(IPA), 0x1000n, { read: true, write: false, exec: true });
    for (const ipa of [IOVA, IPA]) {
      rig.s2.map(BigInt(ipa), BigInt(OUT), 0x1000n, { read: true, write: false, exec: true });
      rig.editDescriptor(rig.leafAddress(2, ipa), (lo, hi) => [lo, hi | (0b01 << HI_XN_SHIFT)]);
    }
    rig.mapStage1TablesInStage2(IOVA);
    rig.s2Stream();
    rig.nestedStream();
    const record = (streamId: number, ipa: number, access: number) => ({
      id: EVENT_ID.F_PERMISSION,
      streamId,
      rnw: (access & PERM_WRITE) === 0,
      pnu: (access & PERM_PRIV) !== 0,
      ind: (access & PERM_EXEC) !== 0,
      s2: true,
      class: EVENT_CLASS.IN,
      ipa,
    });
    expect(rig.translate(NESTED_STREAM, IOVA, FETCH, SSID)).toMatchObject({ ok: true });
    expect(faultOnHitAsOnWalk(rig, NESTED_STREAM, IOVA, FETCH | PERM_PRIV)).toMatchObject(
      record(NESTED_STREAM, IPA, FETCH | PERM_PRIV),
    );
    expect(rig.translate(NESTED_STREAM, IOVA, PERM_READ | PERM_PRIV, SSID)).toMatchObject({ ok: true });
    expect(rig.translate(S2_STREAM, IOVA, PERM_READ)).toMatchObject({ ok: true });
    expect(faultOnHitAsOnWalk(rig, S2_STREAM, IOVA, PERM_WRITE, NO_PASID)).toMatchObject(
      record(S2_STREAM, IOVA, PERM_WRITE),
    );
  });

  describe('nested: the combined entry keeps each stage’s permissions and the IPA', () => {
    function nested(s1Prot: { write: boolean; exec?: boolean; priv?: boolean }, s2Exec: boolean) {
      const rig = translationRig();
      rig.s1.map(BigInt(IOVA), BigInt(IPA), 0x1000n, { read: true, ...s1Prot });
      rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, { read: true, write: true, exec: s2Exec });
      rig.mapStage1TablesInStage2(IOVA);
      rig.nestedStream();
      return rig;
    }

    it('a stage-1 refusal is a stage-1 record', () => {
      const rig = nested({ write: true, priv: true }, true);
      expect(rig.translate(NESTED_STREAM, IOVA, PERM_READ | PERM_PRIV, SSID)).toMatchObject({ ok: true });
      expect(faultOnHitAsOnWalk(rig, NESTED_STREAM, IOVA, PERM_READ)).toMatchObject({
        ...stage1Record(PERM_READ),
        streamId: NESTED_STREAM,
      });
    });

    it('a stage-2 refusal is a stage-2 record with the IPA stage 1 produced', () => {
      const rig = nested({ write: false, exec: true }, false);
      expect(rig.translate(NESTED_STREAM, IOVA + 0x40, PERM_READ, SSID)).toMatchObject({ ok: true });
      expect(faultOnHitAsOnWalk(rig, NESTED_STREAM, IOVA + 0x80, FETCH)).toMatchObject({
        id: EVENT_ID.F_PERMISSION,
        streamId: NESTED_STREAM,
        rnw: true,
        ind: true,
        s2: true,
        class: EVENT_CLASS.IN,
        inputAddrPage: IOVA / 4096,
        ipa: IPA,
      });
    });
  });
});

describe('event records describe the faulting access: PnU, InD, RnW (§7.3.13–7.3.16), end to end', () => {
  it('an instruction fetch records InD = 1; a write is Data, even when the device marks it Instruction', () => {
    const rig = stage1Page({ write: true }); // UXN = PXN = 1: data only
    rig.s1.map(BigInt(IOVA + 0x1000), BigInt(OUT), 0x1000n, { read: true, write: false, exec: true });
    const device = rig.endpoint();
    const at = BigInt(IOVA);
    const fetch = { pasid: SSID, exec: true };
    expect(device.dmaRead(at + 0x2000n, 4, fetch).ok).toBe(false); // unmapped
    expect(device.dmaRead(at, 4, { ...fetch, privileged: true }).ok).toBe(false); // PXN
    // §13.1.2: writes are Data, so the execute-never page takes the write.
    expect(device.dmaWrite(at, Uint8Array.of(1), fetch).ok).toBe(true);
    expect(device.dmaWrite(at + 0x1000n, Uint8Array.of(1), fetch).ok).toBe(false); // read-only
    const records = rig.records();
    expect(records.map((r) => [r.id, r.rnw, r.ind, r.pnu])).toEqual([
      [EVENT_ID.F_TRANSLATION, true, true, false],
      [EVENT_ID.F_PERMISSION, true, true, true],
      [EVENT_ID.F_PERMISSION, false, false, false],
    ]);
    expect(records.map((r) => r.inputAddrPage)).toEqual([IOVA / 4096 + 2, IOVA / 4096, IOVA / 4096 + 1]);
  });

  it('F_ACCESS and F_ADDR_SIZE carry InD too', () => {
    const rig = translationRig();
    rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, { read: true, write: false, exec: true });
    rig.editDescriptor(rig.leafAddress(1, IOVA), (lo, hi) => [lo & ~0x400, hi]); // AF = 0
    rig.s1.map(BigInt(IOVA + 0x1000), 2n ** 40n, 0x1000n, { read: true, write: false, exec: true });
    rig.s1Stream({ ips: 1 }); // 36-bit output: 2^40 is an address size fault
    expect(rig.translate(S1_STREAM, IOVA, FETCH, SSID).ok).toBe(false);
    expect(rig.translate(S1_STREAM, IOVA + 0x1000, FETCH, SSID).ok).toBe(false);
    expect(rig.records().map((r) => [r.id, r.ind, r.rnw])).toEqual([
      [EVENT_ID.F_ACCESS, true, true],
      [EVENT_ID.F_ADDR_SIZE, true, true],
    ]);
  });
});

describe('a transaction without a SubstreamID is Data, Unprivileged (§13.7: no PASID TLP prefix)', () => {
  it('its Priv is ignored: an EL1-only page refuses it, and the record says PnU = 0', () => {
    const rig = stage1Page({ write: true, priv: true });
    expect(rig.translate(S1_STREAM, IOVA, PERM_READ | PERM_PRIV)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_PERMISSION', recorded: true },
    });
    expect(rig.records()).toMatchObject([{ ...stage1Record(PERM_READ), ssv: false }]);
    expect(rig.translate(S1_STREAM, IOVA, PERM_READ | PERM_PRIV, SSID)).toMatchObject({ ok: true });
  });

  it('its Exe is ignored: an execute-never page takes it as a data read; a fault records InD = 0', () => {
    const rig = stage1Page({ write: false }); // UXN = PXN = 1
    expect(rig.translate(S1_STREAM, IOVA, FETCH)).toMatchObject({ ok: true, perm: PERM_READ });
    expect(rig.translate(S1_STREAM, IOVA, FETCH, SSID)).toMatchObject({ ok: false });
    expect(rig.translate(S1_STREAM, IOVA + 0x1000, FETCH | PERM_PRIV)).toMatchObject({ ok: false });
    expect(rig.records().map((r) => [r.id, r.ind, r.pnu, r.ssv])).toEqual([
      [EVENT_ID.F_PERMISSION, true, false, true],
      [EVENT_ID.F_TRANSLATION, false, false, false],
    ]);
  });
});

describe('execute-only pages: an instruction fetch needs X alone (§13.7.1, Arm ARM D8.4.1.2.3)', () => {
  /** Translates on the walk, then again on the TLB hit: both answers must be `ok`. */
  function sameOnWalkAndHit(rig: TranslationRig, streamId: number, access: number, ok: boolean) {
    rig.smmu.tlb.clear();
    for (const when of ['walk', 'hit']) {
      expect(rig.translate(streamId, IOVA, access, SSID).ok, `${when}: access ${access}`).toBe(ok);
    }
  }

  for (const ap of [0b00, 0b10]) {
    it(`stage 1 AP[2:1] = 0b${ap.toString(2).padStart(2, '0')}, UXN = 0, PXN = 1: EL0 execute-only`, () => {
      const rig = stage1Page({ write: ap === 0b00, exec: true, priv: true }, (lo, hi) => [
        lo,
        (hi | HI_PXN) & ~HI_UXN,
      ]);
      sameOnWalkAndHit(rig, S1_STREAM, FETCH, true);
      sameOnWalkAndHit(rig, S1_STREAM, PERM_READ, false);
      sameOnWalkAndHit(rig, S1_STREAM, FETCH | PERM_PRIV, false); // PXN
      sameOnWalkAndHit(rig, S1_STREAM, PERM_READ | PERM_PRIV, true);
      expect(rig.records().map((r) => [r.ind, r.pnu])).toEqual([
        [false, false],
        [false, false],
        [true, true],
        [true, true],
      ]);
    });
  }

  // Stage 2 S2AP = 0b00 (no data access) with XN[1:0] letting each level execute (FEAT_XNX), under a stage 1
  // that grants R and X to both levels.
  for (const [xn, privileged, unprivileged] of [
    [0b00, true, true],
    [0b01, false, true],
    [0b11, true, false],
  ] as const) {
    it(`stage 2 S2AP = 0b00, XN = 0b${xn.toString(2).padStart(2, '0')}: execute-only`, () => {
      const rig = translationRig();
      rig.s1.map(BigInt(IOVA), BigInt(IPA), 0x1000n, { read: true, write: false, exec: true });
      rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, { read: true, write: false, exec: true });
      rig.editDescriptor(rig.leafAddress(2, IPA), (lo, hi) => [
        lo & ~(0b11 << 6), // S2AP = 0b00
        (hi & ~(0b11 << HI_XN_SHIFT)) | (xn << HI_XN_SHIFT),
      ]);
      rig.mapStage1TablesInStage2(IOVA);
      rig.nestedStream();
      sameOnWalkAndHit(rig, NESTED_STREAM, FETCH | PERM_PRIV, privileged);
      sameOnWalkAndHit(rig, NESTED_STREAM, FETCH, unprivileged);
      sameOnWalkAndHit(rig, NESTED_STREAM, PERM_READ | PERM_PRIV, false);
      sameOnWalkAndHit(rig, NESTED_STREAM, PERM_READ, false);
      expect(rig.records().every((r) => r.s2 && r.ipa === IPA)).toBe(true);
    });
  }
});
