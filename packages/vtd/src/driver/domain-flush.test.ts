/** What each domain change invalidates (domain-flush.ts), against a recording queue. */
import { describe, expect, it } from 'vitest';
import { INV_TYPE, type InvDescriptorInit } from '../hw/inv-descriptors.js';
import { IOTLB_GRANULARITY } from '../hw/regs.js';
import { type Attachment, domainFlush, type FlushHost, invalidateNested } from './domain-flush.js';
import type { VtdNestedDomain } from './nested-domain.js';
import type { VtdPagingDomain } from './paging-domain.js';
import type { ProbedUnit } from './probe.js';
import { DEVTLB_ALL } from './qi.js';

const ATS = { sid: 0x310, pfsid: 0x310, qdep: 0 };

function host(options: { cm?: boolean; mamv?: number } = {}) {
  const submitted: InvDescriptorInit[][] = [];
  let writeBufferFlushes = 0;
  const attachments = new Map<unknown, Attachment[]>();
  const nested: VtdNestedDomain[] = [];
  const unit = {
    unit: { cap: { psi: true, mamv: options.mamv ?? 9, cm: options.cm ?? false } },
    qi: { submit: (d: readonly InvDescriptorInit[]) => submitted.push([...d]) },
    commands: { flushWriteBuffer: () => writeBufferFlushes++ },
  } as unknown as ProbedUnit;
  const h: FlushHost = {
    unit: () => unit,
    attachments: (domain) => attachments.get(domain) ?? [],
    nestedOn: () => nested,
  };
  return { h, submitted, attachments, nested, flushes: () => writeBufferFlushes };
}

const second = { stage: 'second' } as VtdPagingDomain;
const first = { stage: 'first' } as VtdPagingDomain;
const types = (batch: readonly InvDescriptorInit[]) => batch.map((d) => d.type);

describe('domainFlush', () => {
  it('second stage, whole: the DID and every attached nested DID, then each ATS device whole', () => {
    const { h, submitted, attachments, nested } = host();
    const child = { did: 9 } as VtdNestedDomain;
    nested.push(child);
    attachments.set(second, [{ device: { sid: 0x310, ats: ATS }, pasid: 0 }]);
    attachments.set(child, [{ device: { sid: 0x318, ats: { ...ATS, sid: 0x318 } }, pasid: 5 }]);
    domainFlush(h, 4).all(second);
    expect(submitted).toHaveLength(1);
    expect(submitted[0]).toMatchObject([
      { type: INV_TYPE.IOTLB, granularity: IOTLB_GRANULARITY.DOMAIN, did: 4 },
      { type: INV_TYPE.IOTLB, granularity: IOTLB_GRANULARITY.DOMAIN, did: 9 },
      { type: INV_TYPE.DEVICE_TLB, sid: 0x310 },
      { type: INV_TYPE.PASID_DEVICE_TLB, sid: 0x318, pasid: 5 },
    ]);
  });

  it('first stage, whole: a PASID-based invalidation per PASID it is attached at, once each', () => {
    const { h, submitted, attachments } = host();
    attachments.set(first, [
      { device: { sid: 1, ats: undefined }, pasid: 0 },
      { device: { sid: 2, ats: undefined }, pasid: 0 },
      { device: { sid: 2, ats: undefined }, pasid: 3 },
    ]);
    domainFlush(h, 4).all(first);
    expect(submitted[0]).toMatchObject([
      { type: INV_TYPE.PASID_IOTLB, did: 4, pasid: 0, granularity: 2 },
      { type: INV_TYPE.PASID_IOTLB, did: 4, pasid: 3, granularity: 2 },
    ]);
  });

  it('a range: page-selective, the Device-TLB over the same block; nothing attached sends nothing', () => {
    const { h, submitted, attachments } = host();
    domainFlush(h, 4).range(first, 0x10_0000, 0x2000, true);
    expect(submitted).toEqual([]);
    attachments.set(first, [{ device: { sid: 0x310, ats: ATS }, pasid: 0 }]);
    domainFlush(h, 4).range(first, 0x10_0000, 0x2000, true);
    expect(submitted[0]).toMatchObject([
      { type: INV_TYPE.PASID_IOTLB, granularity: 3, addr: 0x10_0000, am: 1, ih: true },
      { type: INV_TYPE.DEVICE_TLB, addr: 0x10_0000, size: true },
    ]);
    // A 2^48-byte range: 2^36 pages, encoded as ATS does (the bits below the size order set).
    domainFlush(h, 4).range(first, 0, 2 ** 48, false);
    const devtlb = submitted[1]!.find((d) => d.type === INV_TYPE.DEVICE_TLB)!;
    expect(devtlb).toMatchObject({ addr: 2 ** (11 + 36) - 4096, size: true });
    domainFlush(h, 4).all(first);
    expect(submitted[2]!.find((d) => d.type === INV_TYPE.DEVICE_TLB)).toMatchObject({
      addr: 2 ** (11 + DEVTLB_ALL) - 4096,
    });
  });

  it('a map: with caching mode a leaf-only IOTLB invalidation of the DID and its nested DIDs, else a write-buffer flush', () => {
    const cm = host({ cm: true });
    cm.nested.push({ did: 9 } as VtdNestedDomain);
    domainFlush(cm.h, 4).mapped!(second, 0x10_0000, 0x1000);
    expect(types(cm.submitted[0]!)).toEqual([INV_TYPE.IOTLB, INV_TYPE.IOTLB]);
    expect(cm.submitted[0]).toMatchObject([
      { did: 4, ih: true },
      { did: 9, ih: true },
    ]);
    domainFlush(cm.h, 4).mapped!(first, 0x10_0000, 0x1000);
    expect(cm.flushes()).toBe(1);
    const plain = host();
    domainFlush(plain.h, 4).mapped!(second, 0x10_0000, 0x1000);
    expect([plain.submitted, plain.flushes()]).toEqual([[], 1]);
  });
});

describe('invalidateNested', () => {
  it('a range per PASID with the Device-TLB; everything without a range; nothing for 0 pages', () => {
    const { h, submitted, attachments } = host({ mamv: 4 });
    const domain = { did: 9 } as VtdNestedDomain;
    attachments.set(domain, [{ device: { sid: 0x310, ats: ATS }, pasid: 0 }]);
    invalidateNested(h, domain, { addr: 0x10_0000, pages: 0, leafOnly: false });
    expect(submitted).toEqual([]);
    invalidateNested(h, domain, { addr: 0x10_0000, pages: 4, leafOnly: true });
    expect(submitted[0]).toMatchObject([
      { type: INV_TYPE.PASID_IOTLB, did: 9, granularity: 3, am: 2, ih: true },
      { type: INV_TYPE.DEVICE_TLB, addr: 0x10_0000 + 0x1000, size: true },
    ]);
    // 2^5 pages is beyond MAMV 4: PASID-selective; the Device-TLB still gets the range.
    invalidateNested(h, domain, { addr: 0, pages: 32, leafOnly: false });
    expect(submitted[1]).toMatchObject([{ granularity: 2 }, { type: INV_TYPE.DEVICE_TLB }]);
    invalidateNested(h, domain, { addr: 0, pages: undefined, leafOnly: false });
    expect(submitted[2]).toMatchObject([{ granularity: 2 }, { type: INV_TYPE.DEVICE_TLB, size: true }]);
  });
});
