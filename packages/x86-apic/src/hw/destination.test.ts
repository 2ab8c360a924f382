import type { X86Interrupt } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { X86Cpu } from './cpu.js';
import { matchesDestination, selectTargets } from './destination.js';
import { LocalApic } from './local-apic.js';
import { BROADCAST } from './msi-format.js';
import { APIC, IA32_APIC_BASE } from './registers.js';

function apics(ids: readonly number[], mode: 'xapic' | 'x2apic' = 'xapic') {
  const clock = { next: () => 0 };
  return ids.map((id, n) => {
    const apic = new LocalApic(id, new X86Cpu(n, 'apic', clock), () => {});
    if (mode === 'x2apic') apic.writeMsr(IA32_APIC_BASE, 0xfee0_0c00n);
    else apic.mmio.write(APIC.LDR, 4, (1 << (24 + n)) >>> 0);
    apic.mmio.write(APIC.SVR, 4, 0x1ff);
    return apic;
  });
}

const fixed = (destination: number, destinationMode: 'physical' | 'logical' = 'physical'): X86Interrupt => ({
  vector: 0x30,
  destination,
  destinationMode,
  deliveryMode: 'fixed',
  trigger: 'edge',
});

const ids = (list: LocalApic[]) => list.map((a) => a.initialId);

describe('destinations (SDM §11.6.2)', () => {
  it('physical: the APIC ID; all ones (or 0xFF in xAPIC mode) is every APIC', () => {
    const x = apics([0, 1, 7]);
    expect(ids(selectTargets(x, fixed(7)))).toEqual([7]);
    expect(ids(selectTargets(x, fixed(9)))).toEqual([]);
    expect(ids(selectTargets(x, fixed(0xff)))).toEqual([0, 1, 7]);
    expect(ids(selectTargets(x, fixed(BROADCAST)))).toEqual([0, 1, 7]);
    expect(ids(selectTargets(x, fixed(0x107)))).toEqual([]);
    const x2 = apics([0, 255, 300], 'x2apic');
    expect(ids(selectTargets(x2, fixed(300)))).toEqual([300]);
    expect(ids(selectTargets(x2, fixed(255)))).toEqual([255]);
    expect(ids(selectTargets(x2, fixed(BROADCAST)))).toEqual([0, 255, 300]);
  });

  it('xAPIC flat logical: a bitmap of the LDR bits', () => {
    const x = apics([0, 1, 2]);
    expect(ids(selectTargets(x, fixed(0b101, 'logical')))).toEqual([0, 2]);
    expect(ids(selectTargets(x, fixed(0b1000, 'logical')))).toEqual([]);
  });

  it('xAPIC flat logical uses all eight bits; destinations wider than 8 bits match no xAPIC', () => {
    const x = apics([0, 1, 2, 3, 4, 5]);
    expect(ids(selectTargets(x, fixed(0b11_0000, 'logical')))).toEqual([4, 5]);
    expect(ids(selectTargets(x, fixed(0x101, 'logical')))).toEqual([]);
  });

  it('xAPIC cluster logical: cluster [7:4] equal, member bits [3:0] overlapping', () => {
    const x = apics([0, 1, 2]);
    for (const [n, apic] of x.entries()) {
      apic.mmio.write(APIC.DFR, 4, 0);
      apic.mmio.write(APIC.LDR, 4, [0x1100_0000, 0x1200_0000, 0x2100_0000][n]!);
    }
    expect(ids(selectTargets(x, fixed(0x13, 'logical')))).toEqual([0, 1]);
    expect(ids(selectTargets(x, fixed(0x21, 'logical')))).toEqual([2]);
    expect(ids(selectTargets(x, fixed(0x14, 'logical')))).toEqual([]);
    expect(ids(selectTargets(x, fixed(0xff, 'logical')))).toEqual([0, 1, 2]);
  });

  it('x2APIC logical: cluster ID >> 4 in [31:16], bit ID & 15', () => {
    const x2 = apics([0x20, 0x21, 0x31], 'x2apic');
    expect(ids(selectTargets(x2, fixed(0x0002_0003, 'logical')))).toEqual([0x20, 0x21]);
    expect(ids(selectTargets(x2, fixed(0x0003_0002, 'logical')))).toEqual([0x31]);
    expect(ids(selectTargets(x2, fixed(0x0003_0001, 'logical')))).toEqual([]);
  });

  it('a disabled APIC matches nothing', () => {
    const [a] = apics([0]);
    a!.writeMsr(IA32_APIC_BASE, 0n);
    expect(matchesDestination(a!, fixed(BROADCAST))).toBe(false);
  });

  it('lowest priority: the lowest PPR, then the lowest APIC ID, among the enabled matches', () => {
    const x = apics([0, 1, 2]);
    const lowest = { ...fixed(0b111, 'logical'), deliveryMode: 'lowest-priority' } as const;
    expect(ids(selectTargets(x, lowest))).toEqual([0]);
    x[0]!.mmio.write(APIC.TPR, 4, 0x20);
    x[2]!.mmio.write(APIC.TPR, 4, 0x10);
    expect(ids(selectTargets(x, lowest))).toEqual([1]);
    x[1]!.mmio.write(APIC.TPR, 4, 0x30);
    expect(ids(selectTargets(x, lowest))).toEqual([2]);
    x[2]!.mmio.write(APIC.SVR, 4, 0xff);
    expect(ids(selectTargets(x, lowest))).toEqual([0]);
    // The redirection hint arbitrates in logical mode, not in physical mode.
    expect(ids(selectTargets(x, { ...fixed(0b111, 'logical'), redirectionHint: true }))).toEqual([0]);
    expect(ids(selectTargets(x, { ...fixed(0xff), redirectionHint: true }))).toEqual([0, 1, 2]);
    for (const apic of x) apic.mmio.write(APIC.SVR, 4, 0xff);
    expect(ids(selectTargets(x, lowest))).toEqual([0]);
    expect(ids(selectTargets(x, { ...lowest, destination: 0b1000 }))).toEqual([]);
    // Equal PPRs: the lower APIC ID, wherever it stands.
    const y = apics([3, 1, 2]);
    expect(ids(selectTargets(y, { ...lowest, destination: 0b111 }))).toEqual([1]);
    y[1]!.mmio.write(APIC.TPR, 4, 0x10);
    expect(ids(selectTargets(y, { ...lowest, destination: 0b111 }))).toEqual([2]);
  });
});
