/**
 * What the SMMU sends endpoints on its own: ATS Invalidation Requests for CMD_ATC_INV (which PASIDs a
 * request hits, SMMUEN), and automatic PRG responses for page requests the PRI queue cannot take
 * (§8.1 overflow, §8.2 disabled queue, Stop markers), plus how a request's Exec/Priv are recorded.
 */
import {
  type EndpointPort,
  hpa,
  InterruptController,
  MemoryBus,
  NO_PASID,
  type PageResponse,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  Tracer,
} from '@iommukit/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { type MmioRig, mmioRig, RAM_BASE } from '../../test/mmio-rig.js';
import { encodeAtcInv } from './commands.js';
import { Smmuv3OptionsSchema } from './options.js';
import { decodePriEntry, PRI_ENTRY_WORDS } from './priq.js';
import { CR0_CMDQEN, CR0_PRIQEN, CR0_SMMUEN, IRQ_CTRL_GERROR_IRQEN, REG } from './regs.js';
import { Smmuv3Hardware } from './smmuv3.js';
import { encodeSte, STE_CONFIG } from './ste.js';

const STRTAB = RAM_BASE;
const CMDQ = RAM_BASE + 0x1_0000;
const PRIQ = RAM_BASE + 0x2_0000;
const SID = 5;

let rig: MmioRig;
let bus: MemoryBus;
let smmu: Smmuv3Hardware;
let responses: PageResponse[];
let invalidations: { pasid: number | undefined; iova: bigint; size: bigint }[];
let prod: number;

beforeEach(() => {
  rig = mmioRig({ sidBits: 8, ssidBits: 8 }, 16 * 2 ** 20);
  ({ bus, smmu } = rig);
  responses = [];
  invalidations = [];
  prod = 0;
  const port: EndpointPort = {
    invalidateAtc: (pasid, iova, size) => invalidations.push({ pasid, iova, size }),
    pageResponse: (r) => responses.push(r),
    completeStalled: () => {},
  };
  smmu.connectEndpoint(SID, port);
  rig.mmio64(REG.STRTAB_BASE, STRTAB);
  rig.mmio(REG.STRTAB_BASE_CFG, 8);
  rig.mmio64(REG.CMDQ_BASE, CMDQ + 3);
  rig.mmio64(REG.PRIQ_BASE, PRIQ + 1); // two entries
});

function enable(priq: boolean): void {
  const queues = CR0_CMDQEN | (priq ? CR0_PRIQEN : 0);
  rig.mmio(REG.CR0, queues);
  rig.mmio(REG.CR0, queues | CR0_SMMUEN);
}

function submit(command: Uint32Array): void {
  rig.put(CMDQ + (prod % 8) * 16, command);
  prod = (prod + 1) % 16;
  rig.mmio(REG.CMDQ_PROD, prod);
}

const request = (groupIndex: number, pasid = NO_PASID, last = true, access = PERM_READ) => ({
  pasid,
  iova: 0x1000n,
  access,
  groupIndex,
  last,
});
const stopMarker = (pasid: number) => ({ pasid, iova: 0n, access: 0, groupIndex: 0, last: true });

describe('CMD_ATC_INV → ATS Invalidation Requests', () => {
  beforeEach(() => enable(false));

  it('without SSV hits every PASID; with SSV one PASID; Global with SSV every PASID', () => {
    submit(encodeAtcInv({ streamId: SID, ssv: false, substreamId: 0, size: 0, addressPage: 3 }));
    submit(encodeAtcInv({ streamId: SID, ssv: true, substreamId: 7, size: 1, addressPage: 4 }));
    submit(encodeAtcInv({ streamId: SID, ssv: true, substreamId: 7, global: true, size: 0, addressPage: 3 }));
    expect(invalidations).toEqual([
      { pasid: undefined, iova: 0x3000n, size: 0x1000n },
      { pasid: 7, iova: 0x4000n, size: 0x2000n },
      { pasid: undefined, iova: 0x3000n, size: 0x1000n },
    ]);
  });

  it('Size 52 or more invalidates the whole address space', () => {
    submit(encodeAtcInv({ streamId: SID, ssv: false, substreamId: 0, size: 52, addressPage: 0 }));
    submit(encodeAtcInv({ streamId: SID, ssv: false, substreamId: 0, size: 51, addressPage: 0 }));
    expect(invalidations).toEqual([
      { pasid: undefined, iova: 0n, size: 1n << 64n },
      { pasid: undefined, iova: 0n, size: 1n << 63n },
    ]);
  });

  it('is ignored while SMMUEN = 0', () => {
    rig.mmio(REG.CR0, CR0_CMDQEN);
    submit(encodeAtcInv({ streamId: SID, ssv: false, substreamId: 0, size: 52, addressPage: 0 }));
    expect(invalidations).toEqual([]);
  });
});

describe('automatic PRG responses', () => {
  it('with the PRI queue disabled every request gets Response Failure without a PASID; Stop markers none', () => {
    enable(false);
    smmu.pageRequest(SID, request(1, NO_PASID, false));
    smmu.pageRequest(SID, request(2, 9, true));
    smmu.pageRequest(SID, stopMarker(9));
    expect(responses).toEqual([
      { pasid: NO_PASID, groupIndex: 1, code: 'failure' },
      { pasid: NO_PASID, groupIndex: 2, code: 'failure' },
    ]);
  });

  it('in an overflow only Last requests are answered: Success, with the PASID as STE.PPAR says', () => {
    enable(true);
    rig.put(STRTAB + 64 * SID, encodeSte({ v: true, config: STE_CONFIG.BYPASS, ppar: true }));
    smmu.pageRequest(SID, request(1, NO_PASID, false));
    smmu.pageRequest(SID, request(2, NO_PASID, false));
    expect(responses).toEqual([]); // the queue took both
    smmu.pageRequest(SID, request(3, NO_PASID, false)); // overflow: not Last, silently dropped
    smmu.pageRequest(SID, request(4)); // Last, no PASID
    smmu.pageRequest(SID, request(5, 9)); // Last, PASID, PPAR = 1
    smmu.pageRequest(SID, stopMarker(9));
    expect(responses).toEqual([
      { pasid: NO_PASID, groupIndex: 4, code: 'success' },
      { pasid: 9, groupIndex: 5, code: 'success' },
    ]);
  });

  it('an overflow answer drops the PASID with STE.PPAR = 0, and fails when the STE cannot be checked', () => {
    enable(true);
    rig.put(STRTAB + 64 * SID, encodeSte({ v: true, config: STE_CONFIG.BYPASS }));
    smmu.pageRequest(SID, request(1, NO_PASID, false));
    smmu.pageRequest(SID, request(2, NO_PASID, false));
    smmu.pageRequest(SID, request(3, 9));
    rig.put(STRTAB + 64 * SID, new Uint32Array(16)); // V = 0 (not cached yet: the STE was never fetched)
    smmu.translator.steCache.clear();
    smmu.pageRequest(SID, request(4, 9));
    // Without a PASID there is nothing to check: Success.
    smmu.pageRequest(SID, request(5));
    expect(responses).toEqual([
      { pasid: NO_PASID, groupIndex: 3, code: 'success' },
      { pasid: NO_PASID, groupIndex: 4, code: 'failure' },
      { pasid: NO_PASID, groupIndex: 5, code: 'success' },
    ]);
  });

  it('records Exec and Priv only with a PASID (they travel in the PASID prefix)', () => {
    enable(true);
    const all = PERM_READ | PERM_WRITE | PERM_EXEC | PERM_PRIV;
    smmu.pageRequest(SID, request(1, NO_PASID, true, all));
    smmu.pageRequest(SID, request(2, 3, true, all));
    const words = new Uint32Array(PRI_ENTRY_WORDS);
    const entry = (i: number) => {
      bus.readWords(PRIQ + 16 * i, words, PRI_ENTRY_WORDS, rig.driver);
      return decodePriEntry(words);
    };
    expect(entry(0)).toMatchObject({ ssv: false, read: true, write: true, exec: false, priv: false });
    expect(entry(1)).toMatchObject({ ssv: true, substreamId: 3, exec: true, priv: true });
    // Software consumes both (the queue has two entries); the next lands in entry 0 again.
    rig.mmio(REG.PRIQ_CONS, 2);
    smmu.pageRequest(SID, request(3, 3, true, PERM_READ));
    expect(entry(0)).toMatchObject({ ssv: true, read: true, write: false, exec: false, priv: false });
  });

  it('an SMMU without PRI neither queues nor answers page requests', () => {
    const noPri = mmioRig({ sidBits: 8, pri: false }, 16 * 2 ** 20);
    const heard: PageResponse[] = [];
    noPri.smmu.connectEndpoint(SID, {
      invalidateAtc: () => {},
      pageResponse: (r) => heard.push(r),
      completeStalled: () => {},
    });
    noPri.mmio(REG.CR0, CR0_SMMUEN);
    noPri.smmu.pageRequest(SID, request(1));
    expect(heard).toEqual([]);
    expect(noPri.smmu.stats()).not.toHaveProperty('priRecords');
  });

  it('answers nobody on a stream whose endpoint went away', () => {
    enable(false);
    smmu.disconnectEndpoint(SID);
    smmu.pageRequest(SID, request(1));
    submit(encodeAtcInv({ streamId: SID, ssv: false, substreamId: 0, size: 0, addressPage: 3 }));
    expect([responses, invalidations]).toEqual([[], []]);
  });

  it('traces each request it queues or drops, and each answer it sends itself', () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const traced = mmioRig({ sidBits: 8 }, 16 * 2 ** 20, tracer);
    traced.mmio64(REG.PRIQ_BASE, PRIQ + 1);
    traced.mmio(REG.CR0, CR0_PRIQEN | CR0_SMMUEN);
    traced.smmu.pageRequest(SID, request(1, NO_PASID, false));
    traced.mmio(REG.CR0, CR0_SMMUEN);
    traced.smmu.pageRequest(SID, request(2));
    expect(tracer.records.filter((r) => r.name.startsWith('pri')).map((r) => [r.name, r.message])).toEqual([
      ['priq.record', 'page request stream 0x5 IOVA 0x1000 group 1'],
      ['priq.record', 'page request stream 0x5 IOVA 0x1000 group 2 dropped (disabled)'],
      ['pri.autoresponse', 'automatic PRG response group 2: failure'],
    ]);
  });
});

describe("the SMMU's own MSIs", () => {
  it('carry the DeviceID the platform gives the instance', () => {
    const msiBus = new MemoryBus();
    const writes: (number | undefined)[] = [];
    msiBus.addRam('dram', RAM_BASE, 2 ** 20);
    msiBus.addMmio('doorbell', 0x0800_0000, 0x1000, {
      read: () => 0,
      write: (_o, _s, _v, id) => writes.push(id),
    });
    const hw = new Smmuv3Hardware({
      instance: 'smmu0',
      base: hpa(0x0900_0000),
      options: Smmuv3OptionsSchema.parse({}),
      bus: msiBus,
      tracer: new Tracer(),
      irq: (name) => new InterruptController().line(name),
      // The controller is the platform's; the SMMU only writes to the doorbell address it is given.
      msi: { controller: {} as never, deviceId: 0x7fe },
    });
    const write = (offset: number, value: number) => hw.regs.write(offset, 4, value);
    write(REG.GERROR_IRQ_CFG0, 0x0800_0040);
    write(REG.IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
    write(REG.CMDQ_BASE, CMDQ + 1);
    msiBus.writeWords(CMDQ, new Uint32Array(4), 4, msiBus.counter('test')); // opcode 0: CERROR_ILL
    write(REG.CR0, CR0_CMDQEN);
    write(REG.CMDQ_PROD, 1);
    expect(writes).toEqual([0x7fe]);
  });
});
