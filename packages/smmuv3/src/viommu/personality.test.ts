/**
 * The SMMUv3 plugin's vIOMMU personalities: `createSmmuv3Viommu` picks the mode, and the emulated vSMMUv3 is
 * the device model on the guest's bus without ATS, PRI or MSIs (emulated-vsmmu.ts, personality.ts).
 */
import { hpa, InterruptController, MemoryBus, Tracer, type ViommuContext } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { IDR0_ATS, IDR0_MSI, IDR0_PRI, IDR0_S1P, IDR0_S2P } from '../hw/idr.js';
import { SMMU_IRQ_LINES } from '../hw/interrupts.js';
import { REG, SMMU_MMIO_SIZE } from '../hw/regs.js';
import { Smmuv3Hardware } from '../hw/smmuv3.js';
import { EmulatedVsmmu } from './emulated-vsmmu.js';
import { createSmmuv3Viommu } from './personality.js';

const BASE = 0x0905_0000n;

function context(mode: 'emulated' | 'nested') {
  const bus = new MemoryBus();
  const ic = new InterruptController();
  const lines: string[] = [];
  const ctx: ViommuContext = {
    name: 'vm0.viommu',
    mode,
    bus,
    base: hpa(BASE),
    tracer: new Tracer(),
    irq: (name) => {
      lines.push(name);
      return ic.line(`vm0.viommu.${name}`);
    },
  };
  return { ctx, bus, lines, counter: bus.counter('guest') };
}

describe('createSmmuv3Viommu', () => {
  it('emulated mode: an SMMUv3 model at the window base, both stages, no ATS, PRI or MSIs', () => {
    const { ctx, bus, counter } = context('emulated');
    const viommu = createSmmuv3Viommu(ctx);
    expect(viommu).toBeInstanceOf(EmulatedVsmmu);
    expect(viommu.mode).toBe('emulated');
    expect(viommu.hardware).toBeInstanceOf(Smmuv3Hardware);
    expect(viommu.mmio).toEqual({ base: BASE, size: SMMU_MMIO_SIZE });
    const idr0 = bus.read(BASE + BigInt(REG.IDR0), 4, counter);
    expect(idr0.ok).toBe(true);
    const value = Number(idr0.ok ? idr0.value : 0);
    expect(value & (IDR0_S1P | IDR0_S2P)).toBe(IDR0_S1P | IDR0_S2P);
    expect(value & (IDR0_ATS | IDR0_PRI | IDR0_MSI)).toBe(0);
  });

  it('the emulated model asks the context for its wired lines, without a PRI line', () => {
    const { ctx, lines } = context('emulated');
    createSmmuv3Viommu(ctx);
    expect([...lines].sort()).toEqual(
      [SMMU_IRQ_LINES.cmdqSync, SMMU_IRQ_LINES.eventq, SMMU_IRQ_LINES.gerror].sort(),
    );
  });

  it('destroy takes the register window off the guest bus', () => {
    const { ctx, bus, counter } = context('emulated');
    const viommu = createSmmuv3Viommu(ctx);
    viommu.destroy();
    expect(bus.read(BASE + BigInt(REG.IDR0), 4, counter).ok).toBe(false);
  });

  it('nested mode needs the VM’s iommufd backend', () => {
    const { ctx } = context('nested');
    expect(() => createSmmuv3Viommu(ctx)).toThrowError(/nested vSMMU needs the VM's iommufd backend/);
  });
});
