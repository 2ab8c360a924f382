/**
 * Test fixtures for the queue machinery: an SMMUv3 register file on a real MemoryBus (MMIO at SMMU_BASE,
 * RAM for the queues), recording wired lines from a core InterruptController, and the few write hooks a
 * device model would install (CR0 → CR0ACK, IRQ_CTRL → IRQ_CTRLACK, CMDQ_PROD and GERRORN → consume),
 * so tests program the SMMU the way a driver does: 32-bit MMIO writes.
 */
import { InterruptController, MemoryBus, RegisterFile } from '@iommukit/core';
import type { CommandExecutor, CommandOutcome } from '../src/hw/command-queue.js';
import type { Command } from '../src/hw/commands.js';
import { featuresFromOptions, Smmuv3OptionsSchema } from '../src/hw/options.js';
import { SmmuQueues } from '../src/hw/queues.js';
import { ackFor, irqCtrlAckFor } from '../src/hw/register-protocols.js';
import { REG, registerTable, SMMU_MMIO_SIZE } from '../src/hw/regs.js';

export const SMMU_BASE = 0x0900_0000;
export const RAM_BASE = 0x8000_0000;
export const RAM_SIZE = 0x0100_0000;
/** Queue bases in RAM (each aligned to any queue size the tests use). */
export const CMDQ_ADDR = RAM_BASE + 0x10_0000;
export const EVENTQ_ADDR = RAM_BASE + 0x20_0000;
export const PRIQ_ADDR = RAM_BASE + 0x30_0000;
/** Where MSIs land in RAM. */
export const MSI_ADDR = RAM_BASE + 0x40_0000;
/** An address no region covers. */
export const UNMAPPED = 0x7000_0000;

export interface RigOptions {
  readonly options?: Record<string, unknown>;
  /** Overrides the default executor (records every command and succeeds). */
  readonly execute?: (command: Command) => CommandOutcome;
  readonly sev?: boolean;
}

export function rig(init: RigOptions = {}) {
  const options = Smmuv3OptionsSchema.parse(init.options ?? {});
  const features = featuresFromOptions(options);
  const regs = new RegisterFile(SMMU_MMIO_SIZE, registerTable(features, options));
  const bus = new MemoryBus();
  const ram = bus.addRam('ram', RAM_BASE, RAM_SIZE).ram;
  bus.addMmio('smmu', SMMU_BASE, SMMU_MMIO_SIZE, regs);
  const ic = new InterruptController();
  const executed: Command[] = [];
  const execute: CommandExecutor = (command) => {
    executed.push(command);
    return init.execute?.(command) ?? { ok: true };
  };
  const queues = new SmmuQueues({
    regs,
    bus,
    features,
    counter: bus.counter('smmu'),
    irq: (name) => ic.line(name),
    execute,
    ...(init.sev !== undefined ? { sev: init.sev } : {}),
  });
  // The device's hooks (Update completes at once).
  regs.onWrite(REG.CR0, (value) => {
    regs.set(REG.CR0ACK, ackFor(value));
    queues.onCr0Updated();
  });
  regs.onWrite(REG.IRQ_CTRL, (value) => regs.set(REG.IRQ_CTRLACK, irqCtrlAckFor(value)));
  regs.onWrite(REG.CMDQ_PROD, () => queues.onCmdqProdWrite());
  regs.onWrite(REG.GERRORN, () => queues.onGerrornWrite());

  const driver = bus.counter('driver');
  /** A driver's 32-bit MMIO write. */
  const mmio = (offset: number, value: number) => {
    const r = bus.write(SMMU_BASE + offset, 4, value, driver);
    if (!r.ok) throw new Error(`MMIO write at ${offset} aborted`);
  };
  const read = (offset: number) => regs.get(offset);
  /** A 64-bit register as two 32-bit writes (address values below 2^53). */
  const mmio64 = (offset: number, value: number) => {
    mmio(offset, value % 2 ** 32);
    mmio(offset + 4, Math.floor(value / 2 ** 32));
  };
  const words = (addr: number, count: number) => {
    const out = new Uint32Array(count);
    if (!bus.readWords(addr, out, count, driver)) throw new Error('read aborted');
    return [...out];
  };
  const put = (addr: number, data: ArrayLike<number>) => {
    if (!bus.writeWords(addr, data, data.length, driver)) throw new Error('write aborted');
  };
  const line = (name: string) => ic.line(name);
  return { options, features, regs, bus, ram, ic, queues, executed, mmio, mmio64, read, words, put, line };
}

export type Rig = ReturnType<typeof rig>;
