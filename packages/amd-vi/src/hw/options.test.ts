import { toConfigIssues } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { AmdOptionsSchema, featuresFromOptions } from './options.js';

/** Config issues as `path: message` lines, with the prefix a config gives instance options. */
function issues(input: unknown): string[] {
  const result = AmdOptionsSchema.safeParse(input, { reportInput: true });
  if (result.success) return [];
  return toConfigIssues(result.error, AmdOptionsSchema, ['iommus', 0, 'options']).map(
    (i) => `${i.path}: ${i.message}`,
  );
}

const features = (input: Record<string, unknown>) => featuresFromOptions(AmdOptionsSchema.parse(input));

describe('AmdOptionsSchema', () => {
  it('accepts {} and describes a Genoa IOMMU', () => {
    expect(features({})).toEqual({
      pageRequests: true,
      x2apic: true,
      noExecute: true,
      guestTranslation: true,
      invalidateAll: true,
      guestVirtualApic: true,
      guestVapicMode: true,
      hardwareErrors: false,
      hostLevels: 6,
      guestLevels: 5,
      gcr3Levels: 2,
      pasidBits: 16,
      msiCapMmio: true,
      guestIoProtection: true,
      hostAccess: true,
      hostDirty: true,
      enhancedPpr: true,
      gcr3TrpMode: true,
      interruptRemapEntries: 512,
      npCache: false,
      iotlbSupport: true,
      maxDeviceTableEntries: 65_536,
      caches: {
        deviceTable: { entries: 256, ways: 4 },
        iotlb: { entries: 1024, ways: 8 },
        pageDirectory: { entries: 256, ways: 4 },
        interruptRemapping: { entries: 256, ways: 4 },
        replacement: 'plru',
      },
    });
  });

  it('describes every key', () => {
    const undescribed = Object.entries(AmdOptionsSchema.shape)
      .filter(([, schema]) => !schema.description)
      .map(([key]) => key);
    expect(undescribed).toEqual([]);
  });

  it('reports the guest-translation fields as 0 without GT, whatever their keys say', () => {
    expect(issues({ guestTranslation: false, gcr3Levels: 1, pasidBits: 20 })).toEqual([]);
    const noGt = features({ guestTranslation: false, guestLevels: 5, gcr3Levels: 3, pasidBits: 20 });
    expect(noGt).toMatchObject({ guestTranslation: false, guestLevels: 4, gcr3Levels: 1, pasidBits: 0 });
    // The rest keep their keys, as a Genoa unit with GT off keeps GIoSup and GCR3TRPMode.
    expect(noGt).toMatchObject({ guestIoProtection: true, gcr3TrpMode: true, pageRequests: true });
  });

  it('passes the caches and the feature keys through', () => {
    const f = features({
      hostLevels: 4,
      interruptRemapEntries: 2048,
      npCache: true,
      pdCacheEntries: 0,
      iotlbEntries: 96,
      iotlbWays: 6,
      cacheReplacement: 'lru',
    });
    expect(f).toMatchObject({ hostLevels: 4, interruptRemapEntries: 2048, npCache: true });
    expect(f.caches).toMatchObject({
      iotlb: { entries: 96, ways: 6 },
      pageDirectory: { entries: 0, ways: 4 },
      replacement: 'lru',
    });
  });

  it.each([
    [
      { guestVirtualApic: false, guestVapicMode: false },
      'iommus[0].options.x2apic: x2apic requires guestVirtualApic (a 32-bit destination needs the 128-bit IRTE)',
    ],
    [
      { guestVirtualApic: false, x2apic: false },
      'iommus[0].options.guestVapicMode: guestVapicMode requires guestVirtualApic',
    ],
    [{ gcr3Levels: 1 }, 'iommus[0].options.gcr3Levels: gcr3Levels 1 cannot index 16-bit PASIDs (needs 2)'],
    [{ pasidBits: 19 }, 'iommus[0].options.gcr3Levels: gcr3Levels 2 cannot index 19-bit PASIDs (needs 3)'],
    [
      { maxDeviceTableEntries: 1000 },
      'iommus[0].options.maxDeviceTableEntries: maxDeviceTableEntries 1000 is not a whole number of 128-entry pages',
    ],
  ])('rejects %j', (input, expected) => {
    expect(issues(input)).toEqual([expected]);
  });

  it('accepts the combinations those rules allow', () => {
    for (const input of [
      { x2apic: false, guestVapicMode: false, guestVirtualApic: false },
      { x2apic: false },
      { guestVapicMode: false },
      { gcr3Levels: 1, pasidBits: 9 },
      { gcr3Levels: 3, pasidBits: 20 },
      { pasidBits: 18 },
      { guestTranslation: false, gcr3Levels: 1 },
      // Not dependencies: GT without PPR, PPR without GT, HDSup without HASup, EPH without PPR.
      { pageRequests: false, enhancedPpr: true },
      { guestTranslation: false, guestIoProtection: true },
      { hostAccess: false, hostDirty: true },
      { maxDeviceTableEntries: 128 },
      { maxDeviceTableEntries: 4096 },
    ]) {
      expect(issues(input), JSON.stringify(input)).toEqual([]);
    }
  });

  it('reports ranges, literals and unknown keys with their paths', () => {
    expect(issues({ hostLevels: 3 })[0]).toMatch(/^iommus\[0\]\.options\.hostLevels: expected 4 \| 5 \| 6/);
    expect(issues({ guestLevels: 6 })[0]).toMatch(/^iommus\[0\]\.options\.guestLevels: expected 4 \| 5/);
    expect(issues({ gcr3Levels: 4 })[0]).toMatch(/^iommus\[0\]\.options\.gcr3Levels: expected 1 \| 2 \| 3/);
    expect(issues({ interruptRemapEntries: 1024 })[0]).toMatch(
      /^iommus\[0\]\.options\.interruptRemapEntries: expected 512 \| 2048/,
    );
    expect(issues({ pasidBits: 21, gcr3Levels: 3 })).toEqual([
      'iommus[0].options.pasidBits: expected at most 20, got 21',
    ]);
    expect(issues({ pasidBits: 0 })).toEqual(['iommus[0].options.pasidBits: expected at least 1, got 0']);
    expect(issues({ maxDeviceTableEntries: 65_664 })).toEqual([
      'iommus[0].options.maxDeviceTableEntries: expected at most 65536, got 65664',
    ]);
    expect(issues({ maxDeviceTableEntries: 0 })).toEqual([
      'iommus[0].options.maxDeviceTableEntries: expected at least 128, got 0',
    ]);
    expect(issues({ cacheReplacement: 'fifo' })[0]).toMatch(
      /^iommus\[0\]\.options\.cacheReplacement: expected "lru" \| "plru" \| "random"/,
    );
    expect(issues({ pasidbits: 8 })).toEqual([
      'iommus[0].options.pasidbits: unknown key (did you mean "pasidBits"?)',
    ]);
  });

  it('checks every cache geometry', () => {
    expect(issues({ iotlbEntries: 1020 })).toEqual([
      'iommus[0].options.iotlbWays: iotlbEntries 1020 is not a whole number of sets of 8 ways',
    ]);
    expect(issues({ dteCacheEntries: 96, dteCacheWays: 6 })).toEqual([
      'iommus[0].options.dteCacheWays: pseudo-LRU needs a power of two up to 32 ways (got 6)',
    ]);
    expect(issues({ dteCacheEntries: 96, dteCacheWays: 6, cacheReplacement: 'lru' })).toEqual([]);
    expect(issues({ irtCacheEntries: 250 })).toEqual([
      'iommus[0].options.irtCacheWays: irtCacheEntries 250 is not a whole number of sets of 4 ways',
    ]);
    expect(issues({ pdCacheEntries: 0, pdCacheWays: 6 })).toEqual([]);
    expect(issues({ pdCacheEntries: 96, pdCacheWays: 6 })).toEqual([
      'iommus[0].options.pdCacheWays: pseudo-LRU needs a power of two up to 32 ways (got 6)',
    ]);
    expect(issues({ irtCacheEntries: 1024, irtCacheWays: 64, cacheReplacement: 'random' })).toEqual([]);
    expect(issues({ iotlbEntries: 0 })).toEqual([
      'iommus[0].options.iotlbEntries: expected at least 1, got 0',
    ]);
    expect(issues({ pdCacheEntries: -1 })[0]).toBe(
      'iommus[0].options.pdCacheEntries: expected at least 0, got -1',
    );
  });

  it('reports every broken rule at once', () => {
    expect(issues({ guestVirtualApic: false, gcr3Levels: 1, maxDeviceTableEntries: 200 })).toEqual([
      'iommus[0].options.x2apic: x2apic requires guestVirtualApic (a 32-bit destination needs the 128-bit IRTE)',
      'iommus[0].options.guestVapicMode: guestVapicMode requires guestVirtualApic',
      'iommus[0].options.gcr3Levels: gcr3Levels 1 cannot index 16-bit PASIDs (needs 2)',
      'iommus[0].options.maxDeviceTableEntries: maxDeviceTableEntries 200 is not a whole number of 128-entry pages',
    ]);
  });
});
