import {
  MemoryBus,
  NO_PASID,
  type PageRequest,
  type PageResponse,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  RegisterFile,
  Tracer,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { EventInterrupt } from './event-interrupt.js';
import { featuresFromOptions, VtdOptionsSchema } from './options.js';
import { PageRequestQueue } from './page-request-queue.js';
import { decodePageRequest } from './page-requests.js';
import {
  EVENT_CTL_IM,
  EVENT_CTL_IP,
  PRS_PPR,
  PRS_PRO,
  REG,
  VTD_MMIO_SIZE,
  vtdRegisterTable,
} from './regs.js';

const QUEUE = 0x10_0000;
const PECTL_REGS = { control: REG.PECTL, data: REG.PEDATA, address: REG.PEADDR, upperAddress: REG.PEUADDR };

function rig(pqs = 0, base = QUEUE, traced = true) {
  const features = featuresFromOptions(VtdOptionsSchema.parse({}));
  const regs = new RegisterFile(VTD_MMIO_SIZE, vtdRegisterTable(features));
  const bus = new MemoryBus();
  bus.addRam('prq', QUEUE, 0x8000);
  bus.addRam('msi', 0xfee0_0000, 0x1000);
  const counter = bus.counter('vtd');
  const event = new EventInterrupt(regs, PECTL_REGS, bus, counter, 0);
  regs.write(REG.PEADDR, 4, 0xfee0_0000);
  const responses: (PageResponse & { sid: number })[] = [];
  const tracer = new Tracer();
  tracer.startRecording();
  const queue = new PageRequestQueue(
    regs,
    bus,
    counter,
    features,
    event,
    (sid, response) => responses.push({ sid, ...response }),
    traced ? { tracer, source: 'iommu0' } : undefined,
  );
  // Software setup (§7.4.1): PQH = PQT = 0, then the queue's base and size.
  regs.write(REG.PQA, 4, base + pqs);
  return { regs, bus, counter, event, queue, responses, tracer };
}

const pr = (fields: Partial<PageRequest> = {}): PageRequest => ({
  pasid: 7,
  iova: 0x4000n,
  access: PERM_READ,
  groupIndex: 1,
  last: false,
  ...fields,
});

function descriptorAt(bus: MemoryBus, address: number): number[] {
  const words = new Uint32Array(8);
  expect(bus.readWords(address, words, 8, bus.counter('probe'))).toBe(true);
  return Array.from(words);
}

const prs = (regs: RegisterFile) => regs.read(REG.PRS, 4);

/**
 * What Linux does (intel/prq.c): clear PPR, read PQH and PQT, consume the descriptors between them, write
 * PQH = PQT, then clear PRO once the queue is empty. Returns the consumed descriptors' group indices.
 */
function linuxConsume(regs: RegisterFile, bus: MemoryBus, size: number): number[] {
  regs.write(REG.PRS, 4, PRS_PPR);
  let head = regs.read(REG.PQH, 4);
  const tail = regs.read(REG.PQT, 4);
  const groups: number[] = [];
  while (head !== tail) {
    groups.push(decodePageRequest(descriptorAt(bus, QUEUE + head), 0).prgIndex);
    head = (head + 32) % size;
  }
  regs.write(REG.PQH, 4, tail);
  if ((prs(regs) & PRS_PRO) !== 0 && regs.read(REG.PQH, 4) === regs.read(REG.PQT, 4))
    regs.write(REG.PRS, 4, PRS_PRO);
  return groups;
}

describe('PageRequestQueue: descriptors (VT-d §7.4.1.1)', () => {
  it('writes a request with a PASID at PQA + PQT, word by word, and advances PQT by 32', () => {
    const { regs, bus, queue } = rig();
    const ok = queue.request(
      0x0208,
      pr({
        pasid: 0x1_2345,
        iova: 0x7fff_1234_5678n,
        access: PERM_READ | PERM_WRITE | PERM_EXEC | PERM_PRIV,
        groupIndex: 0x1a5,
        last: true,
      }),
    );
    expect(ok).toBe(true);
    // qw0: type 01h, PP 8, RID 31:16, PASID 51:32, EXR 52, PMR 53; qw1: RDR 0, WRR 1, LPIG 2, PRGI 11:3,
    // address 63:12; qw2–qw3 (private data) 0.
    expect(descriptorAt(bus, QUEUE)).toEqual([0x0208_0101, 0x0031_2345, 0x1234_5d2f, 0x7fff, 0, 0, 0, 0]);
    expect(regs.read(REG.PQT, 4)).toBe(32);
  });

  it('writes a request without a PASID with PP, EXR and PMR clear, and a 64-bit page address', () => {
    const { bus, queue } = rig();
    queue.request(
      0x0010,
      pr({
        pasid: NO_PASID,
        iova: 0xffff_ffff_ffff_f123n,
        access: PERM_WRITE | PERM_EXEC | PERM_PRIV,
        groupIndex: 3,
      }),
    );
    expect(descriptorAt(bus, QUEUE)).toEqual([0x0010_0001, 0, 0xffff_f01a, 0xffff_ffff, 0, 0, 0, 0]);
  });

  it('wraps PQT from the last entry to 0 (2^PQS 4 KiB pages)', () => {
    const { regs, bus, queue } = rig(1);
    regs.write(REG.PQH, 4, 0x1fe0);
    regs.write(REG.PQT, 4, 0x1fe0);
    expect(queue.request(1, pr({ groupIndex: 9 }))).toBe(true);
    expect(decodePageRequest(descriptorAt(bus, QUEUE + 0x1fe0), 0).prgIndex).toBe(9);
    expect(regs.read(REG.PQT, 4)).toBe(0);
  });

  it('holds at most N − 1 requests: the 128th in a one-page queue finds it full', () => {
    const { queue } = rig(0);
    for (let i = 0; i < 127; i++) expect(queue.request(1, pr({ groupIndex: i }))).toBe(true);
    expect(queue.request(1, pr())).toBe(false);
    expect(queue.stats()).toEqual({
      prqQueued: 127,
      prqDropped: 1,
      prqOverflows: 1,
      prqAborts: 0,
      prqAutoResponses: 0,
    });
  });
});

describe('PageRequestQueue: overflow (VT-d §7.4.1, Table 31)', () => {
  it('full: sets PRO and drops; answers a last request Success, others not at all', () => {
    const { regs, queue, responses } = rig();
    regs.write(REG.PQH, 4, 0x40);
    regs.write(REG.PQT, 4, 0x20);
    expect(queue.request(0x30, pr({ groupIndex: 4, last: false }))).toBe(false);
    expect([prs(regs), regs.read(REG.PQT, 4), responses]).toEqual([PRS_PRO, 0x20, []]);
    // PRO set: the PRQ overflow condition drops whatever arrives, with the same answers.
    regs.write(REG.PQH, 4, 0x20);
    expect(queue.request(0x30, pr({ groupIndex: 4, last: true }))).toBe(false);
    expect(responses).toEqual([{ sid: 0x30, pasid: 7, groupIndex: 4, code: 'success' }]);
    expect(queue.stats()).toMatchObject({ prqDropped: 2, prqOverflows: 1, prqAutoResponses: 1 });
  });

  it('never answers a dropped Stop Marker (PASID, last, neither read nor write)', () => {
    const { regs, queue, responses } = rig();
    regs.write(REG.PQH, 4, 0x20); // full: tail 0 is one behind head
    expect(queue.request(1, pr({ access: 0, last: true }))).toBe(false);
    expect(queue.request(1, pr({ pasid: NO_PASID, access: 0, last: true, groupIndex: 2 }))).toBe(false);
    // Without a PASID it is an ordinary (odd) request and is answered.
    expect(responses).toEqual([{ sid: 1, pasid: NO_PASID, groupIndex: 2, code: 'success' }]);
  });

  it('PRO stays until software clears it; after Linux drains the queue, requests are queued again', () => {
    const { regs, bus, queue } = rig();
    for (let i = 0; i < 128; i++) queue.request(1, pr({ groupIndex: i % 512 }));
    expect(prs(regs)).toBe(PRS_PPR | PRS_PRO);
    const consumed = linuxConsume(regs, bus, 0x1000);
    expect(consumed).toEqual(Array.from({ length: 127 }, (_, i) => i));
    expect(prs(regs)).toBe(0);
    expect(queue.request(1, pr({ groupIndex: 200 }))).toBe(true);
    expect(linuxConsume(regs, bus, 0x1000)).toEqual([200]);
  });
});

describe('PageRequestQueue: page request event (VT-d §7.5)', () => {
  it('unmasked: raises the event when PPR goes from 0 to 1, not again while PPR is set', () => {
    const { regs, event, queue } = rig();
    regs.write(REG.PECTL, 4, 0);
    queue.request(1, pr());
    queue.request(1, pr());
    expect([event.sent, prs(regs)]).toEqual([1, PRS_PPR]);
    // Linux clears PPR before reading the queue, so the next request interrupts again.
    regs.write(REG.PRS, 4, PRS_PPR);
    queue.request(1, pr());
    expect(event.sent).toBe(2);
  });

  it('raises the event when the queue is found full with neither PPR nor PRO set, and not for PRO drops', () => {
    const { regs, event, queue } = rig();
    regs.write(REG.PECTL, 4, 0);
    regs.write(REG.PQH, 4, 0x20);
    queue.request(1, pr());
    expect([event.sent, prs(regs)]).toEqual([1, PRS_PRO]);
    queue.request(1, pr());
    expect(event.sent).toBe(1);
  });

  it('raises nothing when the queue fills while PPR is pending', () => {
    const { regs, event, queue } = rig();
    regs.write(REG.PECTL, 4, 0);
    regs.write(REG.PQH, 4, 0x40);
    queue.request(1, pr());
    queue.request(1, pr());
    expect([event.sent, prs(regs)]).toEqual([1, PRS_PPR | PRS_PRO]);
  });

  it('masked: holds the event in IP, sends it when software clears IM', () => {
    const { regs, event, queue } = rig();
    queue.request(1, pr());
    expect([event.sent, regs.read(REG.PECTL, 4)]).toEqual([0, (EVENT_CTL_IM | EVENT_CTL_IP) >>> 0]);
    regs.write(REG.PECTL, 4, 0);
    expect([event.sent, event.pending]).toEqual([1, false]);
  });

  it('masked: withdraws IP once software has cleared both PPR and PRO', () => {
    const { regs, event, queue } = rig();
    regs.write(REG.PQH, 4, 0x40);
    queue.request(1, pr());
    queue.request(1, pr());
    regs.write(REG.PRS, 4, PRS_PPR);
    expect(event.pending).toBe(true); // PRO still set
    regs.write(REG.PRS, 4, PRS_PRO);
    expect(event.pending).toBe(false);
    regs.write(REG.PECTL, 4, 0);
    expect(event.sent).toBe(0);
  });
});

describe('PageRequestQueue: a descriptor write that aborts', () => {
  it('drops the request like an overflow: PQT and PRS unchanged, no event, Success for a last request', () => {
    const { regs, counter, event, queue, responses, tracer } = rig(0, 0x4000_0000);
    regs.write(REG.PECTL, 4, 0);
    expect(queue.request(5, pr({ groupIndex: 6, last: true }))).toBe(false);
    expect([regs.read(REG.PQT, 4), prs(regs), event.sent, counter.aborts]).toEqual([0, 0, 0, 1]);
    expect(responses).toEqual([{ sid: 5, pasid: 7, groupIndex: 6, code: 'success' }]);
    expect(queue.stats()).toMatchObject({ prqAborts: 1, prqDropped: 1, prqOverflows: 0 });
    expect(tracer.records.at(-1)?.message).toBe(
      'page request sid 0x5 IOVA 0x4000 group 6 dropped: descriptor write to 0x40000000 aborted, answered Success',
    );
  });
});

describe('PageRequestQueue: construction', () => {
  it('needs a unit with page requests (ECAP.PRS)', () => {
    const features = featuresFromOptions(VtdOptionsSchema.parse({ scalableMode: false }));
    const regs = new RegisterFile(VTD_MMIO_SIZE, vtdRegisterTable(features));
    const bus = new MemoryBus();
    // A legacy unit has no PECTL: any event will do to reach the check.
    const fault = { control: REG.FECTL, data: REG.FEDATA, address: REG.FEADDR, upperAddress: undefined };
    const event = new EventInterrupt(regs, fault, bus, bus.counter('vtd'), 0);
    expect(() => new PageRequestQueue(regs, bus, bus.counter('vtd'), features, event, () => {})).toThrow(
      /ECAP.PRS/,
    );
  });
});

describe('PageRequestQueue: queue geometry and descriptor bits', () => {
  it('PQS = 2: a 16 KiB queue, PQT wrapping from its last entry', () => {
    const { regs, bus, queue } = rig(2);
    regs.write(REG.PQH, 4, 0x3fe0);
    regs.write(REG.PQT, 4, 0x3fe0);
    expect(queue.request(1, pr({ groupIndex: 9 }))).toBe(true);
    expect(decodePageRequest(descriptorAt(bus, QUEUE + 0x3fe0), 0).prgIndex).toBe(9);
    expect(regs.read(REG.PQT, 4)).toBe(0);
  });

  it('a queue above 4 GiB: PQA bits 63:32 from its high half', () => {
    const { regs, bus, queue } = rig();
    const high = 2 ** 32 + QUEUE;
    bus.addRam('high', high, 0x1000);
    regs.write(REG.PQA, 4, QUEUE);
    regs.write(REG.PQA + 4, 4, 1);
    expect(queue.request(1, pr({ groupIndex: 9 }))).toBe(true);
    expect(decodePageRequest(descriptorAt(bus, high), 0).prgIndex).toBe(9);
    expect(descriptorAt(bus, QUEUE)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('a read with a PASID: EXR, PMR and WRR clear', () => {
    const { bus, queue } = rig();
    queue.request(0x0208, pr({ pasid: 5, access: PERM_READ, groupIndex: 1 }));
    expect(decodePageRequest(descriptorAt(bus, QUEUE), 0)).toMatchObject({
      pasidPresent: true,
      pasid: 5,
      exe: false,
      priv: false,
      read: true,
      write: false,
    });
  });
});

describe('PageRequestQueue: trace', () => {
  it('records each descriptor written and each request dropped, with why', () => {
    const { regs, queue, tracer } = rig();
    queue.request(0x10, pr({ groupIndex: 3, last: true }));
    regs.write(REG.PQH, 4, 0x40);
    queue.request(0x10, pr({ groupIndex: 4 }));
    queue.request(0x10, pr({ groupIndex: 5 }));
    expect(tracer.records.map(({ layer, source, name, message }) => [layer, source, name, message])).toEqual([
      ['hw', 'iommu0', 'prq.write', 'page request sid 0x10 IOVA 0x4000 group 3 (last) at PQ offset 0x0'],
      ['hw', 'iommu0', 'prq.drop', 'page request sid 0x10 IOVA 0x4000 group 4 dropped: queue full, PRO set'],
      ['hw', 'iommu0', 'prq.drop', 'page request sid 0x10 IOVA 0x4000 group 5 dropped: PRO set'],
    ]);
  });

  it('without a trace, requests are queued and dropped alike', () => {
    const { regs, queue, responses } = rig(0, QUEUE, false);
    expect(queue.request(1, pr())).toBe(true);
    regs.write(REG.PQH, 4, 0x40);
    expect(queue.request(1, pr({ last: true }))).toBe(false);
    expect([responses.length, queue.queued, queue.dropped]).toEqual([1, 1, 1]);
  });
});
