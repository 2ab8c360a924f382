import { NO_PASID, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, stageGrants } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { atsCompletionGrant, grantsAllow, inputAccess } from './grants.js';

const RW = PERM_READ | PERM_WRITE;

describe('stage grants', () => {
  it('allow an access only with every bit it needs', () => {
    const grants = stageGrants(PERM_READ | PERM_EXEC, RW);
    expect(grantsAllow(grants, PERM_READ | PERM_EXEC | PERM_PRIV)).toBe(true);
    expect(grantsAllow(grants, PERM_WRITE | PERM_PRIV)).toBe(false);
    expect(grantsAllow(grants, PERM_READ | PERM_EXEC)).toBe(false);
    expect(grantsAllow(grants, PERM_WRITE)).toBe(true);
  });

  it('an instruction fetch needs X alone: execute-only grants allow it and no data access (§13.7.1)', () => {
    const xo = stageGrants(PERM_EXEC, PERM_EXEC);
    expect(grantsAllow(xo, PERM_READ | PERM_EXEC)).toBe(true);
    expect(grantsAllow(xo, PERM_READ | PERM_EXEC | PERM_PRIV)).toBe(true);
    expect(grantsAllow(xo, PERM_READ)).toBe(false);
    expect(grantsAllow(xo, PERM_WRITE)).toBe(false);
    expect(grantsAllow(stageGrants(RW, PERM_EXEC), PERM_READ | PERM_EXEC | PERM_PRIV)).toBe(false);
  });

  it('a write is Data even when marked Instruction; a read keeps its mark (§13.1.2)', () => {
    expect(inputAccess(PERM_WRITE | PERM_EXEC | PERM_PRIV, 1)).toBe(PERM_WRITE | PERM_PRIV);
    expect(inputAccess(PERM_READ | PERM_EXEC, 1)).toBe(PERM_READ | PERM_EXEC);
  });

  it('without a SubstreamID a transaction is Data, Unprivileged (§13.7)', () => {
    expect(inputAccess(PERM_READ | PERM_EXEC | PERM_PRIV, NO_PASID)).toBe(PERM_READ);
    expect(inputAccess(PERM_WRITE | PERM_EXEC | PERM_PRIV, NO_PASID)).toBe(PERM_WRITE);
    expect(inputAccess(PERM_READ | PERM_EXEC | PERM_PRIV, 0)).toBe(PERM_READ | PERM_EXEC | PERM_PRIV);
  });

  it('an ATS completion grants R, W only when asked (NW == 0), Exe only when asked and with R (§13.7.1)', () => {
    const RWX = RW | PERM_EXEC;
    expect(atsCompletionGrant(RWX, PERM_READ)).toBe(PERM_READ);
    expect(atsCompletionGrant(RWX, PERM_WRITE)).toBe(RW);
    expect(atsCompletionGrant(PERM_READ, PERM_WRITE)).toBe(PERM_READ);
    expect(atsCompletionGrant(RWX, PERM_READ | PERM_EXEC)).toBe(PERM_READ | PERM_EXEC);
    expect(atsCompletionGrant(PERM_READ, PERM_READ | PERM_EXEC)).toBe(PERM_READ);
    // Exe implies R in an ATS response: an execute-only translation grants nothing.
    expect(atsCompletionGrant(PERM_EXEC, PERM_READ | PERM_EXEC)).toBe(0);
  });
});
