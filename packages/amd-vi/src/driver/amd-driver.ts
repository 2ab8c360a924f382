/**
 * The AMD IOMMU host driver (`IommuDriver`), in Linux's drivers/iommu/amd role: probe (probe.ts), the
 * devices by DeviceID (the PCI requester ID), v1 and v2 paging domains with a DomainID each
 * (paging-domain.ts), the blocked and identity domains, the device table entries each attachment writes
 * (device-table.ts), the GCR3 table of a device using PASIDs (gcr3-table.ts), the flushes every change
 * needs (domain-flush.ts, command-queue.ts), the unit's interrupt (event-irq.ts, ppr-irq.ts), page
 * responses, hw_info and reserved regions.
 *
 * Attach (Linux `amd_iommu_attach_device`, `attach_device`, `init_gcr3_table`, `dev_update_dte`,
 * `detach_device`, `destroy_gcr3_table`): ATS is enabled at the device for a translating domain when the
 * unit has IotlbSup (`pdev_enable_cap_ats`); a v2 domain's root goes into GCR3[0] first (`update_gcr3`,
 * then `amd_iommu_dev_flush_pasid_all`); the entry is written (`set_dte_entry`: v1 Mode/root/DomainID,
 * identity and v2 Mode 0, the identity domain's DomainID or, with a GCR3 table, the table's; GV, GLX, the
 * root, GuestPagingMode and GIoV for v2 by `set_dte_gcr3_table`; blocked: `make_clear_dte`, V only), the
 * DTE and the device's IOTLB flushed (`device_flush_dte`), then the previous domain's translations
 * (`amd_iommu_domain_flush_all` for v1; GCR3[0] cleared and flushed for v2) and ATS turned off when the
 * device ends up blocked with no PASID in use (`pdev_disable_caps`). Linux detaches first, so the device
 * is blocked in between; here the new entry replaces the old one directly, which `update_dte256` makes
 * atomic for translation, so a replace is hitless as the core prefers.
 *
 * PASIDs (Linux `amd_iommu_set_dev_pasid` / pasid.c `iommu_sva_set_dev_pasid`, `amd_iommu_remove_dev_pasid`,
 * `amd_iommu_set_gcr3`, `amd_iommu_clear_gcr3`): only a v2 domain is attached at a PASID, and only while
 * the RID is blocked, identity or v2 — under a v1 RID Linux has no GCR3 table (`is_pasid_enabled`), and
 * the unit would translate the guest tables' output through the v1 table (nesting). PASID 0 is the RID's
 * (`is_pasid_valid`: 0 < PASID < `max_pasids`). The GCR3 table is allocated when first needed and freed
 * when no PASID and no v2 RID uses it (Linux allocates it with an identity or v2 RID domain and keeps it
 * until detach); a blocked RID with PASIDs keeps the table with Mode 0 and IR = IW = 0.
 * The device's PASID capability is enabled at probe when the unit and the device support PASIDs. Page
 * requests (Linux `pdev_enable_cap_pri`, `amd_iommu_iopf_add_device` / `_remove_device`): `enableIopf`,
 * which iommufd calls when a HWPT with a fault queue is attached, enables the device's PRI and sets
 * DTE.PPR (`dev_data->ppr`) so the unit logs its requests; it needs the PPR log (GT, PPR, EPHSup), ATS
 * enabled and the device's PRI (`ENODEV` otherwise, as the VT-d driver answers).
 *
 * Later, and where they slot in: nesting (`viommuAlloc` / `domainAllocNested` with `iommu_hwpt_amd_guest`,
 * a nested DTE over a nest-parent v1 domain — GCR3TRPMode is already on); interrupt remapping
 * (`interruptRemapping`, the DTE's interrupt half that `update` already preserves, GAEn/XTEn in probe.ts);
 * dirty tracking (DTE.HAD with EFR.HDSup).
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
import { WHOLE_ADDRESS_SPACE } from '../hw/command-encoders.js';
import type { AmdOptions } from '../hw/options.js';
import { DEVICE_IDS } from './command-queue.js';
import { clearedDte, dteFor } from './device-table.js';
import {
  type FlushHost,
  type FlushTarget,
  flushDomainAll,
  flushDomainPages,
  flushGuestPages,
  flushPasidAll,
  type GuestFlushTarget,
} from './domain-flush.js';
import { DomainIds } from './domain-ids.js';
import { Gcr3Table, gcr3Glx } from './gcr3-table.js';
import { AmdPagingDomain, amdDomainLevels } from './paging-domain.js';
import { completePpr } from './ppr-irq.js';
import { type ProbedUnit, probeUnit, shutdownUnit } from './probe.js';

/** The HyperTransport reserved range (Linux HT_RANGE_START, HT_RANGE_END). */
export const HT_RANGE = { start: 0xfd_0000_0000n, length: 0x3_0000_0000n } as const;

/** What the driver keeps of a probed device (Linux `struct iommu_dev_data`). */
interface AmdDevice extends FlushTarget {
  readonly ref: IommuDeviceRef;
  domain: IommuDomain;
  /** The unit's IotlbSup and the device's ATS capability (Linux `ats_supported`). */
  readonly atsSupported: boolean;
  ats: { readonly qdep: number } | undefined;
  /** PASIDs the device may use, PASID 0 (the RID's) included; 0 without PASID support (`max_pasids`). */
  readonly maxPasids: number;
  /** The PPR log runs and the device has ATS and PRI (Linux `pri_supported`). */
  readonly priSupported: boolean;
  /** PRI is enabled: the DTE's PPR bit (Linux `dev_data->ppr`). */
  ppr: boolean;
  /** The device's GCR3 table while a PASID or a v2 RID domain uses it (Linux `gcr3_info`). */
  gcr3: Gcr3Table | undefined;
  /** The v2 domain at each PASID. */
  readonly pasids: Map<number, AmdPagingDomain>;
}

/** Where a paging domain is attached: the device, and for v2 the PASID (0: the RID, through GIoV). */
interface Attachment {
  readonly device: AmdDevice;
  readonly pasid: number;
}

export class AmdDriver implements IommuDriver {
  readonly instance: string;
  readonly blockedDomain = new StaticDomain(0, 'blocked');
  readonly identityDomain = new StaticDomain(1, 'identity');
  private unit: ProbedUnit | undefined;
  private domainIds: DomainIds | undefined;
  /** The identity domain's DomainID (Linux `amd_iommu_init_identity_domain`). */
  private identityId = 0;
  private readonly devices = new Map<number, AmdDevice>();
  private readonly attachments = new Map<AmdPagingDomain, Attachment[]>();
  private nextDomainId = 2;

  constructor(private readonly context: DriverContext<AmdOptions>) {
    this.instance = context.instance;
  }

  private get probed(): ProbedUnit {
    if (this.unit === undefined) throw new IommufdError('ENODEV', `${this.instance} is not probed`);
    return this.unit;
  }

  /** The probed unit (for tests and debugfs-like views). */
  get host(): ProbedUnit {
    return this.probed;
  }

  /** The DomainID the identity domain's entries carry. */
  get identityDomainId(): number {
    return this.identityId;
  }

  /** A device's GCR3 table (root, GLX, DomainID), if it has one (Linux debugfs `gcr3_tbl`). */
  gcr3Table(ref: IommuDeviceRef): Gcr3Table | undefined {
    return this.device(ref).gcr3;
  }

  probe(): void {
    this.unit = probeUnit(this.context, (deviceId) => this.devices.get(deviceId));
    this.domainIds = new DomainIds(this.instance);
    this.identityId = this.domainIds.alloc();
  }

  /**
   * Linux `amd_iommu_probe_device`: the device starts blocked by its boot entry (V, TV, no IR/IW); its
   * PASID count is the smaller of its capability's and the unit's (`dev_data->max_pasids`), and its PASID
   * capability is enabled when the unit can serve it (`pdev_enable_cap_pasid`).
   */
  probeDevice(ref: IommuDeviceRef): void {
    const unit = this.probed;
    const deviceId = ref.streamId;
    if (!Number.isInteger(deviceId) || deviceId < 0 || deviceId >= DEVICE_IDS)
      throw new IommufdError('EINVAL', `${ref.name}: DeviceID ${deviceId} is not 16 bits`);
    if (this.devices.has(deviceId)) throw new IommufdError('EEXIST', `${ref.name} is already probed`);
    const pasids =
      ref.pci.hasPasid && ref.pasidBits > 0 ? Math.min(2 ** ref.pasidBits, unit.unit.maxPasids) : 0;
    const atsSupported = unit.unit.cap.iotlbSup && ref.pci.hasAts;
    if (pasids > 0) ref.pci.setPasidEnabled(true);
    this.devices.set(deviceId, {
      ref,
      deviceId,
      domain: this.blockedDomain,
      atsSupported,
      ats: undefined,
      maxPasids: pasids,
      priSupported: unit.unit.gtPpr && atsSupported && ref.pci.hasPri,
      ppr: false,
      gcr3: undefined,
      pasids: new Map(),
    });
  }

  /** Linux `amd_iommu_release_device`: every PASID removed, the device blocked, its capabilities off. */
  releaseDevice(ref: IommuDeviceRef): void {
    const device = this.device(ref);
    for (const pasid of [...device.pasids.keys()]) this.removeDevPasid(ref, pasid);
    if (device.ppr) this.disableIopf(ref);
    this.attachDev(this.blockedDomain, ref);
    if (device.maxPasids > 0) ref.pci.setPasidEnabled(false);
    this.devices.delete(ref.streamId);
  }

  /**
   * Linux `amd_iommu_domain_alloc_paging_flags`: with `pasid` a v2 domain (`PD_MODE_V2`, `EOPNOTSUPP`
   * unless the unit supports PASIDs), otherwise v1; nesting and dirty tracking are not there yet.
   */
  domainAllocPaging(flags: PagingDomainFlags = {}): IommuDomain {
    const unit = this.probed;
    if (flags.nestParent || flags.dirtyTracking)
      throw new IommufdError(
        'EOPNOTSUPP',
        `${this.instance}: no nest-parent or dirty-tracking domains so far`,
      );
    if (flags.pasid && unit.unit.maxPasids === 0)
      throw new IommufdError('EOPNOTSUPP', `${this.instance}: PASIDs need EFR.GTSup, PPRSup and EPHSup`);
    const pageTable = flags.pasid ? 'v2' : 'v1';
    const ids = this.domainIds!;
    const domainId = ids.alloc();
    let domain: AmdPagingDomain;
    try {
      domain = new AmdPagingDomain({
        id: this.nextDomainId++,
        domainId,
        pageTable,
        levels: pageTable === 'v2' ? unit.unit.gptLevels : amdDomainLevels(unit.unit.hostLevels),
        context: {
          bus: unit.bus,
          memory: unit.memory,
          counter: unit.counter,
          tracer: unit.tracer,
          source: this.instance,
        },
        npCache: unit.unit.cap.npCache,
        flush: {
          pages: (d, iova, size) => this.flushPages(d, iova, size),
          all: (d) => this.flushPages(d, 0, WHOLE_ADDRESS_SPACE),
        },
        released: () => {
          ids.free(domainId);
          this.attachments.delete(domain);
        },
      });
    } catch (error) {
      ids.free(domainId);
      throw error;
    }
    this.attachments.set(domain, []);
    return domain;
  }

  attachDev(domain: IommuDomain, ref: IommuDeviceRef): void {
    const device = this.device(ref);
    if (device.domain === domain) return;
    const paging = domain.type === 'paging' ? this.paging(domain) : undefined;
    if (domain.type !== 'blocked' && domain !== this.identityDomain && paging === undefined)
      throw new IommufdError('EINVAL', `domain ${domain.id} is not a domain of ${this.instance}`);
    const v2 = paging?.pageTable === 'v2';
    if (paging?.pageTable === 'v1' && device.pasids.size > 0)
      throw new IommufdError(
        'EINVAL',
        `${ref.name} has PASIDs attached: its RID takes identity or a v2 domain, not a v1 table`,
      );
    const old = device.domain;
    if (domain.type !== 'blocked') this.setAts(device, true);
    if (v2) this.setGcr3(device, 0, paging);
    const unused = device.pasids.size === 0 && !v2 ? device.gcr3 : undefined;
    device.domain = domain;
    this.writeDte(device, unused === undefined ? device.gcr3 : undefined);
    if (paging) this.attach(paging, device, 0);
    if (old instanceof AmdPagingDomain) {
      // The old v1 domain's flush still reaches this device's IOTLB (Linux flushes before unlinking).
      if (old.pageTable === 'v1') flushDomainAll(this.flushHost, old.domainId, this.v1Targets(old));
      else if (!v2) this.clearGcr3(device, 0);
      this.detach(old, device, 0);
    }
    if (unused !== undefined) this.freeGcr3(device, unused);
    if (domain.type === 'blocked' && device.gcr3 === undefined && !device.ppr) this.setAts(device, false);
  }

  /**
   * Linux `amd_iommu_set_dev_pasid` (pasid.c): the v2 domain's root into the GCR3 entry of `pasid`, that
   * PASID flushed, the DTE rewritten when the table is new. `EINVAL` for a PASID out of range, a domain
   * without a v2 table, or a RID in a v1 domain (module comment).
   */
  setDevPasid(domain: IommuDomain, ref: IommuDeviceRef, pasid: number): void {
    const device = this.device(ref);
    if (!Number.isInteger(pasid) || pasid <= 0 || pasid >= device.maxPasids)
      throw new IommufdError(
        'EINVAL',
        `PASID ${pasid} is out of range for ${ref.name} (${device.maxPasids} PASIDs)`,
      );
    if (domain.type === 'blocked') {
      this.removeDevPasid(ref, pasid);
      return;
    }
    const paging = domain.type === 'paging' ? this.paging(domain) : undefined;
    if (paging?.pageTable !== 'v2')
      throw new IommufdError('EINVAL', `domain ${domain.id} has no v2 page table: it cannot serve a PASID`);
    if (device.domain instanceof AmdPagingDomain && device.domain.pageTable === 'v1')
      throw new IommufdError('EINVAL', `${ref.name}'s RID is in a v1 domain: no GCR3 table for PASIDs`);
    const old = device.pasids.get(pasid);
    if (old === paging) return;
    if (this.setGcr3(device, pasid, paging)) this.writeDte(device, device.gcr3);
    if (old) this.detach(old, device, pasid);
    device.pasids.set(pasid, paging);
    this.attach(paging, device, pasid);
  }

  /** Linux `amd_iommu_remove_dev_pasid`: the GCR3 entry cleared and flushed; the table freed if unused. */
  removeDevPasid(ref: IommuDeviceRef, pasid: number): void {
    const device = this.device(ref);
    const domain = device.pasids.get(pasid);
    if (domain === undefined) return;
    this.clearGcr3(device, pasid);
    device.pasids.delete(pasid);
    this.detach(domain, device, pasid);
    const table = device.gcr3!;
    if (
      device.pasids.size > 0 ||
      (device.domain instanceof AmdPagingDomain && device.domain.pageTable === 'v2')
    )
      return;
    this.writeDte(device, undefined);
    this.freeGcr3(device, table);
    if (device.domain.type === 'blocked' && !device.ppr) this.setAts(device, false);
  }

  /**
   * Linux `amd_iommu_pdev_enable_cap_pri` + `amd_iommu_iopf_add_device`: the device's PRI on, DTE.PPR set
   * (the entry rewritten and flushed), ATS on first. `ENODEV` without the PPR log or the device's ATS and PRI.
   */
  enableIopf(ref: IommuDeviceRef): void {
    const device = this.device(ref);
    if (!device.priSupported)
      throw new IommufdError(
        'ENODEV',
        `${ref.name} cannot report page faults on ${this.instance}: PRI needs the PPR log, and the device's ATS and PRI`,
      );
    // PRI works through ATS (Linux pdev_enable_caps turns ATS on before PRI).
    this.setAts(device, true);
    ref.pci.setPriEnabled(true);
    device.ppr = true;
    this.writeDte(device, device.gcr3);
  }

  /** Linux `amd_iommu_iopf_remove_device` + `amd_iommu_pdev_disable_cap_pri`: DTE.PPR cleared, PRI off. */
  disableIopf(ref: IommuDeviceRef): void {
    const device = this.device(ref);
    device.ppr = false;
    this.writeDte(device, device.gcr3);
    ref.pci.setPriEnabled(false);
    // ATS stays on only for a device that translates through a domain.
    if (device.domain.type === 'blocked' && device.gcr3 === undefined) this.setAts(device, false);
  }

  /** Linux `amd_iommu_page_response`: the group's answer as COMPLETE_PPR_REQUEST. */
  pageResponse(ref: IommuDeviceRef, response: PageResponse): void {
    completePpr(this.probed, this.device(ref).deviceId, response);
  }

  /**
   * hw_info: EFR and EFR2; the PASID width as iommufd derives it, ilog2 of the device's PASID count
   * (Linux `dev_iommu_get_max_pasids`).
   */
  hwInfo(ref: IommuDeviceRef): HwInfo {
    const u = this.probed.unit;
    const word = (w: { lo: number; hi: number }) => (BigInt(w.hi) << 32n) | BigInt(w.lo);
    const pasids = this.device(ref).maxPasids;
    return {
      type: 'amd',
      data: { efr: word(u.efrWords), efr2: word(u.efr2Words) },
      maxPasidLog2: pasids > 0 ? Math.floor(Math.log2(pasids)) : 0,
      capabilities: { dirtyTracking: false, pasidExec: false, pasidPriv: false },
    };
  }

  /**
   * Linux `amd_iommu_get_resv_regions`: the interrupt window as an MSI region, and the HyperTransport range
   * unless EFR2.HTRangeIgnore (no IVMD unity ranges: the platform has no IVRS).
   */
  reservedRegions(_ref: IommuDeviceRef): readonly ReservedRegion[] {
    const regions: ReservedRegion[] = [
      { start: X86_INTERRUPT_WINDOW.base, length: X86_INTERRUPT_WINDOW.size, type: 'msi' },
    ];
    if (!this.probed.unit.efr2.htRangeIgnore)
      regions.push({ start: HT_RANGE.start, length: HT_RANGE.length, type: 'reserved' });
    return regions;
  }

  shutdown(): void {
    const unit = this.unit;
    if (unit === undefined) return;
    shutdownUnit(unit);
    this.unit = undefined;
  }

  private device(ref: IommuDeviceRef): AmdDevice {
    const device = this.devices.get(ref.streamId);
    if (device === undefined)
      throw new IommufdError('ENODEV', `${ref.name} is not probed on ${this.instance}`);
    return device;
  }

  private paging(domain: IommuDomain): AmdPagingDomain {
    if (!(domain instanceof AmdPagingDomain) || !this.attachments.has(domain))
      throw new IommufdError('EINVAL', `domain ${domain.id} is not a paging domain of ${this.instance}`);
    return domain;
  }

  /** The devices a v1 domain is attached to. */
  private v1Targets(domain: AmdPagingDomain): readonly FlushTarget[] {
    return (this.attachments.get(domain) ?? []).map((a) => a.device);
  }

  /** Where a v2 domain is attached, as its flushes address it. */
  private guestTarget(device: AmdDevice, pasid: number): GuestFlushTarget {
    return { deviceId: device.deviceId, ats: device.ats, domainId: device.gcr3!.domainId, pasid };
  }

  /** Linux `amd_iommu_domain_flush_pages`: v1 under its DomainID, v2 at every (device, PASID). */
  private flushPages(domain: AmdPagingDomain, iova: number, size: number): void {
    const places = this.attachments.get(domain) ?? [];
    if (domain.pageTable === 'v1')
      flushDomainPages(this.flushHost, domain.domainId, this.v1Targets(domain), iova, size);
    else
      flushGuestPages(
        this.flushHost,
        places.map((a) => this.guestTarget(a.device, a.pasid)),
        iova,
        size,
      );
  }

  private attach(domain: AmdPagingDomain, device: AmdDevice, pasid: number): void {
    domain.attachments++;
    this.attachments.get(domain)!.push({ device, pasid });
  }

  private detach(domain: AmdPagingDomain, device: AmdDevice, pasid: number): void {
    domain.attachments--;
    const places = this.attachments.get(domain)!;
    places.splice(
      places.findIndex((a) => a.device === device && a.pasid === pasid),
      1,
    );
  }

  /**
   * Linux `set_dte_entry` + `dev_update_dte` + `device_flush_dte` for the device's RID domain, pointing at
   * `gcr3` (the device's table, or none when it is about to be freed).
   */
  private writeDte(device: AmdDevice, gcr3: Gcr3Table | undefined): void {
    const unit = this.probed;
    const { domain } = device;
    const paging = domain instanceof AmdPagingDomain ? domain : undefined;
    const v1 = paging?.pageTable === 'v1' ? paging : undefined;
    const entry =
      domain.type === 'blocked' && gcr3 === undefined
        ? clearedDte()
        : dteFor({
            mode: v1?.levels ?? 0,
            root: v1?.rootPa ?? 0,
            rw: domain.type !== 'blocked',
            domainId: gcr3?.domainId ?? v1?.domainId ?? this.identityId,
            ats: device.ats !== undefined,
            ppr: device.ppr,
            ...(gcr3 && {
              gcr3: {
                root: gcr3.root,
                glx: gcr3.glx,
                guestLevels: unit.unit.gptLevels,
                giov: paging?.pageTable === 'v2',
              },
            }),
          });
    unit.deviceTable.update(device.deviceId, entry);
    unit.deviceTable.flushDevice(device.deviceId, device.ats);
  }

  /**
   * Linux `amd_iommu_set_gcr3` (with `setup_gcr3_table` when the device has no table yet: GLX for its
   * PASID count, a DomainID of its own): the entry written, then `amd_iommu_dev_flush_pasid_all`. Returns
   * whether the table is new (the DTE must then point at it).
   */
  private setGcr3(device: AmdDevice, pasid: number, domain: AmdPagingDomain): boolean {
    const created = device.gcr3 === undefined;
    if (device.gcr3 === undefined) {
      const glx = gcr3Glx(Math.max(device.maxPasids, 1), this.probed.unit.efr.glxSup);
      device.gcr3 = new Gcr3Table(this.probed, glx, this.domainIds!.alloc());
    }
    device.gcr3.update(pasid, domain.rootPa);
    flushPasidAll(this.flushHost, this.guestTarget(device, pasid));
    return created;
  }

  /** Linux `amd_iommu_clear_gcr3`: the entry zeroed, then `amd_iommu_dev_flush_pasid_all`. */
  private clearGcr3(device: AmdDevice, pasid: number): void {
    device.gcr3!.update(pasid, undefined);
    flushPasidAll(this.flushHost, this.guestTarget(device, pasid));
  }

  /** Linux `free_gcr3_table`, once no DTE points at `table`: its levels and its DomainID returned. */
  private freeGcr3(device: AmdDevice, table: Gcr3Table): void {
    device.gcr3 = undefined;
    table.free();
    this.domainIds!.free(table.domainId);
  }

  private get flushHost(): FlushHost {
    const unit = this.probed;
    return { queue: unit.queue, npCache: unit.unit.cap.npCache };
  }

  /**
   * ATS on or off at the device (Linux `pdev_enable_cap_ats` / `pdev_disable_caps`). The ATS capability's
   * invalidate queue depth is not in `IommuDeviceRef`: 0 (32 outstanding) stands for it.
   */
  private setAts(device: AmdDevice, enabled: boolean): void {
    if (!device.atsSupported || enabled === (device.ats !== undefined)) return;
    device.ats = enabled ? { qdep: 0 } : undefined;
    device.ref.pci.setAtsEnabled(enabled);
  }
}
