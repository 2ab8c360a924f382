import { describe, expect, it } from 'vitest';
import { fakeConfig, fakeMsiModule, fakePlugin } from '../../test/fake-plugin.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDeviceRef } from '../iommu/driver.js';
import type { MsiVector } from '../msi/msi-controller.js';
import { defineMsiModule } from '../msi/msi-module.js';
import { definePlugin } from '../plugin/plugin.js';
import { PluginRegistry } from '../plugin/plugin-registry.js';
import { createSystem } from './create-system.js';

const DOORBELL = 0x0808_0040n;

/** A system of the fake plugin whose driver logs releases and shutdowns, and an MSI module handing out `vectors`. */
async function system(log: string[], devices: Record<string, unknown>[]) {
  const plugin = definePlugin({
    ...fakePlugin,
    createDriver(context) {
      const driver = fakePlugin.createDriver(context);
      return {
        ...driver,
        releaseDevice: (device: IommuDeviceRef) => log.push(`release ${device.name}`),
        shutdown: () => log.push(`shutdown ${context.instance}`),
      };
    },
  });
  const msiModule = defineMsiModule({
    ...fakeMsiModule,
    create(context) {
      const controller = fakeMsiModule.create(context);
      return {
        ...controller,
        allocateVectors: (owner: { name: string }, count: number): MsiVector[] =>
          Array.from({ length: count }, (_, i) => {
            log.push(`allocate ${owner.name} ${i}`);
            return {
              message: { address: DOORBELL, data: 0x20 + i },
              eventId: i,
              intid: 8192 + i,
              cpu: 0,
              doorbell: controller.doorbells[0]!,
            };
          }),
        freeVectors: (owner: { name: string }) => log.push(`free ${owner.name}`),
        service: () => 2,
      };
    },
  });
  const raw = { ...fakeConfig(), devices, msi: { controller: 'fake-msi' } };
  return createSystem(raw, {
    registry: new PluginRegistry(
      { fake: async () => ({ default: plugin }) },
      { 'fake-msi': async () => ({ default: msiModule }) },
    ),
  });
}

const NIC = { name: 'nic0', rid: '00:02.0', iommu: 'iommu0', msiVectors: 2 };
const LEGACY = { name: 'legacy', rid: '00:04.0' };

describe('System', () => {
  it('names itself and refuses unknown IOMMUs by name', async () => {
    const s = await system([], [NIC]);
    expect(s.name).toBe('system');
    expect(s.iommus.map((i) => i.name)).toEqual(['iommu0']);
    expect(() => s.iommu('iommu9')).toThrow(IommufdError);
    expect(() => s.iommu('iommu9')).toThrow('no IOMMU instance named "iommu9"');
    await s.dispose();
  });

  it('sets up kernel MSIs: each MSI-X entry gets its vector, through the device domain', async () => {
    const log: string[] = [];
    const s = await system(log, [NIC]);
    s.kernelDma('nic0'); // a blocked device has no MSIs: its host driver attaches a domain first
    const vectors = s.setupKernelMsi('nic0', 2);
    expect(vectors.map((v) => v.message.data)).toEqual([0x20, 0x21]);
    expect(s.device('nic0').msix.message(0)).toEqual({ address: DOORBELL, data: 0x20 });
    expect(s.device('nic0').msix.message(1)).toEqual({ address: DOORBELL, data: 0x21 });
    expect(log).toEqual(['allocate nic0 0', 'allocate nic0 1']);
    await s.dispose();
  });

  it('gives the vectors back and clears the table when a vector cannot be programmed', async () => {
    const log: string[] = [];
    const s = await system(log, [NIC]);
    s.kernelDma('nic0');
    expect(() => s.setupKernelMsi('nic0', 3)).toThrow(/MSI-X vector 2 does not exist/);
    expect(log.at(-1)).toBe('free nic0');
    expect(s.device('nic0').msix.message(0)).toBeUndefined();
    await s.dispose();
  });

  it('counts the interrupt handlers and MSI deliveries one service ran', async () => {
    const s = await system([], [NIC]);
    expect(s.serviceInterrupts()).toBe(2);
    await s.dispose();
  });

  it('hands a device to the kernel DMA API in the domain its driver allocates, attached', async () => {
    const s = await system([], [NIC]);
    expect(() => s.setupKernelMsi('nic0', 1)).toThrow(/blocked/);
    const dma = s.kernelDma('nic0');
    expect(dma.device).toBe(s.device('nic0'));
    expect(s.iommuCore.domainAt(s.device('nic0'))).toBe(dma.domain);
    await s.dispose();
  });

  it('at dispose releases the devices behind each IOMMU (not the others), then shuts the driver down', async () => {
    const log: string[] = [];
    const s = await system(log, [NIC, LEGACY, { name: 'nic1', rid: '00:03.0', iommu: 'iommu0' }]);
    await s.dispose();
    expect(log).toEqual(['release nic0', 'release nic1', 'shutdown iommu0']);
  });
});
