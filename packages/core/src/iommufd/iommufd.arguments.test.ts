/**
 * Every `IommuFd` entry point checks its arguments before it changes anything, and a refused argument's
 * error names it (the field of the ioctl struct), so a caller knows which one was wrong.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAKE_VIOMMU_TYPE } from '../../test/fake-iommufd-plugin.js';
import { type IommufdRig, iommufdRig, RW } from '../../test/iommufd-rig.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuFd } from './iommufd.js';

let r: IommufdRig;
/** A few objects of each kind, to pass where a call needs a valid one. */
let o: { ioas: number; s2: number; viommu: number; veventq: number; fault: number };
beforeEach(async () => {
  r = await iommufdRig();
  const ioas = r.fd.ioasAlloc();
  const s2 = r.fd.hwptAlloc({ devId: r.devId0, ptId: ioas, flags: { nestParent: true } });
  const viommu = r.fd.viommuAlloc(r.devId0, s2, FAKE_VIOMMU_TYPE);
  o = { ioas, s2, viommu, veventq: r.fd.veventqAlloc(viommu, 'e', 4), fault: r.fd.faultQueueAlloc() };
});
afterEach(() => r.dispose());

const bad = -1 as never;
type Call = (fd: IommuFd) => unknown;
const map =
  (change: object): Call =>
  (fd) =>
    fd.ioasMap({ ioasId: o.ioas, memory: r.memory, length: 0x1000n, ...RW, ...change });
const copy =
  (change: object): Call =>
  (fd) =>
    fd.ioasCopy({ srcIoasId: o.ioas, dstIoasId: o.ioas, srcIova: 0n, length: 0x1000n, ...RW, ...change });

const cases: [string, Call][] = [
  ['object ID', (fd) => fd.destroy(bad)],
  ['device', (fd) => fd.bind(null as never)],
  ['dev_id', (fd) => fd.unbind(bad)],
  ['dev_id', (fd) => fd.hwInfo(bad)],
  ['pt_id', (fd) => fd.attach(r.devId0, bad)],
  ['PASID', (fd) => fd.attach(r.devId0, o.ioas, -2)],
  ['pt_id', (fd) => fd.replace(r.devId0, bad)],
  ['PASID', (fd) => fd.replace(r.devId0, o.ioas, -2)],
  ['PASID', (fd) => fd.detach(r.devId0, -2)],
  ['PASID', (fd) => fd.attachedHwpt(r.devId0, -2)],
  ['doorbell', (fd) => fd.deviceSetupSwMsi(r.devId0, bad)],
  ['SW MSI start', (fd) => fd.setSwMsiWindow(bad, 0x1000n)],
  ['SW MSI length', (fd) => fd.setSwMsiWindow(0x1000n, bad)],
  ['ioas_id', (fd) => fd.ioasMapMsi(bad, r.devId0, 0x1000n)],
  ['MSI GPA', (fd) => fd.ioasMapMsi(o.ioas, r.devId0, bad)],
  ['hwpt_id', (fd) => fd.msiPages(bad)],
  ['map request', (fd) => fd.ioasMap(null as never)],
  ['offset', map({ offset: 0.5 })],
  ['length', map({ length: bad })],
  ['readable', map({ readable: 1 })],
  ['writeable', map({ writeable: 1 })],
  ['IOVA', map({ iova: bad })],
  ['IOVA', (fd) => fd.ioasUnmap(o.ioas, bad, 0x1000n)],
  ['length', (fd) => fd.ioasUnmap(o.ioas, 0n, bad)],
  ['copy request', (fd) => fd.ioasCopy(null as never)],
  ['source IOVA', copy({ srcIova: bad })],
  ['length', copy({ length: bad })],
  ['destination IOVA', copy({ dstIova: bad })],
  ['readable', copy({ readable: 1 })],
  ['writeable', copy({ writeable: 1 })],
  ['allowed ranges', (fd) => fd.ioasAllowIovas(o.ioas, 5 as never)],
  ['range 1', (fd) => fd.ioasAllowIovas(o.ioas, [{ start: 0n, last: 1n }, null as never])],
  [
    'range 1 start',
    (fd) =>
      fd.ioasAllowIovas(o.ioas, [
        { start: 0n, last: 1n },
        { start: bad, last: 9n },
      ]),
  ],
  ['range 0 last', (fd) => fd.ioasAllowIovas(o.ioas, [{ start: 0n, last: bad }])],
  ['ioas_id', (fd) => fd.ioasIovaRanges(bad)],
  ['huge pages', (fd) => fd.ioasSetHugePages(o.ioas, 1 as never)],
  ['HWPT_ALLOC request', (fd) => fd.hwptAlloc(null as never)],
  ['hwpt_id', (fd) => fd.hwptInvalidate(bad, [])],
  ['entries', (fd) => fd.hwptInvalidate(o.viommu, 5 as never)],
  ['hwpt_id', (fd) => fd.hwptSetDirtyTracking(bad, true)],
  ['enabled', (fd) => fd.hwptSetDirtyTracking(o.s2, 1 as never)],
  ['hwpt_id', (fd) => fd.hwptGetDirtyBitmap(bad, {} as never)],
  ['hwpt_id', (fd) => fd.viommuAlloc(r.devId0, bad, FAKE_VIOMMU_TYPE)],
  ['vIOMMU type', (fd) => fd.viommuAlloc(r.devId0, o.s2, 7 as never)],
  ['viommu_id', (fd) => fd.vdeviceAlloc(bad, r.devId0, 1n)],
  ['virtual ID', (fd) => fd.vdeviceAlloc(o.viommu, r.devId0, bad)],
  ['viommu_id', (fd) => fd.veventqAlloc(bad, 'x', 1)],
  ['vEVENTQ type', (fd) => fd.veventqAlloc(o.viommu, 7 as never, 1)],
  ['depth', (fd) => fd.veventqAlloc(o.viommu, 'x', bad)],
  ['veventq_id', (fd) => fd.veventqRead(bad)],
  ['max', (fd) => fd.veventqRead(o.veventq, bad)],
  ['fault_id', (fd) => fd.faultRead(bad)],
  ['fault_id', (fd) => fd.faultRespond(bad, 1, 'success')],
  ['cookie', (fd) => fd.faultRespond(o.fault, bad, 'success')],
];

describe('IommuFd argument errors', () => {
  it.each(cases)('name the refused argument: %s', (name, call) => {
    const before = r.fd.objects();
    let error: unknown;
    try {
      call(r.fd);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IommufdError);
    expect((error as IommufdError).code).toBe('EINVAL');
    expect((error as IommufdError).message).toMatch(new RegExp(`: ${name} `));
    expect(r.fd.objects()).toEqual(before);
  });
});
