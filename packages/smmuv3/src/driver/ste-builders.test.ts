/**
 * Builder options the KUnit port does not exercise (ste-builders.ts): non-coherent table walks, FWB and
 * stalls in a stage-2 STE, the EL2 StreamWorld with E2H, a custom MAIR and dirty tracking in a stage-1 CD,
 * and the SVA CD's VA size and CPU granule.
 */
import { tgEncoding, vmsaFormat } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { decodeCd } from '../hw/cd.js';
import {
  decodeSte,
  REGION_ATTR,
  SHAREABILITY,
  STE_CONFIG,
  STE_EATS,
  STE_S1DSS,
  STE_STRW,
} from '../hw/ste.js';
import { cdTableSte, DEFAULT_BUILDER_CAPS, s1Cd, s2Ste, svaCd } from './ste-builders.js';

const S2 = vmsaFormat({ stage: 2, granule: 4096, ias: 40, oas: 48 });
const S1 = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
const NON_COHERENT = { ir: REGION_ATTR.NC, or: REGION_ATTR.NC, sh: SHAREABILITY.OUTER };

describe('stage-2 STE', () => {
  it('coherent walks are write-back inner shareable; non-coherent ones Non-cacheable outer shareable', () => {
    const coherent = decodeSte(s2Ste({ format: S2, root: 0x10_0000, vmid: 3 }));
    expect([coherent.s2Ir0, coherent.s2Or0, coherent.s2Sh0]).toEqual([
      REGION_ATTR.WB_RA_WA,
      REGION_ATTR.WB_RA_WA,
      SHAREABILITY.INNER,
    ]);
    const nc = decodeSte(s2Ste({ format: S2, root: 0x10_0000, vmid: 3, coherentWalk: false }));
    expect({ ir: nc.s2Ir0, or: nc.s2Or0, sh: nc.s2Sh0 }).toEqual(NON_COHERENT);
  });

  it('FWB, S2S for a stalling master, EATS for ATS, SHCFG only with attribute overrides', () => {
    const ste = decodeSte(
      s2Ste({ format: S2, root: 0x10_0000, vmid: 3, s2fwb: true, stall: true, ats: true }),
    );
    expect(ste).toMatchObject({
      config: STE_CONFIG.S2_TRANS,
      s2Fwb: true,
      s2S: true,
      eats: STE_EATS.FULL,
      shCfg: SHAREABILITY.INCOMING,
      s2Vmid: 3,
      s2Ttb: 0x10_0000,
      s2Aa64: true,
      s2Ptw: true,
      s2R: true,
    });
    const plain = decodeSte(
      s2Ste({ format: S2, root: 0x10_0000, vmid: 3 }, { ...DEFAULT_BUILDER_CAPS, attrTypesOverride: false }),
    );
    expect(plain).toMatchObject({ s2Fwb: false, s2S: false, eats: STE_EATS.ABORT, shCfg: 0 });
  });
});

describe('CD table STE', () => {
  it('STRW = EL2 with E2H, NS-EL1 otherwise; SHCFG = incoming only for S1DSS = bypass with overrides', () => {
    const e2h = decodeSte(cdTableSte({ cdTable: 0x2000 }, { ...DEFAULT_BUILDER_CAPS, e2h: true }));
    expect(e2h.strw).toBe(STE_STRW.EL2);
    expect(decodeSte(cdTableSte({ cdTable: 0x2000 })).strw).toBe(STE_STRW.NS_EL1);
    const bypass = (attrTypesOverride: boolean) =>
      decodeSte(
        cdTableSte(
          { cdTable: 0x2000, s1Dss: STE_S1DSS.BYPASS },
          { ...DEFAULT_BUILDER_CAPS, attrTypesOverride },
        ),
      ).shCfg;
    expect([bypass(true), bypass(false)]).toEqual([SHAREABILITY.INCOMING, 0]);
    expect(decodeSte(cdTableSte({ cdTable: 0x2000 })).shCfg).toBe(0);
  });
});

describe('stage-1 CD', () => {
  it('a custom MAIR goes into MAIR0/MAIR1 halves; dirty tracking sets HA and HD; non-coherent walks', () => {
    const cd = decodeCd(
      s1Cd({
        format: S1,
        root: 0x3000,
        asid: 9,
        mair: 0x1122_3344_5566_7788n,
        dirtyTracking: true,
        coherentWalk: false,
      }),
    );
    expect(cd).toMatchObject({
      mair0: 0x5566_7788,
      mair1: 0x1122_3344,
      ha: true,
      hd: true,
      asid: 9,
      aset: true,
    });
    expect({ ir: cd.ir0, or: cd.or0, sh: cd.sh0 }).toEqual(NON_COHERENT);
    expect(decodeCd(s1Cd({ format: S1, root: 0x3000, asid: 9 }))).toMatchObject({
      ha: false,
      hd: false,
      s: false,
    });
    expect(decodeCd(s1Cd({ format: S1, root: 0x3000, asid: 9, stall: true })).s).toBe(true);
  });
});

describe('SVA CD', () => {
  it('T0SZ from the VA size (64 − bits), TG0 from the CPU granule; 48 bits and 4K by default', () => {
    const custom = decodeCd(svaCd({ asid: 4, ttb0: 0x5000, ips: 5, vaBits: 39, granule: 65536 }));
    expect(custom).toMatchObject({ t0sz: 25, tg0: tgEncoding(65536), ips: 5, ttb0: 0x5000, aset: true });
    const defaults = decodeCd(svaCd({ asid: 4, ttb0: 0x5000, ips: 5 }));
    expect(defaults).toMatchObject({ t0sz: 16, tg0: tgEncoding(4096) });
  });
});
