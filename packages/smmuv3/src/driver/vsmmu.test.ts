/**
 * The host vSMMU and its nested domains, object by object (vsmmu.ts, nested-domain.ts): the IommuDomain
 * contract of a nested domain, vSTE checks and their errnos, the physical STE's stall and ATS bits, guest
 * invalidations when the physical Command queue fails, vDEVICE lifetime and the trace. End-to-end nesting
 * (DMA, events, ATS) is in nesting.test.ts.
 */
import { errnoOf, IommufdError } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { createDriverSystem, SMMU_BASE } from '../../test/driver-system.js';
import { CMD_OPCODE, encodeCfgiCd, encodeCfgiSte, encodeTlbiNhAsid, encodeTlbiNhVa } from '../hw/commands.js';
import { EVENT_ID, encodeEvent } from '../hw/events.js';
import { CR0_CMDQEN, REG } from '../hw/regs.js';
import { decodeSte, encodeSte, STE_CONFIG, STE_EATS } from '../hw/ste.js';
import type { Smmuv3Domain } from './domain.js';
import { type Smmuv3NestedDomain, VSTE_WORDS, validateGuestSte } from './nested-domain.js';
import { SMMUV3_VEVENT_TYPE, SMMUV3_VIOMMU_TYPE } from './vsmmu.js';

const VSID = 0x42;
const vste = (fields: Parameters<typeof encodeSte>[0]) => encodeSte(fields).slice(0, VSTE_WORDS);
const S1 = { v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: 0x4000_0000 };

/** A vSMMU on a nest parent with dev0 (StreamID 0x10) as VSID; `events` collects the vEVENTQ. */
function setup(options: Record<string, unknown> = {}) {
  const s = createDriverSystem({ options });
  const dev = s.device('dev0', 0x10);
  s.probe(dev);
  const parent = s.driver.domainAllocPaging({ nestParent: true }) as Smmuv3Domain;
  const events: { type: string; record: Uint32Array }[] = [];
  const vsmmu = s.driver.viommuAlloc(parent, SMMUV3_VIOMMU_TYPE, {
    report: (type, record) => events.push({ type, record }),
  });
  vsmmu.vdeviceAlloc(dev, BigInt(VSID));
  const nested = (fields: Parameters<typeof encodeSte>[0]) =>
    vsmmu.domainAllocNested({ ste: vste(fields) }) as Smmuv3NestedDomain;
  return { s, dev, parent, vsmmu, events, nested };
}

function errorOf(fn: () => unknown): IommufdError {
  try {
    fn();
  } catch (error) {
    if (error instanceof IommufdError) return error;
    throw error;
  }
  throw new Error('no error');
}

describe('a nested domain as an IommuDomain', () => {
  it('has the whole 64-bit input space and no page sizes: the guest maps, so map/unmap are EOPNOTSUPP', () => {
    const { s, nested } = setup();
    const d = nested(S1);
    expect(d.aperture).toEqual({ start: 0n, end: 2n ** 64n - 1n });
    expect(d.pgsizeBitmap).toBe(0n);
    expect(errnoOf(() => d.map())).toBe('EOPNOTSUPP');
    expect(errnoOf(() => d.unmap())).toBe('EOPNOTSUPP');
    expect(d.iovaToPhys()).toBeUndefined();
    const before = s.driver.cmdq.producer;
    d.iotlbSync();
    expect(s.driver.cmdq.producer).toBe(before);
  });

  it('guestConfig: abort (V = 0 too), bypass, s1', () => {
    const { nested } = setup();
    expect(nested({ v: true, config: STE_CONFIG.ABORT }).guestConfig).toBe('abort');
    expect(nested({ v: false, config: STE_CONFIG.BYPASS }).guestConfig).toBe('abort');
    expect(nested({ v: true, config: STE_CONFIG.BYPASS }).guestConfig).toBe('bypass');
    expect(nested(S1).guestConfig).toBe('s1');
  });

  it('free: EBUSY naming the domain while attached; afterwards it is freed and the driver refuses it', () => {
    const { s, dev, nested } = setup();
    const d = nested({ v: true, config: STE_CONFIG.BYPASS });
    s.driver.attachDev(d, dev);
    const busy = errorOf(() => d.free());
    expect(busy.code).toBe('EBUSY');
    expect(busy.context).toMatchObject({ domain: d.id });
    expect(d.isFreed).toBe(false);
    s.driver.attachDev(s.driver.blockedDomain, dev);
    d.free();
    expect(d.isFreed).toBe(true);
    expect(errnoOf(() => s.driver.attachDev(d, dev))).toBe('EINVAL');
    d.free();
    expect(d.isFreed).toBe(true);
  });

  it('ste() is for a master that does not stall unless told: S1STALLD = 1 on a configurable-stall SMMU', () => {
    const { nested } = setup();
    const d = nested(S1);
    expect(decodeSte(d.ste(false)).s1Stalld).toBe(true);
    expect(decodeSte(d.ste(false, true)).s1Stalld).toBe(false);
  });

  it('on an SMMU without stalls S1STALLD stays the guest’s 0 (Linux sets it only with ARM_SMMU_FEAT_STALLS)', () => {
    const { nested } = setup({ stallModel: 'no-stall' });
    expect(decodeSte(nested(S1).ste(false)).s1Stalld).toBe(false);
  });

  it('a stage-1 vSTE is checked against a parent STE without ATS: an SMMU without ATS accepts it', () => {
    const { nested } = setup({ ats: false, pri: false });
    const d = nested({ ...S1, eats: STE_EATS.FULL });
    expect(d.enableAts).toBe(true);
    expect(decodeSte(d.ste(false))).toMatchObject({ config: STE_CONFIG.NESTED, eats: STE_EATS.ABORT });
  });
});

describe('validateGuestSte (Linux arm_smmu_validate_vste)', () => {
  const host = () => {
    const { s, parent } = setup();
    return {
      features: s.driver.features,
      idr: { hyp: false, termModelAbort: true, ttEndian: 'little' as const, ns1ats: true },
      parentSte: parent.ste(false),
    };
  };

  it('null or a missing STE is EINVAL, not a TypeError', () => {
    const h = host();
    expect(errnoOf(() => validateGuestSte(null, h))).toBe('EINVAL');
    expect(errnoOf(() => validateGuestSte(undefined, h))).toBe('EINVAL');
  });

  it('EATS asks for ATS only with a stage-1 vSTE; V = 0 and bypass never enable it', () => {
    const h = host();
    expect(validateGuestSte({ ste: vste({ ...S1, eats: STE_EATS.FULL }) }, h).enableAts).toBe(true);
    expect(validateGuestSte({ ste: vste({ ...S1, eats: STE_EATS.ABORT }) }, h).enableAts).toBe(false);
    const bypass = { v: true, config: STE_CONFIG.BYPASS, eats: STE_EATS.FULL };
    expect(validateGuestSte({ ste: vste(bypass) }, h).enableAts).toBe(false);
    expect(validateGuestSte({ ste: vste({ ...S1, v: false, eats: STE_EATS.FULL }) }, h).enableAts).toBe(
      false,
    );
  });

  it('a stray bit is EIO naming the 32-bit word it is in', () => {
    const h = host();
    // SHCFG is STE bits [109:108]: qword 1, word 3.
    const error = errorOf(() => validateGuestSte({ ste: vste({ ...S1, shCfg: 1 }) }, h));
    expect(error.code).toBe('EIO');
    expect(error.context).toMatchObject({ word: 3 });
  });
});

describe('guest commands on the physical Command queue', () => {
  it('an empty invalidation issues nothing, not even a CMD_SYNC', () => {
    const { s, vsmmu } = setup();
    const before = s.driver.cmdq.producer;
    expect(vsmmu.cacheInvalidate([])).toEqual({ handled: 0 });
    expect(s.driver.cmdq.producer).toBe(before);
  });

  it('errors name the vSID or the opcode', () => {
    const { vsmmu } = setup();
    const unknown = vsmmu.cacheInvalidate([encodeCfgiCd({ streamId: 0x99, substreamId: 0, leaf: true })]);
    expect(unknown.error?.context).toMatchObject({ vsid: 0x99 });
    const refused = vsmmu.cacheInvalidate([encodeCfgiSte({ streamId: VSID, leaf: true })]);
    expect(refused.error?.context).toMatchObject({ opcode: CMD_OPCODE.CFGI_STE });
    // Range TLBI fields without IDR3.RIL: CERROR_ILL on the SMMU, EIO here.
    const { vsmmu: noRil } = setup({ rangeInvalidation: false });
    const ill = noRil.cacheInvalidate([
      encodeTlbiNhVa({ vmid: 0, asid: 1, addressPage: 0, num: 1, scale: 0 }),
    ]);
    expect(ill.error?.code).toBe('EIO');
    expect(ill.error?.context).toMatchObject({ opcode: CMD_OPCODE.TLBI_NH_VA });
  });

  describe('when the physical queue stops (CMDQEN cleared behind the driver)', () => {
    function stopped() {
      const v = setup();
      const counter = v.s.bus.counter('test');
      const cr0 = v.s.reg(REG.CR0);
      v.s.bus.write(BigInt(SMMU_BASE + REG.CR0), 4, cr0 & ~CR0_CMDQEN, counter);
      return v;
    }

    it('the driver’s ETIMEDOUT is the result, with nothing handled', () => {
      const { vsmmu } = stopped();
      const result = vsmmu.cacheInvalidate([encodeTlbiNhAsid({ vmid: 0, asid: 1 })]);
      expect(result.handled).toBe(0);
      expect(result.error?.code).toBe('ETIMEDOUT');
    });

    it('before a refused entry, the failed submission of the entries before it is the error', () => {
      const { vsmmu } = stopped();
      const result = vsmmu.cacheInvalidate([
        encodeTlbiNhAsid({ vmid: 0, asid: 1 }),
        encodeCfgiSte({ streamId: VSID, leaf: true }),
      ]);
      expect(result).toMatchObject({ handled: 0, error: expect.objectContaining({ code: 'ETIMEDOUT' }) });
    });

    it('a failed full batch of 63 ends the invalidation there', () => {
      const { s, vsmmu } = stopped();
      const entries = s.driver.cmdq.entries;
      const result = vsmmu.cacheInvalidate(
        Array.from({ length: 70 }, (_, i) => encodeTlbiNhAsid({ vmid: 0, asid: i + 1 })),
      );
      expect(result.handled).toBe(0);
      expect(result.error?.code).toBe('ETIMEDOUT');
      // One submission: 63 commands and its CMD_SYNC, nothing after.
      expect(s.driver.cmdq.entries - entries).toBe(64);
    });
  });
});

describe('vDEVICEs and events', () => {
  const faultOf = (sid: number) =>
    encodeEvent({ id: EVENT_ID.F_TRANSLATION, streamId: sid, inputAddrPage: 3 });

  it('forwardEvent: a device without a vDEVICE here is the host’s (false, nothing reported)', () => {
    const { s, vsmmu, events } = setup();
    const other = s.device('dev1', 0x11);
    s.probe(other);
    expect(vsmmu.forwardEvent(other, faultOf(0x11))).toBe(false);
    expect(events).toEqual([]);
  });

  it('vdeviceDestroy forgets the vSID both ways; destroy forgets them all', () => {
    const { dev, vsmmu, events } = setup();
    const cfgiCd = encodeCfgiCd({ streamId: VSID, substreamId: 0, leaf: true });
    expect(vsmmu.cacheInvalidate([cfgiCd])).toEqual({ handled: 1 });
    vsmmu.vdeviceDestroy(dev);
    expect(vsmmu.cacheInvalidate([cfgiCd]).error?.code).toBe('EIO');
    expect(vsmmu.forwardEvent(dev, faultOf(0x10))).toBe(false);
    vsmmu.vdeviceDestroy(dev);
    vsmmu.vdeviceAlloc(dev, BigInt(VSID));
    expect(vsmmu.forwardEvent(dev, faultOf(0x10))).toBe(true);
    expect(events.map((e) => [e.type, e.record[1]])).toEqual([[SMMUV3_VEVENT_TYPE, VSID]]);
    vsmmu.destroy();
    expect(vsmmu.cacheInvalidate([cfgiCd]).error?.code).toBe('EIO');
    expect(vsmmu.forwardEvent(dev, faultOf(0x10))).toBe(false);
  });

  it('traces vDEVICEs and nested domains when tracing is on', () => {
    const { s, vsmmu, nested, dev } = setup();
    s.tracer.startRecording();
    vsmmu.vdeviceAlloc(dev, 0x43n);
    const d = nested({ ...S1, eats: STE_EATS.FULL });
    const records = s.tracer.stopRecording().filter((r) => r.name.startsWith('vsmmu.'));
    expect(records.map((r) => [r.layer, r.source, r.name])).toEqual([
      ['driver', 'smmu0', 'vsmmu.vdevice'],
      ['driver', 'smmu0', 'vsmmu.nested.alloc'],
    ]);
    expect(records[1]!.message).toBe(`nested domain ${d.id}: guest s1 with ATS on VMID ${vsmmu.vmid}`);
  });
});
