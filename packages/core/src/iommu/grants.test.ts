import { describe, expect, it } from 'vitest';
import { ALL_GRANTS, grantedTo, stageGrants } from './grants.js';
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from './translation.js';

const RW = PERM_READ | PERM_WRITE;

describe('stage grants', () => {
  it('keep privileged rights in bits 3:0 and unprivileged ones in bits 7:4, PERM_PRIV dropped', () => {
    expect(stageGrants(PERM_READ | PERM_EXEC, RW)).toBe(0x35);
    expect(stageGrants(RW | PERM_PRIV, PERM_PRIV)).toBe(0x03);
    expect(ALL_GRANTS).toBe(0x77);
  });

  it('give each access the rights of its privilege level', () => {
    const grants = stageGrants(PERM_READ | PERM_EXEC, RW);
    expect(grantedTo(grants, PERM_READ | PERM_PRIV)).toBe(PERM_READ | PERM_EXEC);
    expect(grantedTo(grants, PERM_WRITE | PERM_PRIV)).toBe(PERM_READ | PERM_EXEC);
    expect(grantedTo(grants, PERM_READ | PERM_EXEC)).toBe(RW);
    expect(grantedTo(ALL_GRANTS, 0)).toBe(RW | PERM_EXEC);
  });
});
