/** DomainID allocation (domain-ids.ts): Linux `pdom_id_alloc` on [1, MAX_DOMAIN_ID − 1]. */
import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { DomainIds } from './domain-ids.js';

describe('DomainIds', () => {
  it('hands out the lowest free ID from 1, 0 never', () => {
    const ids = new DomainIds('iommu0');
    expect([ids.alloc(), ids.alloc(), ids.alloc()]).toEqual([1, 2, 3]);
    ids.free(2);
    expect(ids.alloc()).toBe(2);
    expect(ids.allocated).toBe(3);
  });

  it('ENOSPC when the IDs below the limit are taken, EINVAL for an ID not allocated', () => {
    const ids = new DomainIds('iommu0', 3);
    ids.alloc();
    ids.alloc();
    expect(errnoOf(() => ids.alloc())).toBe('ENOSPC');
    expect(errnoOf(() => ids.free(0))).toBe('EINVAL');
    ids.free(1);
    expect(errnoOf(() => ids.free(1))).toBe('EINVAL');
  });
});
