/**
 * The vVT-d personalities in detail: which invalidations concern which device or HWPT, the keys nested HWPTs
 * are shared by, the objects a binding leaves behind, the trace a kernel developer reads, and the unit each
 * mode shows its guest.
 */
import { type Hpa, IommufdError, iova, type ViommuContext } from '@iommukit/core';
import { describe, expect, it, vi } from 'vitest';
import { vmRig } from '../../test/vm-rig.js';
import type { VtdPagingDomain } from '../driver/paging-domain.js';
import type { ProbedUnit } from '../driver/probe.js';
import {
  contextDevice,
  contextGlobal,
  iotlbDomain,
  iotlbGlobal,
  iotlbPages,
  pasidCache,
  pasidIotlb,
} from '../driver/qi.js';
import type { VtdDriver } from '../driver/vtd-driver.js';
import { featuresFromOptions } from '../hw/options.js';
import { GCMD_SRTP, GCMD_TE, REG } from '../hw/regs.js';
import {
  CONTEXT_TT,
  decodeScalableContext,
  encodeLegacyContext,
  encodeLegacyRootEntry,
  encodeScalableContext,
} from '../hw/root-context.js';
import { EmulatedVvtd } from './emulated-vvtd.js';
import { NestedVvtd } from './nested-vvtd.js';
import { ShadowVvtd, shadowGuestOptions } from './shadow-vvtd.js';

const RW = { read: true, write: true };
/** GSTS's persistent bits, which every GCMD write repeats. */
const PERSISTENT = 0x9680_0000;
const IOVA = 0x20_0000n;
const ALL = { addr: 0n, npages: 2n ** 64n - 1n, flags: 0 };

async function guest(mode: 'nested' | 'shadow', hostOptions = {}) {
  const rig = await vmRig(mode, hostOptions);
  const personality = mode === 'nested' ? new NestedVvtd(rig.context) : new ShadowVvtd(rig.context);
  personality.addDevice(rig.view);
  const driver = rig.guestDriver() as VtdDriver;
  const qi = () => (driver as unknown as { unit: ProbedUnit }).unit.qi;
  return { ...rig, personality, driver, qi };
}

describe('nested vVT-d in detail', () => {
  it('forwards a P_IOTLB only to HWPTs of its DID bound at its PASID, page-selective as AM and IH say', async () => {
    const t = await guest('nested');
    const domain = t.driver.domainAllocPaging({ pasid: true });
    domain.map(iova(IOVA), t.guestPage() as Hpa, 0x1000n, RW);
    t.driver.attachDev(domain, t.guestView);
    const did = t.driver.domainId(domain)!;
    const forwarded = vi.spyOn(t.fd, 'hwptInvalidate');
    t.qi().submit([pasidIotlb(did, 3), pasidIotlb(did + 1, 0)]);
    expect(forwarded).not.toHaveBeenCalled();
    t.qi().submit([pasidIotlb(did, 0, { addr: 0x20_0000, pages: 4 }, true), pasidIotlb(did, 0)]);
    expect(forwarded.mock.calls.map((c) => c[1])).toEqual([
      [{ addr: 0x20_0000n, npages: 4n, flags: 1 }],
      [ALL],
    ]);
  });

  it('context-cache invalidations of other devices are not its business; a PASID-cache one of PASID 0 is the RID', async () => {
    const t = await guest('nested');
    const nested = t.personality as NestedVvtd;
    const checked = nested.stats.entriesChecked;
    t.qi().submit([contextDevice(0, 0x10)]);
    expect(nested.stats.entriesChecked).toBe(checked);
    t.qi().submit([contextDevice(0, 0x08)]);
    expect(nested.stats.entriesChecked).toBe(checked + 1);
    t.qi().submit([pasidCache(2, 0)]);
    expect(nested.stats.entriesChecked).toBe(checked + 2);
    expect(t.fd.attachedHwpt(t.devId, 0)).toBeUndefined();
  });

  it('HWPTs are shared by DID, table, width and flags; the last user frees one; one blocked HWPT serves', async () => {
    const t = await guest('nested');
    const nested = t.personality as NestedVvtd;
    const a = t.driver.domainAllocPaging({ pasid: true });
    t.driver.attachDev(a, t.guestView);
    t.driver.setDevPasid(a, t.guestView, 5);
    const b = t.driver.domainAllocPaging({ pasid: true });
    t.driver.setDevPasid(b, t.guestView, 6);
    expect(nested.stats).toMatchObject({ nestedAllocs: 2, nestedShared: 1 });
    const hwpts = () => t.fd.objects().filter((o) => o.type === 'hwpt-nested').length;
    expect(hwpts()).toBe(2);
    t.driver.removeDevPasid(t.guestView, 6);
    expect(hwpts()).toBe(1);
    t.driver.attachDev(t.driver.blockedDomain, t.guestView);
    t.driver.attachDev(a, t.guestView);
    t.driver.attachDev(t.driver.blockedDomain, t.guestView);
    t.driver.removeDevPasid(t.guestView, 5);
    expect(hwpts()).toBe(0);
    expect(t.fd.objects().filter((o) => o.type === 'hwpt-paging')).toHaveLength(2);
  });

  it('translation turned off puts a nested RID back on stage 2; without host PRS there is no FAULT queue', async () => {
    const t = await guest('nested', { pageRequests: false, pageRequestDrain: false });
    const nested = t.personality as NestedVvtd;
    expect(nested.mode).toBe('nested');
    expect(nested.unit.features.pageRequests).toBe(false);
    expect(t.fd.objects().some((o) => o.type === 'fault')).toBe(false);
    expect(nested.service()).toBe(0);
    const domain = t.driver.domainAllocPaging();
    t.driver.attachDev(domain, t.guestView);
    expect(t.fd.attachedHwpt(t.devId)).not.toBe(t.context.nested!.s2HwptId);
    t.driver.shutdown();
    expect(t.fd.attachedHwpt(t.devId)).toBe(t.context.nested!.s2HwptId);
  });

  it('a refused binding after a good one blocks the device, and a host error of another kind is thrown', async () => {
    const t = await guest('nested');
    const nested = t.personality as NestedVvtd;
    const first = t.driver.domainAllocPaging();
    t.driver.attachDev(first, t.guestView);
    const alloc = t.fd.hwptAlloc.bind(t.fd);
    const spy = vi.spyOn(t.fd, 'hwptAlloc').mockImplementation((request) => {
      if (request.data !== undefined) throw new IommufdError('EINVAL', 'refused for the test');
      return alloc(request);
    });
    const second = t.driver.domainAllocPaging();
    t.driver.attachDev(second, t.guestView);
    expect(nested.stats.bindingsRefused).toBe(1);
    expect(t.fd.objects().filter((o) => o.type === 'hwpt-nested')).toHaveLength(0);
    spy.mockImplementation(() => {
      throw new TypeError('a bug');
    });
    expect(() => t.driver.attachDev(t.driver.domainAllocPaging(), t.guestView)).toThrow(TypeError);
  });

  it('a RID_PASID other than 0 in the guest context entry: its PASID-cache and P_IOTLB invalidations are the RID', async () => {
    const t = await guest('nested');
    const domain = t.driver.domainAllocPaging();
    t.driver.attachDev(domain, t.guestView);
    const did = t.driver.domainId(domain)!;
    // The guest's context entry, rewritten with RID_PASID 3 (what a guest other than Linux may use).
    const unit = (t.driver as unknown as { unit: ProbedUnit }).unit;
    const at = unit.contextTables.entryAt(0x08)!;
    const words = new Uint32Array(8);
    t.bus.readWords(at, words, 8, t.bus.counter('t'));
    t.bus.writeWords(
      at,
      encodeScalableContext({ ...decodeScalableContext(words), ridPasid: 3 }),
      8,
      t.bus.counter('t'),
    );
    t.qi().submit([contextDevice(0, 0x08)]);
    // The RID now reads PASID 3's entry, which is not present: blocked.
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: false });
    t.driver.setDevPasid(domain, t.guestView, 3);
    expect(t.fd.attachedHwpt(t.devId, 3)).toBeUndefined();
    expect(t.fd.attachedHwpt(t.devId)).not.toBe(t.context.nested!.s2HwptId);
    const forwarded = vi.spyOn(t.fd, 'hwptInvalidate');
    t.qi().submit([pasidIotlb(did, 3)]);
    expect(forwarded).toHaveBeenCalledTimes(1);
  });

  it('a guest that latches a legacy root table: its pass-through context is stage 2, a multi-level one is blocked', async () => {
    const t = await guest('nested');
    const nested = t.personality as NestedVvtd;
    const root = Number(t.guestPage());
    const ctx = Number(t.guestPage());
    const w = t.bus.counter('t');
    t.bus.writeWords(root, encodeLegacyRootEntry({ p: true, ctp: ctx }), 4, w);
    t.bus.writeWords(
      ctx + 8 * 16,
      encodeLegacyContext({ p: true, tt: CONTEXT_TT.PASS_THROUGH, aw: 2, did: 1 }),
      4,
      w,
    );
    // TE off, then RTADDR with TTM = legacy, SRTP, TE on, as a legacy driver does.
    const gsts = () => nested.unit.regs.get(REG.GSTS);
    const gcmd = (value: number) => t.bus.write(0x0905_0000 + REG.GCMD, 4, value >>> 0, w);
    gcmd(gsts() & ~GCMD_TE & PERSISTENT);
    t.bus.write(0x0905_0000 + REG.RTADDR, 4, root, w);
    t.bus.write(0x0905_0000 + REG.RTADDR + 4, 4, 0, w);
    gcmd((gsts() & PERSISTENT) | GCMD_SRTP);
    // Without ESRTPS the context cache still holds the scalable entries: the driver flushes it, as Linux does.
    t.qi().submit([contextGlobal()]);
    gcmd((gsts() & PERSISTENT) | GCMD_TE);
    expect(t.fd.attachedHwpt(t.devId)).toBe(t.context.nested!.s2HwptId);
    // A multi-level legacy entry cannot be nested: blocked.
    t.bus.writeWords(
      ctx + 8 * 16,
      encodeLegacyContext({ p: true, tt: CONTEXT_TT.MULTI_LEVEL, aw: 2, did: 1, slptptr: ctx }),
      4,
      w,
    );
    // Legacy device-selective invalidation names the cached entry's DID.
    t.qi().submit([contextDevice(1, 0x08)]);
    expect(t.fd.attachedHwpt(t.devId)).not.toBe(t.context.nested!.s2HwptId);
    expect(t.nic.dmaWrite(t.guestPage(), Uint8Array.of(1))).toMatchObject({ ok: false });
  });

  it('an attach the host refuses after allocating frees the new HWPT; resyncing an unchanged entry allocates nothing', async () => {
    const t = await guest('nested');
    const nested = t.personality as NestedVvtd;
    const domain = t.driver.domainAllocPaging();
    t.driver.attachDev(domain, t.guestView);
    const allocs = nested.stats.nestedAllocs;
    t.qi().submit([contextDevice(0, 0x08)]);
    expect(nested.stats.nestedAllocs).toBe(allocs);
    vi.spyOn(t.fd, 'replace').mockImplementationOnce(() => {
      throw new IommufdError('EINVAL', 'refused for the test');
    });
    const other = t.driver.domainAllocPaging();
    t.driver.attachDev(other, t.guestView);
    expect(nested.stats.bindingsRefused).toBe(1);
    expect(t.fd.objects().filter((o) => o.type === 'hwpt-nested')).toHaveLength(1);
  });

  it('a page response the host refuses stops the guest queue with IQE', async () => {
    const t = await guest('nested');
    const nested = t.personality as NestedVvtd;
    t.driver.attachDev(t.driver.domainAllocPaging(), t.guestView);
    t.nic.pci.setPriEnabled(true);
    const first = t.nic.dmaWrite(0x40_0000n, Uint8Array.of(1), { requestPages: true });
    t.system.serviceInterrupts();
    nested.service();
    vi.spyOn(t.fd, 'faultRespond').mockImplementation(() => {
      throw new IommufdError('EINVAL', 'refused for the test');
    });
    const groupIndex = (first as { groupIndex: number }).groupIndex;
    expect(() => t.driver.pageResponse!(t.guestView, { pasid: -1, groupIndex, code: 'success' })).toThrow(
      /IQEI 0/,
    );
  });

  it('its unit signals the guest with the DeviceID the VMM gave it', async () => {
    const rig = await vmRig('nested');
    const writes: number[] = [];
    rig.bus.addMmio('msi', 0xfee0_0000, 0x1000, {
      read: () => 0,
      write: (_offset, _size, _data, deviceId) => writes.push(deviceId ?? -1),
    });
    const nested = new NestedVvtd({ ...rig.context, msi: { controller: {} as never, deviceId: 0xfff0 } });
    rig.bus.write(0x0905_0000 + 0x40, 4, 0xfee0_0000, rig.bus.counter('t'));
    rig.bus.write(0x0905_0000 + 0x38, 4, 0, rig.bus.counter('t'));
    nested.unit.faults.record({
      sid: 0x08,
      address: 0x1000,
      reason: 0x71,
      write: true,
      pasid: undefined,
      execute: false,
      privileged: false,
    });
    expect(writes).toEqual([0xfff0]);
  });

  it('traces what it does from the first device on', async () => {
    const rig = await vmRig('nested');
    rig.system.tracer.startRecording();
    const nested = new NestedVvtd(rig.context);
    nested.addDevice(rig.view);
    const driver = rig.guestDriver() as VtdDriver;
    driver.attachDev(driver.domainAllocPaging(), rig.guestView);
    rig.nic.pci.setPriEnabled(true);
    rig.nic.dmaWrite(0x40_0000n, Uint8Array.of(1), { requestPages: true });
    rig.system.serviceInterrupts();
    nested.service();
    const names = rig.system.tracer
      .stopRecording()
      .filter((r) => r.layer === 'frontend')
      .map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['vvtd.device', 'vvtd.bind', 'vvtd.prq']));
  });

  it('traces what it does under the frontend layer', async () => {
    const t = await guest('nested');
    t.system.tracer.startRecording();
    const domain = t.driver.domainAllocPaging();
    t.driver.attachDev(domain, t.guestView);
    vi.spyOn(t.fd, 'hwptInvalidate').mockImplementation(() => {
      throw new IommufdError('EINVAL', 'refused for the test');
    });
    expect(() => t.qi().submit([iotlbGlobal()])).toThrow();
    t.personality.destroy();
    const names = t.system.tracer
      .stopRecording()
      .filter((r) => r.layer === 'frontend')
      .map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['vvtd.bind', 'vvtd.invalidate', 'vvtd.destroy']));
  });
});

describe('caching-mode vVT-d in detail', () => {
  it('offers neither Device-TLBs, interrupt remapping nor a write-buffer flush', () => {
    expect(featuresFromOptions(shadowGuestOptions())).toMatchObject({
      deviceTlb: false,
      interruptRemapping: false,
      writeBufferFlush: false,
    });
  });

  it('which invalidation replays which device: context by SID, IOTLB by DID or global', async () => {
    const t = await guest('shadow');
    const shadow = t.personality as ShadowVvtd;
    expect(shadow.mode).toBe('shadow');
    const domain = t.driver.domainAllocPaging() as VtdPagingDomain;
    t.driver.attachDev(domain, t.guestView);
    const did = t.driver.domainId(domain)!;
    const replays = () => shadow.stats.replays;
    let before = replays();
    t.qi().submit([contextDevice(0, 0x10)]);
    expect(replays()).toBe(before);
    t.qi().submit([contextDevice(0, 0x08), iotlbDomain(did), iotlbDomain(did + 1), iotlbGlobal()]);
    expect(replays() - before).toBe(3);
    // A domain-selective context invalidation replays every device.
    before = replays();
    t.qi().submit([{ type: 1, granularity: 2, did }]);
    expect(replays() - before).toBe(1);
  });

  it('a whole resync keeps what is mapped; a page-selective one looks at its pages only, inside a 2 MiB leaf too', async () => {
    const t = await guest('shadow');
    const shadow = t.personality as ShadowVvtd;
    const domain = t.driver.domainAllocPaging() as VtdPagingDomain;
    t.driver.attachDev(domain, t.guestView);
    const ram = BigInt(t.context.shadow!.guestRam.gpa);
    domain.map(iova(0x40_0000n), (ram + 0x20_0000n) as Hpa, 0x20_0000n, RW);
    domain.map(iova(0x80_0000n), (ram + 0x1000n) as Hpa, 0x1000n, RW);
    expect(shadow.stats.pagesMapped).toBe(513);
    t.qi().submit([{ type: 1, granularity: 1 }]);
    expect(shadow.stats).toMatchObject({ pagesMapped: 513, pagesUnmapped: 0 });
    // The guest moves one page of the 2 MiB leaf's range in its table without invalidating, then
    // invalidates a single page: only that page is looked at.
    domain.table.unmap(0x40_0000n, 0x20_0000n);
    domain.table.map(0x40_0000n, ram + 0x60_0000n, 0x20_0000n, RW);
    t.qi().submit([iotlbPages(t.driver.domainId(domain)!, 0x40_1000, 1)]);
    expect(shadow.stats).toMatchObject({ pagesMapped: 514, pagesUnmapped: 1 });
    expect(t.nic.dmaWrite(0x40_1000n, Uint8Array.of(0x11))).toMatchObject({ ok: true });
    expect(t.read(ram + 0x60_1000n, 1)).toEqual([0x11]);
    expect(t.nic.dmaWrite(0x40_2000n, Uint8Array.of(0x22))).toMatchObject({ ok: true });
    expect(t.read(ram + 0x20_2000n, 1)).toEqual([0x22]);
  });

  it('a global context invalidation and a domain-selective IOTLB one resync what the guest changed silently', async () => {
    const t = await guest('shadow');
    const shadow = t.personality as ShadowVvtd;
    const domain = t.driver.domainAllocPaging() as VtdPagingDomain;
    t.driver.attachDev(domain, t.guestView);
    const top = 2n ** 39n - 0x1000n;
    const gpa = t.guestPage();
    domain.table.map(top, gpa, 0x1000n, RW);
    const before = shadow.stats.replays;
    t.qi().submit([{ type: 1, granularity: 1 }]);
    expect(shadow.stats.replays - before).toBe(1);
    expect(t.nic.dmaWrite(top, Uint8Array.of(3))).toMatchObject({ ok: true });
    domain.table.map(IOVA, gpa, 0x1000n, RW);
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(4))).toMatchObject({ ok: false });
    t.qi().submit([iotlbDomain(t.driver.domainId(domain)!)]);
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(4))).toMatchObject({ ok: true });
  });

  it('a host error of another kind than IommufdError is thrown, not turned into IQE', async () => {
    const t = await guest('shadow');
    const domain = t.driver.domainAllocPaging() as VtdPagingDomain;
    t.driver.attachDev(domain, t.guestView);
    vi.spyOn(t.fd, 'ioasMap').mockImplementation(() => {
      throw new TypeError('a bug');
    });
    expect(() => domain.map(iova(IOVA), t.guestPage() as Hpa, 0x1000n, RW)).toThrow(TypeError);
  });

  it('traces its syncs under the frontend layer', async () => {
    const t = await guest('shadow');
    t.system.tracer.startRecording();
    const domain = t.driver.domainAllocPaging() as VtdPagingDomain;
    t.driver.attachDev(domain, t.guestView);
    domain.map(iova(IOVA), t.guestPage() as Hpa, 0x1000n, RW);
    t.driver.attachDev(t.driver.identityDomain!, t.guestView);
    const messages = t.system.tracer
      .stopRecording()
      .filter((r) => r.layer === 'frontend' && r.name === 'vvtd.sync')
      .map((r) => r.message);
    expect(messages).toContain('nic0: guest RAM at IOVA = GPA');
    expect(messages.some((m) => m.includes('1 page(s) mapped'))).toBe(true);
  });
});

describe('the emulated vVT-d in detail', () => {
  it('is in emulated mode, and writes its events as MSIs with the DeviceID it was given', async () => {
    const rig = await vmRig('shadow');
    const ctx: ViommuContext = {
      ...rig.context,
      mode: 'emulated',
      msi: { controller: {} as never, deviceId: 0xfff1 },
    };
    const emulated = new EmulatedVvtd(ctx);
    expect(emulated.mode).toBe('emulated');
    const writes: number[] = [];
    rig.bus.addMmio('msi', 0xfee0_0000, 0x1000, {
      read: () => 0,
      write: (_offset, _size, _data, deviceId) => writes.push(deviceId ?? -1),
    });
    // The guest driver's fault event set-up, by hand: FEADDR, unmask, then a fault.
    const base = 0x0905_0000;
    rig.bus.write(base + 0x40, 4, 0xfee0_0000, rig.bus.counter('t'));
    rig.bus.write(base + 0x38, 4, 0, rig.bus.counter('t'));
    emulated.hardware.faults.record({
      sid: 0x80,
      address: 0x1000,
      reason: 0x71,
      write: true,
      pasid: undefined,
      execute: false,
      privileged: false,
    });
    expect(writes).toEqual([0xfff1]);
  });
});
