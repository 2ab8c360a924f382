/**
 * The conformance kit's nesting hooks for SMMUv3: what a guest driver does in its own memory. The guest's
 * stage 1 is a 4 KiB-granule, 48-bit VMSAv8-64 table at IPAs, a one-entry linear CD table (CD 0: that
 * table, the given ASID) and a vSTE with Config = stage 1 pointing at the CD table; the vSTE's first two
 * qwords are the nested HWPT data. Invalidations are raw guest commands: CMD_TLBI_NH_ASID (accepted, VMID
 * replaced by the host) and CMD_CFGI_STE (the guest may not send it: `EIO`).
 */

import { buildTableAt, vmsaFormat } from '@iommukit/pagetables';
import type { NestingHooks } from '@iommukit/testing/conformance';
import { VSTE_WORDS } from '../src/driver/nested-domain.js';
import { cdTableSte, s1Cd } from '../src/driver/ste-builders.js';
import { SMMUV3_VEVENT_TYPE, SMMUV3_VIOMMU_TYPE } from '../src/driver/vsmmu.js';
import { encodeCfgiSte, encodeTlbiNhAsid } from '../src/hw/commands.js';

const GUEST_S1 = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });

export const smmuv3NestingHooks: NestingHooks = {
  viommuType: SMMUV3_VIOMMU_TYPE,
  veventType: SMMUV3_VEVENT_TYPE,
  buildStage1({ maps, tag, allocIpa, write }) {
    const root = buildTableAt(
      GUEST_S1,
      maps.map(({ iova, ipa }) => ({ iova, pa: ipa })),
      { read: true, write: true },
      { allocTable: allocIpa, write },
    );
    const cdTable = allocIpa();
    write(cdTable, s1Cd({ format: GUEST_S1, root: Number(root), asid: tag }));
    return { ste: cdTableSte({ cdTable: Number(cdTable) }).slice(0, VSTE_WORDS) };
  },
  validInvalidation: (tag) => encodeTlbiNhAsid({ vmid: 0, asid: tag }),
  invalidInvalidation: { entry: encodeCfgiSte({ streamId: 0, leaf: true }), errno: 'EIO' },
};
