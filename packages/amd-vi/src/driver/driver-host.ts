/**
 * What the parts of the AMD IOMMU host driver share (Linux `struct amd_iommu`): its window on the unit's
 * registers (core's `MmioWindow`, every access counted on the driver's counter), its memory, its platform
 * context and trace, what probe read from the EFR, EFR2 and capability header (`AmdUnit`), and the Control
 * register as Linux changes it (`ControlRegister`: `iommu_feature_enable`, `iommu_feature_disable`,
 * `iommu_set_inv_tlb_timeout`, each a 64-bit read-modify-write of MMIO 0018h, AMD pub. 48882 §3.4).
 *
 * The driver reaches the hardware only through MMIO on `context.bus` at `context.base` and through memory
 * from `context.memory`.
 */
import type {
  AccessCounter,
  DriverContext,
  IFrameAllocator,
  IommuDeviceRef,
  ITracer,
  MemoryBus,
  MmioWindow,
} from '@iommukit/core';
import type { CapabilityHeaderFields, Efr2Fields, EfrFields, RegWords } from '../hw/capabilities.js';
import type { AmdOptions } from '../hw/options.js';
import {
  CTRL_CMD_BUF_EN,
  CTRL_COHERENT,
  CTRL_EVENT_INT_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_GA_INT_EN,
  CTRL_GA_LOG_EN,
  CTRL_GT_EN,
  CTRL_HI_EPH_EN,
  CTRL_HI_GCR3_TRP_MODE,
  CTRL_HI_IRT_CACHE_DIS,
  CTRL_HT_TUN_EN,
  CTRL_INV_TIMEOUT,
  CTRL_IOMMU_EN,
  CTRL_ISOC,
  CTRL_PASS_PW,
  CTRL_PPR_EN,
  CTRL_PPR_INT_EN,
  CTRL_PPR_LOG_EN,
  CTRL_RES_PASS_PW,
  fieldMask,
  REG,
} from '../hw/regs.js';
import type { CommandQueue } from './command-queue.js';
import type { DriverDeviceTable } from './device-table.js';

/** What probe learned from EFR, EFR2 and the capability header (Linux `amd_iommu_efr`, `iommu->cap`). */
export interface AmdUnit {
  /** EFR and EFR2 as read, raw (for hwInfo) and decoded. */
  readonly efrWords: RegWords;
  readonly efr2Words: RegWords;
  readonly efr: EfrFields;
  readonly efr2: Efr2Fields;
  readonly cap: CapabilityHeaderFields;
  /** Linux `amd_iommu_hpt_level`: the deepest v1 table, PAGE_MODE_4_LEVEL + EFR.HATS. */
  readonly hostLevels: 4 | 5 | 6;
  /** Linux `amd_iommu_gt_ppr_supported`: GT, PPR and EPHSup together (the PPR log is enabled only then). */
  readonly gtPpr: boolean;
  /**
   * PASIDs the unit translates (Linux `iommu->iommu.max_pasids`, 2^(EFR.PASmax + 1) − 1), 0 unless GT, PPR
   * and EPHSup (Linux `amd_iommu_pasid_supported`).
   */
  readonly maxPasids: number;
  /**
   * The v2 (guest) tables' levels (Linux `amd_iommu_gpt_level`): 5 needs EFR.GATS and a host CPU with LA57;
   * the model's host has none, so 4, Linux's level on such hosts.
   */
  readonly gptLevels: 4 | 5;
}

/** What the interrupt handler saw. */
export interface AmdDriverStats {
  /** IO_PAGE_FAULTs reported to the core. */
  faults: number;
  /** Other events drained (printed by Linux, counted here). */
  events: number;
  /** Event log restarts after EvtOverflow (Linux `amd_iommu_restart_event_logging`). */
  eventLogRestarts: number;
  /** PPR log entries reported to the core as page requests. */
  pageRequests: number;
  /** PPR log entries dropped and answered Failure (Linux `ppr_is_valid`, the PASID check). */
  badPageRequests: number;
  /** COMPLETE_PPR_REQUESTs sent for the core's answers. */
  pageResponses: number;
  /** PPR log restarts after PPROverflow (Linux `amd_iommu_restart_ppr_log`). */
  pprLogRestarts: number;
}

/** The device a DeviceID belongs to, from the driver's probed devices. */
export type DeviceLookup = (deviceId: number) => IommuDeviceRef | undefined;

/** A probed device by DeviceID: its ref and its PASID count (Linux `dev_data->max_pasids`). */
export type AmdDeviceLookup = (
  deviceId: number,
) => { readonly ref: IommuDeviceRef; readonly maxPasids: number } | undefined;

/** Control.InvTimeOut of 1 s (Linux CTRL_INV_TO_1S), what `iommu_init_flags` programs. */
export const INV_TIMEOUT_1S = 4;

/**
 * Linux `iommu_feature_enable` / `iommu_feature_disable`: Control is read and written whole (readq/writeq,
 * here low half first), one bit changed. `bit` is the absolute bit (0–63), as Linux's CONTROL_* numbers.
 */
export class ControlRegister {
  constructor(private readonly mmio: MmioWindow) {}

  /** Control as a 64-bit value. */
  get value(): bigint {
    return this.mmio.read64(REG.CONTROL);
  }

  /** Linux `iommu_feature_enable` (`on`) or `iommu_feature_disable` of absolute bit `bit`. */
  set(bit: number, on: boolean): void {
    const mask = 1n << BigInt(bit);
    const old = this.value;
    this.mmio.write64(REG.CONTROL, on ? old | mask : old & ~mask);
  }

  /** Linux `iommu_set_inv_tlb_timeout`: Control.InvTimeOut (bits 7:5). */
  setInvTimeout(code: number): void {
    const mask = BigInt(fieldMask(CTRL_INV_TIMEOUT));
    const old = this.value;
    this.mmio.write64(REG.CONTROL, (old & ~mask) | (BigInt(code) << BigInt(CTRL_INV_TIMEOUT.lsb)));
  }
}

/** The absolute Control bit (0–63) of a regs.ts mask of the low (`hi` false) or high half. */
const bitOf = (mask: number, hi = false) => 31 - Math.clz32(mask) + (hi ? 32 : 0);

/** The Control bits the driver changes, as Linux's CONTROL_* bit numbers (pub. 48882 §3.4, 0018h). */
export const CONTROL = {
  IOMMU_EN: bitOf(CTRL_IOMMU_EN),
  HT_TUN_EN: bitOf(CTRL_HT_TUN_EN),
  EVT_LOG_EN: bitOf(CTRL_EVENT_LOG_EN),
  EVT_INT_EN: bitOf(CTRL_EVENT_INT_EN),
  PASSPW_EN: bitOf(CTRL_PASS_PW),
  RESPASSPW_EN: bitOf(CTRL_RES_PASS_PW),
  COHERENT_EN: bitOf(CTRL_COHERENT),
  ISOC_EN: bitOf(CTRL_ISOC),
  CMDBUF_EN: bitOf(CTRL_CMD_BUF_EN),
  PPRLOG_EN: bitOf(CTRL_PPR_LOG_EN),
  PPRINT_EN: bitOf(CTRL_PPR_INT_EN),
  PPR_EN: bitOf(CTRL_PPR_EN),
  GT_EN: bitOf(CTRL_GT_EN),
  GALOG_EN: bitOf(CTRL_GA_LOG_EN),
  GAINT_EN: bitOf(CTRL_GA_INT_EN),
  EPH_EN: bitOf(CTRL_HI_EPH_EN, true),
  GCR3TRPMODE: bitOf(CTRL_HI_GCR3_TRP_MODE, true),
  IRTCACHEDIS: bitOf(CTRL_HI_IRT_CACHE_DIS, true),
} as const;

/** The driver's shared state before the command buffer and tables exist. */
export interface AmdDriverBase {
  readonly instance: string;
  readonly context: DriverContext<AmdOptions>;
  readonly mmio: MmioWindow;
  readonly bus: MemoryBus;
  readonly memory: IFrameAllocator;
  /** Every bus access the driver makes: its MMIO window and its own memory. */
  readonly counter: AccessCounter;
  readonly tracer: ITracer;
  readonly unit: AmdUnit;
  readonly control: ControlRegister;
  readonly stats: AmdDriverStats;
  log(name: string, message: string): void;
}

/** Everything the driver parts share once probe has set the unit up. */
export interface AmdDriverHost extends AmdDriverBase {
  readonly queue: CommandQueue;
  readonly deviceTable: DriverDeviceTable;
  /** The event log's address (Linux `evt_buf`). */
  readonly eventLog: number;
  /** The PPR log's address with EFR.PPRSup (Linux `ppr_log`). */
  readonly pprLog: number | undefined;
}
