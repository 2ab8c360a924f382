/**
 * The VMSAv8-64 page-table format, stage 1 or stage 2, 4K/16K/64K granule, as a {@link PageTableFormat}:
 * the geometry from {@link vmsaGeometry}, the descriptor bits from `descriptors.ts`, the permission rules from
 * `permissions.ts`, and the register values a driver programs (Arm ARM D8; SMMUv3 5.2 STE, 5.4 CD).
 *
 * How {@link MapProt} becomes descriptor bits (the choices Linux io-pgtable-arm makes, except `exec`):
 * | prot | stage 1 | stage 2 |
 * |---|---|---|
 * | read only | AP[2] = 1 (read-only) | S2AP = 0b01 |
 * | write (with or without read) | AP[2] = 0 (stage 1 cannot express write-only) | S2AP = 0b11 / 0b10 |
 * | `priv` absent / true | AP[1] = 1 (EL0 access) / AP[1] = 0 (privileged only) | no effect |
 * | `exec` absent or false / true | PXN = UXN = 1 / both 0, but UXN = 1 with `priv` | XN = 0b10 / 0b00 |
 * | memType cached / noncached / device | AttrIndx 1 / 0 / 2 (Linux MAIR) | MemAttr 0xF / 0x5 / 0x1 |
 * | always | AF = 1, SH = inner, nG = 1 | AF = 1, SH = inner |
 * | dirty tracking, writable | DBM = 1 with AP[2] = 0: starts dirty | DBM = 1 with S2AP[1] = 1: starts dirty |
 * A new tracked mapping starts dirty, as Linux's (nothing is lost if a write happened before the first
 * read-and-clear); the first clear makes it writable-clean.
 */
import { IommufdError, join64ToNumber } from '@iommukit/core';
import {
  DESC_INVALID,
  DESC_LEAF,
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
import {
  decodeVmsaAttributes,
  HI_ADDR_MASK,
  HI_ATTR_MASK,
  HI_CONTIGUOUS,
  HI_DBM,
  HI_TABLE_LIMIT_SHIFT,
  LO_AF,
  LO_AP2_S2AP_W,
  LO_ATTR_MASK,
  LO_TABLE_OR_PAGE,
  LO_VALID,
  MAIR_IDX_CACHED,
  MAIR_IDX_DEVICE,
  MAIR_IDX_NC,
  S2_MEMATTR_CACHED,
  S2_MEMATTR_DEVICE,
  S2_MEMATTR_NC,
  S2_XN_NONE,
  SH_INNER,
  type VmsaLeafAttributes,
  vmsaTemplate,
} from './descriptors.js';
import { type VmsaConfig, type VmsaGeometry, vmsaGeometry } from './geometry.js';
import { vmsaPermissions } from './permissions.js';
import {
  granuleFromTg,
  iasFromT0sz,
  oasFromPs,
  psEncoding,
  sl0Encoding,
  startLevelFromSl0,
  t0szFor,
  tgEncoding,
  type VmsaGranule,
} from './registers.js';

const TWO_32 = pow2(32);
const TWO_48 = pow2(48);

/** What a driver writes into a CD (stage 1) or STE (stage 2) to use a table of this format. */
export interface VmsaTranslationControl {
  readonly stage: 1 | 2;
  /** CD.T0SZ / STE.S2T0SZ. */
  readonly t0sz: number;
  /** CD.TG0 / STE.S2TG. */
  readonly tg: number;
  /** CD.IPS / STE.S2PS. */
  readonly ps: number;
  /** STE.S2SL0 (stage 2 only). */
  readonly sl0?: number;
  /** CD.TTB0 / STE.S2TTB: the root table address (bits 51:4 of the field). */
  readonly ttb: bigint;
}

/** Register fields a hardware model read from a CD or STE. */
export interface VmsaRegisterFields {
  readonly stage: 1 | 2;
  readonly tg: number;
  readonly t0sz: number;
  readonly ps: number;
  /** Stage 2 only. */
  readonly sl0?: number;
}

export class VmsaFormat implements PageTableFormat<VmsaLeafAttributes> {
  readonly name: string;
  readonly stage: 1 | 2;
  readonly granule: VmsaGranule;
  readonly geometry: VmsaGeometry;
  readonly granuleShift: number;
  readonly bitsPerLevel: number;
  readonly descriptorBytes = 8;
  /** Only leaves have an access flag (Arm ARM D8.5.1). */
  readonly tableAccessFlag = false;
  readonly levels: number;
  readonly startLevel: number;
  readonly leafLevel = 3;
  readonly ias: number;
  readonly oas: number;
  readonly rootTables: number;
  readonly rootBytes: number;
  readonly tableBytes: number;
  readonly pgsizeBitmap: bigint;
  /** 64K granule with 52-bit output addresses: OA[51:48] live in descriptor bits 15:12. */
  readonly oa52: boolean;

  // Per-level tables, indexed by level 0..3.
  private readonly shift: number[] = [];
  private readonly span: number[] = [];
  private readonly entryCount: number[] = [];
  /** 2^-shift per level: a multiplication by it is exact, and cheaper than a division by the span. */
  private readonly inverseSpan: number[] = [];
  private readonly block: boolean[] = [];
  private readonly loMask: number[] = [];
  private readonly hiMask: number[] = [];
  private readonly tableLoMask: number;

  constructor(config: VmsaConfig) {
    const g = vmsaGeometry(config);
    this.geometry = g;
    this.stage = g.stage;
    this.granule = g.granule;
    this.granuleShift = g.granuleShift;
    this.bitsPerLevel = g.bitsPerLevel;
    this.levels = g.levels;
    this.startLevel = g.startLevel;
    this.ias = g.ias;
    this.oas = g.oas;
    this.rootTables = g.rootTables;
    this.rootBytes = g.rootBytes;
    this.tableBytes = g.granule;
    this.pgsizeBitmap = g.pgsizeBitmap;
    this.oa52 = g.granule === 65536 && g.oas === 52;
    const concat = g.rootTables > 1 ? ` ${g.rootTables}×concat` : '';
    this.name = `vmsav8-64 s${g.stage} ${g.granule / 1024}K ias${g.ias} oas${g.oas} L${g.startLevel}${concat}`;
    // Low-word address bits of a table or page: 31:granuleShift (bits 15:12 are OA[51:48] when oa52).
    this.tableLoMask = (0xffffffff - (g.granule - 1)) >>> 0;
    for (let level = 0; level <= 3; level++) {
      const shift = g.granuleShift + (3 - level) * g.bitsPerLevel;
      this.shift.push(shift);
      this.span.push(pow2(shift));
      this.inverseSpan.push(2 ** -shift);
      this.entryCount.push(level === g.startLevel ? g.rootEntries : pow2(g.bitsPerLevel));
      this.block.push(level === 3 || g.blockLevels.includes(level));
      // Stryker disable next-line EqualityOperator: no level shift is exactly 32 (granule shifts 12/14/16 plus multiples of 9/11/13)
      this.loMask.push(shift >= 32 ? 0 : (0xffffffff - (pow2(shift) - 1)) >>> 0);
      this.hiMask.push(shift > 32 ? HI_ADDR_MASK - (pow2(shift - 32) - 1) : HI_ADDR_MASK);
    }
  }

  /** What a driver programs into the CD/STE to use a table of this format rooted at `rootPa`. */
  translationControl(rootPa: bigint | number): VmsaTranslationControl {
    const base = {
      stage: this.stage,
      t0sz: t0szFor(this.ias),
      tg: tgEncoding(this.granule),
      ps: psEncoding(this.oas)!,
      ttb: BigInt(rootPa),
    };
    return this.stage === 2 ? { ...base, sl0: sl0Encoding(this.granule, this.startLevel)! } : base;
  }

  nextLevel(level: number): number {
    return level + 1;
  }

  levelShift(level: number): number {
    return this.shift[level]!;
  }

  entries(level: number): number {
    return this.entryCount[level]!;
  }

  index(iova: number, level: number): number {
    // Table sizes are powers of two (concatenated roots too), so the index is the low bits of the page
    // number: `>>> 0` keeps its low 32 bits exactly, and a mask takes the rest without a float remainder.
    return (Math.floor(iova * this.inverseSpan[level]!) >>> 0) & (this.entryCount[level]! - 1);
  }

  leafAllowed(level: number): boolean {
    return level >= this.startLevel && this.block[level] === true;
  }

  // Arm ARM D8.3: bit 0 valid; bit 1 set = table (levels 0–2) or page (level 3); a level-3 descriptor with
  // bit 1 clear, or a block where the granule allows none, is invalid (translation fault).
  kind(lo: number, _hi: number, level: number): DescriptorKind {
    if ((lo & LO_VALID) === 0) return DESC_INVALID;
    if (level === 3) return (lo & LO_TABLE_OR_PAGE) !== 0 ? DESC_LEAF : DESC_INVALID;
    if ((lo & LO_TABLE_OR_PAGE) !== 0) return DESC_TABLE;
    return this.block[level] === true ? DESC_LEAF : DESC_INVALID;
  }

  tableAddress(lo: number, hi: number): number {
    let pa = join64ToNumber(lo & this.tableLoMask, hi & HI_ADDR_MASK);
    if (this.oa52) pa += ((lo >>> 12) & 0xf) * TWO_48;
    return pa;
  }

  outputAddress(lo: number, hi: number, level: number): number {
    let pa = join64ToNumber(lo & this.loMask[level]!, hi & this.hiMask[level]!);
    if (this.oa52) pa += ((lo >>> 12) & 0xf) * TWO_48;
    return pa;
  }

  tableNextLevel(_lo: number, _hi: number, level: number): number {
    return level + 1;
  }

  leafShift(_lo: number, _hi: number, level: number): number {
    return this.shift[level]!;
  }

  encodeTable(tablePa: number, _level: number, out: Uint32Array, at: number): void {
    const hi = Math.floor(tablePa / TWO_32);
    const lo = tablePa - hi * TWO_32;
    out[at] = ((lo & this.tableLoMask) | this.oa52Bits(hi) | LO_VALID | LO_TABLE_OR_PAGE) >>> 0;
    out[at + 1] = (hi & HI_ADDR_MASK) >>> 0;
  }

  leafTemplate(prot: MapProt, dirtyTracking: boolean): LeafTemplate {
    const memType = prot.memType ?? 'cached';
    const tracked = dirtyTracking && prot.write;
    if (this.stage === 1) {
      const memAttr =
        memType === 'cached' ? MAIR_IDX_CACHED : memType === 'device' ? MAIR_IDX_DEVICE : MAIR_IDX_NC;
      // AP[2:1]: bit 1 read-only, bit 0 EL0 access.
      const ap = (prot.write ? 0 : 2) | (prot.priv ? 0 : 1);
      return vmsaTemplate(1, {
        memAttr,
        ap,
        sh: SH_INNER,
        af: true,
        ng: true,
        dbm: tracked,
        // AP[1] = 0 does not stop EL0 execution, only UXN does (Arm ARM D8.4.1.2.3): `priv` sets it too.
        xn: prot.exec ? (prot.priv ? 2 : 0) : 3,
      });
    }
    const memAttr =
      memType === 'cached' ? S2_MEMATTR_CACHED : memType === 'device' ? S2_MEMATTR_DEVICE : S2_MEMATTR_NC;
    const ap = (prot.read ? 1 : 0) | (prot.write ? 2 : 0);
    return vmsaTemplate(2, {
      memAttr,
      ap,
      sh: SH_INNER,
      af: true,
      dbm: tracked,
      xn: prot.exec ? 0 : S2_XN_NONE,
    });
  }

  templateOf(lo: number, hi: number, _level: number): LeafTemplate {
    // The Contiguous hint describes a group of entries; re-stamped entries are not part of one.
    return { lo: (lo & LO_ATTR_MASK) >>> 0, hi: (hi & HI_ATTR_MASK & ~HI_CONTIGUOUS) >>> 0 };
  }

  encodeLeaf(pa: number, level: number, template: LeafTemplate, out: Uint32Array, at: number): void {
    this.encodeLeaves(pa, level, template, out, at, 1);
  }

  encodeLeaves(
    pa: number,
    level: number,
    template: LeafTemplate,
    out: Uint32Array,
    at: number,
    count: number,
  ): void {
    const bits = (level === 3 ? LO_VALID | LO_TABLE_OR_PAGE : LO_VALID) | template.lo;
    const loMask = this.loMask[level]!;
    const span = this.span[level]!;
    // The output address as two exact halves, advanced by the span with a carry: no division per leaf, and
    // the high word (with OA[51:48]'s placement) recomputed only when a carry changes it.
    let hi = Math.floor(pa / TWO_32);
    let lo = pa - hi * TWO_32;
    let loBits = this.oa52Bits(hi) | bits;
    let hiWord = ((hi & HI_ADDR_MASK) | template.hi) >>> 0;
    const end = at + 2 * count;
    for (let i = at; i < end; i += 2) {
      out[i] = ((lo & loMask) | loBits) >>> 0;
      out[i + 1] = hiWord;
      lo += span;
      if (lo >= TWO_32) {
        const carry = Math.floor(lo / TWO_32);
        hi += carry;
        lo -= carry * TWO_32;
        loBits = this.oa52Bits(hi) | bits;
        hiWord = ((hi & HI_ADDR_MASK) | template.hi) >>> 0;
      }
    }
  }

  tableLimits(_lo: number, hi: number): number {
    return this.stage === 1 ? (hi >>> HI_TABLE_LIMIT_SHIFT) & 0xf : 0;
  }

  decodeLeaf(lo: number, hi: number, _level: number, tableLimits: number): VmsaLeafAttributes {
    return decodeVmsaAttributes(this.stage, lo, hi, tableLimits);
  }

  permissions(attrs: VmsaLeafAttributes, privileged: boolean, hardwareDirty: boolean): number {
    return vmsaPermissions(attrs, privileged, hardwareDirty);
  }

  accessFlag(lo: number): boolean {
    return (lo & LO_AF) !== 0;
  }

  setAccessFlag(lo: number): number {
    return (lo | LO_AF) >>> 0;
  }

  // FEAT_HAFDBS: stage 1 dirty = DBM with AP[2] = 0; stage 2 dirty = DBM with S2AP[1] = 1.
  dirtyState(lo: number, hi: number): DirtyState {
    if ((hi & HI_DBM) === 0) return DIRTY_UNTRACKED;
    const bit = (lo & LO_AP2_S2AP_W) !== 0;
    return (this.stage === 1 ? !bit : bit) ? DIRTY_DIRTY : DIRTY_CLEAN;
  }

  markDirty(lo: number): number {
    return (this.stage === 1 ? lo & ~LO_AP2_S2AP_W : lo | LO_AP2_S2AP_W) >>> 0;
  }

  markClean(lo: number): number {
    return (this.stage === 1 ? lo | LO_AP2_S2AP_W : lo & ~LO_AP2_S2AP_W) >>> 0;
  }

  /** OA[51:48] (bits 19:16 of the high half) as a 52-bit OA places them: descriptor bits 15:12 (§D8.3). */
  private oa52Bits(hi: number): number {
    return this.oa52 ? ((hi >>> 16) & 0xf) << 12 : 0;
  }
}

/** Creates a VMSAv8-64 format; `EINVAL` for an unsupported combination. */
export function vmsaFormat(config: VmsaConfig): VmsaFormat {
  return new VmsaFormat(config);
}

/**
 * The format a hardware model walks for the fields it read from a CD (stage 1: TG0, T0SZ, IPS) or an STE
 * (stage 2: S2TG, S2T0SZ, S2PS, S2SL0). Throws `EINVAL` for a combination that is ILLEGAL, which the model
 * reports as C_BAD_CD / C_BAD_STE.
 */
export function vmsaFormatFromRegisters(fields: VmsaRegisterFields): VmsaFormat {
  const granule = granuleFromTg(fields.tg);
  const oas = oasFromPs(fields.ps);
  if (granule === undefined || oas === undefined) {
    throw new IommufdError('EINVAL', `reserved TG ${fields.tg} or PS ${fields.ps} encoding`, {
      tg: fields.tg,
      ps: fields.ps,
    });
  }
  const ias = iasFromT0sz(fields.t0sz);
  if (fields.stage === 1) return new VmsaFormat({ stage: 1, granule, ias, oas });
  const startLevel = fields.sl0 === undefined ? undefined : startLevelFromSl0(granule, fields.sl0);
  if (startLevel === undefined) {
    throw new IommufdError('EINVAL', `reserved SL0 ${fields.sl0} for the ${granule / 1024}K granule`, {
      sl0: fields.sl0,
    });
  }
  return new VmsaFormat({ stage: 2, granule, ias, oas, startLevel });
}
