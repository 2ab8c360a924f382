/**
 * The Linux KUnit STE transitions again, this time against the device model itself: `writeEntry` stores
 * each qword into the Stream table in memory and issues CFGI_STE + CMD_SYNC to the model's Command queue,
 * which runs in step mode — one command at a time. After every qword store and every command step the
 * model fetches the STE afresh (its caches emptied, as if the entry had just been evicted) and translates
 * three probes: a transaction without a SubstreamID, one with SubstreamID 1, and an ATS Translation
 * Request. What it does must be what it does with the initial STE or with the target STE; only a breaking
 * update may show the V = 0 configuration (C_BAD_STE) in between. With the update-safe hook the ATS probe
 * is left out: the hook lets EATS change early because the attach sequence has ATS disabled at the device
 * for the whole update (Linux's reasoning), so no Translation Request can arrive meanwhile — as the KUnit
 * oracle leaves the safe bits out.
 */
import { NO_PASID, PERM_READ, type TranslationRequest, type TranslationResult } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { NESTED_STE_CASES, STE_CASES } from '../../test/kunit-cases.js';
import { mmioRig, RAM_BASE } from '../../test/mmio-rig.js';
import { encodeCfgiSte, encodeCmdSync } from '../hw/commands.js';
import { CR0_CMDQEN, CR0_SMMUEN, REG } from '../hw/regs.js';
import { STE_WORDS } from '../hw/ste.js';
import { steUpdateSafe, steUsed } from './entry-used.js';
import { writeEntry } from './entry-writer.js';

const STRTAB = RAM_BASE;
const CMDQ = RAM_BASE + 0x1_0000;
const SID = 1;
const STE_AT = STRTAB + 64 * SID;

const probe = (pasid: number): TranslationRequest => ({
  streamId: SID,
  pasid,
  iovaPfn: 7,
  offset: 0,
  access: PERM_READ,
});

const show = (r: TranslationResult) => (r.ok ? `ok:${r.pfn}` : r.fault.vendorCode);

/** Runs `from → to` through the model; returns what it saw at each point and the steps it made. */
function runOnModel(from: Uint32Array, to: Uint32Array, updateSafe: boolean) {
  const rig = mmioRig({});
  const { smmu, put, mmio, mmio64 } = rig;
  mmio64(REG.STRTAB_BASE, STRTAB);
  mmio(REG.STRTAB_BASE_CFG, 8); // linear, 256 STEs
  mmio64(REG.CMDQ_BASE, CMDQ + 8); // 256 entries
  mmio(REG.CR0, CR0_CMDQEN);
  mmio(REG.CR0, CR0_CMDQEN | CR0_SMMUEN);
  smmu.queues.cmdq.stepMode = true;

  /** What the model does now with the STE in memory, fetched afresh. */
  const behaviour = (): string => {
    smmu.translator.steCache.clear();
    smmu.translator.cdCache.clear();
    smmu.tlb.clear();
    const results = [smmu.translate(probe(NO_PASID)), smmu.translate(probe(1))];
    if (!updateSafe) results.push(smmu.atsTranslate(probe(NO_PASID)));
    return results.map(show).join(' | ');
  };
  const seen: { where: string; behaviour: string }[] = [];
  const fetch = (where: string) => seen.push({ where, behaviour: behaviour() });

  put(STE_AT, to);
  const target = behaviour();
  put(STE_AT, new Uint32Array(STE_WORDS));
  const invalid = behaviour();
  put(STE_AT, from);
  const initial = behaviour();

  let prod = 0;
  let steps = 0;
  const cur = Uint32Array.from(from);
  const outcome = writeEntry(cur, to, {
    used: steUsed,
    ...(updateSafe ? { updateSafe: steUpdateSafe } : {}),
    writeQword(index, lo, hi) {
      put(STE_AT + 8 * index, Uint32Array.of(lo, hi));
      fetch(`after storing qword ${index}`);
    },
    sync() {
      for (const command of [encodeCfgiSte({ streamId: SID, leaf: true }), encodeCmdSync({ cs: 0 })]) {
        put(CMDQ + 16 * (prod % 256), command);
        prod = (prod + 1) % 512;
      }
      mmio(REG.CMDQ_PROD, prod);
      while (smmu.queues.cmdq.step().kind !== 'idle') {
        steps++;
        fetch(`after command step ${steps}`);
      }
    },
  });
  return { seen, initial, target, invalid, outcome, steps, final: behaviour() };
}

function expectOnModel(from: Uint32Array, to: Uint32Array, hitless: boolean, updateSafe = false) {
  const r = runOnModel(from, to, updateSafe);
  const allowed = new Set([r.initial, r.target, ...(hitless ? [] : [r.invalid])]);
  expect(r.seen.filter((s) => !allowed.has(s.behaviour))).toEqual([]);
  expect(r.final).toBe(r.target);
  // Every sync went through the model's queue: CFGI_STE and CMD_SYNC each took a step.
  expect(r.steps).toBe(2 * r.outcome.syncs);
  if (!hitless && r.initial !== r.invalid && r.target !== r.invalid)
    expect(r.seen.some((s) => s.behaviour === r.invalid)).toBe(true);
  return r;
}

describe('KUnit STE transitions with the device model fetching at every step (step mode)', () => {
  for (const c of STE_CASES) {
    it(`${c.title} [${c.linux}]`, () => {
      expectOnModel(c.from(), c.to(), c.hitless);
    });
  }
  for (const c of NESTED_STE_CASES) {
    it(`${c.title}, with the update-safe hook [${c.linux}]`, () => {
      expectOnModel(c.from(), c.to(), true, true);
    });
  }

  it('tells the configurations apart (the check is not vacuous)', () => {
    const distinct = STE_CASES.filter((c) => {
      const r = runOnModel(c.from(), c.to(), false);
      return r.initial !== r.target;
    });
    expect(distinct.length).toBeGreaterThan(STE_CASES.length / 2);
  });
});
