/**
 * Probe and reset details of the host driver (probe.ts; Linux `arm_smmu_device_hw_probe`,
 * `arm_smmu_device_reset`, `arm_smmu_setup_msis`): the ID register values it refuses, the ID bits that
 * change what it programs (BTM → CR2.PTM, Hyp → CMD_TLBI_EL2_ALL, ATTR_TYPES_OVR → STE.SHCFG), and MSI
 * setup through the platform's MSI controller. The register-by-register sequence is in
 * smmuv3-driver.test.ts.
 */
import {
  errnoOf,
  type IMsiController,
  type InstanceMsi,
  isIommufdError,
  type MsiRequester,
  type MsiVector,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { createDriverSystem, SMMU_BASE } from '../../test/driver-system.js';
import {
  IDR0_BTM,
  IDR0_HYP,
  IDR0_S1P,
  IDR0_S2P,
  IDR0_STALL_MODEL,
  IDR0_TTENDIAN,
  IDR0_TTF,
  IDR1_ATTR_TYPES_OVR,
  IDR1_QUEUES_PRESET,
  IDR1_REL,
  IDR1_TABLES_PRESET,
  TTENDIAN_ENCODING,
} from '../hw/idr.js';
import { CR2_PTM, CR2_RECINVSID, REG } from '../hw/regs.js';
import { decodeSte, SHAREABILITY } from '../hw/ste.js';

/** An unprobed system whose ID register `offset` reads `edit(value)`. */
function withIdr(offset: number, edit: (value: number) => number, options: Record<string, unknown> = {}) {
  const s = createDriverSystem({ options, noProbe: true });
  s.hw.regs.set(offset, edit(s.reg(offset)) >>> 0);
  return s;
}

const put = (value: number, field: { lsb: number; width: number }, v: number) =>
  (value & ~(((1 << field.width) - 1) << field.lsb)) | (v << field.lsb);

describe('ID registers the driver refuses (ENODEV), as Linux does', () => {
  it.each([
    ['big-endian-only table walks', REG.IDR0, (v: number) => put(v, IDR0_TTENDIAN, TTENDIAN_ENCODING.big)],
    ['no AArch64 table format (AArch32 only)', REG.IDR0, (v: number) => put(v, IDR0_TTF, 0b01)],
    ['no translation stage', REG.IDR0, (v: number) => v & ~(IDR0_S1P | IDR0_S2P)],
    ['preset tables', REG.IDR1, (v: number) => v | IDR1_TABLES_PRESET],
    ['preset queues', REG.IDR1, (v: number) => v | IDR1_QUEUES_PRESET],
    ['relative preset addresses', REG.IDR1, (v: number) => v | IDR1_REL],
    [
      'a reserved STALL_MODEL (a feature decode error)',
      REG.IDR0,
      (v: number) => put(v, IDR0_STALL_MODEL, 0b11),
    ],
  ])('%s', (_what, offset, edit) => {
    const s = withIdr(offset, edit);
    expect(errnoOf(() => s.driver.probe())).toBe('ENODEV');
    // Refused before anything was allocated or programmed.
    expect(s.driverFrames()).toBe(0);
  });

  it('mixed-endian and little-endian walks are fine', () => {
    const s = withIdr(REG.IDR0, (v) => put(v, IDR0_TTENDIAN, TTENDIAN_ENCODING.mixed));
    s.driver.probe();
    expect(s.driver.features.s1).toBe(true);
  });
});

describe('ID bits that change what reset programs', () => {
  it('IDR0.BTM: CR2.PTM (broadcast TLB maintenance is not for the SMMU), with RECINVSID', () => {
    // The model has no BTM (PTM is RES0 in its CR2), so the value the driver wrote is read off the bus.
    const cr2Writes = (btm: boolean) => {
      const s = createDriverSystem({ noProbe: true, recordAccesses: true });
      if (btm) s.hw.regs.set(REG.IDR0, s.reg(REG.IDR0) | IDR0_BTM);
      s.driver.probe();
      return s.accesses.filter((a) => a.write && a.addr === SMMU_BASE + REG.CR2).map((a) => a.value);
    };
    expect(cr2Writes(true)).toEqual([CR2_RECINVSID | CR2_PTM]);
    expect(cr2Writes(false)).toEqual([CR2_RECINVSID]);
  });

  it('IDR0.Hyp: CMD_TLBI_EL2_ALL + CMD_SYNC right after CMD_CFGI_ALL + CMD_SYNC', () => {
    // The model does not implement Hyp, so it refuses the command (CERROR_ILL, the probe fails with EIO),
    // which shows it was sent; without Hyp, CMD_TLBI_NSNH_ALL follows CMD_CFGI_ALL (smmuv3-driver.test.ts).
    const s = withIdr(REG.IDR0, (v) => v | IDR0_HYP);
    let error: unknown;
    try {
      s.driver.probe();
    } catch (e) {
      error = e;
    }
    expect(isIommufdError(error) && error.code).toBe('EIO');
    expect([...s.driver.cmdq.issued.keys()]).toEqual(['CMD_CFGI_ALL', 'CMD_SYNC', 'CMD_TLBI_EL2_ALL']);
    expect([...s.driver.cmdq.failures].map((f) => f.command)).toEqual(['CMD_TLBI_EL2_ALL']);
  });

  it('IDR1.ATTR_TYPES_OVR decides whether bypass STEs ask for incoming shareability (SHCFG)', () => {
    for (const [override, shCfg] of [
      [true, SHAREABILITY.INCOMING],
      [false, 0],
    ] as const) {
      const s = withIdr(REG.IDR1, (v) => (override ? v | IDR1_ATTR_TYPES_OVR : v & ~IDR1_ATTR_TYPES_OVR));
      s.driver.probe();
      const dev = s.device('dev0', 0x10);
      s.probe(dev);
      s.driver.attachDev(s.driver.identityDomain, dev);
      expect(decodeSte(s.driver.streamTable.readSte(0x10)).shCfg).toBe(shCfg);
    }
  });

  it('the PRI queue is 2^min(IDR1.PRIQS, 8) entries', () => {
    expect(createDriverSystem({ options: { priqLog2: 5 } }).reg(REG.PRIQ_BASE) & 0x1f).toBe(5);
    expect(createDriverSystem({ options: { priqLog2: 12 } }).reg(REG.PRIQ_BASE) & 0x1f).toBe(8);
  });
});

/** A platform MSI controller that records what the driver asks of it. */
function fakeMsi() {
  const log: string[] = [];
  const handlers = new Map<number, () => void>();
  const controller = {
    allocateVectors(device: MsiRequester, count: number): MsiVector[] {
      log.push(`alloc ${device.name} ${device.deviceId} ${count}`);
      return Array.from({ length: count }, (_, i) => ({
        // Bits above 55 and below 2 are not part of the doorbell address (§6.3.19).
        message: { address: (1n << 60n) | (0x0800_0040n + 0x10n * BigInt(i)) | 3n, data: 100 + i },
        eventId: i,
        intid: 8192 + i,
        cpu: 0,
        doorbell: { name: 'its0', address: 0x0800_0040n, page: 0x0800_0000n },
      })) as unknown as MsiVector[];
    },
    requestIrq(intid: number, handler: () => void) {
      log.push(`request ${intid}`);
      handlers.set(intid, handler);
      return () => log.push(`release ${intid}`);
    },
    freeVectors(device: MsiRequester) {
      log.push(`free ${device.name}`);
    },
  };
  const msi: InstanceMsi = { controller: controller as unknown as IMsiController, deviceId: 0x77 };
  return { msi, log, handlers };
}

describe('interrupts as MSIs (Linux arm_smmu_setup_msis)', () => {
  const cfg = (s: ReturnType<typeof createDriverSystem>, cfg0: number) => [
    s.reg(cfg0),
    s.reg(cfg0 + 4),
    s.reg(cfg0 + 8),
    s.reg(cfg0 + 12),
  ];

  it('EVTQ, GERROR, PRIQ get vectors 0, 1, 2: doorbell bits [55:2], data, Device-nGnRE', () => {
    const { msi, log } = fakeMsi();
    const s = createDriverSystem({ msi });
    expect(log).toEqual(['alloc smmu0 119 3', 'request 8192', 'request 8193', 'request 8194']);
    expect(cfg(s, REG.EVENTQ_IRQ_CFG0)).toEqual([0x0800_0040, 0, 100, 1]);
    expect(cfg(s, REG.GERROR_IRQ_CFG0)).toEqual([0x0800_0050, 0, 101, 1]);
    expect(cfg(s, REG.PRIQ_IRQ_CFG0)).toEqual([0x0800_0060, 0, 102, 1]);
  });

  it('each vector runs its own handler', () => {
    const { msi, handlers } = fakeMsi();
    const s = createDriverSystem({ msi });
    const dev = s.device('dev0', 0x10);
    s.probe(dev);
    s.driver.attachDev(s.driver.domainAllocPaging(), dev);
    expect(dev.dmaRead(0x1000n, 4).ok).toBe(false);
    handlers.get(8193)!();
    handlers.get(8194)!();
    expect(s.faults).toEqual([]);
    handlers.get(8192)!();
    expect(s.faults.map((f) => f.fault.vendorCode)).toEqual(['F_TRANSLATION']);
  });

  it('without PRI two vectors; shutdown releases the handlers, then the vectors', () => {
    const { msi, log } = fakeMsi();
    const s = createDriverSystem({ msi, options: { pri: false } });
    expect(log).toEqual(['alloc smmu0 119 2', 'request 8192', 'request 8193']);
    log.length = 0;
    s.driver.shutdown();
    expect(log).toEqual(['release 8192', 'release 8193', 'free smmu0']);
  });

  it('an SMMU with MSIs but no platform controller clears its doorbells and uses the wired lines', () => {
    const s = createDriverSystem({ noProbe: true });
    for (const cfg0 of [REG.EVENTQ_IRQ_CFG0, REG.GERROR_IRQ_CFG0, REG.PRIQ_IRQ_CFG0])
      s.hw.regs.set(cfg0, 0x1234_5670);
    s.driver.probe();
    expect([s.reg(REG.EVENTQ_IRQ_CFG0), s.reg(REG.GERROR_IRQ_CFG0), s.reg(REG.PRIQ_IRQ_CFG0)]).toEqual([
      0, 0, 0,
    ]);
  });
});
