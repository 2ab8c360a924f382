/**
 * The AMD host driver end to end (amd-driver.ts) on the hardware model: DMA through attached paging,
 * identity and blocked domains, faults reaching the core, a hitless replace, the exact flushes an unmap
 * needs, ATS, and the IommuDriver bookkeeping (errors, hw_info, reserved regions, release).
 */
import { errnoOf, hpa, iova, PERM_READ, PERM_WRITE, type TranslationResult } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { driverRig } from '../../test/driver-rig.js';
import { decodeInvalidationRange } from '../hw/commands.js';
import { decodeDte, dteAddress } from '../hw/dte.js';
import { REG } from '../hw/regs.js';
import { AmdDriver, HT_RANGE } from './amd-driver.js';
import type { AmdPagingDomain } from './paging-domain.js';

const RW = { read: true, write: true };
const DEV = 0x0100;

function setup(init: Parameters<typeof driverRig>[0] = {}) {
  const r = driverRig(init);
  const driver = new AmdDriver(r.context);
  driver.probe();
  const dev = r.device(DEV, false);
  driver.probeDevice(dev);
  const page = () => Number(r.buffers.allocFrames(1));
  const dte = (deviceId = DEV) => decodeDte(driver.host.deviceTable.read(deviceId));
  /** The commands the driver queued while `action` ran. */
  const commandsOf = (action: () => void) => {
    const from = r.reg(REG.CMD_TAIL);
    action();
    return r.commands(driver.host.queue.base, from, r.reg(REG.CMD_TAIL));
  };
  return { r, driver, dev, page, dte, commandsOf };
}

const pfnOf = (result: TranslationResult) => (result.ok ? result.pfn : undefined);

describe('DMA through the domains', () => {
  it('a mapped IOVA translates to its page after attach; an unmapped one faults and reaches reportFault', () => {
    const { r, driver, dev, page, dte } = setup();
    const domain = driver.domainAllocPaging() as AmdPagingDomain;
    const target = page();
    domain.map(iova(0x10_0000n), hpa(target), 0x1000n, RW);
    driver.attachDev(domain, dev);
    expect(dte()).toMatchObject({
      v: true,
      tv: true,
      mode: 4,
      hostPageTableRootPtr: domain.rootPa,
      domainId: domain.domainId,
    });
    expect(pfnOf(r.translate(DEV, 0x10_0123, PERM_WRITE))).toBe(target / 4096);
    const miss = r.translate(DEV, 0x20_0000, PERM_WRITE);
    expect(miss.ok).toBe(false);
    expect(r.faults).toEqual([]);
    expect(r.service()).toBe(1);
    expect(r.faults).toEqual([
      {
        fault: {
          kind: 'translation',
          vendorCode: 'IO_PAGE_FAULT',
          streamId: DEV,
          pasid: -1,
          iova: 0x20_0000n,
          access: PERM_WRITE,
          recorded: true,
        },
        device: 'dev100',
      },
    ]);
  });

  it('identity passes addresses through with IR/IW under the identity DomainID', () => {
    const { r, driver, dev, dte } = setup();
    driver.attachDev(driver.identityDomain, dev);
    expect(dte()).toMatchObject({
      v: true,
      tv: true,
      mode: 0,
      ir: true,
      iw: true,
      domainId: driver.identityDomainId,
    });
    expect(driver.identityDomainId).toBe(1);
    const result = r.translate(DEV, 0x1234_5000, PERM_WRITE);
    expect(result).toMatchObject({ ok: true, pfn: 0x1_2345 });
  });

  it('blocked (V = 1, TV = 0) faults every DMA, after a paging domain let it through', () => {
    const { r, driver, dev, page, dte } = setup();
    const domain = driver.domainAllocPaging();
    domain.map(iova(0x1000n), hpa(page()), 0x1000n, RW);
    driver.attachDev(domain, dev);
    expect(r.translate(DEV, 0x1000).ok).toBe(true);
    driver.attachDev(driver.blockedDomain, dev);
    expect(Array.from(driver.host.deviceTable.read(DEV))).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(dte().tv).toBe(false);
    expect(r.translate(DEV, 0x1000).ok).toBe(false);
  });

  it('a device not yet attached is blocked by its boot entry', () => {
    const { r } = setup();
    expect(r.translate(DEV, 0x1000).ok).toBe(false);
  });
});

describe('replace', () => {
  it('switches the entry from one domain to the other with no state in between mixing them', () => {
    const { r, driver, dev, page } = setup();
    const a = driver.domainAllocPaging() as AmdPagingDomain;
    const b = driver.domainAllocPaging() as AmdPagingDomain;
    const [pa, pb] = [page(), page()];
    a.map(iova(0x1000n), hpa(pa), 0x1000n, RW);
    b.map(iova(0x1000n), hpa(pb), 0x1000n, RW);
    driver.attachDev(a, dev);
    expect(pfnOf(r.translate(DEV, 0x1000))).toBe(pa / 4096);
    const at = dteAddress(driver.host.deviceTable.base, DEV);
    const states: string[] = [];
    const writeWords = r.bus.writeWords.bind(r.bus);
    r.bus.writeWords = (address, words, count, who, offset) => {
      const ok = writeWords(address, words, count, who, offset);
      if (address >= at && address < at + 32) {
        const d = decodeDte(r.words(at, 8));
        states.push(`${d.v}/${d.tv}/${d.mode}/${d.hostPageTableRootPtr}/${d.domainId}`);
      }
      return ok;
    };
    const ops = [] as string[];
    const from = r.reg(REG.CMD_TAIL);
    driver.attachDev(b, dev);
    for (const c of r.commands(driver.host.queue.base, from, r.reg(REG.CMD_TAIL)))
      ops.push(c.op === 'invalidate-iommu-pages' ? `pages ${c.domainId}` : c.op);
    const stateOf = (d: AmdPagingDomain) => `true/true/4/${d.rootPa}/${d.domainId}`;
    expect(states.length).toBeGreaterThan(0);
    for (const state of states) expect([stateOf(a), stateOf(b)]).toContain(state);
    expect(states.at(-1)).toBe(stateOf(b));
    expect(pfnOf(r.translate(DEV, 0x1000))).toBe(pb / 4096);
    // The entry flushed, then the old domain's translations.
    expect(ops).toEqual([
      'invalidate-devtab-entry',
      'completion-wait',
      'invalidate-devtab-entry',
      'completion-wait',
      `pages ${a.domainId}`,
      'completion-wait',
    ]);
    expect([a.attachments, b.attachments]).toEqual([0, 1]);
  });
});

describe('flushes', () => {
  it('unmap then iotlbSync: one INVALIDATE_IOMMU_PAGES over the gathered range, PDE, then the wait', () => {
    const { r, driver, dev, page, commandsOf } = setup();
    const domain = driver.domainAllocPaging() as AmdPagingDomain;
    for (let i = 0; i < 4; i++) domain.map(iova(BigInt(0x40_0000 + i * 0x1000)), hpa(page()), 0x1000n, RW);
    driver.attachDev(domain, dev);
    expect(r.translate(DEV, 0x40_1000).ok).toBe(true);
    expect(domain.unmap(iova(0x40_1000n), 0x2000n)).toBe(0x2000n);
    // Before the sync the unit still has the translation cached.
    expect(r.translate(DEV, 0x40_1000).ok).toBe(true);
    const commands = commandsOf(() => domain.iotlbSync());
    expect(commands).toEqual([
      // 0x401000..0x402fff differ from bit 13 down: the 16 KiB block at 0x400000 (S = 1, bit 13 clear).
      {
        op: 'invalidate-iommu-pages',
        pasid: 0,
        domainId: domain.domainId,
        s: true,
        pde: true,
        gn: false,
        address: 0x40_1000,
      },
      expect.objectContaining({ op: 'completion-wait' }),
    ]);
    expect(r.translate(DEV, 0x40_1000).ok).toBe(false);
    expect(r.translate(DEV, 0x40_3000).ok).toBe(true);
  });

  it('an ATS device gets INVALIDATE_IOTLB_PAGES over the same range, and DTE.I', () => {
    const { r, driver, page, dte, commandsOf } = setup();
    const ATS = 0x0200;
    const dev = r.device(ATS);
    driver.probeDevice(dev);
    const port = r.endpoint(ATS);
    const domain = driver.domainAllocPaging() as AmdPagingDomain;
    // Two pages, so unmapping one frees no table.
    domain.map(iova(0x5000n), hpa(page()), 0x1000n, RW);
    domain.map(iova(0x6000n), hpa(page()), 0x1000n, RW);
    driver.attachDev(domain, dev);
    expect(dte(ATS).i).toBe(true);
    expect(r.atsEnabled.get(ATS)).toBe(true);
    domain.unmap(iova(0x5000n), 0x1000n);
    port.invalidations.length = 0;
    const commands = commandsOf(() => domain.iotlbSync());
    expect(commands.map((c) => c.op)).toEqual([
      'invalidate-iommu-pages',
      'invalidate-iotlb-pages',
      'completion-wait',
    ]);
    expect(commands[0]).toMatchObject({ domainId: domain.domainId, s: false, address: 0x5000 });
    expect(commands[1]).toMatchObject({ deviceId: ATS, queueId: ATS, maxPend: 0, s: false, address: 0x5000 });
    expect(port.invalidations).toEqual([{ pasid: undefined, iova: 0x5000n, size: 0x1000n }]);
    driver.attachDev(driver.blockedDomain, dev);
    expect(r.atsEnabled.get(ATS)).toBe(false);
    expect(dte(ATS).i).toBe(false);
  });

  it('freeing the last page of a table flushes what the freed tables covered too (PDE)', () => {
    const { r, driver, dev, page, commandsOf } = setup();
    const domain = driver.domainAllocPaging() as AmdPagingDomain;
    domain.map(iova(0x5000n), hpa(page()), 0x1000n, RW);
    driver.attachDev(domain, dev);
    domain.unmap(iova(0x5000n), 0x1000n);
    const [flush] = commandsOf(() => domain.iotlbSync());
    expect(flush).toMatchObject({ op: 'invalidate-iommu-pages', s: true, pde: true });
    // The level 1–3 tables went with the page: the 512 GiB the level-3 table covered.
    const range =
      flush?.op === 'invalidate-iommu-pages' ? decodeInvalidationRange(flush.address, flush.s) : undefined;
    expect(range).toEqual({ start: 0, size: 2 ** 39 });
    expect(r.translate(DEV, 0x5000).ok).toBe(false);
  });

  it('a domain attached nowhere sends nothing', () => {
    const { driver, page, commandsOf } = setup();
    const domain = driver.domainAllocPaging();
    domain.map(iova(0x5000n), hpa(page()), 0x1000n, RW);
    domain.unmap(iova(0x5000n), 0x1000n);
    expect(commandsOf(() => domain.iotlbSync())).toEqual([]);
  });

  it('with NpCache a map is flushed too, in naturally aligned blocks', () => {
    const { r, driver, dev, commandsOf } = setup({ options: { npCache: true } });
    const domain = driver.domainAllocPaging() as AmdPagingDomain;
    driver.attachDev(domain, dev);
    const pa = Number(r.buffers.allocFrames(4, 4));
    const commands = commandsOf(() => domain.map(iova(0x1000n), hpa(pa), 0x3000n, RW));
    expect(commands.filter((c) => c.op === 'invalidate-iommu-pages')).toEqual([
      {
        op: 'invalidate-iommu-pages',
        pasid: 0,
        domainId: domain.domainId,
        s: false,
        pde: true,
        gn: false,
        address: 0x1000,
      },
      {
        op: 'invalidate-iommu-pages',
        pasid: 0,
        domainId: domain.domainId,
        s: true,
        pde: true,
        gn: false,
        address: 0x2000,
      },
    ]);
  });
});

describe('the driver’s bookkeeping', () => {
  it('domains: a DomainID each from 2 (1 is identity’s), EBUSY while attached, the ID back once freed', () => {
    const { driver, dev } = setup();
    const a = driver.domainAllocPaging() as AmdPagingDomain;
    expect(a.domainId).toBe(2);
    driver.attachDev(a, dev);
    expect(errnoOf(() => a.free())).toBe('EBUSY');
    driver.attachDev(driver.identityDomain, dev);
    a.free();
    expect((driver.domainAllocPaging() as AmdPagingDomain).domainId).toBe(2);
    expect(errnoOf(() => driver.attachDev(a, dev))).toBe('EINVAL');
  });

  it('refuses what this cut lacks, unknown devices and duplicates', () => {
    const { r, driver, dev } = setup();
    expect(errnoOf(() => driver.domainAllocPaging({ nestParent: true }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => driver.domainAllocPaging({ dirtyTracking: true }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => driver.probeDevice(dev))).toBe('EEXIST');
    expect(errnoOf(() => driver.attachDev(driver.identityDomain, r.device(0x200)))).toBe('ENODEV');
    expect(errnoOf(() => new AmdDriver(r.context).domainAllocPaging())).toBe('ENODEV');
  });

  it('release blocks the device and forgets it', () => {
    const { r, driver, dev } = setup();
    driver.attachDev(driver.identityDomain, dev);
    driver.releaseDevice(dev);
    expect(r.translate(DEV, 0x1000).ok).toBe(false);
    expect(errnoOf(() => driver.attachDev(driver.identityDomain, dev))).toBe('ENODEV');
  });

  it('hw_info carries EFR and EFR2; reserved regions are the MSI window and the HT range', () => {
    const { r, driver, dev } = setup();
    const info = driver.hwInfo(dev);
    expect(info.type).toBe('amd');
    expect(info.data.efr).toBe(r.reg64(REG.EFR));
    expect(info.data.efr2).toBe(r.reg64(REG.EFR2));
    expect(driver.reservedRegions(dev)).toEqual([
      { start: 0xfee0_0000n, length: 0x10_0000n, type: 'msi' },
      { start: HT_RANGE.start, length: HT_RANGE.length, type: 'reserved' },
    ]);
  });

  it('shutdown turns the unit off and returns the driver’s memory', () => {
    const { r, driver } = setup();
    driver.shutdown();
    expect(r.reg(REG.CONTROL) & 1).toBe(0);
    expect(r.memory.allocatedFrameCount).toBe(0);
    expect(errnoOf(() => driver.hwInfo(r.device(1)))).toBe('ENODEV');
    expect(r.translate(DEV, 0x1000, PERM_READ).ok).toBe(true);
  });
});
