/** Reusable zod field types for configs, each with an error message that says what was expected. */
import { z } from 'zod';
import { parseRid } from '../device/rid.js';
import { describe, parseInteger, parseSize } from './units.js';

const NAME_PATTERN = /^[a-z][a-z0-9_-]*$/i;

/** An object name that other parts of the config refer to (`iommu0`, `nic-0`). */
export const nameField = z
  .string()
  .regex(NAME_PATTERN, {
    error: (issue) =>
      `expected a name of letters, digits, "-" and "_" starting with a letter, got ${describe(issue.input)}`,
  })
  .meta({ title: 'name' });

function bigintField(parse: typeof parseInteger, title: string) {
  return z
    .unknown()
    .transform((input, ctx) => {
      const parsed = parse(input);
      if (parsed.ok) return parsed.value;
      ctx.addIssue({ code: 'custom', message: parsed.message, input });
      return z.NEVER;
    })
    .meta({ title });
}

/** A 64-bit address: integer or hex string; becomes a bigint. */
export const addressField = bigintField(parseInteger, 'address');

/** A byte size: integer, hex string, or `4GiB`-style string; becomes a bigint. */
export const sizeField = bigintField(parseSize, 'size');

/** A PCI requester ID written `bb:dd.f` (hex), or its 16-bit number; becomes a number. */
export const ridField = z
  .unknown()
  .transform((input, ctx) => {
    const rid =
      typeof input === 'string'
        ? parseRid(input)
        : Number.isInteger(input) && (input as number) >= 0 && (input as number) <= 0xffff
          ? (input as number)
          : undefined;
    if (rid !== undefined) return rid;
    ctx.addIssue({
      code: 'custom',
      message: `expected a PCI requester ID like "00:02.0", got ${describe(input)}`,
      input,
    });
    return z.NEVER;
  })
  .meta({ title: 'requester ID' });

/** A small non-negative integer (stream IDs, bit widths, counts). */
export function intField(min: number, max: number) {
  return z
    .number({ error: (issue) => `expected an integer from ${min} to ${max}, got ${describe(issue.input)}` })
    .int()
    .min(min)
    .max(max)
    .meta({ title: `integer ${min}…${max}` });
}

/** A vendor option that switches a feature: a boolean with its default and description. */
export function flagOption(value: boolean, description: string) {
  return z.boolean().default(value).describe(description);
}

/** A cache capacity option (entries, at least `min`; 0 allowed when `min` is 0: no such cache). */
export function cacheEntriesOption(value: number, min: number, description: string) {
  return z.number().int().min(min).max(1_048_576).default(value).describe(description);
}

/** A cache associativity option; `entries` names the capacity option it must divide. */
export function cacheWaysOption(value: number, entries: string) {
  return z
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(value)
    .describe(`Associativity (ways per set); ${entries} must be a multiple of it.`);
}
