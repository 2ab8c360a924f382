/**
 * Masters and the STE each gets in the SMMUv3 host driver (Linux `struct arm_smmu_master`,
 * `arm_smmu_attach_dev_ste`, `arm_smmu_attach_dev_nested`; STE IHI 0070 §5.2, ATC invalidation §4.5.1).
 * Which STE a master gets follows from its RID domain and its PASIDs (Linux's rules, loosely):
 * - stage-1 domain at the RID → Config = S1 through the master's CD table (allocated on first use, CD 0
 *   = the domain's CD, S1DSS = SSID0 so traffic without a PASID uses CD 0);
 * - stage-2 domain at the RID → Config = S2 with the domain's VMID, VTCR fields and S2TTB;
 * - blocked / identity → Config = abort / bypass; but while PASIDs are attached the STE keeps the CD table
 *   with S1DSS = terminate / bypass for the traffic without a PASID;
 * - nested domain → Config = nested (or the guest's abort / stage-2-only bypass), from the guest's vSTE.
 *
 * ATS (Linux `arm_smmu_ats_supported` / `arm_smmu_enable_ats`): for an endpoint with the capability on an
 * SMMU with IDR0.ATS, while a paging domain is attached (or PASIDs are), or as a nested domain's vSTE.EATS
 * says: STE.EATS = full, the ATC invalidated and then ATS enabled at the endpoint; switching away disables
 * ATS at the endpoint before the STE drops EATS, and invalidates the ATC after. A change of domain with ATS
 * on invalidates the ATC of that RID/PASID.
 *
 * A nested domain is attached only without PASIDs (`EBUSY`: the CD table is then the guest's) and, when
 * the vSTE translates, with the device's vDEVICE on that vSMMU (`ENOENT`: guest commands and events name
 * the device by vSID). The nest parent records its nested masters, so its unmaps invalidate their whole
 * ATC (it caches IOVA → PA, and the unmapped IPAs say nothing about IOVAs).
 */
import { type IommuDeviceRef, type IommuDomain, IommufdError, NO_PASID } from '@iommukit/core';
import { ATC_INV_SIZE_ALL, encodeAtcInv } from '../hw/commands.js';
import { STE_S1DSS } from '../hw/ste.js';
import { CdTable } from './cd-table.js';
import { type DomainAttachment, Smmuv3Domain } from './domain.js';
import type { ProbedSmmu, Smmuv3DriverHost } from './driver-host.js';
import { Smmuv3NestedDomain } from './nested-domain.js';
import { abortSte, bypassSte, cdTableSte } from './ste-builders.js';

/** What the driver knows about one endpoint (Linux `struct arm_smmu_master`). */
export interface Smmuv3Master {
  readonly ref: IommuDeviceRef;
  readonly streamId: number;
  /** SubstreamID bits of its CD table: min(IDR1.SSIDSIZE, the endpoint's PASID width). */
  readonly ssidBits: number;
  /**
   * Its faults stall (Linux `stall_enabled`): the SMMU forces stalls, or supports them and firmware says
   * the device can stall. Its CDs get CD.S, its STEs S1STALLD = 0 and S2S.
   */
  readonly stall: boolean;
  rid: IommuDomain;
  readonly pasids: Map<number, Smmuv3Domain>;
  cdTable: CdTable | undefined;
  /** ATS is enabled at the endpoint (and STE.EATS = full). */
  ats: boolean;
  /** The driver enabled the endpoint's PASID capability. */
  pasidEnabled: boolean;
}

/** Linux `arm_smmu_attach_dev_nested` + `arm_smmu_attach_prepare_vmaster` (see the module comment). */
export function checkNestedAttach(domain: Smmuv3NestedDomain, master: Smmuv3Master): void {
  const name = master.ref.name;
  if (master.pasids.size > 0) {
    throw new IommufdError(
      'EBUSY',
      `${name}: PASIDs are attached, so the CD table is not the guest's to own`,
      {
        device: name,
        domain: domain.id,
      },
    );
  }
  if (domain.guestConfig === 's1' && domain.vsid(master.ref) === undefined) {
    throw new IommufdError(
      'ENOENT',
      `${name}: a translating nested domain needs the device's vDEVICE on its vIOMMU (its vSID)`,
      { device: name, domain: domain.id },
    );
  }
}

/**
 * Installs `rid` at the master's RID (or refreshes the STE for a PASID change): CD 0, the STE, the
 * domains' attachment records and the ATS state, in Linux's order (see the module comment).
 * `identity` is the driver's identity domain.
 */
export function updateRid(
  host: Smmuv3DriverHost,
  p: ProbedSmmu,
  identity: IommuDomain,
  master: Smmuv3Master,
  rid: IommuDomain,
): void {
  const old = master.rid;
  const ats = atsWanted(p, master, rid);
  const turningOff = master.ats && !ats;
  if (turningOff) {
    master.ref.pci.setAtsEnabled(false);
    master.ats = false;
  }
  if (rid instanceof Smmuv3Domain && rid.stage === 1)
    master.cdTable!.writeCd(0, rid.cd(master.stall, p.domainHost));
  p.streamTable.writeSte(master.streamId, steFor(p, identity, master, rid, ats));
  if (old !== rid) {
    recordRidDetach(p, master, old);
    master.rid = rid;
    recordRidAttach(p, master, rid);
    if (old instanceof Smmuv3Domain && old.stage === 1 && !(rid instanceof Smmuv3Domain && rid.stage === 1))
      master.cdTable?.clearCd(0);
  }
  if (ats && !master.ats) {
    // Linux arm_smmu_enable_ats: flush the ATC, then enable ATS at the endpoint.
    atcInvMaster(p, master, NO_PASID);
    master.ref.pci.setAtsEnabled(true);
    master.ats = true;
  } else if ((ats && old !== rid) || turningOff) {
    atcInvMaster(p, master, NO_PASID);
  }
  if (old !== rid) {
    host.log('attach', `${master.ref.name} RID → ${ridLabel(rid)}${master.ats ? ', ATS on' : ''}`);
  }
}

/**
 * Where a domain is installed for the master behind the SMMU `p`: its RID (`NO_PASID`) or a PASID;
 * `nested` for a nest parent.
 */
export function attachment(
  p: ProbedSmmu,
  master: Smmuv3Master,
  pasid: number,
  nested = false,
): DomainAttachment {
  return {
    host: p.domainHost,
    streamId: master.streamId,
    pasid,
    nested,
    get ats() {
      return master.ats;
    },
  };
}

/** The master's CD table, allocated on first use. */
export function ensureCdTable(p: ProbedSmmu, master: Smmuv3Master): CdTable {
  if (!master.cdTable) {
    master.cdTable = new CdTable(p.tableHost, master.streamId, master.ssidBits, p.features.twoLevelCdTable);
  }
  return master.cdTable;
}

/** CMD_ATC_INV of everything at the RID (and, per PCIe, its PASIDs) or one PASID, + CMD_SYNC. */
export function atcInvMaster(p: ProbedSmmu, master: Smmuv3Master, pasid: number): void {
  const ssv = pasid !== NO_PASID;
  p.cmdq.issue(
    encodeAtcInv({
      streamId: master.streamId,
      ssv,
      substreamId: ssv ? pasid : 0,
      size: ATC_INV_SIZE_ALL,
      addressPage: 0,
    }),
  );
}

/** Whether the master should have ATS on with this RID domain (and its PASIDs). */
function atsWanted(p: ProbedSmmu, master: Smmuv3Master, rid: IommuDomain): boolean {
  if (!p.features.ats || !master.ref.pci.hasAts) return false;
  // Nested: the guest decides through vSTE.EATS, since it sends the ATC invalidations.
  if (rid instanceof Smmuv3NestedDomain) return rid.enableAts;
  return rid instanceof Smmuv3Domain || master.pasids.size > 0;
}

/** The STE for a master with `rid` at its RID, its current PASIDs and ATS as given. */
function steFor(
  p: ProbedSmmu,
  identity: IommuDomain,
  master: Smmuv3Master,
  rid: IommuDomain,
  ats: boolean,
): Uint32Array {
  if (rid instanceof Smmuv3NestedDomain) return rid.ste(ats, master.stall);
  if (rid instanceof Smmuv3Domain && rid.stage === 2) return rid.ste(ats, master.stall, p.domainHost);
  const s1 = rid instanceof Smmuv3Domain;
  if (s1 || master.pasids.size > 0) {
    const table = master.cdTable!;
    const s1Dss = s1 ? STE_S1DSS.SSID0 : rid === identity ? STE_S1DSS.BYPASS : STE_S1DSS.TERMINATE;
    return cdTableSte(
      { cdTable: table.base, s1Fmt: table.s1Fmt, s1CdMax: table.s1CdMax, s1Dss, ats, stall: master.stall },
      p.caps,
    );
  }
  return rid === identity ? bypassSte(p.caps) : abortSte();
}

/** Records that the master's RID now uses `rid` (a nested domain also registers with its parent). */
function recordRidAttach(p: ProbedSmmu, master: Smmuv3Master, rid: IommuDomain): void {
  if (rid instanceof Smmuv3Domain) rid.attach(attachment(p, master, NO_PASID));
  if (rid instanceof Smmuv3NestedDomain) {
    rid.attached.add(master.streamId);
    rid.parent.attach(attachment(p, master, NO_PASID, true));
  }
}

function recordRidDetach(p: ProbedSmmu, master: Smmuv3Master, old: IommuDomain): void {
  if (old instanceof Smmuv3Domain) old.detach(p.domainHost, master.streamId, NO_PASID);
  if (old instanceof Smmuv3NestedDomain) {
    old.attached.delete(master.streamId);
    old.parent.detach(p.domainHost, master.streamId, NO_PASID);
  }
}

/** How a RID domain reads in the trace. */
function ridLabel(rid: IommuDomain): string {
  if (rid instanceof Smmuv3Domain) return `domain ${rid.id} (${rid.tag})`;
  if (rid instanceof Smmuv3NestedDomain)
    return `nested domain ${rid.id} (guest ${rid.guestConfig}, VMID ${rid.parent.vmid})`;
  return rid.type;
}
