/**
 * Page requests through the AMD host driver on the hardware model (ppr-irq.ts, amd-driver.ts): a PRI
 * request from an endpoint reaches the core once the unit's interrupt is serviced, the core's answer
 * reaches the endpoint as COMPLETE_PPR_REQUEST, the entries Linux drops are answered Failure, and the PPR
 * log restarts after an overflow.
 */
import { errnoOf, NO_PASID, type PageRequest, PERM_READ, PERM_WRITE } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { driverRig } from '../../test/driver-rig.js';
import { decodeDte } from '../hw/dte.js';
import { REG, STATUS_PPR_INT, STATUS_PPR_LOG_RUN, STATUS_PPR_OVERFLOW } from '../hw/regs.js';
import { AmdDriver } from './amd-driver.js';
import { PPR_LOG_SIZE } from './ppr-irq.js';

const DEV = 0x0100;

function setup() {
  const r = driverRig();
  const driver = new AmdDriver(r.context);
  driver.probe();
  const dev = r.device(DEV, true, { pasidBits: 20, pri: true });
  driver.probeDevice(dev);
  driver.attachDev(driver.identityDomain, dev);
  driver.enableIopf(dev);
  const endpoint = r.endpoint(DEV);
  const request = (pasid: number, groupIndex: number, access = PERM_READ, last = true): PageRequest => ({
    pasid,
    iova: 0x7123n,
    access,
    groupIndex,
    last,
  });
  const commandsOf = (action: () => void) => {
    const from = r.reg(REG.CMD_TAIL);
    action();
    return r.commands(driver.host.queue.base, from, r.reg(REG.CMD_TAIL));
  };
  return { r, driver, dev, endpoint, request, commandsOf };
}

describe('enableIopf', () => {
  it('turns PRI on (ATS first) and sets DTE.PPR; disableIopf undoes both; ENODEV without PRI', () => {
    const { r, driver, dev } = setup();
    const ppr = () => decodeDte(driver.host.deviceTable.read(DEV)).ppr;
    expect([ppr(), r.capsEnabled.get(`pri:${DEV}`)]).toEqual([true, true]);
    driver.disableIopf(dev);
    expect([ppr(), r.capsEnabled.get(`pri:${DEV}`)]).toEqual([false, false]);
    // Without DTE.PPR the unit answers a request Invalid itself (INVALID_PPR_REQUEST).
    r.unit.pageRequest(DEV, { pasid: 5, iova: 0x7000n, access: PERM_READ, groupIndex: 1, last: true });
    expect(r.pageRequests).toEqual([]);
    const noPri = r.device(0x300, true, { pasidBits: 20 });
    const blocked = r.device(0x308, true, { pri: true });
    driver.probeDevice(noPri);
    driver.probeDevice(blocked);
    driver.attachDev(driver.identityDomain, noPri);
    expect(errnoOf(() => driver.enableIopf(noPri))).toBe('ENODEV');
    // A blocked device with ATS and PRI: ATS comes on with PRI, and goes with it.
    driver.enableIopf(blocked);
    expect([r.atsEnabled.get(0x308), r.capsEnabled.get('pri:776')]).toEqual([true, true]);
    driver.disableIopf(blocked);
    expect([r.atsEnabled.get(0x308), r.capsEnabled.get('pri:776')]).toEqual([false, false]);
  });
});

describe('page requests', () => {
  it('reach reportPageRequest when the interrupt is serviced; the answer reaches the endpoint', () => {
    const { r, driver, dev, endpoint, request, commandsOf } = setup();
    r.unit.pageRequest(DEV, request(5, 0x45, PERM_WRITE));
    expect(r.pageRequests).toEqual([]);
    expect(r.reg(REG.STATUS) & STATUS_PPR_INT).toBe(STATUS_PPR_INT);
    expect(r.service()).toBe(1);
    expect(r.pageRequests).toEqual([
      {
        device: 'dev100',
        request: { pasid: 5, iova: 0x7000n, access: PERM_WRITE, groupIndex: 0x45, last: true },
      },
    ]);
    // PPRInt cleared, PPRHead caught up with PPRTail, the entry zeroed.
    expect(r.reg(REG.STATUS) & STATUS_PPR_INT).toBe(0);
    expect(r.reg(REG.PPR_HEAD)).toBe(16);
    expect([...r.words(driver.host.pprLog!, 4)]).toEqual([0, 0, 0, 0]);
    expect(endpoint.responses).toEqual([]);
    const commands = commandsOf(() =>
      driver.pageResponse(dev, { pasid: 5, groupIndex: 0x45, code: 'success' }),
    );
    expect(commands[0]).toEqual({
      op: 'complete-ppr-request',
      deviceId: DEV,
      pasid: 5,
      gn: true,
      tag: 0x45,
      status: 0,
    });
    expect(commands[1]).toMatchObject({ op: 'completion-wait' });
    expect(endpoint.responses).toEqual([{ pasid: 5, groupIndex: 0x45, code: 'success' }]);
  });

  it('answers Invalid as status 1 and Failure as 0xF', () => {
    const { driver, dev, endpoint, commandsOf } = setup();
    const statuses = [
      commandsOf(() => driver.pageResponse(dev, { pasid: 2, groupIndex: 1, code: 'invalid' }))[0],
      commandsOf(() => driver.pageResponse(dev, { pasid: 2, groupIndex: 2, code: 'failure' }))[0],
    ];
    expect(statuses).toMatchObject([{ status: 1 }, { status: 0xf }]);
    expect(endpoint.responses.map((x) => x.code)).toEqual(['invalid', 'failure']);
  });

  it('drops and answers Failure what Linux drops: no PASID (GN = 0), PASID at or beyond the device’s count', () => {
    const { r, driver, endpoint, request } = setup();
    r.unit.pageRequest(DEV, request(NO_PASID, 3));
    r.unit.pageRequest(DEV, request(0xffff, 4));
    r.unit.pageRequest(DEV, request(0xfffe, 5, PERM_READ, false));
    r.service();
    expect(r.pageRequests.map((x) => x.request)).toEqual([
      { pasid: 0xfffe, iova: 0x7000n, access: PERM_READ, groupIndex: 5, last: false },
    ]);
    expect(endpoint.responses).toEqual([
      { pasid: NO_PASID, groupIndex: 3, code: 'failure' },
      { pasid: 0xffff, groupIndex: 4, code: 'failure' },
    ]);
    expect(driver.host.stats).toMatchObject({ pageRequests: 1, badPageRequests: 2 });
  });

  it('restarts the PPR log after an overflow and keeps taking requests', () => {
    const { r, driver, endpoint, request } = setup();
    const slots = PPR_LOG_SIZE / 16;
    // The ring holds one entry fewer than its slots; the next request overflows it and is answered Failure.
    for (let i = 0; i < slots; i++) r.unit.pageRequest(DEV, request(1, i % 512));
    expect(r.reg(REG.STATUS) & (STATUS_PPR_OVERFLOW | STATUS_PPR_LOG_RUN)).toBe(STATUS_PPR_OVERFLOW);
    expect(endpoint.responses).toEqual([{ pasid: 1, groupIndex: slots - 1, code: 'failure' }]);
    r.service();
    expect(r.pageRequests).toHaveLength(slots - 1);
    expect(driver.host.stats.pprLogRestarts).toBe(1);
    expect(r.reg(REG.STATUS) & (STATUS_PPR_OVERFLOW | STATUS_PPR_LOG_RUN)).toBe(STATUS_PPR_LOG_RUN);
    r.unit.pageRequest(DEV, request(2, 7));
    r.service();
    expect(r.pageRequests.at(-1)!.request).toMatchObject({ pasid: 2, groupIndex: 7 });
  });
});
