/**
 * An SMMU programmed over MMIO (a linear Stream table, the Event queue on) with a stage-1 and a stage-2 page
 * table in RAM, and one stream per configuration: stage 1 only, stage 2 only and nested. For tests that
 * translate, edit descriptors bit by bit, and read back the Event queue's records.
 */
import {
  EndpointDevice,
  type EndpointSpec,
  FrameAllocator,
  NO_PASID,
  PERM_READ,
  type Prot,
  Tracer,
  type TranslationRequest,
  type TranslationResult,
} from '@iommukit/core';
import { IoPageTable, vmsaFormat, walk } from '@iommukit/pagetables';
import type { Cd } from '../src/hw/cd.js';
import { decodeEvent, EVENT_WORDS, type EventRecord } from '../src/hw/events.js';
import { CR0_CMDQEN, CR0_EVENTQEN, CR0_SMMUEN, REG } from '../src/hw/regs.js';
import { encodeSte, STE_CONFIG, STE_S1DSS, type Ste } from '../src/hw/ste.js';
import { testCd } from './cd-fixture.js';
import { mmioRig, RAM_BASE } from './mmio-rig.js';
import { testS2Fields } from './ste-fixture.js';

const STRTAB = RAM_BASE;
/** Where a stream table of more than 256 STEs goes (up to 2^14 of them: 1 MiB, clear of the rig's tables). */
const LARGE_STRTAB = RAM_BASE + 0x200_0000;
/** The Command queue: 2^CMDQ_LOG2 entries at CMDQ. */
const CMDQ = RAM_BASE + 0x1_0000;
const CMDQ_LOG2 = 3;
const EVTQ = RAM_BASE + 0x2_0000;
const EVTQ_LOG2 = 8;
export const CD = RAM_BASE + 0x3_0000;

/** Addresses the rig's tests translate: an IOVA, an IPA, and an output in RAM the rig's tables do not use. */
export const IOVA = 0x1234_5000;
export const IPA = 0x4000_0000;
export const OUT = 0x8300_0000;

/** The streams `translationRig` configures. */
export const S1_STREAM = 1;
export const S2_STREAM = 2;
export const NESTED_STREAM = 3;
/**
 * The SubstreamID whose CD is a copy of CD 0 on the stage-1 and nested streams. Privileged and instruction
 * accesses need one: a PCIe transaction without a PASID is Data, Unprivileged (IHI 0070 §13.7).
 */
export const SSID = 1;

const s1Format = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
const s2Format = vmsaFormat({ stage: 2, granule: 4096, ias: 48, oas: 48 });

/** A request for one access (PERM_* bits) of `iova`, without a SubstreamID unless `pasid` is given. */
export const translationRequest = (
  streamId: number,
  iova: number,
  access = PERM_READ,
  pasid = NO_PASID,
): TranslationRequest => ({
  streamId,
  pasid,
  iovaPfn: Math.floor(iova / 4096),
  offset: iova % 4096,
  access,
});

/** A rewrite of a descriptor's two words. */
export type DescriptorEdit = (lo: number, hi: number) => [number, number];

export interface TranslationRigOptions {
  /** SMMU options (schema input). */
  readonly smmu?: Record<string, unknown>;
  /** Build the stage-2 table with hardware dirty tracking (DBM) mappings. */
  readonly s2DirtyTracking?: boolean;
  /** log2 of the linear Stream table's STEs (default 8; up to 14). */
  readonly streamTableLog2?: number;
  /** The SMMU's tracer (a fresh, disabled one by default). */
  readonly tracer?: Tracer;
}

export function translationRig({
  smmu: options = {},
  s2DirtyTracking = false,
  streamTableLog2 = 8,
  tracer,
}: TranslationRigOptions = {}) {
  if (streamTableLog2 > 14) throw new Error(`the rig holds at most 2^14 STEs, not 2^${streamTableLog2}`);
  const rig = mmioRig({ sidBits: Math.max(8, streamTableLog2), ssidBits: 8, ...options }, undefined, tracer);
  const { bus, smmu, mmio, mmio64, put, driver } = rig;
  const strtab = streamTableLog2 > 8 ? LARGE_STRTAB : STRTAB;
  mmio64(REG.STRTAB_BASE, strtab);
  mmio(REG.STRTAB_BASE_CFG, streamTableLog2);
  mmio64(REG.CMDQ_BASE, CMDQ + CMDQ_LOG2);
  mmio64(REG.EVENTQ_BASE, EVTQ + EVTQ_LOG2);
  mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
  mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
  const memory = new FrameAllocator([{ base: RAM_BASE + 0x10_0000, size: 0x100_0000 }]);
  const ctx = { bus, memory, counter: bus.counter('pt') };
  // 4 KiB pages only, so stage 2 can give each stage-1 table page its own permissions.
  const s1 = new IoPageTable(s1Format, ctx, { pageSizes: 1n << 12n });
  const s2 = new IoPageTable(s2Format, ctx, { pageSizes: 1n << 12n, dirtyTracking: s2DirtyTracking });
  const s2Fields = testS2Fields(s2.rootPa);
  const words = new Uint32Array(2);
  // A linear table of two CDs; traffic without a SubstreamID uses CD 0 (S1DSS = SSID0).
  const cdTable = { s1ContextPtr: CD, s1CdMax: 1, s1Dss: STE_S1DSS.SSID0 };
  const putCds = (cd: Partial<Cd>) => {
    const words = testCd(s1.rootPa, cd);
    put(CD, words);
    put(CD + 4 * words.length, words);
  };

  /** The address of the last descriptor a walk of `input` reads (the leaf, or where the walk stopped). */
  const leafAddress = (stage: 1 | 2, input: number): number => {
    let last = -1;
    const format = stage === 1 ? s1Format : s2Format;
    walk(format, stage === 1 ? s1.rootPa : s2.rootPa, input, {
      bus,
      counter: bus.counter('probe'),
      onStep: (_level, address) => {
        last = address;
      },
    });
    return last;
  };
  /** Writes a valid STE with `ste`'s fields for `streamId`. */
  const putSte = (streamId: number, ste: Partial<Ste>) =>
    put(strtab + 64 * streamId, encodeSte({ v: true, ...ste }));
  /** The Command queue's producer index, with its wrap bit. */
  let prod = 0;
  const readDescriptor = (address: number): [number, number] => {
    bus.readWords(address, words, 2, driver);
    return [words[0]!, words[1]!];
  };

  return {
    ...rig,
    s1,
    s2,
    s1Format,
    s2Format,
    /**
     * Stream S1_STREAM (or `streamId`): stage 1 only, through the CD at `CD` (SubstreamID 0 or none) and its
     * copy (SSID).
     */
    s1Stream(cd: Partial<Cd> = {}, ste: Partial<Ste> = {}, streamId = S1_STREAM) {
      putCds(cd);
      putSte(streamId, { config: STE_CONFIG.S1_TRANS, ...cdTable, ...ste });
    },
    /** Stream S2_STREAM: stage 2 only. */
    s2Stream(ste: Partial<Ste> = {}) {
      putSte(S2_STREAM, { config: STE_CONFIG.S2_TRANS, ...s2Fields, ...ste });
    },
    /** Stream NESTED_STREAM: the CDs at `CD` (an IPA) over stage 2, as `s1Stream`'s. */
    nestedStream(cd: Partial<Cd> = {}, ste: Partial<Ste> = {}) {
      putCds(cd);
      putSte(NESTED_STREAM, { config: STE_CONFIG.NESTED, ...cdTable, ...s2Fields, ...ste });
    },
    putSte,
    /** Puts `commands` on the Command queue after those sent before, moves CMDQ_PROD past them, returns it. */
    submit(...commands: Uint32Array[]): number {
      const slots = 1 << CMDQ_LOG2;
      for (const command of commands) {
        put(CMDQ + (prod % slots) * 16, command);
        prod = (prod + 1) % (2 * slots);
      }
      mmio(REG.CMDQ_PROD, prod);
      return prod;
    },
    /**
     * Maps in stage 2, 1:1 and read-write, the CD and every stage-1 table page a walk of `iova` reads,
     * except pages stage 2 already maps (so a test can give one page other permissions first).
     */
    mapStage1TablesInStage2(iova: number) {
      const pages = new Set<number>([CD]);
      walk(s1Format, s1.rootPa, iova, {
        bus,
        counter: bus.counter('probe'),
        onStep: (_level, address) => pages.add(Math.floor(address / 4096) * 4096),
      });
      for (const page of pages) {
        if (s2.iovaToPhys(BigInt(page)) === undefined)
          s2.map(BigInt(page), BigInt(page), 0x1000n, { read: true, write: true });
      }
    },
    leafAddress,
    readDescriptor,
    /** Rewrites the descriptor at `address` as `edit` returns it. */
    editDescriptor(address: number, edit: DescriptorEdit) {
      const [lo, hi] = edit(...readDescriptor(address));
      put(address, Uint32Array.of(lo >>> 0, hi >>> 0));
    },
    /** Translates one access (PERM_* bits) of `iova`, without a SubstreamID unless `pasid` is given. */
    translate(streamId: number, iova: number, access: number, pasid = NO_PASID): TranslationResult {
      return smmu.translate(translationRequest(streamId, iova, access, pasid));
    },
    /**
     * A PCIe endpoint on S1_STREAM with `spec`'s capabilities and its PASID capability enabled: Privileged and
     * Execute travel in the PASID TLP prefix (IHI 0070 §13.7).
     */
    endpoint(spec: Partial<EndpointSpec> = {}): EndpointDevice {
      const dev = new EndpointDevice(
        { name: 'dev', rid: S1_STREAM, streamId: S1_STREAM, pasidBits: 1, ...spec },
        bus,
        smmu,
        new Tracer(),
      );
      dev.pci.setPasidEnabled(true);
      return dev;
    },
    /** The Event queue's records so far, decoded. */
    records(): EventRecord[] {
      const count = rig.reg(REG.EVENTQ_PROD) & ((1 << EVTQ_LOG2) - 1);
      const record = new Uint32Array(EVENT_WORDS);
      const out: EventRecord[] = [];
      for (let i = 0; i < count; i++) {
        bus.readWords(EVTQ + 4 * EVENT_WORDS * i, record, EVENT_WORDS, driver);
        out.push(decodeEvent(record));
      }
      return out;
    },
  };
}

export type TranslationRig = ReturnType<typeof translationRig>;

/**
 * A rig whose stream S1_STREAM (with `ste`'s fields) maps the page at IOVA to OUT at stage 1, readable and
 * with `prot`, its leaf descriptor then rewritten by `edit`.
 */
export function stage1Page(
  prot: Omit<Prot, 'read'>,
  edit?: DescriptorEdit,
  ste: Partial<Ste> = {},
): TranslationRig {
  const rig = translationRig();
  rig.s1.map(BigInt(IOVA), BigInt(OUT), 0x1000n, { read: true, ...prot });
  if (edit) rig.editDescriptor(rig.leafAddress(1, IOVA), edit);
  rig.s1Stream({}, ste);
  return rig;
}
