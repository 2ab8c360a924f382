/**
 * Reading and writing the fields of an in-memory hardware structure (an SMMUv3 STE or CD, a VT-d context
 * or PASID entry, an AMD DTE) from a layout table of absolute bit positions, as specifications draw them:
 * bit 64·N + b is bit b of 64-bit word N. Writes go through the shared field checks, so a value its field
 * cannot hold is `EINVAL` naming the structure and field, never wrapped into the words.
 */
import { IommufdError } from '../errors/iommufd-error.js';
import { checkFieldAddress, checkFieldValue } from './field-values.js';
import { highHalfMask, lowHalfMask, setEntryAddress, setEntryField } from './words.js';

/** Scalar fields by name: [lsb, width] with width 1–32. Width-1 fields decode as booleans. */
export type ScalarLayout = Readonly<Record<string, readonly [lsb: number, width: number]>>;

/** The scalar layout of a decoded structure `T`: one [lsb, width] per field. */
export type ScalarLayoutOf<T> = { readonly [K in keyof T]: readonly [lsb: number, width: number] };

/** Address fields by name: [lsb, msb], read as exact byte addresses (up to 52 bits). */
export type AddressLayout = Readonly<Record<string, readonly [lsb: number, msb: number]>>;

/** A whole structure: its scalar fields and its address fields. */
export interface EntryLayout {
  readonly scalars: ScalarLayout;
  readonly addresses: AddressLayout;
}

/** Decodes one structure of a layout from its words. */
export type EntryReader<T> = (words: ArrayLike<number>) => T;

/**
 * A decoder for `layout`, compiled once (`EINVAL` naming the field for a position it cannot read): a function whose body is one object literal with a bit
 * expression per field. Structures are decoded on every configuration-cache miss, so this is a hot path;
 * a loop storing fields by computed key runs a generic (megamorphic) store per field, and an object grown
 * key by key past a dozen keys becomes a dictionary — several times slower to build and to read. The
 * literal gives every decoded structure one fixed shape, its keys in layout order (scalars, then addresses).
 */
export function entryReader<T>(layout: EntryLayout): EntryReader<T> {
  const scalars = Object.entries(layout.scalars).map(
    ([key, [lsb, width]]) => `${JSON.stringify(key)}: ${scalarExpression(key, lsb, width)}`,
  );
  const addresses = Object.entries(layout.addresses).map(([key, [lsb, msb]]) => {
    if (!isBitIndex(lsb) || !isBitIndex(msb) || msb < lsb || msb >>> 6 !== lsb >>> 6 || msb - lsb > 51)
      throw new IommufdError(
        'EINVAL',
        `address field ${key} [${lsb}, ${msb}] must lie within one 64-bit word, ≤ 52 bits`,
        { field: key },
      );
    return `${JSON.stringify(key)}: ${addressExpression(lsb, msb)}`;
  });
  const body = `return { ${[...scalars, ...addresses].join(', ')} };`;
  return new Function('w', body) as EntryReader<T>;
}

/**
 * The expression reading bits `msb:lsb` (one 64-bit word) of `w` as a byte address, what `entryAddress`
 * computes with the same masks, worked out here once so no power is computed per decode.
 */
function addressExpression(lsb: number, msb: number): string {
  const index = 2 * (lsb >>> 6);
  const loMask = lowHalfMask(lsb & 63, msb & 63);
  const hiMask = highHalfMask(lsb & 63, msb & 63);
  const parts: string[] = [];
  if (hiMask !== 0) parts.push(`((w[${index + 1}] & ${hiMask}) >>> 0) * ${2 ** 32}`);
  if (loMask !== 0) parts.push(`((w[${index}] & ${loMask}) >>> 0)`);
  return parts.join(' + ');
}

function isBitIndex(value: number): boolean {
  return Number.isInteger(value) && value >= 0;
}

/** The expression reading `width` bits at absolute bit `lsb` of `w` (what `entryField` computes). */
function scalarExpression(key: string, lsb: number, width: number): string {
  if (!isBitIndex(lsb) || !Number.isInteger(width) || width < 1 || width > 32)
    throw new IommufdError(
      'EINVAL',
      `scalar field ${key} [${lsb}, ${width}] needs a bit index and a width of 1 to 32`,
      { field: key },
    );
  const index = lsb >>> 5;
  const shift = lsb & 31;
  const low = `(w[${index}] >>> ${shift})`;
  if (width === 1) return `(${low} & 1) === 1`;
  if (width === 32 && shift === 0) return low;
  if (shift + width <= 32) return `(${low} & ${2 ** width - 1})`;
  // Across two words: the high part's bits sit above the 32 - shift bits the first word gives.
  return `${low} + (w[${index + 1}] & ${2 ** (shift + width - 32) - 1}) * ${2 ** (32 - shift)}`;
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
export function writeEntryFields(
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
