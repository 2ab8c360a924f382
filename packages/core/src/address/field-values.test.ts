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
