/**
 * Probe and shutdown of a unit (probe.ts): the registers and memory a probed unit is left with, as Linux's
 * init.c leaves them, the order of the Control writes, the flushes that reached the unit, the MSI set-up,
 * and what changes with the unit's features.
 */
import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { driverRig, MSI_WINDOW, UNIT_DEVICE_ID } from '../../test/driver-rig.js';
import { DTE_WORDS } from '../hw/dte.js';
import {
  CTRL_CMD_BUF_EN,
  CTRL_COHERENT,
  CTRL_EVENT_INT_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_GT_EN,
  CTRL_HI_EPH_EN,
  CTRL_HI_GCR3_TRP_MODE,
  CTRL_IOMMU_EN,
  CTRL_PPR_EN,
  CTRL_PPR_INT_EN,
  CTRL_PPR_LOG_EN,
  MSI_CAP_EN,
  REG,
  STATUS_CMD_BUF_RUN,
  STATUS_EVT_LOG_RUN,
  STATUS_PPR_LOG_RUN,
} from '../hw/regs.js';
import { CMD_BUFFER_SIZE } from './command-queue.js';
import { DEV_TABLE_ENTRIES } from './device-table.js';
import { INV_TIMEOUT_1S } from './driver-host.js';
import { EVT_BUFFER_SIZE } from './event-irq.js';
import { PPR_LOG_SIZE } from './ppr-irq.js';
import { probeUnit, shutdownUnit } from './probe.js';

const LEN_9 = 9 * 2 ** 24;

describe('probe of the default (Zen 4) unit', () => {
  const r = driverRig();
  const unit = probeUnit(r.context, () => undefined);

  it('decodes EFR and EFR2 as the unit reports them', () => {
    expect(unit.unit.efrWords).toEqual({ lo: r.reg(REG.EFR), hi: r.reg(REG.EFR + 4) });
    expect(unit.unit.hostLevels).toBe(6);
    expect(unit.unit.gtPpr).toBe(true);
    expect(unit.unit.efr2.gcr3TrpMode).toBe(true);
    expect(unit.unit.cap).toMatchObject({ iotlbSup: true, npCache: false });
  });

  it('programs the device table, command buffer, event and PPR logs: bases, 2 MiB / 512 entries', () => {
    expect(r.reg(REG.DEV_TBL_BASE)).toBe((unit.deviceTable.base % 2 ** 32) | 0x1ff);
    expect(r.reg(REG.DEV_TBL_BASE + 4)).toBe(Math.floor(unit.deviceTable.base / 2 ** 32));
    for (const [offset, base] of [
      [REG.CMD_BUF_BASE, unit.queue.base],
      [REG.EVT_LOG_BASE, unit.eventLog],
      [REG.PPR_LOG_BASE, unit.pprLog!],
    ] as const) {
      expect(r.reg(offset)).toBe(base % 2 ** 32);
      expect(r.reg(offset + 4)).toBe(Math.floor(base / 2 ** 32) + LEN_9);
    }
    expect([CMD_BUFFER_SIZE, EVT_BUFFER_SIZE, PPR_LOG_SIZE]).toEqual([8192, 8192, 8192]);
    expect(unit.deviceTable.base % (2 * 2 ** 20)).toBe(0);
  });

  it('leaves Control as Linux does: IommuEn, logs and their interrupts, Coherent, InvTimeOut 1 s, GT, EPH, GCR3TRP', () => {
    expect(r.reg(REG.CONTROL)).toBe(
      (CTRL_IOMMU_EN |
        CTRL_EVENT_LOG_EN |
        CTRL_EVENT_INT_EN |
        CTRL_COHERENT |
        (INV_TIMEOUT_1S << 5) |
        CTRL_CMD_BUF_EN |
        CTRL_PPR_LOG_EN |
        CTRL_PPR_INT_EN |
        CTRL_PPR_EN |
        CTRL_GT_EN) >>>
        0,
    );
    expect(r.reg(REG.CONTROL + 4)).toBe((CTRL_HI_EPH_EN | CTRL_HI_GCR3_TRP_MODE) >>> 0);
    expect(r.reg(REG.STATUS) & (STATUS_CMD_BUF_RUN | STATUS_EVT_LOG_RUN | STATUS_PPR_LOG_RUN)).toBe(
      STATUS_CMD_BUF_RUN | STATUS_EVT_LOG_RUN | STATUS_PPR_LOG_RUN,
    );
  });

  it('writes the bases and pointers before IommuEn, and IommuEn before the flush and the interrupts', () => {
    const writes = r.mmioWrites;
    const iommuEn = writes.findIndex(([o, v]) => o === REG.CONTROL && (v & CTRL_IOMMU_EN) !== 0);
    const last = (offset: number) => writes.map(([o]) => o).lastIndexOf(offset);
    for (const offset of [
      REG.DEV_TBL_BASE,
      REG.CMD_BUF_BASE + 4,
      REG.EVT_LOG_BASE + 4,
      REG.EVT_HEAD,
      REG.EVT_TAIL,
    ])
      expect(last(offset)).toBeLessThan(iommuEn);
    // Before IommuEn: GTEn, and the high half's GCR3TRPMode right after it.
    const gt = writes.findIndex(([o, v]) => o === REG.CONTROL && (v & CTRL_GT_EN) !== 0);
    const trp = writes.findIndex(([o, v]) => o === REG.CONTROL + 4 && (v & CTRL_HI_GCR3_TRP_MODE) !== 0);
    expect(gt).toBeLessThan(trp);
    expect(trp).toBeLessThan(iommuEn);
    // The first CmdTail write (the flush) and the MSI set-up come after.
    expect(writes.findIndex(([o, v]) => o === REG.CMD_TAIL && v !== 0)).toBeGreaterThan(iommuEn);
    expect(writes.findIndex(([o]) => o === REG.MSI_DATA)).toBeGreaterThan(iommuEn);
    expect(writes.findIndex(([o]) => o === REG.PPR_LOG_BASE + 4)).toBeGreaterThan(iommuEn);
  });

  it('flushes all caches twice with INVALIDATE_IOMMU_ALL (IASup), each waited for', () => {
    expect(r.unit.commandBuffer.performed).toMatchObject({
      'invalidate-iommu-all': 2,
      'completion-wait': 2,
      'invalidate-devtab-entry': 0,
    });
    expect(r.reg(REG.CMD_HEAD)).toBe(r.reg(REG.CMD_TAIL));
    expect(r.words(unit.queue.sem, 2)).toEqual(new Uint32Array([2, 0]));
  });

  it('writes V = 1, TV = 1 and nothing else into every DTE (init_device_table_dma)', () => {
    const table = r.words(unit.deviceTable.base, DEV_TABLE_ENTRIES * DTE_WORDS);
    let bad = 0;
    for (let i = 0; i < table.length; i++) if (table[i] !== (i % DTE_WORDS === 0 ? 3 : 0)) bad++;
    expect(bad).toBe(0);
  });

  it('blocks a DMA through a boot DTE: IO_PAGE_FAULT, permission denied', () => {
    const result = r.translate(0x100, 0x1000);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.fault.vendorCode).toBe('IO_PAGE_FAULT');
  });

  it('sets the unit’s MSI through the capability mirror and requests its handler', () => {
    expect(unit.vector).toBeDefined();
    expect(r.reg(REG.MSI_ADDR_LOW)).toBe(MSI_WINDOW);
    expect(r.reg(REG.MSI_ADDR_HIGH)).toBe(0);
    expect(r.reg(REG.MSI_DATA)).toBe(unit.vector!.message.data);
    expect(r.reg(REG.MSI_CAP_HDR) & MSI_CAP_EN).toBe(MSI_CAP_EN);
    expect(r.msi.hasHandler(unit.vector!.intid)).toBe(true);
  });

  it('shutdown turns the unit off as iommu_disable does, releases the interrupt and every page', () => {
    const before = r.memory.allocatedFrameCount;
    expect(before).toBeGreaterThan(0);
    shutdownUnit(unit);
    expect(
      r.reg(REG.CONTROL) & (CTRL_IOMMU_EN | CTRL_CMD_BUF_EN | CTRL_EVENT_LOG_EN | CTRL_EVENT_INT_EN),
    ).toBe(0);
    expect(r.reg(REG.CONTROL) & (CTRL_PPR_LOG_EN | CTRL_PPR_INT_EN)).toBe(0);
    expect(r.reg(REG.MSI_CAP_HDR) & MSI_CAP_EN).toBe(0);
    expect(r.msi.hasHandler(unit.vector!.intid)).toBe(false);
    expect(r.msi.freed).toEqual(['iommu0']);
    expect(r.memory.allocatedFrameCount).toBe(0);
  });
});

describe('probe with other features', () => {
  it('without IASup flushes every DTE, interrupt table and DomainID (amd_iommu_flush_all_caches)', () => {
    const r = driverRig({ options: { invalidateAll: false } });
    probeUnit(r.context, () => undefined);
    expect(r.unit.commandBuffer.performed).toMatchObject({
      'invalidate-iommu-all': 0,
      'invalidate-devtab-entry': 2 * 65536,
      'invalidate-interrupt-table': 2 * 65536,
      'invalidate-iommu-pages': 2 * 65536,
      'completion-wait': 6,
    });
  });

  it('without GT and PPR: no GTEn, no GCR3TRPMode, no PPR log', () => {
    const r = driverRig({ options: { guestTranslation: false, pageRequests: false, gcr3TrpMode: false } });
    const unit = probeUnit(r.context, () => undefined);
    expect(unit.pprLog).toBeUndefined();
    expect(r.reg(REG.CONTROL) & (CTRL_GT_EN | CTRL_PPR_EN | CTRL_PPR_LOG_EN)).toBe(0);
    expect(r.reg(REG.CONTROL + 4) & CTRL_HI_GCR3_TRP_MODE).toBe(0);
  });

  it('PPR without GT allocates the PPR log but leaves it off (amd_iommu_gt_ppr_supported)', () => {
    const r = driverRig({ options: { guestTranslation: false } });
    const unit = probeUnit(r.context, () => undefined);
    expect(unit.pprLog).toBeDefined();
    expect(r.reg(REG.CONTROL) & (CTRL_PPR_EN | CTRL_PPR_LOG_EN | CTRL_PPR_INT_EN)).toBe(0);
  });

  it('without an MSI controller the event interrupt stays masked (EventIntEn clear)', () => {
    const r = driverRig({ msi: false });
    const unit = probeUnit(r.context, () => undefined);
    expect(unit.vector).toBeUndefined();
    expect(r.reg(REG.CONTROL) & CTRL_EVENT_INT_EN).toBe(0);
    expect(r.reg(REG.CONTROL) & CTRL_EVENT_LOG_EN).toBe(CTRL_EVENT_LOG_EN);
  });

  it('without the MSI capability mirror likewise, and allocates no vector', () => {
    const r = driverRig({ options: { msiCapMmio: false } });
    const unit = probeUnit(r.context, () => undefined);
    expect(unit.vector).toBeUndefined();
    expect(r.reg(REG.CONTROL) & CTRL_EVENT_INT_EN).toBe(0);
  });

  it('the MSI carries the unit’s DeviceID when the event log interrupts', () => {
    const r = driverRig();
    const unit = probeUnit(r.context, () => undefined);
    r.translate(0x10, 0x5000);
    expect(r.msi.writes).toEqual([
      { address: MSI_WINDOW, data: unit.vector!.message.data, deviceId: UNIT_DEVICE_ID },
    ]);
  });

  it('reads an unusable EFR.HATS as ENODEV', () => {
    const r = driverRig();
    const efrHi = r.reg(REG.EFR + 4);
    r.unit.regs.set(REG.EFR, r.reg(REG.EFR) | (3 << 10));
    expect(r.reg(REG.EFR + 4)).toBe(efrHi);
    expect(errnoOf(() => probeUnit(r.context, () => undefined))).toBe('ENODEV');
  });
});
