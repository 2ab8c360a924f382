/**
 * The physical memory bus: RAM and MMIO regions at fixed physical addresses (docs/design.md §4). A device model
 * sees only offsets into its own region; the bus owns placement and rejects overlaps. Accesses that hit no
 * region, or straddle a region's end, are architectural outcomes (a {@link BusAbort}), never exceptions; a
 * fractional address or a byte count that is not a count is the caller's bug (`EINVAL`).
 *
 * Physical addresses are `number`s on the hot path: every region ends at or below 2^52 (the largest output
 * address size any modelled IOMMU supports), so they are exact.
 */

import { toHex } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import { AccessCounter } from './access-counter.js';
import { SparseRam } from './sparse-ram.js';

/** Highest physical address (exclusive) a region may reach: 52-bit output addresses. */
export const PHYS_ADDR_LIMIT = 2 ** 52;

export type AccessSize = 1 | 2 | 4 | 8;

/** An MMIO device as the bus sees it. Accesses are naturally aligned, 1, 2 or 4 bytes wide. */
export interface MmioHandler {
  /** Returns the value at `offset`; offsets the device does not implement read as zero (RES0). */
  read(offset: number, size: 1 | 2 | 4): number;
  /**
   * Writes `value` at `offset`; writes to unimplemented offsets are ignored (WI). `deviceId` is the
   * sideband ID a device's write carries (Arm: the StreamID the SMMU passes on, which a GIC ITS uses as
   * the DeviceID); absent for CPU and IOMMU-internal accesses.
   */
  write(offset: number, size: 1 | 2 | 4, value: number, deviceId?: number): void;
}

/** Why an access did not complete: what a real interconnect signals as an external abort. */
export interface BusAbort {
  readonly addr: bigint;
  readonly size: number;
  readonly write: boolean;
  /** `unmapped`: no region; `unaligned-mmio`: an MMIO access not naturally aligned; `bulk-mmio`: a byte-range copy aimed at MMIO. */
  readonly reason: 'unmapped' | 'unaligned-mmio' | 'bulk-mmio';
}

export type BusReadResult =
  | { readonly ok: true; readonly value: bigint }
  | { readonly ok: false; readonly abort: BusAbort };
export type BusWriteResult = { readonly ok: true } | { readonly ok: false; readonly abort: BusAbort };
export type BusBytesResult =
  | { readonly ok: true; readonly data: Uint8Array }
  | { readonly ok: false; readonly abort: BusAbort };

interface RegionBase {
  readonly name: string;
  readonly base: number;
  readonly size: number;
  readonly end: number;
}
export interface RamRegion extends RegionBase {
  readonly kind: 'ram';
  readonly ram: SparseRam;
  /** Where the region starts in `ram`: 0 for RAM the region owns, the aliased range's start for an alias. */
  readonly ramOffset: number;
  /** The RAM belongs to a region of another bus (`addRamAlias`): removing this region keeps its bytes. */
  readonly alias: boolean;
}
export interface MmioRegion extends RegionBase {
  readonly kind: 'mmio';
  readonly handler: MmioHandler;
}
export type BusRegion = RamRegion | MmioRegion;

const OK_WRITE: BusWriteResult = { ok: true };

export class MemoryBus {
  private regions: BusRegion[] = [];
  private lastHit: BusRegion | undefined;
  private readonly counters = new Map<string, AccessCounter>();

  /** Adds a RAM region and returns its backing store. */
  addRam(name: string, base: bigint | number, size: bigint | number): RamRegion {
    const [b, s] = this.checkPlacement(name, base, size);
    const region = ramRegion(name, b, s, new SparseRam(s), 0, false);
    this.insert(region);
    return region;
  }

  /**
   * Adds a RAM region whose bytes are `[source, source + size)` of RAM on `target` (another bus): a VM's
   * guest RAM on its GPA bus, backed by host pages. Writes through either bus are seen through the other.
   */
  addRamAlias(
    name: string,
    base: bigint | number,
    size: bigint | number,
    target: { readonly bus: MemoryBus; readonly addr: bigint | number },
  ): RamRegion {
    const [b, s] = this.checkPlacement(name, base, size);
    const at = Number(target.addr);
    const backing = target.bus.regionAt(at, s);
    if (backing?.kind !== 'ram') {
      throw new IommufdError('EINVAL', `[${toHex(at)}, +${toHex(s)}) is not RAM on the target bus`, { name });
    }
    const region = ramRegion(name, b, s, backing.ram, backing.ramOffset + (at - backing.base), true);
    this.insert(region);
    return region;
  }

  /** Adds an MMIO region served by `handler`. */
  addMmio(name: string, base: bigint | number, size: bigint | number, handler: MmioHandler): MmioRegion {
    const [b, s] = this.checkPlacement(name, base, size);
    const region: MmioRegion = { kind: 'mmio', name, base: b, size: s, end: b + s, handler };
    this.insert(region);
    return region;
  }

  /** Removes a region by name (a device unplugged, a VM's RAM released). */
  removeRegion(name: string): void {
    const index = this.regions.findIndex((r) => r.name === name);
    if (index < 0) throw new IommufdError('ENOENT', `no bus region named "${name}"`, { name });
    const [removed] = this.regions.splice(index, 1);
    if (removed?.kind === 'ram' && !removed.alias) removed.ram.clear();
    this.lastHit = undefined;
  }

  listRegions(): readonly BusRegion[] {
    return this.regions;
  }

  /** The access counter for `tag`, created on first use. */
  counter(tag: string): AccessCounter {
    let c = this.counters.get(tag);
    if (c === undefined) {
      c = new AccessCounter(tag);
      this.counters.set(tag, c);
    }
    return c;
  }

  listCounters(): readonly AccessCounter[] {
    return [...this.counters.values()];
  }

  /** Bytes of host memory held by all RAM regions (pages actually allocated). */
  get allocatedBytes(): number {
    let total = 0;
    for (const r of this.regions) if (r.kind === 'ram' && !r.alias) total += r.ram.allocatedBytes;
    return total;
  }

  /** The region containing `[addr, addr + size)`, or undefined. */
  regionAt(addr: number, size = 1): BusRegion | undefined {
    const hit = this.lastHit;
    if (hit !== undefined && addr >= hit.base && addr + size <= hit.end) return hit;
    let lo = 0;
    let hi = this.regions.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.regions[mid]!;
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else {
        if (addr + size > r.end) return undefined;
        this.lastHit = r;
        return r;
      }
    }
    return undefined;
  }

  /**
   * Hot path: reads `count` little-endian 32-bit words at `addr` (4-byte aligned) into `out`.
   * Returns false, leaving `out` untouched, when the access aborts.
   */
  readWords(addr: number, out: Uint32Array, count: number, who: AccessCounter, outOffset = 0): boolean {
    const bytes = count * 4;
    const region = this.regionAt(addr, bytes);
    who.reads++;
    if (region === undefined || (addr & 3) !== 0) {
      who.aborts++;
      return false;
    }
    who.bytesRead += bytes;
    if (region.kind === 'ram') {
      region.ram.readWords(addr - region.base + region.ramOffset, out, outOffset, count);
    } else {
      const off = addr - region.base;
      for (let i = 0; i < count; i++) out[outOffset + i] = region.handler.read(off + i * 4, 4) >>> 0;
    }
    return true;
  }

  /** Hot path: writes `count` 32-bit words from `words` at `addr` (4-byte aligned). False on abort. */
  writeWords(
    addr: number,
    words: ArrayLike<number>,
    count: number,
    who: AccessCounter,
    inOffset = 0,
  ): boolean {
    const bytes = count * 4;
    const region = this.regionAt(addr, bytes);
    who.writes++;
    if (region === undefined || (addr & 3) !== 0) {
      who.aborts++;
      return false;
    }
    who.bytesWritten += bytes;
    if (region.kind === 'ram') {
      region.ram.writeWords(addr - region.base + region.ramOffset, words, inOffset, count);
    } else {
      const off = addr - region.base;
      for (let i = 0; i < count; i++) region.handler.write(off + i * 4, 4, words[inOffset + i]! >>> 0);
    }
    return true;
  }

  /** Reads 1, 2, 4 or 8 bytes, little-endian. MMIO accesses must be naturally aligned. */
  read(addr: bigint | number, size: AccessSize, who: AccessCounter): BusReadResult {
    const a = Number(addr);
    const region = this.locate(a, size, false, who);
    if (!('kind' in region)) return { ok: false, abort: region };
    who.bytesRead += size;
    const off = a - region.base + (region.kind === 'ram' ? region.ramOffset : 0);
    if (region.kind === 'mmio') {
      if (size === 8) {
        const lo = region.handler.read(off, 4) >>> 0;
        const hi = region.handler.read(off + 4, 4) >>> 0;
        return { ok: true, value: (BigInt(hi) << 32n) | BigInt(lo) };
      }
      return { ok: true, value: BigInt(region.handler.read(off, size) >>> 0) };
    }
    let value = 0n;
    for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(region.ram.read8(off + i));
    return { ok: true, value };
  }

  /** Writes the low `size` bytes of `value`, little-endian; `deviceId`: see {@link MmioHandler.write}. */
  write(
    addr: bigint | number,
    size: AccessSize,
    value: bigint | number,
    who: AccessCounter,
    deviceId?: number,
  ): BusWriteResult {
    const a = Number(addr);
    const region = this.locate(a, size, true, who);
    if (!('kind' in region)) return { ok: false, abort: region };
    who.bytesWritten += size;
    const off = a - region.base + (region.kind === 'ram' ? region.ramOffset : 0);
    const v = BigInt.asUintN(size * 8, BigInt(value));
    if (region.kind === 'mmio') {
      if (size === 8) {
        region.handler.write(off, 4, Number(v & 0xffff_ffffn), deviceId);
        region.handler.write(off + 4, 4, Number(v >> 32n), deviceId);
      } else {
        region.handler.write(off, size, Number(v), deviceId);
      }
      return OK_WRITE;
    }
    for (let i = 0; i < size; i++) region.ram.write8(off + i, Number((v >> BigInt(8 * i)) & 0xffn));
    return OK_WRITE;
  }

  /** Reads a byte range from RAM (bulk copies are RAM-only, as DMA to MMIO is modelled per access). */
  readBytes(addr: bigint | number, length: number, who: AccessCounter): BusBytesResult {
    if (!Number.isSafeInteger(length) || length < 0)
      throw new IommufdError('EINVAL', `cannot read ${length} bytes from the bus`, { length });
    const a = Number(addr);
    const region = this.locate(a, length, false, who);
    if (!('kind' in region)) return { ok: false, abort: region };
    if (region.kind !== 'ram') return { ok: false, abort: this.abort(a, length, false, 'bulk-mmio', who) };
    const data = new Uint8Array(length);
    region.ram.readBytes(a - region.base + region.ramOffset, data);
    who.bytesRead += length;
    return { ok: true, data };
  }

  /** Writes a byte range into RAM. */
  writeBytes(addr: bigint | number, data: Uint8Array, who: AccessCounter): BusWriteResult {
    const a = Number(addr);
    const region = this.locate(a, data.length, true, who);
    if (!('kind' in region)) return { ok: false, abort: region };
    if (region.kind !== 'ram')
      return { ok: false, abort: this.abort(a, data.length, true, 'bulk-mmio', who) };
    region.ram.writeBytes(a - region.base + region.ramOffset, data);
    who.bytesWritten += data.length;
    return OK_WRITE;
  }

  /** Zeroes a page-aligned RAM range without allocating (fresh pages from the allocator). */
  discardRam(addr: bigint | number, length: number): void {
    const a = Number(addr);
    const region = this.regionAt(a, length);
    if (region?.kind !== 'ram')
      throw new IommufdError('EINVAL', `[${toHex(a)}, +${toHex(length)}) is not RAM`);
    region.ram.discard(a - region.base + region.ramOffset, length);
  }

  private locate(addr: number, size: number, write: boolean, who: AccessCounter): BusRegion | BusAbort {
    if (write) who.writes++;
    else who.reads++;
    const region = Number.isSafeInteger(addr) ? this.regionAt(addr, size) : undefined;
    if (region === undefined) return this.abort(addr, size, write, 'unmapped', who);
    if (region.kind === 'mmio' && (size > 8 || addr % size !== 0)) {
      return this.abort(addr, size, write, 'unaligned-mmio', who);
    }
    return region;
  }

  private abort(
    addr: number,
    size: number,
    write: boolean,
    reason: BusAbort['reason'],
    who: AccessCounter,
  ): BusAbort {
    // No requester can put a fractional address on the bus: only a caller's bug makes one.
    if (!Number.isInteger(addr)) throw new IommufdError('EINVAL', `bus address ${addr} is not an integer`);
    who.aborts++;
    return { addr: BigInt(addr), size, write, reason };
  }

  private checkPlacement(name: string, base: bigint | number, size: bigint | number): [number, number] {
    const b = BigInt(base);
    const s = BigInt(size);
    if (s <= 0n || b < 0n || b + s > BigInt(PHYS_ADDR_LIMIT)) {
      throw new IommufdError(
        'EINVAL',
        `region "${name}" [${toHex(b)}, +${toHex(s)}) is outside the 52-bit physical space`,
        {
          name,
        },
      );
    }
    if (this.regions.some((r) => r.name === name)) {
      throw new IommufdError('EEXIST', `a bus region named "${name}" already exists`, { name });
    }
    const clash = this.regions.find((r) => b < BigInt(r.end) && BigInt(r.base) < b + s);
    if (clash) {
      throw new IommufdError(
        'EADDRINUSE',
        `region "${name}" [${toHex(b)}, ${toHex(b + s)}) overlaps "${clash.name}" [${toHex(clash.base)}, ${toHex(clash.end)})`,
        { name, overlaps: clash.name },
      );
    }
    return [Number(b), Number(s)];
  }

  private insert(region: BusRegion): void {
    this.regions.push(region);
    this.regions.sort((x, y) => x.base - y.base);
    this.lastHit = undefined;
  }
}

function ramRegion(
  name: string,
  base: number,
  size: number,
  ram: SparseRam,
  ramOffset: number,
  alias: boolean,
): RamRegion {
  return { kind: 'ram', name, base, size, end: base + size, ram, ramOffset, alias };
}
