import {
  type InterruptDelivery,
  IommufdError,
  MemoryBus,
  RegisterFile,
  Tracer,
  type X86Interrupt,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { decodePprLogEntry, PPR_FLAG, PPR_LOG_TYPE, PPR_TAG_LAST_PAGE, type PprLogEntry } from './events.js';
import { AmdOptionsSchema, featuresFromOptions } from './options.js';
import { PprLog } from './ppr-log.js';
import {
  AMD_MMIO_SIZE,
  amdRegisterTable,
  CTRL_HI_INT_CAP_XT_EN,
  CTRL_IOMMU_EN,
  CTRL_PPR_EN,
  CTRL_PPR_INT_EN,
  CTRL_PPR_LOG_EN,
  MSI_CAP_EN,
  REG,
  STATUS_PPR_INT,
  STATUS_PPR_LOG_RUN,
  STATUS_PPR_OVERFLOW,
} from './regs.js';
import { UnitInterrupts } from './unit-interrupts.js';

const LOG = 0x30_0000;
const WINDOW = 0xfee0_0000;
const ALL = CTRL_IOMMU_EN | CTRL_PPR_EN | CTRL_PPR_LOG_EN | CTRL_PPR_INT_EN;

function rig(traced = true) {
  const features = featuresFromOptions(AmdOptionsSchema.parse({}));
  const regs = new RegisterFile(AMD_MMIO_SIZE, amdRegisterTable(features));
  const bus = new MemoryBus();
  bus.addRam('log', LOG, 0x2000);
  const msis: number[] = [];
  bus.addMmio('apic', WINDOW, 0x1000, { read: () => 0, write: (_o, _s, value) => msis.push(value) });
  const xts: X86Interrupt[] = [];
  const delivery: InterruptDelivery = {
    deliverRemapped: (interrupt, requester) => {
      xts.push(interrupt);
      return { kind: 'pending', intid: interrupt.vector, deviceId: requester.deviceId, eventId: 0 };
    },
  };
  const tracer = new Tracer();
  if (traced) tracer.startRecording();
  const counter = bus.counter('amd-vi');
  const init = { regs, bus, counter, tracer, instance: 'iommu0' };
  const interrupts = new UnitInterrupts({ ...init, requesterId: 2, delivery });
  const log = new PprLog({ ...init, features, interrupts });
  regs.onWrite(REG.CONTROL, (value, old) => {
    interrupts.controlChanged(value, old);
    log.controlChanged(value, old);
  });
  regs.write(REG.MSI_ADDR_LOW, 4, WINDOW);
  regs.write(REG.MSI_DATA, 4, 0x42);
  regs.write(REG.MSI_CAP_HDR, 4, MSI_CAP_EN);
  return { regs, bus, log, msis, xts, tracer };
}

/** Linux amd_iommu_enable_ppr_log: PPREn, base, length 512, head = tail = 0, PprIntEn, PprLogEn. */
function linuxEnable(regs: RegisterFile) {
  const control = CTRL_IOMMU_EN;
  regs.write(REG.CONTROL, 4, control | CTRL_PPR_EN);
  regs.write(REG.PPR_LOG_BASE, 4, LOG);
  regs.write(REG.PPR_LOG_BASE + 4, 4, 9 << 24);
  regs.write(REG.PPR_HEAD, 4, 0);
  regs.write(REG.PPR_TAIL, 4, 0);
  regs.write(REG.CONTROL, 4, control | CTRL_PPR_EN | CTRL_PPR_INT_EN);
  regs.write(REG.CONTROL, 4, ALL);
}

const request: PprLogEntry = {
  type: PPR_LOG_TYPE.PAGE_REQUEST,
  deviceId: 0x0208,
  pasid: 0x1_2345,
  tag: PPR_TAG_LAST_PAGE | 0x1a5,
  flags: PPR_FLAG.GN | PPR_FLAG.READ | PPR_FLAG.WRITE | PPR_FLAG.US,
  address: 0x7fff_1234_5000,
};

function wordsAt(bus: MemoryBus, address: number): Uint32Array {
  const words = new Uint32Array(4);
  expect(bus.readWords(address, words, 4, bus.counter('probe'))).toBe(true);
  return words;
}

const status = (regs: RegisterFile) => regs.read(REG.STATUS, 4);

describe('PprLog', () => {
  it('does not exist on a unit without EFR.PPRSup', () => {
    const features = featuresFromOptions(AmdOptionsSchema.parse({ pageRequests: false }));
    const regs = new RegisterFile(AMD_MMIO_SIZE, amdRegisterTable(features));
    const bus = new MemoryBus();
    const tracer = new Tracer();
    const counter = bus.counter('amd-vi');
    const interrupts = new UnitInterrupts({ regs, bus, counter, requesterId: 2, tracer, instance: 'iommu0' });
    expect(
      () => new PprLog({ regs, bus, counter, features, interrupts, tracer, instance: 'iommu0' }),
    ).toThrow(new RangeError('the unit has no PPR log (EFR.PPRSup = 0)'));
  });

  it('writes the entry at PPR base + tail, sets PPRInt and sends the PPR interrupt', () => {
    const { regs, bus, log, msis } = rig();
    linuxEnable(regs);
    expect(log.request(request)).toBe(true);
    // DeviceID 15:0, PASID[15:0] 31:16; tag 41:32, PASID[19:16] 45:42, flags 0x164 at 59:48, type 1 at 63:60.
    expect(Array.from(wordsAt(bus, LOG))).toEqual([0x2345_0208, 0x1164_07a5, 0x1234_5000, 0x7fff]);
    expect(decodePprLogEntry(wordsAt(bus, LOG), 0)).toEqual(request);
    expect([regs.read(REG.PPR_TAIL, 4), status(regs)]).toEqual([16, STATUS_PPR_LOG_RUN | STATUS_PPR_INT]);
    expect(msis).toEqual([0x42]);
    expect(log.stats()).toEqual({
      pprRequestsLogged: 1,
      pprRequestsDropped: 0,
      pprLogOverflows: 0,
      pprLogAborts: 0,
    });
  });

  it('with IntCapXTEn, the PPR interrupt is the one XT register 0178h names', () => {
    const { regs, log, msis, xts } = rig();
    linuxEnable(regs);
    regs.write(REG.XT_PPR_INTR, 4, 0x05 << 8);
    regs.write(REG.XT_PPR_INTR + 4, 4, 0x33);
    regs.write(REG.CONTROL + 4, 4, CTRL_HI_INT_CAP_XT_EN);
    log.request(request);
    expect(xts.map((x) => [x.vector, x.destination])).toEqual([[0x33, 5]]);
    expect(msis).toHaveLength(0);
  });

  it('takes no request while PPREn is clear, even with the log running', () => {
    const { regs, bus, log } = rig();
    linuxEnable(regs);
    regs.write(REG.CONTROL, 4, ALL & ~CTRL_PPR_EN);
    expect(status(regs) & STATUS_PPR_LOG_RUN).toBe(STATUS_PPR_LOG_RUN);
    expect(log.request(request)).toBe(false);
    expect([regs.read(REG.PPR_TAIL, 4), Array.from(wordsAt(bus, LOG))]).toEqual([0, [0, 0, 0, 0]]);
    expect(log.dropped).toBe(1);
  });

  it('takes no request while PprLogEn is clear', () => {
    const { regs, log } = rig();
    linuxEnable(regs);
    regs.write(REG.CONTROL, 4, ALL & ~CTRL_PPR_LOG_EN);
    expect(log.request(request)).toBe(false);
  });

  it('overflows like the event log and restarts with amd_iommu_restart_ppr_log', () => {
    const { regs, bus, log, msis } = rig();
    linuxEnable(regs);
    for (let i = 0; i < 511; i++) expect(log.request({ ...request, tag: i })).toBe(true);
    regs.write(REG.STATUS, 4, STATUS_PPR_INT);
    expect(log.request(request)).toBe(false);
    expect(status(regs)).toBe(STATUS_PPR_OVERFLOW);
    expect(msis).toEqual([0x42, 0x42]);
    // Linux amd_iommu_poll_ppr_log drains, then amd_iommu_restart_log with the PPR bits.
    regs.write(REG.PPR_HEAD, 4, regs.read(REG.PPR_TAIL, 4));
    regs.write(REG.CONTROL, 4, ALL & ~CTRL_PPR_LOG_EN);
    regs.write(REG.CONTROL, 4, ALL & ~(CTRL_PPR_LOG_EN | CTRL_PPR_INT_EN));
    regs.write(REG.STATUS, 4, STATUS_PPR_OVERFLOW);
    regs.write(REG.CONTROL, 4, ALL & ~CTRL_PPR_LOG_EN);
    regs.write(REG.CONTROL, 4, ALL);
    expect(status(regs)).toBe(STATUS_PPR_LOG_RUN);
    expect(log.request({ ...request, tag: 0x77 })).toBe(true);
    expect(decodePprLogEntry(wordsAt(bus, LOG + 0x1ff0), 0).tag).toBe(0x77);
    expect(log.stats()).toEqual({
      pprRequestsLogged: 512,
      pprRequestsDropped: 1,
      pprLogOverflows: 1,
      pprLogAborts: 0,
    });
  });

  it('refuses an entry it cannot hold', () => {
    const { regs, log } = rig();
    linuxEnable(regs);
    expect(() => log.request({ ...request, pasid: 1 << 20 })).toThrow(IommufdError);
    expect(regs.read(REG.PPR_TAIL, 4)).toBe(0);
  });

  it('traces each request as one line, written or dropped, and nothing with the tracer off', () => {
    const { regs, log, tracer } = rig();
    log.request(request);
    linuxEnable(regs);
    log.request(request);
    const line = 'PPR device=02:01.0 pasid=0x12345 address=0x7fff12345000 flags=0x0164 tag=0x3a5';
    expect(tracer.stopRecording().map((r) => [r.name, r.message])).toEqual([
      ['pprlog.drop', `${line} dropped: PPREn clear`],
      // The interrupt goes out as the entry lands, before the log's line.
      ['irq.msi', 'PPR log interrupt: MSI data 0x42 to 0xfee00000 from 0x2'],
      ['pprlog.write', `${line} at PPR log offset 0x0`],
    ]);
    const quiet = rig(false);
    linuxEnable(quiet.regs);
    quiet.log.request(request);
    expect(quiet.tracer.stopRecording()).toEqual([]);
  });
});
