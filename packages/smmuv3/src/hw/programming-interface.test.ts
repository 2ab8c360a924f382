/**
 * The register protocols of the programming interface on their own (IHI 0070 §6.2, §6.3): CR0 → CR0ACK
 * and IRQ_CTRL → IRQ_CTRLACK at once, the Guarded registers, GBPA's Update, and the translation state the
 * rest of the SMMU reads from STRTAB_BASE, STRTAB_BASE_CFG, CR2, GBPA and CR0ACK.
 */
import { MemoryBus } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import type { Command } from './commands.js';
import { encodeCmdSync } from './commands.js';
import { featuresFromOptions, Smmuv3OptionsSchema } from './options.js';
import { Smmuv3ProgrammingInterface, type TranslationState } from './programming-interface.js';
import {
  CR0_CMDQEN,
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR2_RECINVSID,
  GBPA_ABORT,
  GBPA_UPDATE,
  GERROR_CMDQ_ERR,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  REG,
} from './regs.js';

const RAM = 0x8000_0000;

/** A doorbell page: the MSI writes it receives, with the DeviceID each carries. */
const DOORBELL = 0x0900_0000;

function pi(options: Record<string, unknown> = {}, msiDeviceId?: number) {
  const parsed = Smmuv3OptionsSchema.parse(options);
  const bus = new MemoryBus();
  bus.addRam('ram', RAM, 0x10_0000);
  const msis: { offset: number; value: number; deviceId: number | undefined }[] = [];
  bus.addMmio('doorbell', DOORBELL, 0x1000, {
    read: () => 0,
    write: (offset, _size, value, deviceId) => msis.push({ offset, value, deviceId }),
  });
  const driver = bus.counter('driver');
  const put = (address: number, words: Uint32Array) => bus.writeWords(address, words, words.length, driver);
  const executed: Command[] = [];
  const cr0States: TranslationState[] = [];
  let eventqConsumed = 0;
  const p = new Smmuv3ProgrammingInterface({
    features: featuresFromOptions(parsed),
    options: parsed,
    bus,
    counter: bus.counter('smmu'),
    execute: (command) => {
      executed.push(command);
      return command.op === 'TLBI_NSNH_ALL' ? { ok: false, error: 'ABT' } : { ok: true };
    },
    onCr0Written: (state) => cr0States.push(state),
    onEventqConsumed: () => eventqConsumed++,
    ...(msiDeviceId === undefined ? {} : { msiDeviceId }),
  });
  const write = (offset: number, value: number) => p.regs.write(offset, 4, value >>> 0);
  const read = (offset: number) => p.regs.read(offset, 4);
  return { p, put, executed, cr0States, write, read, msis, eventqConsumed: () => eventqConsumed };
}

describe('Smmuv3ProgrammingInterface', () => {
  it('starts from the reset values: disabled, a linear table at 0, GBPA.ABORT as configured', () => {
    const reset = {
      smmuEnabled: false,
      gbpaAbort: false,
      strtabBase: 0,
      strtabFmt: 0,
      strtabSplit: 0,
      strtabLog2Size: 0,
      recordInvalidStreamIds: false,
      e2h: false,
    };
    expect(pi().p.state).toEqual(reset);
    expect(pi({ gbpaAbort: true }).p.state).toEqual({ ...reset, gbpaAbort: true });
  });

  it('reads the Stream table base, format, split and size, and CR2.RECINVSID (§6.3.12, §6.3.24–25)', () => {
    const t = pi();
    // ADDR[55:6] with RA (bit 62) and low bits [5:0] set: neither is part of the address.
    t.write(REG.STRTAB_BASE, 0x1234_567f);
    t.write(REG.STRTAB_BASE + 4, 0x4000_00ab);
    t.write(REG.STRTAB_BASE_CFG, (1 << 16) | (8 << 6) | 0x12);
    t.write(REG.CR2, CR2_RECINVSID);
    expect(t.p.state).toMatchObject({
      strtabBase: 0xab_1234_5640,
      strtabFmt: 1,
      strtabSplit: 8,
      strtabLog2Size: 0x12,
      recordInvalidStreamIds: true,
      e2h: false,
    });
  });

  it('acknowledges CR0 at once, then tells the owner with the new state', () => {
    const t = pi();
    t.write(REG.CR0, CR0_SMMUEN | CR0_CMDQEN);
    expect(t.read(REG.CR0ACK)).toBe(CR0_SMMUEN | CR0_CMDQEN);
    expect(t.cr0States).toHaveLength(1);
    expect(t.cr0States[0]!.smmuEnabled).toBe(true);
    t.write(REG.CR0, 0);
    expect(t.read(REG.CR0ACK)).toBe(0);
    expect(t.cr0States.map((s) => s.smmuEnabled)).toEqual([true, false]);
  });

  it('acknowledges IRQ_CTRL at once (§6.3.16–17)', () => {
    const t = pi();
    const all = IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_PRIQ_IRQEN | IRQ_CTRL_EVENTQ_IRQEN;
    t.write(REG.IRQ_CTRL, all);
    expect(t.read(REG.IRQ_CTRLACK)).toBe(all);
  });

  it('ignores writes to a Guarded register while its enable is set (§6.2)', () => {
    const t = pi();
    t.write(REG.STRTAB_BASE, 0x1000);
    t.write(REG.CMDQ_BASE, 0x2000);
    t.write(REG.EVENTQ_BASE, 0x3000);
    t.write(REG.PRIQ_BASE, 0x4000);
    t.write(REG.EVENTQ_IRQ_CFG1, 0x11);
    t.write(REG.CR0, CR0_SMMUEN | CR0_CMDQEN | CR0_EVENTQEN | CR0_PRIQEN);
    t.write(REG.IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN);
    for (const [offset, value] of [
      [REG.STRTAB_BASE, 0x1000],
      [REG.CMDQ_BASE, 0x2000],
      [REG.EVENTQ_BASE, 0x3000],
      [REG.PRIQ_BASE, 0x4000],
      [REG.EVENTQ_IRQ_CFG1, 0x11],
    ] as const) {
      t.write(offset, 0xffff_ffc0);
      expect(t.read(offset), `offset 0x${offset.toString(16)}`).toBe(value);
    }
    expect(t.p.state.strtabBase).toBe(0x1000);
    // Disabled again, the registers take writes.
    t.write(REG.CR0, 0);
    t.write(REG.STRTAB_BASE, 0x5000);
    expect(t.p.state.strtabBase).toBe(0x5000);
  });

  it('completes a GBPA update at once and ignores a write without Update (§6.3.14)', () => {
    const t = pi();
    t.write(REG.GBPA, GBPA_ABORT);
    expect(t.p.state.gbpaAbort).toBe(false);
    t.write(REG.GBPA, GBPA_UPDATE | GBPA_ABORT);
    expect(t.read(REG.GBPA) & (GBPA_UPDATE | GBPA_ABORT)).toBe(GBPA_ABORT);
    expect(t.p.state.gbpaAbort).toBe(true);
  });

  it('runs the Command queue on CMDQ_PROD and GERRORN writes, and reports EVENTQ_CONS writes', () => {
    const t = pi();
    t.write(REG.CMDQ_BASE, RAM | 4); // LOG2SIZE 4
    t.put(RAM, encodeCmdSync());
    t.put(RAM + 16, Uint32Array.from([0x30, 0, 0, 0])); // TLBI_NSNH_ALL: the executor aborts it
    t.write(REG.CR0, CR0_CMDQEN);
    t.write(REG.CMDQ_PROD, 2);
    expect(t.executed.map((c) => c.op)).toEqual(['SYNC', 'TLBI_NSNH_ALL']);
    expect(t.read(REG.GERROR)).toBe(GERROR_CMDQ_ERR);
    // Replace the failed entry and acknowledge: the queue restarts from CONS.
    t.put(RAM + 16, encodeCmdSync());
    t.write(REG.GERRORN, GERROR_CMDQ_ERR);
    expect(t.executed.map((c) => c.op)).toEqual(['SYNC', 'TLBI_NSNH_ALL', 'SYNC']);
    expect(t.read(REG.CMDQ_CONS) & 0x1f).toBe(2);
    expect(t.eventqConsumed()).toBe(0);
    t.write(REG.EVENTQ_CONS, 0);
    expect(t.eventqConsumed()).toBe(1);
  });

  it('guards both halves of the 64-bit registers, and each IRQ_CFG group by its own enable (§6.2)', () => {
    const t = pi();
    const halves = [
      [REG.STRTAB_BASE + 4, CR0_SMMUEN, 0],
      [REG.CMDQ_BASE + 4, CR0_CMDQEN, 0],
      [REG.EVENTQ_BASE + 4, CR0_EVENTQEN, 0],
      [REG.PRIQ_BASE + 4, CR0_PRIQEN, 0],
      [REG.GERROR_IRQ_CFG0 + 4, 0, IRQ_CTRL_GERROR_IRQEN],
      [REG.EVENTQ_IRQ_CFG0 + 4, 0, IRQ_CTRL_EVENTQ_IRQEN],
      [REG.PRIQ_IRQ_CFG0 + 4, 0, IRQ_CTRL_PRIQ_IRQEN],
    ] as const;
    for (const [offset, cr0, irqCtrl] of halves) {
      t.write(REG.CR0, 0);
      t.write(REG.IRQ_CTRL, 0);
      t.write(offset, 0x12);
      t.write(REG.CR0, cr0);
      t.write(REG.IRQ_CTRL, irqCtrl);
      t.write(offset, 0x34);
      expect(t.read(offset), `offset 0x${offset.toString(16)} while enabled`).toBe(0x12);
    }
    expect(t.p.state.strtabBase).toBe(0x12 * 2 ** 32);
  });

  it('signals its own MSIs with the DeviceID it was given, or none (§3.18)', () => {
    for (const deviceId of [0x7fe, undefined]) {
      const t = pi({}, deviceId);
      t.write(REG.GERROR_IRQ_CFG0, DOORBELL + 0x40);
      t.write(REG.GERROR_IRQ_CFG1, 0x99);
      t.write(REG.IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
      t.write(REG.CMDQ_BASE, RAM | 4);
      t.put(RAM, Uint32Array.from([0x30, 0, 0, 0])); // TLBI_NSNH_ALL: the executor aborts it
      t.write(REG.CR0, CR0_CMDQEN);
      t.write(REG.CMDQ_PROD, 1);
      expect(t.msis).toEqual([{ offset: 0x40, value: 0x99, deviceId }]);
    }
  });

  it('needs none of its owner callbacks', () => {
    const parsed = Smmuv3OptionsSchema.parse({});
    const bus = new MemoryBus();
    const p = new Smmuv3ProgrammingInterface({
      features: featuresFromOptions(parsed),
      options: parsed,
      bus,
      counter: bus.counter('smmu'),
      execute: () => ({ ok: true }),
    });
    p.regs.write(REG.CR0, 4, CR0_SMMUEN);
    p.regs.write(REG.EVENTQ_CONS, 4, 0);
    expect(p.state.smmuEnabled).toBe(true);
  });
});
