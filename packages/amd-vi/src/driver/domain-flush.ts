/**
 * The invalidations a v1 domain's changes need (Linux iommu.c `amd_iommu_domain_flush_pages`,
 * `__domain_flush_pages`, `domain_flush_pages_v1`, `device_flush_iotlb`, `domain_flush_complete`; AMD pub.
 * 48882 §2.4.3 INVALIDATE_IOMMU_PAGES and §2.4.4 INVALIDATE_IOTLB_PAGES):
 * - INVALIDATE_IOMMU_PAGES of the domain's DomainID over the range (Linux `build_inv_iommu_pages`: PDE = 1,
 *   no PASID, the range as `build_inv_address` encodes it — hw/command-encoders.ts), then
 *   INVALIDATE_IOTLB_PAGES over the same range for each attached device with ATS enabled, then one
 *   completion wait;
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

/** Linux `amd_iommu_domain_flush_pages` of `[address, address + size)` for DomainID `domainId`. */
export function flushDomainPages(
  host: FlushHost,
  domainId: number,
  devices: readonly FlushTarget[],
  address: number,
  size: number,
): void {
  if (devices.length === 0) return;
  const commands: AmdCommand[] = [];
  if (!host.npCache || size >= WHOLE_ADDRESS_SPACE) pages(commands, domainId, devices, address, size);
  else
    for (let at = address, left = size; left > 0; ) {
      // The smaller of the address's natural alignment and the largest power of two within what is left.
      const bits = at === 0 ? highestBit(left) : Math.min(lowestBit(at), highestBit(left));
      pages(commands, domainId, devices, at, 2 ** bits);
      at += 2 ** bits;
      left -= 2 ** bits;
    }
  host.queue.submit(commands);
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
