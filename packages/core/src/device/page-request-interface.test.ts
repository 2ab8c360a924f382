import { describe, expect, it } from 'vitest';
import { PageRequestInterface, PRG_INDEX_LIMIT } from './page-request-interface.js';

const response = (groupIndex: number, code: 'success' | 'invalid' | 'failure' = 'success') => ({
  pasid: 1,
  groupIndex,
  code,
});

function enabled(maxOutstanding: number): PageRequestInterface {
  const pri = new PageRequestInterface(maxOutstanding);
  pri.enabled = true;
  return pri;
}

describe('PageRequestInterface (PCIe PRI)', () => {
  it.each([0, -1, 1.5, Number.NaN])('refuses an outstanding allocation of %s', (n) => {
    expect(() => new PageRequestInterface(n)).toThrow(RangeError);
  });

  it('sends nothing until enabled', () => {
    const pri = new PageRequestInterface(4);
    expect(pri.openGroup(1)).toBeUndefined();
    expect(pri.outstanding).toBe(0);
  });

  it('hands out group indices in order and counts the requests in flight up to the allocation', () => {
    const pri = enabled(4);
    expect(pri.openGroup(1)).toBe(0);
    expect(pri.openGroup(2)).toBe(1);
    expect(pri.outstanding).toBe(3);
    expect(pri.openGroup(2)).toBeUndefined();
    expect(pri.openGroup(1)).toBe(2);
    expect(pri.outstanding).toBe(4);
    expect(pri.openGroup(1)).toBeUndefined();
  });

  it('a group of no pages is not sent', () => {
    const pri = enabled(4);
    expect(pri.openGroup(0)).toBeUndefined();
    expect(pri.openGroup(-1)).toBeUndefined();
    expect(pri.outstanding).toBe(0);
  });

  it('a response frees every request of its group; a stray response is dropped', () => {
    const pri = enabled(3);
    pri.openGroup(2);
    pri.openGroup(1);
    expect(pri.complete(response(7))).toBe(false);
    expect(pri.responses).toEqual([]);
    expect(pri.complete(response(0, 'invalid'))).toBe(true);
    expect(pri.outstanding).toBe(1);
    expect(pri.responses).toEqual([response(0, 'invalid')]);
    // Answered already: a second response to the same group is stray.
    expect(pri.complete(response(0))).toBe(false);
    expect(pri.responses).toHaveLength(1);
  });

  it('PRG indices are 9 bits: they wrap at 512 and skip indices still in flight', () => {
    const pri = enabled(PRG_INDEX_LIMIT + 10);
    for (let i = 0; i < PRG_INDEX_LIMIT; i++) expect(pri.openGroup(1)).toBe(i);
    // Every index is in flight: no group can be opened, though the allocation has room.
    expect(pri.openGroup(1)).toBeUndefined();
    // The search goes on from where it stopped (index 0 after a full turn), not from the last index freed.
    pri.complete(response(5));
    pri.complete(response(0));
    expect(pri.openGroup(1)).toBe(0);
    expect(pri.openGroup(1)).toBe(5);
    pri.complete(response(3));
    expect(pri.openGroup(1)).toBe(3);
  });

  it('lastResponse is the code of the latest response to a group index', () => {
    const pri = enabled(1);
    expect(pri.lastResponse(0)).toBeUndefined();
    pri.openGroup(1);
    pri.complete(response(0, 'success'));
    for (let i = 1; i < PRG_INDEX_LIMIT; i++) {
      pri.openGroup(1);
      pri.complete(response(i, 'invalid'));
    }
    expect(pri.openGroup(1)).toBe(0);
    pri.complete(response(0, 'failure'));
    expect(pri.lastResponse(0)).toBe('failure');
    expect(pri.lastResponse(1)).toBe('invalid');
  });
});
