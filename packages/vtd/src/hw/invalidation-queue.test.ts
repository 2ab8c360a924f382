import { MemoryBus, RegisterFile } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { IOTLB_SECOND, NO_PASID_TAG, VtdCaches } from './caches.js';
import { EventInterrupt } from './event-interrupt.js';
import { IQEI } from './inv-descriptors.js';
import type { InvalidationTargets } from './invalidation.js';
import { InvalidationQueue } from './invalidation-queue.js';
import { featuresFromOptions, VtdOptionsSchema } from './options.js';
import {
  EVENT_CTL_IM,
  EVENT_CTL_IP,
  FSTS_IQE,
  GSTS_QIES,
  ICS_IWC,
  IQA_DW,
  REG,
  VTD_MMIO_SIZE,
  vtdRegisterTable,
} from './regs.js';

const RAM = 0x10_0000;
const QUEUE = 0x10_0000;
const STATUS = 0x18_0000;
const MSI_PAGE = 0xfee0_0000;
const MMIO = 0xfed9_0000;
const UNMAPPED = 0x4000_0000;

// Descriptors hand-encoded from the §6.5.2 layouts (type in bits 3:0, G at 5:4, DID at 31:16 of qword 0).
const CC_GLOBAL = [0x0000_0011, 0, 0, 0];
const iotlbDomain = (did: number) => [(0x2 | (2 << 4) | (did << 16)) >>> 0, 0, 0, 0];
/** Invalidation wait: IF bit 4, SW bit 5, status data in bits 63:32, status address in bits 127:66. */
const wait = (flags: { sw?: boolean; iflag?: boolean }, data = 0, addr = 0) => [
  0x5 | (flags.iflag ? 1 << 4 : 0) | (flags.sw ? 1 << 5 : 0),
  data,
  addr % 2 ** 32,
  Math.floor(addr / 2 ** 32),
];
const NOP = wait({});
/** PASID-cache invalidation, G = 3 (global). */
const PC_GLOBAL = [0x7 | (3 << 4), 0, 0, 0];
/** Type 0xF: no such descriptor. */
const BAD_TYPE = [0xf, 0, 0, 0];

interface RigOptions {
  readonly scalable?: boolean;
  readonly wide?: boolean;
  /** IQA.QS: 2^qs 4 KiB pages. */
  readonly qs?: number;
  readonly base?: number;
  /** Whether the targets have a trace hook (on by default). */
  readonly trace?: boolean;
}

function rig(options: RigOptions = {}) {
  const features = featuresFromOptions(VtdOptionsSchema.parse({}));
  const regs = new RegisterFile(VTD_MMIO_SIZE, vtdRegisterTable(features));
  const bus = new MemoryBus();
  bus.addRam('ram', RAM, 0x10_0000);
  bus.addRam('msi', MSI_PAGE, 0x1000);
  bus.addMmio('vtd', MMIO, VTD_MMIO_SIZE, regs);
  const counter = bus.counter('vtd');
  const completion = new EventInterrupt(
    regs,
    { control: REG.IECTL, data: REG.IEDATA, address: REG.IEADDR, upperAddress: REG.IEUADDR },
    bus,
    counter,
    0x10,
  );
  const caches = new VtdCaches<{ did: number }, { did: number }>(
    {
      iotlb: { sets: 4, ways: 8, policy: 'lru' },
      context: { sets: 4, ways: 4, policy: 'lru' },
      pasid: { sets: 4, ways: 4, policy: 'lru' },
      pagingStructure: undefined,
    },
    { context: (e) => e.did, pasid: (e) => e.did },
  );
  /** Each FSTS bit raised, with IQERCD as it was when the error became visible. */
  const raised: { bit: number; iqercd: number }[] = [];
  const status = {
    raiseStatus(bit: number) {
      raised.push({ bit, iqercd: regs.get(REG.IQERCD) });
      regs.set(REG.FSTS, regs.get(REG.FSTS) | bit);
    },
  };
  const traces: string[] = [];
  const targets: InvalidationTargets = {
    caches,
    endpoint: () => undefined,
    iec: { invalidateAll: () => {}, invalidateIndex: () => {} },
    scalable: () => options.scalable ?? false,
    ...(options.trace === false
      ? {}
      : {
          tracer: {
            enabled: true,
            trace: (name: string, message: string) => traces.push(`${name}: ${message}`),
          },
        }),
  };
  const queue = new InvalidationQueue({ regs, bus, counter, features, targets, status, completion });

  const wide = options.wide ?? false;
  const slot = wide ? 32 : 16;
  const base = options.base ?? QUEUE;
  regs.write(REG.IQA, 4, (base % 2 ** 32) | (options.qs ?? 0) | (wide ? IQA_DW : 0));
  regs.write(REG.IQA + 4, 4, Math.floor(base / 2 ** 32));
  regs.write(REG.IEDATA, 4, 0x51);
  regs.write(REG.IEADDR, 4, MSI_PAGE + 0x80);
  const queueBytes = 4096 * 2 ** (options.qs ?? 0);

  /** The driver's side: writes descriptors at IQT (padded to the slot), then moves IQT once. */
  const put = (descriptors: readonly (readonly number[])[], publish = true) => {
    let tail = regs.read(REG.IQT, 4);
    for (const d of descriptors) {
      const words = new Uint32Array(slot / 4);
      words.set(d);
      bus.writeWords(base + tail, words, words.length, bus.counter('driver'));
      tail = (tail + slot) % queueBytes;
    }
    if (publish) regs.write(REG.IQT, 4, tail);
  };
  const word = (address: number) => {
    const out = new Uint32Array(1);
    bus.readWords(address, out, 1, bus.counter('probe'));
    return out[0]!;
  };
  const fillContext = () => {
    for (const sid of [0x100, 0x200]) caches.context.set(sid, 0, { did: 1 });
  };
  return { regs, bus, queue, caches, completion, raised, put, word, slot, fillContext, traces };
}

type Rig = ReturnType<typeof rig>;
const iqh = (r: Rig) => r.regs.read(REG.IQH, 4);
const iqe = (r: Rig) => (r.regs.read(REG.FSTS, 4) & FSTS_IQE) !== 0;
const clearIqe = (r: Rig) => {
  r.regs.write(REG.FSTS, 4, FSTS_IQE);
  r.queue.process();
};

/** GCMD.QIE as the global command performs it: GSTS.QIES first, then the queue starts or stops. */
function enable(r: { regs: RegisterFile; queue: InvalidationQueue }, on: boolean): void {
  const gsts = r.regs.get(REG.GSTS);
  r.regs.set(REG.GSTS, on ? gsts | GSTS_QIES : gsts & ~GSTS_QIES);
  r.queue.setEnabled(on);
}

describe('InvalidationQueue: fetching (§6.5.2)', () => {
  it('performs 128-bit descriptors from IQH to IQT once enabled; IQH moves 16 bytes each', () => {
    const r = rig();
    r.fillContext();
    r.put([NOP, CC_GLOBAL]);
    // Not enabled yet: IQT written, nothing fetched.
    expect([iqh(r), r.caches.context.entries().length]).toEqual([0, 2]);
    enable(r, true);
    expect([iqh(r), r.caches.context.entries().length]).toEqual([0x20, 0]);
    expect(r.queue.performed).toMatchObject({ wait: 1, contextCache: 1 });
  });

  it('256-bit descriptors (IQA.DW) in scalable mode: IQH moves 32 bytes each', () => {
    const r = rig({ scalable: true, wide: true });
    enable(r, true);
    r.caches.pasid.set(0x100, 1, { did: 3 });
    r.put([NOP, PC_GLOBAL, NOP]);
    expect(iqh(r)).toBe(0x60);
    expect(r.caches.pasid.entries()).toEqual([]);
  });

  it('wraps at 2^QS pages: a 4 KiB queue of 128-bit descriptors holds 256', () => {
    const r = rig();
    enable(r, true);
    r.put(Array.from({ length: 250 }, () => NOP));
    expect(iqh(r)).toBe(250 * 16);
    r.caches.cacheLeaf(IOTLB_SECOND, 7, NO_PASID_TAG, 0, 12);
    // Six more fill the queue to its end (IQT 0), then three run from its start.
    r.put([NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, iotlbDomain(7)]);
    expect([iqh(r), r.regs.read(REG.IQT, 4)]).toEqual([0x30, 0x30]);
    expect(r.queue.performed.wait).toBe(258);
    expect(r.caches.iotlb.entries()).toEqual([]);
  });

  it('wraps a 256-bit queue of 8 KiB (QS = 1) at 256 descriptors', () => {
    const r = rig({ scalable: true, wide: true, qs: 1 });
    enable(r, true);
    r.put(Array.from({ length: 255 }, () => NOP));
    r.put([NOP, NOP]);
    expect([iqh(r), r.queue.performed.wait]).toEqual([0x20, 257]);
  });
});

describe('InvalidationQueue: invalidation wait (§6.5.2.8)', () => {
  it('SW writes the status data to the status address', () => {
    const r = rig();
    enable(r, true);
    r.put([CC_GLOBAL, wait({ sw: true }, 0xc0ffee01, STATUS + 0x24)]);
    expect(r.word(STATUS + 0x24)).toBe(0xc0ffee01);
    expect([r.queue.statusWrites, r.queue.statusWriteAborts]).toEqual([1, 0]);
  });

  it('a status write that aborts is counted; the queue goes on', () => {
    const r = rig();
    enable(r, true);
    r.put([wait({ sw: true }, 1, UNMAPPED), CC_GLOBAL]);
    expect([r.queue.statusWriteAborts, iqe(r), iqh(r)]).toEqual([1, false, 0x20]);
  });

  it('IF with IECTL unmasked: ICS.IWC is set and the completion message sent', () => {
    const r = rig();
    r.regs.write(REG.IECTL, 4, 0);
    enable(r, true);
    r.put([wait({ iflag: true })]);
    expect(r.regs.read(REG.ICS, 4)).toBe(ICS_IWC);
    expect([r.word(MSI_PAGE + 0x80), r.completion.sent, r.completion.pending]).toEqual([0x51, 1, false]);
  });

  it('IF with IECTL masked: pending (IP) until IM clears; none while IWC is still set', () => {
    const r = rig();
    enable(r, true);
    expect((r.regs.read(REG.IECTL, 4) & EVENT_CTL_IM) >>> 0).toBe(EVENT_CTL_IM);
    r.put([wait({ iflag: true })]);
    expect([r.regs.read(REG.IECTL, 4) & EVENT_CTL_IP, r.completion.sent]).toEqual([EVENT_CTL_IP, 0]);
    r.regs.write(REG.IECTL, 4, 0);
    expect(r.completion.sent).toBe(1);
    // IWC is still set: a second IF wait generates no event.
    r.put([wait({ iflag: true })]);
    expect([r.completion.sent, r.queue.completionEvents]).toEqual([1, 1]);
    // Software clears IWC; the next one does.
    r.regs.write(REG.ICS, 4, ICS_IWC);
    r.put([wait({ iflag: true })]);
    expect([r.completion.sent, r.queue.completionEvents]).toEqual([2, 2]);
  });

  it('clearing ICS.IWC while the event is pending clears IECTL.IP', () => {
    const r = rig();
    enable(r, true);
    r.put([wait({ iflag: true })]);
    expect(r.completion.pending).toBe(true);
    r.regs.write(REG.ICS, 4, ICS_IWC);
    expect(r.completion.pending).toBe(false);
    r.regs.write(REG.IECTL, 4, 0);
    expect(r.completion.sent).toBe(0);
  });

  it('SW and IF together: the status is written before the event is sent', () => {
    const r = rig();
    // The event message goes to the status address: what is left there shows which write came last.
    r.regs.write(REG.IEADDR, 4, STATUS);
    r.regs.write(REG.IECTL, 4, 0);
    enable(r, true);
    r.put([wait({ sw: true, iflag: true }, 7, STATUS)]);
    expect([r.word(STATUS), r.queue.statusWrites, r.completion.sent]).toEqual([0x51, 1, 1]);
  });
});

describe('InvalidationQueue: errors (IQE, IQERCD.IQEI)', () => {
  it('an invalid descriptor: IQEI set before IQE, IQH left on it, nothing after it runs', () => {
    const r = rig();
    enable(r, true);
    r.fillContext();
    r.put([NOP, BAD_TYPE, CC_GLOBAL]);
    expect(r.raised).toEqual([{ bit: FSTS_IQE, iqercd: IQEI.INVALID_TYPE }]);
    expect([iqh(r), r.regs.read(REG.IQERCD, 4), iqe(r)]).toEqual([0x10, IQEI.INVALID_TYPE, true]);
    expect(r.caches.context.entries()).toHaveLength(2);
    // More descriptors and IQT writes change nothing while IQE is set.
    r.put([NOP]);
    expect([iqh(r), r.raised.length]).toEqual([0x10, 1]);
  });

  it('recovers when software fixes the descriptor and clears IQE', () => {
    const r = rig();
    enable(r, true);
    r.fillContext();
    r.put([BAD_TYPE, CC_GLOBAL]);
    expect(iqh(r)).toBe(0);
    // Software replaces the bad descriptor at IQH with a no-op, then clears IQE (W1C).
    r.bus.writeWords(QUEUE, new Uint32Array(NOP), 4, r.bus.counter('driver'));
    clearIqe(r);
    expect([iqe(r), iqh(r), r.caches.context.entries().length]).toEqual([false, 0x20, 0]);
  });

  it('clearing IQE without fixing the descriptor stops at it again', () => {
    const r = rig();
    enable(r, true);
    r.put([BAD_TYPE]);
    clearIqe(r);
    expect([iqe(r), iqh(r), r.raised.length]).toEqual([true, 0, 2]);
  });

  it.each([
    ['a reserved bit (qword 1 bit 0 of a context-cache descriptor)', [0x11, 0, 1, 0], IQEI.RESERVED_FIELD],
    ['a reserved granularity (IOTLB G = 0)', [0x2, 0, 0, 0], IQEI.RESERVED_FIELD],
    ['a PASID-based type in a 128-bit queue', PC_GLOBAL, IQEI.INVALID_TYPE],
    ['AM 46 above CAP.MAMV 45 in a page-selective IOTLB descriptor', [0x32, 0, 46, 0], IQEI.RESERVED_FIELD],
  ])('%s', (_, descriptor, code) => {
    const r = rig();
    enable(r, true);
    r.put([NOP, descriptor]);
    expect([iqh(r), r.regs.read(REG.IQERCD, 4), r.queue.errors[code]]).toEqual([0x10, code, 1]);
  });

  it('a descriptor fetch that aborts: IQEI 2', () => {
    const r = rig({ base: UNMAPPED });
    enable(r, true);
    r.regs.write(REG.IQT, 4, 0x10);
    expect([iqe(r), r.regs.read(REG.IQERCD, 4), iqh(r)]).toEqual([true, IQEI.FETCH_ERROR, 0]);
  });

  it('a tail beyond the queue: IQEI 1, with nothing fetched', () => {
    const r = rig();
    enable(r, true);
    r.regs.write(REG.IQT, 4, 0x7_fff0);
    expect([iqe(r), r.regs.read(REG.IQERCD, 4), iqh(r)]).toEqual([true, IQEI.INVALID_TAIL, 0]);
  });

  it('IQT bit 4 set with 256-bit descriptors: IQEI 6', () => {
    const r = rig({ scalable: true, wide: true });
    enable(r, true);
    r.regs.write(REG.IQT, 4, 0x30);
    expect([iqe(r), r.regs.read(REG.IQERCD, 4), iqh(r)]).toEqual([true, IQEI.TAIL_MISALIGNED, 0]);
    expect(r.queue.performed.wait).toBe(0);
  });

  it('128-bit descriptors while the unit is in scalable mode: IQEI 5', () => {
    const r = rig({ scalable: true, wide: false });
    enable(r, true);
    r.put([NOP]);
    expect([iqe(r), r.regs.read(REG.IQERCD, 4), iqh(r)]).toEqual([true, IQEI.INVALID_WIDTH, 0]);
  });
});

describe('InvalidationQueue: enabling and bounded work', () => {
  it('disabling clears QIES and resets IQH to 0; IQT written meanwhile runs once enabled', () => {
    const r = rig();
    enable(r, true);
    r.put([NOP, NOP]);
    expect(iqh(r)).toBe(0x20);
    enable(r, false);
    expect([iqh(r), r.regs.read(REG.GSTS, 4) & GSTS_QIES, r.queue.enabled]).toEqual([0, 0, false]);
    // Software rewinds its tail and queues two descriptors before enabling again.
    r.regs.write(REG.IQT, 4, 0);
    r.put([CC_GLOBAL, NOP]);
    expect(iqh(r)).toBe(0);
    r.fillContext();
    enable(r, true);
    expect([iqh(r), r.caches.context.entries().length]).toEqual([0x20, 0]);
  });

  it('a queue that feeds itself (each status write moves IQT on) stops after one queue of them', () => {
    const r = rig();
    enable(r, true);
    // Every slot: a wait whose status write sets IQT two slots past itself, so the queue is never empty.
    const slots = Array.from({ length: 256 }, (_, i) =>
      wait({ sw: true }, ((i + 2) * 16) % 4096, MMIO + REG.IQT),
    );
    r.put(slots, false);
    r.regs.write(REG.IQT, 4, 0x10);
    expect(r.queue.performed.wait).toBe(256);
    expect([r.queue.boundReached, iqh(r), r.regs.read(REG.IQT, 4)]).toEqual([1, 0, 0x10]);
    // The next trigger runs the next queue's worth.
    expect(r.queue.process()).toBe(256);
  });

  it('reports its counters as stats', () => {
    const r = rig();
    enable(r, true);
    r.put([NOP, CC_GLOBAL, BAD_TYPE]);
    expect(r.queue.stats()).toMatchObject({
      qiWait: 1,
      qiContextCache: 1,
      qiIotlb: 0,
      qiErrors: 1,
      qiStatusWrites: 0,
    });
  });
});

describe('InvalidationQueue: what process() performs', () => {
  it('returns the descriptors performed: none on an empty queue, none past an error', () => {
    const r = rig();
    enable(r, true);
    // IQT moved without its write hook, as if the trigger had not run yet.
    r.put([NOP, NOP], false);
    r.regs.set(REG.IQT, 0x20);
    expect([r.queue.process(), r.queue.process()]).toEqual([2, 0]);
    r.put([NOP, BAD_TYPE], false);
    r.regs.set(REG.IQT, 0x40);
    expect([r.queue.process(), iqh(r)]).toEqual([1, 0x30]);
  });

  it('a queue that feeds itself up to exactly one queue of descriptors ends empty, not at the bound', () => {
    const r = rig();
    enable(r, true);
    // As above, but the last slot's status write sets IQT to where IQH then is: the queue is empty.
    const slots = Array.from({ length: 256 }, (_, i) =>
      wait({ sw: true }, i === 255 ? 0 : ((i + 2) * 16) % 4096, MMIO + REG.IQT),
    );
    r.put(slots, false);
    r.regs.write(REG.IQT, 4, 0x10);
    expect([r.queue.performed.wait, r.queue.boundReached, iqh(r), r.regs.read(REG.IQT, 4)]).toEqual([
      256, 0, 0, 0,
    ]);
  });

  it('the bound of a 256-bit queue is its 128 slots', () => {
    const r = rig({ scalable: true, wide: true });
    enable(r, true);
    const slots = Array.from({ length: 128 }, (_, i) =>
      wait({ sw: true }, ((i + 2) * 32) % 4096, MMIO + REG.IQT),
    );
    r.put(slots, false);
    r.regs.write(REG.IQT, 4, 0x20);
    expect([r.queue.performed.wait, r.queue.boundReached, iqh(r)]).toEqual([128, 1, 0]);
  });

  it('IQA.QS = 2: a 16 KiB queue, whose tail may lie past the first 4 KiB', () => {
    const r = rig({ qs: 2 });
    enable(r, true);
    r.put(Array.from({ length: 300 }, () => NOP));
    expect([iqe(r), iqh(r)]).toEqual([false, 300 * 16]);
  });

  it('a tail equal to the queue size is beyond it: IQEI 1', () => {
    const r = rig();
    enable(r, true);
    r.regs.write(REG.IQT, 4, 0x1000);
    expect([iqe(r), r.regs.read(REG.IQERCD, 4), iqh(r)]).toEqual([true, IQEI.INVALID_TAIL, 0]);
  });

  it('an ICS write that leaves IWC set keeps the completion event pending', () => {
    const r = rig();
    enable(r, true);
    r.put([wait({ iflag: true })]);
    r.regs.write(REG.ICS, 4, 0);
    expect(r.completion.pending).toBe(true);
    r.regs.write(REG.IECTL, 4, 0);
    expect([r.completion.sent, r.word(MSI_PAGE + 0x80)]).toEqual([1, 0x51]);
  });
});

describe('InvalidationQueue: trace', () => {
  it('traces each wait and each error with its reason', () => {
    const traced = (options: RigOptions, descriptors: (readonly number[])[], tail?: number) => {
      const r = rig(options);
      enable(r, true);
      r.put(descriptors);
      if (tail !== undefined) r.regs.write(REG.IQT, 4, tail);
      return r.traces;
    };
    expect(traced({}, [wait({ sw: true, iflag: true }, 7, STATUS), wait({})])).toEqual([
      'wait: sw 0x7 to 0x180000 if',
      'wait: ',
    ]);
    expect(traced({ scalable: true, wide: true }, [], 0x30)).toEqual([
      'iqe: IQEI 6 at IQH 0x0: IQT 0x30 is not 256-bit aligned',
    ]);
    expect(traced({}, [], 0x1000)).toEqual([
      'iqe: IQEI 1 at IQH 0x0: IQT 0x1000 is beyond the 4096-byte queue',
    ]);
    expect(traced({ scalable: true }, [NOP])).toEqual([
      'iqe: IQEI 5 at IQH 0x0: 128-bit descriptors in scalable mode',
    ]);
    expect(traced({}, [BAD_TYPE])[0]).toMatch(/^iqe: IQEI 3 at IQH 0x0: \S/);
  });

  it('a fetch that aborts past the first page names the address it read', () => {
    // An 8 KiB queue whose second page is past the end of RAM (0x200000).
    const r = rig({ qs: 1, base: 0x1f_f000 });
    enable(r, true);
    r.put(Array.from({ length: 257 }, () => NOP));
    expect([iqh(r), r.regs.read(REG.IQERCD, 4)]).toEqual([0x1000, IQEI.FETCH_ERROR]);
    // 256 waits, then the error.
    expect([r.traces.length, r.traces.at(-1)]).toEqual([
      257,
      'iqe: IQEI 2 at IQH 0x1000: descriptor fetch at 0x200000 aborted',
    ]);
  });

  it('without a trace hook, waits and errors work as with one', () => {
    const r = rig({ trace: false });
    r.regs.write(REG.IECTL, 4, 0);
    enable(r, true);
    r.put([wait({ sw: true, iflag: true }, 7, STATUS), BAD_TYPE]);
    expect([r.word(STATUS), r.word(MSI_PAGE + 0x80), iqe(r), iqh(r)]).toEqual([7, 0x51, true, 0x10]);
  });
});
