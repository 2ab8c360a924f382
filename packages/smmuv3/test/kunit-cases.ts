/**
 * The Linux arm-smmu-v3 KUnit fixtures and transitions (arm-smmu-v3-test.c), with legal values: the STEs
 * and CDs each case moves between, its expected sync count and whether it is hitless. Shared by the
 * writer's own KUnit port and the run against the device model fetching at every step.
 */

import { psEncoding, vmsaFormat } from '@iommukit/pagetables';
import {
  abortSte,
  bypassSte,
  cdTableSte,
  nestedSte,
  s1Cd,
  s2Ste,
  svaCd,
} from '../src/driver/ste-builders.js';
import { CD_WORDS } from '../src/hw/cd.js';
import { STE_S1DSS, STE_S1FMT } from '../src/hw/ste.js';
import { DEFAULT_FEATURES } from './features.js';

export type Kind = 'ste' | 'cd';

export const FEATURES = DEFAULT_FEATURES;

// ---------------------------------------------------------------------------------------------------------
// Fixtures: arm_smmu_test_make_cdtable_ste, arm_smmu_test_make_s2_ste, arm_smmu_test_make_s1_cd,
// arm_smmu_test_make_sva_cd / _sva_release_cd, with legal values.

export interface MasterFeat {
  readonly ats?: boolean;
  readonly stall?: boolean;
}
export const ATS: MasterFeat = { ats: true };
export const STALL: MasterFeat = { stall: true };
export const NONE: MasterFeat = {};

/** Linux fake_cdtab_dma_addr 0xF0F0F0F0F0F0 and the non-hitless test's 0x4B4B4B4B4B, aligned to the table. */
export const CD_TABLE = 0xf0f0_f0f0_0000;
export const CD_TABLE_2 = 0x4b_4b4b_0000;
export const S2_FORMAT = vmsaFormat({ stage: 2, granule: 4096, ias: 40, oas: 48 });
export const S2_ROOT = 0x8_1234_0000;
export const S1_FORMAT = vmsaFormat({ stage: 1, granule: 4096, ias: 48, oas: 48 });
export const S1_ROOT = 0x8_8000_0000;
export const SVA_PGD = 0x8123_4000;
export const IPS_48 = psEncoding(48)!;

/** A CD-table STE as the KUnit test makes it: 2-level 64K leaves, the most CDs the SMMU has. */
export function cdTable(s1Dss: number, feat: MasterFeat, table = CD_TABLE): Uint32Array {
  return cdTableSte({ cdTable: table, s1Fmt: STE_S1FMT.TWO_LEVEL_64K, s1CdMax: 20, s1Dss, ...feat });
}

/** An S2 STE; VMID 0 as in KUnit (its zeroed domain), which Linux never allocates to a real S2 domain. */
export function s2(feat: MasterFeat, vmid = 0): Uint32Array {
  return s2Ste({ format: S2_FORMAT, root: S2_ROOT, vmid, ...feat });
}

/** KUnit ARM_SMMU_MASTER_TEST_NESTED: the guest's CD-table STE on the host's S2 (Config = nested, MEV). */
export function nestedCdTable(s1Dss: number, feat: MasterFeat): Uint32Array {
  return nestedSte(cdTable(s1Dss, feat), s2(feat));
}

export const s1CdWithAsid = (asid: number) => s1Cd({ format: S1_FORMAT, root: S1_ROOT, asid });
export const sva = (asid: number) => svaCd({ asid, ttb0: SVA_PGD, ips: IPS_48 });
export const svaRelease = (asid: number) => svaCd({ asid, ips: IPS_48 });
export const invalidCd = () => new Uint32Array(CD_WORDS);

// ---------------------------------------------------------------------------------------------------------

export interface KunitCase {
  /** The transition and its expected sync count. */
  readonly title: string;
  /** The Linux KUnit case it comes from. */
  readonly linux: string;
  readonly kind: Kind;
  readonly from: () => Uint32Array;
  readonly to: () => Uint32Array;
  readonly syncs: number;
  readonly hitless: boolean;
}

export const { SSID0, BYPASS } = STE_S1DSS;

export const STE_CASES: readonly KunitCase[] = [
  {
    title: 'bypass → abort: hitless, 2 syncs',
    linux: 'write_ste_test_bypass_to_abort',
    kind: 'ste',
    from: () => bypassSte(),
    to: abortSte,
    syncs: 2,
    hitless: true,
  },
  {
    title: 'abort → bypass: hitless, 2 syncs',
    linux: 'write_ste_test_abort_to_bypass',
    kind: 'ste',
    from: abortSte,
    to: () => bypassSte(),
    syncs: 2,
    hitless: true,
  },
  {
    title: 'CD table (S1DSS = SSID0, ATS) → abort: hitless, 2 syncs',
    linux: 'write_ste_test_cdtable_to_abort',
    kind: 'ste',
    from: () => cdTable(SSID0, ATS),
    to: abortSte,
    syncs: 2,
    hitless: true,
  },
  {
    title: 'abort → CD table (S1DSS = SSID0, ATS): hitless, 2 syncs',
    linux: 'write_ste_test_abort_to_cdtable',
    kind: 'ste',
    from: abortSte,
    to: () => cdTable(SSID0, ATS),
    syncs: 2,
    hitless: true,
  },
  {
    title: 'CD table (S1DSS = SSID0, ATS) → bypass: hitless, 3 syncs',
    linux: 'write_ste_test_cdtable_to_bypass',
    kind: 'ste',
    from: () => cdTable(SSID0, ATS),
    to: () => bypassSte(),
    syncs: 3,
    hitless: true,
  },
  {
    title: 'bypass → CD table (S1DSS = SSID0, ATS): hitless, 3 syncs',
    linux: 'write_ste_test_bypass_to_cdtable',
    kind: 'ste',
    from: () => bypassSte(),
    to: () => cdTable(SSID0, ATS),
    syncs: 3,
    hitless: true,
  },
  {
    title: 'CD table S1DSS SSID0 → bypass: hitless, 1 sync',
    linux: 'write_ste_test_cdtable_s1dss_change',
    kind: 'ste',
    from: () => cdTable(SSID0, ATS),
    to: () => cdTable(BYPASS, ATS),
    syncs: 1,
    hitless: true,
  },
  {
    title: 'CD table S1DSS bypass → SSID0: hitless, 1 sync',
    linux: 'write_ste_test_cdtable_s1dss_change',
    kind: 'ste',
    from: () => cdTable(BYPASS, ATS),
    to: () => cdTable(SSID0, ATS),
    syncs: 1,
    hitless: true,
  },
  {
    title: 'S1DSS-bypass CD table → STE bypass: hitless, 2 syncs',
    linux: 'write_ste_test_s1dssbypass_to_stebypass',
    kind: 'ste',
    from: () => cdTable(BYPASS, ATS),
    to: () => bypassSte(),
    syncs: 2,
    hitless: true,
  },
  {
    title: 'STE bypass → S1DSS-bypass CD table: hitless, 2 syncs',
    linux: 'write_ste_test_stebypass_to_s1dssbypass',
    kind: 'ste',
    from: () => bypassSte(),
    to: () => cdTable(BYPASS, ATS),
    syncs: 2,
    hitless: true,
  },
  {
    title: 'S2 (ATS) → abort: hitless, 2 syncs',
    linux: 'write_ste_test_s2_to_abort',
    kind: 'ste',
    from: () => s2(ATS),
    to: abortSte,
    syncs: 2,
    hitless: true,
  },
  {
    title: 'abort → S2 (ATS): hitless, 2 syncs',
    linux: 'write_ste_test_abort_to_s2',
    kind: 'ste',
    from: abortSte,
    to: () => s2(ATS),
    syncs: 2,
    hitless: true,
  },
  {
    title: 'S2 (ATS) → bypass: hitless, 2 syncs',
    linux: 'write_ste_test_s2_to_bypass',
    kind: 'ste',
    from: () => s2(ATS),
    to: () => bypassSte(),
    syncs: 2,
    hitless: true,
  },
  {
    title: 'bypass → S2 (ATS): hitless, 2 syncs',
    linux: 'write_ste_test_bypass_to_s2',
    kind: 'ste',
    from: () => bypassSte(),
    to: () => s2(ATS),
    syncs: 2,
    hitless: true,
  },
  {
    title: 'S1 CD table (ATS) → S2 (ATS): hitless, 3 syncs',
    linux: 'write_ste_test_s1_to_s2',
    kind: 'ste',
    from: () => cdTable(SSID0, ATS),
    to: () => s2(ATS),
    syncs: 3,
    hitless: true,
  },
  {
    title: 'S2 (ATS) → S1 CD table (ATS): hitless, 3 syncs',
    linux: 'write_ste_test_s2_to_s1',
    kind: 'ste',
    from: () => s2(ATS),
    to: () => cdTable(SSID0, ATS),
    syncs: 3,
    hitless: true,
  },
  {
    title: 'CD table pointer and S1DSS changed together: breaking, 3 syncs',
    linux: 'write_ste_test_non_hitless',
    kind: 'ste',
    from: () => cdTable(SSID0, ATS),
    to: () => cdTable(BYPASS, ATS, CD_TABLE_2),
    syncs: 3,
    hitless: false,
  },
  {
    title: 'S1 CD table (STALL) → S2 (STALL): hitless, 3 syncs',
    linux: 'write_ste_test_s1_to_s2_stall',
    kind: 'ste',
    from: () => cdTable(SSID0, STALL),
    to: () => s2(STALL),
    syncs: 3,
    hitless: true,
  },
  {
    title: 'S2 (STALL) → S1 CD table (STALL): hitless, 3 syncs',
    linux: 'write_ste_test_s2_to_s1_stall',
    kind: 'ste',
    from: () => s2(STALL),
    to: () => cdTable(SSID0, STALL),
    syncs: 3,
    hitless: true,
  },
];

export const CD_CASES: readonly KunitCase[] = [
  {
    title: 'CD 0 → S1 (ASID 1997): not hitless (from V = 0), 2 syncs',
    linux: 'write_cd_test_s1_clear',
    kind: 'cd',
    from: invalidCd,
    to: () => s1CdWithAsid(1997),
    syncs: 2,
    hitless: false,
  },
  {
    title: 'CD S1 (ASID 1997) → 0: not hitless (to V = 0), 2 syncs',
    linux: 'write_cd_test_s1_clear',
    kind: 'cd',
    from: () => s1CdWithAsid(1997),
    to: invalidCd,
    syncs: 2,
    hitless: false,
  },
  {
    title: 'CD ASID 778 → 1997: hitless, 1 sync',
    linux: 'write_cd_test_s1_change_asid',
    kind: 'cd',
    from: () => s1CdWithAsid(778),
    to: () => s1CdWithAsid(1997),
    syncs: 1,
    hitless: true,
  },
  {
    title: 'CD ASID 1997 → 778: hitless, 1 sync',
    linux: 'write_cd_test_s1_change_asid',
    kind: 'cd',
    from: () => s1CdWithAsid(1997),
    to: () => s1CdWithAsid(778),
    syncs: 1,
    hitless: true,
  },
  {
    title: 'CD 0 → SVA: not hitless (from V = 0), 2 syncs',
    linux: 'write_cd_test_sva_clear',
    kind: 'cd',
    from: invalidCd,
    to: () => sva(1997),
    syncs: 2,
    hitless: false,
  },
  {
    title: 'SVA CD → 0: not hitless (to V = 0), 2 syncs',
    linux: 'write_cd_test_sva_clear',
    kind: 'cd',
    from: () => sva(1997),
    to: invalidCd,
    syncs: 2,
    hitless: false,
  },
  {
    title: 'SVA CD → quiet SVA CD (EPD0, release): hitless, 2 syncs',
    linux: 'write_cd_test_sva_release',
    kind: 'cd',
    from: () => sva(1997),
    to: () => svaRelease(1997),
    syncs: 2,
    hitless: true,
  },
  {
    title: 'quiet SVA CD (EPD0) → SVA CD: hitless, 2 syncs',
    linux: 'write_cd_test_sva_release',
    kind: 'cd',
    from: () => svaRelease(1997),
    to: () => sva(1997),
    syncs: 2,
    hitless: true,
  },
];

/** The v7.0 nested cases: hitless only with the writer's update-safe hook. */
export const NESTED_STE_CASES = [
  {
    title: 'nested S1DSS-bypass (ATS) → S2: Linux hitless, 3 syncs',
    linux: 'write_ste_test_nested_s1dssbypass_to_s1bypass',
    from: () => nestedCdTable(BYPASS, ATS),
    to: () => s2(NONE),
    syncs: 3,
  },
  {
    title: 'S2 → nested S1DSS-bypass (ATS): Linux hitless, 2 syncs',
    linux: 'write_ste_test_nested_s1bypass_to_s1dssbypass',
    from: () => s2(NONE),
    to: () => nestedCdTable(BYPASS, ATS),
    syncs: 2,
  },
];
