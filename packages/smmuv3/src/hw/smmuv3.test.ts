/**
 * The device model programmed the way a driver programs it — 32-bit MMIO writes and structures in RAM —
 * with endpoint DMA through it: global bypass/abort, enabling with CR0/CR0ACK, Guarded registers, the
 * stream table, commands that invalidate the configuration cache and the TLB, and the event queue.
 */
import { EndpointDevice, FrameAllocator, type MemoryBus, Tracer } from '@iommukit/core';
import { IoPageTable, vmsaFormat } from '@iommukit/pagetables';
import { beforeEach, describe, expect, it } from 'vitest';
import { testCd } from '../../test/cd-fixture.js';
import { type MmioRig, mmioRig, RAM_BASE } from '../../test/mmio-rig.js';
import { decodeCd, encodeCd } from './cd.js';
import { encodeCfgiCd, encodeCfgiCdAll, encodeCfgiSte, encodeCmdSync, encodeTlbiNhVa } from './commands.js';
import { decodeEvent } from './events.js';
import { CR0_CMDQEN, CR0_EVENTQEN, CR0_SMMUEN, GBPA_ABORT, GBPA_UPDATE, REG } from './regs.js';
import type { Smmuv3Hardware } from './smmuv3.js';
import { encodeSte, STE_CONFIG } from './ste.js';

const RAM = RAM_BASE;
const STRTAB = RAM;
const CMDQ = RAM + 0x1_0000;
const EVTQ = RAM + 0x2_0000;
const CD = RAM + 0x3_0000;

let rig: MmioRig;
let bus: MemoryBus;
let smmu: Smmuv3Hardware;
let mmio: MmioRig['mmio'];
let mmio64: MmioRig['mmio64'];
let reg: MmioRig['reg'];
let put: MmioRig['put'];
let prod = 0;

/** Queues commands and rings the doorbell, as a driver does (8-entry queue: LOG2SIZE 3). */
function submit(...commands: Uint32Array[]): void {
  for (const c of commands) {
    put(CMDQ + (prod % 8) * 16, c);
    prod = (prod + 1) % 16;
  }
  mmio(REG.CMDQ_PROD, prod);
}

/** A stage-1 page table in RAM above the SMMU's structures. */
function stage1Table(): IoPageTable {
  const memory = new FrameAllocator([{ base: RAM + 0x10_0000, size: 0x100_0000 }]);
  return new IoPageTable(vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 }), {
    bus,
    memory,
    counter: bus.counter('pt'),
  });
}

function device(streamId: number) {
  return new EndpointDevice({ name: `dev${streamId}`, rid: streamId, streamId }, bus, smmu, new Tracer());
}

beforeEach(() => {
  rig = mmioRig({ sidBits: 8 });
  ({ bus, smmu, mmio, mmio64, reg, put } = rig);
  prod = 0;
});

function enable(): void {
  mmio64(REG.STRTAB_BASE, STRTAB);
  mmio(REG.STRTAB_BASE_CFG, 8); // linear, 256 STEs
  mmio64(REG.CMDQ_BASE, CMDQ + 3);
  mmio64(REG.EVENTQ_BASE, EVTQ + 3);
  mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
  mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
}

describe('Smmuv3Hardware', () => {
  it('identifies itself through the ID registers on the bus', () => {
    expect(reg(REG.IDR0)).toBe(Number(smmu.identify().IDR0));
    expect(reg(REG.IDR1) & 0x3f).toBe(8); // SIDSIZE
  });

  it('with SMMUEN = 0, bypasses DMA, or aborts it once GBPA.ABORT is set', () => {
    const dev = device(1);
    expect(dev.dmaRead(BigInt(RAM + 0x100), 4, { hpas: true })).toMatchObject({
      ok: true,
      hpas: [BigInt(RAM + 0x100)],
    });
    mmio(REG.GBPA, GBPA_UPDATE | GBPA_ABORT);
    expect(reg(REG.GBPA) & GBPA_UPDATE).toBe(0);
    expect(dev.dmaRead(BigInt(RAM + 0x100), 4)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'GBPA_ABORT' },
    });
  });

  it('aborts DMA from reset when GBPA.ABORT resets to 1, before software writes any register (§6.3.14)', () => {
    rig = mmioRig({ sidBits: 8, gbpaAbort: true });
    ({ bus, smmu, reg } = rig);
    expect(reg(REG.GBPA) & GBPA_ABORT).toBe(GBPA_ABORT);
    expect(device(1).dmaRead(BigInt(RAM + 0x100), 4)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'GBPA_ABORT' },
    });
  });

  it('acknowledges CR0 in CR0ACK and ignores writes to Guarded registers while enabled', () => {
    enable();
    expect(reg(REG.CR0ACK)).toBe(CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
    mmio(REG.STRTAB_BASE_CFG, 5);
    expect(reg(REG.STRTAB_BASE_CFG)).toBe(8);
  });

  it('translates through an STE and CD it fetched, and keeps the cached STE until CMD_CFGI_STE', () => {
    const pt = stage1Table();
    pt.map(0x4000n, BigInt(RAM + 0x80_0000), 0x1000n, { read: true, write: true });
    put(CD, testCd(pt.rootPa));
    put(STRTAB + 64 * 2, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD }));
    enable();
    const dev = device(2);
    expect(dev.dmaWrite(0x4010n, Uint8Array.of(7), { hpas: true })).toMatchObject({
      ok: true,
      hpas: [BigInt(RAM + 0x80_0010)],
    });
    put(STRTAB + 64 * 2, encodeSte({ v: true, config: STE_CONFIG.ABORT }));
    expect(dev.dmaRead(0x4010n, 1).ok).toBe(true); // cached STE
    submit(encodeCfgiSte({ streamId: 2 }), encodeCmdSync());
    expect(reg(REG.CMDQ_CONS)).toBe(2);
    expect(dev.dmaRead(0x4010n, 1)).toMatchObject({ ok: false, fault: { vendorCode: 'ABORT' } });
  });

  it('keeps a stale TLB entry after an unmap until TLBI_NH_VA for its ASID', () => {
    const pt = stage1Table();
    pt.map(0x4000n, BigInt(RAM + 0x80_0000), 0x1000n, { read: true, write: true });
    put(CD, testCd(pt.rootPa, { asid: 9 }));
    put(STRTAB + 64 * 2, encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD }));
    enable();
    const dev = device(2);
    expect(dev.dmaRead(0x4000n, 4).ok).toBe(true);
    pt.unmap(0x4000n, 0x1000n);
    expect(dev.dmaRead(0x4000n, 4).ok).toBe(true); // stale
    submit(encodeTlbiNhVa({ vmid: 0, asid: 9, addressPage: 4, leaf: true }), encodeCmdSync());
    expect(dev.dmaRead(0x4000n, 4)).toMatchObject({ ok: false, fault: { vendorCode: 'F_TRANSLATION' } });
  });

  it('CMD_CFGI_CD drops one CD, CMD_CFGI_CD_ALL and CMD_CFGI_STE every CD of that stream only', () => {
    enable();
    const cds = smmu.translator.cdCache;
    const cd = {
      ...decodeCd(encodeCd({ v: true })),
      s1Format: vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 }),
    };
    const fill = () => {
      for (const [sid, ssid] of [
        [2, 0],
        [2, 1],
        [2, 7],
        [3, 1],
      ] as const)
        cds.set(sid, ssid, cd);
    };
    const keys = () =>
      cds
        .entries()
        .map(([sid, ssid]) => [sid, ssid])
        .sort();
    fill();
    submit(encodeCfgiCd({ streamId: 2, substreamId: 1 }), encodeCmdSync());
    expect(keys()).toEqual([
      [2, 0],
      [2, 7],
      [3, 1],
    ]);
    submit(encodeCfgiCdAll({ streamId: 2 }), encodeCmdSync());
    expect(keys()).toEqual([[3, 1]]);
    fill();
    submit(encodeCfgiSte({ streamId: 3 }), encodeCmdSync());
    expect(keys()).toEqual([
      [2, 0],
      [2, 1],
      [2, 7],
    ]);
  });

  it('writes C_BAD_STE to the event queue and advances EVENTQ_PROD', () => {
    put(STRTAB + 64 * 3, encodeSte({ v: false }));
    enable();
    expect(device(3).dmaRead(0x1000n, 4, {})).toMatchObject({
      ok: false,
      fault: { vendorCode: 'C_BAD_STE', recorded: true },
    });
    expect(reg(REG.EVENTQ_PROD) & 0xf).toBe(1);
    const words = new Uint32Array(8);
    bus.readWords(EVTQ, words, 8, rig.driver);
    expect(decodeEvent(words)).toMatchObject({ id: 0x04, streamId: 3 });
    expect(smmu.stats().steCacheMisses).toBe(1);
  });
});
