/** The stall buffer on its own: STAG allocation, matching on StreamID and STAG, capacity, bulk takes. */
import type { IommuFault, TranslationRequest } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { StallBuffer } from './stalls.js';

const request = (streamId: number): TranslationRequest => ({
  streamId,
  pasid: -1,
  iovaPfn: 1,
  offset: 0,
  access: 2,
});
const fault = { vendorCode: 'F_TRANSLATION' } as IommuFault;

function held(buffer: StallBuffer, streamId: number, recorded = true) {
  const stag = recorded ? buffer.freeStag() : undefined;
  const t = { id: buffer.newId(), request: request(streamId), fault, stag };
  buffer.hold(t);
  return t;
}

describe('StallBuffer', () => {
  it('hands out the lowest free STAG and reuses one only after it was taken', () => {
    const b = new StallBuffer(8);
    const [a, c] = [held(b, 1), held(b, 1)];
    expect([a.stag, c.stag]).toEqual([0, 1]);
    expect(b.take(1, 0)).toBe(a);
    expect(held(b, 2).stag).toBe(0);
    expect(held(b, 2).stag).toBe(2);
  });

  it('CMD_RESUME needs both the StreamID and the STAG to match', () => {
    const b = new StallBuffer(8);
    const t = held(b, 5);
    expect(b.take(6, t.stag!)).toBeUndefined();
    expect(b.take(5, t.stag! + 1)).toBeUndefined();
    expect(b.take(5, t.stag!)).toBe(t);
    expect(b.size).toBe(0);
  });

  it('is full at its capacity (IDR5.STALL_MAX), counting transactions still waiting to be recorded', () => {
    const b = new StallBuffer(2);
    held(b, 1);
    held(b, 1, false);
    expect(b.freeStag()).toBeUndefined();
    expect(b.takeUnrecorded()).toHaveLength(1);
    expect(b.freeStag()).toBe(1);
  });

  it('takes a stream (recorded or not) or everything', () => {
    const b = new StallBuffer(8);
    const mine = [held(b, 1), held(b, 1, false)];
    const other = held(b, 2);
    expect(
      b
        .takeStream(1)
        .map((t) => t.id)
        .sort(),
    ).toEqual(mine.map((t) => t.id).sort());
    expect(b.recorded()).toEqual([other]);
    expect(b.takeAll()).toEqual([other]);
    expect(b.size).toBe(0);
  });

  it('gives every held transaction its own endpoint-facing id', () => {
    const b = new StallBuffer(8);
    expect(new Set([b.newId(), b.newId(), b.newId()]).size).toBe(3);
  });
});
