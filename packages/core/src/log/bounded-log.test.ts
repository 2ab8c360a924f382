import { describe, expect, it } from 'vitest';
import { isIommufdError } from '../errors/iommufd-error.js';
import { BoundedLog, DEFAULT_LOG_CAPACITY } from './bounded-log.js';

describe('BoundedLog', () => {
  it('100k records into a log of 1024: the first 1024 are kept, the rest counted as lost', () => {
    const log = new BoundedLog<{ n: number }>();
    expect(log.capacity).toBe(DEFAULT_LOG_CAPACITY);
    for (let n = 0; n < 100_000; n++) log.push({ n });
    expect(log.length).toBe(1024);
    expect(log.records[0]).toEqual({ n: 0 });
    expect(log.records.at(-1)).toEqual({ n: 1023 });
    expect(log.lost).toBe(100_000 - 1024);
  });

  it('push says whether the record was kept; iteration gives the kept records in order', () => {
    const log = new BoundedLog<string>(2);
    expect([log.push('a'), log.push('b'), log.push('c')]).toEqual([true, true, false]);
    expect([...log]).toEqual(['a', 'b']);
  });

  it('take hands over the records and the losses since the previous take, and frees the space', () => {
    const log = new BoundedLog<number>(3);
    for (let n = 0; n < 5; n++) log.push(n);
    expect(log.take()).toEqual({ records: [0, 1, 2], lost: 2 });
    expect(log.length).toBe(0);
    log.push(5);
    expect(log.take()).toEqual({ records: [5], lost: 0 });
    expect(log.lost).toBe(2);
  });

  it.each([0, -1, 1.5, Number.NaN])('a capacity of %s is EINVAL', (capacity) => {
    let error: unknown;
    try {
      new BoundedLog(capacity);
    } catch (e) {
      error = e;
    }
    expect(isIommufdError(error, 'EINVAL')).toBe(true);
  });
});

describe('BoundedLog of one record', () => {
  it('a capacity of 1 keeps one record', () => {
    const log = new BoundedLog<string>(1);
    expect([log.push('a'), log.push('b')]).toEqual([true, false]);
    expect(log.take()).toEqual({ records: ['a'], lost: 1 });
  });
});
