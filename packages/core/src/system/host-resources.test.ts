import { describe, expect, it } from 'vitest';
import { fakeConfig, fakeMsiModule, fakePlugin, fakeRegistry } from '../../test/fake-plugin.js';
import { type Hpa, hpa, PAGE_SIZE } from '../address/address.js';
import type { SystemConfig } from '../config/schema.js';
import { ConfigError } from '../errors/config-error.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IFrameAllocator } from '../memory/frame-allocator.js';
import { MemoryBus } from '../memory/memory-bus.js';
import { defineMsiModule } from '../msi/msi-module.js';
import { definePlugin } from '../plugin/plugin.js';
import { PluginRegistry } from '../plugin/plugin-registry.js';
import { createSystem } from './create-system.js';
import { hostRamIssues, vmPowerOnIssues } from './host-resources.js';
import type { System } from './system.js';
import type { VirtualMachine } from './vmm-module.js';

/** The fake plugin with a `window`-byte register window whose driver takes `tableBytes` of host RAM at probe. */
function hungryRegistry(tableBytes: number, window = 0x1000, msiTableBytes = 0): PluginRegistry {
  const plugin = definePlugin({
    ...fakePlugin,
    createHardware(context) {
      if (window === 0x1000) return fakePlugin.createHardware(context);
      // The fake hardware on a scratch bus, and a wider window of this instance's name on the real one.
      const hardware = fakePlugin.createHardware({ ...context, bus: new MemoryBus() });
      context.bus.addMmio(context.instance, context.base, window, { read: () => 0, write: () => {} });
      return { ...hardware, mmio: { base: context.base, size: window } };
    },
    createDriver(context) {
      const driver = fakePlugin.createDriver(context);
      return { ...driver, probe: () => void context.memory.allocBytes(tableBytes) };
    },
  });
  // An MSI controller that takes `msiTableBytes` of host RAM for its tables when created.
  const msi = defineMsiModule({
    ...fakeMsiModule,
    create(context) {
      if (msiTableBytes > 0) context.memory.allocBytes(msiTableBytes);
      return fakeMsiModule.create(context);
    },
  });
  return new PluginRegistry(
    { fake: async () => ({ default: plugin }) },
    { 'fake-msi': async () => ({ default: msi }) },
  );
}

async function issuesOf(raw: unknown, registry = fakeRegistry()) {
  const vmm = { createVms: () => [] };
  const error = await createSystem(raw, { registry, vmm }).then(
    async (system) => {
      await system.dispose();
      return undefined;
    },
    (e: unknown) => e,
  );
  if (error === undefined) return [];
  if (!(error instanceof ConfigError)) throw error;
  return error.issues.map((i) => `${i.path}: ${i.message}`);
}

describe('host resources a config needs, checked while building', () => {
  it('names memory.ram when host RAM cannot hold the IOMMU instances’ tables (ENOMEM)', async () => {
    const issues = await issuesOf(fakeConfig(), hungryRegistry(128 << 20));
    expect(issues).toEqual([
      expect.stringMatching(
        /^memory\.ram: host RAM \(64MiB\) is too small for what the IOMMU instances and devices allocate at probe: ENOMEM: /,
      ),
    ]);
  });

  it('names memory.ram when host RAM cannot hold the MSI controller’s tables (ENOMEM)', async () => {
    const raw = { ...fakeConfig(), msi: { controller: 'fake-msi' } };
    expect(await issuesOf(raw, hungryRegistry(PAGE_SIZE, 0x1000, 128 << 20))).toEqual([
      expect.stringMatching(
        /^memory\.ram: host RAM \(64MiB\) is too small for what the MSI controller allocates: ENOMEM: /,
      ),
    ]);
  });

  it('names iommus[i].base when the register window runs past the 52-bit physical space', async () => {
    const raw = fakeConfig();
    raw.iommus = [{ name: 'iommu0', base: '0xf_ffff_ffff_f000' }];
    expect(await issuesOf(raw, hungryRegistry(PAGE_SIZE, 0x2_0000))).toEqual([
      expect.stringMatching(/^iommus\[0\]\.base: region "iommu0" .* outside the 52-bit physical space$/),
    ]);
  });

  it('names vms[i].memory for a VM larger than host RAM, alone or beside the VMs before it', async () => {
    const alone = { ...fakeConfig(), vms: [{ name: 'vm0', memory: '128MiB' }] };
    expect(await issuesOf(alone)).toEqual([
      'vms[0].memory: 128MiB of guest RAM needs one 2 MiB aligned block of host RAM; 64MiB is free',
    ]);
    const summed = {
      ...fakeConfig(),
      vms: [
        { name: 'vm0', memory: '32MiB' },
        { name: 'vm1', memory: '16MiB' },
        { name: 'vm2', memory: '32MiB' },
      ],
    };
    expect(await issuesOf(summed)).toEqual([
      'vms[2].memory: 32MiB of guest RAM needs one 2 MiB aligned block of host RAM; 16MiB is free after vms[0..1]',
    ]);
    expect(await issuesOf({ ...summed, vms: summed.vms.slice(0, 2) })).toEqual([]);
  });

  it("names a scenario alloc step that host RAM cannot hold after the VMs' RAM", async () => {
    const raw = {
      ...fakeConfig(),
      vms: [{ name: 'vm0', memory: '32MiB' }],
      scenario: {
        steps: [
          { op: 'alloc', buffer: 'a', size: '16MiB' },
          { op: 'alloc', buffer: 'b', size: '32MiB' },
        ],
      },
    };
    expect(await issuesOf(raw)).toEqual([
      "scenario.steps[1].size: a 32MiB host buffer does not fit in host RAM; 16MiB is free after the VMs' RAM and earlier buffers",
    ]);
  });

  it('leaves host RAM as it found it after the check', async () => {
    const raw = { ...fakeConfig(), vms: [{ name: 'vm0', memory: '32MiB' }] };
    const system = await createSystem(raw, { registry: fakeRegistry(), vmm: { createVms: () => [] } });
    expect(system.memory.freeFrameCount).toBe((64 << 20) / PAGE_SIZE);
    await system.dispose();
  });
});

describe('vmPowerOnIssues', () => {
  /** VMs that take `bytes` of host RAM each at power-on (or throw `failure`), and give it back at power-off. */
  function vmm(bytes: readonly number[], failure?: Error) {
    return {
      createVms: (system: System): VirtualMachine[] =>
        bytes.map((size, i) => {
          let held: { base: Hpa; frames: number } | undefined;
          return {
            name: `vm${i}`,
            get state() {
              return held ? 'on' : 'off';
            },
            powerOn() {
              if (failure) throw failure;
              held = { base: system.memory.allocBytes(size), frames: size / PAGE_SIZE };
            },
            powerOff() {
              if (held) system.memory.freeFrames(held.base, held.frames);
              held = undefined;
            },
            serviceInterrupts: () => 0,
          };
        }),
    };
  }
  const twoVms = {
    ...fakeConfig(),
    vms: [
      { name: 'vm0', memory: '2MiB' },
      { name: 'vm1', memory: '2MiB' },
    ],
  };

  it('powers every VM on at once, names the one the host cannot hold, and leaves all off', async () => {
    const system = await createSystem(twoVms, { registry: fakeRegistry(), vmm: vmm([32 << 20, 48 << 20]) });
    expect(vmPowerOnIssues(system)).toEqual([
      {
        path: 'vms[1].memory',
        message: expect.stringMatching(
          /^powering vm1 on beside the VMs before it runs out of host RAM: ENOMEM: /,
        ),
      },
    ]);
    expect(system.vms.map((vm) => vm.state)).toEqual(['off', 'off']);
    expect(system.memory.freeFrameCount).toBe((64 << 20) / PAGE_SIZE);
    await system.dispose();
  });

  it('says nothing of earlier VMs for the first, and reports a thrown non-Error as text', async () => {
    const failures = [new IommufdError('ENOMEM', 'no room'), 'odd failure'];
    const system = await createSystem(twoVms, {
      registry: fakeRegistry(),
      vmm: {
        createVms: () =>
          failures.map((failure, i) => ({
            name: `vm${i}`,
            state: 'off' as const,
            powerOn() {
              throw failure;
            },
            powerOff() {},
            serviceInterrupts: () => 0,
          })),
      },
    });
    expect(vmPowerOnIssues(system)).toEqual([
      { path: 'vms[0].memory', message: 'powering vm0 on runs out of host RAM: ENOMEM: no room' },
      { path: 'vms[1]', message: 'vm1 cannot power on: odd failure' },
    ]);
    await system.dispose();
  });

  it('reports any other power-on failure at the VM', async () => {
    const system = await createSystem(twoVms, {
      registry: fakeRegistry(),
      vmm: vmm([0, 0], new Error('no vIOMMU')),
    });
    expect(vmPowerOnIssues(system)).toEqual([
      { path: 'vms[0]', message: 'vm0 cannot power on: no vIOMMU' },
      { path: 'vms[1]', message: 'vm1 cannot power on: no vIOMMU' },
    ]);
    await system.dispose();
  });
});

describe('hostRamIssues against an allocator that refuses on cue', () => {
  /** An allocator that answers each request in turn with a base, or throws what `answers` gives. */
  function allocator(answers: (Hpa | Error)[]) {
    const freed: [Hpa, number][] = [];
    const memory: IFrameAllocator = {
      allocFrames: () => {
        const answer = answers.shift()!;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      allocBytes: () => hpa(0n),
      freeFrames: (base, count) => void freed.push([base, count]),
      freeFrameCount: 256,
      allocatedFrameCount: 0,
    };
    return { memory, freed };
  }
  const NOMEM = new IommufdError('ENOMEM', 'no room');
  const config = (vms: number, allocs: string[]) =>
    ({
      vms: Array.from({ length: vms }, (_, i) => ({ name: `vm${i}`, memory: 2n << 20n })),
      scenario: { steps: allocs.map((size, i) => ({ op: 'alloc', buffer: `b${i}`, size: BigInt(size) })) },
    }) as unknown as SystemConfig;

  it('names each VM the host cannot hold, saying which VMs came before it', () => {
    const { memory } = allocator([NOMEM, hpa(0x1000n), NOMEM, new IommufdError('EINVAL', 'too many frames')]);
    expect(hostRamIssues(config(4, []), memory).map((i) => `${i.path}: ${i.message}`)).toEqual([
      'vms[0].memory: 2MiB of guest RAM needs one 2 MiB aligned block of host RAM; 1MiB is free',
      'vms[2].memory: 2MiB of guest RAM needs one 2 MiB aligned block of host RAM; 1MiB is free after vms[0..1]',
      'vms[3].memory: 2MiB of guest RAM needs one 2 MiB aligned block of host RAM; 1MiB is free after vms[0..2]',
    ]);
    const second = allocator([hpa(0n), NOMEM]);
    expect(hostRamIssues(config(2, []), second.memory)[0]!.message).toMatch(/ after vms\[0\]$/);
  });

  it("names each scenario buffer that does not fit, after the VMs' RAM and earlier buffers", () => {
    const { memory, freed } = allocator([hpa(0n), NOMEM, hpa(0x20_0000n), NOMEM]);
    expect(hostRamIssues(config(1, ['4096', '8192', '4096']), memory).map((i) => i.message)).toEqual([
      "a 4KiB host buffer does not fit in host RAM; 1MiB is free after the VMs' RAM",
      "a 4KiB host buffer does not fit in host RAM; 1MiB is free after the VMs' RAM and earlier buffers",
    ]);
    // What the check took, it gave back: the VM's 512 frames and the second buffer's two.
    expect(freed).toEqual([
      [hpa(0n), 512],
      [hpa(0x20_0000n), 2],
    ]);
    const alone = allocator([hpa(0n), NOMEM]);
    expect(
      hostRamIssues(config(0, ['4096', '4096']), alone.memory).map((i) => `${i.path}: ${i.message}`),
    ).toEqual([
      'scenario.steps[1].size: a 4KiB host buffer does not fit in host RAM; 1MiB is free after earlier buffers',
    ]);
  });

  it('lets any other allocator failure through, still giving back what it took', () => {
    const busy = new IommufdError('EBUSY', 'locked');
    const { memory, freed } = allocator([hpa(0n), busy]);
    expect(() => hostRamIssues(config(2, []), memory)).toThrow(busy);
    expect(freed).toEqual([[hpa(0n), 512]]);
    const bug = allocator([new TypeError('allocator bug')]);
    expect(() => hostRamIssues(config(1, []), bug.memory)).toThrow(TypeError);
  });
});
