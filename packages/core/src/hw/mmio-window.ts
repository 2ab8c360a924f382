/**
 * A driver's handle on a device's register window: `readl`/`writel`/`writeq` over the memory bus, the
 * only way a driver reaches its hardware. A read that aborts returns all-ones, as a PCIe master abort does.
 */
import type { AccessCounter } from '../memory/access-counter.js';
import type { MemoryBus } from '../memory/memory-bus.js';

export class MmioWindow {
  private readonly base: number;

  constructor(
    private readonly bus: MemoryBus,
    base: bigint,
    private readonly counter: AccessCounter,
  ) {
    this.base = Number(base);
  }

  read32(offset: number): number {
    const r = this.bus.read(this.base + offset, 4, this.counter);
    return r.ok ? Number(r.value) : 0xffff_ffff;
  }

  write32(offset: number, value: number): void {
    this.bus.write(this.base + offset, 4, value >>> 0, this.counter);
  }

  /** A 64-bit register as two 32-bit accesses, low half first (what `lo_hi_writeq` does). */
  write64(offset: number, value: bigint): void {
    this.write32(offset, Number(value & 0xffff_ffffn));
    this.write32(offset + 4, Number((value >> 32n) & 0xffff_ffffn));
  }

  read64(offset: number): bigint {
    const lo = this.read32(offset);
    return (BigInt(this.read32(offset + 4)) << 32n) | BigInt(lo);
  }

  /** A 64-bit register holding an address or an index (below 2^53), as a number; low half read first. */
  readAddress(offset: number): number {
    const lo = this.read32(offset);
    return this.read32(offset + 4) * 2 ** 32 + lo;
  }

  /** {@link write64} of a number below 2^53 (an address with flag bits): the high half, written last, triggers. */
  writeAddress(offset: number, value: number): void {
    this.write32(offset, value % 2 ** 32);
    this.write32(offset + 4, Math.floor(value / 2 ** 32));
  }
}
