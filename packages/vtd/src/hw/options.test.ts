import { toConfigIssues } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { featuresFromOptions, VtdOptionsSchema } from './options.js';

/** Config issues as `path: message` lines, with the prefix a config gives instance options. */
function issues(input: unknown): string[] {
  const result = VtdOptionsSchema.safeParse(input, { reportInput: true });
  if (result.success) return [];
  return toConfigIssues(result.error, VtdOptionsSchema, ['iommus', 0, 'options']).map(
    (i) => `${i.path}: ${i.message}`,
  );
}

const features = (input: Record<string, unknown>) => featuresFromOptions(VtdOptionsSchema.parse(input));

/** The scalable-mode capabilities a legacy-mode unit reports as 0. */
const SCALABLE_ONLY_OFF = {
  firstStage: false,
  secondStage: false,
  nesting: false,
  pasidBits: 0,
  pageRequests: false,
  pageRequestDrain: false,
  secondStageAccessDirty: false,
  scalableWalkCoherency: false,
  supervisorRequests: false,
  executeRequests: false,
  firstStage1GiB: false,
  firstStage5Level: false,
};

describe('VtdOptionsSchema', () => {
  it('accepts {} and describes a modern scalable-mode server unit', () => {
    const options = VtdOptionsSchema.parse({});
    expect(featuresFromOptions(options)).toEqual({
      version: { major: 6, minor: 0 },
      domainIdBits: 16,
      writeBufferFlush: false,
      protectedLowMemory: true,
      protectedHighMemory: true,
      cachingMode: false,
      sagaw: [4, 5],
      mgawBits: 57,
      zeroLengthRead: true,
      faultRecords: 1,
      pageSelectiveInvalidation: true,
      maxAddressMask: 45,
      secondStage2MiB: true,
      secondStage1GiB: true,
      drainWrites: true,
      drainReads: true,
      firstStage1GiB: true,
      firstStage5Level: true,
      postedInterrupts: true,
      srtpInvalidates: false,
      sirtpInvalidates: false,
      coherent: true,
      queuedInvalidation: true,
      deviceTlb: true,
      interruptRemapping: true,
      extendedInterruptMode: true,
      passThrough: true,
      snoopControl: true,
      nesting: true,
      pageRequests: true,
      executeRequests: false,
      supervisorRequests: true,
      pasidBits: 20,
      scalableMode: true,
      firstStage: true,
      secondStage: true,
      secondStageAccessDirty: true,
      scalableWalkCoherency: true,
      abortDmaMode: false,
      pageRequestDrain: true,
      hostAddressBits: 52,
    });
    expect(options).toMatchObject({
      iotlbEntries: 1024,
      iotlbWays: 8,
      contextCacheEntries: 256,
      contextCacheWays: 4,
      pasidCacheEntries: 256,
      pasidCacheWays: 4,
      pagingStructureCacheEntries: 256,
      pagingStructureCacheWays: 4,
      iecEntries: 256,
      iecWays: 4,
      cacheReplacement: 'plru',
    });
  });

  it('describes every key', () => {
    const undescribed = Object.entries(VtdOptionsSchema.shape)
      .filter(([, schema]) => !schema.description)
      .map(([key]) => key);
    expect(undescribed).toEqual([]);
    expect(Object.values(VtdOptionsSchema.shape.version.unwrap().shape).every((s) => s.description)).toBe(
      true,
    );
  });

  it('fills the version a config gives in part', () => {
    expect(features({ version: { minor: 2 } }).version).toEqual({ major: 6, minor: 2 });
  });

  it('reports the scalable-mode capabilities as 0 in legacy mode, whatever their keys say', () => {
    expect(issues({ scalableMode: false })).toEqual([]);
    const legacy = features({ scalableMode: false, nesting: true, firstStage: false, pasidBits: 8 });
    expect(legacy).toMatchObject({ scalableMode: false, ...SCALABLE_ONLY_OFF });
    // Capabilities legacy mode has keep their keys.
    expect(legacy).toMatchObject({
      deviceTlb: true,
      passThrough: true,
      secondStage1GiB: true,
      sagaw: [4, 5],
    });
    // The scalable-mode rules are not applied to keys legacy mode ignores.
    expect(issues({ scalableMode: false, firstStage: false, secondStage: false, deviceTlb: false })).toEqual(
      [],
    );
  });

  it('lists SAGAW depths in ascending order', () => {
    expect(features({ sagaw: [5, 3] }).sagaw).toEqual([3, 5]);
  });

  it.each([
    [
      {
        queuedInvalidation: false,
        deviceTlb: false,
        interruptRemapping: false,
        extendedInterruptMode: false,
        postedInterrupts: false,
        pageRequests: false,
        pageRequestDrain: false,
      },
      'iommus[0].options.scalableMode: scalable mode requires queuedInvalidation (PASID-cache invalidation is queued only)',
    ],
    [
      {
        firstStage: false,
        secondStage: false,
        nesting: false,
        firstStage1GiB: false,
        firstStage5Level: false,
        secondStageAccessDirty: false,
      },
      'iommus[0].options.firstStage: scalable mode needs firstStage or secondStage translation',
    ],
    [
      { secondStage: false, secondStageAccessDirty: false },
      'iommus[0].options.nesting: nesting requires both firstStage and secondStage',
    ],
    [
      { firstStage: false, nesting: false, firstStage5Level: false },
      'iommus[0].options.firstStage1GiB: firstStage1GiB requires firstStage',
    ],
    [
      { firstStage: false, nesting: false, firstStage1GiB: false, mgawBits: 57 },
      'iommus[0].options.firstStage5Level: firstStage5Level requires firstStage',
    ],
    [
      { secondStage: false, nesting: false },
      'iommus[0].options.secondStageAccessDirty: secondStageAccessDirty requires secondStage',
    ],
    [
      { deviceTlb: false },
      'iommus[0].options.pageRequests: pageRequests requires deviceTlb (PRI is part of ATS)',
    ],
    [{ pageRequests: false }, 'iommus[0].options.pageRequestDrain: pageRequestDrain requires pageRequests'],
    [
      { pasidBits: 0 },
      'iommus[0].options.supervisorRequests: supervisorRequests requires PASIDs (pasidBits > 0)',
    ],
    [
      { pasidBits: 0, supervisorRequests: false, executeRequests: true },
      'iommus[0].options.executeRequests: executeRequests requires PASIDs (pasidBits > 0)',
    ],
    [
      {
        scalableMode: false,
        queuedInvalidation: false,
        interruptRemapping: false,
        extendedInterruptMode: false,
        postedInterrupts: false,
      },
      'iommus[0].options.deviceTlb: deviceTlb requires queuedInvalidation (Device-TLB invalidation is queued only)',
    ],
    [
      { scalableMode: false, queuedInvalidation: false, deviceTlb: false },
      'iommus[0].options.interruptRemapping: interruptRemapping requires queuedInvalidation (interrupt entry cache invalidation is queued only)',
    ],
    [
      { interruptRemapping: false, postedInterrupts: false },
      'iommus[0].options.extendedInterruptMode: extendedInterruptMode requires interruptRemapping',
    ],
    [
      { interruptRemapping: false, extendedInterruptMode: false },
      'iommus[0].options.postedInterrupts: postedInterrupts requires interruptRemapping',
    ],
    [
      {
        interruptRemapping: false,
        extendedInterruptMode: false,
        postedInterrupts: false,
        sirtpInvalidates: true,
      },
      'iommus[0].options.sirtpInvalidates: sirtpInvalidates requires interruptRemapping',
    ],
    [
      { pageSelectiveInvalidation: false },
      'iommus[0].options.maxAddressMask: maxAddressMask > 0 requires pageSelectiveInvalidation',
    ],
    [{ sagaw: [4, 5, 4] }, 'iommus[0].options.sagaw: sagaw lists depth 4 twice'],
    [
      { sagaw: [4], firstStage5Level: false },
      'iommus[0].options.mgawBits: mgawBits 57 exceeds the widest table the unit walks (48 bits)',
    ],
    [
      { scalableMode: false, sagaw: [3], mgawBits: 40 },
      'iommus[0].options.mgawBits: mgawBits 40 exceeds the widest table the unit walks (39 bits)',
    ],
  ])('rejects %j', (input, expected) => {
    expect(issues(input)).toEqual([expected]);
  });

  it('accepts the combinations those rules allow', () => {
    for (const input of [
      { deviceTlb: false, pageRequests: false, pageRequestDrain: false },
      { secondStage: false, nesting: false, secondStageAccessDirty: false },
      { firstStage: false, nesting: false, firstStage1GiB: false, firstStage5Level: false },
      { pasidBits: 0, supervisorRequests: false },
      { pasidBits: 1, executeRequests: true },
      { interruptRemapping: false, extendedInterruptMode: false, postedInterrupts: false },
      { extendedInterruptMode: false, sirtpInvalidates: true, srtpInvalidates: true },
      { pageSelectiveInvalidation: false, maxAddressMask: 0 },
      { sagaw: [4] },
      { sagaw: [3], firstStage5Level: false, mgawBits: 48 },
      { scalableMode: false, sagaw: [3], mgawBits: 39 },
      { scalableMode: false, sagaw: [3], mgawBits: 36 },
      { abortDmaMode: true, cachingMode: true, writeBufferFlush: true },
      {
        scalableMode: false,
        queuedInvalidation: false,
        deviceTlb: false,
        interruptRemapping: false,
        extendedInterruptMode: false,
        postedInterrupts: false,
      },
    ]) {
      expect(issues(input), JSON.stringify(input)).toEqual([]);
    }
  });

  it('reports ranges, literals and unknown keys with their paths', () => {
    expect(issues({ domainIdBits: 5 })[0]).toMatch(
      /^iommus\[0\]\.options\.domainIdBits: expected 4 \| 6 \| 8 \| 10 \| 12 \| 14 \| 16/,
    );
    expect(issues({ pasidBits: 21 })).toEqual(['iommus[0].options.pasidBits: expected at most 20, got 21']);
    expect(issues({ faultRecords: 0 })).toEqual([
      'iommus[0].options.faultRecords: expected at least 1, got 0',
    ]);
    expect(issues({ faultRecords: 257 })).toEqual([
      'iommus[0].options.faultRecords: expected at most 256, got 257',
    ]);
    expect(issues({ maxAddressMask: 64 })).toEqual([
      'iommus[0].options.maxAddressMask: expected at most 63, got 64',
    ]);
    expect(issues({ hostAddressBits: 31 })).toEqual([
      'iommus[0].options.hostAddressBits: expected at least 32, got 31',
    ]);
    expect(issues({ hostAddressBits: 53 })).toEqual([
      'iommus[0].options.hostAddressBits: expected at most 52, got 53',
    ]);
    expect(issues({ version: { major: 16 } })).toEqual([
      'iommus[0].options.version.major: expected at most 15, got 16',
    ]);
    expect(issues({ sagaw: [] })[0]).toMatch(/^iommus\[0\]\.options\.sagaw: /);
    expect(issues({ sagaw: [2] })[0]).toMatch(/^iommus\[0\]\.options\.sagaw\[0\]: expected 3 \| 4 \| 5/);
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
    expect(issues({ contextCacheEntries: 96, contextCacheWays: 6 })).toEqual([
      'iommus[0].options.contextCacheWays: pseudo-LRU needs a power of two up to 32 ways (got 6)',
    ]);
    expect(issues({ contextCacheEntries: 96, contextCacheWays: 6, cacheReplacement: 'lru' })).toEqual([]);
    expect(issues({ pasidCacheEntries: 250 })).toEqual([
      'iommus[0].options.pasidCacheWays: pasidCacheEntries 250 is not a whole number of sets of 4 ways',
    ]);
    expect(issues({ pagingStructureCacheEntries: 0, pagingStructureCacheWays: 6 })).toEqual([]);
    expect(issues({ pagingStructureCacheEntries: 96, pagingStructureCacheWays: 6 })).toEqual([
      'iommus[0].options.pagingStructureCacheWays: pseudo-LRU needs a power of two up to 32 ways (got 6)',
    ]);
    expect(issues({ iecEntries: 1024, iecWays: 64, cacheReplacement: 'random' })).toEqual([]);
    expect(issues({ iecEntries: 1024, iecWays: 64 })).toEqual([
      'iommus[0].options.iecWays: pseudo-LRU needs a power of two up to 32 ways (got 64)',
    ]);
    expect(issues({ iotlbEntries: 0 })).toEqual([
      'iommus[0].options.iotlbEntries: expected at least 1, got 0',
    ]);
    expect(issues({ pagingStructureCacheEntries: -1 })[0]).toBe(
      'iommus[0].options.pagingStructureCacheEntries: expected at least 0, got -1',
    );
  });

  it('reports every broken rule at once', () => {
    expect(issues({ interruptRemapping: false, deviceTlb: false, pasidBits: 0 })).toEqual([
      'iommus[0].options.pageRequests: pageRequests requires deviceTlb (PRI is part of ATS)',
      'iommus[0].options.supervisorRequests: supervisorRequests requires PASIDs (pasidBits > 0)',
      'iommus[0].options.extendedInterruptMode: extendedInterruptMode requires interruptRemapping',
      'iommus[0].options.postedInterrupts: postedInterrupts requires interruptRemapping',
    ]);
  });
});
