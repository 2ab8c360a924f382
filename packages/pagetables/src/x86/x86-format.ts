/**
 * x86-64 4-level and 5-level paging (Intel SDM Vol. 3A §4.5) as a {@link PageTableFormat}: the VT-d first
 * stage (VT-d §3.6, §9.7), the AMD IOMMU v2 guest table, and the CPU tables of an SVA process. Levels are
 * numbered as the SDM does, 5 (PML5) or 4 (PML4) down to 1 (PT); a level-2 leaf is a 2 MiB page, a
 * level-3 leaf a 1 GiB page (only where the owner supports them: VT-d CAP.FL1GP, CPUID PDPE1GB).
 *
 * Input addresses: an x86 address is canonical when bits 63:N−1 are equal (N = 48 or 57). Addresses here are
 * `number`s, so only the lower canonical half is expressible: `ias` is 47 (4-level) or 56 (5-level), and an
 * input at or above 2^ias is non-canonical (a walk of it faults before reading anything).
 *
 * How {@link MapProt} becomes entry bits (the choices of Linux's first-stage tables: intel/iommu.c,
 * generic_pt x86_64):
 * | prot | bits |
 * |---|---|
 * | read only / write (with or without read) | R/W = 0 / R/W = 1 (x86 cannot express write-only) |
 * | `priv` absent / true | U/S = 1 / U/S = 0 (supervisor only) |
 * | `exec` absent or false / true | XD = 1 / XD = 0 (XD = 0 always when the owner does not enable XD) |
 * | memType cached / noncached / device | PCD = PWT = 0 / PCD = 1 / PCD = PWT = 1 |
 * | always | P = 1, A = 1; tables P = R/W = U/S = A = 1 (the leaf alone limits) |
 * | writable, untracked / tracked | D = 1 / D = 0 (the hardware sets D on the first write) |
 *
 * Reserved bits (a reserved-bit fault, {@link DESC_RESERVED}): address bits at or above the owner's
 * physical-address width; PS in a PML5E or PML4E, and in a PDPTE without 1 GiB pages; the bits between 12 and
 * the page size of a large leaf (its alignment); XD when the owner does not enable it.
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
  decodeX86Attributes,
  X86_A,
  X86_D,
  X86_EA,
  X86_G,
  X86_HI_XD,
  X86_P,
  X86_PAT_4K,
  X86_PAT_LARGE,
  X86_PCD,
  X86_PS,
  X86_PWT,
  X86_RW,
  X86_TEMPLATE_LO,
  X86_US,
  type X86AccessRules,
  type X86LeafAttributes,
  x86EntryLimits,
  x86LeafPermissions,
  x86Permissions,
} from './descriptors.js';

export interface X86Config {
  /** 4 (48-bit, PML4) or 5 (57-bit, PML5: VT-d CAP.FL5LP, AMD GLX). */
  readonly levels: 4 | 5;
  /** Physical-address width (MAXPHYADDR, VT-d HAW): address bits from here to 51 are reserved. 32…52. */
  readonly oas: number;
  /** 1 GiB pages (VT-d CAP.FL1GP; CPUID PDPE1GB). Default true. */
  readonly gigaPages?: boolean;
  /** XD is honoured (EFER.NXE; VT-d and AMD first stages always). Off, XD is reserved. Default true. */
  readonly executeDisable?: boolean;
  /** Supervisor writes honour R/W (CR0.WP; VT-d PASID-entry WPE). Default true. */
  readonly supervisorWriteProtect?: boolean;
  /** The walk also sets EA (bit 10) where it sets A (VT-d PASID-entry EAFE). Default false. */
  readonly extendedAccessed?: boolean;
}

export class X86Format extends RadixFormat implements PageTableFormat<X86LeafAttributes> {
  readonly name: string;
  readonly ias: number;
  readonly oas: number;
  readonly pgsizeBitmap: bigint;
  readonly gigaPages: boolean;
  readonly executeDisable: boolean;
  readonly extendedAccessed: boolean;
  readonly rules: X86AccessRules;

  /** The high-word bits that must be clear in any entry: reserved address bits, and XD when not enabled. */
  private readonly hiMustBeZero: number;

  constructor(config: X86Config) {
    const { levels, oas } = config;
    if ((levels !== 4 && levels !== 5) || !Number.isInteger(oas) || oas < 32 || oas > 52) {
      throw new IommufdError(
        'EINVAL',
        `x86-64 paging has 4 or 5 levels and a physical-address width of 32 to 52 bits (got ${levels} levels, ${oas} bits)`,
        { levels, oas },
      );
    }
    const extendedAccessed = config.extendedAccessed ?? false;
    // A large leaf's bit 12 is PAT; the bits from 13 to its alignment are reserved. Every paging-structure
    // entry a walk uses gets A (SDM §4.8), and EA too with VT-d's EAFE.
    super({
      levels,
      firstReservedBit: 13,
      accessedBits: X86_A | (extendedAccessed ? X86_EA : 0),
      dirtyBit: X86_D,
    });
    this.ias = levels === 4 ? 47 : 56;
    this.oas = oas;
    this.gigaPages = config.gigaPages ?? true;
    this.executeDisable = config.executeDisable ?? true;
    this.extendedAccessed = extendedAccessed;
    this.rules = { supervisorWriteProtect: config.supervisorWriteProtect ?? true };
    this.hiMustBeZero = (RadixFormat.hiReservedFrom(oas) | (this.executeDisable ? 0 : X86_HI_XD)) >>> 0;
    this.pgsizeBitmap = (1n << 12n) | (1n << 21n) | (this.gigaPages ? 1n << 30n : 0n);
    const gig = this.gigaPages ? '' : ' no1G';
    this.name = `x86-64 ${levels}-level oas${oas}${gig}`;
  }

  leafAllowed(level: number): boolean {
    return level === 1 || level === 2 || (level === 3 && this.gigaPages);
  }

  // SDM §4.5: P = 0 is not present; PS selects a leaf in a PDE (2 MiB) or PDPTE (1 GiB), is PAT in a PTE,
  // and is reserved above; then the reserved-bit checks of the entry's kind.
  kind(lo: number, hi: number, level: number): DescriptorKind {
    if ((lo & X86_P) === 0) return DESC_INVALID;
    if ((hi & this.hiMustBeZero) !== 0) return DESC_RESERVED;
    if (level === this.leafLevel) return DESC_LEAF;
    if ((lo & X86_PS) === 0) return DESC_TABLE;
    return this.largeLeafKind(lo, level);
  }

  encodeTable(tablePa: number, _level: number, out: Uint32Array, at: number): void {
    this.writeTable(tablePa, X86_P | X86_RW | X86_US | X86_A, out, at);
  }

  leafTemplate(prot: MapProt, dirtyTracking: boolean): LeafTemplate {
    const memType = prot.memType ?? 'cached';
    const cache = memType === 'cached' ? 0 : memType === 'noncached' ? X86_PCD : X86_PCD | X86_PWT;
    const lo =
      X86_A | cache | (prot.write ? X86_RW | (dirtyTracking ? 0 : X86_D) : 0) | (prot.priv ? 0 : X86_US);
    return { lo: lo >>> 0, hi: this.executeDisable && !prot.exec ? X86_HI_XD : 0 };
  }

  templateOf(lo: number, hi: number, level: number): LeafTemplate {
    // The template keeps PAT where a 4 KiB PTE has it; a large leaf has it at bit 12 and PS at bit 7.
    const pat = level > this.leafLevel && (lo & X86_PAT_LARGE) !== 0 ? X86_PAT_4K : 0;
    const attrs = level > this.leafLevel ? lo & X86_TEMPLATE_LO & ~X86_PS : lo & X86_TEMPLATE_LO;
    return { lo: (attrs | pat | (lo & X86_EA)) >>> 0, hi: (hi & X86_HI_XD) >>> 0 };
  }

  encodeLeaves(
    pa: number,
    level: number,
    template: LeafTemplate,
    out: Uint32Array,
    at: number,
    count: number,
  ): void {
    const large = level > this.leafLevel;
    // A large leaf: PS set, and the template's PAT (bit 7) moved to bit 12.
    const pat = large && (template.lo & X86_PAT_4K) !== 0 ? X86_PAT_LARGE : 0;
    const bits = (large ? (template.lo & ~X86_PAT_4K) | X86_PS | pat : template.lo) | X86_P;
    writeAddressRun(pa, this.span[level]!, bits, template.hi, out, at, count);
  }

  tableLimits(lo: number, hi: number): number {
    return x86EntryLimits(lo, hi);
  }

  decodeLeaf(lo: number, hi: number, level: number, tableLimits: number): X86LeafAttributes {
    return decodeX86Attributes(lo, hi, level, tableLimits);
  }

  permissions(attrs: X86LeafAttributes, privileged: boolean, _hardwareDirty: boolean): number {
    return x86Permissions(attrs, privileged, this.rules);
  }

  /** `permissions(decodeLeaf(…))` without the decoded object: a walk's hot path. */
  leafPermissions(lo: number, hi: number, tableLimits: number, privileged: boolean): number {
    return x86LeafPermissions(lo, hi, tableLimits, privileged, this.rules);
  }

  /** The leaf's G bit: a translation every address space of the domain shares. */
  isGlobal(lo: number): boolean {
    return (lo & X86_G) !== 0;
  }

  // Every writable leaf is tracked: the hardware sets D on the first write through it (SDM §4.8).
  dirtyState(lo: number, _hi: number): DirtyState {
    if ((lo & X86_RW) === 0) return DIRTY_UNTRACKED;
    return (lo & X86_D) !== 0 ? DIRTY_DIRTY : DIRTY_CLEAN;
  }
}

/** Creates an x86-64 format; `EINVAL` for an unsupported level count or address width. */
export function x86Format(config: X86Config): X86Format {
  return new X86Format(config);
}
