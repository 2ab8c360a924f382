/**
 * The DMA translation pipeline of one unit (translate.ts), driven through its registers and memory: what
 * passes untranslated, host (v1) and guest (v2) translation, nesting, the IOTLB and the command that empties
 * it, and every event a failure logs, checked field by field in the event log.
 */
import { PERM_EXEC, PERM_PRIV, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { RW, unitRig } from '../../test/unit-rig.js';
import { buildInvalidateDevtabEntry, buildInvalidateIommuPages } from './command-encoders.js';
import { EVENT_FLAG, HARDWARE_ERROR_TYPE } from './events.js';
import {
  CTRL_CMD_BUF_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_HI_GCR3_TRP_MODE,
  EXCL_ALLOW,
  EXCL_EN,
  REG,
} from './regs.js';

const DEV = 0x10;
const IOVA = 0x4000_0000;
const { PR, PE, RZ, RW: W, GN, US } = EVENT_FLAG;

/** A unit with DEV on a 4-level host table of domain 5 mapping IOVA read/write to a fresh page. */
function host(prot = RW) {
  const r = unitRig();
  const table = r.hostTable(4);
  const data = r.page();
  table.map(BigInt(IOVA), BigInt(data), 0x1000n, prot);
  r.dte(DEV, {
    v: true,
    tv: true,
    mode: 4,
    hostPageTableRootPtr: table.rootPa,
    ir: true,
    iw: true,
    domainId: 5,
  });
  return { ...r, table, data };
}

const pfnOf = (result: ReturnType<ReturnType<typeof unitRig>['translate']>) => (result.ok ? result.pfn : -1);

describe('what passes untranslated', () => {
  it('everything while Control.IommuEn is 0, then a DTE with V = 0', () => {
    const r = unitRig();
    r.mmio32(REG.CONTROL, CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN);
    expect(r.translate(DEV, IOVA, PERM_WRITE)).toMatchObject({ ok: true, pfn: IOVA / 4096 });
    r.mmio32(REG.CONTROL, 1 | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN);
    expect(r.translate(DEV, IOVA, PERM_WRITE)).toMatchObject({ ok: true, pfn: IOVA / 4096 });
    expect(r.events()).toEqual([]);
  });

  it('the exclusion range: with Allow every device, without it only DTE.EX, limit inclusive', () => {
    const r = host();
    r.mmio64(REG.EXCL_BASE, 0x8000_0000 + EXCL_EN);
    r.mmio64(REG.EXCL_LIMIT, 0x8000_1000);
    expect(r.translate(DEV, 0x8000_1000).ok).toBe(false);
    r.events();
    r.mmio64(REG.EXCL_BASE, 0x8000_0000 + (EXCL_EN | EXCL_ALLOW));
    expect(r.translate(DEV, 0x8000_1fff)).toMatchObject({ ok: true, pfn: 0x8000_1 });
    expect(r.translate(DEV, 0x8000_2000).ok).toBe(false);
    // A request with PASID is never excluded.
    expect(r.translate(DEV, 0x8000_0000, PERM_READ, 1).ok).toBe(false);
  });
});

describe('host (v1) translation', () => {
  it('walks the tables once, then answers from the IOTLB', () => {
    const r = host();
    expect(r.translate(DEV, IOVA + 0x123, PERM_WRITE)).toMatchObject({
      ok: true,
      pfn: r.data / 4096,
      pageShift: 12,
    });
    const walks = r.unit.translator.walker.walks;
    expect(r.translate(DEV, IOVA, PERM_READ)).toMatchObject({
      ok: true,
      perm: PERM_READ | PERM_WRITE | PERM_EXEC,
    });
    expect(r.unit.translator.walker.walks).toBe(walks);
    expect(r.unit.stats()).toMatchObject({ iotlbHits: 1 });
  });

  it('a repeated hit is replayed from the hit memo as the lookups would count it; a register write is seen at once', () => {
    const r = host();
    r.translate(DEV, IOVA);
    r.translate(DEV, IOVA);
    const before = r.unit.stats();
    const replayed = r.translate(DEV, IOVA);
    expect(r.translate(DEV, IOVA)).toBe(replayed);
    const after = r.unit.stats();
    expect([after.iotlbHits! - before.iotlbHits!, after.dteCacheHits! - before.dteCacheHits!]).toEqual([
      2, 2,
    ]);
    expect(after.walks).toBe(before.walks);
    // The exclusion range now covers the page: the next request passes untranslated, without a lookup.
    r.mmio64(REG.EXCL_BASE, IOVA + (EXCL_EN | EXCL_ALLOW));
    r.mmio64(REG.EXCL_LIMIT, IOVA);
    expect(r.translate(DEV, IOVA)).toMatchObject({ ok: true, pfn: IOVA / 4096 });
    // With tracing on nothing is replayed: every lookup is made (and traced), each result a new object.
    r.mmio64(REG.EXCL_BASE, 0);
    r.translate(DEV, IOVA);
    r.tracer.startRecording();
    expect(r.translate(DEV, IOVA)).not.toBe(r.translate(DEV, IOVA));
  });

  it('Mode 0 passes the address with the DTE’s IR/IW: a write without IW is PR | PE | RW', () => {
    const r = unitRig();
    r.dte(DEV, { v: true, tv: true, mode: 0, ir: true, domainId: 7 });
    expect(r.translate(DEV, IOVA)).toMatchObject({ ok: true, pfn: IOVA / 4096 });
    expect(r.translate(DEV, IOVA, PERM_WRITE)).toMatchObject({
      ok: false,
      fault: { kind: 'permission', vendorCode: 'IO_PAGE_FAULT' },
    });
    expect(r.events()).toEqual([
      { kind: 'io-page-fault', deviceId: DEV, domainOrPasid: 7, flags: PR | PE | W, address: IOVA },
    ]);
  });

  it('IR/IW of the DTE and the tables combine: a read-only leaf refuses a write, the DTE without IW too', () => {
    const r = host({ read: true, write: false });
    expect(r.translate(DEV, IOVA, PERM_WRITE).ok).toBe(false);
    r.dte(DEV, {
      v: true,
      tv: true,
      mode: 4,
      hostPageTableRootPtr: r.table.rootPa,
      ir: true,
      iw: false,
      domainId: 5,
    });
    r.submit(buildInvalidateDevtabEntry(DEV));
    expect(r.translate(DEV, IOVA).ok).toBe(true);
    expect(r.events().map((e) => e.kind === 'io-page-fault' && e.flags)).toEqual([PR | PE | W]);
  });

  it('an unmapped page is IO_PAGE_FAULT with PR = 0 and the DomainID; an IOVA beyond Mode 3 is PR = 1 alone', () => {
    const r = host();
    expect(r.translate(DEV, IOVA + 0x1000, PERM_WRITE)).toMatchObject({
      ok: false,
      fault: { kind: 'translation' },
    });
    r.dte(DEV, {
      v: true,
      tv: true,
      mode: 3,
      hostPageTableRootPtr: r.table.rootPa,
      ir: true,
      iw: true,
      domainId: 5,
    });
    r.submit(buildInvalidateDevtabEntry(DEV));
    expect(r.translate(DEV, 2 ** 39).ok).toBe(false);
    expect(r.events()).toEqual([
      { kind: 'io-page-fault', deviceId: DEV, domainOrPasid: 5, flags: W, address: IOVA + 0x1000 },
      { kind: 'io-page-fault', deviceId: DEV, domainOrPasid: 5, flags: PR, address: 2 ** 39 },
    ]);
  });

  it('a changed mapping is stale until INVALIDATE_IOMMU_PAGES of its domain (GN = 0) reaches it', () => {
    const r = host();
    expect(pfnOf(r.translate(DEV, IOVA))).toBe(r.data / 4096);
    r.table.unmap(BigInt(IOVA), 0x1000n);
    expect(pfnOf(r.translate(DEV, IOVA))).toBe(r.data / 4096);
    r.submit(buildInvalidateIommuPages(IOVA, 0x1000, 6, 0, false));
    expect(pfnOf(r.translate(DEV, IOVA))).toBe(r.data / 4096);
    r.submit(buildInvalidateIommuPages(IOVA, 0x1000, 5, 0, false));
    expect(r.translate(DEV, IOVA).ok).toBe(false);
  });

  it('with NpCache a not-present leaf is cached: mapping the page needs an invalidation before it is seen', () => {
    const r = unitRig({ npCache: true });
    const table = r.hostTable(4);
    r.dte(DEV, {
      v: true,
      tv: true,
      mode: 4,
      hostPageTableRootPtr: table.rootPa,
      ir: true,
      iw: true,
      domainId: 5,
    });
    expect(r.translate(DEV, IOVA).ok).toBe(false);
    table.map(BigInt(IOVA), BigInt(r.page()), 0x1000n, RW);
    expect(r.translate(DEV, IOVA)).toMatchObject({ ok: false, fault: { kind: 'translation' } });
    r.submit(buildInvalidateIommuPages(IOVA, 0x1000, 5, 0, false));
    expect(r.translate(DEV, IOVA).ok).toBe(true);
    // Without NpCache the same change is seen at once.
    const plain = unitRig();
    const t = plain.hostTable(4);
    plain.dte(DEV, {
      v: true,
      tv: true,
      mode: 4,
      hostPageTableRootPtr: t.rootPa,
      ir: true,
      iw: true,
      domainId: 5,
    });
    expect(plain.translate(DEV, IOVA).ok).toBe(false);
    t.map(BigInt(IOVA), BigInt(plain.page()), 0x1000n, RW);
    expect(plain.translate(DEV, IOVA).ok).toBe(true);
  });

  it('a table the bus cannot read is PAGE_TAB_HARDWARE_ERROR at the entry’s address', () => {
    const r = unitRig();
    const hole = 0x4000_0000;
    r.dte(DEV, { v: true, tv: true, mode: 4, hostPageTableRootPtr: hole, ir: true, iw: true, domainId: 5 });
    expect(r.translate(DEV, 0)).toMatchObject({
      ok: false,
      fault: { kind: 'walk-abort', vendorCode: 'PAGE_TAB_HARDWARE_ERROR' },
    });
    expect(r.events()).toEqual([
      {
        kind: 'page-tab-hardware-error',
        deviceId: DEV,
        domainOrPasid: 5,
        flags: 0,
        type: HARDWARE_ERROR_TYPE.MASTER_ABORT,
        address: hole,
      },
    ]);
  });
});

describe('the device table', () => {
  it('V = 1, TV = 0 blocks: IO_PAGE_FAULT with PR = 0', () => {
    const r = unitRig();
    r.dte(DEV, { v: true, domainId: 3 });
    expect(r.translate(DEV, IOVA, PERM_WRITE).ok).toBe(false);
    expect(r.events()).toEqual([
      { kind: 'io-page-fault', deviceId: DEV, domainOrPasid: 3, flags: W, address: IOVA },
    ]);
  });

  it('a DeviceID beyond DevTblBase.Size: IO_PAGE_FAULT with no DomainID and no address', () => {
    const r = unitRig();
    r.mmio64(REG.DEV_TBL_BASE, 0x1_0000_0000);
    // Size 0: one 4 KiB page, 128 DTEs (all V = 0 here).
    expect(r.translate(0x7f, IOVA).ok).toBe(true);
    expect(r.translate(0x80, IOVA)).toMatchObject({ ok: false, fault: { kind: 'bad-stream' } });
    expect(r.events()).toEqual([
      { kind: 'io-page-fault', deviceId: 0x80, domainOrPasid: 0, flags: 0, address: 0 },
    ]);
  });

  it('a reserved bit: ILLEGAL_DEV_TABLE_ENTRY with RZ and the request’s address; an unreadable table DEV_TAB_HARDWARE_ERROR', () => {
    const r = unitRig();
    const words = new Uint32Array(8);
    words[0] = 1 | (1 << 2);
    r.write(0x1_0000_0000 + DEV * 32, words);
    expect(r.translate(DEV, IOVA, PERM_WRITE)).toMatchObject({
      ok: false,
      fault: { kind: 'bad-config', vendorCode: 'ILLEGAL_DEV_TABLE_ENTRY' },
    });
    r.mmio64(REG.DEV_TBL_BASE, 0x4000_0000 + 0x1ff);
    expect(r.translate(DEV, IOVA).ok).toBe(false);
    expect(r.events()).toEqual([
      { kind: 'illegal-dev-table-entry', deviceId: DEV, pasid: 0, flags: RZ | W, address: IOVA },
      {
        kind: 'dev-tab-hardware-error',
        deviceId: DEV,
        flags: 0,
        type: HARDWARE_ERROR_TYPE.MASTER_ABORT,
        address: 0x4000_0000 + DEV * 32,
      },
    ]);
  });

  it('DTE.SA suppresses every IO_PAGE_FAULT; DTE.SE all after the first until the DTE is invalidated', () => {
    const r = unitRig();
    r.dte(DEV, { v: true, sa: true, domainId: 1 });
    expect(r.translate(DEV, IOVA)).toMatchObject({ ok: false, fault: { recorded: false } });
    r.dte(DEV, { v: true, se: true, domainId: 1 });
    r.submit(buildInvalidateDevtabEntry(DEV));
    expect(r.translate(DEV, IOVA)).toMatchObject({ ok: false, fault: { recorded: true } });
    expect(r.translate(DEV, IOVA + 0x1000)).toMatchObject({ ok: false, fault: { recorded: false } });
    r.submit(buildInvalidateDevtabEntry(DEV));
    expect(r.translate(DEV, IOVA + 0x2000)).toMatchObject({ ok: false, fault: { recorded: true } });
    expect(r.events().map((e) => (e as { address: number }).address)).toEqual([IOVA, IOVA + 0x2000]);
  });
});

describe('guest (v2) translation', () => {
  /** DEV with GV (and GIoV): a GCR3 table of 2 levels with a guest table at PASID `pasid`. */
  function guest(pasid: number, dte: object = {}) {
    const r = unitRig();
    const gt = r.guestTable(4);
    const data = r.page();
    gt.map(BigInt(IOVA), BigInt(data), 0x1000n, RW);
    const gcr3Root = r.page();
    r.gcr3(gcr3Root, 1, pasid, gt.rootPa);
    r.dte(DEV, {
      v: true,
      tv: true,
      mode: 0,
      ir: true,
      iw: true,
      gv: true,
      giov: true,
      glx: 1,
      gcr3TableRootPtr: gcr3Root,
      domainId: 9,
      ...dte,
    });
    return { ...r, gt, data, gcr3Root };
  }

  it('a request without PASID goes through PASID 0 with GIoV; a request with PASID through its own entry', () => {
    const r = guest(0);
    expect(pfnOf(r.translate(DEV, IOVA, PERM_WRITE))).toBe(r.data / 4096);
    const other = r.guestTable(4);
    const page = r.page();
    other.map(BigInt(IOVA), BigInt(page), 0x1000n, RW);
    r.gcr3(r.gcr3Root, 1, 600, other.rootPa);
    expect(pfnOf(r.translate(DEV, IOVA, PERM_READ, 600))).toBe(page / 4096);
  });

  it('a missing GCR3 entry and a PASID beyond GLX are IO_PAGE_FAULT with GN and the PASID', () => {
    const r = guest(0);
    expect(r.translate(DEV, IOVA, PERM_READ, 7).ok).toBe(false);
    expect(r.translate(DEV, IOVA, PERM_READ, 2 ** 18).ok).toBe(false);
    expect(r.events()).toEqual([
      { kind: 'io-page-fault', deviceId: DEV, domainOrPasid: 7, flags: GN | US, address: IOVA },
      { kind: 'io-page-fault', deviceId: DEV, domainOrPasid: 2 ** 18, flags: GN | US, address: IOVA },
    ]);
  });

  it('without Control.GTEn the DTE’s GV has no effect: a request with PASID is refused', () => {
    const r = guest(5);
    r.mmio32(REG.CONTROL, 1 | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN);
    expect(r.translate(DEV, IOVA, PERM_READ | PERM_PRIV, 5)).toMatchObject({
      ok: false,
      fault: { kind: 'bad-pasid' },
    });
  });

  it('a request with PASID to a DTE without GV is refused with GN', () => {
    const r = guest(0, { gv: false, giov: false, glx: 0, gcr3TableRootPtr: 0 });
    expect(r.translate(DEV, IOVA, PERM_READ | PERM_PRIV, 3)).toMatchObject({
      ok: false,
      fault: { kind: 'bad-pasid' },
    });
    expect(r.events()).toEqual([
      { kind: 'io-page-fault', deviceId: DEV, domainOrPasid: 3, flags: GN, address: IOVA },
    ]);
  });

  it('U/S: a user request to a supervisor page is PR | PE | US; a supervisor request passes', () => {
    const r = unitRig();
    const gt = r.guestTable(4);
    const page = r.page();
    gt.map(BigInt(IOVA), BigInt(page), 0x1000n, { read: true, write: true, priv: true } as never);
    const gcr3 = r.page();
    r.gcr3(gcr3, 0, 2, gt.rootPa);
    r.dte(DEV, { v: true, tv: true, ir: true, iw: true, gv: true, gcr3TableRootPtr: gcr3, domainId: 9 });
    expect(r.translate(DEV, IOVA, PERM_READ | PERM_PRIV, 2).ok).toBe(true);
    expect(r.translate(DEV, IOVA, PERM_READ, 2).ok).toBe(false);
    expect(r.events()).toEqual([
      { kind: 'io-page-fault', deviceId: DEV, domainOrPasid: 2, flags: GN | US | PR | PE, address: IOVA },
    ]);
  });
});

describe('nested: guest tables over the host tables', () => {
  /** Host tables map the guest's memory at GPA = SPA − OFFSET; the guest tables and GCR3 live in it. */
  const OFFSET = 0x1_0000_0000;
  function nested() {
    const r = unitRig();
    const hostTable = r.hostTable(4);
    const gt = r.guestTable(4);
    const data = r.page();
    const gcr3Root = r.page();
    const gpa = (spa: number) => spa - OFFSET;
    // The guest's tables point at GPAs: rebuild them by hand through a guest table whose PAs are GPAs.
    gt.map(BigInt(IOVA), BigInt(gpa(data)), 0x1000n, RW);
    // Host-map every page the guest table or the GCR3 table uses, and the data page.
    for (let spa = 0x1_0040_0000; spa < 0x1_0080_0000; spa += 0x1000)
      hostTable.map(BigInt(gpa(spa)), BigInt(spa), 0x1000n, RW);
    return { ...r, hostTable, gt, data, gcr3Root, gpa };
  }

  it('the guest output is a GPA the host tables translate; the grants are both', () => {
    const r = nested();
    // The guest table's own pointers are SPAs here (IoPageTable writes SPAs): host-map them 1:1 too.
    for (let spa = 0x1_0040_0000; spa < 0x1_0080_0000; spa += 0x1000)
      r.hostTable.map(BigInt(spa), BigInt(spa), 0x1000n, RW);
    r.gcr3(r.gcr3Root, 0, 1, r.gt.rootPa);
    r.dte(DEV, {
      v: true,
      tv: true,
      mode: 4,
      hostPageTableRootPtr: r.hostTable.rootPa,
      ir: true,
      iw: true,
      gv: true,
      gcr3TableRootPtr: r.gcr3Root,
      domainId: 4,
    });
    expect(pfnOf(r.translate(DEV, IOVA, PERM_WRITE, 1))).toBe(r.data / 4096);
    expect(r.unit.stats()).toMatchObject({ iotlbMisses: 1 });
  });

  it('a GPA the host does not map faults GN = 0 with the DomainID and that GPA', () => {
    const r = nested();
    r.gcr3(r.gcr3Root, 0, 1, r.gt.rootPa);
    r.dte(DEV, {
      v: true,
      tv: true,
      mode: 4,
      hostPageTableRootPtr: r.hostTable.rootPa,
      ir: true,
      iw: true,
      gv: true,
      gcr3TableRootPtr: r.gcr3Root,
      domainId: 4,
    });
    expect(r.translate(DEV, IOVA, PERM_READ, 1).ok).toBe(false);
    const [event] = r.events();
    expect(event).toMatchObject({ kind: 'io-page-fault', domainOrPasid: 4, flags: 0 });
  });

  it('with Control.GCR3TRPMode the GCR3 table is read through the host tables too', () => {
    const r = nested();
    for (let spa = 0x1_0040_0000; spa < 0x1_0080_0000; spa += 0x1000)
      r.hostTable.map(BigInt(spa), BigInt(spa), 0x1000n, RW);
    r.gcr3(r.gcr3Root, 0, 1, r.gt.rootPa);
    r.mmio32(REG.CONTROL + 4, CTRL_HI_GCR3_TRP_MODE);
    r.dte(DEV, {
      v: true,
      tv: true,
      mode: 4,
      hostPageTableRootPtr: r.hostTable.rootPa,
      ir: true,
      iw: true,
      gv: true,
      gcr3TableRootPtr: r.gpa(r.gcr3Root),
      domainId: 4,
    });
    expect(pfnOf(r.translate(DEV, IOVA, PERM_READ, 1))).toBe(r.data / 4096);
  });
});

describe('ATS Translation Requests', () => {
  const ats = (r: ReturnType<typeof unitRig>, iova: number, access: number) =>
    r.unit.atsTranslate({ streamId: DEV, pasid: -1, iovaPfn: iova / 4096, offset: 0, access });

  it('are answered only with DTE.I; a failure is the completion’s refusal, never an event', () => {
    const r = unitRig();
    const table = r.hostTable(4);
    const data = r.page();
    table.map(BigInt(IOVA), BigInt(data), 0x1000n, { read: true, write: false });
    const dte = {
      v: true,
      tv: true,
      mode: 4,
      hostPageTableRootPtr: table.rootPa,
      ir: true,
      iw: true,
      domainId: 5,
    };
    r.dte(DEV, dte);
    expect(ats(r, IOVA, PERM_READ)).toMatchObject({
      ok: false,
      fault: { kind: 'ats-disabled', recorded: false },
    });
    r.dte(DEV, { ...dte, i: true });
    r.submit(buildInvalidateDevtabEntry(DEV));
    expect(ats(r, IOVA, PERM_READ)).toMatchObject({ ok: true, pfn: data / 4096, perm: PERM_READ });
    // A write the page refuses: the completion grants what the page allows, R alone.
    expect(ats(r, IOVA, PERM_WRITE)).toMatchObject({ ok: true, perm: PERM_READ });
    expect(ats(r, IOVA + 0x1000, PERM_READ)).toMatchObject({
      ok: false,
      fault: { kind: 'translation', recorded: false },
    });
    expect(r.events()).toEqual([]);
    // The same unit, off: refused unrecorded.
    r.mmio32(REG.CONTROL, CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN);
    expect(ats(r, IOVA, PERM_READ)).toMatchObject({ ok: false, fault: { kind: 'ats-disabled' } });
  });
});
