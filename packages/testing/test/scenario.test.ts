/** Scenario runs against the mock plugin: outcomes, failures that stop the run, and deterministic traces. */
import {
  NO_PASID,
  runScenario,
  type ScenarioReport,
  type SystemConfigInput,
  stringifyChromeTrace,
  toChromeTrace,
  validateConfig,
} from '@iommukit/core';
import { describe, expect, it } from 'vitest';
import { mockConfig, mockRegistry, mockSystem } from './fixtures.js';

const SETUP = [
  { op: 'alloc', buffer: 'buf', size: '16KiB' },
  { op: 'domain', name: 'd', iommu: 'iommu0' },
  { op: 'attach', device: 'nic0', domain: 'd' },
  { op: 'map', domain: 'd', iova: '0x40_0000', buffer: 'buf', size: '8KiB', prot: 'rw' },
];

async function run(steps: unknown[], overrides: Partial<SystemConfigInput> = {}): Promise<ScenarioReport> {
  const config = mockConfig({
    ...overrides,
    scenario: { steps: [...SETUP, ...steps] } as SystemConfigInput['scenario'],
  });
  const validated = await validateConfig(config, mockRegistry());
  const system = await mockSystem(config);
  try {
    return runScenario(system, validated.config.scenario!);
  } finally {
    await system.dispose();
  }
}

describe('runScenario', () => {
  it('runs a DMA round trip and reports one line per step', async () => {
    const report = await run([
      { op: 'dma', device: 'nic0', access: 'write', iova: '0x40_0ffe', data: 'hex:01020304' },
      { op: 'check', buffer: 'buf', offset: '0xffe', data: 'hex:01020304' },
      { op: 'dma', device: 'nic0', access: 'read', iova: '0x40_0ffe', data: 'hex:01020304' },
      { op: 'unmap', domain: 'd', iova: '0x40_0000', size: '8KiB' },
      {
        op: 'dma',
        device: 'nic0',
        access: 'read',
        iova: '0x40_0000',
        length: 4,
        expect: 'fault',
        fault: 'MOCK_NOT_PRESENT',
      },
      { op: 'detach', device: 'nic0' },
    ]);
    expect(report.passed).toBe(true);
    expect(report.steps.map((s) => s.op)).toEqual([
      'alloc',
      'domain',
      'attach',
      'map',
      'dma',
      'check',
      'dma',
      'unmap',
      'dma',
      'detach',
    ]);
    expect(report.steps[4]?.summary).toMatch(
      /^nic0 DMA write at IOVA 0x400ffe → HPA 0x[0-9a-f]+ffe, 0x[0-9a-f]+000: wrote 4 bytes$/,
    );
    expect(report.steps[8]?.summary).toBe(
      'nic0 DMA read at IOVA 0x400000 → fault MOCK_NOT_PRESENT (translation, recorded) (as expected)',
    );
  });

  it.each([
    [
      { op: 'dma', device: 'nic0', access: 'write', iova: '0x50_0000', data: 'x' },
      /failed: fault MOCK_NOT_PRESENT/,
    ],
    [
      { op: 'dma', device: 'nic0', access: 'write', iova: '0x40_0000', data: 'x', expect: 'fault' },
      /succeeded, expected fault/,
    ],
    [
      { op: 'dma', device: 'nic0', access: 'read', iova: '0x40_0000', data: 'abc' },
      /read hex:000000, expected "abc"/,
    ],
    [
      {
        op: 'dma',
        device: 'nic0',
        access: 'write',
        iova: '0x50_0000',
        data: 'x',
        expect: 'fault',
        fault: 'MOCK_ABORT',
      },
      /expected fault MOCK_ABORT/,
    ],
    [{ op: 'check', buffer: 'buf', data: 'zz' }, /holds hex:0000, expected "zz"/],
    [
      { op: 'map', domain: 'd', iova: '0x40_1000', buffer: 'buf', size: '4KiB' },
      /^EEXIST: IOVA 0x401000 is already mapped/,
    ],
    [
      { op: 'map', domain: 'd', iova: '0x80_0000', buffer: 'buf', offset: '12KiB', size: '8KiB' },
      /overruns buffer buf/,
    ],
    [{ op: 'detach', device: 'legacy0' }, /legacy0 is not behind an IOMMU/],
  ])('fails on %j and stops the run', async (step, message) => {
    const report = await run([step, { op: 'detach', device: 'nic0' }]);
    expect(report.passed).toBe(false);
    expect(report.skipped).toBe(1);
    expect(report.steps.at(-1)).toMatchObject({ ok: false, index: 5 });
    expect(report.steps.at(-1)?.summary).toMatch(message);
  });

  it('a pageRequest DMA to an IOVA nothing maps sends a PCIe page request, which the core answers invalid', async () => {
    const config = mockConfig({
      devices: [{ name: 'nic0', rid: '00:02.0', iommu: 'iommu0', ats: {}, pri: {} }],
      scenario: {
        steps: [
          ...SETUP,
          {
            op: 'dma',
            device: 'nic0',
            access: 'write',
            iova: '0x60_0000',
            data: 'x',
            pageRequest: true,
            expect: 'page-request',
          },
          {
            op: 'dma',
            device: 'nic0',
            access: 'write',
            iova: '0x60_0000',
            data: 'x',
            pageRequest: true,
            expect: 'fault',
          },
        ],
      } as SystemConfigInput['scenario'],
    });
    const validated = await validateConfig(config, mockRegistry());
    const system = await mockSystem(config);
    try {
      const nic = system.device('nic0');
      // The mock's driver enables nothing: nic0's own driver turns ATS and PRI on.
      nic.pci.setAtsEnabled(true);
      nic.pci.setPriEnabled(true);
      const report = runScenario(system, validated.config.scenario!);
      expect(report.steps[4]).toMatchObject({
        ok: true,
        summary: 'nic0 DMA write at IOVA 0x600000 → page request sent (group 0) (as expected)',
      });
      // The domain has no IOPF handler: the core answered the group invalid when the step's interrupts ran.
      expect(report.steps[5]).toMatchObject({
        ok: false,
        summary: 'nic0 DMA write at IOVA 0x600000: page request sent (group 1), expected fault',
      });
      // The failed step stopped the run before its interrupts were serviced: group 1 is not answered yet.
      expect(nic.pri?.responses).toEqual([{ pasid: NO_PASID, groupIndex: 0, code: 'invalid' }]);
    } finally {
      await system.dispose();
    }
  });

  it.each([
    [{}, /nic0 has ATS off: a page request follows a failed ATS translation/],
    [
      { ats: true },
      /nic0 has PRI off: its IOMMU's driver enables it when a HWPT with a fault queue is attached/,
    ],
  ])('a pageRequest DMA needs ATS and PRI enabled (%j enabled)', async (enabled, message) => {
    const config = mockConfig({
      devices: [{ name: 'nic0', rid: '00:02.0', iommu: 'iommu0', ats: {}, pri: {} }],
      scenario: {
        steps: [
          {
            op: 'dma',
            device: 'nic0',
            access: 'read',
            iova: '0x1000',
            length: 4,
            pageRequest: true,
            expect: 'page-request',
          },
        ],
      } as SystemConfigInput['scenario'],
    });
    const validated = await validateConfig(config, mockRegistry());
    const system = await mockSystem(config);
    try {
      if ('ats' in enabled) system.device('nic0').pci.setAtsEnabled(true);
      const report = runScenario(system, validated.config.scenario!);
      expect(report.steps[0]).toMatchObject({ ok: false, summary: expect.stringMatching(message) });
    } finally {
      await system.dispose();
    }
  });

  it('refuses to attach a device to a domain on another IOMMU instance', async () => {
    const report = await run(
      [
        { op: 'domain', name: 'e', iommu: 'iommu1' },
        { op: 'attach', device: 'nic0', domain: 'e' },
      ],
      {
        iommus: [
          { name: 'iommu0', base: '0x0900_0000' },
          { name: 'iommu1', base: '0x0901_0000' },
        ],
      },
    );
    expect(report.steps.at(-1)?.summary).toBe('nic0 is behind iommu0, domain e is on iommu1');
  });

  it('captures the trace records of each step', async () => {
    const config = mockConfig({ scenario: { steps: SETUP } as SystemConfigInput['scenario'] });
    const validated = await validateConfig(config, mockRegistry());
    const system = await mockSystem(config);
    const report = runScenario(system, validated.config.scenario!);
    expect(report.steps[2]?.trace.map((r) => r.name)).toEqual(['ctx.write', 'inv']);
    await system.dispose();
  });
});

describe('determinism', () => {
  it('gives the same trace, byte for byte, for the same config', async () => {
    const traceOf = async () => {
      const config = mockConfig({
        scenario: {
          steps: [...SETUP, { op: 'dma', device: 'nic0', access: 'write', iova: '0x40_0000', data: 'x' }],
        } as SystemConfigInput['scenario'],
      });
      const validated = await validateConfig(config, mockRegistry());
      const system = await mockSystem(config);
      system.tracer.startRecording();
      runScenario(system, validated.config.scenario!);
      const text = stringifyChromeTrace(toChromeTrace(system.tracer.stopRecording()));
      await system.dispose();
      return text;
    };
    const first = await traceOf();
    expect(first.length).toBeGreaterThan(1000);
    expect(await traceOf()).toBe(first);
  });
});
