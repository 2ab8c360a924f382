/**
 * Reading and writing the fields of an in-memory structure (STE, L1STD, CD, L1CD) from a layout table of
 * absolute bit positions, as the spec draws them. Writes go through the shared field checks: a value its
 * field cannot hold is `EINVAL` naming the structure and field, never wrapped into the words.
 */
import {
  checkFieldAddress,
  checkFieldValue,
  entryField,
  setEntryAddress,
  setEntryField,
} from '@iommukit/core';

/** Scalar fields by name: [lsb, width]. Width-1 fields decode as booleans. */
export type ScalarLayout = Readonly<Record<string, readonly [lsb: number, width: number]>>;

export function readScalars(
  words: ArrayLike<number>,
  layout: ScalarLayout,
): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  for (const [key, [lsb, width]] of Object.entries(layout)) {
    const value = entryField(words, lsb, width);
    out[key] = width === 1 ? value === 1 : value;
  }
  return out;
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
