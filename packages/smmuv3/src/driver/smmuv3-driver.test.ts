/**
 * The host driver end to end on the real device model (`Smmuv3Hardware`) on a MemoryBus: probe programs
 * the registers in Linux's order, endpoints DMA through the domains it attaches, faults travel through the
 * Event queue to `reportFault`, page requests through the PRI queue, ATS and PASIDs follow Linux's rules,
 * and the driver touches nothing but its MMIO window and its own memory.
 */
import { errnoOf, type IommuDomain, iova, NO_PASID, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { createDriverSystem, type DriverSystem, SMMU_BASE } from '../../test/driver-system.js';
import { decodeCd } from '../hw/cd.js';
import {
  CR0_ATSCHK,
  CR0_CMDQEN,
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  GBPA_ABORT,
  GERROR_SFM_ERR,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  REG,
  STRTAB_BASE_HI_RA,
} from '../hw/regs.js';
import { decodeSte, STE_CONFIG, STE_EATS, STE_S1DSS, STE_S1FMT } from '../hw/ste.js';
import type { Smmuv3Domain } from './domain.js';
import { EVENTQ_MAX_LOG2, SMMUV3_SW_MSI_BASE, SMMUV3_SW_MSI_LENGTH } from './smmuv3-driver.js';

const RW = { read: true, write: true };
const KiB = 1024n;

/** A device probed and attached to a fresh domain with `pages` pages mapped at `at` to a new buffer. */
function mapped(s: DriverSystem, flags = {}, pages = 1, at = 0x10_0000n) {
  const dev = s.device('dev0', 0x10);
  s.probe(dev);
  const domain = s.driver.domainAllocPaging(flags);
  const buf = s.buffer(pages * 4096);
  domain.map(iova(at), buf, BigInt(pages) * 4n * KiB, RW);
  s.driver.attachDev(domain, dev);
  return { dev, domain, buf, at };
}

const ste = (s: DriverSystem, sid: number) => decodeSte(s.driver.streamTable.readSte(sid));

describe('Smmuv3Driver.probe', () => {
  it('programs the queues, the stream table and the control registers, and enables the SMMU', () => {
    const s = createDriverSystem();
    const d = s.driver;
    const all = CR0_CMDQEN | CR0_EVENTQEN | CR0_PRIQEN | CR0_ATSCHK | CR0_SMMUEN;
    expect(s.reg(REG.CR0)).toBe(all);
    expect(s.reg(REG.CR0ACK)).toBe(all);
    expect(s.reg(REG.CR1)).toBe(0xd75); // queues and tables: WB inner/outer, inner shareable
    expect(s.reg(REG.CR2)).toBe(1 << 1); // RECINVSID
    expect(s.reg(REG.GBPA) & GBPA_ABORT).toBe(GBPA_ABORT);
    expect(s.reg(REG.STRTAB_BASE)).toBe(d.streamTable.base);
    expect(s.reg(REG.STRTAB_BASE + 4)).toBe(STRTAB_BASE_HI_RA);
    expect(s.reg(REG.STRTAB_BASE_CFG)).toBe((1 << 16) | (8 << 6) | 16); // 2-level, SPLIT 8, 16 bits
    expect(s.reg(REG.CMDQ_BASE)).toBe(d.cmdq.base + 8); // 256 entries
    expect(s.reg(REG.CMDQ_BASE + 4)).toBe(1 << 30);
    expect(s.reg(REG.EVENTQ_BASE) & 0x1f).toBe(EVENTQ_MAX_LOG2);
    expect(s.reg(REG.PRIQ_BASE) & 0x1f).toBe(8);
    expect(s.reg(REG.IRQ_CTRL)).toBe(IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_EVENTQ_IRQEN | IRQ_CTRL_PRIQ_IRQEN);
    expect(s.reg(REG.IRQ_CTRLACK)).toBe(s.reg(REG.IRQ_CTRL));
    // CFGI_ALL + SYNC, TLBI_NSNH_ALL + SYNC, all consumed.
    expect(s.reg(REG.CMDQ_PROD)).toBe(4);
    expect(s.reg(REG.CMDQ_CONS)).toBe(4);
    expect(s.hw.queues.cmdq.commandsExecuted).toBe(4);
    expect(d.cmdq.syncs).toBe(2);
    expect(d.features).toMatchObject({ s1: true, s2: true, sidBits: 16, ssidBits: 20, pri: true });
    expect(d.idr.IDR0).toBe(s.reg(REG.IDR0));
  });

  it("follows Linux's reset sequence register by register", () => {
    const s = createDriverSystem({ recordAccesses: true });
    const writes = s.accesses
      .filter((a) => a.tag === 'driver:smmu0' && a.write && s.inMmio(a.addr, a.bytes))
      .map((a) => [a.addr - SMMU_BASE, a.value] as const);
    const cr0 = writes.filter(([o]) => o === REG.CR0).map(([, v]) => v);
    expect(cr0).toEqual([
      0,
      CR0_CMDQEN,
      CR0_CMDQEN | CR0_EVENTQEN,
      CR0_CMDQEN | CR0_EVENTQEN | CR0_PRIQEN,
      CR0_CMDQEN | CR0_EVENTQEN | CR0_PRIQEN | CR0_ATSCHK,
      CR0_CMDQEN | CR0_EVENTQEN | CR0_PRIQEN | CR0_ATSCHK | CR0_SMMUEN,
    ]);
    const order = writes.map(([o]) => o);
    const first = (o: number) => order.indexOf(o);
    // GBPA abort, CR0 off, CR1/CR2, stream table, CMDQ, CMDQEN, invalidations, EVENTQ, PRIQ, IRQs, SMMUEN.
    expect(first(REG.GBPA)).toBe(0);
    expect(first(REG.CR0)).toBe(1);
    expect(order.slice(2, 11)).toEqual([
      REG.CR1,
      REG.CR2,
      REG.STRTAB_BASE,
      REG.STRTAB_BASE + 4,
      REG.STRTAB_BASE_CFG,
      REG.CMDQ_BASE,
      REG.CMDQ_BASE + 4,
      REG.CMDQ_PROD,
      REG.CMDQ_CONS,
    ]);
    expect(first(REG.EVENTQ_BASE)).toBeGreaterThan(order.lastIndexOf(REG.CMDQ_PROD));
    expect(first(REG.PRIQ_BASE)).toBeGreaterThan(first(REG.EVENTQ_BASE));
    expect(order.lastIndexOf(REG.IRQ_CTRL)).toBeLessThan(order.lastIndexOf(REG.CR0));
    expect(writes.find(([o]) => o === REG.GBPA)?.[1]).toBe((s.reg(REG.GBPA) | 0x8000_0000) >>> 0);
    // EVENTQ/PRIQ PROD and CONS are on page 1.
    expect(order).toContain(REG.EVENTQ_CONS);
    expect(REG.EVENTQ_CONS).toBeGreaterThanOrEqual(0x1_0000);
  });

  it('sizes itself from the ID registers: no PRI/ATS, linear stream table, 8-bit ASIDs/VMIDs, small queues', () => {
    const s = createDriverSystem({
      options: {
        pri: false,
        ats: false,
        sidBits: 6,
        twoLevelStreamTable: false,
        asid16: false,
        vmid16: false,
        cmdqLog2: 4,
        evtqLog2: 3,
      },
    });
    expect(s.reg(REG.CR0)).toBe(CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
    expect(s.reg(REG.STRTAB_BASE_CFG)).toBe(6);
    expect(s.driver.streamTable.format).toBe('linear');
    expect(s.driver.cmdq.capacity).toBe(16);
    expect(s.reg(REG.EVENTQ_BASE) & 0x1f).toBe(3);
    expect(s.reg(REG.IRQ_CTRL) & IRQ_CTRL_PRIQ_IRQEN).toBe(0);
    expect(s.driver.asids.max).toBe(255);
    expect(s.driver.vmids.max).toBe(255);
  });

  it('refuses an SMMU without a translation stage it can use', () => {
    const s = createDriverSystem({ noProbe: true });
    // Nothing at the base: every ID register reads all-ones (a master abort), which is not an SMMU.
    s.bus.removeRegion('smmu0');
    expect(errnoOf(() => s.driver.probe())).toBe('ENODEV');
  });
});

describe('Smmuv3Driver: DMA through attached domains', () => {
  it('a device on a stage-1 domain DMAs through it (the model walks the driver-built tables)', () => {
    const s = createDriverSystem();
    const { dev, domain, buf, at } = mapped(s, {}, 2);
    // Across the page boundary: two translations.
    expect(dev.dmaWrite(at + 0xffen, Uint8Array.of(1, 2, 3, 4)).ok).toBe(true);
    expect([...s.read(buf + 0xffen, 4)]).toEqual([1, 2, 3, 4]);
    const e = ste(s, 0x10);
    expect(e).toMatchObject({ v: true, config: STE_CONFIG.S1_TRANS, s1CdMax: 0, s1Fmt: STE_S1FMT.LINEAR });
    const master = s.driver.master(dev);
    expect(e.s1ContextPtr).toBe(master.cdTable!.base);
    const cd = decodeCd(master.cdTable!.readCd(0));
    expect(cd).toMatchObject({ v: true, asid: (domain as Smmuv3Domain).asid, t0sz: 16, tg0: 0 });
    expect(cd.ttb0).toBe((domain as Smmuv3Domain).table.rootPa);
  });

  it('unmap + iotlbSync makes DMA fault; the fault reaches reportFault once interrupts are serviced', () => {
    const s = createDriverSystem();
    const { dev, domain, at } = mapped(s);
    expect(dev.dmaRead(at, 8).ok).toBe(true);
    expect(domain.unmap(iova(at), 4n * KiB)).toBe(4n * KiB);
    domain.iotlbSync();
    const r = dev.dmaWrite(at + 8n, Uint8Array.of(9));
    expect(r).toMatchObject({ ok: false, reason: 'fault', fault: { vendorCode: 'F_TRANSLATION' } });
    expect(s.faults).toEqual([]);
    expect(s.service()).toBeGreaterThan(0);
    expect(s.faults).toEqual([
      {
        device: 'dev0',
        fault: {
          kind: 'translation',
          vendorCode: 'F_TRANSLATION',
          stage: 1,
          streamId: 0x10,
          pasid: NO_PASID,
          iova: at + 8n,
          access: PERM_WRITE,
          recorded: true,
        },
      },
    ]);
    expect(s.driver.stats.events).toBe(1);
    expect(s.reg(REG.EVENTQ_CONS)).toBe(s.reg(REG.EVENTQ_PROD));
  });

  it('without iotlbSync the stale TLB entry is still used (the model keeps it until a TLBI)', () => {
    const s = createDriverSystem();
    const { dev, domain, buf, at } = mapped(s);
    s.write(buf, Uint8Array.of(0xaa));
    expect(dev.dmaWrite(at + 1n, Uint8Array.of(0xbb)).ok).toBe(true); // the TLB now holds the translation
    domain.unmap(iova(at), 4n * KiB);
    expect(domain.iovaToPhys(iova(at))).toBeUndefined();
    const stale = dev.dmaRead(at, 2);
    expect(stale).toMatchObject({ ok: true, data: Uint8Array.of(0xaa, 0xbb) });
    expect(dev.dmaWrite(at + 2n, Uint8Array.of(0xcc)).ok).toBe(true);
    domain.iotlbSync();
    expect(dev.dmaRead(at, 1).ok).toBe(false);
    expect(dev.dmaWrite(at, Uint8Array.of(0xdd)).ok).toBe(false);
  });

  it('a stage-2 (nest parent) domain: STE Config = S2 with the VMID and VTCR fields; DMA works', () => {
    const s = createDriverSystem();
    const { dev, domain, buf, at } = mapped(s, { nestParent: true });
    const d = domain as Smmuv3Domain;
    expect(d.stage).toBe(2);
    const e = ste(s, 0x10);
    expect(e).toMatchObject({
      config: STE_CONFIG.S2_TRANS,
      s2Vmid: d.vmid,
      s2T0sz: 16,
      s2Aa64: true,
      s2R: true,
    });
    expect(e.s2Ttb).toBe(d.table.rootPa);
    expect(dev.dmaWrite(at + 5n, Uint8Array.of(7)).ok).toBe(true);
    expect(s.read(buf + 5n, 1)[0]).toBe(7);
    domain.unmap(iova(at), 4n * KiB);
    domain.iotlbSync();
    const r = dev.dmaRead(at, 1);
    expect(r).toMatchObject({ ok: false, fault: { vendorCode: 'F_TRANSLATION', stage: 2 } });
    s.service();
    expect(s.faults[0]?.fault).toMatchObject({ vendorCode: 'F_TRANSLATION', stage: 2, access: PERM_READ });
  });

  it('identity passes DMA through (Config = bypass); blocked aborts it without an event', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', 0x10);
    s.probe(dev);
    expect(ste(s, 0x10).config).toBe(STE_CONFIG.ABORT);
    expect(dev.dmaWrite(0x9000_0000n, Uint8Array.of(1))).toMatchObject({
      ok: false,
      fault: { kind: 'config-abort' },
    });
    s.driver.attachDev(s.driver.identityDomain!, dev);
    expect(ste(s, 0x10).config).toBe(STE_CONFIG.BYPASS);
    const buf = s.buffer(4096);
    expect(dev.dmaWrite(buf + 3n, Uint8Array.of(5)).ok).toBe(true);
    expect(s.read(buf + 3n, 1)[0]).toBe(5);
    s.driver.attachDev(s.driver.blockedDomain, dev);
    expect(dev.dmaWrite(buf, Uint8Array.of(1)).ok).toBe(false);
    s.service();
    expect(s.faults).toEqual([]);
  });

  it('replacing one stage-1 domain by another rewrites CD 0 only; the STE stays', () => {
    const s = createDriverSystem();
    const { dev, at } = mapped(s);
    const before = s.driver.streamTable.readSte(0x10);
    const other = s.driver.domainAllocPaging() as Smmuv3Domain;
    const buf2 = s.buffer(4096);
    other.map(iova(at), buf2, 4n * KiB, RW);
    s.driver.attachDev(other, dev);
    expect(s.driver.streamTable.readSte(0x10)).toEqual(before);
    expect(decodeCd(s.driver.master(dev).cdTable!.readCd(0)).asid).toBe(other.asid);
    expect(dev.dmaWrite(at, Uint8Array.of(0x33)).ok).toBe(true);
    expect(s.read(buf2, 1)[0]).toBe(0x33);
  });

  it('EINVAL for a domain of another SMMU, a freed domain, or an unprobed device (ENODEV)', () => {
    const s = createDriverSystem();
    const t = createDriverSystem();
    const dev = s.device('dev0', 0x10);
    s.probe(dev);
    const foreign = t.driver.domainAllocPaging();
    expect(errnoOf(() => s.driver.attachDev(foreign, dev))).toBe('EINVAL');
    expect(errnoOf(() => s.driver.attachDev(t.driver.blockedDomain, dev))).toBe('EINVAL');
    const gone = s.driver.domainAllocPaging();
    gone.free();
    expect(errnoOf(() => s.driver.attachDev(gone, dev))).toBe('EINVAL');
    expect(errnoOf(() => s.driver.attachDev(s.driver.blockedDomain, s.device('dev1', 0x11)))).toBe('ENODEV');
    expect(ste(s, 0x10).config).toBe(STE_CONFIG.ABORT);
  });

  it('probeDevice: EINVAL beyond the stream table or for a StreamID already in use', () => {
    const s = createDriverSystem({ options: { sidBits: 8 } });
    expect(errnoOf(() => s.probe(s.device('big', 0x100)))).toBe('EINVAL');
    s.probe(s.device('a', 0x10));
    expect(errnoOf(() => s.probe(s.device('b', 0x10)))).toBe('EINVAL');
  });

  it('allocates level-2 stream tables on demand, one per 256 StreamIDs', () => {
    const s = createDriverSystem();
    expect(s.driver.streamTable.l2Count).toBe(0);
    s.probe(s.device('a', 0x1234));
    s.probe(s.device('b', 0x12ff));
    expect(s.driver.streamTable.l2Count).toBe(1);
    s.probe(s.device('c', 0x4000));
    expect(s.driver.streamTable.l2Count).toBe(2);
    // A stream without a level-2 array: C_BAD_STREAMID.
    const stray = s.device('stray', 0x7777);
    expect(stray.dmaRead(0x1000n, 1)).toMatchObject({ ok: false, fault: { vendorCode: 'C_BAD_STREAMID' } });
    s.service();
    expect(s.faults).toMatchObject([{ device: undefined, fault: { kind: 'bad-stream', streamId: 0x7777 } }]);
  });
});

describe('Smmuv3Driver: the Event queue', () => {
  it('drains many events in order and acknowledges an overflow; events after it still arrive', () => {
    const s = createDriverSystem({ options: { evtqLog2: 4 } }); // 16 records
    const { dev, domain, at } = mapped(s);
    domain.unmap(iova(at), 4n * KiB);
    domain.iotlbSync();
    for (let i = 0; i < 20; i++) dev.dmaRead(at + BigInt(i * 8), 1);
    s.service();
    expect(s.faults).toHaveLength(16);
    expect(s.faults.map((f) => f.fault.iova)).toEqual(
      Array.from({ length: 16 }, (_, i) => at + BigInt(i * 8)),
    );
    expect(s.driver.stats.eventOverflows).toBe(1);
    expect(s.reg(REG.EVENTQ_CONS) >>> 31).toBe(s.reg(REG.EVENTQ_PROD) >>> 31);
    dev.dmaRead(at + 0x800n, 1);
    s.service();
    expect(s.faults).toHaveLength(17);
    expect(s.faults.at(-1)?.fault.iova).toBe(at + 0x800n);
  });

  it('a global error is acknowledged by the GERROR handler (SFM_ERR also disables the SMMU)', () => {
    const s = createDriverSystem();
    s.hw.queues.interrupts.raiseGlobalError(GERROR_SFM_ERR);
    s.service();
    expect(s.driver.stats.globalErrors).toBe(1);
    expect(s.reg(REG.GERRORN)).toBe(s.reg(REG.GERROR));
    expect(s.reg(REG.CR0)).toBe(0);
  });
});

describe('Smmuv3Driver: PASIDs', () => {
  function pasidSystem(pasidBits = 8) {
    const s = createDriverSystem();
    const dev = s.device('dev0', 0x10, { pasidBits });
    s.probe(dev);
    return { s, dev };
  }

  it('attaches a stage-1 domain at a PASID: CD table STE with S1DSS = terminate while the RID is blocked', () => {
    const { s, dev } = pasidSystem();
    const domain = s.driver.domainAllocPaging({ pasid: true }) as Smmuv3Domain;
    const buf = s.buffer(4096);
    domain.map(iova(0x5000n), buf, 4n * KiB, RW);
    s.driver.setDevPasid!(domain, dev, 5);
    const e = ste(s, 0x10);
    expect(e).toMatchObject({ config: STE_CONFIG.S1_TRANS, s1CdMax: 8, s1Dss: STE_S1DSS.TERMINATE });
    expect(dev.dmaWrite(0x5000n, Uint8Array.of(0x55), { pasid: 5 }).ok).toBe(true);
    expect(s.read(buf, 1)[0]).toBe(0x55);
    expect(dev.dmaWrite(0x5000n, Uint8Array.of(1), { pasid: 6 }).ok).toBe(false);
    const noPasid = dev.dmaWrite(0x5000n, Uint8Array.of(1));
    expect(noPasid).toMatchObject({ ok: false, fault: { vendorCode: 'F_STREAM_DISABLED' } });
    s.driver.removeDevPasid!(dev, 5);
    expect(ste(s, 0x10).config).toBe(STE_CONFIG.ABORT);
    expect(decodeCd(s.driver.master(dev).cdTable!.readCd(5)).v).toBe(false);
    expect(dev.dmaWrite(0x5000n, Uint8Array.of(1), { pasid: 5 }).ok).toBe(false);
    expect(domain.attachments.size).toBe(0);
  });

  it('RID and PASIDs together: S1 at the RID uses CD 0 (S1DSS = SSID0), identity keeps bypass for the RID', () => {
    const { s, dev } = pasidSystem();
    const rid = s.driver.domainAllocPaging() as Smmuv3Domain;
    const pasidDomain = s.driver.domainAllocPaging({ pasid: true });
    s.driver.setDevPasid!(pasidDomain, dev, 3);
    s.driver.attachDev(rid, dev);
    expect(ste(s, 0x10)).toMatchObject({ config: STE_CONFIG.S1_TRANS, s1Dss: STE_S1DSS.SSID0 });
    expect(decodeCd(s.driver.master(dev).cdTable!.readCd(0)).asid).toBe(rid.asid);
    s.driver.attachDev(s.driver.identityDomain!, dev);
    expect(ste(s, 0x10)).toMatchObject({ config: STE_CONFIG.S1_TRANS, s1Dss: STE_S1DSS.BYPASS });
    expect(decodeCd(s.driver.master(dev).cdTable!.readCd(0)).v).toBe(false);
    const buf = s.buffer(4096);
    expect(dev.dmaWrite(buf, Uint8Array.of(4)).ok).toBe(true);
    s.driver.removeDevPasid!(dev, 3);
    expect(ste(s, 0x10).config).toBe(STE_CONFIG.BYPASS);
  });

  it('PASID rules: stage 2 never mixes with PASIDs; range, capability and stage are checked (EINVAL)', () => {
    const { s, dev } = pasidSystem();
    const s1 = s.driver.domainAllocPaging({ pasid: true });
    const s2 = s.driver.domainAllocPaging({ nestParent: true });
    expect(errnoOf(() => s.driver.setDevPasid!(s2, dev, 1))).toBe('EINVAL');
    expect(errnoOf(() => s.driver.setDevPasid!(s1, dev, 0))).toBe('EINVAL');
    expect(errnoOf(() => s.driver.setDevPasid!(s1, dev, 256))).toBe('EINVAL');
    const plain = s.device('plain', 0x11);
    s.probe(plain);
    expect(errnoOf(() => s.driver.setDevPasid!(s1, plain, 1))).toBe('EINVAL');
    s.driver.attachDev(s2, dev);
    expect(errnoOf(() => s.driver.setDevPasid!(s1, dev, 1))).toBe('EINVAL');
    s.driver.attachDev(s.driver.blockedDomain, dev);
    s.driver.setDevPasid!(s1, dev, 1);
    expect(errnoOf(() => s.driver.attachDev(s2, dev))).toBe('EINVAL');
    expect(ste(s, 0x10).s1Dss).toBe(STE_S1DSS.TERMINATE);
  });

  it('a 20-bit PASID space gets a 2-level CD table whose leaves appear on demand', () => {
    const { s, dev } = pasidSystem(20);
    const domain = s.driver.domainAllocPaging({ pasid: true });
    const buf = s.buffer(4096);
    domain.map(iova(0x7000n), buf, 4n * KiB, RW);
    s.driver.setDevPasid!(domain, dev, 0x12345);
    const table = s.driver.master(dev).cdTable!;
    expect(table.s1Fmt).toBe(STE_S1FMT.TWO_LEVEL_64K);
    expect(table.leafCount).toBe(1);
    expect(ste(s, 0x10)).toMatchObject({ s1Fmt: STE_S1FMT.TWO_LEVEL_64K, s1CdMax: 20 });
    expect(dev.dmaWrite(0x7000n, Uint8Array.of(8), { pasid: 0x12345 }).ok).toBe(true);
    s.driver.setDevPasid!(domain, dev, 0x12346);
    expect(table.leafCount).toBe(1);
    s.driver.setDevPasid!(domain, dev, 7);
    expect(table.leafCount).toBe(2);
    // A PASID whose leaf does not exist: C_BAD_SUBSTREAMID (L1CD.V = 0).
    const r = dev.dmaRead(0x7000n, 1, { pasid: 0x50000 });
    expect(r).toMatchObject({ ok: false, fault: { vendorCode: 'C_BAD_SUBSTREAMID' } });
  });
});

describe('Smmuv3Driver: ATS and PRI', () => {
  function atsSystem() {
    const s = createDriverSystem();
    const dev = s.device('dev0', 0x10, { atcEntries: 16, priOutstanding: 4 });
    s.probe(dev);
    return { s, dev };
  }

  it('a paging domain gets STE.EATS = full and ATS on; unmap + iotlbSync invalidates the ATC', () => {
    const { s, dev } = atsSystem();
    const domain = s.driver.domainAllocPaging();
    const buf = s.buffer(4096);
    domain.map(iova(0x3000n), buf, 4n * KiB, RW);
    s.driver.attachDev(domain, dev);
    expect(ste(s, 0x10).eats).toBe(STE_EATS.FULL);
    expect(s.driver.master(dev).ats).toBe(true);
    expect(dev.dmaWrite(0x3000n, Uint8Array.of(1)).ok).toBe(true);
    expect(dev.atc!.lookup(NO_PASID, 3)).toBeDefined();
    const atcInvBefore = s.driver.cmdq.issued.get('CMD_ATC_INV') ?? 0;
    domain.unmap(iova(0x3000n), 4n * KiB);
    domain.iotlbSync();
    expect(s.driver.cmdq.issued.get('CMD_ATC_INV')).toBe(atcInvBefore + 1);
    expect(dev.atc!.lookup(NO_PASID, 3)).toBeUndefined();
    expect(dev.dmaWrite(0x3000n, Uint8Array.of(1)).ok).toBe(false);
  });

  it('back to blocked: ATS is disabled at the device first, EATS cleared, the ATC flushed', () => {
    const { s, dev } = atsSystem();
    const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
    s.driver.attachDev(domain, dev);
    const atcInv = s.driver.cmdq.issued.get('CMD_ATC_INV') ?? 0;
    s.driver.attachDev(s.driver.blockedDomain, dev);
    expect(s.driver.master(dev).ats).toBe(false);
    expect(ste(s, 0x10)).toMatchObject({ config: STE_CONFIG.ABORT, eats: 0 });
    expect(s.driver.cmdq.issued.get('CMD_ATC_INV')).toBe(atcInv + 1);
    expect(domain.attachments.size).toBe(0);
  });

  it('a page request goes PRI queue → reportPageRequest; pageResponse answers it with PRI_RESP', () => {
    const { s, dev } = atsSystem();
    dev.pci.setPriEnabled(true);
    s.driver.attachDev(s.driver.domainAllocPaging(), dev);
    const r = dev.dmaWrite(0x40_0000n, Uint8Array.of(1), { requestPages: true });
    expect(r).toMatchObject({ ok: false, reason: 'page-request' });
    s.service();
    expect(s.pageRequests).toEqual([
      {
        device: 'dev0',
        request: {
          pasid: NO_PASID,
          iova: 0x40_0000n,
          access: PERM_WRITE,
          groupIndex: expect.any(Number),
          last: true,
        },
      },
    ]);
    const group = s.pageRequests[0]!.request.groupIndex;
    s.driver.pageResponse!(dev, { pasid: NO_PASID, groupIndex: group, code: 'success' });
    expect(dev.pri!.lastResponse(group)).toBe('success');
    expect(s.driver.cmdq.issued.get('CMD_PRI_RESP')).toBe(1);
  });
});

describe('Smmuv3Driver: information, release and shutdown', () => {
  it('hwInfo gives the ID registers as Linux iommu_hw_info_arm_smmuv3, PASID width and dirty tracking', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', 0x10, { pasidBits: 8 });
    s.probe(dev);
    const info = s.driver.hwInfo(dev);
    expect(info.type).toBe('arm-smmuv3');
    expect(info.data).toMatchObject({
      idr0: s.reg(REG.IDR0),
      idr1: s.reg(REG.IDR1),
      idr3: s.reg(REG.IDR3),
      idr5: s.reg(REG.IDR5),
      iidr: s.reg(REG.IIDR),
      aidr: s.reg(REG.AIDR),
    });
    expect(info.maxPasidLog2).toBe(8);
    expect(info.capabilities.dirtyTracking).toBe(true);
    expect(s.driver.reservedRegions(dev)).toEqual([
      { start: SMMUV3_SW_MSI_BASE, length: SMMUV3_SW_MSI_LENGTH, type: 'sw-msi' },
    ]);
    expect(SMMUV3_SW_MSI_BASE).toBe(0x800_0000n);
    const noDirty = createDriverSystem({ options: { httu: 'access' } });
    expect(noDirty.driver.hwInfo(dev).capabilities.dirtyTracking).toBe(false);
  });

  it('releaseDevice blocks the stream, detaches its domains and frees its CD table', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', 0x10, { pasidBits: 8 });
    s.probe(dev);
    const rid = s.driver.domainAllocPaging();
    const p = s.driver.domainAllocPaging({ pasid: true });
    s.driver.attachDev(rid, dev);
    s.driver.setDevPasid!(p, dev, 2);
    s.driver.releaseDevice(dev);
    expect(ste(s, 0x10).config).toBe(STE_CONFIG.ABORT);
    expect(errnoOf(() => s.driver.master(dev))).toBe('ENODEV');
    rid.free();
    p.free();
  });

  it('shutdown disables the SMMU and returns every frame the driver allocated', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', 0x10, { pasidBits: 8 });
    s.probe(dev);
    const domains: IommuDomain[] = [
      s.driver.domainAllocPaging(),
      s.driver.domainAllocPaging({ nestParent: true }),
    ];
    domains[0]!.map(iova(0x1000n), s.buffer(4096), 4n * KiB, RW);
    s.driver.attachDev(domains[0]!, dev);
    expect(errnoOf(() => domains[0]!.free())).toBe('EBUSY');
    s.driver.releaseDevice(dev);
    for (const d of domains) d.free();
    s.driver.shutdown();
    expect(s.reg(REG.CR0)).toBe(0);
    expect(s.reg(REG.CR0ACK)).toBe(0);
    expect(s.driverFrames()).toBe(0);
    // Disabled with GBPA.ABORT: traffic aborts.
    expect(dev.dmaRead(0x1000n, 1).ok).toBe(false);
  });
});

describe('Smmuv3Driver touches only its MMIO window and its own memory', () => {
  it('every driver access is in the 128 KiB window or in frames it allocated; the model reads the tables', () => {
    const s = createDriverSystem({ recordAccesses: true });
    const dev = s.device('dev0', 0x10, { pasidBits: 8, atcEntries: 8, priOutstanding: 2 });
    s.probe(dev);
    const { domain } = (() => {
      const d = s.driver.domainAllocPaging({ pasid: true, dirtyTracking: true });
      d.map(iova(0x2000n), s.buffer(8192), 8n * KiB, RW);
      s.driver.attachDev(d, dev);
      s.driver.setDevPasid!(d, dev, 9);
      return { domain: d };
    })();
    expect(dev.dmaWrite(0x2000n, Uint8Array.of(1)).ok).toBe(true);
    expect(dev.dmaWrite(0x3000n, Uint8Array.of(1), { pasid: 9 }).ok).toBe(true);
    domain.readAndClearDirty!(iova(0x2000n), 8n * KiB, () => {}, true);
    domain.unmap(iova(0x2000n), 8n * KiB);
    domain.iotlbSync();
    dev.dmaRead(0x2000n, 1);
    s.service();
    const s2 = s.driver.domainAllocPaging({ nestParent: true });
    s.driver.removeDevPasid!(dev, 9);
    s.driver.attachDev(s2, dev);
    s.driver.releaseDevice(dev);
    domain.free();
    s2.free();
    s.driver.shutdown();

    const mine = s.accesses.filter((a) => a.tag === 'driver:smmu0');
    expect(mine.length).toBeGreaterThan(100);
    const outside = mine.filter((a) => !s.inMmio(a.addr, a.bytes) && !s.driverOwns(a.addr, a.bytes));
    expect(outside).toEqual([]);
    // No other requester tag belongs to the driver, and the hardware did its own table reads.
    const tags = new Set(s.accesses.map((a) => a.tag));
    expect([...tags].sort()).toEqual(['device:dev0', 'driver:smmu0', 'hw:smmu0']);
    expect(s.accesses.some((a) => a.tag === 'hw:smmu0' && s.driverOwns(a.addr, a.bytes))).toBe(true);
    const counter = s.bus.listCounters().find((c) => c.tag === 'driver:smmu0')!;
    expect(counter.reads + counter.writes).toBe(mine.length);
    expect(counter.aborts).toBe(0);
  });
});
