/**
 * The AMD IOMMU v1 host page table (AMD IOMMU spec 48882 §2.2.3) as a {@link PageTableFormat}: the DTE's
 * Mode gives 1 to 6 levels (inputs of 21, 30, 39, 48, 57 or 64 bits), numbered 6…1 as the spec's levels,
 * 4 KiB tables of 512 entries. A walk follows NextLevel, which may skip levels (their input bits must be
 * zero), and reads leaves of the level's natural size (NextLevel 0) or of a size the address field encodes
 * (NextLevel 7, from the natural size up to 256 times it, at levels 1–3).
 *
 * How {@link MapProt} becomes entry bits (Linux's v1 io-pgtable choices):
 * | prot | bits |
 * |---|---|
 * | read / write | IR / IW (either or both) |
 * | `exec`, `priv`, `memType` | nothing: no execute or privilege levels; FC with the `forceCoherent` option |
 * | always | PR, NextLevel 0; tables PR, IR, IW and NextLevel = the next level (this table never skips) |
 * | with A/D (the DTE's HAD) | A and D start clear: the IOMMU sets them |
 *
 * Mapping writes leaves of the natural sizes only (4 KiB, 2 MiB, 1 GiB; never 512 GiB, as Linux, for a
 * hardware erratum); NextLevel-7 leaves and skipped levels are walked where another writer (a guest, a test)
 * put them. Reserved: NextLevel at or above the entry's own level (but 7), NextLevel 7 beyond its sizes, a
 * natural large leaf's address bits below its alignment, an address bit at or above the host address width.
 */
import { IommufdError, join64ToNumber } from '@iommukit/core';
import { writeAddressRun } from '../address-run.js';
import {
  DESC_INVALID,
  DESC_LEAF,
  DESC_RESERVED,
  DESC_TABLE,
  type DescriptorKind,
  DIRTY_CLEAN,
  DIRTY_DIRTY,
  DIRTY_UNTRACKED,
  type DirtyState,
  type LeafTemplate,
  type MapProt,
  type PageTableFormat,
  pow2,
} from '../format.js';
import { RadixFormat } from '../radix-format.js';
import {
  AMD_A,
  AMD_D,
  AMD_HI_FC,
  AMD_HI_IR,
  AMD_HI_IW,
  AMD_HI_U,
  AMD_NEXT_LEVEL_SHIFT,
  AMD_NEXT_LEVEL_SIZED,
  AMD_PR,
  type AmdV1LeafAttributes,
  amdNextLevel,
  amdSizedLeafShift,
  amdV1EntryLimits,
  amdV1Permissions,
  decodeAmdV1Attributes,
} from './v1-descriptors.js';

/** The DTE's HAD: what the IOMMU updates in the entries it uses. */
export type AmdHostAccessDirty = 'none' | 'accessed' | 'accessed-dirty';

export interface AmdV1Config {
  /** The DTE's Mode: 1 to 6 levels. */
  readonly levels: 1 | 2 | 3 | 4 | 5 | 6;
  /** Host physical address width: address bits from here to 51 are reserved. 32…52. */
  readonly oas: number;
  /** HAD: none, A only (1), or A and D (3). Default none. */
  readonly hostAccessDirty?: AmdHostAccessDirty;
  /** FC on every leaf. Default false. */
  readonly forceCoherent?: boolean;
}

/** The high-word bits a leaf template carries: IR, IW, FC, U and PMC. */
const TEMPLATE_HI = AMD_HI_IR | AMD_HI_IW | AMD_HI_FC | AMD_HI_U | (0b11 << 25);

export class AmdV1Format extends RadixFormat implements PageTableFormat<AmdV1LeafAttributes> {
  readonly name: string;
  readonly ias: number;
  readonly oas: number;
  readonly pgsizeBitmap: bigint;
  readonly hostAccessDirty: AmdHostAccessDirty;
  readonly forceCoherent: boolean;

  private readonly hiReserved: number;

  constructor(config: AmdV1Config) {
    const { levels, oas } = config;
    if (
      !Number.isInteger(levels) ||
      levels < 1 ||
      levels > 6 ||
      !Number.isInteger(oas) ||
      oas < 32 ||
      oas > 52
    ) {
      throw new IommufdError(
        'EINVAL',
        `an AMD v1 table has 1 to 6 levels (the DTE's Mode) and a host address width of 32 to 52 bits (got ${levels} levels, ${oas} bits)`,
        { levels, oas },
      );
    }
    const hostAccessDirty = config.hostAccessDirty ?? 'none';
    // With HAD the IOMMU sets A in every entry it uses; without it there is no accessed flag to check or set.
    super({
      levels,
      firstReservedBit: 12,
      accessedBits: hostAccessDirty === 'none' ? 0 : AMD_A,
      dirtyBit: AMD_D,
    });
    this.ias = Math.min(64, 12 + 9 * levels);
    this.oas = oas;
    this.hostAccessDirty = hostAccessDirty;
    this.forceCoherent = config.forceCoherent ?? false;
    this.hiReserved = RadixFormat.hiReservedFrom(oas);
    let bitmap = 0n;
    for (let level = 1; level <= 3; level++)
      if (this.leafAllowed(level)) bitmap |= 1n << BigInt(this.levelShift(level));
    this.pgsizeBitmap = bitmap;
    const had = this.hostAccessDirty === 'none' ? '' : ` had=${this.hostAccessDirty}`;
    this.name = `amd v1 mode ${levels} oas${oas}${had}`;
  }

  /** Natural leaves at levels 1 to 3, below the top level (no 512 GiB pages). */
  leafAllowed(level: number): boolean {
    return level === 1 || ((level === 2 || level === 3) && level < this.startLevel);
  }

  kind(lo: number, hi: number, level: number): DescriptorKind {
    if ((lo & AMD_PR) === 0) return DESC_INVALID;
    if ((hi & this.hiReserved) !== 0) return DESC_RESERVED;
    const next = amdNextLevel(lo);
    if (next === AMD_NEXT_LEVEL_SIZED) return this.sizedLeafKind(lo, hi, level);
    if (next === 0) return level === this.leafLevel ? DESC_LEAF : this.largeLeafKind(lo, level);
    return next < level ? DESC_TABLE : DESC_RESERVED;
  }

  override tableNextLevel(lo: number, _hi: number, _level: number): number {
    return amdNextLevel(lo);
  }

  override leafShift(lo: number, hi: number, level: number): number {
    return amdNextLevel(lo) === AMD_NEXT_LEVEL_SIZED ? amdSizedLeafShift(lo, hi) : this.levelShift(level);
  }

  override outputAddress(lo: number, hi: number, level: number): number {
    if (amdNextLevel(lo) !== AMD_NEXT_LEVEL_SIZED) return super.outputAddress(lo, hi, level);
    const size = pow2(amdSizedLeafShift(lo, hi));
    return Math.floor(join64ToNumber(lo & 0xffff_f000, hi & 0x000f_ffff) / size) * size;
  }

  encodeTable(tablePa: number, level: number, out: Uint32Array, at: number): void {
    this.writeTable(tablePa, AMD_PR | ((level - 1) << AMD_NEXT_LEVEL_SHIFT), out, at, AMD_HI_IR | AMD_HI_IW);
  }

  leafTemplate(prot: MapProt, _dirtyTracking: boolean): LeafTemplate {
    const hi =
      (prot.read ? AMD_HI_IR : 0) | (prot.write ? AMD_HI_IW : 0) | (this.forceCoherent ? AMD_HI_FC : 0);
    return { lo: 0, hi: hi >>> 0 };
  }

  templateOf(lo: number, hi: number, _level: number): LeafTemplate {
    return { lo: (lo & (AMD_A | AMD_D)) >>> 0, hi: (hi & TEMPLATE_HI) >>> 0 };
  }

  encodeLeaves(
    pa: number,
    level: number,
    template: LeafTemplate,
    out: Uint32Array,
    at: number,
    count: number,
  ): void {
    writeAddressRun(pa, this.span[level]!, template.lo | AMD_PR, template.hi, out, at, count);
  }

  tableLimits(_lo: number, hi: number): number {
    return amdV1EntryLimits(hi);
  }

  decodeLeaf(lo: number, hi: number, _level: number, tableLimits: number): AmdV1LeafAttributes {
    return decodeAmdV1Attributes(lo, hi, tableLimits);
  }

  permissions(attrs: AmdV1LeafAttributes, _privileged: boolean, _hardwareDirty: boolean): number {
    return amdV1Permissions(attrs);
  }

  dirtyState(lo: number, hi: number): DirtyState {
    if (this.hostAccessDirty !== 'accessed-dirty' || (hi & AMD_HI_IW) === 0) return DIRTY_UNTRACKED;
    return (lo & AMD_D) !== 0 ? DIRTY_DIRTY : DIRTY_CLEAN;
  }

  /** A NextLevel-7 leaf: its size from its natural size up to 256 times it, at levels 1–3 below the top. */
  private sizedLeafKind(lo: number, hi: number, level: number): DescriptorKind {
    if (level > 3 || level >= this.startLevel) return DESC_RESERVED;
    const shift = amdSizedLeafShift(lo, hi);
    const natural = this.levelShift(level);
    return shift >= natural && shift <= natural + 8 ? DESC_LEAF : DESC_RESERVED;
  }
}

/** Creates an AMD v1 format; `EINVAL` for an unsupported Mode or address width. */
export function amdV1Format(config: AmdV1Config): AmdV1Format {
  return new AmdV1Format(config);
}
