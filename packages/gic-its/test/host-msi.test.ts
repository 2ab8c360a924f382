/**
 * MSI scenario 1, host only, end to end on the real SMMUv3 model: a kernel-owned device's MSI goes
 * through the SMMU's SW MSI window to GITS_TRANSLATER and arrives at the CPU the driver mapped, with the
 * INTID it mapped; the DeviceID the ITS used is the device's StreamID.
 */
import { createSystem, PluginRegistry } from '@iommukit/core';
import { smmuv3Plugin } from '@iommukit/smmuv3';
import { describe, expect, it } from 'vitest';
import { gicItsModule } from '../src/gic-its-module.js';
import type { GicMsiController } from '../src/gic-msi-controller.js';

async function host(smmuOptions: Record<string, unknown> = {}) {
  const registry = new PluginRegistry(
    { smmuv3: async () => ({ default: smmuv3Plugin }) },
    { 'gic-its': async () => ({ default: gicItsModule }) },
  );
  const system = await createSystem(
    {
      plugin: 'smmuv3',
      memory: { ram: [{ name: 'dram', base: 0x8000_0000, size: '1GiB' }] },
      iommus: [{ name: 'smmu0', base: 0x0900_0000, options: smmuOptions }],
      devices: [{ name: 'nic0', rid: '00:02.0', iommu: 'smmu0' }],
      msi: { controller: 'gic-its' },
    },
    { registry },
  );
  return { system, msi: system.requireMsi() as GicMsiController };
}

describe('host MSI through the SW MSI cookie', () => {
  it('arrives at the CPU and with the INTID the driver mapped, after the SMMU translated the doorbell IOVA', async () => {
    const { system, msi } = await host();
    const dma = system.kernelDma('nic0');
    const handled: number[] = [];
    const vectors = system.setupKernelMsi('nic0', 1);
    const [vector] = vectors;
    msi.requestIrq(vector!.intid, (a) => handled.push(a.intid));
    const nic = system.device('nic0');
    const message = nic.msix.message(0)!;
    expect(message.address).toBe(dma.msiWindow!.start + 0x40n); // the SW MSI window, not the doorbell
    const result = nic.signalMsi(0)!;
    expect(result).toMatchObject({ ok: true, hpas: [0x0809_0040n] });
    // The SMMU's own three MSIs (Event queue, GERROR, PRI queue) took CPU0 twice and CPU1 once, so the
    // least loaded CPU for nic0's first vector was CPU1.
    expect(vector!.cpu).toBe(1);
    expect(msi.cpus[0]!.arrivals).toEqual([]);
    expect(msi.cpus[1]!.arrivals).toEqual([
      expect.objectContaining({
        cpu: 1,
        intid: vector!.intid,
        deviceId: nic.streamId,
        eventId: 0,
        priority: 0xa0,
      }),
    ]);
    expect(handled).toEqual([]); // handlers run when the system services interrupts
    system.serviceInterrupts();
    expect(handled).toEqual([vector!.intid]);
  });

  it('the SMMU signals its own Event queue with an MSI (DeviceID 0xffff) when the platform has an ITS', async () => {
    const { system, msi } = await host();
    const smmu = system.iommu('smmu0');
    const nic = system.device('nic0');
    const dma = system.kernelDma('nic0');
    msi.takeOutcomes();
    // A DMA to an IOVA nothing maps: F_TRANSLATION goes to the Event queue, and the SMMU writes its MSI.
    expect(nic.dmaWrite(0x1234_5000n, Uint8Array.of(1))).toMatchObject({ ok: false, reason: 'fault' });
    const [outcome] = msi.takeOutcomes();
    expect(outcome).toMatchObject({ kind: 'delivered', arrival: { deviceId: 0xffff, eventId: 0 } });
    expect(smmu.faults.records).toEqual([]); // the driver's handler has not run yet
    system.serviceInterrupts();
    expect(smmu.faults.records.map((f) => [f.fault.vendorCode, f.device, f.fault.iova])).toEqual([
      ['F_TRANSLATION', 'nic0', 0x1234_5000n],
    ]);
    dma.release();
  });

  it('an SMMU without MSIs (IDR0.MSI = 0) keeps its wired lines even with an ITS', async () => {
    const { system, msi } = await host({ msi: false });
    const dma = system.kernelDma('nic0');
    msi.takeOutcomes();
    system.device('nic0').dmaWrite(0x1234_5000n, Uint8Array.of(1));
    expect(msi.takeOutcomes()).toEqual([]);
    system.serviceInterrupts();
    expect(system.iommu('smmu0').faults).toHaveLength(1);
    dma.release();
  });

  it('a blocked device cannot reach the doorbell, and MSI setup on a blocked device is refused', async () => {
    const { system } = await host();
    expect(() => system.setupKernelMsi('nic0', 1)).toThrow(/EINVAL.*blocked/);
    const nic = system.device('nic0');
    expect(nic.msiWrite(0x0809_0040n, 0)).toMatchObject({ ok: false, reason: 'fault' });
  });
});
