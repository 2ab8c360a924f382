/**
 * The `stage` of every fault the model hands the core, against the record it writes: a fault whose event
 * record has an S2 field (F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION, F_WALK_EABT; §7.3.12–7.3.16)
 * says stage 2 exactly when the record's S2 bit is 1 and stage 1 when it is 0; configuration errors and
 * aborts without a record have no stage. One row per way the model produces a fault.
 */
import { FrameAllocator, PERM_READ, PERM_WRITE, type TranslationResult } from '@iommukit/core';
import { IoPageTable, LO_AF, psEncoding, sl0Encoding, t0szFor, vmsaFormat } from '@iommukit/pagetables';
import { describe, expect, it } from 'vitest';
import { RAM_BASE } from '../../test/mmio-rig.js';
import { testS2Fields } from '../../test/ste-fixture.js';
import {
  CD,
  IOVA,
  IPA,
  NESTED_STREAM,
  OUT,
  S1_STREAM,
  S2_STREAM,
  type TranslationRig,
  translationRequest,
  translationRig,
} from '../../test/translation-rig.js';
import { EVENT_CLASS, EVENT_FIELDS, EVENT_ID, type EventName } from './events.js';
import { CR0_CMDQEN, CR0_EVENTQEN, CR0_SMMUEN, CR2_RECINVSID, GBPA_ABORT, GBPA_UPDATE, REG } from './regs.js';
import { STE_CONFIG, STE_S1DSS } from './ste.js';

/** Addresses no memory answers at. */
const HOLE = 0x4000_0000;
/** A page of RAM the rig's tables do not use, for hand-made tables. */
const SPARE = RAM_BASE + 0x4_0000;
const RW = { read: true, write: true } as const;
const RO = { read: true, write: false } as const;
/** A stream the rig leaves unconfigured, for rows that write their own STE. */
const OTHER = 7;

interface Row {
  readonly name: string;
  readonly event: EventName | 'ABORT' | 'GBPA_ABORT' | 'OAS_ABORT';
  /** The stage the fault must report: the record's S2 bit, or undefined for faults without one. */
  readonly stage: 1 | 2 | undefined;
  readonly cls?: number;
  readonly provoke: (rig: TranslationRig) => TranslationResult;
}

const clearAf = (lo: number, hi: number): [number, number] => [lo & ~LO_AF, hi];

const ROWS: readonly Row[] = [
  // Configuration errors and aborts.
  {
    name: 'StreamID beyond the Stream table',
    event: 'C_BAD_STREAMID',
    stage: undefined,
    provoke: (rig) => {
      // Recorded only with CR2.RECINVSID == 1, which is writable while SMMUEN == 0.
      rig.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
      rig.mmio(REG.CR2, CR2_RECINVSID);
      rig.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
      return rig.translate(300, IOVA, PERM_READ);
    },
  },
  {
    name: 'STE.V = 0',
    event: 'C_BAD_STE',
    stage: undefined,
    provoke: (rig) => rig.translate(OTHER, IOVA, PERM_READ),
  },
  {
    name: 'Stream table where no memory is',
    event: 'F_STE_FETCH',
    stage: undefined,
    provoke: (rig) => {
      rig.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
      rig.mmio64(REG.STRTAB_BASE, HOLE);
      rig.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
      return rig.translate(OTHER, IOVA, PERM_READ);
    },
  },
  {
    name: 'no SubstreamID with S1DSS = terminate',
    event: 'F_STREAM_DISABLED',
    stage: undefined,
    provoke: (rig) => {
      rig.putSte(OTHER, {
        config: STE_CONFIG.S1_TRANS,
        s1ContextPtr: CD,
        s1CdMax: 2,
        s1Dss: STE_S1DSS.TERMINATE,
      });
      return rig.translate(OTHER, IOVA, PERM_READ);
    },
  },
  {
    name: 'SubstreamID on a stage-2-only stream',
    event: 'C_BAD_SUBSTREAMID',
    stage: undefined,
    provoke: (rig) => {
      rig.s2Stream();
      return rig.smmu.translate(translationRequest(S2_STREAM, IOVA, PERM_READ, 3));
    },
  },
  {
    name: 'CD where no memory is',
    event: 'F_CD_FETCH',
    stage: undefined,
    provoke: (rig) => {
      rig.putSte(OTHER, { config: STE_CONFIG.S1_TRANS, s1ContextPtr: HOLE });
      return rig.translate(OTHER, IOVA, PERM_READ);
    },
  },
  {
    name: 'CD.V = 0',
    event: 'C_BAD_CD',
    stage: undefined,
    provoke: (rig) => {
      rig.s1Stream({ v: false });
      return rig.translate(S1_STREAM, IOVA, PERM_READ);
    },
  },
  {
    name: 'ATS request with STE.EATS = 0',
    event: 'F_BAD_ATS_TREQ',
    stage: undefined,
    provoke: (rig) => {
      rig.s1Stream();
      return rig.smmu.atsTranslate(translationRequest(S1_STREAM, IOVA));
    },
  },
  {
    name: 'STE.Config = abort',
    event: 'ABORT',
    stage: undefined,
    provoke: (rig) => {
      rig.putSte(OTHER, { config: STE_CONFIG.ABORT });
      return rig.translate(OTHER, IOVA, PERM_READ);
    },
  },
  {
    name: 'SMMUEN = 0 with GBPA.ABORT',
    event: 'GBPA_ABORT',
    stage: undefined,
    provoke: (rig) => {
      rig.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
      rig.mmio(REG.GBPA, GBPA_UPDATE | GBPA_ABORT);
      return rig.translate(OTHER, IOVA, PERM_READ);
    },
  },
  {
    name: 'SMMUEN = 0, GBPA bypass, input beyond the OAS',
    event: 'OAS_ABORT',
    stage: undefined,
    provoke: (rig) => {
      rig.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
      return rig.translate(OTHER, 2 ** 48, PERM_READ);
    },
  },
  // Stage 1.
  {
    name: 'stage 1: unmapped',
    event: 'F_TRANSLATION',
    stage: 1,
    provoke: (rig) => {
      rig.s1Stream();
      return rig.translate(S1_STREAM, IOVA, PERM_READ);
    },
  },
  {
    name: 'stage 1: CD.EPD0 = 1',
    event: 'F_TRANSLATION',
    stage: 1,
    provoke: (rig) => {
      rig.s1Stream({ epd0: true });
      return rig.translate(S1_STREAM, IOVA, PERM_READ);
    },
  },
  {
    name: 'stage 1: write to a read-only page (walk)',
    event: 'F_PERMISSION',
    stage: 1,
    provoke: (rig) => {
      rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, RO);
      rig.s1Stream();
      return rig.translate(S1_STREAM, IOVA, PERM_WRITE);
    },
  },
  {
    name: 'stage 1: write to a read-only page (TLB hit)',
    event: 'F_PERMISSION',
    stage: 1,
    provoke: (rig) => {
      rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, RO);
      rig.s1Stream();
      rig.translate(S1_STREAM, IOVA, PERM_READ);
      return rig.translate(S1_STREAM, IOVA, PERM_WRITE);
    },
  },
  {
    name: 'stage 1: AF = 0 without HA',
    event: 'F_ACCESS',
    stage: 1,
    provoke: (rig) => {
      rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, RW);
      rig.editDescriptor(rig.leafAddress(1, IOVA), clearAf);
      rig.s1Stream();
      return rig.translate(S1_STREAM, IOVA, PERM_READ);
    },
  },
  {
    name: 'stage 1: AF = 0 without HA, stalling (CD.S = 1)',
    event: 'F_ACCESS',
    stage: 1,
    provoke: (rig) => {
      rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, RW);
      rig.editDescriptor(rig.leafAddress(1, IOVA), clearAf);
      rig.s1Stream({ s: true });
      const result = rig.translate(S1_STREAM, IOVA, PERM_READ);
      expect(result.ok ? undefined : result.stallId).toBeDefined();
      return result;
    },
  },
  {
    name: 'stage 1: output beyond CD.IPS',
    event: 'F_ADDR_SIZE',
    stage: 1,
    provoke: (rig) => {
      rig.s1.map(BigInt(IOVA), 0x1_0000_0000n, 0x1000n, RW);
      rig.s1Stream({ ips: psEncoding(32)! });
      return rig.translate(S1_STREAM, IOVA, PERM_READ);
    },
  },
  {
    name: 'STE.Config = bypass, input beyond the OAS',
    event: 'F_ADDR_SIZE',
    stage: 1,
    provoke: (rig) => {
      rig.putSte(OTHER, { config: STE_CONFIG.BYPASS });
      return rig.translate(OTHER, 2 ** 48, PERM_READ);
    },
  },
  {
    name: 'stage 1 bypassed (stage 2 only), input beyond the IAS',
    event: 'F_ADDR_SIZE',
    stage: 1,
    provoke: (rig) => {
      rig.s2Stream();
      return rig.translate(S2_STREAM, 2 ** 48, PERM_READ);
    },
  },
  {
    name: 'stage 1: table descriptor pointing where no memory is',
    event: 'F_WALK_EABT',
    stage: 1,
    cls: EVENT_CLASS.TT,
    provoke: (rig) => {
      rig.put(SPARE, Uint32Array.of(HOLE | 0b11, 0));
      rig.s1Stream({ ttb0: SPARE });
      return rig.translate(S1_STREAM, IOVA, PERM_READ);
    },
  },
  {
    name: 'nested: stage-1 read-only page written',
    event: 'F_PERMISSION',
    stage: 1,
    provoke: (rig) => {
      rig.s1.map(BigInt(IOVA), BigInt(IPA), 0x1000n, RO);
      rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RW);
      rig.mapStage1TablesInStage2(IOVA);
      rig.nestedStream();
      return rig.translate(NESTED_STREAM, IOVA, PERM_WRITE);
    },
  },
  // Stage 2.
  {
    name: 'stage 2: unmapped IPA',
    event: 'F_TRANSLATION',
    stage: 2,
    provoke: (rig) => {
      rig.s2Stream();
      return rig.translate(S2_STREAM, IPA, PERM_READ);
    },
  },
  {
    name: 'stage 2: write to a read-only page (walk)',
    event: 'F_PERMISSION',
    stage: 2,
    provoke: (rig) => {
      rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RO);
      rig.s2Stream();
      return rig.translate(S2_STREAM, IPA, PERM_WRITE);
    },
  },
  {
    name: 'stage 2: write to a read-only page (TLB hit)',
    event: 'F_PERMISSION',
    stage: 2,
    provoke: (rig) => {
      rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RO);
      rig.s2Stream();
      rig.translate(S2_STREAM, IPA, PERM_READ);
      return rig.translate(S2_STREAM, IPA, PERM_WRITE);
    },
  },
  {
    name: 'stage 2: AF = 0 without S2HA',
    event: 'F_ACCESS',
    stage: 2,
    provoke: (rig) => {
      rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RW);
      rig.editDescriptor(rig.leafAddress(2, IPA), clearAf);
      rig.s2Stream();
      return rig.translate(S2_STREAM, IPA, PERM_READ);
    },
  },
  {
    name: 'stage 2: output beyond S2PS',
    event: 'F_ADDR_SIZE',
    stage: 2,
    provoke: (rig) => {
      // A 32-bit stage 2 (IPA and PA) whose leaf points above 4 GiB.
      const narrow = new IoPageTable(vmsaFormat({ stage: 2, granule: 4096, ias: 32, oas: 48 }), {
        bus: rig.bus,
        memory: new FrameAllocator([{ base: RAM_BASE + 0x200_0000, size: 0x10_0000 }]),
        counter: rig.bus.counter('pt'),
      });
      narrow.map(0x1000n, 0x1_0000_0000n, 0x1000n, RW);
      rig.putSte(OTHER, {
        config: STE_CONFIG.S2_TRANS,
        ...testS2Fields(narrow.rootPa, {
          s2T0sz: t0szFor(32),
          s2Sl0: sl0Encoding(4096, narrow.format.startLevel)!,
          s2Ps: psEncoding(32)!,
        }),
      });
      return rig.translate(OTHER, 0x1000, PERM_READ);
    },
  },
  {
    name: 'stage 2: table descriptor pointing where no memory is',
    event: 'F_WALK_EABT',
    stage: 2,
    cls: EVENT_CLASS.IN,
    provoke: (rig) => {
      rig.put(SPARE, Uint32Array.of(HOLE | 0b11, 0));
      rig.putSte(OTHER, { config: STE_CONFIG.S2_TRANS, ...testS2Fields(SPARE) });
      return rig.translate(OTHER, IPA, PERM_READ);
    },
  },
  {
    name: 'nested: the CD IPA unmapped at stage 2',
    event: 'F_TRANSLATION',
    stage: 2,
    cls: EVENT_CLASS.CD,
    provoke: (rig) => {
      rig.nestedStream();
      return rig.translate(NESTED_STREAM, IOVA, PERM_READ);
    },
  },
  {
    name: 'nested: a stage-1 table IPA unmapped at stage 2',
    event: 'F_TRANSLATION',
    stage: 2,
    cls: EVENT_CLASS.TT,
    provoke: (rig) => {
      rig.s1.map(BigInt(IOVA), BigInt(IPA), 0x1000n, RW);
      rig.s2.map(BigInt(CD), BigInt(CD), 0x1000n, RW);
      rig.nestedStream();
      return rig.translate(NESTED_STREAM, IOVA, PERM_READ);
    },
  },
  {
    name: 'nested: the output IPA read-only at stage 2, written',
    event: 'F_PERMISSION',
    stage: 2,
    provoke: (rig) => {
      rig.s1.map(BigInt(IOVA), BigInt(IPA), 0x1000n, RW);
      rig.s2.map(BigInt(IPA), BigInt(OUT), 0x1000n, RO);
      rig.mapStage1TablesInStage2(IOVA);
      rig.nestedStream();
      return rig.translate(NESTED_STREAM, IOVA, PERM_WRITE);
    },
  },
];

describe("a fault's stage is its event record's S2 bit (§7.3.12–7.3.16), for every fault the model returns", () => {
  it.each(ROWS)('$event: $name', (row) => {
    const rig = translationRig();
    const result = row.provoke(rig);
    if (result.ok) throw new Error(`${row.name}: translated instead of faulting`);
    const { fault } = result;
    expect(fault.vendorCode).toBe(row.event);
    expect(fault.stage).toBe(row.stage);
    const records = rig.records();
    if (row.event === 'ABORT' || row.event === 'GBPA_ABORT' || row.event === 'OAS_ABORT') {
      expect(records, 'an abort writes no record').toEqual([]);
      return;
    }
    const record = records.at(-1);
    expect(record?.id).toBe(EVENT_ID[row.event]);
    const hasS2 = EVENT_FIELDS[row.event].includes('s2');
    expect(hasS2, 'the row expects a stage exactly when the record has S2').toBe(row.stage !== undefined);
    if (hasS2) expect(record?.s2).toBe(row.stage === 2);
    if (row.cls !== undefined) expect(record?.class).toBe(row.cls);
  });
});
