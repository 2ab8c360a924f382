/**
 * The IOVA space of an IOAS (Linux `io_pagetable`): the areas users mapped, the reserved and allowed
 * IOVA ranges, and every domain attached to it, which is kept filled with all areas. Everything that
 * changes the space goes through here so domains never disagree with the areas.
 *
 * Errors follow the kernel: a fixed map over an area is `EEXIST`, over a reserved range `EINVAL`; unmap
 * may only remove whole areas (`ENOENT` if the range cuts one or finds none); reserving over an area or
 * an allowed range is `EADDRINUSE`.
 */
import { type Hpa, hpa, iova as makeIova, PAGE_SIZE, toHex, U64_MAX } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDomain, Prot } from '../iommu/driver.js';
import { roundUpPow2 } from '../iommu/iova-allocator.js';
import type { UserMemory } from './user-memory.js';

const PAGE = BigInt(PAGE_SIZE);
/** Largest alignment auto-allocation uses with huge pages on (Linux HPAGE_SIZE on x86/arm64 4K). */
export const HUGE_PAGE_SIZE = 2n * 1024n * 1024n;

export interface Area {
  readonly iova: bigint;
  readonly length: bigint;
  readonly memory: UserMemory;
  /** Offset of the area's first byte in `memory`. */
  readonly offset: bigint;
  readonly prot: Prot;
}

interface Range {
  readonly start: bigint;
  /** Inclusive. */
  readonly last: bigint;
}

interface Reservation extends Range {
  readonly owner: object;
}

export class IoPagetable {
  private areas: Area[] = [];
  private readonly reserved: Reservation[] = [];
  private allowed: Range[] = [];
  private readonly domains: IommuDomain[] = [];
  private hugePagesEnabled = true;

  get hugePages(): boolean {
    return this.hugePagesEnabled;
  }

  listAreas(): readonly Area[] {
    return this.areas;
  }

  listDomains(): readonly IommuDomain[] {
    return this.domains;
  }

  /**
   * Every map must be aligned to this (Linux `iova_alignment`): the smallest page size of every attached
   * domain, and PAGE_SIZE with huge pages disabled; 1 for a fresh IOAS.
   */
  get iovaAlignment(): bigint {
    let align = this.hugePagesEnabled ? 1n : PAGE;
    for (const d of this.domains) align = maxBig(align, smallestPage(d));
    return align;
  }

  /** Maps `length` bytes of `memory` from `offset` at a fixed IOVA, or at one it picks (`iova` undefined). */
  map(iova: bigint | undefined, memory: UserMemory, offset: bigint, length: bigint, prot: Prot): bigint {
    if (length >= U64_MAX || (iova !== undefined && iova >= U64_MAX))
      throw new IommufdError('EOVERFLOW', 'IOVA or length is ULONG_MAX or more');
    if (length === 0n) throw new IommufdError('EINVAL', 'map of zero length');
    if (!prot.read && !prot.write) throw new IommufdError('EINVAL', 'map needs READABLE or WRITEABLE');
    // The range must lie inside the memory the caller named: nothing before it, nothing past its end.
    if (offset < 0n) throw new IommufdError('EINVAL', `map starts before ${memory.description}`);
    if (offset + length > memory.length)
      throw new IommufdError('EINVAL', `map runs past the end of ${memory.description}`);
    const align = this.iovaAlignment;
    const start = iova ?? this.allocIova(memory.physAt(offset), length);
    if (start > U64_MAX || start + length - 1n > U64_MAX)
      throw new IommufdError('EOVERFLOW', 'IOVA range overflows 64 bits');
    const physPageOffset = memory.physAt(offset) % PAGE;
    if (start % align !== 0n || length % align !== 0n || (align >= PAGE && physPageOffset !== start % PAGE)) {
      throw new IommufdError(
        'EINVAL',
        `map at ${toHex(start)}+${toHex(length)} is not aligned to ${toHex(align)}`,
      );
    }
    const last = start + length - 1n;
    if (this.reserved.some((r) => overlaps(r, start, last))) {
      throw new IommufdError('EINVAL', `IOVA ${toHex(start)}+${toHex(length)} hits a reserved range`);
    }
    if (this.areas.some((a) => overlaps(areaRange(a), start, last))) {
      throw new IommufdError('EEXIST', `IOVA ${toHex(start)}+${toHex(length)} overlaps a mapped area`);
    }
    const area: Area = { iova: start, length, memory, offset, prot };
    const filled: IommuDomain[] = [];
    try {
      for (const d of this.domains) {
        this.fillDomain(d, area);
        filled.push(d);
      }
    } catch (error) {
      for (const d of filled) this.unfillDomain(d, area);
      throw error;
    }
    this.insertArea(area);
    return start;
  }

  /**
   * Unmaps every area inside `[iova, iova + length)` and returns the bytes unmapped. `(0, 2^64 − 1)`
   * unmaps everything and succeeds on an empty IOAS.
   */
  unmap(iova: bigint, length: bigint): bigint {
    if (length === 0n) throw new IommufdError('EINVAL', 'unmap of zero length');
    const all = iova === 0n && length === U64_MAX;
    if (!all && (iova >= U64_MAX || length >= U64_MAX))
      throw new IommufdError('EOVERFLOW', 'IOVA or length is ULONG_MAX or more');
    const last = all ? U64_MAX : iova + length - 1n;
    if (last > U64_MAX) throw new IommufdError('EOVERFLOW', 'unmap range overflows 64 bits');
    const hit = this.areas.filter((a) => overlaps(areaRange(a), iova, last));
    const cut = hit.find((a) => a.iova < iova || a.iova + a.length - 1n > last);
    if (cut) {
      throw new IommufdError(
        'ENOENT',
        `unmap ${toHex(iova)}+${toHex(length)} cuts the area at ${toHex(cut.iova)}+${toHex(cut.length)}`,
      );
    }
    if (hit.length === 0 && !all)
      throw new IommufdError('ENOENT', `nothing mapped in ${toHex(iova)}+${toHex(length)}`);
    let unmapped = 0n;
    for (const area of hit) {
      for (const d of this.domains) this.unfillDomain(d, area);
      unmapped += area.length;
    }
    this.areas = this.areas.filter((a) => !hit.includes(a));
    return unmapped;
  }

  /** Whether any area overlaps `[iova, iova + length)`. */
  overlapsArea(iova: bigint, length: bigint): boolean {
    const last = iova + length - 1n;
    return this.areas.some((a) => overlaps(areaRange(a), iova, last));
  }

  /** The areas covering `[iova, iova + length)` contiguously, clipped to it; `ENOENT` if there is a hole. */
  slice(iova: bigint, length: bigint): Area[] {
    const out: Area[] = [];
    let at = iova;
    const end = iova + length;
    for (const a of this.areas) {
      if (a.iova + a.length <= at || a.iova >= end) continue;
      if (a.iova > at) break;
      const from = at - a.iova;
      const take = minBig(a.iova + a.length, end) - at;
      out.push({ iova: at, length: take, memory: a.memory, offset: a.offset + from, prot: a.prot });
      at += take;
      if (at >= end) break;
    }
    if (at < end)
      throw new IommufdError('ENOENT', `IOVA ${toHex(iova)}+${toHex(length)} is not fully mapped`);
    return out;
  }

  /**
   * Adds a domain and fills it with every area. Refused with `EINVAL` when its smallest page is larger
   * than PAGE_SIZE, `EADDRINUSE` when the alignment it needs is not met by existing areas or its aperture
   * excludes one.
   */
  addDomain(domain: IommuDomain): void {
    const page = smallestPage(domain);
    if (page > PAGE)
      throw new IommufdError('EINVAL', `domain ${domain.id}: smallest page ${toHex(page)} exceeds PAGE_SIZE`);
    const misaligned = this.areas.find((a) => isMisaligned(a, page));
    if (misaligned)
      throw new IommufdError(
        'EADDRINUSE',
        `area at ${toHex(misaligned.iova)} is not aligned for domain ${domain.id}`,
      );
    const outside = apertureHoles(domain);
    try {
      for (const hole of outside) this.reserve(domain, hole.start, hole.last - hole.start + 1n);
    } catch (error) {
      this.releaseReserved(domain);
      throw error;
    }
    const filled: Area[] = [];
    try {
      for (const area of this.areas) {
        this.fillDomain(domain, area);
        filled.push(area);
      }
    } catch (error) {
      for (const area of filled) this.unfillDomain(domain, area);
      this.releaseReserved(domain);
      throw error;
    }
    this.domains.push(domain);
  }

  /** Empties a domain of the IOAS's areas and forgets it. */
  removeDomain(domain: IommuDomain): void {
    const index = this.domains.indexOf(domain);
    if (index < 0) return;
    for (const area of this.areas) this.unfillDomain(domain, area);
    this.domains.splice(index, 1);
    this.releaseReserved(domain);
  }

  /** Reserves `[start, start + length)` for `owner`; `EADDRINUSE` over an area or an allowed range. */
  reserve(owner: object, start: bigint, length: bigint): void {
    const last = start + length - 1n;
    if (this.areas.some((a) => overlaps(areaRange(a), start, last))) {
      throw new IommufdError('EADDRINUSE', `cannot reserve ${toHex(start)}+${toHex(length)}: it is mapped`);
    }
    if (this.allowed.some((r) => overlaps(r, start, last))) {
      throw new IommufdError(
        'EADDRINUSE',
        `cannot reserve ${toHex(start)}+${toHex(length)}: it is in an allowed range`,
      );
    }
    this.reserved.push({ owner, start, last });
  }

  releaseReserved(owner: object): void {
    for (let i = this.reserved.length - 1; i >= 0; i--)
      if (this.reserved[i]!.owner === owner) this.reserved.splice(i, 1);
  }

  /** Replaces the allowed IOVA ranges (empty clears them); see `IOMMU_IOAS_ALLOW_IOVAS`. */
  setAllowed(ranges: readonly { start: bigint; last: bigint }[]): void {
    const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : 1));
    sorted.forEach((r, i) => {
      if (r.start >= r.last)
        throw new IommufdError(
          'EINVAL',
          `allowed range ${toHex(r.start)}..${toHex(r.last)} needs start < last`,
        );
      const prev = sorted[i - 1];
      if (prev && prev.last >= r.start) throw new IommufdError('EINVAL', 'allowed ranges overlap each other');
      if (this.reserved.some((res) => overlaps(res, r.start, r.last))) {
        throw new IommufdError(
          'EADDRINUSE',
          `allowed range ${toHex(r.start)}..${toHex(r.last)} intersects a reserved range`,
        );
      }
    });
    this.allowed = sorted;
  }

  /** Usable IOVA holes: the complement of the reserved ranges in [0, 2^64 − 1] (`IOMMU_IOAS_IOVA_RANGES`). */
  iovaRanges(): { start: bigint; last: bigint }[] {
    const sorted = [...this.reserved].sort((a, b) => (a.start < b.start ? -1 : 1));
    const out: { start: bigint; last: bigint }[] = [];
    let next = 0n;
    for (const r of sorted) {
      if (r.start > next) out.push({ start: next, last: r.start - 1n });
      if (r.last >= next) next = r.last + 1n;
      if (next > U64_MAX) return out;
    }
    out.push({ start: next, last: U64_MAX });
    return out;
  }

  /** `IOMMU_OPTION_HUGE_PAGES`; disabling while domains and areas both exist is `EINVAL`. */
  setHugePages(enabled: boolean): void {
    if (!enabled && this.hugePagesEnabled && this.domains.length > 0 && this.areas.length > 0) {
      throw new IommufdError('EINVAL', 'cannot disable huge pages while domains and areas exist');
    }
    if (!enabled && this.areas.some((a) => isMisaligned(a, PAGE))) {
      throw new IommufdError('EADDRINUSE', 'existing areas are not page aligned');
    }
    this.hugePagesEnabled = enabled;
  }

  /**
   * Picks an IOVA for an auto map: aligned to min(roundup_pow2(length), the physical address's own
   * alignment), capped at HUGE_PAGE_SIZE (PAGE_SIZE without huge pages), inside the allowed ranges (or
   * [PAGE_SIZE, 2^64 − PAGE_SIZE)), never 0, avoiding areas and reserved ranges.
   */
  private allocIova(phys: Hpa, length: bigint): bigint {
    if (length >= U64_MAX / 2n)
      throw new IommufdError('EOVERFLOW', `cannot auto-allocate ${toHex(length)} bytes`);
    let align = minBig(roundUpPow2(length), lowestSetBit(phys));
    align = minBig(align, this.hugePagesEnabled ? HUGE_PAGE_SIZE : PAGE);
    align = maxBig(align, PAGE);
    if (align < this.iovaAlignment)
      throw new IommufdError('EINVAL', 'the buffer is not aligned as the IOAS requires');
    const low = phys % PAGE;
    // The last page is never handed out, inside allowed ranges too (the kernel clips them to ULONG_MAX − PAGE_SIZE).
    const top = U64_MAX - PAGE;
    const windows = (this.allowed.length > 0 ? this.allowed : [{ start: PAGE, last: top }]).map((w) => ({
      start: w.start,
      last: w.last < top ? w.last : top,
    }));
    const busy = [...this.reserved, ...this.areas.map(areaRange)].sort((a, b) =>
      a.start < b.start ? -1 : 1,
    );
    for (const w of windows) {
      let candidate = alignUpBig(maxBig(w.start, PAGE), align) + low;
      for (const b of busy) {
        if (candidate + length - 1n < b.start) break;
        if (b.last >= candidate) candidate = alignUpBig(b.last + 1n, align) + low;
      }
      if (candidate + length - 1n <= w.last) return candidate;
    }
    throw new IommufdError('ENOSPC', `no free IOVA hole of ${toHex(length)} bytes`);
  }

  /** Maps an area into a domain, one physically contiguous run (or one page without huge pages) at a time. */
  private fillDomain(domain: IommuDomain, area: Area): void {
    let done = 0n;
    try {
      while (done < area.length) {
        const phys = area.memory.physAt(area.offset + done);
        let run = minBig(area.memory.contiguousFrom(area.offset + done), area.length - done);
        if (!this.hugePagesEnabled) run = minBig(run, PAGE);
        domain.map(makeIova(area.iova + done), hpa(phys), run, area.prot);
        done += run;
      }
    } catch (error) {
      if (done > 0n) {
        domain.unmap(makeIova(area.iova), done);
        domain.iotlbSync();
      }
      throw error;
    }
  }

  /** Unmaps an area from a domain and waits for the invalidation: no DMA can use it afterwards. */
  private unfillDomain(domain: IommuDomain, area: Area): void {
    domain.unmap(makeIova(area.iova), area.length);
    domain.iotlbSync();
  }

  private insertArea(area: Area): void {
    let i = 0;
    while (i < this.areas.length && this.areas[i]!.iova < area.iova) i++;
    this.areas.splice(i, 0, area);
  }
}

function areaRange(a: Area): Range {
  return { start: a.iova, last: a.iova + a.length - 1n };
}

/** Linux `iopt_check_iova_alignment`: the IOVA, the length or the page offset breaks `align`. */
function isMisaligned(a: Area, align: bigint): boolean {
  return a.iova % align !== 0n || a.length % align !== 0n || a.memory.physAt(a.offset) % align !== 0n;
}

function overlaps(r: Range, start: bigint, last: bigint): boolean {
  return r.start <= last && start <= r.last;
}

function smallestPage(domain: IommuDomain): bigint {
  const bitmap = domain.pgsizeBitmap;
  return bitmap === 0n ? PAGE : bitmap & -bitmap;
}

function apertureHoles(domain: IommuDomain): Range[] {
  const holes: Range[] = [];
  if (domain.aperture.start > 0n) holes.push({ start: 0n, last: domain.aperture.start - 1n });
  if (domain.aperture.end < U64_MAX) holes.push({ start: domain.aperture.end + 1n, last: U64_MAX });
  return holes;
}

function lowestSetBit(value: bigint): bigint {
  return value === 0n ? 1n << 63n : value & -value;
}

function alignUpBig(value: bigint, align: bigint): bigint {
  return ((value + align - 1n) / align) * align;
}

const minBig = (a: bigint, b: bigint) => (a < b ? a : b);
const maxBig = (a: bigint, b: bigint) => (a > b ? a : b);
