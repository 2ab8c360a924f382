/** The words-based leaf permissions of the x86-64 and VT-d second-stage formats agree with decode-then-permissions. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { vtdSsFormat } from './vtd/ss-format.js';
import { x86Format } from './x86/x86-format.js';

const word = fc.integer({ min: 0, max: 2 ** 32 - 1 });

describe('leafPermissions', () => {
  for (const supervisorWriteProtect of [true, false])
    it(`x86-64 (WP ${supervisorWriteProtect}): both privilege levels, any leaf and table limits; G from the low word`, () => {
      const f = x86Format({ levels: 4, oas: 52, supervisorWriteProtect });
      fc.assert(
        fc.property(
          word,
          word,
          fc.integer({ min: 0, max: 7 }),
          fc.boolean(),
          (lo, hi, limits, privileged) => {
            const attrs = f.decodeLeaf(lo, hi, 1, limits);
            expect(f.leafPermissions(lo, hi, limits, privileged)).toBe(
              f.permissions(attrs, privileged, true),
            );
            expect(f.isGlobal(lo)).toBe(attrs.global);
          },
        ),
      );
    });

  for (const executeRequests of [true, false])
    it(`VT-d second stage (execute requests ${executeRequests}): any leaf and table limits`, () => {
      const f = vtdSsFormat({ levels: 4, oas: 48, executeRequests });
      fc.assert(
        fc.property(word, word, fc.integer({ min: 0, max: 7 }), (lo, hi, limits) => {
          expect(f.leafPermissions(lo, limits)).toBe(
            f.permissions(f.decodeLeaf(lo, hi, 1, limits), true, true),
          );
        }),
      );
    });
});
