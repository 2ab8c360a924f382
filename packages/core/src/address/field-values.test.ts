import { describe, expect, it } from 'vitest';
import { IommufdError } from '../errors/iommufd-error.js';
import { checkFieldAddress, checkFieldValue } from './field-values.js';

const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
};

describe('checkFieldValue', () => {
  it('takes the integers of the field and flags as 0/1', () => {
    expect(checkFieldValue('CD', 'asid', 0xffff, 16)).toBe(0xffff);
    expect(checkFieldValue('CD', 'v', true, 1)).toBe(1);
    expect(checkFieldValue('CMD_TLBI_NH_VA', 'addressPage', 2 ** 52 - 1, 52)).toBe(2 ** 52 - 1);
  });

  it.each([-1, 1.5, 2 ** 16, 2 ** 53 + 2, Number.NaN, '1', 1n, null, {}])(
    'refuses %s with EINVAL naming the field',
    (raw) => {
      const error = refusal(() => checkFieldValue('CD', 'asid', raw, 16));
      expect(error).toBeInstanceOf(IommufdError);
      expect(error).toMatchObject({ code: 'EINVAL', context: { structure: 'CD', field: 'asid' } });
      expect((error as Error).message).toMatch(/^EINVAL: CD\.asid = /);
    },
  );
});

describe('checkFieldAddress', () => {
  it('takes an address aligned to the field and below its top bit', () => {
    expect(checkFieldAddress('STE', 's1ContextPtr', 2 ** 52 - 64, 6, 51)).toBe(2 ** 52 - 64);
    expect(checkFieldAddress('CMD_SYNC', 'msiAddress', 4, 66, 115)).toBe(4);
    // Beyond 2^53 an aligned address is still exact: bits [55:3] are 53 bits.
    expect(checkFieldAddress('event', 'fetchAddr', 2 ** 56 - 8, 195, 247)).toBe(2 ** 56 - 8);
  });

  it.each([-64, -(2 ** 40), 32, 64.5, 2 ** 52, 2 ** 53 + 64, 2 ** 53 + 2, Number.POSITIVE_INFINITY, '64'])(
    'refuses %s with EINVAL naming the field',
    (raw) => {
      expect(refusal(() => checkFieldAddress('STE', 's1ContextPtr', raw, 6, 51))).toMatchObject({
        code: 'EINVAL',
        context: { structure: 'STE', field: 's1ContextPtr' },
      });
    },
  );
});

describe('field refusals', () => {
  it('accept 0 and refuse a negative value, a bigint or a numeric string', () => {
    expect(checkFieldValue('STE', 'config', 0, 3)).toBe(0);
    expect(checkFieldAddress('STE', 's1ContextPtr', 0, 6, 55)).toBe(0);
    for (const raw of [-1, 4096n, '4096', 2 ** 56, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(
        refusal(() => checkFieldValue('STE', 'config', raw, 3)),
        String(raw),
      ).toBeInstanceOf(IommufdError);
      expect(
        refusal(() => checkFieldAddress('STE', 's1ContextPtr', raw, 6, 55)),
        String(raw),
      ).toBeInstanceOf(IommufdError);
    }
  });

  it('name the structure, the field, the value as given and what the field takes', () => {
    const message = (raw: unknown) =>
      (refusal(() => checkFieldValue('CD', 'asid', raw, 16)) as Error).message;
    expect(message(0x1_0000)).toBe('EINVAL: CD.asid = 0x10000 is not an unsigned integer below 2^16');
    expect(message(-1)).toBe('EINVAL: CD.asid = -1 is not an unsigned integer below 2^16');
    expect(message(1.5)).toBe('EINVAL: CD.asid = 1.5 is not an unsigned integer below 2^16');
    expect(message(7n)).toBe('EINVAL: CD.asid = 7n is not an unsigned integer below 2^16');
    expect(message('7')).toBe('EINVAL: CD.asid = "7" is not an unsigned integer below 2^16');
    expect(message(null)).toBe('EINVAL: CD.asid = null is not an unsigned integer below 2^16');
    expect(message(undefined)).toBe(
      'EINVAL: CD.asid = a value of type undefined is not an unsigned integer below 2^16',
    );
    expect(message({ toString: () => 'no' })).toBe(
      'EINVAL: CD.asid = a value of type object is not an unsigned integer below 2^16',
    );
    const address = refusal(() => checkFieldAddress('CD', 'ttb0', 0x1008, 68, 119)) as IommufdError;
    expect(address.message).toBe('EINVAL: CD.ttb0 = 0x1008 is not a 16-byte aligned address below 2^56');
    expect(address.context).toEqual({ structure: 'CD', field: 'ttb0' });
  });
});
