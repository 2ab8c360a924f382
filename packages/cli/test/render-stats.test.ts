/** The run report's per-IOMMU line counts every fault the driver reported, kept or lost. */
import { BoundedLog, type ReportedFault, type System } from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { renderStats } from '../src/render.js';

function systemWithFaults(count: number): System {
  const faults = new BoundedLog<ReportedFault>(4);
  for (let n = 0; n < count; n++) faults.push({ fault: {} as ReportedFault['fault'], device: 'nic0' });
  return {
    iommus: [{ name: 'smmu0', hardware: { stats: () => ({ walks: 1 }) }, faults }],
    bus: { allocatedBytes: 0 },
  } as unknown as System;
}

describe('renderStats', () => {
  it('a fault log within its capacity: the count only', () => {
    expect(renderStats(systemWithFaults(3))).toContain('smmu0: 3 fault(s) reported to the driver\n');
  });

  it('a fault storm: the total, and how many the log did not keep', () => {
    expect(renderStats(systemWithFaults(10))).toContain(
      'smmu0: 10 fault(s) reported to the driver, 6 of them not kept (the fault log holds 4)',
    );
  });
});
