import { describe, expect, it } from 'vitest';
import { type Coverage, coverageProblems } from './coverage.js';

describe('coverageProblems', () => {
  it('accepts entries with a known status and a one-line note', () => {
    expect(
      coverageProblems({
        A: { status: 'modelled', note: 'Does it.' },
        B: { status: 'checked', note: 'Refused.' },
        C: { status: 'not modelled', note: 'Reads 0.' },
      }),
    ).toEqual([]);
  });

  it('names each entry with an unknown status, an empty note or a note over several lines', () => {
    const bad = { status: 'done', note: ' ' } as unknown as Coverage;
    expect(coverageProblems({ A: bad, B: { status: 'modelled', note: 'one\ntwo' } })).toEqual([
      'A: status "done" is not one of modelled, checked, not modelled',
      'A: the note is empty',
      'B: the note is not one line',
    ]);
  });

  it('names the entries of a list by index', () => {
    expect(
      coverageProblems([
        { status: 'modelled', note: 'ok' },
        { status: 'checked', note: '' },
      ]),
    ).toEqual(['1: the note is empty']);
  });
});
