/**
 * Stalled transactions on the device model (IHI 0070 §3.12.2, §4.7.1, §4.7.2): a stalling fault holds the
 * transaction under the STAG of its event record; CMD_RESUME retries or terminates the one its StreamID
 * and STAG name, CMD_STALL_TERM terminates every one of a StreamID, and clearing SMMUEN terminates all.
 * The endpoint hears each end through its port.
 */
import { PERM_READ, type TranslationResult } from '@iommukit/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { IOVA, OUT, S1_STREAM, type TranslationRig, translationRig } from '../../test/translation-rig.js';
import { encodeCfgiSte, encodeCmdSync, encodeResume, encodeStallTerm } from './commands.js';
import { CR0_CMDQEN, CR0_EVENTQEN, CR0_SMMUEN, REG } from './regs.js';

const RW = { read: true, write: true };
/** The descriptor's Access flag (bit 10): clear, a read without HA faults with F_ACCESS. */
const LO_AF = 1 << 10;

let rig: TranslationRig;
let ended: [number, TranslationResult][];

/** Maps IOVA with its Access flag clear and reads it: the read stalls (CD.S = 1). Returns its stall id. */
function stall(iova = IOVA): number {
  const result = rig.translate(S1_STREAM, iova, PERM_READ);
  expect(result.ok).toBe(false);
  const id = result.ok ? undefined : result.stallId;
  expect(id).toBeDefined();
  return id!;
}

function setAccessFlag(iova = IOVA): void {
  rig.editDescriptor(rig.leafAddress(1, iova), (lo, hi) => [lo | LO_AF, hi]);
}

beforeEach(() => {
  rig = translationRig();
  ended = [];
  for (const iova of [IOVA, IOVA + 0x1000]) {
    rig.s1.map(BigInt(iova), BigInt(OUT), 0x1000n, RW);
    rig.editDescriptor(rig.leafAddress(1, iova), (lo, hi) => [lo & ~LO_AF, hi]);
  }
  rig.s1Stream({ s: true });
  rig.smmu.connectEndpoint(S1_STREAM, {
    invalidateAtc: () => {},
    pageResponse: () => {},
    completeStalled: (id, result) => ended.push([id, result]),
  });
});

describe('stalled transactions (§3.12.2)', () => {
  it('records Stall = 1 with a STAG and holds the transaction', () => {
    stall();
    const [record] = rig.records();
    expect(record).toMatchObject({ stall: true, stag: 0, streamId: S1_STREAM });
    expect(rig.smmu.stalls.size).toBe(1);
    expect(ended).toEqual([]);
  });

  it('CMD_RESUME(Retry) translates it again: it completes once the fault is fixed', () => {
    const id = stall();
    setAccessFlag();
    rig.submit(encodeResume({ streamId: S1_STREAM, stag: 0, action: 1 }), encodeCmdSync());
    expect(ended).toHaveLength(1);
    expect(ended[0]![0]).toBe(id);
    expect(ended[0]![1]).toMatchObject({ ok: true });
    expect(rig.smmu.stalls.size).toBe(0);
  });

  it('a retry that faults again stays held under the same id, with a new record', () => {
    const id = stall();
    rig.submit(encodeResume({ streamId: S1_STREAM, stag: 0, action: 1 }), encodeCmdSync());
    expect(ended).toEqual([]);
    expect(rig.smmu.stalls.recorded().map((t) => t.id)).toEqual([id]);
    expect(rig.records()).toHaveLength(2);
  });

  it('a retry that fails without stalling ends the transaction with that fault', () => {
    const id = stall();
    // The CD now asks for terminate (CD.S = 0): the retried fault is not held again.
    rig.s1Stream({ s: false });
    rig.submit(
      encodeCfgiSte({ streamId: S1_STREAM }),
      encodeResume({ streamId: S1_STREAM, stag: 0, action: 1 }),
      encodeCmdSync(),
    );
    expect(ended.map(([i, result]) => [i, result.ok ? 'ok' : result.fault.vendorCode])).toEqual([
      [id, 'F_ACCESS'],
    ]);
    expect(rig.smmu.stalls.size).toBe(0);
  });

  it('a transaction whose endpoint went away is resumed or terminated without telling anyone', () => {
    stall();
    stall(IOVA + 0x1000);
    rig.smmu.disconnectEndpoint(S1_STREAM);
    setAccessFlag();
    rig.submit(
      encodeResume({ streamId: S1_STREAM, stag: 0, action: 1 }),
      encodeResume({ streamId: S1_STREAM, stag: 1, action: 0 }),
      encodeCmdSync(),
    );
    expect(ended).toEqual([]);
    expect(rig.smmu.stalls.size).toBe(0);
  });

  it('CMD_RESUME(Terminate) ends it with its fault; a wrong StreamID or STAG has no effect (§4.7.1)', () => {
    const id = stall();
    rig.submit(
      encodeResume({ streamId: S1_STREAM + 1, stag: 0, action: 0 }),
      encodeResume({ streamId: S1_STREAM, stag: 1, action: 0 }),
      encodeCmdSync(),
    );
    expect(ended).toEqual([]);
    rig.submit(encodeResume({ streamId: S1_STREAM, stag: 0, action: 0 }), encodeCmdSync());
    expect(ended).toHaveLength(1);
    expect(ended[0]![0]).toBe(id);
    expect(ended[0]![1]).toMatchObject({ ok: false, fault: { recorded: true } });
  });

  it('CMD_STALL_TERM ends every stalled transaction of its stream (§4.7.2)', () => {
    const first = stall();
    const second = stall(IOVA + 0x1000);
    expect(rig.records().map((r) => r.stag)).toEqual([0, 1]);
    rig.submit(encodeStallTerm({ streamId: S1_STREAM + 1 }), encodeCmdSync());
    expect(ended).toEqual([]);
    rig.submit(encodeStallTerm({ streamId: S1_STREAM }), encodeCmdSync());
    expect(ended.map(([id, result]) => [id, result.ok])).toEqual([
      [first, false],
      [second, false],
    ]);
    expect(rig.smmu.stalls.size).toBe(0);
  });

  it('a stall whose record cannot be written holds no STAG and is retried when the queue is enabled', () => {
    rig.mmio(REG.CR0, CR0_CMDQEN | CR0_SMMUEN); // Event queue disabled
    const id = stall();
    expect(rig.records()).toEqual([]);
    expect(rig.smmu.stalls.size).toBe(1);
    expect(rig.smmu.stalls.recorded()).toEqual([]);
    rig.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN);
    // Retried: it faults again, now with a record and a STAG, as the same transaction.
    expect(rig.records()).toMatchObject([{ stall: true, stag: 0 }]);
    expect(rig.smmu.stalls.recorded().map((t) => t.id)).toEqual([id]);
    expect(ended).toEqual([]);
  });

  it('clearing SMMUEN ends them all', () => {
    const id = stall();
    rig.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
    expect(ended.map(([i, result]) => [i, result.ok])).toEqual([[id, false]]);
    expect(rig.smmu.stalls.size).toBe(0);
  });
});
