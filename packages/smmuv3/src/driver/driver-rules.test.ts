/**
 * The IommuDriver entry points' rules (smmuv3-driver.ts): what is a no-op (repeats, unknown devices and
 * PASIDs), what each master gets at probe (SubstreamID bits, stalls, the PASID capability), PASID
 * replacement with ATS, shutdown's disconnects, and the trace each entry point leaves.
 */
import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { commandsSince, createDriverSystem } from '../../test/driver-system.js';
import { ATC_INV_SIZE_ALL } from '../hw/commands.js';
import { REG } from '../hw/regs.js';
import type { Smmuv3Domain } from './domain.js';
import { SMMUV3_VIOMMU_TYPE } from './vsmmu.js';

const SID = 0x10;

describe('probe and masters', () => {
  it('probe twice is EBUSY; before probe the driver has no state (ENODEV)', () => {
    const s = createDriverSystem({ noProbe: true });
    expect(errnoOf(() => s.driver.features)).toBe('ENODEV');
    s.driver.probe();
    expect(errnoOf(() => s.driver.probe())).toBe('EBUSY');
  });

  it('a master’s SubstreamID bits are min(SSIDSIZE, the endpoint’s); the PASID capability is enabled then', () => {
    const s = createDriverSystem({ options: { ssidBits: 6 } });
    const wide = s.device('wide', 0x10, { pasidBits: 8 });
    const narrow = s.device('narrow', 0x11, { pasidBits: 4 });
    const none = s.device('none', 0x12);
    const enables: string[] = [];
    for (const d of [wide, narrow, none]) {
      const set = d.pci.setPasidEnabled.bind(d.pci);
      (d.pci as { setPasidEnabled: (on: boolean) => void }).setPasidEnabled = (on) => {
        enables.push(`${d.name} ${on}`);
        set(on);
      };
      s.probe(d);
    }
    expect([wide, narrow, none].map((d) => s.driver.master(d).ssidBits)).toEqual([6, 4, 0]);
    expect([wide, narrow, none].map((d) => s.driver.master(d).pasidEnabled)).toEqual([true, true, false]);
    expect(enables).toEqual(['wide true', 'narrow true']);
    s.driver.releaseDevice(wide);
    s.driver.releaseDevice(none);
    expect(enables).toEqual(['wide true', 'narrow true', 'wide false']);
  });

  it('without stage 1 there are no SubstreamIDs for a master', () => {
    const s = createDriverSystem({ options: { s1: false, nesting: false } });
    const dev = s.device('dev0', SID, { pasidBits: 8 });
    s.probe(dev);
    expect(s.driver.master(dev).ssidBits).toBe(0);
    expect(s.driver.master(dev).pasidEnabled).toBe(false);
    expect(s.driver.hwInfo(dev).maxPasidLog2).toBe(0);
  });

  it('stalls: forced for every master, or where firmware says the device can stall, never without support', () => {
    const stall = (options: Record<string, unknown>, canStall: boolean) => {
      const s = createDriverSystem({ options });
      const dev = s.device('dev0', SID, { canStall });
      s.probe(dev);
      return s.driver.master(dev).stall;
    };
    expect(stall({}, true)).toBe(true);
    expect(stall({}, false)).toBe(false);
    expect(stall({ stallModel: 'force-stall', ats: false, pri: false }, false)).toBe(true);
    expect(stall({ stallModel: 'no-stall' }, true)).toBe(false);
  });

  it('probing the same device again does nothing; another device on its StreamID is not its master', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', SID);
    s.probe(dev);
    const before = s.driver.cmdq.producer;
    s.probe(dev);
    expect(s.driver.cmdq.producer).toBe(before);
    const twin = s.device('twin', SID);
    expect(errnoOf(() => s.driver.master(twin))).toBe('ENODEV');
    // Releasing a device that is not the master changes nothing.
    s.driver.releaseDevice(twin);
    expect(s.driver.master(dev).ref).toBe(dev);
    expect(s.driver.cmdq.producer).toBe(before);
  });
});

describe('attachments that change nothing', () => {
  it('the RID’s own domain again, a PASID’s own domain again, and removing a PASID that has none', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', SID, { pasidBits: 4 });
    s.probe(dev);
    const rid = s.driver.domainAllocPaging();
    const p = s.driver.domainAllocPaging({ pasid: true });
    s.driver.attachDev(rid, dev);
    s.driver.setDevPasid(p, dev, 1);
    const before = s.driver.cmdq.producer;
    s.driver.attachDev(rid, dev);
    s.driver.setDevPasid(p, dev, 1);
    s.driver.removeDevPasid(dev, 2);
    expect(s.driver.cmdq.producer).toBe(before);
  });
});

describe('PASIDs with ATS', () => {
  function atsPasids() {
    const s = createDriverSystem();
    const dev = s.device('dev0', SID, { pasidBits: 4, atcEntries: 8 });
    s.probe(dev);
    const a = s.driver.domainAllocPaging({ pasid: true }) as Smmuv3Domain;
    const b = s.driver.domainAllocPaging({ pasid: true }) as Smmuv3Domain;
    s.driver.setDevPasid(a, dev, 3);
    return { s, dev, a, b };
  }
  const atcInvPasid3 = {
    op: 'ATC_INV',
    streamId: SID,
    ssv: true,
    substreamId: 3,
    global: false,
    size: ATC_INV_SIZE_ALL,
    addressPage: 0,
  };

  it('replacing a PASID’s domain moves the attachment and flushes that PASID’s ATC', () => {
    const { s, dev, a, b } = atsPasids();
    expect(s.driver.master(dev).ats).toBe(true);
    const before = s.driver.cmdq.producer;
    s.driver.setDevPasid(b, dev, 3);
    expect(a.attachments.size).toBe(0);
    expect([...b.attachments.keys()]).toEqual([`${s.driver.instance}/${SID}:3`]);
    expect(commandsSince(s, before).filter((c) => c.op === 'ATC_INV')).toEqual([atcInvPasid3]);
  });

  it('removing a PASID flushes its ATC; the last one gone turns ATS off again', () => {
    const { s, dev, a } = atsPasids();
    const before = s.driver.cmdq.producer;
    s.driver.removeDevPasid(dev, 3);
    const atcInvs = commandsSince(s, before).filter((c) => c.op === 'ATC_INV');
    expect(atcInvs[0]).toEqual(atcInvPasid3);
    expect(a.attachments.size).toBe(0);
    expect(s.driver.master(dev).ats).toBe(false);
  });
});

describe('shutdown', () => {
  it('disconnects the interrupt lines and masks the interrupts; a second shutdown does nothing', () => {
    const s = createDriverSystem();
    const dev = s.device('dev0', SID);
    s.probe(dev);
    s.driver.shutdown();
    expect(s.reg(REG.IRQ_CTRL)).toBe(0);
    expect(s.reg(REG.IRQ_CTRLACK)).toBe(0);
    for (const name of ['eventq', 'priq', 'gerror']) {
      const line = s.ic.line(`smmu0.${name}`);
      line.raise();
      expect(line.deliver()).toBe(false); // no handler any more
    }
    s.driver.shutdown();
    expect(errnoOf(() => s.driver.cmdq)).toBe('ENODEV');
  });
});

describe('the trace of the entry points', () => {
  it('probe, device probe and release, domain allocation, PASIDs, vIOMMU, shutdown', () => {
    const s = createDriverSystem({ noProbe: true });
    s.tracer.startRecording();
    s.driver.probe();
    const dev = s.device('dev0', SID, { pasidBits: 4 });
    s.probe(dev);
    const p = s.driver.domainAllocPaging({ pasid: true });
    s.driver.setDevPasid(p, dev, 1);
    s.driver.removeDevPasid(dev, 1);
    const parent = s.driver.domainAllocPaging({ nestParent: true });
    s.driver.viommuAlloc(parent, SMMUV3_VIOMMU_TYPE, { report: () => {} });
    s.driver.releaseDevice(dev);
    s.driver.shutdown();
    const names = s.tracer
      .stopRecording()
      .filter((r) => r.layer === 'driver' && r.source === 'smmu0')
      .map((r) => r.name);
    const entryPoints = new Set([
      'probe',
      'device.probe',
      'domain.alloc',
      'pasid.attach',
      'pasid.detach',
      'viommu.alloc',
      'device.release',
      'shutdown',
    ]);
    expect(names.filter((n) => entryPoints.has(n))).toEqual([
      'probe',
      'device.probe',
      'domain.alloc',
      'pasid.attach',
      'pasid.detach',
      'domain.alloc',
      'viommu.alloc',
      'device.release',
      'shutdown',
    ]);
  });
});
