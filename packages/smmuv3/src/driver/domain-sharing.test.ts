/**
 * A domain shared with a second SMMU (`join`): its own tag there, refcounted attachments, and every
 * invalidation sent to each SMMU in that SMMU's terms. The second SMMU is a recording stand-in: its
 * command queue keeps what the domain sends it, decoded with its features.
 */
import { iova } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { createDriverSystem, type DriverSystem } from '../../test/driver-system.js';
import { decodeCd } from '../hw/cd.js';
import { decodeCommand } from '../hw/commands.js';
import type { Smmuv3Features } from '../hw/features.js';
import { featuresFromOptions, Smmuv3OptionsSchema } from '../hw/options.js';
import { decodeSte } from '../hw/ste.js';
import type { Smmuv3Cmdq } from './cmdq.js';
import type { DomainAttachment, Smmuv3Domain, Smmuv3DomainHost } from './domain.js';
import type { ProbedSmmu } from './driver-host.js';
import { asidAllocator, vmidAllocator } from './ids.js';

const RW = { read: true, write: true };

function ownerHost(s: DriverSystem): Smmuv3DomainHost {
  return (s.driver as unknown as { probed: ProbedSmmu }).probed.domainHost;
}

/** A second SMMU with `options`, recording the commands it is sent. */
function secondSmmu(s: DriverSystem, options: Record<string, unknown> = {}) {
  const features: Smmuv3Features = featuresFromOptions(Smmuv3OptionsSchema.parse(options));
  const sent: Uint32Array[] = [];
  const cmdq = {
    issue: (command: Uint32Array) => sent.push(command),
    submit: (commands: readonly Uint32Array[]) => sent.push(...commands),
    batch: () => {
      const held: Uint32Array[] = [];
      return { add: (command: Uint32Array) => held.push(command), submit: () => sent.push(...held) };
    },
  } as unknown as Smmuv3Cmdq;
  const host: Smmuv3DomainHost = {
    ...ownerHost(s),
    instance: 'smmu1',
    features,
    cmdq,
    asids: asidAllocator(features),
    vmids: vmidAllocator(features),
    release: () => {},
  };
  const commands = () =>
    sent.splice(0).map((words) => {
      const decoded = decodeCommand(words, features);
      if (!decoded.ok) throw new Error(decoded.reason);
      return decoded.command;
    });
  return { host, commands };
}

function attachment(host: Smmuv3DomainHost, streamId: number, ats = false, pasid = -1): DomainAttachment {
  return { host, streamId, pasid, ats };
}

describe('Smmuv3Domain shared with a second SMMU', () => {
  it('joins with a tag of that SMMU’s own; its CDs carry it, the owner’s keep the owner’s', () => {
    const s = createDriverSystem();
    const second = secondSmmu(s);
    second.host.asids.alloc(); // the second SMMU's ASID 1 is taken
    const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
    domain.join(second.host);
    domain.join(second.host);
    expect(domain.smmus).toEqual([s.driver.instance, 'smmu1']);
    expect(second.host.asids.used).toBe(2);
    expect(decodeCd(domain.cd(false, second.host)).asid).toBe(2);
    expect(second.host.vmids.used).toBe(0);
    expect(decodeCd(domain.cd()).asid).toBe(domain.asid);
    expect(() => domain.cd(false, secondSmmu(s).host)).toThrow(RangeError);
  });

  it('a stage-2 domain joins with a VMID of the second SMMU’s, which its STEs carry', () => {
    const s = createDriverSystem({
      options: { s1: false, nesting: false, ssidBits: 0, twoLevelCdTable: false },
    });
    const second = secondSmmu(s, { s1: false, nesting: false, ssidBits: 0, twoLevelCdTable: false });
    second.host.vmids.alloc();
    second.host.vmids.alloc();
    const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
    domain.join(second.host);
    expect(decodeSte(domain.ste(false, false, second.host)).s2Vmid).toBe(3);
    expect(second.host.asids.used).toBe(0);
    expect(decodeSte(domain.ste(false)).s2Vmid).toBe(domain.vmid);
    domain.attach(attachment(second.host, 0x20));
    domain.detach(second.host, 0x20, -1);
    // (The real queue adds the CMD_SYNC; this stand-in records what the domain issues.)
    expect(second.commands()).toMatchObject([{ op: 'TLBI_S12_VMALL', vmid: 3 }]);
    expect(second.host.vmids.used).toBe(2);
  });

  it('refuses an SMMU that walks another format or cannot track dirty state, taking nothing from it', () => {
    const s = createDriverSystem();
    const plain = s.driver.domainAllocPaging() as Smmuv3Domain;
    const granule = secondSmmu(s, { granules: { g4k: false, g16k: false, g64k: true } });
    expect(() => plain.join(granule.host)).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: expect.stringMatching(/cannot be shared with smmu1: its vmsav8-64 s1 64K/),
      }),
    );
    const s2only = secondSmmu(s, { s1: false, nesting: false, ssidBits: 0, twoLevelCdTable: false });
    expect(() => plain.join(s2only.host)).toThrow(/cannot be shared with smmu1: it has no stage 1/);
    const dirty = s.driver.domainAllocPaging({ dirtyTracking: true }) as Smmuv3Domain;
    const noHd = secondSmmu(s, { httu: 'access' });
    expect(() => dirty.join(noHd.host)).toThrow(/no hardware dirty state updates/);
    expect(plain.join(noHd.host)).toBeUndefined();
    // A dirty-tracking domain joins an SMMU that updates dirty state; one with another OAS does not take it.
    dirty.join(secondSmmu(s).host);
    expect(() => plain.join(secondSmmu(s, { oasBits: 44 }).host)).toThrow(/oas44 .* is not the domain's/);
    expect([granule.host.asids.used, noHd.host.asids.used]).toEqual([0, 1]);
    plain.free();
    expect(() => plain.join(secondSmmu(s).host)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('counts attachments per SMMU: the last one gone leaves it — TLBI of its ASID, the ASID freed', () => {
    const s = createDriverSystem();
    const second = secondSmmu(s);
    const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
    domain.join(second.host);
    const a = attachment(second.host, 0x20);
    domain.attach(a);
    domain.attach(a); // the same installation again counts once
    domain.attach(attachment(second.host, 0x20, false, 3));
    domain.detach(second.host, 0x30, -1); // not installed there: nothing
    domain.detach(second.host, 0x20, -1);
    expect(domain.smmus).toContain('smmu1');
    expect(second.commands()).toEqual([]);
    domain.detach(second.host, 0x20, 3);
    expect(domain.smmus).toEqual([s.driver.instance]);
    expect(second.commands()).toMatchObject([{ op: 'TLBI_NH_ASID', asid: 1, vmid: 0 }]);
    expect(second.host.asids.used).toBe(0);
  });

  it('the owner is never left, even with no attachment', () => {
    const s = createDriverSystem();
    const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
    const owner = ownerHost(s);
    domain.attach(attachment(owner, 0x40));
    domain.detach(owner, 0x40, -1);
    expect(domain.smmus).toEqual([s.driver.instance]);
    expect(owner.asids.has(domain.asid)).toBe(true);
  });

  it('iotlbSync sends each SMMU its own TLBIs (its ASID, its range support) and ATC invalidations', () => {
    const s = createDriverSystem();
    const second = secondSmmu(s, { rangeInvalidation: false });
    second.host.asids.alloc();
    const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
    domain.join(second.host);
    domain.attach(attachment(second.host, 0x20, true));
    domain.attach(attachment(ownerHost(s), 0x10, true));
    domain.map(iova(0x10_0000n), s.buffer(0x4000), 0x4000n, RW);
    domain.map(iova(0x18_0000n), s.buffer(0x1000), 0x1000n, RW); // keeps the last-level table
    domain.unmap(iova(0x10_0000n), 0x4000n);
    domain.iotlbSync();
    const sent = second.commands();
    // No range invalidation on the second SMMU: one TLBI per page, with its ASID 2.
    expect(sent.filter((c) => c.op === 'TLBI_NH_VA')).toHaveLength(4);
    expect(sent.filter((c) => c.op === 'TLBI_NH_VA').every((c) => 'asid' in c && c.asid === 2)).toBe(true);
    expect(sent.filter((c) => c.op === 'ATC_INV')).toMatchObject([{ streamId: 0x20 }]);
  });

  it('a stage-2 domain’s big unmap sends the second SMMU, without range invalidation, TLBI_S12_VMALL of its VMID', () => {
    const options = { s1: false, nesting: false, ssidBits: 0, twoLevelCdTable: false };
    const s = createDriverSystem({ options });
    const second = secondSmmu(s, { ...options, rangeInvalidation: false });
    const domain = s.driver.domainAllocPaging() as Smmuv3Domain;
    domain.join(second.host);
    domain.map(iova(0n), s.buffer(0x1000), 0x1000n, RW); // keeps the tables
    domain.map(iova(0x40_0000n), s.buffer(0x40_0000, 0x20_0000), 0x40_0000n, RW);
    domain.unmap(iova(0x40_0000n), 0x40_0000n);
    domain.iotlbSync();
    expect(second.commands()).toMatchObject([{ op: 'TLBI_S12_VMALL', vmid: 1 }]);
  });
});
