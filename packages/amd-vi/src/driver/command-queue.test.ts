/**
 * The driver's command buffer (command-queue.ts): commands land in the ring at the tail and reach the unit,
 * completion waits store the semaphore and complete, a full ring waits for CmdHead, and a unit that never
 * processes (CmdBufEn off, stopped on an illegal command) makes the waits fail with ETIMEDOUT.
 */
import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { driverRig } from '../../test/driver-rig.js';
import { buildCompletePpr, buildInvalidateDevtabEntry } from '../hw/command-encoders.js';
import { CTRL_CMD_BUF_EN, REG, STATUS_CMD_BUF_RUN } from '../hw/regs.js';
import { CMD_BUFFER_SIZE } from './command-queue.js';
import { probeUnit } from './probe.js';

function probed(options = {}) {
  const r = driverRig({ options });
  const unit = probeUnit(r.context, () => undefined);
  return { r, unit, queue: unit.queue };
}

/** Stops the unit's command processing as a test (CmdBufEn off), leaving IommuEn on. */
function stop(r: ReturnType<typeof driverRig>): void {
  r.poke(REG.CONTROL, r.reg(REG.CONTROL) & ~CTRL_CMD_BUF_EN);
}

describe('queueing and completion waits', () => {
  it('writes each command at the tail, moves CmdTail, and waits with a store to the semaphore', () => {
    const { r, unit, queue } = probed();
    const from = r.reg(REG.CMD_TAIL);
    const performed = r.unit.commandBuffer.performed['invalidate-devtab-entry'];
    queue.submit([buildInvalidateDevtabEntry(0x10), buildInvalidateDevtabEntry(0x11)]);
    const to = r.reg(REG.CMD_TAIL);
    expect(to).toBe(from + 3 * 16);
    expect(r.commands(queue.base, from, to)).toEqual([
      { op: 'invalidate-devtab-entry', deviceId: 0x10 },
      { op: 'invalidate-devtab-entry', deviceId: 0x11 },
      {
        op: 'completion-wait',
        store: true,
        interrupt: false,
        flush: false,
        storeAddress: unit.queue.sem,
        storeDataLo: 3,
        storeDataHi: 0,
      },
    ]);
    expect(r.unit.commandBuffer.performed['invalidate-devtab-entry']).toBe(performed + 2);
    expect(r.words(queue.sem, 2)).toEqual(new Uint32Array([3, 0]));
    expect(r.reg(REG.CMD_HEAD)).toBe(to);
  });

  it('skips a completion wait when nothing was queued since the last (need_sync)', () => {
    const { r, queue } = probed();
    const tail = r.reg(REG.CMD_TAIL);
    queue.completionWait();
    expect(r.reg(REG.CMD_TAIL)).toBe(tail);
  });

  it('wraps around the ring', () => {
    const { r, queue } = probed();
    const before = r.unit.commandBuffer.performed['invalidate-devtab-entry'];
    for (let i = 0; i < 300; i++) queue.submit([buildInvalidateDevtabEntry(i)]);
    expect(r.unit.commandBuffer.performed['invalidate-devtab-entry']).toBe(before + 300);
    expect(queue.stats.completionWaits).toBe(302);
    // 4 probe commands and 600 here, 16 bytes each, modulo the ring.
    expect(r.reg(REG.CMD_TAIL)).toBe((604 * 16) % CMD_BUFFER_SIZE);
    expect(r.reg(REG.CMD_HEAD)).toBe(r.reg(REG.CMD_TAIL));
  });
});

describe('a unit that does not complete', () => {
  it('ETIMEDOUT when CmdBufEn is off: nothing is fetched, the semaphore never changes', () => {
    const { r, queue } = probed();
    stop(r);
    expect(errnoOf(() => queue.submit([buildInvalidateDevtabEntry(1)]))).toBe('ETIMEDOUT');
    expect(r.words(queue.sem, 2)).toEqual(new Uint32Array([2, 0]));
    expect(r.reg(REG.CMD_HEAD)).not.toBe(r.reg(REG.CMD_TAIL));
  });

  it('ETIMEDOUT after an illegal command stopped the buffer (COMPLETE_PPR_REQUEST without PPRSup)', () => {
    const { r, queue } = probed({ pageRequests: false });
    expect(errnoOf(() => queue.submit([buildCompletePpr(1, 0, 0, 0, false)]))).toBe('ETIMEDOUT');
    expect(r.unit.commandBuffer.illegal).toBe(1);
    expect(r.reg(REG.STATUS) & STATUS_CMD_BUF_RUN).toBe(0);
  });

  it('a full ring waits for CmdHead: 509 commands fit beside the reserve, the 510th times out', () => {
    const { r, queue } = probed();
    stop(r);
    const start = r.reg(REG.CMD_TAIL);
    // The driver's head is still 0 from the reset: near the end it rereads CmdHead (probe's 4 commands).
    for (let i = 0; i < 509; i++) queue.queue(buildInvalidateDevtabEntry(i));
    expect(r.reg(REG.CMD_TAIL)).toBe((start + 509 * 16) % CMD_BUFFER_SIZE);
    const waits = queue.stats.fullWaits;
    expect(errnoOf(() => queue.queue(buildInvalidateDevtabEntry(509)))).toBe('ETIMEDOUT');
    expect(queue.stats.fullWaits).toBe(waits + 1);
    expect(r.reg(REG.CMD_TAIL)).toBe((start + 509 * 16) % CMD_BUFFER_SIZE);
  });

  it('a full ring goes on once the unit fetches again while the driver polls CmdHead', () => {
    const { r, queue } = probed();
    stop(r);
    for (let i = 0; i < 509; i++) queue.queue(buildInvalidateDevtabEntry(i));
    const read = r.unit.regs.read.bind(r.unit.regs);
    let headReads = 0;
    r.unit.regs.read = (offset, size) => {
      // The unit resumes on the driver's third look at CmdHead.
      if (offset === REG.CMD_HEAD && ++headReads === 3)
        r.poke(REG.CONTROL, r.reg(REG.CONTROL) | CTRL_CMD_BUF_EN);
      return read(offset, size);
    };
    const before = r.unit.commandBuffer.performed['invalidate-devtab-entry'];
    queue.submit([buildInvalidateDevtabEntry(509)]);
    expect(headReads).toBe(3);
    expect(r.unit.commandBuffer.performed['invalidate-devtab-entry']).toBe(before + 510);
    expect(r.reg(REG.CMD_HEAD)).toBe(r.reg(REG.CMD_TAIL));
  });
});
