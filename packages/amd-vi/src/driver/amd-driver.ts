/**
 * The AMD IOMMU host driver (`IommuDriver`), in Linux's drivers/iommu/amd role: probe (probe.ts), the
 * devices by DeviceID (the PCI requester ID), v1 paging domains with a DomainID each (paging-domain.ts),
 * the blocked and identity domains, the device table entries each attachment writes (device-table.ts),
 * the flushes every change needs (domain-flush.ts, command-queue.ts), the event interrupt (event-irq.ts),
 * hw_info and reserved regions.
 *
 * Attach (Linux `amd_iommu_attach_device`, `attach_device`, `dev_update_dte`, `detach_device`): ATS is
 * enabled at the device for a translating domain when the unit has IotlbSup (`pdev_enable_cap_ats`), the
 * entry is written (`set_dte_entry`: paging Mode/root/DomainID, identity Mode 0 with the identity domain's
 * DomainID; blocked: `clear_dte_entry`, V only), the DTE and the device's IOTLB flushed
 * (`device_flush_dte`), then the previous paging domain's translations (`amd_iommu_domain_flush_all`) and
 * ATS turned off when the new domain is blocked (`pdev_disable_caps`). Linux detaches first, so the device
 * is blocked in between; here the new entry replaces the old one directly, which `update_dte256` makes
 * atomic for translation (the fields are all in the lower 128 bits, written at once), so a replace is
 * hitless as the core prefers.
 *
 * Later, and where they slot in: PASID attach and v2 domains (`setDevPasid`, GCR3 tables: the DTE's GV,
 * GLX and GCR3 root in `dteFor`, the GV cases of `DriverDeviceTable.update`, PASID flushes with GN in
 * domain-flush.ts); nesting (`viommuAlloc` / `domainAllocNested` with `iommu_hwpt_amd_guest`, a nested DTE
 * over a nest-parent v1 domain — GCR3TRPMode is already on); interrupt remapping (`interruptRemapping`, the
 * DTE's interrupt half that `update` already preserves, GAEn/XTEn in probe.ts); the PPR log's draining and
 * `pageResponse` (COMPLETE_PPR_REQUEST, DTE.PPR through `DteConfig.ppr`, the PPR interrupt in event-irq.ts);
 * dirty tracking (DTE.HAD with EFR.HDSup).
 */
import {
  type DriverContext,
  type HwInfo,
  type IommuDeviceRef,
  type IommuDomain,
  type IommuDriver,
  IommufdError,
  type PagingDomainFlags,
  type ReservedRegion,
  StaticDomain,
  X86_INTERRUPT_WINDOW,
} from '@iommukit/core';
import type { AmdOptions } from '../hw/options.js';
import { DEVICE_IDS } from './command-queue.js';
import { clearedDte, dteFor } from './device-table.js';
import { type FlushHost, type FlushTarget, flushDomainAll, flushDomainPages } from './domain-flush.js';
import { DomainIds } from './domain-ids.js';
import { AmdPagingDomain, amdDomainLevels } from './paging-domain.js';
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
  private readonly attachments = new Map<AmdPagingDomain, Set<AmdDevice>>();
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

  probe(): void {
    this.unit = probeUnit(this.context, (deviceId) => this.devices.get(deviceId)?.ref);
    this.domainIds = new DomainIds(this.instance);
    this.identityId = this.domainIds.alloc();
  }

  /** Linux `amd_iommu_probe_device`: the device starts blocked by its boot entry (V, TV, no IR/IW). */
  probeDevice(ref: IommuDeviceRef): void {
    const unit = this.probed;
    const deviceId = ref.streamId;
    if (!Number.isInteger(deviceId) || deviceId < 0 || deviceId >= DEVICE_IDS)
      throw new IommufdError('EINVAL', `${ref.name}: DeviceID ${deviceId} is not 16 bits`);
    if (this.devices.has(deviceId)) throw new IommufdError('EEXIST', `${ref.name} is already probed`);
    this.devices.set(deviceId, {
      ref,
      deviceId,
      domain: this.blockedDomain,
      atsSupported: unit.unit.cap.iotlbSup && ref.pci.hasAts,
      ats: undefined,
    });
  }

  /** Linux `amd_iommu_release_device`: the device blocked, then forgotten. */
  releaseDevice(ref: IommuDeviceRef): void {
    this.attachDev(this.blockedDomain, ref);
    this.devices.delete(ref.streamId);
  }

  domainAllocPaging(flags: PagingDomainFlags = {}): IommuDomain {
    const unit = this.probed;
    if (flags.nestParent || flags.dirtyTracking || flags.pasid)
      throw new IommufdError('EOPNOTSUPP', `${this.instance}: only plain v1 paging domains so far`);
    const ids = this.domainIds!;
    const domainId = ids.alloc();
    let domain: AmdPagingDomain;
    try {
      domain = new AmdPagingDomain({
        id: this.nextDomainId++,
        domainId,
        levels: amdDomainLevels(unit.unit.hostLevels),
        context: {
          bus: unit.bus,
          memory: unit.memory,
          counter: unit.counter,
          tracer: unit.tracer,
          source: this.instance,
        },
        npCache: unit.unit.cap.npCache,
        flush: {
          pages: (d, iova, size) => flushDomainPages(this.flushHost, d.domainId, this.targets(d), iova, size),
          all: (d) => flushDomainAll(this.flushHost, d.domainId, this.targets(d)),
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
    this.attachments.set(domain, new Set());
    return domain;
  }

  attachDev(domain: IommuDomain, ref: IommuDeviceRef): void {
    const unit = this.probed;
    const device = this.device(ref);
    if (device.domain === domain) return;
    const paging = domain.type === 'paging' ? this.paging(domain) : undefined;
    if (domain.type !== 'blocked' && domain !== this.identityDomain && paging === undefined)
      throw new IommufdError('EINVAL', `domain ${domain.id} is not a domain of ${this.instance}`);
    const old = device.domain;
    if (domain.type !== 'blocked') this.setAts(device, true);
    const entry =
      domain.type === 'blocked'
        ? clearedDte()
        : dteFor({
            mode: paging?.levels ?? 0,
            root: paging?.rootPa ?? 0,
            domainId: paging?.domainId ?? this.identityId,
            ats: device.ats !== undefined,
            ppr: false,
          });
    unit.deviceTable.update(device.deviceId, entry);
    unit.deviceTable.flushDevice(device.deviceId, device.ats);
    if (paging) {
      paging.attachments++;
      this.attachments.get(paging)!.add(device);
    }
    device.domain = domain;
    if (old instanceof AmdPagingDomain) {
      flushDomainAll(this.flushHost, old.domainId, this.targets(old));
      old.attachments--;
      this.attachments.get(old)!.delete(device);
    }
    if (domain.type === 'blocked') this.setAts(device, false);
  }

  hwInfo(_ref: IommuDeviceRef): HwInfo {
    const u = this.probed.unit;
    const word = (w: { lo: number; hi: number }) => (BigInt(w.hi) << 32n) | BigInt(w.lo);
    return {
      type: 'amd',
      data: { efr: word(u.efrWords), efr2: word(u.efr2Words) },
      maxPasidLog2: 0,
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

  private targets(domain: AmdPagingDomain): readonly FlushTarget[] {
    return [...(this.attachments.get(domain) ?? [])];
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
