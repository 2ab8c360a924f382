/**
 * Event records (SMMUv3 §7.3): what the SMMU writes to the Event queue when a transaction faults or a
 * structure is bad. A record is 32 bytes, eight little-endian words; bits [7:0] hold the event ID and
 * StreamID is bits [63:32] in every record. Each event type carries only the fields its spec figure gives
 * it (`EVENT_FIELDS`): `encodeEvent` refuses a non-zero field the type does not have, `decodeEvent`
 * returns only the type's fields.
 *
 * Field positions (absolute bits): SSV 11, SubstreamID [31:12], StreamID [63:32], STAG [79:64] (stall
 * faults) or Reason [79:64] (IMPLEMENTATION DEFINED; F_UUT, F_STE_FETCH, F_CD_FETCH, F_WALK_EABT,
 * F_TLB_CONFLICT, F_CFG_CONFLICT, F_VMS_FETCH), Stall 95, PnU 97, InD 98, RnW 99, NSIPA 102, S2 103,
 * CLASS [105:104], TTRnW 108 (F_PERMISSION), InputAddr [191:128], IPA[55:12] at [247:204],
 * FetchAddr[55:3] at [247:195]. E_PAGE_REQUEST: uX 97, uW 98, uR 99, pX 101, pW 102, pR 103, Span
 * [115:108], InputAddr[63:12] at [191:140].
 *
 * Not modelled: GPCF (RME), the F_PERMISSION Overlay/AssuredOnly/DirtyBit flags (no S2PO/S1PI/S2PI), and
 * F_BAD_ATS_TREQ's R/W/X/PRIV/Span request fields (their positions are not in the spec text this model
 * was checked against; the record carries StreamID, SubstreamID and InputAddr). The Reason position of
 * F_CD_FETCH, F_WALK_EABT and F_TLB_CONFLICT is taken from the figures of the other fetch/conflict events.
 *
 * InputAddr is 64 bits, so it is carried as a 4 KiB page number and a 12-bit offset (both exact).
 */
import {
  checkFieldAddress,
  checkFieldValue,
  entryAddress,
  entryField,
  type FaultKind,
  IommufdError,
  setEntryAddress,
  setEntryField,
} from '@iommukit/core';

export const EVENT_WORDS = 8;
export const EVENT_BYTES = 32;

/** Event numbers (§7.3). 0xE0–0xEF are IMPLEMENTATION DEFINED; everything else is reserved. */
export const EVENT_ID = {
  F_UUT: 0x01,
  C_BAD_STREAMID: 0x02,
  F_STE_FETCH: 0x03,
  C_BAD_STE: 0x04,
  F_BAD_ATS_TREQ: 0x05,
  F_STREAM_DISABLED: 0x06,
  F_TRANSL_FORBIDDEN: 0x07,
  C_BAD_SUBSTREAMID: 0x08,
  F_CD_FETCH: 0x09,
  C_BAD_CD: 0x0a,
  F_WALK_EABT: 0x0b,
  F_TRANSLATION: 0x10,
  F_ADDR_SIZE: 0x11,
  F_ACCESS: 0x12,
  F_PERMISSION: 0x13,
  F_TLB_CONFLICT: 0x20,
  F_CFG_CONFLICT: 0x21,
  E_PAGE_REQUEST: 0x24,
  F_VMS_FETCH: 0x25,
} as const;

export type EventName = keyof typeof EVENT_ID;

/** The vendor-neutral class of each event (what the core's `IommuFault.kind` says). */
export const EVENT_FAULT_KIND: Readonly<Record<EventName, FaultKind>> = {
  F_UUT: 'bad-config',
  C_BAD_STREAMID: 'bad-stream',
  F_STE_FETCH: 'walk-abort',
  C_BAD_STE: 'bad-config',
  F_BAD_ATS_TREQ: 'ats-disabled',
  F_STREAM_DISABLED: 'config-abort',
  F_TRANSL_FORBIDDEN: 'permission',
  C_BAD_SUBSTREAMID: 'bad-pasid',
  F_CD_FETCH: 'walk-abort',
  C_BAD_CD: 'bad-config',
  F_WALK_EABT: 'walk-abort',
  F_TRANSLATION: 'translation',
  F_ADDR_SIZE: 'address-size',
  F_ACCESS: 'access-flag',
  F_PERMISSION: 'permission',
  F_TLB_CONFLICT: 'bad-config',
  F_CFG_CONFLICT: 'bad-config',
  E_PAGE_REQUEST: 'translation',
  F_VMS_FETCH: 'walk-abort',
};

/** CLASS (§7.3): what the faulting access was doing. 0b11 is reserved. */
export const EVENT_CLASS = { CD: 0b00, TT: 0b01, IN: 0b10 } as const;

/** A decoded event record. `id` and `streamId` are always present; the rest depend on the event type. */
export interface EventRecord {
  readonly id: number;
  readonly streamId: number;
  readonly ssv?: boolean;
  readonly substreamId?: number;
  readonly stag?: number;
  readonly reason?: number;
  readonly stall?: boolean;
  readonly pnu?: boolean;
  readonly ind?: boolean;
  readonly rnw?: boolean;
  readonly nsipa?: boolean;
  readonly s2?: boolean;
  readonly class?: number;
  /** F_PERMISSION with CLASS == TT: the descriptor access that faulted was a read (1) or a write (0). */
  readonly ttRnW?: boolean;
  /** InputAddr[63:12]. */
  readonly inputAddrPage?: number;
  /** InputAddr[11:0]. */
  readonly inputAddrOffset?: number;
  /** IPA[55:12], as a byte address (stage 2 faults). */
  readonly ipa?: number;
  /** FetchAddr[55:3], as a byte address. */
  readonly fetchAddr?: number;
  // E_PAGE_REQUEST
  readonly span?: number;
  readonly pR?: boolean;
  readonly pW?: boolean;
  readonly pX?: boolean;
  readonly uR?: boolean;
  readonly uW?: boolean;
  readonly uX?: boolean;
}

export type EventField = Exclude<keyof EventRecord, 'id' | 'streamId'>;

type Kind = 'bool' | 'uint' | 'page' | 'addr';
const LAYOUT: Readonly<Record<EventField, readonly [lsb: number, width: number, kind: Kind]>> = {
  ssv: [11, 1, 'bool'],
  substreamId: [12, 20, 'uint'],
  stag: [64, 16, 'uint'],
  reason: [64, 16, 'uint'],
  stall: [95, 1, 'bool'],
  pnu: [97, 1, 'bool'],
  ind: [98, 1, 'bool'],
  rnw: [99, 1, 'bool'],
  nsipa: [102, 1, 'bool'],
  s2: [103, 1, 'bool'],
  class: [104, 2, 'uint'],
  ttRnW: [108, 1, 'bool'],
  inputAddrPage: [140, 52, 'page'],
  inputAddrOffset: [128, 12, 'uint'],
  ipa: [204, 44, 'addr'],
  fetchAddr: [195, 53, 'addr'],
  span: [108, 8, 'uint'],
  uX: [97, 1, 'bool'],
  uW: [98, 1, 'bool'],
  uR: [99, 1, 'bool'],
  pX: [101, 1, 'bool'],
  pW: [102, 1, 'bool'],
  pR: [103, 1, 'bool'],
};

const SSID = ['ssv', 'substreamId'] as const;
const ATTRS = ['rnw', 'ind', 'pnu'] as const;
const INPUT = ['inputAddrPage', 'inputAddrOffset'] as const;
const TRANSLATION_FAULT = [
  ...SSID,
  'stag',
  'stall',
  ...ATTRS,
  'nsipa',
  's2',
  'class',
  ...INPUT,
  'ipa',
] as const;

/** The fields each event type has, besides ID and StreamID (§7.3.2–7.3.20). */
export const EVENT_FIELDS: Readonly<Record<EventName, readonly EventField[]>> = {
  F_UUT: [...SSID, 'reason', ...ATTRS, ...INPUT],
  C_BAD_STREAMID: [...SSID],
  F_STE_FETCH: [...SSID, 'reason', 'fetchAddr'],
  C_BAD_STE: [...SSID],
  F_BAD_ATS_TREQ: [...SSID, ...INPUT],
  F_STREAM_DISABLED: [],
  F_TRANSL_FORBIDDEN: ['rnw', ...INPUT],
  // Always valid here: the record has no SSV (§7.3.9).
  C_BAD_SUBSTREAMID: ['substreamId'],
  F_CD_FETCH: [...SSID, 'reason', 'fetchAddr'],
  C_BAD_CD: [...SSID],
  F_WALK_EABT: [...SSID, 'reason', ...ATTRS, 's2', 'class', ...INPUT, 'fetchAddr'],
  F_TRANSLATION: TRANSLATION_FAULT,
  F_ADDR_SIZE: TRANSLATION_FAULT,
  F_ACCESS: TRANSLATION_FAULT,
  F_PERMISSION: [...TRANSLATION_FAULT, 'ttRnW'],
  F_TLB_CONFLICT: [...SSID, 'reason', ...ATTRS, 's2', ...INPUT, 'ipa'],
  F_CFG_CONFLICT: [...SSID, 'reason'],
  E_PAGE_REQUEST: [...SSID, 'span', 'pR', 'pW', 'pX', 'uR', 'uW', 'uX', 'inputAddrPage'],
  F_VMS_FETCH: [...SSID, 'reason', 'fetchAddr'],
};

/** Events whose record says which stage faulted: its S2 field (§7.3.12–7.3.16). */
export const STAGE_EVENTS: ReadonlySet<string> = new Set(
  (Object.keys(EVENT_FIELDS) as EventName[]).filter((name) => EVENT_FIELDS[name].includes('s2')),
);

const NAME_BY_ID: ReadonlyMap<number, EventName> = new Map(
  (Object.entries(EVENT_ID) as [EventName, number][]).map(([name, id]) => [id, name]),
);

/** The spec name of an event ID, or `undefined` for a reserved or IMPLEMENTATION DEFINED one. */
export function eventName(id: number): EventName | undefined {
  return NAME_BY_ID.get(id);
}

function fieldsOf(id: number): readonly EventField[] {
  const name = NAME_BY_ID.get(id);
  return name === undefined ? [] : EVENT_FIELDS[name];
}

/**
 * Encodes an event record. `EINVAL` naming the field for a value it cannot hold, or a non-zero field the
 * event type does not have. Unknown IDs (IMPLEMENTATION DEFINED) carry only the StreamID.
 */
export function encodeEvent(record: EventRecord): Uint32Array {
  const words = new Uint32Array(EVENT_WORDS);
  const id = checkFieldValue('event', 'id', record.id, 8);
  setEntryField(words, 0, 8, id);
  setEntryField(words, 32, 32, checkFieldValue('event', 'streamId', record.streamId, 32));
  const allowed = fieldsOf(id);
  const what = eventName(id) ?? `event 0x${id.toString(16)}`;
  for (const key of Object.keys(LAYOUT) as EventField[]) {
    const raw = record[key];
    if (raw === undefined) continue;
    if (!allowed.includes(key)) {
      if (raw !== 0 && raw !== false)
        throw new IommufdError('EINVAL', `${what} has no ${key} field`, { structure: what, field: key });
      continue;
    }
    const [lsb, width, kind] = LAYOUT[key];
    if (kind === 'addr') {
      const msb = lsb + width - 1;
      setEntryAddress(words, lsb, msb, checkFieldAddress(what, key, raw, lsb, msb));
      continue;
    }
    const value = checkFieldValue(what, key, raw, width);
    if (kind === 'page') {
      setEntryField(words, lsb, 32, value % 2 ** 32);
      setEntryField(words, lsb + 32, width - 32, Math.floor(value / 2 ** 32));
    } else {
      setEntryField(words, lsb, width, value);
    }
  }
  return words;
}

/** Decodes an event record; the result holds the event type's fields only. */
export function decodeEvent(words: ArrayLike<number>): EventRecord {
  const out: Record<string, number | boolean> = {
    id: entryField(words, 0, 8),
    streamId: entryField(words, 32, 32),
  };
  for (const key of fieldsOf(out.id as number)) {
    const [lsb, width, kind] = LAYOUT[key];
    if (kind === 'bool') out[key] = entryField(words, lsb, 1) === 1;
    else if (kind === 'uint') out[key] = entryField(words, lsb, width);
    else if (kind === 'page')
      out[key] = entryField(words, lsb, 32) + entryField(words, lsb + 32, width - 32) * 2 ** 32;
    else out[key] = entryAddress(words, lsb, lsb + width - 1);
  }
  return out as unknown as EventRecord;
}
