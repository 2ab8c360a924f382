import {
  type InterruptDelivery,
  MemoryBus,
  type MsiOutcome,
  type MsiRequester,
  RegisterFile,
  Tracer,
  type X86Interrupt,
} from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AmdOptionsSchema, featuresFromOptions } from './options.js';
import {
  AMD_MMIO_SIZE,
  amdRegisterTable,
  CTRL_COM_WAIT_INT_EN,
  CTRL_EVENT_INT_EN,
  CTRL_HI_INT_CAP_XT_EN,
  CTRL_PPR_INT_EN,
  MSI_CAP_EN,
  REG,
  STATUS_COM_WAIT_INT,
  STATUS_EVT_LOG_INT,
  STATUS_EVT_LOG_RUN,
  STATUS_EVT_OVERFLOW,
  STATUS_PPR_INT,
  STATUS_PPR_OVERFLOW,
} from './regs.js';
import { decodeXtInterrupt, UnitInterrupts } from './unit-interrupts.js';

const WINDOW = 0xfee0_0000;
const UNIT_RID = 0x0002;

interface MsiWrite {
  readonly offset: number;
  readonly size: number;
  readonly value: number;
  readonly deviceId: number | undefined;
}

/** A default unit, its MSI capability programmed and enabled, and a recording interrupt window. */
function rig(options: { delivery?: 'accept' | 'drop' | 'none'; features?: object } = {}) {
  const features = featuresFromOptions(AmdOptionsSchema.parse(options.features ?? {}));
  const regs = new RegisterFile(AMD_MMIO_SIZE, amdRegisterTable(features));
  const bus = new MemoryBus();
  const msis: MsiWrite[] = [];
  bus.addMmio('apic', WINDOW, 0x10_0000, {
    read: () => 0,
    write: (offset, size, value, deviceId) => msis.push({ offset, size, value, deviceId }),
  });
  const xts: { interrupt: X86Interrupt; requester: MsiRequester }[] = [];
  const mode = options.delivery ?? 'accept';
  const delivery: InterruptDelivery = {
    deliverRemapped(interrupt, requester): MsiOutcome {
      xts.push({ interrupt, requester });
      return mode === 'drop'
        ? { kind: 'dropped', deviceId: requester.deviceId, eventId: interrupt.vector, reason: 'no APIC' }
        : {
            kind: 'pending',
            intid: interrupt.vector,
            deviceId: requester.deviceId,
            eventId: interrupt.vector,
          };
    },
  };
  const tracer = new Tracer();
  tracer.startRecording();
  const counter = bus.counter('amd-vi');
  const interrupts = new UnitInterrupts({
    regs,
    bus,
    counter,
    requesterId: UNIT_RID,
    delivery: mode === 'none' ? undefined : delivery,
    tracer,
    instance: 'iommu0',
  });
  // The unit's Control hook, as the contract asks.
  regs.onWrite(REG.CONTROL, (value, old) => interrupts.controlChanged(value, old));
  // Linux pci_enable_msi through the mirror: address, data, then MsiEn.
  regs.write(REG.MSI_ADDR_LOW, 4, WINDOW + 0x1000);
  regs.write(REG.MSI_DATA, 4, 0x4041);
  regs.write(REG.MSI_CAP_HDR, 4, MSI_CAP_EN);
  return { regs, bus, counter, interrupts, msis, xts, tracer };
}

const status = (regs: RegisterFile) => regs.read(REG.STATUS, 4);

describe('UnitInterrupts: the MSI capability route', () => {
  it('sends the MSI data to the MSI address with the unit requester ID when an enabled bit goes 0 → 1', () => {
    const { regs, interrupts, msis, counter } = rig();
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    expect(status(regs)).toBe(STATUS_EVT_LOG_INT);
    // The data register is 16 bits; the address keeps bits 31:2.
    expect(msis).toEqual([{ offset: 0x1000, size: 4, value: 0x4041, deviceId: UNIT_RID }]);
    expect(interrupts.stats()).toEqual({
      interruptsSent: 1,
      interruptsCoalesced: 0,
      interruptsAborted: 0,
      interruptsUnrouted: 0,
    });
    expect(counter.writes).toBe(1);
  });

  it('sets the Status bit without a message while the source is disabled, and sends when software enables it', () => {
    const { regs, interrupts, msis } = rig();
    interrupts.signal(STATUS_EVT_LOG_INT);
    expect([status(regs), msis.length]).toEqual([STATUS_EVT_LOG_INT, 0]);
    // Enabling another source sends nothing for this one.
    regs.write(REG.CONTROL, 4, CTRL_COM_WAIT_INT_EN);
    expect(msis).toHaveLength(0);
    regs.write(REG.CONTROL, 4, CTRL_COM_WAIT_INT_EN | CTRL_EVENT_INT_EN);
    expect(msis).toHaveLength(1);
    // A Control write that keeps EventIntEn set is no new edge.
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    expect(msis).toHaveLength(1);
  });

  it('enabling a source whose bits are clear sends nothing', () => {
    const { regs, msis } = rig();
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN | CTRL_PPR_INT_EN | CTRL_COM_WAIT_INT_EN);
    expect(msis).toHaveLength(0);
  });

  it('coalesces: no message while the bit stays set; after software clears it (W1C) the next one is sent', () => {
    const { regs, interrupts, msis } = rig();
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    interrupts.signal(STATUS_EVT_LOG_INT);
    expect([msis.length, interrupts.coalesced]).toEqual([1, 1]);
    // Linux amd_iommu_handle_irq: write the bits back, then reread.
    regs.write(REG.STATUS, 4, STATUS_EVT_LOG_INT | STATUS_EVT_OVERFLOW);
    expect(status(regs)).toBe(0);
    interrupts.signal(STATUS_EVT_LOG_INT);
    expect(msis).toHaveLength(2);
  });

  it('each bit is its own condition: an overflow while EvtLogInt is pending sends again', () => {
    const { regs, interrupts, msis } = rig();
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    interrupts.signal(STATUS_EVT_OVERFLOW);
    expect(status(regs)).toBe(STATUS_EVT_LOG_INT | STATUS_EVT_OVERFLOW);
    expect(msis).toHaveLength(2);
  });

  it('gates each source by its own enable: completion wait by ComWaitIntEn, PPR by PprIntEn', () => {
    const { regs, interrupts, msis } = rig();
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    interrupts.signal(STATUS_COM_WAIT_INT);
    interrupts.signal(STATUS_PPR_INT);
    expect(msis).toHaveLength(0);
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN | CTRL_COM_WAIT_INT_EN | CTRL_PPR_INT_EN);
    // Both pending sources send on their enable edge, with the one shared message.
    expect(msis.map((m) => m.value)).toEqual([0x4041, 0x4041]);
    interrupts.signal(STATUS_PPR_OVERFLOW);
    expect(msis).toHaveLength(3);
  });

  it('uses the upper address register', () => {
    const { regs, bus, interrupts } = rig();
    const high: MsiWrite[] = [];
    bus.addMmio('high', 0x3_0000_0000, 0x1000, {
      read: () => 0,
      write: (offset, size, value, deviceId) => high.push({ offset, size, value, deviceId }),
    });
    regs.write(REG.MSI_ADDR_HIGH, 4, 3);
    regs.write(REG.MSI_ADDR_LOW, 4, 0x0000_0ffe);
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    expect(high).toEqual([{ offset: 0xffc, size: 4, value: 0x4041, deviceId: UNIT_RID }]);
  });

  it('counts a message whose write aborts', () => {
    const { regs, interrupts, msis } = rig();
    regs.write(REG.MSI_ADDR_LOW, 4, 0x1000);
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    expect([msis.length, interrupts.sent, interrupts.aborted]).toEqual([0, 1, 1]);
  });

  it('with MsiEn clear and no XT, an enabled interrupt is unrouted (the bit still set)', () => {
    const { regs, interrupts, msis } = rig();
    regs.write(REG.MSI_CAP_HDR, 4, 0);
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    expect([status(regs), msis.length, interrupts.sent, interrupts.unrouted]).toEqual([
      STATUS_EVT_LOG_INT,
      0,
      0,
      1,
    ]);
  });

  it('a unit without the MSI mirror (MsiCapMmioSup = 0) has no MSI route', () => {
    const { regs, interrupts, msis } = rig({ features: { msiCapMmio: false } });
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    expect([msis.length, interrupts.unrouted]).toEqual([0, 1]);
  });
});

describe('UnitInterrupts: the XT route (Control.IntCapXTEn)', () => {
  /** Programs an XT register as Linux's intcapxt_irqdomain_activate does (plus delivery mode bit 40). */
  function programXt(regs: RegisterFile, at: number, destination: number, vector: number, logical = false) {
    regs.write(at, 4, (((destination & 0xff_ffff) << 8) | (logical ? 4 : 0)) >>> 0);
    regs.write(at + 4, 4, ((destination >>> 24) << 24) | vector);
  }

  it('hands the interrupt the general register names to the controller, with the unit as requester, and writes no MSI', () => {
    const { regs, interrupts, msis, xts } = rig();
    programXt(regs, REG.XT_GEN_INTR, 0x1234_5678, 0x41);
    regs.write(REG.CONTROL + 4, 4, CTRL_HI_INT_CAP_XT_EN);
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN | CTRL_COM_WAIT_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    interrupts.signal(STATUS_COM_WAIT_INT);
    const expected = {
      vector: 0x41,
      destination: 0x1234_5678,
      destinationMode: 'physical',
      deliveryMode: 'fixed',
      trigger: 'edge',
    };
    expect(xts).toEqual([
      { interrupt: expected, requester: { name: 'iommu0', deviceId: UNIT_RID } },
      { interrupt: expected, requester: { name: 'iommu0', deviceId: UNIT_RID } },
    ]);
    expect(msis).toHaveLength(0);
  });

  it('the PPR interrupt uses the PPR register (0178h)', () => {
    const { regs, interrupts, xts } = rig();
    programXt(regs, REG.XT_GEN_INTR, 1, 0x41);
    programXt(regs, REG.XT_PPR_INTR, 0xff00_0002, 0x42, true);
    regs.write(REG.CONTROL + 4, 4, CTRL_HI_INT_CAP_XT_EN);
    regs.write(REG.CONTROL, 4, CTRL_PPR_INT_EN);
    interrupts.signal(STATUS_PPR_INT);
    expect(xts.map((x) => x.interrupt)).toEqual([
      {
        vector: 0x42,
        destination: 0xff00_0002,
        destinationMode: 'logical',
        deliveryMode: 'fixed',
        trigger: 'edge',
      },
    ]);
  });

  it('counts a dropped XT interrupt as aborted, and one without a controller as unrouted', () => {
    const dropped = rig({ delivery: 'drop' });
    dropped.regs.write(REG.CONTROL + 4, 4, CTRL_HI_INT_CAP_XT_EN);
    dropped.regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    dropped.interrupts.signal(STATUS_EVT_LOG_INT);
    expect([dropped.interrupts.sent, dropped.interrupts.aborted]).toEqual([1, 1]);
    const none = rig({ delivery: 'none' });
    none.regs.write(REG.CONTROL + 4, 4, CTRL_HI_INT_CAP_XT_EN);
    none.regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    none.interrupts.signal(STATUS_EVT_LOG_INT);
    expect([none.interrupts.sent, none.interrupts.unrouted, none.msis.length]).toEqual([0, 1, 0]);
  });

  it('decodes every field of an XT register', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: 255 }),
        fc.boolean(),
        fc.boolean(),
        (destination, vector, logical, lowest) => {
          const lo = (((destination & 0xff_ffff) << 8) | (logical ? 1 << 2 : 0)) >>> 0;
          const hi = (((destination >>> 24) << 24) | (lowest ? 1 << 8 : 0) | vector) >>> 0;
          expect(decodeXtInterrupt(lo, hi)).toEqual({
            vector,
            destination,
            destinationMode: logical ? 'logical' : 'physical',
            deliveryMode: lowest ? 'lowest-priority' : 'fixed',
            trigger: 'edge',
          });
        },
      ),
    );
  });
});

describe('UnitInterrupts: misuse and traces', () => {
  it('refuses a bit that is no source bit, or bits of two sources', () => {
    const { interrupts } = rig();
    expect(() => interrupts.signal(STATUS_EVT_LOG_RUN)).toThrow(RangeError);
    expect(() => interrupts.signal(STATUS_EVT_LOG_INT | STATUS_PPR_INT)).toThrow(RangeError);
    expect(() => interrupts.signal(0)).toThrow(RangeError);
  });

  it('traces each message and each unrouted interrupt', () => {
    const { regs, interrupts, tracer } = rig();
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN | CTRL_PPR_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    regs.write(REG.MSI_CAP_HDR, 4, 0);
    interrupts.signal(STATUS_PPR_INT);
    expect(tracer.stopRecording().map((r) => [r.layer, r.source, r.name, r.message])).toEqual([
      ['hw', 'iommu0', 'irq.msi', 'event log interrupt: MSI data 0x4041 to 0xfee01000 from 0x2'],
      [
        'hw',
        'iommu0',
        'irq.unrouted',
        'PPR log interrupt not sent: MSI disabled (MsiEn clear) and IntCapXTEn clear',
      ],
    ]);
  });

  it('records nothing with the tracer off', () => {
    const { regs, interrupts, tracer } = rig();
    tracer.stopRecording();
    regs.write(REG.CONTROL, 4, CTRL_EVENT_INT_EN);
    interrupts.signal(STATUS_EVT_LOG_INT);
    expect([tracer.enabled, interrupts.sent]).toEqual([false, 1]);
  });
});
