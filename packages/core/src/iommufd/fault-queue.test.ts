import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import type { IommuDeviceRef } from '../iommu/driver.js';
import type { PageRequest, PageResponse } from '../iommu/hardware.js';
import type { IommuCore } from '../iommu/iommu-core.js';
import { NO_PASID } from '../iommu/translation.js';
import { FaultObject, type PageFaultRecord } from './fault-queue.js';

interface Sent extends PageResponse {
  readonly device: string;
}

function setup() {
  const sent: Sent[] = [];
  const core = {
    respond: (device: IommuDeviceRef, response: PageResponse) =>
      sent.push({ device: device.name, ...response }),
  } as unknown as IommuCore;
  const fault = new FaultObject(core);
  return { fault, sent };
}

const devA = { name: 'devA' } as IommuDeviceRef;
const devB = { name: 'devB' } as IommuDeviceRef;

function request(groupIndex: number, iova: bigint, last: boolean, pasid = NO_PASID, access = 1): PageRequest {
  return { pasid, iova, access, groupIndex, last };
}

const addrs = (records: PageFaultRecord[]) => records.map((r) => r.addr);

describe('FaultObject', () => {
  it('IOMMU_FAULT_QUEUE read: a group is readable only once its LAST request arrived, and then whole', () => {
    const { fault } = setup();
    fault.enqueue(devA, 1, request(5, 0x1000n, false));
    fault.enqueue(devA, 1, request(5, 0x2000n, false));
    expect(fault.queued).toBe(0);
    expect(fault.read()).toEqual([]);
    fault.enqueue(devA, 1, request(5, 0x3000n, true));
    expect(fault.queued).toBe(1);
    const records = fault.read();
    expect(addrs(records)).toEqual([0x1000n, 0x2000n, 0x3000n]);
    expect(records.map((r) => r.last)).toEqual([false, false, true]);
    expect(new Set(records.map((r) => r.cookie)).size).toBe(1);
    expect(fault.queued).toBe(0);
    expect(fault.read()).toEqual([]);
  });

  it('struct iommu_hwpt_pgfault: dev_id, PASID (none without PASID_VALID), group id, perm, addr, 4 KiB length', () => {
    const { fault } = setup();
    fault.enqueue(devA, 3, request(9, 0x4000n, true, 7, 2));
    fault.enqueue(devA, 3, request(9, 0x5000n, true, NO_PASID, 1));
    const [withPasid, without] = fault.read();
    expect(withPasid).toMatchObject({ devId: 3, pasid: 7, groupId: 9, perm: 2, addr: 0x4000n, length: 4096 });
    expect(without).toMatchObject({ devId: 3, pasid: undefined, groupId: 9, perm: 1, addr: 0x5000n });
    expect(withPasid?.cookie).not.toBe(without?.cookie);
  });

  it('interleaved groups are each read whole, in the order their first request arrived', () => {
    const { fault } = setup();
    fault.enqueue(devA, 1, request(1, 0xa1000n, false));
    fault.enqueue(devA, 1, request(2, 0xb1000n, false));
    fault.enqueue(devA, 1, request(1, 0xa2000n, true));
    expect(addrs(fault.read())).toEqual([0xa1000n, 0xa2000n]);
    fault.enqueue(devA, 1, request(3, 0xc1000n, false));
    fault.enqueue(devA, 1, request(3, 0xc2000n, true));
    fault.enqueue(devA, 1, request(2, 0xb2000n, true));
    expect(addrs(fault.read())).toEqual([0xb1000n, 0xb2000n, 0xc1000n, 0xc2000n]);
  });

  it('page request groups are told apart by device, PASID and group index', () => {
    const { fault } = setup();
    fault.enqueue(devA, 1, request(4, 0x1000n, false));
    fault.enqueue(devB, 2, request(4, 0x2000n, false));
    fault.enqueue(devA, 1, request(4, 0x3000n, false, 6));
    fault.enqueue(devA, 1, request(4, 0x4000n, true, 6));
    expect(addrs(fault.read())).toEqual([0x3000n, 0x4000n]);
    fault.enqueue(devB, 2, request(4, 0x5000n, true));
    fault.enqueue(devA, 1, request(4, 0x6000n, true));
    const records = fault.read();
    expect(addrs(records)).toEqual([0x1000n, 0x6000n, 0x2000n, 0x5000n]);
    expect(records.map((r) => r.devId)).toEqual([1, 1, 2, 2]);
  });

  it('a group index is reused after its group completed: the new group gets a new cookie', () => {
    const { fault } = setup();
    fault.enqueue(devA, 1, request(8, 0x1000n, true));
    fault.enqueue(devA, 1, request(8, 0x2000n, true));
    const records = fault.read();
    expect(records).toHaveLength(2);
    expect(records[0]?.cookie).not.toBe(records[1]?.cookie);
  });

  it('IOMMU_HWPT_PAGE_RESPONSE: the response by cookie reaches the core with the group device, PASID and index', () => {
    const { fault, sent } = setup();
    fault.enqueue(devB, 2, request(17, 0x1000n, false, 3));
    fault.enqueue(devB, 2, request(17, 0x2000n, true, 3));
    const [first] = fault.read();
    fault.respond(first!.cookie, 'success');
    expect(sent).toEqual([{ device: 'devB', pasid: 3, groupIndex: 17, code: 'success' }]);
  });

  it('IOMMU_HWPT_PAGE_RESPONSE: EINVAL for an unknown cookie, a group not read yet, or one already answered', () => {
    const { fault, sent } = setup();
    expect(errnoOf(() => fault.respond(1, 'success'))).toBe('EINVAL');
    fault.enqueue(devA, 1, request(1, 0x1000n, true));
    expect(errnoOf(() => fault.respond(1, 'success'))).toBe('EINVAL'); // queued but not read
    const [record] = fault.read();
    expect(record?.cookie).toBe(1);
    fault.respond(1, 'invalid');
    expect(errnoOf(() => fault.respond(1, 'success'))).toBe('EINVAL');
    expect(sent).toHaveLength(1);
  });

  it('detach/replace (iommufd_auto_response_faults): abandon answers invalid for the pending and read-but-unanswered groups of that device and PASID only', () => {
    const { fault, sent } = setup();
    fault.enqueue(devA, 1, request(1, 0x1000n, true)); // read, unanswered
    const read = fault.read();
    fault.enqueue(devA, 1, request(2, 0x2000n, true)); // complete, not read
    fault.enqueue(devA, 1, request(3, 0x3000n, false)); // incomplete
    fault.enqueue(devA, 1, request(4, 0x4000n, true, 5)); // other PASID
    fault.enqueue(devB, 2, request(1, 0x5000n, true)); // other device

    fault.abandon(devA, NO_PASID);
    expect(sent.map((s) => [s.device, s.pasid, s.groupIndex, s.code]).sort()).toEqual([
      ['devA', NO_PASID, 1, 'invalid'],
      ['devA', NO_PASID, 2, 'invalid'],
    ]);
    expect(errnoOf(() => fault.respond(read[0]!.cookie, 'success'))).toBe('EINVAL');
    expect(fault.queued).toBe(2);
    expect(addrs(fault.read())).toEqual([0x4000n, 0x5000n]);
    // The incomplete group is gone: its LAST request now starts and completes a group of its own.
    fault.enqueue(devA, 1, request(3, 0x3800n, true));
    expect(addrs(fault.read())).toEqual([0x3800n]);
  });

  it('FAULT destroy: every complete group still unanswered, read or not, is answered invalid; incomplete ones are dropped', () => {
    const { fault, sent } = setup();
    fault.enqueue(devA, 1, request(1, 0x1000n, true));
    fault.enqueue(devA, 1, request(6, 0x6000n, true));
    const [g1, g6] = fault.read();
    fault.respond(g6!.cookie, 'success'); // answered: no second response
    fault.enqueue(devB, 2, request(2, 0x2000n, true, 4)); // complete, not read
    fault.enqueue(devA, 1, request(3, 0x3000n, false)); // incomplete
    fault.destroy();
    expect(sent.map((s) => [s.device, s.pasid, s.groupIndex, s.code]).sort()).toEqual([
      ['devA', NO_PASID, 1, 'invalid'],
      ['devA', NO_PASID, 6, 'success'],
      ['devB', 4, 2, 'invalid'],
    ]);
    expect(errnoOf(() => fault.respond(g1!.cookie, 'success'))).toBe('EINVAL');
    expect(fault.queued).toBe(0);
  });

  it('property: reads return whole groups, and every complete group is answered exactly once by the time the queue is destroyed', () => {
    const step = fc.oneof(
      fc.record({
        kind: fc.constant('enqueue' as const),
        dev: fc.integer({ min: 0, max: 1 }),
        pasid: fc.constantFrom(NO_PASID, 1),
        group: fc.integer({ min: 0, max: 2 }),
        last: fc.boolean(),
      }),
      fc.constant({ kind: 'read' as const }),
      fc.record({ kind: fc.constant('respond' as const), pick: fc.nat() }),
      fc.record({
        kind: fc.constant('abandon' as const),
        dev: fc.integer({ min: 0, max: 1 }),
        pasid: fc.constantFrom(NO_PASID, 1),
      }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 50 }), (steps) => {
        const { fault, sent } = setup();
        const devices = [devA, devB];
        let lasts = 0;
        let addr = 0n;
        const unanswered: number[] = [];
        for (const s of steps) {
          if (s.kind === 'enqueue') {
            if (s.last) lasts++;
            addr += 0x1000n;
            fault.enqueue(devices[s.dev]!, s.dev + 1, request(s.group, addr, s.last, s.pasid));
          } else if (s.kind === 'read') {
            const records = fault.read();
            // Whole groups: each cookie's records are contiguous and end with its LAST record.
            let i = 0;
            while (i < records.length) {
              const cookie = records[i]!.cookie;
              let j = i;
              while (j < records.length && records[j]!.cookie === cookie) j++;
              expect(records.slice(i, j).map((r) => r.last)).toEqual([...Array(j - i - 1).fill(false), true]);
              expect(records.slice(j).some((r) => r.cookie === cookie)).toBe(false);
              unanswered.push(cookie);
              i = j;
            }
          } else if (s.kind === 'respond') {
            if (unanswered.length === 0) continue;
            const [cookie] = unanswered.splice(s.pick % unanswered.length, 1);
            // It may have been answered invalid by an abandon meanwhile.
            const errno = errnoOf(() => fault.respond(cookie!, 'success'));
            expect([undefined, 'EINVAL']).toContain(errno);
          } else {
            fault.abandon(devices[s.dev]!, s.pasid);
          }
        }
        fault.destroy();
        expect(sent).toHaveLength(lasts);
      }),
    );
  });
});
