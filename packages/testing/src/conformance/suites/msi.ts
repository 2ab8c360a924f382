/**
 * MSI doorbells through the plugin's domains (Linux `iommufd_sw_msi`): with a SW MSI window, the doorbell
 * page iommufd maps there must be writable through the domain and move with the device on replace; a
 * plugin without one (a hardware MSI window) hands the doorbell address back untranslated.
 */
import { hpa, swMsiWindowOf } from '@iommukit/core';
import { expect, it } from 'vitest';
import { expectDmaFault, expectDmaOk } from '../expect-errno.js';
import type { Harness } from '../harness.js';

export function msiCases(h: () => Harness): void {
  it('iommufd_sw_msi: the MSI write to the SW MSI IOVA reaches the doorbell, and follows the device on replace', () => {
    const { system, fd, devId1, dev1, buffer, read } = h();
    const doorbell = hpa(buffer + 0x4_0040n);
    const window = swMsiWindowOf(system.iommuCore.driverOf(dev1), dev1);
    const ioas = fd.ioasAlloc();
    fd.attach(devId1, ioas);
    const address = fd.deviceSetupSwMsi(devId1, doorbell);
    if (!window) {
      expect(address).toBe(doorbell);
      return;
    }
    expect(address >= window.start && address < window.start + window.length).toBe(true);
    expect(address % 0x1000n).toBe(0x40n);
    expectDmaOk(dev1.msiWrite(address, 0x1234_5678));
    expect([...read(doorbell, 4)]).toEqual([0x78, 0x56, 0x34, 0x12]);
    const own = fd.hwptAlloc({ devId: devId1, ptId: ioas });
    fd.replace(devId1, own);
    expectDmaOk(dev1.msiWrite(address, 0x9abc_def0));
    expect([...read(doorbell, 4)]).toEqual([0xf0, 0xde, 0xbc, 0x9a]);
    fd.detach(devId1);
    expectDmaFault(dev1.msiWrite(address, 0));
  });
}
