/**
 * What each TLB invalidation command of the device model drops (IHI 0070 §4.4): entries are put in the
 * TLB directly, the command goes through the Command queue as a driver sends it, and the entries left
 * are compared. Stage 1 entries of a VMID are `s1` (stage 1 only) or `s12` (nested); `s2` entries hold
 * stage 2 translations (IPA input); ASID -1 marks a global entry.
 */
import { NO_PASID, type PageResponse } from '@iommukit/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { type MmioRig, mmioRig, RAM_BASE } from '../../test/mmio-rig.js';
import { cacheEntry } from '../../test/tlb-fixture.js';
import {
  encodeCfgiAll,
  encodeCfgiCd,
  encodeCfgiCdAll,
  encodeCfgiSte,
  encodeCfgiSteRange,
  encodeCmdSync,
  encodePriResp,
  encodeTlbiNhAll,
  encodeTlbiNhAsid,
  encodeTlbiNhVa,
  encodeTlbiNhVaa,
  encodeTlbiNsnhAll,
  encodeTlbiS2Ipa,
  encodeTlbiS12Vmall,
} from './commands.js';
import { CR0_CMDQEN, CR0_SMMUEN, REG } from './regs.js';
import type { Smmuv3Hardware } from './smmuv3.js';
import { GLOBAL_ASID, type TlbEntry, type TlbKind } from './tlb.js';

const CMDQ = RAM_BASE + 0x1_0000;

let rig: MmioRig;
let smmu: Smmuv3Hardware;
let prod = 0;

function entry(kind: TlbKind, vmid: number, asid: number, page: number): TlbEntry {
  return {
    kind,
    vmid,
    asid,
    inputBase: page * 4096,
    pageShift: 12,
    level: 3,
    outputBase: RAM_BASE + page * 4096,
    ipaBase: page * 4096,
    s1Grants: 0,
    s2Grants: 0,
    dirty: false,
  };
}

const label = (e: TlbEntry) => `${e.kind}/v${e.vmid}/a${e.asid}/p${e.inputBase / 4096}`;

/** The entries every test starts with. */
const START: readonly TlbEntry[] = [
  entry('s1', 1, 5, 0x10),
  entry('s1', 1, 5, 0x11),
  entry('s1', 1, 6, 0x10),
  entry('s1', 1, GLOBAL_ASID, 0x10),
  entry('s12', 1, 5, 0x10),
  entry('s2', 1, GLOBAL_ASID, 0x10),
  entry('s1', 2, 5, 0x10),
  entry('s2', 2, GLOBAL_ASID, 0x10),
];

/** Sends one command and a CMD_SYNC; returns the entries left. */
function run(command: Uint32Array): string[] {
  for (const c of [command, encodeCmdSync()]) {
    rig.put(CMDQ + (prod % 8) * 16, c);
    prod = (prod + 1) % 16;
  }
  rig.mmio(REG.CMDQ_PROD, prod);
  expect(rig.reg(REG.CMDQ_CONS)).toBe(prod);
  return smmu.tlb.entries().map(label).sort();
}

const left = (...dropped: string[]) =>
  START.map(label)
    .filter((l) => !dropped.includes(l))
    .sort();

beforeEach(() => {
  // Fully associative, so START's five entries for page 0x10 share a set without evicting each other.
  rig = mmioRig({ sidBits: 8, tlbEntries: 16, tlbWays: 16, tlbReplacement: 'lru' });
  smmu = rig.smmu;
  prod = 0;
  rig.mmio64(REG.CMDQ_BASE, CMDQ + 3);
  rig.mmio(REG.CR0, CR0_CMDQEN);
  for (const e of START) cacheEntry(smmu.tlb, e);
});

describe('TLB invalidation commands (§4.4)', () => {
  it('TLBI_NH_ALL drops the stage 1 entries of its VMID, every ASID, and keeps stage 2 ones', () => {
    expect(run(encodeTlbiNhAll({ vmid: 1 }))).toEqual(
      left('s1/v1/a5/p16', 's1/v1/a5/p17', 's1/v1/a6/p16', 's1/v1/a-1/p16', 's12/v1/a5/p16'),
    );
  });

  it('TLBI_NH_ASID drops the stage 1 entries of its VMID and ASID, not global ones', () => {
    expect(run(encodeTlbiNhAsid({ vmid: 1, asid: 5 }))).toEqual(
      left('s1/v1/a5/p16', 's1/v1/a5/p17', 's12/v1/a5/p16'),
    );
  });

  it('TLBI_NH_VA drops the stage 1 entries of its VMID at the address, for its ASID and global ones', () => {
    expect(run(encodeTlbiNhVa({ vmid: 1, asid: 5, addressPage: 0x10 }))).toEqual(
      left('s1/v1/a5/p16', 's1/v1/a-1/p16', 's12/v1/a5/p16'),
    );
  });

  it('TLBI_NH_VAA drops the stage 1 entries of its VMID at the address, for every ASID', () => {
    expect(run(encodeTlbiNhVaa({ vmid: 1, addressPage: 0x11 }))).toEqual(left('s1/v1/a5/p17'));
    expect(run(encodeTlbiNhVaa({ vmid: 1, addressPage: 0x10 }))).toEqual(
      left('s1/v1/a5/p16', 's1/v1/a5/p17', 's1/v1/a6/p16', 's1/v1/a-1/p16', 's12/v1/a5/p16'),
    );
  });

  it('a range TLBI (TG != 0) drops every page of (NUM + 1) × 2^SCALE granules (§4.4.1.1)', () => {
    // TG 4K, SCALE 0, NUM 1: two 4K pages from page 0x10, so the entry at page 0x11 goes too.
    expect(run(encodeTlbiNhVa({ vmid: 1, asid: 5, addressPage: 0x10, tg: 1, num: 1, ttl: 3 }))).toEqual(
      left('s1/v1/a5/p16', 's1/v1/a5/p17', 's1/v1/a-1/p16', 's12/v1/a5/p16'),
    );
  });

  it('TLBI_S12_VMALL drops every entry of its VMID, both stages', () => {
    expect(run(encodeTlbiS12Vmall({ vmid: 2 }))).toEqual(left('s1/v2/a5/p16', 's2/v2/a-1/p16'));
  });

  it('TLBI_S2_IPA drops the stage 2 entries of its VMID at the IPA only', () => {
    expect(run(encodeTlbiS2Ipa({ vmid: 1, addressPage: 0x11 }))).toEqual(left());
    expect(run(encodeTlbiS2Ipa({ vmid: 1, addressPage: 0x10 }))).toEqual(left('s2/v1/a-1/p16'));
  });

  it('TLBI_NSNH_ALL drops everything', () => {
    expect(run(encodeTlbiNsnhAll())).toEqual([]);
  });
});

describe('CMD_PRI_RESP (§4.5.2)', () => {
  function endpoint(streamId: number): PageResponse[] {
    const responses: PageResponse[] = [];
    smmu.connectEndpoint(streamId, {
      invalidateAtc: () => {},
      pageResponse: (response) => responses.push(response),
      completeStalled: () => {},
    });
    return responses;
  }

  it('answers the group with Resp 0b00 ResponseFailure, 0b01 InvalidRequest, 0b10 Success', () => {
    const responses = endpoint(3);
    const other = endpoint(4);
    rig.mmio(REG.CR0, CR0_CMDQEN | CR0_SMMUEN);
    for (const resp of [0, 1, 2]) run(encodePriResp({ streamId: 3, prgIndex: 0x1f0 + resp, resp }));
    run(encodePriResp({ streamId: 3, ssv: true, substreamId: 9, prgIndex: 5, resp: 2 }));
    expect(responses).toEqual([
      { pasid: NO_PASID, groupIndex: 0x1f0, code: 'failure' },
      { pasid: NO_PASID, groupIndex: 0x1f1, code: 'invalid' },
      { pasid: NO_PASID, groupIndex: 0x1f2, code: 'success' },
      { pasid: 9, groupIndex: 5, code: 'success' },
    ]);
    expect(other).toEqual([]);
  });

  it('is IGNORED while SMMUEN == 0', () => {
    const responses = endpoint(3);
    run(encodePriResp({ streamId: 3, prgIndex: 1, resp: 2 }));
    expect(responses).toEqual([]);
  });
});

describe('configuration invalidation commands (§4.3)', () => {
  /** Cached STEs of StreamIDs 0–7 and CDs 0 and 1 of each: the cached values do not matter here. */
  function fillConfigCaches(): void {
    const t = smmu.translator;
    for (let sid = 0; sid < 8; sid++) {
      t.steCache.set(sid, 0, {} as never);
      for (const ssid of [0, 1]) t.cdCache.set(sid, ssid, {} as never);
    }
  }
  const cachedStes = () =>
    smmu.translator.steCache
      .entries()
      .map(([sid]) => sid)
      .sort();
  const cachedCds = () =>
    smmu.translator.cdCache
      .entries()
      .map(([sid, ssid]) => `${sid}.${ssid}`)
      .sort();
  const allCds = (...streams: number[]) => streams.flatMap((sid) => [`${sid}.0`, `${sid}.1`]);

  it('CFGI_STE drops the STE and every CD cached through it', () => {
    fillConfigCaches();
    run(encodeCfgiSte({ streamId: 5 }));
    expect(cachedStes()).toEqual([0, 1, 2, 3, 4, 6, 7]);
    expect(cachedCds()).toEqual(allCds(0, 1, 2, 3, 4, 6, 7));
  });

  it('CFGI_STE_RANGE drops the 2^(Range+1) aligned StreamIDs around StreamID, with their CDs', () => {
    fillConfigCaches();
    run(encodeCfgiSteRange({ streamId: 5, range: 1 })); // StreamIDs 4–7
    expect(cachedStes()).toEqual([0, 1, 2, 3]);
    expect(cachedCds()).toEqual(allCds(0, 1, 2, 3));
  });

  it('CFGI_CD drops one CD, CFGI_CD_ALL every CD of a stream, CFGI_ALL everything', () => {
    fillConfigCaches();
    run(encodeCfgiCd({ streamId: 2, substreamId: 1 }));
    expect(cachedCds()).toEqual(allCds(0, 1, 2, 3, 4, 5, 6, 7).filter((cd) => cd !== '2.1'));
    run(encodeCfgiCdAll({ streamId: 3 }));
    expect(cachedCds()).toEqual(allCds(0, 1, 2, 4, 5, 6, 7).filter((cd) => cd !== '2.1'));
    expect(cachedStes()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    run(encodeCfgiAll());
    expect(cachedStes()).toEqual([]);
    expect(cachedCds()).toEqual([]);
  });
});
