/**
 * Host-side nesting on the real device model: a vSMMU on a nest-parent stage 2, nested domains from guest
 * vSTEs (Linux's allowed-field checks), the physical Config = nested STE, guest commands converted as
 * Linux converts them and found in the Command queue word for word, and events forwarded with the vSID.
 */
import { errnoOf, type Hpa, iova, NO_PASID } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { createDriverSystem, type DriverSystem } from '../../test/driver-system.js';
import { smmuv3NestingHooks } from '../../test/nesting-hooks.js';
import { decodeCd, encodeCd } from '../hw/cd.js';
import {
  CMD_OPCODE,
  CMD_WORDS,
  decodeCommand,
  encodeAtcInv,
  encodeCfgiCd,
  encodeCfgiCdAll,
  encodeCfgiSte,
  encodeCmdSync,
  encodeTlbiNhAll,
  encodeTlbiNhAsid,
  encodeTlbiNhVa,
  encodeTlbiNsnhAll,
  encodeTlbiS12Vmall,
} from '../hw/commands.js';
import { decodeEvent, EVENT_ID } from '../hw/events.js';
import { CMDQ_ENTRY_BYTES, queueIndex } from '../hw/queue-index.js';
import { decodeSte, encodeSte, STE_CONFIG, STE_EATS, STE_S1DSS, STE_S1FMT, STE_WORDS } from '../hw/ste.js';
import type { Smmuv3Domain } from './domain.js';
import type { Smmuv3NestedDomain } from './nested-domain.js';
import { VSTE_WORDS } from './nested-domain.js';
import { SMMUV3_VEVENT_TYPE, SMMUV3_VIOMMU_TYPE } from './vsmmu.js';

const RW = { read: true, write: true };
const KiB = 1024n;
/** The VM's RAM: 1 MiB of guest-physical space at GPA_BASE; stage-1 tables from TABLES_GPA. */
const GPA_BASE = 0x4000_0000n;
const GPA_SIZE = 1024n * KiB;
const TABLES_GPA = GPA_BASE + 512n * KiB;
const DATA_IOVA = 0x1000_0000n;
const VSID = 0x42;

/** A nest parent mapping the VM's RAM, a vSMMU on it with dev0 as VSID, and guest memory helpers. */
function vm(options: Record<string, unknown> = {}, spec = {}) {
  const s = createDriverSystem({ options });
  const dev = s.device('dev0', 0x10, spec);
  s.probe(dev);
  const ram = s.buffer(Number(GPA_SIZE));
  const parent = s.driver.domainAllocPaging({ nestParent: true }) as Smmuv3Domain;
  parent.map(iova(GPA_BASE), ram, GPA_SIZE, RW);
  const events: { type: string; record: Uint32Array }[] = [];
  const vsmmu = s.driver.viommuAlloc(parent, SMMUV3_VIOMMU_TYPE, {
    report: (type, record) => events.push({ type, record }),
  });
  vsmmu.vdeviceAlloc(dev, BigInt(VSID));
  let next = TABLES_GPA;
  const gpaToHpa = (gpa: bigint): Hpa => (ram + (gpa - GPA_BASE)) as Hpa;
  const counter = s.bus.counter('guest');
  /** The guest's stage 1 (CD table and tables in its RAM) mapping `maps`, as vSTE words. */
  const guestStage1 = (maps: { iova: bigint; ipa: bigint }[], asid = 7) =>
    smmuv3NestingHooks.buildStage1({
      maps,
      tag: asid,
      allocIpa: () => {
        const page = next;
        next += 4n * KiB;
        return page;
      },
      write: (ipa, words) => s.bus.writeWords(Number(gpaToHpa(ipa)), words, words.length, counter),
    }) as { ste: Uint32Array };
  return { s, dev, ram, parent, vsmmu, events, guestStage1, gpaToHpa };
}

const ste = (s: DriverSystem, sid: number) => decodeSte(s.driver.streamTable.readSte(sid));

/** The last `n` entries the driver wrote to its Command queue, oldest first. */
function lastCommands(s: DriverSystem, n: number): Uint32Array[] {
  const { cmdq } = s.driver;
  const out: Uint32Array[] = [];
  for (let k = n; k >= 1; k--) {
    const index = queueIndex((cmdq.producer - k + 2 * cmdq.capacity) % (2 * cmdq.capacity), cmdq.log2);
    const words = new Uint32Array(CMD_WORDS);
    s.bus.readWords(cmdq.base + index * CMDQ_ENTRY_BYTES, words, CMD_WORDS, s.bus.counter('test'));
    out.push(words);
  }
  return out;
}

const vste = (fields: Parameters<typeof encodeSte>[0]) => encodeSte(fields).slice(0, VSTE_WORDS);
/** The fields of a vSTE (its two qwords in a whole STE). */
function vsteFields(words: ArrayLike<number>) {
  const full = new Uint32Array(STE_WORDS);
  full.set(Array.from(words));
  return decodeSte(full);
}
const S1_VSTE = { v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: Number(TABLES_GPA) };

describe('vSMMU allocation', () => {
  it('needs the arm-smmuv3 type and a live nest-parent domain of this SMMU; its VMID is the parent’s', () => {
    const { s, parent, vsmmu } = vm();
    const sink = { report: () => {} };
    expect(vsmmu.vmid).toBe(parent.vmid);
    expect(vsmmu.vmid).toBeGreaterThan(0);
    expect(errnoOf(() => s.driver.viommuAlloc(parent, 'intel-vtd', sink))).toBe('EOPNOTSUPP');
    const plain = s.driver.domainAllocPaging();
    expect(errnoOf(() => s.driver.viommuAlloc(plain, SMMUV3_VIOMMU_TYPE, sink))).toBe('EINVAL');
    expect(errnoOf(() => s.driver.viommuAlloc(s.driver.blockedDomain, SMMUV3_VIOMMU_TYPE, sink))).toBe(
      'EINVAL',
    );
  });

  it('a vSID is 32 bits', () => {
    const { s, vsmmu } = vm();
    const other = s.device('dev1', 0x11);
    s.probe(other);
    expect(errnoOf(() => vsmmu.vdeviceAlloc(other, 1n << 32n))).toBe('EINVAL');
    vsmmu.vdeviceAlloc(other, 0xffff_ffffn);
  });
});

describe('nested domains from vSTEs (Linux arm_smmu_validate_vste)', () => {
  it('accepts V, Config, S1Fmt, S1ContextPtr, S1CDMax, S1DSS, S1CIR/COR/CSH, S1STALLD and EATS', () => {
    const { vsmmu } = vm();
    const words = vste({
      ...S1_VSTE,
      s1Fmt: STE_S1FMT.TWO_LEVEL_4K,
      // The top of the 48-bit IAS: beyond it the physical STE is ILLEGAL (see the hardware checks below).
      s1ContextPtr: 2 ** 48 - 64,
      s1CdMax: 20,
      s1Dss: STE_S1DSS.BYPASS,
      s1Cir: 1,
      s1Cor: 2,
      s1Csh: 3,
      s1Stalld: true,
      eats: STE_EATS.FULL,
    });
    const domain = vsmmu.domainAllocNested({ ste: words }) as Smmuv3NestedDomain;
    expect(domain.type).toBe('nested');
    expect(domain.guestConfig).toBe('s1');
    expect(domain.enableAts).toBe(true);
    // EATS is taken out: the host decides it.
    expect(decodeSte(domain.vste)).toMatchObject({ eats: 0, s1CdMax: 20, s1ContextPtr: 2 ** 48 - 64 });
    // Plain arrays of words work as well as typed arrays.
    expect(vsmmu.domainAllocNested({ ste: Array.from(words) }).type).toBe('nested');
  });

  it('a vSTE with V = 0 is accepted and becomes all zeros (abort), whatever else it holds', () => {
    const { vsmmu } = vm();
    const d = vsmmu.domainAllocNested({ ste: vste({ config: 0b110, s2Vmid: 0, mev: true }) });
    expect(Array.from((d as Smmuv3NestedDomain).vste)).toEqual(new Array(16).fill(0));
    expect((d as Smmuv3NestedDomain).guestConfig).toBe('abort');
  });

  it.each([
    ['STRW (host EL selection)', { strw: 0b10 }],
    ['SHCFG', { shCfg: 1 }],
    ['MEV (the host sets it)', { mev: true }],
    ['S1ContextPtr above bit 51', { s1ContextPtr: 2 ** 52 }],
    ['Config = stage 2', { config: STE_CONFIG.S2_TRANS }],
    ['Config = nested', { config: STE_CONFIG.NESTED }],
    ['EATS = split stage', { eats: STE_EATS.SPLIT }],
    ['EATS = 0b11', { eats: 0b11 }],
  ])('refuses %s with EIO', (_what, fields) => {
    const { vsmmu } = vm();
    expect(errnoOf(() => vsmmu.domainAllocNested({ ste: vste({ ...S1_VSTE, ...fields }) }))).toBe('EIO');
  });

  // §5.2.2: the physical STE the host builds from these would be ILLEGAL (C_BAD_STE on every transaction).
  it.each([
    ['S1CDMax beyond the host SSIDSIZE', { ssidBits: 8 }, { s1CdMax: 9 }, { s1CdMax: 8 }],
    [
      'a 2-level CD table without CD2L',
      { twoLevelCdTable: false },
      { s1CdMax: 4, s1Fmt: STE_S1FMT.TWO_LEVEL_4K },
      { s1CdMax: 0, s1Fmt: STE_S1FMT.TWO_LEVEL_4K },
    ],
    [
      'S1STALLD with a fixed stall model',
      { stallModel: 'no-stall' },
      { s1Stalld: true },
      { s1Stalld: false },
    ],
    [
      'S1ContextPtr beyond the IAS',
      { oasBits: 40 },
      { s1ContextPtr: 2 ** 40 },
      { s1ContextPtr: 2 ** 40 - 64 },
    ],
  ])('refuses %s with EIO (the SMMU would find the STE ILLEGAL)', (_what, options, bad, good) => {
    const { vsmmu } = vm(options);
    expect(errnoOf(() => vsmmu.domainAllocNested({ ste: vste({ ...S1_VSTE, ...bad }) }))).toBe('EIO');
    expect(vsmmu.domainAllocNested({ ste: vste({ ...S1_VSTE, ...good }) }).type).toBe('nested');
    // Bypass and abort vSTEs take no stage-1 field, so the same values are harmless there.
    for (const config of [STE_CONFIG.BYPASS, STE_CONFIG.ABORT]) {
      expect(vsmmu.domainAllocNested({ ste: vste({ ...S1_VSTE, ...bad, config }) }).type).toBe('nested');
    }
  });

  it('S1CDMax = SSIDSIZE is accepted and translates end to end', () => {
    const { s, dev, vsmmu, guestStage1 } = vm({ ssidBits: 8 });
    const data = guestStage1([{ iova: DATA_IOVA, ipa: GPA_BASE + 0x2000n }]);
    const words = Array.from(data.ste);
    const withMax = vste({ ...vsteFields(words), s1CdMax: 8, s1Dss: STE_S1DSS.SSID0 });
    s.driver.attachDev(vsmmu.domainAllocNested({ ste: withMax }), dev);
    expect(dev.dmaRead(DATA_IOVA, 4).ok).toBe(true);
    expect(s.hw.queues.eventq.stats()).toMatchObject({ eventqRecorded: 0 });
  });

  it('refuses data of the wrong shape with EINVAL', () => {
    const { vsmmu } = vm();
    for (const data of [{}, { ste: new Uint32Array(16) }, { ste: [1, 2, 3] }, { ste: [-1, 0, 0, 0] }, 7]) {
      expect(errnoOf(() => vsmmu.domainAllocNested(data))).toBe('EINVAL');
    }
  });
});

describe('attaching a nested domain', () => {
  it('installs Config = nested: the guest S1 fields over the parent’s S2, MEV, no ATS without EATS', () => {
    const { s, dev, parent, vsmmu, guestStage1 } = vm();
    const data = guestStage1([{ iova: DATA_IOVA, ipa: GPA_BASE }]);
    const nested = vsmmu.domainAllocNested(data);
    s.driver.attachDev(nested, dev);
    const phys = ste(s, 0x10);
    const guest = vsteFields(data.ste);
    const host = decodeSte(parent.ste(false));
    expect(phys).toEqual({
      ...host,
      config: STE_CONFIG.NESTED,
      s1Fmt: guest.s1Fmt,
      s1ContextPtr: guest.s1ContextPtr,
      s1CdMax: guest.s1CdMax,
      s1Dss: guest.s1Dss,
      s1Cir: guest.s1Cir,
      s1Cor: guest.s1Cor,
      s1Csh: guest.s1Csh,
      s1Stalld: guest.s1Stalld,
      mev: true,
    });
    expect(phys.s2Vmid).toBe(vsmmu.vmid);
    expect(phys.eats).toBe(STE_EATS.ABORT);
    expect(s.driver.master(dev).ats).toBe(false);
  });

  it('DMA walks the guest’s CD and stage-1 tables through stage 2', () => {
    const { s, dev, ram, vsmmu, guestStage1 } = vm();
    s.driver.attachDev(
      vsmmu.domainAllocNested(guestStage1([{ iova: DATA_IOVA, ipa: GPA_BASE + 0x3000n }])),
      dev,
    );
    expect(dev.dmaWrite(DATA_IOVA + 0x10n, Uint8Array.of(0x5a)).ok).toBe(true);
    expect(s.read(ram + 0x3010n, 1)[0]).toBe(0x5a);
  });

  it('guest bypass installs the parent’s stage 2 alone; guest abort aborts; neither needs a vDEVICE', () => {
    const { s, dev, ram, parent, vsmmu } = vm();
    vsmmu.vdeviceDestroy(dev);
    s.driver.attachDev(vsmmu.domainAllocNested({ ste: vste({ v: true, config: STE_CONFIG.BYPASS }) }), dev);
    expect(s.driver.streamTable.readSte(0x10)).toEqual(parent.ste(false));
    expect(dev.dmaWrite(GPA_BASE + 0x20n, Uint8Array.of(9)).ok).toBe(true);
    expect(s.read(ram + 0x20n, 1)[0]).toBe(9);
    s.driver.attachDev(vsmmu.domainAllocNested({ ste: vste({ v: true, config: STE_CONFIG.ABORT }) }), dev);
    expect(ste(s, 0x10).config).toBe(STE_CONFIG.ABORT);
    expect(dev.dmaWrite(GPA_BASE, Uint8Array.of(9)).ok).toBe(false);
  });

  it('a translating vSTE needs the device’s vDEVICE (ENOENT) and no attached PASID (EBUSY)', () => {
    const { s, dev, vsmmu, guestStage1 } = vm({}, { pasidBits: 8 });
    const nested = vsmmu.domainAllocNested(guestStage1([]));
    const s1 = s.driver.domainAllocPaging({ pasid: true });
    s.driver.setDevPasid!(s1, dev, 3);
    expect(errnoOf(() => s.driver.attachDev(nested, dev))).toBe('EBUSY');
    s.driver.removeDevPasid!(dev, 3);
    vsmmu.vdeviceDestroy(dev);
    expect(errnoOf(() => s.driver.attachDev(nested, dev))).toBe('ENOENT');
    vsmmu.vdeviceAlloc(dev, BigInt(VSID));
    s.driver.attachDev(nested, dev);
    // The CD table is the guest's now: no PASID attach meanwhile.
    expect(errnoOf(() => s.driver.setDevPasid!(s1, dev, 3))).toBe('EINVAL');
    expect(errnoOf(() => nested.free())).toBe('EBUSY');
    s.driver.attachDev(s.driver.blockedDomain, dev);
    nested.free();
    expect(errnoOf(() => s.driver.attachDev(nested, dev))).toBe('EINVAL');
  });

  it('vSTE.EATS = full turns ATS on at an ATS endpoint; a parent unmap invalidates its whole ATC', () => {
    const { s, dev, parent, vsmmu, guestStage1 } = vm({}, { atcEntries: 16 });
    const data = guestStage1([{ iova: DATA_IOVA, ipa: GPA_BASE }]);
    const withAts = vste({ ...vsteFields(data.ste), eats: STE_EATS.FULL });
    s.driver.attachDev(vsmmu.domainAllocNested({ ste: withAts }), dev);
    expect(ste(s, 0x10).eats).toBe(STE_EATS.FULL);
    expect(s.driver.master(dev).ats).toBe(true);
    expect(dev.dmaWrite(DATA_IOVA, Uint8Array.of(1)).ok).toBe(true);
    expect(dev.atc!.lookup(NO_PASID, Number(DATA_IOVA / 4096n))).toBeDefined();
    parent.unmap(iova(GPA_BASE + 0x80000n), 4n * KiB);
    parent.iotlbSync();
    const inv = lastCommands(s, 2).map((c) => decodeCommand(c, s.driver.features));
    expect(inv[0]).toEqual({
      ok: true,
      command: expect.objectContaining({ op: 'ATC_INV', streamId: 0x10, size: 52, addressPage: 0 }),
    });
    expect(dev.atc!.lookup(NO_PASID, Number(DATA_IOVA / 4096n))).toBeUndefined();
  });
});

describe('guest invalidation commands (Linux arm_vsmmu_convert_user_cmd)', () => {
  function attached() {
    const v = vm({}, { atcEntries: 16 });
    const nested = v.vsmmu.domainAllocNested(v.guestStage1([{ iova: DATA_IOVA, ipa: GPA_BASE }]));
    v.s.driver.attachDev(nested, v.dev);
    return { ...v, nested };
  }

  it('TLBI_NH_* get the vSMMU’s VMID; NSNH_ALL becomes NH_ALL; CFGI_CD/CD_ALL/ATC_INV get the StreamID', () => {
    const { s, vsmmu } = attached();
    const vmid = vsmmu.vmid;
    const cases: [Uint32Array, Uint32Array][] = [
      [encodeTlbiNhAll({ vmid: 0 }), encodeTlbiNhAll({ vmid })],
      [encodeTlbiNhAsid({ vmid: 3, asid: 7 }), encodeTlbiNhAsid({ vmid, asid: 7 })],
      [
        encodeTlbiNhVa({ vmid: 9, asid: 7, addressPage: 0x10000, leaf: true }),
        encodeTlbiNhVa({ vmid, asid: 7, addressPage: 0x10000, leaf: true }),
      ],
      [encodeTlbiNsnhAll(), encodeTlbiNhAll({ vmid })],
      [
        encodeCfgiCd({ streamId: VSID, substreamId: 0, leaf: true }),
        encodeCfgiCd({ streamId: 0x10, substreamId: 0, leaf: true }),
      ],
      [encodeCfgiCdAll({ streamId: VSID }), encodeCfgiCdAll({ streamId: 0x10 })],
      [
        encodeAtcInv({ streamId: VSID, ssv: false, substreamId: 0, size: 52, addressPage: 0 }),
        encodeAtcInv({ streamId: 0x10, ssv: false, substreamId: 0, size: 52, addressPage: 0 }),
      ],
    ];
    for (const [guest, host] of cases) {
      expect(vsmmu.cacheInvalidate([guest])).toEqual({ handled: 1 });
      expect(lastCommands(s, 2)).toEqual([host, encodeCmdSync({ cs: 0 })]);
    }
  });

  it('the guest’s TLBI reaches the VM’s TLB entries whatever VMID it wrote', () => {
    const { s, dev, ram, vsmmu, nested, guestStage1 } = attached();
    expect(dev.dmaWrite(DATA_IOVA, Uint8Array.of(1)).ok).toBe(true);
    // The guest moves DATA_IOVA to another page under the same ASID, without invalidating yet.
    const moved = vsmmu.domainAllocNested(guestStage1([{ iova: DATA_IOVA, ipa: GPA_BASE + 0x1000n }]));
    s.driver.attachDev(moved, dev);
    nested.free();
    expect(dev.dmaWrite(DATA_IOVA, Uint8Array.of(2)).ok).toBe(true);
    expect(s.read(ram, 1)[0]).toBe(2); // stale: the old page
    vsmmu.cacheInvalidate([encodeTlbiNhAsid({ vmid: 0xff, asid: 7 })]);
    expect(dev.dmaWrite(DATA_IOVA, Uint8Array.of(3)).ok).toBe(true);
    expect(s.read(ram + 0x1000n, 1)[0]).toBe(3);
  });

  it('refuses other commands, unknown vSIDs and commands the SMMU would find illegal with EIO, after issuing the ones before', () => {
    const { s, vsmmu } = attached();
    const good = encodeTlbiNhAsid({ vmid: 0, asid: 7 });
    const bad: [string, Uint32Array][] = [
      ['CFGI_STE', encodeCfgiSte({ streamId: VSID, leaf: true })],
      ['TLBI_S12_VMALL', encodeTlbiS12Vmall({ vmid: 1 })],
      ['CMD_SYNC', encodeCmdSync({ cs: 0 })],
      ['unknown vSID', encodeCfgiCdAll({ streamId: VSID + 1 })],
      ['reserved bits', Uint32Array.of(CMD_OPCODE.TLBI_NH_ALL | (1 << 12), 0, 0, 0)],
    ];
    for (const [what, command] of bad) {
      const before = s.driver.cmdq.issued.get('CMD_TLBI_NH_ASID') ?? 0;
      const result = vsmmu.cacheInvalidate([good, good, command, good]);
      expect(result.handled, what).toBe(2);
      expect(result.error?.code, what).toBe('EIO');
      expect(s.driver.cmdq.issued.get('CMD_TLBI_NH_ASID'), what).toBe(before + 2);
    }
    expect(s.driver.cmdq.errors).toBe(0);
    expect(vsmmu.cacheInvalidate([new Uint32Array(3)]).error?.code).toBe('EINVAL');
  });

  it('goes out in batches of 63 commands + CMD_SYNC, as Linux', () => {
    const { s, vsmmu } = attached();
    const syncs = s.driver.cmdq.syncs;
    const entries = Array.from({ length: 130 }, () => encodeTlbiNhAsid({ vmid: 0, asid: 7 }));
    expect(vsmmu.cacheInvalidate(entries)).toEqual({ handled: 130 });
    expect(s.driver.cmdq.syncs - syncs).toBe(3);
  });
});

describe('events of nested devices (Linux arm_vmaster_report_event)', () => {
  it('stage-1 faults go to the vEVENTQ with the vSID, word for word; stage-2 faults stay the host’s', () => {
    const { s, dev, vsmmu, events, guestStage1 } = vm();
    // DATA_IOVA + 4K is not in the guest's table (stage 1); DATA_IOVA maps an IPA stage 2 does not.
    const data = guestStage1([{ iova: DATA_IOVA, ipa: GPA_BASE + GPA_SIZE }]);
    s.driver.attachDev(vsmmu.domainAllocNested(data), dev);
    const hostFaults = s.faults.length;
    expect(dev.dmaWrite(DATA_IOVA + 0x1000n, Uint8Array.of(1)).ok).toBe(false);
    s.service();
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe(SMMUV3_VEVENT_TYPE);
    const forwarded = decodeEvent(events[0]!.record);
    expect(forwarded).toMatchObject({ id: EVENT_ID.F_TRANSLATION, streamId: VSID, s2: false, rnw: false });
    expect(forwarded.inputAddrPage).toBe(Number((DATA_IOVA + 0x1000n) / 4096n));
    expect(s.faults).toHaveLength(hostFaults);
    expect(s.driver.stats.forwardedEvents).toBe(1);

    expect(dev.dmaWrite(DATA_IOVA, Uint8Array.of(1)).ok).toBe(false);
    s.service();
    expect(events).toHaveLength(1);
    expect(s.faults.at(-1)).toMatchObject({
      device: 'dev0',
      fault: { vendorCode: 'F_TRANSLATION', stage: 2 },
    });
  });

  it('without a vDEVICE (guest bypass) the host reports the event', () => {
    const { s, dev, vsmmu, events } = vm();
    vsmmu.vdeviceDestroy(dev);
    s.driver.attachDev(vsmmu.domainAllocNested({ ste: vste({ v: true, config: STE_CONFIG.BYPASS }) }), dev);
    expect(dev.dmaWrite(GPA_BASE + GPA_SIZE, Uint8Array.of(1)).ok).toBe(false);
    s.service();
    expect(events).toEqual([]);
    expect(s.faults.at(-1)?.fault.vendorCode).toBe('F_TRANSLATION');
  });
});

describe('stalls of nested masters', () => {
  /** A vSTE with S1STALLD = 0 over a guest CD 0 with S = 1 (stall on faults), DATA_IOVA mapped. */
  function stallingGuest(spec = {}) {
    const rig = vm({}, spec);
    const data = rig.guestStage1([{ iova: DATA_IOVA, ipa: GPA_BASE }]);
    const guest = vsteFields(data.ste);
    const cdAt = Number(rig.gpaToHpa(BigInt(guest.s1ContextPtr)));
    const cd = new Uint32Array(16);
    rig.s.bus.readWords(cdAt, cd, 16, rig.s.bus.counter('guest'));
    rig.s.bus.writeWords(cdAt, encodeCd({ ...decodeCd(cd), s: true }), 16, rig.s.bus.counter('guest'));
    rig.s.driver.attachDev(
      rig.vsmmu.domainAllocNested({ ste: vste({ ...guest, s1Stalld: false }) }),
      rig.dev,
    );
    return rig;
  }

  it('a master that cannot stall gets S1STALLD = 1 whatever the vSTE says: a guest CD with S = 1 is C_BAD_CD, forwarded; nothing is held', () => {
    // IHI 0070 §5.2 S1STALLD, §5.4 CdIllegal(): on a stall-capable SMMU a CD with S = 1 under S1STALLD = 1
    // is ILLEGAL, the event a no-stall SMMU gives that CD; nobody could resume a stall of this master.
    const { s, dev, events } = stallingGuest();
    expect(ste(s, 0x10)).toMatchObject({ config: STE_CONFIG.NESTED, s1Stalld: true });
    for (const at of [DATA_IOVA, DATA_IOVA + 0x1000n]) {
      expect(dev.dmaRead(at, 1)).toMatchObject({ ok: false, reason: 'fault' });
    }
    expect(s.hw.stalls.size).toBe(0);
    s.service();
    expect(events.map((e) => decodeEvent(e.record))).toMatchObject([
      { id: EVENT_ID.C_BAD_CD, streamId: VSID },
      { id: EVENT_ID.C_BAD_CD, streamId: VSID },
    ]);
  });

  it('a master that can stall keeps the vSTE’s S1STALLD; its stall goes to the host’s IOPF path (not the vEVENTQ) and is resumed there', () => {
    // Linux arm_smmu_handle_event: a stall record is reported to iommu_report_device_fault before any
    // vEVENTQ forwarding; with no handler the core answers it and arm_smmu_page_response sends CMD_RESUME.
    const { s, dev, events } = stallingGuest({ canStall: true });
    expect(ste(s, 0x10)).toMatchObject({ config: STE_CONFIG.NESTED, s1Stalld: false, s2S: true });
    expect(dev.dmaRead(DATA_IOVA, 1).ok).toBe(true);
    expect(dev.dmaRead(DATA_IOVA + 0x1000n, 1)).toMatchObject({ ok: false, reason: 'stalled' });
    s.service();
    expect(events).toEqual([]);
    expect(s.pageRequests).toMatchObject([
      { device: 'dev0', request: { pasid: NO_PASID, iova: DATA_IOVA + 0x1000n, groupIndex: 0 } },
    ]);
    s.driver.pageResponse(dev, { pasid: NO_PASID, groupIndex: 0, code: 'invalid' });
    expect(s.hw.stalls.size).toBe(0);
    expect(dev.stalledDmaCount).toBe(0);
  });
});
