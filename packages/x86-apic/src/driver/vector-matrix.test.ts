import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { VectorMatrix } from './vector-matrix.js';

describe('VectorMatrix', () => {
  it('gives the least loaded allowed CPU its lowest free vector from 0x20, the lower CPU on a tie', () => {
    const m = new VectorMatrix(3);
    expect([m.alloc([0, 1, 2]), m.alloc([0, 1, 2]), m.alloc([0, 1, 2]), m.alloc([0, 1, 2])]).toEqual([
      { cpu: 0, vector: 0x20 },
      { cpu: 1, vector: 0x20 },
      { cpu: 2, vector: 0x20 },
      { cpu: 0, vector: 0x21 },
    ]);
    expect(m.alloc([2, 1])).toEqual({ cpu: 1, vector: 0x21 });
    m.free({ cpu: 0, vector: 0x20 });
    expect(m.load(0)).toBe(1);
    expect(m.alloc([0])).toEqual({ cpu: 0, vector: 0x20 });
  });

  it('ENOSPC once vectors 0x20–0xEB of the allowed CPUs are used; another CPU still has them', () => {
    const m = new VectorMatrix(2);
    for (let i = 0x20; i < 0xec; i++) expect(m.alloc([0]).vector).toBe(i);
    expect(errnoOf(() => m.alloc([0]))).toBe('ENOSPC');
    expect(m.alloc([0, 1])).toEqual({ cpu: 1, vector: 0x20 });
  });

  it('allocates within a priority class: 16 vectors, clipped to the device range', () => {
    const m = new VectorMatrix(1);
    expect(m.allocInClass(0, 5)).toEqual({ cpu: 0, vector: 0x50 });
    expect(m.allocInClass(0, 5)).toEqual({ cpu: 0, vector: 0x51 });
    expect(m.allocInClass(0, 2)).toEqual({ cpu: 0, vector: 0x20 });
    for (let v = 0xe0; v < 0xec; v++) expect(m.allocInClass(0, 14).vector).toBe(v);
    expect(errnoOf(() => m.allocInClass(0, 14))).toBe('ENOSPC');
    for (let v = 0x30; v < 0x40; v++) expect(m.allocInClass(0, 3).vector).toBe(v);
    expect(errnoOf(() => m.allocInClass(0, 3))).toBe('ENOSPC');
  });
});
