/**
 * One invalidation request carried out (VT-d specification §6.5): what a queued descriptor (§6.5.2) or a
 * register command (§6.5.1, register-invalidation.ts) does to the unit's caches (caches.ts says which
 * invalidation reaches which cache) and to the endpoints behind it (device-TLB invalidations, page group
 * responses). The invalidation queue (invalidation-queue.ts) and the command registers both go through
 * {@link InvalidationDispatcher}, so the two interfaces cannot disagree on an effect.
 *
 * Decisions that depend on the unit (`refusal`), each an Invalidation Queue Error (FSTS.IQE, IQERCD.IQEI):
 * - a type the unit does not implement is an invalid type (IQEI 3): device-TLB types without ECAP.DT, the
 *   IEC type without ECAP.IR, the page group response without ECAP.PRS. Not confirmed in spec text (not
 *   available); it is how the IQEI 3 description ("invalid descriptor type") reads for hardware without
 *   the feature. QEMU and VirtualBox accept these types whatever their features.
 * - the PASID-based types (0x6–0x9) in a 128-bit queue are invalid types (IQEI 3): QEMU refuses 0x6 and
 *   0x8 there ("256-bit desc in 128-bit invalidation queue", without an IQEI); the model extends it to 0x7
 *   and 0x9, which Linux also only sends as 256-bit descriptors. IQA.DW exists only with ECAP.SMTS
 *   (regs.ts), so this also refuses them on a legacy-only unit.
 * - AM above CAP.MAMV in a page-selective (PASID-based) IOTLB descriptor is a reserved-field violation
 *   (IQEI 4): QEMU refuses the IOTLB descriptor; the register form reports IAIG = 0 instead (an Intel
 *   datasheet's IAIG text: "an unsupported address mask value" is an incorrect request, ignored). QEMU
 *   does not check it for the PASID-based form; the model treats both alike (unconfirmed).
 * - a page group response code other than success (0), invalid (1) or failure (0xF) — reserved PCIe PRG
 *   response codes — is a reserved-field violation (IQEI 4); unconfirmed, no source models it.
 *
 * Effects, as the model performs them:
 * - DID bits above CAP.ND's width are ignored (inv-descriptors.ts: QEMU quotes §6.5.2.2 on it).
 * - Device-selective context-cache invalidation: FM 1, 2, 3 ignore function bit 2, bits 2:1, bits 2:0 of
 *   the SID (QEMU's reading of §11.4.7 FM); in scalable mode the DID is ignored (Linux, below).
 * - Page-selective IOTLB invalidation without CAP.PSI is performed domain-selective (coarser is always
 *   allowed, §11.4.8 IIRG). The AM low page bits of ADDR are ignored (§11.4.8.2 AM: "number of low order
 *   bits of ADDR that must be masked").
 * - DR/DW (drain hints), the device-TLB MIP/QDEP and PFSID, and LPIG/private data of a page group response
 *   have no effect: the model has no request buffers, its endpoints take invalidations synchronously, and
 *   the core's page response carries a group index, PASID and code only.
 * - IEC index-selective: the index and IM go to the interrupt entry cache as written. IM is 5 bits wide and
 *   ECAP.MHMV says 15; what hardware does with an IM above MHMV is not documented in any source found, so
 *   it is not refused.
 */
import { type EndpointPort, NO_PASID, type PageResponseCode, toHex } from '@iommukit/core';
import type { VtdCaches } from './caches.js';
import type { VtdFeatures } from './features.js';
import {
  IEC_GRANULARITY,
  INV_TYPE,
  type InvalidInvDescriptor,
  type InvDescriptor,
  IQEI,
  PASID_CACHE_GRANULARITY,
  PASID_DEVICE_TLB_GRANULARITY,
  PASID_IOTLB_GRANULARITY,
  type WaitInv,
} from './inv-descriptors.js';
import { PAGE_RESPONSE } from './page-requests.js';
import { CONTEXT_GRANULARITY, IOTLB_GRANULARITY } from './regs.js';

/** What an invalidation reaches at an endpoint: its ATC and its page request interface. */
export type InvalidationEndpoint = Pick<EndpointPort, 'invalidateAtc' | 'pageResponse'>;

/** The unit's state an invalidation acts on, wired by the device. */
export interface InvalidationTargets {
  readonly caches: VtdCaches<unknown, unknown>;
  /** The endpoint with this requester ID, if one is connected. */
  endpoint(sid: number): InvalidationEndpoint | undefined;
  /** The interrupt entry cache (§6.5.2.7). */
  readonly iec: { invalidateAll(): void; invalidateIndex(index: number, indexMask: number): void };
  /** RTADDR_REG.TTM (as last latched by SRTP) selects scalable mode. */
  scalable(): boolean;
  /** Receives one line per invalidation performed while it is enabled (nothing is built otherwise). */
  readonly tracer?: InvalidationTracer;
  /**
   * A vIOMMU's trap (`VtdHardwareHooks.forwardInvalidation`): called with each queued descriptor the unit
   * has just performed on its own caches; a refusal stops the queue at that descriptor with IQE.
   */
  readonly forward?: (d: CacheInvDescriptor) => InvalidInvDescriptor | undefined;
}

/** Where the invalidation units' trace lines go: built only while `enabled`. */
export interface InvalidationTracer {
  readonly enabled: boolean;
  trace(name: string, message: string): void;
}

/** Descriptors the dispatcher performs: all but the invalidation wait, which is the queue's (§6.5.2.8). */
export type CacheInvDescriptor = Exclude<InvDescriptor, WaitInv>;

/** Bytes of one 4 KiB page, the unit of invalidation addresses. */
const PAGE = 4096;

const RESPONSE_CODES: ReadonlyMap<number, PageResponseCode> = new Map([
  [PAGE_RESPONSE.SUCCESS, 'success'],
  [PAGE_RESPONSE.INVALID, 'invalid'],
  [PAGE_RESPONSE.FAILURE, 'failure'],
]);

/** The PASID-based types, 256-bit descriptors only. */
const WIDE_ONLY: ReadonlySet<number> = new Set([
  INV_TYPE.PASID_IOTLB,
  INV_TYPE.PASID_CACHE,
  INV_TYPE.PASID_DEVICE_TLB,
  INV_TYPE.PAGE_GROUP_RESPONSE,
]);

/** The context-cache granularities and IOTLB granularities a request was performed at (CAIG/IAIG codes). */
export type ContextGranularity = (typeof CONTEXT_GRANULARITY)[keyof typeof CONTEXT_GRANULARITY];
export type IotlbGranularity = (typeof IOTLB_GRANULARITY)[keyof typeof IOTLB_GRANULARITY];

/**
 * The range an ATS invalidation names (§6.5.2.5 with the PCIe ATS Invalidate Request encoding): S = 0, the
 * 4 KiB page at `addr`; S = 1, the lowest clear address bit at or above bit 12, bit k, makes it the
 * 2^(k+1)-byte aligned block holding `addr` (bit 12 clear: 8 KiB). No clear bit below 64 bits, or a block
 * of 2^64 bytes: the whole address space (size 2^64, as `EndpointPort.invalidateAtc` takes it).
 */
export function deviceTlbRange(addr: number, size: boolean): { iova: bigint; size: bigint } {
  if (!size) return { iova: BigInt(addr), size: BigInt(PAGE) };
  // addr holds bits 63:12 only, so the page number is an exact integer below 2^52.
  let page = addr / PAGE;
  let bit = 12;
  while (page % 2 === 1) {
    page = (page - 1) / 2;
    bit++;
  }
  const bytes = 1n << BigInt(Math.min(bit + 1, 64));
  return { iova: BigInt(addr) & ~(bytes - 1n), size: bytes };
}

/** The start and byte size of a page-selective request: 2^am pages, ADDR's low AM page bits ignored. */
function maskedRange(addr: number, am: number): { start: number; size: number } {
  const size = PAGE * 2 ** am;
  return { start: Math.floor(addr / size) * size, size };
}

export class InvalidationDispatcher {
  private readonly didMask: number;

  constructor(
    private readonly targets: InvalidationTargets,
    private readonly features: VtdFeatures,
  ) {
    this.didMask = 2 ** features.domainIdBits - 1;
  }

  /**
   * Why this unit refuses a descriptor that decoded (a type it lacks, a value it cannot take), as the IQE
   * the queue reports; undefined when it performs it. `wide`: the queue holds 256-bit descriptors.
   */
  refusal(d: InvDescriptor, wide: boolean): InvalidInvDescriptor | undefined {
    const f = this.features;
    if (WIDE_ONLY.has(d.type) && !wide)
      return { iqei: IQEI.INVALID_TYPE, invalid: `descriptor type ${d.type} needs 256-bit descriptors` };
    switch (d.type) {
      case INV_TYPE.DEVICE_TLB:
      case INV_TYPE.PASID_DEVICE_TLB:
        return f.deviceTlb ? undefined : unsupported(d.type, 'device-TLBs (ECAP.DT)');
      case INV_TYPE.IEC:
        return f.interruptRemapping ? undefined : unsupported(d.type, 'interrupt remapping (ECAP.IR)');
      case INV_TYPE.PAGE_GROUP_RESPONSE:
        if (!f.pageRequests) return unsupported(d.type, 'page requests (ECAP.PRS)');
        return RESPONSE_CODES.has(d.respCode)
          ? undefined
          : { iqei: IQEI.RESERVED_FIELD, invalid: `page group response code ${d.respCode} is reserved` };
      case INV_TYPE.IOTLB:
        return d.granularity === IOTLB_GRANULARITY.PAGE && f.pageSelectiveInvalidation
          ? this.maskRefusal(d.am)
          : undefined;
      case INV_TYPE.PASID_IOTLB:
        return d.granularity === PASID_IOTLB_GRANULARITY.PAGE ? this.maskRefusal(d.am) : undefined;
      // Stryker disable next-line ConditionalExpression: an emptied default falls out of the switch, which returns undefined too
      default:
        return undefined;
    }
  }

  /** Performs a descriptor the unit accepted (`refusal` returned undefined). */
  perform(d: CacheInvDescriptor): void {
    switch (d.type) {
      case INV_TYPE.CONTEXT_CACHE:
        this.contextCache(d.granularity as ContextGranularity, d.did, d.sid, d.fm);
        return;
      case INV_TYPE.IOTLB:
        this.iotlb(d.granularity as IotlbGranularity, d.did, d.addr, d.am, d.ih);
        return;
      case INV_TYPE.PASID_IOTLB:
        this.pasidIotlb(d.granularity, d.did, d.pasid, d.addr, d.am, d.ih);
        return;
      case INV_TYPE.PASID_CACHE:
        this.pasidCache(d.granularity, d.did, d.pasid);
        return;
      // Stryker disable next-line ConditionalExpression: emptied, it falls through to the PASID-based case, which reads the granularity and PASID a device-TLB descriptor lacks (undefined): every PASID alike
      case INV_TYPE.DEVICE_TLB:
        this.deviceTlb(d.sid, undefined, d.addr, d.size);
        return;
      case INV_TYPE.PASID_DEVICE_TLB:
        // G = 1: every PASID of the device (the ATS request's Global Invalidate).
        this.deviceTlb(
          d.sid,
          d.granularity === PASID_DEVICE_TLB_GRANULARITY.ALL_PASIDS ? undefined : d.pasid,
          d.addr,
          d.size,
        );
        return;
      case INV_TYPE.IEC:
        if (d.granularity === IEC_GRANULARITY.GLOBAL) this.targets.iec.invalidateAll();
        else this.targets.iec.invalidateIndex(d.iidx, d.im);
        if (this.targets.tracer?.enabled)
          this.trace(
            'iec',
            d.granularity === IEC_GRANULARITY.GLOBAL ? 'global' : `index ${d.iidx} im ${d.im}`,
          );
        return;
      case INV_TYPE.PAGE_GROUP_RESPONSE: {
        const code = RESPONSE_CODES.get(d.respCode)!;
        const pasid = d.pasidPresent ? d.pasid : NO_PASID;
        this.targets.endpoint(d.rid)?.pageResponse({ pasid, groupIndex: d.prgIndex, code });
        if (this.targets.tracer?.enabled)
          this.trace('prg-response', `rid ${toHex(d.rid)} prg ${d.prgIndex} ${code}`);
        return;
      }
    }
  }

  /** Context-cache invalidation (§6.5.1.1, §6.5.2.1) at a defined granularity; returns it (CAIG). */
  contextCache(granularity: ContextGranularity, did: number, sid: number, fm: number): ContextGranularity {
    const c = this.targets.caches;
    const domain = did & this.didMask;
    let dropped: number;
    if (granularity === CONTEXT_GRANULARITY.GLOBAL) dropped = c.invalidateContextGlobal();
    else if (granularity === CONTEXT_GRANULARITY.DOMAIN) dropped = c.invalidateContextDomain(domain);
    else dropped = this.contextDevice(domain, sid, fm);
    if (this.targets.tracer?.enabled)
      this.trace('context-cache', `${describeGranularity(granularity, domain, sid, fm)}: ${dropped} dropped`);
    return granularity;
  }

  /**
   * IOTLB invalidation (§6.5.1.2, §6.5.2.3) at a defined granularity, AM within CAP.MAMV; returns the
   * granularity performed (IAIG): domain-selective for a page-selective request without CAP.PSI.
   */
  iotlb(granularity: IotlbGranularity, did: number, addr: number, am: number, ih: boolean): IotlbGranularity {
    const c = this.targets.caches;
    const domain = did & this.didMask;
    if (granularity === IOTLB_GRANULARITY.GLOBAL) {
      const dropped = c.invalidateIotlbGlobal();
      if (this.targets.tracer?.enabled) this.trace('iotlb', `global: ${dropped} dropped`);
      return granularity;
    }
    if (granularity === IOTLB_GRANULARITY.DOMAIN || !this.features.pageSelectiveInvalidation) {
      const dropped = c.invalidateIotlbDomain(domain);
      if (this.targets.tracer?.enabled) this.trace('iotlb', `domain ${domain}: ${dropped} dropped`);
      return IOTLB_GRANULARITY.DOMAIN;
    }
    const { start, size } = maskedRange(addr, am);
    const dropped = c.invalidateIotlbPages(domain, start, size, ih);
    if (this.targets.tracer?.enabled)
      this.trace(
        'iotlb',
        `domain ${domain} ${toHex(start)} +${toHex(size)}${ih ? ' ih' : ''}: ${dropped} dropped`,
      );
    return granularity;
  }

  /**
   * Device-selective context-cache invalidation: the SID's entries, FM's function-number bits ignored. In
   * scalable mode the DID is ignored (Linux: "The Domain-ID field of the Context-cache Invalidate
   * Descriptor is ignored by hardware when operating in scalable mode"); in legacy mode an entry goes only
   * if it carries the DID.
   */
  private contextDevice(domain: number, sid: number, fm: number): number {
    return this.targets.caches.invalidateContextDevice(this.targets.scalable() ? undefined : domain, sid, fm);
  }

  /** Whether AM is above what the unit takes (CAP.MAMV). */
  maskTooWide(am: number): boolean {
    return am > this.features.maxAddressMask;
  }

  private maskRefusal(am: number): InvalidInvDescriptor | undefined {
    return this.maskTooWide(am)
      ? {
          iqei: IQEI.RESERVED_FIELD,
          invalid: `address mask ${am} exceeds CAP.MAMV ${this.features.maxAddressMask}`,
        }
      : undefined;
  }

  /** PASID-based IOTLB invalidation (§6.5.2.4): G = 2 the PASID's non-global entries, G = 3 a range. */
  private pasidIotlb(g: number, did: number, pasid: number, addr: number, am: number, ih: boolean): void {
    const c = this.targets.caches;
    const domain = did & this.didMask;
    if (g === PASID_IOTLB_GRANULARITY.PASID) {
      const dropped = c.invalidatePasidIotlb(domain, pasid);
      if (this.targets.tracer?.enabled)
        this.trace('pasid-iotlb', `domain ${domain} pasid ${pasid}: ${dropped} dropped`);
      return;
    }
    const { start, size } = maskedRange(addr, am);
    const dropped = c.invalidatePasidIotlbPages(domain, pasid, start, size, ih);
    if (this.targets.tracer?.enabled)
      this.trace(
        'pasid-iotlb',
        `domain ${domain} pasid ${pasid} ${toHex(start)} +${toHex(size)}: ${dropped} dropped`,
      );
  }

  /**
   * PASID-cache invalidation (§6.5.2.2): G = 0 every entry whose PASID-table entry carries the DID, G = 1
   * the entries of one PASID with that DID, G = 3 every entry (the DID is then ignored).
   */
  private pasidCache(g: number, did: number, pasid: number): void {
    const c = this.targets.caches;
    const domain = did & this.didMask;
    let dropped: number;
    if (g === PASID_CACHE_GRANULARITY.GLOBAL) dropped = c.invalidatePasidGlobal();
    else if (g === PASID_CACHE_GRANULARITY.DOMAIN) dropped = c.invalidatePasidDomain(domain);
    else dropped = c.invalidatePasidDomain(domain, pasid);
    if (this.targets.tracer?.enabled)
      this.trace('pasid-cache', `g ${g} domain ${domain} pasid ${pasid}: ${dropped} dropped`);
  }

  /** Device-TLB invalidation (§6.5.2.5, §6.5.2.6): an ATS Invalidate Request to the endpoint, if present. */
  private deviceTlb(sid: number, pasid: number | undefined, addr: number, size: boolean): void {
    const range = deviceTlbRange(addr, size);
    this.targets.endpoint(sid)?.invalidateAtc(pasid, range.iova, range.size);
    if (this.targets.tracer?.enabled)
      this.trace(
        'device-tlb',
        `sid ${toHex(sid)} pasid ${pasid ?? 'all'} ${toHex(range.iova)} +${toHex(range.size)}`,
      );
  }

  /** Callers check it first, so no message is built while nobody listens. */
  /** Only called when the tracer is enabled. */
  private trace(name: string, message: string): void {
    this.targets.tracer!.trace(name, message);
  }
}

function unsupported(type: number, feature: string): InvalidInvDescriptor {
  return { iqei: IQEI.INVALID_TYPE, invalid: `descriptor type ${type} needs ${feature}` };
}

function describeGranularity(g: ContextGranularity, did: number, sid: number, fm: number): string {
  if (g === CONTEXT_GRANULARITY.GLOBAL) return 'global';
  if (g === CONTEXT_GRANULARITY.DOMAIN) return `domain ${did}`;
  return `domain ${did} sid ${toHex(sid)} fm ${fm}`;
}
