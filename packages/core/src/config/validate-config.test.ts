import { describe, expect, it } from 'vitest';
import { fakeConfig, fakeRegistry } from '../../test/fake-plugin.js';
import { ConfigError } from '../errors/config-error.js';
import { parseConfigText, validateConfig } from './load-config.js';

/** Validates `raw` and returns the issues it produced (or [] when valid). */
async function issuesOf(raw: unknown) {
  try {
    await validateConfig(raw, fakeRegistry());
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

describe('validateConfig', () => {
  it('accepts a valid config and applies defaults, sizes and plugin option defaults', async () => {
    const v = await validateConfig(fakeConfig(), fakeRegistry());
    expect(v.config.memory.ram[0]).toEqual({ name: 'dram', base: 0x8000_0000n, size: 64n << 20n });
    expect(v.config.devices[0]).toMatchObject({ rid: 0x10, pasidBits: 0 });
    expect(v.config.msi).toEqual({ controller: 'none', options: {} });
    expect(v.instanceOptions).toEqual([{ offsetPages: 0x100 }]);
    expect(v.plugin.meta.name).toBe('fake');
  });

  it('reports every one of three mistakes, each with its path', async () => {
    const raw = fakeConfig();
    raw.vms = [{ name: 'vm0', memory: '1GiB', viommus: [{ mode: 'nestd' }] }];
    (raw.devices as Record<string, unknown>[])[0]!.rid = '00:99.9';
    (raw.memory as { ram: Record<string, unknown>[] }).ram[0]!.size = 'lots';
    expect(await issuesOf(raw)).toEqual([
      'memory.ram[0].size: expected a size like 4096, "0x1000" or "4GiB", got "lots"',
      'devices[0].rid: expected a PCI requester ID like "00:02.0", got "00:99.9"',
      'vms[0].viommus[0].mode: expected "emulated" | "nested" | "shadow", got "nestd"',
    ]);
  });

  it('rejects unknown keys and suggests the key that was meant', async () => {
    const raw: Record<string, unknown> = { ...fakeConfig(), devics: [] };
    (raw.iommus as Record<string, unknown>[])[0]!.bsae = 1;
    expect(await issuesOf(raw)).toEqual([
      'iommus[0].bsae: unknown key (did you mean "base"?)',
      'devics: unknown key (did you mean "devices"?)',
    ]);
  });

  it('reports a missing required field and a wrong type', async () => {
    const raw = fakeConfig();
    delete raw.memory;
    raw.seed = 'one';
    expect(await issuesOf(raw)).toEqual([
      'seed: expected number, got "one"',
      'memory: required (expected object)',
    ]);
  });

  it('validates instance options against the plugin schema under iommus[i].options', async () => {
    const raw = fakeConfig();
    (raw.iommus as Record<string, unknown>[])[0]!.options = { offsetPages: -1, colour: 'red' };
    const issues = await issuesOf(raw);
    expect(issues).toContain('iommus[0].options.colour: unknown key');
    expect(issues.some((i) => i.startsWith('iommus[0].options.offsetPages: expected at least 0'))).toBe(true);
  });

  it('names the plugin path when the plugin cannot be found, and still checks the rest', async () => {
    const raw = { ...fakeConfig(), plugin: 'no-such-vendor', seed: -3 };
    const issues = await issuesOf(raw);
    expect(issues[0]).toMatch(/^seed: /);
    expect(issues[1]).toMatch(/^plugin: PLUGIN_NOT_FOUND: plugin "no-such-vendor"/);
  });

  it('checks cross references: unknown IOMMU, duplicate names and RIDs, overlapping RAM, misalignment', async () => {
    const raw = fakeConfig();
    raw.memory = {
      ram: [
        { name: 'a', base: '0x8000_0000', size: '1GiB' },
        { name: 'b', base: '0xa000_0000', size: '1GiB' },
        { name: 'c', base: '0x1001', size: '4KiB' },
      ],
    };
    raw.devices = [
      { name: 'nic0', rid: '00:02.0', iommu: 'iommu9' },
      { name: 'nic0', rid: '00:02.0' },
    ];
    expect(await issuesOf(raw)).toEqual([
      'memory.ram[1]: overlaps memory.ram[0] "a"',
      'memory.ram[2].base: expected a 4 KiB aligned address',
      'devices[0].iommu: no IOMMU instance named "iommu9" (have: iommu0)',
      'devices[1].name: name "nic0" is already used by devices[0].name',
      'devices[1].rid: requester ID is already used by devices[0]',
    ]);
  });

  it('checks that scenario steps refer to objects that exist and were made earlier', async () => {
    const raw = fakeConfig();
    raw.scenario = {
      steps: [
        { op: 'attach', device: 'nic0', domain: 'd0' },
        { op: 'domain', name: 'd0', iommu: 'iommu0' },
        { op: 'map', domain: 'd0', iova: '0x1000', buffer: 'nope' },
        { op: 'dma', device: 'ghost', access: 'write', iova: 0, data: 'x' },
        { op: 'teleport' },
      ],
    };
    expect(await issuesOf(raw)).toEqual([
      'scenario.steps[4].op: expected "alloc" | "domain" | "attach" | "detach" | "map" | "unmap" | "dma" | "check" | "msi-setup" | "msi" | "vm-power" | "guest-alloc" | "guest-map" | "guest-unmap" | "guest-check" | "guest-faults" | "page-responses" | "guest-msi-setup" | "guest-msi" | "guest-irq-affinity" | "guest-irq-config" | "guest-op", got "teleport"',
      'scenario.steps[0].domain: no domain named "d0" made by an earlier "domain" step',
      'scenario.steps[2].buffer: no buffer named "nope" made by an earlier "alloc" step',
      'scenario.steps[3].device: no device named "ghost"',
    ]);
    (raw.scenario as { steps: unknown[] }).steps.pop();
    expect(await issuesOf(raw)).toHaveLength(3);
  });

  it('checks VMs: assignable devices, one owner, 2 MiB memory, one vIOMMU per mode, and their steps', async () => {
    const raw = fakeConfig();
    (raw.devices as Record<string, unknown>[]).push({ name: 'loose', rid: '00:05.0' });
    raw.vms = [
      {
        name: 'vm0',
        memory: '3MiB',
        viommus: [{ mode: 'nested' }, { mode: 'nested' }],
        devices: ['nic0', 'loose'],
      },
      { name: 'vm1', memory: '2MiB', devices: ['nic0'], emulatedDevices: ['nic0'] },
      { name: 'vm2', memory: '2MiB', viommus: [{ mode: 'nested' }] },
    ];
    raw.scenario = {
      steps: [
        { op: 'vm-power', vm: 'vm9', state: 'on' },
        { op: 'guest-map', vm: 'vm0', device: 'nic0', buffer: 'rx', mapping: 'm' },
        { op: 'dma', device: 'nic0', access: 'write', data: 'x' },
      ],
    };
    expect(await issuesOf(raw)).toEqual([
      'vms[0].memory: expected a non-zero multiple of 2 MiB',
      'vms[0].viommus[1].mode: the VM already has a nested vIOMMU',
      'vms[0].devices[1]: device "loose" is behind no IOMMU, so it cannot be assigned',
      'vms[1].devices[0]: device "nic0" is already assigned to VM "vm0"',
      'vms[1].emulatedDevices[0]: name "nic0" is already used by devices[0].name',
      'vms[2].viommus: a nested vIOMMU fronts assigned devices, and the VM has none',
      'scenario.steps[0].vm: no VM named "vm9"',
      'scenario.steps[1].buffer: no guest buffer named "rx" made by an earlier "guest-alloc" step',
      'scenario.steps[2]: a dma step takes exactly one of iova and mapping',
    ]);
  });

  it('decodes scenario data as text or hex bytes', async () => {
    const raw = fakeConfig();
    raw.scenario = {
      steps: [
        { op: 'dma', device: 'nic0', access: 'write', iova: 0, data: 'hi' },
        { op: 'dma', device: 'nic0', access: 'write', iova: 0, data: 'hex:de ad_be ef' },
      ],
    };
    const v = await validateConfig(raw, fakeRegistry());
    const steps = v.config.scenario!.steps as { data: Uint8Array }[];
    expect([...steps[0]!.data]).toEqual([0x68, 0x69]);
    expect([...steps[1]!.data]).toEqual([0xde, 0xad, 0xbe, 0xef]);
  });
});

describe('guest RAM a scenario allocates', () => {
  it('names the guest-alloc step whose buffers outgrow the VM since it powered on', async () => {
    const raw = fakeConfig();
    raw.vms = [{ name: 'vm0', memory: '4MiB' }];
    const alloc = (buffer: string, size: string) => ({ op: 'guest-alloc', vm: 'vm0', buffer, size });
    const power = (state: string) => ({ op: 'vm-power', vm: 'vm0', state });
    raw.scenario = { steps: [power('on'), alloc('a', '3MiB'), alloc('b', '1MiB'), alloc('c', '1')] };
    expect(await issuesOf(raw)).toEqual([
      'scenario.steps[3].size: guest buffers of 4100KiB since vm0 powered on exceed its 4MiB of RAM',
    ]);
    // Powering off and on again starts with empty guest RAM.
    raw.scenario = {
      steps: [power('on'), alloc('a', '3MiB'), power('off'), power('on'), alloc('b', '3MiB')],
    };
    expect(await issuesOf(raw)).toEqual([]);
  });
});

describe('placement in the 52-bit physical address space', () => {
  it('rejects an IOMMU register window at or above 2^52 with its path', async () => {
    for (const base of ['0x10_0000_0000_0000', '0xffff_ffff_ffff_f000']) {
      const raw = fakeConfig();
      (raw.iommus as Record<string, unknown>[])[0]!.base = base;
      expect(await issuesOf(raw)).toEqual([
        'iommus[0].base: expected an address below 2^52 (the 52-bit physical address space)',
      ]);
    }
  });
});

describe('parseConfigText', () => {
  it('parses YAML and JSON alike', () => {
    expect(parseConfigText('plugin: fake\nseed: 3\n')).toEqual({ plugin: 'fake', seed: 3 });
    expect(parseConfigText('{"plugin": "fake", "seed": 3}')).toEqual({ plugin: 'fake', seed: 3 });
  });

  it('checks the MSI controller: a known module, and its own options under msi.options', async () => {
    const raw = fakeConfig();
    raw.msi = { controller: 'gic-itz' };
    expect(await issuesOf(raw)).toEqual([
      'msi.controller: no MSI controller named "gic-itz" (have: none, fake-msi)',
    ]);
    raw.msi = { controller: 'fake-msi', options: { base: 0x123, colour: 'red' } };
    const issues = await issuesOf(raw);
    expect(issues).toHaveLength(2);
    expect(issues[0]).toMatch(/^msi\.options\.base: /);
    expect(issues[1]).toMatch(/^msi\.options\.colour: unknown key/);
    raw.msi = { controller: 'fake-msi' };
    const valid = await validateConfig(raw, fakeRegistry());
    expect(valid.msi?.module.name).toBe('fake-msi');
    expect(valid.msi?.options).toEqual({ base: 0x0808_0000 });
  });

  it('loads no plugin or MSI module for an empty name: the schema alone reports it', async () => {
    const raw = fakeConfig();
    raw.plugin = '';
    raw.msi = { controller: '' };
    const issues = await issuesOf(raw);
    expect(issues.filter((i) => i.startsWith('plugin'))).toHaveLength(1);
    expect(issues.filter((i) => i.startsWith('msi'))).toHaveLength(1);
    expect(issues.join('\n')).not.toMatch(/PLUGIN_|no MSI controller named/);
  });

  it('reports an empty file as a config problem, not a crash', async () => {
    for (const text of ['', '# only a comment\n', '---\n']) {
      expect(() => parseConfigText(text, 'e.yaml')).toThrow(
        expect.objectContaining({ issues: [{ path: '(file)', message: 'the file is empty' }] }),
      );
    }
    // A document that is not a mapping reaches the schema, which reports it at the root path ("").
    expect(await issuesOf(null)).toEqual([': expected object, got null']);
  });

  it('refuses a YAML alias bomb with a config error', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++)
      lines.push(
        `a${i}: &a${i} [${Array(9)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    expect(() => parseConfigText(lines.join('\n'), 'bomb.yaml')).toThrow(
      expect.objectContaining({
        issues: [{ path: '(file)', message: expect.stringMatching(/more than 100 alias expansions/) }],
      }),
    );
  });

  it('reports YAML syntax errors and duplicate keys with a line number', () => {
    expect(() => parseConfigText('plugin: fake\nplugin: other\n', 'x.yaml')).toThrow(/x\.yaml line 2/);
    expect(() => parseConfigText('a: [1, 2\n', 'y.yaml')).toThrow(ConfigError);
  });
});
