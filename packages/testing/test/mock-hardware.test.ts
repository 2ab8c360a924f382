/**
 * The mock IOMMU hardware model: every fault it can record, its caches (stale until invalidated), the
 * fault log ring and its overflow, and hardware dirty bits. Memory is inspected directly, as a logic
 * analyser on the bus would.
 */
import { hpa, iova, join64, NO_PASID, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { type MockIommuHardware, mockFormats, mockRegs } from '../src/index.js';
import { mockSystemsPerTest } from './fixtures.js';

const { R, CTRL_EN, QUEUE_OVERFLOW: FLOG_OVERFLOW } = mockRegs;
const MMIO = 0x0900_0000;
const newSystem = mockSystemsPerTest();

async function setup(overrides = {}) {
  const system = await newSystem(overrides);
  const instance = system.iommu('iommu0');
  const hw = instance.hardware as MockIommuHardware;
  const who = system.bus.counter('test');
  const reg = (offset: number) => {
    const r = system.bus.read(MMIO + offset, 4, who);
    return r.ok ? Number(r.value) : -1;
  };
  const buffer = system.memory.allocFrames(16);
  const domain = instance.driver.domainAllocPaging();
  return { system, instance, hw, driver: instance.driver, reg, who, buffer, domain };
}

const write = (
  system: Awaited<ReturnType<typeof setup>>['system'],
  device: string,
  at: bigint,
  bytes = Uint8Array.of(1, 2, 3, 4),
) => system.device(device).dmaWrite(at, bytes, { hpas: true });

describe('mock IOMMU registers', () => {
  it('identifies itself and reflects its options in CAP', async () => {
    const { reg, hw } = await setup();
    expect(reg(R.IDR)).toBe(mockRegs.MOCK_IDR_MAGIC | (mockRegs.MOCK_VERSION << 16));
    expect(reg(R.CAP)).toBe(
      8 | (10 << 5) | mockRegs.CAP_DIRTY | (8 << 11) | mockRegs.CAP_NEST | mockRegs.CAP_PRI | mockRegs.CAP_IR,
    );
    expect(hw.identify()).toEqual({ IDR: '0x24d4b', CAP: '0x74548' });
  });

  it('was programmed by the driver through its registers only', async () => {
    const { reg, system } = await setup();
    expect(reg(R.CTRL)).toBe(
      CTRL_EN | mockRegs.CTRL_FAULT_IRQ_EN | mockRegs.CTRL_PRQ_IRQ_EN | mockRegs.CTRL_IR_EN,
    );
    expect(reg(R.STATUS)).toBe(CTRL_EN);
    expect(reg(R.DT_LOG2)).toBe(8);
    expect(reg(R.FLOG_LOG2)).toBe(6);
    expect(reg(R.IRT_LOG2)).toBe(10);
    const irtBase = join64(reg(R.IRT_BASE), reg(R.IRT_BASE + 4));
    expect(system.bus.regionAt(Number(irtBase))?.kind).toBe('ram');
    const dtBase = join64(reg(R.DT_BASE), reg(R.DT_BASE + 4));
    expect(system.bus.regionAt(Number(dtBase))?.kind).toBe('ram');
    const driverWrites = system.bus.counter('driver:iommu0').writes;
    expect(driverWrites).toBeGreaterThan(0);
  });

  it('ignores writes to read-only registers and reads write-only INV_CMD as zero', async () => {
    const { system, reg, who } = await setup();
    system.bus.write(MMIO + R.IDR, 4, 0xdead, who);
    system.bus.write(MMIO + R.FLOG_TAIL, 4, 5, who);
    expect(reg(R.IDR) & 0xffff).toBe(mockRegs.MOCK_IDR_MAGIC);
    expect(reg(R.FLOG_TAIL)).toBe(0);
    expect(reg(R.INV_CMD)).toBe(0);
  });
});

describe('mock IOMMU faults', () => {
  it('records MOCK_NOT_PRESENT byte for byte in the fault log and the driver reports it', async () => {
    const { system, instance, driver, domain, reg } = await setup();
    driver.attachDev(domain, system.device('nic0'));
    const result = write(system, 'nic0', 0x1234_5678n);
    expect(result).toMatchObject({
      ok: false,
      reason: 'fault',
      fault: { vendorCode: 'MOCK_NOT_PRESENT', kind: 'translation', recorded: true },
    });
    const base = join64(reg(R.FLOG_BASE), reg(R.FLOG_BASE + 4));
    const words = new Uint32Array(8);
    system.bus.readWords(Number(base), words, 8, system.bus.counter('test'));
    expect([...words]).toEqual([4 | mockFormats.FAULT_WRITE, 0x10, 0, 0, 0x1234_5678, 0, 0, 0]);
    expect(reg(R.FLOG_TAIL)).toBe(1);
    expect(instance.faults).toHaveLength(0); // the interrupt has not been taken yet
    system.serviceInterrupts();
    expect(reg(R.FLOG_HEAD)).toBe(1);
    expect(instance.faults.records).toEqual([
      {
        device: 'nic0',
        fault: {
          kind: 'translation',
          vendorCode: 'MOCK_NOT_PRESENT',
          streamId: 0x10,
          pasid: NO_PASID,
          iova: 0x1234_5678n,
          access: PERM_WRITE,
          recorded: true,
        },
      },
    ]);
  });

  it.each([
    ['a blocked (probed, unattached) device', 'MOCK_ABORT'],
    ['an IOVA beyond the 39-bit aperture', 'MOCK_ADDR_SIZE'],
    ['a read-only mapping written', 'MOCK_PERMISSION'],
  ])('%s faults with %s', async (_what, code) => {
    const { system, driver, domain, buffer } = await setup();
    if (code !== 'MOCK_ABORT') driver.attachDev(domain, system.device('nic0'));
    domain.map(iova(0x1000n), buffer, 0x1000n, { read: true, write: false });
    const at = code === 'MOCK_ADDR_SIZE' ? 1n << 40n : 0x1000n;
    expect(write(system, 'nic0', at)).toMatchObject({
      ok: false,
      fault: { vendorCode: code, recorded: true },
    });
  });

  it('faults MOCK_CTX_INVALID for a stream no driver set up, and MOCK_BAD_SID beyond the table', async () => {
    const { hw } = await setup();
    const request = (streamId: number) => ({
      streamId,
      pasid: NO_PASID,
      iovaPfn: 1,
      offset: 0,
      access: PERM_READ,
    });
    expect(hw.translate(request(0x55))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'MOCK_CTX_INVALID', kind: 'bad-config' },
    });
    expect(hw.translate(request(0x300))).toMatchObject({
      ok: false,
      fault: { vendorCode: 'MOCK_BAD_SID', kind: 'bad-stream' },
    });
  });

  it('faults MOCK_BAD_PASID for PASID-tagged DMA, which the mock does not support', async () => {
    const { system, driver, domain } = await setup({
      devices: [{ name: 'nic0', rid: '00:02.0', iommu: 'iommu0', pasidBits: 4 }],
    });
    const nic = system.device('nic0');
    driver.attachDev(domain, nic);
    nic.pci.setPasidEnabled(true);
    expect(nic.dmaRead(0x1000n, 4, { pasid: 2 })).toMatchObject({
      ok: false,
      fault: { vendorCode: 'MOCK_BAD_PASID', pasid: 2 },
    });
  });

  it('faults MOCK_WALK_ABORT when a table pointer leads off the bus, MOCK_CTX_FETCH_ABORT when the table does', async () => {
    const { system, driver, domain, who } = await setup();
    driver.attachDev(domain, system.device('nic0'));
    const root = (domain as unknown as { rootPfn: number }).rootPfn * 4096;
    system.bus.writeWords(root, mockFormats.pteWords(0x10, mockFormats.PTE_P), 2, who); // L0 → 0x10000: no RAM
    expect(write(system, 'nic0', 0x2000n)).toMatchObject({
      fault: { vendorCode: 'MOCK_WALK_ABORT', kind: 'walk-abort' },
    });
    system.bus.write(MMIO + R.DT_BASE, 8, 0x5000n, who);
    system.bus.write(MMIO + R.INV_CMD, 4, mockRegs.INV.ALL, who);
    expect(write(system, 'nic0', 0x2000n)).toMatchObject({ fault: { vendorCode: 'MOCK_CTX_FETCH_ABORT' } });
  });

  it('aborts everything without recording when translation is disabled', async () => {
    const { system, hw, who } = await setup();
    system.bus.write(MMIO + R.CTRL, 4, 0, who);
    expect(write(system, 'nic0', 0x1000n)).toMatchObject({
      fault: { vendorCode: 'MOCK_DISABLED', recorded: false },
    });
    expect(hw.stats().faultsRecorded).toBe(0);
  });

  it('sets FLOG_STATUS.OVERFLOW when the ring is full and the driver acknowledges it', async () => {
    const { system, instance, driver, domain, hw, reg } = await setup();
    driver.attachDev(domain, system.device('nic0'));
    for (let i = 0; i < 70; i++) write(system, 'nic0', BigInt(i) << 12n);
    expect(hw.stats()).toMatchObject({ faultsRecorded: 63, faultsDropped: 7 });
    expect(reg(R.FLOG_STATUS)).toBe(FLOG_OVERFLOW);
    system.serviceInterrupts();
    expect(instance.faults).toHaveLength(63);
    expect(instance.faults.records.at(-1)?.fault.iova).toBe(62n << 12n);
    expect(reg(R.FLOG_STATUS)).toBe(0);
  });
});

describe('mock IOMMU caches', () => {
  it('keeps serving an unmapped page from the IOTLB until the driver syncs the invalidation', async () => {
    const { system, driver, domain, buffer, hw } = await setup();
    driver.attachDev(domain, system.device('nic0'));
    domain.map(iova(0x4000n), buffer, 0x1000n, { read: true, write: true });
    expect(write(system, 'nic0', 0x4000n)).toMatchObject({ ok: true });
    expect(domain.unmap(iova(0x4000n), 0x1000n)).toBe(0x1000n);
    expect(write(system, 'nic0', 0x4000n)).toMatchObject({ ok: true }); // stale: the bug a missing sync causes
    expect(hw.stats().iotlbHits).toBe(1);
    domain.iotlbSync();
    expect(write(system, 'nic0', 0x4000n)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'MOCK_NOT_PRESENT' },
    });
  });

  it('an IOTLB hit checks R/W as the walk does: privileged and execute attributes are not checked', async () => {
    const { system, driver, domain, buffer, hw } = await setup();
    const nic = system.device('nic0');
    driver.attachDev(domain, nic);
    domain.map(iova(0x4000n), buffer, 0x1000n, { read: true, write: false });
    const translate = (access: number) =>
      hw.translate({ streamId: nic.streamId, pasid: NO_PASID, iovaPfn: 4, offset: 0, access });
    expect(translate(PERM_READ)).toMatchObject({ ok: true, perm: PERM_READ }); // walks, fills the IOTLB
    for (const access of [PERM_PRIV, PERM_EXEC, PERM_PRIV | PERM_EXEC]) {
      expect(translate(PERM_READ | access), `read ${access}`).toMatchObject({ ok: true, perm: PERM_READ });
    }
    expect(translate(PERM_WRITE | PERM_PRIV)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'MOCK_PERMISSION' },
    });
    expect(hw.stats()).toMatchObject({ walks: 1, iotlbHits: 4 });
  });

  it('keeps using a cached device table entry until INV DEVICE', async () => {
    const { system, driver, domain, buffer, reg, who } = await setup();
    const nic = system.device('nic0');
    driver.attachDev(domain, nic);
    domain.map(iova(0x4000n), buffer, 0x1000n, { read: true, write: true });
    write(system, 'nic0', 0x4000n);
    const dte = Number(join64(reg(R.DT_BASE), reg(R.DT_BASE + 4))) + 0x10 * 32;
    system.bus.writeWords(dte, [1], 1, who); // MODE=abort behind the cache's back
    expect(write(system, 'nic0', 0x4000n)).toMatchObject({ ok: true });
    system.bus.write(MMIO + R.INV_ARG, 8, 0x10n, who);
    system.bus.write(MMIO + R.INV_CMD, 4, mockRegs.INV.DEVICE, who);
    expect(write(system, 'nic0', 0x4000n)).toMatchObject({ ok: false, fault: { vendorCode: 'MOCK_ABORT' } });
  });

  it('evicts the least recently used IOTLB entry at capacity', async () => {
    const { system, driver, domain, buffer, hw } = await setup(); // iotlbEntries: 8 in the fixture
    driver.attachDev(domain, system.device('nic0'));
    domain.map(iova(0n), buffer, 0x10000n, { read: true, write: true });
    for (let page = 0n; page < 9n; page++) system.device('nic0').dmaRead(page << 12n, 4);
    expect(hw.stats()).toMatchObject({ iotlbMisses: 9, iotlbEvictions: 1 });
    system.device('nic0').dmaRead(0n, 4); // page 0 was the oldest: evicted, walks again
    expect(hw.stats()).toMatchObject({ iotlbMisses: 10, walks: 10 });
  });

  it('sets the PTE dirty bit on DMA writes only, once dirty tracking is on', async () => {
    const { system, driver, buffer, who } = await setup();
    const domain = driver.domainAllocPaging({ dirtyTracking: true });
    domain.setDirtyTracking!(true);
    driver.attachDev(domain, system.device('nic0'));
    domain.map(iova(0n), buffer, 0x2000n, { read: true, write: true });
    system.device('nic0').dmaRead(0n, 4);
    write(system, 'nic0', 0x1000n);
    const leafTable = (() => {
      const pte = new Uint32Array(2);
      let table = (domain as unknown as { rootPfn: number }).rootPfn;
      for (let level = 0; level < 2; level++) {
        system.bus.readWords(table * 4096, pte, 2, who);
        table = mockFormats.pteAddressPfn(pte[0]!, pte[1]!);
      }
      return table * 4096;
    })();
    const pte = new Uint32Array(4);
    system.bus.readWords(leafTable, pte, 4, who);
    expect(pte[0]! & mockFormats.PTE_D).toBe(0);
    expect(pte[2]! & mockFormats.PTE_D).toBe(mockFormats.PTE_D);
  });

  it('passes DMA through untranslated in the identity domain', async () => {
    const { system, driver, buffer } = await setup();
    driver.attachDev(driver.identityDomain!, system.device('nic0'));
    expect(write(system, 'nic0', buffer)).toMatchObject({ ok: true, hpas: [buffer] });
    expect(hpa(buffer)).toBe(buffer);
  });
});
