/** ATS Translation Requests (§4.2.3): who may send them, what a completion grants, what is recorded. */
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE, type TranslationResult } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { RW, request, sid, translationRig } from '../../test/translation-rig.js';
import { FR } from './fault-reasons.js';
import { ADDRESS_TYPE } from './fault-recording.js';
import { PGTT } from './pasid-entry.js';
import { CONTEXT_TT } from './root-context.js';

const IOVA = 0x4000_0000;
const PA = 0x1_0020_0000;
const DEV = sid(3, 0x10);
const READ_ONLY = { read: true, write: false };

const outcome = (r: TranslationResult) =>
  r.ok ? { pa: r.pfn * 4096, perm: r.perm } : { fault: r.fault.vendorCode, recorded: r.fault.recorded };
const fr = (reason: number) => `DMAR_FR_0x${reason.toString(16).padStart(2, '0')}`;

function legacy(tt: number, options = {}) {
  const rig = translationRig(options, false);
  const ss = rig.secondStage(4);
  ss.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
  ss.map(BigInt(IOVA + 0x1000), BigInt(PA + 0x1000), 0x1000n, READ_ONLY);
  rig.legacyContext(DEV, { did: 7, slptptr: ss.rootPa, aw: 2, tt });
  return rig;
}

function scalable(dte: boolean) {
  const rig = translationRig();
  const fs = rig.firstStage(4);
  fs.map(BigInt(IOVA), BigInt(PA), 0x1000n, RW);
  fs.map(BigInt(IOVA + 0x1000), BigInt(PA + 0x1000), 0x1000n, READ_ONLY);
  const dir = rig.scalableContext(DEV, { paside: true, ridPasid: 0, dte });
  rig.pasidEntry(dir, 0, { pgtt: PGTT.FIRST_STAGE, did: 3, fsptptr: fs.rootPa, sre: true });
  rig.pasidEntry(dir, 9, { pgtt: PGTT.FIRST_STAGE, did: 4, fsptptr: fs.rootPa });
  return rig;
}

describe('VT-d ATS translation requests', () => {
  it('legacy mode: answered through TT = 01 (and cached in the IOTLB), refused with a recorded 0xD otherwise', () => {
    const rig = legacy(CONTEXT_TT.DEVICE_TLB);
    expect(outcome(rig.translator.atsTranslate(request(DEV, IOVA, PERM_WRITE)))).toEqual({
      pa: PA,
      perm: PERM_READ | PERM_WRITE,
    });
    expect(rig.caches.iotlb.size).toBe(1);
    const plain = legacy(CONTEXT_TT.MULTI_LEVEL);
    expect(outcome(plain.translator.atsTranslate(request(DEV, IOVA)))).toEqual({
      fault: fr(FR.TT_BLOCKED),
      recorded: true,
    });
    expect(plain.faults).toMatchObject([{ reason: FR.TT_BLOCKED, addressType: ADDRESS_TYPE.TRANSLATION }]);
  });

  it('scalable mode: needs DTE in the context entry (0x44, recorded)', () => {
    const off = scalable(false);
    expect(outcome(off.translator.atsTranslate(request(DEV, IOVA)))).toEqual({
      fault: fr(FR.SM_CONTEXT_DTE_CLEAR),
      recorded: true,
    });
    const on = scalable(true);
    // A read request (NW = 1) gets R alone, though the page is writable; one without NW gets W too.
    expect(outcome(on.translator.atsTranslate(request(DEV, IOVA, PERM_READ, 9)))).toEqual({
      pa: PA,
      perm: PERM_READ,
    });
    expect(outcome(on.translator.atsTranslate(request(DEV, IOVA, PERM_WRITE, 9)))).toEqual({
      pa: PA,
      perm: PERM_READ | PERM_WRITE,
    });
  });

  it('a page not present completes R = W = 0 without a record; a write to a read-only page gets R alone', () => {
    const rig = scalable(true);
    expect(outcome(rig.translator.atsTranslate(request(DEV, IOVA + 0x5000, PERM_WRITE, 9)))).toEqual({
      fault: fr(FR.SM_FS_NOT_PRESENT),
      recorded: false,
    });
    expect(outcome(rig.translator.atsTranslate(request(DEV, IOVA + 0x1000, PERM_WRITE, 9)))).toEqual({
      pa: PA + 0x1000,
      perm: PERM_READ,
    });
    expect(rig.faults).toEqual([]);
    // The same untranslated write is a recorded fault.
    expect(rig.translator.translate(request(DEV, IOVA + 0x1000, PERM_WRITE, 9)).ok).toBe(false);
    expect(rig.faults.map((f) => f.reason)).toEqual([FR.SM_WRITE_DENIED]);
  });

  it('grants Exe only when asked; a privileged request through an entry without SRE is refused and recorded', () => {
    const rig = scalable(true);
    const r = rig.translator.atsTranslate(request(DEV, IOVA, PERM_READ, 9));
    expect(r.ok && r.perm & PERM_EXEC).toBe(0);
    expect(outcome(rig.translator.atsTranslate(request(DEV, IOVA, PERM_READ | PERM_PRIV, 9)))).toEqual({
      fault: fr(FR.SM_PASID_SRE_CLEAR),
      recorded: true,
    });
  });

  it('translation off or no ECAP.DT: Unsupported Request, nothing recorded', () => {
    const rig = legacy(CONTEXT_TT.DEVICE_TLB);
    rig.setState({ enabled: false });
    expect(outcome(rig.translator.atsTranslate(request(DEV, IOVA)))).toEqual({
      fault: 'DMAR_ATS_UR',
      recorded: false,
    });
    const noDt = legacy(CONTEXT_TT.MULTI_LEVEL, {
      deviceTlb: false,
      pageRequests: false,
      pageRequestDrain: false,
    });
    expect(outcome(noDt.translator.atsTranslate(request(DEV, IOVA)))).toEqual({
      fault: 'DMAR_ATS_UR',
      recorded: false,
    });
    expect([...rig.faults, ...noDt.faults]).toEqual([]);
  });
});
