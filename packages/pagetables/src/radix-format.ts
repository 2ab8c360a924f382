/**
 * The shape x86-64 and the VT-d second stage share (AMD v1 too, apart from its level skipping): 4 KiB tables
 * of 512 eight-byte entries, levels numbered from the top down to 1 (the 4 KiB leaf), nine more input bits
 * per level, an address whole in bits 51:12, and large leaves whose address keeps its alignment (the bits
 * below it are reserved, except those a format gives a meaning). A format extends this with its own bits.
 */
import { join64ToNumber } from '@iommukit/core';
import { writeAddressRun } from './address-run.js';
import { DESC_LEAF, DESC_RESERVED, type DescriptorKind, type LeafTemplate, pow2 } from './format.js';

const TWO_32 = pow2(32);
const ENTRIES = 512;
/** Address bits 31:12 of a table or a 4 KiB leaf. */
const LO_ADDR = 0xffff_f000;
/** Address bits 51:32. */
export const RADIX_HI_ADDR = 0x000f_ffff;

/** What a radix format's own bits make of the shared shape. */
export interface RadixShape {
  /** Levels, the root's included. */
  readonly levels: number;
  /** The lowest bit a large leaf must have clear below its alignment (12, or 13 where bit 12 is x86's PAT). */
  readonly firstReservedBit: number;
  /** The low-word bits a walk sets in every entry it uses; 0 where the hardware sets none (then none are checked). */
  readonly accessedBits: number;
  /** The low-word bit a hardware write sets in a leaf. */
  readonly dirtyBit: number;
}

export abstract class RadixFormat {
  readonly granuleShift = 12;
  readonly bitsPerLevel = 9;
  readonly descriptorBytes = 8;
  readonly leafLevel = 1;
  readonly rootTables = 1;
  readonly rootBytes = 4096;
  readonly tableBytes = 4096;
  readonly levels: number;
  readonly startLevel: number;
  /** Whether the hardware sets accessed bits at all; then in table entries too, as in leaves. */
  readonly tableAccessFlag: boolean;

  /** Input bytes one entry covers, per level (index 1 upward). */
  protected readonly span: number[] = [];
  private readonly inverseSpan: number[] = [];
  private readonly leafLoMask: number[] = [];
  private readonly leafLoReserved: number[] = [];
  private readonly accessedBits: number;
  private readonly dirtyBit: number;

  protected constructor(shape: RadixShape) {
    const { levels } = shape;
    this.levels = levels;
    this.startLevel = levels;
    this.accessedBits = shape.accessedBits;
    this.tableAccessFlag = shape.accessedBits !== 0;
    this.dirtyBit = shape.dirtyBit;
    const keep = pow2(shape.firstReservedBit) - 1;
    // The leaf masks of level 0 (which does not exist) and of levels above 3 (no leaf there: PS is reserved)
    // are never read; the conditions only keep them 0.
    for (let level = 0; level <= levels; level++) {
      const shift = this.levelShift(level);
      this.span.push(pow2(shift));
      this.inverseSpan.push(2 ** -shift);
      // Stryker disable next-line all: see above
      const size = level <= 1 ? 4096 : pow2(shift);
      // Stryker disable next-line all: see above
      this.leafLoMask.push(size >= TWO_32 ? 0 : (0xffff_ffff - (size - 1)) >>> 0);
      // Stryker disable next-line all: see above
      this.leafLoReserved.push(level >= 2 && size < TWO_32 ? ((size - 1) & ~keep) >>> 0 : 0);
    }
  }

  /** Whether a leaf may sit at `level` (the format's page sizes). */
  abstract leafAllowed(level: number): boolean;

  abstract encodeLeaves(
    pa: number,
    level: number,
    template: LeafTemplate,
    out: Uint32Array,
    at: number,
    count: number,
  ): void;

  nextLevel(level: number): number {
    return level - 1;
  }

  levelShift(level: number): number {
    return 12 + 9 * (level - 1);
  }

  /** These formats never skip a level. */
  tableNextLevel(_lo: number, _hi: number, level: number): number {
    return this.nextLevel(level);
  }

  leafShift(_lo: number, _hi: number, level: number): number {
    return this.levelShift(level);
  }

  entries(_level: number): number {
    return ENTRIES;
  }

  index(iova: number, level: number): number {
    // The page number's low 32 bits are exact after `>>> 0`; the mask takes the level's nine bits.
    return (Math.floor(iova * this.inverseSpan[level]!) >>> 0) & (ENTRIES - 1);
  }

  tableAddress(lo: number, hi: number): number {
    return join64ToNumber(lo & LO_ADDR, hi & RADIX_HI_ADDR);
  }

  outputAddress(lo: number, hi: number, level: number): number {
    return join64ToNumber(lo & this.leafLoMask[level]!, hi & RADIX_HI_ADDR);
  }

  encodeLeaf(pa: number, level: number, template: LeafTemplate, out: Uint32Array, at: number): void {
    this.encodeLeaves(pa, level, template, out, at, 1);
  }

  accessFlag(lo: number): boolean {
    return (lo & this.accessedBits) === this.accessedBits;
  }

  setAccessFlag(lo: number): number {
    return (lo | this.accessedBits) >>> 0;
  }

  markDirty(lo: number): number {
    return (lo | this.dirtyBit) >>> 0;
  }

  markClean(lo: number): number {
    return (lo & ~this.dirtyBit) >>> 0;
  }

  /** A table entry: the table's address with `bits` in the low word and `hiBits` in the high one. */
  protected writeTable(tablePa: number, bits: number, out: Uint32Array, at: number, hiBits = 0): void {
    writeAddressRun(tablePa, 0, bits, hiBits, out, at, 1);
  }

  /** An entry marked as a leaf above level 1: a leaf where the format has one and it is aligned, else reserved. */
  protected largeLeafKind(lo: number, level: number): DescriptorKind {
    if (!this.leafAllowed(level)) return DESC_RESERVED;
    return (lo & this.leafLoReserved[level]!) === 0 ? DESC_LEAF : DESC_RESERVED;
  }

  /** Address bits of the high word at or above an `oas`-bit width: reserved. */
  protected static hiReservedFrom(oas: number): number {
    return (RADIX_HI_ADDR - (pow2(oas - 32) - 1)) >>> 0;
  }
}
