/**
 * The SMMUv3 register map (SMMUv3 §6.1–6.3) for the core RegisterFile: register page 0 (0x00000–0x0FFFF)
 * and page 1 (0x10000–0x1FFFF, where the Event and PRI queue indices live), the Non-secure programming
 * interface only. The table gives each register its spec offset, access type, writable bits (so RES0
 * bits, and fields of unimplemented features, read 0) and reset value. A 64-bit register is two 32-bit
 * registers, `<NAME>_LO` at +0 and `<NAME>_HI` at +4 (§6.2).
 *
 * Fields of an UNKNOWN reset value reset to 0 here; IMPLEMENTATION DEFINED ones are documented where set.
 * Registers absent by the spec's own rules are not listed, so they read as zero and ignore writes (RES0):
 * the *_IRQ_CFGn registers without MSI, the PRIQ_* registers without PRI. Page-0 offsets 0xA8/0xAC/0xC8/0xCC
 * (optional aliases of the page-1 queue indices, §6.2.1) are RAZ/WI, one of the two permitted choices.
 *
 * Not modelled (each belongs to an optional feature this model does not advertise): S2PII (0x30, stage 2
 * permission indirection, IDR3.S2PI), GATOS_* (0x100–0x118, IDR0.ATOS), MPAMIDR/GMPAM/GBPMPAM (0x130–0x13C,
 * IDR3.MPAM), VATOS_SEL and the VATOS page (IDR0.VATOS), IDR6 and the Command queue control pages
 * (IDR1.ECMDQ), DPT_* (0x200–0x210, IDR3.DPT), the SMMU_S_* Secure registers (SMMU_S_IDR1.SECURE_IMPL),
 * the Realm and Root pages (RME), and the IMPLEMENTATION DEFINED ID_REGS (0xFD0–0xFFC).
 *
 * Guarded registers (§6.2: a Guarded field may change only while the field guarding it is in a given
 * state) are RW in the table; {@link writableNow} gives the bits a write may change in the current state,
 * and the device model applies it from its write hooks.
 */
import { entryAddress, type RegDef, type RegisterFile } from '@iommukit/core';
import type { Smmuv3Features } from './features.js';
import { DEFAULT_IDR_EXTRAS, type Smmuv3IdrExtras } from './features.js';
import { idrValues, type RegField } from './idr.js';
import type { Smmuv3Options } from './options.js';

/** Each register page is 64 KiB; the two pages make the 128 KiB window (§6.1). */
export const SMMU_PAGE_SIZE = 0x1_0000;
export const SMMU_MMIO_SIZE = 2 * SMMU_PAGE_SIZE;
export const PAGE1 = SMMU_PAGE_SIZE;

/** Register offsets by spec name (SMMU_ prefix dropped); 64-bit registers by their low half (§6.2.1, §6.2.2). */
export const REG = {
  IDR0: 0x00,
  IDR1: 0x04,
  IDR2: 0x08,
  IDR3: 0x0c,
  IDR4: 0x10,
  IDR5: 0x14,
  IIDR: 0x18,
  AIDR: 0x1c,
  CR0: 0x20,
  CR0ACK: 0x24,
  CR1: 0x28,
  CR2: 0x2c,
  STATUSR: 0x40,
  GBPA: 0x44,
  AGBPA: 0x48,
  IRQ_CTRL: 0x50,
  IRQ_CTRLACK: 0x54,
  GERROR: 0x60,
  GERRORN: 0x64,
  GERROR_IRQ_CFG0: 0x68,
  GERROR_IRQ_CFG1: 0x70,
  GERROR_IRQ_CFG2: 0x74,
  STRTAB_BASE: 0x80,
  STRTAB_BASE_CFG: 0x88,
  CMDQ_BASE: 0x90,
  CMDQ_PROD: 0x98,
  CMDQ_CONS: 0x9c,
  EVENTQ_BASE: 0xa0,
  EVENTQ_PROD: PAGE1 + 0xa8,
  EVENTQ_CONS: PAGE1 + 0xac,
  EVENTQ_IRQ_CFG0: 0xb0,
  EVENTQ_IRQ_CFG1: 0xb8,
  EVENTQ_IRQ_CFG2: 0xbc,
  PRIQ_BASE: 0xc0,
  PRIQ_PROD: PAGE1 + 0xc8,
  PRIQ_CONS: PAGE1 + 0xcc,
  PRIQ_IRQ_CFG0: 0xd0,
  PRIQ_IRQ_CFG1: 0xd8,
  PRIQ_IRQ_CFG2: 0xdc,
} as const;
export type RegName = keyof typeof REG;

/** The 64-bit registers (two halves each). */
export const REG64: readonly RegName[] = [
  'GERROR_IRQ_CFG0',
  'STRTAB_BASE',
  'CMDQ_BASE',
  'EVENTQ_BASE',
  'EVENTQ_IRQ_CFG0',
  'PRIQ_BASE',
  'PRIQ_IRQ_CFG0',
];

/** A field of a 64-bit register by absolute bit numbers (bit 32 is bit 0 of the high half). */
export interface Reg64Field {
  readonly lsb: number;
  readonly msb: number;
}

// SMMU_CR0 and SMMU_CR0ACK (§6.3.9, §6.3.10): the same layout.
export const CR0_SMMUEN = 1 << 0;
export const CR0_PRIQEN = 1 << 1;
export const CR0_EVENTQEN = 1 << 2;
export const CR0_CMDQEN = 1 << 3;
export const CR0_ATSCHK = 1 << 4;
export const CR0_VMW: RegField = { lsb: 6, width: 3 };
export const CR0_DPT_WALK_EN = 1 << 10;
/** Every CR0 field defined by the architecture; CR0ACK mirrors these (reserved bits are not reflected). */
export const CR0_FIELDS =
  CR0_SMMUEN | CR0_PRIQEN | CR0_EVENTQEN | CR0_CMDQEN | CR0_ATSCHK | (0b111 << 6) | CR0_DPT_WALK_EN;

// SMMU_CR1 (§6.3.11). Encodings: IC/OC 0 NC, 1 WB, 2 WT; SH 0 NSH, 2 OSH, 3 ISH.
export const CR1_QUEUE_IC: RegField = { lsb: 0, width: 2 };
export const CR1_QUEUE_OC: RegField = { lsb: 2, width: 2 };
export const CR1_QUEUE_SH: RegField = { lsb: 4, width: 2 };
export const CR1_TABLE_IC: RegField = { lsb: 6, width: 2 };
export const CR1_TABLE_OC: RegField = { lsb: 8, width: 2 };
export const CR1_TABLE_SH: RegField = { lsb: 10, width: 2 };
export const CR1_QUEUE_FIELDS = 0x03f;
export const CR1_TABLE_FIELDS = 0xfc0;

// SMMU_CR2 (§6.3.12).
export const CR2_E2H = 1 << 0;
export const CR2_RECINVSID = 1 << 1;
export const CR2_PTM = 1 << 2;
export const CR2_REC_CFG_ATS = 1 << 3;

// SMMU_STATUSR (§6.3.13).
export const STATUSR_DORMANT = 1 << 0;

// SMMU_GBPA (§6.3.14).
export const GBPA_MEMATTR: RegField = { lsb: 0, width: 4 };
export const GBPA_MTCFG = 1 << 4;
export const GBPA_ALLOCCFG: RegField = { lsb: 8, width: 4 };
export const GBPA_SHCFG: RegField = { lsb: 12, width: 2 };
export const GBPA_PRIVCFG: RegField = { lsb: 16, width: 2 };
export const GBPA_INSTCFG: RegField = { lsb: 18, width: 2 };
export const GBPA_ABORT = 1 << 20;
export const GBPA_UPDATE = 0x8000_0000;
/** GBPA.SHCFG = 0b01: use the incoming Shareability. */
export const SHCFG_USE_INCOMING = 0b01;

// SMMU_IRQ_CTRL and SMMU_IRQ_CTRLACK (§6.3.16, §6.3.18).
export const IRQ_CTRL_GERROR_IRQEN = 1 << 0;
export const IRQ_CTRL_PRIQ_IRQEN = 1 << 1;
export const IRQ_CTRL_EVENTQ_IRQEN = 1 << 2;
export const IRQ_CTRL_FIELDS = IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_PRIQ_IRQEN | IRQ_CTRL_EVENTQ_IRQEN;

// SMMU_GERROR and SMMU_GERRORN (§6.3.19, §6.3.20): the same layout.
export const GERROR_CMDQ_ERR = 1 << 0;
export const GERROR_EVENTQ_ABT_ERR = 1 << 2;
export const GERROR_PRIQ_ABT_ERR = 1 << 3;
export const GERROR_MSI_CMDQ_ABT_ERR = 1 << 4;
export const GERROR_MSI_EVENTQ_ABT_ERR = 1 << 5;
export const GERROR_MSI_PRIQ_ABT_ERR = 1 << 6;
export const GERROR_MSI_GERROR_ABT_ERR = 1 << 7;
export const GERROR_SFM_ERR = 1 << 8;
export const GERROR_CMDQP_ERR = 1 << 9;
export const GERROR_DPT_ERR = 1 << 10;

// SMMU_*_IRQ_CFG0/1/2 (§6.3.21–23, 6.3.30–32, 6.3.34–36).
export const IRQ_CFG0_ADDR: Reg64Field = { lsb: 2, msb: 55 };
export const IRQ_CFG2_MEMATTR: RegField = { lsb: 0, width: 4 };
export const IRQ_CFG2_SH: RegField = { lsb: 4, width: 2 };
/** PRIQ_IRQ_CFG2.LO: interrupt only for a PRI message with Last set; applies to wired IRQs too. */
export const PRIQ_IRQ_CFG2_LO = 0x8000_0000;

// SMMU_STRTAB_BASE and SMMU_STRTAB_BASE_CFG (§6.3.24, §6.3.25).
export const STRTAB_BASE_ADDR: Reg64Field = { lsb: 6, msb: 55 };
/** STRTAB_BASE.RA (bit 62) in the high half. */
export const STRTAB_BASE_HI_RA = 1 << 30;
export const STRTAB_BASE_CFG_LOG2SIZE: RegField = { lsb: 0, width: 6 };
export const STRTAB_BASE_CFG_SPLIT: RegField = { lsb: 6, width: 5 };
export const STRTAB_BASE_CFG_FMT: RegField = { lsb: 16, width: 2 };
export const STRTAB_FMT_LINEAR = 0b00;
export const STRTAB_FMT_2LEVEL = 0b01;

// SMMU_CMDQ_BASE, SMMU_EVENTQ_BASE, SMMU_PRIQ_BASE (§6.3.26, §6.3.29, §6.3.33): the same layout.
export const Q_BASE_ADDR: Reg64Field = { lsb: 5, msb: 55 };
export const Q_BASE_LOG2SIZE: RegField = { lsb: 0, width: 5 };
/** Bit 62 in the high half: RA for the Command queue, WA for the Event and PRI queues. */
export const Q_BASE_HI_ALLOC = 1 << 30;

// Queue index registers (§6.3.27, 6.3.28, 6.3.95–98): WR/RD with the wrap bit, bits [19:0].
export const Q_INDEX: RegField = { lsb: 0, width: 20 };
/** EVENTQ_PROD/PRIQ_PROD.OVFLG and EVENTQ_CONS/PRIQ_CONS.OVACKFLG. */
export const Q_OVFLG = 0x8000_0000;
/** CMDQ_CONS.ERR, the Command queue error reason code (§6.3.28, §7.1). */
export const CMDQ_CONS_ERR: RegField = { lsb: 24, width: 7 };
export const CERROR_NONE = 0x00;
export const CERROR_ILL = 0x01;
export const CERROR_ABT = 0x02;
export const CERROR_ATC_INV_SYNC = 0x03;

/** The byte address in a 64-bit register's address field (bits below `lsb` zero). */
export function reg64Address(lo: number, hi: number, f: Reg64Field): number {
  return entryAddress([lo >>> 0, hi >>> 0], f.lsb, f.msb);
}

/** High-half bits of an address field that lie below the output address size (above it: RES0). */
function addrHiMask(oasBits: number): number {
  return 2 ** (oasBits - 32) - 1;
}

/** The register table of an instance with these features (reset values of the ID registers included). */
export function registerTable(
  features: Smmuv3Features,
  options: Smmuv3Options,
  fixed: Smmuv3IdrExtras = DEFAULT_IDR_EXTRAS,
): RegDef[] {
  const f = features;
  const ids = idrValues(f, options, fixed);
  const hyp = fixed.hyp && f.s1 && f.s2;
  const hi = addrHiMask(f.oasBits);
  const defs: RegDef[] = [];
  const reg = (name: string, offset: number, access: RegDef['access'], writable = 0, reset = 0) =>
    defs.push({ name, offset, access, writable: writable >>> 0, reset: reset >>> 0 });

  reg('IDR0', REG.IDR0, 'ro', 0, ids.IDR0);
  reg('IDR1', REG.IDR1, 'ro', 0, ids.IDR1);
  reg('IDR2', REG.IDR2, 'ro', 0, ids.IDR2);
  reg('IDR3', REG.IDR3, 'ro', 0, ids.IDR3);
  reg('IDR4', REG.IDR4, 'ro', 0, ids.IDR4);
  reg('IDR5', REG.IDR5, 'ro', 0, ids.IDR5);
  reg('IIDR', REG.IIDR, 'ro', 0, ids.IIDR);
  reg('AIDR', REG.AIDR, 'ro', 0, ids.AIDR);
  // CR0: PRIQEN only with PRI, ATSCHK only with ATS; VMW and DPT_WALK_EN are RES0 (IDR0.VMW, IDR3.DPT = 0).
  reg(
    'CR0',
    REG.CR0,
    'rw',
    CR0_SMMUEN | CR0_EVENTQEN | CR0_CMDQEN | (f.pri ? CR0_PRIQEN : 0) | (f.ats ? CR0_ATSCHK : 0),
  );
  reg('CR0ACK', REG.CR0ACK, 'ro');
  reg('CR1', REG.CR1, 'rw', CR1_QUEUE_FIELDS | CR1_TABLE_FIELDS);
  // CR2: RECINVSID, and E2H with IDR0.Hyp; PTM needs IDR0.BTM, REC_CFG_ATS IDR0.ATSRECERR (both 0 here).
  reg('CR2', REG.CR2, 'rw', CR2_RECINVSID | (hyp ? CR2_E2H : 0));
  reg('STATUSR', REG.STATUSR, 'ro');
  // GBPA resets with Update 0; the IMPLEMENTATION DEFINED fields reset to "use incoming" (SHCFG = 0b01)
  // and ABORT as configured.
  reg(
    'GBPA',
    REG.GBPA,
    'rw',
    0x801f_3f1f,
    (SHCFG_USE_INCOMING << GBPA_SHCFG.lsb) | (options.gbpaAbort ? GBPA_ABORT : 0),
  );
  // AGBPA: no IMPLEMENTATION DEFINED attributes, so RES0.
  reg('AGBPA', REG.AGBPA, 'rw', 0);
  reg(
    'IRQ_CTRL',
    REG.IRQ_CTRL,
    'rw',
    IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_EVENTQ_IRQEN | (f.pri ? IRQ_CTRL_PRIQ_IRQEN : 0),
  );
  reg('IRQ_CTRLACK', REG.IRQ_CTRLACK, 'ro');
  reg('GERROR', REG.GERROR, 'ro');
  reg(
    'GERRORN',
    REG.GERRORN,
    'rw',
    GERROR_CMDQ_ERR |
      GERROR_EVENTQ_ABT_ERR |
      GERROR_SFM_ERR |
      (f.pri ? GERROR_PRIQ_ABT_ERR : 0) |
      (f.msi ? GERROR_MSI_CMDQ_ABT_ERR | GERROR_MSI_EVENTQ_ABT_ERR | GERROR_MSI_GERROR_ABT_ERR : 0) |
      (f.msi && f.pri ? GERROR_MSI_PRIQ_ABT_ERR : 0),
  );
  const irqCfg = (name: 'GERROR' | 'EVENTQ' | 'PRIQ', base: number) => {
    reg(`${name}_IRQ_CFG0_LO`, base, 'rw', 0xffff_fffc);
    reg(`${name}_IRQ_CFG0_HI`, base + 4, 'rw', hi);
    reg(`${name}_IRQ_CFG1`, base + 8, 'rw', 0xffff_ffff);
  };
  if (f.msi) {
    irqCfg('GERROR', REG.GERROR_IRQ_CFG0);
    reg('GERROR_IRQ_CFG2', REG.GERROR_IRQ_CFG2, 'rw', 0x3f);
  }
  reg('STRTAB_BASE_LO', REG.STRTAB_BASE, 'rw', 0xffff_ffc0);
  reg('STRTAB_BASE_HI', REG.STRTAB_BASE + 4, 'rw', STRTAB_BASE_HI_RA | hi);
  // SPLIT and FMT exist only with a 2-level Stream table (IDR0.ST_LEVEL != 0).
  reg('STRTAB_BASE_CFG', REG.STRTAB_BASE_CFG, 'rw', f.twoLevelStreamTable ? 0x0003_07ff : 0x3f);
  reg('CMDQ_BASE_LO', REG.CMDQ_BASE, 'rw', 0xffff_ffff);
  reg('CMDQ_BASE_HI', REG.CMDQ_BASE + 4, 'rw', Q_BASE_HI_ALLOC | hi);
  reg('CMDQ_PROD', REG.CMDQ_PROD, 'rw', 0x000f_ffff);
  // CMDQ_CONS.ERR takes a written value while CMDQEN == 0 (one of the two permitted behaviours).
  reg('CMDQ_CONS', REG.CMDQ_CONS, 'rw', 0x7f0f_ffff);
  reg('EVENTQ_BASE_LO', REG.EVENTQ_BASE, 'rw', 0xffff_ffff);
  reg('EVENTQ_BASE_HI', REG.EVENTQ_BASE + 4, 'rw', Q_BASE_HI_ALLOC | hi);
  reg('EVENTQ_PROD', REG.EVENTQ_PROD, 'rw', Q_OVFLG | 0x000f_ffff);
  reg('EVENTQ_CONS', REG.EVENTQ_CONS, 'rw', Q_OVFLG | 0x000f_ffff);
  if (f.msi) {
    irqCfg('EVENTQ', REG.EVENTQ_IRQ_CFG0);
    reg('EVENTQ_IRQ_CFG2', REG.EVENTQ_IRQ_CFG2, 'rw', 0x3f);
  }
  if (f.pri) {
    reg('PRIQ_BASE_LO', REG.PRIQ_BASE, 'rw', 0xffff_ffff);
    reg('PRIQ_BASE_HI', REG.PRIQ_BASE + 4, 'rw', Q_BASE_HI_ALLOC | hi);
    reg('PRIQ_PROD', REG.PRIQ_PROD, 'rw', Q_OVFLG | 0x000f_ffff);
    reg('PRIQ_CONS', REG.PRIQ_CONS, 'rw', Q_OVFLG | 0x000f_ffff);
    if (f.msi) irqCfg('PRIQ', REG.PRIQ_IRQ_CFG0);
    // LO is "not affected by whether MSIs are implemented" (§6.3.1 IDR0.MSI); SH and MemAttr are MSI fields.
    reg('PRIQ_IRQ_CFG2', REG.PRIQ_IRQ_CFG2, 'rw', PRIQ_IRQ_CFG2_LO | (f.msi ? 0x3f : 0));
  }
  return defs;
}

/** The register values the Guarded-field rules depend on. */
export interface GuardState {
  readonly cr0: number;
  readonly cr0ack: number;
  readonly irqCtrl: number;
  readonly irqCtrlAck: number;
  readonly gbpa: number;
}

export function guardStateOf(regs: RegisterFile): GuardState {
  return {
    cr0: regs.get(REG.CR0),
    cr0ack: regs.get(REG.CR0ACK),
    irqCtrl: regs.get(REG.IRQ_CTRL),
    irqCtrlAck: regs.get(REG.IRQ_CTRLACK),
    gbpa: regs.get(REG.GBPA),
  };
}

const ALL = 0xffff_ffff;

/**
 * Bits of the register at `offset` software may change in this state (before the table's writable mask).
 * The rule (§6.2 "Guarded"; each register's "Accessing" section): a register Guarded by an enable is RW only
 * while both the enable and its acknowledgement read 0, and read-only otherwise — the write is IGNORED, the
 * only behaviour SMMUv3.2 permits and one SMMUv3.1 permits. Guards:
 * - CR0.SMMUEN: CR1.TABLE_*, CR2, STRTAB_BASE, STRTAB_BASE_CFG;
 * - CR0.EVENTQEN, CMDQEN and PRIQEN together: CR1.QUEUE_*;
 * - CR0.CMDQEN: CMDQ_BASE, CMDQ_CONS; CR0.EVENTQEN: EVENTQ_BASE, EVENTQ_PROD; CR0.PRIQEN: PRIQ_BASE, PRIQ_PROD;
 * - IRQ_CTRL.x_IRQEN (with IRQ_CTRLACK.x_IRQEN): x_IRQ_CFG0/1/2;
 * - GBPA is RO while GBPA.Update == 1.
 * Unguarded registers give all bits.
 */
export function writableNow(offset: number, s: GuardState): number {
  const off = (cr0Bits: number) => ((s.cr0 | s.cr0ack) & cr0Bits) === 0;
  const irqOff = (bit: number) => ((s.irqCtrl | s.irqCtrlAck) & bit) === 0;
  switch (offset) {
    case REG.CR1:
      return (
        (off(CR0_SMMUEN) ? CR1_TABLE_FIELDS : 0) |
        (off(CR0_EVENTQEN | CR0_CMDQEN | CR0_PRIQEN) ? CR1_QUEUE_FIELDS : 0)
      );
    case REG.CR2:
    case REG.STRTAB_BASE:
    case REG.STRTAB_BASE + 4:
    case REG.STRTAB_BASE_CFG:
      return off(CR0_SMMUEN) ? ALL : 0;
    case REG.CMDQ_BASE:
    case REG.CMDQ_BASE + 4:
    case REG.CMDQ_CONS:
      return off(CR0_CMDQEN) ? ALL : 0;
    case REG.EVENTQ_BASE:
    case REG.EVENTQ_BASE + 4:
    case REG.EVENTQ_PROD:
      return off(CR0_EVENTQEN) ? ALL : 0;
    case REG.PRIQ_BASE:
    case REG.PRIQ_BASE + 4:
    case REG.PRIQ_PROD:
      return off(CR0_PRIQEN) ? ALL : 0;
    case REG.GERROR_IRQ_CFG0:
    case REG.GERROR_IRQ_CFG0 + 4:
    case REG.GERROR_IRQ_CFG1:
    case REG.GERROR_IRQ_CFG2:
      return irqOff(IRQ_CTRL_GERROR_IRQEN) ? ALL : 0;
    case REG.EVENTQ_IRQ_CFG0:
    case REG.EVENTQ_IRQ_CFG0 + 4:
    case REG.EVENTQ_IRQ_CFG1:
    case REG.EVENTQ_IRQ_CFG2:
      return irqOff(IRQ_CTRL_EVENTQ_IRQEN) ? ALL : 0;
    case REG.PRIQ_IRQ_CFG0:
    case REG.PRIQ_IRQ_CFG0 + 4:
    case REG.PRIQ_IRQ_CFG1:
    case REG.PRIQ_IRQ_CFG2:
      return irqOff(IRQ_CTRL_PRIQ_IRQEN) ? ALL : 0;
    case REG.GBPA:
      return s.gbpa & GBPA_UPDATE ? 0 : ALL;
    default:
      return ALL;
  }
}

/** Whether a write may change anything in the register at `offset` now (CR1: either of its field groups). */
export function isWritableNow(offset: number, state: GuardState): boolean {
  return writableNow(offset, state) !== 0;
}

/**
 * The value a Guarded register keeps after a software write: the written bits where {@link writableNow}
 * allows them, the old bits elsewhere. A device write hook receives (`written`, `old`) from the RegisterFile;
 * `state` describes the registers before the write (for GBPA itself, `gbpa` is `old`).
 */
export function guardedValue(offset: number, written: number, old: number, state: GuardState): number {
  const mask = writableNow(offset, state);
  return ((old & ~mask) | (written & mask)) >>> 0;
}
