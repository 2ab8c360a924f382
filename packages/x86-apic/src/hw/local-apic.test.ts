import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { NO_IRQ, X86Cpu } from './cpu.js';
import { type IpiRequest, LocalApic } from './local-apic.js';
import { APIC, IA32_APIC_BASE, x2apicMsr } from './registers.js';

const SOURCE = { deviceId: 0x10, eventId: 0 };

function apic(id = 3, cpuIndex = 0) {
  let seq = 0;
  const ipis: IpiRequest[] = [];
  const cpu = new X86Cpu(cpuIndex, 'apic', { next: () => ++seq });
  const lapic = new LocalApic(id, cpu, (_from, request) => ipis.push(request));
  return { lapic, cpu, ipis, enable: () => lapic.mmio.write(APIC.SVR, 4, 0x1ff) };
}

function toX2apic(lapic: LocalApic) {
  lapic.writeMsr(IA32_APIC_BASE, lapic.readMsr(IA32_APIC_BASE) | 0x400n);
}

describe('LocalApic registers (SDM §11.4)', () => {
  it('resets enabled in xAPIC mode, software-disabled, the BSP flag on CPU 0 only', () => {
    const { lapic } = apic(3, 0);
    expect(lapic.mode).toBe('xapic');
    expect(lapic.readMsr(IA32_APIC_BASE)).toBe(0xfee0_0900n);
    expect(apic(4, 1).lapic.readMsr(IA32_APIC_BASE)).toBe(0xfee0_0800n);
    expect(lapic.mmio.read(APIC.ID, 4)).toBe(0x0300_0000);
    expect(lapic.mmio.read(APIC.VERSION, 4)).toBe(0x0005_0014);
    expect(lapic.mmio.read(APIC.SVR, 4)).toBe(0xff);
    expect(lapic.mmio.read(APIC.DFR, 4)).toBe(0xffff_ffff);
    expect(lapic.softwareEnabled).toBe(false);
  });

  it('keeps the writable bits: TPR [7:0], SVR [8:0], LDR [31:24], DFR model [31:28]; other offsets RAZ/WI', () => {
    const { lapic } = apic();
    lapic.mmio.write(APIC.TPR, 4, 0x1234);
    lapic.mmio.write(APIC.SVR, 4, 0xffff);
    lapic.mmio.write(APIC.LDR, 4, 0x1234_5678);
    lapic.mmio.write(APIC.DFR, 4, 0x0000_0000);
    lapic.mmio.write(APIC.ID, 4, 0x0900_0000);
    lapic.mmio.write(0x3f0, 4, 1);
    expect(lapic.mmio.read(APIC.TPR, 4)).toBe(0x34);
    expect(lapic.mmio.read(APIC.SVR, 4)).toBe(0x1ff);
    expect(lapic.mmio.read(APIC.LDR, 4)).toBe(0x1200_0000);
    expect(lapic.mmio.read(APIC.DFR, 4)).toBe(0x0fff_ffff);
    expect(lapic.mmio.read(APIC.ID, 4)).toBe(0x0300_0000);
    expect(lapic.mmio.read(0x3f0, 4)).toBe(0);
    expect(lapic.mmio.read(APIC.EOI, 4)).toBe(0);
  });

  it('x2APIC mode: the 32-bit ID and a derived LDR through MSRs 0x800 + offset / 16; the page reads as zero', () => {
    const { lapic } = apic(300);
    expect(lapic.id).toBe(300 & 0xff);
    toX2apic(lapic);
    expect(lapic.mode).toBe('x2apic');
    expect(lapic.id).toBe(300);
    expect(lapic.readMsr(x2apicMsr(APIC.ID))).toBe(300n);
    // Cluster 300 >> 4 = 18 in [31:16], bit 300 & 15 = 12.
    expect(lapic.readMsr(0x80d)).toBe(0x0012_1000n);
    expect(lapic.mmio.read(APIC.ID, 4)).toBe(0);
    lapic.mmio.write(APIC.TPR, 4, 0x50);
    expect(lapic.readMsr(x2apicMsr(APIC.TPR))).toBe(0n);
    lapic.writeMsr(x2apicMsr(APIC.TPR), 0x50n);
    expect(lapic.ppr).toBe(0x50);
  });

  it('#GP (EINVAL) for MSRs outside x2APIC mode, the DFR, LDR and ICR-high MSRs, read-only writes, non-zero EOI', () => {
    const { lapic } = apic();
    expect(errnoOf(() => lapic.readMsr(x2apicMsr(APIC.TPR)))).toBe('EINVAL');
    toX2apic(lapic);
    expect(errnoOf(() => lapic.readMsr(x2apicMsr(APIC.DFR)))).toBe('EINVAL');
    expect(errnoOf(() => lapic.writeMsr(x2apicMsr(APIC.DFR), 0n))).toBe('EINVAL');
    expect(errnoOf(() => lapic.writeMsr(x2apicMsr(APIC.LDR), 1n))).toBe('EINVAL');
    expect(errnoOf(() => lapic.readMsr(0x831))).toBe('EINVAL');
    expect(errnoOf(() => lapic.writeMsr(x2apicMsr(APIC.ID), 1n))).toBe('EINVAL');
    expect(errnoOf(() => lapic.readMsr(x2apicMsr(APIC.EOI)))).toBe('EINVAL');
    expect(errnoOf(() => lapic.writeMsr(x2apicMsr(APIC.EOI), 1n))).toBe('EINVAL');
    expect(errnoOf(() => lapic.readMsr(0x7ff))).toBe('EINVAL');
    expect(errnoOf(() => lapic.readMsr(0x900))).toBe('EINVAL');
    expect(errnoOf(() => lapic.readMsr(0x8ff))).toBe('EINVAL');
    expect(errnoOf(() => lapic.writeMsr(x2apicMsr(APIC.EOI), 0n))).toBeUndefined();
  });

  it('IA32_APIC_BASE: x2APIC only from xAPIC, back only through disabled, which resets the registers', () => {
    const { lapic, enable } = apic();
    enable();
    lapic.mmio.write(APIC.TPR, 4, 0x30);
    expect(errnoOf(() => lapic.writeMsr(IA32_APIC_BASE, 0x400n))).toBe('EINVAL'); // EXTD without EN
    toX2apic(lapic);
    expect(errnoOf(() => lapic.writeMsr(IA32_APIC_BASE, 0x800n))).toBe('EINVAL'); // x2APIC → xAPIC
    lapic.writeMsr(IA32_APIC_BASE, 0n);
    expect(lapic.mode).toBe('disabled');
    expect(errnoOf(() => lapic.writeMsr(IA32_APIC_BASE, 0xc00n))).toBe('EINVAL'); // disabled → x2APIC
    lapic.writeMsr(IA32_APIC_BASE, 0x800n);
    expect(lapic.mode).toBe('xapic');
    expect(lapic.softwareEnabled).toBe(false);
    expect(lapic.mmio.read(APIC.TPR, 4)).toBe(0);
  });
});

describe('LocalApic delivery (SDM §11.8)', () => {
  it('drops fixed interrupts while software-disabled or disabled, and illegal vectors (ESR bit 6)', () => {
    const { lapic, enable } = apic();
    expect(lapic.accept(0x30, 'edge', SOURCE)).toMatchObject({
      kind: 'dropped',
      reason: expect.stringMatching(/SVR bit 8/),
    });
    enable();
    expect(lapic.accept(0x0f, 'edge', SOURCE)).toMatchObject({
      kind: 'dropped',
      reason: expect.stringMatching(/illegal vector/),
    });
    expect(lapic.mmio.read(APIC.ESR, 4)).toBe(0);
    lapic.mmio.write(APIC.ESR, 4, 0);
    expect(lapic.mmio.read(APIC.ESR, 4)).toBe(0x40);
    lapic.mmio.write(APIC.ESR, 4, 0);
    expect(lapic.mmio.read(APIC.ESR, 4)).toBe(0);
    expect(lapic.accept(0x10, 'edge', SOURCE).kind).toBe('delivered');
    lapic.writeMsr(IA32_APIC_BASE, 0n);
    expect(lapic.accept(0x30, 'edge', SOURCE)).toMatchObject({
      kind: 'dropped',
      reason: expect.stringMatching(/EN clear/),
    });
  });

  it('takes a vector into ISR and records it; the next of the same class waits in IRR until EOI', () => {
    const { lapic, cpu, enable } = apic();
    enable();
    expect(lapic.accept(0x31, 'edge', SOURCE)).toMatchObject({
      kind: 'delivered',
      arrival: { seq: 1, cpu: 0, intid: NO_IRQ, priority: 3, controller: 'apic', deviceId: 0x10 },
    });
    expect(lapic.mmio.read(APIC.ISR + 0x10, 4)).toBe(1 << 0x11);
    expect(lapic.ppr).toBe(0x30);
    expect(lapic.accept(0x32, 'edge', { deviceId: 0x11, eventId: 0x32 })).toMatchObject({
      kind: 'pending',
      intid: NO_IRQ,
    });
    expect(lapic.mmio.read(APIC.IRR + 0x10, 4)).toBe(1 << 0x12);
    // A higher class preempts the one in service.
    expect(lapic.accept(0x41, 'edge', SOURCE).kind).toBe('delivered');
    expect(lapic.ppr).toBe(0x40);
    lapic.mmio.write(APIC.EOI, 4, 0); // ends 0x41
    expect(cpu.arrivals).toHaveLength(2);
    lapic.mmio.write(APIC.EOI, 4, 0); // ends 0x31: 0x32 comes in
    expect(cpu.arrivals.map((a) => [a.seq, a.priority, a.deviceId])).toEqual([
      [1, 3, 0x10],
      [2, 4, 0x10],
      [3, 3, 0x11],
    ]);
    expect(lapic.irr.highest()).toBe(-1);
    expect(lapic.isr.highest()).toBe(0x32);
  });

  it('the TPR holds back classes at or below it; lowering it lets them in', () => {
    const { lapic, cpu, enable } = apic();
    enable();
    lapic.mmio.write(APIC.TPR, 4, 0x45);
    expect(lapic.ppr).toBe(0x45);
    expect(lapic.accept(0x4f, 'edge', SOURCE).kind).toBe('pending');
    expect(lapic.accept(0x50, 'edge', SOURCE).kind).toBe('delivered');
    // PPR: the TPR while its class is at least the ISR's, else the ISR class.
    expect(lapic.ppr).toBe(0x50);
    lapic.mmio.write(APIC.TPR, 4, 0x30);
    expect(cpu.arrivals).toHaveLength(1);
    lapic.mmio.write(APIC.EOI, 4, 0);
    expect(cpu.arrivals.map((a) => a.priority)).toEqual([5, 4]);
  });

  it('PPR: the whole TPR while its class is at least the ISR class; read through the PPR register', () => {
    const { lapic, enable } = apic();
    enable();
    lapic.accept(0x31, 'edge', SOURCE);
    lapic.mmio.write(APIC.TPR, 4, 0x35);
    expect(lapic.mmio.read(APIC.PPR, 4)).toBe(0x35);
    lapic.mmio.write(APIC.TPR, 4, 0x25);
    expect(lapic.mmio.read(APIC.PPR, 4)).toBe(0x30);
  });

  it('reads vectors 32n … 32n + 31 of ISR, TMR and IRR at +0x10·n, and nothing past the eighth register', () => {
    const { lapic, enable } = apic();
    enable();
    lapic.mmio.write(APIC.TPR, 4, 0xf0);
    lapic.accept(0x10, 'level', SOURCE);
    lapic.accept(0xff, 'level', SOURCE);
    expect([APIC.IRR, APIC.IRR + 0x70, APIC.TMR, APIC.TMR + 0x70].map((o) => lapic.mmio.read(o, 4))).toEqual([
      0x1_0000, 0x8000_0000, 0x1_0000, 0x8000_0000,
    ]);
    expect(lapic.mmio.read(APIC.IRR + 0x80, 4)).toBe(0);
    lapic.mmio.write(APIC.TPR, 4, 0);
    expect([APIC.ISR, APIC.ISR + 0x70].map((o) => lapic.mmio.read(o, 4))).toEqual([0, 0x8000_0000]);
    lapic.mmio.write(APIC.EOI, 4, 0);
    expect(lapic.mmio.read(APIC.ISR, 4)).toBe(0x1_0000);
    // Disabling the APIC clears all three.
    lapic.writeMsr(IA32_APIC_BASE, 0n);
    expect([lapic.irr.highest(), lapic.isr.highest(), lapic.tmr.highest()]).toEqual([-1, -1, -1]);
  });

  it('switching to x2APIC mode keeps the TPR and SVR', () => {
    const { lapic, enable } = apic();
    enable();
    lapic.mmio.write(APIC.TPR, 4, 0x20);
    toX2apic(lapic);
    expect(lapic.readMsr(x2apicMsr(APIC.TPR))).toBe(0x20n);
    expect(lapic.softwareEnabled).toBe(true);
  });

  it('an EOI from inside the entry lets the next vector in only after the current one is recorded', () => {
    const { lapic, cpu, enable } = apic();
    enable();
    cpu.entry = {
      irqOf: (vector) => vector,
      enter: () => {
        lapic.mmio.write(APIC.EOI, 4, 0);
        return true;
      },
    };
    lapic.mmio.write(APIC.TPR, 4, 0xf0);
    lapic.accept(0x41, 'edge', SOURCE);
    lapic.accept(0x52, 'edge', SOURCE);
    lapic.mmio.write(APIC.TPR, 4, 0);
    expect(cpu.arrivals.map((a) => [a.seq, a.intid])).toEqual([
      [1, 0x52],
      [2, 0x41],
    ]);
  });

  it('level-triggered vectors set TMR, edge ones clear it', () => {
    const { lapic, enable } = apic();
    enable();
    lapic.accept(0x61, 'level', SOURCE);
    expect(lapic.mmio.read(APIC.TMR + 0x30, 4)).toBe(1 << 1);
    lapic.mmio.write(APIC.EOI, 4, 0);
    lapic.accept(0x61, 'edge', SOURCE);
    expect(lapic.mmio.read(APIC.TMR + 0x30, 4)).toBe(0);
  });

  it('runs the kernel entry, which may EOI inside and leave an IRQ pending', () => {
    const { lapic, cpu, enable } = apic();
    enable();
    const entered: number[] = [];
    cpu.entry = {
      irqOf: (vector) => vector + 0x100,
      enter: (vector) => {
        entered.push(vector);
        lapic.mmio.write(APIC.EOI, 4, 0);
        return vector !== 0x33;
      },
    };
    expect(lapic.accept(0x33, 'edge', SOURCE)).toEqual({ kind: 'pending', intid: 0x133, ...SOURCE });
    expect(lapic.accept(0x34, 'edge', SOURCE)).toMatchObject({
      kind: 'delivered',
      arrival: { intid: 0x134 },
    });
    expect(lapic.isr.highest()).toBe(-1);
    expect(entered).toEqual([0x33, 0x34]);
    expect(cpu.drainUnserviced().map((a) => a.intid)).toEqual([0x134]);
    expect(cpu.drainUnserviced()).toEqual([]);
  });

  it('ICR writes send IPIs: xAPIC destination from ICR[63:56], x2APIC one 64-bit MSR', () => {
    const { lapic, ipis } = apic();
    lapic.mmio.write(APIC.ICR_HIGH, 4, 0x05ff_ffff);
    lapic.mmio.write(APIC.ICR_LOW, 4, 0x4031);
    expect(lapic.mmio.read(APIC.ICR_HIGH, 4)).toBe(0x0500_0000);
    expect(lapic.mmio.read(APIC.ICR_LOW, 4)).toBe(0x4031);
    toX2apic(lapic);
    lapic.writeMsr(0x830, (300n << 32n) | 0x4032n);
    expect(lapic.readMsr(0x830)).toBe((300n << 32n) | 0x4032n);
    expect(ipis).toEqual([
      { command: 0x4031, destination: 5 },
      { command: 0x4032, destination: 300 },
    ]);
  });
});
