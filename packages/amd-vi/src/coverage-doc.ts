/**
 * Renders the status tables of docs/vendors/amd-vi.md from `coverage.ts`. Positions come from the code,
 * never from the table: register offsets from `REG`, their width and presence from `amdRegisterTable`;
 * Control and Status bits from the regs.ts constants naming them; EFR, EFR2 and capability header fields
 * from their layouts; every DTE, GCR3 entry and IRTE field by encoding it alone through the structure's
 * codec and reading back the bits it set (core's `fieldBits`); command, event and PPR log fields by probing
 * their encoders (`probedFieldBits`, the addresses being wider than one number can fill); opcodes from
 * `COMMAND_OPCODE`, event codes from `EVENT_CODE`, flags from `EVENT_FLAG` and `PPR_FLAG`; the default EFR,
 * EFR2 and capability header from `efrWords`, `efr2Words` and `capabilityHeaderWord`. Which reserved bits
 * the model refuses is found by setting each one in a valid entry and asking the entry's own check.
 */
import {
  type BitRun,
  type Coverage,
  type CoverageRow,
  type CoverageSection,
  codeRows,
  coverageMarkdown,
  formatBits,
  refusedBits,
  registerRows,
  type SpecOnlyField,
  schemaReferenceTable,
  specHex,
  structureRows,
  uncoveredBits,
} from '@iommukit/core';
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
  commandFeatures,
  commandFieldBits,
  commandOpcodeBits,
  controlFieldBits,
  defaultAmdFeatures,
  dteFieldBits,
  efr2FieldBits,
  efrFieldBits,
  encodeCommandWords,
  eventCodeBits,
  eventFieldBits,
  flagBits,
  gcr3EntryFieldBits,
  irte32FieldBits,
  irte128FieldBits,
  pprLogEntryFieldBits,
  statusFieldBits,
} from './coverage-bits.js';
import { capabilityHeaderWord, efr2Words, efrWords } from './hw/capabilities.js';
import { COMMAND_OPCODE, COMMAND_WORDS, decodeCommand } from './hw/commands.js';
import {
  checkDte,
  checkDteInterrupt,
  DTE_ILLEGAL,
  DTE_WORDS,
  decodeDte,
  encodeDte,
  INT_CTL,
} from './hw/dte.js';
import { EVENT_CODE, EVENT_FLAG, EVENT_WORDS, PPR_FLAG } from './hw/events.js';
import type { AmdFeatures } from './hw/features.js';
import { checkGcr3Entry, encodeGcr3Entry, GCR3_ENTRY_WORDS, GCR3_FAULT } from './hw/gcr3.js';
import {
  checkIrte,
  decodeIrte32,
  decodeIrte128,
  encodeIrte32,
  encodeIrte128,
  IRTE_FAULT,
  IRTE128_WORDS,
} from './hw/irte.js';
import { AmdOptionsSchema } from './hw/options.js';
import { amdRegisterTable, REG, type RegName } from './hw/regs.js';

/** What the closing note says of the reserved bits no row covers, and which of them the model refuses. */
function reservedNote(
  gaps: readonly BitRun[],
  refused: readonly BitRun[],
  unchecked: readonly BitRun[],
  outcome: string,
): string {
  const all = formatBits(gaps);
  if (unchecked.length === 0)
    return `Bits no row covers are reserved; the model refuses ${outcome} with any of them set: ${all}.`;
  if (refused.length === 0) return `Bits no row covers are reserved and not checked by the model: ${all}.`;
  return `Bits no row covers are reserved: ${all}. The model refuses ${outcome} with one of ${formatBits(refused)} set and does not check ${formatBits(unchecked)}.`;
}

/** Reserved bits the model checks: a valid entry, its check, and what is refused (for the note). */
export interface RefusedReserved {
  readonly base: ArrayLike<number>;
  readonly refused: (w: Uint32Array) => boolean;
  readonly outcome: string;
}

export interface AmdStructure {
  readonly title: string;
  readonly words: number;
  readonly coverage: Parameters<typeof structureRows>[0];
  readonly bits: Readonly<Record<string, readonly BitRun[]>>;
  readonly specOnly: readonly SpecOnlyField[];
  /** How the model treats the bits no row covers: refused (a valid entry and its check) or a sentence. */
  readonly reserved: RefusedReserved | { readonly note: string };
}

function reservedAfter(s: AmdStructure): string | undefined {
  const gaps = uncoveredBits(s.words, s.bits, s.specOnly);
  if (gaps.length === 0) return undefined;
  const r = s.reserved;
  if ('note' in r) return `${r.note}: ${formatBits(gaps)}.`;
  const refused = refusedBits(gaps, r.base, r.refused);
  const unchecked = refusedBits(gaps, r.base, (w) => !r.refused(w));
  return reservedNote(gaps, refused, unchecked, r.outcome);
}

function structureSection(s: AmdStructure): CoverageSection {
  const after = reservedAfter(s);
  return {
    title: s.title,
    headers: ['field', 'bits'],
    rows: structureRows(s.coverage, s.bits, s.specOnly),
    ...(after === undefined ? {} : { after }),
  };
}

const READ_0 = { note: 'Bits no row covers are reserved, read 0 and ignore writes' };
const CAPABILITY_0 = { note: 'Bits no row covers are reserved (no stored source names them) and read 0' };

/** The registers, capability fields and structures of the page, each with where its reserved bits go. */
export function amdStructures(): AmdStructure[] {
  const f = defaultAmdFeatures();
  const dteRefused = (w: Uint32Array) => {
    const d = decodeDte(w);
    return (
      checkDte(d, w, f) === DTE_ILLEGAL.RESERVED_BITS || checkDteInterrupt(d, w) === DTE_ILLEGAL.RESERVED_BITS
    );
  };
  const irteFault = `an entry (IO_PAGE_FAULT with I, PR = 1, RZ = 1)`;
  return [
    {
      title: 'Control register bits (0018h)',
      words: 2,
      coverage: CONTROL_COVERAGE,
      bits: controlFieldBits(),
      specOnly: CONTROL_SPEC_ONLY_FIELDS,
      reserved: READ_0,
    },
    {
      title: 'Status register bits (2020h)',
      words: 2,
      coverage: STATUS_COVERAGE,
      bits: statusFieldBits(),
      specOnly: STATUS_SPEC_ONLY_FIELDS,
      reserved: READ_0,
    },
    {
      title: 'Extended Feature Register fields (EFR, 0030h)',
      words: 2,
      coverage: EFR_COVERAGE,
      bits: efrFieldBits(),
      specOnly: [],
      reserved: CAPABILITY_0,
    },
    {
      title: 'Extended Feature 2 Register fields (EFR2, 01A0h)',
      words: 2,
      coverage: EFR2_COVERAGE,
      bits: efr2FieldBits(),
      specOnly: [],
      reserved: CAPABILITY_0,
    },
    {
      title: 'IOMMU capability header fields (PCI configuration space)',
      words: 1,
      coverage: CAPABILITY_HEADER_COVERAGE,
      bits: capabilityHeaderFieldBits(),
      specOnly: [],
      reserved: { note: 'Bits no row covers are reserved and read 0' },
    },
    {
      title: 'Device table entry fields',
      words: DTE_WORDS,
      coverage: DTE_COVERAGE,
      bits: dteFieldBits(),
      specOnly: DTE_SPEC_ONLY_FIELDS,
      reserved: {
        base: encodeDte({ v: true, tv: true, iv: true, intCtl: INT_CTL.REMAP }),
        refused: dteRefused,
        outcome: 'an entry (ILLEGAL_DEV_TABLE_ENTRY with RZ)',
      },
    },
    {
      title: 'GCR3 table entry fields',
      words: GCR3_ENTRY_WORDS,
      coverage: GCR3_ENTRY_COVERAGE,
      bits: gcr3EntryFieldBits(),
      specOnly: [],
      reserved: {
        base: encodeGcr3Entry({ valid: true }),
        refused: (w) => checkGcr3Entry(w) === GCR3_FAULT.RESERVED_BITS,
        outcome: 'an entry (IO_PAGE_FAULT with GN, PR = 1, RZ = 1)',
      },
    },
    {
      title: 'IRTE fields, 32-bit format (Control.GAEn = 0)',
      words: 1,
      coverage: IRTE32_COVERAGE,
      bits: irte32FieldBits(),
      specOnly: IRTE32_SPEC_ONLY_FIELDS,
      reserved: {
        base: Uint32Array.of(encodeIrte32({ remapEn: true })),
        refused: (w) => checkIrte(decodeIrte32(w[0]!)) === IRTE_FAULT.RESERVED_BITS,
        outcome: irteFault,
      },
    },
    {
      title: 'IRTE fields, 128-bit remapped format (GAEn = 1, GuestMode = 0)',
      words: IRTE128_WORDS,
      coverage: IRTE128_REMAPPED_COVERAGE,
      bits: irte128FieldBits(false),
      specOnly: [],
      reserved: {
        base: encodeIrte128({ remapEn: true }),
        refused: (w) => checkIrte(decodeIrte128(w, true)) === IRTE_FAULT.RESERVED_BITS,
        outcome: irteFault,
      },
    },
    {
      title: 'IRTE fields, 128-bit guest virtual APIC format (GAMEn = 1, GuestMode = 1)',
      words: IRTE128_WORDS,
      coverage: IRTE128_VAPIC_COVERAGE,
      bits: irte128FieldBits(true),
      specOnly: [],
      reserved: {
        base: encodeIrte128({ guestMode: true, remapEn: true }),
        refused: (w) => checkIrte(decodeIrte128(w, true)) === IRTE_FAULT.RESERVED_BITS,
        outcome: irteFault,
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Registers.

/** Features that add or remove registers, in the order a register's presence is named. */
const PRESENCE: readonly (readonly [string, Partial<AmdFeatures>])[] = [
  ['EFR.PPRSup', { pageRequests: false }],
  ['EFR.GAMSup', { guestVapicMode: false }],
  ['EFR.MsiCapMmioSup', { msiCapMmio: false }],
  ['EFR.XTSup', { x2apic: false }],
];

const registerNames = (f: AmdFeatures): Set<string> => new Set(amdRegisterTable(f).map((d) => d.name));

/** The register's name in the register table (a 64-bit one by its low half), or undefined. */
function tableName(name: RegName, names: Set<string>): string | undefined {
  return [name, `${name}_LO`].find((n) => names.has(n));
}

/**
 * What a register's presence depends on: `''` always present, the features it needs (`EFR.XTSup and
 * EFR.PPRSup`), `EFR.HESup (off by default)` for one the default unit lacks, undefined for none at all.
 */
export function registerPresence(name: RegName): string | undefined {
  const f = defaultAmdFeatures();
  if (tableName(name, registerNames(f)) === undefined)
    return tableName(name, registerNames({ ...f, hardwareErrors: true })) === undefined
      ? undefined
      : 'EFR.HESup (off by default)';
  return PRESENCE.filter(([, off]) => tableName(name, registerNames({ ...f, ...off })) === undefined)
    .map(([feature]) => feature)
    .join(' and ');
}

function registerWidth(name: RegName): string {
  const f = defaultAmdFeatures();
  const entry = tableName(name, registerNames({ ...f, hardwareErrors: true }));
  return entry?.endsWith('_LO') ? '64-bit' : '32-bit';
}

function registerTableRows(): CoverageRow[] {
  // Registers outside the MMIO map (apertures, other registers' offsets) sort last, in list order.
  return registerRows(
    REGISTER_COVERAGE,
    { offsets: REG, width: registerWidth, presence: registerPresence },
    SPEC_ONLY_REGISTERS,
    0x10_0000,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Commands, events, flags and the PPR log entry.

function flagRows<K extends string>(
  flags: Readonly<Record<K, number>>,
  coverage: Readonly<Record<K, Coverage>>,
) {
  return (Object.keys(coverage) as K[]).map((name) => {
    const bits = flagBits(flags[name]);
    return { name: `\`${name}\``, where: formatBits(bits), coverage: coverage[name], order: bits[0]!.lsb };
  });
}

/** Whether the command in `w` is refused for a reserved bit. */
const reservedBitRefused = (w: Uint32Array): boolean => {
  const d = decodeCommand(w, 0, commandFeatures());
  return 'illegal' in d && d.illegal.includes('reserved bit');
};

/** Every command's fields in one table, by opcode and then bit; the reserved bits of each, refused or not. */
function commandFieldSection(): CoverageSection {
  const rows: CoverageRow[] = [];
  const notes: string[] = [];
  for (const name of Object.keys(COMMAND_FIELD_COVERAGE) as CommandName[]) {
    const bits = commandFieldBits(name) as Record<string, BitRun[]>;
    const coverage = COMMAND_FIELD_COVERAGE[name] as Parameters<typeof structureRows>[0];
    for (const row of structureRows(coverage, bits, [], `${name}.`))
      rows.push({ ...row, order: COMMAND_OPCODE[name] * 256 + row.order });
    const gaps = uncoveredBits(COMMAND_WORDS, { ...bits, opcode: commandOpcodeBits() }, []);
    const unchecked = refusedBits(gaps, encodeCommandWords(name, {}), (w) => !reservedBitRefused(w));
    notes.push(
      `${name} ${formatBits(gaps)}${unchecked.length > 0 ? ` (not checked: ${formatBits(unchecked)})` : ''}`,
    );
  }
  return {
    title: 'Command fields',
    headers: ['field', 'bits'],
    rows,
    after: `Every command has its opcode in bits ${formatBits(commandOpcodeBits())}. Bits no row covers are reserved, and a command with one of them set is ILLEGAL_COMMAND_ERROR: ${notes.join('; ')}.`,
  };
}

/** Every event's record fields in one table, by code and then bit; what the unit writes elsewhere. */
function eventFieldSection(): CoverageSection {
  const rows: CoverageRow[] = [];
  const notes: string[] = [];
  for (const name of Object.keys(EVENT_FIELD_COVERAGE) as EventName[]) {
    const bits = eventFieldBits(name) as Record<string, BitRun[]>;
    const coverage = EVENT_FIELD_COVERAGE[name] as Parameters<typeof structureRows>[0];
    for (const row of structureRows(coverage, bits, [], `${name}.`))
      rows.push({ ...row, order: EVENT_CODE[name] * 256 + row.order });
    notes.push(`${name} ${formatBits(uncoveredBits(EVENT_WORDS, { ...bits, code: eventCodeBits() }, []))}`);
  }
  return {
    title: 'Event record fields',
    headers: ['field', 'bits'],
    rows,
    after: `Every event has its code in bits ${formatBits(eventCodeBits())}; a flags row lists the flag bits that event defines. The unit writes the bits no row covers as 0: ${notes.join('; ')}.`,
  };
}

function hex64(lo: number, hi: number): string {
  return `0x${(hi >>> 0).toString(16).toUpperCase().padStart(8, '0')}${(lo >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;
}

function defaultInstance(): string {
  const f = defaultAmdFeatures();
  const efr = efrWords(f);
  const efr2 = efr2Words(f);
  return [
    'With every option at its default, an instance reads:',
    '',
    '| register | value |',
    '|---|---|',
    `| \`EFR\` | \`${hex64(efr.lo, efr.hi)}\` |`,
    `| \`EFR2\` | \`${hex64(efr2.lo, efr2.hi)}\` |`,
    `| capability header | \`${specHex(capabilityHeaderWord(f) >>> 0, 8)}\` |`,
    '',
  ].join('\n');
}

/** The generated part of docs/vendors/amd-vi.md: options, the default instance, an overview, every table. */
export function amdStatusMarkdown(): string {
  const [control, status, efr, efr2, header, ...structures] = amdStructures().map(structureSection);
  const sections: CoverageSection[] = [
    { title: 'Registers', headers: ['register', 'offset'], rows: registerTableRows() },
    control!,
    status!,
    efr!,
    efr2!,
    header!,
    ...structures,
    {
      title: 'Commands',
      headers: ['command', 'opcode'],
      rows: codeRows(COMMAND_OPCODE, COMMAND_COVERAGE, SPEC_ONLY_COMMANDS, 'no `COMMAND_OPCODE` name'),
    },
    commandFieldSection(),
    {
      title: 'Events',
      headers: ['event', 'code'],
      rows: codeRows(EVENT_CODE, EVENT_COVERAGE, SPEC_ONLY_EVENTS, 'no `EVENT_CODE` name'),
    },
    {
      title: 'Event flags',
      headers: ['flag', 'bit'],
      rows: flagRows(EVENT_FLAG, EVENT_FLAG_COVERAGE),
      after: 'Flags are bits 56:48 of an event; bits 59:57 hold the Type of the events that have one.',
    },
    eventFieldSection(),
    structureSection({
      title: 'PPR log entry fields',
      words: EVENT_WORDS,
      coverage: PPR_LOG_ENTRY_COVERAGE,
      bits: pprLogEntryFieldBits(),
      specOnly: [],
      reserved: { note: 'The unit writes the bits no row covers as 0' },
    }),
    {
      title: 'PPR log flags',
      headers: ['flag', 'bit'],
      rows: flagRows(PPR_FLAG, PPR_FLAG_COVERAGE),
      after: 'Flags are bits 59:48 of a PPR log entry; the others read 0.',
    },
  ];
  return [
    `### Options\n\nThe instance options (\`AmdOptionsSchema\`); every key has a default.\n\n${schemaReferenceTable(AmdOptionsSchema)}`,
    `### Default instance\n\n${defaultInstance()}`,
    coverageMarkdown(sections),
  ].join('\n');
}
