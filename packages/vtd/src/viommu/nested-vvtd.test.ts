/**
 * The nested vVT-d between the guest's own VT-d driver and the host's iommufd (nested-vvtd.ts): which
 * guest programming becomes which binding, what the guest's invalidations and page responses become, and
 * what a host refusal does to the guest's queue.
 */
import { type Hpa, IommufdError, iova, NO_PASID } from '@iommukit/core';
import { describe, expect, it, vi } from 'vitest';
import { vmRig } from '../../test/vm-rig.js';
import type { ProbedUnit } from '../driver/probe.js';
import { iotlbDomain, iotlbGlobal } from '../driver/qi.js';
import type { VtdDriver } from '../driver/vtd-driver.js';
import { FSTS_IQE, REG } from '../hw/regs.js';
import { NestedVvtd } from './nested-vvtd.js';

const RW = { read: true, write: true };
const IOVA = 0x20_0000n;

async function nested() {
  const rig = await vmRig('nested');
  const vvtd = new NestedVvtd(rig.context);
  vvtd.addDevice(rig.view);
  const driver = rig.guestDriver() as VtdDriver;
  /** The guest driver's invalidation queue (what a test sends raw descriptors through). */
  const qi = () => (driver as unknown as { unit: ProbedUnit }).unit.qi;
  /** A guest domain at the NIC's RID mapping IOVA to a fresh guest page. */
  const mapped = () => {
    const gpa = rig.guestPage();
    const domain = driver.domainAllocPaging({ pasid: true });
    domain.map(iova(IOVA), gpa as Hpa, 0x1000n, RW);
    return { gpa, domain };
  };
  return { ...rig, vvtd, driver, qi, mapped };
}

describe('nested vVT-d: bindings', () => {
  it('before the guest turns translation on the RID uses stage 2; a blocked entry then blocks it', async () => {
    const rig = await vmRig('nested');
    const vvtd = new NestedVvtd(rig.context);
    vvtd.addDevice(rig.view);
    const gpa = rig.guestPage();
    expect(rig.nic.dmaWrite(gpa, Uint8Array.of(1))).toMatchObject({ ok: true });
    rig.guestDriver();
    // Probe turned translation on; the NIC's PASID entry is not there yet.
    expect(rig.nic.dmaWrite(gpa, Uint8Array.of(1))).toMatchObject({ ok: false });
    expect(rig.fd.attachedHwpt(rig.devId)).not.toBe(rig.context.nested!.s2HwptId);
  });

  it('a first-stage entry becomes a nested HWPT; the same table at a PASID shares it; unmap is forwarded', async () => {
    const t = await nested();
    const { gpa, domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    expect(t.nic.dmaWrite(IOVA + 8n, Uint8Array.of(0x42))).toMatchObject({ ok: true });
    expect(t.read(gpa + 8n, 1)).toEqual([0x42]);
    t.driver.setDevPasid(domain, t.guestView, 5);
    expect(t.vvtd.stats).toMatchObject({ nestedAllocs: 1, nestedShared: 1 });
    expect(t.fd.attachedHwpt(t.devId, 5)).toBe(t.fd.attachedHwpt(t.devId));
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1), { pasid: 5 })).toMatchObject({ ok: true });
    const before = t.vvtd.stats.invalidationsForwarded;
    domain.unmap(iova(IOVA), 0x1000n);
    domain.iotlbSync();
    // One P_IOTLB per PASID the guest flushes, each forwarded to the shared HWPT.
    expect(t.vvtd.stats.invalidationsForwarded - before).toBe(2);
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: false });
    // Removing the PASID detaches it; the HWPT stays for the RID.
    t.driver.removeDevPasid(t.guestView, 5);
    expect(t.fd.attachedHwpt(t.devId, 5)).toBeUndefined();
  });

  it('pass-through is stage 2 alone; shutting the guest driver down (TE off) keeps the RID on stage 2', async () => {
    const t = await nested();
    t.driver.attachDev(t.driver.identityDomain!, t.guestView);
    const s2 = t.context.nested!.s2HwptId;
    expect(t.fd.attachedHwpt(t.devId)).toBe(s2);
    const gpa = t.guestPage();
    expect(t.nic.dmaWrite(gpa, Uint8Array.of(1))).toMatchObject({ ok: true });
    t.driver.shutdown();
    expect(t.fd.attachedHwpt(t.devId)).toBe(s2);
    expect(t.vvtd.stats.nestedAllocs).toBe(0);
  });

  it('a nested HWPT the host refuses leaves the device blocked, and is counted', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    const alloc = t.fd.hwptAlloc.bind(t.fd);
    vi.spyOn(t.fd, 'hwptAlloc').mockImplementation((request) => {
      if (request.data !== undefined) throw new IommufdError('EINVAL', 'refused for the test');
      return alloc(request);
    });
    t.driver.attachDev(domain, t.guestView);
    expect(t.vvtd.stats.bindingsRefused).toBe(1);
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: false });
  });

  it('a context-cache invalidation of the device re-reads its entries: released in the guest, blocked on the host', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    t.driver.setDevPasid(domain, t.guestView, 5);
    t.driver.releaseDevice(t.guestView);
    expect(t.fd.attachedHwpt(t.devId, 5)).toBeUndefined();
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: false });
    expect(t.vvtd.stats.nestedAllocs).toBe(1);
  });
});

describe('nested vVT-d: invalidations, refusals, page requests, teardown', () => {
  it('an IOTLB invalidation of the guest DID (or global) is a whole invalidation of its nested HWPTs', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    const hwptInvalidate = vi.spyOn(t.fd, 'hwptInvalidate');
    const did = t.driver.domainId(domain)!;
    t.qi().submit([iotlbDomain(did + 1)]);
    expect(hwptInvalidate).not.toHaveBeenCalled();
    t.qi().submit([iotlbDomain(did)]);
    t.qi().submit([iotlbGlobal()]);
    expect(hwptInvalidate.mock.calls.map((call) => call[1])).toEqual([
      [{ addr: 0n, npages: 2n ** 64n - 1n, flags: 0 }],
      [{ addr: 0n, npages: 2n ** 64n - 1n, flags: 0 }],
    ]);
  });

  it('a refused invalidation stops the guest queue with IQE at it', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    vi.spyOn(t.fd, 'hwptInvalidate').mockImplementation(() => {
      throw new IommufdError('EINVAL', 'refused for the test');
    });
    expect(() => t.qi().submit([iotlbDomain(t.driver.domainId(domain)!)])).toThrow(/IQEI 0/);
    expect(t.vvtd.stats.invalidationsRejected).toBe(1);
    expect(t.vvtd.unit.regs.get(REG.FSTS) & FSTS_IQE).toBe(0);
  });

  it('a page request reaches the guest PRQ through service(); the guest response reaches the device', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    t.nic.pci.setPriEnabled(true);
    const first = t.nic.dmaWrite(0x40_0000n, Uint8Array.of(1), { requestPages: true });
    expect(first).toMatchObject({ ok: false, reason: 'page-request' });
    t.system.serviceInterrupts();
    const tail = t.vvtd.unit.regs.get(REG.PQT);
    expect(t.vvtd.service()).toBe(1);
    expect(t.vvtd.unit.regs.get(REG.PQT)).not.toBe(tail);
    expect(t.vvtd.service()).toBe(0);
    const groupIndex = (first as { groupIndex: number }).groupIndex;
    // A response to a group the VMM never delivered is ignored; the delivered one is answered.
    t.driver.pageResponse!(t.guestView, { pasid: NO_PASID, groupIndex: groupIndex + 1, code: 'success' });
    expect(t.vvtd.stats.pageResponsesForwarded).toBe(0);
    t.driver.pageResponse!(t.guestView, { pasid: NO_PASID, groupIndex, code: 'invalid' });
    expect(t.vvtd.stats).toMatchObject({ pageRequestsDelivered: 1, pageResponsesForwarded: 1 });
    expect(t.nic.pri?.lastResponse(groupIndex)).toBe('invalid');
  });

  it('destroy puts the device back on stage 2 and frees every object it made', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    t.driver.setDevPasid(domain, t.guestView, 5);
    t.vvtd.destroy();
    expect(t.fd.attachedHwpt(t.devId)).toBe(t.context.nested!.s2HwptId);
    expect(t.fd.attachedHwpt(t.devId, 5)).toBeUndefined();
    expect(t.bus.listRegions().map((r) => r.name)).toEqual(['guest.ram']);
    // Only the rig's own objects are left: the device, the IOAS, the parent.
    expect(t.fd.objects().map((o) => o.type)).toEqual(['device', 'ioas', 'hwpt-paging']);
  });
});
