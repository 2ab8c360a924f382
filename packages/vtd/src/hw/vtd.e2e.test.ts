/**
 * The unit programmed through its registers only, as Linux's intel-iommu does: root and context tables in
 * memory, SRTP, queued invalidation with wait descriptors, TE, then DMA, faults read back from the fault
 * recording registers and the fault event MSI.
 */
import { NO_PASID, PERM_READ, PERM_WRITE, type TranslationRequest } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { legacyRig, type MmioRig, MSI_WINDOW, mmioRig } from '../../test/mmio-rig.js';
import { FR } from './fault-reasons.js';
import { encodeInvDescriptor, INV_TYPE } from './inv-descriptors.js';
import {
  decodeFaultRecord,
  FRCD_WORD3_F,
  FSTS_PPF,
  frcdOffset,
  GCMD_QIE,
  GCMD_TE,
  GSTS_QIES,
  GSTS_RTPS,
  GSTS_TES,
  REG,
} from './regs.js';

const DEV = (2 << 8) | 0x08;
const IOVA = 0x10_0000;
const DID = 5;

function dma(rig: MmioRig, iova: number, access = PERM_READ): ReturnType<MmioRig['vtd']['translate']> {
  const request: TranslationRequest = {
    streamId: DEV,
    pasid: NO_PASID,
    iovaPfn: iova / 4096,
    offset: 0,
    access,
  };
  return rig.vtd.translate(request);
}

/** A legacy-mode unit (VER 5: register invalidation still there) with one device's second stage and QI on. */
function programmed(options: Record<string, unknown> = {}) {
  const { rig, ss, data } = legacyRig({ sid: DEV, did: DID, iova: IOVA }, options);
  // Queued invalidation: one page of 128-bit descriptors.
  const queue = rig.pages();
  rig.mmio64(REG.IQA, queue);
  rig.command(GCMD_QIE);
  let tail = 0;
  const submit = (...descriptors: Parameters<typeof encodeInvDescriptor>[0][]) => {
    for (const d of descriptors) {
      const words = new Uint32Array(4);
      encodeInvDescriptor(d, words, 0, false);
      rig.put(queue + tail, words);
      tail = (tail + 16) % 4096;
    }
    rig.mmio(REG.IQT, tail);
  };
  const status = rig.pages();
  /** Invalidations followed by a wait descriptor whose status write tells the driver they completed. */
  const sync = (...descriptors: Parameters<typeof encodeInvDescriptor>[0][]) => {
    rig.put(status, Uint32Array.of(0));
    submit(...descriptors, {
      type: INV_TYPE.WAIT,
      sw: true,
      iflag: false,
      fn: false,
      pd: false,
      statusData: 1,
      statusAddr: status,
    });
    return rig.word(status);
  };
  /** Puts raw descriptor words at the tail without moving IQT (a driver filling the queue). */
  const raw = (words: Uint32Array) => {
    rig.put(queue + tail, words);
    tail = (tail + 16) % 4096;
    return tail;
  };
  return { rig, ss, data, sync, queue, raw };
}

describe('VT-d through MMIO: set-up as Linux does it', () => {
  it('SRTP, QIE and TE handshakes; a wait descriptor writes its status; DMA translates', () => {
    const { rig, data, sync } = programmed();
    expect(rig.reg(REG.GSTS) & GSTS_RTPS).toBe(GSTS_RTPS);
    expect(rig.reg(REG.GSTS) & GSTS_QIES).toBe(GSTS_QIES);
    // The global invalidations Linux sends before enabling translation, then a wait: status 1.
    expect(
      sync(
        { type: INV_TYPE.CONTEXT_CACHE, granularity: 1, did: 0, sid: 0, fm: 0 },
        { type: INV_TYPE.IOTLB, granularity: 1, did: 0, am: 0, ih: false, addr: 0, dw: false, dr: false },
      ),
    ).toBe(1);
    expect(rig.reg(REG.IQH)).toBe(48);
    expect(dma(rig, IOVA)).toMatchObject({ ok: true, pfn: IOVA / 4096 });
    rig.command(GCMD_TE);
    expect(rig.reg(REG.GSTS) >>> 0).toBe((GSTS_TES | GSTS_RTPS | GSTS_QIES) >>> 0);
    expect(dma(rig, IOVA + 0x1000, PERM_WRITE)).toMatchObject({ ok: true, pfn: data / 4096 + 1 });
  });

  it('a stale IOTLB entry stays until the page-selective IOTLB descriptor for its DID', () => {
    const { rig, ss, data, sync } = programmed();
    rig.command(GCMD_TE);
    expect(dma(rig, IOVA)).toMatchObject({ ok: true, pfn: data / 4096 });
    ss.unmap(BigInt(IOVA), 0x1000n);
    expect(dma(rig, IOVA)).toMatchObject({ ok: true, pfn: data / 4096 });
    const page = (did: number) => ({
      type: INV_TYPE.IOTLB,
      granularity: 3,
      did,
      am: 0,
      ih: false,
      addr: IOVA,
      dw: false,
      dr: false,
    });
    sync(page(DID + 1));
    expect(dma(rig, IOVA).ok).toBe(true);
    sync(page(DID));
    expect(dma(rig, IOVA)).toMatchObject({
      ok: false,
      fault: { vendorCode: 'DMAR_FR_0x06', recorded: true },
    });
  });

  it('a fault lands in FRCD 0 with FSTS.PPF and FRI, raises the fault event MSI, and drains as dmar_fault does', () => {
    const { rig } = programmed();
    rig.command(GCMD_TE);
    rig.mmio(REG.FEDATA, 0x4041);
    rig.mmio(REG.FEADDR, MSI_WINDOW + 0x100);
    rig.mmio(REG.FECTL, 0);
    expect(dma(rig, 0x4000_0000, PERM_WRITE).ok).toBe(false);
    expect(rig.reg(REG.FSTS) & FSTS_PPF).toBe(FSTS_PPF);
    expect(rig.word(MSI_WINDOW + 0x100)).toBe(0x4041);
    const words = Uint32Array.from([0, 1, 2, 3], (i) => rig.reg(frcdOffset(0) + 4 * i));
    expect(decodeFaultRecord(words)).toMatchObject({
      f: true,
      sid: DEV,
      fr: FR.WRITE_DENIED,
      fi: 0x4000_0000,
    });
    // Software clears F (W1C), then PPF reads 0 again.
    rig.mmio(frcdOffset(0) + 12, FRCD_WORD3_F);
    expect(rig.reg(REG.FSTS) & FSTS_PPF).toBe(0);
  });

  it('an invalid descriptor stops the queue with IQE until software fixes it and clears IQE', () => {
    const { rig, sync, queue, raw } = programmed();
    const head = rig.reg(REG.IQH);
    // Type 0xF does not exist.
    rig.mmio(REG.IQT, raw(Uint32Array.of(0xf, 0, 0, 0)));
    expect(rig.reg(REG.FSTS) & 0x10).toBe(0x10);
    expect(rig.reg(REG.IQH)).toBe(head);
    // The driver replaces it with a valid descriptor (a global context-cache invalidation) and clears IQE.
    const fixed = new Uint32Array(4);
    encodeInvDescriptor(
      { type: INV_TYPE.CONTEXT_CACHE, granularity: 1, did: 0, sid: 0, fm: 0 },
      fixed,
      0,
      false,
    );
    rig.put(queue + head, fixed);
    rig.mmio(REG.FSTS, 0x10);
    expect(rig.reg(REG.IQH)).toBe(head + 16);
    expect(sync()).toBe(1);
  });
});

describe('VT-d through MMIO: identification', () => {
  it('reports VER, CAP and ECAP', () => {
    const rig = mmioRig();
    const id = rig.vtd.identify();
    expect(Object.keys(id)).toEqual(['VER', 'CAP', 'ECAP']);
    expect(id.VER).toBe(`0x${rig.reg(REG.VER).toString(16)}`);
    expect(rig.vtd.stats()).toMatchObject({ iotlbHits: 0, faultsRecorded: 0 });
  });
});
