import { type ITracer, MemoryBus, RegisterFile, Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { CommandBuffer, type CommandBufferInit, type CommandTargets } from './command-buffer.js';
import {
  buildCompletePpr,
  buildCompletionWait,
  buildInvalidateDevtabEntry,
  buildInvalidateInterruptTable,
  buildInvalidateIommuAll,
  buildInvalidateIommuPages,
  buildInvalidateIotlbPages,
  WHOLE_ADDRESS_SPACE,
} from './command-encoders.js';
import { type AmdCommand, type CompletionWaitCommand, encodeCommand } from './commands.js';
import { type AmdEvent, HARDWARE_ERROR_TYPE } from './events.js';
import { AmdOptionsSchema, featuresFromOptions } from './options.js';
import {
  AMD_MMIO_SIZE,
  amdRegisterTable,
  CTRL_CMD_BUF_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_IOMMU_EN,
  REG,
  STATUS_CMD_BUF_RUN,
} from './regs.js';

const RAM = 0x10_0000;
const RAM_END = 0x20_0000;
const RING = 0x10_0000;
const STORE = 0x18_0000;
const MMIO = 0xfed8_0000;
/** A device window that records the writes it gets, with their requester ID. */
const PROBE = 0xfee0_0000;
const UNMAPPED = 0x4000_0000;
const REQUESTER_ID = 0x0002;
const ON = CTRL_IOMMU_EN | CTRL_CMD_BUF_EN;

const dte = buildInvalidateDevtabEntry;
const wait = (
  flags: Partial<Pick<CompletionWaitCommand, 'store' | 'interrupt' | 'flush'>>,
  storeAddress = 0,
  storeDataLo = 0,
  storeDataHi = 0,
): CompletionWaitCommand => ({
  op: 'completion-wait',
  store: flags.store ?? false,
  interrupt: flags.interrupt ?? false,
  flush: flags.flush ?? false,
  storeAddress,
  storeDataLo,
  storeDataHi,
});
/** Opcode 0: no such command. */
const ZEROS = new Uint32Array(4);

type Entry = AmdCommand | Uint32Array;

interface RigOptions {
  /** EFR.PreFSup, which the default options (and AmdFeatures) lack. */
  readonly prefetch?: boolean;
  readonly base?: number;
  /** ComLen: log2 of the entry count. */
  readonly comLen?: number;
  readonly forward?: CommandBufferInit['forward'];
  readonly tracer?: ITracer;
  /** Called with each event after it was recorded. */
  readonly onEvent?: (event: AmdEvent) => void;
}

function rig(options: RigOptions = {}) {
  const features = featuresFromOptions(AmdOptionsSchema.parse({}));
  const regs = new RegisterFile(AMD_MMIO_SIZE, amdRegisterTable(features));
  const bus = new MemoryBus();
  bus.addRam('ram', RAM, RAM_END - RAM);
  bus.addMmio('iommu', MMIO, AMD_MMIO_SIZE, regs);
  const probed: [number, number, number | undefined][] = [];
  bus.addMmio('probe', PROBE, 0x1000, {
    read: () => 0,
    write: (offset, _size, value, deviceId) => probed.push([offset, value, deviceId]),
  });
  const cpu = bus.counter('cpu');
  const calls: unknown[][] = [];
  const targets: CommandTargets = {
    invalidateDevtabEntry: (...args) => calls.push(['dte', ...args]),
    invalidateIommuPages: (...args) => calls.push(['pages', ...args]),
    invalidateIotlbPages: (...args) => calls.push(['iotlb', ...args]),
    invalidateInterruptTable: (...args) => calls.push(['irt', ...args]),
    prefetchIommuPages: (...args) => calls.push(['prefetch', ...args]),
    completePprRequest: (...args) => calls.push(['ppr', ...args]),
    invalidateAll: () => calls.push(['all']),
  };
  const events: AmdEvent[] = [];
  const interrupts: number[] = [];
  const tracer = options.tracer ?? new Tracer();
  if (tracer instanceof Tracer) tracer.startRecording();
  const buffer = new CommandBuffer({
    regs,
    bus,
    counter: bus.counter('iommu0'),
    features: { ...features, prefetch: options.prefetch ?? false },
    requesterId: REQUESTER_ID,
    targets,
    logEvent: (event) => {
      events.push(event);
      options.onEvent?.(event);
    },
    // What the store had left in memory when the interrupt came: S is done before I. (The unit wires
    // UnitInterrupts.signal(STATUS_COM_WAIT_INT) here.)
    completionInterrupt: () => interrupts.push(word(STORE)),
    ...(options.forward ? { forward: options.forward } : {}),
    tracer,
    instance: 'iommu0',
  });
  // The unit's Control hook, as the lead wires it.
  regs.onWrite(REG.CONTROL, (value, old) => buffer.controlChanged(value, old));

  /** A driver's MMIO write. */
  const mmio = (offset: number, value: number | bigint, size: 4 | 8 = 4) =>
    bus.write(MMIO + offset, size, value, cpu);
  const reg = (offset: number) => regs.read(offset, 4);
  const word = (address: number) => {
    const out = new Uint32Array(1);
    bus.readWords(address, out, 1, bus.counter('probe'));
    return out[0]!;
  };
  const writeEntry = (address: number, entry: Entry) => {
    const words = new Uint32Array(4);
    if (entry instanceof Uint32Array) words.set(entry);
    else encodeCommand(entry, words, 0);
    bus.writeWords(address, words, 4, cpu);
  };
  const base = options.base ?? RING;
  const comLen = options.comLen ?? 8;
  const bytes = 16 * 2 ** comLen;
  // Linux iommu_enable_command_buffer: base and length in one 8-byte write.
  mmio(REG.CMD_BUF_BASE, BigInt(base) | (BigInt(comLen) << 56n), 8);

  /** The driver's side: commands written at CmdTail, then CmdTail moved once. */
  const put = (entries: readonly Entry[], publish = true) => {
    let tail = reg(REG.CMD_TAIL);
    for (const entry of entries) {
      writeEntry(base + tail, entry);
      tail = (tail + 16) % bytes;
    }
    if (publish) mmio(REG.CMD_TAIL, tail);
  };
  const control = (value: number) => mmio(REG.CONTROL, value);
  const head = () => reg(REG.CMD_HEAD);
  const running = () => (reg(REG.STATUS) & STATUS_CMD_BUF_RUN) !== 0;
  return {
    regs,
    bus,
    buffer,
    calls,
    events,
    interrupts,
    probed,
    tracer,
    mmio,
    reg,
    word,
    writeEntry,
    put,
    control,
    head,
    running,
  };
}

type Rig = ReturnType<typeof rig>;
/** Toggles CmdBufEn off and on, as software restarts a stopped buffer. */
const restart = (r: Rig) => {
  r.control(CTRL_IOMMU_EN);
  r.control(ON);
};
const traced = (r: Rig) => (r.tracer as Tracer).records.map((t) => `${t.name}: ${t.message}`);

describe('CommandBuffer: performing commands (§2.4)', () => {
  it('performs the commands from CmdHead to CmdTail in order, with their decoded arguments', () => {
    const r = rig();
    r.control(ON);
    r.put([
      dte(0x0010),
      buildInvalidateIommuPages(0x4_0000, 0x2000, 5, 0x33, false),
      buildInvalidateIommuPages(0x7000, 0x1000, 6, 0x33, true),
      buildInvalidateIotlbPages(0x0018, 32, 0x20_0000, 0x20_0000, 0x44, true),
      buildInvalidateIotlbPages(0x0019, 4, 0, WHOLE_ADDRESS_SPACE, 0, false),
      buildInvalidateInterruptTable(0x0020),
      buildCompletePpr(0x0018, 0x44, 0xf, 0x105, true),
      buildCompletePpr(0x0019, 0, 1, 0x3, false),
      buildInvalidateIommuAll(),
    ]);
    expect(r.calls).toEqual([
      ['dte', 0x0010],
      ['pages', 5, undefined, true, 0x4_0000, 0x2000],
      ['pages', 6, 0x33, true, 0x7000, 0x1000],
      ['iotlb', 0x0018, 0x44, 0x20_0000, 0x20_0000, 0x0018, 32],
      ['iotlb', 0x0019, undefined, 0, 2 ** 64, 0x0019, 4],
      ['irt', 0x0020],
      ['ppr', 0x0018, 0x44, 0x105, 0xf],
      ['ppr', 0x0019, undefined, 0x3, 1],
      ['all'],
    ]);
    expect([r.head(), r.reg(REG.CMD_TAIL), r.running(), r.events]).toEqual([0x90, 0x90, true, []]);
    expect(r.buffer.performed).toMatchObject({
      'invalidate-devtab-entry': 1,
      'invalidate-iommu-pages': 2,
      'invalidate-iotlb-pages': 2,
      'complete-ppr-request': 2,
      'invalidate-iommu-all': 1,
    });
  });

  it('PREFETCH_IOMMU_PAGES, on a unit with EFR.PreFSup', () => {
    const r = rig({ prefetch: true });
    r.control(ON);
    const prefetch = (gn: boolean): AmdCommand => ({
      op: 'prefetch-iommu-pages',
      deviceId: 0x18,
      pfCount: 4,
      pasid: gn ? 7 : 0,
      s: true,
      gn,
      invalidate: gn,
      address: 0x4_0000,
    });
    r.put([prefetch(true), prefetch(false)]);
    expect(r.calls).toEqual([
      ['prefetch', 0x18, 7, 0x4_0000, 0x2000, true, 4],
      ['prefetch', 0x18, undefined, 0x4_0000, 0x2000, false, 4],
    ]);
    expect(traced(r)[0]).toBe(
      'cmdbuf.command: 0x100000: PREFETCH_IOMMU_PAGES device 0x18 pasid 0x7 0x40000 +0x2000 count 4 inval',
    );
  });

  it('wraps CmdHead to 0 at the end of a 256-entry ring, never to 256 (QEMU issue #3338)', () => {
    const r = rig();
    r.control(ON);
    r.put(Array.from({ length: 255 }, (_, i) => dte(i)));
    expect(r.head()).toBe(0xff0);
    r.put([dte(255)]);
    expect([r.head(), r.reg(REG.CMD_TAIL)]).toEqual([0, 0]);
    r.put([dte(256), dte(257), dte(258)]);
    expect([r.head(), r.calls.length, r.calls.at(-1)]).toEqual([0x30, 259, ['dte', 258]]);
  });

  it('ComLen 9 (Linux MMIO_CMD_SIZE_512): an 8 KiB ring of 512 commands', () => {
    const r = rig({ comLen: 9 });
    r.control(ON);
    r.put(Array.from({ length: 300 }, (_, i) => dte(i)));
    expect(r.head()).toBe(300 * 16);
    r.put(Array.from({ length: 215 }, (_, i) => dte(i)));
    expect([r.head(), r.calls.length, r.events]).toEqual([0x30, 515, []]);
  });
});

describe('CommandBuffer: enabling (Control.IommuEn, CmdBufEn; Status.CmdBufRun)', () => {
  it('nothing runs until IommuEn and CmdBufEn are both set; then what is pending runs', () => {
    const r = rig();
    r.put([dte(1), dte(2)]);
    expect([r.head(), r.running(), r.calls]).toEqual([0, false, []]);
    r.control(CTRL_CMD_BUF_EN);
    expect([r.head(), r.running(), r.calls]).toEqual([0, false, []]);
    r.control(ON);
    expect([r.head(), r.running(), r.calls]).toEqual([
      0x20,
      true,
      [
        ['dte', 1],
        ['dte', 2],
      ],
    ]);
  });

  it('disabling clears CmdBufRun and keeps the pointers; a tail written meanwhile runs once enabled', () => {
    const r = rig();
    r.control(ON);
    r.put([dte(1), dte(2)]);
    r.control(CTRL_IOMMU_EN);
    expect([r.running(), r.head()]).toEqual([false, 0x20]);
    r.put([dte(3)]);
    expect([r.head(), r.calls.length]).toEqual([0x20, 2]);
    r.control(ON);
    expect([r.running(), r.head(), r.calls.at(-1)]).toEqual([true, 0x30, ['dte', 3]]);
  });

  it('clearing IommuEn stops the buffer too', () => {
    const r = rig();
    r.control(ON);
    r.control(CTRL_CMD_BUF_EN);
    r.put([dte(1)]);
    expect([r.running(), r.calls]).toEqual([false, []]);
  });
});

describe('CommandBuffer: COMPLETION_WAIT (§2.4.1)', () => {
  it('S stores the 64-bit data, low word first', () => {
    const r = rig();
    r.control(ON);
    r.put([dte(1), buildCompletionWait(STORE + 8, 0x89ab_cdef, 0x0123_4567)]);
    expect([r.word(STORE + 8), r.word(STORE + 12)]).toEqual([0x89ab_cdef, 0x0123_4567]);
    expect([r.head(), r.buffer.performed['completion-wait']]).toEqual([0x20, 1]);
  });

  it('a store outside RAM is two 32-bit writes carrying the unit requester ID', () => {
    const r = rig();
    r.control(ON);
    r.put([buildCompletionWait(PROBE + 0x40, 7, 9)]);
    expect(r.probed).toEqual([
      [0x40, 7, REQUESTER_ID],
      [0x44, 9, REQUESTER_ID],
    ]);
  });

  it('I signals the completion interrupt after the store, every time', () => {
    const r = rig();
    r.control(ON);
    r.put([wait({ store: true, interrupt: true }, STORE, 0x5a), dte(1)]);
    expect([r.interrupts, r.head()]).toEqual([[0x5a], 0x20]);
    r.put([wait({ interrupt: true }), wait({ store: true }, STORE, 0x5b)]);
    expect([r.interrupts, r.buffer.completionInterrupts]).toEqual([[0x5a, 0x5a], 2]);
  });

  it('F alone waits for nothing: the buffer goes on', () => {
    const r = rig();
    r.control(ON);
    r.put([wait({ flush: true }), wait({ flush: true, store: true }, STORE, 3), dte(1)]);
    expect([r.head(), r.word(STORE), r.interrupts, r.calls]).toEqual([0x30, 3, [], [['dte', 1]]]);
  });

  it('a store the bus aborts: COMMAND_HARDWARE_ERROR at the store address, no interrupt, stopped on it', () => {
    const r = rig();
    r.control(ON);
    r.put([dte(1), wait({ store: true, interrupt: true }, UNMAPPED, 1), dte(2)]);
    expect(r.events).toEqual([
      { kind: 'command-hardware-error', type: HARDWARE_ERROR_TYPE.MASTER_ABORT, address: UNMAPPED },
    ]);
    expect([r.head(), r.running(), r.interrupts, r.calls]).toEqual([0x10, false, [], [['dte', 1]]]);
    expect(traced(r).at(-1)).toBe(
      'cmdbuf.error: COMMAND_HARDWARE_ERROR at 0x40000000: completion store aborted',
    );
    expect([r.buffer.hardwareErrors, r.buffer.performed['completion-wait']]).toEqual([1, 0]);
  });
});

describe('CommandBuffer: illegal commands (ILLEGAL_COMMAND_ERROR)', () => {
  it('logs the command address, leaves CmdHead on it, clears CmdBufRun and runs nothing more', () => {
    const r = rig();
    r.control(ON);
    r.put([dte(1), ZEROS, dte(2)]);
    expect(r.events).toEqual([{ kind: 'illegal-command-error', address: RING + 0x10 }]);
    expect([r.head(), r.running(), r.calls, r.buffer.illegal]).toEqual([0x10, false, [['dte', 1]], 1]);
    // Tail writes and unrelated Control writes do not restart it.
    r.put([dte(3)]);
    r.control(ON | CTRL_EVENT_LOG_EN);
    expect([r.head(), r.running(), r.calls.length, r.events.length]).toEqual([0x10, false, 1, 1]);
  });

  it('restarts when CmdBufEn is toggled: a fixed command runs, an unchanged one stops it again', () => {
    const r = rig();
    r.control(ON);
    r.put([ZEROS, dte(2)]);
    restart(r);
    expect([r.events.length, r.head(), r.running(), r.calls]).toEqual([2, 0, false, []]);
    r.writeEntry(RING, dte(9));
    restart(r);
    expect([r.events.length, r.head(), r.running(), r.calls]).toEqual([
      2,
      0x20,
      true,
      [
        ['dte', 9],
        ['dte', 2],
      ],
    ]);
  });

  it('software may move CmdHead past the bad command while stopped', () => {
    const r = rig();
    r.control(ON);
    r.put([ZEROS, dte(2)]);
    r.mmio(REG.CMD_HEAD, 0x10);
    expect(r.head()).toBe(0x10);
    restart(r);
    expect([r.calls, r.head(), r.events.length]).toEqual([[['dte', 2]], 0x20, 1]);
  });

  it('an event handler that restarts the buffer at once (Linux 2.6.32 did) is honoured in the same trigger', () => {
    const r = rig({
      onEvent: () => {
        r.writeEntry(RING + 0x10, dte(9));
        restart(r);
      },
    });
    r.control(ON);
    r.put([dte(1), ZEROS, dte(2)]);
    expect([r.calls, r.events.length, r.running(), r.head()]).toEqual([
      [
        ['dte', 1],
        ['dte', 9],
        ['dte', 2],
      ],
      1,
      true,
      0x30,
    ]);
  });

  it.each([
    ['a reserved bit (COMPLETION_WAIT bit 52)', Uint32Array.of(0, (1 << 20) | (1 << 28), 0, 0)],
    ['PREFETCH_IOMMU_PAGES without EFR.PreFSup', Uint32Array.of(0, 0x6 << 28, 0, 0)],
    ['INSERT_GUEST_EVENT (opcode 9), a hardware-vIOMMU command', Uint32Array.of(0, 0x9 << 28, 0, 0)],
  ])('%s', (_, words) => {
    const r = rig();
    r.control(ON);
    r.put([words]);
    expect([r.events, r.head(), r.running()]).toEqual([
      [{ kind: 'illegal-command-error', address: RING }],
      0,
      false,
    ]);
  });
});

describe('CommandBuffer: fetch errors (COMMAND_HARDWARE_ERROR)', () => {
  it('a fetch the bus aborts logs the command address and stops with CmdHead on it', () => {
    const r = rig({ base: UNMAPPED });
    r.control(ON);
    r.mmio(REG.CMD_TAIL, 0x10);
    expect(r.events).toEqual([
      { kind: 'command-hardware-error', type: HARDWARE_ERROR_TYPE.MASTER_ABORT, address: UNMAPPED },
    ]);
    expect([r.head(), r.running(), r.buffer.hardwareErrors]).toEqual([0, false, 1]);
    expect(traced(r)).toEqual(['cmdbuf.error: COMMAND_HARDWARE_ERROR at 0x40000000: command fetch aborted']);
  });

  it('a ring whose second page is past the end of RAM stops where the fetch fails', () => {
    const r = rig({ base: RAM_END - 0x1000, comLen: 9 });
    r.control(ON);
    r.put(Array.from({ length: 257 }, (_, i) => dte(i)));
    expect(r.events).toEqual([
      { kind: 'command-hardware-error', type: HARDWARE_ERROR_TYPE.MASTER_ABORT, address: RAM_END },
    ]);
    expect([r.head(), r.calls.length]).toEqual([0x1000, 256]);
  });
});

describe('CommandBuffer: a vIOMMU forward hook', () => {
  it('is called after each command but COMPLETION_WAIT; a refusal stops the buffer as an illegal command', () => {
    const forwarded: [string, number][] = [];
    const r = rig({
      forward: (command, address) => {
        forwarded.push([command.op, address]);
        return command.op === 'invalidate-interrupt-table' ? 'no such device' : undefined;
      },
    });
    r.control(ON);
    r.put([buildCompletionWait(STORE, 1), dte(1), buildInvalidateInterruptTable(0x20), dte(2)]);
    expect(forwarded).toEqual([
      ['invalidate-devtab-entry', RING + 0x10],
      ['invalidate-interrupt-table', RING + 0x20],
    ]);
    // The unit performed the refused command on its own caches first.
    expect(r.calls).toEqual([
      ['dte', 1],
      ['irt', 0x20],
    ]);
    expect([r.events, r.head(), r.running()]).toEqual([
      [{ kind: 'illegal-command-error', address: RING + 0x20 }],
      0x20,
      false,
    ]);
    expect([r.buffer.illegal, r.buffer.performed['invalidate-interrupt-table']]).toEqual([1, 0]);
    expect(traced(r).at(-1)).toBe(
      'cmdbuf.error: ILLEGAL_COMMAND_ERROR at 0x100020: refused by the host: no such device',
    );
  });
});

describe('CommandBuffer: register writes (CmdBufBase, CmdHead, CmdTail)', () => {
  it('a tail beyond the ring is ignored (VirtualBox): nothing runs', () => {
    const r = rig();
    r.control(ON);
    r.writeEntry(RING, dte(1));
    r.mmio(REG.CMD_TAIL, 0x1000);
    expect([r.reg(REG.CMD_TAIL), r.head(), r.calls, r.buffer.ignoredWrites]).toEqual([0, 0, [], 1]);
    r.mmio(REG.CMD_TAIL, 0xff0);
    expect([r.reg(REG.CMD_TAIL), r.calls[0]]).toEqual([0xff0, ['dte', 1]]);
  });

  it('with ComLen 15 (32768 commands, 512 KiB) every tail CmdTail can hold is within the ring', () => {
    const r = rig({ comLen: 15 });
    r.control(ON);
    r.mmio(REG.CMD_TAIL, 0x7_fff0);
    // Accepted: the empty first slot is fetched (opcode 0, illegal).
    expect([r.reg(REG.CMD_TAIL), r.events]).toEqual([
      0x7_fff0,
      [{ kind: 'illegal-command-error', address: RING }],
    ]);
  });

  it('CmdHead writes are ignored while running and beyond the ring, taken while stopped', () => {
    const r = rig();
    r.control(ON);
    r.put([dte(1)]);
    r.mmio(REG.CMD_HEAD, 0);
    expect(r.head()).toBe(0x10);
    r.control(CTRL_IOMMU_EN);
    r.mmio(REG.CMD_HEAD, 0x1000);
    expect(r.head()).toBe(0x10);
    r.mmio(REG.CMD_HEAD, 0x40);
    expect([r.head(), r.buffer.ignoredWrites]).toEqual([0x40, 2]);
  });

  it('writing CmdBufBase clears CmdHead and CmdTail; ignored while running', () => {
    const r = rig();
    r.control(ON);
    r.put([dte(1), dte(2)]);
    r.mmio(REG.CMD_BUF_BASE, BigInt(STORE) | (8n << 56n), 8);
    expect([r.reg(REG.CMD_BUF_BASE), r.head(), r.buffer.ignoredWrites]).toEqual([RING, 0x20, 2]);
    r.control(CTRL_IOMMU_EN);
    r.mmio(REG.CMD_BUF_BASE, STORE);
    expect([r.reg(REG.CMD_BUF_BASE), r.head(), r.reg(REG.CMD_TAIL)]).toEqual([STORE, 0, 0]);
    // The ring is now at STORE.
    r.writeEntry(STORE, dte(7));
    r.mmio(REG.CMD_TAIL, 0x10);
    r.control(ON);
    expect(r.calls.at(-1)).toEqual(['dte', 7]);
  });

  it('a CmdBufBase high half with a reserved ComLen (below 8) is ignored', () => {
    const r = rig();
    r.mmio(REG.CMD_BUF_BASE + 4, 7 << 24);
    expect([r.reg(REG.CMD_BUF_BASE + 4), r.buffer.ignoredWrites]).toEqual([8 << 24, 1]);
  });
});

describe('CommandBuffer: bounded work', () => {
  /** Slot i: a completion store to CmdTail moving it two slots past i, so the ring never empties. */
  const feeding = (lastTail?: number) =>
    Array.from({ length: 256 }, (_, i) =>
      buildCompletionWait(
        MMIO + REG.CMD_TAIL,
        i === 255 && lastTail !== undefined ? lastTail : ((i + 2) * 16) % 4096,
      ),
    );

  it('a ring that feeds itself stops after one ring of commands; the next trigger runs the next', () => {
    const r = rig();
    r.control(ON);
    r.put(feeding(), false);
    r.mmio(REG.CMD_TAIL, 0x10);
    expect([
      r.buffer.performed['completion-wait'],
      r.buffer.boundReached,
      r.head(),
      r.reg(REG.CMD_TAIL),
    ]).toEqual([256, 1, 0, 0x10]);
    expect(r.buffer.process()).toBe(256);
  });

  it('one that empties itself after exactly one ring ends empty, not at the bound', () => {
    const r = rig();
    r.control(ON);
    r.put(feeding(0), false);
    r.mmio(REG.CMD_TAIL, 0x10);
    expect([
      r.buffer.performed['completion-wait'],
      r.buffer.boundReached,
      r.head(),
      r.reg(REG.CMD_TAIL),
    ]).toEqual([256, 0, 0, 0]);
  });

  it('a completion store that clears CmdBufEn stops the buffer after that command', () => {
    const r = rig();
    r.control(ON);
    r.put([dte(1), buildCompletionWait(MMIO + REG.CONTROL, CTRL_IOMMU_EN), dte(2)]);
    expect([r.running(), r.head(), r.calls]).toEqual([false, 0x20, [['dte', 1]]]);
  });
});

describe('CommandBuffer: traces and counters', () => {
  it('traces one line per command, and each error and ignored write', () => {
    const r = rig();
    r.control(ON);
    r.put([
      dte(0x10),
      buildInvalidateIommuPages(0x7000, 0x1000, 6, 0x33, true),
      buildInvalidateIotlbPages(0x18, 32, 0x20_0000, 0x20_0000, 0, false),
      buildCompletePpr(0x18, 0x44, 0xf, 0x105, true),
      buildInvalidateInterruptTable(0x20),
      buildInvalidateIommuAll(),
      wait({ store: true, interrupt: true, flush: true }, STORE, 1, 2),
      ZEROS,
    ]);
    r.mmio(REG.CMD_TAIL, 0x1000);
    expect(traced(r)).toEqual([
      'cmdbuf.command: 0x100000: INVALIDATE_DEVTAB_ENTRY device 0x10',
      'cmdbuf.command: 0x100010: INVALIDATE_IOMMU_PAGES domain 0x6 pasid 0x33 0x7000 +0x1000 pde',
      'cmdbuf.command: 0x100020: INVALIDATE_IOTLB_PAGES device 0x18 0x200000 +0x200000 queue 0x18 maxpend 32',
      'cmdbuf.command: 0x100030: COMPLETE_PPR_REQUEST device 0x18 pasid 0x44 tag 0x105 status 15',
      'cmdbuf.command: 0x100040: INVALIDATE_INTERRUPT_TABLE device 0x20',
      'cmdbuf.command: 0x100050: INVALIDATE_IOMMU_ALL',
      'cmdbuf.command: 0x100060: COMPLETION_WAIT store 0x200000001 to 0x180000 interrupt flush',
      'cmdbuf.error: ILLEGAL_COMMAND_ERROR at 0x100070: opcode 0x0 is not defined',
      'cmdbuf.ignored: CmdTail beyond the ring: write of 0x1000 ignored',
    ]);
  });

  it('builds no trace line while the tracer is disabled', () => {
    const lines: string[] = [];
    const r = rig({ tracer: { enabled: false, trace: (_l, _s, _n, message) => lines.push(message) } });
    r.control(ON);
    r.put([dte(1), wait({ store: true }, UNMAPPED), ZEROS]);
    r.mmio(REG.CMD_TAIL, 0x1000);
    expect([lines, r.calls.length, r.events.length, r.buffer.ignoredWrites]).toEqual([[], 1, 1, 1]);
  });

  it('reports its counters as stats', () => {
    const r = rig();
    r.control(ON);
    r.put([dte(1), wait({ interrupt: true }), buildInvalidateIommuAll(), ZEROS]);
    expect(r.buffer.stats()).toEqual({
      cmdCompletionWait: 1,
      cmdInvalidateDevtabEntry: 1,
      cmdInvalidateIommuPages: 0,
      cmdInvalidateIotlbPages: 0,
      cmdInvalidateInterruptTable: 0,
      cmdPrefetchIommuPages: 0,
      cmdCompletePprRequest: 0,
      cmdInvalidateIommuAll: 1,
      cmdIllegal: 1,
      cmdHardwareErrors: 0,
      cmdCompletionInterrupts: 1,
      cmdIgnoredWrites: 0,
      cmdBoundReached: 0,
    });
  });
});
