/**
 * A nested domain of the SMMUv3 driver (Linux `struct arm_smmu_nested_domain`, arm-smmu-v3-iommufd.c): the
 * guest's vSTE on a vIOMMU. The vSTE is what the guest wrote in its own Stream table for the device, of
 * which the uAPI passes the first two qwords (`struct iommu_hwpt_arm_smmuv3`). Attaching the domain
 * installs the physical STE `nestedSte` builds from it and the vIOMMU's stage 2: the guest's CD table and
 * stage-1 tables are then walked by the SMMU through stage 2, and the guest maintains them itself, with
 * invalidations through the vIOMMU (`Smmuv3Viommu.cacheInvalidate`). A nested domain has no page table of
 * its own, so `map`/`unmap` are refused.
 *
 * vSTE checks (Linux `arm_smmu_validate_vste`): V = 0 is accepted as all zeros (abort, so the guest's
 * "invalid STE" ends up terminating traffic); otherwise a bit outside the allowed fields
 * (`STE_NESTING_ALLOWED`), a Config other than abort, bypass or stage 1, or EATS other than 0b00 or 0b01
 * is `EIO` — the errno iommufd reserves for bad vendor data. EATS is taken out of the vSTE: with a stage-1
 * vSTE, EATS = 0b01 asks the host to enable ATS (the guest then owes ATC invalidations). Beyond Linux, the
 * physical STE the vSTE would install is checked with the SMMU's own rules (`checkSte`, §5.2.2) against
 * the host's ID registers: a vSTE that makes it ILLEGAL — S1CDMax above SSIDSIZE, a 2-level CD table
 * without CD2L, S1STALLD with a fixed stall model, S1ContextPtr beyond the IAS — is `EIO` too, instead of
 * an STE that fails every transaction with C_BAD_STE. Bypass and abort vSTEs take no stage-1 field.
 *
 * Stalls (beyond Linux): the physical STE of a master that does not stall gets S1STALLD = 1 on an SMMU
 * whose stall model is configurable, whatever the vSTE says — the rule Linux applies to its own STEs
 * (`arm_smmu_make_cdtable_ste`) but not to a guest's (`arm_smmu_make_nested_cd_table_ste` copies the
 * guest's S1STALLD). Otherwise a guest CD with S = 1 stalls the master's DMA on the host, where nobody can
 * resume it: Linux sends the stall to `iommu_report_device_fault`, whose error response
 * `arm_smmu_page_response` drops for a master without `stall_enabled`, and iommufd forwards no CMD_RESUME
 * from a guest. With S1STALLD = 1 that CD is ILLEGAL instead (IHI 0070 §5.4 CdIllegal(): S1STALLD and
 * CD.S), so the transaction ends in C_BAD_CD, forwarded to the guest — the event its vSMMU, which offers
 * no stalls, gives a CD with S = 1 (§5.4: CD.S with SMMU_IDR0.STALL_MODEL == 0b01 is ILLEGAL). A master
 * that stalls keeps the guest's S1STALLD: its stalls are the host's to resume (the driver's page
 * response), as they are in Linux.
 */
import { type Hpa, type IommuDeviceRef, type IommuDomain, IommufdError, iova, toHex } from '@iommukit/core';
import type { Smmuv3Features, Smmuv3IdrExtras } from '../hw/features.js';
import { checkSte, decodeSte, encodeSte, STE_CONFIG, STE_EATS, STE_WORDS } from '../hw/ste.js';
import type { Smmuv3Domain } from './domain.js';
import { STE_NESTING_ALLOWED } from './entry-used.js';
import { nestedSte } from './ste-builders.js';
import { uapiWords } from './uapi-words.js';

/** 32-bit words of the vSTE the uAPI carries: qwords 0 and 1. */
export const VSTE_WORDS = 4;

/** Vendor data of an SMMUv3 nested HWPT (uAPI `struct iommu_hwpt_arm_smmuv3`). */
export interface Smmuv3NestedData {
  /** STE qwords 0 and 1 as four little-endian 32-bit words (word 2i is the low half of qword i). */
  readonly ste: ArrayLike<number>;
}

/** A checked vSTE, and whether the guest asked for ATS. */
export interface GuestSte {
  /** A whole STE: the guest's two qwords without EATS, zeros after. */
  readonly ste: Uint32Array;
  readonly enableAts: boolean;
}

/** What a nested domain needs from its driver and vIOMMU. */
export interface NestedDomainHost {
  /** The vIOMMU's stage-2 parent. */
  readonly parent: Smmuv3Domain;
  /** The SMMU's stall model is configurable (IDR0.STALL_MODEL == 0b00): S1STALLD may be set. */
  readonly configurableStalls: boolean;
  /** The vSID of a device on the vIOMMU, if it has a vDEVICE there. */
  vsid(device: IommuDeviceRef): number | undefined;
  /** Sends an event record of `device` to the vIOMMU's vEVENTQ; false without a vDEVICE. */
  forwardEvent(device: IommuDeviceRef, record: Uint32Array): boolean;
  /** The domain was freed: the driver forgets it. */
  release(domain: Smmuv3NestedDomain): void;
}

export class Smmuv3NestedDomain implements IommuDomain {
  readonly type = 'nested';
  readonly pgsizeBitmap = 0n;
  /** The guest's input address space: its stage-1 tables decide what is mapped. */
  readonly aperture = { start: iova(0n), end: iova(2n ** 64n - 1n) };
  /** The checked vSTE as a whole STE (`GuestSte.ste`). */
  readonly vste: Uint32Array;
  /** vSTE.Config is stage 1 with EATS = 0b01: ATS is enabled for masters that have it. */
  readonly enableAts: boolean;
  /** StreamIDs whose STE installs this domain. */
  readonly attached = new Set<number>();
  private freed = false;

  constructor(
    readonly id: number,
    guest: GuestSte,
    private readonly host: NestedDomainHost,
  ) {
    this.vste = guest.ste;
    this.enableAts = guest.enableAts;
  }

  /** The vIOMMU's stage-2 parent. */
  get parent(): Smmuv3Domain {
    return this.host.parent;
  }

  /** What the guest asked for: `abort` (vSTE.V = 0 too), `bypass` (stage 2 only) or `s1` (nested). */
  get guestConfig(): 'abort' | 'bypass' | 's1' {
    const config = decodeSte(this.vste).config;
    return config === STE_CONFIG.S1_TRANS ? 's1' : config === STE_CONFIG.BYPASS ? 'bypass' : 'abort';
  }

  get isFreed(): boolean {
    return this.freed;
  }

  /** The vSID of a device on this domain's vIOMMU, if it has a vDEVICE there. */
  vsid(device: IommuDeviceRef): number | undefined {
    return this.host.vsid(device);
  }

  /** Sends an event record of an attached device to the vEVENTQ (see vsmmu.ts); false without a vDEVICE. */
  forwardEvent(device: IommuDeviceRef, record: Uint32Array): boolean {
    return this.host.forwardEvent(device, record);
  }

  /**
   * The physical STE for a master (Linux `arm_smmu_make_nested_domain_ste`): EATS = full ATS when `ats`,
   * S2S when the master stalls, S1STALLD when it does not and could (see the module comment).
   */
  ste(ats: boolean, stall = false): Uint32Array {
    const forceS1Stalld = this.host.configurableStalls && !stall;
    return nestedSte(this.vste, this.parent.ste(ats, stall), { forceS1Stalld });
  }

  map(): void {
    throw new IommufdError(
      'EOPNOTSUPP',
      'a nested domain is mapped by the guest in its stage-1 tables, not through map()',
    );
  }

  unmap(): bigint {
    throw new IommufdError('EOPNOTSUPP', 'a nested domain is unmapped by the guest in its stage-1 tables');
  }

  iotlbSync(): void {}

  iovaToPhys(): Hpa | undefined {
    return undefined;
  }

  free(): void {
    // Stryker disable next-line ConditionalExpression: a second free would only repeat the release, and the driver has already forgotten the domain
    if (this.freed) return;
    if (this.attached.size > 0) {
      throw new IommufdError('EBUSY', `nested domain ${this.id} is still attached`, { domain: this.id });
    }
    // The guest's TLB entries stay tagged with its ASIDs under the vIOMMU's VMID: the guest invalidates
    // them, as it would on hardware (Linux frees the domain without a TLBI too).
    this.freed = true;
    this.host.release(this);
  }
}

/** The host SMMU a vSTE must suit: its ID registers and the nest parent's stage-2 STE. */
export interface VsteHost {
  readonly features: Smmuv3Features;
  readonly idr: Smmuv3IdrExtras;
  /** The parent's STE for a master (`Smmuv3Domain.ste`), which the guest's stage-1 fields go over. */
  readonly parentSte: ArrayLike<number>;
}

/** Checks the uAPI data of a nested HWPT (see the module comment); `EINVAL` for a malformed shape. */
export function validateGuestSte(data: unknown, host: VsteHost): GuestSte {
  const ste = (data as Partial<Smmuv3NestedData> | null)?.ste;
  const words = uapiWords(ste, VSTE_WORDS);
  if (!words) {
    throw new IommufdError(
      'EINVAL',
      `SMMUv3 nested data is { ste: ${VSTE_WORDS} 32-bit words } (STE qwords 0 and 1)`,
    );
  }
  // A whole STE with the guest's two qwords, so the codecs read it as the SMMU would.
  const full = new Uint32Array(STE_WORDS);
  full.set(words);
  const vste = decodeSte(full);
  if (!vste.v) return { ste: new Uint32Array(STE_WORDS), enableAts: false };
  // Stryker disable next-line EqualityOperator: word VSTE_WORDS does not exist in the uAPI data (undefined & mask is 0)
  for (let w = 0; w < VSTE_WORDS; w++) {
    const stray = (words[w]! & ~STE_NESTING_ALLOWED[w]!) >>> 0;
    if (stray !== 0) {
      throw new IommufdError(
        'EIO',
        `vSTE qword ${w >> 1} sets bits ${toHex(w & 1 ? stray * 2 ** 32 : stray)} a guest may not set`,
        { word: w },
      );
    }
  }
  if (
    vste.config !== STE_CONFIG.ABORT &&
    vste.config !== STE_CONFIG.BYPASS &&
    vste.config !== STE_CONFIG.S1_TRANS
  ) {
    throw new IommufdError('EIO', `vSTE Config ${toHex(vste.config)} is not abort, bypass or stage 1`);
  }
  if (vste.eats !== STE_EATS.ABORT && vste.eats !== STE_EATS.FULL)
    throw new IommufdError('EIO', `vSTE EATS ${toHex(vste.eats)} is not 0b00 or 0b01 (full ATS)`);
  const eatsMask = encodeSte({ eats: 0b11 });
  // Stryker disable next-line EqualityOperator: EATS is in qword 1; clearing it in word VSTE_WORDS (0) changes nothing
  for (let w = 0; w < VSTE_WORDS; w++) full[w] = (full[w]! & ~eatsMask[w]!) >>> 0;
  const physical = checkSte(decodeSte(nestedSte(full, host.parentSte)), host.features, host.idr);
  if (!physical.ok) throw new IommufdError('EIO', `the vSTE would make an ILLEGAL STE: ${physical.reason}`);
  return { ste: full, enableAts: vste.config === STE_CONFIG.S1_TRANS && vste.eats === STE_EATS.FULL };
}
