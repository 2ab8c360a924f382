/**
 * Edges of the driver's tables (cd-table.ts, stream-table.ts, table-memory.ts): SubstreamIDs and StreamIDs
 * that are not table indexes, CDs whose leaf does not exist, size-aligned allocation, and the trace of
 * table updates.
 */
import { errnoOf, FrameAllocator, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { cmdqRig } from '../../test/driver-system.js';
import { CD_WORDS } from '../hw/cd.js';
import { CdTable } from './cd-table.js';
import { abortSte } from './ste-builders.js';
import { StreamTable } from './stream-table.js';
import { allocSizeAligned, freeBlock } from './table-memory.js';

describe('CdTable', () => {
  it('a SubstreamID must be an integer in 0..2^S1CDMax − 1 (EINVAL)', () => {
    const { host } = cmdqRig();
    const table = new CdTable(host, 0x10, 4, true);
    for (const ssid of [-1, 16, 1.5, Number.NaN]) expect(errnoOf(() => table.cdAddress(ssid))).toBe('EINVAL');
    expect(table.cdAddress(15)).toBe(table.base + 15 * 64);
  });

  it('without its leaf a CD reads as zeros and clearing it issues nothing', () => {
    const { host, cmdq } = cmdqRig();
    const table = new CdTable(host, 0x10, 20, true);
    expect(table.cdAddress(0x1234)).toBeUndefined();
    expect(Array.from(table.readCd(0x1234))).toEqual(new Array(CD_WORDS).fill(0));
    const before = cmdq.producer;
    expect(table.clearCd(0x1234)).toEqual({ hitless: true, syncs: 0 });
    expect(cmdq.producer).toBe(before);
    expect(table.leafCount).toBe(0);
  });
});

describe('StreamTable', () => {
  it('a StreamID must be an integer below 2^LOG2SIZE; beyond it there is no STE (EINVAL)', () => {
    const { host } = cmdqRig();
    const table = new StreamTable(host, 12, true);
    for (const sid of [-1, 2 ** 12, 0.5]) {
      expect(table.covers(sid)).toBe(false);
      expect(table.steAddress(sid)).toBeUndefined();
      expect(errnoOf(() => table.ensure(sid))).toBe('EINVAL');
    }
    expect(table.covers(2 ** 12 - 1)).toBe(true);
    // Covered but its level-2 array does not exist yet.
    expect(table.steAddress(0x300)).toBeUndefined();
    expect(errnoOf(() => table.readSte(0x300))).toBe('EINVAL');
    expect(table.ensure(0x300)).toBe(true);
    expect(table.ensure(0x3ff)).toBe(false);
    expect(Array.from(table.readSte(0x3ff))).toEqual(Array.from(abortSte()));
  });

  it('a linear table needs no level-2 array', () => {
    const { host } = cmdqRig();
    const table = new StreamTable(host, 6, true);
    expect(table.format).toBe('linear');
    expect(table.ensure(63)).toBe(false);
    expect(table.l2Count).toBe(0);
    expect(table.steAddress(63)).toBe(table.base + 63 * 64);
  });
});

describe('allocSizeAligned', () => {
  it('whole frames aligned to the power of two that holds them', () => {
    const memory = new FrameAllocator([{ base: 0x8000_0000, size: 2 ** 24 }], () => {});
    const small = allocSizeAligned(memory, 32);
    expect(small.frames).toBe(1);
    // Skew the allocator so alignment shows.
    const three = allocSizeAligned(memory, 3 * 4096 - 100);
    expect(three.frames).toBe(3);
    expect(three.base % (4 * 4096)).toBe(0);
    const five = allocSizeAligned(memory, 5 * 4096);
    expect(five.frames).toBe(5);
    expect(five.base % (8 * 4096)).toBe(0);
    const used = memory.allocatedFrameCount;
    freeBlock(memory, three);
    expect(memory.allocatedFrameCount).toBe(used - 3);
  });
});

describe('the trace of table updates', () => {
  it('strtab.l2 and ste.write for STEs, cd.l2 and cd.write for CDs', () => {
    const { host } = cmdqRig();
    const tracer = new Tracer();
    const traced = { ...host, tracer };
    tracer.startRecording();
    const strtab = new StreamTable(traced, 12, true);
    strtab.ensure(0x10);
    strtab.writeSte(0x10, abortSte());
    const cds = new CdTable(traced, 0x10, 20, true);
    cds.writeCd(0x2345, new Uint32Array(CD_WORDS));
    const names = tracer.stopRecording().map((r) => [r.layer, r.source, r.name]);
    expect(names).toEqual([
      ['driver', 'smmu0', 'strtab.l2'],
      ['driver', 'smmu0', 'ste.write'],
      ['driver', 'smmu0', 'cd.l2'],
      ['driver', 'smmu0', 'cd.write'],
    ]);
  });
});
