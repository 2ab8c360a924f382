/**
 * The system schema's cross-reference and placement checks: every check names the path of the value it
 * refuses, accepts the values just inside its bound, and runs even when other fields already failed.
 */
import { describe, expect, it } from 'vitest';
import { SystemConfigSchema } from './schema.js';

type Obj = Record<string, unknown>;
interface Config {
  plugin: string;
  memory: { ram: Obj[] };
  iommus: Obj[];
  devices: Obj[];
  vms: Obj[];
  scenario?: { steps: Obj[] };
}

/** A config with one of everything the checks look at; it validates. */
function base(): Config {
  return {
    plugin: 'mock',
    memory: { ram: [{ name: 'dram', base: '0x8000_0000', size: '64MiB' }] },
    iommus: [
      { name: 'iommu0', base: '0x0900_0000' },
      { name: 'iommu1', base: '0x0910_0000' },
    ],
    devices: [
      { name: 'nic0', rid: '00:02.0', iommu: 'iommu0' },
      { name: 'nic1', rid: '00:03.0', iommu: 'iommu0' },
      { name: 'nic2', rid: '00:04.0', iommu: 'iommu1' },
      { name: 'legacy', rid: '00:05.0' },
    ],
    vms: [
      {
        name: 'vm0',
        memory: '4MiB',
        devices: ['nic0', 'nic1'],
        viommus: [{ mode: 'nested' }],
        emulatedDevices: ['emu0'],
      },
    ],
  };
}

/** The problems the schema reports for `config`, as "path: message". */
function problems(config: unknown): string[] {
  const result = SystemConfigSchema.safeParse(config);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

/** The problems of the base config after `edit`. */
function after(edit: (c: Config) => void): string[] {
  const config = base();
  edit(config);
  return problems(config);
}

describe('SystemConfigSchema checks', () => {
  it('accepts the base config', () => {
    expect(problems(base())).toEqual([]);
  });

  it('places RAM regions on 4 KiB pages below 2^52, without overlaps', () => {
    expect(
      after((c) => {
        c.memory.ram = [
          { name: 'a', base: '0x8000_0800', size: '0x1800' },
          { name: 'b', base: '0x9000_0000', size: '0x0' },
          { name: 'c', base: '0xf_ffff_ffff_f000', size: '8KiB' },
          { name: 'd', base: '0xa000_0000', size: '1MiB' },
          { name: 'e', base: '0xa00f_f000', size: '8KiB' },
          { name: 'f', base: '0xa010_1000', size: '4KiB' },
        ];
      }),
    ).toEqual([
      'memory.ram.0.base: expected a 4 KiB aligned address',
      'memory.ram.0.size: expected a non-zero multiple of 4 KiB',
      'memory.ram.1.size: expected a non-zero multiple of 4 KiB',
      'memory.ram.2: region ends above the 52-bit physical address space',
      'memory.ram.4: overlaps memory.ram[3] "d"',
    ]);
    // Regions that touch, and one that ends exactly at 2^52, are fine.
    expect(
      after((c) => {
        c.memory.ram = [
          { name: 'a', base: '0xa000_0000', size: '1MiB' },
          { name: 'b', base: '0xa010_0000', size: '4KiB' },
          { name: 'c', base: '0xf_ffff_ffff_f000', size: '4KiB' },
        ];
      }),
    ).toEqual([]);
  });

  it('places IOMMU register windows on 4 KiB pages below 2^52', () => {
    expect(
      after((c) => {
        c.iommus[0]!.base = '0x0900_0800';
        c.iommus[1]!.base = '0x10_0000_0000_0000';
      }),
    ).toEqual([
      'iommus.0.base: expected a 4 KiB aligned address',
      'iommus.1.base: expected an address below 2^52 (the 52-bit physical address space)',
    ]);
    expect(after((c) => (c.iommus[1]!.base = '0xf_ffff_ffff_f000'))).toEqual([]);
  });

  it('gives every named thing a name of its own, and says which one had it first', () => {
    expect(
      after((c) => {
        c.memory.ram.push({ name: 'dram', base: '0x1_0000_0000', size: '4KiB' });
        c.iommus.push({ name: 'dram', base: '0x0920_0000' });
        c.devices.push({ name: 'nic0', rid: '00:06.0', iommu: 'iommu0' });
        c.vms.push({ name: 'iommu1', memory: '2MiB', emulatedDevices: ['nic2'] });
      }),
    ).toEqual([
      'memory.ram.1.name: name "dram" is already used by memory.ram[0].name',
      'iommus.2.name: name "dram" is already used by memory.ram[0].name',
      'devices.4.name: name "nic0" is already used by devices[0].name',
      'vms.1.name: name "iommu1" is already used by iommus[1].name',
      'vms.1.emulatedDevices.0: name "nic2" is already used by devices[2].name',
    ]);
  });

  it('puts devices behind IOMMUs that exist, each on its own requester ID', () => {
    expect(
      after((c) => {
        c.devices[2]!.iommu = 'iommu9';
        c.devices[3]!.rid = '00:02.0';
      }),
    ).toEqual([
      'devices.2.iommu: no IOMMU instance named "iommu9" (have: iommu0, iommu1)',
      'devices.3.rid: requester ID is already used by devices[0]',
    ]);
    expect(
      after((c) => {
        c.iommus = [];
        c.devices = [{ name: 'nic0', rid: '00:02.0', iommu: 'iommu0' }];
        c.vms = [];
      }),
    ).toEqual(['devices.0.iommu: no IOMMU instance named "iommu0" (have: none)']);
  });

  it('assigns each VM devices that exist, are behind an IOMMU, and are not another VM’s', () => {
    expect(
      after((c) => {
        c.vms[0]!.memory = '3MiB';
        c.vms[0]!.viommus = [{ mode: 'emulated' }, { mode: 'emulated' }];
        c.vms[0]!.devices = ['nic0', 'nic9', 'legacy'];
        c.vms.push({ name: 'vm1', memory: '0', devices: ['nic0'] });
      }),
    ).toEqual([
      'vms.0.memory: expected a non-zero multiple of 2 MiB',
      'vms.0.viommus.1.mode: the VM already has a emulated vIOMMU',
      'vms.0.devices.1: no device named "nic9"',
      'vms.0.devices.2: device "legacy" is behind no IOMMU, so it cannot be assigned',
      'vms.1.memory: expected a non-zero multiple of 2 MiB',
      'vms.1.devices.0: device "nic0" is already assigned to VM "vm0"',
    ]);
  });

  it('fronts a nested vIOMMU’s devices by one IOMMU instance, and needs one device at least', () => {
    expect(after((c) => (c.vms[0]!.devices = ['nic0', 'nic2']))).toEqual([
      'vms.0.devices: a nested vIOMMU needs every assigned device behind one IOMMU instance',
    ]);
    expect(after((c) => (c.vms[0]!.devices = []))).toEqual([
      'vms.0.viommus: a nested vIOMMU fronts assigned devices, and the VM has none',
    ]);
    // A shadowing vIOMMU needs a device too, and cannot share the devices with a nested one.
    expect(
      after((c) => {
        c.vms[0]!.viommus = [{ mode: 'shadow' }];
        c.vms[0]!.devices = [];
      }),
    ).toEqual(['vms.0.viommus: a shadow vIOMMU fronts assigned devices, and the VM has none']);
    expect(after((c) => (c.vms[0]!.viommus = [{ mode: 'nested' }, { mode: 'shadow' }]))).toEqual([
      'vms.0.viommus: a nested and a shadow vIOMMU cannot both front the assigned devices',
    ]);
    // An emulated vIOMMU may front devices behind several instances, or none.
    expect(
      after((c) => {
        c.vms[0]!.viommus = [{ mode: 'emulated' }];
        c.vms[0]!.devices = ['nic0', 'nic2'];
      }),
    ).toEqual([]);
    expect(
      after((c) => {
        c.vms[0]!.viommus = [{ mode: 'emulated' }];
        c.vms[0]!.devices = [];
      }),
    ).toEqual([]);
  });

  it('says what a plugin and a memory map must be', () => {
    expect(problems({ plugin: 5, memory: { ram: [] } })).toEqual([
      'plugin: expected a built-in plugin name ("mock") or a module path ("./my-plugin.js")',
      'memory.ram: expected at least one RAM region',
    ]);
  });

  it('still checks references when other fields already failed', () => {
    expect(
      after((c) => {
        c.memory.ram[0]!.size = 12;
        c.devices[0]!.name = 7;
        c.vms[0]!.devices = ['nic1', 5];
        c.vms[0]!.emulatedDevices = [3];
        c.vms.push({ name: 'vm1', memory: '2MiB', devices: ['nic1'] });
      }).filter((p) => !p.includes('expected')),
    ).toEqual(['vms.1.devices.0: device "nic1" is already assigned to VM "vm0"']);
    expect(problems({ plugin: 'mock', memory: { ram: 'none' }, iommus: 3, devices: [null, 4] })).toEqual([
      'memory.ram: Invalid input: expected array, received string',
      'iommus: Invalid input: expected array, received number',
      'devices.0: Invalid input: expected object, received null',
      'devices.1: Invalid input: expected object, received number',
    ]);
  });

  it.each<[string, Obj, string[]]>([
    ['domain', { op: 'domain', name: 'd', iommu: 'iommuX' }, ['iommu: no IOMMU instance named "iommuX"']],
    [
      'attach',
      { op: 'attach', device: 'nicX', domain: 'd' },
      ['device: no device named "nicX"', 'domain: no domain named "d" made by an earlier "domain" step'],
    ],
    ['detach', { op: 'detach', device: 'emu0' }, ['device: no device named "emu0"']],
    [
      'map',
      { op: 'map', domain: 'd', iova: '0', buffer: 'b' },
      [
        'domain: no domain named "d" made by an earlier "domain" step',
        'buffer: no buffer named "b" made by an earlier "alloc" step',
      ],
    ],
    [
      'unmap',
      { op: 'unmap', domain: 'd', iova: '0', size: '4KiB' },
      ['domain: no domain named "d" made by an earlier "domain" step'],
    ],
    [
      'check',
      { op: 'check', buffer: 'b', data: 'x' },
      ['buffer: no buffer named "b" made by an earlier "alloc" step'],
    ],
    [
      'dma',
      { op: 'dma', device: 'nicX', access: 'read', mapping: 'm', length: 1 },
      ['device: no device named "nicX"', 'mapping: no mapping named "m" made by an earlier "guest-map" step'],
    ],
    ['msi-setup', { op: 'msi-setup', device: 'emu0' }, ['device: no device named "emu0"']],
    ['msi', { op: 'msi', device: 'emu0', vector: 0 }, ['device: no device named "emu0"']],
    ['vm-power', { op: 'vm-power', vm: 'vmX', state: 'on' }, ['vm: no VM named "vmX"']],
    ['guest-faults', { op: 'guest-faults', vm: 'vmX', expect: [] }, ['vm: no VM named "vmX"']],
    ['guest-op', { op: 'guest-op', vm: 'vmX', action: 'a' }, ['vm: no VM named "vmX"']],
    ...(['guest-msi-setup', 'guest-msi', 'guest-irq-affinity', 'guest-irq-config'] as const).map(
      (op): [string, Obj, string[]] => [
        op,
        {
          op,
          vm: 'vmX',
          device: 'emu0',
          ...(op === 'guest-msi-setup' ? {} : { vector: 0 }),
          ...(op === 'guest-irq-affinity' ? { cpu: 0 } : {}),
        },
        ['vm: no VM named "vmX"', 'device: no device named "emu0"'],
      ],
    ),
    ['guest-alloc', { op: 'guest-alloc', vm: 'vmX', buffer: 'g', size: '4KiB' }, ['vm: no VM named "vmX"']],
    [
      'guest-map',
      { op: 'guest-map', vm: 'vmX', device: 'nicX', buffer: 'g', mapping: 'm' },
      [
        'vm: no VM named "vmX"',
        'device: no device named "nicX"',
        'buffer: no guest buffer named "g" made by an earlier "guest-alloc" step',
      ],
    ],
    [
      'guest-unmap',
      { op: 'guest-unmap', vm: 'vmX', device: 'nic0', mapping: 'm' },
      ['vm: no VM named "vmX"', 'mapping: no mapping named "m" made by an earlier "guest-map" step'],
    ],
    [
      'guest-check',
      { op: 'guest-check', vm: 'vmX', buffer: 'g', data: 'x' },
      ['vm: no VM named "vmX"', 'buffer: no guest buffer named "g" made by an earlier "guest-alloc" step'],
    ],
  ])('a %s step names only things that exist', (_op, step, why) => {
    expect(after((c) => (c.scenario = { steps: [step] }))).toEqual(why.map((w) => `scenario.steps.0.${w}`));
  });

  it('lets steps use what earlier steps made, and an emulated device where a VM device will do', () => {
    const steps = [
      { op: 'alloc', buffer: 'b', size: '4KiB' },
      { op: 'domain', name: 'd', iommu: 'iommu0' },
      { op: 'attach', device: 'nic2', domain: 'd' },
      { op: 'map', domain: 'd', iova: '0', buffer: 'b' },
      { op: 'check', buffer: 'b', data: 'x' },
      { op: 'unmap', domain: 'd', iova: '0', size: '4KiB' },
      { op: 'vm-power', vm: 'vm0', state: 'on' },
      { op: 'guest-alloc', vm: 'vm0', buffer: 'g', size: '4KiB' },
      { op: 'guest-map', vm: 'vm0', device: 'emu0', buffer: 'g', mapping: 'm' },
      { op: 'dma', device: 'emu0', access: 'write', mapping: 'm', data: 'x' },
      { op: 'guest-check', vm: 'vm0', buffer: 'g', data: 'x' },
      { op: 'guest-unmap', vm: 'vm0', device: 'emu0', mapping: 'm' },
    ];
    expect(after((c) => (c.scenario = { steps }))).toEqual([]);
  });

  it('asks a dma step for exactly one of iova and mapping', () => {
    const dma = { op: 'dma', device: 'nic0', access: 'read', length: 1 };
    const make = { op: 'guest-map', vm: 'vm0', device: 'nic0', buffer: 'g', mapping: 'm' };
    const alloc = { op: 'guest-alloc', vm: 'vm0', buffer: 'g', size: '4KiB' };
    const why = 'scenario.steps.2: a dma step takes exactly one of iova and mapping';
    expect(after((c) => (c.scenario = { steps: [alloc, make, dma] }))).toEqual([why]);
    expect(
      after((c) => (c.scenario = { steps: [alloc, make, { ...dma, iova: '0', mapping: 'm' }] })),
    ).toEqual([why]);
    expect(after((c) => (c.scenario = { steps: [alloc, make, { ...dma, mapping: 'm' }] }))).toEqual([]);
  });

  it('asks a page request of a device with ATS and PRI, and expect: page-request of a pageRequest DMA', () => {
    const dma = { op: 'dma', device: 'nic0', access: 'read', length: 1, iova: '0' };
    const responses = { op: 'page-responses', vm: 'vm0', device: 'nic0', expect: ['invalid'] };
    const noPri = 'device "nic0" cannot send page requests: it needs ats and pri in its devices entry';
    expect(
      after(
        (c) => (c.scenario = { steps: [{ ...dma, pageRequest: true, expect: 'page-request' }, responses] }),
      ),
    ).toEqual([`scenario.steps.0.pageRequest: ${noPri}`, `scenario.steps.1.device: ${noPri}`]);
    expect(after((c) => (c.scenario = { steps: [{ ...dma, expect: 'page-request' }] }))).toEqual([
      'scenario.steps.0.expect: expect: page-request needs pageRequest: true',
    ]);
    // ATS alone is not enough; with PRI too, both steps pass, and an emulated device is checked when it runs.
    const withPri = (c: Config, caps: Obj) => {
      c.devices[0] = { ...c.devices[0], ...caps };
      c.scenario = {
        steps: [
          { ...dma, pageRequest: true, expect: 'page-request' },
          { ...dma, device: 'emu0', pageRequest: true },
          responses,
        ],
      };
    };
    expect(after((c) => withPri(c, { ats: {} }))).toHaveLength(2);
    expect(after((c) => withPri(c, { ats: {}, pri: {} }))).toEqual([]);
    expect(after((c) => (c.scenario = { steps: [{ ...responses, vm: 'vmX', device: 'nicX' }] }))).toEqual([
      'scenario.steps.0.vm: no VM named "vmX"',
      'scenario.steps.0.device: no device named "nicX"',
    ]);
  });

  it('keeps guest buffers within the VM’s RAM since it last powered on', () => {
    const alloc = (buffer: string, size: string, vm = 'vm0') => ({ op: 'guest-alloc', vm, buffer, size });
    // vm0 has 4 MiB; sizes round up to whole pages, so the third buffer's one byte takes a page too many.
    expect(
      after((c) => (c.scenario = { steps: [alloc('a', '2MiB'), alloc('b', '0x1ff001'), alloc('c', '1')] })),
    ).toEqual([
      'scenario.steps.2.size: guest buffers of 4100KiB since vm0 powered on exceed its 4MiB of RAM',
    ]);
    expect(
      after(
        (c) =>
          (c.scenario = {
            steps: [alloc('a', '4MiB'), { op: 'vm-power', vm: 'vm0', state: 'off' }, alloc('b', '4MiB')],
          }),
      ),
    ).toEqual([]);
    // A buffer of an unknown VM, or on a VM without a known size, is not counted.
    expect(after((c) => (c.scenario = { steps: [alloc('a', '8MiB', 'vm9')] }))).toEqual([
      'scenario.steps.0.vm: no VM named "vm9"',
    ]);
  });
});
