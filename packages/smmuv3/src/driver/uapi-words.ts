/** uAPI payloads given as 32-bit words (vSTEs, guest commands): shape checks shared by the nesting code. */

/** `value` as `count` unsigned 32-bit words (a `Uint32Array` or an array of integers), else undefined. */
export function uapiWords(value: unknown, count: number): Uint32Array | undefined {
  if (value instanceof Uint32Array) return value.length === count ? Uint32Array.from(value) : undefined;
  if (!Array.isArray(value) || value.length !== count) return undefined;
  if (!value.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff_ffff)) return undefined;
  return Uint32Array.from(value as number[]);
}
