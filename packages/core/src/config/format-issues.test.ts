import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formatPath, toConfigIssues } from './format-issues.js';

const schema = z.strictObject({
  count: z.number().min(1).max(8).default(1),
  tags: z.array(z.string()).min(1).max(2).optional(),
  mode: z.enum(['emulated', 'nested']).optional(),
  vms: z
    .array(
      z.strictObject({
        viommu: z.strictObject({ mode: z.string(), queues: z.number() }).optional(),
        memory: z.strictObject({ size: z.number() }).transform((m) => m),
      }),
    )
    .optional(),
  device: z
    .discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('nic'), queues: z.number() }),
      z.strictObject({ kind: z.literal('disk'), blocks: z.number() }),
    ])
    .optional(),
  either: z.union([z.number(), z.boolean()]).optional(),
  label: z.string().optional(),
});

/** The issues of `input` as "path: message" lines (parsed as configs are, reporting the input). */
function issues(input: unknown, prefix: PropertyKey[] = []): string[] {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return [];
  return toConfigIssues(result.error, schema, prefix).map((i) => `${i.path}: ${i.message}`);
}

describe('formatPath', () => {
  it('writes keys with dots and indices in brackets, the first key bare', () => {
    expect(formatPath(['vms', 0, 'viommu', 'mode'])).toBe('vms[0].viommu.mode');
    expect(formatPath([2, 'a'])).toBe('[2].a');
    expect(formatPath([])).toBe('');
  });
});

describe('toConfigIssues', () => {
  it('says what a bound expected, for numbers and for lists', () => {
    expect(issues({ count: 0 })).toEqual(['count: expected at least 1, got 0']);
    expect(issues({ count: 9 })).toEqual(['count: expected at most 8, got 9']);
    expect(issues({ tags: [] })).toEqual(['tags: expected at least 1 item(s)']);
    expect(issues({ tags: ['a', 'b', 'c'] })).toEqual(['tags: expected at most 2 item(s)']);
  });

  it('names a missing or mistyped value, and the allowed values of an enum', () => {
    expect(issues({ label: 3 })).toEqual(['label: expected string, got 3']);
    expect(issues({ vms: [{ memory: {} }] })).toEqual(['vms[0].memory.size: required (expected number)']);
    expect(issues({ mode: 'nestd' })).toEqual(['mode: expected "emulated" | "nested", got "nestd"']);
  });

  it('gives the discriminator values of a union, or says no form matched', () => {
    expect(issues({ device: { kind: 'gpu' } })).toEqual(['device.kind: expected "nic" | "disk", got "gpu"']);
    expect(issues({ either: 'x' })).toEqual(['either: matches none of the allowed forms (got "x")']);
  });

  it('suggests the nearest known key for a typo, through lists, optionals and transforms', () => {
    expect(issues({ cuont: 2 })).toEqual(['cuont: unknown key (did you mean "count"?)']);
    expect(issues({ vms: [{ memory: { size: 1 }, viomu: {} }] })).toEqual([
      'vms[0].viomu: unknown key (did you mean "viommu"?)',
    ]);
    expect(issues({ vms: [{ memory: { size: 1 }, viommu: { mode: 'x', queues: 1, queus: 2 } }] })).toEqual([
      'vms[0].viommu.queus: unknown key (did you mean "queues"?)',
    ]);
    expect(issues({ vms: [{ memory: { size: 1, sise: 2 } }] })).toEqual([
      'vms[0].memory.sise: unknown key (did you mean "size"?)',
    ]);
    // Nothing close enough: no suggestion. Case does not count as a difference.
    expect(issues({ zzzzzz: 1 })).toEqual(['zzzzzz: unknown key']);
    expect(issues({ LABEL: 'x' })).toEqual(['LABEL: unknown key (did you mean "label"?)']);
  });

  it('puts a prefix before every path', () => {
    expect(issues({ count: 0, cuont: 1 }, ['iommus', 0, 'options']).sort()).toEqual([
      'iommus[0].options.count: expected at least 1, got 0',
      'iommus[0].options.cuont: unknown key (did you mean "count"?)',
    ]);
  });
});
