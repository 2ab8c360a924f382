/**
 * AMD IOMMU command-buffer entries (AMD I/O Virtualization Technology (IOMMU) Specification, publication
 * 48882 rev 3.x, §2.4 "Commands"; §2.4.3 is INVALIDATE_IOMMU_PAGES as VirtualBox cites it, and the
 * subsections here follow opcode order): 128 bits as four little-endian 32-bit words, the opcode in bits
 * 63:60 (word 1 bits 31:28). Positions below are absolute, 32·word + bit.
 *
 * `decodeCommand` is what the command processor runs for every entry: the command, or the reason the unit
 * logs ILLEGAL_COMMAND_ERROR instead (§2.5 "Event Logging"): an opcode it does not define, an opcode for a
 * feature it lacks, or a reserved bit set. The field layouts agree in FreeBSD `amd_reg.h` (struct
 * amdiommu_cmd_*), VirtualBox `iommu-amd.h` (CMD_*_T) and Linux `amd_iommu_types.h` / `iommu.c` (the
 * build_* functions); the reserved masks are VirtualBox's IOMMU_CMD_*_VALID_MASK and QEMU `amd_iommu.c`'s
 * per-command extract64 checks, which agree except where noted:
 *
 * | opcode | reserved bits | sources |
 * |---|---|---|
 * | 0x1 COMPLETION_WAIT | 59:52 | VirtualBox, QEMU, FreeBSD |
 * | 0x2 INVALIDATE_DEVTAB_ENTRY | 59:16, 127:64 | VirtualBox, QEMU, FreeBSD |
 * | 0x3 INVALIDATE_IOMMU_PAGES | 31:20, 59:48, 75:67 | VirtualBox, QEMU, FreeBSD |
 * | 0x4 INVALIDATE_IOTLB_PAGES | 65, 67, 75:70 | QEMU, VirtualBox, FreeBSD |
 * | 0x5 INVALIDATE_INTERRUPT_TABLE | 59:16, 127:64 | VirtualBox, QEMU, FreeBSD |
 * | 0x6 PREFETCH_IOMMU_PAGES | 23:16, 59:52, 65, 67, 75:69 | QEMU, FreeBSD, VirtualBox (its qword-0 mask also drops bit 63 and keeps 59, a slip) |
 * | 0x7 COMPLETE_PPR_REQUEST | 31:16, 59:52, 65:64, 95:67, 127:112 | QEMU, VirtualBox, FreeBSD |
 * | 0x8 INVALIDATE_IOMMU_ALL | 59:0, 127:64 | VirtualBox, QEMU |
 *
 * Features (VirtualBox iommuAmdR3CmdProcess reports each as an illegal command when absent): 0x8 needs
 * EFR.IASup, 0x7 EFR.PPRSup, 0x6 EFR.PreFSup, 0x4 the capability header's IotlbSup. Opcodes 0x9
 * INSERT_GUEST_EVENT and 0xA RESET_VMMIO belong to the hardware vIOMMU; only FreeBSD lays them out, and its
 * RESET_VMMIO struct misplaces the opcode, so this model has no vIOMMU and reports both as illegal.
 *
 * COMPLETE_PPR_REQUEST word 3 follows Linux build_complete_ppr: completion tag 104:96 (the PRG index),
 * response status 111:108. QEMU, VirtualBox and FreeBSD call 111:96 one 16-bit tag; no source reserves
 * 107:105, so they are neither checked nor decoded.
 */
import { checkFieldAddress, checkFieldValue } from '@iommukit/core';

/** Words (32-bit) and bytes of one command. */
export const COMMAND_WORDS = 4;
export const COMMAND_BYTES = 16;

/** Opcodes (§2.4; Linux CMD_*). */
export const COMMAND_OPCODE = {
  COMPLETION_WAIT: 0x1,
  INVALIDATE_DEVTAB_ENTRY: 0x2,
  INVALIDATE_IOMMU_PAGES: 0x3,
  INVALIDATE_IOTLB_PAGES: 0x4,
  INVALIDATE_INTERRUPT_TABLE: 0x5,
  PREFETCH_IOMMU_PAGES: 0x6,
  COMPLETE_PPR_REQUEST: 0x7,
  INVALIDATE_IOMMU_ALL: 0x8,
} as const;

/**
 * What the unit implements of the optional commands; names as in features.ts `AmdFeatures`, which has no
 * PreFSup yet, so `prefetch` is optional (absent: no PREFETCH_IOMMU_PAGES).
 */
export interface CommandFeatures {
  /** EFR.IASup (bit 6): INVALIDATE_IOMMU_ALL. */
  readonly invalidateAll: boolean;
  /** EFR.PPRSup (bit 1): COMPLETE_PPR_REQUEST. */
  readonly pageRequests: boolean;
  /** Capability header IotlbSup (bit 24): INVALIDATE_IOTLB_PAGES. */
  readonly iotlbSupport: boolean;
  /** EFR.PreFSup (bit 0): PREFETCH_IOMMU_PAGES. */
  readonly prefetch?: boolean;
}

/** §2.4.1: store `storeData` at `storeAddress` (S), interrupt (I), wait for prior commands (F). */
export interface CompletionWaitCommand {
  readonly op: 'completion-wait';
  readonly store: boolean;
  readonly interrupt: boolean;
  readonly flush: boolean;
  /** Bits 51:3: an 8-byte aligned system physical address. */
  readonly storeAddress: number;
  /**
   * The 64-bit store value as its halves (bits 95:64 and 127:96): the unit writes it as two words, and a
   * bigint would allocate on every completion wait.
   */
  readonly storeDataLo: number;
  readonly storeDataHi: number;
}

/** §2.4.2. */
export interface InvalidateDevtabEntryCommand {
  readonly op: 'invalidate-devtab-entry';
  readonly deviceId: number;
}

/** §2.4.3: `address` with `s` encodes the range (decodeInvalidationRange). */
export interface InvalidateIommuPagesCommand {
  readonly op: 'invalidate-iommu-pages';
  /** Bits 19:0, meaningful with GN. */
  readonly pasid: number;
  /** Bits 47:32. */
  readonly domainId: number;
  /** S (64): the size is encoded in the address. */
  readonly s: boolean;
  /** PDE (65): page directory entries too, not only leaves. */
  readonly pde: boolean;
  /** GN (66): guest (PASID-tagged) translations rather than nested/host ones. */
  readonly gn: boolean;
  /** Bits 127:76: the byte address, bits 63:12. */
  readonly address: number;
}

/** §2.4.4: invalidates a device's remote IOTLB (ATS). */
export interface InvalidateIotlbPagesCommand {
  readonly op: 'invalidate-iotlb-pages';
  readonly deviceId: number;
  /** Bits 31:24: the device's invalidate queue depth (Linux writes ats_qdep). */
  readonly maxPend: number;
  /** Bits 47:32 (Linux writes the DeviceID). */
  readonly queueId: number;
  /** PASID[7:0] at 55:48, PASID[15:8] at 23:16, PASID[19:16] at 59:56 (FreeBSD pasid0/1/2, Linux). */
  readonly pasid: number;
  readonly s: boolean;
  readonly gn: boolean;
  /** Bits 69:68 (FreeBSD, VirtualBox; Xen names EFR bit 54 InvIotlbTypeSup). */
  readonly type: number;
  readonly address: number;
}

/** §2.4.5. */
export interface InvalidateInterruptTableCommand {
  readonly op: 'invalidate-interrupt-table';
  readonly deviceId: number;
}

/** §2.4.6 (not used by Linux). */
export interface PrefetchIommuPagesCommand {
  readonly op: 'prefetch-iommu-pages';
  readonly deviceId: number;
  /** Bits 31:24: how many translations to prefetch. */
  readonly pfCount: number;
  /** Bits 51:32. */
  readonly pasid: number;
  readonly s: boolean;
  readonly gn: boolean;
  /** Inval (68): invalidate before prefetching. */
  readonly invalidate: boolean;
  readonly address: number;
}

/** §2.4.7: the PRG response to a logged page request (PPR log, events.ts). */
export interface CompletePprRequestCommand {
  readonly op: 'complete-ppr-request';
  readonly deviceId: number;
  /** Bits 51:32. */
  readonly pasid: number;
  readonly gn: boolean;
  /** Bits 104:96: the PRG index, the low 9 bits of the PPR log entry's tag. */
  readonly tag: number;
  /** Bits 111:108: the PRG response code (0 success, 1 invalid request, 0xF failure). */
  readonly status: number;
}

/** §2.4.8. */
export interface InvalidateIommuAllCommand {
  readonly op: 'invalidate-iommu-all';
}

export type AmdCommand =
  | CompletionWaitCommand
  | InvalidateDevtabEntryCommand
  | InvalidateIommuPagesCommand
  | InvalidateIotlbPagesCommand
  | InvalidateInterruptTableCommand
  | PrefetchIommuPagesCommand
  | CompletePprRequestCommand
  | InvalidateIommuAllCommand;

/** What the unit logs as ILLEGAL_COMMAND_ERROR instead of running the command. */
export interface IllegalCommand {
  readonly illegal: string;
}

/** The spec's command names by opcode, for messages. */
const NAMES: readonly string[] = [
  '',
  'COMPLETION_WAIT',
  'INVALIDATE_DEVTAB_ENTRY',
  'INVALIDATE_IOMMU_PAGES',
  'INVALIDATE_IOTLB_PAGES',
  'INVALIDATE_INTERRUPT_TABLE',
  'PREFETCH_IOMMU_PAGES',
  'COMPLETE_PPR_REQUEST',
  'INVALIDATE_IOMMU_ALL',
];

type WordMasks = readonly [number, number, number, number];
/** Reserved bits by opcode, one mask per word (the table in the file comment). */
const RESERVED: readonly (WordMasks | undefined)[] = [
  undefined,
  [0, 0x0ff0_0000, 0, 0],
  [0xffff_0000, 0x0fff_ffff, 0xffff_ffff, 0xffff_ffff],
  [0xfff0_0000, 0x0fff_0000, 0x0000_0ff8, 0],
  [0, 0, 0x0000_0fca, 0],
  [0xffff_0000, 0x0fff_ffff, 0xffff_ffff, 0xffff_ffff],
  [0x00ff_0000, 0x0ff0_0000, 0x0000_0fea, 0],
  [0xffff_0000, 0x0ff0_0000, 0xffff_fffb, 0xffff_0000],
  [0xffff_ffff, 0x0fff_ffff, 0xffff_ffff, 0xffff_ffff],
];

const TWO_32 = 2 ** 32;
/** Bits 31:12 of word 2: the low half of a page address. */
const PAGE_LOW = 0xffff_f000;
const INVALIDATE_ALL: InvalidateIommuAllCommand = Object.freeze({ op: 'invalidate-iommu-all' });

/** The word offset of the command at `offset`: commands are 16-byte aligned. */
function checkSlot(offset: number, length: number): void {
  if (
    !Number.isInteger(offset) ||
    offset < 0 ||
    offset % COMMAND_WORDS !== 0 ||
    offset + COMMAND_WORDS > length
  )
    throw new RangeError(`command at word ${offset}: needs a multiple of 4 with 4 words`);
}

/** The feature an implemented opcode needs and the unit lacks, as the reason; undefined when runnable. */
function missingFeature(opcode: number, features: CommandFeatures): string | undefined {
  if (opcode === COMMAND_OPCODE.INVALIDATE_IOMMU_ALL && !features.invalidateAll) return 'EFR.IASup';
  if (opcode === COMMAND_OPCODE.COMPLETE_PPR_REQUEST && !features.pageRequests) return 'EFR.PPRSup';
  if (opcode === COMMAND_OPCODE.PREFETCH_IOMMU_PAGES && features.prefetch !== true) return 'EFR.PreFSup';
  if (opcode === COMMAND_OPCODE.INVALIDATE_IOTLB_PAGES && !features.iotlbSupport) return 'IotlbSup';
  return undefined;
}

/** The lowest set bit of `value` (non-zero). */
function lowestBit(value: number): number {
  return 31 - Math.clz32(value & -value);
}

/** The lowest reserved bit set in the command, or -1 (no array, no string: this runs for every command). */
function firstReservedBit(w0: number, w1: number, w2: number, w3: number, reserved: WordMasks): number {
  if ((w0 & reserved[0]) !== 0) return lowestBit(w0 & reserved[0]);
  if ((w1 & reserved[1]) !== 0) return 32 + lowestBit(w1 & reserved[1]);
  if ((w2 & reserved[2]) !== 0) return 64 + lowestBit(w2 & reserved[2]);
  if ((w3 & reserved[3]) !== 0) return 96 + lowestBit(w3 & reserved[3]);
  return -1;
}

function unknownOpcode(opcode: number): IllegalCommand {
  const vIommu = opcode === 0x9 ? ' (INSERT_GUEST_EVENT)' : opcode === 0xa ? ' (RESET_VMMIO)' : '';
  return {
    illegal: vIommu
      ? `opcode 0x${opcode.toString(16)}${vIommu} needs the hardware vIOMMU, which this unit lacks`
      : `opcode 0x${opcode.toString(16)} is not defined`,
  };
}

/** Page address in bits 127:76 (words 2 and 3). */
function pageAddress(w2: number, w3: number): number {
  return w3 * TWO_32 + ((w2 & PAGE_LOW) >>> 0);
}

/**
 * Decodes the command at word `offset` of `words` (the command buffer): the command, or the reason the unit
 * logs ILLEGAL_COMMAND_ERROR for it. Allocates only the returned object.
 */
export function decodeCommand(
  words: ArrayLike<number>,
  offset: number,
  features: CommandFeatures,
): AmdCommand | IllegalCommand {
  checkSlot(offset, words.length);
  const w0 = words[offset]! >>> 0;
  const w1 = words[offset + 1]! >>> 0;
  const w2 = words[offset + 2]! >>> 0;
  const w3 = words[offset + 3]! >>> 0;
  const opcode = w1 >>> 28;
  const reserved = RESERVED[opcode];
  if (reserved === undefined) return unknownOpcode(opcode);
  const feature = missingFeature(opcode, features);
  if (feature !== undefined) return { illegal: `${NAMES[opcode]} needs ${feature}, which this unit lacks` };
  const bit = firstReservedBit(w0, w1, w2, w3, reserved);
  if (bit >= 0) return { illegal: `${NAMES[opcode]}: reserved bit ${bit} is set` };
  const deviceId = w0 & 0xffff;
  const s = (w2 & 1) !== 0;
  const gn = (w2 & 4) !== 0;
  switch (opcode) {
    case COMMAND_OPCODE.COMPLETION_WAIT:
      return {
        op: 'completion-wait',
        store: (w0 & 1) !== 0,
        interrupt: (w0 & 2) !== 0,
        flush: (w0 & 4) !== 0,
        storeAddress: (w1 & 0xf_ffff) * TWO_32 + ((w0 & 0xffff_fff8) >>> 0),
        storeDataLo: w2,
        storeDataHi: w3,
      };
    case COMMAND_OPCODE.INVALIDATE_DEVTAB_ENTRY:
      return { op: 'invalidate-devtab-entry', deviceId };
    case COMMAND_OPCODE.INVALIDATE_IOMMU_PAGES:
      return {
        op: 'invalidate-iommu-pages',
        pasid: w0 & 0xf_ffff,
        domainId: w1 & 0xffff,
        s,
        pde: (w2 & 2) !== 0,
        gn,
        address: pageAddress(w2, w3),
      };
    case COMMAND_OPCODE.INVALIDATE_IOTLB_PAGES:
      return {
        op: 'invalidate-iotlb-pages',
        deviceId,
        maxPend: w0 >>> 24,
        queueId: w1 & 0xffff,
        pasid: (((w1 >>> 24) & 0xf) << 16) | (((w0 >>> 16) & 0xff) << 8) | ((w1 >>> 16) & 0xff),
        s,
        gn,
        type: (w2 >>> 4) & 3,
        address: pageAddress(w2, w3),
      };
    case COMMAND_OPCODE.INVALIDATE_INTERRUPT_TABLE:
      return { op: 'invalidate-interrupt-table', deviceId };
    case COMMAND_OPCODE.PREFETCH_IOMMU_PAGES:
      return {
        op: 'prefetch-iommu-pages',
        deviceId,
        pfCount: w0 >>> 24,
        pasid: w1 & 0xf_ffff,
        s,
        gn,
        invalidate: (w2 & 0x10) !== 0,
        address: pageAddress(w2, w3),
      };
    case COMMAND_OPCODE.COMPLETE_PPR_REQUEST:
      return {
        op: 'complete-ppr-request',
        deviceId,
        pasid: w1 & 0xf_ffff,
        gn,
        tag: w3 & 0x1ff,
        status: (w3 >>> 12) & 0xf,
      };
    default:
      return INVALIDATE_ALL;
  }
}

/** Writes `address` (bits 63:12 of a byte address) into words 2 and 3, keeping word 2's low flags. */
function writePageAddress(out: Uint32Array, at: number, structure: string, address: number): void {
  checkFieldAddress(structure, 'address', address, 76, 127);
  out[at + 2] = (out[at + 2]! | (address >>> 0)) >>> 0;
  out[at + 3] = Math.floor(address / TWO_32);
}

/**
 * Writes `cmd` at word `at` of `out` (the command buffer), zeroing what it does not set: the exact inverse
 * of `decodeCommand`. A value its field cannot hold is `EINVAL` naming the command and the field.
 */
export function encodeCommand(cmd: AmdCommand, out: Uint32Array, at: number): void {
  checkSlot(at, out.length);
  out.fill(0, at, at + COMMAND_WORDS);
  const field = checkFieldValue;
  let opcode: number;
  switch (cmd.op) {
    case 'completion-wait': {
      opcode = COMMAND_OPCODE.COMPLETION_WAIT;
      const name = NAMES[opcode]!;
      const address = checkFieldAddress(name, 'storeAddress', cmd.storeAddress, 3, 51);
      out[at] =
        ((address >>> 0) |
          field(name, 'store', cmd.store, 1) |
          (field(name, 'interrupt', cmd.interrupt, 1) << 1) |
          (field(name, 'flush', cmd.flush, 1) << 2)) >>>
        0;
      out[at + 1] = Math.floor(address / TWO_32);
      out[at + 2] = field(name, 'storeDataLo', cmd.storeDataLo, 32);
      out[at + 3] = field(name, 'storeDataHi', cmd.storeDataHi, 32);
      break;
    }
    case 'invalidate-devtab-entry':
    case 'invalidate-interrupt-table':
      opcode =
        cmd.op === 'invalidate-devtab-entry'
          ? COMMAND_OPCODE.INVALIDATE_DEVTAB_ENTRY
          : COMMAND_OPCODE.INVALIDATE_INTERRUPT_TABLE;
      out[at] = field(NAMES[opcode]!, 'deviceId', cmd.deviceId, 16);
      break;
    case 'invalidate-iommu-pages': {
      opcode = COMMAND_OPCODE.INVALIDATE_IOMMU_PAGES;
      const name = NAMES[opcode]!;
      out[at] = field(name, 'pasid', cmd.pasid, 20);
      out[at + 1] = field(name, 'domainId', cmd.domainId, 16);
      out[at + 2] =
        field(name, 's', cmd.s, 1) |
        (field(name, 'pde', cmd.pde, 1) << 1) |
        (field(name, 'gn', cmd.gn, 1) << 2);
      writePageAddress(out, at, name, cmd.address);
      break;
    }
    case 'invalidate-iotlb-pages': {
      opcode = COMMAND_OPCODE.INVALIDATE_IOTLB_PAGES;
      const name = NAMES[opcode]!;
      const pasid = field(name, 'pasid', cmd.pasid, 20);
      out[at] =
        (field(name, 'deviceId', cmd.deviceId, 16) |
          (((pasid >>> 8) & 0xff) << 16) |
          (field(name, 'maxPend', cmd.maxPend, 8) << 24)) >>>
        0;
      out[at + 1] = field(name, 'queueId', cmd.queueId, 16) | ((pasid & 0xff) << 16) | ((pasid >>> 16) << 24);
      out[at + 2] =
        field(name, 's', cmd.s, 1) |
        (field(name, 'gn', cmd.gn, 1) << 2) |
        (field(name, 'type', cmd.type, 2) << 4);
      writePageAddress(out, at, name, cmd.address);
      break;
    }
    case 'prefetch-iommu-pages': {
      opcode = COMMAND_OPCODE.PREFETCH_IOMMU_PAGES;
      const name = NAMES[opcode]!;
      out[at] =
        (field(name, 'deviceId', cmd.deviceId, 16) | (field(name, 'pfCount', cmd.pfCount, 8) << 24)) >>> 0;
      out[at + 1] = field(name, 'pasid', cmd.pasid, 20);
      out[at + 2] =
        field(name, 's', cmd.s, 1) |
        (field(name, 'gn', cmd.gn, 1) << 2) |
        (field(name, 'invalidate', cmd.invalidate, 1) << 4);
      writePageAddress(out, at, name, cmd.address);
      break;
    }
    case 'complete-ppr-request': {
      opcode = COMMAND_OPCODE.COMPLETE_PPR_REQUEST;
      const name = NAMES[opcode]!;
      out[at] = field(name, 'deviceId', cmd.deviceId, 16);
      out[at + 1] = field(name, 'pasid', cmd.pasid, 20);
      out[at + 2] = field(name, 'gn', cmd.gn, 1) << 2;
      out[at + 3] = field(name, 'tag', cmd.tag, 9) | (field(name, 'status', cmd.status, 4) << 12);
      break;
    }
    case 'invalidate-iommu-all':
      opcode = COMMAND_OPCODE.INVALIDATE_IOMMU_ALL;
      break;
  }
  out[at + 1] = (out[at + 1]! | (opcode << 28)) >>> 0;
}

/**
 * The range an address-based invalidation covers (§2.4.3, Table 14 "Example Page Size Encodings"; the same
 * encoding serves INVALIDATE_IOTLB_PAGES and PREFETCH_IOMMU_PAGES). S = 0: the 4 KiB page at `address`.
 * S = 1: with z the lowest clear address bit at or above 12, 2^(z+1) bytes from `address` with bits z:0
 * cleared; no clear bit up to 62 (Linux's all-pages value 0x7FFF_FFFF_FFFF_F000, or every bit set) is
 * the whole 64-bit space. Sizes are numbers: every one is a power of two up to 2^64, so exact, and every
 * start is a multiple of 4 KiB below 2^64 (at most 52 significant bits), so exact too.
 *
 * QEMU treats z ≥ 51 as "everything"; the formula agrees within the 52-bit host space (z = 51 covers all
 * of it from 0) and keeps 5-level guest ranges (GN) above it distinct.
 */
export function decodeInvalidationRange(address: number, s: boolean): { start: number; size: number } {
  const page = address - (address % 4096);
  if (!s) return { start: page, size: 4096 };
  const hi = Math.floor(page / TWO_32);
  const lo = (page - hi * TWO_32) | 0xfff;
  const z = lo !== -1 ? lowestBit(~lo) : hi !== 0xffff_ffff ? 32 + lowestBit(~hi) : 64;
  if (z >= 63) return { start: 0, size: 2 ** 64 };
  const size = 2 ** (z + 1);
  return { start: page - (page % size), size };
}
