/** IommuInstance keeps the faults its driver reports in a bounded log (a fault storm cannot grow it). */
import { describe, expect, it } from 'vitest';
import { fakeConfig, fakeMsiModule, fakePlugin } from '../../test/fake-plugin.js';
import type { FaultReporter } from '../iommu/driver.js';
import { NO_PASID, PERM_WRITE } from '../iommu/translation.js';
import { DEFAULT_LOG_CAPACITY } from '../log/bounded-log.js';
import { definePlugin } from '../plugin/plugin.js';
import { PluginRegistry } from '../plugin/plugin-registry.js';
import { Tracer } from '../trace/tracer.js';
import { createSystem } from './create-system.js';

/** The fake plugin, with its driver's fault reporter and its instance context handed to the test. */
async function systemWithReporter(tracer?: Tracer) {
  let report: FaultReporter | undefined;
  let hardwareContext: Parameters<typeof fakePlugin.createHardware>[0] | undefined;
  const plugin = definePlugin({
    ...fakePlugin,
    createHardware(context) {
      hardwareContext = context;
      return fakePlugin.createHardware(context);
    },
    createDriver(context) {
      report = context.reportFault;
      return fakePlugin.createDriver(context);
    },
  });
  const system = await createSystem(
    { ...fakeConfig(), seed: 42 },
    {
      registry: new PluginRegistry({ fake: async () => ({ default: plugin }) }),
      ...(tracer ? { tracer } : {}),
    },
  );
  return { system, report: report!, context: hardwareContext! };
}

const FAULT = {
  kind: 'translation',
  vendorCode: 'FAKE_FAULT',
  streamId: 0x10,
  pasid: NO_PASID,
  iova: 0x5000n,
  access: PERM_WRITE,
  recorded: true,
} as const;

describe('IommuInstance: the fault log', () => {
  it('a storm of 100k faults keeps the first DEFAULT_LOG_CAPACITY, counts the rest as lost, and emits all', async () => {
    const { system, report } = await systemWithReporter();
    const instance = system.iommu('iommu0');
    let emitted = 0;
    instance.events.on('fault', () => emitted++);
    for (let n = 0; n < 100_000; n++) {
      report({ ...FAULT, iova: BigInt(n) << 12n }, undefined);
    }
    expect(instance.faults.length).toBe(DEFAULT_LOG_CAPACITY);
    expect(instance.faults.lost).toBe(100_000 - DEFAULT_LOG_CAPACITY);
    expect(instance.faults.records.at(-1)?.fault.iova).toBe(BigInt(DEFAULT_LOG_CAPACITY - 1) << 12n);
    expect(emitted).toBe(100_000);
    await system.dispose();
  });
});

describe('IommuInstance: what the plugin is given and what it reports', () => {
  it("names the instance's interrupt lines after it and passes the seed", async () => {
    const { system, context } = await systemWithReporter();
    expect(context.instance).toBe('iommu0');
    expect(context.irq('eventq')).toBe(system.interrupts.line('iommu0.eventq'));
    expect(context.seed).toBe(42);
    expect('msi' in context).toBe(false);
    await system.dispose();
  });

  it('logs a reported fault with its device, and traces it naming the device or the stream', async () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const { system, report } = await systemWithReporter(tracer);
    const instance = system.iommu('iommu0');
    report(FAULT, system.device('nic0'));
    report(FAULT, undefined);
    expect(instance.faults.records.map((r) => r.device)).toEqual(['nic0', undefined]);
    const traced = tracer.records.filter((r) => r.name === 'fault.reported');
    expect(traced.map((r) => [r.layer, r.source, r.message, r.args.device])).toEqual([
      ['driver', 'iommu0', 'fault FAKE_FAULT reported for nic0 at IOVA 0x5000', 'nic0'],
      ['driver', 'iommu0', 'fault FAKE_FAULT reported for stream 0x10 at IOVA 0x5000', null],
    ]);
    expect(traced[0]!.args).toMatchObject({
      code: 'FAKE_FAULT',
      kind: 'translation',
      streamId: 0x10,
      iova: 0x5000n,
    });
    const probed = tracer.records.find((r) => r.name === 'iommu.probed');
    expect([probed?.layer, probed?.message, probed?.args]).toEqual([
      'system',
      'fake IOMMU iommu0 probed at 0x9000000',
      { plugin: 'fake', base: 0x900_0000n },
    ]);
    await system.dispose();
  });
});

describe('IommuInstances', () => {
  it('gives each instance the system seed plus its index, and its own MSI DeviceID from the top down', async () => {
    const contexts: Parameters<typeof fakePlugin.createHardware>[0][] = [];
    const plugin = definePlugin({
      ...fakePlugin,
      createHardware(context) {
        contexts.push(context);
        return fakePlugin.createHardware(context);
      },
    });
    const raw = {
      ...fakeConfig(),
      seed: 2 ** 32 - 1,
      iommus: [
        { name: 'iommu0', base: '0x0900_0000' },
        { name: 'iommu1', base: '0x0910_0000' },
        { name: 'iommu2', base: '0x0920_0000', msiDeviceId: 0x42 },
      ],
      msi: { controller: 'fake-msi' },
    };
    const system = await createSystem(raw, {
      registry: new PluginRegistry(
        { fake: async () => ({ default: plugin }) },
        { 'fake-msi': async () => ({ default: fakeMsiModule }) },
      ),
    });
    expect(contexts.map((c) => c.seed)).toEqual([2 ** 32 - 1, 0, 1]);
    expect(contexts.map((c) => c.msi?.deviceId)).toEqual([0xffff, 0xfffe, 0x42]);
    expect(contexts.every((c) => c.msi?.controller === system.msi)).toBe(true);
    expect(system.iommus.map((i) => i.name)).toEqual(['iommu0', 'iommu1', 'iommu2']);
    await system.dispose();
  });
});
