import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ScriptedIommu } from '../../test/scripted-iommu.js';
import { errnoOf } from '../errors/iommufd-error.js';
import { NO_PASID, PERM_PRIV, PERM_READ, PERM_WRITE } from '../iommu/translation.js';
import { MemoryBus } from '../memory/memory-bus.js';
import { Tracer } from '../trace/tracer.js';
import { EndpointDevice, type EndpointSpec } from './endpoint.js';

const RAM = 0x1000_0000;
const RAM_PFN = RAM / 4096;
const DOORBELL = 0x800_0000;

let bus: MemoryBus;
let iommu: ScriptedIommu;
/** What the MMIO region at DOORBELL saw: offset, size, value and the DeviceID sideband. */
let mmio: string[];

function device(spec: Partial<EndpointSpec> = {}, withIommu = true) {
  return new EndpointDevice(
    { name: 'dev', rid: 0x0108, streamId: 0x42, ...spec },
    bus,
    withIommu ? iommu : undefined,
    new Tracer(),
  );
}

beforeEach(() => {
  bus = new MemoryBus();
  bus.addRam('ram', RAM, 16 * 4096);
  mmio = [];
  bus.addMmio('its', DOORBELL, 0x1000, {
    read: (offset, size) => {
      mmio.push(`read ${offset.toString(16)}/${size}`);
      return 0x1122_3344 + offset;
    },
    write: (offset, size, value, deviceId) =>
      mmio.push(`write ${offset.toString(16)}/${size}=${value.toString(16)} dev ${deviceId}`),
  });
  iommu = new ScriptedIommu();
});

describe('DMA to MMIO (an MSI doorbell)', () => {
  it('a naturally aligned 1/2/4/8-byte write is one bus access carrying the StreamID as DeviceID', () => {
    const dev = device({}, false);
    dev.dmaWrite(BigInt(DOORBELL + 0x40), Uint8Array.of(0x78, 0x56, 0x34, 0x12));
    dev.dmaWrite(BigInt(DOORBELL + 0x42), Uint8Array.of(0xcd, 0xab));
    dev.dmaWrite(BigInt(DOORBELL + 0x45), Uint8Array.of(0xee));
    dev.dmaWrite(BigInt(DOORBELL + 0x48), Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    expect(mmio).toEqual([
      'write 40/4=12345678 dev 66',
      'write 42/2=abcd dev 66',
      'write 45/1=ee dev 66',
      'write 48/4=4030201 dev 66',
      'write 4c/4=8070605 dev 66',
    ]);
  });

  it('a read of 1/2/4/8 aligned bytes is a bus read, little-endian into the buffer', () => {
    const dev = device({}, false);
    const word = dev.dmaRead(BigInt(DOORBELL + 0x10), 4);
    expect(word.ok && [...word.data]).toEqual([0x54, 0x33, 0x22, 0x11]);
    const quad = dev.dmaRead(BigInt(DOORBELL + 0x20), 8);
    expect(quad.ok && [...quad.data]).toEqual([0x64, 0x33, 0x22, 0x11, 0x68, 0x33, 0x22, 0x11]);
    const half = dev.dmaRead(BigInt(DOORBELL + 0x2), 2);
    expect(half.ok && [...half.data]).toEqual([0x46, 0x33]);
    expect(mmio).toEqual(['read 10/4', 'read 20/4', 'read 24/4', 'read 2/2']);
  });

  // The bus refuses a byte copy aimed at MMIO (bulk-mmio) and an MMIO access that is not naturally aligned
  // or wider than 8 bytes (unaligned-mmio): either way the device sees an abort.
  it.each([
    ['3 bytes', 0x40, 3, 'bulk-mmio'],
    ['a misaligned word', 0x42, 4, 'unaligned-mmio'],
    ['16 bytes', 0x40, 16, 'unaligned-mmio'],
  ])(
    '%s cannot be one MMIO access: the DMA aborts and the doorbell sees nothing',
    (_, offset, length, reason) => {
      const dev = device({}, false);
      const at = BigInt(DOORBELL + offset);
      expect(dev.dmaWrite(at, new Uint8Array(length))).toMatchObject({
        ok: false,
        reason: 'abort',
        abort: { reason, write: true },
        bytesDone: 0,
      });
      expect(dev.dmaRead(at, length)).toMatchObject({
        ok: false,
        reason: 'abort',
        abort: { reason, write: false },
      });
      expect(mmio).toEqual([]);
    },
  );

  it('an unaligned RAM copy goes through as bytes', () => {
    const dev = device({}, false);
    expect(dev.dmaWrite(BigInt(RAM + 1), Uint8Array.of(1, 2, 3, 4))).toMatchObject({ ok: true, bytes: 4 });
    const back = dev.dmaRead(BigInt(RAM + 1), 4);
    expect(back.ok && [...back.data]).toEqual([1, 2, 3, 4]);
  });

  it('signalMsi sends the programmed vector through the IOMMU; an unprogrammed or masked one sends nothing', () => {
    iommu.map(NO_PASID, 0x80, DOORBELL / 4096);
    const dev = device({ msiVectors: 2 });
    expect(dev.signalMsi(0)).toBeUndefined();
    dev.msix.program(1, { address: 0x80040n, data: 0x1234_5678 });
    expect(dev.signalMsi(1)).toMatchObject({ ok: true, bytes: 4, hpas: [BigInt(DOORBELL + 0x40)] });
    dev.msix.setMasked(1, true);
    expect(dev.signalMsi(1)).toBeUndefined();
    expect(mmio).toEqual(['write 40/4=12345678 dev 66']);
  });
});

describe('endpoint identity and capabilities', () => {
  it('shows its RID as bb:dd.f and the IOMMU it sits behind', () => {
    expect(device().ridText).toBe('01:01.0');
    expect(device().behindIommu).toBe('iommu0');
    expect(device({}, false).behindIommu).toBeUndefined();
  });

  it('has the capabilities its spec gives, and no others', () => {
    const bare = device();
    expect([bare.pci.hasAts, bare.pci.hasPri, bare.pci.hasPasid, bare.atc, bare.pri]).toEqual([
      false,
      false,
      false,
      undefined,
      undefined,
    ]);
    expect([bare.pasidBits, bare.canStall, bare.msix.size]).toEqual([0, false, 0]);
    const full = device({ atcEntries: 2, priOutstanding: 3, pasidBits: 5, canStall: true, msiVectors: 4 });
    expect([full.pci.hasAts, full.pci.hasPri, full.pci.hasPasid]).toEqual([true, true, true]);
    expect([full.pasidBits, full.canStall, full.msix.size, full.pri?.maxOutstanding]).toEqual([
      5,
      true,
      4,
      3,
    ]);
  });

  it('PASIDs from 0 to 2^bits - 1 are accepted once enabled; others are EINVAL before anything is sent', () => {
    const dev = device({ pasidBits: 4 });
    dev.pci.setPasidEnabled(true);
    for (const pasid of [0, 15]) {
      iommu.map(pasid, 0x40, RAM_PFN);
      expect(dev.dmaRead(0x40000n, 1, { pasid })).toMatchObject({ ok: true });
    }
    for (const pasid of [16, -2, 1.5])
      expect(errnoOf(() => dev.dmaRead(0x40000n, 1, { pasid }))).toBe('EINVAL');
    expect(iommu.translated.map((r) => r.pasid)).toEqual([0, 15]);
    // NO_PASID is an untagged request, with or without the capability enabled.
    dev.pci.setPasidEnabled(false);
    iommu.map(NO_PASID, 0x40, RAM_PFN);
    expect(dev.dmaRead(0x40000n, 1, { pasid: NO_PASID })).toMatchObject({ ok: true });
    expect(errnoOf(() => dev.dmaRead(0x40000n, 1, { pasid: 0 }))).toBe('EINVAL');
  });

  it('disabling ATS empties the ATC and sends untranslated requests again', () => {
    const dev = device({ atcEntries: 4 });
    dev.pci.setAtsEnabled(true);
    iommu.map(NO_PASID, 0x40, RAM_PFN);
    dev.dmaRead(0x40000n, 1);
    expect(dev.atc?.size).toBe(1);
    dev.pci.setAtsEnabled(false);
    expect(dev.atc?.size).toBe(0);
    dev.dmaRead(0x40000n, 1);
    expect([iommu.atsRequests.length, iommu.translated.length]).toEqual([1, 1]);
  });

  it('caches an ATS completion with its privilege level, permissions and size', () => {
    const dev = device({ atcEntries: 4, pasidBits: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPasidEnabled(true);
    iommu.map(1, 0x40, RAM_PFN + 2, PERM_READ | PERM_WRITE, PERM_READ);
    dev.dmaRead(0x40000n, 1, { pasid: 1, privileged: true });
    dev.dmaRead(0x40000n, 1, { pasid: 1 });
    expect(dev.atc?.lookup(1, 0x40, PERM_READ | PERM_PRIV)).toEqual({
      pasid: 1,
      iovaPfn: 0x40,
      privileged: true,
      pfn: RAM_PFN + 2,
      perm: PERM_READ | PERM_WRITE,
      pageShift: 12,
    });
    expect(dev.atc?.lookup(1, 0x40, PERM_READ)).toMatchObject({ privileged: false, perm: PERM_READ });
  });

  it('with ATS enabled on an IOMMU that has no ATS, requests go untranslated', () => {
    const noAts = Object.assign(iommu, { atsTranslate: undefined });
    const dev = new EndpointDevice(
      { name: 'dev', rid: 0, streamId: 1, atcEntries: 4 },
      bus,
      noAts,
      new Tracer(),
    );
    dev.pci.setAtsEnabled(true);
    iommu.map(NO_PASID, 0x40, RAM_PFN);
    expect(dev.dmaRead(0x40000n, 1)).toMatchObject({ ok: true });
    expect(iommu.translated).toHaveLength(1);
    expect(dev.atc?.size).toBe(0);
  });

  it('PRI off: a failed ATS translation with requestPages is an ordinary fault, no page request', () => {
    const dev = device({ atcEntries: 4, priOutstanding: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPriEnabled(true);
    dev.pci.setPriEnabled(false);
    expect(dev.dmaWrite(0x40000n, Uint8Array.of(1), { requestPages: true })).toMatchObject({
      ok: false,
      reason: 'fault',
      fault: { kind: 'translation' },
    });
    expect(iommu.pageRequests).toEqual([]);
    // The ATS completion was the answer: no untranslated request follows it.
    expect(iommu.translated).toEqual([]);
  });

  it('disabling a capability the device lacks is allowed (a no-op); enabling it is ENODEV', () => {
    const dev = device();
    expect(errnoOf(() => dev.pci.setAtsEnabled(false))).toBeUndefined();
    expect(errnoOf(() => dev.pci.setPriEnabled(false))).toBeUndefined();
    expect(errnoOf(() => dev.pci.setPasidEnabled(false))).toBeUndefined();
  });

  it('connects itself to its IOMMU under its StreamID', () => {
    const connect = vi.spyOn(iommu, 'connectEndpoint');
    const dev = device();
    expect(connect.mock.calls).toEqual([[0x42, dev]]);
  });

  it('an ATS answer without the needed permission leads to a page request when PRI is asked for', () => {
    const dev = device({ atcEntries: 4, priOutstanding: 2 });
    dev.pci.setAtsEnabled(true);
    dev.pci.setPriEnabled(true);
    iommu.map(NO_PASID, 0x40, RAM_PFN, PERM_READ);
    expect(dev.dmaWrite(0x40010n, Uint8Array.of(1), { requestPages: true })).toMatchObject({
      ok: false,
      reason: 'page-request',
      groupIndex: 0,
      iova: 0x40010n,
    });
    expect(iommu.pageRequests).toEqual([
      { pasid: NO_PASID, iova: 0x40000n, access: PERM_WRITE, groupIndex: 0, last: true },
    ]);
    expect(iommu.translated).toEqual([]);
  });
});

describe('bad DMA arguments', () => {
  it.each([-1, 1.5, Number.NaN])('a read of %s bytes is EINVAL before anything is sent', (length) => {
    const dev = device();
    expect(errnoOf(() => dev.dmaRead(0x40000n, length))).toBe('EINVAL');
    expect(iommu.translated).toEqual([]);
  });
});
