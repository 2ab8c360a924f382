/**
 * The host driver's interrupt handlers and page-request paths record by record (irq-handlers.ts,
 * page-requests.ts; Linux `arm_smmu_evtq_thread`, `arm_smmu_handle_event`, `arm_smmu_priq_thread`,
 * `arm_smmu_handle_ppr`, `arm_smmu_page_response`, `arm_smmu_gerror_handler`): the device model's queues
 * are handed exact records, and what reaches `reportFault` / `reportPageRequest` and the Command queue is
 * checked field by field.
 */
import { NO_PASID, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { commandsSince, createDriverSystem, SMMU_BASE } from '../../test/driver-system.js';
import { PRI_RESP, RESUME_ACTION } from '../hw/commands.js';
import { EVENT_FAULT_KIND, EVENT_ID, EVENT_WORDS, encodeEvent } from '../hw/events.js';
import { encodePriEntry } from '../hw/priq.js';
import { CR0_SMMUEN, GERROR_CMDQ_ERR, GERROR_SFM_ERR, REG } from '../hw/regs.js';

const SID = 0x10;

function system(options: Record<string, unknown> = {}) {
  const s = createDriverSystem({ options });
  const dev = s.device('dev0', SID);
  s.probe(dev);
  /** Puts `words` in the Event queue and runs the handler. */
  const event = (words: Uint32Array) => {
    s.hw.queues.eventq.record(words);
    s.service();
  };
  const pri = (fields: Parameters<typeof encodePriEntry>[0]) => {
    s.hw.queues.priq.record(encodePriEntry(fields));
    s.service();
  };
  return { s, dev, event, pri };
}

describe('Event queue records → reportFault', () => {
  it('a translation fault: kind, stage, PASID, IOVA (page and offset), access (write, privileged, exec)', () => {
    const { s, event } = system();
    event(
      encodeEvent({
        id: EVENT_ID.F_PERMISSION,
        streamId: SID,
        ssv: true,
        substreamId: 5,
        rnw: false,
        pnu: true,
        ind: true,
        s2: true,
        inputAddrPage: 0x123,
        inputAddrOffset: 0x45,
      }),
    );
    expect(s.faults).toEqual([
      {
        device: 'dev0',
        fault: {
          kind: EVENT_FAULT_KIND.F_PERMISSION,
          vendorCode: 'F_PERMISSION',
          stage: 2,
          streamId: SID,
          pasid: 5,
          iova: 0x123045n,
          access: PERM_WRITE | PERM_PRIV | PERM_EXEC,
          recorded: true,
        },
      },
    ]);
    expect(s.driver.stats.events).toBe(1);
  });

  it('a stage-1 read without a PASID; a SubstreamID without SSV is not a PASID', () => {
    const { s, event } = system();
    event(
      encodeEvent({
        id: EVENT_ID.F_TRANSLATION,
        streamId: SID,
        ssv: false,
        substreamId: 9,
        rnw: true,
        s2: false,
        inputAddrPage: 7,
      }),
    );
    expect(s.faults[0]!.fault).toMatchObject({ stage: 1, pasid: NO_PASID, iova: 0x7000n, access: PERM_READ });
  });

  it('C_BAD_SUBSTREAMID names its SubstreamID without SSV (§7.3.9); configuration events have no stage or address', () => {
    const { s, event } = system();
    event(encodeEvent({ id: EVENT_ID.C_BAD_SUBSTREAMID, streamId: SID, substreamId: 0x33 }));
    event(encodeEvent({ id: EVENT_ID.C_BAD_STE, streamId: 0x99 }));
    expect(s.faults[0]!.fault).toMatchObject({ kind: 'bad-pasid', pasid: 0x33 });
    const badSte = s.faults[1]!;
    expect(badSte.device).toBeUndefined();
    expect(badSte.fault).toEqual({
      kind: EVENT_FAULT_KIND.C_BAD_STE,
      vendorCode: 'C_BAD_STE',
      streamId: 0x99,
      pasid: NO_PASID,
      iova: 0n,
      access: PERM_READ,
      recorded: true,
    });
  });

  it('an event ID the architecture does not define is a configuration fault named by its number', () => {
    const { s, event } = system();
    const words = new Uint32Array(EVENT_WORDS);
    words[0] = 0x7e;
    words[1] = SID;
    event(words);
    expect(s.faults[0]!.fault).toMatchObject({ kind: 'bad-config', vendorCode: 'EVENT_0x7e', streamId: SID });
  });
});

describe('GERROR', () => {
  it('nothing active: nothing counted, nothing written', () => {
    const { s } = system();
    s.ic.line('smmu0.gerror').raise();
    s.service();
    expect(s.driver.stats.globalErrors).toBe(0);
    expect(s.reg(REG.CR0) & CR0_SMMUEN).toBe(CR0_SMMUEN);
  });

  it('CMDQ_ERR found outside a submission: the command is skipped (CMD_SYNC in its place) and acknowledged', () => {
    const { s } = system();
    const { cmdq } = s.driver;
    // An illegal command (opcode 0) written behind the driver's back, PROD moved by hand.
    const prod = cmdq.producer;
    s.bus.writeWords(cmdq.base + (prod % cmdq.capacity) * 16, new Uint32Array(4), 4, s.bus.counter('test'));
    s.bus.write(BigInt(SMMU_BASE + REG.CMDQ_PROD), 4, prod + 1, s.bus.counter('test'));
    expect((s.reg(REG.GERROR) ^ s.reg(REG.GERRORN)) & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
    s.service();
    expect(s.driver.stats.globalErrors).toBe(1);
    expect([...cmdq.failures].map((f) => [f.error, f.action])).toEqual([
      ['CERROR_ILL', 'replaced-with-sync'],
    ]);
    expect(s.reg(REG.GERRORN)).toBe(s.reg(REG.GERROR));
    // The SMMU went on with the CMD_SYNC the driver put there.
    expect(s.reg(REG.CMDQ_CONS) & 0xff).toBe((prod + 1) & 0xff);
    expect(s.reg(REG.CR0) & CR0_SMMUEN).toBe(CR0_SMMUEN);
  });

  it('SFM_ERR disables the SMMU (CR0 = 0, acknowledged)', () => {
    const { s } = system();
    s.hw.queues.interrupts.raiseGlobalError(GERROR_SFM_ERR);
    s.service();
    expect(s.reg(REG.CR0)).toBe(0);
    expect(s.reg(REG.GERRORN)).toBe(s.reg(REG.GERROR));
  });
});

describe('PRI queue entries → reportPageRequest (Linux arm_smmu_handle_ppr)', () => {
  it('a request of a probed device: PASID, page address, access bits, group, last', () => {
    const { s, pri } = system();
    pri({
      streamId: SID,
      ssv: true,
      substreamId: 3,
      addressPage: 0x4_5678,
      read: true,
      write: true,
      exec: true,
      priv: true,
      prgIndex: 0x1ab,
      last: false,
    });
    pri({ streamId: SID, addressPage: 1, write: true, prgIndex: 2, last: true });
    expect(s.pageRequests).toEqual([
      {
        device: 'dev0',
        request: {
          pasid: 3,
          iova: 0x4_5678_000n,
          access: PERM_READ | PERM_WRITE | PERM_EXEC | PERM_PRIV,
          groupIndex: 0x1ab,
          last: false,
        },
      },
      {
        device: 'dev0',
        request: { pasid: NO_PASID, iova: 0x1000n, access: PERM_WRITE, groupIndex: 2, last: true },
      },
    ]);
    expect(s.driver.stats.pageRequests).toBe(2);
  });

  it('a Stop PASID marker is dropped; without SSV the same bits are a request', () => {
    const { s, pri } = system();
    pri({ streamId: SID, ssv: true, substreamId: 3, last: true });
    expect(s.pageRequests).toEqual([]);
    expect(s.driver.stats.pageRequests).toBe(0);
    pri({ streamId: SID, last: true });
    expect(s.pageRequests).toHaveLength(1);
  });

  it('an unknown StreamID: the last request of the group is answered RESPONSE_FAILURE, the others not at all', () => {
    const { s, pri } = system();
    const before = s.driver.cmdq.producer;
    pri({ streamId: 0x99, ssv: true, substreamId: 4, prgIndex: 5, read: true, last: false });
    expect(commandsSince(s, before)).toEqual([]);
    pri({ streamId: 0x99, ssv: true, substreamId: 4, prgIndex: 5, read: true, last: true });
    pri({ streamId: 0x98, ssv: false, substreamId: 4, prgIndex: 6, read: true, last: true });
    expect(commandsSince(s, before)).toEqual([
      {
        op: 'PRI_RESP',
        streamId: 0x99,
        ssv: true,
        substreamId: 4,
        prgIndex: 5,
        resp: PRI_RESP.RESPONSE_FAILURE,
      },
      expect.objectContaining({ op: 'SYNC' }),
      {
        op: 'PRI_RESP',
        streamId: 0x98,
        ssv: false,
        substreamId: 0,
        prgIndex: 6,
        resp: PRI_RESP.RESPONSE_FAILURE,
      },
      expect.objectContaining({ op: 'SYNC' }),
    ]);
    expect(s.pageRequests).toEqual([]);
  });
});

describe('page responses (Linux arm_smmu_page_response)', () => {
  it('PRI: success, invalid and failure become PRI_RESP codes; a PASID sets SSV', () => {
    const { s, dev } = system();
    const before = s.driver.cmdq.producer;
    s.driver.pageResponse(dev, { pasid: 7, groupIndex: 3, code: 'success' });
    s.driver.pageResponse(dev, { pasid: NO_PASID, groupIndex: 4, code: 'invalid' });
    s.driver.pageResponse(dev, { pasid: NO_PASID, groupIndex: 5, code: 'failure' });
    const resp = commandsSince(s, before).filter((c) => c.op === 'PRI_RESP');
    expect(resp).toEqual([
      { op: 'PRI_RESP', streamId: SID, ssv: true, substreamId: 7, prgIndex: 3, resp: PRI_RESP.SUCCESS },
      {
        op: 'PRI_RESP',
        streamId: SID,
        ssv: false,
        substreamId: 0,
        prgIndex: 4,
        resp: PRI_RESP.INVALID_REQUEST,
      },
      {
        op: 'PRI_RESP',
        streamId: SID,
        ssv: false,
        substreamId: 0,
        prgIndex: 5,
        resp: PRI_RESP.RESPONSE_FAILURE,
      },
    ]);
  });

  it('an SMMU without PRI cannot answer a page request of a master that does not stall (EOPNOTSUPP)', () => {
    const { s, dev } = system({ pri: false });
    expect(() =>
      s.driver.pageResponse(dev, { pasid: NO_PASID, groupIndex: 1, code: 'success' }),
    ).toThrowError(expect.objectContaining({ code: 'EOPNOTSUPP' }));
  });
});

describe('stall records', () => {
  const stall = (streamId: number, stag: number) =>
    encodeEvent({
      id: EVENT_ID.F_TRANSLATION,
      streamId,
      stall: true,
      stag,
      rnw: false,
      s2: false,
      inputAddrPage: 0x20,
    });

  it('of an unknown StreamID: terminated at once with CMD_RESUME (abort)', () => {
    const { s, event } = system();
    const before = s.driver.cmdq.producer;
    event(stall(0x99, 0x1234));
    expect(commandsSince(s, before)).toEqual([
      { op: 'RESUME', streamId: 0x99, stag: 0x1234, action: RESUME_ACTION.TERMINATE, abort: true },
      expect.objectContaining({ op: 'SYNC' }),
    ]);
    expect(s.driver.stats.stalls).toBe(1);
    expect(s.faults).toEqual([]);
  });

  it('of a master without stalls: nothing is sent and nothing reported (Linux ignores its response)', () => {
    const { s, event } = system();
    const before = s.driver.cmdq.producer;
    event(stall(SID, 7));
    expect(commandsSince(s, before)).toEqual([]);
    expect(s.pageRequests).toEqual([]);
    expect(s.faults).toEqual([]);
    expect(s.driver.stats.stalls).toBe(1);
  });

  it('of a stalling master: a one-page request with the STAG as its group, answered with CMD_RESUME', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', SID, { canStall: true });
    s.probe(dev);
    s.hw.queues.eventq.record(stall(SID, 9));
    s.service();
    expect(s.pageRequests).toEqual([
      {
        device: 'dev0',
        request: { pasid: NO_PASID, iova: 0x20000n, access: PERM_WRITE, groupIndex: 9, last: true },
      },
    ]);
    const before = s.driver.cmdq.producer;
    s.driver.pageResponse(dev, { pasid: NO_PASID, groupIndex: 9, code: 'success' });
    s.driver.pageResponse(dev, { pasid: NO_PASID, groupIndex: 10, code: 'invalid' });
    expect(commandsSince(s, before)).toEqual([
      { op: 'RESUME', streamId: SID, stag: 9, action: RESUME_ACTION.RETRY, abort: false },
      expect.objectContaining({ op: 'SYNC' }),
      { op: 'RESUME', streamId: SID, stag: 10, action: RESUME_ACTION.TERMINATE, abort: true },
      expect.objectContaining({ op: 'SYNC' }),
    ]);
  });
});

describe('overflows and the trace', () => {
  it('a PRI queue overflow is acknowledged and counted; the requests that fitted are delivered', () => {
    const { s, pri } = system({ priqLog2: 2 });
    for (let i = 0; i < 6; i++)
      s.hw.queues.priq.record(encodePriEntry({ streamId: SID, addressPage: i, read: true, last: true }));
    s.service();
    expect(s.driver.stats.priOverflows).toBe(1);
    expect(s.reg(REG.PRIQ_CONS) >>> 31).toBe(s.reg(REG.PRIQ_PROD) >>> 31);
    // Acknowledged: the next request is written and delivered.
    pri({ streamId: SID, addressPage: 0x40, read: true, last: true });
    expect(s.pageRequests.map((r) => r.request.iova)).toEqual([0n, 0x1000n, 0x2000n, 0x3000n, 0x40000n]);
    expect(s.driver.stats.priOverflows).toBe(1);
  });

  it('each handler path leaves its trace event', () => {
    const s = createDriverSystem({ options: { evtqLog2: 1, priqLog2: 1 } });
    const stalling = s.device('stalls', 0x20, { canStall: true });
    const dev = s.device('dev0', SID);
    s.probe(stalling);
    s.probe(dev);
    s.tracer.startRecording();
    const stallOf = (sid: number) =>
      encodeEvent({
        id: EVENT_ID.F_TRANSLATION,
        streamId: sid,
        stall: true,
        stag: 1,
        s2: false,
        inputAddrPage: 1,
      });
    for (const sid of [SID, 0x20, 0x20]) s.hw.queues.eventq.record(stallOf(sid));
    for (let i = 0; i < 3; i++)
      s.hw.queues.priq.record(encodePriEntry({ streamId: SID, read: true, last: true }));
    s.service();
    s.driver.pageResponse(stalling, { pasid: NO_PASID, groupIndex: 1, code: 'success' });
    s.hw.queues.interrupts.raiseGlobalError(GERROR_SFM_ERR);
    s.service();
    const names = s.tracer.stopRecording().filter((r) => r.layer === 'driver' && r.name !== 'cmdq.submit');
    expect(new Set(names.map((r) => r.name))).toEqual(
      new Set(['stall.unexpected', 'stall', 'eventq.overflow', 'priq.overflow', 'gerror', 'stall.resume']),
    );
    expect(names.every((r) => r.source === 'smmu0')).toBe(true);
  });
});
