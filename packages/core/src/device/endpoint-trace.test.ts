import { beforeEach, describe, expect, it } from 'vitest';
import { ScriptedIommu } from '../../test/scripted-iommu.js';
import { NO_PASID } from '../iommu/translation.js';
import { MemoryBus } from '../memory/memory-bus.js';
import { Tracer } from '../trace/tracer.js';
import { EndpointDevice, type EndpointSpec } from './endpoint.js';

const RAM = 0x1000_0000;
const RAM_PFN = RAM / 4096;

let bus: MemoryBus;
let iommu: ScriptedIommu;
let tracer: Tracer;

function device(spec: Partial<EndpointSpec> = {}, withIommu = true) {
  return new EndpointDevice(
    { name: 'nic0', rid: 0x10, streamId: 0x10, ...spec },
    bus,
    withIommu ? iommu : undefined,
    tracer,
  );
}

/** The records traced so far, without their sequence numbers and messages (the words are not pinned). */
const traced = () => tracer.records.map(({ layer, source, name, args }) => ({ layer, source, name, args }));

beforeEach(() => {
  bus = new MemoryBus();
  bus.addRam('ram', RAM, 16 * 4096);
  iommu = new ScriptedIommu();
  tracer = new Tracer();
  tracer.startRecording();
});

describe('endpoint trace records', () => {
  it('a DMA traces each page it accesses: IOVA, bus address, length and outcome', () => {
    iommu.map(NO_PASID, 0x40, RAM_PFN + 3);
    iommu.map(NO_PASID, 0x41, 0x5); // no memory there: the access aborts
    device().dmaWrite(0x40ffcn, new Uint8Array(8));
    expect(traced()).toEqual([
      {
        layer: 'device',
        source: 'nic0',
        name: 'dma.write',
        args: { iova: 0x40ffcn, hpa: BigInt(RAM + 3 * 4096 + 0xffc), length: 4, ok: true },
      },
      {
        layer: 'device',
        source: 'nic0',
        name: 'dma.write',
        args: { iova: 0x41000n, hpa: 0x5000n, length: 4, ok: false },
      },
    ]);
  });

  it('a read is traced as dma.read; without an IOMMU the bus address is the IOVA', () => {
    device({}, false).dmaRead(BigInt(RAM + 0x10), 2);
    expect(traced()).toEqual([
      {
        layer: 'device',
        source: 'nic0',
        name: 'dma.read',
        args: { iova: BigInt(RAM + 0x10), hpa: BigInt(RAM + 0x10), length: 2, ok: true },
      },
    ]);
  });

  it('an MSI is traced with its address and data, then as the DMA write it is', () => {
    iommu.map(NO_PASID, 0x80, RAM_PFN + 1);
    device().msiWrite(0x80040n, 0x1234_5678);
    expect(traced().map((r) => [r.name, r.args])).toEqual([
      ['msi.write', { address: 0x80040n, data: 0x1234_5678 }],
      ['dma.write', { iova: 0x80040n, hpa: BigInt(RAM + 4096 + 0x40), length: 4, ok: true }],
    ]);
  });

  it('an ATC invalidation is traced with its PASID (null: every PASID), range and the entries dropped', () => {
    const dev = device({ atcEntries: 4, pasidBits: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPasidEnabled(true);
    iommu.map(1, 0x40, RAM_PFN);
    dev.dmaRead(0x40000n, 1, { pasid: 1 });
    tracer.stopRecording();
    tracer.startRecording();
    dev.invalidateAtc(2, 0x40000n, 0x1000n);
    dev.invalidateAtc(undefined, 0x40000n, 0x1000n);
    expect(traced().map((r) => [r.name, r.args])).toEqual([
      ['atc.invalidate', { pasid: 2, iova: 0x40000n, size: 0x1000n, dropped: 0 }],
      ['atc.invalidate', { pasid: null, iova: 0x40000n, size: 0x1000n, dropped: 1 }],
    ]);
  });

  it('a device without an ATC traces an invalidation that dropped nothing', () => {
    device().invalidateAtc(1, 0n, 0x1000n);
    expect(traced().map((r) => [r.name, r.args])).toEqual([
      ['atc.invalidate', { pasid: 1, iova: 0n, size: 0x1000n, dropped: 0 }],
    ]);
  });

  it('PRI: the page request and its response are traced, a stray response as not known', () => {
    const dev = device({ atcEntries: 4, priOutstanding: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPriEnabled(true);
    dev.dmaWrite(0x40123n, Uint8Array.of(1), { requestPages: true });
    dev.pageResponse({ pasid: NO_PASID, groupIndex: 0, code: 'success' });
    dev.pageResponse({ pasid: NO_PASID, groupIndex: 9, code: 'invalid' });
    expect(traced().map((r) => [r.name, r.args])).toEqual([
      ['pri.request', { pasid: NO_PASID, iova: 0x40000n, groupIndex: 0 }],
      ['pri.response', { pasid: NO_PASID, groupIndex: 0, code: 'success', known: true }],
      ['pri.response', { pasid: NO_PASID, groupIndex: 9, code: 'invalid', known: false }],
    ]);
  });

  it('the end of a stalled DMA is traced with its stall id and outcome', () => {
    iommu.stall = true;
    const dev = device();
    dev.dmaRead(0x40000n, 1);
    dev.dmaRead(0x50000n, 1);
    iommu.map(NO_PASID, 0x40, RAM_PFN);
    iommu.release(dev, 100, true);
    iommu.release(dev, 101, false);
    expect(traced().filter((r) => r.name === 'dma.stall.end')).toEqual([
      { layer: 'device', source: 'nic0', name: 'dma.stall.end', args: { stallId: 100, ok: true } },
      { layer: 'device', source: 'nic0', name: 'dma.stall.end', args: { stallId: 101, ok: false } },
    ]);
  });
});
