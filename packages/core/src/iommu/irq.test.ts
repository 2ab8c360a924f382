import { describe, expect, it } from 'vitest';
import { IInterruptController, InterruptController } from './irq.js';

describe('wired interrupt lines', () => {
  it('a raised line runs its handler only when the controller services interrupts', () => {
    const controller = new InterruptController();
    const line = controller.line('evtq');
    let runs = 0;
    line.connect(() => runs++);
    line.raise();
    expect(runs).toBe(0);
    expect(controller.service()).toBe(1);
    expect(runs).toBe(1);
    expect(controller.service()).toBe(0);
    expect(runs).toBe(1);
  });

  it('line() returns the same line for the same name and a new one for another', () => {
    const controller = new InterruptController();
    const evtq = controller.line('evtq');
    expect(controller.line('evtq')).toBe(evtq);
    expect(controller.line('gerror')).not.toBe(evtq);
    expect(evtq.name).toBe('evtq');
  });

  it('raising a pending line again counts the assertion but delivers once (a level, not a count)', () => {
    const controller = new InterruptController();
    const line = controller.line('evtq');
    let runs = 0;
    line.connect(() => runs++);
    line.raise();
    line.raise();
    line.raise();
    expect(line.raised).toBe(3);
    expect(controller.service()).toBe(1);
    expect(runs).toBe(1);
    // Delivered: the next assertion is pending again.
    line.raise();
    expect(controller.service()).toBe(1);
    expect(runs).toBe(2);
  });

  it('delivers pending lines in the order they were raised', () => {
    const controller = new InterruptController();
    const order: string[] = [];
    for (const name of ['a', 'b', 'c']) controller.line(name).connect(() => order.push(name));
    controller.line('c').raise();
    controller.line('a').raise();
    controller.line('b').raise();
    expect(controller.service()).toBe(3);
    expect(order).toEqual(['c', 'a', 'b']);
  });

  it('a line without a handler is consumed but not counted as delivered', () => {
    const controller = new InterruptController();
    const line = controller.line('orphan');
    line.raise();
    expect(controller.service()).toBe(0);
    // The assertion was consumed: connecting a handler now does not replay it.
    let runs = 0;
    line.connect(() => runs++);
    expect(controller.service()).toBe(0);
    expect(line.deliver()).toBe(false);
    expect(runs).toBe(0);
  });

  it('disconnect removes the handler: a later raise runs nothing', () => {
    const controller = new InterruptController();
    const line = controller.line('evtq');
    let runs = 0;
    line.connect(() => runs++);
    line.disconnect();
    line.raise();
    expect(controller.service()).toBe(0);
    expect(runs).toBe(0);
  });

  it('deliver() on a line that is not pending does nothing and says so', () => {
    const controller = new InterruptController();
    const line = controller.line('evtq');
    let runs = 0;
    line.connect(() => runs++);
    expect(line.deliver()).toBe(false);
    expect(runs).toBe(0);
  });

  it('interrupts raised by handlers are delivered in the same service call', () => {
    const controller = new InterruptController();
    const first = controller.line('first');
    const second = controller.line('second');
    const order: string[] = [];
    first.connect(() => {
      order.push('first');
      second.raise();
    });
    second.connect(() => order.push('second'));
    first.raise();
    expect(controller.service()).toBe(2);
    expect(order).toEqual(['first', 'second']);
  });

  it('service stops after maxRounds deliveries, leaving the rest pending', () => {
    const controller = new InterruptController();
    const line = controller.line('storm');
    let runs = 0;
    // A handler that re-raises its own line forever (an interrupt storm) cannot hang the system.
    line.connect(() => {
      runs++;
      line.raise();
    });
    line.raise();
    expect(controller.service(5)).toBe(5);
    expect(runs).toBe(5);
    expect(controller.service(1)).toBe(1);
    expect(runs).toBe(6);
  });

  it('the default bound is 1024 deliveries per service call', () => {
    const controller = new InterruptController();
    const line = controller.line('storm');
    line.connect(() => line.raise());
    line.raise();
    expect(controller.service()).toBe(1024);
  });
});

describe('the pending queue', () => {
  it('a line raised again while pending is queued once: a later raise of another line is the next delivery', () => {
    const controller = new InterruptController();
    const a = controller.line('a');
    const b = controller.line('b');
    const order: string[] = [];
    a.connect(() => order.push('a'));
    b.connect(() => order.push('b'));
    a.raise();
    b.raise();
    a.raise();
    expect(controller.service(2)).toBe(2);
    b.raise();
    expect(controller.service(1)).toBe(1);
    expect(order).toEqual(['a', 'b', 'b']);
  });

  it('its DI token is the global symbol iommukit.InterruptController (every copy of the core shares it)', () => {
    expect(IInterruptController).toBe(Symbol.for('iommukit.InterruptController'));
  });
});
