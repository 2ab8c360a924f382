/** IommuInstance keeps the faults its driver reports in a bounded log (a fault storm cannot grow it). */
import { describe, expect, it } from 'vitest';
import { fakeConfig, fakePlugin } from '../../test/fake-plugin.js';
import type { FaultReporter } from '../iommu/driver.js';
import { NO_PASID, PERM_WRITE } from '../iommu/translation.js';
import { DEFAULT_LOG_CAPACITY } from '../log/bounded-log.js';
import { definePlugin } from '../plugin/plugin.js';
import { PluginRegistry } from '../plugin/plugin-registry.js';
import { createSystem } from './create-system.js';

/** The fake plugin, with its driver's fault reporter handed to the test. */
async function systemWithReporter() {
  let report: FaultReporter | undefined;
  const plugin = definePlugin({
    ...fakePlugin,
    createDriver(context) {
      report = context.reportFault;
      return fakePlugin.createDriver(context);
    },
  });
  const system = await createSystem(fakeConfig(), {
    registry: new PluginRegistry({ fake: async () => ({ default: plugin }) }),
  });
  return { system, report: report! };
}

describe('IommuInstance: the fault log', () => {
  it('a storm of 100k faults keeps the first DEFAULT_LOG_CAPACITY, counts the rest as lost, and emits all', async () => {
    const { system, report } = await systemWithReporter();
    const instance = system.iommu('iommu0');
    let emitted = 0;
    instance.events.on('fault', () => emitted++);
    for (let n = 0; n < 100_000; n++) {
      report(
        {
          kind: 'translation',
          vendorCode: 'FAKE_FAULT',
          streamId: 0x10,
          pasid: NO_PASID,
          iova: BigInt(n) << 12n,
          access: PERM_WRITE,
          recorded: true,
        },
        undefined,
      );
    }
    expect(instance.faults.length).toBe(DEFAULT_LOG_CAPACITY);
    expect(instance.faults.lost).toBe(100_000 - DEFAULT_LOG_CAPACITY);
    expect(instance.faults.records.at(-1)?.fault.iova).toBe(BigInt(DEFAULT_LOG_CAPACITY - 1) << 12n);
    expect(emitted).toBe(100_000);
    await system.dispose();
  });
});
