import { toConfigIssues } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { featuresFromOptions, Smmuv3OptionsSchema } from './options.js';

/** Config issues as `path: message` lines, with the prefix a config gives instance options. */
function issues(input: unknown): string[] {
  const result = Smmuv3OptionsSchema.safeParse(input, { reportInput: true });
  if (result.success) return [];
  return toConfigIssues(result.error, Smmuv3OptionsSchema, ['iommus', 0, 'options']).map(
    (i) => `${i.path}: ${i.message}`,
  );
}

describe('Smmuv3OptionsSchema', () => {
  it('accepts {} and describes a typical modern SMMU', () => {
    const options = Smmuv3OptionsSchema.parse({});
    expect(featuresFromOptions(options)).toEqual({
      s1: true,
      s2: true,
      sidBits: 16,
      ssidBits: 20,
      oasBits: 48,
      granules: { g4k: true, g16k: true, g64k: true },
      twoLevelStreamTable: true,
      twoLevelCdTable: true,
      asid16: true,
      vmid16: true,
      ats: true,
      pri: true,
      stallModel: 'stall',
      httu: 'access-dirty',
      rangeInvalidation: true,
      msi: true,
      wiredIrqs: true,
      cmdqLog2: 19,
      evtqLog2: 19,
      priqLog2: 19,
    });
    expect(options).toMatchObject({
      nesting: true,
      tlbEntries: 512,
      tlbWays: 4,
      tlbReplacement: 'plru',
      walkCacheEntries: 256,
      walkCacheWays: 4,
      configCacheEntries: 64,
      configCacheWays: 4,
      vaBits: 48,
      coherent: true,
      stallMax: 64,
      gbpaAbort: false,
      archVersion: '3.1',
      iidr: { implementer: 0, revision: 0, variant: 0, productId: 0 },
    });
  });

  it('fills nested defaults when a nested object is partly given', () => {
    const options = Smmuv3OptionsSchema.parse({ granules: { g16k: false }, iidr: { implementer: 0x43b } });
    expect(options.granules).toEqual({ g4k: true, g16k: false, g64k: true });
    expect(options.iidr).toEqual({ implementer: 0x43b, revision: 0, variant: 0, productId: 0 });
  });

  it.each([
    [{ ats: false }, 'iommus[0].options.pri: PRI requires ATS'],
    [{ s2: false }, 'iommus[0].options.nesting: nesting requires both s1 and s2'],
    [
      { s1: false, s2: false, nesting: false },
      'iommus[0].options.s1: at least one translation stage (s1 or s2) is required',
    ],
    [{ ssidBits: 0 }, 'iommus[0].options.twoLevelCdTable: 2-level CD tables require ssidBits > 0'],
    [
      { twoLevelStreamTable: false },
      'iommus[0].options.twoLevelStreamTable: sidBits 16 (>= 7) requires a 2-level stream table',
    ],
    [
      { sidBits: 7, twoLevelStreamTable: false },
      'iommus[0].options.twoLevelStreamTable: sidBits 7 (>= 7) requires a 2-level stream table',
    ],
    [
      { granules: { g4k: false, g16k: false, g64k: false } },
      'iommus[0].options.granules: at least one translation granule is required',
    ],
    [
      { oasBits: 52, granules: { g64k: false } },
      'iommus[0].options.oasBits: a 52-bit OAS requires the 64K granule',
    ],
    [{ oasBits: 52, archVersion: '3.0' }, 'iommus[0].options.oasBits: a 52-bit OAS requires SMMUv3.1'],
    [
      { vaBits: 52, granules: { g64k: false } },
      'iommus[0].options.vaBits: 52-bit VAs require the 64K granule',
    ],
    [{ vaBits: 52, archVersion: '3.0' }, 'iommus[0].options.vaBits: 52-bit VAs require SMMUv3.1'],
    [
      { stallModel: 'force-stall' },
      'iommus[0].options.stallModel: forced stall is not allowed with ATS (PCIe)',
    ],
    [
      { msi: false, wiredIrqs: false },
      'iommus[0].options.wiredIrqs: an SMMU without MSIs needs wired interrupts',
    ],
    [
      { iidr: { implementer: 0x4bb } },
      'iommus[0].options.iidr.implementer: bit 7 of a JEP106 implementer code is 0',
    ],
  ])('rejects %j', (input, expected) => {
    expect(issues(input)).toEqual([expected]);
  });

  it('accepts the combinations those rules allow', () => {
    for (const input of [
      { ats: false, pri: false },
      { s2: false, nesting: false },
      { s1: false, nesting: false },
      { ssidBits: 0, twoLevelCdTable: false },
      { sidBits: 6, twoLevelStreamTable: false },
      { granules: { g4k: false, g16k: false } },
      { granules: { g4k: false, g64k: false } },
      { granules: { g16k: false, g64k: false } },
      { oasBits: 52, vaBits: 52 },
      { stallModel: 'force-stall', ats: false, pri: false },
      { msi: false },
      { wiredIrqs: false },
      { archVersion: '3.0', iidr: { implementer: 0x43b, productId: 0x483, variant: 1, revision: 2 } },
    ]) {
      expect(issues(input), JSON.stringify(input)).toEqual([]);
    }
  });

  it('reports ranges, enums and unknown keys with their paths', () => {
    expect(issues({ sidBits: 33 })).toEqual(['iommus[0].options.sidBits: expected at most 32, got 33']);
    expect(issues({ ssidBits: 21 })).toEqual(['iommus[0].options.ssidBits: expected at most 20, got 21']);
    expect(issues({ cmdqLog2: 20 })).toEqual(['iommus[0].options.cmdqLog2: expected at most 19, got 20']);
    expect(issues({ tlbEntries: 0 })).toEqual(['iommus[0].options.tlbEntries: expected at least 1, got 0']);
    expect(issues({ tlbEntries: 2_097_152 })).toEqual([
      'iommus[0].options.tlbEntries: expected at most 1048576, got 2097152',
    ]);
    expect(issues({ tlbEntries: 1, tlbWays: 1 })).toEqual([]);
    expect(issues({ configCacheEntries: 65_540 })).toEqual([
      'iommus[0].options.configCacheEntries: expected at most 65536, got 65540',
    ]);
    expect(issues({ configCacheEntries: 66 })).toEqual([
      'iommus[0].options.configCacheWays: configCacheEntries 66 is not a whole number of sets of 4 ways',
    ]);
    expect(issues({ configCacheEntries: 48, configCacheWays: 3 })).toEqual([
      'iommus[0].options.configCacheWays: pseudo-LRU needs a power of two up to 32 ways (got 3)',
    ]);
    expect(issues({ configCacheEntries: 48, configCacheWays: 3, tlbReplacement: 'lru' })).toEqual([]);
    expect(issues({ tlbEntries: 512, tlbWays: 3, tlbReplacement: 'lru' })).toEqual([
      'iommus[0].options.tlbWays: tlbEntries 512 is not a whole number of sets of 3 ways',
    ]);
    expect(issues({ tlbEntries: 384, tlbWays: 6 })).toEqual([
      'iommus[0].options.tlbWays: pseudo-LRU needs a power of two up to 32 ways (got 6)',
    ]);
    expect(issues({ tlbEntries: 384, tlbWays: 6, tlbReplacement: 'random' })).toEqual([]);
    expect(issues({ walkCacheEntries: 102 })).toEqual([
      'iommus[0].options.walkCacheWays: walkCacheEntries 102 is not a whole number of sets of 4 ways',
    ]);
    expect(issues({ walkCacheEntries: 96, walkCacheWays: 6 })).toEqual([
      'iommus[0].options.walkCacheWays: pseudo-LRU needs a power of two up to 32 ways (got 6)',
    ]);
    expect(issues({ walkCacheEntries: 0, walkCacheWays: 6 })).toEqual([]);
    expect(issues({ walkCacheEntries: 96, walkCacheWays: 6, tlbReplacement: 'lru' })).toEqual([]);
    expect(issues({ tlbEntries: 1024, tlbWays: 32, walkCacheEntries: 1024, walkCacheWays: 32 })).toEqual([]);
    expect(issues({ tlbEntries: 1024, tlbWays: 64, walkCacheEntries: 1024, walkCacheWays: 64 })).toEqual([
      'iommus[0].options.tlbWays: pseudo-LRU needs a power of two up to 32 ways (got 64)',
      'iommus[0].options.walkCacheWays: pseudo-LRU needs a power of two up to 32 ways (got 64)',
    ]);
    expect(issues({ walkCacheEntries: -1 })[0]).toBe(
      'iommus[0].options.walkCacheEntries: expected at least 0, got -1',
    );
    expect(issues({ oasBits: 50 })[0]).toMatch(
      /^iommus\[0\]\.options\.oasBits: expected 32 \| 36 \| 40 \| 42 \| 44 \| 48 \| 52/,
    );
    expect(issues({ stallModel: 'stal' })[0]).toMatch(/^iommus\[0\]\.options\.stallModel: expected "stall"/);
    expect(issues({ archVersion: '3.2' })[0]).toMatch(
      /^iommus\[0\]\.options\.archVersion: expected "3.0" \| "3.1"/,
    );
    expect(issues({ sidbits: 8 })).toEqual([
      'iommus[0].options.sidbits: unknown key (did you mean "sidBits"?)',
    ]);
    expect(issues({ granules: { g8k: true } })).toEqual([
      'iommus[0].options.granules.g8k: unknown key (did you mean "g4k"?)',
    ]);
  });

  it('reports every broken rule at once', () => {
    expect(issues({ ats: false, s2: false, msi: false, wiredIrqs: false })).toEqual([
      'iommus[0].options.nesting: nesting requires both s1 and s2',
      'iommus[0].options.pri: PRI requires ATS',
      'iommus[0].options.wiredIrqs: an SMMU without MSIs needs wired interrupts',
    ]);
  });
});
