/**
 * Renders the status tables of docs/vendors/smmuv3.md from `coverage.ts`. Positions come from the code, never
 * from the table: register offsets from `REG`/`REG64`, STE and CD scalar fields from `STE_LAYOUT`/
 * `CD_LAYOUT` and the address fields (and every PRI entry field) by encoding the field alone through the
 * codec and reading back which bits it set; opcodes from `CMD_OPCODE`; event numbers from `EVENT_ID`; which
 * registers exist only with MSI or PRI from `registerTable`; the default ID registers from `idrValues`.
 * The bit discovery and the markdown are core's (`@iommukit/core`, spec-coverage/), shared with every vendor.
 */

import {
  allOnes,
  type BitRun,
  type CoverageRow,
  type CoverageSection,
  coverageMarkdown,
  fieldBits,
  formatBits,
  schemaReferenceTable,
  specHex,
  structureRows,
  uncoveredBits,
} from '@iommukit/core';
import {
  CD_FIELD_COVERAGE,
  CD_SPEC_ONLY_FIELDS,
  COMMAND_COVERAGE,
  type CommandCoverageName,
  EVENT_COVERAGE,
  PRI_ENTRY_COVERAGE,
  REGISTER_COVERAGE,
  SPEC_ONLY_REGISTERS,
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

export const steFieldBits = (): Record<keyof Ste, BitRun[]> =>
  fieldBits(decodeSte(allOnes(STE_WORDS)), encodeSte);
export const cdFieldBits = (): Record<keyof Cd, BitRun[]> => fieldBits(decodeCd(allOnes(CD_WORDS)), encodeCd);
export const priEntryFieldBits = (): Record<keyof PriEntry, BitRun[]> =>
  fieldBits(decodePriEntry(allOnes(PRI_ENTRY_WORDS)), encodePriEntry);

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

function registerRows(): CoverageRow[] {
  const rows: CoverageRow[] = [];
  for (const name of Object.keys(REGISTER_COVERAGE) as RegName[]) {
    const offset = REG[name];
    const width = REG64.includes(name) ? '64-bit' : '32-bit';
    const page = offset >= PAGE1 ? `page 1 + ${specHex(offset - PAGE1, 4)}` : '';
    const presence = registerPresence(name);
    const c = REGISTER_COVERAGE[name];
    rows.push({
      name: `\`${name}\``,
      where: `${specHex(offset, 4)} (${[width, page].filter(Boolean).join(', ')})`,
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

function commandRows(): CoverageRow[] {
  return (Object.keys(COMMAND_COVERAGE) as CommandCoverageName[]).map((name) => {
    let where: string;
    let opcode: number;
    if (name in CMD_OPCODE) {
      opcode = CMD_OPCODE[name as keyof typeof CMD_OPCODE];
      where = specHex(opcode);
    } else {
      // A command the code names that shares another's opcode (CMD_CFGI_ALL).
      opcode = encodeCommand({ op: name } as Command)[0]! & 0xff;
      where = name === 'CFGI_ALL' ? `${specHex(opcode)}, Range = ${CFGI_ALL_RANGE}` : specHex(opcode);
    }
    return { name: `\`CMD_${name}\``, where, coverage: COMMAND_COVERAGE[name], order: opcode + 0.5 };
  });
}

function eventRows(): CoverageRow[] {
  return (Object.keys(EVENT_COVERAGE) as EventName[]).map((name) => ({
    name: `\`${name}\``,
    where: specHex(EVENT_ID[name]),
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
    ...Object.entries(ids).map(([name, value]) => `| \`${name}\` | \`${specHex(value >>> 0, 8)}\` |`),
  ];
  // AIDR.ArchMajorRev 0 is SMMUv3; ArchMinorRev is the x of SMMUv3.x.
  return `With every option at its default, an instance claims SMMUv${3 + major}.${minor} (AIDR) and its ID registers read:\n\n${lines.join('\n')}\n`;
}

/** The generated part of docs/vendors/smmuv3.md: the default IDRs, an overview and one table per kind. */
export function smmuv3StatusMarkdown(): string {
  const ste = steFieldBits();
  const cd = cdFieldBits();
  const pri = priEntryFieldBits();
  const steGaps = uncoveredBits(STE_WORDS, ste, STE_SPEC_ONLY_FIELDS);
  const cdGaps = uncoveredBits(CD_WORDS, cd, CD_SPEC_ONLY_FIELDS);
  const priGaps = uncoveredBits(PRI_ENTRY_WORDS, pri, []);
  const sections: CoverageSection[] = [
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
  const parts = [
    `### Options\n\nThe keys of \`iommus[].options\` for \`plugin: smmuv3\` (\`Smmuv3OptionsSchema\`); every key has a default.\n\n${schemaReferenceTable(Smmuv3OptionsSchema)}`,
    `### Default instance\n\n${defaultIdrs()}`,
    coverageMarkdown(sections),
  ];
  return parts.join('\n');
}
