/**
 * The SMMUv3 vIOMMU (Linux `struct arm_vsmmu`, arm-smmu-v3-iommufd.c): a VM's slice of one physical SMMU on
 * a nest-parent stage-2 domain, whose VMID tags everything the VM's devices cache. It holds the vDEVICE
 * table (vSID ↔ device), allocates nested domains from vSTEs (`nested-domain.ts`), runs the guest's
 * invalidation commands on the physical Command queue, and forwards the events of its devices to the
 * vEVENTQ.
 *
 * Guest commands (`cacheInvalidate`; uAPI `struct iommu_viommu_arm_smmuv3_invalidate`, one 16-byte
 * command per entry, given here as four little-endian 32-bit words), as `arm_vsmmu_convert_user_cmd`:
 * - CMD_TLBI_NH_ALL / NH_ASID / NH_VA / NH_VAA: the VMID field is replaced by the vIOMMU's;
 * - CMD_TLBI_NSNH_ALL: becomes CMD_TLBI_NH_ALL of the vIOMMU's VMID (the guest may not flush the host);
 * - CMD_CFGI_CD / CFGI_CD_ALL / ATC_INV: the vSID in the StreamID field is replaced by the device's
 *   physical StreamID through the vDEVICE table; an unknown vSID is `EIO`;
 * - anything else is `EIO`.
 * Converted commands go out in batches of 63 + CMD_SYNC (Linux CMDQ_BATCH_ENTRIES − 1). Entries before a
 * failing one are issued before the error is returned, so `handled` counts commands that took effect.
 * Unlike Linux, a converted command the SMMU would refuse (CERROR_ILL: reserved bits, a range TLBI without
 * RIL, …; checked with the model's own decoder) is `EIO` instead of being sent: Linux lets the physical
 * queue stop on it and skips it, so the guest is told nothing, whereas a VMM told `EIO` can raise
 * CERROR_ILL on the guest's own queue, as the SMMU it emulates would.
 *
 * Events (`forwardEvent`, Linux `arm_vmaster_report_event`): a record of a device that has a vDEVICE here
 * and a nested domain attached, and that is not a stage-2 fault (S2 = 0: the guest's business), goes to
 * the vEVENTQ as the same 32 bytes with the StreamID replaced by the vSID. Stage-2 faults stay the host's,
 * and so do stalls: only the host can resume them (see nested-domain.ts).
 */
import {
  type InvalidationResult,
  type IommuDeviceRef,
  type IommuDomain,
  IommufdError,
  type ITracer,
  toHex,
  type ViommuDriverObject,
  type ViommuEventSink,
} from '@iommukit/core';
import { CMD_OPCODE, CMD_WORDS, decodeCommand, encodeTlbiNhAll } from '../hw/commands.js';
import type { Smmuv3Features, Smmuv3IdrExtras } from '../hw/features.js';
import { CMDQ_BATCH_ENTRIES, commandLabel, type Smmuv3Cmdq } from './cmdq.js';
import type { Smmuv3Domain } from './domain.js';
import { Smmuv3NestedDomain, validateGuestSte } from './nested-domain.js';
import { uapiWords } from './uapi-words.js';

/** uAPI IOMMU_VIOMMU_TYPE_ARM_SMMUV3 and IOMMU_VEVENTQ_TYPE_ARM_SMMUV3. */
export const SMMUV3_VIOMMU_TYPE = 'arm-smmuv3';
export const SMMUV3_VEVENT_TYPE = 'arm-smmuv3';

/** What a vIOMMU needs from its driver. */
export interface VsmmuHost {
  readonly instance: string;
  readonly features: Smmuv3Features;
  readonly idr: Smmuv3IdrExtras;
  readonly cmdq: Smmuv3Cmdq;
  readonly tracer: ITracer;
  /** A driver-unique domain id. */
  allocDomainId(): number;
  /** A nested domain was allocated / freed: the driver accepts it for attach, or forgets it. */
  adoptNested(domain: Smmuv3NestedDomain): void;
  releaseNested(domain: Smmuv3NestedDomain): void;
  /** The vIOMMU was destroyed. */
  forget(viommu: Smmuv3Vsmmu): void;
}

export class Smmuv3Vsmmu implements ViommuDriverObject {
  readonly type = SMMUV3_VIOMMU_TYPE;
  /** The stage-2 parent's VMID, forced into the guest's TLB invalidations. */
  readonly vmid: number;
  private readonly byVsid = new Map<number, IommuDeviceRef>();
  private readonly vsidOf = new Map<IommuDeviceRef, number>();

  constructor(
    readonly parent: Smmuv3Domain,
    private readonly host: VsmmuHost,
    private readonly events: ViommuEventSink,
  ) {
    this.vmid = parent.vmid;
  }

  vdeviceAlloc(device: IommuDeviceRef, virtId: bigint): void {
    // The vSID is what the guest puts in 32-bit StreamID fields (commands, events).
    if (virtId >= 1n << 32n)
      throw new IommufdError('EINVAL', `an SMMUv3 vSID is 32 bits; ${toHex(virtId)} is not`);
    const vsid = Number(virtId);
    this.byVsid.set(vsid, device);
    this.vsidOf.set(device, vsid);
    if (this.host.tracer.enabled)
      this.trace('vdevice', `${device.name}: vSID ${toHex(vsid)} → StreamID ${toHex(device.streamId)}`);
  }

  vdeviceDestroy(device: IommuDeviceRef): void {
    const vsid = this.vsidOf.get(device);
    // Stryker disable next-line ConditionalExpression: deleting an absent device and an absent vSID changes nothing
    if (vsid === undefined) return;
    this.vsidOf.delete(device);
    this.byVsid.delete(vsid);
  }

  domainAllocNested(data: unknown): IommuDomain {
    const { features, idr } = this.host;
    const guest = validateGuestSte(data, { features, idr, parentSte: this.parent.ste(false) });
    const domain = new Smmuv3NestedDomain(this.host.allocDomainId(), guest, {
      parent: this.parent,
      configurableStalls: features.stallModel === 'stall',
      vsid: (device) => this.vsidOf.get(device),
      forwardEvent: (device, record) => this.forwardEvent(device, record),
      release: (d) => this.host.releaseNested(d),
    });
    this.host.adoptNested(domain);
    if (this.host.tracer.enabled)
      this.trace(
        'nested.alloc',
        `nested domain ${domain.id}: guest ${domain.guestConfig}${domain.enableAts ? ' with ATS' : ''} on VMID ${this.vmid}`,
      );
    return domain;
  }

  cacheInvalidate(entries: readonly unknown[]): InvalidationResult {
    const batch: Uint32Array[] = [];
    let issued = 0;
    const flush = (): IommufdError | undefined => {
      if (batch.length === 0) return undefined;
      try {
        this.host.cmdq.submit(batch);
      } catch (error) {
        // Stryker disable next-line ConditionalExpression: submit fails only with IommufdError; the check keeps a programming error from becoming a result
        if (error instanceof IommufdError) return error;
        throw error;
      }
      issued += batch.length;
      batch.length = 0;
      return undefined;
    };
    for (const entry of entries) {
      let command: Uint32Array;
      try {
        command = this.convert(entry);
      } catch (error) {
        // Stryker disable next-line ConditionalExpression: convert fails only with IommufdError; the check keeps a programming error from becoming a result
        if (!(error instanceof IommufdError)) throw error;
        // The entries before this one take effect first.
        const submitError = flush();
        return { handled: issued, error: submitError ?? error };
      }
      batch.push(command);
      if (batch.length === CMDQ_BATCH_ENTRIES - 1) {
        const error = flush();
        if (error) return { handled: issued, error };
      }
    }
    const error = flush();
    return error ? { handled: issued, error } : { handled: issued };
  }

  /**
   * Forwards an event record of `device` to the vEVENTQ with its vSID; false when the device has no
   * vDEVICE here (the host reports it).
   */
  forwardEvent(device: IommuDeviceRef, record: Uint32Array): boolean {
    const vsid = this.vsidOf.get(device);
    if (vsid === undefined) return false;
    const event = Uint32Array.from(record);
    event[1] = vsid;
    this.events.report(SMMUV3_VEVENT_TYPE, event);
    return true;
  }

  destroy(): void {
    this.byVsid.clear();
    this.vsidOf.clear();
    this.host.forget(this);
  }

  /** A guest command as the physical SMMU gets it (see the module comment); `EIO` if not accepted. */
  private convert(entry: unknown): Uint32Array {
    const words = commandWords(entry);
    const opcode = words[0]! & 0xff;
    switch (opcode) {
      case CMD_OPCODE.TLBI_NSNH_ALL:
        return encodeTlbiNhAll({ vmid: this.vmid });
      case CMD_OPCODE.TLBI_NH_ALL:
      case CMD_OPCODE.TLBI_NH_ASID:
      case CMD_OPCODE.TLBI_NH_VA:
      case CMD_OPCODE.TLBI_NH_VAA:
        // VMID is bits [47:32]: the low half of word 1.
        words[1] = ((words[1]! & 0xffff_0000) | this.vmid) >>> 0;
        break;
      case CMD_OPCODE.CFGI_CD:
      case CMD_OPCODE.CFGI_CD_ALL:
      case CMD_OPCODE.ATC_INV: {
        // StreamID is bits [63:32]: word 1.
        const device = this.byVsid.get(words[1]!);
        if (!device) {
          throw new IommufdError('EIO', `${commandLabel(words)}: no vDEVICE with vSID ${toHex(words[1]!)}`, {
            vsid: words[1],
          });
        }
        words[1] = device.streamId;
        break;
      }
      default:
        throw new IommufdError(
          'EIO',
          `${commandLabel(words)} is not a command a guest may issue through the vIOMMU`,
          { opcode },
        );
    }
    // Stryker disable next-line ObjectLiteral: of the ID register extras only IDR0.Hyp matters, to the EL2 TLBIs convert() refuses first
    const decoded = decodeCommand(words, this.host.features, { idr: this.host.idr });
    if (!decoded.ok) {
      throw new IommufdError('EIO', `${commandLabel(words)}: CERROR_ILL on the SMMU: ${decoded.reason}`, {
        opcode,
      });
    }
    return words;
  }

  private trace(name: string, message: string): void {
    // Stryker disable next-line ConditionalExpression: Tracer.trace is a no-op when disabled; the check only saves building the message
    if (this.host.tracer.enabled)
      this.host.tracer.trace('driver', this.host.instance, `vsmmu.${name}`, message);
  }
}

/** An invalidation entry as the command's four words; `EINVAL` for anything else (a bad uAPI entry). */
function commandWords(entry: unknown): Uint32Array {
  const words = uapiWords(entry, CMD_WORDS);
  if (!words)
    throw new IommufdError(
      'EINVAL',
      `an SMMUv3 invalidation entry is one command: ${CMD_WORDS} 32-bit words`,
    );
  return words;
}
