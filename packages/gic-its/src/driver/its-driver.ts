/**
 * The driver of one ITS, in the order Linux irq-gic-v3-its.c programs it: check GITS_PIDR2, make the ITS
 * quiescent, read GITS_TYPER, size and allocate the device table (two-level when a flat one would need
 * more than two pages) and the collection table through GITS_BASER<n>, a 64 KiB command queue through
 * GITS_CBASER, then enable. Per CPU it maps collection ICID = CPU number (MAPC + SYNC, then INVALL). Per
 * device it allocates an ITT and sends MAPD; per vector MAPTI + SYNC. Commands are followed by SYNC as
 * Linux does (MAPC, MAPTI, MOVI, DISCARD, INV, INT, CLEAR; not MAPD or INVALL).
 */
import {
  type AccessCounter,
  type Hpa,
  type IFrameAllocator,
  IommufdError,
  type MemoryBus,
  MmioWindow,
  toHex,
} from '@iommukit/core';
import { ITS_ENTRY_BYTES } from '../hw/its-tables.js';
import {
  BASER_TYPE,
  decodeBaser,
  decodeTyper,
  encodeBaser,
  encodeCbaser,
  GITS,
  GITS_CTLR_ENABLED,
  GITS_CTLR_QUIESCENT,
  type ItsTyper,
} from '../hw/registers.js';
import { ItsCommandQueue } from './its-command-queue.js';

const QUEUE_PAGES = 16; // 64 KiB: 2048 commands, as Linux allocates
const TABLE_PAGE = 0x1_0000; // Linux tries 64 KiB pages first
const MAX_BASER_PAGES = 256;

interface MappedDevice {
  readonly itt: Hpa;
  readonly ittBytes: number;
  readonly events: number;
}

export class ItsDriver {
  private readonly mmio: MmioWindow;
  private readonly who: AccessCounter;
  private queue!: ItsCommandQueue;
  private typer!: ItsTyper;
  /** The device table: flat, or a level-1 table whose level-2 pages are allocated on demand. */
  private deviceTable!: { readonly base: Hpa; readonly indirect: boolean; readonly perPage: number };
  private readonly l2Pages = new Map<number, Hpa>();
  private readonly devices = new Map<number, MappedDevice>();

  constructor(
    readonly name: string,
    readonly base: Hpa,
    private readonly bus: MemoryBus,
    private readonly memory: IFrameAllocator,
  ) {
    this.who = bus.counter(`${name}:driver`);
    this.mmio = new MmioWindow(bus, base, this.who);
  }

  probe(cpus: number): void {
    if (((this.mmio.read32(GITS.PIDR2) >> 4) & 0xf) !== 3)
      throw new IommufdError('ENODEV', `${this.name}: no GICv3 ITS at ${toHex(this.base)}`);
    const ctlr = this.mmio.read32(GITS.CTLR);
    if (ctlr & GITS_CTLR_ENABLED) this.mmio.write32(GITS.CTLR, 0);
    if (!(this.mmio.read32(GITS.CTLR) & GITS_CTLR_QUIESCENT))
      throw new IommufdError('EBUSY', `${this.name}: the ITS does not become quiescent`);
    this.typer = decodeTyper(this.mmio.read64(GITS.TYPER));
    for (let n = 0; n < 8; n++) this.setupBaser(n);
    const queue = this.memory.allocFrames(QUEUE_PAGES, QUEUE_PAGES);
    this.mmio.write64(GITS.CBASER, encodeCbaser({ valid: true, address: queue, pages: QUEUE_PAGES }));
    this.mmio.write64(GITS.CWRITER, 0n);
    this.queue = new ItsCommandQueue(this.name, this.mmio, this.bus, this.who, queue, QUEUE_PAGES * 0x1000);
    this.mmio.write32(GITS.CTLR, GITS_CTLR_ENABLED);
    for (let cpu = 0; cpu < cpus; cpu++) {
      this.queue.send({ op: 'MAPC', icid: cpu, rdbase: cpu, valid: true }, { op: 'SYNC', rdbase: cpu });
      this.queue.send({ op: 'INVALL', icid: cpu });
    }
  }

  /** Allocates a device's ITT for `events` vectors and maps it (MAPD). */
  mapDevice(deviceId: number, events: number): void {
    if (this.devices.has(deviceId))
      throw new IommufdError('EEXIST', `${this.name}: DeviceID ${toHex(deviceId)} is mapped`);
    if (deviceId >= 2 ** this.typer.deviceIdBits)
      throw new IommufdError(
        'EINVAL',
        `${this.name}: DeviceID ${toHex(deviceId)} exceeds ${this.typer.deviceIdBits} bits`,
      );
    // Linux rounds the vector count up to a power of two, at least 2, and the ITT to at least 256 bytes.
    const count = Math.max(2, 2 ** Math.ceil(Math.log2(Math.max(events, 1))));
    if (count > 2 ** this.typer.eventIdBits)
      throw new IommufdError(
        'EINVAL',
        `${this.name}: ${events} events exceed ${this.typer.eventIdBits} EventID bits`,
      );
    this.ensureDeviceTableEntry(deviceId);
    const ittBytes = Math.max(256, count * this.typer.itteSize);
    const itt = this.memory.allocBytes(ittBytes, 0x1000);
    this.queue.send({ op: 'MAPD', deviceId, size: Math.log2(count) - 1, ittAddress: itt, valid: true });
    this.devices.set(deviceId, { itt, ittBytes, events: count });
  }

  /** Unmaps a device (MAPD V=0) and frees its ITT. */
  unmapDevice(deviceId: number): void {
    const device = this.devices.get(deviceId);
    if (!device) return;
    this.queue.send({ op: 'MAPD', deviceId, size: 0, ittAddress: 0n, valid: false });
    this.memory.freeFrames(device.itt, Math.ceil(device.ittBytes / 0x1000));
    this.devices.delete(deviceId);
  }

  mapEvent(deviceId: number, eventId: number, intid: number, cpu: number): void {
    this.queue.send({ op: 'MAPTI', deviceId, eventId, intid, icid: cpu }, { op: 'SYNC', rdbase: cpu });
  }

  /** Retargets an event; the SYNC goes to the old collection, as Linux's its_send_movi does. */
  moveEvent(deviceId: number, eventId: number, from: number, to: number): void {
    this.queue.send({ op: 'MOVI', deviceId, eventId, icid: to }, { op: 'SYNC', rdbase: from });
  }

  /** Makes the redistributor re-read an event's LPI configuration (after a change to its byte). */
  invalidate(deviceId: number, eventId: number, cpu: number): void {
    this.queue.send({ op: 'INV', deviceId, eventId }, { op: 'SYNC', rdbase: cpu });
  }

  discardEvent(deviceId: number, eventId: number, cpu: number): void {
    this.queue.send({ op: 'DISCARD', deviceId, eventId }, { op: 'SYNC', rdbase: cpu });
  }

  /** Raises an event's LPI by command (Linux irq_retrigger: INT + SYNC). */
  raise(deviceId: number, eventId: number, cpu: number): void {
    this.queue.send({ op: 'INT', deviceId, eventId }, { op: 'SYNC', rdbase: cpu });
  }

  private setupBaser(n: number): void {
    const offset = GITS.BASER + 8 * n;
    const current = decodeBaser(this.mmio.read64(offset));
    if (current.type === BASER_TYPE.none) return;
    const ids =
      current.type === BASER_TYPE.devices
        ? this.typer.deviceIdBits
        : current.type === BASER_TYPE.collections
          ? this.typer.collectionIdBits
          : 0;
    const esz = current.entrySize;
    const perPage = TABLE_PAGE / esz;
    // Linux: two levels for the device table when a flat table would need more than two pages.
    const indirect = current.type === BASER_TYPE.devices && esz * 2 ** ids > 2 * TABLE_PAGE;
    const entries = indirect ? Math.ceil(2 ** ids / perPage) : 2 ** ids;
    const bytes = indirect ? entries * ITS_ENTRY_BYTES : entries * esz;
    // Linux gives the collection table one page (enough for every CPU); the device table what it needs.
    const pages =
      current.type === BASER_TYPE.collections
        ? 1
        : Math.min(MAX_BASER_PAGES, Math.max(1, Math.ceil(bytes / TABLE_PAGE)));
    const table = this.memory.allocBytes(pages * TABLE_PAGE, TABLE_PAGE);
    this.mmio.write64(
      offset,
      encodeBaser({
        valid: true,
        indirect,
        address: table,
        pageSize: TABLE_PAGE,
        pages,
        type: current.type,
        entrySize: esz,
      }),
    );
    const written = decodeBaser(this.mmio.read64(offset));
    if (written.indirect !== indirect)
      throw new IommufdError(
        'ENODEV',
        `${this.name}: GITS_BASER${n} does not take Indirect = ${Number(indirect)}`,
      );
    if (current.type === BASER_TYPE.devices) this.deviceTable = { base: table, indirect, perPage };
  }

  /** With a two-level device table, gives the DeviceID's level-1 entry a level-2 page (its_alloc_table_entry). */
  private ensureDeviceTableEntry(deviceId: number): void {
    const { base, indirect, perPage } = this.deviceTable;
    if (!indirect) return;
    const index = Math.floor(deviceId / perPage);
    if (this.l2Pages.has(index)) return;
    const page = this.memory.allocBytes(TABLE_PAGE, TABLE_PAGE);
    this.bus.write(base + BigInt(index * ITS_ENTRY_BYTES), 8, page | (1n << 63n), this.who);
    this.l2Pages.set(index, page);
  }
}
