/**
 * Every structure, queue-entry and command encoder refuses a value its field cannot hold — negative,
 * fractional, unsafe, too wide, misaligned (addresses) or not a number at all — with EINVAL naming the
 * field, and never wraps or truncates it into the words. Drivers (the host's and a guest's) call these
 * encoders, so misuse is the caller's mistake, reported as a coded error. Widths and alignments are the
 * spec's: STE §5.2, L1STD §5.1.1, CD §5.4, L1CD §5.3, commands §4, event records §7.3, PRI entries §8.
 */
import { IommufdError } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { encodeCd, encodeL1Cd } from './cd.js';
import * as commands from './commands.js';
import { EVENT_ID, encodeEvent } from './events.js';
import { encodePriEntry } from './priq.js';
import { encodeL1Std, encodeSte } from './ste.js';

type Encode = (fields: Record<string, unknown>) => Uint32Array;

/** The encoders rows name directly: the structures', the PRI entry's and every command's. */
const BY_NAME = { encodeSte, encodeL1Std, encodeCd, encodeL1Cd, encodePriEntry, ...commands };
type EncoderName = Extract<keyof typeof BY_NAME, `encode${string}`>;

/** A field and what it holds: `uint` N bits (wide ones are page numbers), a flag, or a byte address. */
type Field =
  | { readonly name: string; readonly kind: 'uint'; readonly width: number; readonly max?: number }
  | { readonly name: string; readonly kind: 'bool' }
  | { readonly name: string; readonly kind: 'address'; readonly alignBits: number; readonly bits: number };

/** `max`: the largest value the encoder takes, when the field's top value means something else. */
const uint = (name: string, width: number, max?: number): Field =>
  max === undefined ? { name, kind: 'uint', width } : { name, kind: 'uint', width, max };
const bool = (name: string): Field => ({ name, kind: 'bool' });
/** An address field: aligned to 2^alignBits, below 2^bits. */
const address = (name: string, alignBits: number, bits: number): Field => ({
  name,
  kind: 'address',
  alignBits,
  bits,
});

/** A row for the encoder `name`. */
const row = (name: EncoderName, fields: readonly Field[]) => [name, BY_NAME[name] as Encode, fields] as const;

// Each encoder with one field of every kind it has (commands: every command that has fields).
const ENCODERS: readonly (readonly [name: string, encode: Encode, fields: readonly Field[]])[] = [
  row('encodeSte', [
    uint('config', 3),
    bool('v'),
    uint('s2Vmid', 16),
    address('s1ContextPtr', 6, 56),
    address('s2Ttb', 4, 56),
  ]),
  row('encodeL1Std', [uint('span', 5), address('l2Ptr', 6, 56)]),
  row('encodeCd', [
    uint('asid', 16),
    bool('v'),
    uint('mair0', 32),
    address('ttb0', 4, 56),
    address('ttb1', 4, 56),
  ]),
  row('encodeL1Cd', [bool('v'), address('l2Ptr', 12, 56)]),
  row('encodePrefetchConfig', [uint('streamId', 32), bool('ssv'), uint('substreamId', 20)]),
  row('encodePrefetchAddr', [uint('size', 5), bool('ssv'), uint('addressPage', 52)]),
  row('encodeCfgiSte', [uint('streamId', 32), bool('leaf')]),
  row('encodeCfgiSteRange', [uint('streamId', 32), uint('range', 5, 30)]),
  row('encodeCfgiCd', [uint('substreamId', 20), bool('leaf')]),
  row('encodeCfgiCdAll', [uint('streamId', 32)]),
  row('encodeTlbiNhAll', [uint('vmid', 16)]),
  row('encodeTlbiNhAsid', [uint('asid', 16)]),
  row('encodeTlbiNhVa', [uint('num', 5), bool('leaf'), uint('addressPage', 52)]),
  row('encodeTlbiNhVaa', [uint('scale', 5), bool('leaf'), uint('addressPage', 52)]),
  row('encodeTlbiEl3Va', [uint('ttl', 2), bool('leaf'), uint('addressPage', 52)]),
  row('encodeTlbiEl2Asid', [uint('asid', 16)]),
  row('encodeTlbiEl2Va', [uint('tg', 2), bool('leaf'), uint('addressPage', 52)]),
  row('encodeTlbiEl2Vaa', [uint('num', 5), bool('leaf'), uint('addressPage', 52)]),
  row('encodeTlbiS12Vmall', [uint('vmid', 16)]),
  row('encodeTlbiS2Ipa', [uint('vmid', 16), bool('leaf'), uint('addressPage', 40)]),
  row('encodeAtcInv', [uint('size', 6), bool('global'), uint('addressPage', 52)]),
  row('encodePriResp', [uint('prgIndex', 9), bool('ssv'), uint('resp', 2)]),
  row('encodeResume', [uint('stag', 16), bool('abort'), uint('action', 1)]),
  row('encodeStallTerm', [uint('streamId', 32)]),
  row('encodeCmdSync', [uint('cs', 2), uint('msiData', 32), address('msiAddress', 2, 52)]),
  [
    'encodeCommand',
    (fields) =>
      commands.encodeCommand({
        op: 'SYNC',
        cs: 0,
        msh: 0,
        msiAttr: 0,
        msiData: 0,
        msiAddress: 0,
        ...fields,
      } as never),
    [uint('msh', 2), address('msiAddress', 2, 52)],
  ],
  [
    'encodeEvent',
    (fields) => encodeEvent({ id: EVENT_ID.F_TRANSLATION, streamId: 0, ...fields } as never),
    [uint('substreamId', 20), bool('s2'), uint('inputAddrPage', 52), address('ipa', 12, 56)],
  ],
  [
    'encodeEvent (F_WALK_EABT)',
    (fields) => encodeEvent({ id: EVENT_ID.F_WALK_EABT, streamId: 0, ...fields } as never),
    [uint('class', 2), address('fetchAddr', 3, 56)],
  ],
  [
    'encodeEvent (ID, StreamID)',
    (fields) => encodeEvent({ id: 1, streamId: 0, ...fields } as never),
    [uint('id', 8), uint('streamId', 32)],
  ],
  row('encodePriEntry', [uint('prgIndex', 9), bool('last'), uint('addressPage', 52)]),
];

/** Values the field cannot hold, by kind: [label, value]. */
function badValues(field: Field): readonly (readonly [string, unknown])[] {
  const common = [
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a string', '1'],
    ['a bigint', 1n],
    ['null', null],
  ] as const;
  switch (field.kind) {
    case 'uint':
      return [
        ['negative', -1],
        ['fractional', 1.5],
        ['too wide', 2 ** field.width],
        ['unsafe', 2 ** 53 + 2],
        ...common,
      ];
    case 'bool':
      return [
        ['negative', -1],
        ['fractional', 0.5],
        ['too wide', 2],
        ['a string', 'true'],
      ];
    case 'address': {
      const align = 2 ** field.alignBits;
      return [
        // An aligned negative address passed every check before.
        ['negative', -align],
        ['negative, far', -(2 ** 40)],
        ['fractional', align + 0.5],
        ['misaligned', align + align / 2],
        ['too wide', 2 ** field.bits],
        // Beyond 2^53 only even integers exist; one not aligned to the field is refused, not rounded.
        ['unsafe', 2 ** 53 + 2],
        ...common,
      ];
    }
  }
}

/** The largest value the field holds (accepted, and not wrapped: it must not encode like 0). */
function largest(field: Field): number | boolean {
  if (field.kind === 'bool') return true;
  if (field.kind === 'uint') return field.max ?? 2 ** field.width - 1;
  return 2 ** field.bits - 2 ** field.alignBits;
}

const CASES = ENCODERS.flatMap(([encoder, encode, fields]) =>
  fields.flatMap((field) =>
    badValues(field).map(([label, value]) => ({ encoder, encode, field, label, value })),
  ),
);

describe('encoders refuse values their fields cannot hold (EINVAL naming the field)', () => {
  it.each(CASES)('$encoder $field.name ($field.kind): $label', ({ encode, field, value }) => {
    let error: unknown;
    try {
      encode({ [field.name]: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(IommufdError);
    expect((error as IommufdError).code).toBe('EINVAL');
    expect((error as IommufdError).message).toContain(field.name);
  });

  it.each(
    ENCODERS.flatMap(([encoder, encode, fields]) => fields.map((field) => ({ encoder, encode, field }))),
  )('$encoder $field.name: the largest value fits and changes the words', ({ encode, field }) => {
    const base = encode({});
    const words = encode({ [field.name]: largest(field) });
    expect(Array.from(words)).not.toEqual(Array.from(base));
  });

  it('CMD_CFGI_STE_RANGE with Range 31 (CMD_CFGI_ALL) is EINVAL too', () => {
    expect(() => commands.encodeCfgiSteRange({ range: 31 })).toThrow(IommufdError);
  });

  it('a non-zero field the event type does not have is EINVAL naming it', () => {
    expect(() => encodeEvent({ id: EVENT_ID.C_BAD_STE, streamId: 0, ipa: 0x1000 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('ipa') }),
    );
  });
});
