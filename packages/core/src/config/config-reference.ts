/**
 * Generates the configuration reference (docs/configuration.md) from the zod schema itself: every key,
 * its type, default and description. A test fails when the document and the schema disagree, so the
 * reference cannot drift.
 */
import { type ZodType, z } from 'zod';
import { ScenarioStepSchema } from './scenario-schema.js';
import { SystemConfigSchema } from './schema.js';
import { formatSize } from './units.js';

interface Row {
  readonly key: string;
  readonly type: string;
  readonly required: boolean;
  readonly defaultValue: string;
  readonly description: string;
}

interface Def {
  readonly type: string;
  readonly shape?: Record<string, ZodType>;
  readonly element?: ZodType;
  readonly innerType?: ZodType;
  readonly entries?: Record<string, string>;
  readonly values?: readonly unknown[];
  readonly defaultValue?: unknown;
}

const WRAPPERS = new Set(['optional', 'default', 'prefault']);

const defOf = (node: ZodType): Def => (node as unknown as { _zod: { def: Def } })._zod.def;

export function configReferenceMarkdown(): string {
  const rows: Row[] = [];
  walk(SystemConfigSchema, '', rows);
  const sections = [table(rows.filter((r) => !r.key.startsWith('scenario.steps[]')))];
  sections.push(
    '### Scenario steps\n\n`scenario.steps[]` is a list of steps; the `op` key selects the kind of step.\n',
  );
  for (const option of (ScenarioStepSchema as unknown as { options: ZodType[] }).options) {
    const stepRows: Row[] = [];
    walk(option, '', stepRows);
    const op = stepRows.find((r) => r.key === 'op')?.type ?? '?';
    sections.push(
      `#### op: ${op}\n\n${option.description ?? ''}\n\n${table(stepRows.filter((r) => r.key !== 'op'))}`,
    );
  }
  return sections.join('\n');
}

/**
 * The reference table of one object schema — a plugin's `iommus[].options`, say — in the same form as the
 * configuration reference, so vendor documents can generate their options tables from the schema too.
 */
export function schemaReferenceTable(schema: ZodType): string {
  const rows: Row[] = [];
  walk(schema, '', rows);
  return table(rows);
}

function walk(node: ZodType, key: string, rows: Row[], inheritedRequired = true): void {
  const description = node.description ?? '';
  let required = inheritedRequired;
  let defaultValue = '';
  let inner = node;
  // `prefault` (an input default the inner schema parses, as option groups use) reads like `default` here.
  for (let def = defOf(inner); WRAPPERS.has(def.type); def = defOf(inner)) {
    required = false;
    if (def.type !== 'optional') defaultValue = formatDefault(def.defaultValue);
    inner = def.innerType!;
  }
  const def = defOf(inner);
  if (key)
    rows.push({
      key,
      type: typeName(inner),
      required,
      defaultValue,
      description: description || (inner.description ?? ''),
    });
  if (def.type === 'object') {
    for (const [child, schema] of Object.entries(def.shape!))
      walk(schema, key ? `${key}.${child}` : child, rows);
  } else if (def.type === 'array' && defOf(def.element!).type === 'object') {
    walk(def.element!, `${key}[]`, rows);
  }
}

function typeName(node: ZodType): string {
  const title = z.globalRegistry.get(node)?.title;
  if (title) return title;
  const def = defOf(node);
  switch (def.type) {
    case 'enum':
      return Object.values(def.entries!)
        .map((v) => `"${v}"`)
        .join(' \\| ');
    case 'literal':
      return def.values!.map((v) => (typeof v === 'string' ? `"${v}"` : String(v))).join(' \\| ');
    case 'number':
      return numberRange(node as z.ZodNumber);
    case 'array':
      return `list of ${typeName(def.element!)}`;
    case 'record':
      return 'map';
    case 'union':
      return 'one of several forms';
    default:
      return def.type;
  }
}

/** `integer 0…32`, `number`: the bounds a number schema enforces. */
function numberRange(node: z.ZodNumber): string {
  const kind = node.isInt ? 'integer' : 'number';
  const { minValue: min, maxValue: max } = node;
  const finite = (v: number | null) =>
    v !== null && Number.isFinite(v) && Math.abs(v) < Number.MAX_SAFE_INTEGER;
  return finite(min) && finite(max) ? `${kind} ${min}…${max}` : kind;
}

function formatDefault(value: unknown): string {
  if (typeof value === 'bigint') return formatSize(value);
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0)
    return Array.isArray(value) ? '[]' : '{}';
  return JSON.stringify(value);
}

function table(rows: readonly Row[]): string {
  const lines = ['| key | type | required | default | description |', '|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(
      `| \`${r.key}\` | ${r.type} | ${r.required ? 'yes' : 'no'} | ${r.defaultValue && `\`${r.defaultValue}\``} | ${r.description.replaceAll('|', '\\|')} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
