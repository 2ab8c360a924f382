/**
 * The kernel's per-CPU vector allocation (Linux `irq_matrix`, arch/x86/kernel/apic/vector.c): each CPU has
 * its own 256 vectors, of which 0x20–0xEB go to devices (below: exceptions; from 0xEC: the kernel's system
 * vectors and the spurious vector 0xFF). A new vector goes to the least loaded allowed CPU (ties: the
 * lower CPU), at its lowest free vector. A vector's priority class is `vector >> 4` (SDM §11.8.3), so a
 * class is a range of 16 vectors.
 */
import { IommufdError } from '@iommukit/core';

export const FIRST_EXTERNAL_VECTOR = 0x20;
/** First vector the kernel keeps for itself (the local timer and IPIs upward). */
export const FIRST_SYSTEM_VECTOR = 0xec;

export interface CpuVector {
  readonly cpu: number;
  readonly vector: number;
}

export class VectorMatrix {
  private readonly used: Set<number>[];

  constructor(cpus: number) {
    this.used = Array.from({ length: cpus }, () => new Set<number>());
  }

  /** Vectors allocated on `cpu`. */
  load(cpu: number): number {
    return this.used[cpu]!.size;
  }

  /** A vector on the least loaded of `cpus`. */
  alloc(cpus: readonly number[]): CpuVector {
    const ordered = [...cpus].sort((a, b) => this.load(a) - this.load(b) || a - b);
    for (const cpu of ordered) {
      const vector = this.lowestFree(cpu, FIRST_EXTERNAL_VECTOR, FIRST_SYSTEM_VECTOR);
      if (vector !== undefined) return this.take(cpu, vector);
    }
    throw new IommufdError('ENOSPC', `no free vector on CPUs ${cpus.join(', ')}`);
  }

  /** A vector of priority class `priorityClass` on `cpu`. */
  allocInClass(cpu: number, priorityClass: number): CpuVector {
    const from = Math.max(priorityClass << 4, FIRST_EXTERNAL_VECTOR);
    const vector = this.lowestFree(cpu, from, Math.min((priorityClass + 1) << 4, FIRST_SYSTEM_VECTOR));
    if (vector === undefined)
      throw new IommufdError('ENOSPC', `no free vector of class ${priorityClass} on CPU ${cpu}`);
    return this.take(cpu, vector);
  }

  free({ cpu, vector }: CpuVector): void {
    this.used[cpu]!.delete(vector);
  }

  private lowestFree(cpu: number, from: number, to: number): number | undefined {
    for (let vector = from; vector < to; vector++) if (!this.used[cpu]!.has(vector)) return vector;
    return undefined;
  }

  private take(cpu: number, vector: number): CpuVector {
    this.used[cpu]!.add(vector);
    return { cpu, vector };
  }
}
