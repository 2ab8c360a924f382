/**
 * VMSAv8-64 descriptor bits (Arm ARM D8.3 "Translation table descriptor formats", D8.4 "Memory access
 * control"), as masks on the two 32-bit halves of a descriptor: `LO_*` are bits 31:0, `HI_*` are bits 63:32
 * (bit n of the descriptor is bit n − 32 of `hi`).
 *
 * | bits | stage 1 leaf | stage 2 leaf | table (stage 1) |
 * |---|---|---|---|
 * | 1:0 | 0b01 block (levels 0–2), 0b11 page (level 3) | same | 0b11 at levels 0–2 |
 * | 4:2 / 5:2 | AttrIndx[2:0] (MAIR index), NS at 5 | MemAttr[3:0] | ignored |
 * | 7:6 | AP[2:1]: 6 = EL0 access, 7 = read-only | S2AP: 6 = read, 7 = write | ignored |
 * | 9:8, 10, 11 | SH, AF, nG | SH, AF, RES0 | ignored |
 * | 47:g | output address (g = granule shift) | same | next-level table address |
 * | 15:12 | OA[51:48] with the 64K granule and 52-bit PA | same | NLTA[51:48], same condition |
 * | 51, 52 | DBM, Contiguous | DBM, Contiguous | ignored |
 * | 53, 54 | PXN, UXN | XN[1:0] (XN[0] needs FEAT_XNX) | ignored |
 * | 59, 60, 62:61, 63 | — | — | PXNTable, UXNTable, APTable, NSTable |
 */

export const LO_VALID = 1 << 0;
/** Bit 1: table (levels 0–2) or page (level 3); clear with bit 0 set is a block. */
export const LO_TABLE_OR_PAGE = 1 << 1;
export const LO_ATTR_SHIFT = 2;
export const LO_NS = 1 << 5;
export const LO_AP_SHIFT = 6;
/** Stage 1 AP[1] (EL0 access) / stage 2 S2AP[0] (read). */
export const LO_AP1_S2AP_R = 1 << 6;
/** Stage 1 AP[2] (read-only) / stage 2 S2AP[1] (write). */
export const LO_AP2_S2AP_W = 1 << 7;
export const LO_SH_SHIFT = 8;
export const LO_AF = 1 << 10;
export const LO_NG = 1 << 11;
/** Leaf attribute bits of the low word (11:2). */
export const LO_ATTR_MASK = 0xffc;

/** Bit 51. */
export const HI_DBM = 1 << 19;
/** Bit 52. */
export const HI_CONTIGUOUS = 1 << 20;
/** Bits 54:53: stage 1 {UXN, PXN}, stage 2 XN[1:0]. */
export const HI_XN_SHIFT = 21;
export const HI_PXN = 1 << 21;
export const HI_UXN = 1 << 22;
/** Leaf attribute bits of the high word (63:48). */
export const HI_ATTR_MASK = 0xffff0000;
/** Output address bits 47:32 in the high word. */
export const HI_ADDR_MASK = 0xffff;
/** Stage 1 table descriptor limits, bits 62:59 shifted down by {@link HI_TABLE_LIMIT_SHIFT}. */
export const HI_TABLE_LIMIT_SHIFT = 27;

/** Bits of a table-limits value (bits 62:59 of a stage 1 table descriptor, shifted down to 3:0). */
export const LIMIT_PXN_TABLE = 1 << 0;
export const LIMIT_UXN_TABLE = 1 << 1;
/** APTable[0]: no EL0 access below. */
export const LIMIT_AP_TABLE_NO_EL0 = 1 << 2;
/** APTable[1]: no write access below. */
export const LIMIT_AP_TABLE_RO = 1 << 3;

/** SH values. */
export const SH_NON_SHAREABLE = 0;
export const SH_OUTER = 2;
export const SH_INNER = 3;

/** Linux's stage-1 MAIR slots (io-pgtable-arm): 0 non-cacheable, 1 write-back cacheable, 2 device. */
export const MAIR_IDX_NC = 0;
export const MAIR_IDX_CACHED = 1;
export const MAIR_IDX_DEVICE = 2;
/** The MAIR value those slots need: {0x44, 0xff, 0x04, 0xf4} in bytes 0..3. */
export const LINUX_MAIR = 0xf404ff44n;

/** Stage 2 MemAttr values Linux uses: outer+inner write-back, non-cacheable, Device-nGnRE. */
export const S2_MEMATTR_CACHED = 0xf;
export const S2_MEMATTR_NC = 0x5;
export const S2_MEMATTR_DEVICE = 0x1;

/** Stage 2 XN[1:0]: 0b10 forbids execution at every level with or without FEAT_XNX. */
export const S2_XN_NONE = 0b10;

/** A leaf's attributes, decoded. One shape for both stages so walkers stay monomorphic. */
export interface VmsaLeafAttributes {
  readonly stage: 1 | 2;
  /** Stage 1 AttrIndx[2:0] (MAIR index); stage 2 MemAttr[3:0]. */
  readonly memAttr: number;
  /** Stage 1 NS (bit 5); false at stage 2, where bit 5 is MemAttr[3]. */
  readonly ns: boolean;
  /** Stage 1 AP[2:1] (bit 1 = AP[2] read-only, bit 0 = AP[1] EL0 access); stage 2 S2AP (bit 1 write, bit 0 read). */
  readonly ap: number;
  readonly sh: number;
  readonly af: boolean;
  /** Stage 1 nG; false at stage 2. */
  readonly ng: boolean;
  readonly dbm: boolean;
  readonly contiguous: boolean;
  /** Bits 54:53: stage 1 UXN (bit 1) and PXN (bit 0); stage 2 XN[1:0]. */
  readonly xn: number;
  /** Stage 1 limits inherited from the table descriptors above (LIMIT_* bits); 0 at stage 2. */
  readonly tableLimits: number;
}

/** Attribute fields to encode; absent fields are 0/false. */
export type VmsaAttributeFields = Partial<Omit<VmsaLeafAttributes, 'stage' | 'tableLimits'>>;

/** Encodes attribute fields into the template words of a leaf (no address, no type bits). */
export function vmsaTemplate(stage: 1 | 2, fields: VmsaAttributeFields): { lo: number; hi: number } {
  let lo = ((fields.memAttr ?? 0) & (stage === 1 ? 0x7 : 0xf)) << LO_ATTR_SHIFT;
  if (stage === 1 && fields.ns) lo |= LO_NS;
  lo |= ((fields.ap ?? 0) & 3) << LO_AP_SHIFT;
  lo |= ((fields.sh ?? 0) & 3) << LO_SH_SHIFT;
  if (fields.af) lo |= LO_AF;
  if (stage === 1 && fields.ng) lo |= LO_NG;
  let hi = 0;
  if (fields.dbm) hi |= HI_DBM;
  if (fields.contiguous) hi |= HI_CONTIGUOUS;
  hi |= ((fields.xn ?? 0) & 3) << HI_XN_SHIFT;
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

/** Decodes a leaf's attribute bits. */
export function decodeVmsaAttributes(
  stage: 1 | 2,
  lo: number,
  hi: number,
  tableLimits: number,
): VmsaLeafAttributes {
  return {
    stage,
    memAttr: (lo >>> LO_ATTR_SHIFT) & (stage === 1 ? 0x7 : 0xf),
    ns: stage === 1 && (lo & LO_NS) !== 0,
    ap: (lo >>> LO_AP_SHIFT) & 3,
    sh: (lo >>> LO_SH_SHIFT) & 3,
    af: (lo & LO_AF) !== 0,
    ng: stage === 1 && (lo & LO_NG) !== 0,
    dbm: (hi & HI_DBM) !== 0,
    contiguous: (hi & HI_CONTIGUOUS) !== 0,
    xn: (hi >>> HI_XN_SHIFT) & 3,
    tableLimits: stage === 1 ? tableLimits : 0,
  };
}
