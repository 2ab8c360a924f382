/**
 * The SMMUv3 host driver (Linux drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c). Like Linux it learns what
 * the SMMU is from its ID registers, allocates its queues and Stream table in host memory, programs the
 * base registers and enables the SMMU with the CR0/CR0ACK handshake; from then on it edits STEs and CDs in
 * memory (hitlessly, `writeEntry`) and tells the SMMU through the Command queue. It never sees the device
 * model: only the 128 KiB register window (`MmioWindow`) and memory it allocated itself.
 *
 * This file is the `IommuDriver` the iommu core calls; its parts: `probe.ts` (probe and reset sequence),
 * `master-attach.ts` (masters, their STEs and ATS), `irq-handlers.ts` (Event queue, PRI queue, GERROR),
 * `page-requests.ts` (stalls and PRI, and their responses), `driver-host.ts` (what the parts share).
 *
 * Masters (Linux `struct arm_smmu_master`): `probeDevice` makes sure the StreamID's STE exists (2-level
 * tables allocate the level-2 array on demand) and makes it abort, and enables the endpoint's PASID
 * capability when the SMMU has SubstreamIDs (Linux enables PASID at probe, before ATS). A stage-2 RID
 * cannot coexist with PASIDs (its STE has no CD table): attaching it while PASIDs are attached, or a PASID
 * while it is attached, is `EINVAL`. PASIDs take stage-1 domains only, in 1..2^min(SSIDSIZE, endpoint
 * PASID width) − 1. Unmaps invalidate the ATC in `iotlbSync` (see domain.ts). PRI is left to whoever
 * wants page requests (the endpoint's PRI enable).
 *
 * Host-side nesting (Linux arm-smmu-v3-iommufd.c): `viommuAlloc` on a nest-parent stage-2 domain gives a
 * vSMMU (`vsmmu.ts`: vDEVICEs, guest commands, event forwarding) that allocates nested domains from vSTEs
 * (`nested-domain.ts`); while one is at a RID no PASID can be attached (`EINVAL`: the CD table is the
 * guest's). Stalls: a master that stalls gets CD.S, S1STALLD = 0 (nested: the guest's) and S2S; every
 * other master gets S1STALLD = 1 where stalls exist, on a nested STE too whatever the guest's vSTE says
 * (nested-domain.ts).
 *
 * Interrupts: MSIs through the platform's MSI controller when the SMMU has IDR0.MSI, wired lines
 * otherwise; CMD_SYNC completion is polled on CONS either way. Not here: SVA.
 */
import {
  type AccessCounter,
  type DriverContext,
  type HwInfo,
  type IFrameAllocator,
  type IommuDeviceRef,
  type IommuDomain,
  type IommuDriver,
  IommufdError,
  type ITracer,
  type MemoryBus,
  MmioWindow,
  type PageResponse,
  type PagingDomainFlags,
  type ReservedRegion,
  StaticDomain,
  toHex,
  type ViommuEventSink,
} from '@iommukit/core';
import type { Smmuv3Features } from '../hw/features.js';
import { type IdrValues, idrFixedFieldsFromIdr0 } from '../hw/idr.js';
import type { Smmuv3Options } from '../hw/options.js';
import { queueCapacity } from '../hw/queue-index.js';
import { REG } from '../hw/regs.js';
import type { Smmuv3Cmdq } from './cmdq.js';
import { Smmuv3Domain } from './domain.js';
import type { ProbedSmmu, Smmuv3DriverHost, Smmuv3DriverStats } from './driver-host.js';
import type { IdAllocator } from './ids.js';
import { handleEventq, handleGerror, handlePriq } from './irq-handlers.js';
import {
  atcInvMaster,
  attachment,
  checkNestedAttach,
  ensureCdTable,
  type Smmuv3Master,
  updateRid,
} from './master-attach.js';
import { Smmuv3NestedDomain } from './nested-domain.js';
import { pageResponse } from './page-requests.js';
import { probeSmmu, resetSmmu, writeRegSync } from './probe.js';
import { abortSte } from './ste-builders.js';
import type { StreamTable } from './stream-table.js';
import { freeBlock } from './table-memory.js';
import { SMMUV3_VIOMMU_TYPE, Smmuv3Vsmmu } from './vsmmu.js';

export type { Smmuv3DriverStats } from './driver-host.js';
export type { Smmuv3Master } from './master-attach.js';
export { EVENTQ_MAX_LOG2, PRIQ_MAX_LOG2 } from './probe.js';

/** The SW MSI window Linux's SMMUv3 driver reserves (MSI_IOVA_BASE, MSI_IOVA_LENGTH). */
export const SMMUV3_SW_MSI_BASE = 0x800_0000n;
export const SMMUV3_SW_MSI_LENGTH = 0x10_0000n;

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
  private probed: ProbedSmmu | undefined;
  /** What the driver's parts share (see driver-host.ts). */
  private readonly host: Smmuv3DriverHost;
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
    this.host = {
      instance: this.instance,
      regs: this.regs,
      bus: this.bus,
      memory: this.memory,
      counter: this.counter,
      tracer: this.tracer,
      context,
      masters: this.masters,
      stats: this.stats,
      log: (name, message) => this.log(name, message),
    };
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
    const p = probeSmmu(this.host, (domain) => this.domains.delete(domain));
    this.probed = p;
    // The handlers look the state up when they run: shutdown may have released it.
    const handlers = {
      eventq: () => {
        if (this.probed) handleEventq(this.host, this.probed);
      },
      gerror: () => {
        if (this.probed) handleGerror(this.host, this.probed);
      },
      priq: () => {
        if (this.probed) handlePriq(this.host, this.probed);
      },
    };
    resetSmmu(this.host, p, handlers, this.msiReleases);
    const { features, cmdq, streamTable, eventq, priq } = p;
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
    if (domain instanceof Smmuv3NestedDomain) checkNestedAttach(domain, master);
    if (domain instanceof Smmuv3Domain && domain.stage === 2 && master.pasids.size > 0) {
      throw new IommufdError(
        'EINVAL',
        `${device.name}: a stage-2 domain cannot be attached at the RID while PASIDs are attached`,
        { device: device.name, domain: domain.id },
      );
    }
    if (domain instanceof Smmuv3Domain) {
      domain.join(this.state().domainHost);
      if (domain.stage === 1) ensureCdTable(this.state(), master);
    }
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
    const p = this.state();
    domain.join(p.domainHost);
    const cdTable = ensureCdTable(p, master);
    cdTable.writeCd(pasid, domain.cd(master.stall, p.domainHost));
    old?.detach(p.domainHost, master.streamId, pasid);
    master.pasids.set(pasid, domain);
    domain.attach(attachment(p, master, pasid));
    // The first PASID turns a blocked/identity STE into a CD table STE (and may enable ATS).
    this.updateRid(master, master.rid);
    if (old && master.ats) atcInvMaster(this.state(), master, pasid);
    this.log('pasid.attach', `${device.name} PASID ${pasid} → domain ${domain.id} (${domain.tag})`);
  }

  removeDevPasid(device: IommuDeviceRef, pasid: number): void {
    const master = this.master(device);
    const old = master.pasids.get(pasid);
    if (!old) return;
    master.cdTable?.clearCd(pasid);
    old.detach(this.state().domainHost, master.streamId, pasid);
    master.pasids.delete(pasid);
    if (master.ats) atcInvMaster(this.state(), master, pasid);
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
    pageResponse(this.host, this.state(), master, response);
  }

  shutdown(): void {
    const p = this.probed;
    if (!p) return;
    // Linux arm_smmu_device_shutdown: CR0 = 0. GBPA.ABORT stays, so traffic aborts from now on.
    writeRegSync(this.regs, this.instance, REG.CR0, 0, REG.CR0ACK);
    writeRegSync(this.regs, this.instance, REG.IRQ_CTRL, 0, REG.IRQ_CTRLACK);
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

  // --- attachments ----------------------------------------------------------------------------------------

  /**
   * Whether `domain` may be installed on this SMMU; `EINVAL` for a domain of another stage, or of another
   * SMMU unless `shareDomains` lets it join (a freed domain joins nothing; `join` checks the format).
   */
  protected checkDomain(domain: IommuDomain, device: IommuDeviceRef): void {
    if (domain === this.blockedDomain || domain === this.identityDomain) return;
    if (domain instanceof Smmuv3NestedDomain && this.nestedDomains.has(domain)) return;
    const f = this.features;
    const ours =
      domain instanceof Smmuv3Domain &&
      (this.domains.has(domain) ||
        (this.context.options.shareDomains && !domain.isFreed && !domain.nestParent));
    if (
      !ours ||
      !(domain instanceof Smmuv3Domain) ||
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

  /** Installs `rid` at the master's RID, or refreshes its STE after a PASID change (master-attach.ts). */
  protected updateRid(master: Smmuv3Master, rid: IommuDomain): void {
    updateRid(this.host, this.state(), this.identityDomain, master, rid);
  }

  private state(): ProbedSmmu {
    if (!this.probed) throw new IommufdError('ENODEV', `${this.instance} is not probed`);
    return this.probed;
  }

  private log(name: string, message: string): void {
    if (this.tracer.enabled) this.tracer.trace('driver', this.instance, name, message);
  }
}
