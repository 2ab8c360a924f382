/** What the conformance kit needs to run its nesting cases on the mock: stage-1 tables and invalidations. */
import type { NestingHooks } from '../conformance/options.js';
import { PT_LEVELS, PTE_P, PTE_R, PTE_W, pteWords, ptIndex } from './formats.js';
import type { MockNestedData } from './nested-domain.js';
import { MOCK_VEVENT_TYPE, MOCK_VIOMMU_TYPE } from './viommu.js';

export const mockNestingHooks: NestingHooks = {
  viommuType: MOCK_VIOMMU_TYPE,
  veventType: MOCK_VEVENT_TYPE,
  buildStage1({ maps, tag, allocIpa, write }): MockNestedData {
    const root = allocIpa();
    // Tables by (level, path) so maps sharing a prefix share tables.
    const tables = new Map<string, bigint>([['', root]]);
    for (const { iova, ipa } of maps) {
      const iovaPfn = Number(iova / 4096n);
      let table = root;
      let path = '';
      for (let level = 0; level < PT_LEVELS - 1; level++) {
        const index = ptIndex(iovaPfn, level);
        path += `/${index}`;
        let next = tables.get(path);
        if (next === undefined) {
          next = allocIpa();
          tables.set(path, next);
          write(table + BigInt(index * 8), pteWords(Number(next / 4096n), PTE_P));
        }
        table = next;
      }
      write(
        table + BigInt(ptIndex(iovaPfn, PT_LEVELS - 1) * 8),
        pteWords(Number(ipa / 4096n), PTE_P | PTE_R | PTE_W),
      );
    }
    return { s1Root: root, tag };
  },
  validInvalidation: (tag) => ({ op: 'all', tag }),
  invalidInvalidation: { entry: { op: 'bogus', tag: 1 }, errno: 'EOPNOTSUPP' },
};
