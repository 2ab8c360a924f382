import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { syncGeneratedSection, UPDATE_DOCS_ENV } from './generated-section.js';

const BEGIN = '<!-- BEGIN GENERATED: x() -->';
const END = '<!-- END GENERATED -->';
const OLD = `# Title\n\nIntro.\n\n${BEGIN}\nold table\n${END}\n\nOutro.\n`;

describe('syncGeneratedSection', () => {
  let dir: string;
  let doc: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'generated-section-'));
    doc = join(dir, 'page.md');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the section and what the code generates, leaving the document alone', () => {
    writeFileSync(doc, OLD);
    expect(syncGeneratedSection({ doc, begin: BEGIN, end: END, content: 'new table\n' }, false)).toEqual({
      expected: `${BEGIN}\nnew table\n${END}`,
      actual: `${BEGIN}\nold table\n${END}`,
    });
    expect(readFileSync(doc, 'utf8')).toBe(OLD);
  });

  it('rewrites only the section when asked to, and reads back what it wrote', () => {
    writeFileSync(doc, OLD);
    const state = syncGeneratedSection({ doc, begin: BEGIN, end: END, content: 'new table\n' }, true);
    expect(state.actual).toBe(state.expected);
    expect(readFileSync(doc, 'utf8')).toBe(`# Title\n\nIntro.\n\n${BEGIN}\nnew table\n${END}\n\nOutro.\n`);
  });

  it('rewrites when IOMMUKIT_UPDATE_DOCS=1 and no choice is passed', () => {
    writeFileSync(doc, OLD);
    const saved = process.env[UPDATE_DOCS_ENV];
    process.env[UPDATE_DOCS_ENV] = '1';
    try {
      syncGeneratedSection({ doc, begin: BEGIN, end: END, content: 'new\n' });
    } finally {
      if (saved === undefined) delete process.env[UPDATE_DOCS_ENV];
      else process.env[UPDATE_DOCS_ENV] = saved;
    }
    expect(readFileSync(doc, 'utf8')).toContain(`${BEGIN}\nnew\n${END}`);
  });

  it('never writes a document that lacks a marker', () => {
    const text = `# Title\n\n${BEGIN}\nno end marker\n`;
    writeFileSync(doc, text);
    expect(
      syncGeneratedSection({ doc, begin: BEGIN, end: END, content: 'new\n' }, true).actual,
    ).toBeUndefined();
    expect(readFileSync(doc, 'utf8')).toBe(text);
  });

  it('takes the end marker after the begin marker', () => {
    writeFileSync(doc, `${END}\n${BEGIN}\nold\n${END}\n`);
    expect(syncGeneratedSection({ doc, begin: BEGIN, end: END, content: 'x\n' }, false).actual).toBe(
      `${BEGIN}\nold\n${END}`,
    );
  });
});
