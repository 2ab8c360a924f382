/**
 * One paging domain behind two SMMUs (`shareDomains`): each SMMU gets its own tag for it, one unmap
 * invalidates both, and an SMMU is left — TLBI of its tag, tag freed — when its last master goes. Without
 * the option, the second SMMU refuses the domain (EINVAL), as mainline Linux does.
 */
import {
  createSystem,
  errnoOf,
  hostMemory,
  PluginRegistry,
  type System,
  type TraceRecord,
  Tracer,
} from '@iommukit/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { Smmuv3Domain } from '../src/driver/domain.js';
import plugin from '../src/index.js';

const made: System[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((s) => s.dispose()));
});

async function twoSmmus(options: [Record<string, unknown>, Record<string, unknown>]) {
  const tracer = new Tracer();
  const system = await createSystem(
    {
      name: 'two-smmus',
      plugin: 'smmuv3',
      memory: { ram: [{ name: 'dram', base: '0x8000_0000', size: '256MiB' }] },
      iommus: [
        { name: 'smmu0', base: '0x0900_0000', options: options[0] },
        { name: 'smmu1', base: '0x0920_0000', options: options[1] },
      ],
      devices: [
        { name: 'nic0', rid: '00:02.0', iommu: 'smmu0' },
        { name: 'nic1', rid: '00:03.0', iommu: 'smmu1' },
      ],
    },
    { registry: new PluginRegistry({ smmuv3: async () => ({ default: plugin }) }), tracer },
  );
  made.push(system);
  const fd = system.openIommufd();
  const buffer = system.memory.allocBytes(0x1_0000, 0x1_0000);
  const ioas = fd.ioasAlloc();
  fd.ioasMap({
    ioasId: ioas,
    memory: hostMemory(buffer, 0x1_0000n),
    length: 0x1_0000n,
    iova: 0x40_0000n,
    readable: true,
    writeable: true,
  });
  const nic0 = system.device('nic0');
  const nic1 = system.device('nic1');
  return { system, fd, tracer, ioas, buffer, nic0, nic1, dev0: fd.bind(nic0), dev1: fd.bind(nic1) };
}

const SHARED = { shareDomains: true };
/** Commands each SMMU executed, by name, from trace records. */
function commands(records: readonly TraceRecord[], smmu: string): string[] {
  return records
    .filter((r) => r.layer === 'hw' && r.source === smmu && r.name === 'cmd')
    .map((r) => r.message.split(/[ :]/)[0]!);
}

describe('a paging HWPT attached to masters behind two SMMUv3 instances', () => {
  it('both SMMUs translate through the one table, each with its own tag; one unmap invalidates both', async () => {
    const { system, fd, tracer, ioas, buffer, nic0, nic1, dev0, dev1 } = await twoSmmus([SHARED, SHARED]);
    const hwpt = fd.hwptAlloc({ devId: dev0, ptId: ioas });
    fd.attach(dev0, hwpt);
    fd.attach(dev1, hwpt);
    const domain = system.iommuCore.domainAt(nic1) as Smmuv3Domain;
    expect(system.iommuCore.domainAt(nic0)).toBe(domain);
    expect(domain.smmus).toEqual(['smmu0', 'smmu1']);
    expect(nic0.dmaWrite(0x40_0010n, Uint8Array.of(0xa0)).ok).toBe(true);
    expect(nic1.dmaWrite(0x40_0011n, Uint8Array.of(0xa1)).ok).toBe(true);
    const bytes = system.bus.readBytes(buffer + 0x10n, 2, system.bus.counter('test'));
    expect(bytes.ok && [...bytes.data]).toEqual([0xa0, 0xa1]);

    tracer.startRecording();
    expect(fd.ioasUnmap(ioas, 0x40_0000n, 0x1_0000n)).toBe(0x1_0000n);
    const records = tracer.stopRecording();
    for (const smmu of ['smmu0', 'smmu1'])
      expect(commands(records, smmu)).toEqual(['CMD_TLBI_NH_VA', 'CMD_SYNC']);
    // Both TLBs held the page; both dropped it: each device now faults.
    expect(nic0.dmaWrite(0x40_0010n, Uint8Array.of(1))).toMatchObject({ ok: false, reason: 'fault' });
    expect(nic1.dmaWrite(0x40_0010n, Uint8Array.of(1))).toMatchObject({ ok: false, reason: 'fault' });
  });

  it('the second SMMU is left when its last master goes: TLBI of its ASID, which it hands out again', async () => {
    const { system, fd, tracer, ioas, nic1, dev0, dev1 } = await twoSmmus([SHARED, SHARED]);
    const hwpt = fd.hwptAlloc({ devId: dev0, ptId: ioas });
    fd.attach(dev0, hwpt);
    fd.attach(dev1, hwpt);
    const domain = system.iommuCore.domainAt(nic1) as Smmuv3Domain;
    tracer.startRecording();
    fd.detach(dev1);
    const records = tracer.stopRecording();
    expect(commands(records, 'smmu1')).toContain('CMD_TLBI_NH_ASID');
    expect(domain.smmus).toEqual(['smmu0']);
    // smmu1's next domain gets the ASID back.
    const own = system.iommu('smmu1').driver.domainAllocPaging() as Smmuv3Domain;
    expect(own.asid).toBe(1);
    own.free();
    fd.detach(dev0);
    fd.destroy(hwpt);
    expect(domain.isFreed).toBe(true);
  });

  it('a stage-2 domain (SMMUs without stage 1) shares too, with a VMID per SMMU', async () => {
    const s2Only = { ...SHARED, s1: false, nesting: false, ssidBits: 0, twoLevelCdTable: false };
    const { system, fd, ioas, nic0, nic1, dev0, dev1 } = await twoSmmus([s2Only, s2Only]);
    const hwpt = fd.hwptAlloc({ devId: dev0, ptId: ioas });
    fd.attach(dev0, hwpt);
    fd.attach(dev1, hwpt);
    expect(nic1.dmaWrite(0x40_0000n, Uint8Array.of(7)).ok).toBe(true);
    const domain = system.iommuCore.domainAt(nic1) as Smmuv3Domain;
    expect(system.iommuCore.domainAt(nic0)).toBe(domain);
    expect([domain.stage, domain.smmus]).toEqual([2, ['smmu0', 'smmu1']]);
  });

  it('without shareDomains the second SMMU refuses it (EINVAL) and an IOAS attach gets a domain of its own', async () => {
    const { system, fd, ioas, nic0, nic1, dev0, dev1 } = await twoSmmus([SHARED, {}]);
    const hwpt = fd.hwptAlloc({ devId: dev0, ptId: ioas });
    fd.attach(dev0, hwpt);
    expect(errnoOf(() => fd.attach(dev1, hwpt))).toBe('EINVAL');
    fd.attach(dev1, ioas);
    expect(system.iommuCore.domainAt(nic1)).not.toBe(system.iommuCore.domainAt(nic0));
    expect(nic1.dmaWrite(0x40_0000n, Uint8Array.of(7)).ok).toBe(true);
  });

  it('with shareDomains an IOAS attach reuses the other SMMU’s domain, as iommufd’s auto-domain search does', async () => {
    const { system, fd, ioas, nic0, nic1, dev0, dev1 } = await twoSmmus([SHARED, SHARED]);
    fd.attach(dev0, ioas);
    fd.attach(dev1, ioas);
    expect(system.iommuCore.domainAt(nic1)).toBe(system.iommuCore.domainAt(nic0));
  });

  it('a nest parent is not shared (each SMMU’s vSMMU needs its own): EINVAL', async () => {
    const { fd, ioas, dev0, dev1 } = await twoSmmus([SHARED, SHARED]);
    const parent = fd.hwptAlloc({ devId: dev0, ptId: ioas, flags: { nestParent: true } });
    fd.attach(dev0, parent);
    expect(errnoOf(() => fd.attach(dev1, parent))).toBe('EINVAL');
  });

  it('an SMMU whose table format differs cannot join: EINVAL', async () => {
    const { fd, ioas, dev0, dev1 } = await twoSmmus([
      SHARED,
      { ...SHARED, granules: { g4k: false, g16k: false, g64k: true } },
    ]);
    const hwpt = fd.hwptAlloc({ devId: dev0, ptId: ioas });
    fd.attach(dev0, hwpt);
    expect(errnoOf(() => fd.attach(dev1, hwpt))).toBe('EINVAL');
  });
});
