import { type RegAccess, RegisterFile } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { capWords, ecapWords } from './capabilities.js';
import { featuresFromOptions, VtdOptionsSchema } from './options.js';
import { decodeFaultRecord, frcdOffset, REG, type RegName, VTD_MMIO_SIZE, vtdRegisterTable } from './regs.js';

function instance(input: Record<string, unknown> = {}) {
  const features = featuresFromOptions(VtdOptionsSchema.parse(input));
  const table = vtdRegisterTable(features);
  return { features, table, regs: new RegisterFile(VTD_MMIO_SIZE, table) };
}

const writableOf = (table: ReturnType<typeof vtdRegisterTable>, name: string) =>
  table.find((d) => d.name === name)?.writable;
const names = (table: ReturnType<typeof vtdRegisterTable>) => table.map((d) => d.name);

/**
 * VT-d §11.4 register offsets (Linux DMAR_*_REG, QEMU, VirtualBox) with the access and the bits software can
 * write for the default unit: scalable mode, QI, DT, IR with EIM, PRS, PLMR and PHMR, 16-bit domain IDs,
 * host address width 52, MGAW 57, one fault record at 0x220, IOTLB registers at 0xF0.
 */
const SPEC: readonly (readonly [name: string, offset: number, access: RegAccess, writable: number])[] = [
  ['VER', 0x00, 'ro', 0],
  ['CAP_LO', 0x08, 'ro', 0],
  ['CAP_HI', 0x0c, 'ro', 0],
  ['ECAP_LO', 0x10, 'ro', 0],
  ['ECAP_HI', 0x14, 'ro', 0],
  ['GCMD', 0x18, 'wo', 0xc780_0000], // TE SRTP QIE IRE SIRTP CFI; no SFL/EAFL (no AFL), no WBF (no RWBF)
  ['GSTS', 0x1c, 'ro', 0],
  ['RTADDR_LO', 0x20, 'rw', 0xffff_f400], // RTA[31:12], TTM bit 10 (scalable); bit 11 needs ADMS
  ['RTADDR_HI', 0x24, 'rw', 0x000f_ffff], // RTA[51:32]
  ['CCMD_LO', 0x28, 'rw', 0xffff_ffff], // SID DID
  ['CCMD_HI', 0x2c, 'rw', 0xe000_0003], // ICC CIRG FM; CAIG is the hardware's (QEMU: 0xe0000003)
  ['FSTS', 0x34, 'w1c', 0x0000_0071], // PFO IQE ICE ITE
  ['FECTL', 0x38, 'rw', 0x8000_0000], // IM
  ['FEDATA', 0x3c, 'rw', 0x0000_ffff],
  ['FEADDR', 0x40, 'rw', 0xffff_fffc],
  ['FEUADDR', 0x44, 'rw', 0xffff_ffff],
  ['PMEN', 0x64, 'rw', 0x8000_0000], // EPM; PRS is the hardware's
  ['PLMBASE', 0x68, 'rw', 0xfff0_0000],
  ['PLMLIMIT', 0x6c, 'rw', 0xfff0_0000],
  ['PHMBASE_LO', 0x70, 'rw', 0xfff0_0000],
  ['PHMBASE_HI', 0x74, 'rw', 0x000f_ffff],
  ['PHMLIMIT_LO', 0x78, 'rw', 0xfff0_0000],
  ['PHMLIMIT_HI', 0x7c, 'rw', 0x000f_ffff],
  ['IQH_LO', 0x80, 'ro', 0],
  ['IQH_HI', 0x84, 'ro', 0],
  ['IQT_LO', 0x88, 'rw', 0x0007_fff0], // QT[18:4] (QEMU: 0x7fff0)
  ['IQT_HI', 0x8c, 'ro', 0],
  ['IQA_LO', 0x90, 'rw', 0xffff_f807], // IQA[31:12] DW QS (QEMU: 0xfffff807)
  ['IQA_HI', 0x94, 'rw', 0x000f_ffff],
  ['ICS', 0x9c, 'w1c', 0x0000_0001], // IWC
  ['IECTL', 0xa0, 'rw', 0x8000_0000],
  ['IEDATA', 0xa4, 'rw', 0x0000_ffff],
  ['IEADDR', 0xa8, 'rw', 0xffff_fffc],
  ['IEUADDR', 0xac, 'rw', 0xffff_ffff],
  ['IQERCD_LO', 0xb0, 'ro', 0],
  ['IQERCD_HI', 0xb4, 'ro', 0],
  ['IRTA_LO', 0xb8, 'rw', 0xffff_f80f], // IRTA[31:12] EIME S (QEMU: 0xfffff80f)
  ['IRTA_HI', 0xbc, 'rw', 0x000f_ffff],
  ['PQH_LO', 0xc0, 'rw', 0x0007_ffe0], // PQH[18:5]
  ['PQH_HI', 0xc4, 'ro', 0],
  ['PQT_LO', 0xc8, 'rw', 0x0007_ffe0],
  ['PQT_HI', 0xcc, 'ro', 0],
  ['PQA_LO', 0xd0, 'rw', 0xffff_f007], // PQA[31:12] PQS
  ['PQA_HI', 0xd4, 'rw', 0x000f_ffff],
  ['PRS', 0xdc, 'w1c', 0x0000_0003], // PPR PRO
  ['PECTL', 0xe0, 'rw', 0x8000_0000],
  ['PEDATA', 0xe4, 'rw', 0x0000_ffff],
  ['PEADDR', 0xe8, 'rw', 0xffff_fffc],
  ['PEUADDR', 0xec, 'rw', 0xffff_ffff],
  ['IVA_LO', 0xf0, 'wo', 0xffff_f07f], // ADDR[31:12] IH AM
  ['IVA_HI', 0xf4, 'wo', 0x01ff_ffff], // ADDR[56:32]: below MGAW
  ['IOTLB_LO', 0xf8, 'ro', 0],
  ['IOTLB_HI', 0xfc, 'rw', 0xb003_ffff], // IVT IIRG DR DW DID (QEMU: 0xb003ffff)
  ['FRCD0_0', 0x220, 'ro', 0],
  ['FRCD0_1', 0x224, 'ro', 0],
  ['FRCD0_2', 0x228, 'ro', 0],
  ['FRCD0_3', 0x22c, 'w1c', 0x8000_0000], // F
];

describe('REG', () => {
  it('has the spec offsets', () => {
    expect(REG).toEqual({
      VER: 0x00,
      CAP: 0x08,
      ECAP: 0x10,
      GCMD: 0x18,
      GSTS: 0x1c,
      RTADDR: 0x20,
      CCMD: 0x28,
      FSTS: 0x34,
      FECTL: 0x38,
      FEDATA: 0x3c,
      FEADDR: 0x40,
      FEUADDR: 0x44,
      AFLOG: 0x58,
      PMEN: 0x64,
      PLMBASE: 0x68,
      PLMLIMIT: 0x6c,
      PHMBASE: 0x70,
      PHMLIMIT: 0x78,
      IQH: 0x80,
      IQT: 0x88,
      IQA: 0x90,
      ICS: 0x9c,
      IECTL: 0xa0,
      IEDATA: 0xa4,
      IEADDR: 0xa8,
      IEUADDR: 0xac,
      IQERCD: 0xb0,
      IRTA: 0xb8,
      PQH: 0xc0,
      PQT: 0xc8,
      PQA: 0xd0,
      PRS: 0xdc,
      PECTL: 0xe0,
      PEDATA: 0xe4,
      PEADDR: 0xe8,
      PEUADDR: 0xec,
      IVA: 0xf0,
      IOTLB: 0xf8,
      MTRRCAP: 0x100,
      MTRRDEF: 0x108,
      MTRR_FIX64K_00000: 0x120,
      MTRR_FIX16K_80000: 0x128,
      MTRR_FIX16K_A0000: 0x130,
      MTRR_FIX4K_C0000: 0x138,
      MTRR_FIX4K_C8000: 0x140,
      MTRR_FIX4K_D0000: 0x148,
      MTRR_FIX4K_D8000: 0x150,
      MTRR_FIX4K_E0000: 0x158,
      MTRR_FIX4K_E8000: 0x160,
      MTRR_FIX4K_F0000: 0x168,
      MTRR_FIX4K_F8000: 0x170,
      MTRR_PHYSBASE0: 0x180,
      MTRR_PHYSMASK0: 0x188,
      MTRR_PHYSBASE1: 0x190,
      MTRR_PHYSMASK1: 0x198,
      MTRR_PHYSBASE2: 0x1a0,
      MTRR_PHYSMASK2: 0x1a8,
      MTRR_PHYSBASE3: 0x1b0,
      MTRR_PHYSMASK3: 0x1b8,
      MTRR_PHYSBASE4: 0x1c0,
      MTRR_PHYSMASK4: 0x1c8,
      MTRR_PHYSBASE5: 0x1d0,
      MTRR_PHYSMASK5: 0x1d8,
      MTRR_PHYSBASE6: 0x1e0,
      MTRR_PHYSMASK6: 0x1e8,
      MTRR_PHYSBASE7: 0x1f0,
      MTRR_PHYSMASK7: 0x1f8,
      MTRR_PHYSBASE8: 0x200,
      MTRR_PHYSMASK8: 0x208,
      MTRR_PHYSBASE9: 0x210,
      MTRR_PHYSMASK9: 0x218,
      FRCD: 0x220,
      VCMD: 0xe00,
      VCRSP: 0xe10,
      VCCAP: 0xe30,
    });
  });

  it('spaces fault records 16 bytes apart', () => {
    expect([frcdOffset(0), frcdOffset(1), frcdOffset(255)]).toEqual([0x220, 0x230, 0x1210]);
  });
});

describe('vtdRegisterTable', () => {
  const { table, features } = instance();

  it('has every register at its spec offset with its access type and writable bits', () => {
    expect(table.map((d) => [d.name, d.offset, d.access, d.writable])).toEqual(SPEC);
  });

  it('names offsets as REG does', () => {
    for (const { name, offset } of table) {
      const frcd = /^FRCD(\d+)_(\d)$/.exec(name);
      if (frcd) {
        expect(offset, name).toBe(frcdOffset(Number(frcd[1])) + 4 * Number(frcd[2]));
        continue;
      }
      const base = name.replace(/_(LO|HI)$/, '') as RegName;
      expect(REG[base] + (name.endsWith('_HI') ? 4 : 0), name).toBe(offset);
    }
  });

  it('resets VER, CAP and ECAP to what the unit implements and the event controls masked', () => {
    const cap = capWords(features);
    const ecap = ecapWords(features);
    const resets = Object.fromEntries(table.map((d) => [d.name, d.reset]));
    expect(resets).toEqual({
      ...Object.fromEntries(SPEC.map(([n]) => [n, 0])),
      VER: 0x60, // MAX 6 in bits 7:4
      CAP_LO: cap.lo,
      CAP_HI: cap.hi,
      ECAP_LO: ecap.lo,
      ECAP_HI: ecap.hi,
      FECTL: 0x8000_0000,
      IECTL: 0x8000_0000,
      PECTL: 0x8000_0000,
    });
    expect(instance({ version: { major: 1, minor: 2 } }).table[0]).toMatchObject({
      name: 'VER',
      reset: 0x12,
    });
  });

  it('reads reserved bits as 0 after all-ones writes', () => {
    const { regs } = instance();
    for (const [name, offset, access, writable] of SPEC) {
      if (access !== 'rw') continue;
      regs.write(offset, 4, 0);
      regs.write(offset, 4, 0xffff_ffff);
      expect(regs.read(offset, 4), name).toBe(writable);
    }
  });

  it('ignores writes to read-only registers and bits', () => {
    const { regs } = instance();
    const capLo = regs.read(REG.CAP, 4);
    regs.write(REG.CAP, 4, 0);
    regs.write(REG.GSTS, 4, 0xffff_ffff);
    expect([regs.read(REG.CAP, 4), regs.read(REG.GSTS, 4)]).toEqual([capLo, 0]);
    // IQH is the hardware's head; FECTL.IP (bit 30) is the hardware's pending bit.
    regs.set(REG.IQH, 0x40);
    regs.write(REG.IQH, 4, 0);
    regs.set(REG.FECTL, 0xc000_0000);
    regs.write(REG.FECTL, 4, 0);
    expect([regs.read(REG.IQH, 4), regs.read(REG.FECTL, 4)]).toEqual([0x40, 0x4000_0000]);
  });

  it('reads write-only GCMD and IVA as 0 and hands their writes to the hooks', () => {
    const { regs } = instance();
    const seen: number[] = [];
    regs.onWrite(REG.GCMD, (value) => seen.push(value));
    regs.write(REG.GCMD, 4, 0xffff_ffff);
    regs.write(REG.IVA, 4, 0x1234_5041);
    expect([regs.read(REG.GCMD, 4), regs.read(REG.IVA, 4)]).toEqual([0, 0]);
    expect(seen).toEqual([0xc780_0000]);
    expect(regs.get(REG.IVA)).toBe(0x1234_5041);
  });

  it('clears only the W1C status bits of FSTS, ICS and PRS', () => {
    const { regs } = instance();
    // FRI 3, ITE, ICE, IQE, PPF, PFO.
    regs.set(REG.FSTS, 0x0000_0373);
    regs.write(REG.FSTS, 4, 0x0000_0010); // IQE alone
    expect(regs.read(REG.FSTS, 4)).toBe(0x0000_0363);
    regs.write(REG.FSTS, 1, 0xff); // the low byte: PFO, ICE, ITE; PPF stays
    expect(regs.read(REG.FSTS, 4)).toBe(0x0000_0302);
    regs.write(REG.FSTS, 4, 0xffff_ffff); // PPF and FRI are the hardware's
    expect(regs.read(REG.FSTS, 4)).toBe(0x0000_0302);
    regs.set(REG.ICS, 1);
    regs.write(REG.ICS, 4, 1);
    regs.set(REG.PRS, 3);
    regs.write(REG.PRS, 4, 2);
    expect([regs.read(REG.ICS, 4), regs.read(REG.PRS, 4)]).toEqual([0, 1]);
  });

  it('clears a fault record by its F bit alone', () => {
    const { regs } = instance();
    const at = frcdOffset(0);
    regs.set(at + 8, 0x8000_0100); // PP, SID 0x0100
    regs.set(at + 12, 0xc000_0006); // F, T, FR 6
    regs.write(at + 8, 4, 0xffff_ffff);
    regs.write(at + 12, 4, 0x7fff_ffff);
    expect([regs.read(at + 8, 4), regs.read(at + 12, 4)]).toEqual([0x8000_0100, 0xc000_0006]);
    regs.write(at + 12, 4, 0x8000_0000);
    expect(regs.read(at + 12, 4)).toBe(0x4000_0006);
  });

  it('decodes a fault record from its four words', () => {
    // FI 0x7_dead_b000; PP EXE PRIV T2 with SID 0x0310; F T, AT 01, PASID 0x12345, FR 5.
    expect(decodeFaultRecord([0xdead_b000, 0x0000_0007, 0xf000_0310, 0xd123_4505])).toEqual({
      sid: 0x0310,
      t2: true,
      priv: true,
      exe: true,
      pp: true,
      fr: 5,
      pasid: 0x12345,
      at: 1,
      t: true,
      f: true,
      fi: 0x7_dead_b000,
    });
    expect(decodeFaultRecord([0, 0, 0x0000_ffff, 0x8000_0000])).toMatchObject({
      sid: 0xffff,
      pp: false,
      exe: false,
      priv: false,
      t2: false,
      f: true,
      t: false,
    });
  });
});

describe('vtdRegisterTable, by feature', () => {
  it('leaves out the invalidation queue, interrupt remapping and page request registers without them', () => {
    const { table } = instance({
      scalableMode: false,
      queuedInvalidation: false,
      deviceTlb: false,
      interruptRemapping: false,
      extendedInterruptMode: false,
      postedInterrupts: false,
    });
    expect(names(table).filter((n) => /^(IQ|IC|IE|IRTA|PQ|PRS|PE)/.test(n))).toEqual([]);
    expect(writableOf(table, 'GCMD')).toBe(0xc000_0000); // TE SRTP
    expect(writableOf(table, 'FSTS')).toBe(0x0000_0001); // PFO
    expect(writableOf(table, 'RTADDR_LO')).toBe(0xffff_f000); // no TTM
    expect(writableOf(table, 'FEUADDR')).toBe(0);
  });

  it('has the page request registers only with page requests', () => {
    const without = instance({ pageRequests: false, pageRequestDrain: false }).table;
    expect(names(without).filter((n) => /^(PQ|PRS|PE)/.test(n))).toEqual([]);
    expect(names(without)).toContain('IRTA_LO');
  });

  it('has the interrupt remapping table address only with interrupt remapping', () => {
    const { table } = instance({
      interruptRemapping: false,
      extendedInterruptMode: false,
      postedInterrupts: false,
    });
    expect(names(table).filter((n) => n.startsWith('IRTA'))).toEqual([]);
    expect(writableOf(table, 'GCMD')).toBe(0xc400_0000); // TE SRTP QIE
    expect(names(table)).toContain('IQA_LO');
  });

  it('has PMEN with either protected region and each region only with its capability', () => {
    const low = names(instance({ protectedHighMemory: false }).table);
    const high = names(instance({ protectedLowMemory: false }).table);
    const none = names(instance({ protectedLowMemory: false, protectedHighMemory: false }).table);
    const pmr = (list: string[]) => list.filter((n) => /^(PMEN|PLM|PHM)/.test(n));
    expect(pmr(low)).toEqual(['PMEN', 'PLMBASE', 'PLMLIMIT']);
    expect(pmr(high)).toEqual(['PMEN', 'PHMBASE_LO', 'PHMBASE_HI', 'PHMLIMIT_LO', 'PHMLIMIT_HI']);
    expect(pmr(none)).toEqual([]);
  });

  it('never has AFLOG, the MTRRs or the virtual command registers', () => {
    const { table } = instance({ faultRecords: 256 });
    const offsets = new Set(table.map((d) => d.offset));
    expect(offsets.has(REG.AFLOG)).toBe(false);
    expect(offsets.has(REG.MTRRCAP)).toBe(false);
    expect(names(table).some((n) => n.startsWith('MTRR') || n.startsWith('VC'))).toBe(false);
  });

  it('has as many fault records as CAP.NFR says, all inside the window', () => {
    const three = instance({ faultRecords: 3 }).table.filter((d) => d.name.startsWith('FRCD'));
    expect(three.map((d) => [d.name, d.offset])).toEqual(
      [0, 1, 2].flatMap((i) => [0, 1, 2, 3].map((w) => [`FRCD${i}_${w}`, 0x220 + 16 * i + 4 * w])),
    );
    const { regs } = instance({ faultRecords: 256 });
    expect(regs.definitionAt(0x121c)).toMatchObject({ name: 'FRCD255_3', access: 'w1c' });
    expect(VTD_MMIO_SIZE).toBe(0x2000);
  });

  it('sizes domain-ID and address fields by the unit', () => {
    const { table } = instance({
      domainIdBits: 8,
      hostAddressBits: 39,
      mgawBits: 48,
      sagaw: [4],
      firstStage5Level: false,
    });
    expect(writableOf(table, 'CCMD_LO')).toBe(0xffff_00ff);
    expect(writableOf(table, 'IOTLB_HI')).toBe(0xb003_00ff);
    for (const n of ['RTADDR_HI', 'IQA_HI', 'IRTA_HI', 'PQA_HI', 'PHMBASE_HI', 'PHMLIMIT_HI'])
      expect(writableOf(table, n), n).toBe(0x7f);
    expect(writableOf(table, 'IVA_HI')).toBe(0xffff);
    const hostAddress32 = instance({ hostAddressBits: 32 }).table.find((d) => d.name === 'RTADDR_HI');
    expect(hostAddress32).toMatchObject({ access: 'ro', writable: 0 });
  });

  it('implements the bits of optional features only with them', () => {
    const plain = instance({ drainReads: false, drainWrites: false, extendedInterruptMode: false }).table;
    expect(writableOf(plain, 'IOTLB_HI')).toBe(0xb000_ffff);
    expect(writableOf(plain, 'IRTA_LO')).toBe(0xffff_f00f);
    for (const n of ['FEUADDR', 'IEUADDR', 'PEUADDR']) expect(writableOf(plain, n), n).toBe(0);
    const extra = instance({ writeBufferFlush: true, abortDmaMode: true }).table;
    expect(writableOf(extra, 'GCMD')).toBe(0xcf80_0000); // with WBF
    expect(writableOf(extra, 'RTADDR_LO')).toBe(0xffff_fc00); // TTM 11:10
    const abortOnly = instance({ scalableMode: false, abortDmaMode: true }).table;
    expect(writableOf(abortOnly, 'RTADDR_LO')).toBe(0xffff_fc00);
    expect(writableOf(abortOnly, 'IQA_LO')).toBe(0xffff_f007); // no DW in legacy mode
    const noDevTlb = instance({ deviceTlb: false, pageRequests: false, pageRequestDrain: false }).table;
    expect(writableOf(noDevTlb, 'FSTS')).toBe(0x0000_0011); // PFO IQE
  });
});
