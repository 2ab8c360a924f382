/**
 * Finding a StreamID's STE (IHI 0070 §3.3.1, §5.1): the table size, linear and 2-level tables, and the
 * event when the STE cannot be read: C_BAD_STREAMID for a StreamID the table does not hold, F_STE_FETCH
 * with the address the fetch aborted on.
 */
import { MemoryBus } from '@iommukit/core';
import { beforeEach, describe, expect, it } from 'vitest';
import type { TranslationState } from './programming-interface.js';
import { encodeL1Std, encodeSte, STE_CONFIG, STE_WORDS } from './ste.js';
import { fetchSteWords } from './ste-fetch.js';

const RAM = 0x8000_0000;
const L2 = RAM + 0x1_0000;
/** No memory there: a fetch aborts. */
const NOWHERE = 0x4000_0000;
const linear: TranslationState = {
  smmuEnabled: true,
  gbpaAbort: false,
  strtabBase: RAM,
  strtabFmt: 0,
  strtabSplit: 8,
  strtabLog2Size: 8,
  recordInvalidStreamIds: true,
  e2h: false,
};
const twoLevel: TranslationState = { ...linear, strtabFmt: 1, strtabLog2Size: 16 };

let bus: MemoryBus;
const out = new Uint32Array(STE_WORDS);
const put = (addr: number, words: Uint32Array) =>
  bus.writeWords(addr, words, words.length, bus.counter('test'));
const fetch = (state: TranslationState, streamId: number, sidBits = 16) =>
  fetchSteWords(bus, bus.counter('smmu'), state, sidBits, streamId, out);

beforeEach(() => {
  bus = new MemoryBus();
  bus.addRam('dram', RAM, 2 ** 20);
});

describe('the STE of a StreamID', () => {
  it('a linear table holds 2^LOG2SIZE STEs, capped by SIDSIZE: beyond is C_BAD_STREAMID', () => {
    put(RAM + 64 * 0xff, encodeSte({ v: true, config: STE_CONFIG.BYPASS }));
    expect(fetch(linear, 0xff)).toStrictEqual({ ok: true, address: RAM + 64 * 0xff });
    expect(out[0]).toBe(encodeSte({ v: true, config: STE_CONFIG.BYPASS })[0]);
    expect(fetch(linear, 0x100)).toMatchObject({
      ok: false,
      event: 'C_BAD_STREAMID',
      reason: expect.stringMatching(/^StreamID 0x100 is beyond the stream table/),
    });
    expect(fetch(linear, 0x80, 7)).toMatchObject({ ok: false, event: 'C_BAD_STREAMID' });
    expect(fetch(linear, 0x7f, 7)).toMatchObject({ ok: true });
  });

  it('an STE read that aborts is F_STE_FETCH with the STE address', () => {
    expect(fetch({ ...linear, strtabBase: NOWHERE }, 3)).toMatchObject({
      ok: false,
      event: 'F_STE_FETCH',
      fetchAddr: NOWHERE + 3 * 64,
      reason: expect.stringMatching(/^STE at 0x400000c0 aborted/),
    });
  });

  it('a 2-level table: the L1STD for StreamID[15:SPLIT] locates the STE in its level-2 array', () => {
    const sid = 0x0305; // L1STD 3, STE 5 of its array
    put(RAM + 8 * 3, encodeL1Std({ span: 4, l2Ptr: L2 }));
    expect(fetch(twoLevel, sid)).toStrictEqual({ ok: true, address: L2 + 64 * 5 });
  });

  it('a 2-level table: an L1STD read that aborts is F_STE_FETCH with the L1STD address', () => {
    expect(fetch({ ...twoLevel, strtabBase: NOWHERE }, 0x0305)).toMatchObject({
      ok: false,
      event: 'F_STE_FETCH',
      fetchAddr: NOWHERE + 8 * 3,
      reason: expect.stringMatching(/^L1STD at 0x40000018 aborted/),
    });
  });

  it('a 2-level table: an invalid L1STD, or a StreamID beyond its Span, is C_BAD_STREAMID (§5.1.1)', () => {
    put(RAM + 8 * 3, encodeL1Std({ span: 0, l2Ptr: L2 }));
    expect(fetch(twoLevel, 0x0305)).toMatchObject({ ok: false, event: 'C_BAD_STREAMID' });
    put(RAM + 8 * 3, encodeL1Std({ span: 3, l2Ptr: L2 })); // 4 STEs: indexes 0–3
    expect(fetch(twoLevel, 0x0305)).toMatchObject({ ok: false, event: 'C_BAD_STREAMID' });
    expect(fetch(twoLevel, 0x0303)).toMatchObject({ ok: true, address: L2 + 64 * 3 });
  });

  it('the level-2 STE read that aborts is F_STE_FETCH with the STE address', () => {
    put(RAM + 8 * 3, encodeL1Std({ span: 4, l2Ptr: NOWHERE }));
    expect(fetch(twoLevel, 0x0305)).toMatchObject({
      ok: false,
      event: 'F_STE_FETCH',
      fetchAddr: NOWHERE + 64 * 5,
    });
  });
});
