/**
 * The event interrupt (event-irq.ts): records drained from EvtHead to EvtTail and zeroed, IO_PAGE_FAULTs
 * reported to the core and other events only counted, Status cleared, the event log restarted after an
 * overflow as Linux's `amd_iommu_restart_log` does, and the record-to-fault translation.
 */
import { type IommuDeviceRef, NO_PASID, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { driverRig } from '../../test/driver-rig.js';
import { buildInvalidateDevtabEntry } from '../hw/command-encoders.js';
import { dteAddress, encodeDte } from '../hw/dte.js';
import { EVENT_FLAG } from '../hw/events.js';
import {
  CTRL_EVENT_INT_EN,
  CTRL_EVENT_LOG_EN,
  REG,
  STATUS_EVT_LOG_INT,
  STATUS_EVT_LOG_RUN,
  STATUS_EVT_OVERFLOW,
} from '../hw/regs.js';
import { faultOf, handleEventIrq, pollEvents, restartEventLogging } from './event-irq.js';
import { probeUnit } from './probe.js';

function setup(msi = true) {
  const r = driverRig({ msi });
  const devices = new Map<number, IommuDeviceRef>([[0x100, r.device(0x100)]]);
  const unit = probeUnit(r.context, (id) => {
    const ref = devices.get(id);
    return ref && { ref, maxPasids: 0 };
  });
  const drain = () => handleEventIrq(unit, unit.eventLog, (id) => devices.get(id));
  return { r, unit, drain };
}

describe('draining the event log', () => {
  it('reports each IO_PAGE_FAULT with its device, zeroes the records, moves EvtHead to EvtTail, clears Status', () => {
    const { r, unit, drain } = setup(false);
    // Boot entries (V, TV, IR = IW = 0) deny everything: permission faults.
    r.translate(0x100, 0x1000, PERM_WRITE);
    r.translate(0x101, 0x2000, PERM_READ);
    expect(r.reg(REG.STATUS) & STATUS_EVT_LOG_INT).toBe(STATUS_EVT_LOG_INT);
    const tail = r.reg(REG.EVT_TAIL);
    expect(drain()).toBe(2);
    expect(r.faults).toEqual([
      {
        fault: expect.objectContaining({
          kind: 'permission',
          streamId: 0x100,
          iova: 0x1000n,
          access: PERM_WRITE,
        }),
        device: 'dev100',
      },
      {
        fault: expect.objectContaining({
          kind: 'permission',
          streamId: 0x101,
          iova: 0x2000n,
          access: PERM_READ,
        }),
        device: undefined,
      },
    ]);
    expect(r.reg(REG.EVT_HEAD)).toBe(tail);
    expect(r.words(unit.eventLog, 8)).toEqual(new Uint32Array(8));
    expect(r.reg(REG.STATUS) & (STATUS_EVT_LOG_INT | STATUS_EVT_OVERFLOW)).toBe(0);
    expect(unit.stats.faults).toBe(2);
    expect(drain()).toBe(0);
  });

  it('counts other events without reporting them (ILLEGAL_DEV_TABLE_ENTRY)', () => {
    const { r, unit, drain } = setup(false);
    const bad = encodeDte({ v: true, tv: true });
    bad[0]! |= 0x4; // reserved bit 2
    r.bus.writeWords(dteAddress(unit.deviceTable.base, 0x300), bad, 8, r.bus.counter('test'));
    unit.queue.submit([buildInvalidateDevtabEntry(0x300)]);
    r.translate(0x300, 0x1000);
    expect(drain()).toBe(1);
    expect(r.faults).toEqual([]);
    expect(unit.stats).toMatchObject({ events: 1, faults: 0 });
  });

  it('runs from the unit’s MSI: the handler the driver requested drains the log', () => {
    const { r } = setup();
    r.translate(0x100, 0x3000);
    expect(r.service()).toBe(1);
    expect(r.faults.map((f) => f.fault.iova)).toEqual([0x3000n]);
  });

  it('rereads a record still zero, then skips it (no event written)', () => {
    const { r, unit } = setup(false);
    // The log stopped, software may place the tail: one slot the unit never wrote.
    r.poke(REG.CONTROL, r.reg(REG.CONTROL) & ~CTRL_EVENT_LOG_EN);
    r.poke(REG.EVT_TAIL, 16);
    expect(pollEvents(unit, unit.eventLog, () => undefined)).toBe(1);
    expect(r.reg(REG.EVT_HEAD)).toBe(16);
    expect(unit.stats).toMatchObject({ events: 0, faults: 0 });
    expect(r.faults).toEqual([]);
  });
});

describe('event log overflow', () => {
  it('drains the 511 records, restarts the log (EvtLogEn and EventIntEn off, EvtOverflow cleared, on again), and logs again', () => {
    const { r, unit } = setup();
    for (let i = 0; i < 600; i++) r.translate(0x100, 0x1000 * (i + 1));
    expect(r.reg(REG.STATUS) & (STATUS_EVT_OVERFLOW | STATUS_EVT_LOG_RUN)).toBe(STATUS_EVT_OVERFLOW);
    const from = r.mmioWrites.length;
    // Two messages went out, EvtLogInt's and EvtOverflow's; the first run drains everything.
    expect(r.service()).toBe(2);
    expect(r.faults.length).toBe(511);
    expect(unit.stats.eventLogRestarts).toBe(1);
    const control = r.mmioWrites
      .slice(from)
      .filter(([o]) => o === REG.CONTROL || o === REG.STATUS)
      .map(([o, v]) =>
        o === REG.STATUS
          ? `status ${v}`
          : `${v & CTRL_EVENT_LOG_EN ? 'log' : '-'}/${v & CTRL_EVENT_INT_EN ? 'int' : '-'}`,
      );
    expect(control).toEqual([
      `status ${STATUS_EVT_LOG_INT | STATUS_EVT_OVERFLOW}`,
      '-/int',
      '-/-',
      `status ${STATUS_EVT_OVERFLOW}`,
      '-/int',
      'log/int',
    ]);
    expect(r.reg(REG.STATUS) & (STATUS_EVT_OVERFLOW | STATUS_EVT_LOG_RUN)).toBe(STATUS_EVT_LOG_RUN);
    r.translate(0x100, 0x1000);
    expect(r.service()).toBe(1);
    expect(r.faults.length).toBe(512);
  });

  it('does not restart a log that still runs', () => {
    const { r, unit } = setup();
    const from = r.mmioWrites.length;
    restartEventLogging(unit);
    expect(r.mmioWrites.length).toBe(from);
    expect(unit.stats.eventLogRestarts).toBe(0);
  });
});

describe('an IO_PAGE_FAULT record as a core fault', () => {
  const base = { kind: 'io-page-fault', deviceId: 0x10, domainOrPasid: 5, address: 0x7000 } as const;

  it('without GN: the DomainID is not a PASID; RW is a write, PR without PE a translation fault', () => {
    expect(faultOf({ ...base, flags: EVENT_FLAG.PR | EVENT_FLAG.RW })).toEqual({
      kind: 'translation',
      vendorCode: 'IO_PAGE_FAULT',
      streamId: 0x10,
      pasid: NO_PASID,
      iova: 0x7000n,
      access: PERM_WRITE,
      recorded: true,
    });
  });

  it('PE is a permission fault, RZ an address-size fault', () => {
    expect(faultOf({ ...base, flags: EVENT_FLAG.PR | EVENT_FLAG.PE }).kind).toBe('permission');
    expect(faultOf({ ...base, flags: EVENT_FLAG.PR | EVENT_FLAG.RZ }).kind).toBe('address-size');
  });

  it('with GN the PASID, NX an execute, US clear a privileged request', () => {
    const fault = faultOf({ ...base, flags: EVENT_FLAG.GN | EVENT_FLAG.NX });
    expect(fault).toMatchObject({ pasid: 5, access: PERM_READ | PERM_EXEC | PERM_PRIV });
    expect(faultOf({ ...base, flags: EVENT_FLAG.GN | EVENT_FLAG.US }).access).toBe(PERM_READ);
  });
});
