/**
 * A vendor model's spec-coverage table: one hand-written status and note for every register, structure
 * field, command and fault code its specification defines, keyed by the names the model's code uses, plus
 * the spec's items the code has no name for. Each vendor keeps its table in `src/coverage.ts` and renders
 * it (coverage-markdown.ts) into docs/vendors/<vendor>.md, whose generated section a test keeps in step
 * with the code (generated-section.ts), so a page never claims an item the code lacks or misses one.
 *
 * What a status means, in every vendor's page:
 * - `modelled`: the model does what the specification says the item does;
 * - `checked`: decoded and validated (an illegal value is refused the way the spec says), no other effect;
 * - `not modelled`: no effect in the model, and the note says why.
 */

export const COVERAGE_STATUSES = ['modelled', 'checked', 'not modelled'] as const;
export type CoverageStatus = (typeof COVERAGE_STATUSES)[number];

export interface Coverage {
  readonly status: CoverageStatus;
  /** One line: what the model does with the item, or why it does not. */
  readonly note: string;
}

/** A structure field: the spec's name for it besides the code's key. */
export interface FieldCoverage extends Coverage {
  readonly spec: string;
}

/** A register the spec defines that the model's register map does not list. */
export interface SpecOnlyRegister extends Coverage {
  readonly name: string;
  /** Spec offset as the register overview gives it (`0x0030`, `0x4000 + 32n`, a page name). */
  readonly offset: string;
}

/** A structure field the spec defines that the model does not decode, at its spec position. */
export interface SpecOnlyField extends Coverage {
  readonly spec: string;
  readonly msb: number;
  readonly lsb: number;
}

/** A numbered item the spec defines that the code has no name for: a fault reason, a descriptor type. */
export interface SpecOnlyCode extends Coverage {
  readonly name: string;
  readonly code: number;
}

/**
 * What is wrong with a table's entries, one message per problem (none: well formed): a status that is not
 * one of `COVERAGE_STATUSES`, an empty note, a note over several lines.
 */
export function coverageProblems(
  entries: Readonly<Record<string, Coverage>> | readonly Coverage[],
): string[] {
  const named: [string, Coverage][] = Array.isArray(entries)
    ? entries.map((entry, i) => [String(i), entry])
    : Object.entries(entries);
  const problems: string[] = [];
  for (const [name, { status, note }] of named) {
    if (!(COVERAGE_STATUSES as readonly string[]).includes(status))
      problems.push(`${name}: status "${status}" is not one of ${COVERAGE_STATUSES.join(', ')}`);
    if (note.trim() === '') problems.push(`${name}: the note is empty`);
    if (note.includes('\n')) problems.push(`${name}: the note is not one line`);
  }
  return problems;
}
