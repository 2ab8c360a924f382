/**
 * Renders the status tables of docs/vendors/vtd.md from `coverage.ts`. Positions come from the code, never
 * from the table: register offsets from `REG`, their width and presence from `vtdRegisterTable`; every
 * structure field by encoding it alone through the structure's codec and reading back the bits it set
 * (core's `fieldBits`; `probedFieldBits` for the invalidation descriptors, whose 62-bit status address no
 * single number can fill); descriptor types from `INV_TYPE`; fault reasons from `FR` and `IR_FR`; the
 * default VER, CAP and ECAP from `capWords`/`ecapWords`. Which reserved bits the model refuses is found by
 * setting each one in a valid entry and asking the entry's own check.
 */
import {
  type BitRun,
  bitRuns,
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
  CAP_COVERAGE,
  CAP_SPEC_ONLY_FIELDS,
  ECAP_COVERAGE,
  ECAP_SPEC_ONLY_FIELDS,
  FAULT_REASON_COVERAGE,
  FAULT_RECORD_COVERAGE,
  INV_DESCRIPTOR_COVERAGE,
  INV_DESCRIPTOR_FIELD_COVERAGE,
  type InvTypeName,
  IR_FAULT_REASON_COVERAGE,
  LEGACY_CONTEXT_COVERAGE,
  LEGACY_ROOT_COVERAGE,
  PAGE_REQUEST_COVERAGE,
  PASID_DIR_COVERAGE,
  PASID_ENTRY_COVERAGE,
  PASID_ENTRY_SPEC_ONLY_FIELDS,
  POSTED_IRTE_COVERAGE,
  REGISTER_COVERAGE,
  REMAPPED_IRTE_COVERAGE,
  SCALABLE_CONTEXT_COVERAGE,
  SCALABLE_CONTEXT_SPEC_ONLY_FIELDS,
  SCALABLE_ROOT_COVERAGE,
  SPEC_ONLY_FAULT_REASONS,
  SPEC_ONLY_INV_DESCRIPTORS,
  SPEC_ONLY_IR_FAULT_REASONS,
  SPEC_ONLY_REGISTERS,
} from './coverage.js';
import {
  capFieldBits,
  defaultVtdFeatures,
  ecapFieldBits,
  encodeWideDescriptor,
  faultRecordFieldBits,
  invDescriptorFieldBits,
  irteFieldBits,
  legacyContextFieldBits,
  legacyRootFieldBits,
  pageRequestFieldBits,
  pasidDirFieldBits,
  pasidEntryFieldBits,
  scalableContextFieldBits,
  scalableRootFieldBits,
  VALID_DESCRIPTOR,
} from './coverage-bits.js';
import { capWords, ecapWords } from './hw/capabilities.js';
import { FR, IR_FR } from './hw/fault-reasons.js';
import type { VtdFeatures } from './hw/features.js';
import { decodeInvDescriptor, INV_TYPE, IQEI, WIDE_INV_DESC_WORDS } from './hw/inv-descriptors.js';
import { checkIrte, decodeIrte, encodeIrte, IRTE_WORDS, type Irte } from './hw/irte.js';
import { VtdOptionsSchema } from './hw/options.js';
import { PAGE_REQUEST_WORDS } from './hw/page-requests.js';
import {
  checkPasidDirEntry,
  checkPasidEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  PASID_DIR_ENTRY_WORDS,
  PASID_ENTRY_WORDS,
  PGTT,
} from './hw/pasid-entry.js';
import { REG, type RegName, vtdRegisterTable } from './hw/regs.js';
import {
  checkLegacyContext,
  checkRootEntry,
  checkScalableContext,
  encodeLegacyContext,
  encodeLegacyRootEntry,
  encodeScalableContext,
  encodeScalableRootEntry,
  LEGACY_CONTEXT_WORDS,
  ROOT_ENTRY_WORDS,
  SCALABLE_CONTEXT_WORDS,
} from './hw/root-context.js';

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

export interface VtdStructure {
  readonly title: string;
  readonly words: number;
  readonly coverage: Parameters<typeof structureRows>[0];
  readonly bits: Readonly<Record<string, readonly BitRun[]>>;
  readonly specOnly: readonly SpecOnlyField[];
  /** How the model treats the reserved bits: refused (a valid entry and its check) or written as 0. */
  readonly reserved: RefusedReserved | { readonly writtenAs0: string };
}

/** Reserved bits the model checks: a valid entry, its check, and what is refused (for the note). */
export interface RefusedReserved {
  readonly base: ArrayLike<number>;
  readonly refused: (w: Uint32Array) => boolean;
  readonly outcome: string;
}

/** The note after a structure's table: its uncovered (reserved) bits, and which of them the model refuses. */
function reservedAfter(s: VtdStructure): string | undefined {
  const gaps = uncoveredBits(s.words, s.bits, s.specOnly);
  if (gaps.length === 0) return undefined;
  const r = s.reserved;
  if ('writtenAs0' in r) return `${r.writtenAs0}: ${formatBits(gaps)}.`;
  const refused = refusedBits(gaps, r.base, r.refused);
  const unchecked = refusedBits(gaps, r.base, (w) => !r.refused(w));
  return reservedNote(gaps, refused, unchecked, r.outcome);
}

function structureSection(s: VtdStructure): CoverageSection {
  const after = reservedAfter(s);
  return {
    title: s.title,
    headers: ['field', 'bits'],
    rows: structureRows(s.coverage, s.bits, s.specOnly),
    ...(after === undefined ? {} : { after }),
  };
}

/** The structures of the page, each with where its reserved bits go. */
export function vtdStructures(): VtdStructure[] {
  const f = defaultVtdFeatures();
  const fault = (code: number) => `an entry (fault ${specHex(code)})`;
  return [
    {
      title: 'Fault recording register fields (FRCD_REG)',
      words: 4,
      coverage: FAULT_RECORD_COVERAGE,
      bits: faultRecordFieldBits(),
      specOnly: [],
      reserved: { writtenAs0: 'The model writes the bits no row covers, reserved in the spec, as 0' },
    },
    {
      title: 'Capability register fields (CAP_REG)',
      words: 2,
      coverage: CAP_COVERAGE,
      bits: capFieldBits(),
      specOnly: CAP_SPEC_ONLY_FIELDS,
      reserved: { writtenAs0: 'Bits no row covers are reserved and read 0' },
    },
    {
      title: 'Extended capability register fields (ECAP_REG)',
      words: 2,
      coverage: ECAP_COVERAGE,
      bits: ecapFieldBits(),
      specOnly: ECAP_SPEC_ONLY_FIELDS,
      reserved: { writtenAs0: 'Bits no row covers are reserved and read 0' },
    },
    {
      title: 'Root entry fields (legacy mode)',
      words: ROOT_ENTRY_WORDS,
      coverage: LEGACY_ROOT_COVERAGE,
      bits: legacyRootFieldBits(),
      specOnly: [],
      reserved: {
        base: encodeLegacyRootEntry({ p: true }),
        refused: (w) => checkRootEntry(w, 0, false, f) === FR.ROOT_RESERVED,
        outcome: fault(FR.ROOT_RESERVED),
      },
    },
    {
      title: 'Scalable-mode root entry fields',
      words: ROOT_ENTRY_WORDS,
      coverage: SCALABLE_ROOT_COVERAGE,
      bits: scalableRootFieldBits(),
      specOnly: [],
      reserved: {
        base: encodeScalableRootEntry({ lp: true, up: true }),
        // Devfn 0 uses the lower half, devfn 0x80 the upper one.
        refused: (w) =>
          checkRootEntry(w, 0, true, f) === FR.SM_ROOT_RESERVED ||
          checkRootEntry(w, 0x80, true, f) === FR.SM_ROOT_RESERVED,
        outcome: `the half in use (fault ${specHex(FR.SM_ROOT_RESERVED)})`,
      },
    },
    {
      title: 'Context entry fields (legacy mode)',
      words: LEGACY_CONTEXT_WORDS,
      coverage: LEGACY_CONTEXT_COVERAGE,
      bits: legacyContextFieldBits(),
      specOnly: [],
      reserved: {
        base: encodeLegacyContext({ p: true, aw: 2 }),
        refused: (w) => checkLegacyContext(w, f) === FR.CONTEXT_RESERVED,
        outcome: fault(FR.CONTEXT_RESERVED),
      },
    },
    {
      title: 'Scalable-mode context entry fields',
      words: SCALABLE_CONTEXT_WORDS,
      coverage: SCALABLE_CONTEXT_COVERAGE,
      bits: scalableContextFieldBits(),
      specOnly: SCALABLE_CONTEXT_SPEC_ONLY_FIELDS,
      reserved: {
        base: encodeScalableContext({ p: true }),
        refused: (w) => checkScalableContext(w, f) === FR.SM_CONTEXT_RESERVED,
        outcome: fault(FR.SM_CONTEXT_RESERVED),
      },
    },
    {
      title: 'Scalable-mode PASID directory entry fields',
      words: PASID_DIR_ENTRY_WORDS,
      coverage: PASID_DIR_COVERAGE,
      bits: pasidDirFieldBits(),
      specOnly: [],
      reserved: {
        base: encodePasidDirEntry({ p: true }),
        refused: (w) => checkPasidDirEntry(w, f) === FR.SM_PASID_DIR_RESERVED,
        outcome: fault(FR.SM_PASID_DIR_RESERVED),
      },
    },
    {
      title: 'Scalable-mode PASID table entry fields',
      words: PASID_ENTRY_WORDS,
      coverage: PASID_ENTRY_COVERAGE,
      bits: pasidEntryFieldBits(),
      specOnly: PASID_ENTRY_SPEC_ONLY_FIELDS,
      reserved: {
        base: encodePasidEntry({ p: true, pgtt: PGTT.SECOND_STAGE, aw: 2 }),
        refused: (w) => checkPasidEntry(w, f, { privileged: false, execute: false }) === FR.SM_PASID_RESERVED,
        outcome: fault(FR.SM_PASID_RESERVED),
      },
    },
  ];
}

function irteSection(mode: Irte['mode'], f: VtdFeatures): CoverageSection {
  const coverage = mode === 'remapped' ? REMAPPED_IRTE_COVERAGE : POSTED_IRTE_COVERAGE;
  return structureSection({
    title: `IRTE fields, ${mode} format`,
    words: IRTE_WORDS,
    coverage,
    bits: irteFieldBits(mode),
    specOnly: [],
    reserved: {
      base: encodeIrte({ mode, present: true }),
      refused: (w) => checkIrte(decodeIrte(w), f, false) === IR_FR.IRTE_RESERVED,
      outcome: `an entry (fault ${specHex(IR_FR.IRTE_RESERVED)})`,
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// Registers, descriptors and fault reasons.

/** Feature switches that remove registers, in the order a register's presence is attributed to them. */
const PRESENCE: readonly (readonly [string, Partial<VtdFeatures>])[] = [
  ['CAP.PLMR', { protectedLowMemory: false }],
  ['CAP.PHMR', { protectedHighMemory: false }],
  ['CAP.PLMR or CAP.PHMR', { protectedLowMemory: false, protectedHighMemory: false }],
  ['ECAP.QI', { queuedInvalidation: false }],
  ['ECAP.IR', { interruptRemapping: false }],
  ['ECAP.PRS', { pageRequests: false }],
];

const registerNames = (f: VtdFeatures): Set<string> => new Set(vtdRegisterTable(f).map((d) => d.name));

/** The register's name in the register table of a unit with these features (a 64-bit one by its low half). */
function tableName(name: RegName, names: Set<string>): string | undefined {
  return [name, `${name}_LO`, `${name}0_0`].find((n) => names.has(n));
}

/** The feature a register of the default instance needs (`ECAP.QI`), '' for none, undefined if absent. */
export function registerPresence(name: RegName): string | undefined {
  const f = defaultVtdFeatures();
  if (tableName(name, registerNames(f)) === undefined) return undefined;
  const needs = PRESENCE.find(([, off]) => tableName(name, registerNames({ ...f, ...off })) === undefined);
  return needs?.[0] ?? '';
}

function registerWidth(name: RegName): string {
  const entry = tableName(name, registerNames(defaultVtdFeatures()));
  if (entry === undefined) return 'not present';
  if (entry.endsWith('0_0')) return '128-bit each, CAP.NFR + 1 of them';
  return entry.endsWith('_LO') ? '64-bit' : '32-bit';
}

function registerTableRows(): CoverageRow[] {
  // Registers outside the MMIO map (apertures, other registers' offsets) sort last, in list order.
  return registerRows(
    REGISTER_COVERAGE,
    { offsets: REG, width: registerWidth, presence: registerPresence },
    SPEC_ONLY_REGISTERS,
    0x10000,
  );
}

function descriptorRows(): CoverageRow[] {
  return [
    ...(Object.keys(INV_DESCRIPTOR_COVERAGE) as InvTypeName[]).map((name) => ({
      name: `\`${INV_DESCRIPTOR_COVERAGE[name].spec}\` (\`${name}\`)`,
      where: specHex(INV_TYPE[name]),
      coverage: INV_DESCRIPTOR_COVERAGE[name],
      order: INV_TYPE[name],
    })),
    ...SPEC_ONLY_INV_DESCRIPTORS.map((d) => ({
      name: `\`${d.name}\` (not decoded)`,
      where: specHex(d.code),
      coverage: d,
      order: d.code,
    })),
  ];
}

/**
 * The bits that hold a descriptor's type: those some type's code sets, and those that, toggled in a bare
 * descriptor, make its type undefined (IQEI 3).
 */
export function descriptorTypeBits(): BitRun[] {
  const union = new Uint32Array(WIDE_INV_DESC_WORDS);
  const all = [{ msb: 32 * WIDE_INV_DESC_WORDS - 1, lsb: 0 }];
  for (const name of Object.keys(INV_TYPE) as InvTypeName[]) {
    const bare = encodeWideDescriptor(name, {});
    const undefinedType = refusedBits(all, bare, (w) => {
      const d = decodeInvDescriptor(w, 0, true);
      return 'invalid' in d && d.iqei === IQEI.INVALID_TYPE;
    });
    for (const { msb, lsb } of undefinedType)
      for (let bit = lsb; bit <= msb; bit++) bare[bit >>> 5] = (bare[bit >>> 5]! | (1 << (bit & 31))) >>> 0;
    bare.forEach((w, i) => {
      union[i] = (union[i]! | w) >>> 0;
    });
  }
  return bitRuns(union);
}

/** Every descriptor's fields in one table, by type and then bit; the reserved bits of each, refused or not. */
function descriptorFieldSection(): CoverageSection {
  const rows: CoverageRow[] = [];
  const notes: string[] = [];
  for (const name of Object.keys(INV_DESCRIPTOR_FIELD_COVERAGE) as InvTypeName[]) {
    const spec = INV_DESCRIPTOR_COVERAGE[name].spec;
    const bits = invDescriptorFieldBits(name) as Record<string, BitRun[]>;
    const coverage = INV_DESCRIPTOR_FIELD_COVERAGE[name] as Parameters<typeof structureRows>[0];
    for (const row of structureRows(coverage, bits, [], `${spec}.`))
      rows.push({ ...row, order: INV_TYPE[name] * 256 + row.order });
    const gaps = uncoveredBits(WIDE_INV_DESC_WORDS, { ...bits, type: descriptorTypeBits() }, []);
    const base = encodeWideDescriptor(name, VALID_DESCRIPTOR[name] ?? {});
    const isReservedError = (w: Uint32Array) => {
      const d = decodeInvDescriptor(w, 0, true);
      return 'invalid' in d && d.iqei === IQEI.RESERVED_FIELD;
    };
    const unchecked = refusedBits(gaps, base, (w) => !isReservedError(w));
    notes.push(
      `${spec} ${formatBits(gaps)}${unchecked.length > 0 ? ` (not checked: ${formatBits(unchecked)})` : ''}`,
    );
  }
  const typeBits = formatBits(descriptorTypeBits());
  return {
    title: 'Invalidation descriptor fields',
    headers: ['field', 'bits'],
    rows,
    after: `Every descriptor has its type in bits ${typeBits}; descriptors are read as 256 bits here. Bits no row covers are reserved, and a descriptor with one of them set is an Invalidation Queue Error (IQEI ${IQEI.RESERVED_FIELD}): ${notes.join('; ')}.`,
  };
}

function hex64(lo: number, hi: number): string {
  return `0x${(hi >>> 0).toString(16).toUpperCase().padStart(8, '0')}${(lo >>> 0).toString(16).toUpperCase().padStart(8, '0')}`;
}

function defaultInstance(): string {
  const f = defaultVtdFeatures();
  const cap = capWords(f);
  const ecap = ecapWords(f);
  const ver = (f.version.major << 4) | f.version.minor;
  return [
    `With every option at its default, an instance reports version ${f.version.major}.${f.version.minor} and reads:`,
    '',
    '| register | value |',
    '|---|---|',
    `| \`VER\` | \`${specHex(ver, 8)}\` |`,
    `| \`CAP\` | \`${hex64(cap.lo, cap.hi)}\` |`,
    `| \`ECAP\` | \`${hex64(ecap.lo, ecap.hi)}\` |`,
    '',
  ].join('\n');
}

/** The generated part of docs/vendors/vtd.md: options, the default instance, an overview, every table. */
export function vtdStatusMarkdown(): string {
  const f = defaultVtdFeatures();
  const [frcd, cap, ecap, ...tables] = vtdStructures().map(structureSection);
  const sections: CoverageSection[] = [
    { title: 'Registers', headers: ['register', 'offset'], rows: registerTableRows() },
    frcd!,
    cap!,
    ecap!,
    ...tables,
    { title: 'Invalidation descriptors', headers: ['descriptor', 'type'], rows: descriptorRows() },
    descriptorFieldSection(),
    structureSection({
      title: 'Page request descriptor fields',
      words: PAGE_REQUEST_WORDS,
      coverage: PAGE_REQUEST_COVERAGE,
      bits: pageRequestFieldBits(),
      specOnly: [],
      reserved: { writtenAs0: 'The model writes the bits no row covers, reserved in the spec, as 0' },
    }),
    irteSection('remapped', f),
    irteSection('posted', f),
    {
      title: 'DMA-remapping fault reasons',
      headers: ['fault reason', 'code'],
      rows: codeRows(FR, FAULT_REASON_COVERAGE, SPEC_ONLY_FAULT_REASONS, 'no `FR` name'),
    },
    {
      title: 'Interrupt-remapping fault reasons',
      headers: ['fault reason', 'code'],
      rows: codeRows(IR_FR, IR_FAULT_REASON_COVERAGE, SPEC_ONLY_IR_FAULT_REASONS, 'no `IR_FR` name'),
    },
  ];
  return [
    `### Options\n\nThe instance options (\`VtdOptionsSchema\`); every key has a default.\n\n${schemaReferenceTable(VtdOptionsSchema)}`,
    `### Default instance\n\n${defaultInstance()}`,
    coverageMarkdown(sections),
  ].join('\n');
}
