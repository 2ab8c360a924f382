/**
 * A VT-d translator over RAM holding hand-built root, context and PASID structures and page tables made
 * with `@iommukit/pagetables` (second stage: VT-d second-stage format; first stage: x86-64), for tests that
 * drive the translation pipeline without the register file.
 */
import {
  FrameAllocator,
  MemoryBus,
  NO_PASID,
  PERM_READ,
  Tracer,
  type TranslationRequest,
} from '@iommukit/core';
import { IoPageTable, type MapProt, vtdSsFormat, x86Format } from '@iommukit/pagetables';
import { VtdCaches } from '../src/hw/caches.js';
import { type ContextConfig, contextDid, type PasidLookup, pasidDid } from '../src/hw/config-fetch.js';
import type { VtdFeatures } from '../src/hw/features.js';
import { featuresFromOptions, type VtdOptions, VtdOptionsSchema } from '../src/hw/options.js';
import {
  encodePasidDirEntry,
  encodePasidEntry,
  type PasidEntry,
  pasidDirEntryAddress,
  pasidEntryAddress,
} from '../src/hw/pasid-entry.js';
import { TTM } from '../src/hw/regs.js';
import {
  encodeLegacyContext,
  encodeLegacyRootEntry,
  encodeScalableContext,
  encodeScalableRootEntry,
  type LegacyContextEntry,
  rootEntryAddress,
  type ScalableContextEntry,
} from '../src/hw/root-context.js';
import { type TranslationFaultReport, type VtdTranslationState, VtdTranslator } from '../src/hw/translate.js';

export const RAM_BASE = 0x1_0000_0000;
const RAM_SIZE = 64 * 1024 * 1024;
export const RW: MapProt = { read: true, write: true };

/** A source ID from bus and devfn. */
export const sid = (bus: number, devfn: number) => (bus << 8) | devfn;

export function request(
  streamId: number,
  iova: number,
  access = PERM_READ,
  pasid = NO_PASID,
): TranslationRequest {
  return { streamId, pasid, iovaPfn: Math.floor(iova / 4096), offset: iova % 4096, access };
}

export interface Rig {
  readonly features: VtdFeatures;
  readonly bus: MemoryBus;
  readonly memory: FrameAllocator;
  readonly caches: VtdCaches<ContextConfig, PasidLookup>;
  readonly translator: VtdTranslator;
  readonly faults: TranslationFaultReport[];
  readonly rootTable: number;
  /** Switches translation on or off, or to another TTM (a new state object, as a register write makes). */
  setState(state: Partial<VtdTranslationState>): void;
  /** A fresh zeroed page. */
  page(): number;
  /** Writes words at an address. */
  write(address: number, words: Uint32Array): void;
  /** A second-stage table (levels from `aw`: 2 = 4-level). */
  secondStage(levels?: 3 | 4 | 5, accessedDirty?: boolean): IoPageTable;
  /** A first-stage (x86-64) table; with `dirtyTracking` its writable leaves start clean (D = 0). */
  firstStage(levels?: 4 | 5, dirtyTracking?: boolean): IoPageTable;
  /** Points the root entry of `bus` at a context table (legacy or scalable halves) and returns the table. */
  contextTable(bus: number, scalable: boolean, upper?: boolean): number;
  legacyContext(source: number, fields: Partial<LegacyContextEntry>): void;
  scalableContext(source: number, fields: Partial<ScalableContextEntry>): number;
  /** Writes the PASID entry for `pasid` under the directory at `dir` (making its table on first use). */
  pasidEntry(dir: number, pasid: number, fields: Partial<PasidEntry>): void;
}

export function translationRig(options: Partial<VtdOptions> = {}, scalable = true): Rig {
  const features = featuresFromOptions(VtdOptionsSchema.parse({ hostAddressBits: 48, ...options }));
  const bus = new MemoryBus();
  bus.addRam('ram', RAM_BASE, RAM_SIZE);
  const memory = new FrameAllocator([{ base: RAM_BASE, size: RAM_SIZE }], (b, n) => bus.discardRam(b, n));
  const counter = bus.counter('vtd');
  const caches = new VtdCaches<ContextConfig, PasidLookup>(
    {
      iotlb: { sets: 16, ways: 4, policy: 'lru' },
      context: { sets: 4, ways: 4, policy: 'lru' },
      pasid: { sets: 4, ways: 4, policy: 'lru' },
      pagingStructure: { sets: 4, ways: 4, policy: 'lru' },
    },
    { context: contextDid, pasid: pasidDid },
  );
  const page = () => Number(memory.allocFrames(1));
  const rootTable = page();
  let state: VtdTranslationState = { enabled: true, rootTable, ttm: scalable ? TTM.SCALABLE : TTM.LEGACY };
  const faults: TranslationFaultReport[] = [];
  const translator = new VtdTranslator({
    instance: 'dmar0',
    bus,
    counter,
    tracer: new Tracer(),
    features,
    caches,
    state: () => state,
    recordFault: (report) => {
      faults.push(report);
      return true;
    },
  });
  const write = (address: number, words: Uint32Array) => {
    if (!bus.writeWords(address, words, words.length, bus.counter('setup'))) throw new Error('no RAM there');
  };
  const ctx = { bus, memory, counter: bus.counter('pgtable') };
  const tables = new Map<number, number>();
  const pasidTables = new Map<string, number>();
  const rig: Rig = {
    features,
    bus,
    memory,
    caches,
    translator,
    faults,
    rootTable,
    setState: (next) => {
      state = { ...state, ...next };
    },
    page,
    write,
    secondStage: (levels = 4, accessedDirty = false) =>
      new IoPageTable(vtdSsFormat({ levels, oas: 48, accessedDirty }), ctx),
    firstStage: (levels = 4, dirtyTracking = false) =>
      new IoPageTable(x86Format({ levels, oas: 48 }), ctx, { dirtyTracking }),
    contextTable: (busNo, sm, upper = false) => {
      const key = busNo * 2 + (upper ? 1 : 0);
      let table = tables.get(key);
      if (table === undefined) {
        table = page();
        tables.set(key, table);
        const other = tables.get(busNo * 2 + (upper ? 0 : 1));
        const entry = sm
          ? encodeScalableRootEntry(
              upper
                ? { up: true, uctp: table, ...(other ? { lp: true, lctp: other } : {}) }
                : { lp: true, lctp: table, ...(other ? { up: true, uctp: other } : {}) },
            )
          : encodeLegacyRootEntry({ p: true, ctp: table });
        write(rootEntryAddress(rootTable, busNo), entry);
      }
      return table;
    },
    legacyContext: (source, fields) => {
      const table = rig.contextTable(source >>> 8, false);
      write(table + (source & 0xff) * 16, encodeLegacyContext({ p: true, aw: 2, ...fields }));
    },
    scalableContext: (source, fields) => {
      const devfn = source & 0xff;
      const table = rig.contextTable(source >>> 8, true, devfn >= 128);
      const dir = fields.pasidDirPtr ?? page();
      write(
        table + (devfn & 0x7f) * 32,
        encodeScalableContext({ p: true, pdts: 7, pasidDirPtr: dir, ...fields }),
      );
      return dir;
    },
    pasidEntry: (dir, pasid, fields) => {
      const key = `${dir}/${pasid >>> 6}`;
      let table = pasidTables.get(key);
      if (table === undefined) {
        table = page();
        pasidTables.set(key, table);
        write(pasidDirEntryAddress(dir, pasid), encodePasidDirEntry({ p: true, pasidTablePtr: table }));
      }
      write(pasidEntryAddress(table, pasid), encodePasidEntry({ p: true, aw: 2, ...fields }));
    },
  };
  return rig;
}
