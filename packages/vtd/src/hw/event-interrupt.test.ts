import { MemoryBus, RegisterFile } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { EventInterrupt } from './event-interrupt.js';
import { featuresFromOptions, VtdOptionsSchema } from './options.js';
import { EVENT_CTL_IM, EVENT_CTL_IP, REG, VTD_MMIO_SIZE, vtdRegisterTable } from './regs.js';

const MSI_PAGE = 0xfee0_0000;

function rig() {
  const features = featuresFromOptions(VtdOptionsSchema.parse({}));
  const regs = new RegisterFile(VTD_MMIO_SIZE, vtdRegisterTable(features));
  const bus = new MemoryBus();
  bus.addRam('msi', MSI_PAGE, 0x1000);
  const event = new EventInterrupt(
    regs,
    { control: REG.FECTL, data: REG.FEDATA, address: REG.FEADDR, upperAddress: REG.FEUADDR },
    bus,
    bus.counter('vtd'),
    0x10,
  );
  regs.write(REG.FEDATA, 4, 0x41);
  regs.write(REG.FEADDR, 4, MSI_PAGE + 0x40);
  const delivered = () => bus.regionAt(MSI_PAGE)!.kind === 'ram' && readWord(bus, MSI_PAGE + 0x40);
  return { regs, event, bus, delivered };
}

function readWord(bus: MemoryBus, address: number): number {
  const word = new Uint32Array(1);
  bus.readWords(address, word, 1, bus.counter('probe'));
  return word[0]!;
}

describe('EventInterrupt (FECTL/IECTL/PECTL protocol)', () => {
  it('resets masked; an event while masked stays pending (IP) and is sent when software clears IM', () => {
    const { regs, event, delivered } = rig();
    expect((regs.read(REG.FECTL, 4) & EVENT_CTL_IM) >>> 0).toBe(EVENT_CTL_IM);
    event.raise();
    expect(event.pending).toBe(true);
    expect(regs.read(REG.FECTL, 4) & EVENT_CTL_IP).toBe(EVENT_CTL_IP);
    expect(delivered()).toBe(0);
    regs.write(REG.FECTL, 4, 0);
    expect(delivered()).toBe(0x41);
    expect([event.pending, event.sent]).toEqual([false, 1]);
  });

  it('unmasked: an event is sent at once and leaves nothing pending; software cannot set IP', () => {
    const { regs, event, delivered } = rig();
    regs.write(REG.FECTL, 4, EVENT_CTL_IP);
    expect(event.pending).toBe(false);
    event.raise();
    expect([delivered(), event.pending, event.sent]).toEqual([0x41, false, 1]);
    // Masking and unmasking again with nothing pending sends nothing.
    regs.write(REG.FECTL, 4, EVENT_CTL_IM);
    regs.write(REG.FECTL, 4, 0);
    expect(event.sent).toBe(1);
  });

  it('counts a message whose write aborts', () => {
    const { regs, event } = rig();
    regs.write(REG.FEADDR, 4, 0x1000);
    regs.write(REG.FECTL, 4, 0);
    event.raise();
    expect([event.sent, event.aborted]).toEqual([1, 1]);
  });

  it('withdraw clears a masked pending event without a message; with nothing pending it does nothing', () => {
    const { event, regs, delivered } = rig();
    event.raise();
    event.withdraw();
    expect(event.pending).toBe(false);
    regs.write(REG.FECTL, 4, 0);
    expect([delivered(), event.sent]).toEqual([0, 0]);
    event.withdraw();
    expect(event.pending).toBe(false);
  });

  it('while an event is pending, a write that keeps IM set sends nothing', () => {
    const { regs, event, delivered } = rig();
    event.raise();
    regs.write(REG.FECTL, 4, EVENT_CTL_IM);
    expect([delivered(), event.pending, event.sent]).toEqual([0, true, 0]);
    regs.write(REG.FECTL, 4, 0);
    expect([delivered(), event.pending, event.sent]).toEqual([0x41, false, 1]);
  });
});

describe('EventInterrupt message address', () => {
  const HIGH = 0x2_0000_0000;
  function addressed(upperAddress: number | undefined) {
    const features = featuresFromOptions(VtdOptionsSchema.parse({}));
    const regs = new RegisterFile(VTD_MMIO_SIZE, vtdRegisterTable(features));
    const bus = new MemoryBus();
    bus.addRam('msi', MSI_PAGE, 0x1000);
    bus.addRam('high', HIGH + MSI_PAGE, 0x1000);
    const event = new EventInterrupt(
      regs,
      { control: REG.FECTL, data: REG.FEDATA, address: REG.FEADDR, upperAddress },
      bus,
      bus.counter('vtd'),
      0x10,
    );
    regs.write(REG.FEDATA, 4, 0x41);
    regs.write(REG.FEADDR, 4, MSI_PAGE + 0x40);
    regs.write(REG.FEUADDR, 4, HIGH / 2 ** 32);
    regs.write(REG.FECTL, 4, 0);
    event.raise();
    return { low: readWord(bus, MSI_PAGE + 0x40), high: readWord(bus, HIGH + MSI_PAGE + 0x40), event };
  }

  it('with an upper address register (EIM), the message goes to its value above bit 32', () => {
    expect(addressed(REG.FEUADDR)).toMatchObject({ low: 0, high: 0x41, event: { sent: 1, aborted: 0 } });
  });

  it('without one, the address is 32 bits whatever the upper register holds', () => {
    expect(addressed(undefined)).toMatchObject({ low: 0x41, high: 0, event: { sent: 1, aborted: 0 } });
  });
});
