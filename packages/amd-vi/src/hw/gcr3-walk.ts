/**
 * The GCR3 table walk of a guest translation (AMD IOMMU spec pub. 48882 §2.2.6; gcr3.ts has the entries):
 * from the DTE's GCR3 table root, GLX + 1 levels indexed 9 PASID bits each, to the guest CR3 of one PASID,
 * through the GCR3 cache. With Control.GCR3TRPMode on a DTE that also translates on the host, the root and
 * every level are guest physical addresses the host tables translate (how mainline Linux nests: the guest
 * owns its GCR3 table); otherwise they are system physical addresses.
 *
 * A walk that fails leaves the failure in the stage walker, as a page walk would: a PASID beyond the table
 * or a GCR3 entry not valid is NOT_PRESENT (IO_PAGE_FAULT, PR = 0), reserved bits RESERVED (PR = 1, RZ = 1),
 * a read the bus aborted TABLE_ABORT. No stored source names the events of a GCR3 walk; these follow the
 * page-walk ones and are the model's choice.
 */
import { type AccessCounter, type MemoryBus, PERM_READ } from '@iommukit/core';
import type { AmdV1Format, TableWalkCache } from '@iommukit/pagetables';
import type { AmdCaches } from './caches.js';
import type { DeviceTableEntry } from './dte.js';
import {
  checkGcr3Entry,
  decodeGcr3Entry,
  GCR3_ENTRY_WORDS,
  GCR3_FAULT,
  gcr3EntryAddress,
  gcr3Levels,
  gcr3PasidLimit,
} from './gcr3.js';
import { type AmdStageWalker, WALK_FAILURE } from './stage-walks.js';

export interface Gcr3WalkContext {
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly caches: AmdCaches<unknown>;
}

/** The host tables a GCR3 table in guest physical memory is read through. */
export interface HostTables {
  readonly format: AmdV1Format;
  readonly root: number;
  readonly cache: TableWalkCache | undefined;
}

export class Gcr3Walk {
  walks = 0;
  private readonly words = new Uint32Array(GCR3_ENTRY_WORDS);

  constructor(
    private readonly ctx: Gcr3WalkContext,
    private readonly walker: AmdStageWalker,
  ) {}

  /** The guest CR3 of (`deviceId`, `pasid`) under `dte`, or −1 with the walker's failure set. */
  lookup(dte: DeviceTableEntry, deviceId: number, pasid: number, host: HostTables | undefined): number {
    const { caches, bus, counter } = this.ctx;
    const cached = caches.gcr3.get(deviceId, pasid);
    if (cached !== undefined && cached.domainId === dte.domainId) return cached.guestCr3;
    if (pasid >= gcr3PasidLimit(dte.glx)) return this.fail(WALK_FAILURE.NOT_PRESENT);
    this.walks++;
    let table = dte.gcr3TableRootPtr;
    for (let level = gcr3Levels(dte.glx) - 1; level >= 0; level--) {
      let address = gcr3EntryAddress(table, pasid, level);
      if (host !== undefined) {
        if (!this.walker.hostWalk(host.format, host.root, address, PERM_READ, host.cache)) {
          this.walker.failureInHost = true;
          return -1;
        }
        address = this.walker.host.pa;
      }
      const words = this.words;
      if (!bus.readWords(address, words, GCR3_ENTRY_WORDS, counter)) {
        this.walker.failureAddress = address;
        return this.fail(WALK_FAILURE.TABLE_ABORT);
      }
      const check = checkGcr3Entry(words);
      if (check === GCR3_FAULT.NOT_VALID) return this.fail(WALK_FAILURE.NOT_PRESENT);
      if (check === GCR3_FAULT.RESERVED_BITS) return this.fail(WALK_FAILURE.RESERVED);
      table = decodeGcr3Entry(words).pointer;
    }
    caches.gcr3.set(deviceId, pasid, { domainId: dte.domainId, guestCr3: table });
    return table;
  }

  private fail(kind: number): -1 {
    this.walker.failure = kind;
    this.walker.failureInHost = false;
    return -1;
  }
}
