/** Domain-ID allocation (domain-ids.ts): Linux's reserved DIDs, lowest-first allocation, exhaustion. */
import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { driverRig } from '../../test/driver-rig.js';
import { DomainIds, domainIdCount, FLPT_DEFAULT_DID, IDA_START_DID } from './domain-ids.js';
import { probeUnit } from './probe.js';

describe('domain IDs', () => {
  it('CAP.ND gives 2^(4 + 2·ND) DIDs', () => {
    expect([0, 1, 6].map(domainIdCount)).toEqual([16, 64, 65536]);
  });

  it('DID 0 and FLPT_DEFAULT_DID (1) are never handed out; allocation starts at 2, lowest free first', () => {
    const ids = new DomainIds(16);
    expect([FLPT_DEFAULT_DID, IDA_START_DID]).toEqual([1, 2]);
    expect([ids.alloc(), ids.alloc(), ids.alloc()]).toEqual([2, 3, 4]);
    ids.free(3);
    expect(ids.alloc()).toBe(3);
    expect(ids.alloc()).toBe(5);
    expect(ids.allocated).toBe(4);
  });

  it('ENOSPC once every DID of CAP.ND is taken, and a freed one is reused', () => {
    const ids = new DomainIds(16);
    const all = Array.from({ length: 14 }, () => ids.alloc());
    expect(all).toEqual(Array.from({ length: 14 }, (_, i) => i + 2));
    expect(errnoOf(() => ids.alloc())).toBe('ENOSPC');
    ids.free(9);
    expect(ids.alloc()).toBe(9);
    expect(errnoOf(() => ids.alloc())).toBe('ENOSPC');
  });

  it('freeing a reserved, unallocated or out-of-range DID is EINVAL', () => {
    const ids = new DomainIds(16);
    ids.alloc();
    for (const did of [0, 1, 3, 16, 2.5]) expect(errnoOf(() => ids.free(did))).toBe('EINVAL');
    ids.free(2);
    expect(errnoOf(() => ids.free(2))).toBe('EINVAL');
    expect(ids.isAllocated(2)).toBe(false);
  });

  it('freeing a DID above the lowest free one keeps lowest-first allocation', () => {
    const ids = new DomainIds(16);
    expect([ids.alloc(), ids.alloc(), ids.alloc()]).toEqual([2, 3, 4]);
    ids.free(2);
    ids.free(4);
    expect([ids.alloc(), ids.alloc(), ids.alloc()]).toEqual([2, 4, 5]);
  });

  it('a non-integer DID is refused without touching the count', () => {
    const ids = new DomainIds(16);
    ids.alloc();
    expect(errnoOf(() => ids.free(2.5))).toBe('EINVAL');
    expect(ids.allocated).toBe(1);
    expect(ids.alloc()).toBe(3);
  });

  it('isAllocated is true only for a DID handed out and not freed', () => {
    const ids = new DomainIds(16);
    expect(ids.alloc()).toBe(2);
    expect([0, 1, 2, 3, 15, 16, -1, 2.5].map((did) => ids.isAllocated(did))).toEqual([
      false,
      false,
      true,
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it('errors name the unit (dmar by default) and the DID', () => {
    const full = new DomainIds(3);
    full.alloc();
    const caught = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (error) {
        return error;
      }
      return undefined;
    };
    expect(caught(() => full.alloc())).toMatchObject({ code: 'ENOSPC', context: { instance: 'dmar' } });
    const named = new DomainIds(16, 'dmar3');
    expect(caught(() => named.free(5))).toMatchObject({
      code: 'EINVAL',
      context: { instance: 'dmar3', did: 5 },
    });
    expect(caught(() => named.free(5))).toMatchObject({ message: expect.stringContaining('dmar3') });
  });

  it('probe sizes the allocator from the unit’s CAP.ND', () => {
    const r = driverRig({ options: { domainIdBits: 6 } });
    const unit = probeUnit(r.context, r.lookup);
    expect(unit.dids.total).toBe(64);
    expect(unit.dids.alloc()).toBe(IDA_START_DID);
  });
});
