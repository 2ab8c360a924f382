/**
 * The scenario runner on the core's fake iommufd plugin, whose hardware translates through the domains
 * its driver attached: each step's summary, failures, skips, extensions and traces.
 */
import { describe, expect, it } from 'vitest';
import { fakeIommufdConfig, fakeIommufdRegistry } from '../../test/fake-iommufd-plugin.js';
import { validateConfig } from '../config/load-config.js';
import { ScenarioSchema } from '../config/scenario-schema.js';
import { createSystem } from '../system/create-system.js';
import type { System } from '../system/system.js';
import { Tracer } from '../trace/tracer.js';
import { runScenario, type ScenarioExtension, type ScenarioReport, type StepReport } from './run-scenario.js';

/** buf: 16 KiB at HPA 0x8000_0000; d maps IOVA 0x40_0000 → buf+4 KiB (8 KiB, rw) and 0x50_0000 → buf (r). */
const SETUP = [
  { op: 'alloc', buffer: 'buf', size: '16KiB' },
  { op: 'domain', name: 'd', iommu: 'iommu0' },
  { op: 'attach', device: 'dev0', domain: 'd' },
  { op: 'map', domain: 'd', iova: '0x40_0000', buffer: 'buf', offset: '4KiB', size: '8KiB', prot: 'rw' },
  { op: 'map', domain: 'd', iova: '0x50_0000', buffer: 'buf', size: '4KiB', prot: 'r' },
];

/**
 * The fake system with the fake ITS, plus a second IOMMU with `dev2` behind it and `legacy`, a device
 * behind none.
 */
function config(): Record<string, unknown> {
  const base = fakeIommufdConfig();
  return {
    ...base,
    msi: { controller: 'fake-its' },
    iommus: [
      { name: 'iommu0', base: '0x0900_0000' },
      { name: 'iommu1', base: '0x0910_0000' },
    ],
    devices: [
      ...(base.devices as unknown[]),
      { name: 'dev2', rid: '00:04.0', iommu: 'iommu1' },
      { name: 'legacy', rid: '00:05.0', msiVectors: 1 },
    ],
  };
}

/**
 * Runs `steps` on a fresh system. The steps are parsed by the scenario schema but not cross-checked
 * against the config (as a program building a scenario may hand the runner anything the type allows).
 */
async function run(
  steps: unknown[],
  options: { tracer?: Tracer; extension?: (system: System) => ScenarioExtension } = {},
): Promise<ScenarioReport> {
  const validated = await validateConfig(config(), fakeIommufdRegistry());
  const system = await createSystem(validated, {
    registry: fakeIommufdRegistry(),
    ...(options.tracer ? { tracer: options.tracer } : {}),
  });
  const seen: StepReport[] = [];
  try {
    const report = runScenario(system, ScenarioSchema.parse({ steps }), {
      ...(options.extension ? { extension: options.extension(system) } : {}),
      onStep: (r) => seen.push(r),
    });
    expect(seen).toEqual(report.steps);
    return report;
  } finally {
    await system.dispose();
  }
}

/** The summary of the last step run. */
async function lastSummary(steps: unknown[]): Promise<{ ok: boolean; summary: string }> {
  const report = await run([...SETUP, ...steps]);
  const { ok, summary } = report.steps.at(-1)!;
  return { ok, summary };
}

describe('runScenario (core)', () => {
  it('runs the steps in order, one summary per step, numbered from 1, with their notes', async () => {
    const report = await run([
      ...SETUP,
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x40_0ffe', data: 'hi!', note: 'crosses a page' },
      { op: 'dma', device: 'dev0', access: 'read', iova: '0x40_0ffe', data: 'hi!' },
      { op: 'dma', device: 'dev0', access: 'read', iova: '0x40_0ffe', length: 20 },
      { op: 'check', buffer: 'buf', offset: '0x1ffe', data: 'hi!' },
      { op: 'map', domain: 'd', iova: '0x70_0000', buffer: 'buf', offset: '8KiB', prot: 'w' },
      { op: 'unmap', domain: 'd', iova: '0x40_0000', size: '8KiB' },
      { op: 'detach', device: 'dev0' },
    ]);
    expect(report.passed).toBe(true);
    expect(report.skipped).toBe(0);
    expect(report.steps.map((s) => [s.index, s.op, s.ok, s.summary])).toEqual([
      [1, 'alloc', true, 'buffer buf: 16KiB of host memory at HPA 0x80000000'],
      [2, 'domain', true, 'domain d: paging domain #1 on iommu0'],
      [3, 'attach', true, 'dev0 (RID 00:02.0, stream 0x10) attached to domain d'],
      [4, 'map', true, 'mapped IOVA 0x400000+8KiB → HPA 0x80001000 (rw) in d'],
      [5, 'map', true, 'mapped IOVA 0x500000+4KiB → HPA 0x80000000 (r) in d'],
      [6, 'dma', true, 'dev0 DMA write at IOVA 0x400ffe → HPA 0x80001ffe, 0x80002000: wrote 3 bytes'],
      [7, 'dma', true, 'dev0 DMA read at IOVA 0x400ffe → HPA 0x80001ffe, 0x80002000: read "hi!"'],
      [
        8,
        'dma',
        true,
        'dev0 DMA read at IOVA 0x400ffe → HPA 0x80001ffe, 0x80002000: read hex:68692100000000000000000000000000… (20 bytes)',
      ],
      [9, 'check', true, 'buffer buf+8190 holds "hi!" at HPA 0x80001ffe'],
      [10, 'map', true, 'mapped IOVA 0x700000+8KiB → HPA 0x80002000 (w) in d'],
      [11, 'unmap', true, 'unmapped 8KiB at IOVA 0x400000 from d, IOTLB invalidated'],
      [12, 'detach', true, 'dev0 detached (DMA blocked)'],
    ]);
    expect(report.steps[5]!.note).toBe('crosses a page');
    expect(report.steps[6]!.note).toBeUndefined();
  });

  it('maps with the permissions asked for, and a detached device is blocked', async () => {
    const report = await run([
      ...SETUP,
      { op: 'map', domain: 'd', iova: '0x70_0000', buffer: 'buf', size: '4KiB', prot: 'w' },
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x70_0000', data: 'w' },
      { op: 'dma', device: 'dev0', access: 'read', iova: '0x70_0000', length: 1, expect: 'fault' },
      { op: 'dma', device: 'dev0', access: 'read', iova: '0x50_0000', data: 'w' },
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x50_0000', data: 'w', expect: 'fault' },
      { op: 'detach', device: 'dev0' },
      { op: 'dma', device: 'dev0', access: 'read', iova: '0x50_0000', length: 1, expect: 'fault' },
    ]);
    expect(report.steps.slice(5).map((s) => s.summary)).toEqual([
      'mapped IOVA 0x700000+4KiB → HPA 0x80000000 (w) in d',
      'dev0 DMA write at IOVA 0x700000 → HPA 0x80000000: wrote 1 bytes',
      'dev0 DMA read at IOVA 0x700000 → fault F_FAKE_PERMISSION (permission, recorded) (as expected)',
      'dev0 DMA read at IOVA 0x500000 → HPA 0x80000000: read "w"',
      'dev0 DMA write at IOVA 0x500000 → fault F_FAKE_PERMISSION (permission, recorded) (as expected)',
      'dev0 detached (DMA blocked)',
      'dev0 DMA read at IOVA 0x500000 → fault F_FAKE_BLOCKED (bad-stream, recorded) (as expected)',
    ]);
    expect(report.passed).toBe(true);
  });

  it('checks the outcome a DMA step expects: a fault with its code, or a bus abort', async () => {
    const report = await run([
      ...SETUP,
      {
        op: 'dma',
        device: 'dev0',
        access: 'write',
        iova: '0x60_0000',
        data: 'x',
        expect: 'fault',
        fault: 'F_FAKE_TRANSLATION',
      },
      { op: 'dma', device: 'legacy', access: 'write', iova: '0x1000', data: 'a', expect: 'abort' },
    ]);
    expect(report.steps.slice(5).map((s) => s.summary)).toEqual([
      'dev0 DMA write at IOVA 0x600000 → fault F_FAKE_TRANSLATION (translation, recorded) (as expected)',
      'legacy DMA write at IOVA 0x1000 → bus abort at 0x1000 (unmapped) (as expected)',
    ]);
    expect(report.passed).toBe(true);
  });

  it.each([
    [{ op: 'attach', device: 'dev2', domain: 'd' }, 'dev2 is behind iommu1, domain d is on iommu0'],
    [{ op: 'attach', device: 'legacy', domain: 'd' }, 'legacy is behind no IOMMU, domain d is on iommu0'],
    [{ op: 'detach', device: 'legacy' }, 'legacy is not behind an IOMMU'],
    [
      { op: 'map', domain: 'd', iova: '0x80_0000', buffer: 'buf', offset: '4KiB', size: '16KiB' },
      'map of 16KiB at offset 4096 overruns buffer buf',
    ],
    [
      { op: 'map', domain: 'd', iova: '0x40_0000', buffer: 'buf', size: '4KiB' },
      'EEXIST: fake domain: mapped',
    ],
    [{ op: 'dma', device: 'dev0', access: 'write', mapping: 'm', data: 'x' }, 'no mapping named "m" yet'],
    [{ op: 'dma', device: 'dev0', access: 'write', data: 'x' }, 'a DMA step needs iova or mapping'],
    [{ op: 'dma', device: 'dev0', access: 'write', iova: '0x40_0000' }, 'a DMA write needs data'],
    [{ op: 'dma', device: 'dev0', access: 'read', iova: '0x40_0000' }, 'a DMA read needs length or data'],
    [
      { op: 'dma', device: 'dev0', access: 'read', iova: '0x40_0000', data: 'ab' },
      'dev0 DMA read at IOVA 0x400000 read hex:0000, expected "ab"',
    ],
    [
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x40_0000', data: 'x', expect: 'fault' },
      'dev0 DMA write at IOVA 0x400000 succeeded, expected fault',
    ],
    [
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x60_0000', data: 'x' },
      'dev0 DMA write at IOVA 0x600000 failed: fault F_FAKE_TRANSLATION (translation, recorded)',
    ],
    [
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x60_0000', data: 'x', expect: 'abort' },
      'dev0 DMA write at IOVA 0x600000: fault F_FAKE_TRANSLATION (translation, recorded), expected abort',
    ],
    [
      { op: 'dma', device: 'legacy', access: 'write', iova: '0x1000', data: 'x', expect: 'fault' },
      'legacy DMA write at IOVA 0x1000: bus abort at 0x1000 (unmapped), expected fault',
    ],
    [
      {
        op: 'dma',
        device: 'dev0',
        access: 'write',
        iova: '0x50_0000',
        data: 'x',
        expect: 'fault',
        fault: 'F_FAKE_TRANSLATION',
      },
      'dev0 DMA write at IOVA 0x500000: fault F_FAKE_PERMISSION (permission, recorded), expected fault F_FAKE_TRANSLATION',
    ],
    [
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x60_0000', data: 'x', expect: 'page-request' },
      'dev0 DMA write at IOVA 0x600000: fault F_FAKE_TRANSLATION (translation, recorded), expected page-request',
    ],
    [
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x60_0000', data: 'x', pageRequest: true },
      'dev0 has no PRI capability: it cannot send page requests',
    ],
    [
      // The fake driver never enables the device's PASID capability: the DMA carries the PASID or fails.
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x40_0000', data: 'x', pasid: 3 },
      'EINVAL: dev0 cannot tag DMA with PASID 3: PASID capability not enabled',
    ],
    [
      { op: 'check', buffer: 'buf', offset: '0x1000', data: 'hex:ff' },
      'buffer buf+4096 holds hex:00, expected hex:ff',
    ],
    [
      { op: 'vm-power', vm: 'vm0', state: 'on' },
      'step "vm-power" needs the VMM (@iommukit/vmm), which this run does not have',
    ],
  ])('fails a step with what went wrong: %o', async (step, why) => {
    expect(await lastSummary([step])).toEqual({ ok: false, summary: why });
  });

  it('sets up MSIs and follows one to its CPU', async () => {
    const report = await run([
      { op: 'msi-setup', device: 'legacy' },
      { op: 'msi', device: 'legacy', vector: 0, expect: 'delivered', cpu: 0 },
    ]);
    expect(report.steps.map((s) => s.summary)).toEqual([
      'legacy: 1 MSI vector(s) on fake-its: event 0 → INTID 8192 on CPU0; MSI address 0x8080040',
      'legacy MSI vector 0: data 0x0 to 0x8080040 → HPA 0x8080040 → fake-its: DeviceID 0x28 EventID 0 → INTID 8192 taken by CPU0 (priority 0xa0) (as expected)',
    ]);
    expect(report.passed).toBe(true);
  });

  it('stops at the first failing step and counts the steps it skipped', async () => {
    const report = await run([
      ...SETUP,
      { op: 'dma', device: 'dev0', access: 'write', iova: '0x60_0000', data: 'x' },
      { op: 'check', buffer: 'buf', data: 'x' },
      { op: 'detach', device: 'dev0' },
    ]);
    expect(report.passed).toBe(false);
    expect(report.skipped).toBe(2);
    expect(report.steps.map((s) => s.ok)).toEqual([true, true, true, true, true, false]);
  });

  it('hands the steps it does not know to the extension, and uses its devices and mappings', async () => {
    const after: number[] = [];
    const handled: string[] = [];
    const report = await run(
      [
        ...SETUP,
        { op: 'guest-map', vm: 'vm0', device: 'emu0', buffer: 'gbuf', mapping: 'm' },
        { op: 'dma', device: 'emu0', access: 'write', mapping: 'm', offset: '0x10', data: 'e' },
        { op: 'check', buffer: 'buf', offset: '0x1010', data: 'e' },
      ],
      {
        extension: (system) => ({
          run(step, context) {
            handled.push(step.op);
            if (step.op !== 'guest-map') return undefined;
            context.mappings.set(step.mapping, 0x40_0000n);
            return `mapping ${step.mapping} at IOVA 0x400000`;
          },
          // The extension owns emu0; any other name is the system's.
          device: (name) => (name === 'emu0' ? system.device('dev0') : undefined),
          afterStep: () => after.push(after.length + 1),
        }),
      },
    );
    expect(report.passed).toBe(true);
    expect(handled).toEqual(['alloc', 'domain', 'attach', 'map', 'map', 'guest-map', 'dma', 'check']);
    expect(after).toHaveLength(8);
    expect(report.steps.slice(5).map((s) => s.summary)).toEqual([
      'mapping m at IOVA 0x400000',
      'emu0 DMA write at IOVA 0x400010 (m+0x10) → HPA 0x80001010: wrote 1 bytes',
      'buffer buf+4112 holds "e" at HPA 0x80001010',
    ]);
    expect(report.passed).toBe(true);
  });

  it("keeps each step's trace records apart", async () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const report = await run(
      [...SETUP, { op: 'dma', device: 'dev0', access: 'write', iova: '0x40_0000', data: 'x' }],
      { tracer },
    );
    const dma = report.steps.at(-1)!;
    expect(dma.trace.some((r) => r.name === 'dma.write')).toBe(true);
    expect(report.steps[0]!.trace.some((r) => r.name === 'dma.write')).toBe(false);
  });
});
