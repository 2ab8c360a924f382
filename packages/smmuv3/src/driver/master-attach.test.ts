/**
 * Which STE and CD a master gets, and the ATS sequence around them (master-attach.ts; Linux
 * `arm_smmu_attach_dev`, `arm_smmu_enable_ats`/`disable_ats`, `arm_smmu_attach_dev_nested`): CD 0 cleared
 * when a stage-1 domain leaves the RID, ATS enabled only after the ATC flush and disabled before EATS is
 * dropped, an ATC flush when the RID changes domains, and the attach errors' context.
 */
import { type EndpointDevice, IommufdError, NO_PASID } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { commandsSince, createDriverSystem, type DriverSystem } from '../../test/driver-system.js';
import { decodeCd } from '../hw/cd.js';
import { ATC_INV_SIZE_ALL } from '../hw/commands.js';
import { decodeSte, encodeSte, STE_CONFIG, STE_EATS, STE_S1DSS } from '../hw/ste.js';
import type { Smmuv3Domain } from './domain.js';
import { attachmentKey } from './domain.js';
import { type Smmuv3NestedDomain, VSTE_WORDS } from './nested-domain.js';
import { SMMUV3_VIOMMU_TYPE } from './vsmmu.js';

const SID = 0x10;
const ste = (s: DriverSystem) => decodeSte(s.driver.streamTable.readSte(SID));

function system(options: Record<string, unknown> = {}, spec: Record<string, unknown> = { atcEntries: 8 }) {
  const s = createDriverSystem({ options });
  const dev = s.device('dev0', SID, spec);
  s.probe(dev);
  return { s, dev };
}

/** Records, at each ATS enable/disable of the endpoint, the STE's EATS and the ATC_INVs issued so far. */
function watchAts(s: DriverSystem, dev: EndpointDevice) {
  const log: { enabled: boolean; eats: number; atcInvs: number }[] = [];
  const original = dev.pci.setAtsEnabled.bind(dev.pci);
  (dev.pci as { setAtsEnabled: (enabled: boolean) => void }).setAtsEnabled = (enabled) => {
    log.push({ enabled, eats: ste(s).eats, atcInvs: s.driver.cmdq.issued.get('CMD_ATC_INV') ?? 0 });
    original(enabled);
  };
  return log;
}

describe('CD 0 when a stage-1 domain leaves the RID', () => {
  const cdOf = (s: DriverSystem, dev: EndpointDevice) => decodeCd(s.driver.master(dev).cdTable!.readCd(0));

  it('is cleared (V = 0) for identity, blocked and stage 2', () => {
    for (const to of ['identity', 'blocked', 's2'] as const) {
      const { s, dev } = system({}, {});
      s.driver.attachDev(s.driver.domainAllocPaging(), dev);
      expect(cdOf(s, dev).v).toBe(true);
      const target =
        to === 'identity'
          ? s.driver.identityDomain
          : to === 'blocked'
            ? s.driver.blockedDomain
            : s.driver.domainAllocPaging({ nestParent: true });
      s.driver.attachDev(target, dev);
      expect(cdOf(s, dev).v).toBe(false);
    }
  });

  it('is rewritten, not cleared, for another stage-1 domain', () => {
    const { s, dev } = system({}, {});
    s.driver.attachDev(s.driver.domainAllocPaging(), dev);
    const next = s.driver.domainAllocPaging() as Smmuv3Domain;
    s.driver.attachDev(next, dev);
    expect(cdOf(s, dev)).toMatchObject({ v: true, asid: next.asid });
  });
});

describe('ATS (Linux arm_smmu_enable_ats / arm_smmu_disable_ats)', () => {
  it('on: STE.EATS = full, then the whole ATC of the RID flushed, then ATS enabled at the endpoint', () => {
    const { s, dev } = system();
    const log = watchAts(s, dev);
    const before = s.driver.cmdq.producer;
    s.driver.attachDev(s.driver.domainAllocPaging(), dev);
    expect(log).toEqual([{ enabled: true, eats: STE_EATS.FULL, atcInvs: 1 }]);
    expect(commandsSince(s, before).filter((c) => c.op === 'ATC_INV')).toEqual([
      {
        op: 'ATC_INV',
        streamId: SID,
        ssv: false,
        substreamId: 0,
        global: false,
        size: ATC_INV_SIZE_ALL,
        addressPage: 0,
      },
    ]);
  });

  it('off: ATS disabled at the endpoint while EATS is still full, then EATS cleared, then the ATC flushed', () => {
    const { s, dev } = system();
    s.driver.attachDev(s.driver.domainAllocPaging(), dev);
    const log = watchAts(s, dev);
    const atcInvs = s.driver.cmdq.issued.get('CMD_ATC_INV')!;
    s.driver.attachDev(s.driver.identityDomain, dev);
    expect(log).toEqual([{ enabled: false, eats: STE_EATS.FULL, atcInvs }]);
    expect(ste(s).eats).toBe(STE_EATS.ABORT);
    expect(s.driver.cmdq.issued.get('CMD_ATC_INV')).toBe(atcInvs + 1);
  });

  it('another paging domain at the RID with ATS on: the ATC is flushed, ATS stays on', () => {
    const { s, dev } = system();
    s.driver.attachDev(s.driver.domainAllocPaging(), dev);
    const log = watchAts(s, dev);
    const atcInvs = s.driver.cmdq.issued.get('CMD_ATC_INV')!;
    s.driver.attachDev(s.driver.domainAllocPaging(), dev);
    expect(log).toEqual([]);
    expect(s.driver.master(dev).ats).toBe(true);
    expect(s.driver.cmdq.issued.get('CMD_ATC_INV')).toBe(atcInvs + 1);
  });

  it('a PASID attach with ATS already on refreshes the STE without flushing the RID’s ATC', () => {
    const { s, dev } = system({}, { atcEntries: 8, pasidBits: 4 });
    s.driver.attachDev(s.driver.domainAllocPaging(), dev);
    const atcInvs = s.driver.cmdq.issued.get('CMD_ATC_INV')!;
    s.driver.setDevPasid(s.driver.domainAllocPaging({ pasid: true }), dev, 1);
    expect(s.driver.cmdq.issued.get('CMD_ATC_INV')).toBe(atcInvs);
  });

  it('blocked RID with a PASID attached: ATS on (the CD table STE translates PASID traffic)', () => {
    const { s, dev } = system({}, { atcEntries: 8, pasidBits: 4 });
    s.driver.setDevPasid(s.driver.domainAllocPaging({ pasid: true }), dev, 1);
    expect(ste(s)).toMatchObject({
      config: STE_CONFIG.S1_TRANS,
      s1Dss: STE_S1DSS.TERMINATE,
      eats: STE_EATS.FULL,
    });
    expect(s.driver.master(dev).ats).toBe(true);
  });

  it('never without IDR0.ATS or without the endpoint’s capability', () => {
    const noAts = system({ ats: false, pri: false });
    noAts.s.driver.attachDev(noAts.s.driver.domainAllocPaging(), noAts.dev);
    expect(noAts.s.driver.master(noAts.dev).ats).toBe(false);
    expect(ste(noAts.s).eats).toBe(STE_EATS.ABORT);
    const noCap = system({}, {});
    noCap.s.driver.attachDev(noCap.s.driver.domainAllocPaging(), noCap.dev);
    expect(noCap.s.driver.master(noCap.dev).ats).toBe(false);
  });

  it('the domain’s attachment record follows the master’s ATS state', () => {
    const { s, dev } = system();
    const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
    s.driver.attachDev(domain, dev);
    const record = domain.attachments.get(attachmentKey(s.driver.instance, SID, NO_PASID))!;
    expect(record).toMatchObject({ streamId: SID, pasid: NO_PASID, nested: false, ats: true });
    s.driver.master(dev).ats = false;
    expect(record.ats).toBe(false);
  });
});

describe('nested attach checks (Linux arm_smmu_attach_dev_nested)', () => {
  function nestedSystem() {
    const { s, dev } = system({}, { pasidBits: 4 });
    const parent = s.driver.domainAllocPaging({ nestParent: true }) as Smmuv3Domain;
    const vsmmu = s.driver.viommuAlloc(parent, SMMUV3_VIOMMU_TYPE, { report: () => {} });
    const s1 = vsmmu.domainAllocNested({
      ste: encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: 0x1000 }).slice(0, VSTE_WORDS),
    }) as Smmuv3NestedDomain;
    return { s, dev, parent, vsmmu, s1 };
  }

  it('ENOENT without the device’s vDEVICE; EBUSY with PASIDs attached; both name device and domain', () => {
    const { s, dev, vsmmu, s1 } = nestedSystem();
    const error = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        if (e instanceof IommufdError) return e;
      }
      throw new Error('no IommufdError');
    };
    const noVdevice = error(() => s.driver.attachDev(s1, dev));
    expect([noVdevice.code, noVdevice.context]).toEqual(['ENOENT', { device: 'dev0', domain: s1.id }]);
    vsmmu.vdeviceAlloc(dev, 8n);
    s.driver.setDevPasid(s.driver.domainAllocPaging({ pasid: true }), dev, 1);
    const busy = error(() => s.driver.attachDev(s1, dev));
    expect([busy.code, busy.context]).toEqual(['EBUSY', { device: 'dev0', domain: s1.id }]);
  });

  it('a nested master is recorded with its parent as nested (its unmaps flush the whole ATC)', () => {
    const { s, dev, parent, vsmmu, s1 } = nestedSystem();
    vsmmu.vdeviceAlloc(dev, 8n);
    s.driver.attachDev(s1, dev);
    expect(parent.attachments.get(attachmentKey(s.driver.instance, SID, NO_PASID))).toMatchObject({
      nested: true,
    });
    expect(s1.attached).toEqual(new Set([SID]));
    s.driver.attachDev(s.driver.blockedDomain, dev);
    expect(parent.attachments.size).toBe(0);
    expect(s1.attached.size).toBe(0);
  });
});

describe('the trace', () => {
  it('names the new RID domain on a change only', () => {
    const { s, dev } = system({}, {});
    s.tracer.startRecording();
    s.driver.attachDev(s.driver.identityDomain, dev);
    s.driver.attachDev(s.driver.identityDomain, dev);
    const attach = s.tracer.stopRecording().filter((r) => r.name === 'attach');
    expect(attach.map((r) => [r.layer, r.source])).toEqual([['driver', 'smmu0']]);
  });
});
