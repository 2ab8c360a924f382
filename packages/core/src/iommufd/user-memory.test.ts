/** User memory (user-memory.ts): host memory a caller maps, and the check of a caller's memory argument. */
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import { hostMemory, userMemoryArg } from './user-memory.js';

describe('hostMemory', () => {
  it('byte n lives at base + n and the rest of the range is contiguous with it', () => {
    const memory = hostMemory(0x8000_0000n, 0x3000n);
    expect(memory.length).toBe(0x3000n);
    expect(memory.physAt(0n)).toBe(0x8000_0000n);
    expect(memory.physAt(0x1234n)).toBe(0x8000_1234n);
    expect(memory.contiguousFrom(0n)).toBe(0x3000n);
    expect(memory.contiguousFrom(0x1000n)).toBe(0x2000n);
    expect(memory.description).toContain('0x80000000');
  });

  it('empty or negative lengths and bases outside 64 bits are refused', () => {
    expect(errnoOf(() => hostMemory(0x8000_0000n, 0n))).toBe('EINVAL');
    expect(errnoOf(() => hostMemory(0x8000_0000n, -0x1000n))).toBe('EINVAL');
    expect(errnoOf(() => hostMemory(-1n, 0x1000n))).toBe('EINVAL');
  });
});

describe('userMemoryArg', () => {
  it('accepts a UserMemory as it is', () => {
    const memory = hostMemory(0x8000_0000n, 0x1000n);
    expect(userMemoryArg(memory)).toBe(memory);
  });

  it.each([
    ['null', null],
    ['a number', 5],
    ['a number length', { ...hostMemory(0x8000_0000n, 0x1000n), length: 0x1000 }],
    ['an empty length', { ...hostMemory(0x8000_0000n, 0x1000n), length: 0n }],
    ['no physAt', { ...hostMemory(0x8000_0000n, 0x1000n), physAt: undefined }],
    ['no contiguousFrom', { ...hostMemory(0x8000_0000n, 0x1000n), contiguousFrom: 1 }],
  ])('refuses %s (EINVAL)', (_, value) => {
    expect(errnoOf(() => userMemoryArg(value))).toBe('EINVAL');
  });
});
