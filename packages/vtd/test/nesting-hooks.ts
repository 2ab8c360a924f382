/**
 * The conformance kit's nesting hooks for VT-d: what a guest's VT-d driver does in its own memory. The
 * guest's first stage is a 4-level x86-64 table at GPAs; the nested HWPT data is `iommu_hwpt_vtd_s1`
 * pointing at it (no vIOMMU: VT-d nests on the parent HWPT). Invalidations are
 * `iommu_hwpt_vtd_s1_invalidate` entries: everything (accepted), and one with a flag bit the uAPI does
 * not define (`EOPNOTSUPP`).
 */
import { buildTableAt, x86Format } from '@iommukit/pagetables';
import type { NestingHooks } from '@iommukit/testing/conformance';
import { VTD_INV_ALL_PAGES, type VtdS1Data, type VtdS1Invalidation } from '../src/driver/nested-domain.js';

const GUEST_FS = x86Format({ levels: 4, oas: 52, gigaPages: true });

export const vtdNestingHooks: NestingHooks = {
  buildStage1({ maps, allocIpa, write }): VtdS1Data {
    const root = buildTableAt(
      GUEST_FS,
      maps.map(({ iova, ipa }) => ({ iova, pa: ipa })),
      { read: true, write: true },
      { allocTable: allocIpa, write },
    );
    return { pgtblAddr: root, addrWidth: 48 };
  },
  validInvalidation: (): VtdS1Invalidation => ({ addr: 0n, npages: VTD_INV_ALL_PAGES }),
  invalidInvalidation: {
    entry: { addr: 0n, npages: 1n, flags: 2 } satisfies VtdS1Invalidation,
    errno: 'EOPNOTSUPP',
  },
};
