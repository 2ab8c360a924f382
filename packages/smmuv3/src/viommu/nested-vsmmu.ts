/**
 * The vSMMUv3 in nested (accelerated) mode, like QEMU's `arm-smmuv3,accel=on`: the guest sees an SMMUv3
 * (the programming interface of `hw/`, with ID registers derived from the host's hw_info by
 * `guestOptionsFromHwInfo`) whose queues and tables live in guest memory, while the physical SMMU does the
 * translating — the guest's CD tables and stage-1 tables walked through the VM's stage 2.
 *
 * What is trapped, and what it becomes (docs/design.md §7 flow 1):
 * - The first device behind the vSMMU: an `arm-smmuv3` vIOMMU on the VM's nest-parent HWPT, two shared
 *   nested HWPTs (abort and bypass vSTEs), a vEVENTQ; then per device a vDEVICE (vSID ↔ device) before any
 *   nested attach.
 * - CMD_CFGI_STE / STE_RANGE / ALL: the guest's STE is read from its Stream table in guest memory (as the
 *   SMMU would fetch it) and checked as the SMMU checks it. V = 0 or Config = abort attach the shared
 *   abort HWPT, bypass the shared bypass HWPT (stage 2 only), stage 1 a nested HWPT made from STE qwords
 *   0–1 (masked to the fields the kernel takes). Nested HWPTs are shared between STEs with the same
 *   S1ContextPtr (and the same stage-1 fields): two devices on one guest CD table get one HWPT; a new
 *   S1ContextPtr gets a new one. The device's attachment is replaced, and the HWPT it leaves is freed only
 *   after the replace succeeded and nobody uses it. An STE the SMMU would refuse (C_BAD_STE, C_BAD_STREAMID,
 *   F_STE_FETCH) or the host rejects (`EIO`) attaches abort and, when the guest's CFGI asked for it, puts
 *   that event in the guest's Event queue (at the invalidation, not at the next transaction). STEs read
 *   because the guest set SMMUEN record nothing: its Stream table may not be built yet.
 * - While the guest has SMMUEN = 0, devices follow GBPA: abort or bypass.
 * - CMD_TLBI_NH_* / TLBI_NSNH_ALL / CFGI_CD(_ALL) / ATC_INV: collected and forwarded with one
 *   IOMMU_HWPT_INVALIDATE on the vIOMMU at the guest's next CMD_SYNC (or before an STE trap, to keep the
 *   order); the host rewrites VMIDs and vSIDs. If the host rejects entry k, entries before it took
 *   effect, and the guest's queue stops at that command: CONS points at it, CONS.ERR = ILL and
 *   GERROR.CMDQ_ERR, as an SMMU reports an illegal command. Commands the guest's SMMU does not have
 *   (stage 2, EL2, PRI, stalls) are CERROR_ILL by the decoder already; prefetches do nothing.
 * - Host events for the vSMMU's devices come from the vEVENTQ (`service`): each record, already carrying
 *   the vSID, goes into the guest's Event queue (interrupting the guest); a lost-events marker puts the
 *   guest's Event queue into overflow.
 */
import {
  type AssignedDeviceView,
  type IommufdError,
  type NestedViommuBackend,
  toHex,
  type ViommuContext,
  type ViommuPersonality,
} from '@iommukit/core';
import { CMDQ_BATCH_ENTRIES } from '../driver/cmdq.js';
import { STE_NESTING_ALLOWED } from '../driver/entry-used.js';
import { VSTE_WORDS } from '../driver/nested-domain.js';
import { SMMUV3_VEVENT_TYPE, SMMUV3_VIOMMU_TYPE } from '../driver/vsmmu.js';
import type { CommandOutcome } from '../hw/command-queue.js';
import { type Command, cfgiSteRangeStreamIds, encodeCommand } from '../hw/commands.js';
import { EVENT_ID, type EventName, encodeEvent } from '../hw/events.js';
import type { Smmuv3Features } from '../hw/features.js';
import { DEFAULT_IDR_EXTRAS } from '../hw/features.js';
import { featuresFromOptions } from '../hw/options.js';
import { Smmuv3ProgrammingInterface } from '../hw/programming-interface.js';
import { REG } from '../hw/regs.js';
import { checkSte, decodeSte, encodeSte, STE_CONFIG, STE_WORDS } from '../hw/ste.js';
import { fetchSteWords } from '../hw/ste-fetch.js';
import { guestOptionsFromHwInfo } from './guest-options.js';

/** vEVENTQ depth the vSMMU asks for. */
const VEVENTQ_DEPTH = 64;

interface GuestDevice {
  readonly view: AssignedDeviceView;
  readonly vdeviceId: number;
  /** HWPT the device is attached to. */
  hwptId: number;
  /** The shared nested HWPT it uses, by key (undefined on abort / bypass). */
  nestedKey: string | undefined;
}

interface SharedHwpt {
  readonly hwptId: number;
  readonly users: Set<number>;
}

/** A guest command waiting for the next CMD_SYNC, with the CONS value it was consumed at. */
interface PendingCommand {
  readonly words: Uint32Array;
  readonly cons: number;
  readonly label: string;
}

/** What the vSMMU did, for tests and the CLI. */
export interface NestedVsmmuStats {
  steTraps: number;
  nestedAllocs: number;
  nestedShared: number;
  invalidations: number;
  commandsForwarded: number;
  commandsRejected: number;
  eventsDelivered: number;
}

export class NestedVsmmu implements ViommuPersonality {
  readonly mode = 'nested';
  readonly mmio: { readonly base: bigint; readonly size: number };
  readonly features: Smmuv3Features;
  readonly programming: Smmuv3ProgrammingInterface;
  readonly stats: NestedVsmmuStats = {
    steTraps: 0,
    nestedAllocs: 0,
    nestedShared: 0,
    invalidations: 0,
    commandsForwarded: 0,
    commandsRejected: 0,
    eventsDelivered: 0,
  };
  private readonly backend: NestedViommuBackend;
  private readonly devices = new Map<number, GuestDevice>();
  private readonly shared = new Map<string, SharedHwpt>();
  private pending: PendingCommand[] = [];
  private viommu:
    | { readonly id: number; readonly abort: number; readonly bypass: number; readonly veventq: number }
    | undefined;
  private enabled = false;
  private readonly words = new Uint32Array(STE_WORDS);
  private readonly counter;

  constructor(private readonly ctx: ViommuContext) {
    if (!ctx.nested) throw new Error(`${ctx.name}: a nested vSMMU needs the VM's iommufd backend`);
    this.backend = ctx.nested;
    const options = guestOptionsFromHwInfo(ctx.nested.hwInfo);
    this.features = featuresFromOptions(options);
    this.counter = ctx.bus.counter(ctx.name);
    this.programming = new Smmuv3ProgrammingInterface({
      features: this.features,
      options,
      bus: ctx.bus,
      counter: this.counter,
      execute: (command) => this.execute(command),
      irq: (name) => ctx.irq(name),
      onCr0Written: (state) => {
        if (state.smmuEnabled === this.enabled) return;
        this.enabled = state.smmuEnabled;
        this.trace(
          'cr0',
          `guest ${this.enabled ? 'enabled' : 'disabled'} the vSMMU (SMMUEN = ${Number(this.enabled)})`,
        );
        for (const device of this.devices.values()) this.syncDevice(device, false);
      },
    });
    ctx.bus.addMmio(ctx.name, ctx.base, this.programming.size, this.programming.regs);
    this.mmio = { base: ctx.base, size: this.programming.size };
  }

  /** The nested HWPT IDs in use, with their users' vSIDs (for tests and traces). */
  sharedHwpts(): { hwptId: number; vsids: number[] }[] {
    return [...this.shared.values()].map((s) => ({ hwptId: s.hwptId, vsids: [...s.users] }));
  }

  /** The HWPT a device is attached to now. */
  attachment(vsid: number): number | undefined {
    return this.devices.get(vsid)?.hwptId;
  }

  addDevice(view: AssignedDeviceView): void {
    const v = this.ensureViommu();
    const vdeviceId = this.backend.fd.vdeviceAlloc(v.id, view.devId, BigInt(view.virtualId));
    if (this.ctx.tracer.enabled)
      this.trace('vdevice', `${view.name}: vDEVICE ${vdeviceId}, vSID ${toHex(view.virtualId)}`);
    const device: GuestDevice = { view, vdeviceId, hwptId: this.backend.s2HwptId, nestedKey: undefined };
    this.devices.set(view.virtualId, device);
    this.syncDevice(device, false);
  }

  service(): number {
    if (!this.viommu) return 0;
    const events = this.backend.fd.veventqRead(this.viommu.veventq);
    const eventq = this.programming.queues.eventq;
    for (const event of events) {
      if (event.lostEvents) eventq.markOverflow();
      if (event.record) {
        eventq.record(event.record);
        this.stats.eventsDelivered++;
      }
    }
    if (this.ctx.tracer.enabled && events.length > 0)
      this.trace('vevent', `${events.length} vEVENTQ record(s) into the guest's Event queue`);
    return events.length;
  }

  destroy(): void {
    const { fd, s2HwptId } = this.backend;
    for (const device of this.devices.values()) {
      fd.replace(device.view.devId, s2HwptId);
      fd.destroy(device.vdeviceId);
    }
    this.devices.clear();
    for (const s of this.shared.values()) fd.destroy(s.hwptId);
    this.shared.clear();
    if (this.viommu) {
      for (const id of [this.viommu.abort, this.viommu.bypass, this.viommu.veventq, this.viommu.id])
        fd.destroy(id);
      this.viommu = undefined;
    }
    this.ctx.bus.removeRegion(this.ctx.name);
    if (this.ctx.tracer.enabled)
      this.trace('destroy', 'vSMMU gone: nested HWPTs, vDEVICEs, vEVENTQ and vIOMMU destroyed');
  }

  // --- commands -------------------------------------------------------------------------------------

  private execute(command: Command): CommandOutcome {
    switch (command.op) {
      case 'CFGI_STE':
        return this.trapSte(command.streamId, 1);
      case 'CFGI_STE_RANGE': {
        const { first, count } = cfgiSteRangeStreamIds(command.streamId, command.range);
        return this.trapSte(first, count);
      }
      case 'CFGI_ALL':
        return this.trapSte(0, 2 ** this.features.sidBits);
      case 'CFGI_CD':
      case 'CFGI_CD_ALL':
      case 'TLBI_NH_ALL':
      case 'TLBI_NH_ASID':
      case 'TLBI_NH_VA':
      case 'TLBI_NH_VAA':
      case 'TLBI_NSNH_ALL':
      case 'ATC_INV':
        this.pending.push({
          words: encodeCommand(command),
          cons: this.programming.regs.get(REG.CMDQ_CONS),
          label: `CMD_${command.op}`,
        });
        return this.pending.length >= CMDQ_BATCH_ENTRIES ? this.flush() : { ok: true };
      case 'SYNC':
        return this.flush();
      default:
        // Prefetches are hints.
        return { ok: true };
    }
  }

  /** Forwards the collected commands; on a rejection the guest's queue stops at the rejected one. */
  private flush(): CommandOutcome {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0 || !this.viommu) return { ok: true };
    this.stats.invalidations++;
    try {
      this.backend.fd.hwptInvalidate(
        this.viommu.id,
        batch.map((c) => c.words),
      );
      this.stats.commandsForwarded += batch.length;
      if (this.ctx.tracer.enabled)
        this.trace(
          'forward',
          `${batch.map((c) => c.label).join(', ')} → IOMMU_HWPT_INVALIDATE on vIOMMU ${this.viommu.id}`,
        );
      return { ok: true };
    } catch (error) {
      const handled = Number((error as IommufdError).context?.handled ?? 0);
      const rejected = batch[handled] ?? batch[0]!;
      this.stats.commandsForwarded += handled;
      this.stats.commandsRejected++;
      // The guest's CONS goes back to the rejected command: it and what follows are not consumed.
      this.programming.regs.set(REG.CMDQ_CONS, rejected.cons);
      const reason = `host rejected ${rejected.label}: ${(error as Error).message}`;
      if (this.ctx.tracer.enabled)
        this.trace(
          'forward.reject',
          `${reason}; ${handled} command(s) before it took effect; guest CMDQ stops with CERROR_ILL`,
        );
      return { ok: false, error: 'ILL', reason };
    }
  }

  /** CFGI_STE and friends: the earlier commands first (order), then each affected device's STE. */
  private trapSte(first: number, count: number): CommandOutcome {
    const flushed = this.flush();
    if (!flushed.ok) return flushed;
    for (const device of this.devices.values()) {
      const vsid = device.view.virtualId;
      if (vsid >= first && vsid < first + count) this.syncDevice(device, true);
    }
    return { ok: true };
  }

  // --- STEs → HWPTs --------------------------------------------------------------------------------

  /**
   * Attaches the device to what its guest configuration says (see the module comment); `report` puts the
   * event for an unusable STE into the guest's Event queue.
   */
  private syncDevice(device: GuestDevice, report: boolean): void {
    const v = this.ensureViommu();
    const state = this.programming.state;
    const vsid = device.view.virtualId;
    if (!state.smmuEnabled) {
      this.attach(device, state.gbpaAbort ? v.abort : v.bypass, undefined);
      return;
    }
    this.stats.steTraps++;
    const fetched = fetchSteWords(this.ctx.bus, this.counter, state, this.features.sidBits, vsid, this.words);
    if (!fetched.ok) {
      // The guest's CR2.RECINVSID decides whether C_BAD_STREAMID is recorded (§6.3.12).
      const record = report && (fetched.event !== 'C_BAD_STREAMID' || state.recordInvalidStreamIds);
      this.refuse(device, record, fetched.event, fetched.reason, fetched.fetchAddr);
      return;
    }
    const ste = decodeSte(this.words);
    const check = checkSte(ste, this.features, DEFAULT_IDR_EXTRAS);
    if (!check.ok) {
      this.refuse(device, report, 'C_BAD_STE', check.reason);
      return;
    }
    if (!ste.v || ste.config === STE_CONFIG.ABORT) {
      this.attach(device, v.abort, undefined);
      return;
    }
    if (ste.config === STE_CONFIG.BYPASS) {
      this.attach(device, v.bypass, undefined);
      return;
    }
    // Stage 1: the kernel's nested HWPT data is qwords 0–1, in the fields it takes.
    const vste = Uint32Array.from(
      { length: VSTE_WORDS },
      (_, w) => (this.words[w]! & STE_NESTING_ALLOWED[w]!) >>> 0,
    );
    const key = Array.from(vste, (w) => w.toString(16)).join('.');
    let hwpt = this.shared.get(key);
    if (hwpt) {
      this.stats.nestedShared++;
    } else {
      let hwptId: number;
      try {
        hwptId = this.backend.fd.hwptAlloc({ devId: device.view.devId, ptId: v.id, data: { ste: vste } });
      } catch (error) {
        this.refuse(device, report, 'C_BAD_STE', `the host refused the vSTE: ${(error as Error).message}`);
        return;
      }
      hwpt = { hwptId, users: new Set() };
      this.shared.set(key, hwpt);
      this.stats.nestedAllocs++;
    }
    if (this.ctx.tracer.enabled)
      this.trace(
        'ste',
        `vSID ${toHex(vsid)}: guest STE at ${toHex(fetched.address)} (S1, CD table ${toHex(ste.s1ContextPtr)}) → nested HWPT ${hwpt.hwptId}${hwpt.users.size > 0 ? ' (shared)' : ' (new)'}`,
      );
    this.attach(device, hwpt.hwptId, key);
  }

  /** Replaces the device's attachment; the nested HWPT it leaves goes once unused. */
  private attach(device: GuestDevice, hwptId: number, key: string | undefined): void {
    if (device.hwptId !== hwptId) {
      this.backend.fd.replace(device.view.devId, hwptId);
      device.hwptId = hwptId;
    }
    if (device.nestedKey === key) return;
    const old = device.nestedKey === undefined ? undefined : this.shared.get(device.nestedKey);
    if (key !== undefined) this.shared.get(key)!.users.add(device.view.virtualId);
    device.nestedKey = key;
    if (old) {
      old.users.delete(device.view.virtualId);
      if (old.users.size === 0) {
        this.backend.fd.destroy(old.hwptId);
        for (const [k, s] of this.shared) if (s === old) this.shared.delete(k);
        if (this.ctx.tracer.enabled) this.trace('hwpt.free', `nested HWPT ${old.hwptId} unused: destroyed`);
      }
    }
  }

  /** An STE the SMMU would not use: abort, and (if `report`) the event it would record, for the guest. */
  private refuse(
    device: GuestDevice,
    report: boolean,
    event: EventName,
    reason: string,
    fetchAddr?: number,
  ): void {
    const v = this.ensureViommu();
    this.attach(device, v.abort, undefined);
    if (report) {
      const record = {
        id: EVENT_ID[event],
        streamId: device.view.virtualId,
        ...(fetchAddr !== undefined ? { fetchAddr } : {}),
      };
      this.programming.queues.eventq.record(encodeEvent(record));
    }
    if (this.ctx.tracer.enabled)
      this.trace(
        'ste.refuse',
        `vSID ${toHex(device.view.virtualId)}: ${event} (${reason}); attached to abort`,
      );
  }

  private ensureViommu() {
    if (this.viommu) return this.viommu;
    const { fd, s2HwptId, anyDevId } = this.backend;
    const id = fd.viommuAlloc(anyDevId, s2HwptId, SMMUV3_VIOMMU_TYPE);
    const vste = (config: number) => encodeSte({ v: true, config }).slice(0, VSTE_WORDS);
    const abort = fd.hwptAlloc({ devId: anyDevId, ptId: id, data: { ste: vste(STE_CONFIG.ABORT) } });
    const bypass = fd.hwptAlloc({ devId: anyDevId, ptId: id, data: { ste: vste(STE_CONFIG.BYPASS) } });
    const veventq = fd.veventqAlloc(id, SMMUV3_VEVENT_TYPE, VEVENTQ_DEPTH);
    this.viommu = { id, abort, bypass, veventq };
    if (this.ctx.tracer.enabled)
      this.trace(
        'viommu',
        `vIOMMU ${id} on HWPT ${s2HwptId}, abort HWPT ${abort}, bypass HWPT ${bypass}, vEVENTQ ${veventq}`,
      );
    return this.viommu;
  }

  private trace(name: string, message: string): void {
    if (this.ctx.tracer.enabled) this.ctx.tracer.trace('frontend', this.ctx.name, `vsmmu.${name}`, message);
  }
}
