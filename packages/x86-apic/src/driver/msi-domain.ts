/**
 * The kernel's x86 MSI domain (Linux arch/x86/kernel/apic/msi.c over vector.c, and the IR domain of
 * drivers/iommu/irq_remapping.c): per device vector it takes an IRQ number and a (CPU, vector), points the
 * CPU's `vector_irq` at the IRQ, and makes the message the device sends:
 *
 * - **with interrupt remapping** (the device's IOMMU driver has it on): an entry per vector in the
 *   remapping table, programmed to remap to (APIC ID, vector), and the remapping driver's message naming
 *   the entry. Moving the interrupt rewrites the entry; the device's message stays.
 * - **without**: a compatibility-format message naming the destination and the vector itself. Moving the
 *   interrupt changes the message, which the device must be given again ({@link MsiDomain.messageFor}).
 *
 * Vectors go only to CPUs a message can reach: without remapping, APIC IDs up to 254 (up to 32767 with the
 * extended destination ID); with remapping, every CPU if the remapping unit takes 32-bit destinations
 * (x2APIC), else the same 254. Linux restricts an interrupt's affinity the same way.
 */
import {
  type DeviceInterruptRemapper,
  IommufdError,
  type MsiMessage,
  type MsiRequester,
  toHex,
  type X86Interrupt,
} from '@iommukit/core';
import { NO_IRQ } from '../hw/cpu.js';
import { compatibilityReachable, encodeCompatibilityMsi, XAPIC_BROADCAST } from '../hw/msi-format.js';
import type { ApicDriver } from './apic-driver.js';
import { IrqNumbers } from './irq-numbers.js';
import { type CpuVector, FIRST_EXTERNAL_VECTOR, FIRST_SYSTEM_VECTOR, VectorMatrix } from './vector-matrix.js';

/** One vector of a device, as the kernel tracks it (an `irq_data` of the vector domain). */
export interface DeviceIrq {
  readonly irq: number;
  readonly device: MsiRequester;
  /** The device's vector number (its MSI-X entry). */
  readonly index: number;
  target: CpuVector;
  message: MsiMessage;
}

interface DeviceVectors {
  readonly requester: MsiRequester;
  readonly irqBase: number;
  /** Vectors asked for: the IRQ numbers and remapping entries held. */
  readonly count: number;
  readonly irqs: DeviceIrq[];
  /** The device's remapping and its first entry, with interrupt remapping. */
  readonly remapping?: { readonly remapper: DeviceInterruptRemapper; readonly first: number };
}

/** The priority classes of device vectors (0x20–0xEB). */
export const PRIORITY_CLASSES = { min: FIRST_EXTERNAL_VECTOR >>> 4, max: (FIRST_SYSTEM_VECTOR - 1) >>> 4 };

export class MsiDomain {
  private readonly matrix: VectorMatrix;
  private readonly numbers = new IrqNumbers();
  private readonly devices = new Map<string, DeviceVectors>();
  private readonly byIrq = new Map<number, { device: DeviceVectors; irq: DeviceIrq }>();

  constructor(
    private readonly apic: ApicDriver,
    private readonly extendedDestinationId: boolean,
    private readonly remapperFor: (device: MsiRequester) => DeviceInterruptRemapper | undefined = () =>
      undefined,
  ) {
    this.matrix = new VectorMatrix(apic.cpuCount);
  }

  /** The CPUs a device's messages can reach (with `remapper`, or without remapping). */
  reachableCpus(remapper: DeviceInterruptRemapper | undefined): number[] {
    const reachable = (id: number) =>
      remapper
        ? remapper.capabilities.x2apic || id < XAPIC_BROADCAST
        : compatibilityReachable(id, { extendedDestinationId: this.extendedDestinationId });
    return this.apic.apicIds.flatMap((id, cpu) => (reachable(id) ? [cpu] : []));
  }

  allocate(device: MsiRequester, count: number): readonly DeviceIrq[] {
    if (this.devices.has(device.name)) throw new IommufdError('EEXIST', `${device.name} already has vectors`);
    const remapper = this.remapperFor(device);
    const cpus = this.reachableCpus(remapper);
    if (cpus.length === 0)
      throw new IommufdError('EINVAL', `no CPU's APIC ID can be the destination of ${device.name}'s MSIs`);
    const remapping = remapper ? { remapper, first: remapper.allocate(count) } : undefined;
    const vectors: DeviceVectors = {
      requester: device,
      irqBase: this.numbers.alloc(count),
      count,
      irqs: [],
      ...(remapping ? { remapping } : {}),
    };
    this.devices.set(device.name, vectors);
    try {
      for (let index = 0; index < count; index++) {
        const target = this.matrix.alloc(cpus);
        const irq: DeviceIrq = {
          irq: vectors.irqBase + index,
          device,
          index,
          target,
          message: { address: 0n, data: 0 },
        };
        vectors.irqs.push(irq);
        this.byIrq.set(irq.irq, { device: vectors, irq });
        this.apic.bind(target.cpu, target.vector, irq.irq);
        this.route(vectors, irq, target, true);
      }
    } catch (error) {
      this.free(device);
      throw error;
    }
    return vectors.irqs;
  }

  free(device: MsiRequester): void {
    const vectors = this.devices.get(device.name);
    if (!vectors) return;
    for (const irq of vectors.irqs) {
      this.release(irq.target);
      this.apic.forget(irq.irq);
      this.byIrq.delete(irq.irq);
    }
    vectors.remapping?.remapper.free(vectors.remapping.first, vectors.count);
    this.numbers.free(vectors.irqBase, vectors.count);
    this.devices.delete(device.name);
  }

  /** Moves an IRQ to `cpu` (Linux `irq_set_affinity`): a new vector there, then the entry or the message. */
  setAffinity(irq: number, cpu: number): void {
    const { device, irq: record } = this.lookup(irq);
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.apic.cpuCount)
      throw new IommufdError('EINVAL', `no CPU ${cpu}`);
    if (!this.reachableCpus(device.remapping?.remapper).includes(cpu))
      throw new IommufdError(
        'EINVAL',
        `CPU ${cpu} (APIC ID ${toHex(this.apic.apicIds[cpu]!)}) cannot be the destination of ${record.device.name}'s MSIs`,
      );
    if (record.target.cpu === cpu) return;
    this.retarget(device, record, this.matrix.alloc([cpu]), true);
  }

  /**
   * Gives an IRQ a vector of priority class `priorityClass` on its CPU: x86 priority is the vector's class.
   * With remapping the entry is rewritten, and invalidated only if `invalidate`: without it the remapping
   * unit keeps using its cached entry, the old vector, which no IRQ stands behind any more.
   */
  setPriorityClass(irq: number, priorityClass: number, invalidate: boolean): void {
    const { device, irq: record } = this.lookup(irq);
    const { min, max } = PRIORITY_CLASSES;
    if (!Number.isInteger(priorityClass) || priorityClass < min || priorityClass > max)
      throw new IommufdError(
        'EINVAL',
        `priority class ${priorityClass} is outside ${min}–${max} (vectors 0x20–0xeb)`,
      );
    if (record.target.vector >>> 4 === priorityClass) return;
    this.retarget(device, record, this.matrix.allocInClass(record.target.cpu, priorityClass), invalidate);
  }

  /** An IRQ's current message: what its device must send (it changes with the target without remapping). */
  messageFor(irq: number): MsiMessage {
    return this.lookup(irq).irq.message;
  }

  irq(irq: number): DeviceIrq {
    return this.lookup(irq).irq;
  }

  private retarget(device: DeviceVectors, record: DeviceIrq, target: CpuVector, invalidate: boolean): void {
    const old = record.target;
    this.apic.bind(target.cpu, target.vector, record.irq);
    record.target = target;
    this.route(device, record, target, invalidate);
    this.release(old);
  }

  /** Points the entry (with remapping) or the message (without) at `target`. */
  private route(device: DeviceVectors, record: DeviceIrq, target: CpuVector, invalidate: boolean): void {
    const interrupt: X86Interrupt = {
      vector: target.vector,
      destination: this.apic.apicIds[target.cpu]!,
      destinationMode: 'physical',
      deliveryMode: 'fixed',
      trigger: 'edge',
    };
    const remapping = device.remapping;
    if (!remapping) {
      record.message = encodeCompatibilityMsi(interrupt, {
        extendedDestinationId: this.extendedDestinationId,
      });
      return;
    }
    const entry = remapping.first + record.index;
    remapping.remapper.program(entry, { kind: 'remap', interrupt }, { invalidate });
    record.message = remapping.remapper.compose(entry);
  }

  private release(target: CpuVector): void {
    this.apic.bind(target.cpu, target.vector, NO_IRQ);
    this.matrix.free(target);
  }

  private lookup(irq: number) {
    const found = this.byIrq.get(irq);
    if (!found) throw new IommufdError('ENOENT', `IRQ ${irq} is not an MSI of this controller`);
    return found;
  }
}
