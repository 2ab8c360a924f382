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
  CAPABILITY_HEADER_COVERAGE,
  COMMAND_COVERAGE,
  COMMAND_FIELD_COVERAGE,
  CONTROL_COVERAGE,
  CONTROL_SPEC_ONLY_FIELDS,
  type CommandName,
  DTE_COVERAGE,
  DTE_SPEC_ONLY_FIELDS,
  EFR_COVERAGE,
  EFR2_COVERAGE,
  EVENT_COVERAGE,
  EVENT_FIELD_COVERAGE,
  EVENT_FLAG_COVERAGE,
  type EventName,
  GCR3_ENTRY_COVERAGE,
  IRTE32_COVERAGE,
  IRTE32_SPEC_ONLY_FIELDS,
  IRTE128_REMAPPED_COVERAGE,
  IRTE128_VAPIC_COVERAGE,
  PPR_FLAG_COVERAGE,
  PPR_LOG_ENTRY_COVERAGE,
  REGISTER_COVERAGE,
  SPEC_ONLY_COMMANDS,
  SPEC_ONLY_EVENTS,
  SPEC_ONLY_REGISTERS,
  STATUS_COVERAGE,
  STATUS_SPEC_ONLY_FIELDS,
} from './coverage.js';
import {
  capabilityHeaderFieldBits,
  commandFieldBits,
  commandOpcodeBits,
  controlBitNames,
  controlFieldBits,
  defaultAmdFeatures,
  dteFieldBits,
  efr2FieldBits,
  efrFieldBits,
  eventCodeBits,
  eventFieldBits,
  gcr3EntryFieldBits,
  irte32FieldBits,
  irte128FieldBits,
  pprLogEntryFieldBits,
  sampleCommand,
  sampleEvent,
  statusBitNames,
  statusFieldBits,
} from './coverage-bits.js';
import { amdStatusMarkdown, amdStructures, registerPresence } from './coverage-doc.js';
import { CAPABILITY_HEADER_LAYOUT, EFR_LAYOUT, EFR2_LAYOUT } from './hw/capabilities.js';
import { COMMAND_OPCODE, COMMAND_WORDS } from './hw/commands.js';
import { DTE_WORDS, decodeDte } from './hw/dte.js';
import { decodePprLogEntry, EVENT_CODE, EVENT_FLAG, EVENT_WORDS, PPR_FLAG } from './hw/events.js';
import { decodeGcr3Entry } from './hw/gcr3.js';
import { decodeIrte32, decodeIrte128, IRTE128_WORDS } from './hw/irte.js';
import { amdRegisterTable, REG } from './hw/regs.js';

const DOC = new URL('../../../docs/vendors/amd-vi.md', import.meta.url);
const BEGIN = '<!-- BEGIN GENERATED: amdStatusMarkdown() -->';
const END = '<!-- END GENERATED -->';

const sorted = (keys: Iterable<string>): string[] => [...keys].sort();
const keysOf = (o: object): string[] => sorted(Object.keys(o));
const run = (msb: number, lsb: number): BitRun => ({ msb, lsb });
const layoutRuns = (layout: Readonly<Record<string, readonly [number, number]>>) =>
  Object.fromEntries(Object.entries(layout).map(([k, [lsb, width]]) => [k, [run(lsb + width - 1, lsb)]]));

function expectWellFormed(entries: Readonly<Record<string, Coverage>> | readonly Coverage[]): void {
  expect(coverageProblems(entries)).toEqual([]);
}

describe('AMD-Vi coverage table: every item of the code, and nothing else', () => {
  it('gives every register of REG a status', () => {
    expect(keysOf(REGISTER_COVERAGE)).toEqual(keysOf(REG));
    expectWellFormed(REGISTER_COVERAGE);
  });

  it('lists spec-only registers under names REG lacks, at offsets the model does not map', () => {
    const names = SPEC_ONLY_REGISTERS.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(Object.keys(REG)).not.toContain(name);
    expectWellFormed(SPEC_ONLY_REGISTERS);
    const f = { ...defaultAmdFeatures(), hardwareErrors: true };
    const mapped = new Set(amdRegisterTable(f).map((d) => d.offset));
    for (const r of SPEC_ONLY_REGISTERS)
      for (const [start] of r.offset.matchAll(/0x[0-9A-F]+/gi))
        expect(mapped.has(Number.parseInt(start, 16)), `${r.name} at ${r.offset}`).toBe(false);
  });

  it('gives every Control and Status bit regs.ts names a status', () => {
    expect(keysOf(CONTROL_COVERAGE)).toEqual(sorted(controlBitNames()));
    expect(keysOf(STATUS_COVERAGE)).toEqual(sorted(statusBitNames()));
    expect(controlBitNames()).toContain('CTRL_HI_GCR3_TRP_MODE');
    for (const table of [
      CONTROL_COVERAGE,
      STATUS_COVERAGE,
      CONTROL_SPEC_ONLY_FIELDS,
      STATUS_SPEC_ONLY_FIELDS,
    ])
      expectWellFormed(table);
  });

  it('gives every EFR, EFR2 and capability header field of the layouts a status', () => {
    expect(keysOf(EFR_COVERAGE)).toEqual(keysOf(EFR_LAYOUT));
    expect(keysOf(EFR2_COVERAGE)).toEqual(keysOf(EFR2_LAYOUT));
    expect(keysOf(CAPABILITY_HEADER_COVERAGE)).toEqual(keysOf(CAPABILITY_HEADER_LAYOUT));
    for (const table of [EFR_COVERAGE, EFR2_COVERAGE, CAPABILITY_HEADER_COVERAGE]) expectWellFormed(table);
  });

  it('gives every field of the DTE, the GCR3 entry and the PPR log entry a status: the decoders’ keys', () => {
    const cases: [string, object, object][] = [
      ['DTE', DTE_COVERAGE, decodeDte(new Uint32Array(DTE_WORDS))],
      ['GCR3 entry', GCR3_ENTRY_COVERAGE, decodeGcr3Entry(new Uint32Array(2))],
      ['PPR log entry', PPR_LOG_ENTRY_COVERAGE, decodePprLogEntry(new Uint32Array(EVENT_WORDS), 0)],
    ];
    for (const [what, coverage, decoded] of cases) {
      expect(keysOf(coverage), what).toEqual(keysOf(decoded));
      expectWellFormed(coverage as Record<string, Coverage>);
    }
    expectWellFormed(DTE_SPEC_ONLY_FIELDS);
  });

  it('gives every IRTE field of the three formats a status: the decoders’ keys, the format as GuestMode', () => {
    const fields = (o: object, drop: string[]) => keysOf(o).filter((k) => !drop.includes(k));
    const remapped = decodeIrte128(new Uint32Array(IRTE128_WORDS), true);
    const vapic = decodeIrte128(Uint32Array.of(1 << 7, 0, 0, 0), true);
    expect([remapped.guestMode, vapic.guestMode]).toEqual([false, true]);
    expect(keysOf(IRTE32_COVERAGE)).toEqual(fields(decodeIrte32(0), ['reserved', 'guestMode']));
    expect(keysOf(IRTE128_REMAPPED_COVERAGE)).toEqual(fields(remapped, ['reserved']));
    expect(keysOf(IRTE128_VAPIC_COVERAGE)).toEqual(fields(vapic, ['reserved']));
    for (const table of [IRTE32_COVERAGE, IRTE128_REMAPPED_COVERAGE, IRTE128_VAPIC_COVERAGE])
      expectWellFormed(table);
    expectWellFormed(IRTE32_SPEC_ONLY_FIELDS);
  });

  it('gives every command of COMMAND_OPCODE and every field it decodes a status', () => {
    expect(keysOf(COMMAND_COVERAGE)).toEqual(keysOf(COMMAND_OPCODE));
    expect(keysOf(COMMAND_FIELD_COVERAGE)).toEqual(keysOf(COMMAND_OPCODE));
    expectWellFormed(COMMAND_COVERAGE);
    for (const name of Object.keys(COMMAND_OPCODE) as CommandName[]) {
      const { op: _op, ...fields } = sampleCommand(name);
      expect(keysOf(COMMAND_FIELD_COVERAGE[name]), name).toEqual(keysOf(fields));
      expectWellFormed(COMMAND_FIELD_COVERAGE[name] as Record<string, Coverage>);
    }
  });

  it('gives every event of EVENT_CODE, every field it decodes and every flag a status', () => {
    expect(keysOf(EVENT_COVERAGE)).toEqual(keysOf(EVENT_CODE));
    expect(keysOf(EVENT_FIELD_COVERAGE)).toEqual(keysOf(EVENT_CODE));
    expect(keysOf(EVENT_FLAG_COVERAGE)).toEqual(keysOf(EVENT_FLAG));
    expect(keysOf(PPR_FLAG_COVERAGE)).toEqual(keysOf(PPR_FLAG));
    for (const table of [EVENT_COVERAGE, EVENT_FLAG_COVERAGE, PPR_FLAG_COVERAGE]) expectWellFormed(table);
    for (const name of Object.keys(EVENT_CODE) as EventName[]) {
      const { kind: _kind, ...fields } = sampleEvent(name);
      expect(keysOf(EVENT_FIELD_COVERAGE[name]), name).toEqual(keysOf(fields));
      expectWellFormed(EVENT_FIELD_COVERAGE[name] as Record<string, Coverage>);
    }
  });

  it('lists spec-only commands and events at codes the code does not name', () => {
    const cases: [Set<number>, readonly { code: number }[]][] = [
      [new Set(Object.values(COMMAND_OPCODE)), SPEC_ONLY_COMMANDS],
      [new Set(Object.values(EVENT_CODE)), SPEC_ONLY_EVENTS],
    ];
    for (const [codes, specOnly] of cases) {
      const own = specOnly.map((c) => c.code);
      expect(new Set(own).size).toBe(own.length);
      for (const code of own) expect(codes.has(code), `0x${code.toString(16)}`).toBe(false);
    }
    expectWellFormed(SPEC_ONLY_COMMANDS);
    expectWellFormed(SPEC_ONLY_EVENTS);
  });
});

describe('AMD-Vi field positions', () => {
  it('match the layouts where the code has one, and the spec positions elsewhere', () => {
    expect(efrFieldBits()).toEqual(layoutRuns(EFR_LAYOUT));
    expect(efr2FieldBits()).toEqual(layoutRuns(EFR2_LAYOUT));
    expect(capabilityHeaderFieldBits()).toEqual(layoutRuns(CAPABILITY_HEADER_LAYOUT));
    // §3.4 Control: IommuEn 0, InvTimeOut 7:5, GAMEn 27:25, NumIntRemapMode 44:43, GCR3TRPMode 58.
    expect(controlFieldBits()).toMatchObject({
      CTRL_IOMMU_EN: [run(0, 0)],
      CTRL_INV_TIMEOUT: [run(7, 5)],
      CTRL_GAM_EN: [run(27, 25)],
      CTRL_HI_NUM_INT_REMAP_MODE: [run(44, 43)],
      CTRL_HI_GCR3_TRP_MODE: [run(58, 58)],
    });
    expect(statusFieldBits()).toMatchObject({
      STATUS_EVT_OVERFLOW: [run(0, 0)],
      STATUS_GA_INT: [run(10, 10)],
    });
    // §2.2.2.1: the pointers, the GCR3 root in three pieces, the hardware vIOMMU fields.
    expect(dteFieldBits()).toMatchObject({
      hostPageTableRootPtr: [run(51, 12)],
      gcr3TableRootPtr: [run(60, 58), run(95, 80), run(127, 107)],
      intTablePtr: [run(179, 134)],
      guestId: [run(239, 224)],
    });
    expect(gcr3EntryFieldBits()).toEqual({ valid: [run(0, 0)], pointer: [run(51, 12)] });
    expect(irte32FieldBits()).toMatchObject({ destination: [run(15, 8)], vector: [run(23, 16)] });
    expect(irte128FieldBits(false)).toMatchObject({
      guestMode: [run(7, 7)],
      destination: [run(31, 8), run(127, 120)],
      vector: [run(71, 64)],
    });
    expect(irte128FieldBits(true)).toMatchObject({ gaTag: [run(63, 32)], gaRootPtr: [run(115, 76)] });
  });

  it('find every bit of each command, event and PPR log field, split and wide ones included', () => {
    expect(commandOpcodeBits()).toEqual([run(63, 60)]);
    expect(eventCodeBits()).toEqual([run(63, 60)]);
    expect(commandFieldBits('COMPLETION_WAIT')).toMatchObject({
      storeAddress: [run(51, 3)],
      storeDataHi: [run(127, 96)],
    });
    expect(commandFieldBits('INVALIDATE_IOTLB_PAGES')).toMatchObject({
      pasid: [run(23, 16), run(59, 48)],
      address: [run(127, 76)],
    });
    expect(commandFieldBits('COMPLETE_PPR_REQUEST')).toMatchObject({
      tag: [run(104, 96)],
      status: [run(111, 108)],
    });
    expect(eventFieldBits('IO_PAGE_FAULT')).toMatchObject({
      domainOrPasid: [run(19, 16), run(47, 32)],
      address: [run(127, 64)],
    });
    expect(eventFieldBits('IOTLB_INV_TIMEOUT')).toMatchObject({ address: [run(127, 68)] });
    expect(pprLogEntryFieldBits()).toMatchObject({
      pasid: [run(31, 16), run(45, 42)],
      tag: [run(41, 32)],
      type: [run(63, 60)],
    });
  });

  it('keep decoded and spec-only fields apart, inside their structures', () => {
    for (const s of amdStructures())
      expect(bitPositionProblems(s.words, s.bits, s.specOnly), s.title).toEqual([]);
    for (const name of Object.keys(COMMAND_OPCODE) as CommandName[])
      expect(
        bitPositionProblems(COMMAND_WORDS, { ...commandFieldBits(name), opcode: commandOpcodeBits() }, []),
        name,
      ).toEqual([]);
    for (const name of Object.keys(EVENT_CODE) as EventName[])
      expect(
        bitPositionProblems(EVENT_WORDS, { ...eventFieldBits(name), code: eventCodeBits() }, []),
        name,
      ).toEqual([]);
  });

  it('leave uncovered exactly the bits the sources reserve', () => {
    const gaps = Object.fromEntries(
      amdStructures().map((s) => [s.title, uncoveredBits(s.words, s.bits, s.specOnly)]),
    );
    expect(gaps).toEqual({
      'Control register bits (0018h)': [run(49, 49), run(57, 56), run(60, 60), run(63, 62)],
      'Status register bits (2020h)': [run(14, 13), run(63, 19)],
      'Extended Feature Register fields (EFR, 0030h)': [
        run(5, 5),
        run(27, 26),
        run(31, 30),
        run(47, 47),
        run(53, 53),
        run(60, 55),
      ],
      'Extended Feature 2 Register fields (EFR2, 01A0h)': [run(0, 0), run(10, 10), run(63, 12)],
      'IOMMU capability header fields (PCI configuration space)': [run(31, 29)],
      'Device table entry fields': [run(6, 2), run(63, 63), run(181, 180), run(206, 192), run(244, 240)],
      'GCR3 table entry fields': [run(11, 1), run(63, 52)],
      'IRTE fields, 32-bit format (Control.GAEn = 0)': [run(31, 24)],
      'IRTE fields, 128-bit remapped format (GAEn = 1, GuestMode = 0)': [run(63, 32), run(119, 72)],
      'IRTE fields, 128-bit guest virtual APIC format (GAMEn = 1, GuestMode = 1)': [
        run(5, 3),
        run(75, 72),
        run(119, 116),
      ],
    });
  });
});

describe('AMD-Vi reserved-bit probing', () => {
  it('reports which reserved bits each check refuses', () => {
    const md = amdStatusMarkdown();
    expect(md).toContain(
      'Bits no row covers are reserved; the model refuses an entry (ILLEGAL_DEV_TABLE_ENTRY with RZ) with any of them set: [6:2], [63], [181:180], [206:192], [244:240].',
    );
    expect(md).toContain(
      'the model refuses an entry (IO_PAGE_FAULT with GN, PR = 1, RZ = 1) with any of them set: [11:1], [63:52].',
    );
    expect(md).toContain(
      'COMPLETE_PPR_REQUEST [31:16], [59:52], [65:64], [95:67], [107:105], [127:112] (not checked: [107:105])',
    );
  });
});

describe('docs/vendors/amd-vi.md', () => {
  it('holds the status tables exactly as the coverage table generates them', () => {
    // IOMMUKIT_UPDATE_DOCS=1 rewrites the section; the assertion then checks what was written.
    const { expected, actual } = syncGeneratedSection({
      doc: DOC,
      begin: BEGIN,
      end: END,
      content: amdStatusMarkdown(),
    });
    expect(
      actual,
      `${DOC.pathname} lacks the generated-section markers; regenerate with IOMMUKIT_UPDATE_DOCS=1 npx vitest run src/coverage.test.ts in packages/amd-vi`,
    ).toBeDefined();
    expect(
      actual,
      'regenerate with IOMMUKIT_UPDATE_DOCS=1 npx vitest run src/coverage.test.ts in packages/amd-vi',
    ).toBe(expected);
  });

  it('names every register, field, command, event and flag, and where a register needs a feature', () => {
    const md = amdStatusMarkdown();
    for (const name of Object.keys(REG)) expect(md).toContain(`| \`${name}\` | 0x`);
    for (const [key, f] of Object.entries(DTE_COVERAGE)) expect(md).toContain(`\`${f.spec}\` (\`${key}\`)`);
    for (const f of CONTROL_SPEC_ONLY_FIELDS) expect(md).toContain(`\`${f.spec}\` (not decoded)`);
    for (const name of [...Object.keys(COMMAND_OPCODE), ...Object.keys(EVENT_CODE)])
      expect(md).toContain(`| \`${name}\` | 0x`);
    expect(md).toContain('| INSERT_GUEST_EVENT (no `COMMAND_OPCODE` name) | 0x09 |');
    expect(md).toContain('`INVALIDATE_IOMMU_PAGES.PDE` (`pde`) | [65]');
    expect(md).toContain('| `GN` | [48] |');
    expect(registerPresence('XT_PPR_INTR')).toBe('EFR.PPRSup and EFR.XTSup');
    expect(registerPresence('HW_EVENT_STATUS')).toBe('EFR.HESup (off by default)');
    expect(registerPresence('CONTROL')).toBe('');
    expect(md).toContain('| `GA_HEAD` | 0x2040 (64-bit) | not modelled | Present only with EFR.GAMSup.');
  });

  it('lists every option of the schema with its description, and the default EFR', () => {
    const md = amdStatusMarkdown();
    const options = md.slice(md.indexOf('### Options'), md.indexOf('### Default instance'));
    expect(options).toContain('| `hostLevels` |');
    const undescribed = options.split('\n').filter((line) => line.startsWith('| `') && line.endsWith('|  |'));
    expect(undescribed, 'every option has a description (zod .describe)').toEqual([]);
    expect(md).toContain('| `EFR` | `0x');
  });

  it('marks as deviations exactly the items known to depart from the spec or to rest on a model choice', () => {
    const tables: Record<string, object> = {
      REGISTER_COVERAGE,
      CONTROL_COVERAGE,
      STATUS_COVERAGE,
      EFR_COVERAGE,
      CAPABILITY_HEADER_COVERAGE,
      DTE_COVERAGE,
      GCR3_ENTRY_COVERAGE,
      IRTE32_COVERAGE,
      IRTE128_REMAPPED_COVERAGE,
      IRTE128_VAPIC_COVERAGE,
      COMMAND_COVERAGE,
      EVENT_COVERAGE,
      EVENT_FLAG_COVERAGE,
      ...Object.fromEntries(
        Object.entries(COMMAND_FIELD_COVERAGE).map(([name, fields]) => [`${name} fields`, fields]),
      ),
      ...Object.fromEntries(
        Object.entries(EVENT_FIELD_COVERAGE).map(([name, fields]) => [`${name} fields`, fields]),
      ),
    };
    const marked = Object.entries(tables).flatMap(([table, entries]) =>
      Object.entries(entries as Record<string, Coverage>)
        .filter(([, c]) => /Deviation:/.test(c.note))
        .map(([key]) => `${table}.${key}`),
    );
    const specOnly = [...SPEC_ONLY_REGISTERS, ...SPEC_ONLY_COMMANDS, ...SPEC_ONLY_EVENTS]
      .filter((c) => /Deviation:/.test(c.note))
      .map((c) => c.name);
    // Fixing one of these in the model means updating its note, the page's list, and this one.
    expect(sorted(marked)).toEqual(
      sorted([
        'REGISTER_COVERAGE.CMD_BUF_BASE',
        'REGISTER_COVERAGE.EVT_LOG_BASE',
        'REGISTER_COVERAGE.EXCL_BASE',
        'REGISTER_COVERAGE.CMD_HEAD',
        'REGISTER_COVERAGE.EVT_TAIL',
        'REGISTER_COVERAGE.GA_HEAD',
        'CONTROL_COVERAGE.CTRL_GA_EN',
        'CONTROL_COVERAGE.CTRL_HI_NUM_INT_REMAP_MODE',
        'CONTROL_COVERAGE.CTRL_HI_EPH_EN',
        'CONTROL_COVERAGE.CTRL_HI_HAD_UPDATE',
        'CONTROL_COVERAGE.CTRL_HI_GD_UPDATE_DIS',
        'CONTROL_COVERAGE.CTRL_HI_GCR3_TRP_MODE',
        'STATUS_COVERAGE.STATUS_EVT_LOG_INT',
        'STATUS_COVERAGE.STATUS_PPR_OVERFLOW',
        'EFR_COVERAGE.msiCapMmioSup',
        'DTE_COVERAGE.tv',
        'DTE_COVERAGE.mode',
        'DTE_COVERAGE.ppr',
        'DTE_COVERAGE.gv',
        'DTE_COVERAGE.glx',
        'DTE_COVERAGE.se',
        'GCR3_ENTRY_COVERAGE.valid',
        'IRTE32_COVERAGE.remapEn',
        'IRTE128_REMAPPED_COVERAGE.remapEn',
        'IRTE128_VAPIC_COVERAGE.remapEn',
        'EVENT_COVERAGE.COMMAND_HARDWARE_ERROR',
        'EVENT_FLAG_COVERAGE.GN',
        'EVENT_FLAG_COVERAGE.RZ',
      ]),
    );
    expect(specOnly).toEqual([]);
  });
});
