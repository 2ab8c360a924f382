import { describe, expect, it } from 'vitest';
import type { Coverage, FieldCoverage } from './coverage.js';
import {
  type CoverageRow,
  codeRows,
  coverageCounts,
  coverageMarkdown,
  coverageSummary,
  coverageTable,
  markdownCell,
  registerRows,
  specHex,
  structureRows,
} from './coverage-markdown.js';

const M: Coverage = { status: 'modelled', note: 'Does it.' };
const C: Coverage = { status: 'checked', note: 'Refused | or not.' };
const N: Coverage = { status: 'not modelled', note: 'Reads 0.' };

describe('cells and numbers', () => {
  it('writes hexadecimal numbers with upper-case digits and at least the digits asked for', () => {
    expect(specHex(0x1c, 4)).toBe('0x001C');
    expect(specHex(0xa)).toBe('0x0A');
    expect(specHex(0x12345)).toBe('0x12345');
  });

  it('escapes the column separator and joins lines in a cell', () => {
    expect(markdownCell('a | b\nc')).toBe('a \\| b c');
  });
});

describe('coverageCounts and coverageSummary', () => {
  it('count every status, absent ones as 0', () => {
    expect(coverageCounts([M, M, N])).toEqual({ modelled: 2, checked: 0, 'not modelled': 1 });
    expect(coverageSummary([M, C, N, N])).toBe('4 items: 1 modelled, 1 checked, 2 not modelled.');
  });
});

describe('coverageTable', () => {
  it('sorts the rows by order and escapes the notes', () => {
    const rows: CoverageRow[] = [
      { name: '`B`', where: '0x08', coverage: C, order: 8 },
      { name: '`A`', where: '0x00', coverage: M, order: 0 },
    ];
    expect(coverageTable(['register', 'offset'], rows)).toBe(
      [
        '| register | offset | status | note |',
        '|---|---|---|---|',
        '| `A` | 0x00 | modelled | Does it. |',
        '| `B` | 0x08 | checked | Refused \\| or not. |',
        '',
      ].join('\n'),
    );
  });
});

describe('structureRows', () => {
  it('names decoded fields by spec name and key, spec-only ones as not decoded, ordered by lowest bit', () => {
    const coverage: Record<'p' | 'ptr', FieldCoverage> = {
      p: { spec: 'P', ...M },
      ptr: { spec: 'PTR', ...N },
    };
    const bits = { p: [{ msb: 0, lsb: 0 }], ptr: [{ msb: 63, lsb: 12 }] };
    const rows = structureRows(coverage, bits, [{ spec: 'AVAIL', msb: 11, lsb: 8, ...N }], 'x.');
    expect(rows).toEqual([
      { name: '`x.P` (`p`)', where: '[0]', coverage: coverage.p, order: 0 },
      { name: '`x.PTR` (`ptr`)', where: '[63:12]', coverage: coverage.ptr, order: 12 },
      {
        name: '`x.AVAIL` (not decoded)',
        where: '[11:8]',
        coverage: { spec: 'AVAIL', msb: 11, lsb: 8, ...N },
        order: 8,
      },
    ]);
  });

  it('orders a field without bits first', () => {
    const rows = structureRows({ none: { spec: 'NONE', ...N } }, { none: [] }, []);
    expect(rows[0]).toMatchObject({ where: '', order: -1 });
  });
});

describe('coverageMarkdown', () => {
  it('writes the overview, then each table with its summary and closing note', () => {
    const md = coverageMarkdown([
      {
        title: 'Registers',
        headers: ['register', 'offset'],
        rows: [{ name: '`A`', where: '0x00', coverage: M, order: 0 }],
      },
      {
        title: 'Fields',
        headers: ['field', 'bits'],
        rows: [
          { name: '`F`', where: '[1]', coverage: N, order: 1 },
          { name: '`G`', where: '[0]', coverage: C, order: 0 },
        ],
        after: 'Bits no row covers are reserved: [31:2].',
      },
    ]);
    expect(md).toBe(
      [
        '### Overview',
        '',
        '| table | modelled | checked | not modelled | total |',
        '|---|---|---|---|---|',
        '| Registers | 1 | 0 | 0 | 1 |',
        '| Fields | 0 | 1 | 1 | 2 |',
        '',
        '### Registers',
        '',
        '1 items: 1 modelled, 0 checked, 0 not modelled.',
        '',
        '| register | offset | status | note |',
        '|---|---|---|---|',
        '| `A` | 0x00 | modelled | Does it. |',
        '',
        '### Fields',
        '',
        '2 items: 0 modelled, 1 checked, 1 not modelled.',
        '',
        '| field | bits | status | note |',
        '|---|---|---|---|',
        '| `G` | [0] | checked | Refused \\| or not. |',
        '| `F` | [1] | not modelled | Reads 0. |',
        '',
        'Bits no row covers are reserved: [31:2].',
        '',
      ].join('\n'),
    );
  });
});

describe('codeRows and registerRows', () => {
  const M = { status: 'modelled', note: 'does it' } as const;
  const N = { status: 'not modelled', note: 'does not' } as const;

  it('lists named codes at their value, then spec-only ones by their words', () => {
    expect(
      codeRows({ A: 1, B: 0x12 }, { A: M, B: N }, [{ name: 'the spec’s 0x7', code: 7, ...N }], 'no `X` name'),
    ).toEqual([
      { name: '`A`', where: '0x01', coverage: M, order: 1 },
      { name: '`B`', where: '0x12', coverage: N, order: 0x12 },
      {
        name: 'the spec’s 0x7 (no `X` name)',
        where: '0x07',
        coverage: { name: 'the spec’s 0x7', code: 7, ...N },
        order: 7,
      },
    ]);
  });

  it('lists registers at offset and width, prefixing the features they need; spec-only ones at their offset or after the map', () => {
    const rows = registerRows(
      { CTRL: M, EXT: N },
      {
        offsets: { CTRL: 0x18, EXT: 0x40 },
        width: (n) => (n === 'CTRL' ? '64-bit' : '32-bit'),
        presence: (n) => (n === 'EXT' ? 'EFR.HESup' : undefined),
      },
      [
        { name: 'SMI', offset: '0x0060', ...N },
        { name: 'PCI header', offset: 'PCI config 0x40', ...N },
      ],
      0x10_0000,
    );
    expect(rows).toEqual([
      { name: '`CTRL`', where: '0x0018 (64-bit)', coverage: M, order: 0x18 },
      {
        name: '`EXT`',
        where: '0x0040 (32-bit)',
        coverage: { status: 'not modelled', note: 'Present only with EFR.HESup. does not' },
        order: 0x40,
      },
      { name: '`SMI`', where: '0x0060', coverage: { name: 'SMI', offset: '0x0060', ...N }, order: 0x60 },
      {
        name: '`PCI header`',
        where: 'PCI config 0x40',
        coverage: { name: 'PCI header', offset: 'PCI config 0x40', ...N },
        order: 0x10_0001,
      },
    ]);
  });
});
