/**
 * Probe and shutdown of a unit (probe.ts): the registers and memory a probed unit is left with, as Linux's
 * `init_dmars` leaves them, the invalidations that reached the hardware, the MSI set-up, and what changes
 * with the unit's capabilities.
 */
import {
  allocDriverPages,
  errnoOf,
  freeDriverPages,
  type MmioWindow,
  readDriverMemory,
  Tracer,
  writeDriverMemory,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { driverRig, MSI_WINDOW, UNIT_DEVICE_ID } from '../../test/driver-rig.js';
import {
  EVENT_CTL_IM,
  GCMD_SRTP,
  GCMD_TE,
  GCMD_WBF,
  GSTS_IRES,
  GSTS_QIES,
  GSTS_RTPS,
  GSTS_TES,
  GSTS_WBFS,
  IQA_DW,
  PMEN_EPM,
  REG,
  TTM,
} from '../hw/regs.js';
import { GlobalCommands } from './driver-host.js';
import { enableTranslation, PRQ_ORDER, probeUnit, shutdownUnit } from './probe.js';

const reg64 = (r: ReturnType<typeof driverRig>, offset: number) =>
  r.reg(offset + 4) * 2 ** 32 + r.reg(offset);

describe('probe of a scalable-mode unit (the default options)', () => {
  const r = driverRig();
  const unit = probeUnit(r.context, r.lookup);

  it('chooses scalable mode and reads CAP/ECAP as the hardware reports them', () => {
    expect(unit.scalable).toBe(true);
    expect(unit.unit.capWords).toEqual({ lo: r.reg(REG.CAP), hi: r.reg(REG.CAP + 4) });
    expect(unit.unit.domainIds).toBe(2 ** 16);
    expect(unit.unit.pasidBits).toBe(20);
    // SAGAW 4- and 5-level, first stage with FL5LP: 57-bit (AGAW 3) for the default domain width.
    expect(unit.unit.agaw).toBe(3);
  });

  it('leaves RTPS and QIES set and translation off (TE is the driver class’s, after default domains)', () => {
    expect(r.reg(REG.GSTS)).toBe((GSTS_RTPS | GSTS_QIES) >>> 0);
    expect(r.vtd.global.state).toMatchObject({ enabled: false, rootTable: unit.contextTables.root, ttm: 1 });
    expect(reg64(r, REG.RTADDR)).toBe(unit.contextTables.root + (TTM.SCALABLE << 10));
  });

  it('256-bit queued invalidation: IQA = ring | DW | QS 1, IQT back at IQH after each submission', () => {
    expect(reg64(r, REG.IQA)).toBe(unit.qi.base! + IQA_DW + 1);
    expect(r.reg(REG.IQT)).toBe(r.reg(REG.IQH));
  });

  it('the global invalidations of iommu_set_root_entry reached the unit, each waited for', () => {
    const performed = r.vtd.invalidationQueue!.performed;
    expect(performed).toMatchObject({ contextCache: 1, pasidCache: 1, iotlb: 1, wait: 3 });
    expect(r.vtd.invalidationQueue!.errors.every((n) => n === 0)).toBe(true);
  });

  it('the fault and page request events are MSIs, programmed and unmasked', () => {
    expect(unit.vectors).toHaveLength(2);
    const [fault, prq] = unit.vectors;
    expect(r.reg(REG.FECTL)).toBe(0);
    expect(r.reg(REG.FEDATA)).toBe(fault!.message.data);
    expect(r.reg(REG.FEADDR)).toBe(MSI_WINDOW);
    expect(r.reg(REG.PECTL)).toBe(0);
    expect(r.reg(REG.PEDATA)).toBe(prq!.message.data);
    expect(r.msi.hasHandler(fault!.intid) && r.msi.hasHandler(prq!.intid)).toBe(true);
  });

  it('the page request queue: 2^PRQ_ORDER pages at PQA, PQH = PQT = 0', () => {
    expect(unit.prq).toEqual({ base: expect.any(Number), bytes: 4096 * 2 ** PRQ_ORDER });
    expect(reg64(r, REG.PQA)).toBe(unit.prq!.base + PRQ_ORDER);
    expect([r.reg(REG.PQH), r.reg(REG.PQT)]).toEqual([0, 0]);
  });

  it('enableTranslation: TE on, then the protected memory regions off', () => {
    r.vtd.regs.set(REG.PMEN, PMEN_EPM);
    enableTranslation(unit);
    expect((r.reg(REG.GSTS) & GSTS_TES) >>> 0).toBe(GSTS_TES >>> 0);
    expect(r.reg(REG.PMEN) & PMEN_EPM).toBe(0);
    expect(unit.commands.has(GCMD_TE)).toBe(true);
  });
});

describe('probe: what the capabilities change', () => {
  it('legacy unit: TTM 00, 128-bit queue of one page, no PASID-cache invalidation, no page request queue', () => {
    const r = driverRig({ options: { scalableMode: false } });
    const unit = probeUnit(r.context, r.lookup);
    expect(unit.scalable).toBe(false);
    expect(reg64(r, REG.RTADDR)).toBe(unit.contextTables.root);
    expect(reg64(r, REG.IQA)).toBe(unit.qi.base);
    expect(r.vtd.invalidationQueue!.performed).toMatchObject({
      contextCache: 1,
      pasidCache: 0,
      iotlb: 1,
      wait: 2,
    });
    expect(unit.prq).toBeUndefined();
    expect(unit.vectors).toHaveLength(1);
    expect(reg64(r, REG.PQA)).toBe(0);
  });

  it('CAP.ESRTPS: SRTP invalidates, so no invalidation is submitted', () => {
    const r = driverRig({ options: { srtpInvalidates: true } });
    probeUnit(r.context, r.lookup);
    const performed = Object.values(r.vtd.invalidationQueue!.performed);
    expect(performed.every((n) => n === 0)).toBe(true);
  });

  it('no queued invalidation (a VER 5 legacy unit): register-based context-cache and IOTLB invalidation', () => {
    const r = driverRig({
      options: {
        version: { major: 5, minor: 0 },
        scalableMode: false,
        queuedInvalidation: false,
        deviceTlb: false,
        interruptRemapping: false,
        extendedInterruptMode: false,
        postedInterrupts: false,
      },
    });
    const unit = probeUnit(r.context, r.lookup);
    expect(unit.qi.queued).toBe(false);
    expect(r.reg(REG.GSTS)).toBe(GSTS_RTPS >>> 0);
    expect(r.vtd.registerInvalidation.contextPerformed).toBe(1);
    expect(r.vtd.registerInvalidation.iotlbPerformed).toBe(1);
  });

  it('CAP.RWBF: the write buffer is flushed around SRTP', () => {
    const without = driverRig();
    probeUnit(without.context, without.lookup);
    const r = driverRig({ options: { writeBufferFlush: true } });
    probeUnit(r.context, r.lookup);
    expect(r.vtd.global.commands - without.vtd.global.commands).toBe(2);
  });

  it('no MSI controller: the events stay masked', () => {
    const r = driverRig({ msi: false });
    const unit = probeUnit(r.context, r.lookup);
    expect(unit.vectors).toEqual([]);
    expect(r.reg(REG.FECTL)).toBe(EVENT_CTL_IM >>> 0);
    expect(r.reg(REG.PECTL)).toBe(EVENT_CTL_IM >>> 0);
  });

  it('translation left on by firmware is turned off; the faults it recorded are drained and reported first', () => {
    const r = driverRig();
    r.context.bus.write(r.vtd.mmio.base + BigInt(REG.GCMD), 4, GCMD_TE >>> 0, r.bus.counter('firmware'));
    expect(r.reg(REG.GSTS) & GSTS_TES).not.toBe(0);
    // No root table latched: the walk aborts and the fault is recorded.
    expect(r.vtd.translate({ streamId: 0x10, pasid: -1, iovaPfn: 1, offset: 0, access: 1 }).ok).toBe(false);
    expect(r.vtd.faults.recorded).toBe(1);
    probeUnit(r.context, r.lookup);
    expect(r.reg(REG.GSTS) & GSTS_TES).toBe(0);
    expect(r.faults.map((f) => f.fault.streamId)).toEqual([0x10]);
    expect(r.reg(REG.FSTS)).toBe(0);
  });

  it('ENODEV without a usable AGAW: a 3-level-only second stage with a first stage (Linux "Cannot get a valid agaw")', () => {
    const r = driverRig({ options: { sagaw: [3], mgawBits: 39 } });
    expect(errnoOf(() => probeUnit(r.context, r.lookup))).toBe('ENODEV');
    expect(() => probeUnit(r.context, r.lookup)).toThrow(
      expect.objectContaining({
        message: 'ENODEV: dmar0: cannot get a valid AGAW (SAGAW 2)',
        context: { instance: 'dmar0' },
      }),
    );
    expect(r.memory.allocatedFrameCount).toBe(0);
  });
});

describe('global commands', () => {
  it('a command keeps the persistent bits another part of the driver set (interrupt remapping’s IRE)', () => {
    const r = driverRig();
    const unit = probeUnit(r.context, r.lookup);
    unit.mmio.write32(REG.GCMD, (r.reg(REG.GSTS) & (GSTS_QIES | GSTS_TES)) | GSTS_IRES);
    enableTranslation(unit);
    expect(r.reg(REG.GSTS) & (GSTS_IRES | GSTS_QIES)).toBe(GSTS_IRES | GSTS_QIES);
    expect(unit.commands.has(GCMD_TE)).toBe(true);
  });
});

describe('shutdown', () => {
  it('translation and queued invalidation off, events masked, vectors freed, every page returned', () => {
    const r = driverRig();
    const unit = probeUnit(r.context, r.lookup);
    const sid = (1 << 8) | 8;
    const dir = unit.pasidTables.allocTable(sid, { pasidBits: 20 });
    unit.contextTables.setScalableContext(sid, { pasidDir: dir.dir, pdts: dir.pdts, paside: true });
    unit.pasidTables.setPassThrough(sid, 0);
    enableTranslation(unit);
    expect(r.memory.allocatedFrameCount).toBeGreaterThan(0);
    unit.pasidTables.clear(sid, 0);
    shutdownUnit(unit);
    expect(r.reg(REG.GSTS) & (GSTS_TES | GSTS_QIES)).toBe(0);
    expect(r.reg(REG.FECTL)).toBe(EVENT_CTL_IM >>> 0);
    expect(r.reg(REG.PECTL)).toBe(EVENT_CTL_IM >>> 0);
    expect(reg64(r, REG.PQA)).toBe(0);
    expect(r.msi.freed).toEqual(['dmar0']);
    expect(unit.vectors.some((v) => r.msi.hasHandler(v.intid))).toBe(false);
    expect(r.memory.allocatedFrameCount).toBe(0);
  });

  it('the unit’s own MSIs carry its DeviceID', () => {
    const r = driverRig();
    enableTranslation(probeUnit(r.context, r.lookup));
    r.vtd.translate({ streamId: 0x10, pasid: -1, iovaPfn: 1, offset: 0, access: 1 });
    expect(r.msi.writes.at(-1)).toMatchObject({ address: MSI_WINDOW, deviceId: UNIT_DEVICE_ID });
  });
});

describe('global command waits and the write buffer (driver-host.ts)', () => {
  /** GCMD/GSTS as a stuck unit shows them: writes go nowhere, GSTS reads `gsts`. */
  function stuck(gsts: number, rwbf = true) {
    const writes: number[] = [];
    const mmio = {
      read32: (offset: number) => (offset === REG.GSTS ? gsts : 0),
      write32: (offset: number, value: number) => {
        if (offset === REG.GCMD) writes.push(value >>> 0);
      },
    } as unknown as MmioWindow;
    return { commands: new GlobalCommands(mmio, 'dmar9', rwbf), writes };
  }

  it('a status bit that never comes is ETIMEDOUT, naming the bit and what it did not do', () => {
    const off = stuck(0);
    expect(errnoOf(() => off.commands.set(GCMD_TE, true))).toBe('ETIMEDOUT');
    expect(() => off.commands.oneShot(GCMD_SRTP)).toThrow(/GSTS 0x40000000 did not set/);
    const on = stuck(GSTS_WBFS);
    expect(() => on.commands.flushWriteBuffer()).toThrow(/GSTS 0x8000000 did not clear/);
  });

  it('commands carry the persistent bits in effect; WBF only with CAP.RWBF', () => {
    const te = stuck(GSTS_TES | GSTS_RTPS);
    te.commands.flushWriteBuffer();
    expect(te.writes).toEqual([(GSTS_TES | GCMD_WBF) >>> 0]);
    const none = stuck(GSTS_TES, false);
    none.commands.flushWriteBuffer();
    expect(none.writes).toEqual([]);
    expect(none.commands.has(GCMD_TE)).toBe(true);
  });

  it('driver pages are 4 KiB-aligned blocks of their size', () => {
    const r = driverRig();
    const at = allocDriverPages(r.memory, 4);
    expect(at % (4 * 4096)).toBe(0);
    freeDriverPages(r.memory, at, 4);
    expect(allocDriverPages(r.memory, 4)).toBe(at);
    // After a single page the next free frame is misaligned for a larger block, which starts further on.
    allocDriverPages(r.memory, 1);
    expect(allocDriverPages(r.memory, 8) % (8 * 4096)).toBe(0);
  });

  it('a driver access the bus aborts is EIO naming the access and the address', () => {
    const r = driverRig();
    const unit = probeUnit(r.context, r.lookup);
    const hole = 0x4000_0000;
    expect(() => writeDriverMemory(unit, hole, new Uint32Array(4))).toThrow(
      expect.objectContaining({
        code: 'EIO',
        message: 'EIO: dmar0: driver memory write at 0x40000000 aborted',
        context: { instance: 'dmar0', address: hole },
      }),
    );
    expect(() => readDriverMemory(unit, hole, new Uint32Array(4))).toThrow(
      'EIO: dmar0: driver memory read at 0x40000000 aborted',
    );
  });
});

describe('probe details', () => {
  it('translation left on by firmware is turned off before the tables change; probe says so', () => {
    const tracer = new Tracer();
    const r = driverRig({ tracer });
    const first = probeUnit(r.context, r.lookup);
    enableTranslation(first);
    expect((r.reg(REG.GSTS) & GSTS_TES) >>> 0).toBe(GSTS_TES >>> 0);
    tracer.startRecording();
    probeUnit(r.context, r.lookup);
    expect(r.reg(REG.GSTS) & GSTS_TES).toBe(0);
    const said = tracer.stopRecording().filter((t) => t.layer === 'driver' && t.name === 'probe');
    expect(said.map((t) => t.message)).toContain('translation was enabled before the driver; disabling it');
  });

  it('reads the architecture version from VER; a fresh unit is not said to have had translation on', () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const r = driverRig({ tracer, options: { version: { major: 5, minor: 1 } } });
    const unit = probeUnit(r.context, r.lookup);
    expect(unit.unit.version).toEqual({ major: 5, minor: 1 });
    const said = tracer.stopRecording().filter((t) => t.layer === 'driver' && t.name === 'probe');
    expect(said.map((t) => t.message)).not.toContain(
      'translation was enabled before the driver; disabling it',
    );
  });

  it('a scalable unit without PRS gets no page request queue, and its PQA is never written', () => {
    const r = driverRig({ options: { pageRequests: false, pageRequestDrain: false } });
    const unit = probeUnit(r.context, r.lookup);
    expect(unit.prq).toBeUndefined();
    expect(unit.vectors).toHaveLength(1);
    expect(r.reg(REG.PQA)).toBe(0);
  });

  it('the event MSI address is split across *ADDR and *UADDR (x2APIC destinations above 4 GiB)', () => {
    const r = driverRig({ options: { extendedInterruptMode: true } });
    const allocate = r.msi.allocateVectors.bind(r.msi);
    r.msi.allocateVectors = (device, count) =>
      allocate(device, count).map((v) => ({
        ...v,
        message: { ...v.message, address: v.message.address | (0x12n << 32n) },
      }));
    probeUnit(r.context, r.lookup);
    expect(r.reg(REG.FEADDR)).toBe(MSI_WINDOW);
    expect(r.reg(REG.FEUADDR)).toBe(0x12);
    expect(r.reg(REG.PEUADDR)).toBe(0x12);
  });

  it('a unit without protected memory regions never has PMEN written', () => {
    const r = driverRig({ options: { protectedLowMemory: false, protectedHighMemory: false } });
    const unit = probeUnit(r.context, r.lookup);
    const written: number[] = [];
    const write32 = unit.mmio.write32.bind(unit.mmio);
    unit.mmio.write32 = (offset, value) => {
      written.push(offset);
      write32(offset, value);
    };
    enableTranslation(unit);
    expect(written).toEqual([REG.GCMD]);
  });

  it('protected memory regions are disabled only when CAP says they exist', () => {
    const r = driverRig({ options: { protectedLowMemory: false, protectedHighMemory: true } });
    const unit = probeUnit(r.context, r.lookup);
    r.vtd.regs.set(REG.PMEN, PMEN_EPM);
    enableTranslation(unit);
    expect(r.reg(REG.PMEN) & PMEN_EPM).toBe(0);
  });
});
