import {
  type BitRun,
  bitPositionProblems,
  type Coverage,
  coverageProblems,
  syncGeneratedSection,
  uncoveredBits,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import {
  CD_FIELD_COVERAGE,
  CD_SPEC_ONLY_FIELDS,
  COMMAND_COVERAGE,
  EVENT_COVERAGE,
  PRI_ENTRY_COVERAGE,
  REGISTER_COVERAGE,
  SPEC_ONLY_REGISTERS,
  STE_FIELD_COVERAGE,
  STE_SPEC_ONLY_FIELDS,
} from './coverage.js';
import {
  cdFieldBits,
  defaultSmmuv3Options,
  priEntryFieldBits,
  smmuv3StatusMarkdown,
  steFieldBits,
} from './coverage-doc.js';
import { CD_LAYOUT, CD_WORDS, decodeCd } from './hw/cd.js';
import { CMD_OPCODE, type Command, decodeCommand, encodeCommand } from './hw/commands.js';
import { EVENT_ID } from './hw/events.js';
import { featuresFromOptions, Smmuv3OptionsSchema } from './hw/options.js';
import { decodePriEntry, PRI_ENTRY_WORDS } from './hw/priq.js';
import { REG, registerTable } from './hw/regs.js';
import { decodeSte, STE_LAYOUT, STE_WORDS } from './hw/ste.js';

const DOC = new URL('../../../docs/vendors/smmuv3.md', import.meta.url);
const BEGIN = '<!-- BEGIN GENERATED: smmuv3StatusMarkdown() -->';
const END = '<!-- END GENERATED -->';

const sorted = (keys: Iterable<string>): string[] => [...keys].sort();
const runsOf = (layout: Readonly<Record<string, readonly [number, number]>>, key: string): BitRun[] => {
  const [lsb, width] = layout[key]!;
  return [{ msb: lsb + width - 1, lsb }];
};

function expectWellFormed(entries: readonly Coverage[]): void {
  expect(coverageProblems(entries)).toEqual([]);
}

describe('SMMUv3 coverage table', () => {
  it('gives every register of REG a status, and nothing else', () => {
    expect(sorted(Object.keys(REGISTER_COVERAGE))).toEqual(sorted(Object.keys(REG)));
    expectWellFormed(Object.values(REGISTER_COVERAGE));
  });

  it('lists spec-only registers that REG lacks and that read as zero', () => {
    const names = SPEC_ONLY_REGISTERS.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(Object.keys(REG)).not.toContain(name);
    expectWellFormed(SPEC_ONLY_REGISTERS);
    const options = defaultSmmuv3Options();
    const mapped = new Set(registerTable(featuresFromOptions(options), options).map((d) => d.offset));
    for (const r of SPEC_ONLY_REGISTERS) {
      if (!/^0x[0-9A-F]+$/i.test(r.offset)) continue;
      const offset = Number.parseInt(r.offset, 16);
      expect(mapped.has(offset), `${r.name} at ${r.offset}`).toBe(false);
    }
  });

  it('gives every STE field a status: the STE_LAYOUT fields and the address fields, nothing else', () => {
    const fields = Object.keys(decodeSte(new Uint32Array(STE_WORDS)));
    expect(sorted(Object.keys(STE_FIELD_COVERAGE))).toEqual(sorted(fields));
    for (const key of Object.keys(STE_LAYOUT)) expect(Object.keys(STE_FIELD_COVERAGE)).toContain(key);
    expectWellFormed(Object.values(STE_FIELD_COVERAGE));
    expectWellFormed(STE_SPEC_ONLY_FIELDS);
  });

  it('gives every CD field a status: the CD_LAYOUT fields and the address fields, nothing else', () => {
    const fields = Object.keys(decodeCd(new Uint32Array(CD_WORDS)));
    expect(sorted(Object.keys(CD_FIELD_COVERAGE))).toEqual(sorted(fields));
    for (const key of Object.keys(CD_LAYOUT)) expect(Object.keys(CD_FIELD_COVERAGE)).toContain(key);
    expectWellFormed(Object.values(CD_FIELD_COVERAGE));
    expectWellFormed(CD_SPEC_ONLY_FIELDS);
  });

  it('gives every command of CMD_OPCODE a status, plus only commands the decoder produces', () => {
    for (const name of Object.keys(CMD_OPCODE)) expect(Object.keys(COMMAND_COVERAGE)).toContain(name);
    const features = featuresFromOptions(defaultSmmuv3Options());
    for (const name of Object.keys(COMMAND_COVERAGE)) {
      if (name in CMD_OPCODE) continue;
      const decoded = decodeCommand(encodeCommand({ op: name } as Command), features);
      expect(decoded.ok && decoded.command.op, name).toBe(name);
    }
    expectWellFormed(Object.values(COMMAND_COVERAGE));
  });

  it('calls a command the default instance always rejects with CERROR_ILL "checked"', () => {
    const features = featuresFromOptions(defaultSmmuv3Options());
    for (const [name, opcode] of Object.entries(CMD_OPCODE)) {
      const words = new Uint32Array(4);
      words[0] = opcode;
      if (!decodeCommand(words, features).ok) {
        expect(COMMAND_COVERAGE[name as keyof typeof CMD_OPCODE].status, name).toBe('checked');
      }
    }
  });

  it('gives every event of EVENT_ID a status, and nothing else', () => {
    expect(sorted(Object.keys(EVENT_COVERAGE))).toEqual(sorted(Object.keys(EVENT_ID)));
    expectWellFormed(Object.values(EVENT_COVERAGE));
  });

  it('gives every PRI queue entry field a status, and nothing else', () => {
    const fields = Object.keys(decodePriEntry(new Uint32Array(PRI_ENTRY_WORDS)));
    expect(sorted(Object.keys(PRI_ENTRY_COVERAGE))).toEqual(sorted(fields));
    expectWellFormed(Object.values(PRI_ENTRY_COVERAGE));
  });

  it('has no item marked as a deviation from the spec (the known gaps are closed; keep it so)', () => {
    const notes = [
      REGISTER_COVERAGE,
      STE_FIELD_COVERAGE,
      CD_FIELD_COVERAGE,
      COMMAND_COVERAGE,
      EVENT_COVERAGE,
      PRI_ENTRY_COVERAGE,
    ].flatMap((table) => Object.entries(table).map(([name, c]) => `${name}: ${(c as Coverage).note}`));
    expect(notes.filter((note) => /deviation/i.test(note))).toEqual([]);
  });

  it('takes STE and CD positions from the layouts, and keeps the spec-only fields off them', () => {
    const ste = steFieldBits();
    const cd = cdFieldBits();
    for (const key of Object.keys(STE_LAYOUT))
      expect(ste[key as keyof typeof ste]).toEqual(runsOf(STE_LAYOUT, key));
    for (const key of Object.keys(CD_LAYOUT))
      expect(cd[key as keyof typeof cd]).toEqual(runsOf(CD_LAYOUT, key));
    expect(ste.s1ContextPtr).toEqual([{ msb: 55, lsb: 6 }]);
    expect(ste.s2Ttb).toEqual([{ msb: 247, lsb: 196 }]);
    expect(cd.ttb0).toEqual([{ msb: 119, lsb: 68 }]);
    expect(cd.ttb1).toEqual([{ msb: 183, lsb: 132 }]);
    expect(bitPositionProblems(STE_WORDS, ste, STE_SPEC_ONLY_FIELDS)).toEqual([]);
    expect(bitPositionProblems(CD_WORDS, cd, CD_SPEC_ONLY_FIELDS)).toEqual([]);
    expect(bitPositionProblems(PRI_ENTRY_WORDS, priEntryFieldBits(), [])).toEqual([]);
    // What is left is RES0 in the spec (§5.2, §5.4), as the document says.
    expect(uncoveredBits(STE_WORDS, ste, STE_SPEC_ONLY_FIELDS)).toEqual([
      { msb: 58, lsb: 56 },
      { msb: 107, lsb: 105 },
      { msb: 252, lsb: 248 },
      { msb: 255, lsb: 255 },
      { msb: 301, lsb: 296 },
      { msb: 383, lsb: 376 },
      { msb: 387, lsb: 387 },
      { msb: 444, lsb: 440 },
      { msb: 447, lsb: 447 },
    ]);
    expect(uncoveredBits(CD_WORDS, cd, CD_SPEC_ONLY_FIELDS)).toEqual([
      { msb: 121, lsb: 120 },
      { msb: 185, lsb: 184 },
      { msb: 383, lsb: 376 },
      { msb: 447, lsb: 432 },
      { msb: 511, lsb: 496 },
    ]);
  });
});

describe('docs/vendors/smmuv3.md', () => {
  it('holds the status tables exactly as the coverage table generates them', () => {
    // IOMMUKIT_UPDATE_DOCS=1 rewrites the section; the assertion then checks what was written.
    const { expected, actual } = syncGeneratedSection({
      doc: DOC,
      begin: BEGIN,
      end: END,
      content: smmuv3StatusMarkdown(),
    });
    expect(actual, `${DOC.pathname} lacks the generated-section markers`).toBeDefined();
    expect(actual).toBe(expected);
  });

  it('lists every register, field, command and event by name', () => {
    const md = smmuv3StatusMarkdown();
    for (const name of Object.keys(REG)) expect(md).toContain(`| \`${name}\` |`);
    for (const [key, f] of Object.entries(STE_FIELD_COVERAGE))
      expect(md).toContain(`\`${f.spec}\` (\`${key}\`)`);
    for (const [key, f] of Object.entries(CD_FIELD_COVERAGE))
      expect(md).toContain(`\`${f.spec}\` (\`${key}\`)`);
    for (const name of Object.keys(COMMAND_COVERAGE)) expect(md).toContain(`| \`CMD_${name}\` |`);
    for (const name of Object.keys(EVENT_ID)) expect(md).toContain(`| \`${name}\` |`);
  });

  it('lists every option of the schema with its default', () => {
    const md = smmuv3StatusMarkdown();
    for (const key of Object.keys(Smmuv3OptionsSchema.shape)) expect(md).toContain(`| \`${key}\` |`);
    expect(md).toContain('| `granules.g16k` | boolean | no | `true` |');
    const options = md.slice(md.indexOf('### Options'), md.indexOf('### Default instance'));
    const undescribed = options.split('\n').filter((line) => line.startsWith('| `') && line.endsWith('|  |'));
    expect(undescribed, 'every option has a description (zod .describe)').toEqual([]);
    expect(md).toContain('| `stallModel` | "stall" \\| "no-stall" \\| "force-stall" | no | `"stall"` |');
  });
});
