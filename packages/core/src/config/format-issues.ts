/**
 * Turns zod issues into one line per problem naming its path (`vms[0].viommu.mode`) and what was expected
 * (`expected "emulated" | "nested", got "nestd"`), and suggests the nearest key for a typo.
 */
import type { z } from 'zod';
import type { ConfigIssue } from '../errors/config-error.js';
import { describe } from './units.js';

type Segment = PropertyKey;

export function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

export function toConfigIssues(
  error: z.core.$ZodError,
  schema: z.ZodType,
  prefix: readonly Segment[] = [],
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, issue.path);
      for (const key of issue.keys) {
        const hint = nearest(key, known);
        issues.push({
          path: formatPath([...path, key]),
          message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}`,
        });
      }
      continue;
    }
    issues.push({ path: formatPath(path), message: messageFor(issue) });
  }
  return issues;
}

function messageFor(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return `required (expected ${issue.expected})`;
      return `expected ${issue.expected}, got ${describe(input)}`;
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' | ')}, got ${describe(input)}`;
    case 'invalid_union': {
      const options = 'options' in issue ? issue.options : undefined;
      if (issue.discriminator && options) {
        const value = (input as Record<string, unknown> | undefined)?.[issue.discriminator];
        return `expected ${options.map((v) => JSON.stringify(v)).join(' | ')}, got ${describe(value)}`;
      }
      return `matches none of the allowed forms (got ${describe(input)})`;
    }
    case 'too_small':
      return issue.origin === 'array'
        ? `expected at least ${issue.minimum} item(s)`
        : `expected at least ${issue.minimum}, got ${describe(input)}`;
    case 'too_big':
      return issue.origin === 'array'
        ? `expected at most ${issue.maximum} item(s)`
        : `expected at most ${issue.maximum}, got ${describe(input)}`;
    default:
      return issue.message;
  }
}

/** The keys an object schema accepts at `path`, for typo suggestions. */
function knownKeys(schema: z.ZodType, path: readonly Segment[]): string[] {
  let node: unknown = schema;
  for (const seg of path) {
    node = unwrap(node);
    const def = defOf(node);
    if (def?.type === 'object' && typeof seg === 'string') node = (def.shape as Record<string, unknown>)[seg];
    else if (def?.type === 'array') node = def.element;
    else return [];
  }
  const def = defOf(unwrap(node));
  if (def?.type === 'object') return Object.keys(def.shape as object);
  return [];
}

interface Def {
  type: string;
  shape?: unknown;
  element?: unknown;
  innerType?: unknown;
  in?: unknown;
  schema?: unknown;
}

function defOf(node: unknown): Def | undefined {
  return (node as { _zod?: { def?: Def } } | undefined)?._zod?.def;
}

function unwrap(node: unknown): unknown {
  for (let d = defOf(node); d; d = defOf(node)) {
    if (d.innerType) node = d.innerType;
    else if (d.type === 'pipe') node = d.in;
    else break;
  }
  return node;
}

function nearest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}
