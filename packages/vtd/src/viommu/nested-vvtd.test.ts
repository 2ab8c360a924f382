/**
 * The nested vVT-d between the guest's own VT-d driver and the host's iommufd (nested-vvtd.ts): which
 * guest programming becomes which binding, what the guest's invalidations and page responses become, and
 * what a host refusal does to the guest's queue.
 */
import { type Hpa, IommufdError, iova, NO_PASID } from '@iommukit/core';
import { describe, expect, it, vi } from 'vitest';
import { VRID, vmRig } from '../../test/vm-rig.js';
import type { ProbedUnit } from '../driver/probe.js';
import {
  contextDevice,
  contextGlobal,
  iotlbDomain,
  iotlbGlobal,
  pasidCache,
  pasidCacheGlobal,
  pasidIotlb,
} from '../driver/qi.js';
import type { VtdDriver } from '../driver/vtd-driver.js';
import { IQEI } from '../hw/inv-descriptors.js';
import {
  decodePasidDirEntry,
  decodePasidEntry,
  encodePasidEntry,
  FLPM,
  PASID_DIR_ENTRY_WORDS,
  PASID_ENTRY_WORDS,
  type PasidEntry,
  pasidDirEntryAddress,
  pasidEntryAddress,
} from '../hw/pasid-entry.js';
import { FSTS_IQE, GCMD_SRTP, GCMD_TE, REG } from '../hw/regs.js';
import { CONTEXT_TT, encodeLegacyContext, encodeLegacyRootEntry } from '../hw/root-context.js';
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

type Nested = Awaited<ReturnType<typeof nested>>;

/** The vIOMMU's MMIO window in the rig. */
const WINDOW = 0x0905_0000;
/** GSTS's persistent bits, which every GCMD write repeats. */
const PERSISTENT = 0x9680_0000;

/** A GCMD write by hand: the persistent bits as GSTS has them, minus `clear`, plus `set`. */
function gcmd(t: Nested, set: number, clear = 0): void {
  const gsts = t.vvtd.unit.regs.get(REG.GSTS);
  t.bus.write(WINDOW + REG.GCMD, 4, ((gsts & PERSISTENT & ~clear) | set) >>> 0, t.bus.counter('t'));
}

/**
 * Rewrites the NIC's PASID entry of `pasid` in guest memory in place, as a guest may (no teardown in
 * between); the guest's PASID-cache invalidation is up to the test.
 */
function rewritePasidEntry(t: Nested, pasid: number, change: Partial<PasidEntry>): void {
  const unit = (t.driver as unknown as { unit: ProbedUnit }).unit;
  const c = t.bus.counter('t');
  const dir = new Uint32Array(PASID_DIR_ENTRY_WORDS);
  t.bus.readWords(pasidDirEntryAddress(unit.pasidTables.directory(VRID)!.dir, pasid), dir, dir.length, c);
  const at = pasidEntryAddress(decodePasidDirEntry(dir).pasidTablePtr, pasid);
  const words = new Uint32Array(PASID_ENTRY_WORDS);
  t.bus.readWords(at, words, words.length, c);
  t.bus.writeWords(at, encodePasidEntry({ ...decodePasidEntry(words), ...change }), words.length, c);
}

const nestedHwpts = (t: Nested) => t.fd.objects().filter((o) => o.type === 'hwpt-nested');

/** The frontend trace records named `name` since recording started. */
const frontend = (records: readonly { layer: string; name: string; message: string }[], name: string) =>
  records.filter((r) => r.layer === 'frontend' && r.name === name).map((r) => r.message);

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
    // Attaching the nested HWPT, which has the FAULT queue, enabled the NIC's PRI on the host.
    expect(t.nic.pri?.enabled).toBe(true);
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

describe('nested vVT-d: what the guest changes in place', () => {
  it('a device the VMM put on stage 2, and a blocked RID re-read unchanged, cost no host call', async () => {
    const rig = await vmRig('nested');
    const vvtd = new NestedVvtd(rig.context);
    const replace = vi.spyOn(rig.fd, 'replace');
    const attach = vi.spyOn(rig.fd, 'attach');
    const detach = vi.spyOn(rig.fd, 'detach');
    vvtd.addDevice(rig.view);
    expect(replace).not.toHaveBeenCalled();
    expect(attach).not.toHaveBeenCalled();
    expect(detach).not.toHaveBeenCalled();
    const driver = rig.guestDriver() as VtdDriver;
    const qi = (driver as unknown as { unit: ProbedUnit }).unit.qi;
    // Translation on: the RID, without a PASID entry yet, is blocked once.
    expect(replace).toHaveBeenCalledTimes(1);
    const blocked = rig.fd.attachedHwpt(rig.devId);
    qi.submit([contextDevice(0, VRID), pasidCache(0, 0)]);
    expect(vvtd.stats.entriesChecked).toBeGreaterThan(2);
    expect(replace).toHaveBeenCalledTimes(1);
    expect(rig.fd.attachedHwpt(rig.devId)).toBe(blocked);
  });

  it('an entry moved straight to another first-stage table gets a new HWPT; an unchanged one is left alone', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    const did = t.driver.domainId(domain)!;
    const first = t.fd.attachedHwpt(t.devId)!;
    const replace = vi.spyOn(t.fd, 'replace');
    const attach = vi.spyOn(t.fd, 'attach');
    // Re-read without a change: nothing moves on the host.
    t.qi().submit([pasidCache(did, 0)]);
    expect(replace).not.toHaveBeenCalled();
    expect(attach).not.toHaveBeenCalled();
    expect(t.fd.attachedHwpt(t.devId)).toBe(first);
    // The guest points its RID_PASID entry at another table: the RID moves to a HWPT of that table, the old goes.
    const table = t.guestPage();
    rewritePasidEntry(t, 0, { fsptptr: Number(table) });
    t.qi().submit([pasidCache(did, 0)]);
    const second = t.fd.attachedHwpt(t.devId)!;
    expect(second).not.toBe(first);
    expect(nestedHwpts(t).map((o) => o.id)).toEqual([second]);
    expect(t.vvtd.stats).toMatchObject({ nestedAllocs: 2, bindingsRefused: 0 });
    // The new table maps nothing yet.
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: false });
  });

  it('a move the host refuses to allocate blocks the device and frees the HWPT it was on', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: true });
    const alloc = t.fd.hwptAlloc.bind(t.fd);
    vi.spyOn(t.fd, 'hwptAlloc').mockImplementation((request) => {
      if (request.data !== undefined) throw new IommufdError('ENOMEM', 'refused for the test');
      return alloc(request);
    });
    rewritePasidEntry(t, 0, { fsptptr: Number(t.guestPage()) });
    t.qi().submit([pasidCache(t.driver.domainId(domain)!, 0)]);
    expect(t.vvtd.stats.bindingsRefused).toBe(1);
    expect(nestedHwpts(t)).toEqual([]);
    expect(t.fd.attachedHwpt(t.devId)).not.toBe(t.context.nested!.s2HwptId);
    expect(t.fd.attachedHwpt(t.devId)).toBeDefined();
    expect(t.nic.dmaWrite(IOVA, Uint8Array.of(1))).toMatchObject({ ok: false });
  });

  it('a move whose attach the host refuses frees the new HWPT as well as the old', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    const blocked = t.fd
      .objects()
      .find((o) => o.type === 'hwpt-paging' && o.id !== t.context.nested!.s2HwptId);
    expect(blocked).toBeDefined();
    // The host takes the allocation but refuses to put the device on a HWPT it did not have before.
    const known = new Set(t.fd.objects().map((o) => o.id));
    const replace = t.fd.replace.bind(t.fd);
    vi.spyOn(t.fd, 'replace').mockImplementation((devId, ptId, pasid) => {
      if (!known.has(ptId)) throw new IommufdError('EINVAL', 'refused for the test');
      return replace(devId, ptId, pasid);
    });
    rewritePasidEntry(t, 0, { fsptptr: Number(t.guestPage()) });
    t.qi().submit([pasidCache(t.driver.domainId(domain)!, 0)]);
    expect(t.vvtd.stats).toMatchObject({ nestedAllocs: 2, bindingsRefused: 1 });
    expect(nestedHwpts(t)).toEqual([]);
    expect(t.fd.attachedHwpt(t.devId)).toBe(blocked!.id);
  });

  it('a refusal while the device is blocked already leaves the host alone', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    const before = t.fd.attachedHwpt(t.devId);
    vi.spyOn(t.fd, 'hwptAlloc').mockImplementation(() => {
      throw new IommufdError('ENOMEM', 'refused for the test');
    });
    const replace = vi.spyOn(t.fd, 'replace');
    const attach = vi.spyOn(t.fd, 'attach');
    t.driver.attachDev(domain, t.guestView);
    t.driver.setDevPasid(domain, t.guestView, 5);
    expect(t.vvtd.stats.bindingsRefused).toBe(2);
    expect(replace).not.toHaveBeenCalled();
    expect(attach).not.toHaveBeenCalled();
    expect(t.fd.attachedHwpt(t.devId)).toBe(before);
    expect(t.fd.attachedHwpt(t.devId, 5)).toBeUndefined();
  });

  it('a first stage of 5 levels is a 57-bit nested HWPT, of 4 levels a 48-bit one', async () => {
    const t = await nested();
    const alloc = vi.spyOn(t.fd, 'hwptAlloc');
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    // The guest's unit offers 5-level first stages (the host's FL5LP), which the guest driver uses.
    const entry = (t.driver as unknown as { unit: ProbedUnit }).unit.pasidTables.entry(VRID, 0)!;
    expect(entry.flpm).toBe(FLPM.LEVEL_5);
    expect(alloc.mock.calls.map((c) => c[0].data)).toEqual([
      { pgtblAddr: entry.fsptptr, addrWidth: 57, flags: 0n },
    ]);
    // The same table read as 4-level is another HWPT.
    rewritePasidEntry(t, 0, { flpm: FLPM.LEVEL_4 });
    t.qi().submit([pasidCache(t.driver.domainId(domain)!, 0)]);
    expect(alloc.mock.calls.map((c) => c[0].data)[1]).toEqual({
      pgtblAddr: entry.fsptptr,
      addrWidth: 48,
      flags: 0n,
    });
  });

  it('translation turned off detaches a PASID, while the RID goes back to stage 2', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    t.driver.setDevPasid(domain, t.guestView, 5);
    expect(t.fd.attachedHwpt(t.devId, 5)).toBeDefined();
    gcmd(t, 0, GCMD_TE);
    // The host takes the RID back to the stage 2 (not PASID-compatible) only once the PASID is detached.
    expect(t.fd.attachedHwpt(t.devId)).toBe(t.context.nested!.s2HwptId);
    expect(t.fd.attachedHwpt(t.devId, 5)).toBeUndefined();
    expect(nestedHwpts(t)).toEqual([]);
    expect(t.vvtd.stats.bindingsRefused).toBe(0);
    // Untranslated DMA is GPA again.
    const gpa = t.guestPage();
    expect(t.nic.dmaWrite(gpa, Uint8Array.of(0x5a))).toMatchObject({ ok: true });
    expect(t.read(gpa, 1)).toEqual([0x5a]);
  });

  it('a PASID bound before the guest latches a legacy root table is detached once it flushes its context cache', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    t.driver.setDevPasid(domain, t.guestView, 5);
    const root = Number(t.guestPage());
    const ctx = Number(t.guestPage());
    const w = t.bus.counter('t');
    t.bus.writeWords(root, encodeLegacyRootEntry({ p: true, ctp: ctx }), 4, w);
    t.bus.writeWords(
      ctx + VRID * 16,
      encodeLegacyContext({ p: true, tt: CONTEXT_TT.PASS_THROUGH, aw: 2, did: 1 }),
      4,
      w,
    );
    // A new root table with translation on; the context cache holds the scalable entry until it is flushed.
    t.bus.write(WINDOW + REG.RTADDR, 4, root, w);
    t.bus.write(WINDOW + REG.RTADDR + 4, 4, 0, w);
    gcmd(t, GCMD_SRTP);
    t.qi().submit([contextGlobal()]);
    expect(t.fd.attachedHwpt(t.devId)).toBe(t.context.nested!.s2HwptId);
    expect(t.fd.attachedHwpt(t.devId, 5)).toBeUndefined();
    expect(nestedHwpts(t)).toEqual([]);
    expect(t.vvtd.stats.bindingsRefused).toBe(0);
  });

  it('a PASID the guest removes is forgotten: re-reading the whole device looks at the RID alone', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    t.driver.setDevPasid(domain, t.guestView, 5);
    let checked = t.vvtd.stats.entriesChecked;
    t.qi().submit([contextDevice(0, VRID)]);
    expect(t.vvtd.stats.entriesChecked - checked).toBe(2);
    t.driver.removeDevPasid(t.guestView, 5);
    checked = t.vvtd.stats.entriesChecked;
    t.qi().submit([contextDevice(0, VRID)]);
    expect(t.vvtd.stats.entriesChecked - checked).toBe(1);
    // Nothing of the PASID is left for destroy to take down.
    t.vvtd.destroy();
    expect(t.fd.objects().map((o) => o.type)).toEqual(['device', 'ioas', 'hwpt-paging']);
  });

  it('global and domain-selective context-cache and PASID-cache invalidations re-read every binding', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    t.driver.setDevPasid(domain, t.guestView, 5);
    const did = t.driver.domainId(domain)!;
    const reread = (d: Parameters<ReturnType<Nested['qi']>['submit']>[0][number]) => {
      const checked = t.vvtd.stats.entriesChecked;
      t.qi().submit([d]);
      return t.vvtd.stats.entriesChecked - checked;
    };
    expect(reread(contextGlobal())).toBe(2);
    expect(reread({ type: 1, granularity: 2, did })).toBe(2);
    expect(reread(pasidCache(did, 'all'))).toBe(2);
    expect(reread(pasidCacheGlobal())).toBe(2);
    // A PASID-selective one looks at that PASID alone.
    expect(reread(pasidCache(did, 5))).toBe(1);
  });

  it('a PASID-selective PASID-cache invalidation reaches a device without a context entry too', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    const did = t.driver.domainId(domain)!;
    t.driver.releaseDevice(t.guestView);
    const blocked = t.fd.attachedHwpt(t.devId);
    const checked = t.vvtd.stats.entriesChecked;
    t.qi().submit([pasidCache(did, 0)]);
    expect(t.vvtd.stats.entriesChecked).toBe(checked + 1);
    expect(t.fd.attachedHwpt(t.devId)).toBe(blocked);
    expect(nestedHwpts(t)).toEqual([]);
  });
});

describe('nested vVT-d: host refusals as the guest and the trace see them', () => {
  /** A page request of the NIC delivered to the guest; its group index. */
  const pageRequest = (t: Nested): number => {
    t.nic.pci.setPriEnabled(true);
    const r = t.nic.dmaWrite(0x40_0000n, Uint8Array.of(1), { requestPages: true });
    t.system.serviceInterrupts();
    expect(t.vvtd.service()).toBe(1);
    return (r as { groupIndex: number }).groupIndex;
  };

  it('a successful page response reaches the device as success', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    const groupIndex = pageRequest(t);
    t.driver.pageResponse!(t.guestView, { pasid: NO_PASID, groupIndex, code: 'success' });
    expect(t.nic.pri?.lastResponse(groupIndex)).toBe('success');
    expect(t.vvtd.stats.pageResponsesForwarded).toBe(1);
  });

  it('a page response or an invalidation the host refuses is IQE with IQEI 0, its reason in the trace', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    const groupIndex = pageRequest(t);
    const errors = t.vvtd.unit.invalidationQueue!.errors;
    t.system.tracer.startRecording();
    vi.spyOn(t.fd, 'faultRespond').mockImplementation(() => {
      throw new IommufdError('EINVAL', 'response refused for the test');
    });
    expect(() =>
      t.driver.pageResponse!(t.guestView, { pasid: NO_PASID, groupIndex, code: 'success' }),
    ).toThrow(/IQEI 0/);
    expect(errors[IQEI.INFO_NOT_AVAILABLE]).toBe(1);
    vi.spyOn(t.fd, 'hwptInvalidate').mockImplementation(() => {
      throw new IommufdError('EINVAL', 'invalidation refused for the test');
    });
    expect(() => t.qi().submit([pasidIotlb(t.driver.domainId(domain)!, 0)])).toThrow(/IQEI 0/);
    expect(errors[IQEI.INFO_NOT_AVAILABLE]).toBe(2);
    expect(errors.reduce((sum, n) => sum + n, 0)).toBe(2);
    const iqe = t.system.tracer
      .stopRecording()
      .filter((r) => r.layer === 'hw' && r.name.endsWith('iqe'))
      .map((r) => r.message);
    expect(iqe).toEqual([
      expect.stringMatching(/IQEI 0 .*: the host refused the page response: .*response refused for the test/),
      expect.stringMatching(/IQEI 0 .*: the host refused it: .*invalidation refused for the test/),
    ]);
  });

  it('a host error of another kind than IommufdError in a page response or an invalidation is thrown', async () => {
    const t = await nested();
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    const groupIndex = pageRequest(t);
    vi.spyOn(t.fd, 'faultRespond').mockImplementation(() => {
      throw new TypeError('a bug');
    });
    expect(() =>
      t.driver.pageResponse!(t.guestView, { pasid: NO_PASID, groupIndex, code: 'success' }),
    ).toThrow(TypeError);
    vi.spyOn(t.fd, 'hwptInvalidate').mockImplementation(() => {
      throw new TypeError('a bug');
    });
    expect(() => t.qi().submit([iotlbDomain(t.driver.domainId(domain)!)])).toThrow(TypeError);
  });

  it('traces a refused binding with the RID or PASID it was for; an empty service() traces nothing', async () => {
    const t = await nested();
    t.system.tracer.startRecording();
    expect(t.vvtd.service()).toBe(0);
    const alloc = t.fd.hwptAlloc.bind(t.fd);
    vi.spyOn(t.fd, 'hwptAlloc').mockImplementation((request) => {
      if (request.data !== undefined) throw new IommufdError('ENOMEM', 'refused for the test');
      return alloc(request);
    });
    const { domain } = t.mapped();
    t.driver.attachDev(domain, t.guestView);
    t.driver.setDevPasid(domain, t.guestView, 5);
    const records = t.system.tracer.stopRecording();
    expect(new Set(frontend(records, 'vvtd.refused'))).toEqual(
      new Set([
        'nic0 PASID RID: ENOMEM: refused for the test; blocked',
        'nic0 PASID 5: ENOMEM: refused for the test; blocked',
      ]),
    );
    expect(frontend(records, 'vvtd.prq')).toEqual([]);
  });

  it('with tracing off it builds no trace message, from the first device to destroy', async () => {
    const rig = await vmRig('nested');
    expect(rig.system.tracer.enabled).toBe(false);
    const vvtd = new NestedVvtd(rig.context);
    const trace = vi.spyOn(vvtd as unknown as { trace(name: string, message: string): void }, 'trace');
    vvtd.addDevice(rig.view);
    const driver = rig.guestDriver() as VtdDriver;
    const qi = (driver as unknown as { unit: ProbedUnit }).unit.qi;
    const domain = driver.domainAllocPaging();
    driver.attachDev(domain, rig.guestView);
    rig.nic.pci.setPriEnabled(true);
    rig.nic.dmaWrite(0x40_0000n, Uint8Array.of(1), { requestPages: true });
    rig.system.serviceInterrupts();
    expect(vvtd.service()).toBe(1);
    const invalidate = vi.spyOn(rig.fd, 'hwptInvalidate').mockImplementation(() => {
      throw new IommufdError('EINVAL', 'refused for the test');
    });
    expect(() => qi.submit([iotlbGlobal()])).toThrow(/IQEI 0/);
    invalidate.mockRestore();
    vi.spyOn(rig.fd, 'hwptAlloc').mockImplementation(() => {
      throw new IommufdError('ENOMEM', 'refused for the test');
    });
    driver.attachDev(driver.domainAllocPaging(), rig.guestView);
    vvtd.destroy();
    expect(vvtd.stats).toMatchObject({
      nestedAllocs: 1,
      invalidationsRejected: 1,
      bindingsRefused: 1,
      pageRequestsDelivered: 1,
    });
    expect(trace).not.toHaveBeenCalled();
  });
});

describe('nested vVT-d: teardown of what it never made', () => {
  it('destroy before the guest driver ran frees its FAULT queue and leaves the device on stage 2', async () => {
    const rig = await vmRig('nested');
    const vvtd = new NestedVvtd(rig.context);
    vvtd.addDevice(rig.view);
    expect(rig.fd.objects().map((o) => o.type)).toEqual(['device', 'ioas', 'hwpt-paging', 'fault']);
    vvtd.destroy();
    expect(rig.fd.objects().map((o) => o.type)).toEqual(['device', 'ioas', 'hwpt-paging']);
    expect(rig.fd.attachedHwpt(rig.devId)).toBe(rig.context.nested!.s2HwptId);
  });

  it('destroy without host page requests has no FAULT queue to free', async () => {
    const rig = await vmRig('nested', { pageRequests: false, pageRequestDrain: false });
    const vvtd = new NestedVvtd(rig.context);
    vvtd.addDevice(rig.view);
    const driver = rig.guestDriver() as VtdDriver;
    driver.attachDev(driver.domainAllocPaging(), rig.guestView);
    vvtd.destroy();
    expect(rig.fd.objects().map((o) => o.type)).toEqual(['device', 'ioas', 'hwpt-paging']);
    expect(rig.fd.attachedHwpt(rig.devId)).toBe(rig.context.nested!.s2HwptId);
  });
});
