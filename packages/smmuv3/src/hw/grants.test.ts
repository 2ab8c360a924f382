import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { ALL_GRANTS, grantedTo, grantsAllow, inputAccess, stageGrants } from './grants.js';

const RW = PERM_READ | PERM_WRITE;

describe('stage grants', () => {
  it('answer each privilege level with its own permissions', () => {
    const grants = stageGrants(PERM_READ | PERM_EXEC, RW);
    expect(grantedTo(grants, PERM_READ | PERM_PRIV)).toBe(PERM_READ | PERM_EXEC);
    expect(grantedTo(grants, PERM_WRITE | PERM_PRIV)).toBe(PERM_READ | PERM_EXEC);
    expect(grantedTo(grants, PERM_READ | PERM_EXEC)).toBe(RW);
    expect(grantedTo(stageGrants(RW | PERM_PRIV, 0), PERM_PRIV)).toBe(RW);
    expect(grantedTo(ALL_GRANTS, 0)).toBe(RW | PERM_EXEC);
  });

  it('allow an access only with every bit it needs', () => {
    const grants = stageGrants(PERM_READ | PERM_EXEC, RW);
    expect(grantsAllow(grants, PERM_READ | PERM_EXEC | PERM_PRIV)).toBe(true);
    expect(grantsAllow(grants, PERM_WRITE | PERM_PRIV)).toBe(false);
    expect(grantsAllow(grants, PERM_READ | PERM_EXEC)).toBe(false);
    expect(grantsAllow(grants, PERM_WRITE)).toBe(true);
  });

  it('a write is Data even when marked Instruction; a read keeps its mark (§13.1.2)', () => {
    expect(inputAccess(PERM_WRITE | PERM_EXEC | PERM_PRIV)).toBe(PERM_WRITE | PERM_PRIV);
    expect(inputAccess(PERM_READ | PERM_EXEC)).toBe(PERM_READ | PERM_EXEC);
  });
});
