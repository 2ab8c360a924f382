/**
 * A document section generated from code (a vendor page's coverage tables, the configuration reference),
 * between two marker lines. Tests compare the section with what the code generates now, so the document
 * cannot drift; with IOMMUKIT_UPDATE_DOCS=1 they rewrite it first and then check what they wrote.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** The environment variable that makes `syncGeneratedSection` rewrite the section. */
export const UPDATE_DOCS_ENV = 'IOMMUKIT_UPDATE_DOCS';

export interface GeneratedSection {
  /** The document, e.g. `new URL('../../../docs/vendors/vtd.md', import.meta.url)`. */
  readonly doc: URL | string;
  /** The marker lines around the section, e.g. `<!-- BEGIN GENERATED: name() -->`, `<!-- END GENERATED -->`. */
  readonly begin: string;
  readonly end: string;
  /** What the code generates between the markers. */
  readonly content: string;
}

export interface GeneratedSectionState {
  /** The section as the code generates it, markers included. */
  readonly expected: string;
  /** The section as the document holds it (after a rewrite), markers included; undefined without markers. */
  readonly actual: string | undefined;
}

/** The markers and everything between them in `text`, or undefined when a marker is missing. */
function section(text: string, begin: string, end: string): { start: number; stop: number } | undefined {
  const start = text.indexOf(begin);
  const endAt = start < 0 ? -1 : text.indexOf(end, start + begin.length);
  return endAt < 0 ? undefined : { start, stop: endAt + end.length };
}

/**
 * Reads the generated section of `s.doc` and what the code generates for it; with `update` (by default,
 * when IOMMUKIT_UPDATE_DOCS=1) first rewrites the section in place. A document without both markers is
 * never written.
 */
export function syncGeneratedSection(
  s: GeneratedSection,
  update = process.env[UPDATE_DOCS_ENV] === '1',
): GeneratedSectionState {
  const expected = `${s.begin}\n${s.content}${s.end}`;
  let text = readFileSync(s.doc, 'utf8');
  let found = section(text, s.begin, s.end);
  if (found !== undefined && update) {
    writeFileSync(s.doc, text.slice(0, found.start) + expected + text.slice(found.stop));
    text = readFileSync(s.doc, 'utf8');
    found = section(text, s.begin, s.end);
  }
  return { expected, actual: found && text.slice(found.start, found.stop) };
}
