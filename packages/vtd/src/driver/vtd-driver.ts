/**
 * The VT-d host driver (`IommuDriver`), in Linux's intel-iommu role: probe (probe.ts), the devices and
 * the entries each gets — in scalable mode a context entry pointing at the kernel-owned PASID table, whose
 * RID_PASID and other PASID entries the driver writes itself (users never get the table); in legacy mode
 * the context entry itself —, paging domains with a DID each (paging-domain.ts), the blocked and identity
 * domains, the flushes every change needs (qi.ts), interrupt remapping (ir-domain.ts), fault and page
 * request draining (fault-irq.ts), hw_info and reserved regions.
 *
 * Domain stage (Linux `intel_iommu_domain_alloc_paging_flags`): first stage when the unit is in scalable
 * mode with ECAP.FLTS and the domain is neither a nest parent nor dirty-tracked (Linux prefers it);
 * otherwise second stage. Translation is turned on at the end of probe: until a device is attached its
 * requests are blocked by a missing context or PASID entry, which the core fills right after.
 *
 * Host nesting (Linux intel/nested.c, nested-domain.ts): a nest parent is a second-stage domain on a unit
 * with ECAP.NEST in scalable mode (`EOPNOTSUPP` otherwise); a nested domain on it gets a DID of its own
 * and is installed as a nested PASID entry. Every flush of the parent names the DIDs of the nested domains
 * attached on it too, by second-stage address (Table 23 then drops their translations whatever the
 * first-stage address), and dirty tracking rewrites their entries' SSADE with the parent's.
 *
 * ATS (Linux `iommu_enable_pci_caps`): with ECAP.DT and a device that has it, the scalable-mode context
 * entry gets DTE and ATS is enabled at probe; in legacy mode a translating context entry gets TT = 01 and
 * ATS follows it. Every flush then reaches the device's Device-TLB too (domain-flush.ts). PRI (Linux
 * `pri_supported`: scalable mode, ATS, ECAP.PRS and the device's capability) gets the context entry's PRE
 * at probe; the endpoint's PRI is enabled by `enableIopf`, which iommufd calls when a HWPT with a fault
 * queue is attached (Linux `intel_iommu_enable_iopf` → `pci_enable_pri`, v6.7 to v6.14; since v6.15 Linux
 * enables PRI at probe and only counts IOPF users on attach).
 *
 * Not yet: SVA binds.
 */
import {
  type DriverContext,
  type HwInfo,
  type IommuDeviceRef,
  type IommuDomain,
  type IommuDriver,
  IommufdError,
  type PageResponse,
  type PagingDomainFlags,
  type ReservedRegion,
  StaticDomain,
  X86_INTERRUPT_WINDOW,
} from '@iommukit/core';
import type { VtdFeatures } from '../hw/features.js';
import type { VtdOptions } from '../hw/options.js';
import type { PasidEntry } from '../hw/pasid-entry.js';
import { CONTEXT_TT } from '../hw/root-context.js';
import { domainFlush, type FlushHost, invalidateNested } from './domain-flush.js';
import { FLPT_DEFAULT_DID } from './domain-ids.js';
import type { DeviceTlbTarget } from './driver-host.js';
import { pageResponse } from './fault-irq.js';
import { VtdIrDomain } from './ir-domain.js';
import { checkVtdS1Data, VtdNestedDomain } from './nested-domain.js';
import { type PagingDomainFeatures, VtdPagingDomain, vtdDomainLevels } from './paging-domain.js';
import { RID_PASID } from './pasid-table.js';
import { enableTranslation, type ProbedUnit, probeUnit, shutdownUnit } from './probe.js';
import { iec } from './qi.js';

/** What the driver keeps of a probed device (Linux `struct device_domain_info`). */
interface VtdDevice {
  readonly ref: IommuDeviceRef;
  readonly sid: number;
  rid: IommuDomain;
  readonly pasids: Map<number, IommuDomain>;
  /** ECAP.DT and the device's ATS capability (Linux `ats_supported`). */
  readonly atsSupported: boolean;
  /** Set while ATS is enabled at the device: its Device-TLB is then flushed with every change. */
  ats: DeviceTlbTarget | undefined;
  /** Scalable mode, ATS, ECAP.PRS and the device's PRI capability (Linux `pri_supported`). */
  readonly priSupported: boolean;
}

export class VtdDriver implements IommuDriver {
  readonly instance: string;
  readonly blockedDomain = new StaticDomain(0, 'blocked');
  readonly identityDomain = new StaticDomain(1, 'identity');
  interruptRemapping: VtdIrDomain | undefined;
  private unit: ProbedUnit | undefined;
  private readonly devices = new Map<number, VtdDevice>();
  private readonly attachments = new Map<IommuDomain, { device: VtdDevice; pasid: number }[]>();
  private readonly dids = new Map<IommuDomain, number>();
  /** Nested domains, for the flushes and dirty-tracking changes of their parents. */
  private readonly nested = new Set<VtdNestedDomain>();
  private nextDomainId = 2;

  constructor(private readonly context: DriverContext<VtdOptions>) {
    this.instance = context.instance;
  }

  private get probed(): ProbedUnit {
    if (this.unit === undefined) throw new IommufdError('ENODEV', `${this.instance} is not probed`);
    return this.unit;
  }

  probe(): void {
    const unit = probeUnit(this.context, (sid) => this.devices.get(sid)?.ref);
    this.unit = unit;
    const u = unit.unit;
    if (u.ecap.ir && u.ecap.qi) {
      this.interruptRemapping = new VtdIrDomain({
        instance: this.instance,
        readReg: (offset) => unit.mmio.read32(offset),
        writeReg: (offset, value) => unit.mmio.write32(offset, value),
        memory: unit.memory,
        bus: unit.bus,
        counter: unit.counter,
        features: {
          extendedInterruptMode: u.ecap.eim,
          postedInterrupts: u.cap.pi,
          sirtpInvalidates: u.cap.esirtps,
        },
        iecFlush: (index, mask) => unit.qi.submit([iec(index, mask)]),
      });
      this.interruptRemapping.setup();
    }
    enableTranslation(unit);
  }

  probeDevice(ref: IommuDeviceRef): void {
    const unit = this.probed;
    const sid = ref.streamId;
    if (this.devices.has(sid)) throw new IommufdError('EEXIST', `${ref.name} is already probed`);
    const atsSupported = unit.unit.ecap.dt && ref.pci.hasAts;
    const device: VtdDevice = {
      ref,
      sid,
      rid: this.blockedDomain,
      pasids: new Map(),
      atsSupported,
      ats: undefined,
      priSupported: unit.scalable && atsSupported && unit.unit.ecap.prs && ref.pci.hasPri,
    };
    if (unit.scalable) {
      // Linux sets the scalable-mode context entry up at probe, pointing at the device's PASID table with
      // DTE for an ATS device, and enables the device's PASID, then ATS (`iommu_enable_pci_caps`).
      const pasidBits = Math.min(ref.pasidBits, unit.unit.pasidBits);
      if (pasidBits > 0 && ref.pci.hasPasid) ref.pci.setPasidEnabled(true);
      const table = unit.pasidTables.allocTable(sid, { pasidBits: Math.max(pasidBits, 1) });
      unit.contextTables.setScalableContext(sid, {
        pasidDir: table.dir,
        pdts: table.pdts,
        paside: pasidBits > 0,
        pre: device.priSupported,
        dte: atsSupported,
      });
      if (atsSupported) this.setAts(device, true);
    }
    this.devices.set(sid, device);
  }

  releaseDevice(ref: IommuDeviceRef): void {
    const unit = this.probed;
    const device = this.device(ref);
    for (const pasid of [...device.pasids.keys()]) this.removeDevPasid(ref, pasid);
    this.detachRid(device);
    // Stryker disable next-line ConditionalExpression: in legacy mode the context entry went with the RID, and there is no PASID table
    if (unit.scalable) {
      unit.contextTables.clearContext(device.sid, device.ats ? { ats: device.ats } : {});
      this.setAts(device, false);
      unit.pasidTables.freeTable(device.sid);
      if (ref.pci.hasPasid) ref.pci.setPasidEnabled(false);
    }
    this.devices.delete(device.sid);
  }

  domainAllocPaging(flags: PagingDomainFlags = {}): IommuDomain {
    const unit = this.probed;
    const f = this.domainFeatures();
    const secondOnly = flags.nestParent === true || flags.dirtyTracking === true;
    const stage = !secondOnly && f.scalableMode && f.firstStage ? 'first' : 'second';
    if (flags.pasid && !unit.scalable)
      throw new IommufdError('EOPNOTSUPP', `${this.instance}: PASIDs need scalable mode`);
    if (flags.nestParent && !this.nests)
      throw new IommufdError('EOPNOTSUPP', `${this.instance}: nesting needs ECAP.NEST in scalable mode`);
    const did = unit.dids.alloc();
    let domain: VtdPagingDomain;
    try {
      domain = new VtdPagingDomain({
        id: this.nextDomainId++,
        stage,
        levels: vtdDomainLevels(stage, f),
        features: f,
        context: {
          bus: unit.bus,
          memory: unit.memory,
          counter: unit.counter,
          tracer: unit.tracer,
          source: this.instance,
        },
        dirtyTracking: flags.dirtyTracking === true,
        nestParent: flags.nestParent === true,
        cachingMode: unit.unit.cap.cm,
        flush: domainFlush(this.flushHost, did),
        onDirtyTracking: (enabled) => this.rewriteSsade(domain, enabled),
        released: () => {
          unit.dids.free(did);
          this.dids.delete(domain);
          this.attachments.delete(domain);
        },
      });
    } catch (error) {
      unit.dids.free(did);
      throw error;
    }
    this.dids.set(domain, did);
    this.attachments.set(domain, []);
    return domain;
  }

  /** Linux `intel_iommu_domain_alloc_nested`: a nested domain on a nest parent, with a DID of its own. */
  domainAllocNested(ref: IommuDeviceRef, parent: IommuDomain, data: unknown): IommuDomain {
    const unit = this.probed;
    this.device(ref);
    if (!this.nests)
      throw new IommufdError('EOPNOTSUPP', `${this.instance}: nesting needs ECAP.NEST in scalable mode`);
    const s2 = this.paging(parent);
    if (!s2.nestParent) throw new IommufdError('EINVAL', `domain ${s2.id} is not a nest parent`);
    const s1 = checkVtdS1Data(data);
    const did = unit.dids.alloc();
    const domain = new VtdNestedDomain(this.nextDomainId++, did, s2, s1, {
      invalidate: (d, inv) => invalidateNested(this.flushHost, d, inv),
      release: (d) => {
        unit.dids.free(d.did);
        this.nested.delete(d);
        this.attachments.delete(d);
      },
    });
    this.nested.add(domain);
    this.attachments.set(domain, []);
    return domain;
  }

  attachDev(domain: IommuDomain, ref: IommuDeviceRef): void {
    const device = this.device(ref);
    if (device.rid === domain) return;
    this.detachRid(device);
    this.install(device, RID_PASID, domain);
    device.rid = domain;
  }

  setDevPasid(domain: IommuDomain, ref: IommuDeviceRef, pasid: number): void {
    const unit = this.probed;
    if (!unit.scalable) throw new IommufdError('EOPNOTSUPP', `${this.instance}: PASIDs need scalable mode`);
    const device = this.device(ref);
    if (pasid === RID_PASID || pasid < 0 || pasid >= 2 ** Math.min(ref.pasidBits, unit.unit.pasidBits))
      throw new IommufdError('EINVAL', `PASID ${pasid} is out of range for ${ref.name}`);
    // Stryker disable next-line ConditionalExpression: removeDevPasid does nothing for a PASID without a domain
    if (device.pasids.has(pasid)) this.removeDevPasid(ref, pasid);
    // Stryker disable next-line ConditionalExpression,StringLiteral: a blocked PASID recorded would be uninstalled as blocked: nothing to clear
    if (domain.type === 'blocked') return;
    this.install(device, pasid, domain);
    device.pasids.set(pasid, domain);
  }

  removeDevPasid(ref: IommuDeviceRef, pasid: number): void {
    const device = this.device(ref);
    const domain = device.pasids.get(pasid);
    if (domain === undefined) return;
    this.uninstall(device, pasid, domain);
    device.pasids.delete(pasid);
  }

  hwInfo(ref: IommuDeviceRef): HwInfo {
    const u = this.probed.unit;
    const word = (w: { lo: number; hi: number }) => (BigInt(w.hi) << 32n) | BigInt(w.lo);
    return {
      type: 'intel-vtd',
      data: { cap_reg: word(u.capWords), ecap_reg: word(u.ecapWords), flags: 0 },
      maxPasidLog2: this.probed.scalable ? Math.min(ref.pasidBits, u.pasidBits) : 0,
      capabilities: { dirtyTracking: u.ecap.slads, pasidExec: u.ecap.ers, pasidPriv: u.ecap.srs },
    };
  }

  /** The interrupt window: never DMA on VT-d (requests to it are interrupts or fault 0xE/0x87). */
  reservedRegions(_ref: IommuDeviceRef): readonly ReservedRegion[] {
    return [{ start: X86_INTERRUPT_WINDOW.base, length: X86_INTERRUPT_WINDOW.size, type: 'msi' }];
  }

  /** The DID a domain of this driver carries (Linux debugfs `domain_translation_struct`), if it has one. */
  domainId(domain: IommuDomain): number | undefined {
    return domain instanceof VtdNestedDomain ? domain.did : this.dids.get(domain);
  }

  /** The PASID entry of a device as it is in memory (Linux debugfs), if its PASID table reaches it. */
  pasidEntry(ref: IommuDeviceRef, pasid: number): PasidEntry | undefined {
    return this.probed.pasidTables.entry(this.device(ref).sid, pasid);
  }

  pageResponse(ref: IommuDeviceRef, response: PageResponse): void {
    pageResponse(this.probed, ref, response);
  }

  /**
   * Linux `intel_iommu_enable_iopf` (through iommufd's `IOMMU_DEV_FEAT_IOPF`): enables the device's PRI, which
   * needs ATS enabled and PRI supported (`ENODEV` otherwise, as Linux answers).
   */
  enableIopf(ref: IommuDeviceRef): void {
    const device = this.device(ref);
    if (device.ats === undefined || !device.priSupported)
      throw new IommufdError(
        'ENODEV',
        `${ref.name} cannot report page faults on ${this.instance}: PRI needs scalable mode, ECAP.PRS, and the device's ATS (enabled) and PRI`,
      );
    ref.pci.setPriEnabled(true);
    this.probed.log('iopf', `${ref.name}: PRI enabled, its page requests reach the PRQ`);
  }

  /** Linux `intel_iommu_disable_iopf`: the device's PRI off (its unanswered requests were answered by iommufd). */
  disableIopf(ref: IommuDeviceRef): void {
    this.device(ref);
    ref.pci.setPriEnabled(false);
    this.probed.log('iopf', `${ref.name}: PRI disabled`);
  }

  shutdown(): void {
    const unit = this.unit;
    if (unit === undefined) return;
    this.interruptRemapping?.teardown();
    this.interruptRemapping = undefined;
    shutdownUnit(unit);
    this.unit = undefined;
  }

  private device(ref: IommuDeviceRef): VtdDevice {
    const device = this.devices.get(ref.streamId);
    if (device === undefined)
      throw new IommufdError('ENODEV', `${ref.name} is not probed on ${this.instance}`);
    return device;
  }

  /** Writes the entry that makes `domain` translate `device` at `pasid` (RID_PASID: requests without PASID). */
  private install(device: VtdDevice, pasid: number, domain: IommuDomain): void {
    const unit = this.probed;
    const { sid } = device;
    if (domain.type === 'blocked') return;
    if (!unit.scalable) {
      if (domain.type === 'identity')
        unit.contextTables.setLegacyContext(sid, {
          did: FLPT_DEFAULT_DID,
          tt: CONTEXT_TT.PASS_THROUGH,
          aw: unit.unit.msagaw,
        });
      else {
        const d = this.paging(domain);
        // Linux `domain_context_mapping_one`: Device-TLBs enabled (TT = 01) for an ATS device.
        unit.contextTables.setLegacyContext(sid, {
          did: this.dids.get(d)!,
          tt: device.atsSupported ? CONTEXT_TT.DEVICE_TLB : CONTEXT_TT.MULTI_LEVEL,
          aw: d.levels - 2,
          slptptr: d.rootPa,
        });
        if (device.atsSupported) this.setAts(device, true);
      }
    } else if (domain.type === 'identity') unit.pasidTables.setPassThrough(sid, pasid, FLPT_DEFAULT_DID);
    else if (domain instanceof VtdNestedDomain) this.installNested(sid, pasid, domain);
    else {
      const d = this.paging(domain);
      const did = this.dids.get(d)!;
      if (d.stage === 'first')
        unit.pasidTables.setFirstStage(sid, pasid, { did, fsptptr: d.rootPa, flpm: d.levels - 4 });
      else
        unit.pasidTables.setSecondStage(sid, pasid, {
          did,
          ssptptr: d.rootPa,
          aw: d.levels - 2,
          ssade: d.dirtyTrackingEnabled,
        });
    }
    if (domain instanceof VtdPagingDomain || domain instanceof VtdNestedDomain) {
      domain.attachments++;
      this.attachments.get(domain)!.push({ device, pasid });
    }
  }

  /** Linux `intel_pasid_setup_nested`: the user's first stage on the parent's second stage. */
  private installNested(
    sid: number,
    pasid: number,
    domain: VtdNestedDomain,
    ssade = domain.parent.dirtyTrackingEnabled,
  ): void {
    const unit = this.probed;
    if (domain.isFreed || !this.nested.has(domain))
      throw new IommufdError('EINVAL', `domain ${domain.id} is not a nested domain of ${this.instance}`);
    const { parent } = domain;
    unit.pasidTables.setNested(sid, pasid, {
      did: domain.did,
      ...domain.s1Config(unit.unit.cap),
      ssptptr: parent.rootPa,
      aw: parent.levels - 2,
      ssade,
    });
  }

  /** Removes the entry (Linux's teardown flushes what it cached) and the attachment. */
  private uninstall(device: VtdDevice, pasid: number, domain: IommuDomain): void {
    const unit = this.probed;
    // Stryker disable next-line ConditionalExpression,StringLiteral: a blocked attachment has no entry, and clearing none flushes nothing
    if (domain.type !== 'blocked') {
      if (unit.scalable) unit.pasidTables.clear(device.sid, pasid);
      else {
        unit.contextTables.clearContext(device.sid, device.ats ? { ats: device.ats } : {});
        // Legacy pass-through (TT = 10) takes no translation requests: ATS goes with the translating entry.
        this.setAts(device, false);
      }
    }
    if (domain instanceof VtdPagingDomain || domain instanceof VtdNestedDomain) {
      domain.attachments--;
      const list = this.attachments.get(domain)!;
      list.splice(
        list.findIndex((a) => a.device === device && a.pasid === pasid),
        1,
      );
    }
  }

  private detachRid(device: VtdDevice): void {
    this.uninstall(device, RID_PASID, device.rid);
    device.rid = this.blockedDomain;
  }

  private paging(domain: IommuDomain): VtdPagingDomain {
    if (!(domain instanceof VtdPagingDomain) || !this.dids.has(domain))
      throw new IommufdError('EINVAL', `domain ${domain.id} is not a paging domain of ${this.instance}`);
    return domain;
  }

  /** What the flushes of domain-flush.ts read: the unit, the attachments, the nested domains on a parent. */
  private readonly flushHost: FlushHost = {
    unit: () => this.probed,
    attachments: (domain) => this.attachments.get(domain) ?? [],
    nestedOn: (parent) => [...this.nested].filter((n) => n.parent === parent && n.attachments > 0),
  };

  /** ATS on or off at the device (Linux `pci_enable_ats` / `pci_disable_ats`), and its Device-TLB target. */
  private setAts(device: VtdDevice, enabled: boolean): void {
    if (enabled === (device.ats !== undefined)) return;
    device.ats = enabled ? { sid: device.sid, pfsid: device.sid, qdep: 0 } : undefined;
    if (this.probed.scalable) this.probed.pasidTables.setAts(device.sid, device.ats);
    device.ref.pci.setAtsEnabled(enabled);
  }

  /** Dirty tracking on or off: every PASID entry of the domain gets SSADE rewritten (teardown, then set). */
  private rewriteSsade(domain: VtdPagingDomain, enabled: boolean): void {
    // Only scalable-mode second-stage domains track dirty pages (paging-domain.ts refuses the others).
    const unit = this.probed;
    const did = this.dids.get(domain)!;
    for (const { device, pasid } of this.attachments.get(domain) ?? []) {
      unit.pasidTables.clear(device.sid, pasid);
      unit.pasidTables.setSecondStage(device.sid, pasid, {
        did,
        ssptptr: domain.rootPa,
        aw: domain.levels - 2,
        ssade: enabled,
      });
    }
    // Linux `parent_domain_set_dirty_tracking`: the nested domains on it carry the parent's SSADE.
    for (const n of this.nested) {
      if (n.parent !== domain) continue;
      for (const { device, pasid } of this.attachments.get(n) ?? []) {
        unit.pasidTables.clear(device.sid, pasid);
        this.installNested(device.sid, pasid, n, enabled);
      }
    }
  }

  /** Linux `nested_supported`: ECAP.NEST, in scalable mode (nested PASID entries). */
  private get nests(): boolean {
    return this.probed.scalable && this.probed.unit.ecap.nest;
  }

  /** The features a paging domain needs, from what probe read (HAW is the platform's: ACPI DMAR). */
  private domainFeatures(): PagingDomainFeatures {
    const u = this.probed.unit;
    const scalable = this.probed.scalable;
    const sagaw: VtdFeatures['sagaw'][number][] = [];
    for (const [bit, levels] of [
      [1, 3],
      [2, 4],
      [3, 5],
    ] as const)
      if ((u.cap.sagaw >>> bit) & 1) sagaw.push(levels);
    return {
      sagaw,
      mgawBits: u.cap.mgaw + 1,
      hostAddressBits: this.context.options.hostAddressBits,
      secondStage2MiB: (u.cap.sllps & 1) !== 0,
      secondStage1GiB: (u.cap.sllps & 2) !== 0,
      firstStage: scalable && u.ecap.flts,
      firstStage1GiB: u.cap.fl1gp,
      firstStage5Level: u.cap.fl5lp,
      scalableMode: scalable,
      secondStageAccessDirty: scalable && u.ecap.slads,
      writeBufferFlush: u.cap.rwbf,
    };
  }
}
