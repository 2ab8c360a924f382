/**
 * The kernel-owned PASID tables (VT-d §9.5, §9.6; Linux pasid.c): per device a PASID directory, its PASID
 * tables allocated on demand, and the entries the driver programs.
 *
 * - Sizing (Linux `intel_pasid_alloc_table`): the PASIDs are the fewer of the device's and the unit's
 *   (Linux `intel_pasid_max_id`, 2^(ECAP.PSS + 1)), or none for a device without PASIDs; the directory is
 *   2^order pages for max_pasid / 8 bytes of 8-byte entries, at least one page, so it reaches
 *   2^(order + 15) PASIDs and the context entry's PDTS is order + 2 (`context_get_sm_pds`).
 * - A PASID table (64 entries, one page) is allocated and linked from its directory entry on first use of
 *   one of its PASIDs (`intel_pasid_get_entry`).
 * - Set-up (`intel_pasid_setup_first_level`, `_second_level`, `_pass_through`, `_nested`): only a
 *   not-present entry is programmed (`EBUSY` otherwise: Linux tears an entry down before reusing it); the
 *   entry is written with its present bit last (qwords 1–7, then qword 0), PWSNP as ECAP.SMPWCS says, AW
 *   the unit's AGAW unless the stage needs the domain's; then `pasid_flush_caches`: with CAP.CM a
 *   PASID-selective PASID-cache and a PASID-selective PASID-based IOTLB invalidation, else the write-buffer
 *   flush.
 * - Teardown (`intel_pasid_tear_down_entry`): a present entry is cleared present bit first (with FPD kept set
 *   when faults are to be ignored), then a PASID-selective PASID-cache invalidation, a PASID-selective
 *   PASID-based IOTLB invalidation (first stage, pass-through) or a domain-selective IOTLB invalidation
 *   (second stage, nested), then the Device-TLB of an ATS device (whole space; RID_PASID without PASID).
 * - Capabilities are checked as Linux checks them (`EINVAL`): FLTS, FL5LP, SRS, EAFS, SLTS, SLADS, PT, NEST,
 *   SC for PGSNP, and an AW the unit's SAGAW has.
 */
import {
  allocDriverPages,
  freeDriverPages,
  IommufdError,
  readDriverMemory,
  writeDriverMemory,
} from '@iommukit/core';
import {
  decodePasidEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  FLPM,
  PASID_ENTRY_WORDS,
  PASID_TABLE_ENTRIES,
  type PasidEntry,
  PGTT,
  pasidDirEntryAddress,
  pasidEntryAddress,
} from '../hw/pasid-entry.js';
import { FLPT_DEFAULT_DID } from './domain-ids.js';
import type { DeviceTlbTarget, VtdDriverBase } from './driver-host.js';
import { type DriverQi, iotlbDomain, pasidCache, pasidIotlb } from './qi.js';

/** The PASID requests without PASID are processed with (Linux IOMMU_NO_PASID as RID_PASID). */
export const RID_PASID = 0;

/** A device's PASID directory, for its scalable-mode context entry. */
export interface PasidDirectory {
  readonly dir: number;
  readonly pages: number;
  /** PASIDs the directory reaches. */
  readonly maxPasid: number;
  /** Context entry PDTS: 2^(PDTS + 7) directory entries. */
  readonly pdts: number;
}

export interface FirstStageConfig {
  readonly did: number;
  readonly fsptptr: number;
  /** `FLPM.LEVEL_5` for 5-level tables (needs CAP.FL5LP). */
  readonly flpm?: number;
  readonly sre?: boolean;
  /** With SRE only, as Linux sets it. */
  readonly wpe?: boolean;
  readonly eafe?: boolean;
  readonly pgsnp?: boolean;
}

export interface SecondStageConfig {
  readonly did: number;
  readonly ssptptr: number;
  /** AW code of the domain's table (1 = 3-level … 3 = 5-level). */
  readonly aw: number;
  readonly ssade?: boolean;
  readonly pgsnp?: boolean;
}

/** A nested entry: the user's first stage (WPE as the user asks, SRE or not) on a second stage. */
export type NestedConfig = FirstStageConfig & Omit<SecondStageConfig, 'did' | 'pgsnp'>;

interface DeviceTable extends PasidDirectory {
  /** PASID tables by directory index. */
  readonly tables: Map<number, number>;
  ats: DeviceTlbTarget | undefined;
}

const QWORD = 2;

export class PasidTables {
  private readonly devices = new Map<number, DeviceTable>();
  private readonly entry16 = new Uint32Array(PASID_ENTRY_WORDS);

  constructor(
    private readonly host: VtdDriverBase,
    private readonly qi: DriverQi,
  ) {}

  /** Linux `intel_pasid_alloc_table`: the device's directory (`EEXIST` if it has one). */
  allocTable(sid: number, device: { pasidBits: number; ats?: DeviceTlbTarget }): PasidDirectory {
    if (this.devices.has(sid))
      throw new IommufdError('EEXIST', `${this.host.instance}: device ${sid} already has a PASID table`);
    const unitBits = this.host.unit.pasidBits;
    // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: with 0 bits 2^0 = 1 PASID also takes one directory page
    const maxPasid = device.pasidBits > 0 && unitBits > 0 ? 2 ** Math.min(device.pasidBits, unitBits) : 0;
    const bytes = maxPasid / 8;
    let order = 0;
    while (4096 * 2 ** order < bytes) order++;
    const pages = 2 ** order;
    const table: DeviceTable = {
      dir: allocDriverPages(this.host.memory, pages),
      pages,
      maxPasid: 2 ** (order + 15),
      pdts: order + 2,
      tables: new Map(),
      ats: device.ats,
    };
    this.devices.set(sid, table);
    return table;
  }

  /** The device's directory, if it has one. */
  directory(sid: number): PasidDirectory | undefined {
    return this.devices.get(sid);
  }

  /** Records the device's ATS state (enabled: its Device-TLB is flushed on teardown). */
  setAts(sid: number, ats: DeviceTlbTarget | undefined): void {
    this.device(sid).ats = ats;
  }

  /** Linux `intel_pasid_free_table`: the PASID tables and the directory (entries must be torn down). */
  freeTable(sid: number): void {
    const t = this.devices.get(sid);
    if (t === undefined) return;
    for (const table of t.tables.values()) freeDriverPages(this.host.memory, table, 1);
    freeDriverPages(this.host.memory, t.dir, t.pages);
    this.devices.delete(sid);
  }

  freeAll(): void {
    for (const sid of [...this.devices.keys()]) this.freeTable(sid);
  }

  setFirstStage(sid: number, pasid: number, c: FirstStageConfig): void {
    const { ecap } = this.host.unit;
    this.require(ecap.flts, 'first-stage translation (ECAP.FLTS)');
    this.program(sid, pasid, c.did, { ...this.firstStageFields(c), pgtt: PGTT.FIRST_STAGE });
  }

  setSecondStage(sid: number, pasid: number, c: SecondStageConfig): void {
    this.require(this.host.unit.ecap.slts, 'second-stage translation (ECAP.SLTS)');
    this.program(sid, pasid, c.did, {
      ...this.secondStageFields(c),
      pgsnp: this.pgsnp(c.pgsnp),
      pgtt: PGTT.SECOND_STAGE,
    });
  }

  /** Linux `intel_pasid_setup_pass_through` (DID FLPT_DEFAULT_DID unless told). */
  setPassThrough(sid: number, pasid: number, did = FLPT_DEFAULT_DID): void {
    this.require(this.host.unit.ecap.pt, 'pass-through (ECAP.PT)');
    this.program(sid, pasid, did, { aw: this.host.unit.agaw, pgtt: PGTT.PASS_THROUGH });
  }

  setNested(sid: number, pasid: number, c: NestedConfig): void {
    this.require(this.host.unit.ecap.nest, 'nested translation (ECAP.NEST)');
    this.program(sid, pasid, c.did, {
      ...this.firstStageFields(c),
      // Linux `intel_pasid_setup_nested` sets WPE from the user's flags, not only with SRE.
      wpe: c.wpe === true,
      ...this.secondStageFields(c),
      pgtt: PGTT.NESTED,
    });
  }

  /** Linux `intel_pasid_tear_down_entry`; nothing to do for a PASID that is not present. */
  clear(sid: number, pasid: number, options: { faultIgnore?: boolean } = {}): void {
    const t = this.device(sid);
    const at = this.entryAddress(t, pasid, false);
    // Stryker disable next-line ConditionalExpression: without a PASID table there is no entry; present() at no address reads no present bit either, so the check only saves a bus read
    if (at === undefined || !this.present(at)) return;
    const { did, pgtt } = decodePasidEntry(this.entry16);
    this.entry16.fill(0);
    this.entry16[0] = options.faultIgnore === true ? 2 : 0;
    writeDriverMemory(this.host, at, this.entry16, QWORD);
    writeDriverMemory(this.host, at + 4 * QWORD, this.entry16.subarray(QWORD), PASID_ENTRY_WORDS - QWORD);
    this.qi.submit([pasidCache(did, pasid)]);
    const firstStageTagged = pgtt === PGTT.PASS_THROUGH || pgtt === PGTT.FIRST_STAGE;
    this.qi.submit([firstStageTagged ? pasidIotlb(did, pasid) : iotlbDomain(did)]);
    if (t.ats) this.qi.flushDeviceTlbAll(t.ats, pasid);
  }

  /** The entry of `pasid` as it is in memory, if its PASID table exists. */
  entry(sid: number, pasid: number): PasidEntry | undefined {
    const t = this.devices.get(sid);
    const at = t && this.entryAddress(t, pasid, false);
    if (at === undefined) return undefined;
    readDriverMemory(this.host, at, this.entry16);
    return decodePasidEntry(this.entry16);
  }

  /** The DID of each present entry of the device (for `intel_context_flush_present`). */
  presentDids(sid: number): number[] {
    const t = this.devices.get(sid);
    const dids: number[] = [];
    if (t === undefined) return dids;
    for (const table of t.tables.values())
      for (let i = 0; i < PASID_TABLE_ENTRIES; i++)
        if (this.present(pasidEntryAddress(table, i))) dids.push(decodePasidEntry(this.entry16).did);
    return dids;
  }

  private device(sid: number): DeviceTable {
    const t = this.devices.get(sid);
    if (t === undefined)
      throw new IommufdError('ENODEV', `${this.host.instance}: device ${sid} has no PASID table`);
    return t;
  }

  private require(supported: boolean, what: string): void {
    if (!supported) throw new IommufdError('EINVAL', `${this.host.instance}: no ${what}`);
  }

  private pgsnp(pgsnp: boolean | undefined): boolean {
    if (pgsnp === true) this.require(this.host.unit.ecap.sc, 'snoop control (ECAP.SC) for PGSNP');
    return pgsnp === true;
  }

  private firstStageFields(c: FirstStageConfig): Partial<PasidEntry> {
    const { cap, ecap } = this.host.unit;
    const flpm = c.flpm ?? FLPM.LEVEL_4;
    this.require(
      flpm === FLPM.LEVEL_4 || (flpm === FLPM.LEVEL_5 && cap.fl5lp),
      `first-stage paging mode ${flpm}`,
    );
    if (c.sre === true) this.require(ecap.srs, 'supervisor requests (ECAP.SRS)');
    if (c.eafe === true) this.require(ecap.eafs, 'extended accessed flags (ECAP.EAFS)');
    return {
      fsptptr: c.fsptptr,
      flpm,
      sre: c.sre === true,
      wpe: c.sre === true && c.wpe === true,
      eafe: c.eafe === true,
      pgsnp: this.pgsnp(c.pgsnp),
      aw: this.host.unit.agaw,
    };
  }

  private secondStageFields(c: Omit<SecondStageConfig, 'did' | 'pgsnp'>): Partial<PasidEntry> {
    const { cap, ecap } = this.host.unit;
    this.require((cap.sagaw & (1 << c.aw)) !== 0, `second-stage AW ${c.aw} (CAP.SAGAW)`);
    if (c.ssade === true) this.require(ecap.slads, 'second-stage dirty tracking (ECAP.SLADS)');
    return { ssptptr: c.ssptptr, aw: c.aw, ssade: c.ssade === true };
  }

  /** A not-present entry programmed (present bit last), then Linux `pasid_flush_caches`. */
  private program(sid: number, pasid: number, did: number, fields: Partial<PasidEntry>): void {
    const at = this.entryAddress(this.device(sid), pasid, true)!;
    if (this.present(at))
      throw new IommufdError(
        'EBUSY',
        `${this.host.instance}: PASID ${pasid} of ${sid} is in use; tear it down first`,
        {
          instance: this.host.instance,
          sid,
          pasid,
        },
      );
    const entry = encodePasidEntry({ ...fields, p: true, did, pwsnp: this.host.unit.ecap.smpwcs });
    writeDriverMemory(this.host, at + 4 * QWORD, entry.subarray(QWORD), PASID_ENTRY_WORDS - QWORD);
    writeDriverMemory(this.host, at, entry, QWORD);
    if (this.host.unit.cap.cm) {
      this.qi.submit([pasidCache(did, pasid)]);
      this.qi.submit([pasidIotlb(did, pasid)]);
    } else {
      this.host.commands.flushWriteBuffer();
    }
  }

  /** Linux `intel_pasid_get_entry`: `ENODEV` beyond the directory; the PASID table made on first use. */
  private entryAddress(t: DeviceTable, pasid: number, alloc: boolean): number | undefined {
    if (!Number.isInteger(pasid) || pasid < 0 || pasid >= t.maxPasid)
      throw new IommufdError('ENODEV', `${this.host.instance}: PASID ${pasid} is beyond the PASID table`);
    const index = pasid >>> 6;
    let table = t.tables.get(index);
    if (table === undefined) {
      if (!alloc) return undefined;
      table = allocDriverPages(this.host.memory, 1);
      t.tables.set(index, table);
      writeDriverMemory(
        this.host,
        pasidDirEntryAddress(t.dir, pasid),
        encodePasidDirEntry({ p: true, pasidTablePtr: table }),
      );
    }
    return pasidEntryAddress(table, pasid);
  }

  /** Reads the entry at `at` into `entry16`; whether it is present. */
  private present(at: number): boolean {
    readDriverMemory(this.host, at, this.entry16);
    return (this.entry16[0]! & 1) === 1;
  }
}
