/** A master's CD table: linear or 2-level with 64 KiB leaves allocated on demand, CD writes with CFGI_CD. */
import { errnoOf } from '@iommukit/core';
import { vmsaFormat } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { cmdqRig } from '../../test/driver-system.js';
import { CD_WORDS, decodeCd, decodeL1Cd, L1CD_WORDS } from '../hw/cd.js';
import { STE_S1FMT } from '../hw/ste.js';
import { CD_L2_ENTRIES, CdTable } from './cd-table.js';
import { s1Cd } from './ste-builders.js';

const format = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
const cd = (asid: number) => s1Cd({ format, root: 0x8080_0000 + asid * 4096, asid });

function setup(ssidBits: number, twoLevel = true) {
  const rig = cmdqRig();
  const table = new CdTable(rig.host, 0x10, ssidBits, twoLevel);
  return { ...rig, table, words: (addr: number, count: number) => rig.r.words(addr, count) };
}

describe('CdTable', () => {
  it('a master without PASIDs gets one CD (S1CDMax 0, linear)', () => {
    const { table } = setup(0);
    expect(table).toMatchObject({ s1Fmt: STE_S1FMT.LINEAR, s1CdMax: 0, entries: 1 });
    expect(table.cdAddress(0)).toBe(table.base);
    expect(errnoOf(() => table.cdAddress(1))).toBe('EINVAL');
  });

  it('is linear up to 1024 CDs (Linux CTXDESC_L2_ENTRIES), or without IDR0.CD2L', () => {
    expect(setup(10).table.s1Fmt).toBe(STE_S1FMT.LINEAR);
    expect(setup(12, false).table.s1Fmt).toBe(STE_S1FMT.LINEAR);
    const { table } = setup(8);
    expect(table.cdAddress(255)).toBe(table.base + 255 * 64);
    expect(table.base % (256 * 64)).toBe(0);
  });

  it('is 2-level with 64 KiB leaves for large SSID spaces; leaves come on demand with an L1CD and CFGI_CD', () => {
    const { table, words, r } = setup(20);
    expect(table.s1Fmt).toBe(STE_S1FMT.TWO_LEVEL_64K);
    expect(table.leafCount).toBe(0);
    expect(words(table.base, 2 * 1024).every((w) => w === 0)).toBe(true);
    expect(table.cdAddress(0x12345)).toBeUndefined();

    const at = table.ensure(0x12345);
    const index = Math.floor(0x12345 / CD_L2_ENTRIES);
    const l1 = decodeL1Cd(words(table.base + index * 8, L1CD_WORDS));
    expect(l1.v).toBe(true);
    expect(l1.l2Ptr % 0x1_0000).toBe(0);
    expect(at).toBe(l1.l2Ptr + (0x12345 % CD_L2_ENTRIES) * 64);
    expect(table.leafCount).toBe(1);
    expect(r.executed).toEqual([
      { op: 'CFGI_CD', streamId: 0x10, substreamId: 0x12345, leaf: false },
      expect.objectContaining({ op: 'SYNC' }),
    ]);
    // Another SSID in the same leaf: no new leaf, no command.
    r.executed.length = 0;
    table.ensure(0x12000);
    expect(table.leafCount).toBe(1);
    expect(r.executed).toEqual([]);
    // Reading a CD whose leaf does not exist gives zeros and allocates nothing.
    expect(table.readCd(5).every((w) => w === 0)).toBe(true);
    expect(table.leafCount).toBe(1);
  });

  it('writes CDs hitlessly, each sync CFGI_CD(sid, ssid, leaf) + CMD_SYNC; clearing makes V = 0', () => {
    const { table, ops, r } = setup(20);
    const outcome = table.writeCd(7, cd(3));
    expect(outcome.hitless).toBe(true);
    expect(table.leafCount).toBe(1);
    expect(decodeCd(table.readCd(7))).toMatchObject({ v: true, asid: 3 });
    const cfgis = r.executed.filter((c) => c.op === 'CFGI_CD');
    expect(cfgis.at(-1)).toEqual({ op: 'CFGI_CD', streamId: 0x10, substreamId: 7, leaf: true });
    expect(ops().filter((o) => o === 'SYNC')).toHaveLength(1 + outcome.syncs);
    table.clearCd(7);
    expect(decodeCd(table.readCd(7)).v).toBe(false);
    expect(table.clearCd(0x40000 - 1)).toEqual({ hitless: true, syncs: 0 });
    expect(table.readCd(7)).toEqual(new Uint32Array(CD_WORDS));
  });

  it('frees the table and its leaves', () => {
    const { table, memory } = setup(20);
    const l1 = memory.allocatedFrameCount;
    expect(l1).toBe(2); // 1024 L1CDs
    table.ensure(0);
    table.ensure(5000);
    expect(memory.allocatedFrameCount).toBe(l1 + 32);
    table.free();
    expect(memory.allocatedFrameCount).toBe(0);
  });
});
