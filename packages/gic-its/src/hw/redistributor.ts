/**
 * A GICv3 redistributor's LPI side (GICv3 spec §5.1, registers §12.11): the LPI configuration table
 * (GICR_PROPBASER, one byte per LPI: enable and priority) and this CPU's pending table (GICR_PENDBASER,
 * one bit per INTID) in memory, and a cache of configuration bytes. The architecture lets the
 * redistributor cache LPI configuration, so software that changes a byte must invalidate it (ITS INV or
 * INVALL, or GICR_INVLPIR / GICR_INVALLR) before the change is guaranteed to take effect; until then this
 * model keeps using the cached byte, which makes a missing INV observable.
 *
 * An LPI the ITS forwards sets its pending bit. If its configuration says enabled, the CPU interface
 * takes it at once (acknowledged and completed: the pending bit clears); if disabled, it stays pending and
 * is delivered when an invalidation finds it enabled.
 */
import {
  type AccessCounter,
  type InterruptArrival,
  type ITracer,
  LruCache,
  type MemoryBus,
  type MsiOutcome,
  RegisterFile,
  toHex,
} from '@iommukit/core';
import type { CpuInterface } from './cpu-interface.js';
import {
  decodePendbaser,
  decodePropbaser,
  encodeRedistTyper,
  GICR,
  GICR_CTLR_ENABLE_LPIS,
  GICR_WAKER_CHILDREN_ASLEEP,
  GICR_WAKER_PROCESSOR_SLEEP,
  IIDR_ARM,
  LPI_BASE,
  LPI_ENABLE,
  LPI_PRIORITY_MASK,
  PIDR2_GICV3,
  REDIST_FRAME_SIZE,
} from './registers.js';

/** Where an LPI came from (kept beside the pending bit so the arrival can name it). */
export interface LpiSource {
  readonly controller: string;
  readonly deviceId: number;
  readonly eventId: number;
}

/** Configuration bytes a redistributor caches. */
export const LPI_CONFIG_CACHE_ENTRIES = 1024;

/** The next arrival sequence number, shared by the CPUs of one GIC. */
export interface ArrivalClock {
  next(): number;
}

export class Redistributor {
  readonly registers: RegisterFile;
  readonly configCache = new LruCache<number, number>(LPI_CONFIG_CACHE_ENTRIES);
  private readonly sources = new Map<number, LpiSource>();
  private readonly who: AccessCounter;
  /** PROPBASER / PENDBASER as latched when EnableLPIs was set. */
  private tables: { prop: number; idBits: number; pend: number } | undefined;

  constructor(
    readonly name: string,
    readonly cpu: CpuInterface,
    last: boolean,
    private readonly bus: MemoryBus,
    private readonly clock: ArrivalClock,
    private readonly tracer: ITracer,
  ) {
    this.who = bus.counter(`${name}:tables`);
    const typer = encodeRedistTyper(cpu.cpu, last);
    this.registers = new RegisterFile(REDIST_FRAME_SIZE, [
      { name: 'GICR_CTLR', offset: GICR.CTLR, access: 'rw', writable: GICR_CTLR_ENABLE_LPIS },
      { name: 'GICR_IIDR', offset: GICR.IIDR, access: 'ro', reset: IIDR_ARM },
      { name: 'GICR_TYPER', offset: GICR.TYPER, access: 'ro', reset: Number(typer & 0xffff_ffffn) },
      { name: 'GICR_TYPER_HI', offset: GICR.TYPER + 4, access: 'ro', reset: Number(typer >> 32n) },
      {
        name: 'GICR_WAKER',
        offset: GICR.WAKER,
        access: 'rw',
        writable: GICR_WAKER_PROCESSOR_SLEEP,
        reset: GICR_WAKER_PROCESSOR_SLEEP | GICR_WAKER_CHILDREN_ASLEEP,
      },
      { name: 'GICR_PROPBASER', offset: GICR.PROPBASER, access: 'rw' },
      { name: 'GICR_PROPBASER_HI', offset: GICR.PROPBASER + 4, access: 'rw' },
      { name: 'GICR_PENDBASER', offset: GICR.PENDBASER, access: 'rw' },
      { name: 'GICR_PENDBASER_HI', offset: GICR.PENDBASER + 4, access: 'rw' },
      { name: 'GICR_INVLPIR', offset: GICR.INVLPIR, access: 'wo' },
      { name: 'GICR_INVLPIR_HI', offset: GICR.INVLPIR + 4, access: 'wo' },
      { name: 'GICR_INVALLR', offset: GICR.INVALLR, access: 'wo' },
      { name: 'GICR_INVALLR_HI', offset: GICR.INVALLR + 4, access: 'wo' },
      { name: 'GICR_SYNCR', offset: GICR.SYNCR, access: 'ro' },
      { name: 'GICR_PIDR2', offset: GICR.PIDR2, access: 'ro', reset: PIDR2_GICV3 },
    ]);
    this.registers.onWrite(GICR.CTLR, (value, old) => {
      // EnableLPIs cannot be cleared once set on this implementation (GICR_CTLR.EnableLPIs is allowed to be
      // sticky), so the tables stay latched.
      if (old & GICR_CTLR_ENABLE_LPIS) this.registers.set(GICR.CTLR, old);
      else if (value & GICR_CTLR_ENABLE_LPIS) this.enableLpis();
    });
    this.registers.onWrite(GICR.WAKER, (value) => {
      const sleep = value & GICR_WAKER_PROCESSOR_SLEEP;
      this.registers.set(GICR.WAKER, sleep ? sleep | GICR_WAKER_CHILDREN_ASLEEP : 0);
    });
    this.registers.onWrite(GICR.INVLPIR, (value) => this.invalidate(value >>> 0));
    this.registers.onWrite(GICR.INVALLR, () => this.invalidateAll());
  }

  get lpisEnabled(): boolean {
    return this.tables !== undefined;
  }

  /**
   * An LPI arrives from an ITS: its pending bit is set, and the CPU takes it now if it is enabled.
   * Dropped if LPIs are off here or the INTID is outside the configuration table.
   */
  signal(intid: number, source: LpiSource): MsiOutcome {
    const dropped = (reason: string): MsiOutcome => ({
      kind: 'dropped',
      deviceId: source.deviceId,
      eventId: source.eventId,
      reason,
    });
    const tables = this.tables;
    if (!tables) return dropped(`${this.name}: EnableLPIs is 0`);
    if (intid < LPI_BASE || intid >= 2 ** tables.idBits)
      return dropped(`${this.name}: INTID ${intid} is outside the configured LPI range`);
    if (!this.writePending(intid, true)) return dropped(`${this.name}: pending table write aborted`);
    this.sources.set(intid, source);
    return this.evaluate(intid);
  }

  /** Clears an LPI's pending state (ITS CLEAR, DISCARD). */
  clearPending(intid: number): void {
    if (this.tables && this.isPending(intid)) this.writePending(intid, false);
    this.sources.delete(intid);
  }

  isPending(intid: number): boolean {
    const tables = this.tables;
    if (!tables || intid < LPI_BASE || intid >= 2 ** tables.idBits) return false;
    const r = this.bus.read(tables.pend + Math.floor(intid / 8), 1, this.who);
    return r.ok && ((Number(r.value) >> (intid % 8)) & 1) === 1;
  }

  /** Moves a pending LPI to another redistributor (MOVI, MOVALL). */
  movePendingTo(target: Redistributor, intid: number): void {
    if (target === this || !this.isPending(intid)) return;
    const source = this.sources.get(intid);
    this.clearPending(intid);
    if (source) target.signal(intid, source);
  }

  /** Every LPI pending here. */
  pendingLpis(): number[] {
    const tables = this.tables;
    if (!tables) return [];
    // One read of the LPI part of the table (the first 1 KiB, INTIDs below 8192, is unused).
    const first = LPI_BASE / 8;
    const r = this.bus.readBytes(tables.pend + first, 2 ** tables.idBits / 8 - first, this.who);
    if (!r.ok) return [];
    const out: number[] = [];
    r.data.forEach((bits, i) => {
      // Stryker disable next-line ConditionalExpression,EqualityOperator: `bits !== 0` only stops early, and bit 8 of a byte is 0
      for (let bit = 0; bits !== 0 && bit < 8; bit++) if ((bits >> bit) & 1) out.push((first + i) * 8 + bit);
    });
    return out;
  }

  /** Drops the cached configuration of one LPI and re-evaluates it (INV, GICR_INVLPIR). */
  invalidate(intid: number): void {
    this.configCache.delete(intid);
    if (this.isPending(intid)) this.evaluate(intid);
  }

  /** Drops every cached configuration and re-evaluates pending LPIs (INVALL, GICR_INVALLR). */
  invalidateAll(): void {
    this.configCache.clear();
    for (const intid of this.pendingLpis()) this.evaluate(intid);
  }

  /** The configuration byte the redistributor uses for an LPI: cached, or read from the table. */
  config(intid: number): number {
    const cached = this.configCache.get(intid);
    if (cached !== undefined) return cached;
    const tables = this.tables;
    if (!tables) return 0;
    const r = this.bus.read(tables.prop + (intid - LPI_BASE), 1, this.who);
    const value = r.ok ? Number(r.value) : 0;
    this.configCache.set(intid, value);
    return value;
  }

  private evaluate(intid: number): MsiOutcome {
    const source = this.sources.get(intid) ?? { controller: '', deviceId: -1, eventId: -1 };
    const config = this.config(intid);
    if ((config & LPI_ENABLE) === 0) {
      this.log(
        'lpi.pending',
        `LPI ${intid} pending on CPU${this.cpu.cpu} (disabled in its configuration)`,
        intid,
      );
      return { kind: 'pending', intid, deviceId: source.deviceId, eventId: source.eventId };
    }
    this.writePending(intid, false);
    this.sources.delete(intid);
    const arrival: InterruptArrival = {
      seq: this.clock.next(),
      cpu: this.cpu.cpu,
      intid,
      priority: config & LPI_PRIORITY_MASK,
      ...source,
    };
    this.cpu.take(arrival);
    this.log(
      'lpi.deliver',
      `LPI ${intid} (priority ${toHex(arrival.priority)}) taken by CPU${this.cpu.cpu}`,
      intid,
    );
    return { kind: 'delivered', arrival };
  }

  private enableLpis(): void {
    const prop = decodePropbaser(this.registers.get64(GICR.PROPBASER));
    const pend = decodePendbaser(this.registers.get64(GICR.PENDBASER));
    this.tables = {
      prop: Number(prop.address),
      idBits: Math.min(prop.idBits, 16),
      pend: Number(pend.address),
    };
    this.log(
      'lpi.enable',
      `EnableLPIs: properties at ${toHex(prop.address)}, pending at ${toHex(pend.address)}`,
    );
  }

  private writePending(intid: number, set: boolean): boolean {
    const addr = this.tables!.pend + Math.floor(intid / 8);
    const r = this.bus.read(addr, 1, this.who);
    // Stryker disable next-line ConditionalExpression: the write of the same byte aborts when the read does
    if (!r.ok) return false;
    const mask = 1 << (intid % 8);
    const value = set ? Number(r.value) | mask : Number(r.value) & ~mask;
    return this.bus.write(addr, 1, value, this.who).ok;
  }

  private log(name: string, message: string, intid?: number): void {
    if (this.tracer.enabled)
      this.tracer.trace('msi', this.name, name, message, intid === undefined ? {} : { intid });
  }
}
