/**
 * Sizes and addresses as users write them in configs: plain integers, hex strings (`0x8000_0000`), and
 * binary-unit sizes (`4GiB`, `64 KiB`, `2M`). Everything becomes an exact bigint; a JSON/YAML number
 * beyond 2^53 is rejected because it was already rounded before we saw it.
 */
const UNITS: Readonly<Record<string, bigint>> = {
  '': 1n,
  b: 1n,
  k: 1n << 10n,
  kib: 1n << 10n,
  m: 1n << 20n,
  mib: 1n << 20n,
  g: 1n << 30n,
  gib: 1n << 30n,
  t: 1n << 40n,
  tib: 1n << 40n,
};
const SIZE_PATTERN = /^(\d+)\s*([a-z]*)$/i;
const HEX_PATTERN = /^0x[0-9a-f][0-9a-f_]*$/i;
const DEC_PATTERN = /^\d[\d_]*$/;
const U64_MAX = (1n << 64n) - 1n;

export type ParseResult = { ok: true; value: bigint } | { ok: false; message: string };

/** Parses an address or integer: a safe integer number, a decimal string, or a `0x` hex string. */
export function parseInteger(input: unknown): ParseResult {
  if (typeof input === 'bigint') return inRange(input, input);
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input)) {
      return {
        ok: false,
        message: `expected an exact integer, got ${input} (write large values as a hex string)`,
      };
    }
    return inRange(BigInt(input), input);
  }
  if (typeof input === 'string') {
    const text = input.trim();
    if (HEX_PATTERN.test(text) || DEC_PATTERN.test(text))
      return inRange(BigInt(text.replaceAll('_', '')), input);
  }
  return {
    ok: false,
    message: `expected an integer or a hex string like "0x8000_0000", got ${describe(input)}`,
  };
}

/** Parses a size: anything {@link parseInteger} takes, or `<n><unit>` with K/KiB, M/MiB, G/GiB, T/TiB. */
export function parseSize(input: unknown): ParseResult {
  if (typeof input === 'string') {
    const m = SIZE_PATTERN.exec(input.trim());
    const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
    if (m && unit !== undefined && m[2] !== '') return inRange(BigInt(m[1]!) * unit, input);
  }
  const plain = parseInteger(input);
  // An integer-shaped input failed on exactness or range; parseInteger's message says which.
  if (plain.ok || typeof input === 'number' || typeof input === 'bigint' || isIntegerText(input))
    return plain;
  return { ok: false, message: `expected a size like 4096, "0x1000" or "4GiB", got ${describe(input)}` };
}

/** Formats a byte count with the largest exact binary unit (`4GiB`, `64KiB`, `4097`). */
export function formatSize(bytes: bigint): string {
  for (const [unit, scale] of [
    ['TiB', 1n << 40n],
    ['GiB', 1n << 30n],
    ['MiB', 1n << 20n],
    ['KiB', 1n << 10n],
  ] as const) {
    if (bytes >= scale && bytes % scale === 0n) return `${bytes / scale}${unit}`;
  }
  return bytes.toString();
}

/** A short, quoted rendering of a config value for error messages. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'bigint') return `0x${value.toString(16)}`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function isIntegerText(input: unknown): boolean {
  return typeof input === 'string' && (HEX_PATTERN.test(input.trim()) || DEC_PATTERN.test(input.trim()));
}

function inRange(value: bigint, original: unknown): ParseResult {
  if (value < 0n || value > U64_MAX)
    return { ok: false, message: `${describe(original)} does not fit in 64 bits` };
  return { ok: true, value };
}
