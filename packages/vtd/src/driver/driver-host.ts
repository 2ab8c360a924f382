/**
 * What the parts of the VT-d host driver share (Linux `struct intel_iommu`): its window on the unit's
 * registers (core's `MmioWindow`, every access counted on the driver's counter), its memory, its platform context
 * and trace, what probe read from VER/CAP/ECAP (`VtdUnit`), the mode it chose, the global command state
 * (`GlobalCommands`, Linux `iommu->gcmd`), and the structures probe set up (`VtdDriverHost`).
 *
 * The driver reaches the hardware only through MMIO on `context.bus` at `context.base` and through memory
 * from `context.memory`.
 */
import {
  type AccessCounter,
  type DriverContext,
  type IFrameAllocator,
  type IommuDeviceRef,
  type ITracer,
  type MemoryBus,
  type MmioWindow,
  POLL_LIMIT,
  pollTimeout,
  toHex,
} from '@iommukit/core';
import type { CapFields, EcapFields, RegWords } from '../hw/capabilities.js';
import type { VtdOptions } from '../hw/options.js';
import { GCMD_CFI, GCMD_IRE, GCMD_QIE, GCMD_TE, GCMD_WBF, GSTS_WBFS, REG } from '../hw/regs.js';
import type { ContextTables } from './context-tables.js';
import type { DomainIds } from './domain-ids.js';
import type { PasidTables } from './pasid-table.js';
import type { DriverQi } from './qi.js';

/** What probe learned from VER, CAP and ECAP (Linux's `cap_*`/`ecap_*` accessors, decoded once). */
export interface VtdUnit {
  readonly version: { readonly major: number; readonly minor: number };
  /** CAP_REG and ECAP_REG as read, raw (for hwInfo) and decoded. */
  readonly capWords: RegWords;
  readonly ecapWords: RegWords;
  readonly cap: CapFields;
  readonly ecap: EcapFields;
  /** Domain IDs the unit tags with (Linux `cap_ndoms`: 2^(4 + 2·ND)). */
  readonly domainIds: number;
  /** Where the fault recording registers are (CAP.FRO · 16) and how many (CAP.NFR + 1). */
  readonly faultRecordOffset: number;
  readonly faultRecords: number;
  /** Where IVA_REG is (ECAP.IRO · 16); IOTLB_REG follows at +8. */
  readonly iotlbOffset: number;
  /** PASID width (ECAP.PSS + 1), 0 without ECAP.PASID. */
  readonly pasidBits: number;
  /**
   * Linux `iommu->agaw` and `iommu->msagaw` (`iommu_calculate_agaw`, `iommu_calculate_max_sagaw`): the AGAW
   * code (1 = 39-bit, 2 = 48-bit, 3 = 57-bit) of the default 57-bit domain width and of the widest width
   * the unit walks.
   */
  readonly agaw: number;
  readonly msagaw: number;
}

/** What the interrupt handlers and queues saw. */
export interface VtdDriverStats {
  faults: number;
  pageRequests: number;
  /** Page requests answered Invalid by the driver itself (Linux `handle_bad_prq_event`). */
  badPageRequests: number;
  prqOverflows: number;
  pageResponses: number;
}

/** The device a source-id belongs to, from the driver's probed devices. */
export type DeviceLookup = (sid: number) => IommuDeviceRef | undefined;

/** GCMD bits that stay set while in effect (Linux keeps them in `iommu->gcmd`). */
const PERSISTENT = GCMD_TE | GCMD_QIE | GCMD_IRE | GCMD_CFI;

/**
 * Linux `iommu->gcmd` and `IOMMU_WAIT_OP`: GCMD is write-only, so the driver writes the persistent bits in
 * effect with the one it changes and polls GSTS for the matching status (bounded: `ETIMEDOUT`). The bits in
 * effect are read from GSTS each time rather than kept apart, which is the same value (every command is
 * waited for) and stays right when another part of the driver (interrupt remapping) issues commands too.
 */
export class GlobalCommands {
  constructor(
    private readonly mmio: MmioWindow,
    private readonly instance: string,
    /** CAP.RWBF: software must flush the write buffer after changing structures. */
    private readonly rwbf: boolean,
  ) {}

  /** Whether a persistent command (TE, QIE, IRE, CFI) is in effect. */
  has(bit: number): boolean {
    return (this.persistent() & bit) !== 0;
  }

  /** Turns a persistent command on or off and waits for its status bit (same position in GSTS). */
  set(bit: number, on: boolean): void {
    const now = this.persistent();
    this.mmio.write32(REG.GCMD, on ? now | bit : now & ~bit);
    this.waitStatus(bit, on);
  }

  /** A one-shot command (SRTP, SIRTP): written with the persistent bits, done when its status bit is set. */
  oneShot(bit: number): void {
    this.mmio.write32(REG.GCMD, this.persistent() | bit);
    this.waitStatus(bit, true);
  }

  /** Linux `iommu_flush_write_buffer`: GCMD.WBF, then WBFS clear; only with CAP.RWBF. */
  flushWriteBuffer(): void {
    if (!this.rwbf) return;
    this.mmio.write32(REG.GCMD, this.persistent() | GCMD_WBF);
    this.waitStatus(GSTS_WBFS, false);
  }

  private persistent(): number {
    return this.mmio.read32(REG.GSTS) & PERSISTENT;
  }

  private waitStatus(bit: number, on: boolean): void {
    for (let i = 0; i < POLL_LIMIT; i++) if (((this.mmio.read32(REG.GSTS) & bit) !== 0) === on) return;
    throw pollTimeout(this.instance, `GSTS ${toHex(bit >>> 0)} did not ${on ? 'set' : 'clear'}`);
  }
}

/** The driver's shared state before the structures exist: what the queue and tables are built from. */
export interface VtdDriverBase {
  readonly instance: string;
  readonly context: DriverContext<VtdOptions>;
  readonly mmio: MmioWindow;
  readonly bus: MemoryBus;
  readonly memory: IFrameAllocator;
  /** Every bus access the driver makes: its MMIO window and its own memory. */
  readonly counter: AccessCounter;
  readonly tracer: ITracer;
  /** The probed features. */
  readonly unit: VtdUnit;
  /** The translation mode the driver chose: scalable with ECAP.SMTS (Linux `sm_supported`). */
  readonly scalable: boolean;
  readonly commands: GlobalCommands;
  readonly stats: VtdDriverStats;
  log(name: string, message: string): void;
}

/** Everything the driver parts share once probe has set the unit up. */
export interface VtdDriverHost extends VtdDriverBase {
  readonly qi: DriverQi;
  readonly contextTables: ContextTables;
  readonly pasidTables: PasidTables;
  readonly dids: DomainIds;
}

/** An enabled ATS device's Device-TLB, as invalidations address it (Linux `info->pfsid`, `ats_qdep`). */
export interface DeviceTlbTarget {
  readonly sid: number;
  /** Physical-function source-id (the SID itself for a physical function). */
  readonly pfsid: number;
  /** ATS invalidate queue depth. */
  readonly qdep: number;
}
