import { describe, expect, it } from 'vitest';
import { FIRST_DYNAMIC_IRQ, IrqNumbers } from './irq-numbers.js';

describe('IrqNumbers', () => {
  it('hands out consecutive ranges from 24, the lowest free range that fits', () => {
    const n = new IrqNumbers();
    expect(FIRST_DYNAMIC_IRQ).toBe(24);
    expect(n.alloc(2)).toBe(24);
    expect(n.alloc(3)).toBe(26);
    expect(n.alloc(1)).toBe(29);
    n.free(24, 2);
    expect(n.alloc(3)).toBe(30);
    expect(n.alloc(2)).toBe(24);
    n.free(26, 3);
    expect(n.alloc(1)).toBe(26);
  });
});
