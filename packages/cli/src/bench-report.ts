/**
 * `iommukit bench` output for people: per suite, one table with each case beside its group's baseline —
 * time and heap bytes per operation, the ratio to the baseline (baseline time ÷ case time, so 1× is as fast as the bare
 * baseline and 0.1× ten times slower), the spread over rounds, and the project's target where one is set.
 */
import type { CaseResult, Spread, SuiteResult } from '@iommukit/testing/bench';
import Table from 'cli-table3';
import picocolors from 'picocolors';

type Colors = ReturnType<typeof picocolors.createColors>;

export function renderSuite(result: SuiteResult, color = false): string {
  const pc = picocolors.createColors(color);
  const table = new Table({
    head: ['case', 'time/op', 'alloc/op', 'ratio to baseline', 'spread (rounds)', 'target'],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', 'right', 'right', 'right', 'left'],
  });
  for (const group of result.groups) {
    const b = group.baseline;
    table.push([{ colSpan: 6, content: pc.bold(group.name) }]);
    table.push([`  baseline: ${b.name}`, time(b.ns.median), bytes(b.bytes), '1×', '', '']);
    for (const c of group.cases) {
      const r = c.ratio!;
      table.push([
        `  ${c.name}`,
        time(c.ns.median),
        bytes(c.bytes),
        ratio(r.median),
        spread(r),
        target(c, pc),
      ]);
    }
  }
  const facts = result.facts.map((fact) => `  · ${fact}\n`).join('');
  const rounds = `${result.rounds} round${result.rounds === 1 ? '' : 's'}`;
  return `${pc.bold(result.suite)} (${result.file}, ${rounds})\n  ${result.about}\n${table.toString()}\n${facts}\n`;
}

/** A time per operation with a unit that keeps three significant digits. */
export function time(ns: number): string {
  if (ns < 1000) return `${ns.toPrecision(3)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`;
  return `${(ns / 1e9).toPrecision(3)} s`;
}

/** Heap bytes per operation; below one byte is noise of the measurement, shown as 0. */
export function bytes(value: number | undefined): string {
  if (value === undefined) return '?';
  if (value < 1) return '0 B';
  if (value < 1024) return `${Math.round(value)} B`;
  return `${(value / 1024).toPrecision(3)} KiB`;
}

export function ratio(value: number): string {
  return `${value >= 10 ? value.toFixed(1) : value.toPrecision(2)}×`;
}

function spread(s: Spread): string {
  return s.min === s.max ? '' : `${ratio(s.min)}–${ratio(s.max)}`;
}

function target(c: CaseResult, pc: Colors): string {
  if (c.target === undefined) return '';
  const text = `≥ ${ratio(c.target)}`;
  return c.met ? pc.green(`${text} ✓`) : pc.red(`${text} ✗`);
}
