/**
 * The AMD IOMMU's event-log and PPR-log records (AMD I/O Virtualization Technology (IOMMU) Specification,
 * publication 48882 rev 3.x, §2.5 "Event Logging" and the PPR log): 128 bits as four little-endian 32-bit
 * words. The unit encodes them, the driver decodes them; `describeEvent` renders one for traces, in the
 * spirit of Linux's "Event logged [...]" lines.
 *
 * Event layout (absolute bits, 32·word + bit): EventCode 63:60; DeviceID 15:0; a 12-bit flags field 59:48
 * whose bit n is EVENT_FLAG (GN 0, NX 1, US 2, I 3, PR 4, RW 5, PE 6, RZ 7, TR 8) and whose bits 11:9 hold
 * the Type of the hardware-error and invalid-request events; a 64-bit address 127:64. Per event: FreeBSD
 * `amd_reg.h` (ILLEGAL_DEV_TABLE_ENTRY, IO_PAGE_FAULT), VirtualBox `iommu-amd.h` (EVT_*_T, every event but
 * INVALID_PPR_REQUEST), Linux `iommu.c` iommu_print_event and `amd_iommu_types.h` EVENT_* (every event;
 * the only source for INVALID_PPR_REQUEST, which reuses the PPR log's first qword). QEMU `amd_iommu.c`
 * amdvi_encode_event agrees on code, flags and address.
 *
 * Left out, unverified: EVENT_COUNTER_ZERO (FreeBSD 0xA, marked "Typo in table 42?"; VirtualBox 0x10,
 * which a 4-bit code cannot hold; Linux none); the hardware-vIOMMU bits vNR 27, vEvent 29, vPtr 30, vCmd 31
 * (FreeBSD only); RMP events 0xD/0xE (SNP). Such records decode as `unknown`. The address is kept whole:
 * FreeBSD starts ILLEGAL_DEV_TABLE_ENTRY's at bit 66, VirtualBox and Linux read all 64 bits; IOTLB_INV_TIMEOUT
 * holds a 16-byte aligned command address (bits 67:64 reserved, VirtualBox).
 *
 * PPR log entry (Linux PPR_* macros in `amd_iommu_types.h`, read by `ppr.c`): DeviceID 15:0, PASID[15:0]
 * 31:16, Tag 41:32 (bit 9 is last-page-in-group, Linux PPR_TAG_LAST_PAGE; 8:0 the PRG index), PASID[19:16]
 * 45:42, Flags 59:48 (PPR_FLAG), Type 63:60 (1 = page request); the address is the second qword.
 *
 * Addresses are numbers, exact below 2^53 and for any value with at most 53 significant bits (every page
 * address); the decoder rounds others, as any number would.
 */
import {
  checkFieldAddress,
  checkFieldValue,
  entryAddress,
  entryField,
  IommufdError,
  setEntryAddress,
  setEntryField,
} from '@iommukit/core';

export const EVENT_WORDS = 4;
export const EVENT_BYTES = 16;

/** Event codes (§2.5; Linux EVENT_TYPE_*, VirtualBox IOMMU_EVT_*, FreeBSD AMDIOMMU_EV_*). */
export const EVENT_CODE = {
  ILLEGAL_DEV_TABLE_ENTRY: 0x1,
  IO_PAGE_FAULT: 0x2,
  DEV_TAB_HARDWARE_ERROR: 0x3,
  PAGE_TAB_HARDWARE_ERROR: 0x4,
  ILLEGAL_COMMAND_ERROR: 0x5,
  COMMAND_HARDWARE_ERROR: 0x6,
  IOTLB_INV_TIMEOUT: 0x7,
  INVALID_DEVICE_REQUEST: 0x8,
  INVALID_PPR_REQUEST: 0x9,
} as const;

/** Bit n of an event's flags field (bits 59:48); Linux EVENT_FLAG_RW 0x020 and EVENT_FLAG_I 0x008 agree. */
export const EVENT_FLAG = {
  /** Guest (GVA, PASID-tagged) rather than nested/host address. */
  GN: 0x001,
  /** An execute request. */
  NX: 0x002,
  /** A user-mode request. */
  US: 0x004,
  /** An interrupt request rather than a memory request. */
  I: 0x008,
  /** The page was present. */
  PR: 0x010,
  /** A write. */
  RW: 0x020,
  /** Permission denied. */
  PE: 0x040,
  /** A reserved bit was not zero. */
  RZ: 0x080,
  /** A translation request (ATS) rather than a transaction. */
  TR: 0x100,
} as const;

/** Type of the hardware-error events (bits 58:57; VirtualBox HWEVTTYPE, 0 reserved). */
export const HARDWARE_ERROR_TYPE = { MASTER_ABORT: 1, TARGET_ABORT: 2, DATA_ERROR: 3 } as const;

/**
 * The INVALID_DEVICE_REQUEST type whose meaning is attested (bits 59:57 = 101b, flags 0x0A00: a posted write
 * to the interrupt/EOI range from a device whose DTE IntCtl is 00b, quoted from the spec in sharpjs/home
 * `linux/pc/journal.md`); the other values are kept as numbers.
 */
export const INVALID_DEVICE_REQUEST_TYPE = { INTERRUPT_WRITE_WITH_INTCTL_ABORT: 0b101 } as const;

interface DeviceEvent {
  /** Requester ID: bus 15:8, device 7:3, function 2:0. */
  readonly deviceId: number;
}

/** A DTE the unit could not use (reserved bit, bad encoding). */
export interface IllegalDevTableEntryEvent extends DeviceEvent {
  readonly kind: 'illegal-dev-table-entry';
  /** PASID[15:0] at 47:32, PASID[19:16] at 19:16. */
  readonly pasid: number;
  /** GN, I, RW, RZ, TR. */
  readonly flags: number;
  readonly address: number;
}

/** A translation failed. */
export interface IoPageFaultEvent extends DeviceEvent {
  readonly kind: 'io-page-fault';
  /** The PASID with GN, else the DomainID (Linux prints both as "domain"): 47:32 low, 19:16 high. */
  readonly domainOrPasid: number;
  /** Every EVENT_FLAG. */
  readonly flags: number;
  readonly address: number;
}

/** Reading the device table failed. */
export interface DevTabHardwareErrorEvent extends DeviceEvent {
  readonly kind: 'dev-tab-hardware-error';
  /** I, RW, TR. */
  readonly flags: number;
  /** HARDWARE_ERROR_TYPE. */
  readonly type: number;
  readonly address: number;
}

/** Reading a page table failed; `address` is the entry's system physical address. */
export interface PageTabHardwareErrorEvent extends DeviceEvent {
  readonly kind: 'page-tab-hardware-error';
  /** 47:32 only (VirtualBox has 31:16 reserved; Linux prints four hex digits). */
  readonly domainOrPasid: number;
  /** GN, I, RW, TR. */
  readonly flags: number;
  readonly type: number;
  readonly address: number;
}

/** A command was illegal; `address` is its system physical address. */
export interface IllegalCommandErrorEvent {
  readonly kind: 'illegal-command-error';
  readonly address: number;
}

/** Fetching a command or storing a completion failed. */
export interface CommandHardwareErrorEvent {
  readonly kind: 'command-hardware-error';
  readonly type: number;
  readonly address: number;
}

/** A device did not answer an INVALIDATE_IOTLB_PAGES; `address` is the command's (16-byte aligned). */
export interface IotlbInvTimeoutEvent extends DeviceEvent {
  readonly kind: 'iotlb-inv-timeout';
  readonly address: number;
}

/** A device made a request it may not make. */
export interface InvalidDeviceRequestEvent extends DeviceEvent {
  readonly kind: 'invalid-device-request';
  readonly pasid: number;
  /** GN, US, TR. */
  readonly flags: number;
  /** Bits 59:57 (INVALID_DEVICE_REQUEST_TYPE). */
  readonly type: number;
  readonly address: number;
}

/** A page request the unit could not log; laid out as the PPR log's first qword (Linux only). */
export interface InvalidPprRequestEvent extends DeviceEvent {
  readonly kind: 'invalid-ppr-request';
  /** PASID[15:0] at 31:16, PASID[19:16] at 45:42. */
  readonly pasid: number;
  /** Bits 41:32, as the PPR log's tag. */
  readonly tag: number;
  /** The whole 12-bit field, as logged. */
  readonly flags: number;
  readonly address: number;
}

export type AmdEvent =
  | IllegalDevTableEntryEvent
  | IoPageFaultEvent
  | DevTabHardwareErrorEvent
  | PageTabHardwareErrorEvent
  | IllegalCommandErrorEvent
  | CommandHardwareErrorEvent
  | IotlbInvTimeoutEvent
  | InvalidDeviceRequestEvent
  | InvalidPprRequestEvent;

/** A record with a code this model does not define (0: not yet written, Linux's erratum retry). */
export interface UnknownEvent {
  readonly kind: 'unknown';
  readonly code: number;
  readonly words: readonly number[];
}

type Piece = readonly [lsb: number, width: number];
type EventOf<K extends AmdEvent['kind']> = Extract<AmdEvent, { kind: K }>;

interface Layout<K extends AmdEvent['kind']> {
  readonly code: number;
  /** The spec's name, for messages and traces. */
  readonly name: string;
  /** Scalar fields, pieces low first. */
  readonly fields: { readonly [F in Exclude<keyof EventOf<K>, 'kind' | 'address'>]-?: readonly Piece[] };
  /** The flag bits the event defines. */
  readonly flagMask: number;
  /** The address's lowest bit (64, or 68 for a 16-byte aligned one). */
  readonly addressLsb: number;
}

const DEVICE_ID: readonly Piece[] = [[0, 16]];
const PASID: readonly Piece[] = [
  [32, 16],
  [16, 4],
];
const PPR_PASID: readonly Piece[] = [
  [16, 16],
  [42, 4],
];
const FLAGS: readonly Piece[] = [[48, 9]];
const HW_TYPE: readonly Piece[] = [[57, 2]];
const { GN, NX, US, I, PR, RW, PE, RZ, TR } = EVENT_FLAG;

const LAYOUTS: { readonly [K in AmdEvent['kind']]: Layout<K> } = {
  'illegal-dev-table-entry': {
    code: EVENT_CODE.ILLEGAL_DEV_TABLE_ENTRY,
    name: 'ILLEGAL_DEV_TABLE_ENTRY',
    fields: { deviceId: DEVICE_ID, pasid: PASID, flags: FLAGS },
    flagMask: GN | I | RW | RZ | TR,
    addressLsb: 64,
  },
  'io-page-fault': {
    code: EVENT_CODE.IO_PAGE_FAULT,
    name: 'IO_PAGE_FAULT',
    fields: { deviceId: DEVICE_ID, domainOrPasid: PASID, flags: FLAGS },
    flagMask: GN | NX | US | I | PR | RW | PE | RZ | TR,
    addressLsb: 64,
  },
  'dev-tab-hardware-error': {
    code: EVENT_CODE.DEV_TAB_HARDWARE_ERROR,
    name: 'DEV_TAB_HARDWARE_ERROR',
    fields: { deviceId: DEVICE_ID, flags: FLAGS, type: HW_TYPE },
    flagMask: I | RW | TR,
    addressLsb: 64,
  },
  'page-tab-hardware-error': {
    code: EVENT_CODE.PAGE_TAB_HARDWARE_ERROR,
    name: 'PAGE_TAB_HARDWARE_ERROR',
    fields: { deviceId: DEVICE_ID, domainOrPasid: [[32, 16]], flags: FLAGS, type: HW_TYPE },
    flagMask: GN | I | RW | TR,
    addressLsb: 64,
  },
  'illegal-command-error': {
    code: EVENT_CODE.ILLEGAL_COMMAND_ERROR,
    name: 'ILLEGAL_COMMAND_ERROR',
    fields: {},
    flagMask: 0,
    addressLsb: 64,
  },
  'command-hardware-error': {
    code: EVENT_CODE.COMMAND_HARDWARE_ERROR,
    name: 'COMMAND_HARDWARE_ERROR',
    fields: { type: HW_TYPE },
    flagMask: 0,
    addressLsb: 64,
  },
  'iotlb-inv-timeout': {
    code: EVENT_CODE.IOTLB_INV_TIMEOUT,
    name: 'IOTLB_INV_TIMEOUT',
    fields: { deviceId: DEVICE_ID },
    flagMask: 0,
    addressLsb: 68,
  },
  'invalid-device-request': {
    code: EVENT_CODE.INVALID_DEVICE_REQUEST,
    name: 'INVALID_DEVICE_REQUEST',
    fields: { deviceId: DEVICE_ID, pasid: PASID, flags: FLAGS, type: [[57, 3]] },
    flagMask: GN | US | TR,
    addressLsb: 64,
  },
  'invalid-ppr-request': {
    code: EVENT_CODE.INVALID_PPR_REQUEST,
    name: 'INVALID_PPR_REQUEST',
    fields: { deviceId: DEVICE_ID, pasid: PPR_PASID, tag: [[32, 10]], flags: [[48, 12]] },
    flagMask: 0xfff,
    addressLsb: 64,
  },
};

type AnyLayout = Layout<AmdEvent['kind']> & { readonly fields: Readonly<Record<string, readonly Piece[]>> };
const KINDS = Object.keys(LAYOUTS) as AmdEvent['kind'][];
/** Kind by event code. */
const BY_CODE: readonly (AmdEvent['kind'] | undefined)[] = Array.from({ length: 16 }, (_, code) =>
  KINDS.find((kind) => LAYOUTS[kind].code === code),
);
const layoutOf = (kind: AmdEvent['kind']) => LAYOUTS[kind] as AnyLayout;

/** The bit offset of the record at word `at`; records are 16-byte aligned. */
function bitBase(at: number, length: number, what: string): number {
  if (!Number.isInteger(at) || at < 0 || at % EVENT_WORDS !== 0 || at + EVENT_WORDS > length)
    throw new RangeError(`${what} at word ${at}: needs a multiple of 4 with 4 words`);
  return 32 * at;
}

function readPieces(words: ArrayLike<number>, base: number, pieces: readonly Piece[]): number {
  let value = 0;
  let shift = 0;
  for (const [lsb, width] of pieces) {
    value += entryField(words, base + lsb, width) * 2 ** shift;
    shift += width;
  }
  return value;
}

/** Writes `raw` (checked against the pieces' total width) into its pieces. */
function writePieces(
  out: Uint32Array,
  base: number,
  pieces: readonly Piece[],
  raw: unknown,
  structure: string,
  field: string,
): void {
  let rest = checkFieldValue(
    structure,
    field,
    raw,
    pieces.reduce((sum, [, width]) => sum + width, 0),
  );
  for (const [lsb, width] of pieces) {
    setEntryField(out, base + lsb, width, rest % 2 ** width);
    rest = Math.floor(rest / 2 ** width);
  }
}

/**
 * Decodes the event record at word `at` (what the driver reads; hardware-written, so nothing is refused):
 * flags keep only the bits the event defines.
 */
export function decodeEvent(words: ArrayLike<number>, at: number): AmdEvent | UnknownEvent {
  const base = bitBase(at, words.length, 'event');
  const code = entryField(words, base + 60, 4);
  const kind = BY_CODE[code];
  if (kind === undefined)
    return {
      kind: 'unknown',
      code,
      words: Array.from({ length: EVENT_WORDS }, (_, i) => words[at + i]! >>> 0),
    };
  const layout = layoutOf(kind);
  const out: Record<string, unknown> = { kind };
  for (const [field, pieces] of Object.entries(layout.fields))
    out[field] =
      field === 'flags' ? readPieces(words, base, pieces) & layout.flagMask : readPieces(words, base, pieces);
  out.address = entryAddress(words, base + layout.addressLsb, base + 127);
  return out as unknown as AmdEvent;
}

/**
 * Writes `event` at word `at` of `out` (what the unit does before advancing the event-log tail), zeroing
 * the rest. `EINVAL` naming the event and field for a value its field cannot hold, a flag the event does
 * not define, or an address its field cannot hold.
 */
export function encodeEvent(event: AmdEvent, out: Uint32Array, at: number): void {
  const base = bitBase(at, out.length, 'event');
  const layout = layoutOf(event.kind);
  out.fill(0, at, at + EVENT_WORDS);
  const fields = event as unknown as Readonly<Record<string, unknown>>;
  for (const [field, pieces] of Object.entries(layout.fields)) {
    const raw = fields[field];
    if (field === 'flags' && typeof raw === 'number' && (raw & ~layout.flagMask) !== 0)
      throw new IommufdError(
        'EINVAL',
        `${layout.name}.flags = 0x${raw.toString(16)} sets flags the event does not define`,
        { structure: layout.name, field },
      );
    writePieces(out, base, pieces, raw, layout.name, field);
  }
  setEntryField(out, base + 60, 4, layout.code);
  const address = checkFieldAddress(layout.name, 'address', event.address, layout.addressLsb, 127);
  setEntryAddress(out, base + layout.addressLsb, base + 127, address);
}

/** PPR log entry types (bits 63:60; Linux PPR_REQ_FAULT). */
export const PPR_LOG_TYPE = { PAGE_REQUEST: 0x1 } as const;

/** PPR log flags (bits 59:48; Linux PPR_FLAG_*). */
export const PPR_FLAG = {
  /** Execute permission requested. */
  EXEC: 0x002,
  READ: 0x004,
  WRITE: 0x020,
  /** User (1) or supervisor (0) request. */
  US: 0x040,
  /** A reserved bit of the request was not zero. */
  RVSD: 0x080,
  /** The PASID (and a guest virtual address) is valid. */
  GN: 0x100,
} as const;

/** Tag bit 9: the last request of its page request group (Linux PPR_TAG_LAST_PAGE). */
export const PPR_TAG_LAST_PAGE = 0x200;

/** One PPR log entry: a device's page request (PCIe PRI) that software must answer with COMPLETE_PPR_REQUEST. */
export interface PprLogEntry {
  /** PPR_LOG_TYPE. */
  readonly type: number;
  readonly deviceId: number;
  readonly pasid: number;
  /** Bits 41:32: the PRG index in 8:0, PPR_TAG_LAST_PAGE in 9. */
  readonly tag: number;
  /** PPR_FLAG bits. */
  readonly flags: number;
  /** The second qword: the requested address. */
  readonly address: number;
}

const PPR_FIELDS: Readonly<Record<Exclude<keyof PprLogEntry, 'address'>, readonly Piece[]>> = {
  type: [[60, 4]],
  deviceId: DEVICE_ID,
  pasid: PPR_PASID,
  tag: [[32, 10]],
  flags: [[48, 12]],
};

/** Decodes the PPR log entry at word `at` (hardware-written, so nothing is refused). */
export function decodePprLogEntry(words: ArrayLike<number>, at: number): PprLogEntry {
  const base = bitBase(at, words.length, 'PPR log entry');
  return {
    type: readPieces(words, base, PPR_FIELDS.type),
    deviceId: readPieces(words, base, PPR_FIELDS.deviceId),
    pasid: readPieces(words, base, PPR_FIELDS.pasid),
    tag: readPieces(words, base, PPR_FIELDS.tag),
    flags: readPieces(words, base, PPR_FIELDS.flags),
    address: entryAddress(words, base + 64, base + 127),
  };
}

/** Writes a PPR log entry at word `at` of `out`; `EINVAL` naming the field for a value it cannot hold. */
export function encodePprLogEntry(entry: PprLogEntry, out: Uint32Array, at: number): void {
  const base = bitBase(at, out.length, 'PPR log entry');
  out.fill(0, at, at + EVENT_WORDS);
  const fields = entry as unknown as Readonly<Record<string, unknown>>;
  for (const [field, pieces] of Object.entries(PPR_FIELDS))
    writePieces(out, base, pieces, fields[field], 'PPR_LOG_ENTRY', field);
  const address = checkFieldAddress('PPR_LOG_ENTRY', 'address', entry.address, 64, 127);
  setEntryAddress(out, base + 64, base + 127, address);
}

const hex = (value: number, digits = 0) => `0x${value.toString(16).padStart(digits, '0')}`;
const two = (value: number) => value.toString(16).padStart(2, '0');

/** bus:device.function of a DeviceID, as lspci prints it. */
function bdf(deviceId: number): string {
  return `${two(deviceId >>> 8)}:${two((deviceId >>> 3) & 0x1f)}.${deviceId & 7}`;
}

/** The flags field as logged: the flag bits with the type in 11:9. */
function flagsField(flags: number, type = 0): string {
  return `flags=${hex(flags | (type << 9), 4)}`;
}

const HARDWARE_ERROR_NAMES: readonly string[] = ['reserved', 'master-abort', 'target-abort', 'data-error'];

/**
 * One line for a trace: the event's spec name and its fields, e.g.
 * `IO_PAGE_FAULT device=00:02.0 domain=0x0005 address=0x1000 flags=0x0020`.
 */
export function describeEvent(event: AmdEvent | UnknownEvent): string {
  if (event.kind === 'unknown')
    return `UNKNOWN event code=${hex(event.code)} words=${event.words.map((w) => hex(w, 8)).join(' ')}`;
  const name = layoutOf(event.kind).name;
  const address = `address=${hex(event.address)}`;
  switch (event.kind) {
    case 'illegal-dev-table-entry':
    case 'invalid-device-request': {
      const type = event.kind === 'invalid-device-request' ? event.type : 0;
      return `${name} device=${bdf(event.deviceId)} pasid=${hex(event.pasid, 5)} ${address} ${flagsField(event.flags, type)}`;
    }
    case 'io-page-fault':
    case 'page-tab-hardware-error': {
      const id =
        (event.flags & GN) !== 0
          ? `pasid=${hex(event.domainOrPasid, 5)}`
          : `domain=${hex(event.domainOrPasid, 4)}`;
      const type = event.kind === 'page-tab-hardware-error' ? event.type : 0;
      const suffix = event.kind === 'page-tab-hardware-error' ? ` ${HARDWARE_ERROR_NAMES[event.type]}` : '';
      return `${name} device=${bdf(event.deviceId)} ${id} ${address} ${flagsField(event.flags, type)}${suffix}`;
    }
    case 'dev-tab-hardware-error':
      return `${name} device=${bdf(event.deviceId)} ${address} ${flagsField(event.flags, event.type)} ${HARDWARE_ERROR_NAMES[event.type]}`;
    case 'illegal-command-error':
      return `${name} ${address}`;
    case 'command-hardware-error':
      return `${name} ${address} ${flagsField(0, event.type)} ${HARDWARE_ERROR_NAMES[event.type]}`;
    case 'iotlb-inv-timeout':
      return `${name} device=${bdf(event.deviceId)} ${address}`;
    case 'invalid-ppr-request':
      return `${name} device=${bdf(event.deviceId)} pasid=${hex(event.pasid, 5)} ${address} ${flagsField(event.flags)} tag=${hex(event.tag, 3)}`;
  }
}
