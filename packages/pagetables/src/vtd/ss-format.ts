/**
 * The VT-d second-stage table (VT-d §3.7, §9.8) as a {@link PageTableFormat}: 3, 4 or 5 levels (AGAW 39,
 * 48 or 57 bits: context/PASID-entry AW 1, 2, 3), levels numbered 5/4/3 down to 1 as the spec's SS-PML5E to
 * SS-PTE, 2 MiB and 1 GiB leaves where CAP.SLLPS advertises them. Linux's second-stage tables are
 * generic_pt's `vtdss` format; the choices below are theirs.
 *
 * How {@link MapProt} becomes entry bits:
 * | prot | bits |
 * |---|---|
 * | read / write | R / W (either or both; a mapping with neither is refused by the table) |
 * | `exec` | X with the legacy `executeRequests` switch (tables then carry X too); else nothing |
 * | `priv`, `memType` | nothing: the second stage has no privilege levels, and memory types need ECAP.MTS |
 * | `forceSnoop` (format option) | SNP on every leaf (Linux: the domain enforces cache coherency) |
 * | table entries | R and W (the leaf alone limits) |
 * | with A/D (SSADE) | A and D start clear: the hardware sets them |
 *
 * Reserved bits (a reserved-bit fault): bit 2 (X, reserved since spec 4.0; execute permission with the
 * legacy `executeRequests` switch); an address bit at or above the
 * host address width; PS in an SS-PML5E or SS-PML4E, or where SLLPS has no such page; the bits between 12
 * and the alignment of a large leaf.
 */
import { IommufdError } from '@iommukit/core';
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
} from '../format.js';
import { RadixFormat } from '../radix-format.js';
import {
  decodeVtdSsAttributes,
  VTD_SS_A,
  VTD_SS_D,
  VTD_SS_HI_TM,
  VTD_SS_PS,
  VTD_SS_R,
  VTD_SS_SNP,
  VTD_SS_W,
  VTD_SS_X,
  type VtdSsLeafAttributes,
  vtdSsEntryLimits,
  vtdSsLeafPermissions,
  vtdSsPermissions,
} from './ss-descriptors.js';

/** The attribute bits a leaf template carries. */
const TEMPLATE_LO = VTD_SS_R | VTD_SS_W | VTD_SS_X | VTD_SS_SNP | VTD_SS_A | VTD_SS_D | (0b1111 << 3);

export interface VtdSsConfig {
  /** 3, 4 or 5 (AGAW 39, 48, 57; CAP.SAGAW says which the unit supports). */
  readonly levels: 3 | 4 | 5;
  /** Host address width (CAP.MGAW's HAW): address bits from here to 51 are reserved. 32…52. */
  readonly oas: number;
  /** CAP.SLLPS: bit 0, 2 MiB pages; bit 1, 1 GiB pages. Default both. */
  readonly sllps?: number;
  /** The PASID entry's SSADE: the walk sets A in every entry and D in a leaf it writes. Default false. */
  readonly accessedDirty?: boolean;
  /** SNP on every leaf (Linux: the domain enforces cache coherency). Default false. */
  readonly forceSnoop?: boolean;
  /**
   * The legacy switch (spec 4.0 and before: ECAP.ERS with the PASID entry's SSEE): bit 2 is X, execute
   * permission, instead of reserved. Default false.
   */
  readonly executeRequests?: boolean;
}

export class VtdSsFormat extends RadixFormat implements PageTableFormat<VtdSsLeafAttributes> {
  readonly name: string;
  readonly ias: number;
  readonly oas: number;
  readonly pgsizeBitmap: bigint;
  readonly sllps: number;
  readonly accessedDirty: boolean;
  readonly forceSnoop: boolean;
  readonly executeRequests: boolean;

  private readonly hiReserved: number;
  /** Low-word bits that must be clear in any present entry: X unless the legacy switch gives it a meaning. */
  private readonly loReserved: number;

  constructor(config: VtdSsConfig) {
    const { levels, oas } = config;
    const sllps = config.sllps ?? 0b11;
    if (
      (levels !== 3 && levels !== 4 && levels !== 5) ||
      !Number.isInteger(oas) ||
      oas < 32 ||
      oas > 52 ||
      !Number.isInteger(sllps) ||
      sllps < 0 ||
      sllps > 3
    ) {
      throw new IommufdError(
        'EINVAL',
        `a VT-d second-stage table has 3 to 5 levels, a host address width of 32 to 52 bits and SLLPS 0 to 3 (got ${levels} levels, ${oas} bits, SLLPS ${sllps})`,
        { levels, oas, sllps },
      );
    }
    const accessedDirty = config.accessedDirty ?? false;
    // No bit below a large leaf's alignment has a meaning: all are reserved. With SSADE every entry a walk
    // uses gets A (§3.7.4 accessed and dirty flags); without it there is no accessed flag to check or set.
    super({ levels, firstReservedBit: 12, accessedBits: accessedDirty ? VTD_SS_A : 0, dirtyBit: VTD_SS_D });
    this.ias = 12 + 9 * levels;
    this.oas = oas;
    this.sllps = sllps;
    this.accessedDirty = accessedDirty;
    this.forceSnoop = config.forceSnoop ?? false;
    this.executeRequests = config.executeRequests ?? false;
    this.loReserved = this.executeRequests ? 0 : VTD_SS_X;
    this.hiReserved = RadixFormat.hiReservedFrom(oas);
    this.pgsizeBitmap = (1n << 12n) | (sllps & 1 ? 1n << 21n : 0n) | (sllps & 2 ? 1n << 30n : 0n);
    const flags = `${this.accessedDirty ? ' ad' : ''}${this.executeRequests ? ' x' : ''}`;
    this.name = `vt-d second stage ${levels}-level oas${oas} sllps${sllps}${flags}`;
  }

  leafAllowed(level: number): boolean {
    return level === 1 || (level === 2 && (this.sllps & 1) !== 0) || (level === 3 && (this.sllps & 2) !== 0);
  }

  // §9.8: R = W = 0 is not present; X and the address bits beyond the HAW are reserved everywhere; PS
  // selects a leaf where SLLPS allows one and is reserved elsewhere above level 1.
  kind(lo: number, hi: number, level: number): DescriptorKind {
    if ((lo & (VTD_SS_R | VTD_SS_W)) === 0) return DESC_INVALID;
    if ((lo & this.loReserved) !== 0 || (hi & this.hiReserved) !== 0) return DESC_RESERVED;
    if (level === this.leafLevel) return DESC_LEAF;
    if ((lo & VTD_SS_PS) === 0) return DESC_TABLE;
    return this.largeLeafKind(lo, level);
  }

  encodeTable(tablePa: number, _level: number, out: Uint32Array, at: number): void {
    this.writeTable(tablePa, VTD_SS_R | VTD_SS_W | (this.executeRequests ? VTD_SS_X : 0), out, at);
  }

  leafTemplate(prot: MapProt, _dirtyTracking: boolean): LeafTemplate {
    // A and D start clear either way: with SSADE the hardware sets them, without it they mean nothing.
    const lo =
      (prot.read ? VTD_SS_R : 0) |
      (prot.write ? VTD_SS_W : 0) |
      (this.forceSnoop ? VTD_SS_SNP : 0) |
      (this.executeRequests && prot.exec ? VTD_SS_X : 0);
    return { lo, hi: 0 };
  }

  templateOf(lo: number, hi: number, _level: number): LeafTemplate {
    return { lo: (lo & TEMPLATE_LO) >>> 0, hi: (hi & VTD_SS_HI_TM) >>> 0 };
  }

  encodeLeaves(
    pa: number,
    level: number,
    template: LeafTemplate,
    out: Uint32Array,
    at: number,
    count: number,
  ): void {
    const bits = level > this.leafLevel ? template.lo | VTD_SS_PS : template.lo;
    writeAddressRun(pa, this.span[level]!, bits, template.hi, out, at, count);
  }

  tableLimits(lo: number, _hi: number): number {
    return vtdSsEntryLimits(lo);
  }

  decodeLeaf(lo: number, hi: number, _level: number, tableLimits: number): VtdSsLeafAttributes {
    return decodeVtdSsAttributes(lo, hi, tableLimits);
  }

  permissions(attrs: VtdSsLeafAttributes, _privileged: boolean, _hardwareDirty: boolean): number {
    return vtdSsPermissions(attrs, this.executeRequests);
  }

  /** `permissions(decodeLeaf(…))` without the decoded object: a walk's hot path. */
  leafPermissions(lo: number, tableLimits: number): number {
    return vtdSsLeafPermissions(lo, tableLimits, this.executeRequests);
  }

  dirtyState(lo: number, _hi: number): DirtyState {
    if (!this.accessedDirty || (lo & VTD_SS_W) === 0) return DIRTY_UNTRACKED;
    return (lo & VTD_SS_D) !== 0 ? DIRTY_DIRTY : DIRTY_CLEAN;
  }
}

/** Creates a VT-d second-stage format; `EINVAL` for an unsupported level count, width or SLLPS. */
export function vtdSsFormat(config: VtdSsConfig): VtdSsFormat {
  return new VtdSsFormat(config);
}
