/**
 * The GICv3 pieces an MSI needs, placed on one bus: a CPU interface and a redistributor per CPU (frames of
 * 128 KiB from `redistributorBase`, the last one flagged GICR_TYPER.Last) and one or more ITSes, each in
 * its own 128 KiB window. The distributor is not modelled: LPIs never go through it.
 */
import { alignDown, type Hpa, hpa, type ITracer, type MemoryBus, type MsiDoorbell } from '@iommukit/core';
import { CpuInterface } from './cpu-interface.js';
import { GicIts, type ItsGeometry } from './its.js';
import { Redistributor } from './redistributor.js';
import { GITS, ITS_FRAME_SIZE, REDIST_FRAME_SIZE } from './registers.js';

const PAGE = 0x1000n;

export interface GicSpec {
  /** Prefix of region and trace names (`gic`, `vm0.vgic`). */
  readonly name: string;
  readonly cpus: number;
  readonly redistributorBase: Hpa;
  readonly its: readonly { readonly name: string; readonly base: Hpa }[];
  readonly geometry: ItsGeometry;
}

export class Gic {
  readonly cpus: readonly CpuInterface[];
  readonly redistributors: readonly Redistributor[];
  readonly its: readonly GicIts[];
  private arrivals = 0;
  private readonly regions: string[] = [];

  constructor(
    readonly spec: GicSpec,
    private readonly bus: MemoryBus,
    tracer: ITracer,
  ) {
    const clock = { next: () => ++this.arrivals };
    this.cpus = Array.from({ length: spec.cpus }, (_, cpu) => new CpuInterface(cpu));
    this.redistributors = this.cpus.map(
      (cpu) =>
        new Redistributor(`${spec.name}.gicr${cpu.cpu}`, cpu, cpu.cpu === spec.cpus - 1, bus, clock, tracer),
    );
    this.its = spec.its.map((i) => new GicIts(i.name, spec.geometry, this.redistributors, bus, tracer));
    try {
      for (const [i, rd] of this.redistributors.entries()) {
        const base = Number(spec.redistributorBase) + i * REDIST_FRAME_SIZE;
        this.place(rd.name, base, REDIST_FRAME_SIZE, rd.registers);
      }
      for (const [i, its] of this.its.entries())
        this.place(its.name, Number(spec.its[i]!.base), ITS_FRAME_SIZE, its);
    } catch (error) {
      this.remove();
      throw error;
    }
  }

  /** An ITS's doorbell: its GITS_TRANSLATER and the 4 KiB page holding it. */
  doorbell(its: number): MsiDoorbell {
    const address = hpa(BigInt(this.spec.its[its]!.base) + BigInt(GITS.TRANSLATER));
    return { name: this.spec.its[its]!.name, address, page: alignDown(address, PAGE) };
  }

  itsByName(name: string): GicIts | undefined {
    return this.its.find((i) => i.name === name);
  }

  /** Takes the GIC's regions off the bus. */
  remove(): void {
    for (const name of this.regions.splice(0)) this.bus.removeRegion(name);
  }

  private place(
    name: string,
    base: number,
    size: number,
    handler: Parameters<MemoryBus['addMmio']>[3],
  ): void {
    this.bus.addMmio(name, base, size, handler);
    this.regions.push(name);
  }
}
