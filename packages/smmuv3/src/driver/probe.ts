/**
 * Probe and reset of the SMMUv3 host driver (Linux `arm_smmu_device_hw_probe` + `arm_smmu_device_reset`;
 * registers IHI 0070 §6.3):
 *  1. read IDR0–IDR5, IIDR, AIDR; refuse what Linux refuses (no AArch64 tables, no translation stage,
 *     embedded implementations with preset tables/queues, big-endian-only tables);
 *  2. allocate the Command queue (2^min(IDR1.CMDQS, 8) entries), Event queue (2^min(IDR1.EVENTQS, 7)),
 *     PRI queue (2^min(IDR1.PRIQS, 8), with PRI) and the Stream table (`StreamTable`);
 *  3. GBPA.ABORT with the Update handshake, so a disabled SMMU aborts traffic (Linux disable_bypass;
 *     Linux itself only sets it when it finds the SMMU enabled);
 *  4. CR0 = 0, wait for CR0ACK; CR1 = queue and table accesses write-back, inner shareable; CR2 = RECINVSID
 *     (and PTM with IDR0.BTM); STRTAB_BASE (RA) and STRTAB_BASE_CFG; CMDQ_BASE, CMDQ_PROD = CMDQ_CONS = 0;
 *  5. CR0 = CMDQEN (+ ack); CMD_CFGI_ALL + CMD_SYNC; CMD_TLBI_EL2_ALL + CMD_SYNC with IDR0.Hyp;
 *     CMD_TLBI_NSNH_ALL + CMD_SYNC;
 *  6. EVENTQ_BASE (WA), EVENTQ_PROD/CONS (page 1) = 0, CR0 |= EVENTQEN (+ ack); the same for the PRI queue
 *     and PRIQEN; CR0 |= ATSCHK with ATS (+ ack);
 *  7. IRQ_CTRL = 0 (+ IRQ_CTRLACK), the doorbells cleared, then MSIs through the platform's MSI controller
 *     when the SMMU has IDR0.MSI (wired `eventq`, `priq` and `gerror` lines otherwise), IRQ_CTRL = GERROR |
 *     EVENTQ | PRIQ enables (+ ack);
 *  8. CR0 |= SMMUEN (+ ack).
 * Every acknowledgement poll is bounded (Linux ARM_SMMU_POLL_TIMEOUT_US: -ETIMEDOUT).
 */
import { field32, IommufdError, type MmioWindow, POLL_LIMIT, pollTimeout, toHex } from '@iommukit/core';
import { encodeCfgiAll, encodeTlbiEl2All, encodeTlbiNsnhAll } from '../hw/commands.js';
import type { Smmuv3Features } from '../hw/features.js';
import {
  featuresFromIdrs,
  IDR0_BTM,
  IDR0_SEV,
  IDR0_TTF,
  IDR1_ATTR_TYPES_OVR,
  IDR1_QUEUES_PRESET,
  IDR1_REL,
  IDR1_TABLES_PRESET,
  type IdrValues,
  idrFixedFieldsFromIdr0,
  TTF_AARCH64,
  WFE_EVENT_LINE,
} from '../hw/idr.js';
import { EVENTQ_ENTRY_BYTES, PRIQ_ENTRY_BYTES, queueCapacity } from '../hw/queue-index.js';
import {
  CR0_ATSCHK,
  CR0_CMDQEN,
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR1_QUEUE_IC,
  CR1_QUEUE_OC,
  CR1_QUEUE_SH,
  CR1_TABLE_IC,
  CR1_TABLE_OC,
  CR1_TABLE_SH,
  CR2_PTM,
  CR2_RECINVSID,
  GBPA_ABORT,
  GBPA_UPDATE,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  Q_BASE_HI_ALLOC,
  REG,
} from '../hw/regs.js';
import { SHAREABILITY } from '../hw/ste.js';
import { CMDQ_MAX_LOG2, Smmuv3Cmdq } from './cmdq.js';
import type { Smmuv3Domain } from './domain.js';
import type { ProbedSmmu, QueueMemory, Smmuv3DriverHost } from './driver-host.js';
import { asidAllocator, vmidAllocator } from './ids.js';
import { builderCaps } from './ste-builders.js';
import { StreamTable } from './stream-table.js';
import { allocSizeAligned } from './table-memory.js';

/** Event queue size the driver asks for, as log2 of entries (128 records: one 4 KiB page). */
export const EVENTQ_MAX_LOG2 = 7;
/** PRI queue size the driver asks for, as log2 of entries (256 entries: one 4 KiB page). */
export const PRIQ_MAX_LOG2 = 8;
/** *_IRQ_CFG0.ADDR, bits [55:2] (§6.3.19). */
const IRQ_CFG0_ADDR_MASK = ((1n << 56n) - 1n) & ~3n;
/** *_IRQ_CFG2.MEMATTR for Device-nGnRE, what Linux programs for MSIs (ARM_SMMU_MEMATTR_DEVICE_nGnRE). */
const MEMATTR_DEVICE_NGNRE = 0x1;

/** CR1 as Linux writes it: queue and table accesses inner/outer write-back, inner shareable. */
const CR1_VALUE =
  (SHAREABILITY.INNER << CR1_TABLE_SH.lsb) |
  (1 << CR1_TABLE_OC.lsb) |
  (1 << CR1_TABLE_IC.lsb) |
  (SHAREABILITY.INNER << CR1_QUEUE_SH.lsb) |
  (1 << CR1_QUEUE_OC.lsb) |
  (1 << CR1_QUEUE_IC.lsb);

/** The interrupt handlers reset connects. */
export interface Smmuv3IrqHandlers {
  eventq(): void;
  gerror(): void;
  priq(): void;
}

/** Steps 1–2: what the SMMU is, and its queues and Stream table; `release` forgets a freed domain. */
export function probeSmmu(host: Smmuv3DriverHost, release: (domain: Smmuv3Domain) => void): ProbedSmmu {
  const idr = readIdrs(host.regs);
  const features = checkIdrs(host.instance, idr);
  const hyp = idrFixedFieldsFromIdr0(idr.IDR0).hyp;
  const { instance, bus, memory, counter, tracer } = host;
  const base = { instance, bus, memory, counter };

  const cmdqLog2 = Math.min(features.cmdqLog2, CMDQ_MAX_LOG2);
  const cmdqMem = allocQueue(host, cmdqLog2, 16);
  const cmdq = new Smmuv3Cmdq({
    ...base,
    regs: host.regs,
    base: cmdqMem.base,
    log2: cmdqLog2,
    tracer,
    // Linux waits with WFE only when IDR0.SEV says the SMMU sends wake-up events (ARM_SMMU_FEAT_SEV).
    ...((idr.IDR0 & IDR0_SEV) !== 0 ? { wfeEvents: host.context.irq(WFE_EVENT_LINE) } : {}),
  });
  const eventq = allocQueue(host, Math.min(features.evtqLog2, EVENTQ_MAX_LOG2), EVENTQ_ENTRY_BYTES);
  const priq = features.pri
    ? allocQueue(host, Math.min(features.priqLog2, PRIQ_MAX_LOG2), PRIQ_ENTRY_BYTES)
    : undefined;
  const tableHost = { ...base, cmdq, tracer };
  const streamTable = new StreamTable(tableHost, features.sidBits, features.twoLevelStreamTable);
  const caps = builderCaps(features, { attrTypesOverride: (idr.IDR1 & IDR1_ATTR_TYPES_OVR) !== 0 });
  const asids = asidAllocator(features);
  const vmids = vmidAllocator(features);
  return {
    idr,
    features,
    hyp,
    caps,
    cmdq,
    cmdqMem,
    eventq,
    priq,
    streamTable,
    asids,
    vmids,
    tableHost,
    domainHost: { ...base, tracer, features, builderCaps: caps, cmdq, asids, vmids, release },
  };
}

/**
 * Steps 3–8 (Linux `arm_smmu_device_reset`). The MSI setup's undo steps go to `msiReleases` as they are
 * taken, so shutdown can undo a reset that failed half-way.
 */
export function resetSmmu(
  host: Smmuv3DriverHost,
  p: ProbedSmmu,
  handlers: Smmuv3IrqHandlers,
  msiReleases: (() => void)[],
): void {
  const { regs, instance } = host;
  const ackedCr0 = (value: number) => writeRegSync(regs, instance, REG.CR0, value, REG.CR0ACK);
  updateGbpa(regs, instance, GBPA_ABORT, 0);
  ackedCr0(0);
  regs.write32(REG.CR1, CR1_VALUE);
  regs.write32(REG.CR2, CR2_RECINVSID | (p.idr.IDR0 & IDR0_BTM ? CR2_PTM : 0));
  regs.write64(REG.STRTAB_BASE, p.streamTable.baseRegister);
  regs.write32(REG.STRTAB_BASE_CFG, p.streamTable.baseCfg);
  p.cmdq.program();
  let enables = CR0_CMDQEN;
  ackedCr0(enables);
  p.cmdq.issue(encodeCfgiAll());
  if (p.hyp) p.cmdq.issue(encodeTlbiEl2All());
  p.cmdq.issue(encodeTlbiNsnhAll());

  programOutputQueue(regs, p.eventq, REG.EVENTQ_BASE, REG.EVENTQ_PROD, REG.EVENTQ_CONS);
  enables |= CR0_EVENTQEN;
  ackedCr0(enables);
  if (p.priq) {
    programOutputQueue(regs, p.priq, REG.PRIQ_BASE, REG.PRIQ_PROD, REG.PRIQ_CONS);
    enables |= CR0_PRIQEN;
    ackedCr0(enables);
  }
  if (p.features.ats) {
    enables |= CR0_ATSCHK;
    ackedCr0(enables);
  }
  setupIrqs(host, p.features, handlers, msiReleases);
  enables |= CR0_SMMUEN;
  ackedCr0(enables);
}

/** Writes a register and polls its acknowledgement (Linux `arm_smmu_write_reg_sync`: -ETIMEDOUT). */
export function writeRegSync(
  regs: MmioWindow,
  instance: string,
  offset: number,
  value: number,
  ack: number,
): void {
  regs.write32(offset, value);
  for (let i = 0; i < POLL_LIMIT; i++) if (regs.read32(ack) === value >>> 0) return;
  throw pollTimeout(instance, `register ${toHex(ack)} did not acknowledge ${toHex(value)}`);
}

/** GBPA update with the Update handshake (Linux `arm_smmu_update_gbpa`: -ETIMEDOUT). */
function updateGbpa(regs: MmioWindow, instance: string, set: number, clear: number): void {
  const idle = (): number => {
    for (let i = 0; i < POLL_LIMIT; i++) {
      const value = regs.read32(REG.GBPA);
      if ((value & GBPA_UPDATE) === 0) return value;
    }
    throw pollTimeout(instance, 'GBPA not responding to update');
  };
  const value = (idle() & ~clear) | set;
  regs.write32(REG.GBPA, value | GBPA_UPDATE);
  idle();
}

function readIdrs(regs: MmioWindow): IdrValues {
  const r = (offset: number) => regs.read32(offset);
  return {
    IDR0: r(REG.IDR0),
    IDR1: r(REG.IDR1),
    IDR2: r(REG.IDR2),
    IDR3: r(REG.IDR3),
    IDR4: r(REG.IDR4),
    IDR5: r(REG.IDR5),
    IIDR: r(REG.IIDR),
    AIDR: r(REG.AIDR),
  };
}

/** The features from the ID registers; `ENODEV` for an SMMU this driver (like Linux) cannot drive. */
function checkIdrs(instance: string, idr: IdrValues): Smmuv3Features {
  const refuse = (why: string): never => {
    throw new IommufdError('ENODEV', `${instance}: ${why}`, { instance });
  };
  let features: Smmuv3Features;
  try {
    features = featuresFromIdrs(idr, { wiredIrqs: true });
    if (idrFixedFieldsFromIdr0(idr.IDR0).ttEndian === 'big') refuse('big-endian-only table walks');
  } catch (error) {
    if (error instanceof IommufdError) throw error;
    return refuse(`unsupported ID registers: ${error instanceof Error ? error.message : String(error)}`);
  }
  if ((field32(idr.IDR0, IDR0_TTF.lsb, IDR0_TTF.width) & TTF_AARCH64) === 0)
    refuse('no AArch64 (VMSAv8-64) table format');
  if (!features.s1 && !features.s2) refuse('no translation stage');
  if (idr.IDR1 & (IDR1_TABLES_PRESET | IDR1_QUEUES_PRESET | IDR1_REL))
    refuse('embedded implementations (preset tables or queues) are not supported');
  return features;
}

function allocQueue(host: Smmuv3DriverHost, log2: number, entryBytes: number): QueueMemory {
  const block = allocSizeAligned(host.memory, Math.max(32, queueCapacity(log2) * entryBytes));
  return { ...block, log2, cons: 0 };
}

function programOutputQueue(
  regs: MmioWindow,
  q: QueueMemory,
  base: number,
  prod: number,
  cons: number,
): void {
  q.cons = 0;
  // WA (write-allocate) as Linux's Q_BASE_RWA.
  regs.write64(base, (BigInt(Q_BASE_HI_ALLOC) << 32n) | BigInt(q.base) | BigInt(q.log2));
  regs.write32(prod, 0);
  regs.write32(cons, 0);
}

/**
 * Linux `arm_smmu_setup_irqs`: MSIs when the SMMU implements them and the platform has an MSI
 * controller (`arm_smmu_setup_msis`), wired lines otherwise (`arm_smmu_setup_unique_irqs`).
 */
function setupIrqs(
  host: Smmuv3DriverHost,
  features: Smmuv3Features,
  handlers: Smmuv3IrqHandlers,
  msiReleases: (() => void)[],
): void {
  const { regs, instance, context } = host;
  writeRegSync(regs, instance, REG.IRQ_CTRL, 0, REG.IRQ_CTRLACK);
  const sources: [cfg0: number, line: string, handler: () => void][] = [
    [REG.EVENTQ_IRQ_CFG0, 'eventq', handlers.eventq],
    [REG.GERROR_IRQ_CFG0, 'gerror', handlers.gerror],
    ...(features.pri ? [[REG.PRIQ_IRQ_CFG0, 'priq', handlers.priq] as const] : []),
  ] as [number, string, () => void][];
  // Clear the doorbells first: only what this setup programs may signal.
  if (features.msi) for (const [cfg0] of sources) regs.write64(cfg0, 0n);
  const msi = features.msi ? context.msi : undefined;
  if (msi) {
    // MSI indexes as Linux numbers them: EVTQ 0, GERROR 1, PRIQ 2.
    const requester = { name: instance, deviceId: msi.deviceId };
    const vectors = msi.controller.allocateVectors(requester, sources.length);
    sources.forEach(([cfg0, , handler], i) => {
      const { message, intid } = vectors[i]!;
      // arm_smmu_write_msi_msg: doorbell (bits [55:2]), data, Device-nGnRE memory attributes.
      regs.write64(cfg0, message.address & IRQ_CFG0_ADDR_MASK);
      regs.write32(cfg0 + 8, message.data);
      regs.write32(cfg0 + 12, MEMATTR_DEVICE_NGNRE);
      msiReleases.push(msi.controller.requestIrq(intid, handler));
    });
    msiReleases.push(() => msi.controller.freeVectors(requester));
  } else {
    for (const [, line, handler] of sources) context.irq(line).connect(handler);
  }
  let enables = IRQ_CTRL_EVENTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN;
  if (features.pri) enables |= IRQ_CTRL_PRIQ_IRQEN;
  writeRegSync(regs, instance, REG.IRQ_CTRL, enables, REG.IRQ_CTRLACK);
}
