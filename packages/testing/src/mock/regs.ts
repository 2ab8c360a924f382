/**
 * Register map of the mock IOMMU (a 4 KiB MMIO window). The mock is a deliberately small architecture,
 * specified in packages/testing/README.md, that exercises the same mechanisms real IOMMUs have: a device
 * table in memory, page tables, an IOTLB and a configuration cache that software must invalidate, and a
 * fault log ring with an interrupt. 64-bit registers are two 32-bit halves at +0 and +4.
 */
import type { RegAccess, RegDef } from '@iommukit/core';

function reg(name: string, offset: number, access: RegAccess, writable = 0xffff_ffff): RegDef {
  return { name, offset, access, writable };
}
export const MOCK_MMIO_SIZE = 0x1000;
export const MOCK_IDR_MAGIC = 0x4d4b; // "MK"
export const MOCK_VERSION = 1;

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
} as const;

export const REGISTERS: readonly RegDef[] = [
  reg('IDR', R.IDR, 'ro'),
  reg('CAP', R.CAP, 'ro'),
  reg('CTRL', R.CTRL, 'rw', 0b11),
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
];

/** CTRL bits. */
export const CTRL_EN = 1 << 0;
export const CTRL_FAULT_IRQ_EN = 1 << 1;
/** FLOG_STATUS bits. */
export const FLOG_OVERFLOW = 1 << 0;

/** CAP fields: [4:0] SID bits, [9:5] maximum fault-log log2 size, [10] dirty tracking. */
export const CAP_SID_BITS = { lsb: 0, width: 5 } as const;
export const CAP_FLOG_MAX_LOG2 = { lsb: 5, width: 5 } as const;
export const CAP_DIRTY = 1 << 10;

/** INV_CMD opcodes. Each runs to completion when written and then increments INV_DONE. */
export const INV = {
  ALL: 1,
  /** Every IOTLB entry of domain INV_ARG. */
  DOMAIN: 2,
  /** IOTLB entries of domain INV_ARG in [INV_ADDR, INV_ADDR + INV_SIZE). */
  RANGE: 3,
  /** The configuration cache entry of stream INV_ARG. */
  DEVICE: 4,
} as const;
