/**
 * The mock's interrupt remapping unit (packages/testing/README.md, "Interrupt remapping"). With CTRL.IR_EN
 * set, an interrupt request is looked up in the table at IRT_BASE (2^IRT_LOG2 entries): a remappable
 * request names its entry; a compatibility-format one passes only with CTRL.IR_COMPAT. Entries are cached
 * in a small direct-mapped interrupt entry cache that software invalidates (INV_CMD IEC / IEC_ALL), as VT-d's
 * IEC and AMD's interrupt table cache must be; only present, well-formed entries are cached. A blocked
 * request is a fault record with the entry index, like any translation fault.
 */
import {
  type AccessCounter,
  type InterruptRemappingHardware,
  type InterruptRequestOutcome,
  type ITracer,
  type MemoryBus,
  NO_PASID,
  PERM_WRITE,
  type RegisterFile,
  toHex,
  type X86Interrupt,
} from '@iommukit/core';
import { FAULT_CODES, type FaultCode } from './formats.js';
import { decodeIrte, IRTE_BYTES, IRTE_WORDS, MSI_REMAPPABLE, remappableIndex } from './irte.js';
import { CTRL_IR_COMPAT, CTRL_IR_EN, R } from './regs.js';

/** Entries the interrupt entry cache holds, direct-mapped by index. */
export const IEC_ENTRIES = 64;

/** Records a fault in the fault log; returns whether it was recorded. */
export type InterruptFaultRecorder = (
  code: FaultCode,
  streamId: number,
  address: bigint,
  index: number,
) => boolean;

interface CachedEntry {
  index: number;
  interrupt: X86Interrupt;
  sourceId: number;
  validateSource: boolean;
}

export class MockInterruptRemapping implements InterruptRemappingHardware {
  /** Slot `index % IEC_ENTRIES` holds that entry, or nothing. */
  private readonly cache: (CachedEntry | undefined)[] = new Array(IEC_ENTRIES).fill(undefined);
  private readonly words = new Uint32Array(IRTE_WORDS);
  hits = 0;
  misses = 0;

  constructor(
    private readonly instance: string,
    private readonly regs: RegisterFile,
    private readonly bus: MemoryBus,
    private readonly reads: AccessCounter,
    private readonly tracer: ITracer,
    private readonly recordFault: InterruptFaultRecorder,
  ) {}

  request(streamId: number, address: bigint, data: number): InterruptRequestOutcome {
    const ctrl = this.regs.get(R.CTRL);
    if ((ctrl & CTRL_IR_EN) === 0) return PASSTHROUGH;
    if ((Number(address & 0xffn) & MSI_REMAPPABLE) === 0)
      return ctrl & CTRL_IR_COMPAT ? PASSTHROUGH : this.block(13, streamId, address, 0);
    const index = remappableIndex(address);
    if (index >= 2 ** this.regs.get(R.IRT_LOG2)) return this.block(10, streamId, address, index);
    const entry = this.entry(index);
    if (typeof entry === 'number') return this.block(entry, streamId, address, index);
    if (entry.validateSource && entry.sourceId !== streamId) return this.block(12, streamId, address, index);
    if (this.tracer.enabled) {
      const i = entry.interrupt;
      this.tracer.trace(
        'hw',
        this.instance,
        'ir.remap',
        `interrupt from ${toHex(streamId)} data ${toHex(data)} via IRTE ${index} → vector ${toHex(i.vector)} APIC ${toHex(i.destination)}`,
        { streamId, index, vector: i.vector, destination: i.destination },
      );
    }
    return { kind: 'remapped', index, interrupt: entry.interrupt };
  }

  /** INV_CMD IEC: drops the cached copies of `count` entries from `first`. Returns how many were dropped. */
  invalidate(first: number, count: number): number {
    let dropped = 0;
    for (let slot = 0; slot < IEC_ENTRIES; slot++) {
      const e = this.cache[slot];
      if (e !== undefined && e.index >= first && e.index < first + count) {
        this.cache[slot] = undefined;
        dropped++;
      }
    }
    return dropped;
  }

  /** INV_CMD IEC_ALL (and INV ALL). */
  invalidateAll(): number {
    return this.invalidate(0, 2 ** 15);
  }

  /** The entry through the cache, or the fault code that refuses it. */
  private entry(index: number): CachedEntry | FaultCode {
    const slot = index % IEC_ENTRIES;
    const cached = this.cache[slot];
    if (cached?.index === index) {
      this.hits++;
      return cached;
    }
    this.misses++;
    const addr = Number(this.regs.get64(R.IRT_BASE)) + index * IRTE_BYTES;
    if (!this.bus.readWords(addr, this.words, IRTE_WORDS, this.reads)) return 15;
    const decoded = decodeIrte(this.words);
    if (!decoded.ok) return decoded.reason === 'not-present' ? 11 : 14;
    const entry = { index, ...decoded };
    this.cache[slot] = entry;
    return entry;
  }

  private block(code: FaultCode, streamId: number, address: bigint, index: number): InterruptRequestOutcome {
    const recorded = this.recordFault(code, streamId, address, index);
    const info = FAULT_CODES[code];
    return {
      kind: 'blocked',
      fault: {
        kind: info.kind,
        vendorCode: info.code,
        streamId,
        pasid: NO_PASID,
        iova: address,
        access: PERM_WRITE,
        recorded,
      },
    };
  }
}

const PASSTHROUGH: InterruptRequestOutcome = Object.freeze({ kind: 'passthrough' });
