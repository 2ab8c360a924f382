/** The IOAS object (ioas.ts): what destroying it does to its areas. */
import { describe, expect, it } from 'vitest';
import { hpa } from '../address/address.js';
import { IoasObject } from './ioas.js';
import { hostMemory } from './user-memory.js';

const RW = { read: true, write: true };

describe('IoasObject', () => {
  it('destroy unmaps every area (Linux iopt_destroy_table: the pages are unpinned)', () => {
    const ioas = new IoasObject();
    const memory = hostMemory(hpa(0x8000_0000n), 0x4000n);
    ioas.iopt.map(0x1000n, memory, 0n, 0x2000n, RW);
    ioas.iopt.map(0x10_0000n, memory, 0x2000n, 0x2000n, RW);
    ioas.destroy();
    expect(ioas.iopt.listAreas()).toEqual([]);
  });

  it('destroy of an empty IOAS is fine', () => {
    const ioas = new IoasObject();
    ioas.destroy();
    expect(ioas.iopt.listAreas()).toEqual([]);
  });
});
