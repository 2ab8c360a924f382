import { describe, expect, it } from 'vitest';
import { CMDQ_ADDR, MSI_ADDR, RAM_BASE, type Rig, rig, UNMAPPED } from '../../test/queue-fixtures.js';
import {
  CMD_SYNC_CS,
  type Command,
  encodeAtcInv,
  encodeCfgiAll,
  encodeCfgiSte,
  encodeCmdSync,
  encodePrefetchConfig,
  encodeTlbiNhAll,
  encodeTlbiNsnhAll,
} from './commands.js';
import { cmdqConsError, queueIncrement, queueIndex } from './queue-index.js';
import { activeGlobalErrors } from './register-protocols.js';
import {
  CERROR_ABT,
  CERROR_ATC_INV_SYNC,
  CERROR_ILL,
  CERROR_NONE,
  CR0_CMDQEN,
  GERROR_CMDQ_ERR,
  GERROR_MSI_CMDQ_ABT_ERR,
  IRQ_CTRL_GERROR_IRQEN,
  REG,
} from './regs.js';

/** Programs a Command queue of 2^log2 entries at CMDQ_ADDR with PROD = CONS = `start`, and enables it. */
function enableCmdq(r: Rig, log2: number, start = 0): void {
  r.mmio64(REG.CMDQ_BASE, CMDQ_ADDR + log2);
  r.mmio(REG.CMDQ_PROD, start);
  r.mmio(REG.CMDQ_CONS, start);
  r.mmio(REG.IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
  r.mmio(REG.CR0, CR0_CMDQEN);
}

/** The driver's side: writes commands at PROD, then publishes them with one PROD write. */
function submit(r: Rig, log2: number, commands: readonly Uint32Array[]): void {
  let prod = r.read(REG.CMDQ_PROD);
  for (const command of commands) {
    r.put(CMDQ_ADDR + queueIndex(prod, log2) * 16, command);
    prod = queueIncrement(prod, log2);
  }
  r.mmio(REG.CMDQ_PROD, prod);
}

const ops = (commands: readonly Command[]) => commands.map((c) => c.op);
const cmdqErrActive = (r: Rig) =>
  (activeGlobalErrors(r.read(REG.GERROR), r.read(REG.GERRORN)) & GERROR_CMDQ_ERR) !== 0;
/** A command with Reserved opcode 0x00 (CERROR_ILL, §4.1.1). */
const BAD = new Uint32Array(4);

describe('Command queue consumption (SMMUv3 §3.5.1, §4.1.2)', () => {
  it('consumes up to PROD across the wrap, and a full queue entirely', () => {
    const r = rig();
    enableCmdq(r, 2, 2); // 4 entries, starting at index 2
    submit(r, 2, [encodeCfgiSte({ streamId: 1 }), encodeTlbiNhAll(), encodeCmdSync()]);
    expect(ops(r.executed)).toEqual(['CFGI_STE', 'TLBI_NH_ALL', 'SYNC']);
    // Index 2 → 3 → 0 (wrap flag toggles) → 1: CONS = wrap 1, index 1.
    expect(r.read(REG.CMDQ_CONS)).toBe(0b101);
    expect(r.read(REG.CMDQ_CONS)).toBe(r.read(REG.CMDQ_PROD));

    // Four more: PROD == CONS.RD with the wrap flags different (full) — all four are consumed.
    r.executed.length = 0;
    submit(r, 2, [encodeCfgiAll(), encodeTlbiNsnhAll(), encodeCfgiSte({ streamId: 7 }), encodeCmdSync()]);
    expect(ops(r.executed)).toEqual(['CFGI_ALL', 'TLBI_NSNH_ALL', 'CFGI_STE', 'SYNC']);
    expect(r.read(REG.CMDQ_CONS)).toBe(0b001);
    expect(r.queues.cmdq.commandsExecuted).toBe(7);
    expect(r.queues.cmdq.syncs).toBe(2);
  });

  it('does nothing while CMDQEN is off, and starts when it is enabled', () => {
    const r = rig();
    r.mmio64(REG.CMDQ_BASE, CMDQ_ADDR + 3);
    submit(r, 3, [encodeTlbiNhAll(), encodeCmdSync()]);
    expect(r.executed).toEqual([]);
    expect(r.queues.cmdq.blocked()).toBe('disabled');
    r.mmio(REG.CR0, CR0_CMDQEN);
    expect(ops(r.executed)).toEqual(['TLBI_NH_ALL', 'SYNC']);
    expect(r.queues.cmdq.blocked()).toBe('empty');
  });

  it('a command enqueued from inside execute() is consumed once, after the current one', () => {
    let nested = false;
    const r: Rig = rig({
      execute: (c) => {
        if (c.op === 'TLBI_NH_ALL' && !nested) {
          nested = true;
          submit(r, 3, [encodeCmdSync()]); // the PROD write re-enters consume()
        }
        return { ok: true };
      },
    });
    enableCmdq(r, 3);
    r.queues.cmdq.stepMode = true;
    submit(r, 3, [encodeTlbiNhAll()]);
    r.queues.cmdq.stepMode = false;
    expect(r.queues.cmdq.consume()).toBe(2);
    expect(ops(r.executed)).toEqual(['TLBI_NH_ALL', 'SYNC']);
    expect(r.read(REG.CMDQ_CONS)).toBe(2);

    // The same through a single step(): the command it enqueues is consumed when the step is done.
    nested = false;
    r.executed.length = 0;
    r.queues.cmdq.stepMode = true;
    submit(r, 3, [encodeTlbiNhAll()]);
    r.queues.cmdq.stepMode = false;
    expect(r.queues.cmdq.step()).toMatchObject({ kind: 'consumed', command: { op: 'TLBI_NH_ALL' } });
    expect(ops(r.executed)).toEqual(['TLBI_NH_ALL', 'SYNC']);
    expect(r.read(REG.CMDQ_CONS)).toBe(4);
  });
});

describe('Command queue errors (SMMUv3 §4.1.3, §7.1)', () => {
  it('CERROR_ILL stops at the bad command; nothing after it runs; recovery after the fix and GERRORN', () => {
    const r = rig();
    enableCmdq(r, 3);
    submit(r, 3, [encodeCfgiAll(), BAD, encodeTlbiNsnhAll(), encodeCmdSync()]);
    expect(ops(r.executed)).toEqual(['CFGI_ALL']);
    const cons = r.read(REG.CMDQ_CONS);
    expect(queueIndex(cons, 3)).toBe(1);
    expect(cmdqConsError(cons)).toBe(CERROR_ILL);
    expect(cmdqErrActive(r)).toBe(true);
    expect(r.line('gerror').raised).toBe(1);
    expect(r.queues.cmdq.errors.ILL).toBe(1);

    // More commands while the error is active: nothing is consumed.
    submit(r, 3, [encodeTlbiNhAll()]);
    expect(ops(r.executed)).toEqual(['CFGI_ALL']);
    expect(r.queues.cmdq.blocked()).toBe('error-active');

    // Linux's recovery: overwrite the bad command with a CMD_SYNC, then acknowledge CMDQ_ERR.
    r.put(CMDQ_ADDR + 16, encodeCmdSync());
    r.mmio(REG.GERRORN, r.read(REG.GERROR));
    expect(ops(r.executed)).toEqual(['CFGI_ALL', 'SYNC', 'TLBI_NSNH_ALL', 'SYNC', 'TLBI_NH_ALL']);
    expect(r.read(REG.CMDQ_CONS)).toBe(5);
    expect(cmdqConsError(r.read(REG.CMDQ_CONS))).toBe(CERROR_NONE);
    expect(cmdqErrActive(r)).toBe(false);
  });

  it('a second error before the acknowledgement does not toggle GERROR again', () => {
    const r = rig();
    enableCmdq(r, 3);
    submit(r, 3, [BAD]);
    const gerror = r.read(REG.GERROR);
    // Another PROD write: the error is active, so the command is not even fetched again.
    submit(r, 3, [BAD]);
    expect(r.read(REG.GERROR)).toBe(gerror);
    expect(r.queues.cmdq.errors.ILL).toBe(1);
    // Acknowledged without a fix: the same command fails again and the bit toggles back (active again).
    r.mmio(REG.GERRORN, gerror);
    expect(r.read(REG.GERROR)).toBe(gerror ^ GERROR_CMDQ_ERR);
    expect(cmdqErrActive(r)).toBe(true);
    expect(r.queues.cmdq.errors.ILL).toBe(2);
    expect(r.line('gerror').raised).toBe(2);
  });

  it('an abort reading the queue is CERROR_ABT, with CONS on the entry that could not be read', () => {
    const r = rig();
    // A 512-entry queue (8 KiB) over one 4 KiB page of RAM: entries 0–255 exist, 256 is on no region.
    r.bus.addRam('page', 0x4000_0000, 0x1000);
    r.mmio64(REG.CMDQ_BASE, 0x4000_0000 + 9);
    r.mmio(REG.CMDQ_PROD, 254);
    r.mmio(REG.CMDQ_CONS, 254);
    r.mmio(REG.CR0, CR0_CMDQEN);
    r.put(0x4000_0000 + 254 * 16, encodeTlbiNhAll());
    r.put(0x4000_0000 + 255 * 16, encodeCmdSync());
    r.mmio(REG.CMDQ_PROD, 257);
    expect(ops(r.executed)).toEqual(['TLBI_NH_ALL', 'SYNC']);
    expect(queueIndex(r.read(REG.CMDQ_CONS), 9)).toBe(256);
    expect(cmdqConsError(r.read(REG.CMDQ_CONS))).toBe(CERROR_ABT);
    expect(cmdqErrActive(r)).toBe(true);
  });

  it('a queue base above 4 GiB is used whole: with no memory there the first fetch aborts', () => {
    const r = rig();
    r.mmio64(REG.CMDQ_BASE, 2 ** 32 + CMDQ_ADDR + 3);
    r.put(CMDQ_ADDR, encodeCmdSync());
    r.mmio(REG.CR0, CR0_CMDQEN);
    r.mmio(REG.CMDQ_PROD, 1);
    expect(r.executed).toEqual([]);
    expect(r.queues.cmdq.errors.ABT).toBe(1);
  });

  it('a queue base on no memory aborts the first fetch', () => {
    const r = rig();
    r.mmio64(REG.CMDQ_BASE, UNMAPPED + 4);
    r.mmio(REG.CR0, CR0_CMDQEN);
    r.mmio(REG.CMDQ_PROD, 1);
    expect(r.read(REG.CMDQ_CONS)).toBe((CERROR_ABT << 24) >>> 0);
    expect(r.queues.cmdq.errors.ABT).toBe(1);
  });

  it('an execute() failure reports its code: ABT, and ATC_INV_SYNC on a CMD_SYNC that is not consumed', () => {
    const failSync = { on: false };
    const r = rig({
      execute: (c) =>
        c.op === 'PREFETCH_CONFIG'
          ? { ok: false, error: 'ABT' }
          : c.op === 'SYNC' && failSync.on
            ? { ok: false, error: 'ATC_INV_SYNC' }
            : { ok: true },
    });
    enableCmdq(r, 3);
    submit(r, 3, [encodeTlbiNhAll(), encodePrefetchConfig({ streamId: 3 }), encodeCmdSync()]);
    expect(ops(r.executed)).toEqual(['TLBI_NH_ALL', 'PREFETCH_CONFIG']);
    expect(queueIndex(r.read(REG.CMDQ_CONS), 3)).toBe(1);
    expect(cmdqConsError(r.read(REG.CMDQ_CONS))).toBe(CERROR_ABT);

    // Replace the prefetch, make CMD_SYNC's ATC check fail, acknowledge.
    r.put(CMDQ_ADDR + 16, encodeAtcInv({ streamId: 3, size: 52 }));
    failSync.on = true;
    r.put(CMDQ_ADDR + 32, encodeCmdSync({ cs: CMD_SYNC_CS.IRQ, msiAddress: MSI_ADDR, msiData: 0x1234 }));
    r.mmio(REG.GERRORN, r.read(REG.GERROR));
    expect(queueIndex(r.read(REG.CMDQ_CONS), 3)).toBe(2);
    expect(cmdqConsError(r.read(REG.CMDQ_CONS))).toBe(CERROR_ATC_INV_SYNC);
    expect(r.words(MSI_ADDR, 1)).toEqual([0]); // no completion signal
    expect(r.line('cmdq-sync').raised).toBe(0);
    expect(r.queues.cmdq.stats()).toMatchObject({ cmdqErrAbt: 1, cmdqErrAtcInvSync: 1, syncs: 0 });
  });
});

describe('CMD_SYNC completion signals (SMMUv3 §4.7.3)', () => {
  it('SIG_IRQ writes MSIData to MSIAddress and pulses the CMD_SYNC line', () => {
    const r = rig();
    enableCmdq(r, 3);
    submit(r, 3, [encodeCmdSync({ cs: CMD_SYNC_CS.IRQ, msiAddress: MSI_ADDR + 8, msiData: 0xdead_beef })]);
    expect(r.ram.read32(MSI_ADDR + 8 - RAM_BASE)).toBe(0xdead_beef);
    const bytes = r.bus.readBytes(MSI_ADDR + 8, 4, r.bus.counter('t'));
    expect(bytes.ok && [...bytes.data]).toEqual([0xef, 0xbe, 0xad, 0xde]);
    expect(r.line('cmdq-sync').raised).toBe(1);
    expect(r.queues.stats()).toMatchObject({ syncIrqs: 1, msiWrites: 1 });
  });

  it('CS == SIG_NONE writes nothing; SIG_IRQ with MSIAddress 0 only pulses the line', () => {
    const r = rig();
    enableCmdq(r, 3);
    submit(r, 3, [encodeCmdSync({ cs: CMD_SYNC_CS.NONE, msiAddress: MSI_ADDR, msiData: 7 })]);
    expect(r.words(MSI_ADDR, 1)).toEqual([0]);
    expect(r.line('cmdq-sync').raised).toBe(0);
    submit(r, 3, [encodeCmdSync({ cs: CMD_SYNC_CS.IRQ, msiAddress: 0, msiData: 7 })]);
    expect(r.line('cmdq-sync').raised).toBe(1);
    expect(r.queues.interrupts.msiWrites).toBe(0);
  });

  it('without MSIs (IDR0.MSI == 0) SIG_IRQ ignores MSIAddress and only pulses the line', () => {
    const r = rig({ options: { msi: false } });
    enableCmdq(r, 3);
    submit(r, 3, [encodeCmdSync({ cs: CMD_SYNC_CS.IRQ, msiAddress: MSI_ADDR, msiData: 7 })]);
    expect(r.words(MSI_ADDR, 1)).toEqual([0]);
    expect(r.line('cmdq-sync').raised).toBe(1);
  });

  it('the MSI is sent after CONS has passed the CMD_SYNC', () => {
    const r = rig();
    const seen: number[] = [];
    r.bus.addMmio('doorbell', 0x0a00_0000, 0x1000, {
      read: () => 0,
      write: () => seen.push(r.read(REG.CMDQ_CONS)),
    });
    enableCmdq(r, 3);
    submit(r, 3, [encodeTlbiNhAll(), encodeCmdSync({ cs: CMD_SYNC_CS.IRQ, msiAddress: 0x0a00_0040 })]);
    expect(seen).toEqual([2]);
  });

  it('an MSI that aborts activates GERROR.MSI_CMDQ_ABT_ERR and the GERROR interrupt', () => {
    const r = rig();
    enableCmdq(r, 3);
    submit(r, 3, [encodeCmdSync({ cs: CMD_SYNC_CS.IRQ, msiAddress: UNMAPPED, msiData: 1 })]);
    expect(r.read(REG.CMDQ_CONS)).toBe(1); // the CMD_SYNC itself completed
    expect(r.read(REG.GERROR) & GERROR_MSI_CMDQ_ABT_ERR).toBe(GERROR_MSI_CMDQ_ABT_ERR);
    expect(r.line('gerror').raised).toBe(1);
    expect(r.queues.interrupts.msiAborts).toBe(1);
  });

  it('consuming from a full queue sends one wake-up event with IDR0.SEV, none without (§4.1.2)', () => {
    const four = [encodeCfgiAll(), encodeTlbiNsnhAll(), encodeTlbiNhAll(), encodeCmdSync()];
    const withSev = rig({ sev: true });
    enableCmdq(withSev, 2);
    withSev.queues.cmdq.stepMode = true;
    submit(withSev, 2, four);
    expect(withSev.queues.cmdq.pending()).toBe(4); // full: software sees no room
    expect(withSev.queues.cmdq.step().kind).toBe('consumed');
    expect(withSev.queues.cmdq.sevEvents).toBe(1);
    withSev.queues.cmdq.stepMode = false;
    expect(withSev.queues.cmdq.consume()).toBe(3);
    expect(withSev.queues.cmdq.sevEvents).toBe(1); // the queue was no longer full
    // Three commands never fill a 4-entry queue: no event.
    const notFull = rig({ sev: true });
    enableCmdq(notFull, 2);
    submit(notFull, 2, four.slice(0, 3));
    expect(notFull.queues.cmdq.sevEvents).toBe(0);
    const without = rig();
    enableCmdq(without, 2);
    submit(without, 2, four);
    expect(without.queues.cmdq.commandsExecuted).toBe(4);
    expect(without.queues.cmdq.sevEvents).toBe(0);
  });

  it('SIG_SEV is SIG_NONE without IDR0.SEV and a counted wake-up event with it', () => {
    const without = rig();
    enableCmdq(without, 3);
    submit(without, 3, [encodeCmdSync({ cs: CMD_SYNC_CS.SEV })]);
    expect(without.queues.cmdq.sevEvents).toBe(0);
    const withSev = rig({ sev: true });
    enableCmdq(withSev, 3);
    submit(withSev, 3, [encodeCmdSync({ cs: CMD_SYNC_CS.SEV }), encodeCmdSync({ cs: CMD_SYNC_CS.SEV })]);
    expect(withSev.queues.cmdq.sevEvents).toBe(2);
    expect(withSev.line('cmdq-sync').raised).toBe(0);
  });
});

describe('step mode', () => {
  it('PROD writes consume nothing; each step() processes exactly one command', () => {
    const r = rig();
    enableCmdq(r, 3);
    r.queues.cmdq.stepMode = true;
    submit(r, 3, [encodeCfgiSte({ streamId: 1 }), encodeCmdSync(), encodeTlbiNhAll()]);
    expect(r.executed).toEqual([]);
    expect(r.queues.cmdq.pending()).toBe(3);

    const first = r.queues.cmdq.step();
    expect(first).toMatchObject({ kind: 'consumed', index: 0, command: { op: 'CFGI_STE', streamId: 1 } });
    expect(r.read(REG.CMDQ_CONS)).toBe(1);
    // The driver changes the next-but-one entry between two hardware steps.
    r.put(CMDQ_ADDR + 32, encodeCfgiSte({ streamId: 9 }));
    expect(r.queues.cmdq.step()).toMatchObject({ kind: 'consumed', command: { op: 'SYNC' } });
    expect(r.queues.cmdq.step()).toMatchObject({
      kind: 'consumed',
      command: { op: 'CFGI_STE', streamId: 9 },
    });
    expect(r.queues.cmdq.step()).toEqual({ kind: 'idle', why: 'empty' });
    expect(r.queues.cmdq.pending()).toBe(0);
  });

  it('an error in a step is reported, and GERRORN does not resume in step mode', () => {
    const r = rig();
    enableCmdq(r, 3);
    r.queues.cmdq.stepMode = true;
    submit(r, 3, [BAD, encodeTlbiNhAll()]);
    const ill = r.queues.cmdq.step();
    expect(ill).toMatchObject({ kind: 'error', error: 'ILL', index: 0 });
    expect(ill.kind === 'error' && typeof ill.reason).toBe('string');
    expect(r.queues.cmdq.step()).toEqual({ kind: 'idle', why: 'error-active' });
    r.put(CMDQ_ADDR, encodeCmdSync());
    r.mmio(REG.GERRORN, r.read(REG.GERROR));
    expect(r.executed).toEqual([]);
    expect(r.queues.cmdq.step()).toMatchObject({ kind: 'consumed', command: { op: 'SYNC' } });
    // Leaving step mode: the next trigger consumes the rest.
    r.queues.cmdq.stepMode = false;
    expect(r.queues.cmdq.consume()).toBe(1);
    expect(ops(r.executed)).toEqual(['SYNC', 'TLBI_NH_ALL']);
  });

  it('a step processes one command even out of step mode, unless the command published more', () => {
    const r = rig();
    enableCmdq(r, 3);
    r.queues.cmdq.stepMode = true;
    submit(r, 3, [encodeTlbiNhAll(), encodeCmdSync()]);
    r.queues.cmdq.stepMode = false;
    expect(r.queues.cmdq.step()).toMatchObject({ kind: 'consumed', index: 0 });
    expect(ops(r.executed)).toEqual(['TLBI_NH_ALL']);
    expect(r.queues.cmdq.pending()).toBe(1);
  });

  it('a step asked for from inside a command is refused as busy, and the queue then runs on', () => {
    const inner: unknown[] = [];
    const r: Rig = rig({
      execute: (c) => {
        if (c.op === 'TLBI_NH_ALL') inner.push(r.queues.cmdq.step());
        return { ok: true };
      },
    });
    enableCmdq(r, 3);
    r.queues.cmdq.stepMode = true;
    submit(r, 3, [encodeTlbiNhAll(), encodeCmdSync(), encodeCfgiAll()]);
    r.queues.cmdq.stepMode = false;
    expect(r.queues.cmdq.step()).toMatchObject({ kind: 'consumed', index: 0 });
    expect(inner).toEqual([{ kind: 'idle', why: 'busy' }]);
    expect(ops(r.executed)).toEqual(['TLBI_NH_ALL', 'SYNC', 'CFGI_ALL']);
  });

  it('an abort is reported without a reason', () => {
    const r = rig();
    r.mmio64(REG.CMDQ_BASE, UNMAPPED + 4);
    r.mmio(REG.CR0, CR0_CMDQEN);
    r.queues.cmdq.stepMode = true;
    r.mmio(REG.CMDQ_PROD, 1);
    expect(r.queues.cmdq.step()).toEqual({ kind: 'error', error: 'ABT', index: 0 });
  });
});
