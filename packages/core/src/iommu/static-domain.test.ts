import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import { StaticDomain } from './static-domain.js';

describe('StaticDomain (blocked / identity)', () => {
  it.each(['blocked', 'identity'] as const)(
    'a %s domain has no page table: map and unmap are EOPNOTSUPP',
    (type) => {
      const domain = new StaticDomain(3, type);
      expect(domain.id).toBe(3);
      expect(domain.type).toBe(type);
      expect(domain.pgsizeBitmap).toBe(0n);
      expect(domain.aperture).toEqual({ start: 0n, end: 0n });
      expect(errnoOf(() => domain.map())).toBe('EOPNOTSUPP');
      expect(errnoOf(() => domain.unmap())).toBe('EOPNOTSUPP');
      expect(domain.iovaToPhys()).toBeUndefined();
      // Nothing to flush or free: both return without effect.
      domain.iotlbSync();
      domain.free();
    },
  );
});
