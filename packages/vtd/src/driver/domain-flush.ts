/**
 * The invalidations a domain's changes need wherever it is attached (Linux cache.c and its cache tags):
 * - a second-stage domain: IOTLB invalidations of its DID, page-selective where CAP.PSI and MAMV allow
 *   (`iotlbRange`), and of the DID of every nested domain attached on it, by second-stage address (Table 23
 *   then drops their translations whatever the first-stage address);
 * - a first-stage or nested domain: PASID-based IOTLB invalidations of its DID at every PASID it is
 *   attached at (RID_PASID included), PASID-selective beyond MAMV;
 * - then the Device-TLB of every ATS device it is attached at, over the same range (the PASID-based form
 *   at a PASID); the devices of the nested domains on a second stage get their whole Device-TLB flushed,
 *   as Linux does: a nested translation they cached cannot be found from a second-stage address;
 * - with caching mode a second-stage map (not present → present) is flushed too, without the Device-TLB
 *   (it cannot hold what was not present); otherwise a map needs only the write-buffer flush (CAP.RWBF).
 */
import type { InvDescriptorInit } from '../hw/inv-descriptors.js';
import type { DeviceTlbTarget } from './driver-host.js';
import type { UserInvalidation, VtdNestedDomain } from './nested-domain.js';
import type { DomainFlush, VtdPagingDomain } from './paging-domain.js';
import { RID_PASID } from './pasid-table.js';
import type { ProbedUnit } from './probe.js';
import {
  DEVTLB_ALL,
  deviceTlb,
  iotlbDomain,
  iotlbRange,
  pasidDeviceTlb,
  pasidIotlb,
  pasidIotlbRange,
  psiAligned,
} from './qi.js';

/** Where a domain is installed: a device's RID_PASID or another PASID. */
export interface Attachment {
  readonly device: { readonly sid: number; readonly ats: DeviceTlbTarget | undefined };
  readonly pasid: number;
}

/** What the flushes need from the driver. */
export interface FlushHost {
  /** The probed unit (`ENODEV` once it is shut down). */
  unit(): ProbedUnit;
  /** The entries installing `domain`. */
  attachments(domain: VtdPagingDomain | VtdNestedDomain): readonly Attachment[];
  /** The nested domains on `parent` that are attached somewhere. */
  nestedOn(parent: VtdPagingDomain): readonly VtdNestedDomain[];
}

const pagesOf = (size: number) => Math.ceil(size / 4096);

/** The `DomainFlush` of a paging domain with DID `did`. */
export function domainFlush(host: FlushHost, did: number): DomainFlush {
  return {
    range: (domain, iova, size, leafOnly) => {
      const { cap } = host.unit().unit;
      const pages = pagesOf(size);
      const range = { addr: iova, pages };
      const descriptors: InvDescriptorInit[] =
        domain.stage === 'second'
          ? [did, ...host.nestedOn(domain).map((n) => n.did)].map((d) =>
              iotlbRange(cap, d, iova, pages, leafOnly),
            )
          : pasidsOf(host.attachments(domain)).map((pasid) =>
              pasidIotlbRange(cap, did, pasid, range, leafOnly),
            );
      descriptors.push(...deviceTlbs(host.attachments(domain), range));
      if (domain.stage === 'second')
        for (const n of host.nestedOn(domain)) descriptors.push(...deviceTlbs(host.attachments(n)));
      submit(host, descriptors);
    },
    all: (domain) => {
      const descriptors: InvDescriptorInit[] =
        domain.stage === 'second'
          ? [did, ...host.nestedOn(domain).map((n) => n.did)].map(iotlbDomain)
          : pasidsOf(host.attachments(domain)).map((pasid) => pasidIotlb(did, pasid));
      descriptors.push(...deviceTlbs(host.attachments(domain)));
      if (domain.stage === 'second')
        for (const n of host.nestedOn(domain)) descriptors.push(...deviceTlbs(host.attachments(n)));
      submit(host, descriptors);
    },
    mapped: (domain, iova, size) => {
      const unit = host.unit();
      if (domain.stage === 'second' && unit.unit.cap.cm)
        submit(
          host,
          [did, ...host.nestedOn(domain).map((n) => n.did)].map((d) =>
            iotlbRange(unit.unit.cap, d, iova, pagesOf(size), true),
          ),
        );
      else unit.commands.flushWriteBuffer();
    },
  };
}

/** One user invalidation of a nested domain (Linux `intel_nested_cache_invalidate_user`); `pages` 0 sends nothing. */
export function invalidateNested(host: FlushHost, domain: VtdNestedDomain, inv: UserInvalidation): void {
  if (inv.pages === 0) return;
  const { cap } = host.unit().unit;
  const range = inv.pages === undefined ? undefined : { addr: inv.addr, pages: inv.pages };
  const attachments = host.attachments(domain);
  submit(host, [
    ...pasidsOf(attachments).map((pasid) => pasidIotlbRange(cap, domain.did, pasid, range, inv.leafOnly)),
    ...deviceTlbs(attachments, range),
  ]);
}

function pasidsOf(attachments: readonly Attachment[]): number[] {
  return [...new Set(attachments.map((a) => a.pasid))];
}

/** Device-TLB invalidations of `range` (everything without one) at each ATS attachment. */
function deviceTlbs(
  attachments: readonly Attachment[],
  range?: { readonly addr: number; readonly pages: number },
): InvDescriptorInit[] {
  // An input range is below 2^57, so its block (at most 2^45 pages) always fits ATS's range encoding.
  const block = range === undefined ? { addr: 0, am: DEVTLB_ALL } : psiAligned(range.addr, range.pages);
  const out: InvDescriptorInit[] = [];
  for (const { device, pasid } of attachments) {
    const ats = device.ats;
    if (ats === undefined) continue;
    out.push(
      pasid === RID_PASID
        ? deviceTlb(ats, block.addr, block.am)
        : pasidDeviceTlb(ats, pasid, block.addr, block.am),
    );
  }
  return out;
}

function submit(host: FlushHost, descriptors: readonly InvDescriptorInit[]): void {
  if (descriptors.length > 0) host.unit().qi.submit(descriptors);
}
