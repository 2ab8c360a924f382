/** The driver's Stream table: linear or 2-level, level-2 arrays on demand, STE writes with CFGI_STE. */
import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { cmdqRig } from '../../test/driver-system.js';
import { STRTAB_BASE_HI_RA } from '../hw/regs.js';
import { decodeL1Std, decodeSte, L1STD_WORDS, STE_CONFIG, STE_WORDS } from '../hw/ste.js';
import { bypassSte } from './ste-builders.js';
import { STRTAB_SPLIT, StreamTable } from './stream-table.js';

function setup(sidBits: number, twoLevel: boolean) {
  const rig = cmdqRig();
  const table = new StreamTable(rig.host, sidBits, twoLevel);
  const words = (addr: number, count: number) => rig.r.words(addr, count);
  return { ...rig, table, words };
}

describe('StreamTable', () => {
  it('is linear without 2-level support, with every STE abort', () => {
    const { table, words } = setup(6, false);
    expect(table.format).toBe('linear');
    expect(table.baseCfg).toBe(6); // FMT 0, LOG2SIZE 6
    for (const sid of [0, 17, 63]) {
      const ste = decodeSte(words(table.steAddress(sid)!, STE_WORDS));
      expect(ste).toMatchObject({ v: true, config: STE_CONFIG.ABORT });
    }
    expect(table.steAddress(64)).toBeUndefined();
    expect(table.ensure(5)).toBe(false);
  });

  it('is linear when the StreamIDs fit one level-2 array (SIDSIZE <= SPLIT), as Linux decides', () => {
    const { table } = setup(STRTAB_SPLIT, true);
    expect(table.format).toBe('linear');
    expect(table.log2Size).toBe(8);
  });

  it('is 2-level with SPLIT 8: the L1 table is allocated at once, all descriptors invalid', () => {
    const { table, words } = setup(16, true);
    expect(table.format).toBe('two-level');
    expect(table.baseCfg).toBe((1 << 16) | (8 << 6) | 16);
    expect(Number(table.baseRegister >> 32n)).toBe(STRTAB_BASE_HI_RA);
    expect(Number(table.baseRegister & 0xffff_ffffn)).toBe(table.base);
    expect(words(table.base, 2 * 256).every((w) => w === 0)).toBe(true);
    expect(table.l2Count).toBe(0);
    expect(table.steAddress(0x1234)).toBeUndefined();
  });

  it('caps the L1 table at 2^17 descriptors (LOG2SIZE 25) for 32-bit StreamIDs', () => {
    const { table } = setup(32, true);
    expect(table.log2Size).toBe(25);
    expect(table.covers(2 ** 25 - 1)).toBe(true);
    expect(table.covers(2 ** 25)).toBe(false);
    expect(errnoOf(() => table.ensure(2 ** 25))).toBe('EINVAL');
  });

  it('allocates a level-2 array on demand: abort STEs, then its L1STD (Span 9) and a CMD_SYNC', () => {
    const { table, words, ops, r } = setup(16, true);
    expect(table.ensure(0x1234)).toBe(true);
    expect(table.l2Count).toBe(1);
    const desc = decodeL1Std(words(table.base + 0x12 * 8, L1STD_WORDS));
    expect(desc.span).toBe(9);
    const l2 = desc.l2Ptr;
    expect(l2 % (256 * 64)).toBe(0);
    expect(table.steAddress(0x1234)).toBe(l2 + 0x34 * 64);
    expect(decodeSte(words(l2 + 0x34 * 64, STE_WORDS))).toMatchObject({ v: true, config: STE_CONFIG.ABORT });
    expect(ops()).toEqual(['SYNC']);
    // Same block: nothing more; another block: a second array.
    expect(table.ensure(0x12ff)).toBe(false);
    expect(table.ensure(0x1300)).toBe(true);
    expect(table.l2Count).toBe(2);
    expect(decodeL1Std(words(table.base + 0x11 * 8, L1STD_WORDS)).span).toBe(0);
    expect(r.executed.filter((c) => c.op !== 'SYNC')).toEqual([]);
  });

  it('writes STEs through the hitless writer, each sync CFGI_STE(sid, leaf) + CMD_SYNC', () => {
    const { table, ops, r } = setup(16, true);
    table.ensure(0x42);
    r.executed.length = 0;
    // Abort → bypass: SHCFG (qword 1, unused by abort) first, then Config (qword 0): two syncs.
    const outcome = table.writeSte(0x42, bypassSte());
    expect(outcome).toEqual({ hitless: true, syncs: 2 });
    expect(ops()).toEqual(['CFGI_STE', 'SYNC', 'CFGI_STE', 'SYNC']);
    expect(r.executed[0]).toMatchObject({ op: 'CFGI_STE', streamId: 0x42, leaf: true });
    expect(decodeSte(table.readSte(0x42)).config).toBe(STE_CONFIG.BYPASS);
    // Writing what is there already costs nothing.
    expect(table.writeSte(0x42, bypassSte())).toEqual({ hitless: true, syncs: 0 });
    expect(errnoOf(() => table.writeSte(0x4242, bypassSte()))).toBe('EINVAL');
  });

  it('frees the L1 table and every level-2 array', () => {
    const { table, memory } = setup(16, true);
    const before = memory.allocatedFrameCount;
    table.ensure(0);
    table.ensure(0x300);
    table.free();
    expect(memory.allocatedFrameCount).toBe(before - 1);
  });
});
