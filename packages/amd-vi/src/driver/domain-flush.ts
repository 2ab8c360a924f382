/**
 * The invalidations a domain's changes need (Linux iommu.c `amd_iommu_domain_flush_pages`,
 * `__domain_flush_pages`, `domain_flush_pages_v1`, `domain_flush_pages_v2`, `device_flush_iotlb`,
 * `amd_iommu_dev_flush_pasid_pages`, `domain_flush_complete`; AMD pub. 48882 §2.4.3 INVALIDATE_IOMMU_PAGES
 * and §2.4.4 INVALIDATE_IOTLB_PAGES):
 * - INVALIDATE_IOMMU_PAGES of the domain's DomainID over the range (Linux `build_inv_iommu_pages`: PDE = 1,
 *   no PASID, the range as `build_inv_address` encodes it — hw/command-encoders.ts), then
 *   INVALIDATE_IOTLB_PAGES over the same range for each attached device with ATS enabled, then one
 *   completion wait;
 * - a v2 domain's translations are cached per place it is attached (`domain_flush_pages_v2` for the RID,
 *   `amd_iommu_dev_flush_pasid_pages` for a PASID): INVALIDATE_IOMMU_PAGES with GN = 1 under the device's
 *   GCR3 DomainID (Linux `gcr3_info.domid`) and the PASID (0 for the RID, which GIoV translates as PASID 0),
 *   then INVALIDATE_IOTLB_PAGES with GN = 1 and the PASID for each place whose device has ATS enabled;
 * - with NpCache (the unit runs in a VM) the range is cut into naturally aligned blocks, each flushed the
 *   same way, so a hypervisor shadowing the tables never revisits untouched entries;
 * - a domain attached nowhere is in no unit's caches (Linux flushes the units in `pdom->iommu_array`
 *   only): nothing is sent.
 */
import {
  buildInvalidateIommuPages,
  buildInvalidateIotlbPages,
  WHOLE_ADDRESS_SPACE,
} from '../hw/command-encoders.js';
import type { AmdCommand } from '../hw/commands.js';
import type { CommandQueue } from './command-queue.js';

/** A device a domain is attached to, as its flushes address it. */
export interface FlushTarget {
  readonly deviceId: number;
  /** Set while ATS is enabled: its ATS invalidate queue depth (Linux `ats_qdep`). */
  readonly ats: { readonly qdep: number } | undefined;
}

/** What a domain's flushes need from the driver. */
export interface FlushHost {
  readonly queue: CommandQueue;
  /** The capability header's NpCache (Linux `amd_iommu_np_cache`). */
  readonly npCache: boolean;
}

/** Where a v2 domain is attached: a device's GCR3 table entry (PASID 0 is the RID's, under GIoV). */
export interface GuestFlushTarget extends FlushTarget {
  /** The DomainID of the device's GCR3 table (Linux `gcr3_info.domid`). */
  readonly domainId: number;
  readonly pasid: number;
}

/** Linux `amd_iommu_domain_flush_pages` of `[address, address + size)` for DomainID `domainId`. */
export function flushDomainPages(
  host: FlushHost,
  domainId: number,
  devices: readonly FlushTarget[],
  address: number,
  size: number,
): void {
  if (devices.length === 0) return;
  host.queue.submit(
    blocks(host, address, size, (out, at, bytes) => pages(out, domainId, devices, at, bytes)),
  );
}

/**
 * Linux `amd_iommu_domain_flush_pages` for a v2 domain: `[address, address + size)` at every place it is
 * attached, GN = 1 (see the module comment).
 */
export function flushGuestPages(
  host: FlushHost,
  targets: readonly GuestFlushTarget[],
  address: number,
  size: number,
): void {
  if (targets.length === 0) return;
  host.queue.submit(blocks(host, address, size, (out, at, bytes) => guestPages(out, targets, at, bytes)));
}

/** Linux `amd_iommu_dev_flush_pasid_all`: everything one device caches at one PASID. */
export function flushPasidAll(host: FlushHost, target: GuestFlushTarget): void {
  host.queue.submit(guestPages([], [target], 0, WHOLE_ADDRESS_SPACE));
}

/** The range as one block, or with NpCache as naturally aligned blocks, each emitted into the commands. */
function blocks(
  host: FlushHost,
  address: number,
  size: number,
  emit: (out: AmdCommand[], address: number, size: number) => void,
): AmdCommand[] {
  const commands: AmdCommand[] = [];
  if (!host.npCache || size >= WHOLE_ADDRESS_SPACE) emit(commands, address, size);
  else
    for (let at = address, left = size; left > 0; ) {
      // The smaller of the address's natural alignment and the largest power of two within what is left.
      const bits = at === 0 ? highestBit(left) : Math.min(lowestBit(at), highestBit(left));
      emit(commands, at, 2 ** bits);
      at += 2 ** bits;
      left -= 2 ** bits;
    }
  return commands;
}

/** Linux `amd_iommu_domain_flush_all`: every address of the domain. */
export function flushDomainAll(host: FlushHost, domainId: number, devices: readonly FlushTarget[]): void {
  flushDomainPages(host, domainId, devices, 0, WHOLE_ADDRESS_SPACE);
}

/** Linux `__domain_flush_pages` for a v1 domain: the unit's pages, then each ATS device's IOTLB. */
function pages(
  out: AmdCommand[],
  domainId: number,
  devices: readonly FlushTarget[],
  address: number,
  size: number,
): void {
  out.push(buildInvalidateIommuPages(address, size, domainId, 0, false));
  for (const { deviceId, ats } of devices)
    if (ats) out.push(buildInvalidateIotlbPages(deviceId, ats.qdep, address, size, 0, false));
}

/** `domain_flush_pages_v2` / `amd_iommu_dev_flush_pasid_pages`: the unit's pages, then the ATS devices'. */
function guestPages(
  out: AmdCommand[],
  targets: readonly GuestFlushTarget[],
  address: number,
  size: number,
): AmdCommand[] {
  for (const { domainId, pasid } of targets)
    out.push(buildInvalidateIommuPages(address, size, domainId, pasid, true));
  for (const { deviceId, ats, pasid } of targets)
    if (ats) out.push(buildInvalidateIotlbPages(deviceId, ats.qdep, address, size, pasid, true));
  return out;
}

/** Linux `__ffs` of a positive integer below 2^53. */
function lowestBit(value: number): number {
  let bit = 0;
  while (value % 2 ** (bit + 1) === 0) bit++;
  return bit;
}

/** Linux `__fls` of a positive integer below 2^53. */
function highestBit(value: number): number {
  let bit = 0;
  while (2 ** (bit + 1) <= value) bit++;
  return bit;
}
