import { Tracer } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { walkStepTracer } from './walk-trace.js';

describe('walkStepTracer', () => {
  it('traces one line per descriptor read while tracing is on, nothing while it is off', () => {
    const tracer = new Tracer();
    const step = walkStepTracer(tracer, 'iommu0', 'host', 'host');
    step(4, 0x1000, 0x2003, 0x6000_0000);
    tracer.startRecording();
    step(3, 0x2008, 0x3003, 0x6000_0000);
    const records = tracer.stopRecording();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      layer: 'hw',
      source: 'iommu0',
      name: 'walk.step',
      message: 'walk host L3 read 0x2008 = 0x6000000000003003',
      args: { stage: 'host', level: 3, addr: 0x2008 },
    });
  });
});
