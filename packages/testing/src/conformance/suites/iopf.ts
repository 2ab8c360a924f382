/** I/O page faults through a FAULT queue: PRI page requests reach user space and are answered by cookie. */
import { type IommuPlugin, PERM_WRITE } from '@iommukit/core';
import { expect, it } from 'vitest';
import { expectDmaOk, expectErrno } from '../expect-errno.js';
import type { Harness } from '../harness.js';

const KiB = 1024n;

/** dev0 with ATS and PRI on, attached to a HWPT whose faults go to a new FAULT queue. */
function faultingDevice(h: Harness) {
  const { fd, devId0, dev0 } = h;
  const fault = fd.faultQueueAlloc();
  const ioas = fd.ioasAlloc();
  const hwpt = fd.hwptAlloc({ devId: devId0, ptId: ioas, faultId: fault });
  fd.attach(devId0, hwpt);
  dev0.pci.setAtsEnabled(true);
  dev0.pci.setPriEnabled(true);
  return { fault, ioas, hwpt };
}

export function iopfCases(h: () => Harness, plugin: IommuPlugin): void {
  if (!plugin.capabilities.pri) return;

  it('a page request reaches the FAULT queue; the response by cookie reaches the device, which then retries', () => {
    const { fd, dev0, service, memory } = h();
    const { fault, ioas } = faultingDevice(h());
    const first = dev0.dmaWrite(0x30_0000n, Uint8Array.of(1), { requestPages: true });
    expect(first).toMatchObject({ ok: false, reason: 'page-request' });
    service();
    const records = fd.faultRead(fault);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ addr: 0x30_0000n, perm: PERM_WRITE, last: true, pasid: undefined });
    fd.ioasMap({
      ioasId: ioas,
      memory: memory(0n, 4n * KiB),
      length: 4n * KiB,
      iova: 0x30_0000n,
      readable: true,
      writeable: true,
    });
    fd.faultRespond(fault, records[0]!.cookie, 'success');
    const groupIndex = (first as { groupIndex: number }).groupIndex;
    expect(dev0.pri?.lastResponse(groupIndex)).toBe('success');
    expectDmaOk(dev0.dmaWrite(0x30_0000n, Uint8Array.of(1), { requestPages: true }));
    expectErrno(() => fd.faultRespond(fault, records[0]!.cookie, 'success'), 'EINVAL');
  });

  it('moving the device to another HWPT answers its outstanding faults invalid', () => {
    const { fd, devId0, dev0, service } = h();
    const { fault } = faultingDevice(h());
    const request = dev0.dmaWrite(0x30_0000n, Uint8Array.of(1), { requestPages: true });
    service();
    expect(fd.faultRead(fault)).toHaveLength(1);
    fd.replace(devId0, fd.ioasAlloc());
    expect(dev0.pri?.lastResponse((request as { groupIndex: number }).groupIndex)).toBe('invalid');
  });

  it('a page request on a HWPT without a fault queue is answered invalid at once', () => {
    const { fd, devId0, dev0, service } = h();
    fd.attach(devId0, fd.ioasAlloc());
    dev0.pci.setAtsEnabled(true);
    dev0.pci.setPriEnabled(true);
    const request = dev0.dmaWrite(0x30_0000n, Uint8Array.of(1), { requestPages: true });
    service();
    expect(dev0.pri?.lastResponse((request as { groupIndex: number }).groupIndex)).toBe('invalid');
  });
}
