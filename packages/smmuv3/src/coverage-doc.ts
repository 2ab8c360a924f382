/**
 * Renders the status tables of docs/vendors/smmuv3.md from `coverage.ts`. Positions come from the code, never
 * from the table: register offsets from `REG`/`REG64`, STE and CD scalar fields from `STE_LAYOUT`/
 * `CD_LAYOUT` and the address fields (and every PRI entry field) by encoding the field alone through the
 * codec and reading back which bits it set; opcodes from `CMD_OPCODE`; event numbers from `EVENT_ID`; which
 * registers exist only with MSI or PRI from `registerTable`; the default ID registers from `idrValues`.
 */

import { schemaReferenceTable } from '@iommukit/core';
import {
  CD_FIELD_COVERAGE,
  CD_SPEC_ONLY_FIELDS,
  COMMAND_COVERAGE,
  COVERAGE_STATUSES,
  type CommandCoverageName,
  type Coverage,
  type CoverageStatus,
  EVENT_COVERAGE,
  type FieldCoverage,
  PRI_ENTRY_COVERAGE,
  REGISTER_COVERAGE,
  SPEC_ONLY_REGISTERS,
  type SpecOnlyField,
  STE_FIELD_COVERAGE,
  STE_SPEC_ONLY_FIELDS,
} from './coverage.js';
import type { Cd } from './hw/cd.js';
import { CD_WORDS, decodeCd, encodeCd } from './hw/cd.js';
import { CFGI_ALL_RANGE, CMD_OPCODE, type Command, encodeCommand } from './hw/commands.js';
import { EVENT_ID, type EventName } from './hw/events.js';
import { idrValues } from './hw/idr.js';
import { featuresFromOptions, type Smmuv3Options, Smmuv3OptionsSchema } from './hw/options.js';
import { decodePriEntry, encodePriEntry, PRI_ENTRY_WORDS, type PriEntry } from './hw/priq.js';
import { PAGE1, REG, REG64, type RegName, registerTable } from './hw/regs.js';
import { decodeSte, encodeSte, STE_WORDS, type Ste } from './hw/ste.js';

/** A run of set bits, most significant first. */
export interface BitRun {
  readonly msb: number;
  readonly lsb: number;
}

/** The runs of set bits in little-endian 32-bit words, lowest first. */
export function bitRuns(words: ArrayLike<number>): BitRun[] {
  const runs: BitRun[] = [];
  let start = -1;
  const total = words.length * 32;
  for (let bit = 0; bit <= total; bit++) {
    const set = bit < total && ((words[bit >>> 5]! >>> (bit & 31)) & 1) === 1;
    if (set && start < 0) start = bit;
    if (!set && start >= 0) {
      runs.push({ msb: bit - 1, lsb: start });
      start = -1;
    }
  }
  return runs;
}

export function formatBits(runs: readonly BitRun[]): string {
  return runs.map((r) => (r.msb === r.lsb ? `[${r.lsb}]` : `[${r.msb}:${r.lsb}]`)).join(', ');
}

/**
 * Where each field of a structure lives: every field is encoded alone, at its largest value (read back by
 * decoding an all-ones entry), and the bits it set are its position.
 */
function fieldBits<T extends object>(
  words: number,
  decode: (w: ArrayLike<number>) => T,
  encode: (fields: Partial<T>) => Uint32Array,
): Record<keyof T, BitRun[]> {
  const largest = decode(new Uint32Array(words).fill(0xffff_ffff)) as Record<string, unknown>;
  const out: Record<string, BitRun[]> = {};
  for (const [key, value] of Object.entries(largest)) {
    out[key] = bitRuns(encode({ [key]: value } as Partial<T>));
  }
  return out as Record<keyof T, BitRun[]>;
}

export const steFieldBits = (): Record<keyof Ste, BitRun[]> => fieldBits(STE_WORDS, decodeSte, encodeSte);
export const cdFieldBits = (): Record<keyof Cd, BitRun[]> => fieldBits(CD_WORDS, decodeCd, encodeCd);
export const priEntryFieldBits = (): Record<keyof PriEntry, BitRun[]> =>
  fieldBits(PRI_ENTRY_WORDS, decodePriEntry, encodePriEntry);

/** The options every key of which is at its default. */
export function defaultSmmuv3Options(): Smmuv3Options {
  return Smmuv3OptionsSchema.parse({});
}

/** What a register's presence depends on: `MSI`, `PRI`, both, or nothing (always present). */
export function registerPresence(name: RegName): string {
  const offsets = (overrides: Partial<Smmuv3Options>): Set<number> => {
    const options = { ...defaultSmmuv3Options(), ...overrides };
    return new Set(registerTable(featuresFromOptions(options), options).map((d) => d.offset));
  };
  const needs: string[] = [];
  if (!offsets({ msi: false }).has(REG[name])) needs.push('MSI');
  if (!offsets({ pri: false }).has(REG[name])) needs.push('PRI');
  return needs.join(' and ');
}

const hex = (value: number, digits = 2): string =>
  `0x${value.toString(16).toUpperCase().padStart(digits, '0')}`;
const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

interface Row {
  readonly name: string;
  readonly where: string;
  readonly coverage: Coverage;
  /** Sort key (offset, lowest bit, opcode, event number). */
  readonly order: number;
}

function counts(rows: readonly Coverage[]): Record<CoverageStatus, number> {
  const out = { modelled: 0, checked: 0, 'not modelled': 0 };
  for (const r of rows) out[r.status]++;
  return out;
}

function summary(rows: readonly Coverage[]): string {
  const c = counts(rows);
  return `${rows.length} items: ${COVERAGE_STATUSES.map((s) => `${c[s]} ${s}`).join(', ')}.`;
}

function table(headers: readonly [string, string], rows: readonly Row[]): string {
  const lines = [
    `| ${headers[0]} | ${headers[1]} | status | note |`,
    '|---|---|---|---|',
    ...[...rows]
      .sort((a, b) => a.order - b.order)
      .map((r) => `| ${r.name} | ${r.where} | ${r.coverage.status} | ${cell(r.coverage.note)} |`),
  ];
  return `${lines.join('\n')}\n`;
}

function registerRows(): Row[] {
  const rows: Row[] = [];
  for (const name of Object.keys(REGISTER_COVERAGE) as RegName[]) {
    const offset = REG[name];
    const width = REG64.includes(name) ? '64-bit' : '32-bit';
    const page = offset >= PAGE1 ? `page 1 + ${hex(offset - PAGE1, 4)}` : '';
    const presence = registerPresence(name);
    const c = REGISTER_COVERAGE[name];
    rows.push({
      name: `\`${name}\``,
      where: `${hex(offset, 4)} (${[width, page].filter(Boolean).join(', ')})`,
      coverage: presence ? { status: c.status, note: `Present only with ${presence}. ${c.note}` } : c,
      order: offset,
    });
  }
  SPEC_ONLY_REGISTERS.forEach((r, i) => {
    const start = /^0x[0-9A-F]+/i.exec(r.offset);
    rows.push({
      name: `\`${r.name}\``,
      where: r.offset,
      coverage: r,
      // Pages outside the register window sort last, in list order.
      order: start ? Number.parseInt(start[0], 16) : 2 * PAGE1 + i,
    });
  });
  return rows;
}

function structureRows<K extends string>(
  coverage: Readonly<Record<K, FieldCoverage>>,
  bits: Readonly<Record<K, readonly BitRun[]>>,
  specOnly: readonly SpecOnlyField[],
): Row[] {
  const rows: Row[] = (Object.keys(coverage) as K[]).map((key) => ({
    name: `\`${coverage[key].spec}\` (\`${key}\`)`,
    where: formatBits(bits[key]),
    coverage: coverage[key],
    order: bits[key][0]?.lsb ?? -1,
  }));
  for (const f of specOnly) {
    rows.push({
      name: `\`${f.spec}\` (not decoded)`,
      where: formatBits([{ msb: f.msb, lsb: f.lsb }]),
      coverage: f,
      order: f.lsb,
    });
  }
  return rows;
}

/** Bits of a `words`-word structure that neither a decoded field nor a spec-only field covers. */
export function uncoveredBits(
  words: number,
  bits: Readonly<Record<string, readonly BitRun[]>>,
  specOnly: readonly SpecOnlyField[],
): BitRun[] {
  const free = new Uint32Array(words).fill(0xffff_ffff);
  const clear = (r: BitRun) => {
    for (let b = r.lsb; b <= r.msb; b++) free[b >>> 5] = (free[b >>> 5]! & ~(1 << (b & 31))) >>> 0;
  };
  for (const runs of Object.values(bits)) runs.forEach(clear);
  specOnly.forEach(clear);
  return bitRuns(free);
}

function commandRows(): Row[] {
  return (Object.keys(COMMAND_COVERAGE) as CommandCoverageName[]).map((name) => {
    let where: string;
    let opcode: number;
    if (name in CMD_OPCODE) {
      opcode = CMD_OPCODE[name as keyof typeof CMD_OPCODE];
      where = hex(opcode);
    } else {
      // A command the code names that shares another's opcode (CMD_CFGI_ALL).
      opcode = encodeCommand({ op: name } as Command)[0]! & 0xff;
      where = name === 'CFGI_ALL' ? `${hex(opcode)}, Range = ${CFGI_ALL_RANGE}` : hex(opcode);
    }
    return { name: `\`CMD_${name}\``, where, coverage: COMMAND_COVERAGE[name], order: opcode + 0.5 };
  });
}

function eventRows(): Row[] {
  return (Object.keys(EVENT_COVERAGE) as EventName[]).map((name) => ({
    name: `\`${name}\``,
    where: hex(EVENT_ID[name]),
    coverage: EVENT_COVERAGE[name],
    order: EVENT_ID[name],
  }));
}

function defaultIdrs(): string {
  const options = defaultSmmuv3Options();
  const ids = idrValues(featuresFromOptions(options), options);
  const minor = ids.AIDR & 0xf;
  const major = (ids.AIDR >>> 4) & 0xf;
  const lines = [
    '| register | value |',
    '|---|---|',
    ...Object.entries(ids).map(([name, value]) => `| \`${name}\` | \`${hex(value >>> 0, 8)}\` |`),
  ];
  // AIDR.ArchMajorRev 0 is SMMUv3; ArchMinorRev is the x of SMMUv3.x.
  return `With every option at its default, an instance claims SMMUv${3 + major}.${minor} (AIDR) and its ID registers read:\n\n${lines.join('\n')}\n`;
}

interface Section {
  readonly title: string;
  readonly rows: readonly Row[];
  readonly headers: readonly [string, string];
  readonly after?: string;
}

/** The generated part of docs/vendors/smmuv3.md: the default IDRs, an overview and one table per kind. */
export function smmuv3StatusMarkdown(): string {
  const ste = steFieldBits();
  const cd = cdFieldBits();
  const pri = priEntryFieldBits();
  const steGaps = uncoveredBits(STE_WORDS, ste, STE_SPEC_ONLY_FIELDS);
  const cdGaps = uncoveredBits(CD_WORDS, cd, CD_SPEC_ONLY_FIELDS);
  const priGaps = uncoveredBits(PRI_ENTRY_WORDS, pri, []);
  const sections: Section[] = [
    { title: 'Registers', headers: ['register', 'offset'], rows: registerRows() },
    {
      title: 'STE fields',
      headers: ['field', 'bits'],
      rows: structureRows(STE_FIELD_COVERAGE, ste, STE_SPEC_ONLY_FIELDS),
      after: `Bits no row covers are RES0 in the spec and not checked by the model: ${formatBits(steGaps)}.`,
    },
    {
      title: 'CD fields',
      headers: ['field', 'bits'],
      rows: structureRows(CD_FIELD_COVERAGE, cd, CD_SPEC_ONLY_FIELDS),
      after: `Bits no row covers are RES0 in the spec and not checked by the model: ${formatBits(cdGaps)}.`,
    },
    { title: 'Commands', headers: ['command', 'opcode'], rows: commandRows() },
    { title: 'Events', headers: ['event', 'number'], rows: eventRows() },
    {
      title: 'PRI queue entry fields',
      headers: ['field', 'bits'],
      rows: structureRows(PRI_ENTRY_COVERAGE, pri, []),
      after: `The model writes the bits no row covers as zero (RES0): ${formatBits(priGaps)}.`,
    },
  ];
  const overview = [
    `| table | ${COVERAGE_STATUSES.join(' | ')} | total |`,
    '|---|---|---|---|---|',
    ...sections.map((s) => {
      const c = counts(s.rows.map((r) => r.coverage));
      return `| ${s.title} | ${COVERAGE_STATUSES.map((st) => c[st]).join(' | ')} | ${s.rows.length} |`;
    }),
  ].join('\n');
  const parts = [
    `### Options\n\nThe keys of \`iommus[].options\` for \`plugin: smmuv3\` (\`Smmuv3OptionsSchema\`); every key has a default.\n\n${schemaReferenceTable(Smmuv3OptionsSchema)}`,
    `### Default instance\n\n${defaultIdrs()}`,
    `### Overview\n\n${overview}\n`,
    ...sections.map(
      (s) =>
        `### ${s.title}\n\n${summary(s.rows.map((r) => r.coverage))}\n\n${table(s.headers, s.rows)}${s.after ? `\n${s.after}\n` : ''}`,
    ),
  ];
  return parts.join('\n');
}
