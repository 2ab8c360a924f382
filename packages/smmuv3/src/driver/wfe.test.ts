/**
 * IDR0.SEV end to end (§4.1.2, §4.7.3, §6.3.1): the device model sends WFE wake-up events on the
 * platform's event signal for CMD_SYNC SIG_SEV and for a Command queue that leaves full, and the host
 * driver, like Linux, asks for SIG_SEV and waits with WFE only when IDR0.SEV says the events exist.
 */
import { errnoOf } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { commandsSince, createDriverSystem } from '../../test/driver-system.js';
import { mmioRig, RAM_BASE } from '../../test/mmio-rig.js';
import { CMD_SYNC_CS, encodeCmdSync, encodeTlbiNhAll } from '../hw/commands.js';
import { IDR0_SEV, WFE_EVENT_LINE } from '../hw/idr.js';
import { CR0_CMDQEN, REG } from '../hw/regs.js';

const CMDQ = RAM_BASE + 0x1_0000;

/** The device model alone with a 2-entry Command queue. */
function device(sev: boolean) {
  const r = mmioRig({ sev });
  r.mmio(REG.CMDQ_BASE, CMDQ + 1);
  r.mmio(REG.CR0, CR0_CMDQEN);
  const events = r.interrupts.line(WFE_EVENT_LINE);
  return { ...r, events };
}

describe('WFE wake-up events from the device model', () => {
  it('CMD_SYNC SIG_SEV raises the event signal with IDR0.SEV, and nothing without it', () => {
    for (const sev of [false, true]) {
      const r = device(sev);
      expect(r.reg(REG.IDR0) & IDR0_SEV).toBe(sev ? IDR0_SEV : 0);
      r.put(CMDQ, encodeCmdSync({ cs: CMD_SYNC_CS.SEV }));
      r.mmio(REG.CMDQ_PROD, 1);
      expect(r.reg(REG.CMDQ_CONS)).toBe(1);
      expect(r.events.raised).toBe(sev ? 1 : 0);
      expect(r.smmu.stats().sevEvents).toBe(sev ? 1 : 0);
    }
  });

  it('a Command queue that software saw full sends one when it drains (§4.1.2)', () => {
    for (const sev of [false, true]) {
      const r = device(sev);
      // Two commands in a 2-entry queue: PROD = 2 (index 0, wrap 1) is full.
      r.put(CMDQ, encodeTlbiNhAll({ vmid: 1 }));
      r.put(CMDQ + 16, encodeTlbiNhAll({ vmid: 2 }));
      r.mmio(REG.CMDQ_PROD, 2);
      expect(r.reg(REG.CMDQ_CONS)).toBe(2);
      expect(r.events.raised).toBe(sev ? 1 : 0);
      // Not full before the next PROD write: no event.
      r.put(CMDQ, encodeTlbiNhAll({ vmid: 3 }));
      r.mmio(REG.CMDQ_PROD, 3);
      expect(r.events.raised).toBe(sev ? 1 : 0);
    }
  });
});

describe('the host driver with and without IDR0.SEV (Linux queue_poll)', () => {
  it('asks for SIG_SEV in its CMD_SYNCs only with IDR0.SEV; each then wakes the PEs once', () => {
    for (const sev of [false, true]) {
      const s = createDriverSystem({ options: { sev } });
      const before = s.driver.cmdq.producer;
      const raised = s.ic.line(`smmu0.${WFE_EVENT_LINE}`).raised;
      s.driver.cmdq.issue(encodeTlbiNhAll({ vmid: 1 }));
      const sync = commandsSince(s, before).at(-1);
      expect(sync).toMatchObject({ op: 'SYNC', cs: sev ? CMD_SYNC_CS.SEV : CMD_SYNC_CS.NONE });
      expect(s.ic.line(`smmu0.${WFE_EVENT_LINE}`).raised - raised).toBe(sev ? 1 : 0);
    }
  });

  it('waits for a recovering queue with WFE, which the CMD_SYNC event ends, only with IDR0.SEV', () => {
    for (const sev of [false, true]) {
      const s = createDriverSystem({ options: { sev } });
      const { cmdq } = s.driver;
      // Opcode 0 is reserved: CERROR_ILL, replaced by a CMD_SYNC, then the queue resumes.
      expect(errnoOf(() => cmdq.issue(new Uint32Array(4)))).toBe('EIO');
      expect({ wfes: cmdq.wfes, wfeWakeups: cmdq.wfeWakeups, spins: cmdq.spins }).toEqual(
        sev ? { wfes: 1, wfeWakeups: 1, spins: 0 } : { wfes: 0, wfeWakeups: 0, spins: 1 },
      );
    }
  });
});
