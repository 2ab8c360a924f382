import { type RegAccess, RegisterFile } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_IDR_EXTRAS } from './features.js';
import { idrValues } from './idr.js';
import { featuresFromOptions, Smmuv3OptionsSchema } from './options.js';
import {
  CR0_CMDQEN,
  CR0_EVENTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR1_QUEUE_FIELDS,
  CR1_TABLE_FIELDS,
  GBPA_UPDATE,
  type GuardState,
  guardedValue,
  guardStateOf,
  IRQ_CFG0_ADDR,
  IRQ_CTRL_EVENTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  isWritableNow,
  Q_BASE_ADDR,
  REG,
  REG64,
  type RegName,
  reg64Address,
  registerTable,
  SMMU_MMIO_SIZE,
  STRTAB_BASE_ADDR,
  writableNow,
} from './regs.js';

function instance(input: Record<string, unknown> = {}) {
  const options = Smmuv3OptionsSchema.parse(input);
  const features = featuresFromOptions(options);
  const table = registerTable(features, options);
  return { options, features, table, regs: new RegisterFile(SMMU_MMIO_SIZE, table) };
}

/**
 * SMMUv3 §6.2.1/6.2.2 (offset, access) and the field descriptions of §6.3 (bits software can write, given
 * the default features: S1+S2, ATS, PRI, MSI, 2-level stream table, OAS 48).
 */
const SPEC: readonly (readonly [name: string, offset: number, access: RegAccess, writable: number])[] = [
  ['IDR0', 0x0000, 'ro', 0],
  ['IDR1', 0x0004, 'ro', 0],
  ['IDR2', 0x0008, 'ro', 0],
  ['IDR3', 0x000c, 'ro', 0],
  ['IDR4', 0x0010, 'ro', 0],
  ['IDR5', 0x0014, 'ro', 0],
  ['IIDR', 0x0018, 'ro', 0],
  ['AIDR', 0x001c, 'ro', 0],
  ['CR0', 0x0020, 'rw', 0x0000_001f], // SMMUEN PRIQEN EVENTQEN CMDQEN ATSCHK; VMW/DPT_WALK_EN absent
  ['CR0ACK', 0x0024, 'ro', 0],
  ['CR1', 0x0028, 'rw', 0x0000_0fff], // QUEUE_IC/OC/SH, TABLE_IC/OC/SH
  ['CR2', 0x002c, 'rw', 0x0000_0002], // RECINVSID; E2H needs Hyp, PTM needs BTM
  ['STATUSR', 0x0040, 'ro', 0],
  ['GBPA', 0x0044, 'rw', 0x801f_3f1f], // Update ABORT INSTCFG PRIVCFG SHCFG ALLOCCFG MTCFG MemAttr
  ['AGBPA', 0x0048, 'rw', 0],
  ['IRQ_CTRL', 0x0050, 'rw', 0x0000_0007],
  ['IRQ_CTRLACK', 0x0054, 'ro', 0],
  ['GERROR', 0x0060, 'ro', 0],
  ['GERRORN', 0x0064, 'rw', 0x0000_01fd], // bits 0, 2–8
  ['GERROR_IRQ_CFG0_LO', 0x0068, 'rw', 0xffff_fffc], // ADDR[31:2]
  ['GERROR_IRQ_CFG0_HI', 0x006c, 'rw', 0x0000_ffff], // ADDR[47:32]; [55:48] above OAS
  ['GERROR_IRQ_CFG1', 0x0070, 'rw', 0xffff_ffff],
  ['GERROR_IRQ_CFG2', 0x0074, 'rw', 0x0000_003f], // SH MemAttr
  ['STRTAB_BASE_LO', 0x0080, 'rw', 0xffff_ffc0], // ADDR[31:6]
  ['STRTAB_BASE_HI', 0x0084, 'rw', 0x4000_ffff], // RA (62), ADDR[47:32]
  ['STRTAB_BASE_CFG', 0x0088, 'rw', 0x0003_07ff], // FMT SPLIT LOG2SIZE
  ['CMDQ_BASE_LO', 0x0090, 'rw', 0xffff_ffff], // ADDR[31:5] LOG2SIZE
  ['CMDQ_BASE_HI', 0x0094, 'rw', 0x4000_ffff],
  ['CMDQ_PROD', 0x0098, 'rw', 0x000f_ffff],
  ['CMDQ_CONS', 0x009c, 'rw', 0x7f0f_ffff], // ERR[30:24] RD[19:0]
  ['EVENTQ_BASE_LO', 0x00a0, 'rw', 0xffff_ffff],
  ['EVENTQ_BASE_HI', 0x00a4, 'rw', 0x4000_ffff], // WA (62)
  ['EVENTQ_PROD', 0x100a8, 'rw', 0x800f_ffff], // OVFLG WR
  ['EVENTQ_CONS', 0x100ac, 'rw', 0x800f_ffff], // OVACKFLG RD
  ['EVENTQ_IRQ_CFG0_LO', 0x00b0, 'rw', 0xffff_fffc],
  ['EVENTQ_IRQ_CFG0_HI', 0x00b4, 'rw', 0x0000_ffff],
  ['EVENTQ_IRQ_CFG1', 0x00b8, 'rw', 0xffff_ffff],
  ['EVENTQ_IRQ_CFG2', 0x00bc, 'rw', 0x0000_003f],
  ['PRIQ_BASE_LO', 0x00c0, 'rw', 0xffff_ffff],
  ['PRIQ_BASE_HI', 0x00c4, 'rw', 0x4000_ffff],
  ['PRIQ_PROD', 0x100c8, 'rw', 0x800f_ffff],
  ['PRIQ_CONS', 0x100cc, 'rw', 0x800f_ffff],
  ['PRIQ_IRQ_CFG0_LO', 0x00d0, 'rw', 0xffff_fffc],
  ['PRIQ_IRQ_CFG0_HI', 0x00d4, 'rw', 0x0000_ffff],
  ['PRIQ_IRQ_CFG1', 0x00d8, 'rw', 0xffff_ffff],
  ['PRIQ_IRQ_CFG2', 0x00dc, 'rw', 0x8000_003f], // LO SH MemAttr
];

describe('registerTable', () => {
  const { table, options, features } = instance();

  it('has every register at its spec offset with its access type', () => {
    expect(table.map((d) => [d.name, d.offset, d.access])).toEqual(SPEC.map(([n, o, a]) => [n, o, a]));
  });

  it('names offsets as REG does', () => {
    for (const [name, offset] of SPEC) {
      const base = name.replace(/_(LO|HI)$/, '') as RegName;
      expect(REG[base] + (name.endsWith('_HI') ? 4 : 0), name).toBe(offset);
    }
    expect(REG64.map((n) => REG[n] % 8)).toEqual(REG64.map(() => 0));
  });

  it('resets to the spec values', () => {
    const ids = idrValues(features, options);
    const resets = Object.fromEntries(table.map((d) => [d.name, d.reset]));
    expect(resets).toEqual({
      ...Object.fromEntries(SPEC.map(([n]) => [n, 0])),
      ...ids,
      // GBPA: Update resets to 0; the IMPLEMENTATION DEFINED attributes to SHCFG = use incoming.
      GBPA: 0x0000_1000,
    });
    expect(instance({ gbpaAbort: true }).table.find((d) => d.name === 'GBPA')?.reset).toBe(0x0010_1000);
  });

  it('reads RES0 bits as 0 after all-ones writes, and ignores writes to read-only registers', () => {
    const { regs } = instance();
    for (const [name, offset, access, writable] of SPEC) {
      const before = regs.read(offset, 4);
      regs.write(offset, 4, 0xffff_ffff);
      expect(regs.read(offset, 4), name).toBe(access === 'ro' ? before : writable);
    }
  });

  it('drops the fields and registers of features the instance lacks', () => {
    const { regs } = instance({
      ats: false,
      pri: false,
      msi: false,
      sidBits: 6,
      twoLevelStreamTable: false,
      oasBits: 32,
    });
    const writeOnes = (offset: number) => {
      regs.write(offset, 4, 0xffff_ffff);
      return regs.read(offset, 4);
    };
    expect(writeOnes(REG.CR0)).toBe(0b1101); // no PRIQEN, no ATSCHK
    expect(writeOnes(REG.IRQ_CTRL)).toBe(0b101); // no PRIQ_IRQEN
    expect(writeOnes(REG.GERRORN)).toBe(0x105); // CMDQ_ERR, EVENTQ_ABT_ERR, SFM_ERR
    expect(writeOnes(REG.STRTAB_BASE_CFG)).toBe(0x3f); // no SPLIT, no FMT
    expect(writeOnes(REG.STRTAB_BASE + 4)).toBe(0x4000_0000); // RA only: ADDR above OAS 32 is RES0
    expect(writeOnes(REG.CMDQ_BASE + 4)).toBe(0x4000_0000);
    for (const name of [
      'GERROR_IRQ_CFG0',
      'GERROR_IRQ_CFG1',
      'GERROR_IRQ_CFG2',
      'EVENTQ_IRQ_CFG1',
      'PRIQ_BASE',
    ] as const)
      expect(writeOnes(REG[name]), name).toBe(0);
    expect(writeOnes(REG.PRIQ_PROD)).toBe(0);
    expect(writeOnes(REG.PRIQ_IRQ_CFG2)).toBe(0);
    // PRI without MSI: PRIQ_IRQ_CFG2.LO stays (it applies to wired interrupts).
    const wired = instance({ msi: false }).regs;
    wired.write(REG.PRIQ_IRQ_CFG2, 4, 0xffff_ffff);
    expect(wired.read(REG.PRIQ_IRQ_CFG2, 4)).toBe(0x8000_0000);
  });

  it('makes CR2.E2H writable only with Hyp (which needs both stages)', () => {
    const cr2Mask = (input: Record<string, unknown>) => {
      const options = Smmuv3OptionsSchema.parse(input);
      const table = registerTable(featuresFromOptions(options), options, {
        ...DEFAULT_IDR_EXTRAS,
        hyp: true,
      });
      return table.find((d) => d.name === 'CR2')?.writable;
    };
    expect(cr2Mask({})).toBe(0b11);
    expect(cr2Mask({ s2: false, nesting: false })).toBe(0b10);
  });

  it('treats offsets it does not define as RES0, including the optional page-0 queue index aliases', () => {
    const { regs } = instance();
    for (const offset of [
      0x30, 0x34, 0x3c, 0x4c, 0x58, 0x78, 0x8c, 0xa8, 0xac, 0xc8, 0xcc, 0x100, 0xfd0, 0x10000, 0x1fffc,
    ]) {
      regs.write(offset, 4, 0xffff_ffff);
      expect(regs.read(offset, 4), offset.toString(16)).toBe(0);
    }
  });

  it('gives 32-bit access to each half of every 64-bit register', () => {
    const { regs } = instance();
    for (const name of REG64) {
      const offset = REG[name];
      regs.write(offset, 4, 0x1234_5640);
      regs.write(offset + 4, 4, 0x0000_abcd);
      expect(regs.read(offset, 4), name).toBe(0x1234_5640);
      expect(regs.read(offset + 4, 4), name).toBe(0x0000_abcd);
      // Writing one half leaves the other alone.
      regs.write(offset + 4, 4, 0x0000_0001);
      expect(regs.read(offset, 4), name).toBe(0x1234_5640);
      regs.write(offset, 4, 0x0000_0040);
      expect(regs.read(offset + 4, 4), name).toBe(0x0000_0001);
      expect(regs.get64(offset), name).toBe(0x1_0000_0040n);
    }
  });

  it('merges byte and half-word writes into the containing register', () => {
    const { regs } = instance();
    regs.write(REG.CMDQ_BASE + 6, 2, 0x4000); // bits [63:48]: RA set, ADDR[55:48] above OAS dropped
    regs.write(REG.CMDQ_BASE + 4, 1, 0x12);
    expect(regs.read(REG.CMDQ_BASE + 4, 4)).toBe(0x4000_0012);
  });

  it('decodes address fields across the halves', () => {
    expect(reg64Address(0x1234_5678, 0x0000_9abc, STRTAB_BASE_ADDR)).toBe(0x9abc_1234_5640);
    expect(reg64Address(0x1234_567f, 0x4000_9abc, Q_BASE_ADDR)).toBe(0x9abc_1234_5660);
    expect(reg64Address(0xffff_ffff, 0x00ff_ffff, IRQ_CFG0_ADDR)).toBe(2 ** 56 - 4);
  });
});

describe('writableNow', () => {
  const idle: GuardState = { cr0: 0, cr0ack: 0, irqCtrl: 0, irqCtrlAck: 0, gbpa: 0 };
  const guardedBy: readonly (readonly [RegName, number, number])[] = [
    ['STRTAB_BASE', CR0_SMMUEN, 0],
    ['STRTAB_BASE_CFG', CR0_SMMUEN, 0],
    ['CR2', CR0_SMMUEN, 0],
    ['CMDQ_BASE', CR0_CMDQEN, 0],
    ['CMDQ_CONS', CR0_CMDQEN, 0],
    ['EVENTQ_BASE', CR0_EVENTQEN, 0],
    ['EVENTQ_PROD', CR0_EVENTQEN, 0],
    ['PRIQ_BASE', CR0_PRIQEN, 0],
    ['PRIQ_PROD', CR0_PRIQEN, 0],
    ['GERROR_IRQ_CFG0', 0, IRQ_CTRL_GERROR_IRQEN],
    ['GERROR_IRQ_CFG1', 0, IRQ_CTRL_GERROR_IRQEN],
    ['GERROR_IRQ_CFG2', 0, IRQ_CTRL_GERROR_IRQEN],
    ['EVENTQ_IRQ_CFG0', 0, IRQ_CTRL_EVENTQ_IRQEN],
    ['EVENTQ_IRQ_CFG2', 0, IRQ_CTRL_EVENTQ_IRQEN],
    ['PRIQ_IRQ_CFG0', 0, IRQ_CTRL_PRIQ_IRQEN],
    ['PRIQ_IRQ_CFG1', 0, IRQ_CTRL_PRIQ_IRQEN],
  ];

  it.each(guardedBy)(
    '%s is RW only while its enable and acknowledgement are both 0',
    (name, cr0Bit, irqBit) => {
      const offsets = REG64.includes(name) ? [REG[name], REG[name] + 4] : [REG[name]];
      for (const offset of offsets) {
        expect(isWritableNow(offset, idle)).toBe(true);
        expect(isWritableNow(offset, { ...idle, cr0: cr0Bit, irqCtrl: irqBit })).toBe(false);
        // Still RO while the disable has not completed (enable 0, acknowledgement 1).
        expect(isWritableNow(offset, { ...idle, cr0ack: cr0Bit, irqCtrlAck: irqBit })).toBe(false);
        // Other enables do not guard it.
        const others = { ...idle, cr0: 0x1f & ~cr0Bit, cr0ack: 0x1f & ~cr0Bit, irqCtrl: 7 & ~irqBit };
        expect(isWritableNow(offset, { ...others, irqCtrlAck: others.irqCtrl })).toBe(true);
      }
    },
  );

  it('guards the CR1 table fields by SMMUEN and the queue fields by all queue enables', () => {
    expect(writableNow(REG.CR1, idle)).toBe(0xffff_ffff & (CR1_TABLE_FIELDS | CR1_QUEUE_FIELDS));
    expect(writableNow(REG.CR1, { ...idle, cr0: CR0_SMMUEN })).toBe(CR1_QUEUE_FIELDS);
    for (const q of [CR0_CMDQEN, CR0_EVENTQEN, CR0_PRIQEN]) {
      expect(writableNow(REG.CR1, { ...idle, cr0ack: q })).toBe(CR1_TABLE_FIELDS);
    }
    expect(isWritableNow(REG.CR1, { ...idle, cr0: 0xf })).toBe(false);
  });

  it('makes GBPA read-only while an Update is in progress', () => {
    expect(isWritableNow(REG.GBPA, idle)).toBe(true);
    expect(isWritableNow(REG.GBPA, { ...idle, gbpa: GBPA_UPDATE })).toBe(false);
  });

  it('leaves unguarded registers writable', () => {
    const busy: GuardState = { cr0: 0x1f, cr0ack: 0x1f, irqCtrl: 7, irqCtrlAck: 7, gbpa: 0 };
    for (const name of ['CR0', 'IRQ_CTRL', 'GERRORN', 'CMDQ_PROD', 'EVENTQ_CONS', 'PRIQ_CONS'] as const) {
      expect(writableNow(REG[name], busy), name).toBe(0xffff_ffff);
    }
  });

  it('keeps the old value of a guarded register written while its enable is set', () => {
    const { regs } = instance();
    regs.onWrite(REG.CMDQ_BASE, (value, old) =>
      regs.set(REG.CMDQ_BASE, guardedValue(REG.CMDQ_BASE, value, old, guardStateOf(regs))),
    );
    regs.write(REG.CMDQ_BASE, 4, 0x8000_0013);
    expect(regs.read(REG.CMDQ_BASE, 4)).toBe(0x8000_0013);
    regs.set(REG.CR0, CR0_CMDQEN);
    regs.write(REG.CMDQ_BASE, 4, 0x4000_0008);
    expect(regs.read(REG.CMDQ_BASE, 4)).toBe(0x8000_0013);
    expect(guardedValue(REG.CR1, 0xfff, 0, { ...idle, cr0: CR0_SMMUEN })).toBe(CR1_QUEUE_FIELDS);
  });
});
