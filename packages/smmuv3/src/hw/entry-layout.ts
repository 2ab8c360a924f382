/**
 * Reading and writing the fields of an in-memory structure (STE, L1STD, CD, L1CD) from a layout table of
 * absolute bit positions, as the spec draws them. Writes go through the shared field checks: a value its
 * field cannot hold is `EINVAL` naming the structure and field, never wrapped into the words.
 */
import {
  checkFieldAddress,
  checkFieldValue,
  entryAddress,
  entryField,
  setEntryAddress,
  setEntryField,
} from '@iommukit/core';

/** Scalar fields by name: [lsb, width]. Width-1 fields decode as booleans. */
export type ScalarLayout = Readonly<Record<string, readonly [lsb: number, width: number]>>;

/** Address fields by name: [lsb, msb], read as exact numbers (up to 52 bits). */
export type AddressLayout = Readonly<Record<string, readonly [lsb: number, msb: number]>>;

/** A whole structure: its scalar fields and its address fields. */
export interface EntryLayout {
  readonly scalars: ScalarLayout;
  readonly addresses: AddressLayout;
}

/**
 * Decodes the scalar fields and the address fields of `layout` into one object. Every decoded structure of
 * a layout is a copy of one template holding all its keys, so it has one fixed shape: a structure is
 * decoded on every configuration-cache miss, and an object grown key by key past a dozen keys becomes a
 * dictionary, several times slower to build and to read.
 */
export function readEntry(words: ArrayLike<number>, layout: EntryLayout): Record<string, number | boolean> {
  const reader = readerOf(layout);
  const out = { ...reader.template };
  const { keys, lsbs, widths, addressKeys, addressBits } = reader;
  for (let i = 0; i < keys.length; i++) {
    const width = widths[i]!;
    const value = entryField(words, lsbs[i]!, width);
    out[keys[i]!] = width === 1 ? value === 1 : value;
  }
  for (let i = 0; i < addressKeys.length; i++)
    out[addressKeys[i]!] = entryAddress(words, addressBits[2 * i]!, addressBits[2 * i + 1]!);
  return out;
}

/** A layout as arrays, built once per layout table. */
interface EntryReader {
  readonly keys: readonly string[];
  readonly lsbs: Int32Array;
  readonly widths: Int32Array;
  readonly addressKeys: readonly string[];
  readonly addressBits: Int32Array;
  readonly template: Readonly<Record<string, number | boolean>>;
}

const readers = new WeakMap<EntryLayout, EntryReader>();

function readerOf(layout: EntryLayout): EntryReader {
  let reader = readers.get(layout);
  if (reader === undefined) {
    const entries = Object.entries(layout.scalars);
    const addressEntries = Object.entries(layout.addresses);
    // Numbers start as doubles so a 32-bit value (MAIR) never changes the shape; JSON.parse builds a
    // fast-shaped object however many keys it has.
    const template = JSON.parse(
      JSON.stringify({
        ...Object.fromEntries(entries.map(([key, [, width]]) => [key, width === 1 ? false : 0.5])),
        ...Object.fromEntries(addressEntries.map(([key]) => [key, 0.5])),
      }),
    );
    reader = {
      keys: entries.map(([key]) => key),
      lsbs: Int32Array.from(entries, ([, [lsb]]) => lsb),
      widths: Int32Array.from(entries, ([, [, width]]) => width),
      addressKeys: addressEntries.map(([key]) => key),
      addressBits: Int32Array.from(addressEntries.flatMap(([, bits]) => bits)),
      template,
    };
    readers.set(layout, reader);
  }
  return reader;
}

/** Writes the fields of `layout` that `fields` gives; `structure` names them in errors. */
export function writeScalars(
  words: Uint32Array,
  layout: ScalarLayout,
  fields: Readonly<Record<string, unknown>>,
  structure: string,
): void {
  for (const [key, [lsb, width]] of Object.entries(layout)) {
    const raw = fields[key];
    if (raw !== undefined) setEntryField(words, lsb, width, checkFieldValue(structure, key, raw, width));
  }
}

/** Writes the scalar and address fields of `layout` that `fields` gives; `structure` names them in errors. */
export function writeEntry(
  words: Uint32Array,
  layout: EntryLayout,
  fields: Readonly<Record<string, unknown>>,
  structure: string,
): void {
  writeScalars(words, layout.scalars, fields, structure);
  for (const [key, bits] of Object.entries(layout.addresses))
    writeAddress(words, bits, fields[key], structure, key);
}

/** Writes the address field `structure.field` at bits `msb:lsb` when it is given. */
export function writeAddress(
  words: Uint32Array,
  [lsb, msb]: readonly [lsb: number, msb: number],
  raw: unknown,
  structure: string,
  field: string,
): void {
  if (raw !== undefined) setEntryAddress(words, lsb, msb, checkFieldAddress(structure, field, raw, lsb, msb));
}
