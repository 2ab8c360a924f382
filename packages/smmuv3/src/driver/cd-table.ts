/**
 * A master's Context Descriptor table (SMMUv3 §5.2 S1Fmt/S1CDMax, §5.3, §5.4; Linux
 * `arm_smmu_ctx_desc_cfg`): the CDs its stage-1 STE points at, one per SubstreamID (PASID), CD 0 for
 * traffic without a PASID (STE.S1DSS = SSID0) or at the RID.
 *
 * - S1CDMax = the master's SubstreamID bits: min(IDR1.SSIDSIZE, the endpoint's PASID width); 0 gives a
 *   single CD.
 * - Linear (S1Fmt = 0) when the SMMU has no 2-level CD tables (IDR0.CD2L = 0) or the table has at most
 *   1024 CDs (Linux CTXDESC_L2_ENTRIES): allocated whole, aligned to its size.
 * - 2-level with 64 KiB leaves (S1Fmt = 0b10, 1024 CDs per leaf, Linux's choice): the L1 table of L1CD
 *   descriptors is allocated with the table, all invalid; a leaf is allocated when a CD in it is first
 *   written, aligned to 64 KiB, and published with one 64-bit write of its L1CD (V = 1) followed by
 *   CMD_CFGI_CD(Leaf = 0) + CMD_SYNC — an SMMU may cache an invalid L1CD (Linux `arm_smmu_sync_cd`).
 *
 * CD updates go through the hitless writer (`writeEntry` with `cdUsed`); each of its syncs is
 * CMD_CFGI_CD(StreamID, SubstreamID, Leaf = 1) + CMD_SYNC.
 */
import { IommufdError, toHex } from '@iommukit/core';
import { CD_BYTES, CD_WORDS, encodeL1Cd, L1CD_BYTES, L1CD_WORDS } from '../hw/cd.js';
import { encodeCfgiCd } from '../hw/commands.js';
import { STE_S1FMT } from '../hw/ste.js';
import { cdUsed } from './entry-used.js';
import { type WriteOutcome, writeEntry } from './entry-writer.js';
import { allocSizeAligned, freeBlock, type TableBlock, type TableHost } from './table-memory.js';

/** SubstreamID bits indexing a leaf: 10, 64 KiB leaves of 1024 CDs (Linux CTXDESC_SPLIT). */
export const CD_L2_BITS = 10;
export const CD_L2_ENTRIES = 2 ** CD_L2_BITS;

export class CdTable {
  readonly streamId: number;
  /** STE.S1Fmt. */
  readonly s1Fmt: number;
  /** STE.S1CDMax: log2 of the CDs. */
  readonly s1CdMax: number;
  /** Address of the linear table or the L1 table (STE.S1ContextPtr). */
  readonly base: number;
  private readonly host: TableHost;
  private readonly table: TableBlock;
  /** Leaves by L1 index (2-level only). */
  private readonly leaves = new Map<number, TableBlock>();

  constructor(host: TableHost, streamId: number, ssidBits: number, twoLevelAllowed: boolean) {
    this.host = host;
    this.streamId = streamId;
    this.s1CdMax = ssidBits;
    const entries = 2 ** ssidBits;
    if (!twoLevelAllowed || entries <= CD_L2_ENTRIES) {
      this.s1Fmt = STE_S1FMT.LINEAR;
      this.table = allocSizeAligned(host.memory, entries * CD_BYTES);
    } else {
      this.s1Fmt = STE_S1FMT.TWO_LEVEL_64K;
      this.table = allocSizeAligned(host.memory, (entries / CD_L2_ENTRIES) * L1CD_BYTES);
    }
    this.base = this.table.base;
  }

  get twoLevel(): boolean {
    return this.s1Fmt !== STE_S1FMT.LINEAR;
  }

  /** Leaves allocated so far (0 for a linear table). */
  get leafCount(): number {
    return this.leaves.size;
  }

  /** SubstreamIDs the table holds. */
  get entries(): number {
    return 2 ** this.s1CdMax;
  }

  /** Address of the CD for `ssid`, or undefined when its leaf does not exist yet. */
  cdAddress(ssid: number): number | undefined {
    this.check(ssid);
    if (!this.twoLevel) return this.base + ssid * CD_BYTES;
    const leaf = this.leaves.get(Math.floor(ssid / CD_L2_ENTRIES));
    return leaf === undefined ? undefined : leaf.base + (ssid % CD_L2_ENTRIES) * CD_BYTES;
  }

  /** The CD for `ssid`, allocating and publishing its leaf if needed (Linux `arm_smmu_alloc_cd_ptr`). */
  ensure(ssid: number): number {
    const existing = this.cdAddress(ssid);
    if (existing !== undefined) return existing;
    const index = Math.floor(ssid / CD_L2_ENTRIES);
    const leaf = allocSizeAligned(this.host.memory, CD_L2_ENTRIES * CD_BYTES);
    this.leaves.set(index, leaf);
    const at = this.base + index * L1CD_BYTES;
    this.host.bus.writeWords(at, encodeL1Cd({ v: true, l2Ptr: leaf.base }), L1CD_WORDS, this.host.counter);
    this.host.cmdq.issue(encodeCfgiCd({ streamId: this.streamId, substreamId: ssid, leaf: false }));
    if (this.host.tracer?.enabled)
      this.trace(
        'cd.l2',
        `L1CD[${index}] of StreamID ${toHex(this.streamId)} at ${toHex(at)} → leaf ${toHex(leaf.base)} (SSIDs ${toHex(index * CD_L2_ENTRIES)}–${toHex((index + 1) * CD_L2_ENTRIES - 1)})`,
      );
    return leaf.base + (ssid % CD_L2_ENTRIES) * CD_BYTES;
  }

  /** The CD for `ssid` as it is in memory (all zero when its leaf does not exist). */
  readCd(ssid: number): Uint32Array {
    const words = new Uint32Array(CD_WORDS);
    const address = this.cdAddress(ssid);
    if (address !== undefined) this.host.bus.readWords(address, words, CD_WORDS, this.host.counter);
    return words;
  }

  /** Moves the CD for `ssid` to `target` without a torn configuration (`writeEntry`). */
  writeCd(ssid: number, target: Uint32Array): WriteOutcome {
    const address = this.ensure(ssid);
    const cur = this.readCd(ssid);
    const { bus, counter, cmdq } = this.host;
    const qword = new Uint32Array(2);
    const outcome = writeEntry(cur, target, {
      used: cdUsed,
      writeQword: (index, lo, hi) => {
        qword[0] = lo;
        qword[1] = hi;
        bus.writeWords(address + 8 * index, qword, 2, counter);
      },
      sync: () => cmdq.issue(encodeCfgiCd({ streamId: this.streamId, substreamId: ssid, leaf: true })),
    });
    if (this.host.tracer?.enabled)
      this.trace(
        'cd.write',
        `CD[${toHex(this.streamId)}:${ssid}] at ${toHex(address)}: ${outcome.hitless ? 'hitless' : 'breaking (V = 0 first)'}, ${outcome.syncs} syncs`,
      );
    return outcome;
  }

  /** Makes the CD for `ssid` invalid (V = 0), if it exists. */
  clearCd(ssid: number): WriteOutcome {
    if (this.cdAddress(ssid) === undefined) return { hitless: true, syncs: 0 };
    return this.writeCd(ssid, new Uint32Array(CD_WORDS));
  }

  /** Releases the table and its leaves (no STE may point at it any more). */
  free(): void {
    for (const leaf of this.leaves.values()) freeBlock(this.host.memory, leaf);
    this.leaves.clear();
    freeBlock(this.host.memory, this.table);
  }

  private check(ssid: number): void {
    if (!Number.isInteger(ssid) || ssid < 0 || ssid >= this.entries) {
      throw new IommufdError(
        'EINVAL',
        `${this.host.instance}: SubstreamID ${ssid} is outside the ${this.entries}-entry CD table of StreamID ${toHex(this.streamId)}`,
        { instance: this.host.instance, streamId: this.streamId, ssid },
      );
    }
  }

  private trace(name: string, message: string): void {
    if (this.host.tracer?.enabled) this.host.tracer.trace('driver', this.host.instance, name, message);
  }
}
