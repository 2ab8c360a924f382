/**
 * Tracing costs nothing when it is off: every call that hands a message to a tracer is behind a check of
 * `enabled`, so no message string (nor its arguments object) is built on a translation, walk or command
 * while nobody listens. Checked over every package's production sources; a trace wrapper (a method named
 * `trace` that passes its parameters on) is the one place a call needs no check of its own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** A line that opens a method or function body: where the look-back for a guard stops. */
const DECLARATION =
  /^\s*(?:(?:private|public|protected|static|async|export|function)\s+)*[\w$]+\s*\([^)]*\)?[^=]*\{$/;
const TRACE_CALL = /\.trace\(/;

/** The trace calls in `text` with no `enabled` check since the start of their method. */
function unguardedTraceCalls(text: string): number[] {
  const lines = text.split('\n');
  const found: number[] = [];
  lines.forEach((line, i) => {
    if (!TRACE_CALL.test(line)) return;
    for (let j = i; j >= 0; j--) {
      const at = lines[j]!;
      if (/\.enabled\b/.test(at)) return;
      if (j < i && DECLARATION.test(at)) {
        if (!/^\s*(?:private\s+)?trace\(/.test(at)) found.push(i + 1);
        return;
      }
    }
    found.push(i + 1);
  });
  return found;
}

describe('trace call sites', () => {
  it('the check finds an unguarded call, and accepts a guard, an early return and a wrapper', () => {
    const code = [
      'class A {',
      '  a(x: number): void {',
      '    this.trace("a", "x = " + x);',
      '  }',
      '  b(x: number): void {',
      '    if (this.tracer.enabled) this.trace("b", "x = " + x);',
      '  }',
      '  c(x: number): void {',
      '    if (!this.tracer.enabled) return;',
      '    const y = x + 1;',
      '    this.tracer.trace("hw", "a", "c", "y = " + y);',
      '  }',
      '  private trace(name: string, message: string): void {',
      '    this.tracer.trace("hw", "a", name, message);',
      '  }',
      '}',
    ].join('\n');
    expect(unguardedTraceCalls(code)).toEqual([3]);
  });

  it('every production trace call checks tracer.enabled before building its message', () => {
    const packages = join(root, 'packages');
    const offenders = readdirSync(packages).flatMap((name) => {
      let files: string[];
      try {
        files = sources(join(packages, name, 'src'));
      } catch {
        return [];
      }
      return files.flatMap((file) =>
        unguardedTraceCalls(readFileSync(file, 'utf8')).map((line) => `${relative(root, file)}:${line}`),
      );
    });
    expect(offenders).toEqual([]);
  });
});
