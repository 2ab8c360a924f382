import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configReferenceMarkdown, schemaReferenceTable } from './config-reference.js';
import { sizeField } from './fields.js';

const DOC = new URL('../../../../docs/configuration.md', import.meta.url);
const BEGIN = '<!-- BEGIN GENERATED: configReferenceMarkdown() -->';
const END = '<!-- END GENERATED -->';

describe('docs/configuration.md', () => {
  it('documents every key of the schema, exactly as the schema defines it', () => {
    const text = readFileSync(DOC, 'utf8');
    const start = text.indexOf(BEGIN);
    const end = text.indexOf(END);
    expect(start, `${DOC.pathname} lacks the generated-section markers`).toBeGreaterThan(-1);
    const expected = `${BEGIN}\n${configReferenceMarkdown()}${END}`;
    // IOMMUKIT_UPDATE_DOCS=1 rewrites the section; the assertion then checks what was written.
    if (process.env.IOMMUKIT_UPDATE_DOCS === '1')
      writeFileSync(DOC, text.slice(0, start) + expected + text.slice(end + END.length));
    const current = readFileSync(DOC, 'utf8');
    expect(current.slice(current.indexOf(BEGIN), current.indexOf(END) + END.length)).toBe(expected);
  });

  it('lists nested keys and every scenario op', () => {
    const md = configReferenceMarkdown();
    for (const key of ['`memory.ram[].base`', '`devices[].ats.atcEntries`', '`vms[].viommus[].mode`'])
      expect(md).toContain(key);
    for (const op of ['alloc', 'domain', 'attach', 'detach', 'map', 'unmap', 'dma', 'check'])
      expect(md).toContain(`#### op: "${op}"`);
  });
});

describe('schemaReferenceTable', () => {
  it('gives each key its type, whether it is required, its default and its description', () => {
    const schema = z.strictObject({
      ways: z.number().int().min(1).max(32).default(4).describe('ways per set'),
      ratio: z.number().describe('any number'),
      big: z.number().int().min(0).describe('no upper bound'),
      huge: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      bits: z.literal([3, 'x']).optional(),
      mode: z.enum(['a', 'b']).optional(),
      names: z.array(z.string()).default([]),
      map: z.record(z.string(), z.number()).optional(),
      either: z.union([z.number(), z.string()]),
      size: sizeField.default(4096n).describe('bytes | pages'),
      group: z
        .strictObject({ on: z.boolean().default(false) })
        .prefault({})
        .describe('a group'),
      empty: z.strictObject({}).default({}),
      list: z.array(z.strictObject({ name: z.string().describe('its name') })).optional(),
    });
    expect(schemaReferenceTable(schema).split('\n')).toEqual([
      '| key | type | required | default | description |',
      '|---|---|---|---|---|',
      '| `ways` | integer 1…32 | no | `4` | ways per set |',
      '| `ratio` | number | yes |  | any number |',
      '| `big` | integer | yes |  | no upper bound |',
      '| `huge` | integer | yes |  |  |',
      '| `bits` | 3 \\| "x" | no |  |  |',
      '| `mode` | "a" \\| "b" | no |  |  |',
      '| `names` | list of string | no | `[]` |  |',
      '| `map` | map | no |  |  |',
      '| `either` | one of several forms | yes |  |  |',
      '| `size` | size | no | `4KiB` | bytes \\| pages |',
      '| `group` | object | no | `{}` | a group |',
      '| `group.on` | boolean | no | `false` |  |',
      '| `empty` | object | no | `{}` |  |',
      '| `list` | list of object | no |  |  |',
      '| `list[]` | object | yes |  |  |',
      '| `list[].name` | string | yes |  | its name |',
      '',
    ]);
  });
});
