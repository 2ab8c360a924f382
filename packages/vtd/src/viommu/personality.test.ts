/** The VT-d personality by mode, and the emulated vVT-d on the guest bus. */
import { EndpointDevice, hpa } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { vmRig } from '../../test/vm-rig.js';
import { EmulatedVvtd } from './emulated-vvtd.js';
import { NestedVvtd } from './nested-vvtd.js';
import { createVtdViommu } from './personality.js';
import { ShadowVvtd } from './shadow-vvtd.js';

describe('createVtdViommu', () => {
  it('builds the personality of the mode asked for', async () => {
    expect(createVtdViommu((await vmRig('nested')).context)).toBeInstanceOf(NestedVvtd);
    expect(createVtdViommu((await vmRig('shadow')).context)).toBeInstanceOf(ShadowVvtd);
    const rig = await vmRig('shadow');
    expect(createVtdViommu({ ...rig.context, mode: 'emulated', base: hpa(0x0907_0000) })).toBeInstanceOf(
      EmulatedVvtd,
    );
  });

  it('the nested and shadowing ones refuse a context without their backend', async () => {
    const rig = await vmRig('nested');
    const { nested: _, ...bare } = rig.context;
    expect(() => new NestedVvtd(bare)).toThrow(/backend/);
    expect(() => new ShadowVvtd({ ...bare, mode: 'shadow' })).toThrow(/iommufd context/);
  });
});

describe('the emulated vVT-d', () => {
  it('is the unit without ATS, page requests or interrupt remapping, translating an emulated device in guest memory', async () => {
    const rig = await vmRig('shadow');
    const emulated = new EmulatedVvtd({ ...rig.context, mode: 'emulated', base: hpa(0x0907_0000) });
    expect(emulated.hardware.features).toMatchObject({
      scalableMode: true,
      deviceTlb: false,
      pageRequests: false,
      interruptRemapping: false,
    });
    expect(emulated.mmio).toEqual({ base: 0x0907_0000n, size: emulated.hardware.mmio.size });
    // Translation is off until a guest driver turns it on: the device's DMA is GPA.
    const edu = new EndpointDevice(
      { name: 'edu0', rid: 0x80, streamId: 0x80 },
      rig.bus,
      emulated.hardware,
      rig.system.tracer,
    );
    const gpa = rig.guestPage();
    expect(edu.dmaWrite(gpa, Uint8Array.of(9))).toMatchObject({ ok: true });
    expect(rig.read(gpa, 1)).toEqual([9]);
    emulated.destroy();
    expect(rig.bus.listRegions().map((r) => r.name)).toEqual(['guest.ram']);
  });
});
