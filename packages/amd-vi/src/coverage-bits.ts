/**
 * Where each field of the AMD-Vi registers, structures, commands and log records sits, found from the code:
 * every field encoded alone through its codec (or its layout, or the regs.ts constant naming it), read back
 * as the bits it set. The coverage page (coverage-doc.ts) and its drift tests take positions from here,
 * never from a table.
 */
import { allOnes, type BitRun, bitRuns, fieldBits, probedFieldBits, writeScalars } from '@iommukit/core';
import type {
  CommandFieldName,
  CommandName,
  CommandOf,
  ControlBitName,
  EventFieldName,
  EventName,
  EventOf,
  StatusBitName,
} from './coverage.js';
import {
  CAPABILITY_HEADER_LAYOUT,
  decodeCapabilityHeader,
  decodeEfr,
  decodeEfr2,
  EFR_LAYOUT,
  EFR2_LAYOUT,
} from './hw/capabilities.js';
import {
  type AmdCommand,
  COMMAND_OPCODE,
  COMMAND_WORDS,
  type CommandFeatures,
  decodeCommand,
  encodeCommand,
} from './hw/commands.js';
import { DTE_WORDS, decodeDte, encodeDte } from './hw/dte.js';
import {
  type AmdEvent,
  decodeEvent,
  decodePprLogEntry,
  EVENT_CODE,
  EVENT_WORDS,
  encodeEvent,
  encodePprLogEntry,
  type PprLogEntry,
} from './hw/events.js';
import type { AmdFeatures } from './hw/features.js';
import { decodeGcr3Entry, encodeGcr3Entry, GCR3_ENTRY_WORDS } from './hw/gcr3.js';
import { decodeIrte32, decodeIrte128, encodeIrte32, encodeIrte128, IRTE128_WORDS } from './hw/irte.js';
import { type AmdOptions, AmdOptionsSchema, featuresFromOptions } from './hw/options.js';
import * as regs from './hw/regs.js';

/** The options every key of which is at its default, and the features they describe. */
export function defaultAmdOptions(): AmdOptions {
  return AmdOptionsSchema.parse({});
}

export function defaultAmdFeatures(): AmdFeatures {
  return featuresFromOptions(defaultAmdOptions());
}

/** The command features of the default unit, with PreFSup too so PREFETCH_IOMMU_PAGES decodes. */
export function commandFeatures(prefetch = true): CommandFeatures {
  return { ...defaultAmdFeatures(), prefetch };
}

const words = (count: number, write: (w: Uint32Array) => void): Uint32Array => {
  const w = new Uint32Array(count);
  write(w);
  return w;
};

// ---------------------------------------------------------------------------------------------------------
// Control and Status bits: the regs.ts constants, a mask (one bit) or a RegField (lsb, width).

const constants = regs as unknown as Readonly<Record<string, number | regs.RegField>>;

/** The bits one regs.ts constant names; `CTRL_HI_*` constants are bits of the high half (63:32). */
function constantBits(name: string): BitRun[] {
  const value = constants[name]!;
  const hi = name.startsWith('CTRL_HI_');
  const lo = typeof value === 'number' ? value : regs.fieldMask(value);
  return bitRuns(hi ? [0, lo >>> 0] : [lo >>> 0, 0]);
}

export const controlBitNames = (): ControlBitName[] =>
  Object.keys(regs).filter((k) => k.startsWith('CTRL_')) as ControlBitName[];
export const statusBitNames = (): StatusBitName[] =>
  Object.keys(regs).filter((k) => k.startsWith('STATUS_')) as StatusBitName[];

export const controlFieldBits = (): Record<ControlBitName, BitRun[]> =>
  Object.fromEntries(controlBitNames().map((n) => [n, constantBits(n)])) as Record<ControlBitName, BitRun[]>;
export const statusFieldBits = (): Record<StatusBitName, BitRun[]> =>
  Object.fromEntries(statusBitNames().map((n) => [n, constantBits(n)])) as Record<StatusBitName, BitRun[]>;

// ---------------------------------------------------------------------------------------------------------
// Capability registers and structures, each from its own codec.

export const efrFieldBits = () =>
  fieldBits(decodeEfr(0xffff_ffff, 0xffff_ffff), (f) =>
    words(2, (w) => writeScalars(w, EFR_LAYOUT, f, 'EFR')),
  );
export const efr2FieldBits = () =>
  fieldBits(decodeEfr2(0xffff_ffff, 0xffff_ffff), (f) =>
    words(2, (w) => writeScalars(w, EFR2_LAYOUT, f, 'EFR2')),
  );
export const capabilityHeaderFieldBits = () =>
  fieldBits(decodeCapabilityHeader(0xffff_ffff), (f) =>
    words(1, (w) => writeScalars(w, CAPABILITY_HEADER_LAYOUT, f, 'capability header')),
  );
export const dteFieldBits = () => fieldBits(decodeDte(allOnes(DTE_WORDS)), encodeDte);
export const gcr3EntryFieldBits = () =>
  fieldBits(decodeGcr3Entry(allOnes(GCR3_ENTRY_WORDS)), encodeGcr3Entry);

/** The 32-bit IRTE's fields (GuestMode is reserved in this format, so not among them). */
export function irte32FieldBits(): Record<string, BitRun[]> {
  const { guestMode: _g, reserved: _r, ...largest } = decodeIrte32(0xffff_ffff);
  return fieldBits(largest, (f) => Uint32Array.of(encodeIrte32(f)));
}

/** The fields of one 128-bit format, GuestMode included: the bit telling the two formats apart. */
export function irte128FieldBits(vapic: boolean): Record<string, BitRun[]> {
  // All ones but GuestMode for the remapped format.
  const ones = allOnes(IRTE128_WORDS);
  if (!vapic) ones[0] = (ones[0]! & ~(1 << 7)) >>> 0;
  const { guestMode: _g, reserved: _r, ...largest } = decodeIrte128(ones, true);
  const encode = (f: object) =>
    encodeIrte128({ ...f, guestMode: vapic } as Parameters<typeof encodeIrte128>[0]);
  const mode = bitRuns(Array.from(encodeIrte128({ guestMode: true }), (w, i) => w ^ encodeIrte128({})[i]!));
  return { ...fieldBits(largest, encode), guestMode: mode };
}

// ---------------------------------------------------------------------------------------------------------
// Commands, events and the PPR log entry: every field probed through the encoder, since addresses are
// wider than one number can fill.

/** `INVALIDATE_IOMMU_PAGES` → `invalidate-iommu-pages`. */
const kebab = (name: string) => name.toLowerCase().replaceAll('_', '-');

/** A command of type `name` with every field 0, decoded: the base the probes vary one field of. */
export function sampleCommand<K extends CommandName>(name: K): CommandOf<K> {
  const w = new Uint32Array(COMMAND_WORDS);
  w[1] = COMMAND_OPCODE[name] << 28;
  const decoded = decodeCommand(w, 0, commandFeatures());
  if ('illegal' in decoded) throw new Error(`${name}: ${decoded.illegal}`);
  if (decoded.op !== kebab(name)) throw new Error(`${name} decodes as ${decoded.op}`);
  return decoded as CommandOf<K>;
}

/** Encodes a command of type `name` with `fields` over the all-zero sample. */
export function encodeCommandWords(name: CommandName, fields: object): Uint32Array {
  return words(COMMAND_WORDS, (w) =>
    encodeCommand({ ...sampleCommand(name), ...fields } as AmdCommand, w, 0),
  );
}

export function commandFieldBits<K extends CommandName>(name: K): Record<CommandFieldName<K>, BitRun[]> {
  const { op: _op, ...sample } = sampleCommand(name) as unknown as { op: string } & Record<string, unknown>;
  return probedFieldBits(sample, (f) => encodeCommandWords(name, f)) as Record<CommandFieldName<K>, BitRun[]>;
}

/** The bits every command has its opcode in: those some opcode sets. */
export function commandOpcodeBits(): BitRun[] {
  let high = 0;
  for (const opcode of Object.values(COMMAND_OPCODE)) high |= opcode << 28;
  return bitRuns([0, high >>> 0]);
}

/** An event of type `name` with every field 0, decoded. */
export function sampleEvent<K extends EventName>(name: K): EventOf<K> {
  const w = new Uint32Array(EVENT_WORDS);
  w[1] = EVENT_CODE[name] << 28;
  const decoded = decodeEvent(w, 0);
  if (decoded.kind !== kebab(name)) throw new Error(`${name} decodes as ${decoded.kind}`);
  return decoded as EventOf<K>;
}

export function eventFieldBits<K extends EventName>(name: K): Record<EventFieldName<K>, BitRun[]> {
  const { kind: _kind, ...sample } = sampleEvent(name) as unknown as { kind: string } & Record<
    string,
    unknown
  >;
  return probedFieldBits(sample, (f) =>
    words(EVENT_WORDS, (w) => encodeEvent({ ...sampleEvent(name), ...f } as AmdEvent, w, 0)),
  ) as Record<EventFieldName<K>, BitRun[]>;
}

/** The bits every event has its code in. */
export function eventCodeBits(): BitRun[] {
  let high = 0;
  for (const code of Object.values(EVENT_CODE)) high |= code << 28;
  return bitRuns([0, high >>> 0]);
}

/** Flag `value` of an event or PPR log entry: bit n of the flags field, bits 59:48. */
export function flagBits(value: number): BitRun[] {
  return bitRuns([0, (value << 16) >>> 0]);
}

const PPR_ZERO: PprLogEntry = decodePprLogEntry(new Uint32Array(EVENT_WORDS), 0);

export const pprLogEntryFieldBits = (): Record<keyof PprLogEntry, BitRun[]> =>
  probedFieldBits(PPR_ZERO, (f) => words(EVENT_WORDS, (w) => encodePprLogEntry({ ...PPR_ZERO, ...f }, w, 0)));
