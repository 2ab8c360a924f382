/**
 * What the parts of the SMMUv3 host driver share (Linux `struct arm_smmu_device`): its window on the SMMU's
 * registers, its memory, its platform context and trace, its masters and counters (`Smmuv3DriverHost`),
 * and what probe learned and allocated (`ProbedSmmu`, until shutdown).
 */
import type {
  AccessCounter,
  DriverContext,
  IFrameAllocator,
  ITracer,
  MemoryBus,
  MmioWindow,
} from '@iommukit/core';
import type { Smmuv3Features } from '../hw/features.js';
import type { IdrValues } from '../hw/idr.js';
import type { Smmuv3Options } from '../hw/options.js';
import type { Smmuv3Cmdq } from './cmdq.js';
import type { Smmuv3DomainHost } from './domain.js';
import type { IdAllocator } from './ids.js';
import type { Smmuv3Master } from './master-attach.js';
import type { BuilderCaps } from './ste-builders.js';
import type { StreamTable } from './stream-table.js';
import type { TableBlock, TableHost } from './table-memory.js';

/** What the interrupt handlers saw. */
export interface Smmuv3DriverStats {
  events: number;
  eventOverflows: number;
  pageRequests: number;
  priOverflows: number;
  globalErrors: number;
  /** Events sent to a vSMMU's vEVENTQ instead of the host's fault path. */
  forwardedEvents: number;
  /** Stall events turned into page requests. */
  stalls: number;
}

export interface Smmuv3DriverHost {
  readonly instance: string;
  /** The SMMU's 128 KiB register window. */
  readonly regs: MmioWindow;
  readonly bus: MemoryBus;
  readonly memory: IFrameAllocator;
  /** Every bus access the driver makes: its MMIO window and its own memory. */
  readonly counter: AccessCounter;
  readonly tracer: ITracer;
  readonly context: DriverContext<Smmuv3Options>;
  /** Probed masters by StreamID. */
  readonly masters: ReadonlyMap<number, Smmuv3Master>;
  readonly stats: Smmuv3DriverStats;
  log(name: string, message: string): void;
}

/** A queue in the driver's memory. */
export interface QueueMemory extends TableBlock {
  readonly log2: number;
  /** The driver's CONS of an Event or PRI queue, with OVACKFLG. */
  cons: number;
}

export interface ProbedSmmu {
  readonly idr: IdrValues;
  readonly features: Smmuv3Features;
  readonly hyp: boolean;
  readonly caps: BuilderCaps;
  readonly cmdq: Smmuv3Cmdq;
  readonly cmdqMem: QueueMemory;
  readonly eventq: QueueMemory;
  readonly priq: QueueMemory | undefined;
  readonly streamTable: StreamTable;
  readonly asids: IdAllocator;
  readonly vmids: IdAllocator;
  /** What Stream and CD tables need. */
  readonly tableHost: TableHost;
  readonly domainHost: Smmuv3DomainHost;
}
