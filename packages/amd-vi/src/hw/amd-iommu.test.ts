/**
 * The unit as a whole (amd-iommu.ts): its identification registers, commands reaching the caches and the
 * endpoints, page requests into the PPR log (and the ones the unit answers itself), its own interrupts as
 * MSIs, and a vIOMMU's refusal of a command.
 */
import { type EndpointPort, NO_PASID, type PageResponse, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { RAM_BASE, RW, unitRig } from '../../test/unit-rig.js';
import {
  buildCompletePpr,
  buildInvalidateDevtabEntry,
  buildInvalidateInterruptTable,
  buildInvalidateIommuAll,
  buildInvalidateIotlbPages,
} from './command-encoders.js';
import { decodePprLogEntry, EVENT_WORDS, PPR_FLAG, PPR_TAG_LAST_PAGE } from './events.js';
import {
  CTRL_CMD_BUF_EN,
  CTRL_EVENT_INT_EN,
  CTRL_EVENT_LOG_EN,
  CTRL_IOMMU_EN,
  CTRL_PPR_EN,
  CTRL_PPR_LOG_EN,
  MSI_CAP_EN,
  REG,
  STATUS_EVT_LOG_INT,
  STATUS_PPR_INT,
} from './regs.js';

const DEV = 0x10;
const IOVA = 0x4000_0000;
const PPR_LOG = RAM_BASE + 0x20_4000;
const ON = CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN;

/** An endpoint recording what the unit sends it. */
function endpoint() {
  const atc: { pasid: number | undefined; iova: bigint; size: bigint }[] = [];
  const responses: PageResponse[] = [];
  const port: EndpointPort = {
    invalidateAtc: (pasid, iova, size) => atc.push({ pasid, iova, size }),
    pageResponse: (response) => responses.push(response),
    completeStalled: () => {},
  };
  return { port, atc, responses };
}

/** A unit whose DEV translates IOVA through a 4-level host table, and whose PPR log is on. */
function rig() {
  const r = unitRig();
  const table = r.hostTable(4);
  const data = r.page();
  table.map(BigInt(IOVA), BigInt(data), 0x1000n, RW);
  r.dte(DEV, {
    v: true,
    tv: true,
    mode: 4,
    hostPageTableRootPtr: table.rootPa,
    ir: true,
    iw: true,
    domainId: 5,
    ppr: true,
    i: true,
  });
  r.mmio32(REG.PPR_LOG_BASE, PPR_LOG % 2 ** 32);
  r.mmio32(REG.PPR_LOG_BASE + 4, Math.floor(PPR_LOG / 2 ** 32) | (9 << 24));
  r.mmio32(REG.CONTROL, ON | CTRL_PPR_LOG_EN | CTRL_PPR_EN);
  const e = endpoint();
  r.unit.connectEndpoint(DEV, e.port);
  return { ...r, table, data, ...e };
}

describe('the AMD IOMMU unit', () => {
  it('identifies itself with the EFR and EFR2 its registers hold', () => {
    const r = unitRig();
    expect(r.unit.identify()).toEqual({ EFR: '0x17400f002058de', EFR2: '0x8' });
    expect([r.read32(REG.EFR), r.read32(REG.EFR + 4)]).toEqual([0x002058de, 0x0017400f]);
  });

  it('INVALIDATE_IOMMU_ALL empties the caches; INVALIDATE_INTERRUPT_TABLE reaches interrupt remapping', () => {
    const r = rig();
    expect(r.translate(DEV, IOVA).ok).toBe(true);
    r.table.unmap(BigInt(IOVA), 0x1000n);
    expect(r.translate(DEV, IOVA).ok).toBe(true);
    r.submit(buildInvalidateIommuAll());
    expect(r.translate(DEV, IOVA).ok).toBe(false);
    r.unit.interruptRemapping.cache.set(DEV, 3, {} as never);
    r.submit(buildInvalidateInterruptTable(DEV + 1));
    expect(r.unit.interruptRemapping.cache.peek(DEV, 3)).toBeDefined();
    r.submit(buildInvalidateInterruptTable(DEV));
    expect(r.unit.interruptRemapping.cache.peek(DEV, 3)).toBeUndefined();
  });

  it('INVALIDATE_IOTLB_PAGES is an ATS invalidation of the device, with its PASID and range', () => {
    const r = rig();
    r.submit(buildInvalidateIotlbPages(DEV, 32, 0x2000, 0x2000, 0, false));
    r.submit(buildInvalidateIotlbPages(DEV, 32, 0x1000, 0x1000, 7, true));
    expect(r.atc).toEqual([
      { pasid: undefined, iova: 0x2000n, size: 0x2000n },
      { pasid: 7, iova: 0x1000n, size: 0x1000n },
    ]);
  });

  it('a page request goes into the PPR log with PPRInt; COMPLETE_PPR_REQUEST answers the device', () => {
    const r = rig();
    r.unit.pageRequest(DEV, { pasid: 3, iova: 0x7000n, access: PERM_WRITE, groupIndex: 0x45, last: true });
    const words = new Uint32Array(EVENT_WORDS);
    r.bus.readWords(PPR_LOG, words, EVENT_WORDS, r.bus.counter('test'));
    expect(decodePprLogEntry(words, 0)).toEqual({
      type: 1,
      deviceId: DEV,
      pasid: 3,
      tag: 0x45 | PPR_TAG_LAST_PAGE,
      flags: PPR_FLAG.WRITE | PPR_FLAG.US | PPR_FLAG.GN,
      address: 0x7000,
    });
    expect(r.read32(REG.PPR_TAIL)).toBe(16);
    expect(r.read32(REG.STATUS) & STATUS_PPR_INT).toBe(STATUS_PPR_INT);
    expect(r.responses).toEqual([]);
    r.submit(buildCompletePpr(DEV, 3, 0, 0x45, true));
    expect(r.responses).toEqual([{ pasid: 3, groupIndex: 0x45, code: 'success' }]);
  });

  it('the unit answers what it cannot log: Invalid Request without DTE.PPR (INVALID_PPR_REQUEST), Response Failure with the log off', () => {
    const r = rig();
    r.dte(DEV, { v: true, tv: true, mode: 0, ir: true, iw: true, domainId: 5 });
    r.submit(buildInvalidateDevtabEntry(DEV));
    r.unit.pageRequest(DEV, { pasid: NO_PASID, iova: 0x7000n, access: PERM_READ, groupIndex: 1, last: true });
    expect(r.events()).toEqual([
      {
        kind: 'invalid-ppr-request',
        deviceId: DEV,
        pasid: 0,
        tag: 1 | PPR_TAG_LAST_PAGE,
        flags: PPR_FLAG.READ,
        address: 0x7000,
      },
    ]);
    r.dte(DEV, { v: true, tv: true, mode: 0, ir: true, iw: true, domainId: 5, ppr: true });
    r.submit(buildInvalidateDevtabEntry(DEV));
    r.mmio32(REG.CONTROL, ON);
    r.unit.pageRequest(DEV, { pasid: 2, iova: 0x7000n, access: PERM_READ, groupIndex: 2, last: true });
    expect(r.responses).toEqual([
      { pasid: NO_PASID, groupIndex: 1, code: 'invalid' },
      { pasid: 2, groupIndex: 2, code: 'failure' },
    ]);
    expect(r.unit.stats()).toMatchObject({ pageRequestsAnswered: 2 });
    // A unit that is off answers every page request with Response Failure, logging nothing.
    r.mmio32(REG.CONTROL, 0);
    r.unit.pageRequest(DEV, { pasid: 4, iova: 0x7000n, access: PERM_READ, groupIndex: 3, last: true });
    expect(r.responses.at(-1)).toEqual({ pasid: 4, groupIndex: 3, code: 'failure' });
  });

  it('an event is an MSI with the unit’s requester ID when EventIntEn and MsiEn are set, once per EvtLogInt', () => {
    const r = rig();
    const writes: { address: number; data: number; requester: number | undefined }[] = [];
    r.bus.addMmio('apic', 0xfee0_0000, 0x1000, {
      read: () => 0,
      write: (offset, _size, data, requester) =>
        writes.push({ address: 0xfee0_0000 + offset, data: Number(data), requester }),
    });
    r.mmio32(REG.MSI_ADDR_LOW, 0xfee0_0040);
    r.mmio32(REG.MSI_DATA, 0x41);
    r.mmio32(REG.MSI_CAP_HDR, MSI_CAP_EN);
    r.mmio32(REG.CONTROL, ON | CTRL_EVENT_INT_EN);
    r.translate(DEV, IOVA + 0x1000);
    r.translate(DEV, IOVA + 0x2000);
    expect(writes).toEqual([{ address: 0xfee0_0040, data: 0x41, requester: 0 }]);
    expect(r.events()).toHaveLength(2);
    // Software clears EvtLogInt (W1C): the next event signals again.
    r.mmio32(REG.STATUS, STATUS_EVT_LOG_INT);
    r.translate(DEV, IOVA + 0x3000);
    expect(writes).toHaveLength(2);
  });

  it('a command a vIOMMU refuses stops the buffer with ILLEGAL_COMMAND_ERROR at it, after the unit performed it', () => {
    const forwarded: string[] = [];
    const r = unitRig(
      {},
      {
        forwardCommand: (command) => {
          forwarded.push(command.op);
          return command.op === 'invalidate-devtab-entry' ? 'refused by the host' : undefined;
        },
      },
    );
    r.submit(buildInvalidateIommuAll(), buildInvalidateDevtabEntry(DEV), buildInvalidateIommuAll());
    expect(forwarded).toEqual(['invalidate-iommu-all', 'invalidate-devtab-entry']);
    expect(r.events()).toEqual([{ kind: 'illegal-command-error', address: RAM_BASE + 0x20_2000 + 16 }]);
    expect(r.read32(REG.CMD_HEAD)).toBe(16);
  });

  it('counts in stats(): walks, faults, commands, events', () => {
    const r = rig();
    r.translate(DEV, IOVA);
    r.translate(DEV, IOVA + 0x1000);
    r.submit(buildInvalidateIommuAll());
    expect(r.unit.stats()).toMatchObject({ walks: 2, faults: 1, dteFetches: 1 });
  });
});
