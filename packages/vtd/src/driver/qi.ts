/**
 * The driver's side of queued invalidation (VT-d §6.5.2; Linux dmar.c `qi_submit_sync`, `qi_check_fault`,
 * `__dmar_enable_qi`, `dmar_disable_qi`) and its builders (Linux `qi_flush_*`, `qi_desc_*`, cache.c).
 *
 * - The ring: QI_LENGTH (256) descriptors, 128-bit, or 256-bit when the unit has ECAP.SMTS (IQA.DW = 1,
 *   IQA.QS = 1: two pages), in driver memory. A submission is its descriptors plus an invalidation wait
 *   whose status write (SW) stores QI_DONE into the wait's slot of a status array (Linux `desc_status`);
 *   IQT moves past them and the driver polls the status word (bounded: `ETIMEDOUT`). A ring without room
 *   for the submission and its wait (plus the slot that keeps full apart from empty) waits for IQH.
 * - IQE (FSTS.IQE): IQH points at the descriptor the unit refused and IQERCD.IQEI says why. As Linux does,
 *   the driver reports it, replaces that descriptor and clears IQE so the queue goes on; the submission
 *   then fails with `EINVAL` naming the descriptor and IQEI. Linux copies its wait descriptor over the bad
 *   one (and only when the bad one is the submission's first); this driver writes a wait without status
 *   write or interrupt instead, at any position in the submission, so the submission's own wait remains the
 *   one completion signal and a second bad descriptor is handled the same way.
 * - IOTLB descriptors carry DW/DR as CAP.DWD/DRD say (Linux `qi_desc_iotlb`).
 * - Without ECAP.QI the same requests go through the register interface (Linux `__iommu_flush_context`,
 *   `__iommu_flush_iotlb`: CCMD.ICC, IOTLB.IVT, polled): context-cache and IOTLB descriptors only, the
 *   others `EOPNOTSUPP` (a unit without QI has neither PASIDs, Device-TLBs nor interrupt remapping).
 */
import {
  allocDriverPages,
  freeDriverPages,
  IommufdError,
  NO_PASID,
  type PageResponseCode,
  POLL_LIMIT,
  pollTimeout,
  toHex,
  writeDriverMemory,
} from '@iommukit/core';
import {
  encodeInvDescriptor,
  IEC_GRANULARITY,
  INV_DESC_WORDS,
  INV_TYPE,
  type InvDescriptorInit,
  PASID_CACHE_GRANULARITY,
  PASID_DEVICE_TLB_GRANULARITY,
  PASID_IOTLB_GRANULARITY,
  WIDE_INV_DESC_WORDS,
} from '../hw/inv-descriptors.js';
import { PAGE_RESPONSE } from '../hw/page-requests.js';
import {
  CCMD_HI_CIRG,
  CCMD_HI_ICC,
  CONTEXT_GRANULARITY,
  FSTS_IQE,
  GCMD_QIE,
  GCMD_TE,
  GSTS_QIES,
  IOTLB_GRANULARITY,
  IOTLB_HI_DW,
  IOTLB_HI_IIRG,
  IOTLB_HI_IVT,
  IQ_INDEX_MASK,
  IQA_DW,
  IQERCD_IQEI,
  IVA_IH,
  REG,
} from '../hw/regs.js';
import type { DeviceTlbTarget, VtdDriverBase } from './driver-host.js';

/** Descriptors in the ring (Linux QI_LENGTH). */
export const QI_LENGTH = 256;
/** Status words (Linux `enum desc_status`). */
const QI_IN_USE = 1;
const QI_DONE = 2;
/** A device-TLB QDEP this large is written 0 (Linux QI_DEV_IOTLB_MAX_INVS). */
const QI_DEV_IOTLB_MAX_INVS = 32;
/** Size order of a whole-address-space Device-TLB invalidation (Linux MAX_AGAW_PFN_WIDTH, 64 − 12). */
export const DEVTLB_ALL = 52;
const PAGE = 4096;

// --- builders -------------------------------------------------------------------------------------

const CC = INV_TYPE.CONTEXT_CACHE;
const IOTLB = INV_TYPE.IOTLB;
const PC = INV_TYPE.PASID_CACHE;

export const contextGlobal = (): InvDescriptorInit => ({ type: CC, granularity: CONTEXT_GRANULARITY.GLOBAL });

/** Device-selective context-cache invalidation (FM: low SID bits ignored; Linux DMA_CCMD_MASK_NOBIT = 0). */
export const contextDevice = (did: number, sid: number, fm = 0): InvDescriptorInit => {
  return { type: CC, granularity: CONTEXT_GRANULARITY.DEVICE, did, sid, fm };
};

export const iotlbGlobal = (): InvDescriptorInit => ({ type: IOTLB, granularity: IOTLB_GRANULARITY.GLOBAL });

export const iotlbDomain = (did: number): InvDescriptorInit => ({
  type: IOTLB,
  granularity: IOTLB_GRANULARITY.DOMAIN,
  did,
});

/**
 * The size-aligned block covering `pages` pages from `start` (Linux cache.c
 * `calculate_psi_aligned_address`): AM = log2 of the pages rounded up to a power of two; when `start` is
 * not aligned to that, AM grows to the lowest bit above it where the first and last page numbers agree.
 */
export function psiAligned(start: number, pages: number): { addr: number; am: number; pages: number } {
  if (!Number.isSafeInteger(pages) || pages < 1 || start % PAGE !== 0)
    throw new IommufdError('EINVAL', `no page range of ${pages} pages at ${toHex(start)}`);
  let am = ceilLog2(pages);
  const aligned = 2 ** am;
  const pfn = BigInt(start / PAGE);
  const bitmask = BigInt(aligned - 1);
  // Stryker disable next-line ConditionalExpression: for an aligned start the first and last page numbers agree from bit am up, so the shared-bits search gives the same am
  if ((pfn & bitmask) !== 0n) {
    const endPfn = pfn + BigInt(pages - 1);
    const shared = BigInt.asUintN(64, ~(pfn ^ endPfn) & ~bitmask);
    // Bits 63:52 of both page numbers are 0, so `shared` always has a set bit.
    am = bitIndex(shared & -shared);
  }
  const block = PAGE * 2 ** am;
  return { addr: Math.floor(start / block) * block, am, pages: 2 ** am };
}

function bitIndex(bit: bigint): number {
  return bit.toString(2).length - 1;
}

/** log2 of `n` rounded up to a power of two (Linux `ilog2(__roundup_pow_of_two(n))`). */
function ceilLog2(n: number): number {
  let log = 0;
  while (2 ** log < n) log++;
  return log;
}

/** Page-selective IOTLB invalidation of `pages` pages from `addr` (AM as `psiAligned`). */
export function iotlbPages(did: number, addr: number, pages: number, ih = false): InvDescriptorInit {
  const r = psiAligned(addr, pages);
  return { type: IOTLB, granularity: IOTLB_GRANULARITY.PAGE, did, addr: r.addr, am: r.am, ih };
}

/**
 * A second-stage range flush as Linux cache.c `cache_tag_flush_iotlb` picks it: page-selective, or
 * domain-selective without CAP.PSI or when AM would exceed CAP.MAMV.
 */
export function iotlbRange(
  cap: { readonly psi: boolean; readonly mamv: number },
  did: number,
  addr: number,
  pages: number,
  ih = false,
): InvDescriptorInit {
  const r = psiAligned(addr, pages);
  return !cap.psi || r.am > cap.mamv ? iotlbDomain(did) : iotlbPages(did, addr, pages, ih);
}

/** PASID-cache invalidation: one PASID within the domain, or every PASID of the domain (`'all'`). */
export const pasidCache = (did: number, pasid: number | 'all'): InvDescriptorInit =>
  pasid === 'all'
    ? { type: PC, granularity: PASID_CACHE_GRANULARITY.DOMAIN, did }
    : { type: PC, granularity: PASID_CACHE_GRANULARITY.PASID, did, pasid };

export const pasidCacheGlobal = (): InvDescriptorInit => ({
  type: PC,
  granularity: PASID_CACHE_GRANULARITY.GLOBAL,
});

/**
 * PASID-based IOTLB invalidation (Linux `qi_flush_piotlb`): the whole PASID without a range, else
 * page-selective-within-PASID with AM = log2 of the pages rounded up to a power of two and the address
 * aligned down to that block.
 */
export function pasidIotlb(
  did: number,
  pasid: number,
  range?: { addr: number; pages: number },
  ih = false,
): InvDescriptorInit {
  if (range === undefined)
    return { type: INV_TYPE.PASID_IOTLB, granularity: PASID_IOTLB_GRANULARITY.PASID, did, pasid };
  const am = ceilLog2(range.pages);
  const block = PAGE * 2 ** am;
  const addr = Math.floor(range.addr / block) * block;
  return { type: INV_TYPE.PASID_IOTLB, granularity: PASID_IOTLB_GRANULARITY.PAGE, did, pasid, addr, am, ih };
}

/**
 * A first-stage range flush of one PASID: page-selective, or PASID-selective when AM would exceed CAP.MAMV
 * (the model refuses such a P_IOTLB; rev 5.10 would take it) or the range is the whole space.
 */
export function pasidIotlbRange(
  cap: { readonly mamv: number },
  did: number,
  pasid: number,
  range: { addr: number; pages: number } | undefined,
  ih = false,
): InvDescriptorInit {
  return range === undefined || ceilLog2(range.pages) > cap.mamv
    ? pasidIotlb(did, pasid)
    : pasidIotlb(did, pasid, range, ih);
}

/** The ADDR and S of a Device-TLB invalidation of 2^order pages at `addr` (PCIe ATS range encoding). */
function atsRange(addr: number, order: number): { addr: number; size: boolean } {
  if (!Number.isInteger(order) || order < 0 || order > DEVTLB_ALL || addr % (PAGE * 2 ** order) !== 0)
    throw new IommufdError('EINVAL', `no Device-TLB range of 2^${order} pages at ${toHex(addr)}`);
  // Linux: the address bits below the size order set, the bit at it clear, S = 1.
  return order === 0 ? { addr, size: false } : { addr: addr + 2 ** (11 + order) - PAGE, size: true };
}

const qdepOf = (qdep: number) => (qdep >= QI_DEV_IOTLB_MAX_INVS ? 0 : qdep);

/** Device-TLB invalidation of 2^order pages (Linux `qi_flush_dev_iotlb`); `DEVTLB_ALL`: everything. */
export function deviceTlb(target: DeviceTlbTarget, addr: number, order: number): InvDescriptorInit {
  const r = atsRange(addr, order);
  return { type: INV_TYPE.DEVICE_TLB, sid: target.sid, pfsid: target.pfsid, qdep: qdepOf(target.qdep), ...r };
}

/** PASID-based Device-TLB invalidation of 2^order pages (Linux `qi_flush_dev_iotlb_pasid`). */
export function pasidDeviceTlb(
  t: DeviceTlbTarget,
  pasid: number,
  addr: number,
  order: number,
): InvDescriptorInit {
  const granularity = PASID_DEVICE_TLB_GRANULARITY.PASID;
  const r = atsRange(addr, order);
  return {
    type: INV_TYPE.PASID_DEVICE_TLB,
    sid: t.sid,
    pfsid: t.pfsid,
    qdep: qdepOf(t.qdep),
    pasid,
    granularity,
    ...r,
  };
}

/** Interrupt entry cache invalidation: global, or 2^mask entries from `index`. */
export const iec = (index?: number, mask = 0): InvDescriptorInit =>
  index === undefined
    ? { type: INV_TYPE.IEC, granularity: IEC_GRANULARITY.GLOBAL }
    : { type: INV_TYPE.IEC, granularity: IEC_GRANULARITY.INDEX, iidx: index, im: mask };

const RESPONSE_CODE: Readonly<Record<PageResponseCode, number>> = {
  success: PAGE_RESPONSE.SUCCESS,
  invalid: PAGE_RESPONSE.INVALID,
  failure: PAGE_RESPONSE.FAILURE,
};

/** A page group response's contents (`pasid` NO_PASID: the request carried none). */
export type GroupResponse = {
  rid: number;
  pasid: number;
  groupIndex: number;
  code: PageResponseCode;
  last: boolean;
};

/** Page group response (Linux `intel_iommu_page_response`, `handle_bad_prq_event`). */
export function pageGroupResponse(r: GroupResponse): InvDescriptorInit {
  const pasidPresent = r.pasid !== NO_PASID;
  return {
    type: INV_TYPE.PAGE_GROUP_RESPONSE,
    rid: r.rid,
    pasidPresent,
    pasid: pasidPresent ? r.pasid : 0,
    respCode: RESPONSE_CODE[r.code],
    prgIndex: r.groupIndex,
    lpig: r.last,
  };
}

// --- the queue ------------------------------------------------------------------------------------

export interface QiStats {
  submissions: number;
  descriptors: number;
  /** Submissions that found the ring full and waited for IQH. */
  fullWaits: number;
  /** Descriptors the unit refused (IQE). */
  errors: number;
}

export class DriverQi {
  /** ECAP.QI: the queue; without it the register interface. */
  readonly queued: boolean;
  /** 256-bit descriptors (ECAP.SMTS, as Linux sets IQA.DW). */
  readonly wide: boolean;
  readonly stats: QiStats = { submissions: 0, descriptors: 0, fullWaits: 0, errors: 0 };
  private ring: number | undefined;
  private status: number | undefined;
  /** The driver's IQT, in descriptors. */
  private tail = 0;
  private readonly words: Uint32Array;
  private readonly one = new Uint32Array(1);

  constructor(private readonly host: VtdDriverBase) {
    this.queued = host.unit.ecap.qi;
    this.wide = host.unit.ecap.smts;
    this.words = new Uint32Array(this.wide ? WIDE_INV_DESC_WORDS : INV_DESC_WORDS);
  }

  private get shift(): number {
    return this.wide ? 5 : 4;
  }

  /** The ring's address (after `enable`). */
  get base(): number | undefined {
    return this.ring;
  }

  /**
   * Linux `dmar_disable_qi` then `dmar_enable_qi`: the ring (one page, two with 256-bit descriptors) and
   * the status array are allocated once; IQT = 0, IQA, then QIE and wait for QIES.
   */
  enable(): void {
    if (!this.queued) return;
    this.disable();
    const { mmio, memory } = this.host;
    this.ring ??= allocDriverPages(memory, this.wide ? 2 : 1);
    this.status ??= allocDriverPages(memory, 1);
    this.tail = 0;
    mmio.write32(REG.IQT, 0);
    mmio.writeAddress(REG.IQA, this.ring + (this.wide ? IQA_DW | 1 : 0));
    this.host.commands.set(GCMD_QIE, true);
  }

  /** Linux `dmar_disable_qi`: give the unit the chance to finish (IQH reaching IQT), then QIE off. */
  disable(): void {
    const { mmio, commands } = this.host;
    if (!this.queued || (mmio.read32(REG.GSTS) & GSTS_QIES) === 0) return;
    let polls = 0;
    // Stryker disable next-line EqualityOperator: the loop body is empty; polling once more or not at all changes nothing but time
    while (polls++ < POLL_LIMIT && mmio.read32(REG.IQT) !== mmio.read32(REG.IQH)) {
      // The model completes synchronously; real hardware is given this long to catch up.
    }
    commands.set(GCMD_QIE, false);
  }

  /**
   * A whole-address-space Device-TLB invalidation of `pasid` (Linux `devtlb_invalidation_with_pasid`):
   * RID_PASID (0) takes the form without PASID. None while translation is off (Linux `qi_flush_dev_iotlb`,
   * spec §4.3: no Device-TLB invalidations while remapping hardware is disabled).
   */
  flushDeviceTlbAll(target: DeviceTlbTarget, pasid = 0): void {
    if (!this.host.commands.has(GCMD_TE)) return;
    this.submit([
      pasid === 0 ? deviceTlb(target, 0, DEVTLB_ALL) : pasidDeviceTlb(target, pasid, 0, DEVTLB_ALL),
    ]);
  }

  /** Returns the ring and status pages (after `disable`). */
  free(): void {
    if (this.ring !== undefined) freeDriverPages(this.host.memory, this.ring, this.wide ? 2 : 1);
    if (this.status !== undefined) freeDriverPages(this.host.memory, this.status, 1);
    this.ring = this.status = undefined;
  }

  /**
   * Submits `descriptors` and waits for them (Linux `qi_submit_sync`); `drain` sets the wait's PD (Linux
   * QI_OPT_WAIT_DRAIN). `EINVAL` when the unit refused one (IQE), `ETIMEDOUT` when the wait never completes.
   */
  submit(descriptors: readonly InvDescriptorInit[], options: { drain?: boolean } = {}): void {
    const count = descriptors.length;
    if (count + 2 > QI_LENGTH)
      throw new IommufdError('EINVAL', `${this.host.instance}: ${count} descriptors do not fit the queue`);
    this.stats.submissions++;
    this.stats.descriptors += count;
    if (!this.queued) {
      for (const d of descriptors) this.registerInvalidation(d);
      return;
    }
    const ring = this.ring;
    const status = this.status;
    if (ring === undefined || status === undefined)
      throw new IommufdError('EINVAL', `${this.host.instance}: queued invalidation is not enabled`);
    this.waitForRoom(count + 2);
    const index = this.tail;
    const waitIndex = (index + count) % QI_LENGTH;
    for (const [i, d] of descriptors.entries()) this.put((index + i) % QI_LENGTH, this.withDrain(d));
    this.one[0] = QI_IN_USE;
    writeDriverMemory(this.host, status + 4 * waitIndex, this.one);
    this.put(waitIndex, {
      type: INV_TYPE.WAIT,
      sw: true,
      pd: options.drain === true,
      statusData: QI_DONE,
      statusAddr: status + 4 * waitIndex,
    });
    this.tail = (waitIndex + 1) % QI_LENGTH;
    if (this.host.tracer.enabled)
      this.host.log('qi.submit', `${count} descriptor(s) + wait at ${index}, IQT ${this.tail}`);
    this.host.mmio.write32(REG.IQT, this.tail << this.shift);
    this.waitDone(index, count, status + 4 * waitIndex);
  }

  private waitDone(index: number, count: number, statusAddr: number): void {
    const { instance } = this.host;
    const refused: string[] = [];
    for (let i = 0; i < POLL_LIMIT; i++) {
      if (this.readWord(statusAddr) === QI_DONE) {
        if (refused.length === 0) return;
        const message = `${instance}: Invalidation Queue Error: ${refused.join('; ')}`;
        throw new IommufdError('EINVAL', message, { instance });
      }
      this.checkFault(index, count, refused);
    }
    throw pollTimeout(instance, `invalidation wait at ${(index + count) % QI_LENGTH} never completed`);
  }

  /** Linux `qi_check_fault` for IQE at one of this submission's descriptors (see the module comment). */
  private checkFault(index: number, count: number, refused: string[]): void {
    const { mmio } = this.host;
    if ((mmio.read32(REG.FSTS) & FSTS_IQE) === 0) return;
    const head = (mmio.read32(REG.IQH) & IQ_INDEX_MASK) >>> this.shift;
    const position = (head - index + QI_LENGTH) % QI_LENGTH;
    if (position >= count) return;
    const iqei = mmio.read32(REG.IQERCD) & (2 ** IQERCD_IQEI.width - 1);
    refused.push(`descriptor ${position} of the submission refused, IQEI ${iqei}`);
    this.stats.errors++;
    this.host.log('qi.iqe', `VT-d detected Invalidation Queue Error: Reason ${iqei}, QI HEAD ${head}`);
    this.put(head, { type: INV_TYPE.WAIT });
    mmio.write32(REG.FSTS, FSTS_IQE);
    this.host.log('qi.iqe', 'Invalidation Queue Error (IQE) cleared');
  }

  /** Waits until the ring has `slots` free, counting the gap that keeps full apart from empty. */
  private waitForRoom(slots: number): void {
    for (let i = 0; i < POLL_LIMIT; i++) {
      const head = (this.host.mmio.read32(REG.IQH) & IQ_INDEX_MASK) >>> this.shift;
      const used = (this.tail - head + QI_LENGTH) % QI_LENGTH;
      if (QI_LENGTH - used >= slots) return;
      if (i === 0) this.stats.fullWaits++;
    }
    throw pollTimeout(this.host.instance, 'the invalidation queue never drained (IQH did not move)');
  }

  private withDrain(d: InvDescriptorInit): InvDescriptorInit {
    // Stryker disable next-line ConditionalExpression: only the IOTLB descriptor has DW/DR fields; the encoder ignores them on other types
    if (d.type !== INV_TYPE.IOTLB) return d;
    const { cap } = this.host.unit;
    return { ...d, dw: cap.dwd, dr: cap.drd };
  }

  private put(slot: number, d: InvDescriptorInit): void {
    encodeInvDescriptor(d, this.words, 0, this.wide);
    writeDriverMemory(this.host, this.ring! + (slot << this.shift), this.words);
  }

  private readWord(address: number): number {
    if (!this.host.bus.readWords(address, this.one, 1, this.host.counter)) return 0;
    return this.one[0]!;
  }

  /** Linux `__iommu_flush_context` / `__iommu_flush_iotlb`: the command, then the busy bit polled clear. */
  private registerInvalidation(d: InvDescriptorInit): void {
    const { mmio, unit, instance } = this.host;
    let at: number;
    let busy: number;
    if (d.type === INV_TYPE.CONTEXT_CACHE) {
      const lo = ((d.sid ?? 0) << 16) | (d.did ?? 0);
      mmio.write32(REG.CCMD, lo);
      mmio.write32(REG.CCMD + 4, CCMD_HI_ICC | ((d.granularity ?? 0) << CCMD_HI_CIRG.lsb) | (d.fm ?? 0));
      [at, busy] = [REG.CCMD + 4, CCMD_HI_ICC];
    } else if (d.type === INV_TYPE.IOTLB) {
      const iotlb = unit.iotlbOffset + 8;
      const granularity = d.granularity ?? 0;
      if (granularity === IOTLB_GRANULARITY.PAGE)
        mmio.writeAddress(unit.iotlbOffset, (d.addr ?? 0) + (d.ih ? IVA_IH : 0) + (d.am ?? 0));
      const drain = unit.cap.dwd ? IOTLB_HI_DW : 0;
      mmio.write32(iotlb, 0);
      mmio.write32(iotlb + 4, IOTLB_HI_IVT | (granularity << IOTLB_HI_IIRG.lsb) | drain | (d.did ?? 0));
      [at, busy] = [iotlb + 4, IOTLB_HI_IVT];
    } else if (d.type === INV_TYPE.WAIT) {
      return;
    } else {
      throw new IommufdError(
        'EOPNOTSUPP',
        `${instance}: descriptor type ${d.type} needs queued invalidation`,
      );
    }
    for (let i = 0; i < POLL_LIMIT; i++) if ((mmio.read32(at) & busy) === 0) return;
    throw pollTimeout(instance, `register invalidation at ${toHex(at)} did not complete`);
  }
}
