/**
 * The stall model end to end (SMMUv3 §3.12.2): a stall-capable master's faults hold its DMA, the event
 * record carries Stall = 1 and the STAG, the driver turns it into a page request, and CMD_RESUME (retry or
 * abort), CMD_STALL_TERM or SMMUEN = 0 end it — the endpoint finishing or failing the DMA at that moment.
 */
import { type EndpointDevice, iova, NO_PASID } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { createDriverSystem, type DriverSystem } from '../../test/driver-system.js';
import { decodeCd } from '../hw/cd.js';
import { encodeStallTerm } from '../hw/commands.js';
import { decodeEvent, EVENT_ID, EVENT_WORDS, type EventRecord } from '../hw/events.js';
import { EVENTQ_ENTRY_BYTES, queueIndex } from '../hw/queue-index.js';
import { REG } from '../hw/regs.js';
import { decodeSte } from '../hw/ste.js';
import type { Smmuv3Domain } from './domain.js';

const RW = { read: true, write: true };
const KiB = 1024n;
const AT = 0x10_0000n;
const HELLO = new TextEncoder().encode('hello');

/** A device on a stage-1 (or stage-2) domain with the page at AT mapped and AT + 4K not. */
function stallRig(options: Record<string, unknown> = {}, stage: 1 | 2 = 1, canStall = true) {
  const s = createDriverSystem({ options });
  const dev = s.device('dev0', 0x10, { canStall });
  s.probe(dev);
  const domain = s.driver.domainAllocPaging(stage === 2 ? { nestParent: true } : {}) as Smmuv3Domain;
  const buf = s.buffer(8 * 4096);
  domain.map(iova(AT), buf, 4n * KiB, RW);
  s.driver.attachDev(domain, dev);
  return { s, dev, domain, buf };
}

/** The records in the Event queue from index `from` (the driver has not drained them). */
function eventsFrom(s: DriverSystem, from = 0): EventRecord[] {
  const base = (s.reg(REG.EVENTQ_BASE) & ~0x1f) >>> 0;
  const log2 = s.reg(REG.EVENTQ_BASE) & 0x1f;
  const count = queueIndex(s.reg(REG.EVENTQ_PROD), log2);
  const words = new Uint32Array(EVENT_WORDS);
  const out: EventRecord[] = [];
  for (let i = from; i < count; i++) {
    s.bus.readWords(base + i * EVENTQ_ENTRY_BYTES, words, EVENT_WORDS, s.bus.counter('test'));
    out.push(decodeEvent(words));
  }
  return out;
}

const respond = (s: DriverSystem, dev: EndpointDevice, stag: number, code: 'success' | 'invalid') =>
  s.driver.pageResponse(dev, { pasid: NO_PASID, groupIndex: stag, code });

describe('stall configuration by the driver (Linux stall_enabled)', () => {
  it('a device firmware marks dma-can-stall gets CD.S = 1 and STE.S1STALLD = 0; another gets the opposite', () => {
    const stalling = stallRig();
    expect(decodeCd(stalling.s.driver.master(stalling.dev).cdTable!.readCd(0)).s).toBe(true);
    expect(decodeSte(stalling.s.driver.streamTable.readSte(0x10)).s1Stalld).toBe(false);
    const plain = stallRig({}, 1, false);
    expect(decodeCd(plain.s.driver.master(plain.dev).cdTable!.readCd(0)).s).toBe(false);
    expect(decodeSte(plain.s.driver.streamTable.readSte(0x10)).s1Stalld).toBe(true);
  });

  it('a stage-2 STE gets S2S for a stalling master; a forced-stall SMMU stalls every master', () => {
    const { s } = stallRig({}, 2);
    expect(decodeSte(s.driver.streamTable.readSte(0x10)).s2S).toBe(true);
    const forced = stallRig({ stallModel: 'force-stall', ats: false, pri: false }, 1, false);
    expect(forced.s.driver.master(forced.dev).stall).toBe(true);
    const none = stallRig({ stallModel: 'no-stall' }, 1, true);
    expect(none.s.driver.master(none.dev).stall).toBe(false);
    expect(decodeSte(none.s.driver.streamTable.readSte(0x10)).s1Stalld).toBe(false);
  });
});

describe('a stalled DMA', () => {
  it('is held: Stall = 1 and a STAG in the event, no data written, a page request with the STAG as group', () => {
    const { s, dev, buf } = stallRig();
    const before = eventsFrom(s).length;
    const r = dev.dmaWrite(AT + 0x1010n, HELLO);
    expect(r).toMatchObject({
      ok: false,
      reason: 'stalled',
      bytesDone: 0,
      fault: { vendorCode: 'F_TRANSLATION' },
    });
    expect(dev.stalledDmaCount).toBe(1);
    expect(s.hw.stalls.size).toBe(1);
    const [event] = eventsFrom(s, before);
    expect(event).toMatchObject({
      id: EVENT_ID.F_TRANSLATION,
      streamId: 0x10,
      stall: true,
      stag: 0,
      rnw: false,
      s2: false,
      inputAddrPage: Number((AT + 0x1000n) / 4096n),
      inputAddrOffset: 0x10,
    });
    s.service();
    expect(s.pageRequests).toEqual([
      {
        device: 'dev0',
        request: { pasid: NO_PASID, iova: AT + 0x1010n, access: 2, groupIndex: 0, last: true },
      },
    ]);
    expect(s.faults).toEqual([]);
    expect(s.driver.stats.stalls).toBe(1);
    expect(s.read(buf + 0x1010n, 5)).toEqual(new Uint8Array(5));
  });

  it('completes when software maps the page and answers success (CMD_RESUME retry)', () => {
    const { s, dev, domain, buf } = stallRig();
    dev.dmaWrite(AT + 0x1010n, HELLO);
    s.service();
    domain.map(iova(AT + 0x1000n), (buf + 0x1000n) as never, 4n * KiB, RW);
    respond(s, dev, 0, 'success');
    expect(s.driver.cmdq.issued.get('CMD_RESUME')).toBe(1);
    expect(s.read(buf + 0x1010n, 5)).toEqual(HELLO);
    expect(dev.stalledDmaCount).toBe(0);
    expect(s.hw.stalls.size).toBe(0);
    expect(dev.stallOutcomes).toMatchObject([{ op: 'write', iova: AT + 0x1010n, ok: true }]);
  });

  it('a read resumes with the data; a DMA across pages goes on from the stalled page', () => {
    const { s, dev, domain, buf } = stallRig();
    s.write(buf + 0x1000n, HELLO);
    dev.dmaRead(AT + 0x1000n, 5);
    domain.map(iova(AT + 0x1000n), (buf + 0x1000n) as never, 4n * KiB, RW);
    respond(s, dev, 0, 'success');
    expect(dev.stallOutcomes[0]).toMatchObject({ op: 'read', ok: true, data: HELLO });

    const data = Uint8Array.from({ length: 0x20 }, (_, i) => i + 1);
    const r = dev.dmaWrite(AT + 0x1ff0n + 0x1000n, data); // page AT+8K is unmapped
    expect(r).toMatchObject({ ok: false, reason: 'stalled', bytesDone: 0 });
    domain.map(iova(AT + 0x2000n), (buf + 0x2000n) as never, 8n * KiB, RW);
    respond(s, dev, 0, 'success');
    expect(s.read(buf + 0x2ff0n, 0x20)).toEqual(data);
    expect(dev.stallOutcomes[1]).toMatchObject({ op: 'write', ok: true });
  });

  it('a retry that faults again stalls again: a new record, the same DMA, still held', () => {
    const { s, dev } = stallRig();
    dev.dmaWrite(AT + 0x1000n, HELLO);
    const before = eventsFrom(s).length;
    respond(s, dev, 0, 'success');
    expect(eventsFrom(s, before)).toMatchObject([{ id: EVENT_ID.F_TRANSLATION, stall: true, stag: 0 }]);
    expect(dev.stalledDmaCount).toBe(1);
    expect(dev.stallOutcomes).toEqual([]);
  });

  it('fails when software answers invalid (CMD_RESUME abort): the DMA ends with the fault', () => {
    const { s, dev, buf } = stallRig();
    dev.dmaWrite(AT + 0x1000n, HELLO);
    respond(s, dev, 0, 'invalid');
    expect(dev.stallOutcomes).toMatchObject([
      { ok: false, failure: { reason: 'fault', fault: { vendorCode: 'F_TRANSLATION', recorded: true } } },
    ]);
    expect(s.read(buf + 0x1000n, 5)).toEqual(new Uint8Array(5));
    expect(s.hw.stalls.size).toBe(0);
  });

  it('CMD_RESUME names a transaction by StreamID and STAG: a wrong StreamID has no effect', () => {
    const { s, dev } = stallRig();
    const other = s.device('dev1', 0x11, { canStall: true });
    s.probe(other);
    dev.dmaWrite(AT + 0x1000n, HELLO);
    respond(s, other, 0, 'invalid');
    expect(dev.stalledDmaCount).toBe(1);
    expect(s.hw.stalls.size).toBe(1);
  });

  it('CMD_STALL_TERM ends every stalled transaction of the stream; SMMUEN = 0 ends them all', () => {
    const { s, dev } = stallRig();
    dev.dmaWrite(AT + 0x1000n, HELLO);
    dev.dmaRead(AT + 0x3000n, 4);
    expect(s.hw.stalls.recorded().map((t) => t.stag)).toEqual([0, 1]);
    s.driver.cmdq.issue(encodeStallTerm({ streamId: 0x10 }));
    expect(dev.stallOutcomes.map((o) => o.ok)).toEqual([false, false]);
    expect(s.hw.stalls.size).toBe(0);

    dev.dmaWrite(AT + 0x1000n, HELLO);
    s.driver.shutdown();
    expect(dev.stallOutcomes).toHaveLength(3);
    expect(dev.stallOutcomes[2]!.ok).toBe(false);
  });

  it('a device that cannot stall is terminated: Stall = 0, an ordinary fault', () => {
    const { s, dev } = stallRig({}, 1, false);
    expect(dev.dmaWrite(AT + 0x1000n, HELLO)).toMatchObject({ ok: false, reason: 'fault' });
    expect(eventsFrom(s).at(-1)).toMatchObject({ id: EVENT_ID.F_TRANSLATION, stall: false });
    expect(s.hw.stalls.size).toBe(0);
  });

  it('stage 2 stalls with STE.S2S: the record has S2 = 1 and the IPA', () => {
    const { s, dev } = stallRig({}, 2);
    expect(dev.dmaWrite(AT + 0x1000n, HELLO)).toMatchObject({ ok: false, reason: 'stalled' });
    expect(eventsFrom(s).at(-1)).toMatchObject({ stall: true, s2: true, ipa: Number(AT + 0x1000n) });
  });

  it('more than IDR5.STALL_MAX stalls: the next one is terminated with Stall = 0', () => {
    const { s, dev } = stallRig({ stallMax: 2 });
    dev.dmaWrite(AT + 0x1000n, HELLO);
    dev.dmaWrite(AT + 0x2000n, HELLO);
    expect(dev.dmaWrite(AT + 0x3000n, HELLO)).toMatchObject({ ok: false, reason: 'fault' });
    expect(eventsFrom(s).map((e) => e.stall)).toEqual([true, true, false]);
  });

  it('a stall whose record finds the Event queue full is held without a STAG and retried once there is room', () => {
    const { s, dev, domain, buf } = stallRig();
    const quiet = s.device('dev1', 0x11);
    s.probe(quiet);
    s.driver.attachDev(domain, quiet);
    // 128 records fill the driver's Event queue (no servicing meanwhile).
    for (let i = 0; i < 128; i++) quiet.dmaWrite(AT + 0x10_0000n, Uint8Array.of(1));
    expect(dev.dmaWrite(AT + 0x1000n, HELLO)).toMatchObject({
      ok: false,
      reason: 'stalled',
      fault: { recorded: false },
    });
    expect(s.hw.stalls.recorded()).toEqual([]);
    expect(s.hw.stalls.size).toBe(1);
    // A stall record is held back, not dropped: no overflow (EVENTQ_PROD.OVFLG stays 0, §7.4).
    expect(s.reg(REG.EVENTQ_PROD) >>> 31).toBe(0);
    domain.map(iova(AT + 0x1000n), (buf + 0x1000n) as never, 4n * KiB, RW);
    // The driver drains the queue (EVENTQ_CONS moves): the retry now translates and the DMA completes.
    s.service();
    expect(s.read(buf + 0x1000n, 5)).toEqual(HELLO);
    expect(dev.stallOutcomes).toMatchObject([{ ok: true }]);
    expect(s.pageRequests).toEqual([]);
  });
});
