import {
  NO_PASID,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  type TranslationRequest,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { decodeCd, encodeCd } from './cd.js';
import { decodeEvent, EVENT_CLASS, EVENT_ID, encodeEvent } from './events.js';
import { decodeSte, encodeSte } from './ste.js';
import {
  coreFault,
  type Fault,
  faultEventRecord,
  isEventFault,
  stage1Fault,
  stage2Fault,
  walkAbortAddress,
} from './translation-faults.js';

const request = (access = PERM_READ, pasid = NO_PASID): TranslationRequest => ({
  streamId: 0x42,
  pasid,
  iovaPfn: 0x12345,
  offset: 0x678,
  access,
});
const ste = decodeSte(encodeSte({ v: true, s2R: true, s2S: false }));
const cd = decodeCd(encodeCd({ v: true, r: true, s: true }));
/** The record as the Event queue holds it: encoded to its 32 bytes (which refuses fields the type lacks) and back. */
const written = (req: TranslationRequest, f: Fault) => decodeEvent(encodeEvent(faultEventRecord(req, f)));

describe('the faults of each stage (IHI 0070 §3.12)', () => {
  it('a stage-1 fault is CLASS IN, recorded as CD.R says and stalls as CD.S says unless STE.S1STALLD', () => {
    expect(stage1Fault('F_TRANSLATION', ste, cd)).toStrictEqual({
      event: 'F_TRANSLATION',
      record: true,
      stall: true,
      s2: false,
      cls: EVENT_CLASS.IN,
    });
    const stalld = decodeSte(encodeSte({ v: true, s1Stalld: true }));
    expect(stage1Fault('F_ACCESS', stalld, cd).stall).toBe(false);
  });

  it('a stage-2 fault carries the IPA page; TTRnW only for a stage-1 table access (CLASS TT, §7.3.16)', () => {
    expect(stage2Fault('F_PERMISSION', ste, 0x4000_1abc, EVENT_CLASS.IN, PERM_WRITE)).toStrictEqual({
      event: 'F_PERMISSION',
      record: true,
      stall: false,
      s2: true,
      ipa: 0x4000_1000,
      cls: EVENT_CLASS.IN,
    });
    expect(stage2Fault('F_PERMISSION', ste, 0x4000_1abc, EVENT_CLASS.TT, PERM_READ).ttRnW).toBe(true);
    expect(stage2Fault('F_PERMISSION', ste, 0x4000_1abc, EVENT_CLASS.TT, PERM_WRITE).ttRnW).toBe(false);
  });

  it('an F_WALK_EABT takes FetchAddr from the refused descriptor address, and has none without one', () => {
    expect(walkAbortAddress({ kind: 'walk-abort', level: 2, address: 0x8000_0ff8 })).toStrictEqual({
      fetchAddr: 0x8000_0ff8,
    });
    expect(walkAbortAddress({ kind: 'walk-abort', level: 0 })).toStrictEqual({});
  });
});

describe('which faults have an event record, and how the core sees them', () => {
  it('configuration aborts (STE.Config abort, GBPA.ABORT, the bypass address-size abort) have none', () => {
    for (const event of ['ABORT', 'GBPA_ABORT', 'OAS_ABORT'] as const)
      expect(isEventFault({ event, record: false })).toBe(false);
    for (const event of ['F_TRANSLATION', 'C_BAD_STE', 'F_STREAM_DISABLED'] as const)
      expect(isEventFault({ event, record: true })).toBe(true);
  });

  it('the core fault: kind, the stage from the S2 bit for events that have one, not yet recorded', () => {
    const req = request(PERM_WRITE);
    expect(coreFault(req, { event: 'F_TRANSLATION', record: true, s2: true }, 0x1234_5678n)).toStrictEqual({
      kind: 'translation',
      vendorCode: 'F_TRANSLATION',
      stage: 2,
      streamId: 0x42,
      pasid: NO_PASID,
      iova: 0x1234_5678n,
      access: PERM_WRITE,
      recorded: false,
    });
    expect(coreFault(req, { event: 'F_ACCESS', record: true }, 0n).stage).toBe(1);
    expect(coreFault(req, { event: 'ABORT', record: false }, 0n)).not.toHaveProperty('stage');
    expect(coreFault(req, { event: 'C_BAD_STE', record: true }, 0n)).not.toHaveProperty('stage');
    expect(coreFault(req, { event: 'ABORT', record: false }, 0n).kind).toBe('config-abort');
    expect(coreFault(req, { event: 'GBPA_ABORT', record: false }, 0n).kind).toBe('config-abort');
    expect(coreFault(req, { event: 'OAS_ABORT', record: false }, 0n).kind).toBe('address-size');
  });
});

describe('the event record of each fault (IHI 0070 §7.3)', () => {
  const SSID = 7;

  it('C_BAD_STREAMID and C_BAD_STE: StreamID, SSV and SubstreamID only (§7.3.3, §7.3.5)', () => {
    for (const event of ['C_BAD_STREAMID', 'C_BAD_STE'] as const) {
      expect(written(request(PERM_READ, SSID), { event, record: true, fetchAddr: 0x9000 })).toStrictEqual({
        id: EVENT_ID[event],
        streamId: 0x42,
        ssv: true,
        substreamId: SSID,
      });
      expect(faultEventRecord(request(), { event, record: true })).toStrictEqual({
        id: EVENT_ID[event],
        streamId: 0x42,
      });
    }
  });

  it('F_STE_FETCH and F_CD_FETCH: FetchAddr when the fetch address is known (§7.3.4, §7.3.10)', () => {
    for (const event of ['F_STE_FETCH', 'F_CD_FETCH'] as const) {
      expect(written(request(PERM_READ, SSID), { event, record: true, fetchAddr: 0x8000_1040 })).toEqual(
        expect.objectContaining({
          id: EVENT_ID[event],
          ssv: true,
          substreamId: SSID,
          fetchAddr: 0x8000_1040,
        }),
      );
      expect(faultEventRecord(request(), { event, record: true })).toStrictEqual({
        id: EVENT_ID[event],
        streamId: 0x42,
      });
    }
  });

  it('F_STREAM_DISABLED has no SubstreamID field, even for a transaction with one (§7.3.7)', () => {
    const f: Fault = { event: 'F_STREAM_DISABLED', record: true };
    expect(faultEventRecord(request(PERM_READ, 0), f)).toStrictEqual({
      id: EVENT_ID.F_STREAM_DISABLED,
      streamId: 0x42,
    });
    expect(written(request(PERM_READ, SSID), f)).toStrictEqual({
      id: EVENT_ID.F_STREAM_DISABLED,
      streamId: 0x42,
    });
  });

  it('C_BAD_SUBSTREAMID has no SSV: its SubstreamID is 0 for a transaction without one (§7.3.9)', () => {
    const f: Fault = { event: 'C_BAD_SUBSTREAMID', record: true };
    expect(faultEventRecord(request(PERM_READ, SSID), f)).toStrictEqual({
      id: EVENT_ID.C_BAD_SUBSTREAMID,
      streamId: 0x42,
      substreamId: SSID,
    });
    expect(faultEventRecord(request(), f)).toStrictEqual({
      id: EVENT_ID.C_BAD_SUBSTREAMID,
      streamId: 0x42,
      substreamId: 0,
    });
  });

  it('C_BAD_CD and F_BAD_ATS_TREQ carry the SubstreamID and no access fields', () => {
    for (const event of ['C_BAD_CD', 'F_BAD_ATS_TREQ'] as const)
      expect(faultEventRecord(request(PERM_WRITE, SSID), { event, record: true, s2: true })).toStrictEqual({
        id: EVENT_ID[event],
        streamId: 0x42,
        ssv: true,
        substreamId: SSID,
      });
  });

  it('a stage-1 translation fault: the access as taken, CLASS, InputAddr and no IPA (§7.3.13)', () => {
    const f: Fault = { event: 'F_TRANSLATION', record: true, s2: false, ipa: 0x4000_0000, ttRnW: true };
    expect(faultEventRecord(request(PERM_READ | PERM_PRIV | PERM_EXEC, SSID), f)).toStrictEqual({
      id: EVENT_ID.F_TRANSLATION,
      streamId: 0x42,
      ssv: true,
      substreamId: SSID,
      rnw: true,
      pnu: true,
      ind: true,
      s2: false,
      class: EVENT_CLASS.IN,
      inputAddrPage: 0x12345,
      inputAddrOffset: 0x678,
    });
  });

  it('without a SubstreamID the access is Data, Unprivileged (§13.7); a write has RnW 0', () => {
    const r = faultEventRecord(request(PERM_WRITE | PERM_PRIV | PERM_EXEC), {
      event: 'F_ACCESS',
      record: true,
    });
    expect(r).toMatchObject({ rnw: false, pnu: false, ind: false, s2: false, class: EVENT_CLASS.IN });
    expect(r).not.toHaveProperty('ssv');
  });

  it('a stage-2 fault gives the IPA; an F_PERMISSION on a stage-1 table access gives TTRnW (§7.3.16)', () => {
    const s2 = stage2Fault('F_PERMISSION', ste, 0x4000_2010, EVENT_CLASS.TT, PERM_WRITE);
    expect(written(request(PERM_READ), s2)).toMatchObject({
      s2: true,
      class: EVENT_CLASS.TT,
      ipa: 0x4000_2000,
      ttRnW: false,
    });
    const s2Read = stage2Fault('F_PERMISSION', ste, 0x4000_2010, EVENT_CLASS.TT, PERM_READ);
    expect(faultEventRecord(request(), s2Read)).toMatchObject({ ttRnW: true });
    // TTRnW is a field of F_PERMISSION only; a stage-2 F_TRANSLATION on a table access has none.
    const tt = stage2Fault('F_TRANSLATION', ste, 0x4000_2010, EVENT_CLASS.TT, PERM_READ);
    expect(faultEventRecord(request(), tt)).not.toHaveProperty('ttRnW');
    expect(
      faultEventRecord(request(), { event: 'F_TRANSLATION', record: true, s2: true }),
    ).not.toHaveProperty('ipa');
  });

  it('F_WALK_EABT gives FetchAddr instead of an IPA (§7.3.12)', () => {
    const f: Fault = { event: 'F_WALK_EABT', record: true, s2: true, ipa: 0x4000_0000, cls: EVENT_CLASS.TT };
    const r = written(request(), { ...f, fetchAddr: 0x8000_0ff8 });
    expect(r).toMatchObject({ s2: true, class: EVENT_CLASS.TT, fetchAddr: 0x8000_0ff8 });
    expect(faultEventRecord(request(), { ...f, fetchAddr: 0x8000_0ff8 })).not.toHaveProperty('ipa');
    const none = faultEventRecord(request(), f);
    expect(none).not.toHaveProperty('ipa');
    expect(none).not.toHaveProperty('fetchAddr');
  });
});
