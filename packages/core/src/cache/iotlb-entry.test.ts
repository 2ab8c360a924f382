import { describe, expect, it } from 'vitest';
import { PERM_READ, PERM_WRITE } from '../iommu/translation.js';
import { newIotlbEntry, setIotlbNotPresent, setIotlbTranslation } from './iotlb-entry.js';

describe('IOTLB entries', () => {
  it('hold the translation’s page base, size, grants and level, and forget a cached not-present fault', () => {
    const e = newIotlbEntry();
    e.notPresent = 6;
    setIotlbTranslation(e, 0x20_1234, 0x7_0123_4234, 21, 2, 0x33, PERM_READ, false);
    expect(e).toEqual({
      outputBase: 0x7_0123_3000,
      pageShift: 21,
      grants: 0x33,
      level: 2,
      notPresent: 0,
      dirty: true,
    });
  });

  it('under dirty tracking, a leaf walked for a read is cached clean and one walked for a write dirty', () => {
    const e = newIotlbEntry();
    setIotlbTranslation(e, 0x1000, 0x2000, 12, 1, 0x33, PERM_READ, true);
    expect(e.dirty).toBe(false);
    setIotlbTranslation(e, 0x1000, 0x2000, 12, 1, 0x33, PERM_WRITE, true);
    expect(e.dirty).toBe(true);
  });

  it('a not-present leaf is a 4 KiB entry with nothing granted that answers with its fault', () => {
    const e = newIotlbEntry();
    setIotlbTranslation(e, 0x20_0000, 0x40_0000, 21, 2, 0x33, PERM_WRITE, false);
    setIotlbNotPresent(e, 6);
    expect(e).toEqual({ outputBase: 0, pageShift: 12, grants: 0, level: 0, notPresent: 6, dirty: false });
  });
});
