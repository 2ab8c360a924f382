/**
 * The SMMUv3 guest driver actions scenarios name (`guest-op`): `share-ste`, `new-cd-table` and raw
 * `commands`, run here against a driver on the device model as a guest's driver would run them.
 */
import { type EndpointDevice, type GuestOpContext, iova, isIommufdError, StaticDomain } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { commandsSince, createDriverSystem, type DriverSystem } from '../../test/driver-system.js';
import { decodeSte, encodeSte, STE_S1FMT } from '../hw/ste.js';
import { smmuv3GuestOps } from './guest-ops.js';

const RW = { read: true, write: true };

function guest(options: Record<string, unknown> = {}) {
  const s = createDriverSystem({ options });
  const devices = new Map<string, EndpointDevice>();
  const add = (name: string, sid: number, pasidBits = 0) => {
    const dev = s.device(name, sid, { pasidBits });
    s.probe(dev);
    devices.set(name, dev);
    return dev;
  };
  const context: GuestOpContext = {
    driver: s.driver,
    device: (name) => devices.get(name)!,
    bus: s.bus,
    allocBuffer: (bytes) => BigInt(s.buffer(bytes)),
  };
  return { s, add, context };
}

/** Attaches a fresh stage-1 domain (one page mapped) at the device's RID. */
function attachS1(s: DriverSystem, dev: EndpointDevice) {
  const domain = s.driver.domainAllocPaging();
  domain.map(iova(0x1000n), s.buffer(4096), 4096n, RW);
  s.driver.attachDev(domain, dev);
  return domain;
}

const op = (name: string) => smmuv3GuestOps[name]!;
const steOf = (s: DriverSystem, dev: EndpointDevice) => s.driver.streamTable.readSte(dev.streamId);
const marker = (n: number) => new Uint8Array(8).fill(n);

describe('share-ste', () => {
  it('copies one device’s STE to another: both point at the first device’s CD table', () => {
    const { s, add, context } = guest();
    const a = add('a', 0x10);
    const b = add('b', 0x18);
    attachS1(s, a);
    const summary = op('share-ste')(context, { from: 'a', to: 'b' });
    expect(Array.from(steOf(s, b))).toEqual(Array.from(steOf(s, a)));
    const ptr = decodeSte(steOf(s, a)).s1ContextPtr;
    expect(summary).toBe(`guest points b's STE (vSID 0x18) at a's CD table 0x${ptr.toString(16)}`);
  });

  it('arguments must be strings; the driver must be an SMMUv3 driver', () => {
    const { add, context } = guest();
    add('a', 0x10);
    expect(() => op('share-ste')(context, { from: 'a', to: 7 })).toThrowError(
      'argument "to" must be a string',
    );
    const other = { ...context, driver: new StaticDomain(0, 'blocked') as never };
    expect(() => op('share-ste')(other, { from: 'a', to: 'a' })).toThrowError(
      'the guest IOMMU driver is not an SMMUv3 driver',
    );
  });
});

describe('new-cd-table', () => {
  /** Copies and checks that exactly `bytes` of the old table moved to the new one. */
  function copiesExactly(s: DriverSystem, context: GuestOpContext, dev: EndpointDevice, bytes: number) {
    const before = decodeSte(steOf(s, dev));
    const old = BigInt(before.s1ContextPtr);
    // Markers at the table's last qword and just past it: the first is copied, the second is not.
    s.write(old + BigInt(bytes - 8), marker(0xa5));
    s.write(old + BigInt(bytes), marker(0x5a));
    const summary = op('new-cd-table')(context, { device: dev.name });
    const after = decodeSte(steOf(s, dev));
    const copy = BigInt(after.s1ContextPtr);
    expect(copy).not.toBe(old);
    expect(copy % 4096n).toBe(0n);
    // Only S1ContextPtr changed.
    expect(Array.from(encodeSte({ ...after, s1ContextPtr: before.s1ContextPtr }))).toEqual(
      Array.from(encodeSte(before)),
    );
    expect(Array.from(s.read(copy, bytes))).toEqual(Array.from(s.read(old, bytes)));
    expect(Array.from(s.read(copy + BigInt(bytes), 8))).toEqual(Array.from(new Uint8Array(8)));
    expect(summary).toBe(
      `guest copies ${dev.name}'s CD table 0x${old.toString(16)} to 0x${copy.toString(16)} and points its STE there`,
    );
  }

  it('a linear table of 2^S1CDMax 64-byte CDs', () => {
    const { s, add, context } = guest();
    const dev = add('dev', 0x10, 4);
    attachS1(s, dev);
    expect(decodeSte(steOf(s, dev))).toMatchObject({ s1Fmt: STE_S1FMT.LINEAR, s1CdMax: 4 });
    copiesExactly(s, context, dev, 16 * 64);
  });

  it('a 2-level table with 64K leaves: its L1 table of 8-byte descriptors, one per 1024 CDs', () => {
    const { s, add, context } = guest();
    const dev = add('dev', 0x10, 20);
    attachS1(s, dev);
    expect(decodeSte(steOf(s, dev))).toMatchObject({ s1Fmt: STE_S1FMT.TWO_LEVEL_64K, s1CdMax: 20 });
    copiesExactly(s, context, dev, 1024 * 8);
  });

  it('a 2-level table with 4K leaves: one L1 descriptor per 64 CDs, at least one', () => {
    const { s, add, context } = guest();
    const dev = add('dev', 0x10, 12);
    attachS1(s, dev);
    const ste = decodeSte(steOf(s, dev));
    s.driver.streamTable.writeSte(dev.streamId, encodeSte({ ...ste, s1Fmt: STE_S1FMT.TWO_LEVEL_4K }));
    copiesExactly(s, context, dev, 64 * 8);
    s.driver.streamTable.writeSte(
      dev.streamId,
      encodeSte({ ...decodeSte(steOf(s, dev)), s1Fmt: STE_S1FMT.TWO_LEVEL_4K, s1CdMax: 3 }),
    );
    copiesExactly(s, context, dev, 8);
  });

  it('a CD table the guest cannot read is an error', () => {
    const { s, add, context } = guest();
    const dev = add('dev', 0x10);
    attachS1(s, dev);
    const ste = decodeSte(steOf(s, dev));
    s.driver.streamTable.writeSte(dev.streamId, encodeSte({ ...ste, s1ContextPtr: 0x1000 }));
    expect(() => op('new-cd-table')(context, { device: 'dev' })).toThrowError(
      "cannot read dev's CD table at 0x1000",
    );
  });
});

describe('commands', () => {
  it('parses "NAME field=value" (CMD_ prefix optional, unset fields 0, true/false) and submits them with a CMD_SYNC', () => {
    const { s, context } = guest();
    const before = s.driver.cmdq.producer;
    const summary = op('commands')(context, {
      commands: [
        'TLBI_NH_ASID asid=0x2a',
        '  CMD_CFGI_STE streamId=0x99 leaf=true',
        'CFGI_CD  streamId=3\tleaf=false',
      ],
    });
    expect(commandsSince(s, before)).toEqual([
      expect.objectContaining({ op: 'TLBI_NH_ASID', asid: 0x2a, vmid: 0 }),
      expect.objectContaining({ op: 'CFGI_STE', streamId: 0x99, leaf: true }),
      expect.objectContaining({ op: 'CFGI_CD', streamId: 3, substreamId: 0, leaf: false }),
      expect.objectContaining({ op: 'SYNC' }),
    ]);
    expect(summary).toBe('guest submits 3 command(s) and a CMD_SYNC; all consumed');
  });

  it('expect: ill needs a command the SMMU refuses (CERROR_ILL), which the driver replaces with a CMD_SYNC', () => {
    const { s, context } = guest({ ats: false, pri: false });
    const summary = op('commands')(context, {
      commands: ['TLBI_NH_ALL', 'ATC_INV streamId=0x10'],
      expect: 'ill',
    });
    expect(summary).toBe(
      'guest submits 2 command(s); the SMMU stops at CMD_ATC_INV with CERROR_ILL (CMDQ_ERR); the guest driver puts a CMD_SYNC in its place, acknowledges GERRORN and the queue goes on',
    );
    expect(s.driver.cmdq.lastFailures.map((f) => [f.command, f.error])).toEqual([
      ['CMD_ATC_INV', 'CERROR_ILL'],
    ]);
    expect(() => op('commands')(context, { commands: ['TLBI_NH_ALL'], expect: 'ill' })).toThrowError(
      'expected the SMMU to refuse one of 1 command(s), but it took them all',
    );
  });

  it('a refused command without expect: ill is the driver’s EIO', () => {
    const { context } = guest({ ats: false, pri: false });
    let error: unknown;
    try {
      op('commands')(context, { commands: ['ATC_INV streamId=0x10'] });
    } catch (e) {
      error = e;
    }
    expect(isIommufdError(error) && error.code).toBe('EIO');
  });

  it('refuses malformed lists and lines', () => {
    const { context } = guest();
    const run = (commands: unknown) => () => op('commands')(context, { commands });
    expect(run('TLBI_NH_ALL')).toThrowError('argument "commands" must be a list of strings');
    expect(run(['TLBI_NH_ALL', 3])).toThrowError('argument "commands" must be a list of strings');
    expect(run(['TLBI_NOPE'])).toThrowError('unknown SMMUv3 command "TLBI_NOPE"');
    expect(run([''])).toThrowError('unknown SMMUv3 command ""');
    expect(run(['CFGI_STE streamId'])).toThrowError('expected name=value, got "streamId"');
    expect(run(['CFGI_STE =3'])).toThrowError('expected name=value, got "=3"');
  });
});
