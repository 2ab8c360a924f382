import { Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { guestTracer } from './guest-tracer.js';

describe('guestTracer', () => {
  it('puts the guest driver’s records on the guest-driver track and passes the rest through', () => {
    const tracer = new Tracer();
    const guest = guestTracer(tracer);
    expect(guest.enabled).toBe(false);
    tracer.startRecording();
    expect(guest.enabled).toBe(true);
    guest.trace('driver', 'vm0.smmu', 'cmd.issue', 'CMD_SYNC', { n: 1 });
    guest.trace('hw', 'vm0.smmu', 'ste.fetch', 'fetch');
    expect(tracer.stopRecording().map((r) => [r.layer, r.source, r.name, r.message, r.args])).toEqual([
      ['guest-driver', 'vm0.smmu', 'cmd.issue', 'CMD_SYNC', { n: 1 }],
      ['hw', 'vm0.smmu', 'ste.fetch', 'fetch', {}],
    ]);
    expect(guest.enabled).toBe(false);
  });
});
