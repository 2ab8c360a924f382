/** The guest OS keeps the faults its IOMMU drivers report in a bounded log (a fault storm cannot grow it). */
import {
  DEFAULT_LOG_CAPACITY,
  definePlugin,
  type FaultReporter,
  FrameAllocator,
  InterruptController,
  MemoryBus,
  NO_PASID,
  PERM_READ,
  Tracer,
} from '@iommukit/core';
import { smmuv3Plugin } from '@iommukit/smmuv3';
import { describe, expect, it } from 'vitest';
import { GuestMemory } from './guest-memory.js';
import { GuestOs } from './guest-os.js';

const HOST_RAM = 0x8000_0000;

/** A guest with one vIOMMU whose driver's fault reporter is handed to the test. */
function guestWithReporter() {
  const bus = new MemoryBus();
  bus.addRam('dram', HOST_RAM, 16 * 2 ** 20);
  const memory = new FrameAllocator([{ base: HOST_RAM, size: 16 * 2 ** 20 }], (base, bytes) =>
    bus.discardRam(base, bytes),
  );
  const guest = new GuestOs('vm0', new GuestMemory('vm0', { bus, memory }, 2 * 2 ** 20), new Tracer());
  let report: FaultReporter | undefined;
  const interrupts = new InterruptController();
  guest.addIommu({
    plugin: definePlugin({
      ...smmuv3Plugin,
      createDriver(context) {
        report = context.reportFault;
        return smmuv3Plugin.createDriver(context);
      },
    }),
    base: 0x0900_0000n,
    name: 'vm0.viommu-nested',
    irq: (name) => interrupts.line(name),
  });
  return { guest, report: report! };
}

describe('GuestOs: the fault log', () => {
  it('100k faults keep the first DEFAULT_LOG_CAPACITY and count the rest as lost; take() frees them', () => {
    const { guest, report } = guestWithReporter();
    for (let n = 0; n < 100_000; n++) {
      report(
        {
          kind: 'translation',
          vendorCode: 'F_TRANSLATION',
          streamId: 8,
          pasid: NO_PASID,
          iova: BigInt(n) << 12n,
          access: PERM_READ,
          recorded: true,
        },
        undefined,
      );
    }
    expect(guest.faults.length).toBe(DEFAULT_LOG_CAPACITY);
    expect(guest.faults.lost).toBe(100_000 - DEFAULT_LOG_CAPACITY);
    expect(guest.faults.records[0]).toMatchObject({ iommu: 'vm0.viommu-nested', fault: { iova: 0n } });
    const { records, lost } = guest.faults.take();
    expect([records.length, lost]).toEqual([DEFAULT_LOG_CAPACITY, 100_000 - DEFAULT_LOG_CAPACITY]);
    // The space is free again: the next fault is kept.
    report({ ...records[0]!.fault, iova: 0x1000_0000n }, undefined);
    expect(guest.faults.records.map((f) => f.fault.iova)).toEqual([0x1000_0000n]);
  });
});
