import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import { PasidAllocator } from '../iommu/pasid-allocator.js';
import { VpasidTable } from './vpasid.js';

describe('VpasidTable: a vDEVICE’s guest PASIDs', () => {
  it('gives each guest PASID a physical one from the system’s space, and translates both ways', () => {
    const system = new PasidAllocator();
    system.alloc(); // the host's own PASID 1 (an SVA bind)
    const a = new VpasidTable(system, 8);
    const b = new VpasidTable(system, 8);
    expect(a.map(1, false)).toBe(2);
    // Another guest's PASID 1 is another physical PASID.
    expect(b.map(1, false)).toBe(3);
    expect([a.toPhysical(1), b.toPhysical(1)]).toEqual([2, 3]);
    expect([a.toVirtual(2), a.toVirtual(3), b.toVirtual(3)]).toEqual([1, undefined, 1]);
    expect(a.physicalPasids).toEqual([2]);
  });

  it('identity keeps the guest’s number when the host has it free, EBUSY when not', () => {
    const system = new PasidAllocator();
    system.alloc();
    const table = new VpasidTable(system, 8);
    expect(table.map(7, true)).toBe(7);
    expect(errnoOf(() => table.map(1, true))).toBe('EBUSY');
    expect(table.physicalPasids).toEqual([7]);
  });

  it('refuses PASIDs outside the device’s width, twice-mapped ones, and unmapped look-ups', () => {
    const table = new VpasidTable(new PasidAllocator(), 4);
    for (const bad of [0, 16, -1, 1.5]) expect(errnoOf(() => table.map(bad, false))).toBe('EINVAL');
    table.map(15, false);
    expect(errnoOf(() => table.map(15, false))).toBe('EEXIST');
    expect(errnoOf(() => table.toPhysical(3))).toBe('ENOENT');
    expect(errnoOf(() => table.unmap(3))).toBe('ENOENT');
  });

  it('a physical PASID must fit the device: ENOSPC when the system’s small ones are gone', () => {
    const system = new PasidAllocator();
    for (let i = 1; i < 4; i++) system.alloc();
    const table = new VpasidTable(system, 2);
    expect(errnoOf(() => table.map(1, false))).toBe('ENOSPC');
  });

  it('unmap and clear give the physical PASIDs back to the system', () => {
    const system = new PasidAllocator();
    const table = new VpasidTable(system, 8);
    table.map(1, false);
    table.map(2, false);
    table.map(9, true);
    table.unmap(2);
    expect(system.allocated).toBe(2);
    expect(table.toVirtual(2)).toBeUndefined();
    table.clear();
    expect(system.allocated).toBe(0);
    expect(table.physicalPasids).toEqual([]);
  });
});

describe('PasidAllocator.reserve', () => {
  it('takes exactly the PASID asked for; EBUSY when taken, EINVAL outside 1..limit−1', () => {
    const pasids = new PasidAllocator(16);
    expect(pasids.reserve(15)).toBe(15);
    expect(pasids.isAllocated(15)).toBe(true);
    expect(errnoOf(() => pasids.reserve(15))).toBe('EBUSY');
    for (const bad of [0, 16, 2.5]) expect(errnoOf(() => pasids.reserve(bad))).toBe('EINVAL');
    expect(pasids.alloc()).toBe(1);
  });
});
