/** VmMsi's own bookkeeping: vector look-ups, one injection at a time, and the rollback of a failed setup. */
import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { smmuHost } from '../test/host.js';
import { Vm } from './vm.js';

const MiB = 2 ** 20;

async function vm(spec: Partial<ConstructorParameters<typeof Vm>[1]>, its: Record<string, unknown>[]) {
  const { system, host } = await smmuHost(['nic0', 'nic1'], {}, { controller: 'gic-its', options: { its } });
  const v = new Vm(host, { name: 'vm0', memory: 32 * MiB, devices: ['nic0'], ...spec });
  v.powerOn();
  return { system, vm: v, msi: v.msi!, hostMsi: system.requireMsi() };
}

describe('VmMsi', () => {
  it('guest vectors by device and index: ENOENT without MSIs, EINVAL past the count', async () => {
    const { vm: v, msi } = await vm({}, [{ name: 'its0', base: 0x2000_0000 }]);
    expect(errnoOf(() => msi.guestVector('nic0', 0))).toBe('ENOENT');
    msi.setupDevice(v.assignedDevice('nic0'), 2);
    expect(msi.guestVector('nic0', 1)).toMatchObject({ eventId: 1, intid: 8193 });
    expect(errnoOf(() => msi.guestVector('nic0', 2))).toBe('EINVAL');
    expect(errnoOf(() => msi.guestVector('nic1', 0))).toBe('ENOENT');
  });

  it('an injection is reported once', async () => {
    const { system, vm: v, msi } = await vm({}, [{ name: 'its0', base: 0x2000_0000 }]);
    msi.setupDevice(v.assignedDevice('nic0'), 1);
    expect(msi.takeInjection()).toBeUndefined();
    system.device('nic0').signalMsi(0);
    v.serviceInterrupts();
    expect(msi.takeInjection()).toMatchObject({ kind: 'delivered', arrival: { deviceId: 0x8, eventId: 0 } });
    expect(msi.takeInjection()).toBeUndefined();
  });

  it('a setup that fails (passthrough EEXIST behind a nested vIOMMU) gives back both sides’ vectors', async () => {
    const its = [
      { name: 'its0', base: 0x2000_0000 },
      { name: 'its1', base: 0x2004_0000, devices: ['nic1'] },
    ];
    const {
      system,
      vm: v,
      msi,
      hostMsi,
    } = await vm(
      { devices: ['nic0', 'nic1'], viommus: ['nested'], msi: { mode: 'passthrough', rmr: false } },
      its,
    );
    msi.setupDevice(v.assignedDevice('nic0'), 1);
    // nic1 shares the nest-parent stage 2 but its doorbell is another ITS's page: the VMM cannot split a
    // nested VM's stage 2, so the conflict stands.
    expect(errnoOf(() => msi.setupDevice(v.assignedDevice('nic1'), 2))).toBe('EEXIST');
    const nic1 = system.device('nic1');
    expect(nic1.signalMsi(0)).toBeUndefined(); // its MSI-X table was reset
    expect(errnoOf(() => msi.guestVector('nic1', 0))).toBe('ENOENT');
    // Neither controller kept the vectors: both allocate them again.
    const hostRequester = { name: 'nic1', deviceId: nic1.streamId };
    expect(hostMsi.allocateVectors(hostRequester, 2)).toHaveLength(2);
    expect(msi.guest.allocateVectors({ name: 'nic1', deviceId: 0x10 }, 2)).toHaveLength(2);
    // nic0 still works.
    system.device('nic0').signalMsi(0);
    v.serviceInterrupts();
    expect(msi.takeInjection()).toMatchObject({ kind: 'delivered', arrival: { deviceId: 0x8 } });
  });
});
