import { MemoryBus, RegisterFile, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { EventInterrupt } from './event-interrupt.js';
import { FR, IR_FR } from './fault-reasons.js';
import {
  ADDRESS_TYPE,
  FaultRecorder,
  type HwTrace,
  interruptFaultInfo,
  type VtdFaultRecord,
} from './fault-recording.js';
import { featuresFromOptions, VtdOptionsSchema } from './options.js';
import {
  decodeFaultRecord,
  EVENT_CTL_IM,
  EVENT_CTL_IP,
  FSTS_ICE,
  FSTS_IQE,
  FSTS_ITE,
  FSTS_PFO,
  FSTS_PPF,
  FSTS_PRO,
  frcdOffset,
  REG,
  VTD_MMIO_SIZE,
  vtdRegisterTable,
} from './regs.js';

function rig(options: Record<string, unknown> = {}, trace?: HwTrace) {
  const features = featuresFromOptions(VtdOptionsSchema.parse(options));
  const regs = new RegisterFile(VTD_MMIO_SIZE, vtdRegisterTable(features));
  const bus = new MemoryBus();
  bus.addRam('msi', 0xfee0_0000, 0x1000);
  const event = new EventInterrupt(
    regs,
    { control: REG.FECTL, data: REG.FEDATA, address: REG.FEADDR, upperAddress: REG.FEUADDR },
    bus,
    bus.counter('vtd'),
    0,
  );
  regs.write(REG.FEADDR, 4, 0xfee0_0000);
  const recorder = new FaultRecorder(regs, features, event, trace);
  return { regs, event, recorder };
}

const unmask = (regs: RegisterFile) => regs.write(REG.FECTL, 4, 0);
const fsts = (regs: RegisterFile) => regs.read(REG.FSTS, 4);
const frcd = (regs: RegisterFile, index: number) =>
  [0, 1, 2, 3].map((w) => regs.read(frcdOffset(index) + 4 * w, 4));
const clearF = (regs: RegisterFile, index: number) => regs.write(frcdOffset(index) + 12, 4, 0x8000_0000);

const fault = (fields: Partial<VtdFaultRecord> = {}): VtdFaultRecord => ({
  sid: 0x10,
  address: 0x1000,
  reason: FR.WRITE_DENIED,
  write: true,
  pasid: undefined,
  execute: false,
  privileged: false,
  ...fields,
});

/**
 * What Linux dmar_fault() does (drivers/iommu/intel/dmar.c): from FSTS.FRI, read each record's high word
 * until one has F clear, clearing F (W1C) as it goes, then write PFO | PPF | PRO to FSTS.
 */
function linuxDrain(regs: RegisterFile, records: number): number[] {
  const sids: number[] = [];
  const status = fsts(regs);
  if ((status & FSTS_PPF) !== 0) {
    let index = (status >>> 8) & 0xff;
    while ((regs.read(frcdOffset(index) + 12, 4) & 0x8000_0000) !== 0) {
      sids.push(regs.read(frcdOffset(index) + 8, 4) & 0xffff);
      clearF(regs, index);
      index = (index + 1) % records;
    }
  }
  regs.write(REG.FSTS, 4, FSTS_PFO | FSTS_PPF | FSTS_PRO);
  return sids;
}

describe('FaultRecorder: record encoding (VT-d §11.4.7.6)', () => {
  it('writes a DMA read fault with a PASID word by word', () => {
    const { regs, recorder } = rig();
    const ok = recorder.record(
      fault({
        sid: 0x0310,
        address: 0x1234_5678_9abc,
        reason: FR.SM_FS_NOT_PRESENT,
        write: false,
        pasid: 0x1_2345,
        execute: true,
        privileged: true,
        addressType: ADDRESS_TYPE.TRANSLATED,
      }),
    );
    expect(ok).toBe(true);
    // FI = address[63:12]; SID 79:64, PRIV 93, EXE 94, PP 95; FR 103:96, PV 123:104, AT 125:124, T1 126, F 127.
    expect(frcd(regs, 0)).toEqual([0x5678_9000, 0x0000_1234, 0xe000_0310, 0xe123_4571]);
    expect(decodeFaultRecord(frcd(regs, 0))).toEqual({
      sid: 0x0310,
      t2: false,
      priv: true,
      exe: true,
      pp: true,
      fr: 0x71,
      pasid: 0x1_2345,
      at: 2,
      t: true,
      f: true,
      fi: 0x1234_5678_9000,
    });
  });

  it('writes a DMA write without a PASID with T1 = 0 and no PASID fields', () => {
    const { regs, recorder } = rig();
    recorder.record(fault({ sid: 0xabcd, address: 0xfff, execute: true, privileged: true }));
    // EXE and PRIV ride on the PASID prefix: without one they read 0. FI of 0xfff is page 0.
    expect(frcd(regs, 0)).toEqual([0, 0, 0x0000_abcd, 0x8000_0005]);
  });

  it("puts an interrupt-remapping fault's interrupt index in FI bits 63:48", () => {
    const { regs, recorder } = rig();
    recorder.record(
      fault({ sid: 0xf0f8, address: interruptFaultInfo(0x1abc), reason: IR_FR.IRTE_NOT_PRESENT }),
    );
    expect(frcd(regs, 0)).toEqual([0, 0x1abc_0000, 0x0000_f0f8, 0x8000_0022]);
    // Bit 63 too: interrupt FI is not limited to the AGAW.
    expect(interruptFaultInfo(0xffff)).toBe(0xffff * 2 ** 48);
    expect(() => interruptFaultInfo(0x1_0000)).toThrow(RangeError);
  });

  it('encodes the T1/T2 request types: page request 01, AtomicOp 11', () => {
    const page = rig({ faultRecords: 2 });
    page.recorder.record(
      fault({ reason: FR.SM_CONTEXT_PRE_CLEAR, write: false, requestKind: 'page-request' }),
    );
    page.recorder.record(fault({ reason: FR.SM_WRITE_DENIED, write: true, requestKind: 'atomic' }));
    // T2 is bit 92 (word 2 bit 28), T1 bit 126 (word 3 bit 30).
    expect(frcd(page.regs, 0).slice(2)).toEqual([0x1000_0010, 0x8000_0047]);
    expect(frcd(page.regs, 1).slice(2)).toEqual([0x1000_0010, 0xc000_0085]);
  });

  it('keeps FI bits at or above the widest AGAW at 0 for DMA faults', () => {
    const { regs, recorder } = rig({ sagaw: [3, 4], mgawBits: 48 });
    // SAGAW 3- and 4-level: N = 48, so bit 50 reads 0 and bit 47 stays.
    recorder.record(fault({ address: 2 ** 50 + 2 ** 47 + 0x5000, reason: FR.ADDRESS_BEYOND_MGAW }));
    expect(frcd(regs, 0).slice(0, 2)).toEqual([0x5000, 0x0000_8000]);
    const wide = rig({ faultRecords: 1 });
    wide.recorder.record(fault({ address: 2 ** 60 + 0x5000, reason: FR.ADDRESS_BEYOND_MGAW }));
    // SAGAW 4- and 5-level: N = 57, so bit 60 reads 0.
    expect(frcd(wide.regs, 0).slice(0, 2)).toEqual([0x5000, 0]);
  });

  it('reports PP, PV, EXE, PRIV as 0 without PASID support and AT as 0 without Device-TLBs', () => {
    const { regs, recorder } = rig({ scalableMode: false, deviceTlb: false });
    recorder.record(
      fault({ pasid: 5, execute: true, privileged: true, addressType: ADDRESS_TYPE.TRANSLATION }),
    );
    expect(frcd(regs, 0)).toEqual([0x1000, 0, 0x0000_0010, 0x8000_0005]);
  });

  it('refuses a value a field cannot hold (EINVAL), recording nothing', () => {
    const { regs, recorder } = rig();
    expect(() => recorder.record(fault({ pasid: 2 ** 20 }))).toThrow(/pasid/);
    expect(() => recorder.record(fault({ address: -4096 }))).toThrow(/fi/);
    expect([fsts(regs), ...frcd(regs, 0)]).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('FaultRecorder: primary fault logging (VT-d §7.2.1)', () => {
  it('fills every record, then overflows: PFO set and the fault dropped', () => {
    const { regs, recorder } = rig({ faultRecords: 4 });
    for (let sid = 1; sid <= 4; sid++) expect(recorder.record(fault({ sid }))).toBe(true);
    expect(fsts(regs)).toBe(FSTS_PPF); // FRI 0: the first pending record
    expect(recorder.record(fault({ sid: 5 }))).toBe(false);
    expect(fsts(regs)).toBe(FSTS_PPF | FSTS_PFO);
    expect(recorder.record(fault({ sid: 6 }))).toBe(false);
    expect([0, 1, 2, 3].map((i) => frcd(regs, i)[2])).toEqual([1, 2, 3, 4]);
    expect(recorder.stats()).toEqual({ faultsRecorded: 4, faultsDropped: 2, faultOverflows: 1 });
  });

  it('records again after software drains as Linux does, at the internal index', () => {
    const { regs, recorder } = rig({ faultRecords: 4 });
    for (let sid = 1; sid <= 5; sid++) recorder.record(fault({ sid }));
    expect(linuxDrain(regs, 4)).toEqual([1, 2, 3, 4]);
    expect(fsts(regs)).toBe(0);
    // The index wrapped to record 0; FRI names it.
    expect(recorder.record(fault({ sid: 7 }))).toBe(true);
    expect(fsts(regs)).toBe(FSTS_PPF);
    expect(frcd(regs, 0)[2]).toBe(7);
  });

  it('points FRI at the first pending record when PPF goes from 0 to 1, and keeps it while PPF is set', () => {
    const { regs, recorder } = rig({ faultRecords: 4 });
    recorder.record(fault({ sid: 1 }));
    recorder.record(fault({ sid: 2 }));
    expect(linuxDrain(regs, 4)).toEqual([1, 2]);
    recorder.record(fault({ sid: 3 }));
    recorder.record(fault({ sid: 4 }));
    expect(fsts(regs)).toBe(FSTS_PPF | (2 << 8));
    expect(linuxDrain(regs, 4)).toEqual([3, 4]);
  });

  it('keeps PPF equal to "some record has F = 1" as software clears F (W1C)', () => {
    const { regs, recorder } = rig({ faultRecords: 2 });
    recorder.record(fault({ sid: 1 }));
    recorder.record(fault({ sid: 2 }));
    regs.write(frcdOffset(0) + 12, 4, 0); // writing 0 clears nothing
    expect(frcd(regs, 0)[3]! >>> 31).toBe(1);
    clearF(regs, 0);
    expect([frcd(regs, 0)[3]! >>> 31, fsts(regs) & FSTS_PPF]).toEqual([0, FSTS_PPF]);
    clearF(regs, 1);
    expect(fsts(regs) & FSTS_PPF).toBe(0);
    // Software cannot write PPF itself.
    recorder.record(fault({ sid: 3 }));
    regs.write(REG.FSTS, 4, FSTS_PPF);
    expect(fsts(regs) & FSTS_PPF).toBe(FSTS_PPF);
  });

  it('drops every fault while PFO is set, even with free records, until software clears PFO', () => {
    const { regs, recorder } = rig();
    recorder.record(fault({ sid: 1 }));
    recorder.record(fault({ sid: 2 }));
    clearF(regs, 0);
    expect(fsts(regs)).toBe(FSTS_PFO);
    expect(recorder.record(fault({ sid: 3 }))).toBe(false);
    regs.write(REG.FSTS, 4, FSTS_PFO);
    expect(recorder.record(fault({ sid: 4 }))).toBe(true);
    expect(frcd(regs, 0)[2]).toBe(4);
  });

  it('resets the internal index to record 0 on resetIndex (TES and IRES both clear)', () => {
    const { regs, recorder } = rig({ faultRecords: 4 });
    recorder.record(fault({ sid: 1 }));
    recorder.record(fault({ sid: 2 }));
    linuxDrain(regs, 4);
    recorder.resetIndex();
    recorder.record(fault({ sid: 3 }));
    expect(fsts(regs)).toBe(FSTS_PPF); // FRI 0
    expect(frcd(regs, 0)[2]).toBe(3);
  });

  it('traces recorded and dropped faults', () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const { recorder } = rig({}, { tracer, source: 'iommu0' });
    recorder.record(fault({ sid: 0x42 }));
    recorder.record(fault({ sid: 0x43 }));
    expect(tracer.records.map((r) => [r.source, r.name])).toEqual([
      ['iommu0', 'fault.record'],
      ['iommu0', 'fault.drop'],
    ]);
    expect(tracer.records[0]!.message).toBe('FRCD[0] WRITE_DENIED sid 0x42 FI 0x1000, PPF set');
  });
});

describe('FaultRecorder: fault event (VT-d §7.3)', () => {
  it('raises the event once per first condition, unmasked', () => {
    const { regs, event, recorder } = rig({ faultRecords: 4 });
    unmask(regs);
    recorder.record(fault({ sid: 1 }));
    expect(event.sent).toBe(1);
    recorder.record(fault({ sid: 2 }));
    recorder.raiseStatus(FSTS_IQE);
    expect([event.sent, fsts(regs) & FSTS_IQE]).toEqual([1, FSTS_IQE]);
    linuxDrain(regs, 4);
    regs.write(REG.FSTS, 4, FSTS_IQE);
    recorder.record(fault({ sid: 3 }));
    expect(event.sent).toBe(2);
  });

  it('raises nothing for a fault while an invalidation error is pending, but still sets PPF and FRI', () => {
    const { regs, event, recorder } = rig({ faultRecords: 4 });
    unmask(regs);
    recorder.raiseStatus(FSTS_ITE);
    expect(event.sent).toBe(1);
    recorder.record(fault());
    expect([event.sent, fsts(regs)]).toEqual([1, FSTS_ITE | FSTS_PPF]);
  });

  it('raises nothing when a fault overflows (PFO)', () => {
    const { regs, event, recorder } = rig();
    recorder.record(fault());
    clearF(regs, 0);
    recorder.record(fault());
    unmask(regs); // sends the event still pending from the first fault
    expect(event.sent).toBe(1);
    recorder.record(fault());
    expect([event.sent, fsts(regs) & FSTS_PFO]).toEqual([1, FSTS_PFO]);
  });

  it('masked: holds the event in IP and sends it when software clears IM', () => {
    const { regs, event, recorder } = rig();
    recorder.record(fault());
    expect([event.sent, regs.read(REG.FECTL, 4)]).toEqual([0, (EVENT_CTL_IM | EVENT_CTL_IP) >>> 0]);
    unmask(regs);
    expect([event.sent, regs.read(REG.FECTL, 4)]).toEqual([1, 0]);
  });

  it('masked: withdraws IP once software has serviced every condition', () => {
    const { regs, event, recorder } = rig();
    recorder.record(fault());
    recorder.raiseStatus(FSTS_ICE);
    clearF(regs, 0);
    expect(event.pending).toBe(true); // ICE is still unserviced
    regs.write(REG.FSTS, 4, FSTS_ICE);
    expect(event.pending).toBe(false);
    unmask(regs);
    expect(event.sent).toBe(0);
    // Clearing the last F alone withdraws it too.
    regs.write(REG.FECTL, 4, EVENT_CTL_IM);
    recorder.record(fault());
    clearF(regs, 0);
    expect(event.pending).toBe(false);
  });

  it('refuses a bit that is not an invalidation error the unit reports', () => {
    const { recorder } = rig();
    expect(() => recorder.raiseStatus(FSTS_PFO)).toThrow(RangeError);
    expect(() => recorder.raiseStatus(FSTS_PPF)).toThrow(RangeError);
    const noDt = rig({ deviceTlb: false, pageRequests: false, pageRequestDrain: false });
    expect(() => noDt.recorder.raiseStatus(FSTS_ICE)).toThrow(RangeError);
    expect(() => noDt.recorder.raiseStatus(FSTS_ITE)).toThrow(RangeError);
    noDt.recorder.raiseStatus(FSTS_IQE);
    expect(fsts(noDt.regs)).toBe(FSTS_IQE);
  });

  it('tells listeners which FSTS bits a software write cleared', () => {
    const { regs, recorder } = rig();
    const cleared: number[] = [];
    recorder.onStatusCleared((bits) => cleared.push(bits));
    recorder.raiseStatus(FSTS_IQE);
    recorder.raiseStatus(FSTS_ITE);
    regs.write(REG.FSTS, 4, FSTS_PFO); // clears nothing
    regs.write(REG.FSTS, 4, FSTS_IQE | FSTS_ITE);
    expect(cleared).toEqual([FSTS_IQE | FSTS_ITE]);
  });
});
