/** The iommukit command, run in-process through `main` with captured output. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main } from '../src/index.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

let dir: string;

async function cli(...argv: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), cwd: dir });
  return { code, out, err };
}

const VALID = `
plugin: mock
memory:
  ram: [{ name: dram, base: 0x8000_0000, size: 256MiB }]
iommus: [{ name: iommu0, base: 0x0900_0000 }]
devices: [{ name: nic0, rid: "00:02.0", iommu: iommu0 }]
scenario:
  steps:
    - { op: alloc, buffer: b, size: 4KiB }
    - { op: domain, name: d, iommu: iommu0 }
    - { op: attach, device: nic0, domain: d }
    - { op: dma, device: nic0, access: write, iova: 0x1000, data: x, expect: fault, fault: MOCK_NOT_PRESENT }
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'iommukit-cli-'));
  writeFileSync(join(dir, 'valid.yaml'), VALID);
  writeFileSync(
    join(dir, 'failing.yaml'),
    VALID.replace('expect: fault, fault: MOCK_NOT_PRESENT', 'expect: ok'),
  );
  writeFileSync(
    join(dir, 'three-mistakes.yaml'),
    VALID.replace('size: 256MiB', 'size: lots')
      .replace('"00:02.0"', '"00:02.9"')
      .replace('iommu: iommu0 }]', 'iommu: iommu7 }]'),
  );
  writeFileSync(
    join(dir, 'bad-msi.yaml'),
    `${VALID.split('scenario:')[0]}msi:
  controller: gic-its
  options:
    its:
      - { name: its0, base: 0x0808_1000 }
      - { name: its0, base: 0x0810_0000, devices: [nic0] }
`,
  );
  writeFileSync(
    join(dir, 'valid.json'),
    JSON.stringify({ plugin: 'mock', memory: { ram: [{ name: 'r', base: 0x8000_0000, size: 4096 }] } }),
  );
});

describe('iommukit demo', () => {
  it('runs the built-in config and says what happened', async () => {
    const { code, out } = await cli('demo');
    expect(code).toBe(EXIT_OK);
    expect(out).toContain('system "demo" · plugin smmuv3 0.1.0 (arm-smmuv3)');
    expect(out).toContain('MSI: gic-its, doorbell its0 0x20010040, 2 CPUs');
    expect(out).toContain('VMs: vm0 (1GiB, MSI passthrough, assigned nic0, nested vIOMMU)');
    // The trap, the iommufd call and the host's nested walk.
    expect(out).toMatch(
      /vSID 0x8: guest STE at 0x[0-9a-f]+ \(S1, CD table 0x[0-9a-f]+\) → nested HWPT \d+ \(new\)/,
    );
    expect(out).toMatch(/walk S1 L0 read 0x[0-9a-f]+ = 0x[0-9a-f]+/);
    expect(out).toMatch(/walk S2 L0 read 0x[0-9a-f]+ = 0x[0-9a-f]+/);
    expect(out).toMatch(/vm0 rx\+64 holds "hello from nic0": GPA 0x4[0-9a-f]+, host page HPA 0x8[0-9a-f]+/);
    expect(out).toMatch(/guest IOMMU driver reported F_TRANSLATION stream 0x8 IOVA 0x[0-9a-f]+ \(nic0\)/);
    // The MSI: guest IOVA → stage 1 → stage 2 → physical ITS → host LPI → the vITS → vCPU 0.
    expect(out).toMatch(/ioasMapMsi put doorbell page 0x20010000 at GPA 0x8090000/);
    expect(out).toMatch(
      /its0: DeviceID 0x10 EventID 0 → INTID \d+ taken by CPU\d .* → vm0\.vits: DeviceID 0x8 EventID 0 → INTID 8192 taken by CPU0/,
    );
    expect(out).toContain('✓ 10/10 steps passed');
  });

  it('emits only valid JSON on stdout with --json', async () => {
    const { code, out, err } = await cli('demo', '--json');
    expect(code).toBe(EXIT_OK);
    expect(err).toBe('');
    const report = JSON.parse(out);
    expect(report).toMatchObject({ system: 'demo', passed: true, plugin: { name: 'smmuv3' } });
    expect(report.steps).toHaveLength(10);
    // The fault went to the guest, not to the host's fault log.
    expect(report.iommus[0].faults).toEqual([]);
    expect(report.iommus[0].faultsLost).toBe(0);
    expect(report.steps.at(-1).summary).toMatch(/reported F_TRANSLATION stream 0x8/);
  });

  it('writes a Chrome trace with one track per layer', async () => {
    const { code, out } = await cli('demo', '--trace', 'demo.trace.json');
    expect(code).toBe(EXIT_OK);
    expect(out).toContain(`trace written to ${join(dir, 'demo.trace.json')}`);
    const trace = JSON.parse(readFileSync(join(dir, 'demo.trace.json'), 'utf8'));
    const tracks = trace.traceEvents
      .filter((e: { name: string }) => e.name === 'thread_name')
      .map((e: { args: { name: string } }) => e.args.name);
    expect(tracks).toEqual([
      'guest-driver',
      'frontend',
      'iommufd',
      'driver',
      'hw',
      'device',
      'msi',
      'system',
    ]);
    const walk = trace.traceEvents.find((e: { name: string }) => e.name === 'walk.step');
    expect(walk).toMatchObject({ ph: 'i', cat: 'hw', args: { source: 'smmu0', level: 0 } });
    const cats = new Set(trace.traceEvents.map((e: { cat?: string }) => e.cat));
    for (const layer of ['guest-driver', 'frontend', 'iommufd', 'driver', 'hw', 'device'])
      expect(cats).toContain(layer);
  });
});

describe('iommukit validate', () => {
  it('accepts a valid YAML or JSON config', async () => {
    expect(await cli('validate', 'valid.yaml')).toMatchObject({
      code: EXIT_OK,
      out: expect.stringContaining('valid.yaml: valid (plugin mock'),
    });
    expect((await cli('validate', 'valid.json')).code).toBe(EXIT_OK);
  });

  it('reports all three mistakes with their paths and exits 1', async () => {
    const { code, err } = await cli('validate', 'three-mistakes.yaml');
    expect(code).toBe(EXIT_FAILURE);
    expect(err.trim().split('\n')).toEqual([
      'three-mistakes.yaml: 3 problems',
      '  memory.ram[0].size: expected a size like 4096, "0x1000" or "4GiB", got "lots"',
      '  devices[0].rid: expected a PCI requester ID like "00:02.0", got "00:02.9"',
      '  devices[0].iommu: no IOMMU instance named "iommu7" (have: iommu0)',
    ]);
  });

  it("checks the MSI controller's options against its own schema, with their paths", async () => {
    const { code, err } = await cli('validate', 'bad-msi.yaml');
    expect(code).toBe(EXIT_FAILURE);
    expect(err.trim().split('\n')).toEqual([
      'bad-msi.yaml: 2 problems',
      '  msi.options.its[0].base: expected a 64 KiB aligned address',
      '  msi.options.its[1].name: another ITS is named "its0"',
    ]);
  });

  it('reports them as JSON with --json', async () => {
    const { code, out } = await cli('validate', 'three-mistakes.yaml', '--json');
    expect(code).toBe(EXIT_FAILURE);
    expect(JSON.parse(out)).toMatchObject({
      valid: false,
      issues: [{ path: 'memory.ram[0].size' }, { path: 'devices[0].rid' }, { path: 'devices[0].iommu' }],
    });
  });

  it('reports a missing file and a wrong extension as config problems', async () => {
    expect(await cli('validate', 'nope.yaml')).toMatchObject({
      code: EXIT_FAILURE,
      err: expect.stringContaining('cannot read'),
    });
    expect(await cli('validate', 'config.txt')).toMatchObject({
      code: EXIT_FAILURE,
      err: expect.stringContaining('expected a .yaml'),
    });
  });
});

describe('iommukit run', () => {
  it('runs a scenario that passes (exit 0) and one that does not (exit 1)', async () => {
    expect((await cli('run', 'valid.yaml')).code).toBe(EXIT_OK);
    const failed = await cli('run', 'failing.yaml');
    expect(failed.code).toBe(EXIT_FAILURE);
    expect(failed.out).toContain('✗ 3/4 steps passed');
  });

  it('builds a config without a scenario and says so', async () => {
    const { code, out } = await cli('run', 'valid.json');
    expect(code).toBe(EXIT_OK);
    expect(out).toContain('no scenario in this config');
  });
});

describe('iommukit vendors', () => {
  it('lists the mock plugin with capabilities and ID registers', async () => {
    const { code, out } = await cli('vendors');
    expect(code).toBe(EXIT_OK);
    expect(out).toContain('mock 0.1.0 — mock');
    expect(out).toContain('default instance registers: IDR=0x24d4b CAP=0x74548');
    expect(out).toContain('dirty tracking: yes · interrupt remapping: yes · domains across instances: no\n');
    expect(out).toContain('dirty tracking: yes · interrupt remapping: no · domains across instances: yes\n');
    expect(out).toContain('smmuv3 0.1.0 — arm-smmuv3');
    expect(out).toMatch(/default instance registers: IDR0=0x[0-9a-f]+ IDR1=0x[0-9a-f]+ .* IDR5=0x[0-9a-f]+/);
    expect(out).toContain('amd-vi 0.1.0 — amd');
    expect(out).toContain('default instance registers: EFR=0x17400f002058de EFR2=0x8');
    expect(out).toMatch(/MSI controllers \(msi\.controller\):\n {2}gic-its — Arm GICv3 ITS/);
    expect(out).toContain(
      "vIOMMU front-ends (viommu.frontend):\n  vendor — the vendor plugin's own vIOMMU personality\n",
    );
    const json = JSON.parse((await cli('vendors', '--json')).out);
    expect(json.map((v: { name: string }) => v.name)).toEqual(['amd-vi', 'mock', 'smmuv3', 'vtd']);
    expect(json[1]).toMatchObject({
      name: 'mock',
      capabilities: { dirtyTracking: true, interruptRemapping: true },
      registers: { IDR: '0x24d4b' },
    });
  });
});

describe('usage', () => {
  it.each([
    [[], EXIT_USAGE],
    [['frobnicate'], EXIT_USAGE],
    [['demo', '--colour'], EXIT_USAGE],
    [['run'], EXIT_USAGE],
    [['run', 'a.yaml', 'b.yaml'], EXIT_USAGE],
    [['validate', 'valid.yaml', '--trace', 'x.json'], EXIT_USAGE],
    [['demo', 'extra'], EXIT_USAGE],
    [['--help'], EXIT_OK],
    [['run', '--help'], EXIT_OK],
    [['help', 'validate'], EXIT_OK],
  ])('iommukit %j exits %i', async (argv, expected) => {
    const { code, out, err } = await cli(...argv);
    expect(code).toBe(expected);
    expect(expected === EXIT_OK ? out : err).toMatch(/Usage: iommukit/);
  });
});

describe('options', () => {
  it('prints the version with --version or -v', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    for (const flag of ['--version', '-v']) {
      expect(await cli(flag)).toEqual({ code: EXIT_OK, out: `iommukit ${pkg.version}\n`, err: '' });
    }
  });

  it("answers an unknown option after a command with that command's help", async () => {
    const { code, err } = await cli('validate', 'valid.yaml', '--colour');
    expect(code).toBe(EXIT_USAGE);
    expect(err).toMatch(/^iommukit validate: Unknown option '--colour'/);
    expect(err).toContain('Usage: iommukit validate <config.yaml|config.json> [--json]');
    expect(err).not.toContain('Commands:');
  });

  it('reports a trace path it cannot write before running, with exit 1', async () => {
    for (const trace of [join(dir, 'no-such-dir', 't.json'), dir]) {
      const { code, out, err } = await cli('run', 'valid.yaml', '--trace', trace);
      expect(code).toBe(EXIT_FAILURE);
      expect(err).toContain(`iommukit run: cannot write the trace to ${trace}: `);
      expect(err).toMatch(/^iommukit run: .*: E[A-Z]+:/);
      expect(out).toBe('');
    }
  });
});

describe('configs only the plugin can judge', () => {
  it('validate builds the system, so a device the driver refuses is reported with its path', async () => {
    writeFileSync(join(dir, 'wide-sid.yaml'), VALID.replace('rid: "00:02.0"', 'rid: "01:00.0"'));
    const { code, err } = await cli('validate', 'wide-sid.yaml');
    expect(code).toBe(EXIT_FAILURE);
    expect(err).toContain("devices[0]: nic0: stream ID 0x100 exceeds the hardware's 8 bits");
    expect((await cli('run', 'wide-sid.yaml')).code).toBe(EXIT_FAILURE);
  });
});

describe('resource and malformed configs: a path-named problem, never a stack trace', () => {
  const SMMU = (ram: string, base = '0x0900_0000', vms = '') =>
    `plugin: smmuv3\nmemory:\n  ram: [{ name: dram, base: 0x8000_0000, size: ${ram} }]\niommus: [{ name: smmu0, base: ${base} }]\n${vms}`;
  const bomb = () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++)
      lines.push(
        `a${i}: &a${i} [${Array(9)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    return `${lines.join('\n')}\nplugin: mock\n`;
  };
  const vmStep = '\nscenario:\n  steps:\n    - { op: vm-power, vm: vm0, state: "on" }\n';
  it.each([
    ['empty.yaml', '', '(file): the file is empty'],
    ['bomb.yaml', bomb(), '(file): more than 100 alias expansions'],
    [
      'base-2-52.yaml',
      SMMU('256MiB', '0x10_0000_0000_0000'),
      'iommus[0].base: expected an address below 2^52',
    ],
    ['window-past-2-52.yaml', SMMU('256MiB', '0xf_ffff_ffff_0000'), 'iommus[0].base: region "smmu0"'],
    ['tiny-ram.yaml', SMMU('4KiB'), 'memory.ram: host RAM (4KiB) is too small for what the IOMMU instances'],
    [
      'tiny-ram-its.yaml',
      SMMU(
        '4KiB',
        undefined,
        'msi: { controller: gic-its, options: { its: [{ name: its0, base: 0x2000_0000 }] } }',
      ),
      'memory.ram: host RAM (4KiB) is too small for what the MSI controller allocates: ENOMEM',
    ],
    [
      'vm-too-big.yaml',
      SMMU('256MiB', undefined, `vms: [{ name: vm0, memory: 1GiB }]${vmStep}`),
      'vms[0].memory: 1GiB of guest RAM needs one 2 MiB aligned block of host RAM',
    ],
    [
      'vms-too-big.yaml',
      SMMU('1GiB', undefined, `vms: [{ name: vm0, memory: 512MiB }, { name: vm1, memory: 512MiB }]${vmStep}`),
      'vms[1].memory: 512MiB of guest RAM needs one 2 MiB aligned block of host RAM',
    ],
    [
      // Three host frames below the 2 MiB block the guest RAM takes: the IOMMU's tables (without an
      // interrupt remapping table) fill them, so the VM's stage-2 tables find no room at power-on.
      'vm-tables.yaml',
      `plugin: mock
memory:
  ram: [{ name: dram, base: 0x7fff_d000, size: 0x40_3000 }]
iommus: [{ name: iommu0, base: 0x0900_0000, options: { sidBits: 1, interruptRemapping: false } }]
devices: [{ name: nic0, rid: "00:00.1", iommu: iommu0 }]
vms: [{ name: vm0, memory: 4MiB, devices: [nic0] }]${vmStep}`,
      'vms[0].memory: powering vm0 on runs out of host RAM: ENOMEM',
    ],
  ])('%s: validate and run exit 1 naming the path', async (file, text, message) => {
    writeFileSync(join(dir, file), text);
    for (const command of ['validate', 'run']) {
      const { code, out, err } = await cli(command, file);
      expect(code).toBe(EXIT_FAILURE);
      expect(err).toContain(`${file}: 1 problem\n  ${message}`);
      expect(`${out}${err}`).not.toMatch(/\n\s+at /);
    }
  });
});
