/**
 * A page table a driver owns: the role of Linux's io-pgtable (and generic_pt) for one domain. It allocates
 * its root (all concatenated tables of it) and its tables from the host frame allocator, edits descriptors
 * in memory through the bus as a kernel would, and keeps no copy of the table: memory is the truth, which a
 * hardware walker ({@link walk}) reads at the same time. The only side state is a count of valid entries per
 * table, so a table that becomes empty is freed at once (a full unmap leaves only the root).
 *
 * Semantics (io-pgtable's, with the differences noted):
 * - `map` uses, at each step, the largest page or block size that the alignment of the IOVA, the output
 *   address and the remaining size allow. It refuses with `EEXIST` if any part of the range is mapped and with
 *   `EINVAL` if misaligned, out of range or without access, before writing anything; if a table allocation
 *   fails part-way, what was written is unmapped again before the error is rethrown.
 * - `unmap` clears every mapping inside the range, skipping holes (Linux stops at the first hole), and
 *   returns the bytes unmapped. A block only partly inside the range is split into next-level entries with
 *   the same attributes first, so the rest stays mapped.
 * - TLB maintenance is the caller's, told through the optional {@link IoPageTableFlushOps} (the role of
 *   `iommu_flush_ops`): `tlbAddPage` for leaves removed or changed, `tlbFlushWalk` when tables change.
 */
import {
  type AccessCounter,
  type Hpa,
  hpa,
  type IFrameAllocator,
  IommufdError,
  type ITracer,
  type MemoryBus,
  toHex,
} from '@iommukit/core';
import {
  DESC_INVALID,
  DESC_LEAF,
  DESC_TABLE,
  DIRTY_DIRTY,
  type LeafTemplate,
  type MapProt,
  type PageTableFormat,
  pow2,
} from './format.js';

const FRAME = 4096;

/** What a page table needs from its owner. */
export interface IoPageTableContext {
  readonly bus: MemoryBus;
  /** Host frames for tables; they must come back zeroed (the core's frame allocator does that). */
  readonly memory: IFrameAllocator;
  /** Counts the table's descriptor reads and writes. */
  readonly counter: AccessCounter;
  readonly tracer?: ITracer;
  /** Trace source name, e.g. `smmu0/domain3`. */
  readonly source?: string;
}

/** TLB maintenance callbacks (Linux `iommu_flush_ops`); ranges are input addresses. */
export interface IoPageTableFlushOps {
  /** Leaves in `[iova, iova + size)` were removed or had their dirty state cleared. */
  tlbAddPage?(iova: bigint, size: bigint): void;
  /** Table descriptors covering `[iova, iova + size)` changed (a table freed, a block split). */
  tlbFlushWalk?(iova: bigint, size: bigint): void;
}

export interface IoPageTableOptions {
  /** Page sizes this table may use, a subset of the format's `pgsizeBitmap` (default: all of them). */
  readonly pageSizes?: bigint;
  /** Writable mappings are hardware-dirty tracked (Linux `IO_PGTABLE_QUIRK_ARM_HD`). */
  readonly dirtyTracking?: boolean;
  readonly flush?: IoPageTableFlushOps;
}

export interface ReadAndClearDirtyOptions {
  /** Clear the dirty state of what is reported (default true; false is Linux `IOMMU_DIRTY_NO_CLEAR`). */
  readonly clear?: boolean;
}

function lowestBit(bitmap: bigint): bigint {
  return bitmap & -bitmap;
}

export class IoPageTable<A = unknown> {
  readonly format: PageTableFormat<A>;
  /** The root table (the first of the concatenated tables), what a driver writes into its CD or STE. */
  readonly root: Hpa;
  readonly rootPa: number;
  /** Page sizes this table maps with. */
  readonly pgsizeBitmap: bigint;
  readonly dirtyTracking: boolean;

  private readonly ctx: IoPageTableContext;
  private readonly flush: IoPageTableFlushOps | undefined;
  private readonly minPage: bigint;
  private readonly rootFrames: number;
  private readonly tableFrames: number;
  /** Valid entries of every table, the root included. */
  private readonly valid = new Map<number, number>();
  /** Per level: may this table place a leaf there. */
  // Stryker disable next-line ArrayDeclaration: every level a walk reaches is set in the constructor
  private readonly leafOk: boolean[] = [];
  /** Per level: words of one table, for bulk reads and writes. */
  // Stryker disable next-line ArrayDeclaration: see leafOk
  private readonly scratch: Uint32Array[] = [];
  private zeros = new Uint32Array(0);
  private readonly one = new Uint32Array(2);
  private freed = false;

  constructor(format: PageTableFormat<A>, ctx: IoPageTableContext, options: IoPageTableOptions = {}) {
    this.format = format;
    this.ctx = ctx;
    this.flush = options.flush;
    this.dirtyTracking = options.dirtyTracking === true;
    const sizes = options.pageSizes ?? format.pgsizeBitmap;
    if (sizes === 0n || (sizes & ~format.pgsizeBitmap) !== 0n) {
      throw new IommufdError(
        'EINVAL',
        `page sizes ${toHex(sizes)} are not a subset of ${format.name}'s ${toHex(format.pgsizeBitmap)}`,
      );
    }
    this.pgsizeBitmap = sizes;
    this.minPage = lowestBit(sizes);
    for (let level = format.startLevel; ; level = format.nextLevel(level)) {
      const size = 1n << BigInt(format.levelShift(level));
      this.leafOk[level] = format.leafAllowed(level) && (sizes & size) !== 0n;
      this.scratch[level] = new Uint32Array(2 * format.entries(level));
      if (level === format.leafLevel) break;
    }
    this.rootFrames = Math.max(1, Math.ceil(format.rootBytes / FRAME));
    this.tableFrames = Math.max(1, Math.ceil(format.tableBytes / FRAME));
    // Concatenated tables are contiguous and aligned to their total size (Arm ARM D8.2.3).
    this.root = ctx.memory.allocFrames(this.rootFrames, this.rootFrames);
    this.rootPa = Number(this.root);
    this.valid.set(this.rootPa, 0);
  }

  /** Table pages in use, the root's concatenated tables included (a table smaller than a page counts 1). */
  get tablePages(): number {
    return this.format.rootTables + this.valid.size - 1;
  }

  /** Maps `[iova, iova + size)` to `[pa, pa + size)` (see the module comment for the rules). */
  map(iova: bigint, pa: bigint, size: bigint, prot: MapProt): void {
    this.checkLive();
    if (!prot.read && !prot.write)
      throw new IommufdError('EINVAL', 'a mapping needs read or write permission');
    this.checkRange('map', iova, size);
    if (pa < 0n || pa % this.minPage !== 0n || pa + size > 1n << BigInt(this.format.oas)) {
      throw new IommufdError(
        'EINVAL',
        `output range ${toHex(pa)}+${toHex(size)} is unaligned to ${toHex(this.minPage)} or beyond the ${this.format.oas}-bit output size`,
        { pa, size },
      );
    }
    const start = Number(iova);
    const end = start + Number(size);
    const { startLevel } = this.format;
    this.checkUnmapped(this.rootPa, startLevel, start, end);
    const template = this.format.leafTemplate(prot, this.dirtyTracking);
    try {
      this.mapRange(this.rootPa, startLevel, start, Number(pa), end, template);
    } catch (error) {
      this.unmapRange(this.rootPa, startLevel, start, end);
      throw error;
    }
    if (this.ctx.tracer?.enabled)
      this.trace('pgtable.map', `map ${toHex(iova)}+${toHex(size)} → ${toHex(pa)}`, { iova, pa, size });
  }

  /** Unmaps everything mapped in `[iova, iova + size)`; returns the bytes unmapped. */
  unmap(iova: bigint, size: bigint): bigint {
    this.checkLive();
    this.checkRange('unmap', iova, size);
    const start = Number(iova);
    const bytes = this.unmapRange(this.rootPa, this.format.startLevel, start, start + Number(size));
    if (this.ctx.tracer?.enabled)
      this.trace('pgtable.unmap', `unmap ${toHex(iova)}+${toHex(size)}: ${toHex(bytes)} bytes`, {
        iova,
        size,
        unmapped: bytes,
      });
    return BigInt(bytes);
  }

  /** The output address `iova` translates to, or `undefined` (Linux `iova_to_phys`; reads memory). */
  iovaToPhys(iova: bigint): bigint | undefined {
    this.checkLive();
    if (iova < 0n || iova >= 1n << BigInt(this.format.ias)) return undefined;
    const input = Number(iova);
    const f = this.format;
    let table = this.rootPa;
    for (let level = f.startLevel; ; level = f.nextLevel(level)) {
      const [lo, hi] = this.readEntry(table + f.index(input, level) * f.descriptorBytes);
      const kind = f.kind(lo, hi, level);
      if (kind === DESC_LEAF) {
        return BigInt(f.outputAddress(lo, hi, level) + (input % pow2(f.levelShift(level))));
      }
      // A table at the leaf level only comes from a format that breaks its contract: stop there too.
      // Stryker disable next-line ConditionalExpression: no format here reports a table at its leaf level
      if (kind !== DESC_TABLE || level === f.leafLevel) return undefined;
      table = f.tableAddress(lo, hi);
    }
  }

  /**
   * Calls `record(iova, size)` for the dirty part of every hardware-tracked leaf in `[iova, iova + size)`
   * and, unless `clear` is false, makes those leaves writable-clean again (the caller flushes the TLB, or
   * passes {@link IoPageTableFlushOps}).
   */
  readAndClearDirty(
    iova: bigint,
    size: bigint,
    record: (iova: bigint, size: bigint) => void,
    options: ReadAndClearDirtyOptions = {},
  ): void {
    this.checkLive();
    this.checkRange('readAndClearDirty', iova, size);
    const start = Number(iova);
    this.dirtyRange(
      this.rootPa,
      this.format.startLevel,
      start,
      start + Number(size),
      record,
      options.clear !== false,
    );
  }

  /** Frees every table, the root included. The table must no longer be in use by hardware. */
  free(): void {
    this.checkLive();
    this.freed = true;
    for (const table of this.valid.keys()) {
      if (table !== this.rootPa) this.ctx.memory.freeFrames(hpa(table), this.tableFrames);
    }
    this.valid.clear();
    this.ctx.memory.freeFrames(this.root, this.rootFrames);
    if (this.ctx.tracer?.enabled)
      this.trace('pgtable.free', `free ${this.format.name} root ${toHex(this.root)}`, { root: this.root });
  }

  // --- map ---------------------------------------------------------------------------------------------

  /** Throws `EEXIST` if any leaf lies in `[iova, end)`. Non-root tables are never empty, so a table wholly
   * inside the range means a mapping there. */
  private checkUnmapped(table: number, level: number, iova: number, end: number): void {
    const f = this.format;
    const span = pow2(f.levelShift(level));
    const first = f.index(iova, level);
    const count = this.lastIndex(end, level) - first + 1;
    const buf = this.readSlice(table, level, first, count);
    for (let k = 0; k < count; k++) {
      const lo = buf[2 * k]!;
      const hi = buf[2 * k + 1]!;
      const kind = f.kind(lo, hi, level);
      if (kind === DESC_INVALID) continue;
      const base = (Math.floor(iova / span) + k) * span;
      const s = Math.max(iova, base);
      const e = Math.min(end, base + span);
      // A present entry this table never wrote (a reserved one) is occupied too.
      if (kind !== DESC_TABLE || (s === base && e === base + span)) {
        throw new IommufdError('EEXIST', `IOVA ${toHex(s)} is already mapped in ${f.name}`, { iova: s });
      }
      this.checkUnmapped(f.tableAddress(lo, hi), f.nextLevel(level), s, e);
    }
  }

  private mapRange(
    table: number,
    level: number,
    iova: number,
    pa: number,
    end: number,
    template: LeafTemplate,
  ): void {
    const f = this.format;
    const span = pow2(f.levelShift(level));
    const entries = f.entries(level);
    const buf = this.scratch[level]!;
    let idx = f.index(iova, level);
    while (iova < end) {
      if (this.leafOk[level] && iova % span === 0 && pa % span === 0 && end - iova >= span) {
        // A run of leaves: iova and pa stay aligned, so it lasts while whole entries remain.
        const n = Math.min(Math.floor((end - iova) / span), entries - idx);
        f.encodeLeaves(pa, level, template, buf, 0, n);
        iova += n * span;
        pa += n * span;
        this.writeWords(table + idx * f.descriptorBytes, buf, 2 * n);
        this.adjust(table, n);
        idx += n;
        continue;
      }
      const entryEnd = Math.min(end, (Math.floor(iova / span) + 1) * span);
      const at = table + idx * f.descriptorBytes;
      const [lo, hi] = this.readEntry(at);
      const kind = f.kind(lo, hi, level);
      let child: number;
      if (kind === DESC_TABLE) {
        child = f.tableAddress(lo, hi);
      } else if (kind === DESC_INVALID) {
        child = this.allocTable();
        f.encodeTable(child, level, this.one, 0);
        this.writeWords(at, this.one, 2);
        this.adjust(table, 1);
      } else {
        throw new IommufdError('EEXIST', `IOVA ${toHex(iova)} is already mapped in ${f.name}`, { iova });
      }
      this.mapRange(child, f.nextLevel(level), iova, pa, entryEnd, template);
      pa += entryEnd - iova;
      iova = entryEnd;
      idx++;
    }
  }

  // --- unmap -------------------------------------------------------------------------------------------

  /**
   * The index at `level` of the last page before `end` (a granule multiple): `end - 1` would round up
   * past 2^53, where a 5-level table's upper half lies (2^56 − 1 is not a double).
   */
  private lastIndex(end: number, level: number): number {
    return this.format.index(end - pow2(this.format.granuleShift), level);
  }

  private unmapRange(table: number, level: number, iova: number, end: number): number {
    const f = this.format;
    const span = pow2(f.levelShift(level));
    const first = f.index(iova, level);
    const count = this.lastIndex(end, level) - first + 1;
    const buf = this.readSlice(table, level, first, count);
    const firstBase = Math.floor(iova / span) * span;
    // Entries before this one lie wholly inside the range.
    const wholeEnd = Math.min(count, Math.floor((end - firstBase) / span));
    let unmapped = 0;
    let runStart = -1; // first entry of a run of entries to clear
    let leafRun = -1; // first entry of a run of leaves cleared (for tlbAddPage)
    // Tables that became empty are freed once the entries pointing at them are cleared.
    const emptied: number[] = [];
    for (let k = 0; k <= count; k++) {
      let clear = false;
      let leaf = false;
      if (k < count) {
        const lo = buf[2 * k]!;
        const hi = buf[2 * k + 1]!;
        const kind = f.kind(lo, hi, level);
        const base = firstBase + k * span;
        const s = Math.max(iova, base);
        const e = Math.min(end, base + span);
        const whole = s === base && e === base + span;
        if (kind === DESC_LEAF && whole) {
          clear = true;
          leaf = true;
          unmapped += span;
          if (leafRun < 0) leafRun = k;
          if (runStart < 0) runStart = k;
          // Whole leaves after it only lengthen both runs: take them without the bookkeeping below.
          let next = k + 1;
          while (next < wholeEnd && f.kind(buf[2 * next]!, buf[2 * next + 1]!, level) === DESC_LEAF) next++;
          unmapped += (next - k - 1) * span;
          k = next - 1;
        } else if (kind === DESC_TABLE || kind === DESC_LEAF) {
          const at = table + (first + k) * f.descriptorBytes;
          const child =
            kind === DESC_TABLE ? f.tableAddress(lo, hi) : this.splitBlock(at, level, lo, hi, base);
          unmapped += this.unmapRange(child, f.nextLevel(level), s, e);
          if (this.valid.get(child) === 0) {
            clear = true;
            emptied.push(child, base);
          }
        }
      }
      if (leaf) {
        if (leafRun < 0) leafRun = k;
      } else if (leafRun >= 0) {
        this.flush?.tlbAddPage?.(BigInt(firstBase + leafRun * span), BigInt((k - leafRun) * span));
        leafRun = -1;
      }
      if (clear) {
        if (runStart < 0) runStart = k;
      } else if (runStart >= 0) {
        const n = k - runStart;
        this.writeWords(table + (first + runStart) * f.descriptorBytes, this.zeroWords(2 * n), 2 * n);
        this.adjust(table, -n);
        runStart = -1;
      }
    }
    for (let i = 0; i < emptied.length; i += 2) {
      this.freeTable(emptied[i]!);
      this.flush?.tlbFlushWalk?.(BigInt(emptied[i + 1]!), BigInt(span));
    }
    return unmapped;
  }

  /** Replaces the block at `at` by a table of next-level leaves with the same attributes; returns it. */
  private splitBlock(at: number, level: number, lo: number, hi: number, base: number): number {
    const f = this.format;
    const next = f.nextLevel(level);
    const span = pow2(f.levelShift(next));
    const n = f.entries(next);
    const template = f.templateOf(lo, hi, level);
    const out = f.outputAddress(lo, hi, level);
    const child = this.allocTable();
    const buf = this.scratch[next]!;
    f.encodeLeaves(out, next, template, buf, 0, n);
    this.writeWords(child, buf, 2 * n);
    this.valid.set(child, n);
    f.encodeTable(child, level, this.one, 0);
    this.writeWords(at, this.one, 2);
    this.flush?.tlbFlushWalk?.(BigInt(base), BigInt(n * span));
    if (this.ctx.tracer?.enabled)
      this.trace('pgtable.split', `split the block at ${toHex(base)} into ${n} entries`, {
        iova: base,
        level,
      });
    return child;
  }

  // --- dirty tracking ----------------------------------------------------------------------------------

  private dirtyRange(
    table: number,
    level: number,
    iova: number,
    end: number,
    record: (iova: bigint, size: bigint) => void,
    clear: boolean,
  ): void {
    const f = this.format;
    const span = pow2(f.levelShift(level));
    const first = f.index(iova, level);
    const count = this.lastIndex(end, level) - first + 1;
    const buf = this.readSlice(table, level, first, count);
    const firstBase = Math.floor(iova / span) * span;
    for (let k = 0; k < count; k++) {
      const lo = buf[2 * k]!;
      const hi = buf[2 * k + 1]!;
      const kind = f.kind(lo, hi, level);
      if (kind !== DESC_TABLE && kind !== DESC_LEAF) continue;
      const base = firstBase + k * span;
      const s = Math.max(iova, base);
      const e = Math.min(end, base + span);
      if (kind === DESC_TABLE) {
        this.dirtyRange(f.tableAddress(lo, hi), f.nextLevel(level), s, e, record, clear);
        continue;
      }
      if (f.dirtyState(lo, hi) !== DIRTY_DIRTY) continue;
      record(BigInt(s), BigInt(e - s));
      if (clear) {
        this.one[0] = f.markClean(lo);
        this.writeWords(table + (first + k) * f.descriptorBytes, this.one, 1);
        this.flush?.tlbAddPage?.(BigInt(base), BigInt(span));
      }
    }
  }

  // --- memory ------------------------------------------------------------------------------------------

  private allocTable(): number {
    const pa = Number(this.ctx.memory.allocFrames(this.tableFrames, this.tableFrames));
    this.valid.set(pa, 0);
    return pa;
  }

  private freeTable(pa: number): void {
    this.valid.delete(pa);
    this.ctx.memory.freeFrames(hpa(pa), this.tableFrames);
  }

  private adjust(table: number, delta: number): void {
    this.valid.set(table, this.valid.get(table)! + delta);
  }

  private readEntry(at: number): [number, number] {
    if (!this.ctx.bus.readWords(at, this.one, 2, this.ctx.counter)) this.busError('read', at);
    return [this.one[0]!, this.one[1]!];
  }

  /** Reads `count` entries from `first` of the table at `level` into that level's scratch buffer. */
  private readSlice(table: number, level: number, first: number, count: number): Uint32Array {
    const buf = this.scratch[level]!;
    const at = table + first * this.format.descriptorBytes;
    if (!this.ctx.bus.readWords(at, buf, 2 * count, this.ctx.counter)) this.busError('read', at);
    return buf;
  }

  private writeWords(at: number, words: Uint32Array, count: number): void {
    if (!this.ctx.bus.writeWords(at, words, count, this.ctx.counter)) this.busError('write', at);
  }

  private zeroWords(count: number): Uint32Array {
    if (this.zeros.length < count) this.zeros = new Uint32Array(count);
    return this.zeros;
  }

  private busError(what: string, at: number): never {
    throw new IommufdError('EIO', `page table ${what} at ${toHex(at)} aborted on the bus`, { address: at });
  }

  // --- checks ------------------------------------------------------------------------------------------

  private checkLive(): void {
    if (this.freed) throw new IommufdError('EINVAL', `the ${this.format.name} page table was freed`);
  }

  private checkRange(op: string, iova: bigint, size: bigint): void {
    const limit = 1n << BigInt(this.format.ias);
    if (size <= 0n || iova < 0n || iova % this.minPage !== 0n || size % this.minPage !== 0n) {
      throw new IommufdError(
        'EINVAL',
        `${op} ${toHex(iova)}+${toHex(size)}: the range must be non-empty and aligned to ${toHex(this.minPage)}`,
        { iova, size },
      );
    }
    if (iova + size > limit) {
      throw new IommufdError(
        'EINVAL',
        `${op} ${toHex(iova)}+${toHex(size)} passes the ${this.format.ias}-bit input range`,
        { iova, size },
      );
    }
  }

  private trace(name: string, message: string, args: Record<string, bigint | number | string>): void {
    const tracer = this.ctx.tracer;
    if (tracer?.enabled) tracer.trace('driver', this.ctx.source ?? 'pgtable', name, message, args);
  }
}
