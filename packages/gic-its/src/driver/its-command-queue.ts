/**
 * The driver's side of an ITS command queue (Linux its_send_single_command): write the 32-byte command at
 * CWRITER, move CWRITER past it, and wait for CREADR to catch up. A stalled queue (CREADR.Stalled) is an
 * error the caller sees as `EIO`. The waits are bounded (Linux gives up after one second: "ITS queue not
 * draining", "ITS queue timeout"); the model consumes on the CWRITER write, so one look at CREADR is the
 * whole wait, and a queue that has not moved by then fails with `ETIMEDOUT`.
 */
import {
  type AccessCounter,
  IommufdError,
  type MemoryBus,
  type MmioWindow,
  pollTimeout,
  toHex,
} from '@iommukit/core';
import { encodeCommand, ITS_COMMAND_BYTES, type ItsCommand } from '../hw/commands.js';
import { GITS, QUEUE_OFFSET_MASK, QUEUE_RETRY_STALLED } from '../hw/registers.js';

export class ItsCommandQueue {
  private writeOffset = 0;

  constructor(
    private readonly name: string,
    private readonly mmio: MmioWindow,
    private readonly bus: MemoryBus,
    private readonly who: AccessCounter,
    readonly base: bigint,
    readonly bytes: number,
  ) {}

  /** Queues the commands in order and waits until the ITS has consumed them. */
  send(...commands: ItsCommand[]): void {
    for (const command of commands) {
      const next = (this.writeOffset + ITS_COMMAND_BYTES) % this.bytes;
      if (next === (this.mmio.read32(GITS.CREADR) & QUEUE_OFFSET_MASK))
        throw pollTimeout(this.name, 'ITS queue not draining (command queue full)');
      encodeCommand(command).forEach((word, i) => {
        this.bus.write(this.base + BigInt(this.writeOffset + 8 * i), 8, word, this.who);
      });
      this.writeOffset = next;
    }
    this.mmio.write32(GITS.CWRITER, this.writeOffset);
    const creadr = this.mmio.read32(GITS.CREADR);
    if (creadr & QUEUE_RETRY_STALLED)
      throw new IommufdError(
        'EIO',
        `${this.name}: ITS command queue stalled at ${toHex(creadr & QUEUE_OFFSET_MASK)}`,
        { instance: this.name },
      );
    if ((creadr & QUEUE_OFFSET_MASK) !== this.writeOffset)
      throw pollTimeout(
        this.name,
        `ITS queue timeout: CREADR ${toHex(creadr)} short of CWRITER ${toHex(this.writeOffset)}`,
      );
  }
}
