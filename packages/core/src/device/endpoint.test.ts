import { beforeEach, describe, expect, it } from 'vitest';
import { ScriptedIommu } from '../../test/scripted-iommu.js';
import { IommufdError } from '../errors/iommufd-error.js';
import { NO_PASID, PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '../iommu/translation.js';
import { MemoryBus } from '../memory/memory-bus.js';
import { Tracer } from '../trace/tracer.js';
import { EndpointDevice } from './endpoint.js';

const RAM = 0x1000_0000;

let bus: MemoryBus;
let iommu: ScriptedIommu;

function device(spec: Partial<ConstructorParameters<typeof EndpointDevice>[0]> = {}, withIommu = true) {
  return new EndpointDevice(
    { name: 'dev', rid: 0x10, streamId: 0x10, ...spec },
    bus,
    withIommu ? iommu : undefined,
    new Tracer(),
  );
}

function ramBytes(addr: number, length: number): number[] {
  const r = bus.readBytes(addr, length, bus.counter('test'));
  if (!r.ok) throw new Error('abort');
  return [...r.data];
}

beforeEach(() => {
  bus = new MemoryBus();
  bus.addRam('ram', RAM, 16 * 4096);
  iommu = new ScriptedIommu();
});

describe('EndpointDevice DMA', () => {
  it('splits a DMA at 4 KiB boundaries and translates each page', () => {
    iommu.map(NO_PASID, 0x40, RAM / 4096 + 3);
    iommu.map(NO_PASID, 0x41, RAM / 4096 + 7);
    const data = Uint8Array.from({ length: 10 }, (_, i) => i + 1);
    const result = device().dmaWrite(0x40ffan, data, { hpas: true });
    expect(result).toEqual({
      ok: true,
      bytes: 10,
      hpas: [BigInt(RAM + 3 * 4096 + 0xffa), BigInt(RAM + 7 * 4096)],
    });
    expect(ramBytes(RAM + 3 * 4096 + 0xffa, 6)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ramBytes(RAM + 7 * 4096, 4)).toEqual([7, 8, 9, 10]);
    expect(iommu.translated.map((r) => [r.iovaPfn, r.offset, r.access, r.pasid])).toEqual([
      [0x40, 0xffa, PERM_WRITE, NO_PASID],
      [0x41, 0, PERM_WRITE, NO_PASID],
    ]);
  });

  it('stops at the first faulting page and says how far it got', () => {
    iommu.map(NO_PASID, 0x40, RAM / 4096);
    const result = device().dmaWrite(0x40ff0n, new Uint8Array(0x20));
    expect(result).toMatchObject({
      ok: false,
      reason: 'fault',
      iova: 0x41000n,
      bytesDone: 0x10,
      fault: { kind: 'translation' },
    });
  });

  it('reports a bus abort when the translation points at no memory', () => {
    iommu.map(NO_PASID, 0x40, 0x5);
    const result = device().dmaRead(0x40000n, 4);
    expect(result).toMatchObject({
      ok: false,
      reason: 'abort',
      abort: { reason: 'unmapped', addr: 0x5000n },
    });
  });

  it('reports where a bus abort stopped a DMA that had already moved a page', () => {
    iommu.map(NO_PASID, 0x40, RAM / 4096);
    iommu.map(NO_PASID, 0x41, 0x5);
    const result = device().dmaWrite(0x40ff0n, new Uint8Array(0x20));
    expect(result).toMatchObject({ ok: false, reason: 'abort', iova: 0x41000n, bytesDone: 0x10 });
  });

  it('lists HPAs only when asked, and builds the same bytes either way', () => {
    iommu.map(NO_PASID, 0x40, RAM / 4096 + 3);
    const plain = device().dmaWrite(0x40ff0n, Uint8Array.of(1, 2));
    expect(plain).toEqual({ ok: true, bytes: 2, hpas: [] });
    expect(device().dmaRead(0x40ff0n, 2)).toEqual({ ok: true, data: Uint8Array.of(1, 2), hpas: [] });
    expect(device().dmaRead(0x40ff0n, 2, { hpas: true })).toMatchObject({
      hpas: [BigInt(RAM + 3 * 4096 + 0xff0)],
    });
  });

  it('goes straight to the bus without an IOMMU', () => {
    const dev = device({}, false);
    expect(dev.dmaWrite(BigInt(RAM + 8), Uint8Array.of(0xaa, 0xbb), { hpas: true })).toMatchObject({
      ok: true,
      hpas: [BigInt(RAM + 8)],
    });
    const read = dev.dmaRead(BigInt(RAM + 8), 2);
    expect(read.ok && [...read.data]).toEqual([0xaa, 0xbb]);
  });

  it('writes an MSI as a 32-bit little-endian store through the IOMMU', () => {
    iommu.map(NO_PASID, 0x80, RAM / 4096 + 1);
    expect(device().msiWrite(0x80040n, 0x1234_5678)).toMatchObject({ ok: true, bytes: 4 });
    expect(ramBytes(RAM + 4096 + 0x40, 4)).toEqual([0x78, 0x56, 0x34, 0x12]);
  });
});

describe('PASID', () => {
  it('rejects PASID-tagged DMA until the capability is enabled, and PASIDs beyond its width', () => {
    const dev = device({ pasidBits: 4 });
    const tagged = () => dev.dmaRead(0x1000n, 4, { pasid: 3 });
    expect(tagged).toThrow(IommufdError);
    dev.pci.setPasidEnabled(true);
    iommu.map(3, 1, RAM / 4096);
    expect(tagged()).toMatchObject({ ok: true });
    expect(iommu.translated.at(-1)?.pasid).toBe(3);
    expect(() => dev.dmaRead(0x1000n, 4, { pasid: 16 })).toThrow(/does not fit/);
  });

  it('refuses to enable capabilities the device does not have', () => {
    const dev = device();
    expect(() => dev.pci.setPasidEnabled(true)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => dev.pci.setAtsEnabled(true)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(() => dev.pci.setPriEnabled(true)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });
});

describe('ATS and the ATC', () => {
  it('fills the ATC from ATS translation requests and then uses it without asking the IOMMU', () => {
    const dev = device({ atcEntries: 4 });
    dev.pci.setAtsEnabled(true);
    iommu.map(NO_PASID, 0x40, RAM / 4096);
    dev.dmaWrite(0x40000n, Uint8Array.of(1));
    dev.dmaWrite(0x40008n, Uint8Array.of(2));
    expect(iommu.atsRequests).toHaveLength(1);
    expect(iommu.translated).toHaveLength(0);
    expect(dev.atc?.hits).toBe(1);
  });

  it('keeps using a stale translation until the IOMMU sends an ATC invalidation', () => {
    const dev = device({ atcEntries: 4 });
    dev.pci.setAtsEnabled(true);
    iommu.map(NO_PASID, 0x40, RAM / 4096);
    dev.dmaWrite(0x40000n, Uint8Array.of(1));
    iommu.map(NO_PASID, 0x40, RAM / 4096 + 5); // remapped, but nobody told the ATC
    expect(dev.dmaWrite(0x40000n, Uint8Array.of(2), { hpas: true })).toMatchObject({ hpas: [BigInt(RAM)] });
    dev.invalidateAtc(undefined, 0x40000n, 0x1000n);
    expect(dev.dmaWrite(0x40000n, Uint8Array.of(3), { hpas: true })).toMatchObject({
      hpas: [BigInt(RAM + 5 * 4096)],
    });
  });

  it('invalidates by PASID and range, and the whole space with size 2^64', () => {
    const dev = device({ atcEntries: 8, pasidBits: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPasidEnabled(true);
    for (const pasid of [NO_PASID, 1]) {
      for (const pfn of [0x40, 0x41, 0x42]) {
        iommu.map(pasid, pfn, RAM / 4096);
        dev.dmaRead(BigInt(pfn) << 12n, 1, pasid === NO_PASID ? {} : { pasid });
      }
    }
    expect(dev.atc?.size).toBe(6);
    expect(dev.atc?.invalidate(1, 0x41000n, 0x2000n)).toBe(2);
    expect(dev.atc?.invalidate(undefined, 0x40000n, 0x1000n)).toBe(2);
    expect(dev.atc?.invalidate(NO_PASID, 0n, 1n << 64n)).toBe(2);
    expect(dev.atc?.size).toBe(0);
  });

  /** A device with an ATC and PASIDs on: Priv and Exe travel only in the PASID TLP prefix. */
  function atsPasidDevice() {
    const dev = device({ atcEntries: 4, pasidBits: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPasidEnabled(true);
    return dev;
  }

  it('a privileged DMA hits the ATC on its second access', () => {
    const dev = atsPasidDevice();
    iommu.map(1, 0x40, RAM / 4096);
    const priv = { pasid: 1, privileged: true };
    expect(dev.dmaRead(0x40000n, 4, priv)).toMatchObject({ ok: true });
    expect(dev.dmaWrite(0x40008n, Uint8Array.of(1), priv)).toMatchObject({ ok: true });
    expect(dev.dmaRead(0x40010n, 4, priv)).toMatchObject({ ok: true });
    expect(iommu.atsRequests.map((r) => r.access)).toEqual([PERM_READ | PERM_PRIV]);
    expect(iommu.translated).toHaveLength(0);
    expect(dev.atc?.hits).toBe(2);
  });

  it('does not use a translation obtained for one privilege level for the other', () => {
    const dev = atsPasidDevice();
    // Privileged-only (an EL1-only page): read-write when privileged, nothing unprivileged.
    iommu.map(1, 0x40, RAM / 4096, PERM_READ | PERM_WRITE, 0);
    expect(dev.dmaRead(0x40000n, 4, { pasid: 1, privileged: true })).toMatchObject({ ok: true });
    const user = dev.dmaRead(0x40000n, 4, { pasid: 1 });
    expect(user).toMatchObject({ ok: false, reason: 'fault', fault: { kind: 'permission' } });
    // It asked the IOMMU (an unprivileged Translation Request), not the privileged entry.
    expect(iommu.atsRequests.map((r) => r.access)).toEqual([PERM_READ | PERM_PRIV, PERM_READ]);
    expect(dev.atc?.hits).toBe(0);
    // The other way round: an unprivileged entry with Exe does not answer a privileged fetch.
    iommu.map(1, 0x41, RAM / 4096, PERM_READ, PERM_READ | PERM_EXEC);
    expect(dev.dmaRead(0x41000n, 4, { pasid: 1, exec: true })).toMatchObject({ ok: true });
    expect(dev.dmaRead(0x41000n, 4, { pasid: 1, exec: true, privileged: true })).toMatchObject({
      ok: false,
      fault: { kind: 'permission' },
    });
    expect(dev.atc?.hits).toBe(0);
  });

  it('answers a fetch only from an entry that grants Exe; writes never ask for Exe', () => {
    const dev = atsPasidDevice();
    iommu.map(1, 0x40, RAM / 4096, PERM_READ | PERM_WRITE | PERM_EXEC);
    dev.dmaRead(0x40000n, 4, { pasid: 1 }); // a data read: its completion grants no Exe
    const fetch = { pasid: 1, exec: true };
    expect(dev.dmaRead(0x40000n, 4, fetch)).toMatchObject({ ok: true });
    expect(dev.dmaRead(0x40000n, 4, fetch)).toMatchObject({ ok: true });
    expect(dev.dmaWrite(0x40000n, Uint8Array.of(1), fetch)).toMatchObject({ ok: true });
    // PCIe carries Execute Requested on memory reads only (IHI 0070 §13.7).
    expect(iommu.atsRequests.map((r) => r.access)).toEqual([PERM_READ, PERM_READ | PERM_EXEC]);
    expect(dev.atc?.hits).toBe(2);
  });

  it('an ATC invalidation by PASID and range drops the entries of both privilege levels', () => {
    const dev = device({ atcEntries: 8, pasidBits: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPasidEnabled(true);
    for (const pfn of [0x40, 0x41]) {
      iommu.map(1, pfn, RAM / 4096);
      dev.dmaRead(BigInt(pfn) << 12n, 1, { pasid: 1 });
      dev.dmaRead(BigInt(pfn) << 12n, 1, { pasid: 1, privileged: true });
    }
    expect(dev.atc?.size).toBe(4);
    dev.invalidateAtc(1, 0x40000n, 0x1000n);
    expect(dev.atc?.size).toBe(2);
    dev.invalidateAtc(undefined, 0n, 1n << 64n);
    expect(dev.atc?.size).toBe(0);
    for (const privileged of [false, true]) dev.dmaRead(0x40000n, 1, { pasid: 1, privileged });
    expect(iommu.atsRequests).toHaveLength(6);
  });

  it('cannot mark a DMA privileged or execute without a PASID (PCIe: only the PASID TLP prefix carries them)', () => {
    const dev = atsPasidDevice();
    iommu.map(NO_PASID, 0x40, RAM / 4096, PERM_READ | PERM_WRITE | PERM_EXEC);
    for (const options of [{ privileged: true }, { exec: true }, { privileged: true, exec: true }]) {
      const einval = expect.objectContaining({
        code: 'EINVAL',
        message: expect.stringMatching(/without a PASID/),
      });
      expect(() => dev.dmaRead(0x40000n, 4, options)).toThrow(einval);
      expect(() => dev.dmaWrite(0x40000n, Uint8Array.of(1), options)).toThrow(einval);
    }
    expect([iommu.atsRequests.length, iommu.translated.length]).toEqual([0, 0]);
    // Without those marks the same request is an unprivileged data access.
    expect(dev.dmaRead(0x40000n, 4)).toMatchObject({ ok: true });
    expect(iommu.atsRequests.map((r) => r.access)).toEqual([PERM_READ]);
  });

  it('sends an untranslated request when the ATS answer lacks the needed permission', () => {
    const dev = device({ atcEntries: 4 });
    dev.pci.setAtsEnabled(true);
    iommu.map(NO_PASID, 0x40, RAM / 4096, PERM_READ);
    const result = dev.dmaWrite(0x40000n, Uint8Array.of(1));
    expect(result).toMatchObject({ ok: false, reason: 'fault', fault: { kind: 'permission' } });
    expect(iommu.translated).toHaveLength(1);
  });
});

describe('PRI', () => {
  it('sends a page request when asked, within its outstanding allocation, and frees credits on response', () => {
    const dev = device({ atcEntries: 4, priOutstanding: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPriEnabled(true);
    const first = dev.dmaWrite(0x40000n, Uint8Array.of(1), { requestPages: true });
    const second = dev.dmaWrite(0x41000n, Uint8Array.of(1), { requestPages: true });
    const third = dev.dmaWrite(0x42000n, Uint8Array.of(1), { requestPages: true });
    expect(first).toMatchObject({ ok: false, reason: 'page-request', groupIndex: 0 });
    expect(second).toMatchObject({ ok: false, reason: 'page-request', groupIndex: 1 });
    expect(third).toMatchObject({ ok: false, reason: 'pri-exhausted' });
    expect(iommu.pageRequests).toEqual([
      { pasid: NO_PASID, iova: 0x40000n, access: PERM_WRITE, groupIndex: 0, last: true },
      { pasid: NO_PASID, iova: 0x41000n, access: PERM_WRITE, groupIndex: 1, last: true },
    ]);
    dev.pageResponse({ pasid: NO_PASID, groupIndex: 0, code: 'success' });
    dev.pageResponse({ pasid: NO_PASID, groupIndex: 77, code: 'success' }); // stray: ignored
    expect(dev.pri?.outstanding).toBe(1);
    expect(dev.pri?.lastResponse(0)).toBe('success');
    expect(dev.pri?.lastResponse(77)).toBeUndefined();
    iommu.map(NO_PASID, 0x40, RAM / 4096);
    expect(dev.dmaWrite(0x40000n, Uint8Array.of(1), { requestPages: true })).toMatchObject({ ok: true });
  });

  it('without requestPages, an ATS failure is an ordinary fault', () => {
    const dev = device({ atcEntries: 4, priOutstanding: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPriEnabled(true);
    expect(dev.dmaWrite(0x40000n, Uint8Array.of(1))).toMatchObject({ ok: false, reason: 'fault' });
    expect(iommu.pageRequests).toHaveLength(0);
  });
});

describe('stalled transactions', () => {
  it('a held transaction suspends the DMA; a retry finishes it from the stalled page', () => {
    iommu.map(NO_PASID, 0x40, RAM / 4096);
    iommu.stall = true;
    const dev = device();
    const data = Uint8Array.from({ length: 0x20 }, (_, i) => i + 1);
    expect(dev.dmaWrite(0x40ff0n, data)).toMatchObject({
      ok: false,
      reason: 'stalled',
      stallId: 100,
      iova: 0x41000n,
      bytesDone: 0x10,
    });
    expect(dev.stalledDmaCount).toBe(1);
    expect(ramBytes(RAM + 0xff0, 0x10)).toEqual([...data.subarray(0, 0x10)]);
    expect(ramBytes(RAM + 4096, 0x10)).toEqual(new Array(0x10).fill(0));
    iommu.map(NO_PASID, 0x41, RAM / 4096 + 1);
    iommu.release(dev, 100, true);
    expect(ramBytes(RAM + 4096, 0x10)).toEqual([...data.subarray(0x10)]);
    expect(dev.stallOutcomes).toEqual([{ stallId: 100, op: 'write', iova: 0x40ff0n, ok: true }]);
    expect(dev.stalledDmaCount).toBe(0);
  });

  it('a read completes with all its data; a terminated one fails with the fault', () => {
    iommu.stall = true;
    bus.writeBytes(RAM + 0x10, Uint8Array.of(7, 8, 9), bus.counter('test'));
    const dev = device();
    dev.dmaRead(0x40010n, 3);
    dev.dmaRead(0x50000n, 1);
    iommu.map(NO_PASID, 0x40, RAM / 4096);
    iommu.release(dev, 100, true);
    iommu.release(dev, 101, false);
    expect(dev.stallOutcomes).toMatchObject([
      { stallId: 100, op: 'read', ok: true, data: Uint8Array.of(7, 8, 9) },
      { stallId: 101, op: 'read', ok: false, failure: { reason: 'fault', iova: 0x50000n, bytesDone: 0 } },
    ]);
  });

  it('a resumed DMA that stalls again on a later page is reported when that stall ends', () => {
    iommu.stall = true;
    const dev = device();
    dev.dmaWrite(0x40ff0n, new Uint8Array(0x20));
    iommu.map(NO_PASID, 0x40, RAM / 4096);
    iommu.release(dev, 100, true);
    expect(dev.stallOutcomes).toEqual([]);
    expect(dev.stalledDmaCount).toBe(1);
    iommu.map(NO_PASID, 0x41, RAM / 4096 + 1);
    iommu.release(dev, 101, true);
    expect(dev.stallOutcomes).toMatchObject([{ stallId: 101, ok: true }]);
  });

  it('ignores an id it does not hold', () => {
    const dev = device();
    dev.completeStalled(5, { ok: true, pfn: 1, perm: 3, pageShift: 12 });
    expect(dev.stallOutcomes).toEqual([]);
  });
});
