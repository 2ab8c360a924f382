/**
 * A nested vSMMUv3 records C_BAD_STREAMID for an out-of-range virtual StreamID only when the guest set
 * CR2.RECINVSID, as the SMMU it presents would (IHI 0070 §6.3.12, §7.3.3).
 */
import {
  CR0_SMMUEN,
  CR2_RECINVSID,
  encodeCfgiSte,
  type NestedVsmmu,
  REG,
  type Smmuv3Driver,
} from '@iommukit/smmuv3';
import { describe, expect, it } from 'vitest';
import { smmuHost } from '../test/host.js';
import { VIOMMU_WINDOWS, Vm } from './vm.js';

const NIC_VSID = 0x08;

describe('nested vSMMUv3: C_BAD_STREAMID and the guest CR2.RECINVSID', () => {
  it.each([
    [0, []],
    [CR2_RECINVSID, ['C_BAD_STREAMID']],
  ])(
    'CR2 = %i: the guest Event queue gets %j for a StreamID beyond its Stream table',
    async (cr2, events) => {
      const { system, host } = await smmuHost();
      const vm = new Vm(host, { name: 'vm0', memory: 64 * 2 ** 20, devices: ['nic0'], viommus: ['nested'] });
      vm.powerOn();
      const vsmmu = vm.viommu() as NestedVsmmu;
      // Guest code behind its driver's back: SMMUEN off, a Stream table of 8 StreamIDs (nic0's vSID 8 is
      // beyond it), CR2 as the row says, SMMUEN on again; then the driver invalidates nic0's STE.
      const bus = vm.memory.bus;
      const who = bus.counter('vm0.rogue');
      const mmio = (offset: number, value: number) =>
        bus.write(VIOMMU_WINDOWS.nested + offset, 4, value, who);
      const cr0 = vsmmu.programming.regs.get(REG.CR0);
      const cfg = vsmmu.programming.regs.get(REG.STRTAB_BASE_CFG);
      mmio(REG.CR0, cr0 & ~CR0_SMMUEN);
      mmio(REG.STRTAB_BASE_CFG, (cfg & ~0x3f) | 3);
      mmio(REG.CR2, cr2);
      mmio(REG.CR0, cr0);
      (vm.guest.driver as unknown as Smmuv3Driver).cmdq.issue(
        encodeCfgiSte({ streamId: NIC_VSID, leaf: true }),
      );
      vm.serviceInterrupts();
      expect(vm.guest.faults.records.map((f) => f.fault.vendorCode)).toEqual(events);
      // Recorded or not, the device is refused.
      expect(system.device('nic0').dmaWrite(0x1000n, Uint8Array.of(1)).ok).toBe(false);
    },
  );
});
