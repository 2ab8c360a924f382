/**
 * Probe and shutdown of one AMD IOMMU by the host driver, in the order of Linux init.c's state machine
 * (`early_amd_iommu_init`, `early_enable_iommus`, `amd_iommu_init_pci`, `amd_iommu_enable_interrupts`),
 * through the registers of AMD pub. 48882 §3.4 alone:
 *  1. read EFR and EFR2 (`amd_iommu_efr`, `amd_iommu_efr2`) and the capability header (`iommu->cap`):
 *     HATS 3 leaves no host translation (`ENODEV`);
 *  2. allocate the device table (64K entries, 2 MiB: `alloc_dev_table`), the completion semaphore
 *     (`alloc_cwwb_sem`), the command buffer and the event log (512 entries each: `alloc_command_buffer`,
 *     `alloc_event_buffer`) and, with EFR.PPRSup, the PPR log (512 entries; Linux allocates it later, in
 *     `iommu_init_pci`, which changes no register); turn off whatever firmware left on (`disable_iommus`
 *     → `iommu_disable`);
 *  3. `early_enable_iommu`: `iommu_disable`; `iommu_init_flags` (HtTunEn, PassPW, ResPassPW, Isoc off — no
 *     IVHD flags ask for them —, Coherent on, InvTimeOut 1 s, EPHEn with EPHSup); `iommu_set_device_table`;
 *     `iommu_enable_command_buffer`; `iommu_enable_event_buffer`; no exclusion range (no IVMD);
 *     `iommu_enable_gt` (GTEn with GTSup, then GCR3TRPMode with EFR2.GCR3TRPMode); IommuEn last
 *     (`iommu_enable`); `amd_iommu_flush_all_caches`. GAEn, XTEn and IRTCacheDis belong to interrupt
 *     remapping (`iommu_enable_ga`, `iommu_enable_xt`, `iommu_enable_irtcachedis`), which comes later;
 *  4. `amd_iommu_init_pci`: every DTE V = 1, TV = 1 (`init_device_table_dma`), then
 *     `amd_iommu_flush_all_caches` again;
 *  5. `amd_iommu_enable_interrupts`: the unit's MSI (`iommu_setup_msi`: the message into the MSI capability
 *     — here its MMIO mirror, EFR.MsiCapMmioSup —, MsiEn, the handler requested), then EventIntEn
 *     (`iommu_init_irq`); the PPR log with GT, PPR and EPHSup (`amd_iommu_enable_ppr_log`: PPREn, base,
 *     head = tail = 0, PPRIntEn, PPRLogEn). ComWaitIntEn stays clear: Linux polls its semaphore. Without
 *     an MSI controller or the mirror, events stay masked (EventIntEn clear) and the handler runs only when
 *     called. The GA log (`enable_iommus_vapic`) comes with interrupt remapping.
 */
import {
  allocDriverPages,
  type DriverContext,
  freeDriverPages,
  IommufdError,
  MmioWindow,
  type MsiVector,
} from '@iommukit/core';
import { capabilityHeaderWord, decodeCapabilityHeader, decodeEfr, decodeEfr2 } from '../hw/capabilities.js';
import { type AmdOptions, featuresFromOptions } from '../hw/options.js';
import { MSI_CAP_EN, REG } from '../hw/regs.js';
import { CommandQueue, flushAllCaches } from './command-queue.js';
import { DriverDeviceTable } from './device-table.js';
import {
  type AmdDeviceLookup,
  type AmdDriverBase,
  type AmdDriverHost,
  type AmdDriverStats,
  type AmdUnit,
  CONTROL,
  ControlRegister,
  INV_TIMEOUT_1S,
} from './driver-host.js';
import { EVT_BUFFER_LENGTH, EVT_BUFFER_SIZE, handleEventIrq } from './event-irq.js';
import { handlePprIrq, PPR_LOG_LENGTH, PPR_LOG_SIZE } from './ppr-irq.js';

/** A probed unit: the shared host, its MSI vector and the undo steps of its interrupt set-up. */
export interface ProbedUnit extends AmdDriverHost {
  readonly vector: MsiVector | undefined;
  readonly releases: (() => void)[];
}

/** Probes the unit behind `context` (steps 1–5); `lookup` finds the device of a DeviceID for reports. */
export function probeUnit(context: DriverContext<AmdOptions>, lookup: AmdDeviceLookup): ProbedUnit {
  const { instance, bus, tracer } = context;
  const counter = bus.counter(`driver:${instance}`);
  const mmio = new MmioWindow(bus, context.base, counter);
  const stats: AmdDriverStats = {
    faults: 0,
    events: 0,
    eventLogRestarts: 0,
    pageRequests: 0,
    badPageRequests: 0,
    pageResponses: 0,
    pprLogRestarts: 0,
  };
  const base: AmdDriverBase = {
    instance,
    context,
    mmio,
    bus,
    memory: context.memory,
    counter,
    tracer,
    unit: readUnit(mmio, context),
    control: new ControlRegister(mmio),
    stats,
    log: (name, message) => {
      if (tracer.enabled) tracer.trace('driver', instance, name, message);
    },
  };
  const queue = new CommandQueue(base);
  const host: AmdDriverHost = {
    ...base,
    queue,
    deviceTable: new DriverDeviceTable(base, queue),
    eventLog: allocDriverPages(context.memory, EVT_BUFFER_SIZE / 4096),
    pprLog: base.unit.efr.pprSup ? allocDriverPages(context.memory, PPR_LOG_SIZE / 4096) : undefined,
  };
  disable(host);
  earlyEnable(host);
  host.deviceTable.initDma();
  flushAllCaches(host, queue);
  const releases: (() => void)[] = [];
  const pprLog = host.unit.gtPpr ? host.pprLog : undefined;
  // One vector for both logs (Linux `amd_iommu_int_thread`: the event log's thread, then the PPR log's).
  const vector = initIrq(
    host,
    () => {
      handleEventIrq(host, host.eventLog, (deviceId) => lookup(deviceId)?.ref);
      if (pprLog !== undefined) handlePprIrq(host, pprLog, lookup);
    },
    releases,
  );
  if (pprLog !== undefined) enablePprLog(host, pprLog);
  return { ...host, vector, releases };
}

/**
 * Undoes probe (Linux `disable_iommus` then `free_iommu_one`): the unit off as `iommu_disable` leaves it,
 * the interrupt released, and every page probe allocated returned.
 */
export function shutdownUnit(unit: ProbedUnit): void {
  disable(unit);
  for (const release of unit.releases.splice(0).reverse()) release();
  const { memory } = unit;
  unit.queue.free();
  unit.deviceTable.free();
  freeDriverPages(memory, unit.eventLog, EVT_BUFFER_SIZE / 4096);
  if (unit.pprLog !== undefined) freeDriverPages(memory, unit.pprLog, PPR_LOG_SIZE / 4096);
}

/**
 * EFR, EFR2 and the capability header. The header is PCI configuration space (Linux
 * `pci_read_config_dword` at the capability pointer), which the model has no window for: it is taken from
 * the instance's options, as the platform describes the unit.
 */
function readUnit(mmio: MmioWindow, context: DriverContext<AmdOptions>): AmdUnit {
  const efrWords = { lo: mmio.read32(REG.EFR), hi: mmio.read32(REG.EFR + 4) };
  const efr2Words = { lo: mmio.read32(REG.EFR2), hi: mmio.read32(REG.EFR2 + 4) };
  const efr = decodeEfr(efrWords.lo, efrWords.hi);
  const efr2 = decodeEfr2(efr2Words.lo, efr2Words.hi);
  const gtPpr = efr.gtSup && efr.pprSup && efr.ephSup;
  if (efr.hats === 3)
    throw new IommufdError('ENODEV', `${context.instance}: EFR.HATS is reserved: no host translation`, {
      instance: context.instance,
    });
  return {
    efrWords,
    efr2Words,
    efr,
    efr2,
    cap: decodeCapabilityHeader(capabilityHeaderWord(featuresFromOptions(context.options))),
    hostLevels: (4 + efr.hats) as 4 | 5 | 6,
    gtPpr,
    maxPasids: gtPpr ? 2 ** (efr.pasMax + 1) - 1 : 0,
    gptLevels: 4,
  };
}

/** Linux `iommu_disable`: command buffer, event log and interrupt, GA and PPR logs, the unit, IRTCacheDis. */
function disable(host: AmdDriverBase): void {
  const { control } = host;
  for (const bit of [
    CONTROL.CMDBUF_EN,
    CONTROL.EVT_INT_EN,
    CONTROL.EVT_LOG_EN,
    CONTROL.GALOG_EN,
    CONTROL.GAINT_EN,
    CONTROL.PPRLOG_EN,
    CONTROL.PPRINT_EN,
    CONTROL.IOMMU_EN,
    CONTROL.IRTCACHEDIS,
  ])
    control.set(bit, false);
}

/** Linux `early_enable_iommu` (step 3). */
function earlyEnable(host: AmdDriverHost): void {
  const { control, mmio, unit } = host;
  disable(host);
  // iommu_init_flags: the IVHD flags (none here) decide the HyperTransport controls.
  for (const bit of [CONTROL.HT_TUN_EN, CONTROL.PASSPW_EN, CONTROL.RESPASSPW_EN, CONTROL.ISOC_EN])
    control.set(bit, false);
  control.set(CONTROL.COHERENT_EN, true);
  control.setInvTimeout(INV_TIMEOUT_1S);
  if (unit.efr.ephSup) control.set(CONTROL.EPH_EN, true);
  host.deviceTable.program();
  host.queue.enable();
  // iommu_enable_event_buffer: base and length, head and tail 0, EventLogEn.
  mmio.write64(REG.EVT_LOG_BASE, BigInt(host.eventLog) | (BigInt(EVT_BUFFER_LENGTH) << 56n));
  mmio.write32(REG.EVT_HEAD, 0);
  mmio.write32(REG.EVT_TAIL, 0);
  control.set(CONTROL.EVT_LOG_EN, true);
  if (unit.efr.gtSup) {
    control.set(CONTROL.GT_EN, true);
    // Linux: GCR3TRPMode must be on before SNP is; nested v2 tables with guest GCR3 roots need it.
    if (unit.efr2.gcr3TrpMode) control.set(CONTROL.GCR3TRPMODE, true);
  }
  control.set(CONTROL.IOMMU_EN, true);
  flushAllCaches(host, host.queue);
}

/**
 * Linux `iommu_init_irq` with `iommu_setup_msi`: one vector from the platform's controller, its message in
 * the MSI capability (mirror), MsiEn, the handler requested, then EventIntEn. Undone by MsiEn off.
 */
function initIrq(host: AmdDriverHost, handler: () => void, releases: (() => void)[]): MsiVector | undefined {
  const msi = host.context.msi;
  if (msi === undefined || !host.unit.efr.msiCapMmioSup) {
    host.log('probe', 'no MSI controller or MSI capability mirror: the event interrupt stays masked');
    return undefined;
  }
  const { mmio } = host;
  const requester = { name: host.instance, deviceId: msi.deviceId };
  const [vector] = msi.controller.allocateVectors(requester, 1);
  releases.push(() => msi.controller.freeVectors(requester));
  mmio.write32(REG.MSI_ADDR_LOW, Number(vector!.message.address & 0xffff_ffffn));
  mmio.write32(REG.MSI_ADDR_HIGH, Number(vector!.message.address >> 32n));
  mmio.write32(REG.MSI_DATA, vector!.message.data);
  mmio.write32(REG.MSI_CAP_HDR, mmio.read32(REG.MSI_CAP_HDR) | MSI_CAP_EN);
  releases.push(() => mmio.write32(REG.MSI_CAP_HDR, mmio.read32(REG.MSI_CAP_HDR) & ~MSI_CAP_EN));
  releases.push(msi.controller.requestIrq(vector!.intid, handler));
  host.control.set(CONTROL.EVT_INT_EN, true);
  return vector;
}

/** Linux `amd_iommu_enable_ppr_log`. */
function enablePprLog(host: AmdDriverHost, log: number): void {
  const { control, mmio } = host;
  control.set(CONTROL.PPR_EN, true);
  mmio.write64(REG.PPR_LOG_BASE, BigInt(log) | (BigInt(PPR_LOG_LENGTH) << 56n));
  mmio.write32(REG.PPR_HEAD, 0);
  mmio.write32(REG.PPR_TAIL, 0);
  control.set(CONTROL.PPRINT_EN, true);
  control.set(CONTROL.PPRLOG_EN, true);
}
