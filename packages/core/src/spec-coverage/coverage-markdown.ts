/**
 * The markdown of a vendor page's coverage tables: an overview counting each status per table, then one
 * table per kind of item (registers, structure fields, commands, fault codes), each with a one-line
 * summary and an optional note after it. Rows are sorted by `order` (an offset, a lowest bit, a code), so
 * a table reads in the spec's order whatever order the coverage table lists its items in.
 */
import { type BitRun, formatBits } from './bit-runs.js';
import {
  COVERAGE_STATUSES,
  type Coverage,
  type CoverageStatus,
  type FieldCoverage,
  type SpecOnlyCode,
  type SpecOnlyField,
  type SpecOnlyRegister,
} from './coverage.js';

/** One row: the item's name, where it is (offset, bits, code), its coverage, its place in the table. */
export interface CoverageRow {
  readonly name: string;
  readonly where: string;
  readonly coverage: Coverage;
  /** Sort key: offset, lowest bit, opcode or code. */
  readonly order: number;
}

/** One table: its title, the names of its first two columns, its rows and an optional closing note. */
export interface CoverageSection {
  readonly title: string;
  readonly headers: readonly [item: string, where: string];
  readonly rows: readonly CoverageRow[];
  readonly after?: string;
}

/** `value` as a spec writes a hexadecimal number: `0x` and upper-case digits, at least `digits` of them. */
export function specHex(value: number, digits = 2): string {
  return `0x${value.toString(16).toUpperCase().padStart(digits, '0')}`;
}

/** Text made safe for one markdown table cell. */
export function markdownCell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

export function coverageCounts(items: readonly Coverage[]): Record<CoverageStatus, number> {
  const counts = Object.fromEntries(COVERAGE_STATUSES.map((s) => [s, 0])) as Record<CoverageStatus, number>;
  for (const item of items) counts[item.status]++;
  return counts;
}

/** `N items: a modelled, b checked, c not modelled.` */
export function coverageSummary(items: readonly Coverage[]): string {
  const counts = coverageCounts(items);
  return `${items.length} items: ${COVERAGE_STATUSES.map((s) => `${counts[s]} ${s}`).join(', ')}.`;
}

/** The rows as a markdown table (status and note columns after the two named ones), sorted by order. */
export function coverageTable(headers: readonly [string, string], rows: readonly CoverageRow[]): string {
  const lines = [
    `| ${headers[0]} | ${headers[1]} | status | note |`,
    '|---|---|---|---|',
    ...[...rows]
      .sort((a, b) => a.order - b.order)
      .map((r) => `| ${r.name} | ${r.where} | ${r.coverage.status} | ${markdownCell(r.coverage.note)} |`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The rows of a structure's fields: each decoded field as `` `SPEC` (`key`) `` at the bits `bits` gives
 * it, and each spec-only field as `` `SPEC` (not decoded) `` at its spec position. `prefix` goes before
 * every spec name (a descriptor's name, when one table holds several structures).
 */
export function structureRows<K extends string>(
  coverage: Readonly<Record<K, FieldCoverage>>,
  bits: Readonly<Record<K, readonly BitRun[]>>,
  specOnly: readonly SpecOnlyField[],
  prefix = '',
): CoverageRow[] {
  const rows: CoverageRow[] = (Object.keys(coverage) as K[]).map((key) => ({
    name: `\`${prefix}${coverage[key].spec}\` (\`${key}\`)`,
    where: formatBits(bits[key]),
    coverage: coverage[key],
    order: bits[key][0]?.lsb ?? -1,
  }));
  for (const field of specOnly)
    rows.push({
      name: `\`${prefix}${field.spec}\` (not decoded)`,
      where: formatBits([field]),
      coverage: field,
      order: field.lsb,
    });
  return rows;
}

/**
 * The rows of numbered codes (commands, events, fault reasons): each named code the code defines, at its
 * value, and each spec-only one as `name (notInCode)` (its name is the spec's words, not an identifier).
 */
export function codeRows<K extends string>(
  codes: Readonly<Record<K, number>>,
  coverage: Readonly<Record<K, Coverage>>,
  specOnly: readonly SpecOnlyCode[],
  notInCode: string,
): CoverageRow[] {
  return [
    ...(Object.keys(coverage) as K[]).map((name) => ({
      name: `\`${name}\``,
      where: specHex(codes[name]),
      coverage: coverage[name],
      order: codes[name],
    })),
    ...specOnly.map((c) => ({
      name: `${c.name} (${notInCode})`,
      where: specHex(c.code),
      coverage: c,
      order: c.code,
    })),
  ];
}

/** How a vendor's register map describes one register for its coverage rows. */
export interface RegisterMap<K extends string> {
  readonly offsets: Readonly<Record<K, number>>;
  /** `32-bit`, `64-bit` or a longer description. */
  width(name: K): string;
  /** The features the register needs to be present (empty or undefined when it always is). */
  presence(name: K): string | undefined;
}

/**
 * The rows of a register map: each register at its offset and width, its note prefixed with the features
 * it needs; then the spec-only registers, at their offset when it is one, else after everything in list
 * order (`outside`: the first order value beyond the map).
 */
export function registerRows<K extends string>(
  coverage: Readonly<Record<K, Coverage>>,
  map: RegisterMap<K>,
  specOnly: readonly SpecOnlyRegister[],
  outside: number,
): CoverageRow[] {
  const rows: CoverageRow[] = (Object.keys(coverage) as K[]).map((name) => {
    const presence = map.presence(name);
    const c = coverage[name];
    return {
      name: `\`${name}\``,
      where: `${specHex(map.offsets[name], 4)} (${map.width(name)})`,
      coverage: presence ? { status: c.status, note: `Present only with ${presence}. ${c.note}` } : c,
      order: map.offsets[name],
    };
  });
  specOnly.forEach((r, i) => {
    const start = /^0x[0-9A-F]+/i.exec(r.offset);
    rows.push({
      name: `\`${r.name}\``,
      where: r.offset,
      coverage: r,
      order: start ? Number.parseInt(start[0], 16) : outside + i,
    });
  });
  return rows;
}

/** The overview (a count of each status per table) and every table, as one markdown text. */
export function coverageMarkdown(sections: readonly CoverageSection[]): string {
  const overview = [
    `| table | ${COVERAGE_STATUSES.join(' | ')} | total |`,
    `|---|${COVERAGE_STATUSES.map(() => '---|').join('')}---|`,
    ...sections.map((s) => {
      const counts = coverageCounts(s.rows.map((r) => r.coverage));
      return `| ${s.title} | ${COVERAGE_STATUSES.map((st) => counts[st]).join(' | ')} | ${s.rows.length} |`;
    }),
  ].join('\n');
  return [
    `### Overview\n\n${overview}\n`,
    ...sections.map(
      (s) =>
        `### ${s.title}\n\n${coverageSummary(s.rows.map((r) => r.coverage))}\n\n${coverageTable(s.headers, s.rows)}${s.after ? `\n${s.after}\n` : ''}`,
    ),
  ].join('\n');
}
