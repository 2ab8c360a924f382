/**
 * The root table and context tables in driver memory (VT-d §9.1–§9.4; Linux `iommu_context_addr`,
 * `domain_context_mapping_one`, `domain_context_clear_one`, `device_pasid_table_setup`,
 * `intel_context_flush_present`).
 *
 * - A bus's context table is allocated (zeroed) on first use and only then linked from its root entry:
 *   legacy mode one table per bus (CTP), scalable mode two (LCTP for devfn 0–127 in the entry's low
 *   qword, UCTP for 128–255 in its high qword), each half written alone so the other stays as it is.
 * - Writes are ordered for a unit that may be reading: an entry is written with its present bit last (the
 *   high qwords, then qword 0), and cleared present bit first (qword 0, then the rest).
 * - Flushes after a change, as Linux does them:
 *   - not present → present: with CAP.CM (not-present entries may be cached, tagged DID 0) a device-selective
 *     context-cache invalidation with DID 0 and a domain-selective IOTLB invalidation (legacy: the new DID;
 *     scalable: DID 0); without CM the write-buffer flush (legacy, CAP.RWBF) or nothing (scalable);
 *   - present → changed or cleared (`intel_context_flush_present`, spec §6.5.3.3): device-selective
 *     context-cache invalidation; legacy: domain-selective IOTLB invalidation of the old DID; scalable: for
 *     every present PASID entry of the device, domain-selective PASID-cache and IOTLB invalidations of its
 *     DID; then the global Device-TLB invalidation of an ATS device.
 * - A present legacy entry is not rewritten in place (`EBUSY`): Linux clears it first (the blocking step of
 *   an attach, `device_block_translation`). A present scalable entry may be changed in place (Linux's PRE
 *   flip, `context_flip_pri`), with the present-entry flushes.
 */
import {
  allocDriverPages,
  freeDriverPages,
  IommufdError,
  readDriverMemory,
  writeDriverMemory,
} from '@iommukit/core';
import {
  CONTEXT_TT,
  contextEntryAddress,
  decodeLegacyContext,
  encodeLegacyContext,
  encodeLegacyRootEntry,
  encodeScalableContext,
  encodeScalableRootEntry,
  LEGACY_CONTEXT_WORDS,
  rootEntryAddress,
  SCALABLE_CONTEXT_WORDS,
} from '../hw/root-context.js';
import type { DeviceTlbTarget, VtdDriverBase } from './driver-host.js';
import { contextDevice, type DriverQi, iotlbDomain, pasidCache } from './qi.js';

/** A legacy context entry (§9.3) as the driver programs it. */
export interface LegacyContextConfig {
  readonly did: number;
  /** Translation type (`CONTEXT_TT`). */
  readonly tt: number;
  /** AW code: Linux writes the domain's AGAW, and for pass-through the widest the unit walks (`msagaw`). */
  readonly aw: number;
  /** Second-stage table root (ignored with TT = pass-through). */
  readonly slptptr?: number;
}

/** A scalable-mode context entry (§9.4) as the driver programs it (Linux `context_entry_set_pasid_table`). */
export interface ScalableContextConfig {
  readonly pasidDir: number;
  /** PASID directory size: 2^(PDTS + 7) entries. */
  readonly pdts: number;
  readonly pre?: boolean;
  readonly dte?: boolean;
  readonly paside?: boolean;
}

/** The device behind the entry, when its ATS is enabled (its Device-TLB is flushed on present changes). */
export interface ContextChange {
  readonly ats?: DeviceTlbTarget;
}

/** Words per 64-bit qword. */
const QWORD = 2;

export class ContextTables {
  /** The root table (RTADDR.RTA). */
  readonly root: number;
  /** Context table addresses by bus · 2 + upper half (scalable devfn ≥ 128). */
  private readonly tables = new Map<number, number>();
  private readonly words: Uint32Array;

  constructor(
    private readonly host: VtdDriverBase,
    private readonly qi: DriverQi,
    /** The DIDs of the device's present PASID entries, one per entry (the PASID table's `presentDids`). */
    private readonly presentDids: (sid: number) => readonly number[],
  ) {
    this.root = allocDriverPages(host.memory, 1);
    this.words = new Uint32Array(host.scalable ? SCALABLE_CONTEXT_WORDS : LEGACY_CONTEXT_WORDS);
  }

  /** Linux `domain_context_mapping_one`: a not-present legacy entry made present. */
  setLegacyContext(sid: number, config: LegacyContextConfig): void {
    this.requireMode(false);
    const at = this.entryAddress(sid, true)!;
    if (this.present(at)) throw this.busy(sid);
    const passThrough = config.tt === CONTEXT_TT.PASS_THROUGH;
    this.write(
      at,
      encodeLegacyContext({
        p: true,
        did: config.did,
        tt: config.tt,
        aw: config.aw,
        slptptr: passThrough ? 0 : (config.slptptr ?? 0),
      }),
    );
    this.flushNowPresent(sid, config.did);
  }

  /** Linux `device_pasid_table_setup` (not present) or an in-place change (`context_flip_pri`). */
  setScalableContext(sid: number, config: ScalableContextConfig, change: ContextChange = {}): void {
    this.requireMode(true);
    const at = this.entryAddress(sid, true)!;
    const wasPresent = this.present(at);
    this.write(
      at,
      encodeScalableContext({
        p: true,
        pasidDirPtr: config.pasidDir,
        pdts: config.pdts,
        pre: config.pre === true,
        dte: config.dte === true,
        paside: config.paside === true,
        // RID_PASID: Linux processes requests without PASID with IOMMU_NO_PASID (0).
        ridPasid: 0,
      }),
    );
    if (wasPresent) this.flushPresent(sid, 0, change);
    else this.flushNowPresent(sid, 0);
  }

  /** Linux `domain_context_clear_one` / `device_pasid_table_teardown`: not present, then the flushes. */
  clearContext(sid: number, change: ContextChange = {}): void {
    const at = this.entryAddress(sid, false);
    if (at === undefined || !this.present(at)) return;
    const did = this.host.scalable ? 0 : decodeLegacyContext(this.words).did;
    this.words.fill(0);
    writeDriverMemory(this.host, at, this.words, QWORD);
    writeDriverMemory(this.host, at + 4 * QWORD, this.words.subarray(QWORD), this.words.length - QWORD);
    this.flushPresent(sid, did, change);
  }

  /** Where the context entry of `sid` is, if its context table exists. */
  entryAt(sid: number): number | undefined {
    return this.entryAddress(sid, false);
  }

  /** Returns every context table and the root table (translation must be off). */
  free(): void {
    for (const table of this.tables.values()) freeDriverPages(this.host.memory, table, 1);
    this.tables.clear();
    freeDriverPages(this.host.memory, this.root, 1);
  }

  private requireMode(scalable: boolean): void {
    if (this.host.scalable !== scalable)
      throw new IommufdError(
        'EINVAL',
        `${this.host.instance}: a ${scalable ? 'scalable-mode' : 'legacy'} context entry in ${this.host.scalable ? 'scalable' : 'legacy'} mode`,
      );
  }

  private busy(sid: number): IommufdError {
    return new IommufdError(
      'EBUSY',
      `${this.host.instance}: context entry of ${sid} is present; clear it first`,
      {
        instance: this.host.instance,
        sid,
      },
    );
  }

  /** Linux `iommu_context_addr`: the entry's address, the bus's context table made on first use. */
  private entryAddress(sid: number, alloc: boolean): number | undefined {
    const bus = (sid >>> 8) & 0xff;
    const devfn = sid & 0xff;
    const upper = this.host.scalable && devfn >= 0x80;
    const key = 2 * bus + (upper ? 1 : 0);
    let table = this.tables.get(key);
    if (table === undefined) {
      if (!alloc) return undefined;
      table = allocDriverPages(this.host.memory, 1);
      this.tables.set(key, table);
      // The zeroed table exists before the root entry points at it; only this half is written.
      const root = this.host.scalable
        ? encodeScalableRootEntry(upper ? { up: true, uctp: table } : { lp: true, lctp: table })
        : encodeLegacyRootEntry({ p: true, ctp: table });
      const half = upper ? QWORD : 0;
      writeDriverMemory(this.host, rootEntryAddress(this.root, bus) + 4 * half, root.subarray(half), QWORD);
    }
    return contextEntryAddress(table, devfn, this.host.scalable);
  }

  /** Reads the entry at `at` into `words`; whether it is present. */
  private present(at: number): boolean {
    readDriverMemory(this.host, at, this.words);
    return (this.words[0]! & 1) === 1;
  }

  /** The entry's high qwords, then qword 0 with the present bit. */
  private write(at: number, entry: Uint32Array): void {
    writeDriverMemory(this.host, at + 4 * QWORD, entry.subarray(QWORD), entry.length - QWORD);
    writeDriverMemory(this.host, at, entry, QWORD);
  }

  private flushNowPresent(sid: number, did: number): void {
    if (this.host.unit.cap.cm) {
      this.qi.submit([contextDevice(0, sid)]);
      this.qi.submit([iotlbDomain(did)]);
    } else if (!this.host.scalable) {
      this.host.commands.flushWriteBuffer();
    }
  }

  /** Linux `intel_context_flush_present`. */
  private flushPresent(sid: number, did: number, change: ContextChange): void {
    this.qi.submit([contextDevice(did, sid)]);
    if (!this.host.scalable) {
      this.qi.submit([iotlbDomain(did)]);
    } else {
      for (const pasidDid of this.presentDids(sid)) {
        this.qi.submit([pasidCache(pasidDid, 'all')]);
        this.qi.submit([iotlbDomain(pasidDid)]);
      }
    }
    if (change.ats) this.qi.flushDeviceTlbAll(change.ats);
  }
}
