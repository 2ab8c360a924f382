/**
 * The device table as the unit reads it (AMD IOMMU spec pub. 48882 §2.2.2, §3.4.1 Device Table Base Address
 * Register): the DTE of a DeviceID at DevTblBase + 32 · DeviceID, fetched through the DTE cache and checked
 * before it is cached. A lookup that fails leaves why in {@link DeviceTable.failure}:
 * - OUT_OF_RANGE: the DeviceID lies beyond DevTblBase.Size (VirtualBox iommuAmdDteRead reports it as
 *   IO_PAGE_FAULT with no DomainID and no address, never suppressed);
 * - ABORTED: the bus aborted the read (DEV_TAB_HARDWARE_ERROR at the DTE's address, VirtualBox);
 * - ILLEGAL: the translation half is illegal (`checkDte`; ILLEGAL_DEV_TABLE_ENTRY, RZ = 1 for reserved bits).
 * Only a usable DTE is cached, so a corrected DTE is read again on the next request; a stale usable one is
 * used until INVALIDATE_DEVTAB_ENTRY, as the spec lets the unit.
 */
import type { AccessCounter, MemoryBus, RegisterFile } from '@iommukit/core';
import type { AmdCaches } from './caches.js';
import {
  checkDte,
  type DeviceTableEntry,
  DTE_WORDS,
  type DteCheck,
  type DteFeatures,
  decodeDte,
  deviceTableHolds,
  dteAddress,
} from './dte.js';
import { DEV_TBL_SIZE, fieldMask, REG } from './regs.js';

/** A DTE as the cache holds it. */
export interface CachedDte {
  readonly dte: DeviceTableEntry;
  /** Its words, for the interrupt half's checks. */
  readonly words: Uint32Array;
  /** DTE.SE: an IO_PAGE_FAULT of the device was logged since the DTE was cached; later ones are not. */
  faultLogged: boolean;
}

/** Why a lookup failed. */
export const DTE_FETCH = { OK: 0, OUT_OF_RANGE: 1, ABORTED: 2, ILLEGAL: 3 } as const;

export interface DeviceTableContext {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly features: DteFeatures;
  readonly caches: AmdCaches<CachedDte>;
}

export class DeviceTable {
  /** Why the last lookup failed (`DTE_FETCH`). */
  failure: number = DTE_FETCH.OK;
  /** The address of the DTE the last lookup read or tried to. */
  failureAddress = 0;
  /** ILLEGAL: the check's reason (`DTE_ILLEGAL`). */
  illegal: DteCheck = 0;
  fetches = 0;
  /** The words of the last DTE read from memory (what an ILLEGAL failure rejected). */
  readonly lastWords = new Uint32Array(DTE_WORDS);

  constructor(private readonly ctx: DeviceTableContext) {}

  /** The table's base (DevTblBase bits 51:12). */
  get base(): number {
    const { regs } = this.ctx;
    return (
      (regs.get(REG.DEV_TBL_BASE + 4) & 0x000f_ffff) * 2 ** 32 + ((regs.get(REG.DEV_TBL_BASE) & ~0xfff) >>> 0)
    );
  }

  /** The usable DTE of `deviceId`, from the cache or memory; undefined with {@link failure} set. */
  lookup(deviceId: number): CachedDte | undefined {
    const cached = this.ctx.caches.deviceTable.get(deviceId);
    if (cached !== undefined) return cached;
    return this.fetch(deviceId);
  }

  /** Reads and checks the DTE of `deviceId`, bypassing the cache (what a miss does). */
  fetch(deviceId: number): CachedDte | undefined {
    const { regs, bus, counter, features, caches } = this.ctx;
    const address = dteAddress(this.base, deviceId);
    this.failureAddress = address;
    this.fetches++;
    if (!deviceTableHolds(regs.get(REG.DEV_TBL_BASE) & fieldMask(DEV_TBL_SIZE), deviceId))
      return this.fail(DTE_FETCH.OUT_OF_RANGE);
    const words = this.lastWords;
    if (!bus.readWords(address, words, DTE_WORDS, counter)) return this.fail(DTE_FETCH.ABORTED);
    const dte = decodeDte(words);
    this.illegal = checkDte(dte, words, features);
    if (this.illegal !== 0) return this.fail(DTE_FETCH.ILLEGAL);
    const entry: CachedDte = { dte, words: words.slice(), faultLogged: false };
    caches.deviceTable.set(deviceId, 0, entry);
    this.failure = DTE_FETCH.OK;
    return entry;
  }

  private fail(kind: number): undefined {
    this.failure = kind;
    return undefined;
  }
}
