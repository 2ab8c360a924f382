/** The scenario runner on the core's fake iommufd plugin: each step's summary, failures, skips and traces. */
import { describe, expect, it } from 'vitest';
import { fakeIommufdConfig, fakeIommufdRegistry } from '../../test/fake-iommufd-plugin.js';
import { validateConfig } from '../config/load-config.js';
import { createSystem } from '../system/create-system.js';
import { Tracer } from '../trace/tracer.js';
import { runScenario, type StepReport } from './run-scenario.js';

const SETUP = [
  { op: 'alloc', buffer: 'buf', size: '16KiB' },
  { op: 'domain', name: 'd', iommu: 'iommu0' },
  { op: 'attach', device: 'dev0', domain: 'd' },
  { op: 'map', domain: 'd', iova: '0x40_0000', buffer: 'buf', size: '8KiB', prot: 'rw' },
];

async function run(steps: unknown[], tracer?: Tracer) {
  const raw = { ...fakeIommufdConfig(), scenario: { steps: [...SETUP, ...steps] } };
  const validated = await validateConfig(raw, fakeIommufdRegistry());
  const system = await createSystem(validated, {
    registry: fakeIommufdRegistry(),
    ...(tracer ? { tracer } : {}),
  });
  const seen: StepReport[] = [];
  try {
    const report = runScenario(system, validated.config.scenario!, { onStep: (r) => seen.push(r) });
    expect(seen).toEqual(report.steps);
    return report;
  } finally {
    await system.dispose();
  }
}

describe('runScenario (core)', () => {
  it('runs the steps in order, one summary per step, numbered from 1, with their notes', async () => {
    const report = await run([
      { op: 'check', buffer: 'buf', offset: '0xffe', data: 'hex:0000', note: 'fresh memory is zero' },
      { op: 'unmap', domain: 'd', iova: '0x40_0000', size: '8KiB' },
      { op: 'detach', device: 'dev0' },
    ]);
    expect(report.passed).toBe(true);
    expect(report.skipped).toBe(0);
    expect(report.steps.map((s) => [s.index, s.op, s.ok])).toEqual([
      [1, 'alloc', true],
      [2, 'domain', true],
      [3, 'attach', true],
      [4, 'map', true],
      [5, 'check', true],
      [6, 'unmap', true],
      [7, 'detach', true],
    ]);
    expect(report.steps[4]!.note).toBe('fresh memory is zero');
    expect(report.steps[4]!.summary).toBe('buffer buf+4094 holds hex:0000 at HPA 0x80000ffe');
    for (const step of report.steps) expect(step.summary.length).toBeGreaterThan(0);
  });

  it('stops at the first failing step, says why, and counts the steps it skipped', async () => {
    // The fake IOMMU translates to an address with no memory behind it: the DMA aborts on the bus.
    const report = await run([
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x40_0000', data: 'x' },
      { op: 'check', buffer: 'buf', data: 'x' },
      { op: 'detach', device: 'dev0' },
    ]);
    expect(report.passed).toBe(false);
    expect(report.skipped).toBe(2);
    const last = report.steps.at(-1)!;
    expect([last.index, last.op, last.ok]).toEqual([5, 'dma', false]);
    expect(last.summary).toBe('dev0 DMA write at IOVA 0x400000 failed: bus abort at 0x500000 (unmapped)');
  });

  it.each([
    [{ op: 'check', buffer: 'buf', data: 'hex:ff' }, /holds .*00.*, expected .*ff/],
    [{ op: 'dma', device: 'dev0', access: 'write', iova: '0x40_0000' }, /needs data/],
    [{ op: 'dma', device: 'dev0', access: 'read', iova: '0x40_0000' }, /needs length or data/],
  ])('reports a failing step: %o', async (step, why) => {
    const report = await run([step]);
    expect(report.passed).toBe(false);
    expect(report.steps.at(-1)!.ok).toBe(false);
    expect(report.steps.at(-1)!.summary).toMatch(why);
  });

  it("keeps each step's trace records apart", async () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const report = await run(
      [{ op: 'dma', device: 'dev0', access: 'write', iova: '0x40_0000', data: 'x' }],
      tracer,
    );
    const dma = report.steps.at(-1)!;
    expect(dma.trace.some((r) => r.name === 'dma.write')).toBe(true);
    expect(report.steps[0]!.trace.some((r) => r.name === 'dma.write')).toBe(false);
  });
});
