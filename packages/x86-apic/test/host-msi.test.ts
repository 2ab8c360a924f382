/**
 * Host MSIs end to end, on systems built from a config: a kernel-owned device behind the mock IOMMU sends
 * its MSI-X vectors and they arrive at the CPUs the kernel's MSI domain chose — through the remapping unit
 * when the mock's interrupt remapping is on, as compatibility-format messages through the SW MSI cookie
 * when it is off. APIC IDs above 255 are reached with x2APIC and remapping, or with the extended
 * destination ID, and not at all otherwise.
 */
import { createSystem, PluginRegistry } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import type { ApicMsiController } from '../src/apic-msi-controller.js';

async function host(apic: Record<string, unknown>, mock: Record<string, unknown> = {}) {
  const registry = new PluginRegistry(
    { mock: () => import('@iommukit/testing') },
    { 'x86-apic': () => import('../src/index.js') },
  );
  const system = await createSystem(
    {
      plugin: 'mock',
      memory: { ram: [{ name: 'dram', base: 0x8000_0000, size: '256MiB' }] },
      iommus: [{ name: 'iommu0', base: 0x0900_0000, options: mock }],
      devices: [{ name: 'nic0', rid: '00:02.0', iommu: 'iommu0' }],
      msi: { controller: 'x86-apic', options: apic },
    },
    { registry },
  );
  system.kernelDma('nic0');
  return { system, msi: system.requireMsi() as ApicMsiController };
}

/** Sends MSI-X `vector` of nic0 and returns what the APIC made of it. */
function send(system: Awaited<ReturnType<typeof host>>['system'], msi: ApicMsiController, vector: number) {
  msi.takeOutcomes();
  const result = system.device('nic0').signalMsi(vector);
  expect(result?.ok).toBe(true);
  return msi.takeOutcomes().at(-1);
}

describe('host MSIs to the x86 APIC', () => {
  it('with interrupt remapping: remappable messages, delivered to x2APIC ID 300 through the remapping entry', async () => {
    const { system, msi } = await host({ apicIds: [0, 300] });
    const vectors = system.setupKernelMsi('nic0', 2);
    expect(vectors.map((v) => [v.intid, v.cpu, v.eventId])).toEqual([
      [24, 0, 0x20],
      [25, 1, 0x20],
    ]);
    // The remappable format: address bit 4 set, the interrupt window itself (never DMA-translated).
    const message = system.device('nic0').msix.message(1)!;
    expect(message.address & 0xfff0_0010n).toBe(0xfee0_0010n);
    const handled: number[] = [];
    msi.requestIrq(25, (a) => handled.push(a.cpu));
    expect(send(system, msi, 1)).toMatchObject({
      kind: 'delivered',
      arrival: { cpu: 1, intid: 25, priority: 2, controller: 'apic', eventId: 0x20 },
    });
    expect(system.serviceInterrupts()).toBe(1);
    expect(handled).toEqual([1]);
    await system.dispose();
  });

  it('with remapping, a new affinity rewrites the entry and the device keeps its message', async () => {
    const { system, msi } = await host({ apicIds: [0, 300] });
    system.setupKernelMsi('nic0', 1);
    const before = msi.messageFor(24);
    msi.setAffinity(24, 1);
    expect(msi.messageFor(24)).toEqual(before);
    expect(send(system, msi, 0)).toMatchObject({ kind: 'delivered', arrival: { cpu: 1, intid: 24 } });
    await system.dispose();
  });

  it('without remapping and without the extended destination ID, APIC ID 300 gets no vectors', async () => {
    const { system, msi } = await host({ apicIds: [0, 300] }, { interruptRemapping: false });
    const vectors = system.setupKernelMsi('nic0', 2);
    expect(vectors.map((v) => v.cpu)).toEqual([0, 0]);
    expect(vectors.map((v) => v.message)).toEqual([
      { address: 0xfee0_0000n, data: 0x20 },
      { address: 0xfee0_0000n, data: 0x21 },
    ]);
    // The SW MSI cookie maps the window's page into nic0's domain: the device writes an IOVA.
    expect(system.device('nic0').msix.message(0)!.address).not.toBe(0xfee0_0000n);
    expect(send(system, msi, 1)).toMatchObject({ kind: 'delivered', arrival: { cpu: 0, intid: 25 } });
    expect(() => msi.setAffinity(24, 1)).toThrow(/cannot be the destination/);
    await system.dispose();
  });

  it('with the extended destination ID, a compatibility message reaches APIC ID 300 (address bits 11:5)', async () => {
    const { system, msi } = await host(
      { apicIds: [0, 300], extendedDestinationId: true },
      { interruptRemapping: false },
    );
    const vectors = system.setupKernelMsi('nic0', 2);
    expect(vectors[1]).toMatchObject({ cpu: 1, message: { address: 0xfee2_c020n, data: 0x20 } });
    expect(send(system, msi, 1)).toMatchObject({ kind: 'delivered', arrival: { cpu: 1, intid: 25 } });
    await system.dispose();
  });

  it('without remapping, a new affinity is a new message the device must be given', async () => {
    const { system, msi } = await host({ cpus: 2 }, { interruptRemapping: false });
    system.setupKernelMsi('nic0', 1);
    msi.setAffinity(24, 1);
    expect(msi.messageFor(24)).toEqual({ address: 0xfee0_1000n, data: 0x20 });
    // The device still sends the old message: vector 0x20 on CPU 0, where no IRQ stands behind it now.
    expect(send(system, msi, 0)).toMatchObject({ kind: 'delivered', arrival: { cpu: 0, intid: -1 } });
    await system.dispose();
  });
});
