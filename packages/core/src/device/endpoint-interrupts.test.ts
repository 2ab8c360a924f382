import { beforeEach, describe, expect, it } from 'vitest';
import { ScriptedIommu } from '../../test/scripted-iommu.js';
import { NO_PASID, PERM_WRITE } from '../iommu/translation.js';
import { MemoryBus } from '../memory/memory-bus.js';
import type {
  InterruptRemappingHardware,
  InterruptRequestOutcome,
  X86Interrupt,
} from '../msi/interrupt-remapping.js';
import type { MsiOutcome, MsiRequester } from '../msi/msi-controller.js';
import { Tracer } from '../trace/tracer.js';
import { EndpointDevice } from './endpoint.js';

const RAM = 0x1000_0000;
const INTERRUPT: X86Interrupt = {
  vector: 0x41,
  destination: 300,
  destinationMode: 'physical',
  deliveryMode: 'fixed',
  trigger: 'edge',
};

/** A remapping unit that answers with a scripted outcome and logs what it was asked. */
class ScriptedRemapping implements InterruptRemappingHardware {
  readonly requests: [number, bigint, number][] = [];
  constructor(public outcome: InterruptRequestOutcome) {}
  request(streamId: number, address: bigint, data: number): InterruptRequestOutcome {
    this.requests.push([streamId, address, data]);
    return this.outcome;
  }
}

let bus: MemoryBus;
let iommu: ScriptedIommu & { interruptRemapping?: InterruptRemappingHardware };
let delivered: [X86Interrupt, MsiRequester][];
let windowWrites: [number, number, number | undefined][];

const platform = {
  deliverRemapped(interrupt: X86Interrupt, requester: MsiRequester): MsiOutcome {
    delivered.push([interrupt, requester]);
    return { kind: 'dropped', deviceId: requester.deviceId, eventId: 0, reason: 'test' };
  },
};

function device(remapping?: InterruptRemappingHardware) {
  if (remapping) Object.assign(iommu, { interruptRemapping: remapping });
  return new EndpointDevice({ name: 'nic', rid: 0x18, streamId: 0x18 }, bus, iommu, new Tracer(), platform);
}

beforeEach(() => {
  bus = new MemoryBus();
  bus.addRam('ram', RAM, 4 * 4096);
  delivered = [];
  windowWrites = [];
  // The interrupt window as a controller would claim it: it sees compatibility-format writes.
  bus.addMmio('apic', 0xfee0_0000, 0x10_0000, {
    read: () => 0,
    write: (offset, _size, value, deviceId) => windowWrites.push([offset, value, deviceId]),
  });
  iommu = new ScriptedIommu();
});

describe('an MSI write into the x86 interrupt window behind a remapping unit', () => {
  it('is an interrupt request, not DMA: the remapped interrupt goes to the platform with the requester', () => {
    const remapping = new ScriptedRemapping({ kind: 'remapped', index: 7, interrupt: INTERRUPT });
    expect(device(remapping).msiWrite(0xfee0_00f0n, 0)).toEqual({ ok: true, bytes: 4, hpas: [] });
    expect(remapping.requests).toEqual([[0x18, 0xfee0_00f0n, 0]]);
    expect(delivered).toEqual([[INTERRUPT, { name: 'nic', deviceId: 0x18 }]]);
    expect(iommu.translated).toEqual([]);
    expect(windowWrites).toEqual([]);
  });

  it('passes through to the controller unchanged, tagged with the source, when the unit does not remap it', () => {
    const remapping = new ScriptedRemapping({ kind: 'passthrough' });
    expect(device(remapping).msiWrite(0xfee0_1000n, 0x4031)).toMatchObject({ ok: true, bytes: 4 });
    expect(windowWrites).toEqual([[0x1000, 0x4031, 0x18]]);
    expect(delivered).toEqual([]);
  });

  it('fails with the fault the unit recorded when it blocks the request, and delivers nothing', () => {
    const fault = {
      kind: 'interrupt' as const,
      vendorCode: 'IR_NOT_PRESENT',
      streamId: 0x18,
      pasid: NO_PASID,
      iova: 0xfee0_00f0n,
      access: PERM_WRITE,
      recorded: true,
    };
    const result = device(new ScriptedRemapping({ kind: 'blocked', fault })).msiWrite(0xfee0_00f0n, 0);
    expect(result).toEqual({ ok: false, reason: 'fault', fault, iova: 0xfee0_00f0n, bytesDone: 0 });
    expect(delivered).toEqual([]);
    expect(windowWrites).toEqual([]);
  });

  it('delivers a posted interrupt’s notification event, and nothing when the unit sent none', () => {
    const notify = { ...INTERRUPT, vector: 0xf2 };
    const remapping = new ScriptedRemapping({
      kind: 'posted',
      index: 3,
      posted: { descriptor: 0x2000n, vector: 0x30, notify },
    });
    const dev = device(remapping);
    expect(dev.msiWrite(0xfee0_0060n, 0)).toMatchObject({ ok: true });
    remapping.outcome = { kind: 'posted', index: 3, posted: { descriptor: 0x2000n, vector: 0x30 } };
    expect(dev.msiWrite(0xfee0_0060n, 0)).toMatchObject({ ok: true });
    expect(delivered.map(([i]) => i.vector)).toEqual([0xf2]);
  });

  it('a write just outside the window is DMA, translated like any other', () => {
    const remapping = new ScriptedRemapping({ kind: 'passthrough' });
    iommu.map(NO_PASID, 0xfef00, RAM / 4096);
    iommu.map(NO_PASID, 0xfedff, RAM / 4096 + 1);
    const dev = device(remapping);
    expect(dev.msiWrite(0xfef0_0000n, 1)).toMatchObject({ ok: true, hpas: [BigInt(RAM)] });
    expect(dev.msiWrite(0xfedf_f000n, 1)).toMatchObject({ ok: true, hpas: [BigInt(RAM + 4096)] });
    expect(remapping.requests).toEqual([]);
    expect(iommu.translated).toHaveLength(2);
  });

  it('without a remapping unit a write into the window is DMA too (an IOMMU of another architecture)', () => {
    iommu.map(NO_PASID, 0xfee00, RAM / 4096 + 2);
    expect(device().msiWrite(0xfee0_0040n, 5)).toMatchObject({ ok: true, hpas: [BigInt(RAM + 0x2040)] });
    expect(windowWrites).toEqual([]);
  });

  it('a passed-through write that reaches no controller is a bus abort at the MSI address', () => {
    const lonely = new MemoryBus();
    const dev = new EndpointDevice(
      { name: 'nic', rid: 0x18, streamId: 0x18 },
      lonely,
      Object.assign(new ScriptedIommu(), {
        interruptRemapping: new ScriptedRemapping({ kind: 'passthrough' }),
      }),
      new Tracer(),
    );
    expect(dev.msiWrite(0xfee0_0000n, 1)).toMatchObject({
      ok: false,
      reason: 'abort',
      iova: 0xfee0_0000n,
      bytesDone: 0,
      abort: { reason: 'unmapped' },
    });
  });
});
