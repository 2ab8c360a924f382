/**
 * What `IommuFd` traces (layer `iommufd`): one record per state-changing call, named after the operation,
 * with the IDs and addresses involved as arguments.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAKE_SW_MSI, FAKE_VIOMMU_TYPE } from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig, RW } from '../../test/iommufd-rig.js';
import type { Hpa } from '../address/address.js';
import { NO_PASID } from '../iommu/translation.js';
import type { TraceRecord } from '../trace/trace-record.js';

let r: IommufdRig;
beforeEach(async () => {
  r = await iommufdRig();
  r.system.tracer.startRecording();
});
afterEach(() => {
  r.system.tracer.stopRecording();
  return r.dispose();
});

/** The records traced since the last call, as [name, args]. */
function traced(): [string, TraceRecord['args']][] {
  const records = r.system.tracer.stopRecording().filter((t) => t.layer === 'iommufd');
  r.system.tracer.startRecording();
  for (const t of records) expect(t.source).toBe('iommufd');
  return records.map((t) => [t.name, t.args]);
}

describe('IommuFd traces', () => {
  it('bind, unbind and destroy', () => {
    const ioas = r.fd.ioasAlloc();
    r.fd.destroy(ioas);
    r.fd.unbind(r.devId1);
    const devId = r.fd.bind(r.system.device('dev1'));
    expect(traced()).toEqual([
      ['ioas.alloc', { id: ioas }],
      ['destroy', { id: ioas }],
      ['device.unbind', { devId: r.devId1 }],
      ['device.bind', { device: 'dev1', devId }],
    ]);
  });

  it('attach, replace and detach name the device, the target, the HWPT and the PASID', () => {
    const ioas = r.fd.ioasAlloc();
    const a = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    const b = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    traced();
    const auto = r.fd.attach(r.devId1, ioas);
    r.fd.attach(r.devId0, a, 3);
    r.fd.replace(r.devId0, b, 3);
    r.fd.detach(r.devId0, 3);
    r.fd.detach(r.devId1);
    expect(traced()).toEqual([
      ['device.attach', { devId: r.devId1, ptId: ioas, hwptId: auto, pasid: NO_PASID }],
      ['device.attach', { devId: r.devId0, ptId: a, hwptId: a, pasid: 3 }],
      ['device.replace', { devId: r.devId0, ptId: b, hwptId: b, pasid: 3 }],
      ['device.detach', { devId: r.devId0, pasid: 3 }],
      ['device.detach', { devId: r.devId1, pasid: NO_PASID }],
    ]);
  });

  it('the message names the PASID of a PASID attachment, and none for the RID', () => {
    const ioas = r.fd.ioasAlloc();
    const hwpt = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { pasid: true } });
    traced();
    r.fd.attach(r.devId0, hwpt, 3);
    r.fd.attach(r.devId0, hwpt);
    const [pasid, rid] = r.system.tracer.records.filter((t) => t.name === 'device.attach');
    expect(pasid?.message).toContain(' PASID 3 ');
    expect(rid?.message).not.toContain('PASID');
  });

  it('IOAS map and unmap, and HWPT allocation', () => {
    const ioas = r.fd.ioasAlloc();
    const iova = r.fd.ioasMap({ ioasId: ioas, memory: r.memory, length: 0x2000n, iova: 0x10_0000n, ...RW });
    const bytes = r.fd.ioasUnmap(ioas, 0x10_0000n, 0x2000n);
    const hwpt = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas });
    expect(traced().slice(1)).toEqual([
      ['ioas.map', { ioasId: ioas, iova, length: 0x2000n }],
      ['ioas.unmap', { ioasId: ioas, iova: 0x10_0000n, length: 0x2000n, bytes }],
      ['hwpt.alloc', { hwptId: hwpt, ptId: ioas, type: 'hwpt-paging' }],
    ]);
  });

  it('vIOMMU, vDEVICE and invalidation', () => {
    const s2 = r.fd.hwptAlloc({ devId: r.devId0, ptId: r.fd.ioasAlloc(), flags: { nestParent: true } });
    traced();
    const viommu = r.fd.viommuAlloc(r.devId0, s2, FAKE_VIOMMU_TYPE);
    const vdev = r.fd.vdeviceAlloc(viommu, r.devId0, 0x10n);
    r.fd.hwptInvalidate(viommu, [{ op: 'all' }, { op: 'all' }]);
    expect(() => r.fd.hwptInvalidate(viommu, [{ op: 'all' }, { op: 'bad' }])).toThrow();
    expect(traced()).toEqual([
      ['viommu.alloc', { viommuId: viommu, hwptId: s2, type: FAKE_VIOMMU_TYPE }],
      ['vdevice.alloc', { vdeviceId: vdev, virtId: 0x10n }],
      ['hwpt.invalidate', { id: viommu, handled: 2, entries: 2 }],
      ['hwpt.invalidate', { id: viommu, handled: 1, entries: 2 }],
    ]);
  });

  it('MSI: the SW MSI window, a SW MSI doorbell and a passthrough doorbell', () => {
    const ioas = r.fd.ioasAlloc();
    const start = FAKE_SW_MSI.start + 0x10_0000n;
    r.fd.setSwMsiWindow(start, 0x1_0000n);
    const dev0 = r.system.device('dev0');
    const doorbell = r.system.requireMsi().doorbellFor({ name: dev0.name, deviceId: dev0.streamId });
    const iova = r.fd.deviceSetupSwMsi(r.devId0, (doorbell.page + 0x40n) as Hpa);
    r.fd.ioasMapMsi(ioas, r.devId0, 0x4000n);
    expect(traced().slice(1)).toEqual([
      ['msi.window', { start, length: 0x1_0000n }],
      ['msi.sw-msi', { devId: r.devId0, doorbell: doorbell.page + 0x40n, iova }],
      ['msi.map', { ioasId: ioas, devId: r.devId0, gpa: 0x4000n, doorbellPage: doorbell.page }],
    ]);
  });
});
