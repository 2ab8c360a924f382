/**
 * Values bound for a hardware field: a table entry, a queue entry or a command word. Encoders are called
 * by drivers — the host's and a guest's — so a value that is not a non-negative integer fitting its field
 * (or, for an address field, aligned to the field's lowest bit) is the caller's mistake: `EINVAL` naming
 * the structure and the field, never a silent wrap or truncation by the word helpers. Messages are built
 * only when a check fails, so encoders on hot paths pay two comparisons per field.
 */
import { IommufdError } from '../errors/iommufd-error.js';

/**
 * `raw` as the value of a `width`-bit unsigned field `structure.field` (a flag may be a boolean): a safe
 * integer in [0, 2^width). `EINVAL` otherwise.
 */
export function checkFieldValue(structure: string, field: string, raw: unknown, width: number): number {
  const value = typeof raw === 'boolean' ? Number(raw) : raw;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value < 2 ** width)
    return value;
  throw badField(structure, field, raw, `an unsigned integer below 2^${width}`);
}

/**
 * `raw` as a byte address for the address field `structure.field` at absolute bits `msb:lsb` of an entry
 * (bit 64·N + b is bit b of 64-bit word N, as in `setEntryAddress`): an integer, aligned to 2^(lsb mod 64)
 * and below 2^(msb mod 64 + 1). `EINVAL` otherwise. Above 2^53 only integers this aligned are exact, and
 * the fields hold at most 53 significant bits (SMMUv3 FetchAddr[55:3]), so an aligned value is the address.
 */
export function checkFieldAddress(
  structure: string,
  field: string,
  raw: unknown,
  lsb: number,
  msb: number,
): number {
  const alignBits = lsb & 63;
  const limitBits = (msb & 63) + 1;
  if (
    typeof raw === 'number' &&
    Number.isInteger(raw) &&
    raw >= 0 &&
    raw < 2 ** limitBits &&
    raw % 2 ** alignBits === 0
  )
    return raw;
  throw badField(structure, field, raw, `a ${2 ** alignBits}-byte aligned address below 2^${limitBits}`);
}

/** How a refused value reads in the message (never calls the value's own `toString`). */
function shown(raw: unknown): string {
  if (typeof raw === 'number') return Number.isInteger(raw) && raw >= 0 ? `0x${raw.toString(16)}` : `${raw}`;
  if (typeof raw === 'bigint') return `${raw}n`;
  if (typeof raw === 'string') return JSON.stringify(raw);
  return raw === null ? 'null' : `a value of type ${typeof raw}`;
}

function badField(structure: string, field: string, raw: unknown, expected: string): IommufdError {
  return new IommufdError('EINVAL', `${structure}.${field} = ${shown(raw)} is not ${expected}`, {
    structure,
    field,
  });
}
