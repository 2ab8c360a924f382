/**
 * Every event the model records, provoked end to end — registers programmed over MMIO, tables in RAM,
 * transactions from endpoints — and checked byte for byte in the Event queue against the record the spec
 * lays out (§7.3; `encodeEvent` itself is checked field by field against the spec in events.test.ts).
 */
import { EndpointDevice, FrameAllocator, NO_PASID, PERM_READ, Tracer } from '@iommukit/core';
import { IoPageTable, LO_AF, psEncoding, vmsaFormat, walk } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { testCd } from '../../test/cd-fixture.js';
import { mmioRig, RAM_BASE } from '../../test/mmio-rig.js';
import { encodeCd } from './cd.js';
import { EVENT_CLASS, EVENT_ID, EVENT_WORDS, type EventRecord, encodeEvent } from './events.js';
import { CR0_CMDQEN, CR0_EVENTQEN, CR0_SMMUEN, CR2_RECINVSID, REG } from './regs.js';
import { encodeSte, STE_CONFIG, STE_S1DSS } from './ste.js';

const STRTAB = RAM_BASE;
const CMDQ = RAM_BASE + 0x1_0000;
const EVTQ = RAM_BASE + 0x2_0000;
const CD = RAM_BASE + 0x3_0000;
/** Addresses no memory answers at. */
const HOLE = 0x4000_0000;
const IOVA = 0x7000;

/**
 * An SMMU with a 256-entry linear Stream table at `strtab`, the Event queue on, and a stage-1 table; CR2 as
 * `cr2` (RECINVSID by default, as Linux's arm_smmu_device_reset writes it).
 */
function system(strtab = STRTAB, cr2 = CR2_RECINVSID) {
  const rig = mmioRig({ sidBits: 8, ssidBits: 8 });
  const { bus, smmu, mmio, mmio64, put } = rig;
  mmio(REG.CR2, cr2);
  mmio64(REG.STRTAB_BASE, strtab);
  mmio(REG.STRTAB_BASE_CFG, 8);
  mmio64(REG.CMDQ_BASE, CMDQ + 3);
  mmio64(REG.EVENTQ_BASE, EVTQ + 5);
  mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
  mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
  const memory = new FrameAllocator([{ base: RAM_BASE + 0x10_0000, size: 0x100_0000 }]);
  const format = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
  const table = new IoPageTable(format, { bus, memory, counter: bus.counter('pt') });
  const cd = (fields = {}) => testCd(table.rootPa, fields);
  const s1Ste = (fields = {}) =>
    encodeSte({ v: true, config: STE_CONFIG.S1_TRANS, s1ContextPtr: CD, ...fields });
  const device = (streamId: number, pasidBits = 0) => {
    const dev = new EndpointDevice(
      { name: `dev${streamId}`, rid: streamId, streamId, pasidBits },
      bus,
      smmu,
      new Tracer(),
    );
    if (pasidBits) dev.pci.setPasidEnabled(true);
    return dev;
  };
  /** The Event queue's records so far, as words. */
  const records = () => {
    const count = rig.reg(REG.EVENTQ_PROD) & 0x1f;
    const out: number[][] = [];
    const words = new Uint32Array(EVENT_WORDS);
    for (let i = 0; i < count; i++) {
      bus.readWords(EVTQ + 32 * i, words, EVENT_WORDS, rig.driver);
      out.push(Array.from(words));
    }
    return out;
  };
  return { ...rig, table, format, cd, s1Ste, device, records, put };
}

/** A translation-related record for a transaction at IOVA of stream `streamId`. */
const translationRecord = (
  id: number,
  streamId: number,
  write: boolean,
  extra: Partial<EventRecord> = {},
) => ({
  id,
  streamId,
  rnw: !write,
  pnu: false,
  s2: false,
  class: EVENT_CLASS.IN,
  inputAddrPage: IOVA / 4096,
  inputAddrOffset: 0x10,
  ...extra,
});

const words = (record: EventRecord) => Array.from(encodeEvent(record));

describe('event records provoked end to end, byte for byte', () => {
  it('configuration errors: C_BAD_STREAMID, C_BAD_STE, F_STREAM_DISABLED, C_BAD_SUBSTREAMID, F_CD_FETCH, C_BAD_CD', () => {
    const s = system();
    s.put(STRTAB + 64 * 2, new Uint32Array(16)); // V = 0
    s.put(STRTAB + 64 * 4, s.s1Ste({ s1CdMax: 2, s1Dss: STE_S1DSS.TERMINATE }));
    s.put(STRTAB + 64 * 5, s.s1Ste({ s1ContextPtr: HOLE }));
    s.put(STRTAB + 64 * 6, s.s1Ste());
    s.put(CD, encodeCd({})); // CD.V = 0
    s.put(CD + 64, s.cd());
    s.device(0xf0).dmaRead(BigInt(IOVA), 1); // inside the table, its STE never written: V = 0
    s.device(300).dmaRead(BigInt(IOVA), 1);
    s.device(2).dmaRead(BigInt(IOVA), 1);
    s.device(4).dmaRead(BigInt(IOVA), 1);
    s.device(4, 8).dmaRead(BigInt(IOVA), 1, { pasid: 9 });
    s.device(5).dmaRead(BigInt(IOVA), 1);
    s.device(6).dmaRead(BigInt(IOVA), 1);
    expect(s.records()).toEqual([
      words({ id: EVENT_ID.C_BAD_STE, streamId: 0xf0 }),
      words({ id: EVENT_ID.C_BAD_STREAMID, streamId: 300 }),
      words({ id: EVENT_ID.C_BAD_STE, streamId: 2 }),
      words({ id: EVENT_ID.F_STREAM_DISABLED, streamId: 4 }),
      words({ id: EVENT_ID.C_BAD_SUBSTREAMID, streamId: 4, substreamId: 9 }),
      words({ id: EVENT_ID.F_CD_FETCH, streamId: 5, fetchAddr: HOLE }),
      words({ id: EVENT_ID.C_BAD_CD, streamId: 6 }),
    ]);
  });

  it('records C_BAD_STREAMID only with CR2.RECINVSID == 1; the transaction is terminated either way (§6.3.12, §7.3.3)', () => {
    for (const [cr2, recorded] of [
      [0, false],
      [CR2_RECINVSID, true],
    ] as const) {
      const s = system(STRTAB, cr2);
      s.put(STRTAB + 64 * 2, new Uint32Array(16)); // V = 0: C_BAD_STE is recorded regardless
      const beyond = s.device(300, 8);
      expect(beyond.dmaRead(BigInt(IOVA), 1), `CR2 ${cr2}`).toMatchObject({
        ok: false,
        fault: { vendorCode: 'C_BAD_STREAMID', streamId: 300, recorded },
      });
      expect(beyond.dmaRead(BigInt(IOVA), 1, { pasid: 5 }), `CR2 ${cr2}`).toMatchObject({
        ok: false,
        fault: { vendorCode: 'C_BAD_STREAMID', recorded },
      });
      expect(s.device(2).dmaRead(BigInt(IOVA), 1), `CR2 ${cr2}`).toMatchObject({
        ok: false,
        fault: { vendorCode: 'C_BAD_STE', recorded: true },
      });
      expect(s.records(), `CR2 ${cr2}`).toEqual([
        ...(recorded
          ? [
              words({ id: EVENT_ID.C_BAD_STREAMID, streamId: 300 }),
              words({ id: EVENT_ID.C_BAD_STREAMID, streamId: 300, ssv: true, substreamId: 5 }),
            ]
          : []),
        words({ id: EVENT_ID.C_BAD_STE, streamId: 2 }),
      ]);
    }
  });

  it('F_STE_FETCH with the STE address as FetchAddr', () => {
    const s = system(HOLE);
    s.device(3).dmaRead(BigInt(IOVA), 1);
    expect(s.records()).toEqual([words({ id: EVENT_ID.F_STE_FETCH, streamId: 3, fetchAddr: HOLE + 3 * 64 })]);
  });

  it('C_BAD_STREAMID, C_BAD_STE and F_STE_FETCH carry SSV and the SubstreamID (§7.3.3–7.3.5)', () => {
    const s = system();
    s.put(STRTAB + 64 * 2, new Uint32Array(16)); // V = 0
    s.device(300, 8).dmaRead(BigInt(IOVA), 1, { pasid: 5 });
    s.device(2, 8).dmaRead(BigInt(IOVA), 1, { pasid: 0xab });
    s.device(2, 8).dmaRead(BigInt(IOVA), 1);
    expect(s.records()).toEqual([
      words({ id: EVENT_ID.C_BAD_STREAMID, streamId: 300, ssv: true, substreamId: 5 }),
      words({ id: EVENT_ID.C_BAD_STE, streamId: 2, ssv: true, substreamId: 0xab }),
      words({ id: EVENT_ID.C_BAD_STE, streamId: 2 }),
    ]);
    const fetch = system(HOLE);
    fetch.device(3, 8).dmaRead(BigInt(IOVA), 1, { pasid: 1 });
    expect(fetch.records()).toEqual([
      words({ id: EVENT_ID.F_STE_FETCH, streamId: 3, ssv: true, substreamId: 1, fetchAddr: HOLE + 3 * 64 }),
    ]);
  });

  it('translation faults: F_TRANSLATION, F_PERMISSION (with a SubstreamID too), F_ACCESS, F_ADDR_SIZE', () => {
    const s = system();
    s.put(STRTAB + 64 * 7, s.s1Ste({ s1CdMax: 1, s1Dss: STE_S1DSS.SSID0 }));
    s.put(CD, s.cd());
    s.put(CD + 64, s.cd());
    s.put(STRTAB + 64 * 8, s.s1Ste({ s1ContextPtr: CD + 128 }));
    s.put(CD + 128, s.cd({ ips: psEncoding(32)! }));
    s.table.map(BigInt(IOVA), 0x9000_0000n, 0x1000n, { read: true, write: false });
    s.table.map(0x2_0000n, 0x1_0000_0000n, 0x1000n, { read: true, write: true });
    const dev = s.device(7, 8);
    const at = BigInt(IOVA + 0x10);
    dev.dmaWrite(at + 0x1000n, Uint8Array.of(1)); // unmapped
    dev.dmaWrite(at, Uint8Array.of(1)); // read-only
    dev.dmaWrite(at, Uint8Array.of(1), { pasid: 1 });
    // AF = 0 in the leaf, and no hardware Access flag update (CD.HA = 0).
    let leaf = 0;
    walk(s.format, s.table.rootPa, IOVA, {
      bus: s.bus,
      counter: s.bus.counter('probe'),
      onStep: (_level, addr) => {
        leaf = addr;
      },
    });
    const lo = s.bus.read(leaf, 4, s.driver);
    if (!lo.ok) throw new Error('leaf read aborted');
    s.bus.write(leaf, 4, Number(lo.value) & ~LO_AF, s.driver);
    dev.dmaRead(at, 1);
    // Output 0x1_0000_0000 beyond the CD's 32-bit IPS.
    s.device(8).dmaRead(0x2_0010n, 1);
    expect(s.records()).toEqual([
      words(translationRecord(EVENT_ID.F_TRANSLATION, 7, true, { inputAddrPage: IOVA / 4096 + 1 })),
      words(translationRecord(EVENT_ID.F_PERMISSION, 7, true)),
      words(translationRecord(EVENT_ID.F_PERMISSION, 7, true, { ssv: true, substreamId: 1 })),
      words(translationRecord(EVENT_ID.F_ACCESS, 7, false)),
      words(translationRecord(EVENT_ID.F_ADDR_SIZE, 8, false, { inputAddrPage: 0x20 })),
    ]);
  });

  it('F_WALK_EABT (CLASS TT, FetchAddr) and F_BAD_ATS_TREQ', () => {
    const s = system();
    const root = RAM_BASE + 0x4_0000;
    s.put(root, Uint32Array.of(HOLE | 0b11, 0)); // level 0 entry 0: a table where no memory is
    s.put(STRTAB + 64 * 9, s.s1Ste());
    s.put(CD, s.cd({ ttb0: root }));
    s.device(9).dmaRead(BigInt(IOVA + 0x10), 1);
    const ats = s.smmu.atsTranslate({
      streamId: 9,
      pasid: NO_PASID,
      iovaPfn: 7,
      offset: 0,
      access: PERM_READ,
    });
    expect(ats).toMatchObject({ ok: false, fault: { vendorCode: 'F_BAD_ATS_TREQ' } });
    expect(s.records()).toEqual([
      words(translationRecord(EVENT_ID.F_WALK_EABT, 9, false, { class: EVENT_CLASS.TT, fetchAddr: HOLE })),
      words({ id: EVENT_ID.F_BAD_ATS_TREQ, streamId: 9 }),
    ]);
  });
});
