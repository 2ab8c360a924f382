import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatRid, makeRid, parseRid } from './rid.js';

describe('PCI requester IDs', () => {
  it.each([
    [0, 0, 0, 0x0000, '00:00.0'],
    [0, 2, 0, 0x0010, '00:02.0'],
    [0x3a, 0x1f, 7, 0x3aff, '3a:1f.7'],
    [0xff, 0x1f, 7, 0xffff, 'ff:1f.7'],
    [1, 0, 1, 0x0101, '01:00.1'],
  ])('bus %s dev %s fn %s is %s, written %s', (bus, dev, fn, rid, text) => {
    expect(makeRid(bus, dev, fn)).toBe(rid);
    expect(formatRid(rid)).toBe(text);
    expect(parseRid(text)).toBe(rid);
  });

  it('round-trips every valid bus/device/function', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0x1f }),
        fc.integer({ min: 0, max: 7 }),
        (bus, dev, fn) => {
          const rid = makeRid(bus, dev, fn);
          expect(rid).toBeGreaterThanOrEqual(0);
          expect(rid).toBeLessThanOrEqual(0xffff);
          expect(parseRid(formatRid(rid))).toBe(rid);
          expect([rid >> 8, (rid >> 3) & 0x1f, rid & 7]).toEqual([bus, dev, fn]);
        },
      ),
    );
  });

  it('accepts upper-case and single-digit hex', () => {
    expect(parseRid('3A:1F.7')).toBe(0x3aff);
    expect(parseRid('1:2.3')).toBe(makeRid(1, 2, 3));
  });

  it.each(['00:20.0', '00:02.8', 'x', '100:00.0', '', '00:02', '00.02.0', ' 00:02.0', '00:02.0 ', 'g0:00.0'])(
    'parseRid(%o) is undefined',
    (text) => {
      expect(parseRid(text)).toBeUndefined();
    },
  );

  it.each([
    [-1, 0, 0],
    [0x100, 0, 0],
    [0, 0x20, 0],
    [0, -1, 0],
    [0, 0, 8],
    [0, 0, -1],
  ])('makeRid(%s, %s, %s) throws', (bus, dev, fn) => {
    expect(() => makeRid(bus, dev, fn)).toThrow(RangeError);
  });
});
