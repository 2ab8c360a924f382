import { describe, expect, it } from 'vitest';
import { errnoOf } from '../errors/iommufd-error.js';
import { InterruptHandlers } from './interrupt-handlers.js';
import type { InterruptArrival } from './msi-controller.js';

const arrival = (seq: number, intid: number): InterruptArrival => ({
  seq,
  cpu: 0,
  intid,
  priority: 0,
  controller: 'c',
  deviceId: 0,
  eventId: 0,
});

describe('InterruptHandlers', () => {
  it('runs each arrival’s handler across CPUs in arrival order, skipping those without one', () => {
    const handlers = new InterruptHandlers('LPI');
    const ran: number[] = [];
    handlers.request(8192, (a) => ran.push(a.seq));
    handlers.request(8193, (a) => ran.push(a.seq));
    const cpus = [
      [arrival(3, 8192), arrival(1, 8193)],
      [arrival(2, 8192), arrival(4, 9999)],
    ].map((queue) => ({
      drainUnserviced: () => queue.splice(0),
    }));
    expect(handlers.service(cpus)).toBe(3);
    expect(ran).toEqual([1, 2, 3]);
    expect(handlers.service(cpus)).toBe(0);
  });

  it('one handler per interrupt (EBUSY, naming the kind); a release is a no-op once the handler was replaced', () => {
    const handlers = new InterruptHandlers('IRQ');
    const ran: string[] = [];
    const release = handlers.request(24, () => ran.push('first'));
    expect(() => handlers.request(24, () => {})).toThrow('EBUSY: IRQ 24 already has a handler');
    release();
    const second = handlers.request(24, () => ran.push('second'));
    release();
    handlers.service([{ drainUnserviced: () => [arrival(1, 24)] }]);
    expect(ran).toEqual(['second']);
    second();
    expect(handlers.service([{ drainUnserviced: () => [arrival(2, 24)] }])).toBe(0);
    expect(errnoOf(() => handlers.request(24, () => {}))).toBeUndefined();
  });
});
