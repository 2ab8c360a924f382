/**
 * The driver's side of the command buffer (AMD pub. 48882 §2.4 "Commands", §3.4 Command Buffer Base
 * Address 0008h, Head/Tail 2000h/2008h, Control.CmdBufEn): Linux iommu.c `__iommu_queue_command_sync`,
 * `copy_cmd_to_buffer`, `iommu_completion_wait`, `wait_on_sem`, init.c `alloc_command_buffer`,
 * `alloc_cwwb_sem`, `iommu_enable_command_buffer`, `amd_iommu_reset_cmd_buffer` and
 * `amd_iommu_flush_all_caches`. Commands are built by hw/command-encoders.ts (Linux's build_* functions).
 *
 * - The ring: 512 commands of 16 bytes (Linux CMD_BUFFER_SIZE, ComLen 9), in driver memory. A command is
 *   written at the driver's tail, which then advances and is written to CmdTail at once, as Linux does.
 *   Linux keeps 0x20 bytes between the next tail and the head it last read; with less room it rereads
 *   CmdHead until the unit has fetched enough (bounded: `ETIMEDOUT`, where Linux gives -EIO).
 * - Completion: a COMPLETION_WAIT that stores the next value of a 64-bit counter into a semaphore page the
 *   driver owns (Linux `cmd_sem`, `cmd_sem_val`); the driver polls the semaphore until it reaches the value
 *   (bounded: `ETIMEDOUT`; Linux "Completion-Wait loop timed out"). Nothing is assumed of when the unit
 *   processes what it was given: a unit that stopped (illegal command, CmdBufEn off) makes the wait time
 *   out, as on Linux. As Linux's `need_sync`, a wait with nothing queued since the last one is skipped.
 */
import {
  allocDriverPages,
  freeDriverPages,
  POLL_LIMIT,
  pollTimeout,
  readDriverMemory,
  writeDriverMemory,
} from '@iommukit/core';
import {
  buildCompletionWait,
  buildInvalidateDevtabEntry,
  buildInvalidateInterruptTable,
  buildInvalidateIommuAll,
  buildInvalidateIommuPages,
  WHOLE_ADDRESS_SPACE,
} from '../hw/command-encoders.js';
import { type AmdCommand, COMMAND_BYTES, COMMAND_WORDS, encodeCommand } from '../hw/commands.js';
import { LOG_PTR_MASK, REG } from '../hw/regs.js';
import { type AmdDriverBase, CONTROL } from './driver-host.js';

/** log2 of the ring's entries (Linux MMIO_CMD_SIZE_512: ComLen 9). */
export const CMD_BUFFER_LENGTH = 9;
/** Bytes of the ring (Linux CMD_BUFFER_SIZE, 8 KiB). */
export const CMD_BUFFER_SIZE = 2 ** CMD_BUFFER_LENGTH * COMMAND_BYTES;
/** The room Linux keeps free between the next tail and the head (two commands). */
const CMD_BUFFER_RESERVE = 0x20;
/** Linux MAX_DOMAIN_ID: the DomainIDs `amd_iommu_flush_tlb_all` walks. */
export const MAX_DOMAIN_ID = 65536;
/** DeviceIDs of a segment with every bus (Linux `last_bdf` 0xffff). */
export const DEVICE_IDS = 65536;

export interface CommandQueueStats {
  commands: number;
  completionWaits: number;
  /** Commands that found the ring full and waited for CmdHead. */
  fullWaits: number;
}

export class CommandQueue {
  /** The ring and the completion semaphore page (Linux `cmd_buf`, `cmd_sem`). */
  readonly base: number;
  readonly sem: number;
  readonly stats: CommandQueueStats = { commands: 0, completionWaits: 0, fullWaits: 0 };
  private tail = 0;
  private head = 0;
  private semValue = 0;
  private needSync = false;
  private readonly words = new Uint32Array(COMMAND_WORDS);
  private readonly semWords = new Uint32Array(2);

  constructor(private readonly host: AmdDriverBase) {
    this.sem = allocDriverPages(host.memory, 1);
    this.base = allocDriverPages(host.memory, CMD_BUFFER_SIZE / 4096);
  }

  /** Linux `iommu_enable_command_buffer`: base and ComLen, then `amd_iommu_reset_cmd_buffer`. */
  enable(): void {
    this.host.mmio.write64(REG.CMD_BUF_BASE, BigInt(this.base) | (BigInt(CMD_BUFFER_LENGTH) << 56n));
    this.reset();
  }

  /** Linux `amd_iommu_reset_cmd_buffer`: CmdBufEn off, CmdHead = CmdTail = 0, CmdBufEn on. */
  reset(): void {
    const { mmio, control } = this.host;
    control.set(CONTROL.CMDBUF_EN, false);
    mmio.write32(REG.CMD_HEAD, 0);
    mmio.write32(REG.CMD_TAIL, 0);
    this.head = this.tail = 0;
    control.set(CONTROL.CMDBUF_EN, true);
  }

  /** Returns the ring and the semaphore (after the unit stopped using them). */
  free(): void {
    freeDriverPages(this.host.memory, this.base, CMD_BUFFER_SIZE / 4096);
    freeDriverPages(this.host.memory, this.sem, 1);
  }

  /**
   * Linux `__iommu_queue_command_sync`: `command` into the ring at the tail and CmdTail moved past it;
   * `sync` (the default, Linux `iommu_queue_command`) makes the next `completionWait` wait for it.
   */
  queue(command: AmdCommand, sync = true): void {
    const nextTail = (this.tail + COMMAND_BYTES) % CMD_BUFFER_SIZE;
    this.waitForRoom(nextTail);
    encodeCommand(command, this.words, 0);
    writeDriverMemory(this.host, this.base + this.tail, this.words);
    this.tail = nextTail;
    this.stats.commands++;
    this.host.mmio.write32(REG.CMD_TAIL, this.tail);
    this.needSync = sync;
  }

  /** Linux `iommu_completion_wait`: a COMPLETION_WAIT storing the next semaphore value, then the poll. */
  completionWait(): void {
    if (!this.needSync) return;
    this.semValue++;
    const lo = this.semValue % 2 ** 32;
    this.queue(buildCompletionWait(this.sem, lo, Math.floor(this.semValue / 2 ** 32)), false);
    this.stats.completionWaits++;
    this.waitOnSem(this.semValue);
  }

  /** `commands` queued, then one completion wait (Linux's queue-then-`iommu_completion_wait` pattern). */
  submit(commands: readonly AmdCommand[]): void {
    for (const command of commands) this.queue(command);
    this.completionWait();
  }

  /** Linux `wait_on_sem`: poll the semaphore until it holds `value` or more. */
  private waitOnSem(value: number): void {
    for (let i = 0; i < POLL_LIMIT; i++) {
      readDriverMemory(this.host, this.sem, this.semWords);
      if (this.semWords[1]! * 2 ** 32 + this.semWords[0]! >= value) return;
    }
    throw pollTimeout(
      this.host.instance,
      `completion wait ${value} never stored (Completion-Wait loop timed out)`,
    );
  }

  /** Rereads CmdHead until the ring has more than the reserve between `nextTail` and the head. */
  private waitForRoom(nextTail: number): void {
    for (let i = 0; i < POLL_LIMIT; i++) {
      const left = (((this.head - nextTail) % CMD_BUFFER_SIZE) + CMD_BUFFER_SIZE) % CMD_BUFFER_SIZE;
      if (left > CMD_BUFFER_RESERVE) return;
      if (i === 0) this.stats.fullWaits++;
      this.head = this.host.mmio.read32(REG.CMD_HEAD) & LOG_PTR_MASK;
    }
    throw pollTimeout(
      this.host.instance,
      'command buffer full: CmdHead did not move (Command buffer timeout)',
    );
  }
}

/**
 * Linux `amd_iommu_flush_all_caches`: with EFR.IASup one INVALIDATE_IOMMU_ALL (`amd_iommu_flush_all`);
 * without it every DTE (`amd_iommu_flush_dte_all`), every interrupt table (`amd_iommu_flush_irt_all`) and
 * every DomainID's pages (`amd_iommu_flush_tlb_all`), each followed by a completion wait.
 */
export function flushAllCaches(host: AmdDriverBase, queue: CommandQueue): void {
  if (host.unit.efr.iaSup) {
    queue.submit([buildInvalidateIommuAll()]);
    return;
  }
  for (let deviceId = 0; deviceId < DEVICE_IDS; deviceId++) queue.queue(buildInvalidateDevtabEntry(deviceId));
  queue.completionWait();
  for (let deviceId = 0; deviceId < DEVICE_IDS; deviceId++)
    queue.queue(buildInvalidateInterruptTable(deviceId));
  queue.completionWait();
  for (let domainId = 0; domainId < MAX_DOMAIN_ID; domainId++)
    queue.queue(buildInvalidateIommuPages(0, WHOLE_ADDRESS_SPACE, domainId, 0, false));
  queue.completionWait();
}
