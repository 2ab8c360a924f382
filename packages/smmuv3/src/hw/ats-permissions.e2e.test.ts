/**
 * ATS permissions (IHI 0070 §3.9.1.2, §13.7, §13.7.1): a Translation Request carries Priv and Exe (PASID TLP
 * prefix; without one it is Data, Unprivileged) besides NW, and its completion grants, at that privilege
 * level only, R, W when the request has NW == 0, and Exe only when requested (Exe implying R, so an
 * execute-only page grants nothing); a Permission fault grants what the tables allow rather than failing.
 * The endpoint's ATC keeps completions per privilege level, so a privileged translation never answers an
 * unprivileged access (or the reverse).
 */
import {
  NO_PASID,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  type Prot,
  type TranslationResult,
} from '@iommukit/core';
import { HI_PXN, HI_UXN } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import {
  type DescriptorEdit,
  IOVA,
  S1_STREAM,
  SSID,
  stage1Page,
  type TranslationRig,
} from '../../test/translation-rig.js';
import { EVENT_ID } from './events.js';
import { CR0_CMDQEN, CR0_EVENTQEN, REG } from './regs.js';
import { STE_EATS } from './ste.js';

/** `stage1Page`'s rig with STE.EATS = full ATS. */
const atsStream = (prot: Omit<Prot, 'read'>, edit?: DescriptorEdit) =>
  stage1Page(prot, edit, { eats: STE_EATS.FULL });

/** A Translation Request; Priv and Exe need a PASID (`SSID`) to count (§13.7). */
function ats(rig: TranslationRig, access: number, pasid = NO_PASID): TranslationResult {
  return rig.smmu.atsTranslate({
    streamId: S1_STREAM,
    pasid,
    iovaPfn: IOVA / 4096,
    offset: 0,
    access,
  });
}

const granted = (r: TranslationResult) => (r.ok ? r.perm : 0);

describe('ATS Translation Completions grant per privilege level, NW and Exe (§13.7.1)', () => {
  it('a request with NW == 0 to a read-only page is granted R, not refused', () => {
    const rig = atsStream({ write: false });
    expect(granted(ats(rig, PERM_WRITE))).toBe(PERM_READ);
    expect(rig.records()).toEqual([]);
  });

  it('W only when the request has NW == 0; Exe only when requested, and never without X', () => {
    const rig = atsStream({ write: true, exec: true });
    expect(granted(ats(rig, PERM_READ))).toBe(PERM_READ);
    expect(granted(ats(rig, PERM_WRITE))).toBe(PERM_READ | PERM_WRITE);
    expect(granted(ats(rig, PERM_READ | PERM_EXEC, SSID))).toBe(PERM_READ | PERM_EXEC);
    // Read-only at both levels, UXN = 1, PXN = 0: only a privileged fetch may execute.
    const xn = atsStream({ write: false, exec: true }, (lo, hi) => [lo, hi | HI_UXN]);
    expect(granted(ats(xn, PERM_READ | PERM_EXEC, SSID))).toBe(PERM_READ);
    expect(granted(ats(xn, PERM_READ | PERM_EXEC | PERM_PRIV, SSID))).toBe(PERM_READ | PERM_EXEC);
  });

  it('an EL1-only page: the privileged request is granted R/W, the unprivileged one nothing and no event', () => {
    const rig = atsStream({ write: true, priv: true });
    expect(granted(ats(rig, PERM_WRITE | PERM_PRIV, SSID))).toBe(PERM_READ | PERM_WRITE);
    expect(ats(rig, PERM_READ, SSID)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_PERMISSION', stage: 1, recorded: false },
    });
    expect(rig.records()).toEqual([]);
  });
});

describe('what a Translation Request may ask for', () => {
  it('without a PASID its Priv and Exe are ignored: it is Data, Unprivileged (§13.7, §13.7.1)', () => {
    const el1Only = atsStream({ write: true, priv: true });
    expect(ats(el1Only, PERM_WRITE | PERM_PRIV)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_PERMISSION', stage: 1, recorded: false },
    });
    const rx = atsStream({ write: false, exec: true }); // read-only and executable at both levels
    expect(granted(ats(rx, PERM_READ | PERM_EXEC | PERM_PRIV))).toBe(PERM_READ);
    expect(granted(ats(rx, PERM_READ | PERM_EXEC | PERM_PRIV, SSID))).toBe(PERM_READ | PERM_EXEC);
  });

  it('an execute-only page grants it nothing (Exe implies R), while an untranslated fetch succeeds', () => {
    // AP[2:1] = 0b10, PXN = 1, UXN = 0: read-only privileged, execute-only unprivileged.
    const xo = atsStream({ write: false, exec: true, priv: true }, (lo, hi) => [lo, (hi | HI_PXN) & ~HI_UXN]);
    expect(granted(ats(xo, PERM_READ | PERM_EXEC, SSID))).toBe(0);
    expect(xo.translate(S1_STREAM, IOVA, PERM_READ | PERM_EXEC, SSID)).toMatchObject({ ok: true });
    expect(granted(ats(xo, PERM_READ | PERM_EXEC | PERM_PRIV, SSID))).toBe(PERM_READ);
    expect(xo.records()).toEqual([]);
  });
});

describe('ATS Translation Requests refused (§3.9.1.2)', () => {
  it('SMMUEN == 0: refused (UR) with F_BAD_ATS_TREQ, not answered with the bypass translation', () => {
    const rig = atsStream({ write: true });
    rig.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
    expect(ats(rig, PERM_READ)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'F_BAD_ATS_TREQ', recorded: true },
    });
    expect(rig.records()).toMatchObject([{ id: EVENT_ID.F_BAD_ATS_TREQ, streamId: S1_STREAM }]);
  });
});

describe("the endpoint's ATC keeps each privilege level's completion apart", () => {
  function atsDevice(rig: TranslationRig) {
    const dev = rig.endpoint({ atcEntries: 8 });
    dev.pci.setAtsEnabled(true);
    return dev;
  }

  it('a privileged DMA to an EL1-only page hits the ATC on its second access; an unprivileged one is refused', () => {
    const rig = atsStream({ write: true, priv: true });
    const dev = atsDevice(rig);
    const priv = { pasid: SSID, privileged: true };
    // A write's Translation Request has NW == 0: its completion serves the privileged reads that follow.
    expect(dev.dmaWrite(BigInt(IOVA), Uint8Array.of(1), priv)).toMatchObject({ ok: true });
    const smmuLookups = rig.smmu.tlb.hits + rig.smmu.tlb.misses;
    expect(dev.dmaRead(BigInt(IOVA + 8), 4, priv)).toMatchObject({ ok: true });
    expect(dev.dmaRead(BigInt(IOVA + 16), 4, priv)).toMatchObject({ ok: true });
    expect(rig.smmu.tlb.hits + rig.smmu.tlb.misses, 'the ATC answered without the SMMU').toBe(smmuLookups);
    expect(dev.atc?.hits).toBe(2);
    // The unprivileged read asks the SMMU at its own level, and gets nothing.
    expect(dev.dmaRead(BigInt(IOVA), 4, { pasid: SSID })).toMatchObject({
      ok: false,
      reason: 'fault',
      fault: { vendorCode: 'F_PERMISSION', recorded: false },
    });
    expect(dev.atc?.hits).toBe(2);
    expect(dev.atc?.size).toBe(1);
    // An ATC invalidation of the page drops the privileged entry too.
    dev.invalidateAtc(SSID, BigInt(IOVA), 0x1000n);
    expect(dev.atc?.size).toBe(0);
  });
});
