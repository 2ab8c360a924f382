import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeVmsaAttributes,
  LIMIT_AP_TABLE_NO_EL0,
  LIMIT_AP_TABLE_RO,
  LIMIT_PXN_TABLE,
  LIMIT_UXN_TABLE,
  type VmsaAttributeFields,
  vmsaTemplate,
} from './descriptors.js';
import { vmsaAccessAllowed, vmsaLeafPermissions, vmsaPermissions } from './permissions.js';

const R = PERM_READ;
const W = PERM_WRITE;
const X = PERM_EXEC;

function attrs(stage: 1 | 2, fields: VmsaAttributeFields, limits = 0) {
  const t = vmsaTemplate(stage, { af: true, ...fields });
  return decodeVmsaAttributes(stage, t.lo | 3, t.hi, limits);
}

describe('stage 1 permissions (Arm ARM D8.4, EL1&0 regime)', () => {
  // AP[2:1] → [privileged, unprivileged] permissions, with PXN = UXN = 0. AP[1] removes EL0 data access,
  // not EL0 execution (D8.4.1.2.3): with UXN = 0, 0b00 and 0b10 are execute-only at EL0.
  const table: [number, number, number][] = [
    [0b00, R | W | X, X], // privileged read/write, EL0 execute-only
    [0b01, R | W, R | W | X], // read/write at both; privileged execution forbidden (EL0-writable)
    [0b10, R | X, X], // privileged read-only, EL0 execute-only
    [0b11, R | X, R | X], // read-only at both
  ];
  for (const [ap, priv, unpriv] of table) {
    it(`AP[2:1] = 0b${ap.toString(2).padStart(2, '0')}`, () => {
      const a = attrs(1, { ap });
      expect(vmsaPermissions(a, true)).toBe(priv);
      expect(vmsaPermissions(a, false)).toBe(unpriv);
    });
  }

  it('PXN and UXN remove execution for their own privilege only', () => {
    expect(vmsaPermissions(attrs(1, { ap: 0b11, xn: 0b01 }), true)).toBe(R);
    expect(vmsaPermissions(attrs(1, { ap: 0b11, xn: 0b01 }), false)).toBe(R | X);
    expect(vmsaPermissions(attrs(1, { ap: 0b11, xn: 0b10 }), true)).toBe(R | X);
    expect(vmsaPermissions(attrs(1, { ap: 0b11, xn: 0b10 }), false)).toBe(R);
  });

  it('table descriptor limits: APTable and PXNTable/UXNTable', () => {
    // APTable[0] removes EL0 data access; execution is UXN's (and UXNTable's) alone.
    expect(vmsaPermissions(attrs(1, { ap: 0b01 }, LIMIT_AP_TABLE_NO_EL0), false)).toBe(X);
    expect(vmsaPermissions(attrs(1, { ap: 0b01 }, LIMIT_AP_TABLE_NO_EL0 | LIMIT_UXN_TABLE), false)).toBe(0);
    expect(vmsaPermissions(attrs(1, { ap: 0b01 }, LIMIT_AP_TABLE_RO), false)).toBe(R | X);
    expect(vmsaPermissions(attrs(1, { ap: 0b00 }, LIMIT_PXN_TABLE), true)).toBe(R | W);
    expect(vmsaPermissions(attrs(1, { ap: 0b11 }, LIMIT_UXN_TABLE), false)).toBe(R);
  });

  it('with hardware dirty management a DBM read-only leaf is writable-clean', () => {
    const clean = attrs(1, { ap: 0b11, dbm: true });
    expect(vmsaPermissions(clean, true, false) & W).toBe(0);
    expect(vmsaPermissions(clean, true, true) & W).toBe(W);
    expect(vmsaPermissions(clean, false, true) & W).toBe(W);
    // ... unless a table above makes everything read-only.
    expect(vmsaPermissions(attrs(1, { ap: 0b11, dbm: true }, LIMIT_AP_TABLE_RO), true, true) & W).toBe(0);
  });

  it('vmsaAccessAllowed takes PERM_* access bits with PERM_PRIV', () => {
    const privOnly = attrs(1, { ap: 0b00, xn: 0b11 });
    expect(vmsaAccessAllowed(privOnly, W | PERM_PRIV)).toBe(true);
    expect(vmsaAccessAllowed(privOnly, R)).toBe(false);
    expect(vmsaAccessAllowed(privOnly, R | X | PERM_PRIV)).toBe(false);
  });

  it('an instruction fetch needs execute permission only: EL0 execute-only pages (AP[1] = 0, UXN = 0)', () => {
    for (const ap of [0b00, 0b10]) {
      const xo = attrs(1, { ap, xn: 0b01 }); // PXN = 1, UXN = 0: Linux's PROT_EXEC-only user mapping
      expect(vmsaAccessAllowed(xo, R | X), `AP ${ap} fetch`).toBe(true);
      expect(vmsaAccessAllowed(xo, R), `AP ${ap} data read`).toBe(false);
      expect(vmsaAccessAllowed(xo, W), `AP ${ap} write`).toBe(false);
      expect(vmsaAccessAllowed(attrs(1, { ap, xn: 0b11 }), R | X), `AP ${ap} UXN`).toBe(false);
    }
    // A write marked EXEC is still a write: it needs W, not X.
    expect(vmsaAccessAllowed(attrs(1, { ap: 0b11 }), W | X)).toBe(false);
  });
});

describe('stage 2 permissions', () => {
  it('S2AP: none, read, write, read/write', () => {
    expect([0, 1, 2, 3].map((ap) => vmsaPermissions(attrs(2, { ap, xn: 0b10 }), false))).toEqual([
      0,
      R,
      W,
      R | W,
    ]);
  });

  it('XN[1:0] with FEAT_XNX: 00 both, 01 not at EL1, 10 never, 11 not at EL0', () => {
    const exec = (xn: number, priv: boolean) => (vmsaPermissions(attrs(2, { ap: 1, xn }), priv) & X) !== 0;
    expect([0, 1, 2, 3].map((xn) => exec(xn, true))).toEqual([true, false, false, true]);
    expect([0, 1, 2, 3].map((xn) => exec(xn, false))).toEqual([true, true, false, false]);
  });

  it('S2AP = 0b00 with XN allowing execution is execute-only: a fetch goes through, a data read does not', () => {
    for (const [xn, priv, unpriv] of [
      [0b00, true, true],
      [0b01, false, true],
      [0b11, true, false],
      [0b10, false, false],
    ] as const) {
      const xo = attrs(2, { ap: 0b00, xn });
      expect(vmsaAccessAllowed(xo, R | X | PERM_PRIV), `XN ${xn} privileged fetch`).toBe(priv);
      expect(vmsaAccessAllowed(xo, R | X), `XN ${xn} unprivileged fetch`).toBe(unpriv);
      expect(vmsaAccessAllowed(xo, R | PERM_PRIV)).toBe(false);
      expect(vmsaAccessAllowed(xo, R)).toBe(false);
    }
  });

  it('DBM with S2AP[1] = 0 is writable-clean under HD', () => {
    const clean = attrs(2, { ap: 0b01, dbm: true });
    expect(vmsaAccessAllowed(clean, W)).toBe(false);
    expect(vmsaAccessAllowed(clean, W, true)).toBe(true);
  });
});

describe('vmsaLeafPermissions: the same rules from the descriptor words', () => {
  it('agrees with vmsaPermissions of the decoded attributes for any leaf, limits, privilege and HD', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<1 | 2>(1, 2),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: 15 }),
        fc.boolean(),
        fc.boolean(),
        (stage, lo, hi, limits, privileged, hd) => {
          const decoded = decodeVmsaAttributes(stage, lo, hi, limits);
          expect(vmsaLeafPermissions(stage, lo, hi, limits, privileged, hd)).toBe(
            vmsaPermissions(decoded, privileged, hd),
          );
        },
      ),
    );
  });
});
