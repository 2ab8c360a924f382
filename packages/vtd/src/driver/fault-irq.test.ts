/**
 * The interrupt handlers (fault-irq.ts), run as the platform runs them: the unit's fault or page request
 * event arrives as an MSI and the test services interrupts. Faults the unit recorded reach `reportFault`
 * and leave the records free; page requests reach `reportPageRequest`, the queue is consumed, and a
 * response reaches the endpoint.
 */
import {
  NO_PASID,
  type PageRequest,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  Tracer,
  type TranslationRequest,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { type DriverRig, driverRig } from '../../test/driver-rig.js';
import { FRCD_WORD3_F, FSTS_PFO, FSTS_PPF, frcdOffset, PRS_PRO, REG } from '../hw/regs.js';
import { handleFaultIrq, handlePrqIrq, pageResponse } from './fault-irq.js';
import { enableTranslation, type ProbedUnit, probeUnit } from './probe.js';

function setup(options: Record<string, unknown> = {}) {
  const r = driverRig({ options });
  const unit = probeUnit(r.context, r.lookup);
  enableTranslation(unit);
  return { r, unit };
}

function dma(r: DriverRig, sid: number, iova: number, access = PERM_READ, pasid = NO_PASID) {
  const request: TranslationRequest = { streamId: sid, pasid, iovaPfn: iova / 4096, offset: 0, access };
  return r.vtd.translate(request);
}

describe('fault event (Linux dmar_fault)', () => {
  it('a recorded fault arrives as an MSI; the handler reports it with its device and frees the record', () => {
    const { r, unit } = setup();
    const dev = r.device(0x310);
    expect(dma(r, 0x310, 0x5000).ok).toBe(false);
    expect(r.service()).toBe(1);
    expect(r.faults).toEqual([
      {
        device: dev.name,
        fault: {
          kind: 'bad-stream',
          vendorCode: 'DMAR_FR_0x39',
          streamId: 0x310,
          pasid: NO_PASID,
          iova: 0x5000n,
          access: PERM_READ,
          recorded: true,
        },
      },
    ]);
    expect(r.reg(frcdOffset(0) + 12) & FRCD_WORD3_F).toBe(0);
    expect(r.reg(REG.FSTS)).toBe(0);
    expect(unit.stats.faults).toBe(1);
  });

  it('several records are walked from FSTS.FRI, wrapping after the last register', () => {
    const { r } = setup({ faultRecords: 4 });
    for (const sid of [0x400, 0x401, 0x402]) dma(r, sid, 0x1000);
    // One event for the three: the later faults found PPF already set.
    expect(r.service()).toBe(1);
    for (const sid of [0x403, 0x404]) dma(r, sid, 0x2000, PERM_WRITE);
    expect(r.service()).toBe(1);
    expect(r.faults.map((f) => f.fault.streamId)).toEqual([0x400, 0x401, 0x402, 0x403, 0x404]);
    expect(r.faults.map((f) => f.device)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(r.faults.at(-1)!.fault.access).toBe(PERM_WRITE);
    // Records free and nothing pending (FRI still names where the last walk began).
    expect(r.reg(REG.FSTS) & (FSTS_PPF | FSTS_PFO)).toBe(0);
    expect([0, 1, 2, 3].map((i) => r.reg(frcdOffset(i) + 12) & FRCD_WORD3_F)).toEqual([0, 0, 0, 0]);
  });

  it('an overflow (PFO) is cleared after the records are drained, so new faults are recorded again', () => {
    const { r } = setup({ faultRecords: 1 });
    dma(r, 0x500, 0x1000);
    dma(r, 0x501, 0x1000);
    expect(r.reg(REG.FSTS) & FSTS_PFO).toBe(FSTS_PFO);
    r.service();
    expect(r.faults.map((f) => f.fault.streamId)).toEqual([0x500]);
    expect(r.reg(REG.FSTS)).toBe(0);
    dma(r, 0x502, 0x1000);
    r.service();
    expect(r.faults.map((f) => f.fault.streamId)).toEqual([0x500, 0x502]);
  });

  it('a fault with a PASID carries it, and the execute and privilege the request asked for', () => {
    const { r, unit } = setup({ executeRequests: true });
    const sid = 0x620;
    const dir = unit.pasidTables.allocTable(sid, { pasidBits: 20 });
    unit.contextTables.setScalableContext(sid, { pasidDir: dir.dir, pdts: dir.pdts, paside: true });
    dma(r, sid, 0x9000, PERM_READ | PERM_EXEC | PERM_PRIV, 33);
    r.service();
    expect(r.faults[0]!.fault).toMatchObject({
      kind: 'bad-pasid',
      pasid: 33,
      access: PERM_READ | PERM_EXEC | PERM_PRIV,
    });
  });

  it('nothing pending: the handler reads FSTS and leaves', () => {
    const { r, unit } = setup();
    expect(handleFaultIrq(unit, r.lookup)).toBe(0);
    expect(r.faults).toEqual([]);
  });
});

describe('page requests (Linux prq_event_thread) and responses', () => {
  const SID = 0x708;

  function withPri(r: DriverRig, unit: ProbedUnit, sid = SID) {
    const dir = unit.pasidTables.allocTable(sid, { pasidBits: 20 });
    unit.contextTables.setScalableContext(sid, {
      pasidDir: dir.dir,
      pdts: dir.pdts,
      paside: true,
      pre: true,
      dte: true,
    });
    return r.endpoint(sid);
  }

  const request = (over: Partial<PageRequest> = {}): PageRequest => ({
    pasid: 5,
    iova: 0x7_7000n,
    access: PERM_READ | PERM_WRITE,
    groupIndex: 3,
    last: true,
    ...over,
  });

  it('a request is reported with its device; the queue is consumed; the response reaches the endpoint', () => {
    const { r, unit } = setup();
    const port = withPri(r, unit);
    const dev = r.device(SID);
    r.vtd.pageRequest(SID, request());
    expect(r.service()).toBe(1);
    expect(r.pageRequests).toEqual([{ device: dev.name, request: request() }]);
    expect(r.reg(REG.PQH)).toBe(r.reg(REG.PQT));
    expect(r.reg(REG.PQH)).toBe(32);
    expect(r.reg(REG.PRS)).toBe(0);
    pageResponse(unit, dev, { pasid: 5, groupIndex: 3, code: 'success' });
    expect(port.responses).toEqual([{ pasid: 5, groupIndex: 3, code: 'success' }]);
    expect(r.vtd.invalidationQueue!.performed.pageGroupResponse).toBe(1);
  });

  it('a request without PASID is reported and answered without one', () => {
    const { r, unit } = setup();
    const port = withPri(r, unit);
    const dev = r.device(SID);
    r.vtd.pageRequest(SID, request({ pasid: NO_PASID, access: PERM_READ }));
    r.service();
    expect(r.pageRequests[0]!.request).toMatchObject({ pasid: NO_PASID, access: PERM_READ });
    pageResponse(unit, dev, { pasid: NO_PASID, groupIndex: 3, code: 'invalid' });
    expect(port.responses).toEqual([{ pasid: NO_PASID, groupIndex: 3, code: 'invalid' }]);
  });

  it('what Linux refuses is answered Invalid when last in its group, and not reported', () => {
    const { r, unit } = setup();
    const port = withPri(r, unit);
    // No device probed at this source-id; then a privileged write; then a non-last privileged read.
    r.vtd.pageRequest(SID, request({ groupIndex: 1 }));
    r.service();
    r.device(SID);
    r.vtd.pageRequest(SID, request({ groupIndex: 2, access: PERM_WRITE | PERM_PRIV }));
    r.vtd.pageRequest(SID, request({ groupIndex: 4, access: PERM_READ | PERM_PRIV, last: false }));
    r.service();
    expect(r.pageRequests).toEqual([]);
    expect(port.responses).toEqual([
      { pasid: 5, groupIndex: 1, code: 'invalid' },
      { pasid: 5, groupIndex: 2, code: 'invalid' },
    ]);
    expect(unit.stats.badPageRequests).toBe(3);
  });

  it('a Stop Marker is consumed without a report or a response', () => {
    const { r, unit } = setup();
    const port = withPri(r, unit);
    r.device(SID);
    r.vtd.pageRequest(SID, request({ access: 0 }));
    r.service();
    expect(r.pageRequests).toEqual([]);
    expect(port.responses).toEqual([]);
    expect(r.reg(REG.PQH)).toBe(r.reg(REG.PQT));
  });

  it('an overflowed queue is drained, then PRS.PRO cleared so requests are queued again', () => {
    const { r, unit } = setup();
    withPri(r, unit);
    r.device(SID);
    const capacity = unit.prq!.bytes / 32 - 1;
    for (let i = 0; i <= capacity; i++) r.vtd.pageRequest(SID, request({ groupIndex: i % 512, last: false }));
    expect(r.reg(REG.PRS) & PRS_PRO).toBe(PRS_PRO);
    r.service();
    expect(r.pageRequests).toHaveLength(capacity);
    expect(r.reg(REG.PRS)).toBe(0);
    expect(unit.stats.prqOverflows).toBe(1);
    r.vtd.pageRequest(SID, request());
    expect(r.service()).toBe(1);
    expect(r.pageRequests).toHaveLength(capacity + 1);
  });
});

describe('fault records, decoded as Linux dmar_fault decodes them', () => {
  const record = (r: DriverRig, over: Partial<Parameters<DriverRig['vtd']['faults']['record']>[0]>) =>
    r.vtd.faults.record({
      sid: 0x310,
      address: 0x1234_5000,
      reason: 0x71,
      write: true,
      pasid: undefined,
      execute: false,
      privileged: false,
      ...over,
    });

  it('every pending record in order, each once, with its full address; the count is returned', () => {
    const { r, unit } = setup({ faultRecords: 4 });
    record(r, { address: 0x7_0000_1000 });
    record(r, { sid: 0x318, write: false });
    expect(handleFaultIrq(unit, r.lookup)).toBe(2);
    expect(r.faults.map((f) => [f.fault.streamId, f.fault.iova, f.fault.access])).toEqual([
      [0x310, 0x7_0000_1000n, PERM_WRITE],
      [0x318, 0x1234_5000n, PERM_READ],
    ]);
    expect(handleFaultIrq(unit, r.lookup)).toBe(0);
    expect(unit.stats.faults).toBe(2);
  });

  it('Exe and Priv count only with a PASID; interrupt-remapping reasons (0x20–0x2F) carry the IRTE index', () => {
    const { r, unit } = setup({ faultRecords: 8 });
    record(r, { pasid: 7, execute: true, privileged: true, write: false });
    record(r, { reason: 0x20, address: 5 * 2 ** 48 });
    record(r, { reason: 0x2f, address: 9 * 2 ** 48 });
    record(r, { reason: 0x30, address: 0x3000 });
    record(r, { reason: 0x1f, address: 0x4000 });
    handleFaultIrq(unit, r.lookup);
    expect(r.faults.map((f) => f.fault)).toMatchObject([
      { pasid: 7, access: PERM_READ | PERM_EXEC | PERM_PRIV },
      { kind: 'interrupt', vendorCode: 'DMAR_FR_0x20', iova: 5n, access: PERM_WRITE },
      { kind: 'interrupt', vendorCode: 'DMAR_FR_0x2f', iova: 9n },
      { vendorCode: 'DMAR_FR_0x30', iova: 0x3000n },
      { vendorCode: 'DMAR_FR_0x1f', iova: 0x4000n },
    ]);
    expect(r.faults.slice(3).map((f) => f.fault.kind)).not.toContain('interrupt');
  });

  it('traces each record it drains while tracing is on', () => {
    const tracer = new Tracer();
    const r = driverRig({ tracer });
    const unit = probeUnit(r.context, r.lookup);
    tracer.startRecording();
    r.vtd.faults.record({
      sid: 0x310,
      address: 0x5000,
      reason: 0x71,
      write: true,
      pasid: undefined,
      execute: false,
      privileged: false,
    });
    handleFaultIrq(unit, r.lookup);
    const drained = tracer.stopRecording().filter((t) => t.layer === 'driver' && t.name === 'fault');
    expect(drained.map((t) => t.message)).toEqual(['FRCD[0] DMAR_FR_0x71 source 0x310 at 0x5000']);
  });
});

describe('page requests Linux refuses (prq_event_thread)', () => {
  const SID = 0x708;

  function withDevice() {
    const { r, unit } = setup();
    const dir = unit.pasidTables.allocTable(SID, { pasidBits: 20 });
    unit.contextTables.setScalableContext(SID, {
      pasidDir: dir.dir,
      pdts: dir.pdts,
      paside: true,
      pre: true,
      dte: true,
    });
    const port = r.endpoint(SID);
    r.device(SID);
    return { r, unit, port };
  }

  const request = (over: Partial<PageRequest> = {}): PageRequest => ({
    pasid: 5,
    iova: 0x7_7000n,
    access: PERM_READ,
    groupIndex: 3,
    last: true,
    ...over,
  });

  it('a non-canonical address, an execute read, a privileged access: Invalid; the canonical top half is taken', () => {
    const { r, unit, port } = withDevice();
    r.vtd.pageRequest(SID, request({ iova: 2n ** 47n, groupIndex: 1 }));
    r.vtd.pageRequest(SID, request({ access: PERM_READ | PERM_EXEC, groupIndex: 2 }));
    r.vtd.pageRequest(SID, request({ access: PERM_READ | PERM_PRIV, groupIndex: 4 }));
    r.vtd.pageRequest(SID, request({ iova: 2n ** 47n - 4096n, groupIndex: 5 }));
    r.vtd.pageRequest(SID, request({ access: PERM_WRITE | PERM_EXEC, groupIndex: 6 }));
    expect(handlePrqIrq(unit, unit.prq!, r.lookup)).toBe(5);
    expect(port.responses.map((p) => [p.groupIndex, p.code])).toEqual([
      [1, 'invalid'],
      [2, 'invalid'],
      [4, 'invalid'],
    ]);
    expect(r.pageRequests.map((p) => p.request.groupIndex)).toEqual([5, 6]);
    expect(unit.stats).toMatchObject({ pageRequests: 2, badPageRequests: 3 });
  });

  it('a privileged request that neither reads nor writes is a Stop Marker; a response counts', () => {
    const { r, unit, port } = withDevice();
    r.vtd.pageRequest(SID, request({ access: PERM_PRIV }));
    expect(handlePrqIrq(unit, unit.prq!, r.lookup)).toBe(1);
    expect([r.pageRequests, port.responses]).toEqual([[], []]);
    pageResponse(unit, r.device(0x710), { pasid: 5, groupIndex: 3, code: 'success' });
    expect(unit.stats.pageResponses).toBe(1);
  });

  it('the canonical upper half is taken, the hole below it refused; a non-last request without access is reported', () => {
    const { r, unit, port } = withDevice();
    r.vtd.pageRequest(SID, request({ iova: 2n ** 64n - 2n ** 47n, groupIndex: 7 }));
    r.vtd.pageRequest(SID, request({ iova: 2n ** 64n - 2n ** 47n - 4096n, groupIndex: 8 }));
    r.vtd.pageRequest(SID, request({ access: 0, last: false, groupIndex: 9 }));
    handlePrqIrq(unit, unit.prq!, r.lookup);
    expect(r.pageRequests.map((p) => p.request.groupIndex)).toEqual([7, 9]);
    expect(port.responses.map((p) => p.groupIndex)).toEqual([8]);
    expect(unit.stats.prqOverflows).toBe(0);
  });
});
