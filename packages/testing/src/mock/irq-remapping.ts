/**
 * The mock driver's interrupt remapping (its IR domain, in the role of Linux's intel_irq_remapping.c): it
 * owns the table the hardware reads, hands out entries per device, writes them and invalidates the
 * hardware's interrupt entry cache (INV_CMD IEC) after each change, and composes the remappable messages
 * devices send. Entries are checked against the device that allocated them; the hardware checks the
 * source too (SVT), so a device using another's handle is blocked.
 */
import {
  type AccessCounter,
  type Hpa,
  type InterruptRemappingCapabilities,
  type InterruptRemappingDriver,
  type InterruptTarget,
  type IommuDeviceRef,
  IommufdError,
  type MemoryBus,
  type MsiMessage,
} from '@iommukit/core';
import { encodeIrte, IRTE_BYTES, IRTE_WORDS, remappableAddress } from './irte.js';

/** How the IR domain reaches the hardware: the invalidation the driver already issues through INV_CMD. */
export type IecInvalidate = (first: number, count: number) => void;

const EMPTY = new Uint32Array(IRTE_WORDS);

export class MockIrqRemapping implements InterruptRemappingDriver {
  readonly capabilities: InterruptRemappingCapabilities = { x2apic: true, posting: false };
  /** Stream ID of the device that owns each allocated entry. */
  private readonly owners = new Map<number, number>();

  constructor(
    private readonly instance: string,
    /** The table in host memory: `entries` entries of 16 bytes. */
    private readonly table: Hpa,
    private readonly entries: number,
    private readonly bus: MemoryBus,
    private readonly counter: AccessCounter,
    private readonly invalidateIec: IecInvalidate,
  ) {}

  allocate(device: IommuDeviceRef, count: number): number {
    if (!Number.isInteger(count) || count < 1)
      throw new IommufdError('EINVAL', `cannot allocate ${count} remapping entries`, { device: device.name });
    let run = 0;
    for (let index = 0; index < this.entries; index++) {
      run = this.owners.has(index) ? 0 : run + 1;
      if (run === count) {
        const first = index - count + 1;
        for (let i = first; i <= index; i++) this.owners.set(i, device.streamId);
        return first;
      }
    }
    throw new IommufdError('ENOSPC', `${this.instance}: no ${count} free interrupt remapping entries`, {
      device: device.name,
    });
  }

  program(
    device: IommuDeviceRef,
    index: number,
    target: InterruptTarget,
    options: { readonly invalidate?: boolean } = {},
  ): void {
    this.checkOwned(device, index, 1);
    if (target.kind === 'post')
      throw new IommufdError('EOPNOTSUPP', `${this.instance} cannot post interrupts`, {
        device: device.name,
      });
    const { vector, destination } = target.interrupt;
    if (!Number.isInteger(vector) || vector < 0 || vector > 0xff)
      throw new IommufdError('EINVAL', `vector ${vector} is not 0..255`, { device: device.name });
    if (!Number.isInteger(destination) || destination < 0 || destination > 0xffff_ffff)
      throw new IommufdError('EINVAL', `destination ${destination} is not a 32-bit APIC ID`, {
        device: device.name,
      });
    this.write(index, encodeIrte(target.interrupt, device.streamId));
    if (options.invalidate !== false) this.invalidateIec(index, 1);
  }

  compose(device: IommuDeviceRef, index: number): MsiMessage {
    this.checkOwned(device, index, 1);
    return { address: remappableAddress(index), data: 0 };
  }

  invalidate(device: IommuDeviceRef, index: number, count: number): void {
    this.checkOwned(device, index, count);
    this.invalidateIec(index, count);
  }

  free(device: IommuDeviceRef, index: number, count: number): void {
    this.checkOwned(device, index, count);
    for (let i = index; i < index + count; i++) {
      this.write(i, EMPTY);
      this.owners.delete(i);
    }
    this.invalidateIec(index, count);
  }

  private write(index: number, words: Uint32Array): void {
    this.bus.writeWords(Number(this.table) + index * IRTE_BYTES, words, IRTE_WORDS, this.counter);
  }

  private checkOwned(device: IommuDeviceRef, index: number, count: number): void {
    if (!Number.isInteger(count) || count < 1)
      throw new IommufdError('EINVAL', `${count} is not a count of entries`, { device: device.name });
    for (let i = index; i < index + count; i++) {
      if (this.owners.get(i) !== device.streamId)
        throw new IommufdError('EINVAL', `interrupt remapping entry ${i} is not ${device.name}'s`, {
          device: device.name,
          index: i,
        });
    }
  }
}
