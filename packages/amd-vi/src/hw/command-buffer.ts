/**
 * The command buffer as the unit processes it (AMD I/O Virtualization Technology (IOMMU) Specification,
 * publication 48882 rev 3.x: §2.4 "Commands"; §3.4 "IOMMU MMIO Registers": Command Buffer Base Address,
 * Command Buffer Head and Tail Pointers, Control.CmdBufEn/ComWaitIntEn, Status.CmdBufRun/ComWaitInt; §2.5
 * "Event Logging" for ILLEGAL_COMMAND_ERROR and COMMAND_HARDWARE_ERROR). Software writes 16-byte commands
 * into a ring and moves CmdTail; the unit fetches from CmdHead, performs each command (commands.ts decodes
 * and checks it; `CommandTargets` is what it does to the unit's caches and endpoints) and advances CmdHead.
 *
 * Geometry: base 51:12, ComLen 59:56 = log2 of the entry count, 8 to 15 (regs.ts); head and tail are byte
 * offsets in bits 18:4, head = tail means empty, and the head wraps to 0 at the end of the ring (a bare-metal
 * trace in QEMU issue #3338 shows 255 → 0 in a 256-entry ring, where QEMU showed 256). The reset ComLen, 0,
 * is reserved and no write can restore it; as in VirtualBox it is taken literally, a one-entry ring that can
 * never hold a command.
 *
 * Register writes (this class hooks CmdBufBase, CmdHead and CmdTail itself):
 * - CmdBufBase: clears CmdHead and CmdTail ("§2.4 Commands" as VirtualBox cites it; QEMU resets its copies;
 *   FreeBSD amd_cmd.c relies on it, never writing the pointers). Ignored while CmdBufRun, VirtualBox quoting
 *   the spec: "CmdBufRun must be 0b to modify the command buffer registers properly". A high half with
 *   ComLen below 8 is ignored (VirtualBox ignores the whole 64-bit write; a 32-bit low half is kept here,
 *   since an 8-byte write reaches the register file as two).
 * - CmdHead: the spec leaves a write while the buffer runs, or beyond its length, undefined (VirtualBox, its
 *   §3.3.13); both are ignored, as VirtualBox does. QEMU takes it and runs again. While stopped (after an
 *   error, or disabled) software may move the head, e.g. past a bad command.
 * - CmdTail: beyond the ring's length is undefined too and ignored (VirtualBox); QEMU masks it, Xen's
 *   emulated guest IOMMU disables itself. Otherwise the write triggers processing.
 * - Control (the unit calls `controlChanged`): CmdBufRun = IommuEn ∧ CmdBufEn, recomputed only when either
 *   bit changes (VirtualBox); becoming set processes what is pending. QEMU recomputes on every Control
 *   write, which would restart a stopped buffer on any unrelated write; the model follows VirtualBox, so
 *   only a CmdBufEn (or IommuEn) transition restarts. Disabling stops at once and keeps the pointers.
 *
 * Errors stop the buffer: CmdBufRun is cleared, then the event is logged (so whoever handles the event sees
 * the buffer stopped), and CmdHead is left on the command that failed, as the head names the next command
 * to fetch — the model's choice: VirtualBox moves the head to the tail before running its batch, QEMU logs
 * and goes on past every error. Software restarts by toggling CmdBufEn, after fixing the command or moving
 * CmdHead; an unchanged bad command stops the buffer again.
 * - An illegal command (decodeCommand's reason): ILLEGAL_COMMAND_ERROR with the command's address
 *   (VirtualBox clears CmdBufRun). Linux 2.6.32's handler reset the buffer (CmdBufEn off, head = tail = 0,
 *   on; "x86/amd-iommu: Reset command buffer on ILLEGAL_COMMAND_ERROR", 2009) and flushed everything;
 *   today's iommu_print_event only dumps the command, and the driver's completion waits time out.
 * - A fetch the bus aborts: COMMAND_HARDWARE_ERROR with the command's address (VirtualBox, clearing
 *   CmdBufRun; QEMU logs and goes on).
 * - A completion store the bus aborts: COMMAND_HARDWARE_ERROR with the store address, and the interrupt is
 *   not requested (VirtualBox; QEMU only traces it). Both hardware errors carry Type master abort: the only
 *   abort the model's bus signals is an access no region claims. VirtualBox reports every such failure as a
 *   data error, QEMU leaves Type 0.
 * - A host refusal (`forward`, a vIOMMU's trap after the unit performed the command on its own caches):
 *   exactly as an illegal command.
 *
 * COMPLETION_WAIT (§2.4.1): S stores the 64-bit data (two words, low first) with the unit's requester ID,
 * then I calls `completionInterrupt`, every time, which sets Status.ComWaitInt and sends the message if
 * Control.ComWaitIntEn (unit-interrupts.ts `signal`, which also decides whether a bit already set sends
 * again; VirtualBox and QEMU set the bit and interrupt each time). F needs nothing: every command completes
 * before the next is fetched, and endpoints take ATS invalidations and PRG responses synchronously — so
 * IOTLB_INV_TIMEOUT never occurs.
 * INVALIDATE_IOTLB_PAGES's Type (69:68) is not passed on: Linux writes 0 and no source found says what
 * the other values do (Xen names an EFR bit 54 InvIotlbTypeSup). VirtualBox also latches each hardware error
 * in the Hardware Event registers (with HESup); that belongs to whatever `logEvent` is wired to.
 *
 * Bounded work: one trigger (tail write, enabling) takes at most one ring's worth of steps, however the
 * commands move the tail meanwhile (a completion store may target CmdTail); the rest runs on the next
 * trigger. Triggers that arrive while commands run (a store reaching the unit's registers, an event handler
 * toggling CmdBufEn) return at once: the running loop re-reads CmdHead, CmdTail and CmdBufRun each step.
 */
import type { AccessCounter, ITracer, MemoryBus, RegisterFile } from '@iommukit/core';
import { toHex } from '@iommukit/core';
import {
  type AmdCommand,
  COMMAND_BYTES,
  COMMAND_WORDS,
  type CommandFeatures,
  type CompletionWaitCommand,
  decodeCommand,
  decodeInvalidationRange,
} from './commands.js';
import { type AmdEvent, HARDWARE_ERROR_TYPE } from './events.js';
import { CTRL_CMD_BUF_EN, CTRL_IOMMU_EN, LOG_HI_LEN, LOG_LEN_MIN, REG, STATUS_CMD_BUF_RUN } from './regs.js';

/**
 * What the unit's caches and endpoint ports do for each command. A PASID is `undefined` when the command's
 * GN bit is clear (host or nested translations; an ATS invalidation or PRG response without a PASID).
 * Ranges are decoded (decodeInvalidationRange): `size` is a power of two up to 2^64, `start` aligned to it.
 */
export interface CommandTargets {
  /** INVALIDATE_DEVTAB_ENTRY: the DTE cache's entry for the device. */
  invalidateDevtabEntry(deviceId: number): void;
  /** INVALIDATE_IOMMU_PAGES: the domain's translations in the range; `pde` also page-directory entries. */
  invalidateIommuPages(
    domainId: number,
    pasid: number | undefined,
    pde: boolean,
    start: number,
    size: number,
  ): void;
  /** INVALIDATE_IOTLB_PAGES: an ATS invalidation to the device (its invalidate queue `queueId`, depth `maxPend`). */
  invalidateIotlbPages(
    deviceId: number,
    pasid: number | undefined,
    start: number,
    size: number,
    queueId: number,
    maxPend: number,
  ): void;
  /** INVALIDATE_INTERRUPT_TABLE: the device's cached IRTEs. */
  invalidateInterruptTable(deviceId: number): void;
  /** PREFETCH_IOMMU_PAGES: load up to `count` translations from `start` (`invalidate` them first). */
  prefetchIommuPages(
    deviceId: number,
    pasid: number | undefined,
    start: number,
    size: number,
    invalidate: boolean,
    count: number,
  ): void;
  /** COMPLETE_PPR_REQUEST: the PRG response (`status`) for page request group `tag` to the device. */
  completePprRequest(deviceId: number, pasid: number | undefined, tag: number, status: number): void;
  /** INVALIDATE_IOMMU_ALL: every cache of the unit. */
  invalidateAll(): void;
}

export interface CommandBufferInit {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  /** Counts command fetches and completion stores. */
  readonly counter: AccessCounter;
  readonly features: CommandFeatures;
  /** The requester ID the unit's completion stores carry. */
  readonly requesterId: number;
  readonly targets: CommandTargets;
  /** Writes an event to the event log (ILLEGAL_COMMAND_ERROR, COMMAND_HARDWARE_ERROR). */
  readonly logEvent: (event: AmdEvent) => void;
  /**
   * A COMPLETION_WAIT with I finished: sets Status.ComWaitInt, with its interrupt if Control.ComWaitIntEn
   * (`() => interrupts.signal(STATUS_COM_WAIT_INT)`).
   */
  readonly completionInterrupt: () => void;
  /**
   * A vIOMMU's trap: called with each command the unit has performed (not COMPLETION_WAIT) and its address;
   * a returned reason stops the buffer there as an illegal command.
   */
  readonly forward?: (command: AmdCommand, address: number) => string | undefined;
  readonly tracer: ITracer;
  readonly instance: string;
}

type Op = AmdCommand['op'];

/** `stats()` names of the per-command counters. */
const STAT_NAMES: Readonly<Record<Op, string>> = {
  'completion-wait': 'cmdCompletionWait',
  'invalidate-devtab-entry': 'cmdInvalidateDevtabEntry',
  'invalidate-iommu-pages': 'cmdInvalidateIommuPages',
  'invalidate-iotlb-pages': 'cmdInvalidateIotlbPages',
  'invalidate-interrupt-table': 'cmdInvalidateInterruptTable',
  'prefetch-iommu-pages': 'cmdPrefetchIommuPages',
  'complete-ppr-request': 'cmdCompletePprRequest',
  'invalidate-iommu-all': 'cmdInvalidateIommuAll',
};

const CMD_BUF_BASE_HI = REG.CMD_BUF_BASE + 4;
/** Base Address bits 31:12 and, in the high half, 51:32. */
const BASE_LO = 0xffff_f000;
const BASE_HI = 0x000f_ffff;
const RUNNING = CTRL_IOMMU_EN | CTRL_CMD_BUF_EN;

export class CommandBuffer {
  /** Commands performed, by kind. */
  readonly performed = Object.fromEntries(Object.keys(STAT_NAMES).map((op) => [op, 0])) as Record<Op, number>;
  /** ILLEGAL_COMMAND_ERROR events, host refusals included. */
  illegal = 0;
  /** COMMAND_HARDWARE_ERROR events: fetches and completion stores the bus aborted. */
  hardwareErrors = 0;
  completionInterrupts = 0;
  /** CmdBufBase, CmdHead or CmdTail writes ignored (while running, beyond the ring, a reserved ComLen). */
  ignoredWrites = 0;
  /** Triggers that stopped at the bound with commands left. */
  boundReached = 0;
  private readonly words = new Uint32Array(COMMAND_WORDS);
  private readonly storeWords = new Uint32Array(2);
  private busy = false;

  constructor(private readonly init: CommandBufferInit) {
    const { regs } = init;
    regs.onWrite(REG.CMD_BUF_BASE, (value, old) => this.baseWritten(REG.CMD_BUF_BASE, value, old));
    regs.onWrite(CMD_BUF_BASE_HI, (value, old) => this.baseWritten(CMD_BUF_BASE_HI, value, old));
    regs.onWrite(REG.CMD_HEAD, (value, old) => {
      if (this.running) this.ignore(REG.CMD_HEAD, value, old, 'CmdHead while CmdBufRun');
      else if (value >= this.bytes()) this.ignore(REG.CMD_HEAD, value, old, 'CmdHead beyond the ring');
    });
    regs.onWrite(REG.CMD_TAIL, (value, old) => {
      if (value >= this.bytes()) this.ignore(REG.CMD_TAIL, value, old, 'CmdTail beyond the ring');
      else this.process();
    });
  }

  /** Status.CmdBufRun: the unit fetches commands. */
  get running(): boolean {
    return (this.init.regs.get(REG.STATUS) & STATUS_CMD_BUF_RUN) !== 0;
  }

  /**
   * The Control register's low half was written (`old`: its value before): IommuEn ∧ CmdBufEn changing sets
   * or clears CmdBufRun, and setting it processes what is pending.
   */
  controlChanged(control: number, old: number): void {
    if (((control ^ old) & RUNNING) === 0) return;
    const on = (control & RUNNING) === RUNNING;
    this.setRunning(on);
    if (on) this.process();
  }

  /**
   * Performs commands from CmdHead towards CmdTail while the buffer runs, at most one ring's worth of steps.
   * Called on CmdTail writes and when the buffer starts; returns the commands performed.
   */
  process(): number {
    if (this.busy) return 0;
    this.busy = true;
    try {
      const bound = this.bytes() / COMMAND_BYTES;
      let steps = 0;
      let performed = 0;
      while (this.running && this.init.regs.get(REG.CMD_HEAD) !== this.init.regs.get(REG.CMD_TAIL)) {
        if (steps++ === bound) {
          this.boundReached++;
          break;
        }
        if (this.step()) performed++;
      }
      return performed;
    } finally {
      this.busy = false;
    }
  }

  stats(): Readonly<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [op, name] of Object.entries(STAT_NAMES)) out[name] = this.performed[op as Op];
    out.cmdIllegal = this.illegal;
    out.cmdHardwareErrors = this.hardwareErrors;
    out.cmdCompletionInterrupts = this.completionInterrupts;
    out.cmdIgnoredWrites = this.ignoredWrites;
    out.cmdBoundReached = this.boundReached;
    return out;
  }

  /** The ring's base address (CmdBufBase 51:12). */
  private base(): number {
    const { regs } = this.init;
    return (regs.get(CMD_BUF_BASE_HI) & BASE_HI) * 2 ** 32 + ((regs.get(REG.CMD_BUF_BASE) & BASE_LO) >>> 0);
  }

  /** The ring's size in bytes: 2^ComLen commands. */
  private bytes(): number {
    return COMMAND_BYTES * 2 ** ((this.init.regs.get(CMD_BUF_BASE_HI) >>> LOG_HI_LEN.lsb) & 0xf);
  }

  private setRunning(on: boolean): void {
    const { regs } = this.init;
    const status = regs.get(REG.STATUS);
    regs.set(REG.STATUS, on ? status | STATUS_CMD_BUF_RUN : status & ~STATUS_CMD_BUF_RUN);
  }

  /** A CmdBufBase half was written: refused while running or with a reserved ComLen, else clears the pointers. */
  private baseWritten(offset: number, value: number, old: number): void {
    if (this.running) this.ignore(offset, value, old, 'CmdBufBase while CmdBufRun');
    else if (offset === CMD_BUF_BASE_HI && ((value >>> LOG_HI_LEN.lsb) & 0xf) < LOG_LEN_MIN)
      this.ignore(offset, value, old, 'CmdBufBase with a reserved ComLen');
    else {
      this.init.regs.set(REG.CMD_HEAD, 0);
      this.init.regs.set(REG.CMD_TAIL, 0);
    }
  }

  /** Puts back the value a refused write replaced. */
  private ignore(offset: number, value: number, old: number, what: string): void {
    this.init.regs.set(offset, old);
    this.ignoredWrites++;
    if (this.init.tracer.enabled) this.trace('cmdbuf.ignored', `${what}: write of ${toHex(value)} ignored`);
  }

  /** Fetches and performs the command at CmdHead; false when the buffer stopped on it. */
  private step(): boolean {
    const { regs, bus, counter, features, tracer } = this.init;
    const head = regs.get(REG.CMD_HEAD);
    const address = this.base() + head;
    if (!bus.readWords(address, this.words, COMMAND_WORDS, counter))
      return this.hardwareError(address, 'command fetch aborted');
    const cmd = decodeCommand(this.words, 0, features);
    if ('illegal' in cmd) return this.illegalCommand(address, cmd.illegal);
    // The head passes the command before it runs, so a trigger it causes sees it consumed.
    regs.set(REG.CMD_HEAD, (head + COMMAND_BYTES) % this.bytes());
    if (cmd.op === 'completion-wait') {
      if (cmd.store && !this.store(cmd)) {
        regs.set(REG.CMD_HEAD, head);
        return this.hardwareError(cmd.storeAddress, 'completion store aborted');
      }
      if (cmd.interrupt) {
        this.completionInterrupts++;
        this.init.completionInterrupt();
      }
    } else {
      this.perform(cmd);
      const refused = this.init.forward?.(cmd, address);
      if (refused !== undefined) {
        regs.set(REG.CMD_HEAD, head);
        return this.illegalCommand(address, refused, 'refused by the host: ');
      }
    }
    this.performed[cmd.op]++;
    if (tracer.enabled) this.trace('cmdbuf.command', `${toHex(address)}: ${describe(cmd)}`);
    return true;
  }

  private perform(cmd: Exclude<AmdCommand, CompletionWaitCommand>): void {
    const t = this.init.targets;
    switch (cmd.op) {
      case 'invalidate-devtab-entry':
        t.invalidateDevtabEntry(cmd.deviceId);
        return;
      case 'invalidate-iommu-pages': {
        const { start, size } = decodeInvalidationRange(cmd.address, cmd.s);
        t.invalidateIommuPages(cmd.domainId, cmd.gn ? cmd.pasid : undefined, cmd.pde, start, size);
        return;
      }
      case 'invalidate-iotlb-pages': {
        const { start, size } = decodeInvalidationRange(cmd.address, cmd.s);
        const pasid = cmd.gn ? cmd.pasid : undefined;
        t.invalidateIotlbPages(cmd.deviceId, pasid, start, size, cmd.queueId, cmd.maxPend);
        return;
      }
      case 'invalidate-interrupt-table':
        t.invalidateInterruptTable(cmd.deviceId);
        return;
      case 'prefetch-iommu-pages': {
        const { start, size } = decodeInvalidationRange(cmd.address, cmd.s);
        const pasid = cmd.gn ? cmd.pasid : undefined;
        t.prefetchIommuPages(cmd.deviceId, pasid, start, size, cmd.invalidate, cmd.pfCount);
        return;
      }
      case 'complete-ppr-request':
        t.completePprRequest(cmd.deviceId, cmd.gn ? cmd.pasid : undefined, cmd.tag, cmd.status);
        return;
      case 'invalidate-iommu-all':
        t.invalidateAll();
        return;
    }
  }

  /**
   * The completion store: one 8-byte write to RAM; elsewhere (MMIO) two 32-bit writes carrying the unit's
   * requester ID, as its MSIs do. False if the bus aborted it.
   */
  private store(cmd: CompletionWaitCommand): boolean {
    const { bus, counter, requesterId } = this.init;
    const address = cmd.storeAddress;
    if (bus.regionAt(address, 8)?.kind === 'ram') {
      this.storeWords[0] = cmd.storeDataLo;
      this.storeWords[1] = cmd.storeDataHi;
      return bus.writeWords(address, this.storeWords, 2, counter);
    }
    return (
      bus.write(address, 4, cmd.storeDataLo, counter, requesterId).ok &&
      bus.write(address + 4, 4, cmd.storeDataHi, counter, requesterId).ok
    );
  }

  /** `by` says who refused it (the host through `forward`); decodeCommand's reasons stand alone. */
  private illegalCommand(address: number, reason: string, by = ''): false {
    this.setRunning(false);
    this.illegal++;
    this.init.logEvent({ kind: 'illegal-command-error', address });
    if (this.init.tracer.enabled)
      this.trace('cmdbuf.error', `ILLEGAL_COMMAND_ERROR at ${toHex(address)}: ${by}${reason}`);
    return false;
  }

  private hardwareError(address: number, reason: string): false {
    this.setRunning(false);
    this.hardwareErrors++;
    this.init.logEvent({ kind: 'command-hardware-error', type: HARDWARE_ERROR_TYPE.MASTER_ABORT, address });
    if (this.init.tracer.enabled)
      this.trace('cmdbuf.error', `COMMAND_HARDWARE_ERROR at ${toHex(address)}: ${reason}`);
    return false;
  }

  /** Only called when the tracer is enabled. */
  private trace(name: string, message: string): void {
    this.init.tracer.trace('hw', this.init.instance, name, message);
  }
}

/** One command for a trace line. */
function describe(cmd: AmdCommand): string {
  const pasid = (gn: boolean, value: number) => (gn ? ` pasid ${toHex(value)}` : '');
  const range = (address: number, s: boolean) => {
    const { start, size } = decodeInvalidationRange(address, s);
    return `${toHex(start)} +${toHex(size)}`;
  };
  switch (cmd.op) {
    case 'completion-wait':
      return `COMPLETION_WAIT${cmd.store ? ` store ${toHex((BigInt(cmd.storeDataHi) << 32n) | BigInt(cmd.storeDataLo))} to ${toHex(cmd.storeAddress)}` : ''}${cmd.interrupt ? ' interrupt' : ''}${cmd.flush ? ' flush' : ''}`;
    case 'invalidate-devtab-entry':
      return `INVALIDATE_DEVTAB_ENTRY device ${toHex(cmd.deviceId)}`;
    case 'invalidate-iommu-pages':
      return `INVALIDATE_IOMMU_PAGES domain ${toHex(cmd.domainId)}${pasid(cmd.gn, cmd.pasid)} ${range(cmd.address, cmd.s)}${cmd.pde ? ' pde' : ''}`;
    case 'invalidate-iotlb-pages':
      return `INVALIDATE_IOTLB_PAGES device ${toHex(cmd.deviceId)}${pasid(cmd.gn, cmd.pasid)} ${range(cmd.address, cmd.s)} queue ${toHex(cmd.queueId)} maxpend ${cmd.maxPend}`;
    case 'invalidate-interrupt-table':
      return `INVALIDATE_INTERRUPT_TABLE device ${toHex(cmd.deviceId)}`;
    case 'prefetch-iommu-pages':
      return `PREFETCH_IOMMU_PAGES device ${toHex(cmd.deviceId)}${pasid(cmd.gn, cmd.pasid)} ${range(cmd.address, cmd.s)} count ${cmd.pfCount}${cmd.invalidate ? ' inval' : ''}`;
    case 'complete-ppr-request':
      return `COMPLETE_PPR_REQUEST device ${toHex(cmd.deviceId)}${pasid(cmd.gn, cmd.pasid)} tag ${toHex(cmd.tag)} status ${cmd.status}`;
    case 'invalidate-iommu-all':
      return 'INVALIDATE_IOMMU_ALL';
  }
}
