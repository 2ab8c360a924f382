/**
 * The MSI steps on the fake iommufd system with the fake ITS: the setup's summary (with and without the
 * SW MSI cookie), and every outcome `sendMsi` can find — delivered, pending, dropped, refused by the
 * IOMMU, nothing arriving, a vector never set up — checked against what the step expects.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fakeIommufdConfig, fakeIommufdRegistry } from '../../test/fake-iommufd-plugin.js';
import { FAKE_FIRST_INTID } from '../../test/fake-msi-controller.js';
import { validateConfig } from '../config/load-config.js';
import type { IMsiController } from '../msi/msi-controller.js';
import { createSystem } from '../system/create-system.js';
import type { System } from '../system/system.js';
import { type MsiExpectation, runMsiSetup, sendMsi } from './msi-steps.js';

let system: System;
let its: IMsiController;

beforeEach(async () => {
  const raw = {
    ...fakeIommufdConfig(),
    msi: { controller: 'fake-its' },
    devices: [
      { name: 'dev0', rid: '00:02.0', iommu: 'iommu0', msiVectors: 4 },
      { name: 'legacy', rid: '00:05.0', msiVectors: 1 },
    ],
  };
  system = await createSystem(await validateConfig(raw, fakeIommufdRegistry()), {
    registry: fakeIommufdRegistry(),
  });
  its = system.requireMsi();
  // dev0 in a paging domain: the SW MSI cookie maps the doorbell at the start of the SW MSI window.
  const domain = system.iommu('iommu0').driver.domainAllocPaging();
  system.iommuCore.attachDevice(system.device('dev0'), domain);
});

afterEach(() => system.dispose());

const send = (device: string, vector: number, want: MsiExpectation) =>
  sendMsi(system.device(device), vector, its, want);

describe('runMsiSetup', () => {
  it('lists each vector, and says when the SW MSI cookie maps the doorbell elsewhere', () => {
    expect(runMsiSetup(system, 'dev0', 2)).toBe(
      'dev0: 2 MSI vector(s) on fake-its: event 0 → INTID 8192 on CPU0, event 1 → INTID 8193 on CPU1; MSI address 0x8000040 (the SW MSI cookie maps doorbell 0x8080040 there)',
    );
    expect(runMsiSetup(system, 'legacy', 1)).toBe(
      'legacy: 1 MSI vector(s) on fake-its: event 0 → INTID 8194 on CPU0; MSI address 0x8080040',
    );
  });
});

describe('sendMsi', () => {
  beforeEach(() => {
    runMsiSetup(system, 'dev0', 2);
    runMsiSetup(system, 'legacy', 1);
  });

  it('follows a vector through the IOMMU to the CPU that takes it', () => {
    expect(send('dev0', 1, { expect: 'delivered', cpu: 1 })).toBe(
      'dev0 MSI vector 1: data 0x1 to 0x8000040 → HPA 0x8080040 → fake-its: DeviceID 0x10 EventID 1 → INTID 8193 taken by CPU1 (priority 0xa0) (as expected)',
    );
    expect(send('legacy', 0, { expect: 'delivered' })).toBe(
      'legacy MSI vector 0: data 0x0 to 0x8080040 → HPA 0x8080040 → fake-its: DeviceID 0x28 EventID 0 → INTID 8194 taken by CPU0 (priority 0xa0) (as expected)',
    );
    expect(its.cpus[1]!.arrivals.map((a) => a.intid)).toEqual([FAKE_FIRST_INTID + 1]);
  });

  it('reports a disabled interrupt as pending, and an unmapped event as dropped', () => {
    its.configure(FAKE_FIRST_INTID, { enabled: false });
    expect(send('dev0', 0, { expect: 'pending' })).toBe(
      'dev0 MSI vector 0: data 0x0 to 0x8000040 → HPA 0x8080040 → DeviceID 0x10 EventID 0 → INTID 8192 pending (disabled) (as expected)',
    );
    its.freeVectors({ name: 'dev0', deviceId: system.device('dev0').streamId });
    expect(send('dev0', 1, { expect: 'dropped' })).toBe(
      'dev0 MSI vector 1: data 0x1 to 0x8000040 → HPA 0x8080040 → DeviceID 0x10 EventID 1 dropped: no such device or event (as expected)',
    );
  });

  it('reports an MSI the IOMMU refuses as its fault', () => {
    system.iommuCore.attachDevice(system.device('dev0'), system.iommu('iommu0').driver.blockedDomain);
    expect(send('dev0', 0, { expect: 'fault', fault: 'F_FAKE_BLOCKED' })).toBe(
      'dev0 MSI vector 0: data 0x0 to 0x8000040 → fault F_FAKE_BLOCKED (bad-stream, recorded) (as expected)',
    );
    expect(() => send('dev0', 0, { expect: 'fault', fault: 'F_OTHER' })).toThrow(
      'dev0 MSI vector 0: data 0x0 to 0x8000040 → fault F_FAKE_BLOCKED (bad-stream, recorded), expected fault F_OTHER',
    );
    expect(() => send('dev0', 0, { expect: 'delivered' })).toThrow(
      'dev0 MSI vector 0: data 0x0 to 0x8000040 → fault F_FAKE_BLOCKED (bad-stream, recorded), expected delivered',
    );
  });

  it('fails when the outcome is not the one expected', () => {
    expect(() => send('dev0', 1, { expect: 'delivered', cpu: 0 })).toThrow(
      /INTID 8193 taken by CPU1 \(priority 0xa0\); expected CPU0$/,
    );
    expect(() => send('dev0', 1, { expect: 'pending' })).toThrow(
      /taken by CPU1 \(priority 0xa0\); expected pending$/,
    );
    expect(() => send('dev0', 0, { expect: 'fault' })).toThrow(
      /taken by CPU0 \(priority 0xa0\); expected fault$/,
    );
  });

  it('fails a vector that was never set up, and one whose write reaches no doorbell', () => {
    expect(() => send('dev0', 3, { expect: 'delivered' })).toThrow(
      'dev0 MSI-X vector 3 is not set up (masked or unprogrammed)',
    );
    const device = system.device('legacy');
    device.msix.program(0, { address: 0x8000_0000n, data: 7 });
    expect(() => send('legacy', 0, { expect: 'delivered' })).toThrow(
      'legacy MSI vector 0: data 0x7 to 0x80000000 → HPA 0x80000000, which is no MSI doorbell: nothing arrived',
    );
  });

  it('lets the caller follow a delivered MSI further and checks the final outcome', () => {
    const forwarded = sendMsi(system.device('dev0'), 1, its, { expect: 'pending' }, (outcome) => {
      expect(outcome.kind).toBe('delivered');
      return { outcome: { kind: 'pending', intid: 40, deviceId: 1, eventId: 2 }, where: 'guest' };
    });
    expect(forwarded).toBe(
      'dev0 MSI vector 1: data 0x1 to 0x8000040 → HPA 0x8080040 → fake-its: DeviceID 0x10 EventID 1 → INTID 8193 taken by CPU1 (priority 0xa0) → guest → DeviceID 0x1 EventID 2 → INTID 40 pending (disabled) (as expected)',
    );
    // Only a delivered MSI is followed.
    its.configure(FAKE_FIRST_INTID, { enabled: false });
    const followed: string[] = [];
    sendMsi(system.device('dev0'), 0, its, { expect: 'pending' }, (outcome) => {
      followed.push(outcome.kind);
      return { outcome, where: 'guest' };
    });
    expect(followed).toEqual([]);
  });
});
