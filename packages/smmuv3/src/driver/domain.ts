/**
 * SMMUv3 paging domains (Linux `struct arm_smmu_domain`) and the static blocked/identity domains.
 *
 * A paging domain is one VMSAv8-64 page table (`IoPageTable`) and the tag the TLB keys it with:
 * - stage 1 (the default, as Linux prefers it): a stage-1 format — 4K granule when IDR5 has it (else 16K,
 *   else 64K), IAS 48 (Linux caps it at the CPU's VA_BITS; IDR5.VAX only widens it), OAS from IDR5 (48 at
 *   most without the 64K granule) — and an ASID. It is installed as a CD (`s1CdForTable`) in the CD table
 *   of each master it is attached to, at SubstreamID 0 for the RID or at a PASID.
 * - stage 2 (`nestParent`, or an SMMU without stage 1): IAS = OAS from IDR5, and a VMID; it is installed
 *   in the STE itself (`s2Ste`: S2TTB, VTCR fields, S2VMID).
 *
 * Invalidation (Linux `arm_smmu_tlb_inv_range_domain`): `unmap` only gathers what the page table reports
 * (`tlbAddPage` for leaves, `tlbFlushWalk` for freed tables and split blocks); `iotlbSync` turns the gather
 * into TLBI_NH_VA (stage 1: VMID 0, the ASID) or TLBI_S2_IPA (stage 2: the VMID) commands, Leaf = 1 for
 * leaf ranges and 0 for walk ranges, one range command per run with IDR3.RIL (`splitTlbiRange`), one
 * per 4 KiB page without it — 512 or more of those (Linux CMDQ_MAX_TLBI_OPS) become one TLBI_NH_ASID /
 * TLBI_S12_VMALL — then CMD_SYNC. A nest parent also gets TLBI_NH_ALL for its VMID + CMD_SYNC, since
 * nested (combined) TLB entries are tagged by ASID and VMID, not by IPA. Last, every attached master
 * with ATS gets CMD_ATC_INV over the gathered span (SSV for a PASID attachment) + CMD_SYNC: the ATC is
 * invalidated after the TLB, so it cannot refill from a stale TLB entry.
 *
 * Sharing across SMMUs (the instance option `shareDomains`; mainline Linux refuses it with EINVAL, a posted
 * series allows it with a per-domain array of per-SMMU invalidation targets): a domain allocated on one SMMU
 * joins another when a master behind it is attached, getting its own ASID or VMID there from that SMMU's
 * allocator; `iotlbSync` and `free` then send each SMMU its own commands, and an SMMU whose last
 * attachment goes is left with a TLBI of its tag and the tag freed. The page table is the one table in
 * host memory every SMMU walks.
 *
 * Dirty tracking (Linux `IO_PGTABLE_QUIRK_ARM_HD`): the table marks writable leaves DBM, the CD gets
 * HA = HD = 1 (stage 1) or the STE S2HA = S2HD = 1 (stage 2, beyond Linux, which tracks stage 1 only), so
 * the SMMU sets the dirty state on a write. Tracking is always on for such a domain, as in Linux, where
 * `set_dirty_tracking` has nothing to do; `readAndClearDirty` walks the table and flushes the TLB for the
 * leaves it cleaned (a cached writable-dirty entry would let writes through without marking them).
 */
import {
  type AccessCounter,
  type DomainType,
  type Hpa,
  hpa,
  type IFrameAllocator,
  type IommuDomain,
  IommufdError,
  IotlbGather,
  type Iova,
  type IovaRange,
  type ITracer,
  type MemoryBus,
  iova as makeIova,
  mergeRanges,
  NO_PASID,
  type PagingDomainFlags,
  type Prot,
  toHex,
} from '@iommukit/core';
import { IoPageTable, VmsaFormat, type VmsaGranule } from '@iommukit/pagetables';
import {
  ATC_INV_SIZE_ALL,
  atcInvSpan,
  encodeAtcInv,
  encodeTlbiNhAll,
  encodeTlbiNhAsid,
  encodeTlbiNhVa,
  encodeTlbiS2Ipa,
  encodeTlbiS12Vmall,
  splitTlbiRange,
  type TlbiRangeFields,
} from '../hw/commands.js';
import type { Smmuv3Features } from '../hw/features.js';
import { decodeSte, encodeSte } from '../hw/ste.js';
import type { Smmuv3Cmdq } from './cmdq.js';
import type { IdAllocator } from './ids.js';
import { type BuilderCaps, s1CdForTable, s2Ste } from './ste-builders.js';

/** Without range invalidation, this many TLBIs or more for one sync invalidate the whole ASID/VMID instead. */
export const CMDQ_MAX_TLBI_OPS = 512;

const PAGE = 4096;

/** The granule a domain uses: 4K when the SMMU has it (Linux's PAGE_SIZE), else 16K, else 64K. */
export function domainGranule(features: Pick<Smmuv3Features, 'granules'>): VmsaGranule {
  const g = features.granules;
  return g.g4k ? 4096 : g.g16k ? 16384 : 65536;
}

/** Largest output size a granule's tables express without FEAT_LPA2 (52 bits only with 64K). */
function maxOas(granule: VmsaGranule): number {
  return granule === 65536 ? 52 : 48;
}

/** The stage-1 format of a domain on this SMMU: IAS 48, OAS = IDR5.OAS (capped by the granule). */
export function stage1Format(features: Pick<Smmuv3Features, 'granules' | 'oasBits'>): VmsaFormat {
  const granule = domainGranule(features);
  return new VmsaFormat({ stage: 1, granule, ias: 48, oas: Math.min(features.oasBits, maxOas(granule)) });
}

/** The stage-2 format of a domain on this SMMU: IAS = OAS = IDR5.OAS (capped by the granule). */
export function stage2Format(features: Pick<Smmuv3Features, 'granules' | 'oasBits'>): VmsaFormat {
  const granule = domainGranule(features);
  const oas = Math.min(features.oasBits, maxOas(granule));
  return new VmsaFormat({ stage: 2, granule, ias: oas, oas });
}

/** What a domain needs from its driver. */
export interface Smmuv3DomainHost {
  readonly instance: string;
  readonly bus: MemoryBus;
  readonly memory: IFrameAllocator;
  readonly counter: AccessCounter;
  readonly tracer: ITracer;
  readonly features: Smmuv3Features;
  readonly builderCaps: BuilderCaps;
  readonly cmdq: Smmuv3Cmdq;
  readonly asids: IdAllocator;
  readonly vmids: IdAllocator;
  /** The domain was freed: the driver forgets it. */
  release(domain: Smmuv3Domain): void;
}

/** Where a domain is installed: a master's RID (`pasid` = NO_PASID) or one of its PASIDs. */
export interface DomainAttachment {
  /** The SMMU the master is behind. */
  readonly host: Smmuv3DomainHost;
  readonly streamId: number;
  readonly pasid: number;
  /** The master has ATS enabled: its ATC caches translations of this domain. */
  readonly ats: boolean;
  /**
   * The master is on a nested domain whose stage 2 this is: its ATC holds IOVA → PA translations that IPA
   * ranges say nothing about, so an unmap invalidates its whole ATC.
   */
  readonly nested?: boolean;
}

/** The domain on one SMMU: the tag that SMMU's TLB knows it by, and how many attachments hold it there. */
interface DomainInstance {
  readonly host: Smmuv3DomainHost;
  readonly asid: number;
  readonly vmid: number;
  attachments: number;
}

export class Smmuv3Domain implements IommuDomain {
  readonly type: DomainType = 'paging';
  readonly stage: 1 | 2;
  /** The stage-1 ASID (0 for a stage-2 domain). */
  readonly asid: number;
  /** The stage-2 VMID (0 for a stage-1 domain, whose STEs use VMID 0). */
  readonly vmid: number;
  readonly nestParent: boolean;
  /** Allocated with dirty tracking: the table and CD/STE track dirty state. */
  readonly dirtyTracking: boolean;
  readonly format: VmsaFormat;
  readonly table: IoPageTable;
  readonly pgsizeBitmap: bigint;
  readonly aperture: { readonly start: Iova; readonly end: Iova };
  /** Masters (and PASIDs) the domain is installed at, by `smmu/sid` or `smmu/sid:pasid`. */
  readonly attachments = new Map<string, DomainAttachment>();
  /** The SMMU that allocated the domain. */
  private readonly host: Smmuv3DomainHost;
  /** Every SMMU the domain is on, the allocating one first (it stays until `free`). */
  private readonly instances = new Map<Smmuv3DomainHost, DomainInstance>();
  private gather = new IotlbGather();
  private freed = false;

  constructor(
    readonly id: number,
    readonly flags: PagingDomainFlags,
    host: Smmuv3DomainHost,
  ) {
    this.host = host;
    const f = host.features;
    this.nestParent = flags.nestParent === true;
    this.stage = this.nestParent || !f.s1 ? 2 : 1;
    this.dirtyTracking = flags.dirtyTracking === true;
    this.format = this.stage === 1 ? stage1Format(f) : stage2Format(f);
    // The tag first: ENOSPC must leave nothing allocated.
    this.asid = this.stage === 1 ? host.asids.alloc() : 0;
    this.vmid = this.stage === 2 ? host.vmids.alloc() : 0;
    try {
      this.table = new IoPageTable(
        this.format,
        { bus: host.bus, memory: host.memory, counter: host.counter, source: `${host.instance}/domain${id}` },
        {
          dirtyTracking: this.dirtyTracking,
          flush: {
            tlbAddPage: (iova, size) => this.gather.leaves.push([Number(iova), Number(iova + size)]),
            tlbFlushWalk: (iova, size) => this.gather.walks.push([Number(iova), Number(iova + size)]),
          },
        },
      );
    } catch (error) {
      if (this.stage === 1) host.asids.free(this.asid);
      else host.vmids.free(this.vmid);
      throw error;
    }
    this.pgsizeBitmap = this.table.pgsizeBitmap;
    this.aperture = { start: makeIova(0n), end: makeIova((1n << BigInt(this.format.ias)) - 1n) };
    this.instances.set(host, { host, asid: this.asid, vmid: this.vmid, attachments: 0 });
  }

  /** The SMMUs the domain is on, the allocating one first. */
  get smmus(): string[] {
    return [...this.instances.keys()].map((h) => h.instance);
  }

  /**
   * Puts the domain on another SMMU before a master behind it is attached (`shareDomains`): that SMMU must
   * walk the same format, and gives the domain a tag of its own. `EINVAL` when it cannot.
   */
  join(host: Smmuv3DomainHost): void {
    this.checkLive();
    if (this.instances.has(host)) return;
    const f = host.features;
    const format = this.stage === 1 ? stage1Format(f) : stage2Format(f);
    // The name holds every parameter of the format (stage, granule, IAS, OAS, start level).
    const why = (this.stage === 1 ? !f.s1 : !f.s2)
      ? `it has no stage ${this.stage}`
      : format.name !== this.format.name
        ? `its ${format.name} is not the domain's ${this.format.name}`
        : this.dirtyTracking && f.httu !== 'access-dirty'
          ? 'it has no hardware dirty state updates'
          : undefined;
    if (why)
      throw new IommufdError('EINVAL', `domain ${this.id} cannot be shared with ${host.instance}: ${why}`, {
        domain: this.id,
      });
    const asid = this.stage === 1 ? host.asids.alloc() : 0;
    const vmid = this.stage === 2 ? host.vmids.alloc() : 0;
    this.instances.set(host, { host, asid, vmid, attachments: 0 });
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (host.tracer.enabled)
      host.tracer.trace(
        'driver',
        host.instance,
        'domain.join',
        `domain ${this.id} of ${this.host.instance} joins with ${this.stage === 1 ? `ASID ${asid}` : `VMID ${vmid}`}`,
      );
  }

  /** The tag the TLB knows this domain by, for messages. */
  get tag(): string {
    return this.stage === 1 ? `ASID ${this.asid}` : `VMID ${this.vmid}`;
  }

  get isFreed(): boolean {
    return this.freed;
  }

  map(iova: Iova, paddr: Hpa, size: bigint, prot: Prot): void {
    this.checkLive();
    this.table.map(iova, paddr, size, prot);
    if (this.host.tracer.enabled)
      this.trace('map', `map IOVA ${toHex(iova)}+${toHex(size)} → ${toHex(paddr)}`);
  }

  unmap(iova: Iova, size: bigint): bigint {
    this.checkLive();
    const bytes = this.table.unmap(iova, size);
    if (this.host.tracer.enabled)
      this.trace('unmap', `unmap IOVA ${toHex(iova)}+${toHex(size)}: ${toHex(bytes)} bytes, TLBI gathered`);
    return bytes;
  }

  iotlbSync(): void {
    if (this.gather.empty) return;
    const gather = this.gather;
    this.gather = new IotlbGather();
    this.invalidateTlb(gather);
    this.invalidateAtc(gather.span());
  }

  iovaToPhys(iova: Iova): Hpa | undefined {
    this.checkLive();
    const pa = this.table.iovaToPhys(iova);
    return pa === undefined ? undefined : hpa(pa);
  }

  /** Always on for a domain allocated with dirty tracking (Linux: nothing to do). */
  setDirtyTracking(_enabled: boolean): void {
    this.checkLive();
    if (!this.dirtyTracking) {
      throw new IommufdError('EOPNOTSUPP', `domain ${this.id} was not allocated for dirty tracking`, {
        domain: this.id,
      });
    }
  }

  readAndClearDirty(
    iova: Iova,
    size: bigint,
    record: (iova: bigint, size: bigint) => void,
    clear: boolean,
  ): void {
    this.checkLive();
    this.table.readAndClearDirty(iova, size, record, { clear });
    // Cleaned leaves were gathered (tlbAddPage): flush them so the next write marks them again.
    if (clear) this.iotlbSync();
  }

  free(): void {
    if (this.freed) return;
    if (this.attachments.size > 0) {
      throw new IommufdError(
        'EBUSY',
        `domain ${this.id} is still attached to ${this.attachments.size} master(s)/PASID(s)`,
        { domain: this.id },
      );
    }
    this.freed = true;
    // Nothing may stay tagged with an ID the next domain gets (Linux `arm_smmu_tlb_inv_context`).
    this.host.cmdq.issue(
      this.stage === 1
        ? encodeTlbiNhAsid({ vmid: 0, asid: this.asid })
        : encodeTlbiS12Vmall({ vmid: this.vmid }),
    );
    this.gather = new IotlbGather();
    this.table.free();
    if (this.stage === 1) this.host.asids.free(this.asid);
    else this.host.vmids.free(this.vmid);
    this.host.release(this);
    if (this.host.tracer.enabled) this.trace('free', `domain ${this.id} freed, ${this.tag} released`);
  }

  /**
   * The CD that installs this stage-1 domain for a master behind `host` (Linux `arm_smmu_make_s1_cd`), with
   * that SMMU's ASID; CD.S if it stalls.
   */
  cd(stall = false, host = this.host): Uint32Array {
    if (this.stage !== 1) throw new RangeError(`domain ${this.id} is not a stage-1 domain`);
    return s1CdForTable(this.table, { asid: this.on(host).asid, stall });
  }

  /**
   * The STE that installs this stage-2 domain for a master (Linux `arm_smmu_make_s2_domain_ste`): S2S if
   * the master stalls, S2HA/S2HD if tracking dirty state.
   */
  ste(ats: boolean, stall = false, host = this.host): Uint32Array {
    if (this.stage !== 2) throw new RangeError(`domain ${this.id} is not a stage-2 domain`);
    const ste = s2Ste(
      { format: this.format, root: this.table.rootPa, vmid: this.on(host).vmid, ats, stall },
      host.builderCaps,
    );
    if (!this.dirtyTracking) return ste;
    return encodeSte({ ...decodeSte(ste), s2Ha: true, s2Hd: true });
  }

  /** Records an installation (the driver calls this when an STE or CD starts pointing here). */
  attach(attachment: DomainAttachment): void {
    const key = attachmentKey(attachment.host.instance, attachment.streamId, attachment.pasid);
    if (!this.attachments.has(key)) this.on(attachment.host).attachments++;
    this.attachments.set(key, attachment);
  }

  /** Records a removal; an SMMU the domain joined is left with its last attachment. */
  detach(host: Smmuv3DomainHost, streamId: number, pasid: number): void {
    if (!this.attachments.delete(attachmentKey(host.instance, streamId, pasid))) return;
    const on = this.on(host);
    if (--on.attachments > 0 || host === this.host) return;
    // Nothing on that SMMU may stay tagged with an ID its next domain gets.
    host.cmdq.issue(
      this.stage === 1 ? encodeTlbiNhAsid({ vmid: 0, asid: on.asid }) : encodeTlbiS12Vmall({ vmid: on.vmid }),
    );
    if (this.stage === 1) host.asids.free(on.asid);
    else host.vmids.free(on.vmid);
    this.instances.delete(host);
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (host.tracer.enabled)
      host.tracer.trace(
        'driver',
        host.instance,
        'domain.leave',
        `domain ${this.id} of ${this.host.instance} leaves`,
      );
  }

  /** The domain on `host`; it must have joined. */
  private on(host: Smmuv3DomainHost): DomainInstance {
    const on = this.instances.get(host);
    if (!on) throw new RangeError(`domain ${this.id} is not on ${host.instance}`);
    return on;
  }

  private invalidateTlb(gather: IotlbGather): void {
    const walks = mergeRanges(gather.walks);
    // Leaf ranges inside a walk range are covered by its non-leaf invalidation.
    const leaves = mergeRanges(gather.leaves).filter(
      ([s, e]) => !walks.some(([ws, we]) => ws <= s && e <= we),
    );
    for (const on of this.instances.values()) this.invalidateTlbOn(on, leaves, walks);
  }

  /** One SMMU's share of `iotlbSync`: its own tag, and range commands only where it has RIL. */
  private invalidateTlbOn(
    on: DomainInstance,
    leaves: readonly IovaRange[],
    walks: readonly IovaRange[],
  ): void {
    const { cmdq, features } = on.host;
    const ril = features.rangeInvalidation;
    const commands: Uint32Array[] = [];
    const granulePages = this.format.granule / PAGE;
    const pages = [...leaves, ...walks].reduce((n, [s, e]) => n + (e - s) / PAGE / granulePages, 0);
    if (!ril && pages >= CMDQ_MAX_TLBI_OPS) {
      // Too many single-page TLBIs: invalidate the whole ASID / VMID instead.
      commands.push(
        this.stage === 1
          ? encodeTlbiNhAsid({ vmid: 0, asid: on.asid })
          : encodeTlbiS12Vmall({ vmid: on.vmid }),
      );
    } else {
      for (const [ranges, leaf] of [
        [leaves, true],
        [walks, false],
      ] as const) {
        for (const [start, end] of ranges) {
          // TTL stays 0: a run reported by the table may hold leaves of any level, so no level hint.
          const fields = splitTlbiRange(
            {
              startPage: start / PAGE,
              pageCount: (end - start) / PAGE,
              granule: this.format.granule,
              leaf: false,
            },
            ril,
          );
          for (const f of fields) commands.push(this.tlbiCommand(on, f, leaf));
        }
      }
    }
    cmdq.submit(commands);
    // Nested (combined) entries through this stage 2 are tagged by ASID + VMID, not by IPA.
    if (this.nestParent) cmdq.issue(encodeTlbiNhAll({ vmid: on.vmid }));
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (on.host.tracer.enabled) {
      const tag = this.stage === 1 ? `ASID ${on.asid}` : `VMID ${on.vmid}`;
      on.host.tracer.trace(
        'driver',
        on.host.instance,
        'domain.iotlb.sync',
        `domain ${this.id}${on.host === this.host ? '' : ` of ${this.host.instance}`}: ${commands.length} TLBI command(s) for ${tag}${this.nestParent ? ' + TLBI_NH_ALL' : ''}`,
      );
    }
  }

  private tlbiCommand(on: DomainInstance, f: TlbiRangeFields, leaf: boolean): Uint32Array {
    return this.stage === 1
      ? encodeTlbiNhVa({ vmid: 0, asid: on.asid, leaf, ...f })
      : encodeTlbiS2Ipa({ vmid: on.vmid, leaf, ...f });
  }

  /** CMD_ATC_INV over `[start, end)` for every attachment with ATS, then CMD_SYNC, on each SMMU. */
  private invalidateAtc([start, end]: IovaRange): void {
    for (const on of this.instances.values()) {
      const targets = [...this.attachments.values()].filter((a) => a.ats && a.host === on.host);
      if (targets.length > 0) this.invalidateAtcOn(on.host, targets, [start, end]);
    }
  }

  private invalidateAtcOn(
    host: Smmuv3DomainHost,
    targets: readonly DomainAttachment[],
    [start, end]: IovaRange,
  ): void {
    const span = atcInvSpan(start / PAGE, Math.floor((end - 1) / PAGE));
    const batch = host.cmdq.batch();
    for (const a of targets) {
      const ssv = a.pasid !== NO_PASID;
      batch.add(
        encodeAtcInv({
          streamId: a.streamId,
          ssv,
          substreamId: ssv ? a.pasid : 0,
          ...(a.nested ? { size: ATC_INV_SIZE_ALL, addressPage: 0 } : span),
        }),
      );
    }
    batch.submit();
  }

  private checkLive(): void {
    if (this.freed) throw new IommufdError('ENOENT', `domain ${this.id} was freed`, { domain: this.id });
  }

  private trace(name: string, message: string): void {
    if (this.host.tracer.enabled) {
      this.host.tracer.trace('driver', this.host.instance, `domain.${name}`, `domain ${this.id}: ${message}`);
    }
  }
}

/** The key of an attachment in {@link Smmuv3Domain.attachments}: the SMMU, the StreamID, the PASID. */
export function attachmentKey(smmu: string, streamId: number, pasid: number): string {
  return pasid === NO_PASID ? `${smmu}/${streamId}` : `${smmu}/${streamId}:${pasid}`;
}
