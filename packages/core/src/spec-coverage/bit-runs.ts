/**
 * Where the fields of a hardware structure lie, found from the code rather than typed by hand: each field
 * is encoded alone through the structure's own encoder and the bits it sets are its position. Bit numbers
 * are absolute over the structure's little-endian 32-bit words (bit 64·N + b is bit b of 64-bit word N),
 * as specifications draw structures.
 */
import { isIommufdError } from '../errors/iommufd-error.js';
import type { SpecOnlyField } from './coverage.js';

/** A run of adjacent bits, most significant first. */
export interface BitRun {
  readonly msb: number;
  readonly lsb: number;
}

/** The runs of set bits in little-endian 32-bit words, lowest first. */
export function bitRuns(words: ArrayLike<number>): BitRun[] {
  const runs: BitRun[] = [];
  let start = -1;
  const total = words.length * 32;
  for (let bit = 0; bit <= total; bit++) {
    const set = bit < total && ((words[bit >>> 5]! >>> (bit & 31)) & 1) === 1;
    if (set && start < 0) start = bit;
    if (!set && start >= 0) {
      runs.push({ msb: bit - 1, lsb: start });
      start = -1;
    }
  }
  return runs;
}

/** Runs as a specification writes them: `[7]`, `[63:12]`, comma-separated. */
export function formatBits(runs: readonly BitRun[]): string {
  return runs.map((r) => (r.msb === r.lsb ? `[${r.lsb}]` : `[${r.msb}:${r.lsb}]`)).join(', ');
}

/** `count` words with every bit set: decoded, a structure with every field at its largest value. */
export function allOnes(count: number): Uint32Array {
  return new Uint32Array(count).fill(0xffff_ffff);
}

/**
 * Where each field of a structure lives: every field of `largest` (a structure with each field at its
 * largest value, e.g. one decoded from `allOnes`) is encoded alone, and its position is the bits it sets
 * beyond those an encoding of no field sets (a type code or a format bit the encoder always writes).
 */
export function fieldBits<T extends object>(
  largest: T,
  encode: (fields: Partial<T>) => ArrayLike<number>,
): Record<keyof T, BitRun[]> {
  const base = encode({});
  const out: Record<string, BitRun[]> = {};
  for (const [key, value] of Object.entries(largest)) {
    const words = Array.from(encode({ [key]: value } as Partial<T>), (w, i) => (w & ~(base[i] ?? 0)) >>> 0);
    out[key] = bitRuns(words);
  }
  return out as Record<keyof T, BitRun[]>;
}

/**
 * Where each field lives when no one number can stand for its largest value (an address field wider than
 * a double's 53-bit mantissa): each field of `sample` (any structure of the kind, e.g. a decoded one) is
 * encoded alone — a flag as true, a word array as all ones, a number as every power of two the encoder
 * takes (it refuses the others with EINVAL) — and its position is the union of the bits those encodings
 * set beyond the bits of an encoding of no field.
 */
export function probedFieldBits<T extends object>(
  sample: T,
  encode: (fields: Partial<T>) => ArrayLike<number>,
): Record<keyof T, BitRun[]> {
  const base = encode({});
  const out: Record<string, BitRun[]> = {};
  for (const [key, value] of Object.entries(sample)) {
    const union = new Uint32Array(base.length);
    const add = (v: unknown) => {
      let words: ArrayLike<number>;
      try {
        words = encode({ [key]: v } as Partial<T>);
      } catch (error) {
        if (isIommufdError(error, 'EINVAL')) return;
        throw error;
      }
      for (let i = 0; i < union.length; i++) union[i] = (union[i]! | (words[i]! & ~base[i]!)) >>> 0;
    };
    if (typeof value === 'boolean') add(true);
    else if (Array.isArray(value)) add(value.map(() => 0xffff_ffff));
    else for (let bit = 0; bit < 64; bit++) add(2 ** bit);
    out[key] = bitRuns(union);
  }
  return out as Record<keyof T, BitRun[]>;
}

/**
 * The bits of `bits` that `refused` rejects when each is toggled alone in `base`, a structure the check
 * accepts: which of a structure's reserved bits its check refuses.
 */
export function refusedBits(
  bits: readonly BitRun[],
  base: ArrayLike<number>,
  refused: (words: Uint32Array) => boolean,
): BitRun[] {
  const hits = new Uint32Array(base.length);
  for (const run of bits)
    for (let bit = run.lsb; bit <= run.msb; bit++) {
      const words = Uint32Array.from(base);
      words[bit >>> 5] = (words[bit >>> 5]! ^ (1 << (bit & 31))) >>> 0;
      if (refused(words)) hits[bit >>> 5] = (hits[bit >>> 5]! | (1 << (bit & 31))) >>> 0;
    }
  return bitRuns(hits);
}

/** Clears the bits of `run` in `words`. */
function clearRun(words: Uint32Array, run: BitRun): void {
  for (let b = run.lsb; b <= run.msb; b++) words[b >>> 5] = (words[b >>> 5]! & ~(1 << (b & 31))) >>> 0;
}

/** Bits of a `words`-word structure that neither a decoded field nor a spec-only field covers. */
export function uncoveredBits(
  words: number,
  bits: Readonly<Record<string, readonly BitRun[]>>,
  specOnly: readonly SpecOnlyField[],
): BitRun[] {
  const free = allOnes(words);
  for (const runs of Object.values(bits)) for (const run of runs) clearRun(free, run);
  for (const field of specOnly) clearRun(free, field);
  return bitRuns(free);
}

/**
 * What is wrong with the positions of a `words`-word structure's fields, one message per problem (none:
 * every field lies inside the structure and no bit belongs to two fields): decoded fields by key,
 * spec-only fields by spec name.
 */
export function bitPositionProblems(
  words: number,
  decoded: Readonly<Record<string, readonly BitRun[]>>,
  specOnly: readonly SpecOnlyField[],
): string[] {
  const problems: string[] = [];
  const owner = new Map<number, string>();
  const claim = (name: string, run: BitRun) => {
    if (run.msb < run.lsb) problems.push(`${name}: msb ${run.msb} is below lsb ${run.lsb}`);
    for (let b = run.lsb; b <= run.msb; b++) {
      const other = owner.get(b);
      if (b >= words * 32) problems.push(`${name}: bit ${b} lies outside the ${words * 32}-bit structure`);
      else if (other !== undefined) problems.push(`${name}: bit ${b} also belongs to ${other}`);
      else owner.set(b, name);
    }
  };
  for (const [key, runs] of Object.entries(decoded)) for (const run of runs) claim(key, run);
  for (const field of specOnly) claim(field.spec, field);
  return problems;
}
