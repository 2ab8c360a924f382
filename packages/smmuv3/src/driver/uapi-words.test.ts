/** uAPI payloads as 32-bit words (uapi-words.ts): the shape checks behind vSTE and guest-command EINVALs. */
import { describe, expect, it } from 'vitest';
import { uapiWords } from './uapi-words.js';

describe('uapiWords', () => {
  it('takes arrays of unsigned 32-bit integers of the right length, up to 0xffffffff', () => {
    expect(Array.from(uapiWords([0, 1, 0xffff_ffff, 7], 4)!)).toEqual([0, 1, 0xffff_ffff, 7]);
    for (const bad of [
      [0, 0, 0, 2 ** 32],
      [0, 0, 0, -1],
      [0, 0, 0, 0.5],
      [0, 0, 0, '1'],
      [0, 0, 0],
    ])
      expect(uapiWords(bad, 4)).toBeUndefined();
  });

  it('copies a Uint32Array of the right length; anything else is undefined', () => {
    const words = Uint32Array.of(1, 2, 3, 4);
    const copy = uapiWords(words, 4)!;
    expect(Array.from(copy)).toEqual([1, 2, 3, 4]);
    words[0] = 9;
    expect(copy[0]).toBe(1);
    expect(uapiWords(Uint32Array.of(1, 2), 4)).toBeUndefined();
    expect(uapiWords({ length: 4 }, 4)).toBeUndefined();
    expect(uapiWords(undefined, 4)).toBeUndefined();
  });
});
