import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import { MsixTable } from './msix-table.js';

describe('MsixTable', () => {
  it('a vector sends what was programmed, nothing while masked or before programming', () => {
    const table = new MsixTable(2);
    expect(table.message(0)).toBeUndefined();
    table.program(0, { address: 0x800_0040n, data: 3 });
    expect(table.message(0)).toEqual({ address: 0x800_0040n, data: 3 });
    table.setMasked(0, true);
    expect(table.message(0)).toBeUndefined();
    table.program(0, { address: 0x800_0040n, data: 4 }); // programming unmasks, as the kernel's write does
    expect(table.message(0)).toEqual({ address: 0x800_0040n, data: 4 });
    table.reset();
    expect(table.message(0)).toBeUndefined();
  });

  it('EINVAL for a vector outside the table', () => {
    const table = new MsixTable(2);
    expect(errnoOf(() => table.program(2, { address: 0n, data: 0 }))).toBe('EINVAL');
    expect(errnoOf(() => table.message(-1))).toBe('EINVAL');
  });
});
