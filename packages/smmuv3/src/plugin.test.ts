/**
 * The SMMUv3 plugin's declarations agree with what it builds: the capabilities are those of the default
 * SMMU, the vendor is the hw_info type its driver reports, and the factories build the model, the driver
 * and the vSMMUv3 personalities.
 */
import { describe, expect, it } from 'vitest';
import { createDriverSystem } from '../test/driver-system.js';
import { Smmuv3Driver } from './driver/smmuv3-driver.js';
import { featuresFromOptions, Smmuv3OptionsSchema } from './hw/options.js';
import { Smmuv3Hardware } from './hw/smmuv3.js';
import { smmuv3Plugin } from './plugin.js';
import { smmuv3GuestOps } from './viommu/guest-ops.js';
import { createSmmuv3Viommu } from './viommu/personality.js';

describe('smmuv3Plugin', () => {
  it('is registered as smmuv3; its vendor is the hw_info type of its driver', () => {
    expect(smmuv3Plugin.meta.name).toBe('smmuv3');
    const s = createDriverSystem();
    const dev = s.device('dev0', 0x10);
    s.probe(dev);
    expect(smmuv3Plugin.meta.vendor).toBe(s.driver.hwInfo(dev).type);
  });

  it('declares what the default SMMU has: both stages and nesting, PASIDs, ATS, PRI, dirty tracking', () => {
    const f = featuresFromOptions(Smmuv3OptionsSchema.parse({}));
    const options = Smmuv3OptionsSchema.parse({});
    const { capabilities } = smmuv3Plugin;
    expect(capabilities.stages).toEqual([
      ...(f.s1 ? ['s1'] : []),
      ...(f.s2 ? ['s2'] : []),
      ...(options.nesting ? ['nested'] : []),
    ]);
    expect(capabilities.pasid).toBe(f.ssidBits > 0);
    expect(capabilities.ats).toBe(f.ats);
    expect(capabilities.pri).toBe(f.pri);
    expect(capabilities.dirtyTracking).toBe(f.httu === 'access-dirty');
    // Nesting hands the CD table (the PASID table) to the guest.
    expect(capabilities.pasidTableOwner).toBe('user');
    expect(capabilities.viommuModes).toEqual(['nested', 'emulated']);
  });

  it('builds the SMMUv3 model, its driver, the vSMMUv3 personalities and guest ops', () => {
    const s = createDriverSystem({ noProbe: true });
    expect(smmuv3Plugin.optionsSchema).toBe(Smmuv3OptionsSchema);
    const context = {
      instance: 'smmu1',
      base: 0x0a00_0000n,
      options: s.options,
      bus: s.bus,
      tracer: s.tracer,
    };
    const hw = smmuv3Plugin.createHardware({
      ...context,
      irq: (name: string) => s.ic.line(`smmu1.${name}`),
    } as never);
    expect(hw).toBeInstanceOf(Smmuv3Hardware);
    const driver = smmuv3Plugin.createDriver({
      ...context,
      irq: (name: string) => s.ic.line(`smmu1.${name}`),
      memory: s.memory,
      reportFault: () => {},
      reportPageRequest: () => {},
    } as never);
    expect(driver).toBeInstanceOf(Smmuv3Driver);
    expect(driver.instance).toBe('smmu1');
    expect(smmuv3Plugin.createViommu).toBe(createSmmuv3Viommu);
    expect(smmuv3Plugin.guestOps).toBe(smmuv3GuestOps);
  });
});
