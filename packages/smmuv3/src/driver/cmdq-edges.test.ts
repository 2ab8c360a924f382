/**
 * Edges of the driver's Command queue (cmdq.ts) on the queue fixtures: command names for reserved opcodes
 * and CFGI_ALL, a queue that is full and not draining, a disabled queue, and the trace of submissions and
 * refusals. Batching and error recovery are in cmdq.test.ts.
 */
import { MmioWindow, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { CMDQ_ADDR, rig, SMMU_BASE } from '../../test/queue-fixtures.js';
import { CFGI_ALL_RANGE, encodeCfgiAll, encodeCfgiSteRange, encodeTlbiNsnhAll } from '../hw/commands.js';
import { CR0_CMDQEN, IRQ_CTRL_GERROR_IRQEN, REG } from '../hw/regs.js';
import { commandLabel, Smmuv3Cmdq } from './cmdq.js';

function setup(log2: number, tracer?: Tracer) {
  const r = rig({ options: { cmdqLog2: 19 } });
  const counter = r.bus.counter('driver');
  const cmdq = new Smmuv3Cmdq({
    instance: 'smmu0',
    regs: new MmioWindow(r.bus, BigInt(SMMU_BASE), counter),
    bus: r.bus,
    counter,
    base: CMDQ_ADDR,
    log2,
    ...(tracer ? { tracer } : {}),
  });
  cmdq.program();
  r.mmio(REG.IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
  r.mmio(REG.CR0, CR0_CMDQEN);
  return { r, cmdq };
}

describe('commandLabel', () => {
  it('CMD_CFGI_ALL is CFGI_STE_RANGE with Range 31; other ranges keep their name; reserved opcodes by number', () => {
    expect(CFGI_ALL_RANGE).toBe(31);
    expect(commandLabel(encodeCfgiAll())).toBe('CMD_CFGI_ALL');
    expect(commandLabel(encodeCfgiSteRange({ streamId: 0, range: 5 }))).toBe('CMD_CFGI_STE_RANGE');
    expect(commandLabel(Uint32Array.of(0x7f, 0, 0, 0))).toBe('opcode 0x7f');
  });
});

describe('a queue that does not drain', () => {
  it('full: the driver looks at CONS once more and then fails with ETIMEDOUT without writing PROD', () => {
    const { r, cmdq } = setup(2); // 4 entries
    r.mmio(REG.CR0, 0); // CMDQEN off: nothing is consumed
    expect(() => cmdq.issue(encodeTlbiNsnhAll())).toThrowError(/ETIMEDOUT/);
    expect(() => cmdq.issue(encodeTlbiNsnhAll())).toThrowError(/ETIMEDOUT/);
    const { prodWrites, spins } = cmdq;
    expect(() => cmdq.issue(encodeTlbiNsnhAll())).toThrowError(/ETIMEDOUT: smmu0: CMDQ timeout/);
    expect(cmdq.prodWrites).toBe(prodWrites);
    expect(cmdq.spins).toBe(spins + 1);
  });

  it('disabled (after shutdown): submissions do nothing', () => {
    const { r, cmdq } = setup(8);
    cmdq.disable();
    cmdq.submit([encodeCfgiAll()]);
    expect(cmdq.prodWrites).toBe(0);
    expect(r.executed).toEqual([]);
  });
});

describe('the trace', () => {
  it('one cmdq.submit per PROD write, one cmdq.error per refused command', () => {
    const tracer = new Tracer();
    const { cmdq } = setup(8, tracer);
    tracer.startRecording();
    cmdq.submit([encodeCfgiAll()]);
    expect(() => cmdq.submit([new Uint32Array(4)])).toThrowError(/EIO/);
    const names = tracer.stopRecording().map((r) => [r.layer, r.source, r.name]);
    expect(names).toEqual([
      ['driver', 'smmu0', 'cmdq.submit'],
      ['driver', 'smmu0', 'cmdq.submit'],
      ['driver', 'smmu0', 'cmdq.error'],
    ]);
  });
});
