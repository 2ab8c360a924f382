import { IommufdError, MemoryBus, RegisterFile, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { EventLog } from './event-log.js';
import {
  type AmdEvent,
  decodeEvent,
  describeEvent,
  EVENT_FLAG,
  encodeEvent,
  HARDWARE_ERROR_TYPE,
} from './events.js';
import { AmdOptionsSchema, featuresFromOptions } from './options.js';
import {
  AMD_MMIO_SIZE,
  amdRegisterTable,
  CTRL_EVENT_INT_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_IOMMU_EN,
  MSI_CAP_EN,
  REG,
  STATUS_EVT_LOG_INT,
  STATUS_EVT_LOG_RUN,
  STATUS_EVT_OVERFLOW,
} from './regs.js';
import { UnitInterrupts } from './unit-interrupts.js';

const LOG = 0x20_0000;
const WINDOW = 0xfee0_0000;

function rig(traced = true) {
  const features = featuresFromOptions(AmdOptionsSchema.parse({}));
  const regs = new RegisterFile(AMD_MMIO_SIZE, amdRegisterTable(features));
  const bus = new MemoryBus();
  bus.addRam('log', LOG, 0x1000);
  const msis: number[] = [];
  bus.addMmio('apic', WINDOW, 0x1000, { read: () => 0, write: (_o, _s, value) => msis.push(value) });
  const tracer = new Tracer();
  if (traced) tracer.startRecording();
  const counter = bus.counter('amd-vi');
  const interrupts = new UnitInterrupts({ regs, bus, counter, requesterId: 2, tracer, instance: 'iommu0' });
  const log = new EventLog({ regs, bus, counter, interrupts, tracer, instance: 'iommu0' });
  regs.onWrite(REG.CONTROL, (value, old) => {
    interrupts.controlChanged(value, old);
    log.controlChanged(value, old);
  });
  regs.write(REG.MSI_ADDR_LOW, 4, WINDOW);
  regs.write(REG.MSI_DATA, 4, 0x41);
  regs.write(REG.MSI_CAP_HDR, 4, MSI_CAP_EN);
  // Linux iommu_enable_event_buffer with a 256-entry (4 KiB) log.
  regs.write(REG.EVT_LOG_BASE, 4, LOG);
  regs.write(REG.EVT_LOG_BASE + 4, 4, 8 << 24);
  regs.write(REG.EVT_HEAD, 4, 0);
  regs.write(REG.EVT_TAIL, 4, 0);
  return { regs, bus, log, msis, tracer };
}

const enable = (regs: RegisterFile, extra = 0) =>
  regs.write(REG.CONTROL, 4, CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN | extra);

const fault: AmdEvent = {
  kind: 'io-page-fault',
  deviceId: 0x0010,
  domainOrPasid: 5,
  flags: EVENT_FLAG.RW | EVENT_FLAG.PR,
  address: 0x7fff_1234_5000,
};

function wordsAt(bus: MemoryBus, address: number): Uint32Array {
  const words = new Uint32Array(4);
  expect(bus.readWords(address, words, 4, bus.counter('probe'))).toBe(true);
  return words;
}

/** What Linux's iommu_poll_events reads: every record from Head to Tail, then Head = Tail. */
function linuxPoll(regs: RegisterFile, bus: MemoryBus) {
  let head = regs.read(REG.EVT_HEAD, 4);
  const tail = regs.read(REG.EVT_TAIL, 4);
  const events = [];
  while (head !== tail) {
    events.push(decodeEvent(wordsAt(bus, LOG + head), 0));
    head = (head + 16) % 0x1000;
  }
  regs.write(REG.EVT_HEAD, 4, head);
  return events;
}

describe('EventLog', () => {
  it('writes the encoded record at the tail, byte for byte', () => {
    const { regs, bus, log } = rig();
    enable(regs);
    expect(log.record(fault)).toBe(true);
    // DeviceID 15:0, DomainID 47:32, flags 0x030 at 59:48, code 2 at 63:60, address 127:64.
    expect(Array.from(wordsAt(bus, LOG))).toEqual([0x0000_0010, 0x2030_0005, 0x1234_5000, 0x7fff]);
    const expected = new Uint32Array(4);
    const second: AmdEvent = {
      kind: 'command-hardware-error',
      type: HARDWARE_ERROR_TYPE.MASTER_ABORT,
      address: 0x40,
    };
    log.record(second);
    encodeEvent(second, expected, 0);
    expect(wordsAt(bus, LOG + 16)).toEqual(expected);
    expect(linuxPoll(regs, bus)).toEqual([fault, second]);
    expect(log.stats()).toEqual({
      eventsRecorded: 2,
      eventsDropped: 0,
      eventLogOverflows: 0,
      eventLogAborts: 0,
    });
  });

  it('sets EvtLogInt whether or not EventIntEn is set; only the MSI needs EventIntEn', () => {
    const { regs, log, msis } = rig();
    enable(regs);
    log.record(fault);
    expect([regs.read(REG.STATUS, 4), msis.length]).toEqual([STATUS_EVT_LOG_RUN | STATUS_EVT_LOG_INT, 0]);
    regs.write(REG.STATUS, 4, STATUS_EVT_LOG_INT);
    enable(regs, CTRL_EVENT_INT_EN);
    log.record(fault);
    log.record(fault);
    // One message for the bit's rise; the second record finds it still set.
    expect(msis).toEqual([0x41]);
  });

  it('drops events while the log is off, and when it is full (then EvtOverflow and its interrupt)', () => {
    const { regs, log, msis } = rig();
    expect(log.record(fault)).toBe(false);
    enable(regs, CTRL_EVENT_INT_EN);
    for (let i = 0; i < 255; i++) expect(log.record(fault)).toBe(true);
    regs.write(REG.STATUS, 4, STATUS_EVT_LOG_INT);
    expect(log.record(fault)).toBe(false);
    expect(regs.read(REG.STATUS, 4)).toBe(STATUS_EVT_OVERFLOW);
    expect(msis).toEqual([0x41, 0x41]);
    expect(log.record(fault)).toBe(false);
    expect(log.stats()).toEqual({
      eventsRecorded: 255,
      eventsDropped: 3,
      eventLogOverflows: 1,
      eventLogAborts: 0,
    });
  });

  it('counts an event whose record write aborts as dropped', () => {
    const { regs, log } = rig();
    regs.write(REG.EVT_LOG_BASE, 4, 0x4000_0000);
    enable(regs);
    expect(log.record(fault)).toBe(false);
    expect(log.stats()).toMatchObject({ eventsDropped: 1, eventLogAborts: 1 });
  });

  it('refuses an event its record cannot hold, even with the log off, and writes nothing', () => {
    const { regs, bus, log } = rig();
    const bad = { ...fault, deviceId: 0x1_0000 };
    expect(() => log.record(bad)).toThrow(IommufdError);
    enable(regs);
    expect(() => log.record(bad)).toThrow(IommufdError);
    expect([regs.read(REG.EVT_TAIL, 4), Array.from(wordsAt(bus, LOG))]).toEqual([0, [0, 0, 0, 0]]);
  });

  it('traces each event as one line, written or dropped', () => {
    const { regs, log, tracer } = rig();
    log.record(fault);
    enable(regs);
    log.record(fault);
    expect(tracer.stopRecording().map((r) => [r.layer, r.source, r.name, r.message])).toEqual([
      [
        'hw',
        'iommu0',
        'evtlog.drop',
        `${describeEvent(fault)} dropped: event log not running or EvtOverflow set`,
      ],
      ['hw', 'iommu0', 'evtlog.write', `${describeEvent(fault)} at event log offset 0x0`],
    ]);
  });

  it('traces nothing with the tracer off', () => {
    const { regs, log, tracer } = rig(false);
    enable(regs);
    expect(log.record(fault)).toBe(true);
    expect(tracer.stopRecording()).toEqual([]);
  });
});
