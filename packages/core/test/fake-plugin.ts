/**
 * A tiny plugin for core tests (the core cannot depend on @iommukit/testing's mock): its hardware maps
 * every IOVA page to `page + offsetPages` and its driver does nothing but exist. Enough to build systems.
 */
import { z } from 'zod';
import { hpa } from '../src/address/address.js';
import type { IommuDomain, IommuDriver } from '../src/iommu/driver.js';
import type { IommuHardware } from '../src/iommu/hardware.js';
import { PERM_READ, PERM_WRITE } from '../src/iommu/translation.js';
import { defineMsiModule } from '../src/msi/msi-module.js';
import { definePlugin } from '../src/plugin/plugin.js';
import { PluginRegistry } from '../src/plugin/plugin-registry.js';

export const FakeOptionsSchema = z.strictObject({ offsetPages: z.number().int().min(0).default(0x100) });

const staticDomain = (type: 'blocked' | 'identity'): IommuDomain => ({
  id: 0,
  type,
  pgsizeBitmap: 0n,
  aperture: { start: 0n as never, end: 0n as never },
  map: () => {},
  unmap: () => 0n,
  iotlbSync: () => {},
  iovaToPhys: () => undefined,
  free: () => {},
});

export const fakePlugin = definePlugin<z.output<typeof FakeOptionsSchema>>({
  meta: { name: 'fake', version: '1.0.0', vendor: 'fake' },
  capabilities: {
    stages: ['s1'],
    pasid: false,
    ats: false,
    pri: false,
    dirtyTracking: false,
    pasidTableOwner: 'none',
    viommuModes: [],
  },
  optionsSchema: FakeOptionsSchema,
  createHardware(context): IommuHardware {
    context.bus.addMmio(context.instance, context.base, 0x1000, { read: () => 0, write: () => {} });
    return {
      instance: context.instance,
      mmio: { base: context.base, size: 0x1000 },
      translate: (r) => ({
        ok: true,
        pfn: r.iovaPfn + context.options.offsetPages,
        perm: PERM_READ | PERM_WRITE,
        pageShift: 12,
      }),
      connectEndpoint: () => {},
      disconnectEndpoint: () => {},
      identify: () => ({ ID: '0xfa4e' }),
      stats: () => ({}),
    };
  },
  createDriver(context): IommuDriver {
    return {
      instance: context.instance,
      probe: () => {},
      probeDevice: () => {},
      releaseDevice: () => {},
      domainAllocPaging: () => staticDomain('identity'),
      blockedDomain: staticDomain('blocked'),
      attachDev: () => {},
      hwInfo: () => ({
        type: 'fake',
        data: {},
        maxPasidLog2: 0,
        capabilities: { dirtyTracking: false, pasidExec: false, pasidPriv: false },
      }),
      shutdown: () => {},
    };
  },
});

/** An MSI module whose controller is one doorbell page at `options.base` and nothing else. */
export const fakeMsiModule = defineMsiModule({
  name: 'fake-msi',
  description: 'a doorbell page',
  optionsSchema: z.strictObject({ base: z.number().int().min(0).multipleOf(0x1000).default(0x0808_0000) }),
  create({ options, bus }) {
    bus.addMmio('fake-msi', options.base, 0x1000, { read: () => 0, write: () => {} });
    const doorbell = {
      name: 'fake-msi',
      address: hpa(BigInt(options.base)),
      page: hpa(BigInt(options.base)),
    };
    return {
      kind: 'fake',
      doorbells: [doorbell],
      doorbellFor: () => doorbell,
      cpus: [],
      allocateVectors: () => [],
      freeVectors: () => {},
      setAffinity: () => {},
      configure: () => {},
      stateOf: () => 'inactive',
      requestIrq: () => () => {},
      takeOutcomes: () => [],
      service: () => 0,
      dispose: () => bus.removeRegion('fake-msi'),
    };
  },
  createVirtual() {
    throw new Error('not used');
  },
});

export function fakeRegistry(): PluginRegistry {
  return new PluginRegistry(
    { fake: async () => ({ default: fakePlugin }) },
    { 'fake-msi': async () => ({ default: fakeMsiModule }) },
  );
}

/** A valid config for the fake plugin; tests spread mistakes over it. */
export function fakeConfig(): Record<string, unknown> {
  return {
    plugin: 'fake',
    memory: { ram: [{ name: 'dram', base: '0x8000_0000', size: '64MiB' }] },
    iommus: [{ name: 'iommu0', base: '0x0900_0000' }],
    devices: [{ name: 'nic0', rid: '00:02.0', iommu: 'iommu0' }],
  };
}
