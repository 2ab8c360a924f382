/**
 * The VT-d host driver's interrupt remapping (Linux intel/irq_remapping.c, the IR domain): it owns the
 * interrupt remapping table, hands out entries per device, writes them and invalidates the interrupt entry
 * cache (IEC) after each change, and composes the remappable messages devices send.
 *
 * - `setup` (Linux `intel_setup_irq_remapping`, `iommu_set_irq_remapping`, `iommu_enable_irq_remapping`):
 *   a table of 2^(S+1) entries (Linux INTR_REMAP_TABLE_ENTRIES, 64K: S = 15) in host memory, IRTA = its
 *   address | EIME (with ECAP.EIM: x2APIC destinations) | S, SIRTP until GSTS.IRTPS, a global IEC
 *   invalidation unless CAP.ESIRTPS made SIRTP do it, then IRE until GSTS.IRES. Compatibility-format
 *   interrupts stay blocked (CFI = 0; a CFIS found set is cleared, as Linux does).
 * - `allocate` (Linux `alloc_irte`): a count rounds up to a power of two, 2^mask entries aligned to their
 *   size, so one IEC invalidation with that mask covers them; the mask must not exceed ECAP.MHMV.
 * - `program` (Linux `modify_irte` with `prepare_irte` / `set_msi_sid`): the remapped format (or the posted
 *   one, with CAP.PI), P = 1, source validation SVT = 01, SQ = 0, SID = the device's source-id; then an
 *   index-selective IEC invalidation (Linux `qi_flush_iec(iommu, index, 0)`).
 * - `compose` (Linux `fill_msi_msg`): the remappable format, handle = the allocation's first entry,
 *   SHV = 1, data = the subhandle (the entry's offset in its allocation).
 * - `free` (Linux `clear_entries`): zeroes the entries, then invalidates them.
 *
 * Commands are written as the spec's GCMD_REG text asks: GSTS's value with the one-shot bits cleared
 * (AND 0x96FF_FFFF), plus or minus the one bit, then a bounded poll of the status bit.
 */
import {
  type AccessCounter,
  encodeDeliveryMode,
  type Hpa,
  type IFrameAllocator,
  type InterruptRemappingCapabilities,
  type InterruptRemappingDriver,
  type InterruptTarget,
  type IommuDeviceRef,
  IommufdError,
  type MemoryBus,
  type MsiMessage,
  POLL_LIMIT,
  pollTimeout,
  type X86Interrupt,
} from '@iommukit/core';
import { decodeEcap } from '../hw/capabilities.js';
import type { VtdFeatures } from '../hw/features.js';
import {
  encodeIrte,
  IRTE_BYTES,
  IRTE_SVT,
  IRTE_WORDS,
  irteDestination,
  remappableMsiAddress,
} from '../hw/irte.js';
import {
  GCMD_CFI,
  GCMD_IRE,
  GCMD_SIRTP,
  GSTS_CFIS,
  GSTS_IRES,
  GSTS_IRTPS,
  IRTA_EIME,
  REG,
} from '../hw/regs.js';

/** Linux INTR_REMAP_TABLE_ENTRIES: the table size Linux always programs (IRTA.S = 15). */
export const INTR_REMAP_TABLE_ENTRIES = 65536;

/** GCMD_REG text: GSTS with the one-shot command bits (SRTP, SFL, WBF, SIRTP) cleared. */
const GSTS_PERSISTENT = 0x96ff_ffff;
const FRAME = 4096;

/** What the IR domain needs from its driver. */
export interface VtdIrDomainHost {
  readonly instance: string;
  /** A 32-bit register read at `offset` in the unit's register window. */
  readReg(offset: number): number;
  /** A 32-bit register write. */
  writeReg(offset: number, value: number): void;
  readonly memory: IFrameAllocator;
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  readonly features: Pick<VtdFeatures, 'extendedInterruptMode' | 'postedInterrupts' | 'sirtpInvalidates'>;
  /**
   * An IEC invalidation through the invalidation queue, complete when it returns: index-selective for the
   * 2^`mask` entries at `index` (aligned), global when `index` is undefined.
   */
  iecFlush(index: number | undefined, mask: number): void;
  /** Table entries, a power of two from 2 to 65536; default {@link INTR_REMAP_TABLE_ENTRIES}. */
  readonly entries?: number;
}

const FREE = -1;

export class VtdIrDomain implements InterruptRemappingDriver {
  readonly capabilities: InterruptRemappingCapabilities;
  readonly entries: number;
  /** ECAP.MHMV: the largest index mask an IEC invalidation takes, so the largest allocation is 2^MHMV. */
  readonly maxHandleMask: number;
  private tableBase: Hpa | undefined;
  /** Per entry: the source-id of the device that owns it, or FREE. */
  private readonly owner: Int32Array;
  /** Per entry: the first entry of its allocation (the handle its messages carry). */
  private readonly first: Int32Array;

  constructor(private readonly host: VtdIrDomainHost) {
    const entries = host.entries ?? INTR_REMAP_TABLE_ENTRIES;
    if (!Number.isInteger(Math.log2(entries)) || entries < 2 || entries > INTR_REMAP_TABLE_ENTRIES)
      throw new IommufdError('EINVAL', `${host.instance}: ${entries} IRTEs is not 2^(S + 1), S = 0..15`);
    this.entries = entries;
    this.capabilities = {
      x2apic: host.features.extendedInterruptMode,
      posting: host.features.postedInterrupts,
    };
    this.maxHandleMask = decodeEcap(host.readReg(REG.ECAP), host.readReg(REG.ECAP + 4)).mhmv;
    this.owner = new Int32Array(entries).fill(FREE);
    this.first = new Int32Array(entries).fill(FREE);
  }

  /** The table's host-physical address, once set up. */
  get table(): Hpa | undefined {
    return this.tableBase;
  }

  /** Allocates the table and enables remapping (see the module comment); `EBUSY` if already set up. */
  setup(): void {
    if (this.tableBase !== undefined)
      throw new IommufdError('EBUSY', `${this.host.instance}: interrupt remapping is already set up`);
    const frames = Math.max(1, (this.entries * IRTE_BYTES) / FRAME);
    const table = this.host.memory.allocFrames(frames);
    this.tableBase = table;
    const base = Number(table);
    const eime = this.capabilities.x2apic ? IRTA_EIME : 0;
    this.host.writeReg(REG.IRTA, ((base % 2 ** 32) | eime | (Math.log2(this.entries) - 1)) >>> 0);
    this.host.writeReg(REG.IRTA + 4, Math.floor(base / 2 ** 32));
    this.command(GCMD_SIRTP, true);
    this.poll('SIRTP: GSTS.IRTPS', (sts) => (sts & GSTS_IRTPS) !== 0);
    // Without CAP.ESIRTPS the IEC may still hold entries of an earlier table (GCMD_REG.SIRTP text).
    if (!this.host.features.sirtpInvalidates) this.host.iecFlush(undefined, 0);
    this.command(GCMD_IRE, true);
    this.poll('IRE: GSTS.IRES', (sts) => (sts & GSTS_IRES) !== 0);
    if ((this.host.readReg(REG.GSTS) & GSTS_CFIS) !== 0) {
      this.command(GCMD_CFI, false);
      this.poll('CFI clear: GSTS.CFIS', (sts) => (sts & GSTS_CFIS) === 0);
    }
  }

  /**
   * Disables remapping and releases the table (Linux `iommu_disable_irq_remapping`): a global IEC
   * invalidation unless CAP.ESIRTPS, IRE cleared until GSTS.IRES reads 0. Every entry is forgotten.
   */
  teardown(): void {
    const table = this.tableBase;
    if (table === undefined) return;
    if (!this.host.features.sirtpInvalidates) this.host.iecFlush(undefined, 0);
    this.command(GCMD_IRE, false);
    this.poll('IRE clear: GSTS.IRES', (sts) => (sts & GSTS_IRES) === 0);
    this.host.memory.freeFrames(table, Math.max(1, (this.entries * IRTE_BYTES) / FRAME));
    this.tableBase = undefined;
    this.owner.fill(FREE);
    this.first.fill(FREE);
  }

  allocate(device: IommuDeviceRef, count: number): number {
    this.checkSetUp();
    if (!Number.isInteger(count) || count < 1)
      throw new IommufdError('EINVAL', `cannot allocate ${count} interrupt remapping entries`, {
        device: device.name,
      });
    const mask = Math.ceil(Math.log2(count));
    if (mask > this.maxHandleMask)
      throw new IommufdError(
        'EINVAL',
        `${count} entries need index mask ${mask}, beyond ECAP.MHMV ${this.maxHandleMask}`,
        { device: device.name },
      );
    const size = 2 ** mask;
    for (let at = 0; at + size <= this.entries; at += size) {
      if (!this.owner.subarray(at, at + size).every((o) => o === FREE)) continue;
      this.owner.fill(device.streamId, at, at + size);
      this.first.fill(at, at, at + size);
      return at;
    }
    throw new IommufdError('ENOSPC', `${this.host.instance}: no ${size} free aligned IRTEs`, {
      device: device.name,
    });
  }

  program(
    device: IommuDeviceRef,
    index: number,
    target: InterruptTarget,
    options: { readonly invalidate?: boolean } = {},
  ): void {
    this.checkOwned(device, index, 1);
    const source = { present: true, sid: device.streamId, sq: 0, svt: IRTE_SVT.MASK } as const;
    let words: Uint32Array;
    if (target.kind === 'post') {
      if (!this.capabilities.posting)
        throw new IommufdError('EOPNOTSUPP', `${this.host.instance} cannot post interrupts (no CAP.PI)`, {
          device: device.name,
        });
      const pda = target.descriptor;
      checkVector(target.vector, device);
      if (pda < 0n || pda >= 2n ** 64n || pda % 64n !== 0n)
        throw new IommufdError('EINVAL', `posted-interrupt descriptor ${pda} is not 64-byte aligned`, {
          device: device.name,
        });
      words = encodeIrte({
        mode: 'posted',
        ...source,
        vector: target.vector,
        pdaLow: Number((pda >> 6n) & 0x3ff_ffffn),
        pdaHigh: Number(pda >> 32n),
      });
    } else {
      words = encodeIrte({ mode: 'remapped', ...source, ...this.remapFields(target.interrupt, device) });
    }
    this.write(index, words);
    if (options.invalidate !== false) this.host.iecFlush(index, 0);
  }

  compose(device: IommuDeviceRef, index: number): MsiMessage {
    this.checkOwned(device, index, 1);
    const handle = this.first[index]!;
    return { address: remappableMsiAddress(handle, true), data: index - handle };
  }

  invalidate(device: IommuDeviceRef, index: number, count: number): void {
    this.checkOwned(device, index, count);
    this.flushRange(index, count);
  }

  free(device: IommuDeviceRef, index: number, count: number): void {
    this.checkOwned(device, index, count);
    const empty = new Uint32Array(IRTE_WORDS);
    for (let i = index; i < index + count; i++) this.write(i, empty);
    this.owner.fill(FREE, index, index + count);
    this.first.fill(FREE, index, index + count);
    this.flushRange(index, count);
  }

  /** The remapped-format fields of `interrupt` (Linux `prepare_irte`); `EINVAL` for what they cannot hold. */
  private remapFields(interrupt: X86Interrupt, device: IommuDeviceRef) {
    checkVector(interrupt.vector, device);
    const eim = this.capabilities.x2apic;
    const { destination } = interrupt;
    if (!Number.isInteger(destination) || destination < 0 || destination > (eim ? 0xffff_ffff : 0xff))
      throw new IommufdError(
        'EINVAL',
        `destination ${destination} is not a${eim ? ' 32-bit x2APIC' : 'n 8-bit xAPIC'} ID`,
        { device: device.name },
      );
    return {
      vector: interrupt.vector,
      dst: irteDestination(destination, eim),
      dm: interrupt.destinationMode === 'logical',
      tm: interrupt.trigger === 'level',
      rh: interrupt.redirectionHint === true,
      dlm: encodeDeliveryMode(interrupt.deliveryMode),
    };
  }

  /** One IEC invalidation covering `[index, index + count)`: the smallest aligned block, global past MHMV. */
  private flushRange(index: number, count: number): void {
    let mask = 0;
    while (index >>> mask !== (index + count - 1) >>> mask) mask++;
    if (mask > this.maxHandleMask) this.host.iecFlush(undefined, 0);
    else this.host.iecFlush((index >>> mask) << mask, mask);
  }

  private write(index: number, words: Uint32Array): void {
    const at = Number(this.tableBase) + index * IRTE_BYTES;
    if (!this.host.bus.writeWords(at, words, IRTE_WORDS, this.host.counter))
      throw new IommufdError('EIO', `${this.host.instance}: IRTE ${index} write aborted on the bus`);
  }

  /** GCMD as the spec asks: GSTS's persistent bits with `bit` set or cleared. */
  private command(bit: number, on: boolean): void {
    const persistent = this.host.readReg(REG.GSTS) & GSTS_PERSISTENT;
    this.host.writeReg(REG.GCMD, (on ? persistent | bit : persistent & ~bit) >>> 0);
  }

  private poll(what: string, done: (gsts: number) => boolean): void {
    for (let i = 0; i < POLL_LIMIT; i++) if (done(this.host.readReg(REG.GSTS))) return;
    throw pollTimeout(this.host.instance, `${what} never reached`);
  }

  private checkSetUp(): void {
    if (this.tableBase === undefined)
      throw new IommufdError('ENODEV', `${this.host.instance}: interrupt remapping is not set up`);
  }

  private checkOwned(device: IommuDeviceRef, index: number, count: number): void {
    this.checkSetUp();
    if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0)
      throw new IommufdError('EINVAL', `${index}+${count} is not a range of entries`, {
        device: device.name,
      });
    for (let i = index; i < index + count; i++) {
      if (i >= this.entries || this.owner[i] !== device.streamId)
        throw new IommufdError('EINVAL', `interrupt remapping entry ${i} is not ${device.name}'s`, {
          device: device.name,
          index: i,
        });
    }
  }
}

function checkVector(vector: number, device: IommuDeviceRef): void {
  if (!Number.isInteger(vector) || vector < 0 || vector > 0xff)
    throw new IommufdError('EINVAL', `vector ${vector} is not 0..255`, { device: device.name });
}
