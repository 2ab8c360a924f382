/** Every config under examples/ validates and its scenario passes. */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../src/index.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));
const configs = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));

describe('examples', () => {
  it('has examples to run', () => {
    expect(configs.length).toBeGreaterThan(0);
  });

  it.each(configs)('%s runs and passes', async (file) => {
    let out = '';
    let err = '';
    const code = await main(['run', file, '--json'], {
      out: (t) => (out += t),
      err: (t) => (err += t),
      cwd: EXAMPLES,
    });
    expect(err).toBe('');
    expect(JSON.parse(out).passed).toBe(true);
    expect(code).toBe(0);
  });
});
