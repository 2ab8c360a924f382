/**
 * The driver's Command queue against the hardware queue machinery (SmmuQueues on a RegisterFile):
 * batches and CMD_SYNC, splitting to fit a small queue, and recovery from CERROR_ILL / ABT / ATC_INV_SYNC.
 */
import { DEFAULT_LOG_CAPACITY, isIommufdError, MmioWindow } from '@iommukit/core';
import { describe, expect, it, vi } from 'vitest';
import { CMDQ_ADDR, type Rig, rig, SMMU_BASE } from '../../test/queue-fixtures.js';
import type { CommandOutcome } from '../hw/command-queue.js';
import {
  type Command,
  encodeCfgiAll,
  encodeCfgiSte,
  encodeCmdSync,
  encodeTlbiNhAsid,
  encodeTlbiNsnhAll,
} from '../hw/commands.js';
import { CR0_CMDQEN, GERROR_CMDQ_ERR, IRQ_CTRL_GERROR_IRQEN, REG } from '../hw/regs.js';
import { CMDQ_BATCH_ENTRIES, commandLabel, Smmuv3Cmdq } from './cmdq.js';

/** A rig with the driver's queue programmed and CMDQEN on. */
function setup(log2 = 8, options: { execute?: (c: Command) => CommandOutcome; cmdqLog2?: number } = {}) {
  const r = rig({
    options: { cmdqLog2: options.cmdqLog2 ?? 19 },
    ...(options.execute ? { execute: options.execute } : {}),
  });
  const counter = r.bus.counter('driver');
  const cmdq = new Smmuv3Cmdq({
    instance: 'smmu0',
    regs: new MmioWindow(r.bus, BigInt(SMMU_BASE), counter),
    bus: r.bus,
    counter,
    base: CMDQ_ADDR,
    log2,
  });
  cmdq.program();
  r.mmio(REG.IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
  r.mmio(REG.CR0, CR0_CMDQEN);
  return { r, cmdq };
}

const ops = (r: Rig) => r.executed.map((c) => c.op);
const steCommands = (n: number) =>
  Array.from({ length: n }, (_, i) => encodeCfgiSte({ streamId: i, leaf: true }));
/** Reserved opcode 0x00: CERROR_ILL. */
const BAD = new Uint32Array(4);

describe('Smmuv3Cmdq: submission', () => {
  it('programs CMDQ_BASE with the address, LOG2SIZE and RA, and PROD = CONS = 0', () => {
    const { r, cmdq } = setup(8);
    expect(r.read(REG.CMDQ_BASE)).toBe((CMDQ_ADDR | 8) >>> 0);
    expect(r.read(REG.CMDQ_BASE + 4)).toBe(1 << 30);
    expect(r.read(REG.CMDQ_PROD)).toBe(0);
    expect(cmdq.capacity).toBe(256);
  });

  it('writes commands at PROD, ends the batch with CMD_SYNC and sees CONS reach PROD', () => {
    const { r, cmdq } = setup();
    cmdq.submit([encodeCfgiAll(), encodeTlbiNsnhAll()]);
    expect(ops(r)).toEqual(['CFGI_ALL', 'TLBI_NSNH_ALL', 'SYNC']);
    expect(r.read(REG.CMDQ_PROD)).toBe(3);
    expect(r.read(REG.CMDQ_CONS)).toBe(3);
    expect(cmdq.producer).toBe(3);
    expect(cmdq.syncs).toBe(1);
    expect(cmdq.prodWrites).toBe(1);
    expect(cmdq.issued.get('CMD_CFGI_ALL')).toBe(1);
  });

  it('issues at most 64 commands per PROD write, with one CMD_SYNC at the end (Linux batches)', () => {
    const { r, cmdq } = setup();
    cmdq.submit(steCommands(150));
    expect(cmdq.prodWrites).toBe(3);
    expect(cmdq.syncs).toBe(1);
    expect(r.executed).toHaveLength(151);
    expect(r.executed.at(-1)?.op).toBe('SYNC');
    expect(r.executed.filter((c) => c.op === 'SYNC')).toHaveLength(1);
  });

  it('a batch builder issues full batches early and the rest with a sync', () => {
    const { r, cmdq } = setup();
    const batch = cmdq.batch();
    for (const c of steCommands(CMDQ_BATCH_ENTRIES + 3)) batch.add(c);
    expect(cmdq.prodWrites).toBe(1);
    expect(r.executed).toHaveLength(CMDQ_BATCH_ENTRIES);
    batch.submit();
    expect(cmdq.prodWrites).toBe(2);
    expect(ops(r).slice(-4)).toEqual(['CFGI_STE', 'CFGI_STE', 'CFGI_STE', 'SYNC']);
  });

  it('a sync alone is one CMD_SYNC; an empty submission without sync writes nothing', () => {
    const { r, cmdq } = setup();
    cmdq.submit([], false);
    expect(cmdq.prodWrites).toBe(0);
    cmdq.submit([]);
    expect(ops(r)).toEqual(['SYNC']);
  });

  it('splits a batch larger than a small queue into pieces that fit, across the wrap', () => {
    const { r, cmdq } = setup(2, { cmdqLog2: 2 }); // 4 entries
    cmdq.submit(steCommands(10));
    expect(r.executed).toHaveLength(11);
    expect(cmdq.prodWrites).toBe(3); // 4 + 4 + 3
    expect(ops(r).at(-1)).toBe('SYNC');
    // 11 entries in a 4-entry queue: index 3, wrap flag toggled twice → wrap 0.
    expect(r.read(REG.CMDQ_CONS)).toBe(11 % 8);
    cmdq.submit([encodeCfgiAll()]);
    expect(ops(r).slice(-2)).toEqual(['CFGI_ALL', 'SYNC']);
  });

  it('counts entries by command name', () => {
    expect(commandLabel(encodeCfgiAll())).toBe('CMD_CFGI_ALL');
    expect(commandLabel(encodeCmdSync())).toBe('CMD_SYNC');
    expect(commandLabel(BAD)).toBe('opcode 0x0');
  });

  it("fails with ETIMEDOUT when the queue does not consume (CMDQEN off), as Linux's CMD_SYNC poll does", () => {
    const { r, cmdq } = setup();
    r.mmio(REG.CR0, 0);
    expect(() => cmdq.submit([encodeCfgiAll()])).toThrowError(/ETIMEDOUT: .*CMD_SYNC timeout/);
  });
});

describe('Smmuv3Cmdq: Command queue errors (SMMUv3 §7.1, Linux arm_smmu_cmdq_skip_err)', () => {
  it('CERROR_ILL: the command is replaced by CMD_SYNC, CMDQ_ERR acknowledged, the rest runs, EIO names it', () => {
    const { r, cmdq } = setup();
    let error: unknown;
    try {
      cmdq.submit([encodeCfgiAll(), BAD, encodeTlbiNhAsid({ asid: 3 })]);
    } catch (e) {
      error = e;
    }
    expect(isIommufdError(error, 'EIO')).toBe(true);
    expect((error as Error).message).toMatch(/opcode 0x0 at index 1 \(CERROR_ILL, replaced-with-sync\)/);
    expect((error as { context: Record<string, unknown> }).context).toMatchObject({
      command: 'opcode 0x0',
      error: 'CERROR_ILL',
      index: 1,
    });
    // The bad entry became a CMD_SYNC and the queue went on to the end.
    expect(ops(r)).toEqual(['CFGI_ALL', 'SYNC', 'TLBI_NH_ASID', 'SYNC']);
    expect(r.words(CMDQ_ADDR + 16, 4)).toEqual([...encodeCmdSync()]);
    expect(r.read(REG.CMDQ_CONS) & 0xfffff).toBe(4);
    // CMDQ_ERR acknowledged, so the queue keeps working.
    expect((r.read(REG.GERROR) ^ r.read(REG.GERRORN)) & GERROR_CMDQ_ERR).toBe(0);
    cmdq.submit([encodeCfgiAll()]);
    expect(ops(r).slice(-2)).toEqual(['CFGI_ALL', 'SYNC']);
    expect(cmdq.failures.records).toHaveLength(1);
  });

  it('names a real command the SMMU refused (TLBI with a RES0 bit set)', () => {
    const { cmdq } = setup();
    const tlbi = encodeTlbiNhAsid({ asid: 1 });
    tlbi[2] = 1 << 8; // bit 72: RES0 in CMD_TLBI_NH_ASID
    expect(() => cmdq.submit([tlbi])).toThrowError(/CMD_TLBI_NH_ASID at index 0 \(CERROR_ILL/);
  });

  it('CERROR_ABT: retried (the entry is fetched again); one that keeps failing is replaced', () => {
    let aborts = 1;
    const { r, cmdq } = setup(8, {
      execute: (c) => (c.op === 'CFGI_ALL' && aborts-- > 0 ? { ok: false, error: 'ABT' } : { ok: true }),
    });
    cmdq.submit([encodeCfgiAll()]);
    expect(ops(r)).toEqual(['CFGI_ALL', 'CFGI_ALL', 'SYNC']);
    expect(cmdq.failures.records.map((f) => f.action)).toEqual(['retried']);

    aborts = 100;
    expect(() => cmdq.submit([encodeCfgiAll()])).toThrowError(
      /CMD_CFGI_ALL .*CERROR_ABT, replaced-with-sync/,
    );
    expect(ops(r).slice(-2)).toEqual(['SYNC', 'SYNC']);
  });

  it('CERROR_ATC_INV_SYNC: the CMD_SYNC is retried, then the rest of the batch is abandoned', () => {
    const { r, cmdq } = setup(8, {
      execute: (c) => (c.op === 'SYNC' ? { ok: false, error: 'ATC_INV_SYNC' } : { ok: true }),
    });
    expect(() => cmdq.submit([encodeCfgiAll()])).toThrowError(/CMD_SYNC .*CERROR_ATC_INV_SYNC, abandoned/);
    expect(cmdq.failures.records.map((f) => f.action)).toEqual(['retried', 'retried', 'abandoned']);
    // PROD was moved back to CONS: the queue is empty and usable.
    expect(r.read(REG.CMDQ_PROD)).toBe(r.read(REG.CMDQ_CONS) & 0xfffff);
    expect((r.read(REG.GERROR) ^ r.read(REG.GERRORN)) & GERROR_CMDQ_ERR).toBe(0);
    cmdq.submit([encodeCfgiAll()], false);
    expect(ops(r).at(-1)).toBe('CFGI_ALL');
  });

  it('a queue moved behind the driver (the same command illegal every time) ends in ETIMEDOUT, not a hang', () => {
    const { r, cmdq } = setup();
    // Software moves CMDQ_BASE (CMDQEN off, new base, CMDQEN on) to zeroed memory the driver never writes:
    // every entry the SMMU fetches is opcode 0 (CERROR_ILL), and replacing it in the driver's own queue
    // does not help. Linux's skip_err does the same and its CMD_SYNC poll times out (-ETIMEDOUT).
    r.mmio(REG.CR0, 0);
    r.mmio64(REG.CMDQ_BASE, CMDQ_ADDR + 0x8000 + 8); // LOG2SIZE 8
    r.mmio(REG.CR0, CR0_CMDQEN);
    // A watchdog on register reads, so that an unbounded poll fails this test instead of hanging it.
    let reads = 0;
    const read32 = MmioWindow.prototype.read32;
    const spy = vi.spyOn(MmioWindow.prototype, 'read32').mockImplementation(function (this: MmioWindow, o) {
      if (++reads > 100_000) throw new Error('watchdog: the driver is still polling');
      return read32.call(this, o);
    });
    try {
      expect(() => cmdq.submit([encodeCfgiAll()])).toThrowError(/ETIMEDOUT: .*CMD_SYNC timeout/);
    } finally {
      spy.mockRestore();
    }
    expect(reads).toBeLessThan(100_000);
    expect(cmdq.failures.records.at(-1)).toMatchObject({ error: 'CERROR_ILL', action: 'replaced-with-sync' });
  });

  it('the failure log stays bounded when every submission fails on and on (the rest is counted as lost)', () => {
    const { r, cmdq } = setup();
    r.mmio(REG.CR0, 0);
    r.mmio64(REG.CMDQ_BASE, CMDQ_ADDR + 0x8000 + 8);
    r.mmio(REG.CR0, CR0_CMDQEN);
    for (let i = 0; i < 3; i++) expect(() => cmdq.issue(encodeCfgiAll())).toThrowError(/ETIMEDOUT/);
    expect(cmdq.failures.length).toBe(DEFAULT_LOG_CAPACITY);
    expect(cmdq.failures.length + cmdq.failures.lost).toBe(cmdq.errors);
    expect(cmdq.errors).toBeGreaterThan(2 * DEFAULT_LOG_CAPACITY);
    // The last submission's own failures are still at hand.
    expect(cmdq.lastFailures.length).toBeGreaterThan(0);
    expect(cmdq.lastFailures.every((f) => f.error === 'CERROR_ILL')).toBe(true);
  });

  it('skipError (the GERROR handler) replaces an illegal command found outside a submission', () => {
    const { r, cmdq } = setup();
    // Another producer's bad command: write it and ring the doorbell behind the driver's back.
    r.put(CMDQ_ADDR, BAD);
    r.mmio(REG.CMDQ_PROD, 1);
    expect((r.read(REG.GERROR) ^ r.read(REG.GERRORN)) & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
    expect(cmdq.skipError()).toMatchObject({ error: 'CERROR_ILL', action: 'replaced-with-sync' });
    r.mmio(REG.GERRORN, r.read(REG.GERROR));
    expect(ops(r)).toEqual(['SYNC']);
  });
});
