/**
 * Register maps of the GICv3 ITS and redistributor (Arm IHI 0069 "GICv3 and GICv4 architecture
 * specification": §12.19 ITS registers, §12.10–12.11 redistributor registers; offsets checked against
 * Linux include/linux/irqchip/arm-gic-v3.h). 64-bit registers are two 32-bit halves, low word first.
 */

/** An ITS occupies two 64 KiB frames: the control frame, then the translation frame. */
export const ITS_FRAME_SIZE = 0x2_0000;
/** A GICv3 redistributor: RD_base then SGI_base, 64 KiB each. */
export const REDIST_FRAME_SIZE = 0x2_0000;

export const GITS = {
  CTLR: 0x0000,
  IIDR: 0x0004,
  TYPER: 0x0008,
  CBASER: 0x0080,
  CWRITER: 0x0088,
  CREADR: 0x0090,
  /** GITS_BASER<n> at BASER + 8n, n = 0..7. */
  BASER: 0x0100,
  PIDR2: 0xffe8,
  /** The doorbell devices write their EventID to (offset 0x40 of the translation frame). */
  TRANSLATER: 0x1_0040,
} as const;

export const GITS_CTLR_ENABLED = 1 << 0;
export const GITS_CTLR_QUIESCENT = 0x8000_0000;
/** CWRITER.Retry / CREADR.Stalled (bit 0); the offset is in bits [19:5]. */
export const QUEUE_RETRY_STALLED = 1;
export const QUEUE_OFFSET_MASK = 0x000f_ffe0;

/** PIDR2.ArchRev [7:4] = 3: GICv3. */
export const PIDR2_GICV3 = 0x3b;

export const GICR = {
  CTLR: 0x00,
  IIDR: 0x04,
  TYPER: 0x08,
  WAKER: 0x14,
  PROPBASER: 0x70,
  PENDBASER: 0x78,
  INVLPIR: 0xa0,
  INVALLR: 0xb0,
  SYNCR: 0xc0,
  PIDR2: 0xffe8,
} as const;

export const GICR_CTLR_ENABLE_LPIS = 1 << 0;
export const GICR_WAKER_PROCESSOR_SLEEP = 1 << 1;
export const GICR_WAKER_CHILDREN_ASLEEP = 1 << 2;

/** Implementer 0x43B (Arm) in GITS_IIDR / GICR_IIDR. */
export const IIDR_ARM = 0x43b;

/** GITS_BASER.Type values (§12.19.1). */
export const BASER_TYPE = { none: 0, devices: 1, vpes: 2, collections: 4 } as const;

/** LPIs start at INTID 8192; the configuration table's entry 0 is INTID 8192 (§5.1.1). */
export const LPI_BASE = 8192;
/** LPI configuration byte: Enable bit 0, bit 1 (Linux sets it as "group 1"), Priority [7:2] (§5.1.2). */
export const LPI_ENABLE = 1 << 0;
export const LPI_GROUP1 = 1 << 1;
export const LPI_PRIORITY_MASK = 0xfc;

const bits = (v: bigint, hi: number, lo: number): number =>
  Number((v >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n));

/** GITS_TYPER (§12.19.23): what the ITS implements. */
export interface ItsTyper {
  /** ITT entry size in bytes. */
  readonly itteSize: number;
  readonly eventIdBits: number;
  readonly deviceIdBits: number;
  /** Collection ID bits (CIL = 1: CIDbits is valid). */
  readonly collectionIdBits: number;
}

export function encodeTyper(t: ItsTyper): bigint {
  return (
    1n | // Physical LPIs
    (BigInt(t.itteSize - 1) << 4n) |
    (BigInt(t.eventIdBits - 1) << 8n) |
    (BigInt(t.deviceIdBits - 1) << 13n) |
    // PTA = 0: RDbase is a processor number; HCC = 0: no collections held in the ITS
    (BigInt(t.collectionIdBits - 1) << 32n) |
    (1n << 36n) // CIL
  );
}

export function decodeTyper(v: bigint): ItsTyper & { readonly physical: boolean; readonly pta: boolean } {
  const cil = bits(v, 36, 36) === 1;
  return {
    physical: bits(v, 0, 0) === 1,
    itteSize: bits(v, 7, 4) + 1,
    eventIdBits: bits(v, 12, 8) + 1,
    deviceIdBits: bits(v, 17, 13) + 1,
    pta: bits(v, 19, 19) === 1,
    collectionIdBits: cil ? bits(v, 35, 32) + 1 : 16,
  };
}

/** GITS_BASER<n> (§12.19.1). */
export interface Baser {
  readonly valid: boolean;
  readonly indirect: boolean;
  readonly type: number;
  /** Bytes per entry. */
  readonly entrySize: number;
  /** 4096, 16384 or 65536. */
  readonly pageSize: number;
  /** Table base (with 64 KiB pages, bits [15:12] of the register are PA[51:48]). */
  readonly address: bigint;
  readonly pages: number;
}

const PAGE_SIZES = [0x1000, 0x4000, 0x1_0000, 0x1_0000] as const;

export function decodeBaser(v: bigint): Baser {
  const pageSize = PAGE_SIZES[bits(v, 9, 8)]!;
  const field = v & 0x0000_ffff_ffff_f000n;
  const address =
    pageSize === 0x1_0000 ? (field & 0xffff_ffff_0000n) | (BigInt(bits(v, 15, 12)) << 48n) : field;
  return {
    valid: bits(v, 63, 63) === 1,
    indirect: bits(v, 62, 62) === 1,
    type: bits(v, 58, 56),
    entrySize: bits(v, 52, 48) + 1,
    pageSize,
    address,
    pages: bits(v, 7, 0) + 1,
  };
}

export function encodeBaser(
  b: Omit<Baser, 'type' | 'entrySize'> & { readonly type?: number; readonly entrySize?: number },
): bigint {
  const sizeCode = BigInt(PAGE_SIZES.indexOf(b.pageSize as (typeof PAGE_SIZES)[number]));
  const address =
    b.pageSize === 0x1_0000 ? (b.address & 0xffff_ffff_0000n) | ((b.address >> 48n) << 12n) : b.address;
  return (
    (b.valid ? 1n << 63n : 0n) |
    (b.indirect ? 1n << 62n : 0n) |
    (7n << 59n) | // InnerCache: write-back read/write-allocate (what Linux asks for)
    (BigInt(b.type ?? 0) << 56n) |
    (BigInt((b.entrySize ?? 1) - 1) << 48n) |
    address |
    (1n << 10n) | // Inner shareable
    (sizeCode << 8n) |
    BigInt(b.pages - 1)
  );
}

/** GITS_CBASER (§12.19.2): the command queue, (Size + 1) 4 KiB pages. */
export interface Cbaser {
  readonly valid: boolean;
  readonly address: bigint;
  readonly pages: number;
}

export function decodeCbaser(v: bigint): Cbaser {
  return { valid: bits(v, 63, 63) === 1, address: v & 0x000f_ffff_ffff_f000n, pages: bits(v, 7, 0) + 1 };
}

export function encodeCbaser(c: Cbaser): bigint {
  return (c.valid ? 1n << 63n : 0n) | (7n << 59n) | c.address | (1n << 10n) | BigInt(c.pages - 1);
}

/** GICR_PROPBASER (§12.11.32): the LPI configuration table and how many INTID bits it covers. */
export function decodePropbaser(v: bigint): { readonly address: bigint; readonly idBits: number } {
  return { address: v & 0x000f_ffff_ffff_f000n, idBits: bits(v, 4, 0) + 1 };
}

export function encodePropbaser(address: bigint, idBits: number): bigint {
  return address | (7n << 7n) | (1n << 10n) | BigInt(idBits - 1);
}

/** GICR_PENDBASER (§12.11.30): the pending table, 64 KiB aligned. */
export function decodePendbaser(v: bigint): { readonly address: bigint; readonly ptz: boolean } {
  return { address: v & 0x000f_ffff_ffff_0000n, ptz: bits(v, 62, 62) === 1 };
}

export function encodePendbaser(address: bigint): bigint {
  return address | (7n << 7n) | (1n << 10n);
}

/** GICR_TYPER (§12.11.35): PLPIS, Last, Processor_Number and the affinity (Aff0 = CPU number here). */
export function encodeRedistTyper(cpu: number, last: boolean): bigint {
  return 1n | (last ? 1n << 4n : 0n) | (BigInt(cpu) << 8n) | (BigInt(cpu) << 32n);
}

export function decodeRedistTyper(v: bigint): {
  readonly processorNumber: number;
  readonly last: boolean;
  readonly plpis: boolean;
} {
  return { processorNumber: bits(v, 23, 8), last: bits(v, 4, 4) === 1, plpis: bits(v, 0, 0) === 1 };
}
