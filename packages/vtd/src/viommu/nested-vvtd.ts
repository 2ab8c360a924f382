/**
 * The vVT-d in scalable-mode nesting, like QEMU's `intel-iommu,x-flts=on` on iommufd: the guest sees a
 * VT-d unit (the model of `hw/` on its bus, options from `guestOptionsFromHwInfo`: first stage only,
 * caching mode) whose root, context and PASID tables live in guest memory, while the physical unit does
 * the translating — the guest's first-stage tables walked through the VM's stage 2 as nested PASID
 * entries the host driver writes. VT-d has no vIOMMU object in Linux: each guest PASID entry becomes a
 * nested HWPT on the VM's nest-parent HWPT.
 *
 * What is trapped (the guest's queued invalidations, after the model performed them on its own caches),
 * and what it becomes:
 * - PASID-cache invalidation (0x7), context-cache invalidation (0x1), and TE or SRTP in GCMD: the affected
 *   devices' entries are read again from guest memory with the model's own checks (never through its
 *   caches: the VMM's reads are not the unit's), and each
 *   (device, PASID) is bound to what its entry says — PGTT first stage: a nested HWPT from the entry's
 *   FSPTPTR, FLPM, SRE, WPE and EAFE (shared by the bindings of one guest DID and table: two devices in
 *   one guest domain get one HWPT, unless only one of them can send page requests), attached at the RID
 *   for RID_PASID or at the PASID; PGTT pass-through: the stage 2 alone; anything else, or an entry the
 *   model refuses: blocked (an empty HWPT, or no PASID attachment). With translation off the RID uses stage 2 (untranslated DMA is GPA) and PASIDs are
 *   blocked. A PASID-selective PASID-cache invalidation names no device, so every device is looked at for
 *   that PASID, as caching-mode hardware would re-fetch.
 * - PASID-based IOTLB invalidation (0x6): forwarded with IOMMU_HWPT_INVALIDATE to the nested HWPTs of that
 *   guest DID bound at that PASID, page-selective (AM, IH as LEAF) or whole. IOTLB invalidation (0x2):
 *   Table 23 makes it reach every first-stage translation of its DID, so every nested HWPT of the DID (all
 *   of them when global) gets a whole invalidation. If the host refuses one, the entries before it took
 *   effect and the guest's queue stops at the descriptor with IQE (IQEI 0: the unit cannot say why) — the
 *   uAPI returns an errno, no hardware error, and this is the nearest a unit can report it.
 * - Page requests (with host ECAP.PRS, offered to the guest as PRS): the nested HWPTs of devices that can
 *   send page requests (ATS and PRI) route their I/O page faults to one iommufd FAULT queue — attaching
 *   one enables the device's PRI on the host — and `service` puts each request the host reported into the
 *   guest's page request queue (the guest's PRQ event follows); the guest's page group response
 *   descriptor is trapped and answered with IOMMU_FAULT_QUEUE's response, by the cookie of its (vRID,
 *   PASID, PRG index). Such a device's HWPTs are not shared with devices that cannot.
 *   Device-TLB invalidations the guest sends need nothing: the host flushes the Device-TLB with each
 *   forwarded invalidation of a nested HWPT.
 * - Not forwarded, and why: unrecoverable faults. Mainline Linux has no vEVENTQ for VT-d, so a fault the
 *   host records for a nested device stays in the host's log; the guest never sees it (QEMU's x-flts has
 *   the same gap).
 */
import {
  type AssignedDeviceView,
  type IommuFd,
  IommufdError,
  type NestedViommuBackend,
  NO_PASID,
  toHex,
  type ViommuContext,
  type ViommuPersonality,
} from '@iommukit/core';
import { VTD_INV_ALL_PAGES, VTD_INV_FLAGS_LEAF, VTD_S1, type VtdS1Data } from '../driver/nested-domain.js';
import { contextSidMatches } from '../hw/caches.js';
import { effectivePasid, type PasidLookup } from '../hw/config-fetch.js';
import {
  INV_TYPE,
  type InvalidInvDescriptor,
  IQEI,
  PASID_CACHE_GRANULARITY,
  PASID_IOTLB_GRANULARITY,
} from '../hw/inv-descriptors.js';
import type { CacheInvDescriptor } from '../hw/invalidation.js';
import { PAGE_RESPONSE } from '../hw/page-requests.js';
import { FLPM, PGTT } from '../hw/pasid-entry.js';
import { CONTEXT_GRANULARITY, IOTLB_GRANULARITY, TTM } from '../hw/regs.js';
import { VtdHardware } from '../hw/vtd.js';
import { guestOptionsFromHwInfo } from './guest-options.js';

/** What a (device, PASID) is bound to on the host. */
type Binding =
  | { readonly kind: 'blocked' }
  | { readonly kind: 'stage2' }
  | { readonly kind: 'nested'; readonly key: string };

interface GuestDevice {
  readonly view: AssignedDeviceView;
  /** Bindings by PASID; `NO_PASID` is the RID. */
  readonly bindings: Map<number, Binding>;
}

interface SharedHwpt {
  readonly hwptId: number;
  /** The guest DID of the PASID entries it came from. */
  readonly did: number;
  /** `sid:pasid` of the bindings that use it. */
  readonly users: Set<string>;
}

/** What the vVT-d did, for tests and the CLI. */
export interface NestedVvtdStats {
  entriesChecked: number;
  nestedAllocs: number;
  nestedShared: number;
  invalidationsForwarded: number;
  invalidationsRejected: number;
  bindingsRefused: number;
  pageRequestsDelivered: number;
  pageResponsesForwarded: number;
}

/** What the guest's entries ask for at a (device, PASID): a nested binding carries its HWPT's data. */
interface Desired {
  readonly binding: Binding;
  readonly data?: VtdS1Data;
  readonly did?: number;
  /** The nested HWPT routes its I/O page faults to the FAULT queue. */
  readonly faults?: boolean;
}

const BLOCKED: Binding = { kind: 'blocked' };
const STAGE2: Binding = { kind: 'stage2' };

export class NestedVvtd implements ViommuPersonality {
  readonly mode = 'nested';
  readonly mmio: { readonly base: bigint; readonly size: number };
  /** The unit the guest programs. */
  readonly unit: VtdHardware;
  readonly stats: NestedVvtdStats = {
    entriesChecked: 0,
    nestedAllocs: 0,
    nestedShared: 0,
    invalidationsForwarded: 0,
    invalidationsRejected: 0,
    bindingsRefused: 0,
    pageRequestsDelivered: 0,
    pageResponsesForwarded: 0,
  };
  private readonly backend: NestedViommuBackend;
  private readonly devices = new Map<number, GuestDevice>();
  private readonly shared = new Map<string, SharedHwpt>();
  /** An empty IOAS and a HWPT on it: where a blocked RID goes. */
  private blocked: { readonly ioas: number; readonly hwpt: number } | undefined;
  /** The FAULT queue of the nested HWPTs, when the guest's unit takes page requests. */
  private faultId: number | undefined;
  /** Page request groups the guest has not answered: their cookie by `vRID:PASID:PRG index`. */
  private readonly pendingGroups = new Map<string, number>();

  constructor(private readonly ctx: ViommuContext) {
    if (!ctx.nested) throw new Error(`${ctx.name}: a nested vVT-d needs the VM's iommufd backend`);
    this.backend = ctx.nested;
    this.unit = new VtdHardware(
      {
        instance: ctx.name,
        base: ctx.base,
        options: guestOptionsFromHwInfo(ctx.nested.hwInfo),
        bus: ctx.bus,
        tracer: ctx.tracer,
        // Stryker disable next-line ArrowFunction: the VT-d model signals by MSI writes on the bus only; it never asks for a wired line
        irq: (name) => ctx.irq(name),
        ...(ctx.msi ? { msi: ctx.msi } : {}),
      },
      {
        forwardInvalidation: (d) => this.forward(d),
        translationChanged: () => {
          for (const device of this.devices.values()) this.syncDevice(device);
        },
      },
    );
    this.mmio = this.unit.mmio;
    if (this.unit.features.pageRequests) this.faultId = ctx.nested.fd.faultQueueAlloc();
  }

  private get fd(): IommuFd {
    return this.backend.fd;
  }

  addDevice(view: AssignedDeviceView): void {
    const device: GuestDevice = { view, bindings: new Map([[NO_PASID, STAGE2]]) };
    this.devices.set(view.virtualId, device);
    // The VMM attached it to the stage 2; the guest has not turned translation on yet.
    this.syncDevice(device);
    if (this.ctx.tracer.enabled) this.trace('device', `${view.name}: vRID ${toHex(view.virtualId)}`);
  }

  /** Moves the page requests the host reported into the guest's page request queue; returns how many. */
  service(): number {
    if (this.faultId === undefined) return 0;
    let delivered = 0;
    for (const record of this.fd.faultRead(this.faultId)) {
      const device = [...this.devices.values()].find((d) => d.view.devId === record.devId);
      if (device === undefined) continue;
      const pasid = record.pasid ?? NO_PASID;
      this.pendingGroups.set(`${device.view.virtualId}:${pasid}:${record.groupId}`, record.cookie);
      this.unit.pageRequest(device.view.virtualId, {
        pasid,
        iova: record.addr,
        access: record.perm,
        groupIndex: record.groupId,
        last: record.last,
      });
      delivered++;
    }
    this.stats.pageRequestsDelivered += delivered;
    if (delivered > 0 && this.ctx.tracer.enabled)
      this.trace('prq', `${delivered} page request(s) into the guest's page request queue`);
    return delivered;
  }

  destroy(): void {
    const { fd, s2HwptId } = this.backend;
    for (const device of this.devices.values()) {
      for (const pasid of device.bindings.keys()) if (pasid !== NO_PASID) fd.detach(device.view.devId, pasid);
      fd.replace(device.view.devId, s2HwptId);
    }
    this.devices.clear();
    for (const s of this.shared.values()) fd.destroy(s.hwptId);
    this.shared.clear();
    if (this.blocked) {
      fd.destroy(this.blocked.hwpt);
      fd.destroy(this.blocked.ioas);
      this.blocked = undefined;
    }
    if (this.faultId !== undefined) fd.destroy(this.faultId);
    this.faultId = undefined;
    this.pendingGroups.clear();
    this.ctx.bus.removeRegion(this.ctx.name);
    if (this.ctx.tracer.enabled)
      this.trace('destroy', 'vVT-d gone: nested HWPTs destroyed, devices back on stage 2');
  }

  // --- what the guest's entries say -------------------------------------------------------------------

  /**
   * Binds every PASID the device has a binding at, then the RID, to what the guest's entries say now. The
   * PASIDs go first: the host puts the RID on a HWPT that is not PASID-compatible (the VM's stage 2) only
   * while no PASID is attached, so a RID going back to stage 2 (translation off, a pass-through or legacy
   * entry) must wait for the PASIDs to be detached. The other way round cannot happen: no PASID is attached
   * while the RID is on stage 2.
   */
  private syncDevice(device: GuestDevice): void {
    for (const pasid of [...device.bindings.keys()]) if (pasid !== NO_PASID) this.sync(device, pasid);
    this.sync(device, NO_PASID);
  }

  /** The binding the guest's entries ask for at `pasid` (`NO_PASID`: the RID), and the data of a nested one. */
  private desired(device: GuestDevice, pasid: number): Desired {
    const { unit } = this;
    const state = unit.global.state;
    if (!state.enabled) return { binding: pasid === NO_PASID ? STAGE2 : BLOCKED };
    const context = unit.translator.config.context(
      device.view.virtualId,
      state.rootTable,
      state.ttm === TTM.SCALABLE,
    );
    if (context.kind === 'legacy')
      return { binding: context.passThrough && pasid === NO_PASID ? STAGE2 : BLOCKED };
    if (context.kind !== 'scalable') return { binding: BLOCKED };
    const lookup: PasidLookup = unit.translator.config.fetchPasid(effectivePasid(pasid, context), context);
    if (lookup.kind !== 'pasid') return { binding: BLOCKED };
    if (lookup.pgtt === PGTT.PASS_THROUGH) return { binding: STAGE2 };
    // Stryker disable next-line ObjectLiteral: the guest's unit implements only first-stage and pass-through PGTTs (guestOptionsFromHwInfo): fetchPasid faults any other, so this return is never taken
    if (lookup.pgtt !== PGTT.FIRST_STAGE) return { binding: BLOCKED };
    const e = lookup.entry;
    const flags = (e.sre ? VTD_S1.SRE : 0n) | (e.wpe ? VTD_S1.WPE : 0n) | (e.eafe ? VTD_S1.EAFE : 0n);
    const addrWidth = e.flpm === FLPM.LEVEL_5 ? 57 : 48;
    const faults = this.faultId !== undefined && device.view.pageRequests === true;
    const key = `${lookup.did}:${toHex(e.fsptptr)}:${addrWidth}:${flags}${faults ? ':iopf' : ''}`;
    return {
      binding: { kind: 'nested', key },
      data: { pgtblAddr: e.fsptptr, addrWidth, flags },
      did: lookup.did,
      faults,
    };
  }

  /** Re-binds (device, pasid) if the guest's entry changed; a host refusal leaves it blocked. */
  private sync(device: GuestDevice, pasid: number): void {
    this.stats.entriesChecked++;
    const want = this.desired(device, pasid);
    const have = device.bindings.get(pasid);
    if (have !== undefined && sameBinding(have, want.binding)) return;
    try {
      this.bind(device, pasid, want);
    } catch (error) {
      if (!(error instanceof IommufdError)) throw error;
      this.stats.bindingsRefused++;
      if (this.ctx.tracer.enabled)
        this.trace('refused', `${device.view.name} PASID ${pasidName(pasid)}: ${error.message}; blocked`);
      if (!sameBinding(device.bindings.get(pasid) ?? BLOCKED, BLOCKED))
        this.bind(device, pasid, { binding: BLOCKED });
    }
  }

  private bind(device: GuestDevice, pasid: number, want: Desired): void {
    const { fd } = this;
    const devId = device.view.devId;
    const user = `${device.view.virtualId}:${pasid}`;
    const old = device.bindings.get(pasid);
    const b = want.binding;
    if (b.kind === 'blocked' && pasid !== NO_PASID) {
      if (fd.attachedHwpt(devId, pasid) !== undefined) fd.detach(devId, pasid);
    } else {
      const hwpt =
        b.kind === 'stage2'
          ? this.backend.s2HwptId
          : b.kind === 'blocked'
            ? this.blockedHwpt(devId)
            : this.nestedHwpt(devId, b.key, want);
      try {
        if (fd.attachedHwpt(devId, pasid) === undefined) fd.attach(devId, hwpt, pasid);
        else fd.replace(devId, hwpt, pasid);
      } catch (error) {
        if (b.kind === 'nested') this.release(b.key, undefined);
        throw error;
      }
      if (b.kind === 'nested') this.shared.get(b.key)!.users.add(user);
    }
    if (old?.kind === 'nested') this.release(old.key, user);
    // A blocked PASID has no attachment: it is looked at again when the guest invalidates it.
    if (b.kind === 'blocked' && pasid !== NO_PASID) device.bindings.delete(pasid);
    else device.bindings.set(pasid, b);
    if (this.ctx.tracer.enabled)
      this.trace(
        'bind',
        `${device.view.name} ${pasid === NO_PASID ? 'RID' : `PASID ${pasid}`}: ${b.kind === 'nested' ? `nested HWPT ${this.shared.get(b.key)!.hwptId} (guest DID ${want.did}, FSPTPTR ${toHex(want.data!.pgtblAddr)})` : b.kind}`,
      );
  }

  /** The shared nested HWPT for `key`, allocated on first use (a new one has no users yet). */
  private nestedHwpt(devId: number, key: string, want: Desired): number {
    const existing = this.shared.get(key);
    if (existing) {
      this.stats.nestedShared++;
      return existing.hwptId;
    }
    const hwptId = this.fd.hwptAlloc({
      devId,
      ptId: this.backend.s2HwptId,
      flags: { pasid: true },
      data: want.data,
      ...(want.faults ? { faultId: this.faultId } : {}),
    });
    this.shared.set(key, { hwptId, did: want.did!, users: new Set() });
    this.stats.nestedAllocs++;
    return hwptId;
  }

  /** Drops `user` from a shared HWPT; the HWPT goes when nobody uses it. */
  private release(key: string, user: string | undefined): void {
    const s = this.shared.get(key);
    if (!s) return;
    if (user !== undefined) s.users.delete(user);
    if (s.users.size > 0) return;
    this.fd.destroy(s.hwptId);
    this.shared.delete(key);
  }

  private blockedHwpt(devId: number): number {
    if (!this.blocked) {
      const ioas = this.fd.ioasAlloc();
      this.blocked = { ioas, hwpt: this.fd.hwptAlloc({ devId, ptId: ioas, flags: { pasid: true } }) };
    }
    return this.blocked.hwpt;
  }

  // --- the guest's invalidations ------------------------------------------------------------------------

  private forward(d: CacheInvDescriptor): InvalidInvDescriptor | undefined {
    switch (d.type) {
      case INV_TYPE.CONTEXT_CACHE:
        for (const device of this.devices.values())
          if (
            d.granularity !== CONTEXT_GRANULARITY.DEVICE ||
            contextSidMatches(device.view.virtualId, d.sid, d.fm)
          )
            this.syncDevice(device);
        return undefined;
      case INV_TYPE.PASID_CACHE:
        for (const device of this.devices.values()) {
          if (d.granularity === PASID_CACHE_GRANULARITY.PASID) {
            this.sync(device, this.bindingPasid(device, d.pasid));
          } else this.syncDevice(device);
        }
        return undefined;
      case INV_TYPE.PASID_IOTLB:
        return this.invalidate(
          (s, users) =>
            s.did === (d.did & this.didMask) && [...users].some((u) => this.userPasid(u) === d.pasid),
          d.granularity === PASID_IOTLB_GRANULARITY.PAGE
            ? { addr: BigInt(d.addr), npages: 2n ** BigInt(d.am), flags: d.ih ? VTD_INV_FLAGS_LEAF : 0 }
            : ALL,
        );
      case INV_TYPE.IOTLB:
        return this.invalidate(
          (s) => d.granularity === IOTLB_GRANULARITY.GLOBAL || s.did === (d.did & this.didMask),
          ALL,
        );
      case INV_TYPE.PAGE_GROUP_RESPONSE:
        return this.respond(d.rid, d.pasidPresent ? d.pasid : NO_PASID, d.prgIndex, d.respCode);
      // Stryker disable next-line ConditionalExpression: an emptied default falls out of the switch, which returns undefined too
      default:
        return undefined;
    }
  }

  /** The guest answered a page request group: the response goes to the host by the group's cookie. */
  private respond(
    vrid: number,
    pasid: number,
    prgIndex: number,
    code: number,
  ): InvalidInvDescriptor | undefined {
    const key = `${vrid}:${pasid}:${prgIndex}`;
    const cookie = this.pendingGroups.get(key);
    // A response to no group the VMM delivered (the guest's own mistake) has nothing to answer.
    if (cookie === undefined || this.faultId === undefined) return undefined;
    this.pendingGroups.delete(key);
    try {
      this.fd.faultRespond(this.faultId, cookie, code === PAGE_RESPONSE.SUCCESS ? 'success' : 'invalid');
      this.stats.pageResponsesForwarded++;
      return undefined;
    } catch (error) {
      if (!(error instanceof IommufdError)) throw error;
      return {
        iqei: IQEI.INFO_NOT_AVAILABLE,
        invalid: `the host refused the page response: ${error.message}`,
      };
    }
  }

  private get didMask(): number {
    return 2 ** this.unit.features.domainIdBits - 1;
  }

  /** The PASID a guest PASID-cache invalidation of `pasid` concerns for this device: the RID for its RID_PASID. */
  private bindingPasid(device: GuestDevice, pasid: number): number {
    return pasid === this.ridPasid(device.view.virtualId) ? NO_PASID : pasid;
  }

  /** The guest PASID a binding key `vRID:PASID` is at (the RID counts as its RID_PASID). */
  private userPasid(user: string): number {
    const [vrid, pasid] = user.split(':').map(Number) as [number, number];
    return pasid === NO_PASID ? this.ridPasid(vrid) : pasid;
  }

  /** The PASID the device's requests without PASID use now: its context entry's RID_PASID (Linux writes 0). */
  private ridPasid(vrid: number): number {
    const state = this.unit.global.state;
    // Stryker disable next-line ConditionalExpression: with translation off no PASID entry is bound, so no caller needs the answer
    if (!state.enabled) return 0;
    const context = this.unit.translator.config.fetchContext(vrid, state.rootTable, true);
    return context.kind === 'scalable' ? context.entry.ridPasid : 0;
  }

  /** Forwards one invalidation entry to every shared HWPT `which` selects; a refusal becomes the guest's IQE. */
  private invalidate(
    which: (s: SharedHwpt, users: ReadonlySet<string>) => boolean,
    entry: { addr: bigint; npages: bigint; flags: number },
  ): InvalidInvDescriptor | undefined {
    for (const s of this.shared.values()) {
      if (!which(s, s.users)) continue;
      try {
        this.fd.hwptInvalidate(s.hwptId, [entry]);
        this.stats.invalidationsForwarded++;
      } catch (error) {
        if (!(error instanceof IommufdError)) throw error;
        this.stats.invalidationsRejected++;
        if (this.ctx.tracer.enabled)
          this.trace('invalidate', `HWPT ${s.hwptId} refused the guest's invalidation: ${error.message}`);
        return { iqei: IQEI.INFO_NOT_AVAILABLE, invalid: `the host refused it: ${error.message}` };
      }
    }
    return undefined;
  }

  private trace(name: string, message: string): void {
    if (this.ctx.tracer.enabled) this.ctx.tracer.trace('frontend', this.ctx.name, `vvtd.${name}`, message);
  }
}

/** A whole-space `iommu_hwpt_vtd_s1_invalidate`. */
const ALL = { addr: 0n, npages: VTD_INV_ALL_PAGES, flags: 0 };

function sameBinding(a: Binding, b: Binding): boolean {
  return a.kind === b.kind && (a.kind !== 'nested' || a.key === (b as { key: string }).key);
}

function pasidName(pasid: number): string {
  return pasid === NO_PASID ? 'RID' : String(pasid);
}
