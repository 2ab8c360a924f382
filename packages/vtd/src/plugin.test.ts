/**
 * The VT-d plugin's declarations agree with what it builds: the capabilities are those of the default
 * unit, the vendor is the hw_info type its driver reports, and the factories build the model, the driver
 * and the vVT-d personalities.
 */
import { describe, expect, it } from 'vitest';
import { driverRig } from '../test/driver-rig.js';
import { VtdDriver } from './driver/vtd-driver.js';
import { featuresFromOptions, VtdOptionsSchema } from './hw/options.js';
import { VtdHardware } from './hw/vtd.js';
import { vtdPlugin } from './plugin.js';
import { createVtdViommu } from './viommu/personality.js';

describe('vtdPlugin', () => {
  it('is registered as vtd; its vendor is the hw_info type of its driver', () => {
    expect(vtdPlugin.meta.name).toBe('vtd');
    expect(vtdPlugin.meta.description).toMatch(/^Intel VT-d: /);
    const r = driverRig();
    const driver = vtdPlugin.createDriver(r.context);
    expect(driver).toBeInstanceOf(VtdDriver);
    driver.probe();
    const dev = r.device(0x10);
    driver.probeDevice(dev);
    expect(vtdPlugin.meta.vendor).toBe(driver.hwInfo(dev).type);
  });

  it('declares what the default unit has: both stages and nesting, PASIDs, ATS, PRI, dirty tracking, interrupt remapping', () => {
    const f = featuresFromOptions(VtdOptionsSchema.parse({}));
    const { capabilities } = vtdPlugin;
    expect(capabilities.stages).toEqual([
      ...(f.firstStage ? ['s1'] : []),
      ...(f.secondStage ? ['s2'] : []),
      ...(f.nesting ? ['nested'] : []),
    ]);
    expect(capabilities.pasid).toBe(f.pasidBits > 0);
    expect(capabilities.ats).toBe(f.deviceTlb);
    expect(capabilities.pri).toBe(f.pageRequests);
    expect(capabilities.dirtyTracking).toBe(f.secondStageAccessDirty);
    expect(capabilities.interruptRemapping).toBe(f.interruptRemapping);
    // The driver writes every PASID entry: the PASID table is the kernel's.
    expect(capabilities.pasidTableOwner).toBe('kernel');
    expect(capabilities.viommuModes).toEqual(['nested', 'shadow', 'emulated']);
  });

  it('builds the VT-d model and hands vIOMMUs to the vVT-d personalities', () => {
    const r = driverRig();
    expect(vtdPlugin.optionsSchema).toBe(VtdOptionsSchema);
    const hw = vtdPlugin.createHardware({ ...r.context, instance: 'dmar1', base: 0xfed9_2000n as never });
    expect(hw).toBeInstanceOf(VtdHardware);
    expect(vtdPlugin.createViommu).toBe(createVtdViommu);
  });
});
