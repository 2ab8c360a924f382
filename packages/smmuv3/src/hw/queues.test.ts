import { describe, expect, it } from 'vitest';
import { CMDQ_ADDR, EVENTQ_ADDR, MSI_ADDR, rig } from '../../test/queue-fixtures.js';
import { CMD_SYNC_CS, encodeCmdSync, encodeTlbiNhAll } from './commands.js';
import { EVENT_ID, encodeEvent } from './events.js';
import { CR0_CMDQEN, CR0_EVENTQEN, IRQ_CTRL_EVENTQ_IRQEN, REG } from './regs.js';

describe('SmmuQueues', () => {
  it('gathers the counters of its parts', () => {
    const r = rig();
    r.mmio64(REG.CMDQ_BASE, CMDQ_ADDR + 4);
    r.mmio64(REG.EVENTQ_BASE, EVENTQ_ADDR + 4);
    r.mmio(REG.IRQ_CTRL, IRQ_CTRL_EVENTQ_IRQEN);
    r.mmio(REG.CR0, CR0_CMDQEN | CR0_EVENTQEN);
    r.put(CMDQ_ADDR, encodeTlbiNhAll());
    r.put(CMDQ_ADDR + 16, encodeCmdSync({ cs: CMD_SYNC_CS.IRQ, msiAddress: MSI_ADDR, msiData: 1 }));
    r.mmio(REG.CMDQ_PROD, 2);
    r.queues.eventq.record(encodeEvent({ id: EVENT_ID.F_STREAM_DISABLED, streamId: 3 }));
    expect(r.queues.stats()).toEqual({
      commandsExecuted: 2,
      syncs: 1,
      syncIrqs: 1,
      sevEvents: 0,
      cmdqErrIll: 0,
      cmdqErrAbt: 0,
      cmdqErrAtcInvSync: 0,
      eventqRecorded: 1,
      eventqDropped: 0,
      eventqDroppedFull: 0,
      eventqDroppedDisabled: 0,
      eventqDroppedAbort: 0,
      eventqDroppedOverflow: 0,
      eventqOverflows: 0,
      eventqDeferred: 0,
      priqRecorded: 0,
      priqDropped: 0,
      priqDroppedFull: 0,
      priqDroppedDisabled: 0,
      priqDroppedAbort: 0,
      priqDroppedOverflow: 0,
      priqOverflows: 0,
      priqDeferred: 0,
      msiWrites: 1,
      msiAborts: 0,
      globalErrors: 0,
      irqEventq: 1,
      irqPriq: 0,
      irqGerror: 0,
      irqCmdqSync: 1,
    });
  });
});
