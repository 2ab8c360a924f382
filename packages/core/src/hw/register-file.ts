/**
 * A declarative MMIO register file: a table of 32-bit registers (offset, access type, writable bits,
 * reset value) backed by a `Uint32Array`. It implements the bus-facing {@link MmioHandler}: byte and
 * half-word accesses read or merge into the containing word, read-only bits ignore writes, W1C bits clear
 * when written with 1, write-only registers read as zero, and unlisted offsets are RES0/WI.
 * A device model hooks the registers whose writes have side effects.
 */
import type { MmioHandler } from '../memory/memory-bus.js';

export type RegAccess = 'ro' | 'rw' | 'wo' | 'w1c';

export interface RegDef {
  readonly name: string;
  /** Byte offset, 4-byte aligned. */
  readonly offset: number;
  readonly access: RegAccess;
  /** Bits software may write (rw/wo) or clear (w1c); other bits keep their value. Default: all. */
  readonly writable?: number;
  readonly reset?: number;
}

/** Called after a software write updated the register; `old` is the value before it. */
export type WriteHook = (value: number, old: number) => void;

export class RegisterFile implements MmioHandler {
  private readonly words: Uint32Array;
  private readonly defs: (RegDef | undefined)[];
  private readonly hooks: (WriteHook | undefined)[];
  private readonly byName = new Map<string, RegDef>();

  constructor(
    readonly size: number,
    private readonly table: readonly RegDef[],
  ) {
    this.words = new Uint32Array(size / 4);
    this.defs = new Array(size / 4);
    this.hooks = new Array(size / 4);
    for (const def of table) {
      if (def.offset % 4 !== 0 || def.offset >= size)
        throw new RangeError(`register ${def.name} at ${def.offset} is misplaced`);
      if (this.defs[def.offset / 4])
        throw new RangeError(`register ${def.name} overlaps ${this.defs[def.offset / 4]!.name}`);
      this.defs[def.offset / 4] = def;
      this.byName.set(def.name, def);
    }
    this.reset();
  }

  /** Puts every register back to its reset value. */
  reset(): void {
    this.words.fill(0);
    for (const def of this.table) this.words[def.offset / 4] = (def.reset ?? 0) >>> 0;
  }

  /** Installs the side effect of writing the register at `offset`. */
  onWrite(offset: number, hook: WriteHook): void {
    if (!this.defs[offset / 4]) throw new RangeError(`no register at offset 0x${offset.toString(16)}`);
    this.hooks[offset / 4] = hook;
  }

  /** The hardware's view: the register's current value, whatever its access type. */
  get(offset: number): number {
    return this.words[offset / 4]!;
  }

  /** The hardware's own update of a register (status bits, producer indices). */
  set(offset: number, value: number): void {
    this.words[offset / 4] = value >>> 0;
  }

  /** A 64-bit register as two halves, joined (for the hardware's own use). */
  get64(offset: number): bigint {
    return (BigInt(this.get(offset + 4)) << 32n) | BigInt(this.get(offset));
  }

  /** The register at `offset`, if the table defines one there. */
  definitionAt(offset: number): RegDef | undefined {
    return this.defs[offset / 4];
  }

  definition(name: string): RegDef | undefined {
    return this.byName.get(name);
  }

  definitions(): readonly RegDef[] {
    return this.table;
  }

  read(offset: number, size: 1 | 2 | 4): number {
    const index = offset >>> 2;
    const def = this.defs[index];
    if (!def || def.access === 'wo') return 0;
    const word = this.words[index]!;
    if (size === 4) return word;
    const shift = (offset & 3) * 8;
    return (word >>> shift) & (size === 1 ? 0xff : 0xffff);
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    const index = offset >>> 2;
    const def = this.defs[index];
    if (!def || def.access === 'ro') return;
    const shift = (offset & 3) * 8;
    const laneMask = size === 4 ? 0xffff_ffff : ((size === 1 ? 0xff : 0xffff) << shift) >>> 0;
    const incoming = size === 4 ? value >>> 0 : ((value << shift) & laneMask) >>> 0;
    const writable = (def.writable ?? 0xffff_ffff) & laneMask;
    const old = this.words[index]!;
    const next =
      def.access === 'w1c' ? old & ~(incoming & writable) : (old & ~writable) | (incoming & writable);
    this.words[index] = next >>> 0;
    this.hooks[index]?.(next >>> 0, old);
  }
}
