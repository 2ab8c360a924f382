/**
 * The SMMUv3 host driver (Linux drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c). Like Linux it learns what
 * the SMMU is from its ID registers, allocates its queues and Stream table in host memory, programs the
 * base registers and enables the SMMU with the CR0/CR0ACK handshake; from then on it edits STEs and CDs in
 * memory (hitlessly, `writeEntry`) and tells the SMMU through the Command queue. It never sees the device
 * model: only the 128 KiB register window (`MmioWindow`) and memory it allocated itself.
 *
 * Probe (Linux `arm_smmu_device_hw_probe` + `arm_smmu_device_reset`):
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
 *  7. IRQ_CTRL = 0 (+ IRQ_CTRLACK), the MSI address registers cleared (wired lines are used), handlers on
 *     the `eventq`, `priq` and `gerror` lines, IRQ_CTRL = GERROR | EVENTQ | PRIQ enables (+ ack);
 *  8. CR0 |= SMMUEN (+ ack).
 *
 * Masters (Linux `struct arm_smmu_master`): `probeDevice` makes sure the StreamID's STE exists (2-level
 * tables allocate the level-2 array on demand) and makes it abort, and enables the endpoint's PASID
 * capability when the SMMU has SubstreamIDs (Linux enables PASID at probe, before ATS). Which STE a master
 * gets follows from its RID domain and its PASIDs (Linux's rules, loosely):
 * - stage-1 domain at the RID → Config = S1 through the master's CD table (allocated on first use, CD 0
 *   = the domain's CD, S1DSS = SSID0 so traffic without a PASID uses CD 0);
 * - stage-2 domain at the RID → Config = S2 with the domain's VMID, VTCR fields and S2TTB. A stage-2 RID
 *   cannot coexist with PASIDs (its STE has no CD table): attaching it while PASIDs are attached, or a
 *   PASID while it is attached, is `EINVAL`;
 * - blocked / identity → Config = abort / bypass; but while PASIDs are attached the STE keeps the CD table
 *   with S1DSS = terminate / bypass for the traffic without a PASID (Linux `arm_smmu_attach_dev_ste`).
 * PASIDs take stage-1 domains only, in 1..2^min(SSIDSIZE, endpoint PASID width) − 1.
 *
 * ATS (Linux `arm_smmu_ats_supported` / `arm_smmu_enable_ats`): for an endpoint with the capability on an
 * SMMU with IDR0.ATS, while a paging domain is attached (or PASIDs are): STE.EATS = full, the ATC
 * invalidated and then ATS enabled at the endpoint; switching away disables ATS at the endpoint before
 * the STE drops EATS, and invalidates the ATC after. A change of domain with ATS on invalidates the ATC of
 * that RID/PASID; unmaps invalidate it in `iotlbSync` (see domain.ts). PRI is left to whoever wants page
 * requests (the endpoint's PRI enable); the driver drains the PRI queue and answers through PRI_RESP.
 *
 * Interrupts: the Event queue handler drains records from CONS to PROD, reports each through
 * `reportFault` (vendor code = event name) and acknowledges an overflow (OVACKFLG := OVFLG); the PRI
 * handler turns entries into `reportPageRequest` calls (a request from an unknown StreamID is denied); the
 * GERROR handler acknowledges active errors (a Command queue error found there is skipped as Linux does,
 * SFM_ERR disables the SMMU).
 *
 * Host-side nesting (Linux arm-smmu-v3-iommufd.c): `viommuAlloc` on a nest-parent stage-2 domain gives a
 * vSMMU (`vsmmu.ts`: vDEVICEs, guest commands, event forwarding) that allocates nested domains from vSTEs
 * (`nested-domain.ts`). Attaching one at a RID installs Config = nested (or the guest's abort / stage-2
 * only bypass), with ATS when the vSTE asks for it (EATS = 0b01) and the endpoint has it; it needs the
 * device's vDEVICE on that vSMMU when the vSTE translates (`ENOENT` otherwise: guest commands and events
 * name the device by vSID) and no PASID attached (`EBUSY`), and no PASID can be attached meanwhile
 * (`EINVAL`: the CD table is the guest's). The nest parent records nested masters, so its unmaps
 * invalidate their whole ATC (it caches IOVA → PA, and the unmapped IPAs say nothing about IOVAs). Events
 * of a master on a nested domain that are neither stalls nor stage-2 faults go to its vSMMU's vEVENTQ
 * instead of the host's fault path.
 *
 * Stalls (Linux `stall_enabled`): a master stalls when the SMMU forces stalls, or supports them and
 * firmware marks the device `dma-can-stall` (`IommuDeviceRef.canStall`; PCIe devices never are). Its CDs
 * get CD.S, its STEs S1STALLD = 0 (nested: the guest's) and S2S; every other master gets S1STALLD = 1 where
 * stalls exist, on a nested STE too whatever the guest's vSTE says (nested-domain.ts). A stall
 * record becomes a one-page request to the iommu core with the STAG as group index, and its response
 * becomes CMD_RESUME (success: retry, else abort); a stall of an unknown StreamID is aborted at once.
 *
 * Interrupts: MSIs through the platform's MSI controller when the SMMU has IDR0.MSI, wired lines
 * otherwise; CMD_SYNC completion is polled on CONS either way. Not here: SVA.
 */
import {
  type AccessCounter,
  type DriverContext,
  field32,
  type HwInfo,
  type IFrameAllocator,
  type IommuDeviceRef,
  type IommuDomain,
  type IommuDriver,
  type IommuFault,
  IommufdError,
  type ITracer,
  type MemoryBus,
  MmioWindow,
  NO_PASID,
  type PageResponse,
  type PagingDomainFlags,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  POLL_LIMIT,
  pollTimeout,
  type ReservedRegion,
  StaticDomain,
  toHex,
  type ViommuEventSink,
} from '@iommukit/core';
import {
  ATC_INV_SIZE_ALL,
  encodeAtcInv,
  encodeCfgiAll,
  encodePriResp,
  encodeResume,
  encodeTlbiEl2All,
  encodeTlbiNsnhAll,
  PRI_RESP,
  RESUME_ACTION,
} from '../hw/commands.js';
import { decodeEvent, EVENT_FAULT_KIND, EVENT_WORDS, eventName } from '../hw/events.js';
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
import type { Smmuv3Options } from '../hw/options.js';
import { decodePriEntry, isStopMarker, PRI_ENTRY_WORDS } from '../hw/priq.js';
import {
  EVENTQ_ENTRY_BYTES,
  PRIQ_ENTRY_BYTES,
  queueAcknowledgeOverflow,
  queueCapacity,
  queueEmpty,
  queueIncrement,
  queueIndex,
  queueOverflowPending,
} from '../hw/queue-index.js';
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
  GERROR_CMDQ_ERR,
  GERROR_SFM_ERR,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  Q_BASE_HI_ALLOC,
  REG,
} from '../hw/regs.js';
import { SHAREABILITY, STE_S1DSS } from '../hw/ste.js';
import { CdTable } from './cd-table.js';
import { CMDQ_MAX_LOG2, Smmuv3Cmdq } from './cmdq.js';
import { type DomainAttachment, Smmuv3Domain, type Smmuv3DomainHost } from './domain.js';
import { asidAllocator, type IdAllocator, vmidAllocator } from './ids.js';
import { Smmuv3NestedDomain } from './nested-domain.js';
import { abortSte, type BuilderCaps, builderCaps, bypassSte, cdTableSte } from './ste-builders.js';
import { StreamTable } from './stream-table.js';
import { allocSizeAligned, freeBlock, type TableBlock } from './table-memory.js';
import { SMMUV3_VIOMMU_TYPE, Smmuv3Vsmmu } from './vsmmu.js';

/** The SW MSI window Linux's SMMUv3 driver reserves (MSI_IOVA_BASE, MSI_IOVA_LENGTH). */
export const SMMUV3_SW_MSI_BASE = 0x800_0000n;
export const SMMUV3_SW_MSI_LENGTH = 0x10_0000n;
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

/** What the driver knows about one endpoint (Linux `struct arm_smmu_master`). */
export interface Smmuv3Master {
  readonly ref: IommuDeviceRef;
  readonly streamId: number;
  /** SubstreamID bits of its CD table: min(IDR1.SSIDSIZE, the endpoint's PASID width). */
  readonly ssidBits: number;
  /**
   * Its faults stall (Linux `stall_enabled`): the SMMU forces stalls, or supports them and firmware says
   * the device can stall. Its CDs get CD.S, its STEs S1STALLD = 0 and S2S.
   */
  readonly stall: boolean;
  rid: IommuDomain;
  readonly pasids: Map<number, Smmuv3Domain>;
  cdTable: CdTable | undefined;
  /** ATS is enabled at the endpoint (and STE.EATS = full). */
  ats: boolean;
  /** The driver enabled the endpoint's PASID capability. */
  pasidEnabled: boolean;
}

/** A queue in the driver's memory. */
interface QueueMemory extends TableBlock {
  readonly log2: number;
  /** The driver's CONS of an Event or PRI queue, with OVACKFLG. */
  cons: number;
}

/** What the interrupt handlers saw. */
export interface Smmuv3DriverStats {
  events: number;
  eventOverflows: number;
  pageRequests: number;
  priOverflows: number;
  globalErrors: number;
  /** Events sent to a vSMMU's vEVENTQ instead of the host's fault path. */
  forwardedEvents: number;
  /** Stall events turned into page requests. */
  stalls: number;
}

export class Smmuv3Driver implements IommuDriver {
  readonly instance: string;
  /** No table, only an STE Config: abort / bypass. */
  readonly blockedDomain = new StaticDomain(0, 'blocked');
  readonly identityDomain = new StaticDomain(1, 'identity');
  readonly stats: Smmuv3DriverStats = {
    events: 0,
    eventOverflows: 0,
    pageRequests: 0,
    priOverflows: 0,
    globalErrors: 0,
    forwardedEvents: 0,
    stalls: 0,
  };
  protected readonly context: DriverContext<Smmuv3Options>;
  protected readonly regs: MmioWindow;
  protected readonly bus: MemoryBus;
  protected readonly memory: IFrameAllocator;
  /** Every bus access the driver makes: its MMIO window and its own memory. */
  readonly counter: AccessCounter;
  protected readonly tracer: ITracer;
  protected readonly masters = new Map<number, Smmuv3Master>();
  /** Live paging and nested domains: attach accepts only these exact objects. */
  protected readonly domains = new Set<Smmuv3Domain>();
  protected readonly nestedDomains = new Set<Smmuv3NestedDomain>();
  protected readonly vsmmus = new Set<Smmuv3Vsmmu>();
  private probed: ProbedState | undefined;
  /** Undoes the MSI setup: handlers, then the vectors. */
  private readonly msiReleases: (() => void)[] = [];
  private nextDomainId = 2;

  constructor(context: DriverContext<Smmuv3Options>) {
    this.context = context;
    this.instance = context.instance;
    this.bus = context.bus;
    this.memory = context.memory;
    this.tracer = context.tracer;
    this.counter = context.bus.counter(`driver:${context.instance}`);
    this.regs = new MmioWindow(context.bus, context.base, this.counter);
  }

  /** What the ID registers said (after `probe`). */
  get features(): Smmuv3Features {
    return this.state().features;
  }

  /** The ID register values read at probe. */
  get idr(): IdrValues {
    return this.state().idr;
  }

  get cmdq(): Smmuv3Cmdq {
    return this.state().cmdq;
  }

  get streamTable(): StreamTable {
    return this.state().streamTable;
  }

  get asids(): IdAllocator {
    return this.state().asids;
  }

  get vmids(): IdAllocator {
    return this.state().vmids;
  }

  /** The master state of a probed device (for tests and extensions). */
  master(device: IommuDeviceRef): Smmuv3Master {
    const master = this.masters.get(device.streamId);
    if (!master || master.ref !== device) {
      throw new IommufdError('ENODEV', `${device.name} was not probed by ${this.instance}`, {
        device: device.name,
      });
    }
    return master;
  }

  probe(): void {
    if (this.probed) throw new IommufdError('EBUSY', `${this.instance} is already probed`);
    const idr = this.readIdrs();
    const features = this.checkIdrs(idr);
    const hyp = idrFixedFieldsFromIdr0(idr.IDR0).hyp;
    const host = { instance: this.instance, bus: this.bus, memory: this.memory, counter: this.counter };

    const cmdqLog2 = Math.min(features.cmdqLog2, CMDQ_MAX_LOG2);
    const cmdqMem = this.allocQueue(cmdqLog2, 16);
    const cmdq = new Smmuv3Cmdq({
      ...host,
      regs: this.regs,
      base: cmdqMem.base,
      log2: cmdqLog2,
      tracer: this.tracer,
      // Linux waits with WFE only when IDR0.SEV says the SMMU sends wake-up events (ARM_SMMU_FEAT_SEV).
      ...((idr.IDR0 & IDR0_SEV) !== 0 ? { wfeEvents: this.context.irq(WFE_EVENT_LINE) } : {}),
    });
    const eventq = this.allocQueue(Math.min(features.evtqLog2, EVENTQ_MAX_LOG2), EVENTQ_ENTRY_BYTES);
    const priq = features.pri
      ? this.allocQueue(Math.min(features.priqLog2, PRIQ_MAX_LOG2), PRIQ_ENTRY_BYTES)
      : undefined;
    const streamTable = new StreamTable(
      { ...host, cmdq, tracer: this.tracer },
      features.sidBits,
      features.twoLevelStreamTable,
    );
    const caps = builderCaps(features, { attrTypesOverride: (idr.IDR1 & IDR1_ATTR_TYPES_OVR) !== 0 });
    const asids = asidAllocator(features);
    const vmids = vmidAllocator(features);
    this.probed = {
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
      domainHost: {
        ...host,
        tracer: this.tracer,
        features,
        builderCaps: caps,
        cmdq,
        asids,
        vmids,
        release: (domain) => this.domains.delete(domain),
      },
    };
    this.reset();
    this.log(
      'probe',
      `probed: ${features.s1 ? 'S1' : ''}${features.s1 && features.s2 ? '+' : ''}${features.s2 ? 'S2' : ''}, ${features.sidBits}-bit StreamIDs (${streamTable.format} stream table at ${toHex(streamTable.base)}), ${features.ssidBits}-bit SubstreamIDs, ${cmdq.capacity}-entry CMDQ, ${queueCapacity(eventq.log2)}-entry EVENTQ${priq ? `, ${queueCapacity(priq.log2)}-entry PRIQ` : ''}`,
    );
  }

  probeDevice(device: IommuDeviceRef): void {
    const p = this.state();
    const sid = device.streamId;
    if (!p.streamTable.covers(sid)) {
      throw new IommufdError(
        'EINVAL',
        `${device.name}: StreamID ${toHex(sid)} is beyond ${this.instance}'s ${p.streamTable.log2Size}-bit stream table`,
        { device: device.name },
      );
    }
    const existing = this.masters.get(sid);
    if (existing) {
      if (existing.ref === device) return;
      throw new IommufdError(
        'EINVAL',
        `${device.name}: StreamID ${toHex(sid)} is already used by ${existing.ref.name}`,
        { device: device.name },
      );
    }
    p.streamTable.ensure(sid);
    const ssidBits = p.features.s1 ? Math.min(p.features.ssidBits, device.pasidBits) : 0;
    const stallModel = p.features.stallModel;
    const master: Smmuv3Master = {
      ref: device,
      streamId: sid,
      ssidBits,
      stall: stallModel === 'force-stall' || (stallModel === 'stall' && device.canStall === true),
      rid: this.blockedDomain,
      pasids: new Map(),
      cdTable: undefined,
      ats: false,
      pasidEnabled: false,
    };
    this.masters.set(sid, master);
    p.streamTable.writeSte(sid, abortSte());
    if (ssidBits > 0 && device.pci.hasPasid) {
      device.pci.setPasidEnabled(true);
      master.pasidEnabled = true;
    }
    this.log('device.probe', `${device.name}: StreamID ${toHex(sid)}, ${ssidBits} SubstreamID bits, blocked`);
  }

  releaseDevice(device: IommuDeviceRef): void {
    const master = this.masters.get(device.streamId);
    if (!master || master.ref !== device) return;
    for (const pasid of [...master.pasids.keys()]) this.removeDevPasid(device, pasid);
    this.updateRid(master, this.blockedDomain);
    master.cdTable?.free();
    master.cdTable = undefined;
    if (master.pasidEnabled) device.pci.setPasidEnabled(false);
    this.masters.delete(device.streamId);
    this.log('device.release', `${device.name}: released`);
  }

  domainAllocPaging(flags: PagingDomainFlags = {}): IommuDomain {
    const p = this.state();
    const f = p.features;
    if (flags.nestParent && !(f.s1 && f.s2))
      throw new IommufdError('EOPNOTSUPP', `${this.instance} cannot nest: it needs both stages`);
    if (flags.nestParent && flags.pasid)
      throw new IommufdError('EOPNOTSUPP', `${this.instance}: a nest parent cannot be attached at a PASID`);
    if (flags.pasid && (!f.s1 || f.ssidBits === 0))
      throw new IommufdError('EOPNOTSUPP', `${this.instance} has no stage-1 SubstreamIDs for PASIDs`);
    if (flags.dirtyTracking && f.httu !== 'access-dirty') {
      throw new IommufdError(
        'EOPNOTSUPP',
        `${this.instance} has no hardware dirty state updates (IDR0.HTTU != access+dirty)`,
      );
    }
    const domain = new Smmuv3Domain(this.nextDomainId++, flags, p.domainHost);
    this.domains.add(domain);
    this.log(
      'domain.alloc',
      `domain ${domain.id}: stage ${domain.stage}, ${domain.tag}, ${domain.format.name} root ${toHex(domain.table.rootPa)}`,
    );
    return domain;
  }

  attachDev(domain: IommuDomain, device: IommuDeviceRef): void {
    const master = this.master(device);
    this.checkDomain(domain, device);
    if (domain === master.rid) return;
    if (domain instanceof Smmuv3NestedDomain) this.checkNestedAttach(domain, master);
    if (domain instanceof Smmuv3Domain && domain.stage === 2 && master.pasids.size > 0) {
      throw new IommufdError(
        'EINVAL',
        `${device.name}: a stage-2 domain cannot be attached at the RID while PASIDs are attached`,
        { device: device.name, domain: domain.id },
      );
    }
    if (domain instanceof Smmuv3Domain && domain.stage === 1) this.ensureCdTable(master);
    this.updateRid(master, domain);
  }

  setDevPasid(domain: IommuDomain, device: IommuDeviceRef, pasid: number): void {
    const master = this.master(device);
    this.checkDomain(domain, device);
    if (!(domain instanceof Smmuv3Domain) || domain.stage !== 1) {
      throw new IommufdError(
        'EINVAL',
        `${device.name}: only a stage-1 paging domain can be attached at a PASID`,
        {
          device: device.name,
          domain: domain.id,
        },
      );
    }
    if (master.ssidBits === 0 || !Number.isInteger(pasid) || pasid < 1 || pasid >= 2 ** master.ssidBits) {
      throw new IommufdError(
        'EINVAL',
        `${device.name}: PASID ${pasid} is outside 1..${2 ** master.ssidBits - 1}`,
        { device: device.name, pasid },
      );
    }
    if (
      (master.rid instanceof Smmuv3Domain && master.rid.stage === 2) ||
      master.rid instanceof Smmuv3NestedDomain
    ) {
      throw new IommufdError(
        'EINVAL',
        `${device.name}: no PASID can be attached while a ${master.rid.type === 'nested' ? 'nested' : 'stage-2'} domain is at the RID`,
        { device: device.name, pasid },
      );
    }
    const old = master.pasids.get(pasid);
    if (old === domain) return;
    const cdTable = this.ensureCdTable(master);
    cdTable.writeCd(pasid, domain.cd(master.stall));
    old?.detach(master.streamId, pasid);
    master.pasids.set(pasid, domain);
    domain.attach(this.attachment(master, pasid));
    // The first PASID turns a blocked/identity STE into a CD table STE (and may enable ATS).
    this.updateRid(master, master.rid);
    if (old && master.ats) this.atcInvMaster(master, pasid);
    this.log('pasid.attach', `${device.name} PASID ${pasid} → domain ${domain.id} (${domain.tag})`);
  }

  removeDevPasid(device: IommuDeviceRef, pasid: number): void {
    const master = this.master(device);
    const old = master.pasids.get(pasid);
    if (!old) return;
    master.cdTable?.clearCd(pasid);
    old.detach(master.streamId, pasid);
    master.pasids.delete(pasid);
    if (master.ats) this.atcInvMaster(master, pasid);
    // The last PASID gone: a blocked/identity RID goes back to an abort/bypass STE.
    this.updateRid(master, master.rid);
    this.log('pasid.detach', `${device.name} PASID ${pasid} blocked`);
  }

  viommuAlloc(parent: IommuDomain, type: string, events: ViommuEventSink): Smmuv3Vsmmu {
    const p = this.state();
    if (type !== SMMUV3_VIOMMU_TYPE)
      throw new IommufdError('EOPNOTSUPP', `${this.instance} has no "${type}" vIOMMU`, { type });
    if (!(parent instanceof Smmuv3Domain) || !this.domains.has(parent) || !parent.nestParent) {
      throw new IommufdError('EINVAL', `domain ${parent.id} is not a nest parent of ${this.instance}`, {
        domain: parent.id,
      });
    }
    const vsmmu = new Smmuv3Vsmmu(
      parent,
      {
        instance: this.instance,
        features: p.features,
        idr: idrFixedFieldsFromIdr0(p.idr.IDR0),
        cmdq: p.cmdq,
        tracer: this.tracer,
        allocDomainId: () => this.nextDomainId++,
        adoptNested: (d) => this.nestedDomains.add(d),
        releaseNested: (d) => this.nestedDomains.delete(d),
        forget: (v) => this.vsmmus.delete(v),
      },
      events,
    );
    this.vsmmus.add(vsmmu);
    this.log('viommu.alloc', `vSMMU on domain ${parent.id}, VMID ${vsmmu.vmid}`);
    return vsmmu;
  }

  hwInfo(device: IommuDeviceRef): HwInfo {
    const p = this.state();
    // Linux iommu_hw_info_arm_smmuv3 (without its reserved flags): the ID registers as they read now.
    const data: Record<string, number> = {};
    for (let i = 0; i < 6; i++) data[`idr${i}`] = this.regs.read32(REG.IDR0 + 4 * i);
    data.iidr = this.regs.read32(REG.IIDR);
    data.aidr = this.regs.read32(REG.AIDR);
    return {
      type: 'arm-smmuv3',
      data,
      maxPasidLog2: p.features.s1 ? Math.min(p.features.ssidBits, device.pasidBits) : 0,
      capabilities: {
        dirtyTracking: p.features.httu === 'access-dirty',
        pasidExec: false,
        pasidPriv: false,
      },
    };
  }

  reservedRegions(_device: IommuDeviceRef): readonly ReservedRegion[] {
    return [{ start: SMMUV3_SW_MSI_BASE, length: SMMUV3_SW_MSI_LENGTH, type: 'sw-msi' }];
  }

  pageResponse(device: IommuDeviceRef, response: PageResponse): void {
    const master = this.master(device);
    if (master.stall) {
      // Linux arm_smmu_page_response: a stall's "group" is its STAG; success retries, anything else aborts.
      const retry = response.code === 'success';
      this.cmdq.issue(
        encodeResume({
          streamId: master.streamId,
          stag: response.groupIndex,
          action: retry ? RESUME_ACTION.RETRY : RESUME_ACTION.TERMINATE,
          abort: !retry,
        }),
      );
      this.log(
        'stall.resume',
        `${device.name}: CMD_RESUME STAG ${response.groupIndex} ${retry ? 'retry' : 'abort'}`,
      );
      return;
    }
    if (!this.features.pri)
      throw new IommufdError('EOPNOTSUPP', `${this.instance} has no PRI`, { device: device.name });
    const resp =
      response.code === 'success'
        ? PRI_RESP.SUCCESS
        : response.code === 'invalid'
          ? PRI_RESP.INVALID_REQUEST
          : PRI_RESP.RESPONSE_FAILURE;
    const ssv = response.pasid !== NO_PASID;
    this.cmdq.issue(
      encodePriResp({
        streamId: master.streamId,
        ssv,
        substreamId: ssv ? response.pasid : 0,
        prgIndex: response.groupIndex,
        resp,
      }),
    );
    this.log('pri.response', `${device.name}: PRI_RESP ${response.code} group ${response.groupIndex}`);
  }

  shutdown(): void {
    const p = this.probed;
    if (!p) return;
    // Linux arm_smmu_device_shutdown: CR0 = 0. GBPA.ABORT stays, so traffic aborts from now on.
    this.writeRegSync(REG.CR0, 0, REG.CR0ACK);
    this.writeRegSync(REG.IRQ_CTRL, 0, REG.IRQ_CTRLACK);
    for (const line of ['eventq', 'priq', 'gerror']) this.context.irq(line).disconnect();
    for (const release of this.msiReleases.splice(0)) release();
    p.cmdq.disable();
    for (const master of this.masters.values()) master.cdTable?.free();
    this.masters.clear();
    this.vsmmus.clear();
    this.nestedDomains.clear();
    p.streamTable.free();
    for (const q of [p.cmdqMem, p.eventq, p.priq]) if (q) freeBlock(this.memory, q);
    this.probed = undefined;
    this.log('shutdown', 'SMMU disabled, queues and stream table released');
  }

  // --- STEs and attachments ----------------------------------------------------------------------------

  /** Whether `domain` may be installed on this SMMU; `EINVAL` for a domain of another SMMU or stage. */
  protected checkDomain(domain: IommuDomain, device: IommuDeviceRef): void {
    if (domain === this.blockedDomain || domain === this.identityDomain) return;
    if (domain instanceof Smmuv3NestedDomain && this.nestedDomains.has(domain)) return;
    const f = this.features;
    if (
      !(domain instanceof Smmuv3Domain) ||
      !this.domains.has(domain) ||
      (domain.stage === 1 && !f.s1) ||
      (domain.stage === 2 && !f.s2)
    ) {
      throw new IommufdError(
        'EINVAL',
        `domain ${domain.id} (${domain.type}) cannot be attached on ${this.instance}`,
        { device: device.name, domain: domain.id },
      );
    }
  }

  /** Linux `arm_smmu_attach_dev_nested` + `arm_smmu_attach_prepare_vmaster` (see the module comment). */
  private checkNestedAttach(domain: Smmuv3NestedDomain, master: Smmuv3Master): void {
    const name = master.ref.name;
    if (master.pasids.size > 0) {
      throw new IommufdError(
        'EBUSY',
        `${name}: PASIDs are attached, so the CD table is not the guest's to own`,
        {
          device: name,
          domain: domain.id,
        },
      );
    }
    if (domain.guestConfig === 's1' && domain.vsid(master.ref) === undefined) {
      throw new IommufdError(
        'ENOENT',
        `${name}: a translating nested domain needs the device's vDEVICE on its vIOMMU (its vSID)`,
        { device: name, domain: domain.id },
      );
    }
  }

  /** Whether the master should have ATS on with this RID domain (and its PASIDs). */
  protected atsWanted(master: Smmuv3Master, rid: IommuDomain): boolean {
    if (!this.features.ats || !master.ref.pci.hasAts) return false;
    // Nested: the guest decides through vSTE.EATS, since it sends the ATC invalidations.
    if (rid instanceof Smmuv3NestedDomain) return rid.enableAts;
    return rid instanceof Smmuv3Domain || master.pasids.size > 0;
  }

  /** The STE for a master with `rid` at its RID, its current PASIDs and ATS as given. */
  protected steFor(master: Smmuv3Master, rid: IommuDomain, ats: boolean): Uint32Array {
    const caps = this.state().caps;
    if (rid instanceof Smmuv3NestedDomain) return rid.ste(ats, master.stall);
    if (rid instanceof Smmuv3Domain && rid.stage === 2) return rid.ste(ats, master.stall);
    const s1 = rid instanceof Smmuv3Domain;
    if (s1 || master.pasids.size > 0) {
      const table = master.cdTable!;
      const s1Dss = s1
        ? STE_S1DSS.SSID0
        : rid === this.identityDomain
          ? STE_S1DSS.BYPASS
          : STE_S1DSS.TERMINATE;
      return cdTableSte(
        { cdTable: table.base, s1Fmt: table.s1Fmt, s1CdMax: table.s1CdMax, s1Dss, ats, stall: master.stall },
        caps,
      );
    }
    return rid === this.identityDomain ? bypassSte(caps) : abortSte();
  }

  /**
   * Installs `rid` at the master's RID (or refreshes the STE for a PASID change): CD 0, the STE, the
   * domains' attachment records and the ATS state, in Linux's order (see the module comment).
   */
  protected updateRid(master: Smmuv3Master, rid: IommuDomain): void {
    const p = this.state();
    const old = master.rid;
    const ats = this.atsWanted(master, rid);
    const turningOff = master.ats && !ats;
    if (turningOff) {
      master.ref.pci.setAtsEnabled(false);
      master.ats = false;
    }
    if (rid instanceof Smmuv3Domain && rid.stage === 1) master.cdTable!.writeCd(0, rid.cd(master.stall));
    p.streamTable.writeSte(master.streamId, this.steFor(master, rid, ats));
    if (old !== rid) {
      this.recordRidDetach(master, old);
      master.rid = rid;
      this.recordRidAttach(master, rid);
      if (old instanceof Smmuv3Domain && old.stage === 1 && !(rid instanceof Smmuv3Domain && rid.stage === 1))
        master.cdTable?.clearCd(0);
    }
    if (ats && !master.ats) {
      // Linux arm_smmu_enable_ats: flush the ATC, then enable ATS at the endpoint.
      this.atcInvMaster(master, NO_PASID);
      master.ref.pci.setAtsEnabled(true);
      master.ats = true;
    } else if ((ats && old !== rid) || turningOff) {
      this.atcInvMaster(master, NO_PASID);
    }
    if (old !== rid) {
      this.log('attach', `${master.ref.name} RID → ${ridLabel(rid)}${master.ats ? ', ATS on' : ''}`);
    }
  }

  /** Records that the master's RID now uses `rid` (a nested domain also registers with its parent). */
  private recordRidAttach(master: Smmuv3Master, rid: IommuDomain): void {
    if (rid instanceof Smmuv3Domain) rid.attach(this.attachment(master, NO_PASID));
    if (rid instanceof Smmuv3NestedDomain) {
      rid.attached.add(master.streamId);
      rid.parent.attach(this.attachment(master, NO_PASID, true));
    }
  }

  private recordRidDetach(master: Smmuv3Master, old: IommuDomain): void {
    if (old instanceof Smmuv3Domain) old.detach(master.streamId, NO_PASID);
    if (old instanceof Smmuv3NestedDomain) {
      old.attached.delete(master.streamId);
      old.parent.detach(master.streamId, NO_PASID);
    }
  }

  private attachment(master: Smmuv3Master, pasid: number, nested = false): DomainAttachment {
    return {
      streamId: master.streamId,
      pasid,
      nested,
      get ats() {
        return master.ats;
      },
    };
  }

  private ensureCdTable(master: Smmuv3Master): CdTable {
    if (!master.cdTable) {
      const p = this.state();
      master.cdTable = new CdTable(
        {
          instance: this.instance,
          bus: this.bus,
          memory: this.memory,
          counter: this.counter,
          cmdq: p.cmdq,
          tracer: this.tracer,
        },
        master.streamId,
        master.ssidBits,
        p.features.twoLevelCdTable,
      );
    }
    return master.cdTable;
  }

  /** CMD_ATC_INV of everything at the RID (and, per PCIe, its PASIDs) or one PASID, + CMD_SYNC. */
  private atcInvMaster(master: Smmuv3Master, pasid: number): void {
    const ssv = pasid !== NO_PASID;
    this.cmdq.issue(
      encodeAtcInv({
        streamId: master.streamId,
        ssv,
        substreamId: ssv ? pasid : 0,
        size: ATC_INV_SIZE_ALL,
        addressPage: 0,
      }),
    );
  }

  // --- probe ---------------------------------------------------------------------------------------------

  private readIdrs(): IdrValues {
    const r = (offset: number) => this.regs.read32(offset);
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
  private checkIdrs(idr: IdrValues): Smmuv3Features {
    const refuse = (why: string): never => {
      throw new IommufdError('ENODEV', `${this.instance}: ${why}`, { instance: this.instance });
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

  private allocQueue(log2: number, entryBytes: number): QueueMemory {
    const block = allocSizeAligned(this.memory, Math.max(32, queueCapacity(log2) * entryBytes));
    return { ...block, log2, cons: 0 };
  }

  /** Linux `arm_smmu_device_reset` (see the module comment for the sequence). */
  private reset(): void {
    const p = this.state();
    const f = p.features;
    this.updateGbpa(GBPA_ABORT, 0);
    this.writeRegSync(REG.CR0, 0, REG.CR0ACK);
    this.regs.write32(REG.CR1, CR1_VALUE);
    this.regs.write32(REG.CR2, CR2_RECINVSID | (p.idr.IDR0 & IDR0_BTM ? CR2_PTM : 0));
    this.regs.write64(REG.STRTAB_BASE, p.streamTable.baseRegister);
    this.regs.write32(REG.STRTAB_BASE_CFG, p.streamTable.baseCfg);
    p.cmdq.program();
    let enables = CR0_CMDQEN;
    this.writeRegSync(REG.CR0, enables, REG.CR0ACK);
    p.cmdq.issue(encodeCfgiAll());
    if (p.hyp) p.cmdq.issue(encodeTlbiEl2All());
    p.cmdq.issue(encodeTlbiNsnhAll());

    this.programOutputQueue(p.eventq, REG.EVENTQ_BASE, REG.EVENTQ_PROD, REG.EVENTQ_CONS);
    enables |= CR0_EVENTQEN;
    this.writeRegSync(REG.CR0, enables, REG.CR0ACK);
    if (p.priq) {
      this.programOutputQueue(p.priq, REG.PRIQ_BASE, REG.PRIQ_PROD, REG.PRIQ_CONS);
      enables |= CR0_PRIQEN;
      this.writeRegSync(REG.CR0, enables, REG.CR0ACK);
    }
    if (f.ats) {
      enables |= CR0_ATSCHK;
      this.writeRegSync(REG.CR0, enables, REG.CR0ACK);
    }
    this.setupIrqs();
    enables |= CR0_SMMUEN;
    this.writeRegSync(REG.CR0, enables, REG.CR0ACK);
  }

  private programOutputQueue(q: QueueMemory, base: number, prod: number, cons: number): void {
    q.cons = 0;
    // WA (write-allocate) as Linux's Q_BASE_RWA.
    this.regs.write64(base, (BigInt(Q_BASE_HI_ALLOC) << 32n) | BigInt(q.base) | BigInt(q.log2));
    this.regs.write32(prod, 0);
    this.regs.write32(cons, 0);
  }

  /**
   * Linux `arm_smmu_setup_irqs`: MSIs when the SMMU implements them and the platform has an MSI
   * controller (`arm_smmu_setup_msis`), wired lines otherwise (`arm_smmu_setup_unique_irqs`).
   */
  private setupIrqs(): void {
    const p = this.state();
    this.writeRegSync(REG.IRQ_CTRL, 0, REG.IRQ_CTRLACK);
    const sources: [cfg0: number, line: string, handler: () => void][] = [
      [REG.EVENTQ_IRQ_CFG0, 'eventq', () => this.handleEventq()],
      [REG.GERROR_IRQ_CFG0, 'gerror', () => this.handleGerror()],
      ...(p.features.pri ? [[REG.PRIQ_IRQ_CFG0, 'priq', () => this.handlePriq()] as const] : []),
    ] as [number, string, () => void][];
    // Clear the doorbells first: only what this setup programs may signal.
    if (p.features.msi) for (const [cfg0] of sources) this.regs.write64(cfg0, 0n);
    const msi = p.features.msi ? this.context.msi : undefined;
    if (msi) {
      // MSI indexes as Linux numbers them: EVTQ 0, GERROR 1, PRIQ 2.
      const requester = { name: this.instance, deviceId: msi.deviceId };
      const vectors = msi.controller.allocateVectors(requester, sources.length);
      sources.forEach(([cfg0, , handler], i) => {
        const { message, intid } = vectors[i]!;
        // arm_smmu_write_msi_msg: doorbell (bits [55:2]), data, Device-nGnRE memory attributes.
        this.regs.write64(cfg0, message.address & IRQ_CFG0_ADDR_MASK);
        this.regs.write32(cfg0 + 8, message.data);
        this.regs.write32(cfg0 + 12, MEMATTR_DEVICE_NGNRE);
        this.msiReleases.push(msi.controller.requestIrq(intid, handler));
      });
      this.msiReleases.push(() => msi.controller.freeVectors(requester));
    } else {
      for (const [, line, handler] of sources) this.context.irq(line).connect(handler);
    }
    let enables = IRQ_CTRL_EVENTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN;
    if (p.features.pri) enables |= IRQ_CTRL_PRIQ_IRQEN;
    this.writeRegSync(REG.IRQ_CTRL, enables, REG.IRQ_CTRLACK);
  }

  /** Writes a register and polls its acknowledgement (Linux `arm_smmu_write_reg_sync`: -ETIMEDOUT). */
  private writeRegSync(offset: number, value: number, ack: number): void {
    this.regs.write32(offset, value);
    for (let i = 0; i < POLL_LIMIT; i++) if (this.regs.read32(ack) === value >>> 0) return;
    throw pollTimeout(this.instance, `register ${toHex(ack)} did not acknowledge ${toHex(value)}`);
  }

  /** GBPA update with the Update handshake (Linux `arm_smmu_update_gbpa`: -ETIMEDOUT). */
  private updateGbpa(set: number, clear: number): void {
    const idle = (): number => {
      for (let i = 0; i < POLL_LIMIT; i++) {
        const value = this.regs.read32(REG.GBPA);
        if ((value & GBPA_UPDATE) === 0) return value;
      }
      throw pollTimeout(this.instance, 'GBPA not responding to update');
    };
    const value = (idle() & ~clear) | set;
    this.regs.write32(REG.GBPA, value | GBPA_UPDATE);
    idle();
  }

  // --- interrupt handlers ---------------------------------------------------------------------------------

  /** Event queue interrupt (Linux `arm_smmu_evtq_thread`): drain, report, acknowledge overflow. */
  private handleEventq(): void {
    const q = this.probed?.eventq;
    if (!q) return;
    const words = new Uint32Array(EVENT_WORDS);
    let prod = this.regs.read32(REG.EVENTQ_PROD);
    // Each pass drains at most one queue's worth; passes are bounded in case the SMMU never stops producing.
    for (let passes = 0; ; passes++) {
      if (passes === POLL_LIMIT) throw pollTimeout(this.instance, 'the Event queue never drained');
      while (!queueEmpty(prod, q.cons, q.log2)) {
        const at = q.base + queueIndex(q.cons, q.log2) * EVENTQ_ENTRY_BYTES;
        this.bus.readWords(at, words, EVENT_WORDS, this.counter);
        q.cons = queueIncrement(q.cons, q.log2);
        this.regs.write32(REG.EVENTQ_CONS, q.cons);
        this.handleEvent(words);
      }
      prod = this.regs.read32(REG.EVENTQ_PROD);
      if (queueEmpty(prod, q.cons, q.log2)) break;
    }
    if (queueOverflowPending(prod, q.cons)) {
      this.stats.eventOverflows++;
      q.cons = queueAcknowledgeOverflow(q.cons, prod);
      this.regs.write32(REG.EVENTQ_CONS, q.cons);
      this.log('eventq.overflow', 'event queue overflow: events were lost');
    }
  }

  private handleEvent(words: Uint32Array): void {
    const record = decodeEvent(words);
    const name = eventName(record.id);
    const master = this.masters.get(record.streamId);
    // Linux arm_smmu_handle_event: a stall goes to the host's page-request path, which resumes it (no
    // CMD_RESUME reaches the SMMU from a guest); a nested master's other non-stage-2 events are the guest's.
    if (
      master?.rid instanceof Smmuv3NestedDomain &&
      record.stall !== true &&
      record.s2 !== true &&
      master.rid.forwardEvent(master.ref, words)
    ) {
      this.stats.forwardedEvents++;
      this.log('event.forward', `${name ?? toHex(record.id)} of ${master.ref.name} → vEVENTQ`);
      return;
    }
    const ssid =
      record.ssv === true || name === 'C_BAD_SUBSTREAMID' ? (record.substreamId ?? NO_PASID) : NO_PASID;
    const access =
      (record.rnw === false ? PERM_WRITE : PERM_READ) |
      (record.pnu === true ? PERM_PRIV : 0) |
      (record.ind === true ? PERM_EXEC : 0);
    const iova =
      record.inputAddrPage !== undefined
        ? BigInt(record.inputAddrPage) * 4096n + BigInt(record.inputAddrOffset ?? 0)
        : 0n;
    if (record.stall === true) {
      this.handleStall(record.streamId, record.stag ?? 0, master, { pasid: ssid, iova, access });
      return;
    }
    const fault: IommuFault = {
      kind: name ? EVENT_FAULT_KIND[name] : 'bad-config',
      vendorCode: name ?? `EVENT_${toHex(record.id)}`,
      ...(record.s2 !== undefined ? { stage: record.s2 ? 2 : 1 } : {}),
      streamId: record.streamId,
      pasid: ssid,
      iova,
      access,
      recorded: true,
    };
    this.stats.events++;
    this.context.reportFault(fault, master?.ref);
  }

  /**
   * A stall record (Linux: `arm_smmu_handle_event` → I/O page fault): a one-page request whose group index
   * is the STAG, answered through `pageResponse` with CMD_RESUME. A stall of an unknown StreamID is
   * terminated at once, as nobody can resolve it.
   */
  private handleStall(
    streamId: number,
    stag: number,
    master: Smmuv3Master | undefined,
    request: { pasid: number; iova: bigint; access: number },
  ): void {
    this.stats.stalls++;
    if (!master) {
      this.cmdq.issue(encodeResume({ streamId, stag, action: RESUME_ACTION.TERMINATE, abort: true }));
      return;
    }
    if (!master.stall) {
      // A stall this driver never enabled (e.g. software behind it set CD.S): Linux's IOPF error response
      // reaches arm_smmu_page_response, which ignores a master without stalls. Nothing is sent, and the
      // interrupt handler goes on with the next record.
      this.log('stall.unexpected', `${master.ref.name}: stall record without stalls enabled, STAG ${stag}`);
      return;
    }
    this.log('stall', `${master.ref.name}: stalled at ${toHex(request.iova)}, STAG ${stag}`);
    this.context.reportPageRequest(master.ref, { ...request, groupIndex: stag, last: true });
  }

  /** PRI queue interrupt (Linux `arm_smmu_priq_thread`): page requests to the iommu core. */
  private handlePriq(): void {
    const q = this.probed?.priq;
    if (!q) return;
    const words = new Uint32Array(PRI_ENTRY_WORDS);
    let prod = this.regs.read32(REG.PRIQ_PROD);
    for (let passes = 0; ; passes++) {
      if (passes === POLL_LIMIT) throw pollTimeout(this.instance, 'the PRI queue never drained');
      while (!queueEmpty(prod, q.cons, q.log2)) {
        const at = q.base + queueIndex(q.cons, q.log2) * PRIQ_ENTRY_BYTES;
        this.bus.readWords(at, words, PRI_ENTRY_WORDS, this.counter);
        q.cons = queueIncrement(q.cons, q.log2);
        this.regs.write32(REG.PRIQ_CONS, q.cons);
        this.handlePageRequest(words);
      }
      prod = this.regs.read32(REG.PRIQ_PROD);
      if (queueEmpty(prod, q.cons, q.log2)) break;
    }
    if (queueOverflowPending(prod, q.cons)) {
      this.stats.priOverflows++;
      q.cons = queueAcknowledgeOverflow(q.cons, prod);
      this.regs.write32(REG.PRIQ_CONS, q.cons);
      this.log('priq.overflow', 'PRI queue overflow: page requests were lost');
    }
  }

  private handlePageRequest(words: Uint32Array): void {
    const entry = decodePriEntry(words);
    if (isStopMarker(entry)) return;
    this.stats.pageRequests++;
    const master = this.masters.get(entry.streamId);
    const pasid = entry.ssv ? entry.substreamId : NO_PASID;
    if (!master) {
      // Nobody to ask: deny the group (Linux `arm_smmu_handle_ppr`).
      if (entry.last) {
        this.cmdq.issue(
          encodePriResp({
            streamId: entry.streamId,
            ssv: entry.ssv,
            substreamId: entry.ssv ? entry.substreamId : 0,
            prgIndex: entry.prgIndex,
            resp: PRI_RESP.RESPONSE_FAILURE,
          }),
        );
      }
      return;
    }
    this.context.reportPageRequest(master.ref, {
      pasid,
      iova: BigInt(entry.addressPage) * 4096n,
      access:
        (entry.read ? PERM_READ : 0) |
        (entry.write ? PERM_WRITE : 0) |
        (entry.exec ? PERM_EXEC : 0) |
        (entry.priv ? PERM_PRIV : 0),
      groupIndex: entry.prgIndex,
      last: entry.last,
    });
  }

  /** GERROR interrupt (Linux `arm_smmu_gerror_handler`). */
  private handleGerror(): void {
    if (!this.probed) return;
    const gerror = this.regs.read32(REG.GERROR);
    const gerrorn = this.regs.read32(REG.GERRORN);
    const active = (gerror ^ gerrorn) >>> 0;
    if (active === 0) return;
    this.stats.globalErrors++;
    this.log('gerror', `global errors active: ${toHex(active)}`);
    if (active & GERROR_SFM_ERR) this.writeRegSync(REG.CR0, 0, REG.CR0ACK);
    if (active & GERROR_CMDQ_ERR) this.cmdq.skipError();
    this.regs.write32(REG.GERRORN, gerror);
  }

  // --- helpers -------------------------------------------------------------------------------------------

  private state(): ProbedState {
    if (!this.probed) throw new IommufdError('ENODEV', `${this.instance} is not probed`);
    return this.probed;
  }

  private log(name: string, message: string): void {
    if (this.tracer.enabled) this.tracer.trace('driver', this.instance, name, message);
  }
}

interface ProbedState {
  readonly idr: IdrValues;
  readonly features: Smmuv3Features;
  readonly hyp: boolean;
  readonly caps: BuilderCaps;
  readonly cmdq: Smmuv3Cmdq;
  readonly cmdqMem: QueueMemory;
  readonly eventq: QueueMemory;
  readonly priq: QueueMemory | undefined;
  readonly streamTable: StreamTable;
  readonly asids: IdAllocator;
  readonly vmids: IdAllocator;
  readonly domainHost: Smmuv3DomainHost;
}

/** How a RID domain reads in the trace. */
function ridLabel(rid: IommuDomain): string {
  if (rid instanceof Smmuv3Domain) return `domain ${rid.id} (${rid.tag})`;
  if (rid instanceof Smmuv3NestedDomain)
    return `nested domain ${rid.id} (guest ${rid.guestConfig}, VMID ${rid.parent.vmid})`;
  return rid.type;
}
