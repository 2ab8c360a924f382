/**
 * The Stream table the driver owns (SMMUv3 §3.3, §5.1, §6.3.24–6.3.25; Linux `arm_smmu_strtab_cfg`): one
 * STE per StreamID, found by the SMMU from STRTAB_BASE/STRTAB_BASE_CFG.
 *
 * - Linear (FMT = 0) when the SMMU has no 2-level table (IDR0.ST_LEVEL = 0) or the StreamID space fits
 *   one level-2 array (SIDSIZE ≤ SPLIT, Linux's rule): 2^SIDSIZE STEs allocated at probe, all abort.
 * - 2-level (FMT = 1, SPLIT = 8 as Linux's STRTAB_SPLIT): the L1 table of Level 1 Stream Table
 *   Descriptors is allocated at probe, all invalid (Span = 0: the SMMU reports C_BAD_STREAMID for their
 *   streams), and covers at most 2^17 descriptors (Linux caps the L1 table at 1 MiB), so LOG2SIZE =
 *   min(SIDSIZE, 25). A level-2 array of 256 STEs (16 KiB, aligned to its size) is allocated when the
 *   first device of its StreamID block is probed, filled with abort STEs, and then published with one
 *   64-bit write of its L1STD (Span = SPLIT + 1) followed by a CMD_SYNC. No CFGI is needed for it: the
 *   SMMU does not cache an invalid L1STD as a configuration (Linux issues none either).
 *
 * STE updates go through the hitless writer (`writeEntry` with `steUsed`): each of its syncs is
 * CMD_CFGI_STE(StreamID, Leaf = 1) + CMD_SYNC (Linux `arm_smmu_sync_ste_for_sid`).
 */
import { IommufdError, toHex } from '@iommukit/core';
import { encodeCfgiSte } from '../hw/commands.js';
import { STRTAB_BASE_HI_RA, STRTAB_FMT_2LEVEL, STRTAB_FMT_LINEAR } from '../hw/regs.js';
import { encodeL1Std, L1STD_BYTES, L1STD_WORDS, STE_BYTES, STE_WORDS } from '../hw/ste.js';
import { steUpdateSafe, steUsed } from './entry-used.js';
import { type WriteOutcome, writeEntry } from './entry-writer.js';
import { abortSte } from './ste-builders.js';
import { allocSizeAligned, freeBlock, type TableBlock, type TableHost } from './table-memory.js';

/** StreamID bits indexing a level-2 array (Linux STRTAB_SPLIT). */
export const STRTAB_SPLIT = 8;
/** At most 2^17 L1 descriptors (a 1 MiB L1 table, Linux STRTAB_L1_SZ_SHIFT). */
export const STRTAB_L1_MAX_LOG2 = 17;

export class StreamTable {
  readonly format: 'linear' | 'two-level';
  /** STRTAB_BASE_CFG.LOG2SIZE: StreamIDs the table covers. */
  readonly log2Size: number;
  readonly split: number;
  /** Address of the linear table or of the L1 table. */
  readonly base: number;
  private readonly host: TableHost;
  private readonly table: TableBlock;
  /** Level-2 arrays by L1 index. */
  private readonly l2 = new Map<number, TableBlock>();
  private readonly abort = abortSte();

  constructor(host: TableHost, sidBits: number, twoLevel: boolean) {
    this.host = host;
    if (!twoLevel || sidBits <= STRTAB_SPLIT) {
      this.format = 'linear';
      this.log2Size = sidBits;
      this.split = 0;
      this.table = allocSizeAligned(host.memory, 2 ** sidBits * STE_BYTES);
      this.fillAbort(this.table.base, 2 ** sidBits);
    } else {
      this.format = 'two-level';
      const l1Log2 = Math.min(STRTAB_L1_MAX_LOG2, sidBits - STRTAB_SPLIT);
      this.log2Size = l1Log2 + STRTAB_SPLIT;
      this.split = STRTAB_SPLIT;
      // Zeroed frames: every L1STD is invalid (Span = 0) until its array exists.
      this.table = allocSizeAligned(host.memory, 2 ** l1Log2 * L1STD_BYTES);
    }
    this.base = this.table.base;
  }

  /** The STRTAB_BASE value: address and RA (Linux STRTAB_BASE_RA). */
  get baseRegister(): bigint {
    return (BigInt(STRTAB_BASE_HI_RA) << 32n) | BigInt(this.base);
  }

  /** The STRTAB_BASE_CFG value: FMT, SPLIT, LOG2SIZE. */
  get baseCfg(): number {
    const fmt = this.format === 'linear' ? STRTAB_FMT_LINEAR : STRTAB_FMT_2LEVEL;
    return ((fmt << 16) | (this.split << 6) | this.log2Size) >>> 0;
  }

  /** Level-2 arrays allocated so far. */
  get l2Count(): number {
    return this.l2.size;
  }

  /** Whether the table can hold this StreamID at all. */
  covers(streamId: number): boolean {
    return Number.isInteger(streamId) && streamId >= 0 && streamId < 2 ** this.log2Size;
  }

  /**
   * Makes sure the STE of `streamId` exists: allocates and publishes its level-2 array if needed.
   * Returns whether an array was allocated. `EINVAL` for a StreamID beyond the table.
   */
  ensure(streamId: number): boolean {
    this.check(streamId);
    if (this.format === 'linear') return false;
    const index = Math.floor(streamId / 2 ** this.split);
    if (this.l2.has(index)) return false;
    const entries = 2 ** this.split;
    const block = allocSizeAligned(this.host.memory, entries * STE_BYTES);
    this.fillAbort(block.base, entries);
    this.l2.set(index, block);
    const desc = encodeL1Std({ span: this.split + 1, l2Ptr: block.base });
    const at = this.base + index * L1STD_BYTES;
    // One 64-bit store: the SMMU sees the old (invalid) or the new descriptor.
    this.host.bus.writeWords(at, desc, L1STD_WORDS, this.host.counter);
    this.host.cmdq.submit([], true);
    if (this.host.tracer?.enabled)
      this.trace(
        'strtab.l2',
        `L1STD[${index}] at ${toHex(at)} → level-2 array ${toHex(block.base)} (StreamIDs ${toHex(index * entries)}–${toHex((index + 1) * entries - 1)})`,
      );
    return true;
  }

  /** Address of the STE of `streamId`, or undefined when its level-2 array does not exist. */
  steAddress(streamId: number): number | undefined {
    if (!this.covers(streamId)) return undefined;
    if (this.format === 'linear') return this.base + streamId * STE_BYTES;
    const entries = 2 ** this.split;
    const block = this.l2.get(Math.floor(streamId / entries));
    return block === undefined ? undefined : block.base + (streamId % entries) * STE_BYTES;
  }

  /** The STE of `streamId` as it is in memory. */
  readSte(streamId: number): Uint32Array {
    const words = new Uint32Array(STE_WORDS);
    this.host.bus.readWords(this.require(streamId), words, STE_WORDS, this.host.counter);
    return words;
  }

  /** Moves the STE of `streamId` to `target` without a torn configuration (`writeEntry`). */
  writeSte(streamId: number, target: Uint32Array): WriteOutcome {
    const address = this.require(streamId);
    const cur = this.readSte(streamId);
    const { bus, counter, cmdq } = this.host;
    const qword = new Uint32Array(2);
    const outcome = writeEntry(cur, target, {
      used: steUsed,
      updateSafe: steUpdateSafe,
      writeQword: (index, lo, hi) => {
        qword[0] = lo;
        qword[1] = hi;
        bus.writeWords(address + 8 * index, qword, 2, counter);
      },
      sync: () => cmdq.issue(encodeCfgiSte({ streamId, leaf: true })),
    });
    if (this.host.tracer?.enabled)
      this.trace(
        'ste.write',
        `STE[${toHex(streamId)}] at ${toHex(address)}: ${outcome.hitless ? 'hitless' : 'breaking (V = 0 first)'}, ${outcome.syncs} syncs`,
      );
    return outcome;
  }

  /** Releases the table and every level-2 array (the SMMU must no longer use them). */
  free(): void {
    for (const block of this.l2.values()) freeBlock(this.host.memory, block);
    this.l2.clear();
    freeBlock(this.host.memory, this.table);
  }

  private require(streamId: number): number {
    const address = this.steAddress(streamId);
    if (address === undefined) {
      throw new IommufdError('EINVAL', `${this.host.instance}: no STE for StreamID ${toHex(streamId)}`, {
        instance: this.host.instance,
        streamId,
      });
    }
    return address;
  }

  private check(streamId: number): void {
    if (!this.covers(streamId)) {
      throw new IommufdError(
        'EINVAL',
        `${this.host.instance}: StreamID ${toHex(streamId)} is beyond the ${this.log2Size}-bit stream table`,
        { instance: this.host.instance, streamId },
      );
    }
  }

  /** Writes abort STEs (Linux `arm_smmu_init_initial_stes` with disable_bypass). */
  private fillAbort(base: number, count: number): void {
    for (let i = 0; i < count; i++)
      this.host.bus.writeWords(base + i * STE_BYTES, this.abort, STE_WORDS, this.host.counter);
  }

  private trace(name: string, message: string): void {
    if (this.host.tracer?.enabled) this.host.tracer.trace('driver', this.host.instance, name, message);
  }
}
