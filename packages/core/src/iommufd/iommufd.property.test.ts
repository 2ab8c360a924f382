/**
 * Property: random sequences of valid and invalid calls to every public `IommuFd` method (negative,
 * fractional, huge and wrongly typed numbers and bigints, NaN, missing, stale and wrongly typed object
 * IDs, malformed requests) never throw anything but a coded `IommufdError`, and after `close()` no object
 * is left, every host frame the driver took is back, and the devices can be bound again.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FAKE_SW_MSI,
  FAKE_VIOMMU_TYPE,
  type FakeIommufdDriver,
  fakeIommufdConfig,
  fakeIommufdRegistry,
} from '../../test/fake-iommufd-plugin.js';
import { U64_MAX } from '../address/address.js';
import { ERRNO_CODES } from '../errors/errno.js';
import { IommufdError } from '../errors/iommufd-error.js';
import { NO_PASID } from '../iommu/translation.js';
import { createSystem } from '../system/create-system.js';
import type { System } from '../system/system.js';
import type { IommuFd } from './iommufd.js';
import { hostMemory } from './user-memory.js';

const MiB = 1n << 20n;

interface Context {
  readonly system: System;
  readonly fd: IommuFd;
  readonly buffer: bigint;
}

/** Values no argument should accept. */
const junk = fc.constantFrom<unknown>(
  undefined,
  null,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -1,
  1.5,
  2 ** 53,
  '1',
  {},
  [],
  true,
  Symbol('junk'),
  () => 1,
  -1n,
  1n << 64n,
);
const TYPES = ['ioas', 'device', 'hwpt-paging', 'hwpt-nested', 'fault', 'viommu', 'vdevice', 'veventq'];
/** Object IDs by number: live, stale and unused ones (IDs are small and reused), bigints, and junk. */
const anyId = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 14 }), weight: 6 },
  { arbitrary: fc.integer({ min: 0, max: 14 }).map(BigInt), weight: 1 },
  { arbitrary: fc.constantFrom(-3, 2 ** 31, 2 ** 32), weight: 1 },
  { arbitrary: junk, weight: 1 },
);
/** An ID, mostly of a live object of one of `types` (resolved when the call runs), else of anything. */
const id = (...types: string[]) =>
  fc.oneof(
    { arbitrary: fc.record({ live: fc.constantFrom(...types), k: fc.nat(3) }), weight: 8 },
    { arbitrary: fc.record({ live: fc.constantFrom(...TYPES), k: fc.nat(3) }), weight: 1 },
    { arbitrary: anyId, weight: 2 },
  );
const ioasId = id('ioas');
const devId = id('device');
/** HWPT_ALLOC and attach targets, IOASes first (the others need one to exist). */
const ptId = id('ioas', 'ioas', 'hwpt-paging', 'hwpt-paging', 'hwpt-nested', 'viommu', 'viommu');
const pageMultiple = fc.integer({ min: 0, max: 0x400 }).map((n) => BigInt(n) * 0x1000n);
/** 64-bit fields: page multiples (mostly valid), the same as numbers, edge values, any bigint, junk. */
const u64 = fc.oneof(
  { arbitrary: pageMultiple, weight: 6 },
  { arbitrary: pageMultiple.map(Number), weight: 1 },
  {
    arbitrary: fc.constantFrom(0n, U64_MAX, U64_MAX - 0xfffn, 1n << 63n, 1n << 50n, FAKE_SW_MSI.start),
    weight: 1,
  },
  { arbitrary: fc.bigInt({ min: -(1n << 66n), max: 1n << 66n }), weight: 1 },
  { arbitrary: junk, weight: 1 },
);
/** Mostly absent, else any 64-bit value. */
const optionalU64 = fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: u64, weight: 1 });
const length = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: 64 }).map((n) => BigInt(n) * 0x1000n), weight: 4 },
  { arbitrary: u64, weight: 1 },
);
const bool = fc.oneof({ arbitrary: fc.boolean(), weight: 6 }, { arbitrary: junk, weight: 1 });
const pasid = fc.oneof(fc.constant(NO_PASID), fc.integer({ min: -2, max: 1100 }), junk);
const flags = fc.oneof(
  {
    arbitrary: fc.constantFrom<unknown>(
      undefined,
      { nestParent: true },
      { dirtyTracking: true },
      { pasid: true },
    ),
    weight: 6,
  },
  {
    arbitrary: fc.record({ nestParent: bool, dirtyTracking: bool, pasid: bool }, { requiredKeys: [] }),
    weight: 1,
  },
  { arbitrary: fc.constantFrom<unknown>({ bogus: true }, 'flags', { nestParent: 1 }), weight: 1 },
);
const nestedData = fc.oneof(
  fc.integer({ min: 0, max: 3 }).map((tag) => ({ tag })),
  junk,
);
const entries = fc.oneof(
  fc.array(fc.constantFrom<unknown>({ op: 'all' }, { op: 'bad' }, null), { maxLength: 3 }),
  junk,
);
/** User memory, described so the counterexample prints: the whole buffer, a slice of it, or junk. */
const memory = fc.oneof(
  { arbitrary: fc.constant({ slice: [0n, MiB] as const }), weight: 4 },
  { arbitrary: fc.record({ slice: fc.tuple(pageMultiple, length) }), weight: 1 },
  { arbitrary: fc.constantFrom<unknown>({ length: -1n }, { length: 4096n }, 'memory', undefined), weight: 1 },
);
const bitmap = fc.oneof(
  fc.integer({ min: 0, max: 16 }).map((n) => ({ bytes: n })),
  fc.constant({ words: 1 }),
  junk,
);

/** One call: the method and its (described) arguments. */
const call = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(fc.constant('destroy'), id(...TYPES)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('objects')) },
  { weight: 2, arbitrary: fc.tuple(fc.constant('bind'), fc.oneof(fc.constantFrom('dev0', 'dev1'), junk)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('unbind'), devId) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('hwInfo'), devId) },
  { weight: 4, arbitrary: fc.tuple(fc.constant('attach'), devId, ptId, pasid) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('replace'), devId, ptId, pasid) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('detach'), devId, pasid) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('attachedHwpt'), devId, pasid) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('deviceSetupSwMsi'), devId, u64) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('setSwMsiWindow'), u64, length) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('ioasMapMsi'), ioasId, devId, u64) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('msiPages'), id('hwpt-paging', 'hwpt-nested')) },
  { weight: 4, arbitrary: fc.tuple(fc.constant('ioasAlloc')) },
  {
    weight: 6,
    arbitrary: fc.tuple(
      fc.constant('ioasMap'),
      fc.record({
        ioasId,
        memory,
        offset: optionalU64,
        length,
        iova: fc.oneof(fc.constant(undefined), u64),
        readable: bool,
        writeable: bool,
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constant('ioasUnmap'), ioasId, u64, fc.oneof(length, fc.constant(U64_MAX))),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.constant('ioasCopy'),
      fc.record({
        srcIoasId: ioasId,
        dstIoasId: ioasId,
        srcIova: u64,
        length,
        dstIova: fc.oneof(fc.constant(undefined), u64),
        readable: bool,
        writeable: bool,
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.constant('ioasAllowIovas'),
      ioasId,
      fc.oneof(fc.array(fc.record({ start: u64, last: u64 }), { maxLength: 2 }), junk),
    ),
  },
  { weight: 1, arbitrary: fc.tuple(fc.constant('ioasIovaRanges'), ioasId) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('ioasSetHugePages'), ioasId, bool) },
  {
    weight: 5,
    arbitrary: fc.tuple(
      fc.constant('hwptAlloc'),
      fc.record(
        { devId, ptId, flags, faultId: fc.oneof(fc.constant(undefined), id('fault')), data: nestedData },
        { requiredKeys: ['devId', 'ptId'] },
      ),
    ),
  },
  { weight: 1, arbitrary: fc.tuple(fc.constant('hwptInvalidate'), id('hwpt-nested', 'viommu'), entries) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('hwptSetDirtyTracking'), id('hwpt-paging'), bool) },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.constant('hwptGetDirtyBitmap'),
      id('hwpt-paging'),
      fc.record({ iova: u64, length, pageSize: fc.oneof(fc.constant(0x1000n), u64), bitmap, noClear: bool }),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.constant('viommuAlloc'),
      devId,
      id('hwpt-paging'),
      fc.oneof(fc.constant(FAKE_VIOMMU_TYPE), junk),
    ),
  },
  { weight: 3, arbitrary: fc.tuple(fc.constant('vdeviceAlloc'), id('viommu'), devId, u64) },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.constant('veventqAlloc'),
      id('viommu'),
      fc.oneof(fc.constant('fake'), junk),
      fc.oneof(anyId, u64),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constant('veventqRead'), id('veventq'), fc.oneof(fc.constant(undefined), anyId)),
  },
  { weight: 2, arbitrary: fc.tuple(fc.constant('faultQueueAlloc')) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('faultRead'), id('fault')) },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.constant('faultRespond'),
      id('fault'),
      anyId,
      fc.oneof(fc.constantFrom('success', 'invalid'), junk),
    ),
  },
);

type Call = typeof call extends fc.Arbitrary<infer C> ? C : never;

/** Turns described arguments (live objects, device names, memory slices, bitmap sizes) into real ones. */
function materialise(c: Context, value: unknown): unknown {
  if (value === 'dev0' || value === 'dev1') return c.system.device(value);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  if ('live' in value && 'k' in value) {
    const live = c.fd.objects().filter((o) => o.type === value.live);
    return live.length > 0 ? live[(value.k as number) % live.length]!.id : 999;
  }
  if ('slice' in value) {
    const [offset, bytes] = value.slice as readonly [bigint, bigint];
    return hostMemory(BigInt(c.buffer) + offset, bytes);
  }
  if ('bytes' in value) return new Uint8Array(value.bytes as number);
  if ('words' in value) return new BigUint64Array(value.words as number);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, materialise(c, v)]));
}

/**
 * A valid starting point with one object of every type in use: a mapped IOAS, a nest parent, a vIOMMU
 * with a vDEVICE, a vEVENTQ and an attached nested HWPT (dev0), a dirty-tracking HWPT with a FAULT
 * queue attached with an MSI doorbell (dev1).
 */
function scaffold({ fd, system, buffer }: Context, dev0: number, dev1: number): void {
  const ioas = fd.ioasAlloc();
  const memory = hostMemory(buffer, MiB);
  fd.ioasMap({ ioasId: ioas, memory, length: MiB, iova: MiB, readable: true, writeable: true });
  const s2 = fd.hwptAlloc({ devId: dev0, ptId: ioas, flags: { nestParent: true } });
  const viommu = fd.viommuAlloc(dev0, s2, FAKE_VIOMMU_TYPE);
  fd.vdeviceAlloc(viommu, dev0, 1n);
  fd.veventqAlloc(viommu, 'fake', 4);
  fd.attach(dev0, fd.hwptAlloc({ devId: dev0, ptId: viommu, data: { tag: 1 } }));
  const fault = fd.faultQueueAlloc();
  const dirty = fd.hwptAlloc({ devId: dev1, ptId: ioas, flags: { dirtyTracking: true }, faultId: fault });
  fd.attach(dev1, dirty);
  fd.hwptSetDirtyTracking(dirty, true);
  fd.deviceSetupSwMsi(dev1, system.requireMsi().doorbells[0]!.address);
}

function run(c: Context, [method, ...described]: Call): void {
  const fd = c.fd as unknown as Record<string, (...args: unknown[]) => unknown>;
  try {
    const args = described.map((arg) => materialise(c, arg));
    fd[method]!.apply(c.fd, args);
  } catch (error) {
    if (!(error instanceof IommufdError)) throw error;
    expect(ERRNO_CODES).toContain(error.code);
  }
}

describe('IommuFd property: random and invalid arguments', () => {
  it('every failure is a coded IommufdError, and close() leaves no object and no host frame behind', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(call, { minLength: 20, maxLength: 80, size: 'max' }),
        async (deep, calls) => {
          const system = await createSystem(fakeIommufdConfig(), { registry: fakeIommufdRegistry() });
          try {
            const buffer = system.memory.allocBytes(Number(MiB), Number(MiB));
            const framesBefore = system.memory.allocatedFrameCount;
            const fd = system.openIommufd();
            const c = { system, fd, buffer };
            const dev0 = fd.bind(system.device('dev0'));
            const dev1 = fd.bind(system.device('dev1'));
            if (deep) scaffold(c, dev0, dev1);
            for (const each of calls) run(c, each);
            fd.close();
            expect(fd.objects()).toEqual([]);
            expect(system.memory.allocatedFrameCount).toBe(framesBefore);
            const driver = system.iommu('iommu0').driver as FakeIommufdDriver;
            expect(driver.domains.size).toBe(0);
            for (const name of ['dev0', 'dev1'])
              expect(system.iommuCore.domainAt(system.device(name))).toBe(driver.blockedDomain);
            // Nothing still counts the devices as bound.
            const again = system.openIommufd();
            again.bind(system.device('dev0'));
            again.bind(system.device('dev1'));
            again.close();
          } finally {
            await system.dispose();
          }
        },
      ),
      { numRuns: 300 },
    );
  }, 60_000);
});
