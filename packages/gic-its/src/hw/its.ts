/**
 * The GICv3 Interrupt Translation Service (GICv3 spec chapter 5, registers §12.19): a control frame
 * (GITS_CTLR, TYPER, CBASER/CWRITER/CREADR, BASER<n>) and a translation frame whose GITS_TRANSLATER is
 * the MSI doorbell. A write of an EventID there, tagged with the writer's DeviceID (the StreamID the SMMU
 * passes on), is translated: device table → the device's ITT → LPI INTID and collection → collection
 * table → target redistributor, which sets the LPI pending (see redistributor.ts).
 *
 * Commands arrive on an in-memory queue and run when software moves CWRITER. A command with bad
 * arguments is dropped with its error recorded and the queue goes on; a command the ITS cannot read stalls
 * the queue (CREADR.Stalled) until software writes CWRITER.Retry or resets the queue through CBASER.
 */
import {
  type AccessCounter,
  type ITracer,
  type MemoryBus,
  type MmioHandler,
  type MsiOutcome,
  RegisterFile,
  toHex,
} from '@iommukit/core';
import {
  decodeCommand,
  ITS_COMMAND_BYTES,
  ITS_ERROR_CODES,
  type ItsCommand,
  type ItsCommandError,
  type ItsCommandWords,
} from './commands.js';
import {
  decodeCte,
  decodeDte,
  decodeIte,
  encodeCte,
  encodeDte,
  encodeIte,
  type InterruptTranslationEntry,
  ITS_ENTRY_BYTES,
  ItsTable,
} from './its-tables.js';
import type { Redistributor } from './redistributor.js';
import {
  BASER_TYPE,
  decodeBaser,
  decodeCbaser,
  encodeTyper,
  GITS,
  GITS_CTLR_ENABLED,
  GITS_CTLR_QUIESCENT,
  IIDR_ARM,
  LPI_BASE,
  PIDR2_GICV3,
  QUEUE_OFFSET_MASK,
  QUEUE_RETRY_STALLED,
} from './registers.js';

export interface ItsGeometry {
  /** DeviceID width (GITS_TYPER.Devbits + 1). */
  readonly deviceIdBits: number;
  /** EventID width (GITS_TYPER.ID_bits + 1). */
  readonly eventIdBits: number;
  /** Collection ID width (GITS_TYPER.CIDbits + 1). */
  readonly collectionIdBits: number;
  /** INTID width of the LPIs it may map (MAPTI's pINTID must be below 2^lpiIdBits). */
  readonly lpiIdBits: number;
}

/** BASER0 holds the device table, BASER1 the collection table; the other six are unimplemented. */
const BASER_LAYOUT = [BASER_TYPE.devices, BASER_TYPE.collections] as const;
/** BASER bits software cannot change: Type [58:56] and Entry_Size [52:48] (high word bits 26:24, 20:16). */
const BASER_HI_RO = (0x7 << 24) | (0x1f << 16);

type Lookup =
  | { readonly ite: InterruptTranslationEntry; readonly address: number }
  | { readonly error: string };

export class GicIts implements MmioHandler {
  readonly registers: RegisterFile;
  /** Commands dropped for bad arguments, oldest first. */
  readonly commandErrors: ItsCommandError[] = [];
  private outcomes: MsiOutcome[] = [];
  private readonly who: AccessCounter;
  private deviceTable: ItsTable | undefined;
  private collectionTable: ItsTable | undefined;

  constructor(
    readonly name: string,
    readonly geometry: ItsGeometry,
    private readonly redistributors: readonly Redistributor[],
    private readonly bus: MemoryBus,
    private readonly tracer: ITracer,
  ) {
    this.who = bus.counter(`${name}:tables`);
    const typer = encodeTyper({ itteSize: ITS_ENTRY_BYTES, ...geometry });
    const baserHi = (type: number) => (type << 24) | ((ITS_ENTRY_BYTES - 1) << 16);
    this.registers = new RegisterFile(0x1_0000, [
      {
        name: 'GITS_CTLR',
        offset: GITS.CTLR,
        access: 'rw',
        writable: GITS_CTLR_ENABLED,
        reset: GITS_CTLR_QUIESCENT,
      },
      { name: 'GITS_IIDR', offset: GITS.IIDR, access: 'ro', reset: IIDR_ARM },
      { name: 'GITS_TYPER', offset: GITS.TYPER, access: 'ro', reset: Number(typer & 0xffff_ffffn) },
      { name: 'GITS_TYPER_HI', offset: GITS.TYPER + 4, access: 'ro', reset: Number(typer >> 32n) },
      { name: 'GITS_CBASER', offset: GITS.CBASER, access: 'rw' },
      { name: 'GITS_CBASER_HI', offset: GITS.CBASER + 4, access: 'rw' },
      {
        name: 'GITS_CWRITER',
        offset: GITS.CWRITER,
        access: 'rw',
        writable: QUEUE_OFFSET_MASK | QUEUE_RETRY_STALLED,
      },
      { name: 'GITS_CWRITER_HI', offset: GITS.CWRITER + 4, access: 'ro' },
      { name: 'GITS_CREADR', offset: GITS.CREADR, access: 'ro' },
      { name: 'GITS_CREADR_HI', offset: GITS.CREADR + 4, access: 'ro' },
      ...BASER_LAYOUT.flatMap((type, n) => [
        { name: `GITS_BASER${n}`, offset: GITS.BASER + 8 * n, access: 'rw' as const },
        {
          name: `GITS_BASER${n}_HI`,
          offset: GITS.BASER + 8 * n + 4,
          access: 'rw' as const,
          writable: ~BASER_HI_RO >>> 0,
          reset: baserHi(type),
        },
      ]),
      { name: 'GITS_PIDR2', offset: GITS.PIDR2, access: 'ro', reset: PIDR2_GICV3 },
    ]);
    this.registers.onWrite(GITS.CTLR, (value, old) => {
      const enabled = (value & GITS_CTLR_ENABLED) !== 0;
      this.registers.set(GITS.CTLR, enabled ? GITS_CTLR_ENABLED : GITS_CTLR_QUIESCENT);
      if (enabled && !(old & GITS_CTLR_ENABLED)) {
        this.latchTables();
        this.log('its.enable', 'ITS enabled');
        this.processQueue();
      }
    });
    for (const offset of [GITS.CBASER, GITS.CBASER + 4]) {
      this.registers.onWrite(offset, (_value, old) => {
        // CBASER is read-only while the ITS is enabled; a write while disabled resets CREADR (§12.19.2).
        if (this.enabled) this.registers.set(offset, old);
        else this.registers.set(GITS.CREADR, 0);
      });
    }
    BASER_LAYOUT.forEach((_type, n) => {
      for (const offset of [GITS.BASER + 8 * n, GITS.BASER + 8 * n + 4]) {
        this.registers.onWrite(offset, (_value, old) => {
          if (this.enabled) this.registers.set(offset, old); // read-only while enabled
        });
      }
    });
    this.registers.onWrite(GITS.CWRITER, (value) => {
      if (value & QUEUE_RETRY_STALLED) {
        this.registers.set(GITS.CWRITER, value & QUEUE_OFFSET_MASK);
        this.registers.set(GITS.CREADR, this.registers.get(GITS.CREADR) & QUEUE_OFFSET_MASK);
      }
      this.processQueue();
    });
  }

  get enabled(): boolean {
    return (this.registers.get(GITS.CTLR) & GITS_CTLR_ENABLED) !== 0;
  }

  /** CREADR.Stalled: a command could not be read and the queue waits for CWRITER.Retry. */
  get stalled(): boolean {
    return (this.registers.get(GITS.CREADR) & QUEUE_RETRY_STALLED) !== 0;
  }

  read(offset: number, size: 1 | 2 | 4): number {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: the register file reads an offset it has no register at as 0
    return offset < 0x1_0000 ? this.registers.read(offset, size) : 0;
  }

  write(offset: number, size: 1 | 2 | 4, value: number, deviceId?: number): void {
    // Stryker disable next-line EqualityOperator: the register file ignores a write where it has no register
    if (offset < 0x1_0000) this.registers.write(offset, size, value);
    else if (offset === GITS.TRANSLATER && size !== 1) this.translate(deviceId, value >>> 0);
  }

  /** What became of each GITS_TRANSLATER write since the last call. */
  takeOutcomes(): MsiOutcome[] {
    const out = this.outcomes;
    this.outcomes = [];
    return out;
  }

  /**
   * Translates an MSI: `deviceId` wrote `eventId` to GITS_TRANSLATER. Also the entry point of a VMM
   * injecting into its virtual ITS (KVM_SIGNAL_MSI carries the DeviceID the same way).
   */
  translate(deviceId: number | undefined, eventId: number): MsiOutcome {
    const outcome = this.translateOnce(deviceId, eventId);
    this.outcomes.push(outcome);
    if (outcome.kind === 'dropped') {
      this.log(
        'msi.drop',
        `MSI DeviceID ${toHex(outcome.deviceId)} EventID ${eventId} dropped: ${outcome.reason}`,
      );
    }
    return outcome;
  }

  private translateOnce(deviceId: number | undefined, eventId: number): MsiOutcome {
    const dropped = (reason: string): MsiOutcome => ({
      kind: 'dropped',
      deviceId: deviceId ?? -1,
      eventId,
      reason,
    });
    if (deviceId === undefined)
      return dropped('the write carries no DeviceID (it did not come from a device)');
    if (!this.enabled) return dropped('the ITS is disabled');
    const found = this.lookup(deviceId, eventId, 'TRANSLATE');
    if ('error' in found) return dropped(found.error);
    const rd = this.collectionTarget(found.ite.icid);
    if (rd === undefined) return dropped(`collection ${found.ite.icid} is not mapped`);
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (this.tracer.enabled) {
      this.tracer.trace(
        'msi',
        this.name,
        'msi.translate',
        `MSI DeviceID ${toHex(deviceId)} EventID ${eventId} → LPI ${found.ite.intid}, collection ${found.ite.icid} → CPU${rd.cpu.cpu}`,
        { deviceId, eventId, intid: found.ite.intid, icid: found.ite.icid },
      );
    }
    return rd.signal(found.ite.intid, { controller: this.name, deviceId, eventId });
  }

  private latchTables(): void {
    const baser = (n: number) => decodeBaser(this.registers.get64(GITS.BASER + 8 * n));
    const devices = baser(0);
    const collections = baser(1);
    this.deviceTable = devices.valid ? new ItsTable(devices) : undefined;
    this.collectionTable = collections.valid ? new ItsTable(collections) : undefined;
  }

  private processQueue(): void {
    if (!this.enabled || this.stalled) return;
    const queue = decodeCbaser(this.registers.get64(GITS.CBASER));
    if (!queue.valid) return;
    const bytes = queue.pages * 0x1000;
    let readOffset = this.registers.get(GITS.CREADR) & QUEUE_OFFSET_MASK;
    const writeOffset = this.registers.get(GITS.CWRITER) & QUEUE_OFFSET_MASK;
    if (writeOffset >= bytes) return; // beyond the queue: nothing to do until software fixes CWRITER
    while (readOffset !== writeOffset) {
      const words = this.readCommand(Number(queue.address) + readOffset);
      if (!words) {
        this.registers.set(GITS.CREADR, readOffset | QUEUE_RETRY_STALLED);
        this.log('cmdq.stall', `command at offset ${toHex(readOffset)} cannot be read: queue stalled`);
        return;
      }
      const command = decodeCommand(words);
      const error = this.execute(command);
      if (error) {
        this.commandErrors.push({ offset: readOffset, command, error, code: ITS_ERROR_CODES[error] });
        this.log('cmd.error', `${command.op} at ${toHex(readOffset)} dropped: E_ITS_${error}`);
      }
      readOffset = (readOffset + ITS_COMMAND_BYTES) % bytes;
      this.registers.set(GITS.CREADR, readOffset);
    }
  }

  private readCommand(addr: number): ItsCommandWords | undefined {
    const out: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      const r = this.bus.read(addr + 8 * i, 8, this.who);
      if (!r.ok) return undefined;
      out.push(r.value);
    }
    return out as unknown as ItsCommandWords;
  }

  /** Runs one command; returns the error name when it is dropped. */
  private execute(c: ItsCommand): string | undefined {
    this.logCommand(c);
    const { deviceIdBits, eventIdBits, collectionIdBits, lpiIdBits } = this.geometry;
    switch (c.op) {
      case 'MAPD': {
        if (c.deviceId >= 2 ** deviceIdBits) return 'MAPD_DEVICE_OOR';
        if (c.size + 1 > eventIdBits) return 'MAPD_ITTSIZE_OOR';
        // Stryker disable next-line StringLiteral: any location that is not a number means no entry; the text is never read
        const at = this.deviceTable?.locate(c.deviceId, this.bus, this.who) ?? 'unbacked';
        if (typeof at !== 'number') return 'MAPD_DEVICE_OOR';
        this.write64(at, c.valid ? encodeDte({ ittAddress: c.ittAddress, size: c.size }) : 0n);
        return undefined;
      }
      case 'MAPC': {
        // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: ICID is a 16-bit command field and every ITS this package builds has CIDbits + 1 = 16, so no ICID reaches 2^collectionIdBits
        if (c.icid >= 2 ** collectionIdBits) return 'MAPC_COLLECTION_OOR';
        if (c.valid && c.rdbase >= this.redistributors.length) return 'MAPC_PROCNUM_OOR';
        // Stryker disable next-line StringLiteral: any location that is not a number means no entry; the text is never read
        const at = this.collectionTable?.locate(c.icid, this.bus, this.who) ?? 'unbacked';
        if (typeof at !== 'number') return 'MAPC_COLLECTION_OOR';
        this.write64(at, c.valid ? encodeCte(c.rdbase) : 0n);
        return undefined;
      }
      case 'MAPTI':
      case 'MAPI': {
        const intid = c.op === 'MAPI' ? c.eventId : c.intid;
        const slot = this.iteSlot(c.deviceId, c.eventId, c.op);
        if (typeof slot === 'string') return slot;
        if (intid < LPI_BASE || intid >= 2 ** lpiIdBits) return `${c.op}_PHYSICALID_OOR`;
        // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: ICID is a 16-bit command field and every ITS this package builds has CIDbits + 1 = 16, so no ICID reaches 2^collectionIdBits
        if (c.icid >= 2 ** collectionIdBits) return `${c.op}_COLLECTION_OOR`;
        this.write64(slot, encodeIte({ intid, icid: c.icid }));
        return undefined;
      }
      case 'MOVI': {
        const found = this.lookup(c.deviceId, c.eventId, 'MOVI');
        if ('error' in found) return found.error;
        // Stryker disable next-line ConditionalExpression,EqualityOperator,StringLiteral: ICID is a 16-bit command field and every ITS this package builds has CIDbits + 1 = 16, so no ICID reaches 2^collectionIdBits
        if (c.icid >= 2 ** collectionIdBits) return 'MOVI_UNMAPPED_COLLECTION';
        const to = this.collectionTarget(c.icid);
        if (to === undefined) return 'MOVI_UNMAPPED_COLLECTION';
        const from = this.collectionTarget(found.ite.icid);
        if (from && from !== to) {
          from.movePendingTo(to, found.ite.intid);
          // INVs for the LPI now go to `to`; `from` must not keep a copy it would never hear about again.
          from.configCache.delete(found.ite.intid);
        }
        this.write64(found.address, encodeIte({ intid: found.ite.intid, icid: c.icid }));
        return undefined;
      }
      case 'DISCARD':
      case 'INV':
      case 'INT':
      case 'CLEAR': {
        const found = this.lookup(c.deviceId, c.eventId, c.op);
        if ('error' in found) return found.error;
        const rd = this.collectionTarget(found.ite.icid);
        if (rd === undefined) return `${c.op}_UNMAPPED_COLLECTION`;
        const { intid } = found.ite;
        if (c.op === 'INV') rd.invalidate(intid);
        else if (c.op === 'INT')
          rd.signal(intid, { controller: this.name, deviceId: c.deviceId, eventId: c.eventId });
        else rd.clearPending(intid);
        if (c.op === 'DISCARD') this.write64(found.address, 0n);
        return undefined;
      }
      case 'INVALL': {
        // Stryker disable next-line ConditionalExpression,EqualityOperator: ICID is a 16-bit command field and every ITS this package builds has CIDbits + 1 = 16, so no ICID reaches 2^collectionIdBits
        const rd = c.icid < 2 ** collectionIdBits ? this.collectionTarget(c.icid) : undefined;
        if (rd === undefined) return 'INVALL_UNMAPPED_COLLECTION';
        rd.invalidateAll();
        return undefined;
      }
      case 'SYNC':
        // Every earlier command has taken effect by the time the ITS reads the next one.
        return c.rdbase < this.redistributors.length ? undefined : 'SYNC_PROCNUM_OOR';
      case 'MOVALL': {
        const from = this.redistributors[c.rdbase1];
        const to = this.redistributors[c.rdbase2];
        if (!from || !to) return 'MOVALL_PROCNUM_OOR';
        for (const intid of from.pendingLpis()) from.movePendingTo(to, intid);
        if (from !== to) from.configCache.clear();
        return undefined;
      }
      case 'UNKNOWN':
        return 'UNSUPPORTED_COMMAND';
    }
  }

  /** Where the ITE for (DeviceID, EventID) goes, or the error of `op` (MAPTI/MAPI). */
  private iteSlot(deviceId: number, eventId: number, op: string): number | string {
    if (deviceId >= 2 ** this.geometry.deviceIdBits) return `${op}_DEVICE_OOR`;
    const dte = this.readDte(deviceId);
    if (dte === undefined) return `${op}_UNMAPPED_DEVICE`;
    if (eventId >= 2 ** (dte.size + 1)) return `${op}_ID_OOR`;
    return Number(dte.ittAddress) + eventId * ITS_ENTRY_BYTES;
  }

  /** The mapped ITE of (DeviceID, EventID), or the error `op` reports. */
  private lookup(deviceId: number, eventId: number, op: string): Lookup {
    const slot = this.iteSlot(deviceId, eventId, op);
    if (typeof slot === 'string') return { error: slot };
    const r = this.bus.read(slot, 8, this.who);
    const ite = r.ok ? decodeIte(r.value) : undefined;
    return ite ? { ite, address: slot } : { error: `${op}_UNMAPPED_INTERRUPT` };
  }

  private readDte(deviceId: number) {
    // Stryker disable next-line StringLiteral: any location that is not a number means no entry; the text is never read
    const at = this.deviceTable?.locate(deviceId, this.bus, this.who) ?? 'unbacked';
    if (typeof at !== 'number') return undefined;
    const r = this.bus.read(at, 8, this.who);
    return r.ok ? decodeDte(r.value) : undefined;
  }

  /** The redistributor a collection targets, if the collection is mapped. */
  private collectionTarget(icid: number): Redistributor | undefined {
    // Stryker disable next-line StringLiteral: any location that is not a number means no entry; the text is never read
    const at = this.collectionTable?.locate(icid, this.bus, this.who) ?? 'unbacked';
    if (typeof at !== 'number') return undefined;
    const r = this.bus.read(at, 8, this.who);
    const rdbase = r.ok ? decodeCte(r.value) : undefined;
    // Stryker disable next-line ConditionalExpression: indexing with undefined gives undefined as well
    return rdbase === undefined ? undefined : this.redistributors[rdbase];
  }

  private write64(addr: number, value: bigint): void {
    this.bus.write(addr, 8, value, this.who);
  }

  private logCommand(c: ItsCommand): void {
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (!this.tracer.enabled) return;
    const { op, ...fields } = c;
    // IDs read as the kernel prints them: DeviceIDs and addresses in hex, the rest in decimal.
    const hex = new Set(['deviceId', 'ittAddress', 'opcode']);
    const text = Object.entries(fields)
      .map(
        ([k, v]) =>
          `${k}=${typeof v === 'boolean' ? Number(v) : hex.has(k) ? toHex(v as number | bigint) : v}`,
      )
      .join(' ');
    this.tracer.trace(
      'msi',
      this.name,
      `cmd.${op}`,
      `${op} ${text}`,
      fields as Record<string, number | bigint | boolean>,
    );
  }

  private log(name: string, message: string): void {
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (this.tracer.enabled) this.tracer.trace('msi', this.name, name, message);
  }
}
