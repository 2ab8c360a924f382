import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configReferenceMarkdown } from './config-reference.js';

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
