import { type RegAccess, RegisterFile } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { efr2Words, efrWords } from './capabilities.js';
import { AmdOptionsSchema, featuresFromOptions } from './options.js';
import {
  AMD_MMIO_SIZE,
  amdRegisterTable,
  CTRL_CMD_BUF_EN,
  CTRL_COHERENT,
  CTRL_COM_WAIT_INT_EN,
  CTRL_EVENT_INT_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_GA_EN,
  CTRL_GA_INT_EN,
  CTRL_GA_LOG_EN,
  CTRL_GAM_EN,
  CTRL_GT_EN,
  CTRL_HI_EPH_EN,
  CTRL_HI_GCR3_TRP_MODE,
  CTRL_HI_GD_UPDATE_DIS,
  CTRL_HI_HAD_UPDATE,
  CTRL_HI_INT_CAP_XT_EN,
  CTRL_HI_IRT_CACHE_DIS,
  CTRL_HI_NUM_INT_REMAP_MODE,
  CTRL_HI_XT_EN,
  CTRL_HT_TUN_EN,
  CTRL_INV_TIMEOUT,
  CTRL_IOMMU_EN,
  CTRL_ISOC,
  CTRL_PASS_PW,
  CTRL_PPR_EN,
  CTRL_PPR_INT_EN,
  CTRL_PPR_LOG_EN,
  CTRL_RES_PASS_PW,
  DEV_TBL_SIZE,
  INV_TIMEOUT_MS,
  LOG_HI_LEN,
  LOG_LEN_MAX,
  LOG_LEN_MIN,
  REG,
  type RegField,
  type RegName,
  STATUS_CMD_BUF_RUN,
  STATUS_EVT_LOG_RUN,
  STATUS_EVT_OVERFLOW,
  STATUS_GA_LOG_RUN,
  STATUS_PPR_INT,
  STATUS_PPR_LOG_RUN,
  STATUS_PPR_OVERFLOW,
} from './regs.js';

function instance(input: Record<string, unknown> = {}) {
  const features = featuresFromOptions(AmdOptionsSchema.parse(input));
  const table = amdRegisterTable(features);
  return { features, table, regs: new RegisterFile(AMD_MMIO_SIZE, table) };
}

const writableOf = (table: ReturnType<typeof amdRegisterTable>, name: string) =>
  table.find((d) => d.name === name)?.writable;
const names = (table: ReturnType<typeof amdRegisterTable>) => table.map((d) => d.name);

/**
 * MMIO offsets (Linux MMIO_*, QEMU, VirtualBox, FreeBSD) with the access and the bits software can write for
 * the default unit: PPR, GT, GA with the vAPIC mode, XT, MsiCapMmio, EPH, HA/HD, GCR3TRPMode, no HESup,
 * 512-entry interrupt tables.
 */
const SPEC: readonly (readonly [name: string, offset: number, access: RegAccess, writable: number])[] = [
  ['DEV_TBL_BASE_LO', 0x0000, 'rw', 0xffff_f1ff], // base 31:12, Size 8:0 (VirtualBox 0x000ffffffffff1ff)
  ['DEV_TBL_BASE_HI', 0x0004, 'rw', 0x000f_ffff], // base 51:32
  ['CMD_BUF_BASE_LO', 0x0008, 'rw', 0xffff_f000],
  ['CMD_BUF_BASE_HI', 0x000c, 'rw', 0x0f0f_ffff], // length 59:56, base 51:32 (VirtualBox 0x0f0ffffffffff000)
  ['EVT_LOG_BASE_LO', 0x0010, 'rw', 0xffff_f000],
  ['EVT_LOG_BASE_HI', 0x0014, 'rw', 0x0f0f_ffff],
  ['CONTROL_LO', 0x0018, 'rw', 0x3e03_ffff], // 12:0, PPR 15:13, GTEn, GAEn, GAMEn 27:25, GALogEn, GAIntEn
  ['CONTROL_HI', 0x001c, 'rw', 0x0c0d_e000], // EPHEn, HADUpdate, GDUpdateDis, XTEn, IntCapXTEn, 58, 59
  ['EXCL_BASE_LO', 0x0020, 'rw', 0xffff_f003], // base 31:12, Allow, ExEn
  ['EXCL_BASE_HI', 0x0024, 'rw', 0x000f_ffff],
  ['EXCL_LIMIT_LO', 0x0028, 'rw', 0xffff_f000], // 11:0 read as ones
  ['EXCL_LIMIT_HI', 0x002c, 'rw', 0x000f_ffff],
  ['EFR_LO', 0x0030, 'ro', 0],
  ['EFR_HI', 0x0034, 'ro', 0],
  ['PPR_LOG_BASE_LO', 0x0038, 'rw', 0xffff_f000],
  ['PPR_LOG_BASE_HI', 0x003c, 'rw', 0x0f0f_ffff],
  ['GA_LOG_BASE_LO', 0x00e0, 'rw', 0xffff_f000],
  ['GA_LOG_BASE_HI', 0x00e4, 'rw', 0x0f0f_ffff],
  ['GA_LOG_TAIL_ADDR_LO', 0x00e8, 'rw', 0xffff_fff8], // 51:3
  ['GA_LOG_TAIL_ADDR_HI', 0x00ec, 'rw', 0x000f_ffff],
  ['MSI_CAP_HDR', 0x0158, 'rw', 0x0001_0000], // MsiEn
  ['MSI_ADDR_LOW', 0x015c, 'rw', 0xffff_fffc],
  ['MSI_ADDR_HIGH', 0x0160, 'rw', 0xffff_ffff],
  ['MSI_DATA', 0x0164, 'rw', 0x0000_ffff],
  ['XT_GEN_INTR_LO', 0x0170, 'rw', 0xffff_ff04], // destination 31:8, destination mode
  ['XT_GEN_INTR_HI', 0x0174, 'rw', 0xff00_01ff], // destination 63:56, delivery mode 40, vector 39:32
  ['XT_PPR_INTR_LO', 0x0178, 'rw', 0xffff_ff04],
  ['XT_PPR_INTR_HI', 0x017c, 'rw', 0xff00_01ff],
  ['XT_GA_INTR_LO', 0x0180, 'rw', 0xffff_ff04],
  ['XT_GA_INTR_HI', 0x0184, 'rw', 0xff00_01ff],
  ['EFR2_LO', 0x01a0, 'ro', 0],
  ['EFR2_HI', 0x01a4, 'ro', 0],
  ['CMD_HEAD_LO', 0x2000, 'rw', 0x0007_fff0], // 18:4 (QEMU, VirtualBox, FreeBSD: 0x7fff0)
  ['CMD_HEAD_HI', 0x2004, 'ro', 0],
  ['CMD_TAIL_LO', 0x2008, 'rw', 0x0007_fff0],
  ['CMD_TAIL_HI', 0x200c, 'ro', 0],
  ['EVT_HEAD_LO', 0x2010, 'rw', 0x0007_fff0],
  ['EVT_HEAD_HI', 0x2014, 'ro', 0],
  ['EVT_TAIL_LO', 0x2018, 'rw', 0x0007_fff0],
  ['EVT_TAIL_HI', 0x201c, 'ro', 0],
  ['STATUS_LO', 0x2020, 'w1c', 0x0000_0667], // 0–2, 5, 6, 9, 10 (QEMU's W1C 0x67 plus the GA bits)
  ['STATUS_HI', 0x2024, 'ro', 0],
  ['PPR_HEAD_LO', 0x2030, 'rw', 0x0007_fff0],
  ['PPR_HEAD_HI', 0x2034, 'ro', 0],
  ['PPR_TAIL_LO', 0x2038, 'rw', 0x0007_fff0],
  ['PPR_TAIL_HI', 0x203c, 'ro', 0],
  ['GA_HEAD_LO', 0x2040, 'rw', 0x0007_fff8],
  ['GA_HEAD_HI', 0x2044, 'ro', 0],
  ['GA_TAIL_LO', 0x2048, 'rw', 0x0007_fff8],
  ['GA_TAIL_HI', 0x204c, 'ro', 0],
];

describe('REG', () => {
  it('has the spec offsets', () => {
    expect(REG).toEqual({
      DEV_TBL_BASE: 0x0000,
      CMD_BUF_BASE: 0x0008,
      EVT_LOG_BASE: 0x0010,
      CONTROL: 0x0018,
      EXCL_BASE: 0x0020,
      EXCL_LIMIT: 0x0028,
      EFR: 0x0030,
      PPR_LOG_BASE: 0x0038,
      HW_EVENT_UPPER: 0x0040,
      HW_EVENT_LOWER: 0x0048,
      HW_EVENT_STATUS: 0x0050,
      GA_LOG_BASE: 0x00e0,
      GA_LOG_TAIL_ADDR: 0x00e8,
      MSI_CAP_HDR: 0x0158,
      MSI_ADDR_LOW: 0x015c,
      MSI_ADDR_HIGH: 0x0160,
      MSI_DATA: 0x0164,
      XT_GEN_INTR: 0x0170,
      XT_PPR_INTR: 0x0178,
      XT_GA_INTR: 0x0180,
      EFR2: 0x01a0,
      CMD_HEAD: 0x2000,
      CMD_TAIL: 0x2008,
      EVT_HEAD: 0x2010,
      EVT_TAIL: 0x2018,
      STATUS: 0x2020,
      PPR_HEAD: 0x2030,
      PPR_TAIL: 0x2038,
      GA_HEAD: 0x2040,
      GA_TAIL: 0x2048,
    });
    expect(AMD_MMIO_SIZE).toBe(0x4000);
  });
});

describe('field constants', () => {
  /** The absolute bit of a one-bit constant of the low (`hi` false) or high half. */
  const bit = (mask: number, hi = false) => Math.log2(mask >>> 0) + (hi ? 32 : 0);
  /** A field's absolute [msb, lsb]. */
  const span = (f: RegField, hi = false) => [f.lsb + f.width - 1 + (hi ? 32 : 0), f.lsb + (hi ? 32 : 0)];

  it('places the Control bits where Linux CONTROL_* and FreeBSD AMDIOMMU_CTRL_* put them', () => {
    expect(
      [
        CTRL_IOMMU_EN,
        CTRL_HT_TUN_EN,
        CTRL_EVENT_LOG_EN,
        CTRL_EVENT_INT_EN,
        CTRL_COM_WAIT_INT_EN,
        CTRL_PASS_PW,
        CTRL_RES_PASS_PW,
        CTRL_COHERENT,
        CTRL_ISOC,
        CTRL_CMD_BUF_EN,
        CTRL_PPR_LOG_EN,
        CTRL_PPR_INT_EN,
        CTRL_PPR_EN,
        CTRL_GT_EN,
        CTRL_GA_EN,
        CTRL_GA_LOG_EN,
        CTRL_GA_INT_EN,
      ].map((m) => bit(m)),
    ).toEqual([0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 28, 29]);
    expect(
      [
        CTRL_HI_EPH_EN,
        CTRL_HI_GD_UPDATE_DIS,
        CTRL_HI_XT_EN,
        CTRL_HI_INT_CAP_XT_EN,
        CTRL_HI_GCR3_TRP_MODE,
        CTRL_HI_IRT_CACHE_DIS,
      ].map((m) => bit(m, true)),
    ).toEqual([45, 48, 50, 51, 58, 59]);
    expect([
      span(CTRL_INV_TIMEOUT),
      span(CTRL_GAM_EN),
      span(CTRL_HI_NUM_INT_REMAP_MODE, true),
      span(CTRL_HI_HAD_UPDATE, true),
    ]).toEqual([
      [7, 5],
      [27, 25],
      [44, 43],
      [47, 46],
    ]);
    expect(INV_TIMEOUT_MS[6]).toBe(100_000);
  });

  it('places the base-register fields: Size 8:0, length 59:56 from 256 to 32768 entries', () => {
    expect([span(DEV_TBL_SIZE), span(LOG_HI_LEN, true)]).toEqual([
      [8, 0],
      [59, 56],
    ]);
    expect([2 ** LOG_LEN_MIN, 2 ** LOG_LEN_MAX]).toEqual([256, 32_768]);
  });
});

describe('amdRegisterTable', () => {
  const { table, features } = instance();

  it('has every register at its spec offset with its access type and writable bits', () => {
    expect(table.map((d) => [d.name, d.offset, d.access, d.writable])).toEqual(SPEC);
  });

  it('names offsets as REG does', () => {
    for (const { name, offset } of table) {
      const base = name.replace(/_(LO|HI)$/, '') as RegName;
      expect(REG[base] + (name.endsWith('_HI') ? 4 : 0), name).toBe(offset);
    }
  });

  it('resets the EFR and EFR2 to what the unit implements, and the read-as-one bits', () => {
    const efr = efrWords(features);
    const efr2 = efr2Words(features);
    const resets = Object.fromEntries(table.map((d) => [d.name, d.reset]));
    expect(resets).toEqual({
      ...Object.fromEntries(SPEC.map(([n]) => [n, 0])),
      EFR_LO: efr.lo,
      EFR_HI: efr.hi,
      EFR2_LO: efr2.lo,
      EFR2_HI: efr2.hi,
      EXCL_LIMIT_LO: 0xfff,
      MSI_CAP_HDR: 0x0080_0005, // Msi64BitEn, capability ID 05h
    });
    const { regs } = instance();
    expect([regs.read(REG.EFR, 4), regs.read(REG.EFR + 4, 4), regs.read(REG.EFR2, 4)]).toEqual([
      0x0020_58de, 0x0017_400f, 0x8,
    ]);
  });

  it('reads reserved bits as 0 after all-ones writes', () => {
    const { regs } = instance();
    const readAsOnes: Record<string, number> = { EXCL_LIMIT_LO: 0xfff, MSI_CAP_HDR: 0x0080_0005 };
    for (const [name, offset, access, writable] of SPEC) {
      if (access !== 'rw') continue;
      regs.write(offset, 4, 0);
      expect(regs.read(offset, 4), name).toBe(readAsOnes[name] ?? 0);
      regs.write(offset, 4, 0xffff_ffff);
      expect(regs.read(offset, 4), name).toBe((writable | (readAsOnes[name] ?? 0)) >>> 0);
    }
  });

  it('ignores writes to the capability registers and to read-only halves', () => {
    const { regs } = instance();
    regs.write(REG.EFR, 4, 0);
    regs.write(REG.EFR + 4, 4, 0xffff_ffff);
    regs.write(REG.EFR2, 4, 0);
    regs.set(REG.CMD_HEAD + 4, 0x5);
    regs.write(REG.CMD_HEAD + 4, 4, 0xffff_ffff);
    expect([
      regs.read(REG.EFR, 4),
      regs.read(REG.EFR + 4, 4),
      regs.read(REG.EFR2, 4),
      regs.read(REG.CMD_HEAD + 4, 4),
    ]).toEqual([0x0020_58de, 0x0017_400f, 0x8, 0x5]);
  });

  it('clears only the RW1C status bits and keeps the run bits the hardware owns', () => {
    const { regs } = instance();
    regs.set(REG.STATUS, 0x7ff); // every defined bit
    regs.write(REG.STATUS, 4, STATUS_EVT_OVERFLOW);
    expect(regs.read(REG.STATUS, 4)).toBe(0x7fe);
    regs.write(REG.STATUS, 1, STATUS_PPR_OVERFLOW | STATUS_PPR_INT); // the low byte alone
    expect(regs.read(REG.STATUS, 4)).toBe(0x79e);
    regs.write(REG.STATUS, 4, 0xffff_ffff);
    const running = STATUS_EVT_LOG_RUN | STATUS_CMD_BUF_RUN | STATUS_PPR_LOG_RUN | STATUS_GA_LOG_RUN;
    expect(regs.read(REG.STATUS, 4)).toBe(running);
    expect(running).toBe(0x198);
    regs.write(REG.STATUS, 4, 0);
    expect(regs.read(REG.STATUS, 4)).toBe(running);
  });

  it('keeps the MSI capability ID and the exclusion limit low bits whatever is written', () => {
    const { regs } = instance();
    regs.write(REG.MSI_CAP_HDR, 2, 0);
    regs.write(REG.EXCL_LIMIT, 4, 0x1234_5000);
    expect([regs.read(REG.MSI_CAP_HDR, 4), regs.read(REG.EXCL_LIMIT, 4)]).toEqual([0x0080_0005, 0x1234_5fff]);
    regs.write(REG.MSI_CAP_HDR + 2, 1, 0xff); // MsiEn in the third byte; MultMessEn is not writable
    expect(regs.read(REG.MSI_CAP_HDR, 4)).toBe(0x0081_0005);
  });

  it('reads absent registers as 0 and ignores their writes', () => {
    const { regs } = instance();
    for (const offset of [REG.HW_EVENT_UPPER, REG.HW_EVENT_STATUS, 0x0100, 0x0190, 0x2050, 0x3ffc]) {
      regs.write(offset, 4, 0xffff_ffff);
      expect(regs.read(offset, 4), offset.toString(16)).toBe(0);
      expect(regs.definitionAt(offset)).toBeUndefined();
    }
  });
});

describe('amdRegisterTable, by feature', () => {
  it('leaves out the PPR log, its head and tail and its XT interrupt without PPR', () => {
    const { table } = instance({ pageRequests: false });
    expect(names(table).filter((n) => n.includes('PPR'))).toEqual([]);
    expect(writableOf(table, 'CONTROL_LO')).toBe(0x3e03_1fff);
    expect(writableOf(table, 'STATUS_LO')).toBe(0x0000_0607);
  });

  it('has the GA log registers only with the virtual-APIC mode', () => {
    const { table } = instance({ guestVapicMode: false });
    expect(names(table).filter((n) => n.startsWith('GA_') || n.startsWith('XT_GA'))).toEqual([]);
    expect(writableOf(table, 'CONTROL_LO')).toBe(0x0003_ffff); // GAEn stays with GASup
    expect(writableOf(table, 'STATUS_LO')).toBe(0x0000_0067);
    const noGa = instance({ guestVapicMode: false, guestVirtualApic: false, x2apic: false }).table;
    expect(writableOf(noGa, 'CONTROL_LO')).toBe(0x0001_ffff);
  });

  it('has the XT interrupt controls and XTEn/IntCapXTEn only with x2APIC', () => {
    const { table } = instance({ x2apic: false });
    expect(names(table).filter((n) => n.startsWith('XT_'))).toEqual([]);
    expect(writableOf(table, 'CONTROL_HI')).toBe(0x0c01_e000);
    const noPpr = instance({ pageRequests: false }).table;
    expect(names(noPpr).filter((n) => n.startsWith('XT_'))).toEqual([
      'XT_GEN_INTR_LO',
      'XT_GEN_INTR_HI',
      'XT_GA_INTR_LO',
      'XT_GA_INTR_HI',
    ]);
  });

  it('has the MSI capability mirror only with MsiCapMmioSup', () => {
    expect(names(instance({ msiCapMmio: false }).table).filter((n) => n.startsWith('MSI_'))).toEqual([]);
  });

  it('has the hardware error registers only with HESup', () => {
    const { table, regs } = instance({ hardwareErrors: true });
    expect(
      table.filter((d) => d.name.startsWith('HW_EVENT')).map((d) => [d.name, d.offset, d.access, d.writable]),
    ).toEqual([
      ['HW_EVENT_UPPER_LO', 0x40, 'rw', 0xffff_ffff],
      ['HW_EVENT_UPPER_HI', 0x44, 'rw', 0xffff_ffff],
      ['HW_EVENT_LOWER_LO', 0x48, 'rw', 0xffff_ffff],
      ['HW_EVENT_LOWER_HI', 0x4c, 'rw', 0xffff_ffff],
      ['HW_EVENT_STATUS_LO', 0x50, 'w1c', 0x3], // HEV, HEO
      ['HW_EVENT_STATUS_HI', 0x54, 'ro', 0],
    ]);
    regs.set(REG.HW_EVENT_STATUS, 0x3);
    regs.write(REG.HW_EVENT_STATUS, 4, 0x2);
    expect(regs.read(REG.HW_EVENT_STATUS, 4)).toBe(0x1);
  });

  it('implements the Control bits of optional features only with them', () => {
    const bare = instance({
      enhancedPpr: false,
      hostAccess: false,
      hostDirty: false,
      guestTranslation: false,
      gcr3TrpMode: false,
      x2apic: false,
    }).table;
    expect(writableOf(bare, 'CONTROL_HI')).toBe(0x0800_0000); // IRTCacheDis alone
    expect(writableOf(bare, 'CONTROL_LO')).toBe(0x3e02_ffff); // no GTEn
    const dirtyOnly = instance({ hostAccess: false }).table;
    expect(writableOf(dirtyOnly, 'CONTROL_HI')).toBe(0x0c0d_e000); // HADUpdate with HDSup alone
    const wideIrt = instance({ interruptRemapEntries: 2048 }).table;
    expect(writableOf(wideIrt, 'CONTROL_HI')).toBe(0x0c0d_f800); // NumIntRemapMode 44:43
  });

  it('fits the largest unit in the window', () => {
    const { table, regs } = instance({ hardwareErrors: true, interruptRemapEntries: 2048 });
    expect(Math.max(...table.map((d) => d.offset)) + 4).toBeLessThanOrEqual(AMD_MMIO_SIZE);
    expect(regs.definitionAt(REG.GA_TAIL + 4)).toMatchObject({ name: 'GA_TAIL_HI', access: 'ro' });
  });
});
