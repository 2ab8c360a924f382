/** The README's options table lists every key of the options schema. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { X86ApicOptionsSchema } from '../src/options.js';

describe('README', () => {
  it('documents every option', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const keys = Object.keys(X86ApicOptionsSchema.shape);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(readme).toContain(`| \`${key}\` |`);
  });
});
