/**
 * Probe and shutdown of one VT-d unit by the host driver, in Linux's order (iommu.c `init_dmars`,
 * `iommu_set_root_entry`, `intel_iommu_init`; dmar.c `alloc_iommu`, `dmar_enable_qi`, `dmar_set_interrupt`;
 * prq.c `intel_iommu_enable_prq`):
 *  1. read VER, CAP, ECAP; the AGAWs (`iommu_calculate_agaw`: none usable is `ENODEV`, "Cannot get a valid
 *     agaw"); scalable mode with ECAP.SMTS (Linux `sm_supported`), legacy otherwise;
 *  2. `intel_iommu_init_qi`: clear earlier faults (the fault handler once), disable and re-enable queued
 *     invalidation (`qi.ts`); register-based invalidation without ECAP.QI;
 *  3. domain IDs (`iommu_init_domains`); translation left on by firmware turned off
 *     (`init_translation_status`, not a kdump kernel); the root table (`iommu_alloc_root_entry`);
 *  4. write-buffer flush, RTADDR (RTA, TTM = 01 in scalable mode) and SRTP, polling RTPS; unless CAP.ESRTPS,
 *     global context-cache, PASID-cache (scalable) and IOTLB invalidations (`iommu_set_root_entry`);
 *  5. write-buffer flush; with ECAP.PRS in scalable mode the page request queue (2^PRQ_ORDER pages) and its
 *     interrupt, then PQH = PQT = 0 and PQA; the fault interrupt. Each interrupt is an MSI from the
 *     platform's controller (Linux `dmar_alloc_hwirq`): the message into *DATA, *ADDR, *UADDR
 *     (`dmar_msi_write`), the handler requested, then *CTL = 0 (`dmar_msi_unmask`). Without an MSI
 *     controller the events stay masked and the handlers run only when called.
 * Translation is not enabled here: Linux enables TE after the devices have been probed and given their
 * default domains (the last loop of `intel_iommu_init`), which `enableTranslation` does, with the
 * protected memory regions turned off after it (`iommu_disable_protect_mem_regions`).
 */
import {
  allocDriverPages,
  type DriverContext,
  freeDriverPages,
  IommufdError,
  MmioWindow,
  type MsiVector,
  POLL_LIMIT,
  pollTimeout,
} from '@iommukit/core';
import { type CapFields, decodeCap, decodeEcap, type EcapFields } from '../hw/capabilities.js';
import type { VtdOptions } from '../hw/options.js';
import {
  EVENT_CTL_IM,
  GCMD_SRTP,
  GCMD_TE,
  PMEN_EPM,
  PMEN_PRS,
  REG,
  RTADDR_TTM,
  TTM,
  VER_MAX,
  VER_MIN,
} from '../hw/regs.js';
import { ContextTables } from './context-tables.js';
import { DomainIds, domainIdCount } from './domain-ids.js';
import {
  type DeviceLookup,
  GlobalCommands,
  type VtdDriverBase,
  type VtdDriverHost,
  type VtdDriverStats,
  type VtdUnit,
} from './driver-host.js';
import { handleFaultIrq, handlePrqIrq, type PrqMemory } from './fault-irq.js';
import { PasidTables } from './pasid-table.js';
import { contextGlobal, DriverQi, iotlbGlobal, pasidCacheGlobal } from './qi.js';

/** The page request queue: 2^PRQ_ORDER pages (Linux PRQ_ORDER, 64 KiB, 2048 requests). */
export const PRQ_ORDER = 4;
/** Linux DEFAULT_DOMAIN_ADDRESS_WIDTH and MAX_AGAW_WIDTH. */
const DEFAULT_DOMAIN_ADDRESS_WIDTH = 57;
const MAX_AGAW_WIDTH = 64;

/** A probed unit: the shared host, the page request queue and the unit's interrupt vectors. */
export interface ProbedUnit extends VtdDriverHost {
  readonly prq: PrqMemory | undefined;
  /** The MSIs probe set up: the fault event first, then the page request event. */
  readonly vectors: readonly MsiVector[];
  /** Undo steps of the interrupt set-up, run in reverse by `shutdownUnit`. */
  readonly releases: (() => void)[];
}

/** Probes the unit behind `context` (steps 1–5); `lookup` names the device of a source-id for reports. */
export function probeUnit(context: DriverContext<VtdOptions>, lookup: DeviceLookup): ProbedUnit {
  const { instance, bus, tracer } = context;
  const counter = bus.counter(`driver:${instance}`);
  const mmio = new MmioWindow(bus, context.base, counter);
  const unit = readUnit(mmio, instance);
  const stats: VtdDriverStats = {
    faults: 0,
    pageRequests: 0,
    badPageRequests: 0,
    prqOverflows: 0,
    pageResponses: 0,
  };
  const base: VtdDriverBase = {
    instance,
    context,
    mmio,
    bus,
    memory: context.memory,
    counter,
    tracer,
    unit,
    scalable: unit.ecap.smts,
    commands: new GlobalCommands(mmio, instance, unit.cap.rwbf),
    stats,
    log: (name, message) => {
      if (tracer.enabled) tracer.trace('driver', instance, name, message);
    },
  };
  handleFaultIrq(base, lookup);
  const qi = new DriverQi(base);
  qi.enable();
  const dids = new DomainIds(unit.domainIds, instance);
  if (base.commands.has(GCMD_TE)) {
    base.log('probe', 'translation was enabled before the driver; disabling it');
    base.commands.set(GCMD_TE, false);
  }
  const pasidTables = new PasidTables(base, qi);
  const contextTables = new ContextTables(base, qi, (sid) => pasidTables.presentDids(sid));
  const host: VtdDriverHost = { ...base, qi, contextTables, pasidTables, dids };
  base.commands.flushWriteBuffer();
  setRootEntry(host);
  base.commands.flushWriteBuffer();
  const prq =
    unit.ecap.prs && host.scalable
      ? { base: allocDriverPages(context.memory, 2 ** PRQ_ORDER), bytes: 4096 * 2 ** PRQ_ORDER }
      : undefined;
  const releases: (() => void)[] = [];
  const vectors = allocateVectors(host, prq ? 2 : 1, releases);
  if (prq) {
    requestEvent(host, REG.PECTL, vectors[1], () => handlePrqIrq(host, prq, lookup), releases);
    mmio.writeAddress(REG.PQH, 0);
    mmio.writeAddress(REG.PQT, 0);
    mmio.writeAddress(REG.PQA, prq.base + PRQ_ORDER);
  }
  requestEvent(host, REG.FECTL, vectors[0], () => handleFaultIrq(host, lookup), releases);
  return { ...host, prq, vectors, releases };
}

/** Linux `intel_iommu_init`'s last loop: TE on, then the protected memory regions off. */
export function enableTranslation(host: VtdDriverBase): void {
  host.commands.set(GCMD_TE, true);
  const { cap } = host.unit;
  if (!cap.plmr && !cap.phmr) return;
  const { mmio } = host;
  mmio.write32(REG.PMEN, mmio.read32(REG.PMEN) & ~PMEN_EPM);
  for (let i = 0; i < POLL_LIMIT; i++) if ((mmio.read32(REG.PMEN) & PMEN_PRS) === 0) return;
  throw pollTimeout(host.instance, 'PMEN.PRS did not clear');
}

/**
 * Undoes probe: translation off (`iommu_disable_translation`), the page request queue's registers cleared
 * (`intel_iommu_finish_prq`), the interrupts masked and released with their vectors, queued invalidation
 * off (`dmar_disable_qi`), and every page probe or the tables allocated returned.
 */
export function shutdownUnit(unit: ProbedUnit): void {
  const { mmio, memory } = unit;
  if (unit.commands.has(GCMD_TE)) unit.commands.set(GCMD_TE, false);
  if (unit.prq) {
    mmio.writeAddress(REG.PQH, 0);
    mmio.writeAddress(REG.PQT, 0);
    mmio.writeAddress(REG.PQA, 0);
  }
  for (const release of unit.releases.splice(0).reverse()) release();
  if (unit.prq) freeDriverPages(memory, unit.prq.base, 2 ** PRQ_ORDER);
  unit.qi.disable();
  unit.qi.free();
  unit.pasidTables.freeAll();
  unit.contextTables.free();
}

function readUnit(mmio: MmioWindow, instance: string): VtdUnit {
  const ver = mmio.read32(REG.VER);
  const capWords = { lo: mmio.read32(REG.CAP), hi: mmio.read32(REG.CAP + 4) };
  const ecapWords = { lo: mmio.read32(REG.ECAP), hi: mmio.read32(REG.ECAP + 4) };
  const cap = decodeCap(capWords.lo, capWords.hi);
  const ecap = decodeEcap(ecapWords.lo, ecapWords.hi);
  const agaw = calculateAgaw(cap, ecap, DEFAULT_DOMAIN_ADDRESS_WIDTH);
  if (agaw < 0)
    throw new IommufdError('ENODEV', `${instance}: cannot get a valid AGAW (SAGAW ${cap.sagaw})`, {
      instance,
    });
  return {
    version: { major: (ver >>> VER_MAX.lsb) & 0xf, minor: (ver >>> VER_MIN.lsb) & 0xf },
    capWords,
    ecapWords,
    cap,
    ecap,
    domainIds: domainIdCount(cap.nd),
    faultRecordOffset: cap.fro * 16,
    faultRecords: cap.nfr + 1,
    iotlbOffset: ecap.iro * 16,
    pasidBits: ecap.pasid ? ecap.pss + 1 : 0,
    agaw,
    msagaw: calculateAgaw(cap, ecap, MAX_AGAW_WIDTH),
  };
}

/**
 * Linux `__iommu_calculate_agaw`: the widest AGAW at or below `width` in the SAGAW the unit's translation
 * uses (`__iommu_calculate_sagaw`: in scalable mode with a first stage, 4-level and, with FL5LP, 5-level
 * first-stage tables, intersected with CAP.SAGAW when there is a second stage too); −1 when none.
 */
function calculateAgaw(cap: CapFields, ecap: EcapFields, width: number): number {
  const flSagaw = 0b100 | (cap.fl5lp ? 0b1000 : 0);
  let sagaw = cap.sagaw;
  if (ecap.smts && ecap.flts) sagaw = ecap.slts ? flSagaw & cap.sagaw : flSagaw;
  for (let agaw = Math.ceil((width - 30) / 9); agaw >= 0; agaw--)
    if ((sagaw & (1 << agaw)) !== 0) return agaw;
  return -1;
}

/** Linux `iommu_set_root_entry`. */
function setRootEntry(host: VtdDriverHost): void {
  const ttm = host.scalable ? TTM.SCALABLE << RTADDR_TTM.lsb : 0;
  host.mmio.writeAddress(REG.RTADDR, host.contextTables.root + ttm);
  host.commands.oneShot(GCMD_SRTP);
  // With CAP.ESRTPS the unit invalidates its caches itself as part of SRTP.
  if (host.unit.cap.esrtps) return;
  host.qi.submit([contextGlobal()]);
  if (host.scalable) host.qi.submit([pasidCacheGlobal()]);
  host.qi.submit([iotlbGlobal()]);
}

/** The unit's MSI vectors (Linux `dmar_alloc_hwirq`): the fault event's, then the page request event's. */
function allocateVectors(host: VtdDriverHost, count: number, releases: (() => void)[]): readonly MsiVector[] {
  const msi = host.context.msi;
  if (msi === undefined) {
    host.log('probe', 'no MSI controller: fault and page request events stay masked');
    return [];
  }
  const requester = { name: host.instance, deviceId: msi.deviceId };
  const vectors = msi.controller.allocateVectors(requester, count);
  releases.push(() => msi.controller.freeVectors(requester));
  return vectors;
}

/**
 * One event as an MSI: the message into *DATA, *ADDR, *UADDR (`dmar_msi_write`), the handler requested,
 * then *CTL = 0 and a read to flush it (`dmar_msi_unmask`); undone by masking. Nothing without a vector.
 */
function requestEvent(
  host: VtdDriverHost,
  control: number,
  vector: MsiVector | undefined,
  handler: () => void,
  releases: (() => void)[],
): void {
  const controller = host.context.msi?.controller;
  if (vector === undefined || controller === undefined) return;
  const { mmio } = host;
  mmio.write32(control + 4, vector.message.data);
  mmio.write32(control + 8, Number(vector.message.address & 0xffff_ffffn));
  mmio.write32(control + 12, Number(vector.message.address >> 32n));
  releases.push(controller.requestIrq(vector.intid, handler));
  mmio.write32(control, 0);
  mmio.read32(control);
  releases.push(() => mmio.write32(control, EVENT_CTL_IM));
}
