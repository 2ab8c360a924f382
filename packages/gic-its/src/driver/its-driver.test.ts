/**
 * The ITS driver as Linux irq-gic-v3-its.c programs an ITS: probe checks, the GITS_BASER tables it sizes,
 * and the MAPD it sends per device.
 */
import { errnoOf, FrameAllocator, hpa, MemoryBus, MmioWindow, type TraceRecord } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { gicRig, RAM_BASE, RAM_BYTES } from '../../test/gic-rig.js';
import { decodeBaser, decodeCbaser, GITS } from '../hw/registers.js';
import { ItsDriver } from './its-driver.js';

const mapds = (records: readonly TraceRecord[]) =>
  records
    .filter((x) => x.name === 'cmd.MAPD')
    .map((x) => x.args as { size: number; ittAddress: bigint; valid: boolean });

function rig(options: Parameters<typeof gicRig>[0] = {}) {
  const r = gicRig(options);
  const driver = r.msi.driver.its[0]!;
  const who = r.bus.counter('test');
  const baser = (n: number) => decodeBaser(r.its.registers.get64(GITS.BASER + 8 * n));
  const word = (addr: bigint) => new MmioWindow(r.bus, addr, who).read64(0);
  /** Maps a device and returns the MAPD the ITS ran. */
  const map = (deviceId: number, events: number) => {
    r.tracer.startRecording();
    driver.mapDevice(deviceId, events);
    return mapds(r.tracer.stopRecording());
  };
  return { ...r, driver, baser, word, map };
}

describe('ItsDriver.probe', () => {
  it('refuses a frame without a GICv3 ITS (GITS_PIDR2.ArchRev ≠ 3)', () => {
    const bus = new MemoryBus();
    const ram = bus.addRam('ram', RAM_BASE, RAM_BYTES);
    const memory = new FrameAllocator([ram], (b, n) => bus.discardRam(b, n));
    expect(errnoOf(() => new ItsDriver('its9', hpa(BigInt(RAM_BASE)), bus, memory).probe(1))).toBe('ENODEV');
  });

  it('a flat device table when 2^Devbits entries fit in two 64 KiB pages; one page for collections', () => {
    const r = rig({ deviceIdBits: 14 }); // 16384 × 8 bytes = exactly two pages
    expect(r.baser(0)).toMatchObject({ valid: true, indirect: false, type: 1, pageSize: 0x1_0000, pages: 2 });
    expect(r.baser(1)).toMatchObject({ valid: true, indirect: false, type: 4, pageSize: 0x1_0000, pages: 1 });
    expect(r.baser(0).address % 0x1_0000n).toBe(0n);
    expect(r.baser(0).address).not.toBe(r.baser(1).address);
  });

  it('a two-level device table past two pages: one level-1 entry per 8192 DeviceIDs', () => {
    const r = rig({ deviceIdBits: 15 });
    const l1 = r.baser(0);
    expect(l1).toMatchObject({ valid: true, indirect: true, pages: 1 });
    // Level-2 pages appear on demand, one per 8192 DeviceIDs (64 KiB / 8-byte entries).
    expect([r.word(l1.address), r.word(l1.address + 8n)]).toEqual([0n, 0n]);
    r.driver.mapDevice(0x10, 1);
    const first = r.word(l1.address);
    expect(first >> 63n).toBe(1n);
    expect(first & 0xffffn).toBe(0n); // a 64 KiB aligned page
    expect(r.word(l1.address + 8n)).toBe(0n);
    r.driver.mapDevice(0x1fff, 1); // same level-2 page
    expect(r.word(l1.address)).toBe(first);
    expect(r.word(l1.address + 8n)).toBe(0n);
    r.driver.mapDevice(0x2000, 1);
    const second = r.word(l1.address + 8n);
    expect(second >> 63n).toBe(1n);
    expect(second).not.toBe(first);
    // All three devices translate.
    for (const deviceId of [0x10, 0x1fff, 0x2000]) r.driver.mapEvent(deviceId, 0, 8192, 0);
    expect(r.its.commandErrors).toEqual([]);
  });

  it('a 64 KiB command queue (CBASER.Size + 1 = 16 pages), CWRITER at 0, then the ITS enabled', () => {
    const r = rig();
    expect(decodeCbaser(r.its.registers.get64(GITS.CBASER))).toMatchObject({ valid: true, pages: 16 });
    expect(r.its.enabled).toBe(true);
  });

  it('disables an ITS it finds enabled before reprogramming it', () => {
    const r = rig();
    const again = new ItsDriver('its0', r.gic.spec.its[0]!.base, r.bus, r.memory);
    r.tracer.startRecording();
    again.probe(1);
    const names = r.tracer
      .stopRecording()
      .filter((x) => x.source === 'its0')
      .map((x) => x.name);
    expect(names.slice(0, 2)).toEqual(['its.enable', 'cmd.MAPC']); // re-enabled after the new CBASER
    expect(r.its.enabled).toBe(true);
  });
});

describe('ItsDriver.mapDevice (MAPD)', () => {
  it('rounds the events up to a power of two, at least 2: MAPD Size = log2(count) − 1', () => {
    const r = rig();
    expect(r.map(1, 1).map((m) => m.size)).toEqual([0]);
    expect(r.map(2, 2).map((m) => m.size)).toEqual([0]);
    expect(r.map(3, 3).map((m) => m.size)).toEqual([1]);
    expect(r.map(4, 4).map((m) => m.size)).toEqual([1]);
    expect(r.map(5, 5).map((m) => m.size)).toEqual([2]);
    const [m] = r.map(6, 64);
    expect(m).toMatchObject({ size: 5, valid: true });
    expect(m!.ittAddress % 0x1000n).toBe(0n);
  });

  it('gives each device its own ITT of at least 256 bytes', () => {
    const r = rig();
    const [a] = r.map(1, 1);
    const [b] = r.map(2, 64); // 64 × 8 = 512 bytes
    const [c] = r.map(3, 1);
    const itts = [a!.ittAddress, b!.ittAddress, c!.ittAddress];
    expect(new Set(itts).size).toBe(3);
    // 256-byte ITTs in 4 KiB-aligned allocations never overlap whatever the order.
    expect(itts.every((x) => x % 0x1000n === 0n)).toBe(true);
    const used = r.memory.allocatedFrameCount;
    r.driver.unmapDevice(2);
    expect(r.memory.allocatedFrameCount).toBe(used - 1);
    r.driver.unmapDevice(2); // already unmapped: nothing
    expect(r.memory.allocatedFrameCount).toBe(used - 1);
  });

  it('refuses a mapped DeviceID, one past GITS_TYPER.Devbits, and more events than ID_bits allow', () => {
    const r = rig({ deviceIdBits: 4, eventIdBits: 2 });
    r.driver.mapDevice(15, 4);
    expect(errnoOf(() => r.driver.mapDevice(15, 1))).toBe('EEXIST');
    expect(errnoOf(() => r.driver.mapDevice(16, 1))).toBe('EINVAL');
    expect(errnoOf(() => r.driver.mapDevice(14, 5))).toBe('EINVAL'); // 8 > 2^2
    expect(r.map(14, 3)).toHaveLength(1);
  });
});
