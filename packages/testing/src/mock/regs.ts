/**
 * Register map of the mock IOMMU (a 4 KiB MMIO window), specified in packages/testing/README.md. The
 * mock is a deliberately small architecture with the mechanisms real IOMMUs have: a device table and
 * PASID tables in memory, single-stage and nested page tables, an IOTLB and a configuration cache that
 * software must invalidate, a fault log and a page request queue with interrupts. 64-bit registers are
 * two 32-bit halves at +0 and +4.
 */
import type { RegAccess, RegDef } from '@iommukit/core';

function reg(name: string, offset: number, access: RegAccess, writable = 0xffff_ffff): RegDef {
  return { name, offset, access, writable };
}

export const MOCK_MMIO_SIZE = 0x1000;
export const MOCK_IDR_MAGIC = 0x4d4b; // "MK"
export const MOCK_VERSION = 2;

/** Offsets by name. */
export const R = {
  IDR: 0x000,
  CAP: 0x004,
  CTRL: 0x008,
  STATUS: 0x00c,
  DT_BASE: 0x010,
  DT_LOG2: 0x018,
  INV_ARG: 0x020,
  INV_ADDR: 0x028,
  INV_SIZE: 0x030,
  INV_CMD: 0x038,
  INV_DONE: 0x03c,
  FLOG_BASE: 0x040,
  FLOG_LOG2: 0x048,
  FLOG_HEAD: 0x04c,
  FLOG_TAIL: 0x050,
  FLOG_STATUS: 0x054,
  PRQ_BASE: 0x058,
  PRQ_LOG2: 0x060,
  PRQ_HEAD: 0x064,
  PRQ_TAIL: 0x068,
  PRQ_STATUS: 0x06c,
  RESP_SID: 0x070,
  RESP_PASID: 0x074,
  RESP: 0x078,
  IRT_BASE: 0x080,
  IRT_LOG2: 0x088,
} as const;

export const REGISTERS: readonly RegDef[] = [
  reg('IDR', R.IDR, 'ro'),
  reg('CAP', R.CAP, 'ro'),
  reg('CTRL', R.CTRL, 'rw', 0b1_1111),
  reg('STATUS', R.STATUS, 'ro'),
  reg('DT_BASE_LO', R.DT_BASE, 'rw', 0xffff_f000),
  reg('DT_BASE_HI', R.DT_BASE + 4, 'rw', 0x000f_ffff),
  reg('DT_LOG2', R.DT_LOG2, 'rw', 0x1f),
  reg('INV_ARG_LO', R.INV_ARG, 'rw'),
  reg('INV_ARG_HI', R.INV_ARG + 4, 'rw'),
  reg('INV_ADDR_LO', R.INV_ADDR, 'rw', 0xffff_f000),
  reg('INV_ADDR_HI', R.INV_ADDR + 4, 'rw'),
  reg('INV_SIZE_LO', R.INV_SIZE, 'rw'),
  reg('INV_SIZE_HI', R.INV_SIZE + 4, 'rw'),
  reg('INV_CMD', R.INV_CMD, 'wo', 0xff),
  reg('INV_DONE', R.INV_DONE, 'ro'),
  reg('FLOG_BASE_LO', R.FLOG_BASE, 'rw', 0xffff_f000),
  reg('FLOG_BASE_HI', R.FLOG_BASE + 4, 'rw', 0x000f_ffff),
  reg('FLOG_LOG2', R.FLOG_LOG2, 'rw', 0x1f),
  reg('FLOG_HEAD', R.FLOG_HEAD, 'rw', 0xffff),
  reg('FLOG_TAIL', R.FLOG_TAIL, 'ro'),
  reg('FLOG_STATUS', R.FLOG_STATUS, 'w1c', 0b1),
  reg('PRQ_BASE_LO', R.PRQ_BASE, 'rw', 0xffff_f000),
  reg('PRQ_BASE_HI', R.PRQ_BASE + 4, 'rw', 0x000f_ffff),
  reg('PRQ_LOG2', R.PRQ_LOG2, 'rw', 0x1f),
  reg('PRQ_HEAD', R.PRQ_HEAD, 'rw', 0xffff),
  reg('PRQ_TAIL', R.PRQ_TAIL, 'ro'),
  reg('PRQ_STATUS', R.PRQ_STATUS, 'w1c', 0b1),
  reg('RESP_SID', R.RESP_SID, 'rw'),
  reg('RESP_PASID', R.RESP_PASID, 'rw', 0xf_ffff),
  reg('RESP', R.RESP, 'wo'),
  reg('IRT_BASE_LO', R.IRT_BASE, 'rw', 0xffff_f000),
  reg('IRT_BASE_HI', R.IRT_BASE + 4, 'rw', 0x000f_ffff),
  reg('IRT_LOG2', R.IRT_LOG2, 'rw', 0xf),
];

/** CTRL bits. */
export const CTRL_EN = 1 << 0;
export const CTRL_FAULT_IRQ_EN = 1 << 1;
export const CTRL_PRQ_IRQ_EN = 1 << 2;
/** Interrupt remapping on: requests in the interrupt window are looked up in the table at IRT_BASE. */
export const CTRL_IR_EN = 1 << 3;
/** With remapping on, compatibility-format requests pass through instead of being blocked. */
export const CTRL_IR_COMPAT = 1 << 4;
/** FLOG_STATUS / PRQ_STATUS bit. */
export const QUEUE_OVERFLOW = 1 << 0;

/**
 * CAP fields: [4:0] SID bits, [9:5] max fault-log log2, [10] dirty tracking, [15:11] PASID bits
 * (0: no PASIDs), [16] nested translation, [17] PRI page requests and ATS, [18] interrupt remapping,
 * [19] caching mode (the hardware may cache not-present entries: software invalidates after a map too).
 */
export const CAP_SID_BITS = { lsb: 0, width: 5 } as const;
export const CAP_FLOG_MAX_LOG2 = { lsb: 5, width: 5 } as const;
export const CAP_DIRTY = 1 << 10;
export const CAP_PASID_BITS = { lsb: 11, width: 5 } as const;
export const CAP_NEST = 1 << 16;
export const CAP_PRI = 1 << 17;
export const CAP_IR = 1 << 18;
export const CAP_CM = 1 << 19;

/** INV_CMD opcodes. Each runs to completion when written and then increments INV_DONE. */
export const INV = {
  ALL: 1,
  /** Every IOTLB entry tagged with domain INV_ARG[15:0] (nested entries of that stage 2 included). */
  DOMAIN: 2,
  /** Entries of domain INV_ARG[15:0] in [INV_ADDR, INV_ADDR + INV_SIZE). */
  RANGE: 3,
  /** The configuration cache entries of stream INV_ARG[31:0] (its DTE and all its PASID entries). */
  DEVICE: 4,
  /** Nested entries with stage-1 tag INV_ARG[31:16] on stage-2 domain INV_ARG[15:0]. */
  S1_ALL: 5,
  /** Nested entries with that tag and domain in [INV_ADDR, INV_ADDR + INV_SIZE). */
  S1_RANGE: 6,
  /** The interrupt entry cache's copies of entries [INV_ARG[15:0], INV_ARG[15:0] + INV_SIZE). */
  IEC: 7,
  /** The whole interrupt entry cache. */
  IEC_ALL: 8,
} as const;

/** RESP fields: [8:0] group index, [10:9] code (0 success, 1 invalid, 2 failure), [11] PASID valid. Writing sends it. */
export const RESP_PASID_VALID = 1 << 11;

/** The fault log's and the page request queue's registers, as ring.ts takes them. */
export const FAULT_LOG_RING = {
  name: 'the fault log',
  base: R.FLOG_BASE,
  log2: R.FLOG_LOG2,
  head: R.FLOG_HEAD,
  tail: R.FLOG_TAIL,
  status: R.FLOG_STATUS,
} as const;
export const PRQ_RING = {
  name: 'the page request queue',
  base: R.PRQ_BASE,
  log2: R.PRQ_LOG2,
  head: R.PRQ_HEAD,
  tail: R.PRQ_TAIL,
  status: R.PRQ_STATUS,
} as const;
