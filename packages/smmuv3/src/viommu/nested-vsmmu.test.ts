/**
 * The nested vSMMUv3 (nested-vsmmu.ts) between a guest SMMUv3 driver and the host's iommufd: which iommufd
 * calls the guest's STE traps, invalidations and enables turn into, in which order, and what the guest
 * sees back (its Event queue, its Command queue stopping with CERROR_ILL). The iommufd is a recording
 * stand-in here (the host side is tested in driver/nesting.test.ts); the guest runs the real SMMUv3 driver.
 */
import {
  EndpointDevice,
  FrameAllocator,
  hpa,
  InterruptController,
  type IommuFd,
  IommufdError,
  iova,
  isIommufdError,
  MemoryBus,
  MmioWindow,
  Tracer,
  type Vevent,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { createDriverSystem } from '../../test/driver-system.js';
import { CMDQ_BATCH_ENTRIES } from '../driver/cmdq.js';
import { STE_NESTING_ALLOWED } from '../driver/entry-used.js';
import { Smmuv3Driver } from '../driver/smmuv3-driver.js';
import {
  decodeCommand,
  encodeAtcInv,
  encodeCfgiAll,
  encodeCfgiCd,
  encodeCfgiCdAll,
  encodeCfgiSte,
  encodeCfgiSteRange,
  encodePrefetchConfig,
  encodeTlbiNhAll,
  encodeTlbiNhAsid,
  encodeTlbiNhVa,
  encodeTlbiNhVaa,
  encodeTlbiNsnhAll,
} from '../hw/commands.js';
import { decodeEvent, EVENT_ID, EVENT_WORDS, encodeEvent } from '../hw/events.js';
import { EVENTQ_ENTRY_BYTES, queueIndex } from '../hw/queue-index.js';
import { CR0_SMMUEN, CR2_RECINVSID, GBPA_ABORT, GBPA_UPDATE, GERROR_CMDQ_ERR, REG } from '../hw/regs.js';
import { decodeSte, encodeSte, STE_CONFIG, STE_WORDS } from '../hw/ste.js';
import { NestedVsmmu } from './nested-vsmmu.js';

const GUEST_RAM = 0x4000_0000;
const GUEST_RAM_SIZE = 64 * 2 ** 20;
const VSMMU_BASE = 0x0905_0000n;
const S2_HWPT = 7;
const ANY_DEV = 1;

type Call = readonly [string, ...unknown[]];

/** iommufd as the vSMMU uses it, recording every call; IDs count from 100. */
function fakeIommufd() {
  const calls: Call[] = [];
  let next = 100;
  const fd = {
    /** Makes the next hwptAlloc of a nested HWPT (not abort/bypass) fail with EIO. */
    refuseNested: false,
    /** Makes hwptInvalidate fail at entry `handled` with EIO. */
    rejectAt: undefined as number | undefined,
    /** The rejection carries no `handled` count. */
    withoutCount: false,
    vevents: [] as Vevent[],
    viommuAlloc: (devId: number, hwptId: number, type: string) => {
      calls.push(['viommuAlloc', devId, hwptId, type]);
      return next++;
    },
    hwptAlloc: (request: { devId: number; ptId: number; data: { ste: Uint32Array } }) => {
      calls.push(['hwptAlloc', request.devId, request.ptId, Array.from(request.data.ste)]);
      const config = decodeSte(
        Uint32Array.from({ length: STE_WORDS }, (_, i) => request.data.ste[i] ?? 0),
      ).config;
      if (fd.refuseNested && config === STE_CONFIG.S1_TRANS) throw new IommufdError('EIO', 'vSTE refused');
      return next++;
    },
    veventqAlloc: (viommuId: number, type: string, depth: number) => {
      calls.push(['veventqAlloc', viommuId, type, depth]);
      return next++;
    },
    vdeviceAlloc: (viommuId: number, devId: number, virtId: bigint) => {
      calls.push(['vdeviceAlloc', viommuId, devId, virtId]);
      return next++;
    },
    replace: (devId: number, hwptId: number) => {
      calls.push(['replace', devId, hwptId]);
      return hwptId;
    },
    destroy: (id: number) => {
      calls.push(['destroy', id]);
    },
    hwptInvalidate: (id: number, entries: readonly Uint32Array[]) => {
      calls.push([
        'hwptInvalidate',
        id,
        entries.map((e) => decodeCommand(e, FEATURES_ANY).ok && Array.from(e)),
      ]);
      if (fd.rejectAt !== undefined && fd.rejectAt < entries.length) {
        const context = fd.withoutCount ? {} : { handled: fd.rejectAt };
        throw new IommufdError('EIO', 'no vDEVICE with vSID 0x99', context);
      }
      return { handled: entries.length };
    },
    veventqRead: (id: number) => {
      calls.push(['veventqRead', id]);
      return fd.vevents.splice(0);
    },
  };
  return { fd, calls };
}

/** Features that decode every command (the stand-in only checks that entries are commands). */
const FEATURES_ANY = createDriverSystem().driver.features;

/** A VM: guest RAM and bus, the nested vSMMU on it, the guest's SMMUv3 driver (not probed yet). */
function vm(options: { gbpaAbort?: boolean } = {}) {
  const host = createDriverSystem({});
  const hostDev = host.device('host0', 0x10);
  host.probe(hostDev);
  const hwInfo = host.driver.hwInfo(hostDev);
  const { fd, calls } = fakeIommufd();
  const bus = new MemoryBus();
  bus.addRam('ram', GUEST_RAM, GUEST_RAM_SIZE);
  const tracer = new Tracer();
  const ic = new InterruptController();
  const irq = (name: string) => ic.line(`vsmmu.${name}`);
  const vsmmu = new NestedVsmmu({
    name: 'vm0.viommu',
    mode: 'nested',
    bus,
    base: hpa(VSMMU_BASE),
    tracer,
    irq,
    nested: { fd: fd as unknown as IommuFd, s2HwptId: S2_HWPT, hwInfo, anyDevId: ANY_DEV },
  });
  const memory = new FrameAllocator([{ base: GUEST_RAM, size: GUEST_RAM_SIZE / 2 }], (b, n) =>
    bus.discardRam(b, n),
  );
  const faults: unknown[] = [];
  const driver = new Smmuv3Driver({
    instance: 'guest-smmu',
    base: hpa(VSMMU_BASE),
    options: {} as never,
    bus,
    tracer,
    irq,
    memory,
    reportFault: (fault) => faults.push(fault),
    reportPageRequest: () => {},
  });
  const counter = bus.counter('test');
  const regs = new MmioWindow(bus, VSMMU_BASE, counter);
  if (options.gbpaAbort) regs.write32(REG.GBPA, GBPA_ABORT | GBPA_UPDATE);
  /** A guest device: iommufd device `devId`, vSID `vsid`. */
  const device = (name: string, devId: number, vsid: number) => {
    vsmmu.addDevice({ name, devId, virtualId: vsid });
    return new EndpointDevice({ name, rid: vsid, streamId: vsid }, bus, undefined, tracer);
  };
  /** The guest's Event queue records since its CONS (the guest driver is not servicing interrupts). */
  const guestEvents = () => {
    const out: ReturnType<typeof decodeEvent>[] = [];
    const base = Number(BigInt(regs.read64(REG.EVENTQ_BASE)) & 0xffff_ffff_ffc0n);
    const log2 = Number(BigInt(regs.read64(REG.EVENTQ_BASE)) & 0x1fn);
    const prod = regs.read32(REG.EVENTQ_PROD);
    const words = new Uint32Array(EVENT_WORDS);
    for (let c = regs.read32(REG.EVENTQ_CONS); queueIndex(c, log2) !== queueIndex(prod, log2); c++) {
      bus.readWords(base + queueIndex(c, log2) * EVENTQ_ENTRY_BYTES, words, EVENT_WORDS, counter);
      out.push(decodeEvent(words));
    }
    return out;
  };
  return { vsmmu, fd, calls, driver, bus, regs, device, guestEvents, faults, tracer };
}

const masked = (ste: ArrayLike<number>) =>
  Array.from({ length: 4 }, (_, w) => (ste[w]! & STE_NESTING_ALLOWED[w]!) >>> 0);
const callsNamed = (calls: Call[], name: string) => calls.filter((c) => c[0] === name);
const RW = { read: true, write: true };

/** A probed guest with two devices (vSIDs 8 and 16, iommufd devices 1 and 2), calls cleared. */
function probed() {
  const v = vm();
  const a = v.device('a', 1, 8);
  const b = v.device('b', 2, 16);
  v.driver.probe();
  v.driver.probeDevice(a);
  v.driver.probeDevice(b);
  v.calls.length = 0;
  return { ...v, a, b };
}

/** Attaches a stage-1 domain (a page mapped) at the guest device. */
function attachS1(v: ReturnType<typeof probed>, dev: EndpointDevice) {
  const domain = v.driver.domainAllocPaging();
  domain.map(iova(0x1000n), hpa(BigInt(GUEST_RAM + GUEST_RAM_SIZE / 2)), 4096n, RW);
  v.driver.attachDev(domain, dev);
  return domain;
}

describe('NestedVsmmu: setup', () => {
  it('the first device allocates the vIOMMU, the abort and bypass HWPTs and a vEVENTQ; each device gets a vDEVICE', () => {
    const v = vm();
    v.device('a', 1, 8);
    v.device('b', 2, 16);
    const abortVste = Array.from(encodeSte({ v: true, config: STE_CONFIG.ABORT }).slice(0, 4));
    const bypassVste = Array.from(encodeSte({ v: true, config: STE_CONFIG.BYPASS }).slice(0, 4));
    expect(v.calls).toEqual([
      ['viommuAlloc', ANY_DEV, S2_HWPT, 'arm-smmuv3'],
      ['hwptAlloc', ANY_DEV, 100, abortVste],
      ['hwptAlloc', ANY_DEV, 100, bypassVste],
      ['veventqAlloc', 100, 'arm-smmuv3', 64],
      ['vdeviceAlloc', 100, 1, 8n],
      // SMMUEN = 0 and GBPA.ABORT = 0: the devices bypass (stage 2 only).
      ['replace', 1, 102],
      ['vdeviceAlloc', 100, 2, 16n],
      ['replace', 2, 102],
    ]);
    expect(v.vsmmu.attachment(8)).toBe(102);
    expect(v.vsmmu.attachment(9)).toBeUndefined();
    expect(v.vsmmu.mmio).toEqual({ base: VSMMU_BASE, size: v.vsmmu.programming.size });
  });

  it('with GBPA.ABORT the devices of a disabled vSMMU abort', () => {
    const v = vm({ gbpaAbort: true });
    v.device('a', 1, 8);
    expect(v.calls.at(-1)).toEqual(['replace', 1, 101]);
  });

  it('shows the guest the SMMU guestOptionsFromHwInfo derives: stage 1 only, no stalls, 16-bit vSIDs', () => {
    const v = vm();
    expect(v.vsmmu.features).toMatchObject({
      s1: true,
      s2: false,
      stallModel: 'no-stall',
      sidBits: 16,
      pri: false,
    });
  });

  it('the guest enabling the vSMMU reads every device’s STE (nothing reported: its tables may not exist yet)', () => {
    const v = vm();
    v.device('a', 1, 8);
    v.calls.length = 0;
    v.driver.probe();
    // The driver sets GBPA.ABORT first: its CFGI_ALL (SMMUEN still 0) moves the device to abort; its
    // TLBI_NSNH_ALL is forwarded. Enabling then reads vSID 8's STE: the guest's 2-level Stream table has no
    // level-2 array for it yet, C_BAD_STREAMID, not recorded.
    expect(v.calls).toEqual([
      ['replace', 1, 101],
      ['hwptInvalidate', 100, [Array.from(encodeTlbiNsnhAll())]],
    ]);
    expect(v.vsmmu.stats.steTraps).toBe(1);
    expect(v.guestEvents()).toEqual([]);
    // SMMUEN off again: GBPA (the guest driver set ABORT) decides.
    v.calls.length = 0;
    v.regs.write32(REG.CR0, 0);
    v.regs.write32(REG.CR0, 0);
    expect(v.calls).toEqual([]);
    expect(v.vsmmu.attachment(8)).toBe(101);
    v.regs.write32(REG.CR0, CR0_SMMUEN);
    expect(v.vsmmu.stats.steTraps).toBe(2);
  });
});

describe('NestedVsmmu: STE traps', () => {
  it('a stage-1 STE becomes a nested HWPT from qwords 0–1 masked to what the kernel takes', () => {
    const v = probed();
    attachS1(v, v.a);
    const ste = v.driver.streamTable.readSte(8);
    expect(callsNamed(v.calls, 'hwptAlloc')).toEqual([['hwptAlloc', 1, 100, masked(ste)]]);
    expect(v.calls.at(-1)).toEqual(['replace', 1, 106]);
    expect(v.vsmmu.attachment(8)).toBe(106);
    expect(v.vsmmu.sharedHwpts()).toEqual([{ hwptId: 106, vsids: [8] }]);
    expect(v.vsmmu.stats).toMatchObject({ nestedAllocs: 1, nestedShared: 0 });
  });

  it('STEs with the same stage-1 fields share one nested HWPT, freed when its last user leaves', () => {
    const v = probed();
    attachS1(v, v.a);
    v.calls.length = 0;
    // The guest points b's STE at a's CD table.
    v.driver.streamTable.writeSte(16, v.driver.streamTable.readSte(8));
    expect(v.calls).toEqual([['replace', 2, 106]]);
    expect(v.vsmmu.sharedHwpts()).toEqual([{ hwptId: 106, vsids: [8, 16] }]);
    expect(v.vsmmu.stats).toMatchObject({ nestedAllocs: 1, nestedShared: 1 });
    v.calls.length = 0;
    v.driver.attachDev(v.driver.blockedDomain, v.a);
    const attachCalls = () => v.calls.filter((c) => c[0] !== 'hwptInvalidate');
    expect(attachCalls()).toEqual([['replace', 1, 101]]);
    // The guest cleared CD 0 after the STE stopped using it: CFGI_CD of vSID 8 goes to the host.
    expect(callsNamed(v.calls, 'hwptInvalidate')[0]).toEqual([
      'hwptInvalidate',
      100,
      [Array.from(encodeCfgiCd({ streamId: 8, substreamId: 0, leaf: true }))],
    ]);
    v.calls.length = 0;
    v.driver.attachDev(v.driver.identityDomain, v.b);
    expect(attachCalls()).toEqual([
      ['replace', 2, 102],
      ['destroy', 106],
    ]);
    expect(v.vsmmu.sharedHwpts()).toEqual([]);
  });

  it('a new S1ContextPtr gets a new HWPT, and the old one goes', () => {
    const v = probed();
    attachS1(v, v.a);
    v.calls.length = 0;
    const ste = decodeSte(v.driver.streamTable.readSte(8));
    v.driver.streamTable.writeSte(8, encodeSte({ ...ste, s1ContextPtr: ste.s1ContextPtr + 0x1000 }));
    const allocs = callsNamed(v.calls, 'hwptAlloc');
    expect(allocs).toHaveLength(1);
    expect(v.calls.slice(-2)).toEqual([
      ['replace', 1, 107],
      ['destroy', 106],
    ]);
  });

  it('CFGI_STE_RANGE and CFGI_ALL re-read the STEs of the vSIDs they cover, and only those', () => {
    const v = probed();
    v.calls.length = 0;
    const traps = () => v.vsmmu.stats.steTraps;
    const before = traps();
    v.driver.cmdq.issue(encodeCfgiSteRange({ streamId: 8, range: 2 })); // 2^3 vSIDs: 8..15
    expect(traps() - before).toBe(1);
    v.driver.cmdq.issue(encodeCfgiSteRange({ streamId: 16, range: 3 })); // 16..31
    expect(traps() - before).toBe(2);
    v.driver.cmdq.issue(encodeCfgiSteRange({ streamId: 0, range: 4 })); // 0..31
    expect(traps() - before).toBe(4);
    v.driver.cmdq.issue(encodeCfgiSte({ streamId: 9, leaf: true }));
    expect(traps() - before).toBe(4);
    v.driver.cmdq.issue(encodeCfgiAll());
    expect(traps() - before).toBe(6);
  });

  it('an STE the SMMU finds ILLEGAL attaches abort and records C_BAD_STE for the guest', () => {
    const v = probed();
    attachS1(v, v.a);
    v.calls.length = 0;
    const ste = decodeSte(v.driver.streamTable.readSte(8));
    // S1CDMax beyond the vSMMU's SSIDSIZE (§5.2.2 STE ILLEGAL).
    v.driver.streamTable.writeSte(8, encodeSte({ ...ste, s1CdMax: 31 }));
    expect(v.calls).toEqual([
      ['replace', 1, 101],
      ['destroy', 106],
    ]);
    const events = v.guestEvents();
    expect(events.map((e) => [e.id, e.streamId])).toEqual([[EVENT_ID.C_BAD_STE, 8]]);
  });

  it('a vSTE the host refuses attaches abort and records C_BAD_STE', () => {
    const v = probed();
    v.fd.refuseNested = true;
    attachS1(v, v.a);
    // Every CFGI_STE of the guest's update asked again, and each refusal was recorded; vSID 8 stays on abort.
    const allocs = callsNamed(v.calls, 'hwptAlloc');
    expect(allocs.length).toBeGreaterThan(0);
    expect(callsNamed(v.calls, 'replace')).toEqual([]);
    expect(v.vsmmu.attachment(8)).toBe(101);
    expect(v.vsmmu.sharedHwpts()).toEqual([]);
    expect(v.vsmmu.stats.nestedAllocs).toBe(0);
    const events = v.guestEvents();
    expect(events).toHaveLength(allocs.length);
    for (const e of events) expect([e.id, e.streamId]).toEqual([EVENT_ID.C_BAD_STE, 8]);
  });

  it('C_BAD_STREAMID (and its fetch address) only when the guest set CR2.RECINVSID', () => {
    const v = vm();
    v.device('a', 1, 8);
    v.driver.probe();
    // vSID 8's level-2 array does not exist: the trap reports C_BAD_STREAMID (the driver sets RECINVSID).
    v.driver.cmdq.issue(encodeCfgiSte({ streamId: 8, leaf: true }));
    expect(v.guestEvents().map((e) => [e.id, e.streamId])).toEqual([[EVENT_ID.C_BAD_STREAMID, 8]]);
    // CR2 may change only with SMMUEN = 0 (§6.3.12).
    const cr0 = v.regs.read32(REG.CR0);
    v.regs.write32(REG.CR0, cr0 & ~CR0_SMMUEN);
    v.regs.write32(REG.CR2, v.regs.read32(REG.CR2) & ~CR2_RECINVSID);
    v.regs.write32(REG.CR0, cr0);
    v.driver.cmdq.issue(encodeCfgiSte({ streamId: 8, leaf: true }));
    expect(v.guestEvents()).toHaveLength(1);
  });
});

describe('NestedVsmmu: guest invalidations', () => {
  it('are collected and forwarded with one IOMMU_HWPT_INVALIDATE at the next CMD_SYNC; prefetches do nothing', () => {
    const v = probed();
    const stats = { ...v.vsmmu.stats };
    const tlbi = encodeTlbiNhAsid({ vmid: 0, asid: 5 });
    const va = encodeTlbiNhVa({ vmid: 0, asid: 5, addressPage: 0x10, leaf: true });
    v.driver.cmdq.submit([tlbi, encodePrefetchConfig({ streamId: 8 }), va], false);
    expect(callsNamed(v.calls, 'hwptInvalidate')).toEqual([]);
    v.driver.cmdq.submit([], true);
    expect(v.calls).toEqual([['hwptInvalidate', 100, [Array.from(tlbi), Array.from(va)]]]);
    expect(v.vsmmu.stats).toMatchObject({
      invalidations: stats.invalidations + 1,
      commandsForwarded: stats.commandsForwarded + 2,
      commandsRejected: 0,
    });
    // A CMD_SYNC with nothing pending forwards nothing.
    v.driver.cmdq.submit([], true);
    expect(callsNamed(v.calls, 'hwptInvalidate')).toHaveLength(1);
  });

  it(`a batch of ${CMDQ_BATCH_ENTRIES} goes out without waiting for the CMD_SYNC`, () => {
    const v = probed();
    const commands = Array.from({ length: CMDQ_BATCH_ENTRIES + 1 }, (_, i) =>
      encodeTlbiNhAsid({ vmid: 0, asid: i + 1 }),
    );
    v.driver.cmdq.submit(commands.slice(0, CMDQ_BATCH_ENTRIES - 1), false);
    expect(callsNamed(v.calls, 'hwptInvalidate')).toEqual([]);
    v.driver.cmdq.submit(commands.slice(CMDQ_BATCH_ENTRIES - 1), false);
    const sent = callsNamed(v.calls, 'hwptInvalidate');
    expect(sent).toHaveLength(1);
    expect(sent[0]![2]).toHaveLength(CMDQ_BATCH_ENTRIES);
  });

  it('an STE trap forwards the invalidations before it first, keeping the guest’s order', () => {
    const v = probed();
    const tlbi = encodeTlbiNhAsid({ vmid: 0, asid: 5 });
    v.driver.cmdq.submit([tlbi, encodeCfgiSte({ streamId: 8, leaf: true })], false);
    expect(v.calls[0]).toEqual(['hwptInvalidate', 100, [Array.from(tlbi)]]);
  });

  it('a rejected entry stops the guest’s queue at that command with CERROR_ILL; the entries before it took effect', () => {
    const v = probed();
    v.fd.rejectAt = 1;
    const stats = { ...v.vsmmu.stats };
    const ok = encodeTlbiNhAsid({ vmid: 0, asid: 5 });
    const bad = encodeTlbiNhAsid({ vmid: 0, asid: 6 });
    const after = encodeTlbiNhAsid({ vmid: 0, asid: 7 });
    const start = v.driver.cmdq.producer;
    let error: unknown;
    try {
      v.driver.cmdq.submit([ok, bad, after]);
    } catch (e) {
      error = e;
    }
    // The guest driver saw its CMDQ stop at the second command with CERROR_ILL and skipped it.
    expect(isIommufdError(error) && error.code).toBe('EIO');
    expect(v.driver.cmdq.lastFailures.map((f) => [f.command, f.error, f.index])).toEqual([
      ['CMD_TLBI_NH_ASID', 'CERROR_ILL', start + 1],
    ]);
    // The guest's queue resumed at the CMD_SYNC put in the rejected command's place: the command after
    // it is consumed again and forwarded at the final CMD_SYNC.
    expect(callsNamed(v.calls, 'hwptInvalidate')).toEqual([
      ['hwptInvalidate', 100, [ok, bad, after].map((c) => Array.from(c))],
      ['hwptInvalidate', 100, [Array.from(after)]],
    ]);
    v.fd.rejectAt = undefined;
    expect(v.vsmmu.stats).toMatchObject({
      commandsForwarded: stats.commandsForwarded + 2,
      commandsRejected: stats.commandsRejected + 1,
    });
    const gerror = v.regs.read32(REG.GERROR) ^ v.regs.read32(REG.GERRORN);
    expect(gerror & GERROR_CMDQ_ERR).toBe(0); // acknowledged by the guest driver
  });

  it('a rejection without a count stops the queue at the first command of the batch', () => {
    const v = probed();
    v.fd.rejectAt = 0;
    const forwarded = v.vsmmu.stats.commandsForwarded;
    const start = v.driver.cmdq.producer;
    expect(() =>
      v.driver.cmdq.submit([encodeTlbiNhAsid({ vmid: 0, asid: 5 }), encodeTlbiNhAsid({ vmid: 0, asid: 6 })]),
    ).toThrowError(IommufdError);
    expect(v.driver.cmdq.lastFailures[0]).toMatchObject({ error: 'CERROR_ILL', index: start });
    expect(v.vsmmu.stats.commandsForwarded).toBe(forwarded);
  });

  it('a rejected invalidation before an STE trap fails the CFGI_STE too', () => {
    const v = probed();
    v.fd.rejectAt = 0;
    const start = v.driver.cmdq.producer;
    expect(() =>
      v.driver.cmdq.submit([
        encodeTlbiNhAsid({ vmid: 0, asid: 5 }),
        encodeCfgiSte({ streamId: 8, leaf: true }),
      ]),
    ).toThrowError(IommufdError);
    expect(v.driver.cmdq.lastFailures[0]).toMatchObject({ command: 'CMD_TLBI_NH_ASID', index: start });
  });
});

describe('NestedVsmmu: events and teardown', () => {
  it('service moves vEVENTQ records into the guest’s Event queue; a lost-events marker overflows it', () => {
    const v = probed();
    expect(vm().vsmmu.service()).toBe(0); // no vIOMMU yet: nothing to read
    const record = encodeEvent({ id: EVENT_ID.F_TRANSLATION, streamId: 8, inputAddrPage: 0x12 });
    v.fd.vevents.push({ sequence: 0, lostEvents: false, record }, { sequence: 1, lostEvents: true });
    expect(v.vsmmu.service()).toBe(2);
    expect(v.calls).toEqual([['veventqRead', 103]]);
    const events = v.guestEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ id: EVENT_ID.F_TRANSLATION, streamId: 8 });
    // OVFLG toggled in the guest's EVENTQ_PROD (§7.4).
    expect(v.regs.read32(REG.EVENTQ_PROD) >>> 31).toBe(1);
    expect(v.vsmmu.stats.eventsDelivered).toBe(1);
    expect(v.vsmmu.service()).toBe(0);
  });

  it('destroy moves devices back to stage 2 and destroys vDEVICEs, nested HWPTs, abort, bypass, vEVENTQ, vIOMMU', () => {
    const v = probed();
    attachS1(v, v.a);
    v.calls.length = 0;
    v.vsmmu.destroy();
    expect(v.calls).toEqual([
      ['replace', 1, S2_HWPT],
      ['destroy', 104],
      ['replace', 2, S2_HWPT],
      ['destroy', 105],
      ['destroy', 106],
      ['destroy', 101],
      ['destroy', 102],
      ['destroy', 103],
      ['destroy', 100],
    ]);
    expect(v.bus.read(VSMMU_BASE, 4, v.bus.counter('test')).ok).toBe(false);
  });
});

describe('NestedVsmmu: more of the guest’s commands', () => {
  it('forwards every invalidation a guest may send, as it sent it', () => {
    const v = probed();
    const commands = [
      encodeCfgiCd({ streamId: 8, substreamId: 1, leaf: true }),
      encodeCfgiCdAll({ streamId: 16 }),
      encodeTlbiNhAll({ vmid: 0 }),
      encodeTlbiNhAsid({ vmid: 0, asid: 3 }),
      encodeTlbiNhVa({ vmid: 0, asid: 3, addressPage: 0x40, leaf: false }),
      encodeTlbiNhVaa({ vmid: 0, addressPage: 0x41, leaf: true }),
      encodeTlbiNsnhAll(),
      encodeAtcInv({ streamId: 8, ssv: false, substreamId: 0, addressPage: 0, size: 52 }),
    ];
    v.driver.cmdq.submit(commands);
    expect(v.calls).toEqual([['hwptInvalidate', 100, commands.map((c) => Array.from(c))]]);
  });

  it('before any device there is no vIOMMU: invalidations go nowhere and the guest’s queue runs on', () => {
    const v = vm();
    v.driver.probe();
    v.driver.cmdq.submit([encodeTlbiNhAsid({ vmid: 0, asid: 3 })]);
    expect(v.calls).toEqual([]);
    expect(v.driver.cmdq.lastFailures).toEqual([]);
  });

  it('a rejection that says nothing about handled entries stops the queue at the batch’s first command', () => {
    const v = probed();
    v.fd.rejectAt = 1;
    v.fd.withoutCount = true;
    const forwarded = v.vsmmu.stats.commandsForwarded;
    const start = v.driver.cmdq.producer;
    expect(() =>
      v.driver.cmdq.submit([encodeTlbiNhAsid({ vmid: 0, asid: 5 }), encodeTlbiNhAsid({ vmid: 0, asid: 6 })]),
    ).toThrowError(IommufdError);
    expect(v.driver.cmdq.lastFailures[0]).toMatchObject({ error: 'CERROR_ILL', index: start });
    // Only the second command, consumed again after the guest skipped the first, went through.
    expect(v.vsmmu.stats.commandsForwarded).toBe(forwarded + 1);
  });

  it('a CFGI_STE_RANGE ending just below a vSID leaves it alone', () => {
    const v = probed();
    const traps = v.vsmmu.stats.steTraps;
    v.driver.cmdq.issue(encodeCfgiSteRange({ streamId: 0, range: 2 })); // 2^(2+1) vSIDs: 0..7
    v.driver.cmdq.issue(encodeCfgiSteRange({ streamId: 12, range: 1 })); // vSIDs 12..15
    expect(v.vsmmu.stats.steTraps).toBe(traps);
  });

  it('an STE the vSMMU cannot fetch is F_STE_FETCH with the address it tried, for the guest', () => {
    const v = probed();
    const cr0 = v.regs.read32(REG.CR0);
    v.regs.write32(REG.CR0, cr0 & ~CR0_SMMUEN);
    // A linear Stream table at a GPA with no RAM behind it (§6.3.24).
    v.regs.write64(REG.STRTAB_BASE, 0x1000_0000n);
    v.regs.write32(REG.STRTAB_BASE_CFG, 6);
    v.regs.write32(REG.CR0, cr0);
    v.driver.cmdq.issue(encodeCfgiSte({ streamId: 8, leaf: true }));
    expect(v.guestEvents().map((e) => [e.id, e.streamId, e.fetchAddr])).toEqual([
      [EVENT_ID.F_STE_FETCH, 8, 0x1000_0000 + 8 * 64],
    ]);
    expect(v.vsmmu.attachment(8)).toBe(101);
  });

  it('a vEVENTQ with only a lost-events marker overflows the guest’s Event queue and delivers nothing', () => {
    const v = probed();
    v.fd.vevents.push({ sequence: 0, lostEvents: true });
    expect(v.vsmmu.service()).toBe(1);
    expect(v.guestEvents()).toEqual([]);
    expect(v.regs.read32(REG.EVENTQ_PROD) >>> 31).toBe(1);
    expect(v.vsmmu.stats.eventsDelivered).toBe(0);
  });

  it('traces what it traps and forwards (frontend layer, the vSMMU’s name)', () => {
    const v = vm();
    v.tracer.startRecording();
    const a = v.device('a', 1, 8);
    v.driver.probe();
    v.driver.probeDevice(a);
    v.fd.vevents.push({ sequence: 0, lostEvents: true });
    v.vsmmu.service();
    v.vsmmu.destroy();
    const records = v.tracer.stopRecording().filter((r) => r.layer === 'frontend');
    expect(records.every((r) => r.source === 'vm0.viommu')).toBe(true);
    const names = new Set(records.map((r) => r.name));
    for (const name of ['viommu', 'vdevice', 'cr0', 'forward', 'ste.refuse', 'vevent', 'destroy'])
      expect(names).toContain(`vsmmu.${name}`);
  });
});
