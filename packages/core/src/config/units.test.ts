import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSize, type ParseResult, parseInteger, parseSize } from './units.js';

const U64_MAX = 2n ** 64n - 1n;

function failure(result: ParseResult): string {
  if (result.ok) throw new Error(`expected a failure, got ${result.value}`);
  return result.message;
}

describe('parseSize', () => {
  it.each([
    ['4GiB', 4n << 30n],
    ['64 KiB', 64n << 10n],
    ['2M', 2n << 20n],
    ['1t', 1n << 40n],
    ['3 mib', 3n << 20n],
    ['7b', 7n],
    [' 16k ', 16n << 10n],
    ['0x1000', 0x1000n],
    ['0x8000_0000', 0x8000_0000n],
    ['0xFFFF_FFFF_FFFF_FFFF', U64_MAX],
    ['16777215TiB', 16_777_215n << 40n],
    ['123', 123n],
    ['1_000', 1000n],
    [4096, 4096n],
    [0, 0n],
    [Number.MAX_SAFE_INTEGER, 2n ** 53n - 1n],
    [2n ** 60n, 2n ** 60n],
  ])('parses %o as %s', (input, value) => {
    expect(parseSize(input)).toEqual({ ok: true, value });
  });

  it.each([
    true,
    null,
    undefined,
    {},
    -1,
    1.5,
    'lots',
    '1XB',
    '1 KiBs',
    '-4KiB',
    '4.5GiB',
    '0x',
    '',
    '16777216TiB',
    '0x1_0000_0000_0000_0000',
    2n ** 64n,
    -1n,
  ])('rejects %o', (input) => {
    expect(parseSize(input).ok).toBe(false);
  });

  it('explains that numbers beyond 2^53 must be written as hex strings', () => {
    // YAML/JSON already rounded 2^53 + 2 before we saw it; the message has to say how to write it.
    expect(failure(parseSize(2 ** 53 + 2))).toMatch(/hex string/);
  });

  it.each(['16777216TiB', '0x1_0000_0000_0000_0000', 2n ** 64n, -1])(
    'says that %o does not fit in 64 bits',
    (input) => {
      expect(failure(parseSize(input))).toMatch(/does not fit in 64 bits/);
    },
  );

  it('names the bad input and an example in the message', () => {
    expect(failure(parseSize('lots'))).toBe('expected a size like 4096, "0x1000" or "4GiB", got "lots"');
    expect(failure(parseSize(true))).toContain('got true');
    expect(failure(parseSize([4096]))).toContain('got an array');
  });
});

describe('parseInteger', () => {
  it.each([
    ['0', 0n],
    ['0x0', 0n],
    ['0x8000_0000', 0x8000_0000n],
    ['0XdeadBEEF', 0xdead_beefn],
    ['18446744073709551615', U64_MAX],
    [' 42 ', 42n],
    [4096, 4096n],
    [U64_MAX, U64_MAX],
  ])('parses %o as %s', (input, value) => {
    expect(parseInteger(input)).toEqual({ ok: true, value });
  });

  it.each([true, null, -1, 1.5, 'lots', '4GiB', '1XB', '0x', '_1', '-1', '18446744073709551616', 2n ** 64n])(
    'rejects %o',
    (input) => {
      expect(parseInteger(input).ok).toBe(false);
    },
  );

  it('explains that numbers beyond 2^53 must be written as hex strings', () => {
    expect(failure(parseInteger(2 ** 53 + 2))).toMatch(/hex string/);
  });

  it('agrees with parseSize on plain integers', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, U64_MAX), (n) => {
        for (const text of [n.toString(), `0x${n.toString(16)}`]) {
          expect(parseInteger(text)).toEqual({ ok: true, value: n });
          expect(parseSize(text)).toEqual({ ok: true, value: n });
        }
      }),
    );
  });
});

describe('formatSize', () => {
  it.each([
    [0n, '0'],
    [1n, '1'],
    [1023n, '1023'],
    [1024n, '1KiB'],
    [4097n, '4097'],
    [64n << 10n, '64KiB'],
    [1536n << 10n, '1536KiB'],
    [2n << 20n, '2MiB'],
    [4n << 30n, '4GiB'],
    [(4n << 30n) + 4096n, '4194308KiB'],
    [1n << 40n, '1TiB'],
    [1n << 50n, '1024TiB'],
    [U64_MAX, U64_MAX.toString()],
  ])('formatSize(%s) is %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });

  it('parseSize reads back what formatSize writes', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, 2n ** 62n), (bytes) => {
        expect(parseSize(formatSize(bytes))).toEqual({ ok: true, value: bytes });
      }),
    );
  });
});
