/**
 * PASIDs in the AMD host driver on the hardware model (amd-driver.ts, gcr3-table.ts, device-table.ts,
 * domain-flush.ts): v2 domains at a PASID and at the RID (GCR3[0] with GIoV) translate through the unit,
 * the GCR3 entries and DTE fields written, the GN = 1 flushes an unmap needs, removal, and the requests
 * Linux refuses.
 */
import { errnoOf, hpa, iova, PERM_READ, PERM_WRITE, type TranslationResult } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { driverRig } from '../../test/driver-rig.js';
import { decodeDte } from '../hw/dte.js';
import { REG } from '../hw/regs.js';
import { AmdDriver } from './amd-driver.js';
import type { AmdPagingDomain } from './paging-domain.js';

const RW = { read: true, write: true };
const DEV = 0x0100;
const ATS_DEV = 0x0208;

function setup(init: Parameters<typeof driverRig>[0] = {}) {
  const r = driverRig(init);
  const driver = new AmdDriver(r.context);
  driver.probe();
  const dev = r.device(DEV, false, { pasidBits: 20, pri: true });
  driver.probeDevice(dev);
  const page = () => Number(r.buffers.allocFrames(1));
  const dte = (deviceId = DEV) => decodeDte(driver.host.deviceTable.read(deviceId));
  const commandsOf = (action: () => void) => {
    const from = r.reg(REG.CMD_TAIL);
    action();
    return r.commands(driver.host.queue.base, from, r.reg(REG.CMD_TAIL));
  };
  /** A v2 domain with `iova` mapped to a fresh page; returns both. */
  const v2 = (at = 0x40_0000) => {
    const domain = driver.domainAllocPaging({ pasid: true }) as AmdPagingDomain;
    const target = page();
    domain.map(iova(BigInt(at)), hpa(target), 0x1000n, RW);
    return { domain, target };
  };
  return { r, driver, dev, page, dte, commandsOf, v2 };
}

const pfnOf = (result: TranslationResult) => (result.ok ? result.pfn : undefined);
/** A 64-bit GCR3 entry pointing at `address`, valid, as two words. */
const entryWords = (address: number) => [(address % 2 ** 32) + 1, Math.floor(address / 2 ** 32)];

describe('a v2 domain at a PASID', () => {
  it('translates requests with that PASID to the mapped page; without PASID the RID domain still applies', () => {
    const { r, driver, dev, v2 } = setup();
    driver.attachDev(driver.identityDomain, dev);
    const { domain, target } = v2();
    expect(domain).toMatchObject({ pageTable: 'v2', levels: 4 });
    driver.setDevPasid(domain, dev, 5);
    expect(pfnOf(r.translate(DEV, 0x40_0123, PERM_WRITE, 5))).toBe(target / 4096);
    expect(pfnOf(r.translate(DEV, 0x40_0123, PERM_WRITE))).toBe(0x400);
    // Another PASID has no GCR3 entry.
    expect(r.translate(DEV, 0x40_0123, PERM_READ, 6).ok).toBe(false);
  });

  it('writes the GCR3 entries (two levels for 2^16 − 1 PASIDs) and GV, GLX, the root, DomainID and PPR in the DTE', () => {
    const { r, driver, dev, dte, v2 } = setup();
    driver.attachDev(driver.identityDomain, dev);
    const { domain } = v2();
    driver.setDevPasid(domain, dev, 0x205);
    const table = driver.gcr3Table(dev)!;
    expect(table.glx).toBe(1);
    expect(table.domainId).not.toBe(driver.identityDomainId);
    expect(dte()).toMatchObject({
      v: true,
      tv: true,
      mode: 0,
      ir: true,
      iw: true,
      gv: true,
      giov: false,
      glx: 1,
      gcr3TableRootPtr: table.root,
      guestPagingMode: 0,
      domainId: table.domainId,
    });
    // PASID 0x205: root index 1, last-level index 5.
    const root = r.words(table.root, 1024);
    const next = root[2]! - 1 + root[3]! * 2 ** 32;
    expect([...root].filter((w) => w !== 0)).toEqual(entryWords(next));
    expect([...r.words(next + 5 * 8, 2)]).toEqual(entryWords(domain.rootPa));
    expect([...r.words(next, 1024)].filter((w) => w !== 0)).toEqual(entryWords(domain.rootPa));
    expect(r.capsEnabled.get(`pasid:${DEV}`)).toBe(true);
    expect(driver.hwInfo(dev).maxPasidLog2).toBe(15);
  });

  it('flushes an unmap with GN = 1 under the GCR3 DomainID and the PASID, and the ATS device’s IOTLB at that PASID', () => {
    const { r, driver, commandsOf, v2 } = setup();
    const ats = r.device(ATS_DEV, true, { pasidBits: 8 });
    driver.probeDevice(ats);
    driver.attachDev(driver.identityDomain, ats);
    const { domain, target } = v2();
    // A second page keeps the tables: the unmap gathers its leaf alone.
    domain.map(iova(0x40_1000n), hpa(target), 0x1000n, RW);
    driver.setDevPasid(domain, ats, 9);
    const domainId = driver.gcr3Table(ats)!.domainId;
    expect(domain.unmap(iova(0x40_0000n), 0x1000n)).toBe(0x1000n);
    expect(commandsOf(() => domain.iotlbSync())).toEqual([
      { op: 'invalidate-iommu-pages', pasid: 9, domainId, s: false, pde: true, gn: true, address: 0x40_0000 },
      {
        op: 'invalidate-iotlb-pages',
        deviceId: ATS_DEV,
        maxPend: 0,
        queueId: ATS_DEV,
        pasid: 9,
        s: false,
        gn: true,
        type: 0,
        address: 0x40_0000,
      },
      expect.objectContaining({ op: 'completion-wait' }),
    ]);
  });

  it('removing the PASID clears its entry and flushes it; the PASID faults, and the unused table goes', () => {
    const { r, driver, dev, dte, commandsOf, v2 } = setup();
    driver.attachDev(driver.identityDomain, dev);
    const { domain } = v2();
    driver.setDevPasid(domain, dev, 5);
    expect(r.translate(DEV, 0x40_0000, PERM_READ, 5).ok).toBe(true);
    const table = driver.gcr3Table(dev)!;
    const commands = commandsOf(() => driver.removeDevPasid(dev, 5));
    expect(commands[0]).toEqual({
      op: 'invalidate-iommu-pages',
      pasid: 5,
      domainId: table.domainId,
      s: true,
      pde: true,
      gn: true,
      address: 2 ** 63 - 4096,
    });
    expect(r.translate(DEV, 0x40_0000, PERM_READ, 5).ok).toBe(false);
    expect(driver.gcr3Table(dev)).toBeUndefined();
    expect(dte()).toMatchObject({
      gv: false,
      glx: 0,
      gcr3TableRootPtr: 0,
      domainId: driver.identityDomainId,
    });
    expect(domain.attachments).toBe(0);
    domain.free();
  });

  it('a blocked RID keeps its PASIDs: DMA without PASID is denied, with the PASID translated', () => {
    const { r, driver, dev, dte, v2 } = setup();
    const { domain, target } = v2();
    driver.setDevPasid(domain, dev, 3);
    expect(dte()).toMatchObject({ tv: true, mode: 0, ir: false, iw: false, gv: true });
    expect(pfnOf(r.translate(DEV, 0x40_0000, PERM_READ, 3))).toBe(target / 4096);
    expect(r.translate(DEV, 0x40_0000, PERM_READ).ok).toBe(false);
  });
});

describe('a v2 domain at the RID', () => {
  it('goes into GCR3[0] with GIoV: requests without PASID translate through it, beside another PASID', () => {
    const { r, driver, dev, dte, commandsOf, v2 } = setup();
    const rid = v2(0x10_0000);
    driver.attachDev(rid.domain, dev);
    const table = driver.gcr3Table(dev)!;
    expect(dte()).toMatchObject({ mode: 0, gv: true, giov: true, domainId: table.domainId });
    // PASID 0: root index 0, then last-level index 0.
    const [lo, hi] = r.words(table.root, 2);
    const next = lo! - 1 + hi! * 2 ** 32;
    expect([...r.words(next, 2)]).toEqual(entryWords(rid.domain.rootPa));
    expect(pfnOf(r.translate(DEV, 0x10_0000))).toBe(rid.target / 4096);
    expect(r.translate(DEV, 0x40_0000).ok).toBe(false);
    const at7 = v2();
    driver.setDevPasid(at7.domain, dev, 7);
    expect(pfnOf(r.translate(DEV, 0x40_0000, PERM_READ, 7))).toBe(at7.target / 4096);
    // The RID's flushes: PASID 0 with GN = 1 (Linux `domain_flush_pages_v2`).
    rid.domain.map(iova(0x10_1000n), hpa(rid.target), 0x1000n, RW);
    rid.domain.unmap(iova(0x10_0000n), 0x1000n);
    expect(commandsOf(() => rid.domain.iotlbSync())[0]).toMatchObject({
      pasid: 0,
      gn: true,
      domainId: table.domainId,
      address: 0x10_0000,
      s: false,
    });
    expect(r.translate(DEV, 0x10_0000).ok).toBe(false);
    // Identity at the RID again: GCR3[0] cleared, GIoV off, the table kept for PASID 7.
    driver.attachDev(driver.identityDomain, dev);
    expect(dte()).toMatchObject({ gv: true, giov: false });
    expect([...r.words(next, 2)]).toEqual([0, 0]);
    expect(pfnOf(r.translate(DEV, 0x10_0000))).toBe(0x100);
    expect(pfnOf(r.translate(DEV, 0x40_0000, PERM_READ, 7))).toBe(at7.target / 4096);
  });
});

describe('what Linux refuses', () => {
  it('EINVAL for a PASID out of range, a v1 domain at a PASID, PASIDs under a v1 RID, identity at a PASID', () => {
    const { driver, dev, v2 } = setup();
    const { domain } = v2();
    const v1 = driver.domainAllocPaging();
    expect(errnoOf(() => driver.setDevPasid(domain, dev, 0))).toBe('EINVAL');
    expect(errnoOf(() => driver.setDevPasid(domain, dev, 0xffff))).toBe('EINVAL');
    expect(errnoOf(() => driver.setDevPasid(v1, dev, 5))).toBe('EINVAL');
    expect(errnoOf(() => driver.setDevPasid(driver.identityDomain, dev, 5))).toBe('EINVAL');
    driver.attachDev(v1, dev);
    expect(errnoOf(() => driver.setDevPasid(domain, dev, 5))).toBe('EINVAL');
    driver.attachDev(driver.identityDomain, dev);
    driver.setDevPasid(domain, dev, 5);
    expect(errnoOf(() => driver.attachDev(v1, dev))).toBe('EINVAL');
    // A device without a PASID capability has no PASID to attach.
    const d2 = setup();
    const plain = d2.r.device(0x300, false);
    d2.driver.probeDevice(plain);
    expect(errnoOf(() => d2.driver.setDevPasid(d2.v2().domain, plain, 1))).toBe('EINVAL');
    expect(d2.driver.hwInfo(plain).maxPasidLog2).toBe(0);
  });

  it('EOPNOTSUPP for a PASID-capable domain on a unit without guest translation', () => {
    const { driver } = setup({ options: { guestTranslation: false } });
    expect(errnoOf(() => driver.domainAllocPaging({ pasid: true }))).toBe('EOPNOTSUPP');
  });

  it('release removes the PASIDs, frees the table and turns PASID and PRI off', () => {
    const { r, driver, v2 } = setup();
    const dev = r.device(DEV + 1, true, { pasidBits: 20, pri: true });
    driver.probeDevice(dev);
    driver.attachDev(driver.identityDomain, dev);
    driver.enableIopf(dev);
    const { domain } = v2();
    driver.setDevPasid(domain, dev, 5);
    const used = r.memory.allocatedFrameCount;
    driver.releaseDevice(dev);
    expect(r.memory.allocatedFrameCount).toBe(used - 2);
    expect(domain.attachments).toBe(0);
    expect(r.capsEnabled.get(`pasid:${DEV + 1}`)).toBe(false);
    expect(r.capsEnabled.get(`pri:${DEV + 1}`)).toBe(false);
    expect(r.atsEnabled.get(DEV + 1)).toBe(false);
  });
});
