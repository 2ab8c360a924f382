import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  addressField,
  cacheEntriesOption,
  cacheWaysOption,
  flagOption,
  intField,
  nameField,
  ridField,
  sizeField,
} from './fields.js';

/** The one message a field gives for `input`, or undefined when it accepts it. */
function refusal(schema: z.ZodType, input: unknown): string | undefined {
  const result = schema.safeParse(input);
  if (result.success) return undefined;
  expect(result.error.issues).toHaveLength(1);
  return result.error.issues[0]!.message;
}

describe('config fields', () => {
  it('nameField takes letters, digits, "-" and "_" after a first letter, nothing else', () => {
    for (const name of ['iommu0', 'nic-0', 'A_b', 'x']) expect(nameField.parse(name)).toBe(name);
    for (const bad of ['0abc', '-x', 'a b', 'abc!', '', 'x.y'])
      expect(refusal(nameField, bad), bad).toBe(
        `expected a name of letters, digits, "-" and "_" starting with a letter, got ${JSON.stringify(bad)}`,
      );
    expect(nameField.meta()?.title).toBe('name');
  });

  it('ridField takes bb:dd.f text or a 16-bit number', () => {
    expect(ridField.parse('00:02.0')).toBe(0x10);
    expect(ridField.parse('ff:1f.7')).toBe(0xffff);
    expect(ridField.parse(0)).toBe(0);
    expect(ridField.parse(0xffff)).toBe(0xffff);
    for (const [bad, shown] of [
      [0x1_0000, '65536'],
      [-1, '-1'],
      [1.5, '1.5'],
      [true, 'true'],
      ['00:02', '"00:02"'],
      [null, 'null'],
    ] as const)
      expect(refusal(ridField, bad), String(bad)).toBe(
        `expected a PCI requester ID like "00:02.0", got ${shown}`,
      );
    expect(ridField.meta()?.title).toBe('requester ID');
  });

  it('addressField and sizeField become bigints and say what they expected', () => {
    expect(addressField.parse('0x8000_0000')).toBe(0x8000_0000n);
    expect(addressField.parse(4096)).toBe(4096n);
    expect(sizeField.parse('4GiB')).toBe(4n << 30n);
    expect(refusal(addressField, 'nowhere')).toMatch(/"nowhere"/);
    expect(refusal(sizeField, -1)).toMatch(/-1/);
    expect([addressField.meta()?.title, sizeField.meta()?.title]).toEqual(['address', 'size']);
  });

  it('intField takes integers in its range and names the range when it refuses', () => {
    const field = intField(1, 64);
    expect(field.parse(1)).toBe(1);
    expect(field.parse(64)).toBe(64);
    expect(refusal(field, 'x')).toBe('expected an integer from 1 to 64, got "x"');
    expect(refusal(field, 0)).toMatch(/1/);
    expect(refusal(field, 65)).toMatch(/64/);
    expect(refusal(field, 1.5)).toBeDefined();
    expect(field.meta()?.title).toBe('integer 1…64');
  });
});

describe('vendor option builders', () => {
  it('give a flag its default, a cache its bounds, and ways the capacity they must divide', () => {
    expect(flagOption(true, 'On.').parse(undefined)).toBe(true);
    expect(flagOption(false, 'Off.').description).toBe('Off.');
    const entries = cacheEntriesOption(256, 0, 'IOTLB entries.');
    expect(entries.parse(undefined)).toBe(256);
    expect(entries.parse(0)).toBe(0);
    expect(entries.safeParse(-1).success).toBe(false);
    expect(entries.safeParse(2 ** 20 + 1).success).toBe(false);
    expect(cacheEntriesOption(8, 1, 'x').safeParse(0).success).toBe(false);
    const ways = cacheWaysOption(4, 'iotlbEntries');
    expect(ways.parse(undefined)).toBe(4);
    expect(ways.safeParse(0).success).toBe(false);
    expect(ways.safeParse(1025).success).toBe(false);
    expect(ways.description).toBe('Associativity (ways per set); iotlbEntries must be a multiple of it.');
  });
});
