/**
 * One AMD IOMMU on a bus with RAM, programmed through its registers as a driver would (device table, event
 * log and command buffer set up, IommuEn on), with helpers to write DTEs, GCR3 entries and page tables
 * (`@iommukit/pagetables`) and to read back the event log. No driver: tests say exactly what is in memory.
 */
import {
  FrameAllocator,
  hpa,
  InterruptController,
  MemoryBus,
  NO_PASID,
  PERM_READ,
  Tracer,
  type TranslationRequest,
} from '@iommukit/core';
import { amdV1Format, IoPageTable, type MapProt, x86Format } from '@iommukit/pagetables';
import { type AmdHardwareHooks, AmdIommuHardware } from '../src/hw/amd-iommu.js';
import { type AmdCommand, COMMAND_BYTES, COMMAND_WORDS, encodeCommand } from '../src/hw/commands.js';
import { type DeviceTableEntry, DTE_BYTES, encodeDte } from '../src/hw/dte.js';
import { type AmdEvent, decodeEvent, EVENT_BYTES, EVENT_WORDS, type UnknownEvent } from '../src/hw/events.js';
import { encodeGcr3Entry, gcr3EntryAddress, gcr3Levels } from '../src/hw/gcr3.js';
import { type AmdOptions, AmdOptionsSchema } from '../src/hw/options.js';
import { CTRL_CMD_BUF_EN, CTRL_EVENT_LOG_EN, CTRL_GT_EN, CTRL_IOMMU_EN, REG } from '../src/hw/regs.js';

export const UNIT_BASE = 0xfeb8_0000;
export const RAM_BASE = 0x1_0000_0000;
const RAM_SIZE = 64 * 1024 * 1024;
/** The device table: 2 MiB, every DeviceID (Size 0x1ff). */
export const DEV_TABLE = RAM_BASE;
const DEV_TABLE_SIZE_FIELD = 0x1ff;
/** 512-entry event log and command buffer (length field 9), 8 KiB each. */
export const EVENT_LOG = RAM_BASE + 0x20_0000;
export const COMMAND_BUFFER = RAM_BASE + 0x20_2000;
const LOG_LENGTH = 9;
export const RW: MapProt = { read: true, write: true };

export function request(
  deviceId: number,
  iova: number,
  access = PERM_READ,
  pasid = NO_PASID,
): TranslationRequest {
  return { streamId: deviceId, pasid, iovaPfn: Math.floor(iova / 4096), offset: iova % 4096, access };
}

export function unitRig(options: Partial<AmdOptions> = {}, hooks: AmdHardwareHooks = {}) {
  const bus = new MemoryBus();
  bus.addRam('ram', RAM_BASE, RAM_SIZE);
  const memory = new FrameAllocator([{ base: RAM_BASE + 0x40_0000, size: RAM_SIZE - 0x40_0000 }], (b, n) =>
    bus.discardRam(b, n),
  );
  const tracer = new Tracer();
  const interrupts = new InterruptController();
  const unit = new AmdIommuHardware(
    {
      instance: 'iommu0',
      base: hpa(UNIT_BASE),
      options: AmdOptionsSchema.parse(options),
      bus,
      tracer,
      irq: (name) => interrupts.line(`iommu0.${name}`),
    },
    hooks,
  );
  const setup = bus.counter('test');
  const mmio32 = (offset: number, value: number) => bus.write(UNIT_BASE + offset, 4, value >>> 0, setup);
  const mmio64 = (offset: number, value: number) => {
    mmio32(offset, value % 2 ** 32);
    mmio32(offset + 4, Math.floor(value / 2 ** 32));
  };
  const read32 = (offset: number) => {
    const r = bus.read(UNIT_BASE + offset, 4, setup);
    if (!r.ok) throw new Error(`MMIO read at ${offset} aborted`);
    return Number(r.value);
  };
  const write = (address: number, words: Uint32Array) => {
    if (!bus.writeWords(address, words, words.length, setup)) throw new Error(`no RAM at ${address}`);
  };
  const ctx = { bus, memory, counter: bus.counter('pgtable') };
  let commandTail = 0;
  let eventHead = 0;
  const rig = {
    bus,
    unit,
    tracer,
    memory,
    mmio32,
    mmio64,
    read32,
    write,
    /** A zeroed page. */
    page: () => Number(memory.allocFrames(1)),
    /** Writes the DTE of `deviceId`. */
    dte(deviceId: number, fields: Partial<DeviceTableEntry>) {
      write(DEV_TABLE + deviceId * DTE_BYTES, encodeDte(fields));
    },
    /** A host (v1) table of `levels` (the DTE's Mode). */
    hostTable: (
      levels: 1 | 2 | 3 | 4 | 5 | 6 = 4,
      hostAccessDirty: 'none' | 'accessed' | 'accessed-dirty' = 'none',
    ) => new IoPageTable(amdV1Format({ levels, oas: 52, hostAccessDirty }), ctx),
    /** A guest (x86-64) table. */
    guestTable: (levels: 4 | 5 = 4) => new IoPageTable(x86Format({ levels, oas: 52 }), ctx),
    /** A GCR3 table of GLX `glx` at `root` holding `cr3` for `pasid` (making its lower levels). */
    gcr3(root: number, glx: number, pasid: number, cr3: number, valid = true) {
      let table = root;
      for (let level = gcr3Levels(glx) - 1; level > 0; level--) {
        const next = rig.page();
        write(gcr3EntryAddress(table, pasid, level), encodeGcr3Entry({ valid: true, pointer: next }));
        table = next;
      }
      write(gcr3EntryAddress(table, pasid, 0), encodeGcr3Entry({ valid, pointer: cr3 }));
    },
    /** Writes `commands` into the command buffer and moves CmdTail past them. */
    submit(...commands: AmdCommand[]) {
      const words = new Uint32Array(COMMAND_WORDS);
      for (const command of commands) {
        encodeCommand(command, words, 0);
        write(COMMAND_BUFFER + commandTail, words);
        commandTail = (commandTail + COMMAND_BYTES) % (2 ** LOG_LENGTH * COMMAND_BYTES);
      }
      mmio32(REG.CMD_TAIL, commandTail);
    },
    /** The events logged since the last call, decoded (EvtHead moved past them, as a driver does). */
    events(): (AmdEvent | UnknownEvent)[] {
      const tail = read32(REG.EVT_TAIL);
      const out: (AmdEvent | UnknownEvent)[] = [];
      const words = new Uint32Array(EVENT_WORDS);
      while (eventHead !== tail) {
        bus.readWords(EVENT_LOG + eventHead, words, EVENT_WORDS, setup);
        out.push(decodeEvent(words, 0));
        eventHead = (eventHead + EVENT_BYTES) % (2 ** LOG_LENGTH * EVENT_BYTES);
      }
      mmio32(REG.EVT_HEAD, eventHead);
      return out;
    },
    translate: (deviceId: number, iova: number, access = PERM_READ, pasid = NO_PASID) =>
      unit.translate(request(deviceId, iova, access, pasid)),
  };
  mmio64(REG.DEV_TBL_BASE, DEV_TABLE + DEV_TABLE_SIZE_FIELD);
  // Base 51:12 and length 59:56: the length is in the high word's bits 27:24.
  const ring = (offset: number, address: number) => {
    mmio32(offset, address % 2 ** 32);
    mmio32(offset + 4, Math.floor(address / 2 ** 32) | (LOG_LENGTH << 24));
  };
  ring(REG.EVT_LOG_BASE, EVENT_LOG);
  ring(REG.CMD_BUF_BASE, COMMAND_BUFFER);
  mmio32(REG.CONTROL, CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN | CTRL_GT_EN);
  return rig;
}

export type UnitRig = ReturnType<typeof unitRig>;
