import { describe, expect, it } from 'vitest';
import { fakeConfig, fakeMsiModule, fakePlugin, fakeRegistry } from '../../test/fake-plugin.js';
import { validateConfig } from '../config/load-config.js';
import { resolveToken } from '../di/container.js';
import { ConfigError } from '../errors/config-error.js';
import { IommufdError } from '../errors/iommufd-error.js';
import { IFrameAllocator } from '../memory/frame-allocator.js';
import type { InterruptRemappingDriver } from '../msi/interrupt-remapping.js';
import { IMsiController } from '../msi/msi-controller.js';
import { defineMsiModule, type MsiControllerContext } from '../msi/msi-module.js';
import { definePlugin } from '../plugin/plugin.js';
import { IPluginRegistry, PluginRegistry } from '../plugin/plugin-registry.js';
import { ITracer, Tracer } from '../trace/tracer.js';
import { defineViommuFrontend, vendorViommuFrontend } from '../viommu/frontend-module.js';
import { createSystem } from './create-system.js';
import { IDevices } from './devices.js';
import { IIommuInstances } from './iommu-instances.js';
import { ISystem } from './system.js';
import { IIommuPlugin, IMemoryBus, IMsiModule, ISystemConfig, IViommuFrontend } from './tokens.js';

describe('createSystem', () => {
  it('wires every part through the system child container', async () => {
    const system = await createSystem(fakeConfig(), { registry: fakeRegistry() });
    const c = system.container;
    expect(resolveToken(c, ISystem)).toBe(system);
    expect(resolveToken(c, IMemoryBus)).toBe(system.bus);
    expect(resolveToken(c, IFrameAllocator)).toBe(system.memory);
    expect(resolveToken(c, ITracer)).toBe(system.tracer);
    expect(resolveToken(c, ISystemConfig).config.name).toBe('system');
    expect(
      resolveToken(c, IIommuInstances)
        .list()
        .map((i) => i.name),
    ).toEqual(['iommu0']);
    expect(resolveToken(c, IDevices).require('nic0').streamId).toBe(0x10);
    await system.dispose();
  });

  it("holds the config's choices behind tokens: the registry, the vendor plugin and the MSI module", async () => {
    const registry = fakeRegistry();
    const withMsi = { ...fakeConfig(), msi: { controller: 'fake-msi' } };
    const system = await createSystem(withMsi, { registry });
    const c = system.container;
    expect(resolveToken(c, IPluginRegistry)).toBe(registry);
    expect(resolveToken(c, IIommuPlugin)).toBe(fakePlugin);
    expect(resolveToken(c, IMsiModule)).toBe(fakeMsiModule);
    // The instances were built by the plugin the token holds.
    expect(resolveToken(c, IIommuInstances).get('iommu0')!.plugin).toBe(fakePlugin);
    await system.dispose();
    const without = await createSystem(fakeConfig(), { registry });
    expect(without.container.isRegistered(IMsiModule)).toBe(false);
    await without.dispose();
  });

  it('gives each system its own container and singletons', async () => {
    const a = await createSystem(fakeConfig(), { registry: fakeRegistry() });
    const b = await createSystem(fakeConfig(), { registry: fakeRegistry() });
    expect(a.container).not.toBe(b.container);
    expect(a.bus).not.toBe(b.bus);
    expect(resolveToken(a.container, IIommuInstances)).not.toBe(resolveToken(b.container, IIommuInstances));
    // Both place iommu0 at the same address: only possible because the buses are separate.
    expect(a.iommu('iommu0').hardware.mmio.base).toBe(b.iommu('iommu0').hardware.mmio.base);
    await Promise.all([a.dispose(), b.dispose()]);
  });

  it('builds devices with the plugin RID mapping, or the configured stream ID, and DMA reaches the bus', async () => {
    const raw = fakeConfig();
    raw.devices = [
      { name: 'nic0', rid: '00:02.0', iommu: 'iommu0' },
      { name: 'nic1', rid: '00:03.0', iommu: 'iommu0', streamId: 0x77 },
      { name: 'legacy', rid: '00:04.0' },
    ];
    const system = await createSystem(raw, { registry: fakeRegistry() });
    expect(system.devices.map((d) => [d.name, d.streamId, d.behindIommu])).toEqual([
      ['nic0', 0x10, 'iommu0'],
      ['nic1', 0x77, 'iommu0'],
      ['legacy', 0x20, undefined],
    ]);
    // The fake IOMMU maps IOVA page n to page n + 0x100; 0x8000_0000 - 0x10_0000 lands at RAM base.
    const result = system.device('nic0').dmaWrite(0x7ff0_0000n, Uint8Array.of(1, 2, 3), { hpas: true });
    expect(result).toMatchObject({ ok: true, hpas: [0x8000_0000n] });
    const direct = system.device('legacy').dmaWrite(0x8000_0010n, Uint8Array.of(9), { hpas: true });
    expect(direct).toMatchObject({ ok: true, hpas: [0x8000_0010n] });
    await system.dispose();
  });

  it('accepts an already validated config and a caller tracer that sees the boot', async () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const validated = await validateConfig(fakeConfig(), fakeRegistry());
    const system = await createSystem(validated, { registry: fakeRegistry(), tracer });
    expect(system.validated).toBe(validated);
    expect(tracer.records.map((r) => r.name)).toContain('iommu.probed');
    await system.dispose();
  });

  it('turns an IOMMU window that overlaps RAM into a config error naming iommus[i].base', async () => {
    const raw = fakeConfig();
    raw.iommus = [{ name: 'iommu0', base: '0x8000_1000' }];
    const error = await createSystem(raw, { registry: fakeRegistry() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]?.path).toBe('iommus[0].base');
    expect((error as ConfigError).issues[0]?.message).toMatch(/overlaps "dram"/);
  });

  it('wires the configured MSI controller (system.msi, the token), and removes it at dispose', async () => {
    const raw = fakeConfig();
    const bare = await createSystem(raw, { registry: fakeRegistry() });
    expect(bare.msi).toBeUndefined();
    expect(() => bare.requireMsi()).toThrow(/ENODEV/);
    raw.msi = { controller: 'fake-msi', options: { base: 0x0808_0000 } };
    const system = await createSystem(raw, { registry: fakeRegistry() });
    expect(system.msi?.kind).toBe('fake');
    expect(resolveToken(system.container, IMsiController)).toBe(system.msi);
    expect(system.bus.listRegions().map((r) => r.name)).toContain('fake-msi');
    await system.dispose();
    expect(system.bus.listRegions()).toEqual([]);
  });

  it('turns an MSI controller frame that overlaps RAM into a config error naming msi.options', async () => {
    const raw = fakeConfig();
    raw.msi = { controller: 'fake-msi', options: { base: 0x8000_0000 } };
    const error = await createSystem(raw, { registry: fakeRegistry() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]).toMatchObject({
      path: 'msi.options',
      message: expect.stringMatching(/overlaps "dram"/),
    });
  });

  it('refuses VMs without a VMM, and vIOMMU modes the plugin lacks, as config errors', async () => {
    const raw = { ...fakeConfig(), vms: [{ name: 'vm0', memory: '1GiB', viommus: [{ mode: 'emulated' }] }] };
    const error = await createSystem(raw, { registry: fakeRegistry() }).catch((e: unknown) => e);
    expect((error as ConfigError).issues).toEqual([
      { path: 'vms', message: 'VMs need the VMM (@iommukit/vmm); pass `vmm` to createSystem' },
    ]);
    const vmm = { createVms: () => [] };
    const modes = await createSystem(raw, { registry: fakeRegistry(), vmm }).catch((e: unknown) => e);
    expect((modes as ConfigError).issues).toEqual([
      { path: 'vms[0].viommus[0].mode', message: 'plugin fake has no emulated vIOMMU (it has: none)' },
    ]);
  });

  it('names the front-end when a configured one lacks a mode, and accepts the modes it offers', async () => {
    const raw = {
      ...fakeConfig(),
      viommu: { frontend: 'narrow' },
      vms: [{ name: 'vm0', memory: '1GiB', devices: ['nic0'], viommus: [{ mode: 'shadow' }] }],
    };
    const narrow = defineViommuFrontend({ ...vendorViommuFrontend, name: 'narrow', modes: () => ['nested'] });
    const registry = new PluginRegistry(
      { fake: async () => ({ default: fakePlugin }) },
      {},
      { narrow: async () => ({ default: narrow }) },
    );
    const vmm = { createVms: () => [] };
    const error = await createSystem(raw, { registry, vmm }).catch((e: unknown) => e);
    expect((error as ConfigError).issues).toEqual([
      {
        path: 'vms[0].viommus[0].mode',
        message: 'vIOMMU front-end narrow on plugin fake has no shadow vIOMMU (it has: nested)',
      },
    ]);
    const system = await createSystem(
      { ...raw, vms: [{ name: 'vm0', memory: '16MiB', devices: ['nic0'], viommus: [{ mode: 'nested' }] }] },
      { registry, vmm },
    );
    expect(resolveToken(system.container, IViommuFrontend)).toBe(narrow);
    await system.dispose();
  });

  it('asks the device’s IOMMU driver for its interrupt remapping when the MSI module sets up vectors', async () => {
    let remapperFor: MsiControllerContext<unknown>['remapperFor'];
    const capturing = defineMsiModule({
      ...fakeMsiModule,
      create(context) {
        remapperFor = context.remapperFor;
        return fakeMsiModule.create(context);
      },
    });
    const ir: InterruptRemappingDriver = {
      capabilities: { x2apic: true, posting: false },
      allocate: (device, count) => (device.name === 'nic0' ? 40 + count : -1),
      program: () => {},
      compose: () => ({ address: 0xfee0_0010n, data: 0 }),
      invalidate: () => {},
      free: () => {},
    };
    const remapping = definePlugin({
      ...fakePlugin,
      createDriver: (context) => Object.assign(fakePlugin.createDriver(context), { interruptRemapping: ir }),
    });
    const config = (plugin: string) => ({
      ...fakeConfig(),
      plugin,
      msi: { controller: 'fake-msi' },
      devices: [
        { name: 'nic0', rid: '00:02.0', iommu: 'iommu0' },
        { name: 'legacy0', rid: '00:04.0' },
      ],
    });
    const registry = new PluginRegistry(
      {
        fake: async () => ({ default: fakePlugin }),
        'fake-ir': async () => ({ default: { ...remapping, meta: { ...fakePlugin.meta, name: 'fake-ir' } } }),
      },
      { 'fake-msi': async () => ({ default: capturing }) },
    );
    const system = await createSystem(config('fake-ir'), { registry });
    // Bound to the device: its calls reach the driver with the device.
    expect(remapperFor!({ name: 'nic0', deviceId: 0x10 })?.allocate(2)).toBe(42);
    // A device with no IOMMU, or a name no device has: none.
    expect(remapperFor!({ name: 'legacy0', deviceId: 0x20 })).toBeUndefined();
    expect(remapperFor!({ name: 'ghost', deviceId: 0 })).toBeUndefined();
    await system.dispose();
    // A driver without interrupt remapping: none either.
    const plain = await createSystem(config('fake'), { registry });
    expect(remapperFor!({ name: 'nic0', deviceId: 0x10 })).toBeUndefined();
    await plain.dispose();
  });

  it('hands a config with VMs to the VMM, and powers running VMs off at dispose', async () => {
    const raw = { ...fakeConfig(), vms: [{ name: 'vm0', memory: '2MiB' }] };
    const log: string[] = [];
    const vm = {
      name: 'vm0',
      state: 'on' as 'on' | 'off',
      powerOn: () => log.push('on'),
      powerOff: () => {
        log.push('off');
        vm.state = 'off';
      },
      serviceInterrupts: () => 0,
    };
    const system = await createSystem(raw, { registry: fakeRegistry(), vmm: { createVms: () => [vm] } });
    expect(system.vm('vm0')).toBe(vm);
    expect(() => system.vm('vm9')).toThrow(/no VM named "vm9"/);
    await system.dispose();
    expect(log).toEqual(['off']);
  });

  it('dispose releases bus regions and is idempotent', async () => {
    const system = await createSystem(fakeConfig(), { registry: fakeRegistry() });
    system.device('nic0').dmaWrite(0x7ff0_0000n, Uint8Array.of(1));
    expect(system.bus.allocatedBytes).toBe(4096);
    await system.dispose();
    await system.dispose();
    expect(system.bus.listRegions()).toEqual([]);
    expect(system.bus.allocatedBytes).toBe(0);
  });
});

describe('createSystem: which failures become config errors', () => {
  /** The fake plugin whose hardware constructor throws `error`. */
  const failingHardware = (error: unknown) =>
    new PluginRegistry({
      fake: async () => ({
        default: definePlugin({
          ...fakePlugin,
          createHardware() {
            throw error;
          },
        }),
      }),
    });
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (e: unknown) => e,
    );

  it('names iommus[i].base for a window clash of that instance, without the errno prefix', async () => {
    const clash = new IommufdError('EADDRINUSE', 'region iommu0 overlaps "dram"', { name: 'iommu0' });
    const error = await failure(createSystem(fakeConfig(), { registry: failingHardware(clash) }));
    expect((error as ConfigError).issues).toEqual([
      { path: 'iommus[0].base', message: 'region iommu0 overlaps "dram"' },
    ]);
    expect((error as ConfigError).cause).toBe(clash);
  });

  it('lets through errors of another code, of no instance, or that are no IommufdError', async () => {
    for (const thrown of [
      new IommufdError('EBUSY', 'busy', { name: 'iommu0' }),
      new IommufdError('EINVAL', 'bad', { name: 'elsewhere' }),
      new TypeError('plugin bug'),
    ])
      expect(await failure(createSystem(fakeConfig(), { registry: failingHardware(thrown) }))).toBe(thrown);
  });

  it('names msi.options for an MSI frame clash only, letting other MSI failures through', async () => {
    const registry = (error: unknown) =>
      new PluginRegistry(
        { fake: async () => ({ default: fakePlugin }) },
        {
          'fake-msi': async () => ({
            default: defineMsiModule({
              ...fakeMsiModule,
              create() {
                throw error;
              },
            }),
          }),
        },
      );
    const raw = { ...fakeConfig(), msi: { controller: 'fake-msi' } };
    const clash = new IommufdError('EADDRINUSE', 'frame overlaps iommu0');
    expect(((await failure(createSystem(raw, { registry: registry(clash) }))) as ConfigError).issues).toEqual(
      [{ path: 'msi.options', message: 'frame overlaps iommu0' }],
    );
    for (const thrown of [new IommufdError('EINVAL', 'bad'), new RangeError('bug')])
      expect(await failure(createSystem(raw, { registry: registry(thrown) }))).toBe(thrown);
  });

  it('asks the VMM for VMs only when the config has some', async () => {
    let asked = 0;
    const system = await createSystem(fakeConfig(), {
      registry: fakeRegistry(),
      vmm: {
        createVms: () => {
          asked++;
          return [];
        },
      },
    });
    expect(asked).toBe(0);
    expect(system.vms).toEqual([]);
    await system.dispose();
  });
});
