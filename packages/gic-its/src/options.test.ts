import { describe, expect, it } from 'vitest';
import { gicRig } from '../test/gic-rig.js';
import { GicItsOptionsSchema } from './options.js';

const issues = (input: unknown) => {
  const result = GicItsOptionsSchema.safeParse(input);
  expect(result.success).toBe(false);
  return result.error!.issues.map((i) => ({ path: i.path, message: i.message }));
};

describe('GicItsOptionsSchema', () => {
  it('defaults to QEMU virt: its0 at 0x08080000, redistributors at 0x080A0000, 2 CPUs, 16-bit IDs', () => {
    expect(GicItsOptionsSchema.parse({})).toEqual({
      cpus: 2,
      redistributorBase: 0x080a_0000n,
      its: [{ name: 'its0', base: 0x0808_0000n, devices: [] }],
      deviceIdBits: 16,
      eventIdBits: 16,
      lpiIdBits: 16,
    });
  });

  it('accepts hex strings and fills in an ITS’s device list', () => {
    expect(
      GicItsOptionsSchema.parse({
        redistributorBase: '0x0a00_0000',
        its: [{ name: 'gits', base: '0x0900_0000' }],
      }),
    ).toMatchObject({
      redistributorBase: 0x0a00_0000n,
      its: [{ name: 'gits', base: 0x0900_0000n, devices: [] }],
    });
  });

  it('rejects bases that are not 64 KiB aligned, with their path', () => {
    expect(issues({ redistributorBase: 0x080a_1000 })).toEqual([
      { path: ['redistributorBase'], message: 'expected a 64 KiB aligned address' },
    ]);
    expect(
      issues({
        its: [
          { name: 'its0', base: 0x0808_0000 },
          { name: 'its1', base: 0x0810_8000 },
        ],
      }),
    ).toEqual([{ path: ['its', 1, 'base'], message: 'expected a 64 KiB aligned address' }]);
  });

  it('rejects two ITSes with one name', () => {
    expect(
      issues({
        its: [
          { name: 'its0', base: 0x0808_0000 },
          { name: 'its0', base: 0x0810_0000 },
        ],
      }),
    ).toEqual([{ path: ['its', 1, 'name'], message: 'another ITS is named "its0"' }]);
  });

  it('rejects a device listed under two ITSes', () => {
    expect(
      issues({
        its: [
          { name: 'its0', base: 0x0808_0000, devices: ['nic0', 'nic1'] },
          { name: 'its1', base: 0x0810_0000, devices: ['nic2', 'nic1'] },
        ],
      }),
    ).toEqual([{ path: ['its', 1, 'devices', 1], message: 'device "nic1" already sends its MSIs to its0' }]);
  });

  it('rejects out-of-range widths and CPU counts, an empty ITS list and unknown keys', () => {
    expect(issues({ cpus: 0 }).map((i) => i.path)).toEqual([['cpus']]);
    expect(issues({ cpus: 65 }).map((i) => i.path)).toEqual([['cpus']]);
    expect(issues({ lpiIdBits: 17 }).map((i) => i.path)).toEqual([['lpiIdBits']]);
    expect(issues({ lpiIdBits: 13 }).map((i) => i.path)).toEqual([['lpiIdBits']]);
    expect(issues({ deviceIdBits: 33 }).map((i) => i.path)).toEqual([['deviceIdBits']]);
    expect(issues({ its: [] })).toEqual([{ path: ['its'], message: 'expected at least one ITS' }]);
    expect(issues({ itsBase: 0x0808_0000 }).map((i) => i.path)).toEqual([[]]);
    expect(issues({ its: [{ name: 'its0' }] }).map((i) => i.path)).toEqual([['its', 0, 'base']]);
  });
});

describe('ITS routing in the gic-its module', () => {
  const options = {
    its: [
      { name: 'its0', base: 0x0808_0000 },
      { name: 'its1', base: 0x0810_0000, devices: ['nic1'] },
    ],
  };
  const nic0 = { name: 'nic0', deviceId: 0x10 };
  const nic1 = { name: 'nic1', deviceId: 0x18 };

  it('gives a listed device the second ITS’s doorbell and any other device the first', () => {
    const { msi } = gicRig(options);
    expect(msi.doorbells.map((d) => [d.name, d.address, d.page])).toEqual([
      ['its0', 0x0809_0040n, 0x0809_0000n],
      ['its1', 0x0811_0040n, 0x0811_0000n],
    ]);
    expect(msi.doorbellFor(nic1)).toMatchObject({ name: 'its1', address: 0x0811_0040n });
    expect(msi.doorbellFor(nic0)).toMatchObject({ name: 'its0', address: 0x0809_0040n });
    expect(msi.doorbellFor({ name: 'unknown', deviceId: 0x99 }).name).toBe('its0');
  });

  it('maps a listed device on the second ITS only', () => {
    const { msi, msiWrite, gic } = gicRig(options);
    expect(gic.its.map((i) => i.name)).toEqual(['its0', 'its1']);
    const [v1] = msi.allocateVectors(nic1, 1);
    const [v0] = msi.allocateVectors(nic0, 1);
    expect(v1!.message.address).toBe(0x0811_0040n);
    expect(v1!.doorbell.name).toBe('its1');
    expect(v0!.message.address).toBe(0x0809_0040n);

    msiWrite(v1!.message.address, v1!.message.data, nic1.deviceId);
    msiWrite(v0!.message.address, v0!.message.data, nic0.deviceId);
    // Each device is unknown to the other ITS.
    msiWrite(0x0809_0040n, 0, nic1.deviceId);
    msiWrite(0x0811_0040n, 0, nic0.deviceId);
    expect(gic.its[1]!.takeOutcomes()).toEqual([
      expect.objectContaining({
        kind: 'delivered',
        arrival: expect.objectContaining({ controller: 'its1' }),
      }),
      expect.objectContaining({
        kind: 'dropped',
        deviceId: nic0.deviceId,
        reason: 'TRANSLATE_UNMAPPED_DEVICE',
      }),
    ]);
    expect(gic.its[0]!.takeOutcomes()).toEqual([
      expect.objectContaining({
        kind: 'delivered',
        arrival: expect.objectContaining({ controller: 'its0' }),
      }),
      expect.objectContaining({
        kind: 'dropped',
        deviceId: nic1.deviceId,
        reason: 'TRANSLATE_UNMAPPED_DEVICE',
      }),
    ]);
    expect(msi.cpus.flatMap((c) => c.arrivals).map((a) => [a.controller, a.intid, a.deviceId])).toEqual([
      ['its1', v1!.intid, nic1.deviceId],
      ['its0', v0!.intid, nic0.deviceId],
    ]);
  });
});
