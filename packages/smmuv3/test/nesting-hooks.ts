/**
 * The conformance kit's nesting hooks for SMMUv3: what a guest driver does in its own memory. The guest's
 * stage 1 is a 4 KiB-granule, 48-bit VMSAv8-64 table at IPAs, a one-entry linear CD table (CD 0: that
 * table, the given ASID) and a vSTE with Config = stage 1 pointing at the CD table; the vSTE's first two
 * qwords are the nested HWPT data. Invalidations are raw guest commands: CMD_TLBI_NH_ASID (accepted, VMID
 * replaced by the host) and CMD_CFGI_STE (the guest may not send it: `EIO`).
 */

import { vmsaFormat } from '@iommukit/pagetables';
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
    const root = allocIpa();
    const tables = new Map<string, bigint>([['', root]]);
    const descriptor = new Uint32Array(2);
    const leaf = GUEST_S1.leafTemplate({ read: true, write: true }, false);
    for (const map of maps) {
      const va = Number(map.iova);
      let table = root;
      let path = '';
      for (let level = GUEST_S1.startLevel; level < GUEST_S1.leafLevel; level++) {
        const index = GUEST_S1.index(va, level);
        path += `/${index}`;
        let next = tables.get(path);
        if (next === undefined) {
          next = allocIpa();
          tables.set(path, next);
          GUEST_S1.encodeTable(Number(next), level, descriptor, 0);
          write(table + BigInt(index * 8), descriptor);
        }
        table = next;
      }
      GUEST_S1.encodeLeaf(Number(map.ipa), GUEST_S1.leafLevel, leaf, descriptor, 0);
      write(table + BigInt(GUEST_S1.index(va, GUEST_S1.leafLevel) * 8), descriptor);
    }
    const cdTable = allocIpa();
    write(cdTable, s1Cd({ format: GUEST_S1, root: Number(root), asid: tag }));
    return { ste: cdTableSte({ cdTable: Number(cdTable) }).slice(0, VSTE_WORDS) };
  },
  validInvalidation: (tag) => encodeTlbiNhAsid({ vmid: 0, asid: tag }),
  invalidInvalidation: { entry: encodeCfgiSte({ streamId: 0, leaf: true }), errno: 'EIO' },
};
