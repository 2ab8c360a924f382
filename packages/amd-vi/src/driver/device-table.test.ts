/**
 * The driver's device table (device-table.ts): the entries `set_dte_entry` and `make_clear_dte` build, the
 * order `update_dte256` writes the halves in, what it keeps of the interrupt half, and the flushes.
 */
import { describe, expect, it } from 'vitest';
import { driverRig } from '../../test/driver-rig.js';
import { ALL_PAGES_ADDRESS } from '../hw/command-encoders.js';
import { decodeDte, dteAddress, encodeDte } from '../hw/dte.js';
import { REG } from '../hw/regs.js';
import { clearedDte, dteFor } from './device-table.js';
import { probeUnit } from './probe.js';

function probed() {
  const r = driverRig();
  const unit = probeUnit(r.context, () => undefined);
  /** Records the driver's writes into the DTE of `deviceId`: [offset in the entry, words]. */
  const watch = (deviceId: number) => {
    const at = dteAddress(unit.deviceTable.base, deviceId);
    const seen: [number, number][] = [];
    const writeWords = r.bus.writeWords.bind(r.bus);
    r.bus.writeWords = (address, words, count, who, offset) => {
      if (address >= at && address < at + 32) seen.push([address - at, count]);
      return writeWords(address, words, count, who, offset);
    };
    return seen;
  };
  return { r, unit, table: unit.deviceTable, watch };
}

describe('the entries the driver builds', () => {
  it('set_dte_entry for a v1 domain: V, TV, Mode, root, IR, IW, DomainID, I with ATS, PPR', () => {
    const dte = decodeDte(dteFor({ mode: 4, root: 0x1_2345_6000, domainId: 7, ats: true, ppr: true }));
    expect(dte).toMatchObject({
      v: true,
      tv: true,
      mode: 4,
      hostPageTableRootPtr: 0x1_2345_6000,
      ir: true,
      iw: true,
      domainId: 7,
      i: true,
      ppr: true,
      gv: false,
      iv: false,
    });
  });

  it('identity (Mode 0) has no root; without ATS no I', () => {
    const dte = decodeDte(dteFor({ mode: 0, root: 0x5000, domainId: 1, ats: false, ppr: false }));
    expect(dte).toMatchObject({
      v: true,
      tv: true,
      mode: 0,
      hostPageTableRootPtr: 0,
      ir: true,
      iw: true,
      i: false,
    });
  });

  it('set_dte_gcr3_table: GV, GLX, the GCR3 root in its three pieces, GuestPagingMode, GIoV; IR/IW off for a blocked RID', () => {
    const gcr3 = { root: 0x8_7654_3000, glx: 1, guestLevels: 5, giov: true } as const;
    const words = dteFor({ mode: 0, root: 0, rw: false, domainId: 9, ats: false, ppr: true, gcr3 });
    expect(decodeDte(words)).toMatchObject({
      v: true,
      tv: true,
      mode: 0,
      ir: false,
      iw: false,
      gv: true,
      giov: true,
      glx: 1,
      gcr3TableRootPtr: 0x8_7654_3000,
      guestPagingMode: 1,
      domainId: 9,
      ppr: true,
    });
    // Root bits 14:12 at 60:58, 30:15 at 95:80, 51:31 at 127:107; GLX 57:56, GV 55, GIoV 54, PPR 52.
    expect(words[1]! >>> 0).toBe(((0x3 << 26) | (1 << 24) | (1 << 23) | (1 << 22) | (1 << 20)) >>> 0);
    expect(words[2]! >>> 16).toBe((0x8_7654_3000 / 2 ** 15) & 0xffff);
    expect(words[3]! >>> 11).toBe(Math.floor(0x8_7654_3000 / 2 ** 31));
  });

  it('make_clear_dte is V alone', () => {
    expect(clearedDte()).toEqual(encodeDte({ v: true }));
    expect(Array.from(clearedDte())).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('update_dte256', () => {
  it('V written last when set, first when cleared: upper half first unless the new entry is invalid', () => {
    const { r, table, watch } = probed();
    const seen = watch(0x20);
    // Over a valid boot entry (V = 1, TV = 1).
    table.update(0x20, dteFor({ mode: 4, root: 0x10_0000, domainId: 3, ats: false, ppr: false }));
    expect(seen).toEqual([
      [16, 4],
      [0, 4],
    ]);
    // Over an invalid entry: still upper first, so V comes last.
    r.bus.writeWords(dteAddress(table.base, 0x20), new Uint32Array(8), 8, r.bus.counter('test'));
    seen.length = 0;
    table.update(0x20, clearedDte());
    expect(seen).toEqual([
      [16, 4],
      [0, 4],
    ]);
    // An invalid new entry: lower first, so V goes first.
    seen.length = 0;
    table.update(0x20, new Uint32Array(8));
    expect(seen).toEqual([
      [0, 4],
      [16, 4],
    ]);
    expect(table.read(0x20)[0]).toBe(0);
  });

  it('the GV cases: GV off takes the lower half first, GV to GV the lower half alone, a GuestPagingMode change disables first', () => {
    const { r, unit, table, watch } = probed();
    const seen = watch(0x28);
    const gcr3 = (guestLevels: 4 | 5, root = 0x30_0000) => ({ root, glx: 0, guestLevels, giov: false });
    const plain = dteFor({ mode: 0, root: 0, domainId: 3, ats: false, ppr: false });
    const guest = (levels: 4 | 5, root?: number) =>
      dteFor({ mode: 0, root: 0, domainId: 4, ats: false, ppr: false, gcr3: gcr3(levels, root) });
    // No GV before: upper first, GV appears last.
    table.update(0x28, guest(4));
    expect(seen.splice(0)).toEqual([
      [16, 4],
      [0, 4],
    ]);
    // GV to GV, same GuestPagingMode: only the lower half, no flush (the caller's device_flush_dte does).
    const from = r.reg(REG.CMD_TAIL);
    table.update(0x28, guest(4, 0x31_0000));
    expect(seen.splice(0)).toEqual([[0, 4]]);
    expect(r.reg(REG.CMD_TAIL)).toBe(from);
    expect(decodeDte(table.read(0x28)).gcr3TableRootPtr).toBe(0x31_0000);
    // A GuestPagingMode change: the lower half zeroed and flushed, then upper, lower.
    table.update(0x28, guest(5));
    expect(seen.splice(0)).toEqual([
      [0, 4],
      [16, 4],
      [0, 4],
    ]);
    expect(r.commands(unit.queue.base, from, r.reg(REG.CMD_TAIL)).map((c) => c.op)).toEqual([
      'invalidate-devtab-entry',
      'completion-wait',
      'invalidate-devtab-entry',
      'completion-wait',
    ]);
    expect(decodeDte(table.read(0x28))).toMatchObject({ gv: true, guestPagingMode: 1 });
    // GV off: lower first, GV goes first.
    table.update(0x28, plain);
    expect(seen.splice(0)).toEqual([
      [0, 4],
      [16, 4],
    ]);
    expect(decodeDte(table.read(0x28))).toMatchObject({ gv: false, guestPagingMode: 0 });
  });

  it('keeps the interrupt fields of data[2], takes bits 55:52 and data[3] from the new entry', () => {
    const { r, table } = probed();
    const at = dteAddress(table.base, 0x30);
    const old = encodeDte({ v: true, tv: true, iv: true, intTabLen: 9, intCtl: 2, intTablePtr: 0xabc0_0000 });
    r.bus.writeWords(at, old, 8, r.bus.counter('test'));
    // The new entry's interrupt fields (IV clear, IntCtl 1) lose to the old ones.
    const next = encodeDte({
      v: true,
      tv: true,
      mode: 3,
      hostPageTableRootPtr: 0x20_0000,
      domainId: 9,
      intCtl: 1,
      guestPagingMode: 1,
    });
    table.update(0x30, next);
    const dte = decodeDte(table.read(0x30));
    expect(dte).toMatchObject({
      iv: true,
      intTabLen: 9,
      intCtl: 2,
      intTablePtr: 0xabc0_0000,
      guestPagingMode: 1,
    });
    expect(dte).toMatchObject({ v: true, tv: true, mode: 3, domainId: 9 });
  });

  it('invalidates the DTE and waits: INVALIDATE_DEVTAB_ENTRY then COMPLETION_WAIT', () => {
    const { r, unit, table } = probed();
    const from = r.reg(REG.CMD_TAIL);
    table.update(0x40, clearedDte());
    expect(r.commands(unit.queue.base, from, r.reg(REG.CMD_TAIL)).map((c) => c.op)).toEqual([
      'invalidate-devtab-entry',
      'completion-wait',
    ]);
  });
});

describe('device_flush_dte', () => {
  it('with ATS flushes the device’s whole IOTLB after the DTE, then waits', () => {
    const { r, unit, table } = probed();
    const port = r.endpoint(0x50);
    const from = r.reg(REG.CMD_TAIL);
    table.flushDevice(0x50, { qdep: 0 });
    const commands = r.commands(unit.queue.base, from, r.reg(REG.CMD_TAIL));
    expect(commands.slice(0, 2)).toEqual([
      { op: 'invalidate-devtab-entry', deviceId: 0x50 },
      {
        op: 'invalidate-iotlb-pages',
        deviceId: 0x50,
        maxPend: 0,
        queueId: 0x50,
        pasid: 0,
        s: true,
        gn: false,
        type: 0,
        address: ALL_PAGES_ADDRESS,
      },
    ]);
    expect(commands[2]!.op).toBe('completion-wait');
    expect(port.invalidations).toEqual([{ pasid: undefined, iova: 0n, size: 2n ** 64n }]);
  });

  it('without ATS only the DTE', () => {
    const { r, unit, table } = probed();
    const from = r.reg(REG.CMD_TAIL);
    table.flushDevice(0x50, undefined);
    expect(r.commands(unit.queue.base, from, r.reg(REG.CMD_TAIL)).map((c) => c.op)).toEqual([
      'invalidate-devtab-entry',
      'completion-wait',
    ]);
  });
});
