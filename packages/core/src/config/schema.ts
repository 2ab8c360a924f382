/**
 * The configuration of one system (docs/design.md §5): which vendor plugin, its IOMMU instances and their
 * options, the physical memory map, endpoint devices, the MSI module, VMs, and an optional scenario.
 * Every object is strict (an unknown key is an error, so typos are caught) and cross-references are
 * checked, so a config that validates can be built. docs/configuration.md is generated from this file.
 */
import { z } from 'zod';
import { addressField, intField, nameField, ridField, sizeField } from './fields.js';
import { ScenarioSchema } from './scenario-schema.js';
import { formatSize } from './units.js';
import { VmMsiSchema } from './vm-msi-schema.js';

export const RamRegionSchema = z
  .strictObject({
    name: nameField.describe('Region name, unique in the memory map.'),
    base: addressField.describe('Physical base address (4 KiB aligned).'),
    size: sizeField.describe('Size in bytes (a multiple of 4 KiB), e.g. "2GiB".'),
  })
  .describe('A RAM region on the physical bus.');

export const IommuInstanceSchema = z
  .strictObject({
    name: nameField.describe('Instance name, used by devices and scenario steps.'),
    base: addressField.describe('Physical base of the instance register window.'),
    options: z
      .record(z.string(), z.unknown())
      .default({})
      .describe("Vendor options, validated by the plugin's own schema (see docs/vendors/)."),
    msiDeviceId: intField(0, 2 ** 32 - 1)
      .optional()
      .describe(
        "DeviceID the instance's own MSIs carry to the MSI controller (IORT ID mapping); default 0xFFFF − its index.",
      ),
  })
  .describe('One IOMMU instance of the selected vendor.');

export const DeviceSchema = z
  .strictObject({
    name: nameField.describe('Device name.'),
    rid: ridField.describe('PCI requester ID "bb:dd.f".'),
    iommu: nameField
      .optional()
      .describe('IOMMU instance translating its DMA; absent: DMA goes straight to the bus.'),
    streamId: intField(0, 2 ** 32 - 1)
      .optional()
      .describe("ID the IOMMU sees; default: the plugin's mapping of the RID (the RID itself for most)."),
    pasidBits: intField(0, 20).default(0).describe('PASID capability width in bits; 0: no PASID capability.'),
    ats: z
      .strictObject({ atcEntries: intField(1, 65536).default(64).describe('ATC capacity in entries.') })
      .optional()
      .describe('ATS capability with an address translation cache.'),
    pri: z
      .strictObject({
        maxOutstanding: intField(1, 65536).default(16).describe('Outstanding page request allocation.'),
      })
      .optional()
      .describe('PRI (page request interface) capability.'),
    msiVectors: intField(0, 2048).default(4).describe('MSI-X table size; 0: no MSI-X capability.'),
    canStall: z
      .boolean()
      .default(false)
      .describe(
        'The device tolerates stalled transactions (firmware "dma-can-stall"; platform devices, never PCIe).',
      ),
  })
  .describe('A PCI-like endpoint that does DMA.');

export const MsiSchema = z
  .strictObject({
    controller: z
      .string()
      .min(1)
      .default('none')
      .describe(
        'MSI controller: "none", a built-in module ("gic-its", from @iommukit/gic-its; "x86-apic", from @iommukit/x86-apic), a module path (relative to the config file) or a package.',
      ),
    options: z
      .record(z.string(), z.unknown())
      .default({})
      .describe("The controller's options, validated by its own schema (see docs/msi.md)."),
  })
  .describe('The MSI module the system wires: the interrupt controller device MSIs reach.');

export const ViommuFrontendSchema = z
  .strictObject({
    frontend: z
      .string()
      .min(1)
      .default('vendor')
      .describe(
        'vIOMMU front-end the VMM places in VMs: "vendor" (the vendor plugin\'s own personality), another built-in, a module path (relative to the config file) or a package.',
      ),
  })
  .describe("The VMM's vIOMMU front-end: what traps a guest's programming of its vIOMMU.");

export const ViommuSchema = z
  .strictObject({
    mode: z
      .enum(['emulated', 'nested', 'shadow'])
      .describe(
        '"nested": fronts the assigned devices, the physical IOMMU translates (accelerated); "shadow": fronts the assigned devices, the VMM replays the guest\'s invalidations as IOAS maps (VT-d caching mode); "emulated": fronts the emulated devices, a model on guest memory translates.',
      ),
  })
  .describe("A vIOMMU the guest sees (the vendor plugin's personality).");

export const VmSchema = z
  .strictObject({
    name: nameField.describe('VM name.'),
    memory: sizeField.describe('Guest RAM size, a multiple of 2 MiB, e.g. "1GiB".'),
    viommus: z
      .array(ViommuSchema)
      .default([])
      .describe('The vIOMMUs the guest sees, at most one per mode; empty: no vIOMMU.'),
    devices: z
      .array(nameField)
      .default([])
      .describe('Host devices assigned to the VM (VFIO with iommufd); guest RIDs 00:01.0 upward.'),
    cpus: intField(1, 64)
      .default(2)
      .describe('vCPUs (the virtual interrupt controller has one redistributor each).'),
    msi: VmMsiSchema.default({ mode: 'sw-msi', rmr: true }),
    emulatedDevices: z
      .array(nameField)
      .default([])
      .describe(
        'Devices the VMM emulates for the guest (names unique system-wide); guest RIDs 00:10.0 upward.',
      ),
  })
  .describe('A virtual machine (built by @iommukit/vmm); it starts powered off.');

const SystemConfigObject = z
  .strictObject({
    name: nameField.default('system').describe('System name, shown in logs and traces.'),
    seed: intField(0, 2 ** 32 - 1)
      .default(1)
      .describe('Seed for every pseudo-random choice; same seed, same trace.'),
    plugin: z
      .string({ error: 'expected a built-in plugin name ("mock") or a module path ("./my-plugin.js")' })
      .min(1)
      .describe('Vendor plugin: a built-in name, a module path (relative to the config file), or a package.'),
    memory: z
      .strictObject({
        ram: z
          .array(RamRegionSchema)
          .min(1, { error: 'expected at least one RAM region' })
          .describe('RAM regions.'),
      })
      .describe('The physical memory map.'),
    iommus: z.array(IommuInstanceSchema).default([]).describe('IOMMU instances of the selected vendor.'),
    devices: z.array(DeviceSchema).default([]).describe('Endpoint devices.'),
    msi: MsiSchema.default({ controller: 'none', options: {} }),
    viommu: ViommuFrontendSchema.default({ frontend: 'vendor' }),
    vms: z.array(VmSchema).default([]).describe('Virtual machines.'),
    scenario: ScenarioSchema.optional(),
  })
  .describe('An iommukit system.');

export type SystemConfigInput = z.input<typeof SystemConfigObject>;
export type SystemConfig = z.output<typeof SystemConfigObject>;
export type DeviceConfig = SystemConfig['devices'][number];
export type IommuInstanceConfig = SystemConfig['iommus'][number];

type Ctx = z.RefinementCtx<SystemConfig>;
type Path = (string | number)[];
type Item = Record<string, unknown>;

const PAGE = 4096n;
const PHYS_LIMIT = 1n << 52n;

/**
 * The system schema with its cross-reference checks. The checks run even when some fields failed
 * (`when`), so one pass reports every problem; they therefore read the partly parsed value defensively
 * and skip whatever a field-level issue already covers.
 */
export const SystemConfigSchema = SystemConfigObject.superRefine(
  (config, ctx) => checkReferences(config as unknown as Item, ctx),
  {
    when: () => true,
  },
);

const items = (value: unknown): [Item, number][] =>
  Array.isArray(value)
    ? value.flatMap((v, i): [Item, number][] => (typeof v === 'object' && v !== null ? [[v as Item, i]] : []))
    : [];
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const big = (value: unknown): bigint | undefined => (typeof value === 'bigint' ? value : undefined);

/** Cross-reference and placement checks that a single field cannot express. */
function checkReferences(config: Item, ctx: Ctx): void {
  // A document that is not a mapping (null, a list) already failed the object schema.
  if (typeof config !== 'object' || config === null) return;
  const issue = (path: Path, message: string) => ctx.addIssue({ code: 'custom', path, message });
  const names = new Map<string, string>();
  const claim = (name: unknown, path: Path) => {
    if (typeof name !== 'string') return;
    const other = names.get(name);
    if (other) issue(path, `name "${name}" is already used by ${other}`);
    else names.set(name, path.join('.').replace(/\.(\d+)/g, '[$1]'));
  };

  const ram = items((config.memory as Item | undefined)?.ram);
  for (const [r, i] of ram) {
    claim(r.name, ['memory', 'ram', i, 'name']);
    const base = big(r.base);
    const size = big(r.size);
    if (base !== undefined && base % PAGE !== 0n)
      issue(['memory', 'ram', i, 'base'], 'expected a 4 KiB aligned address');
    if (size !== undefined && (size % PAGE !== 0n || size === 0n))
      issue(['memory', 'ram', i, 'size'], 'expected a non-zero multiple of 4 KiB');
    if (base === undefined || size === undefined) continue;
    if (base + size > PHYS_LIMIT)
      issue(['memory', 'ram', i], 'region ends above the 52-bit physical address space');
    for (const [o, j] of ram) {
      const oBase = big(o.base);
      const oSize = big(o.size);
      if (j >= i || oBase === undefined || oSize === undefined) continue;
      if (base < oBase + oSize && oBase < base + size)
        issue(['memory', 'ram', i], `overlaps memory.ram[${j}] "${text(o.name)}"`);
    }
  }

  const emulatedNames = new Map<string, string>();
  const iommus = new Set<string>();
  for (const [m, i] of items(config.iommus)) {
    claim(m.name, ['iommus', i, 'name']);
    if (text(m.name)) iommus.add(m.name as string);
    const base = big(m.base);
    if (base !== undefined && base >= PHYS_LIMIT)
      issue(['iommus', i, 'base'], 'expected an address below 2^52 (the 52-bit physical address space)');
    else if (base !== undefined && base % PAGE !== 0n)
      issue(['iommus', i, 'base'], 'expected a 4 KiB aligned address');
  }

  const rids = new Map<number, number>();
  const devices = new Set<string>();
  const pri = new Set<string>();
  for (const [d, i] of items(config.devices)) {
    claim(d.name, ['devices', i, 'name']);
    if (text(d.name)) devices.add(d.name as string);
    if (text(d.name) && d.ats !== undefined && d.pri !== undefined) pri.add(d.name as string);
    const iommu = text(d.iommu);
    if (iommu !== undefined && !iommus.has(iommu)) {
      issue(
        ['devices', i, 'iommu'],
        `no IOMMU instance named "${iommu}" (have: ${[...iommus].join(', ') || 'none'})`,
      );
    }
    if (typeof d.rid !== 'number') continue;
    const other = rids.get(d.rid);
    if (other !== undefined)
      issue(['devices', i, 'rid'], `requester ID is already used by devices[${other}]`);
    else rids.set(d.rid, i);
  }

  const assigned = new Map<string, string>();
  const vms = new Set<string>();
  const vmMemory = new Map<string, bigint>();
  const deviceIommu = new Map(
    items(config.devices).flatMap(([d]) =>
      text(d.name) ? [[d.name as string, text(d.iommu)] as const] : [],
    ),
  );
  for (const [vm, i] of items(config.vms)) {
    claim(vm.name, ['vms', i, 'name']);
    if (text(vm.name)) vms.add(vm.name as string);
    const memory = big(vm.memory);
    if (text(vm.name) && memory !== undefined) vmMemory.set(vm.name as string, memory);
    if (memory !== undefined && (memory === 0n || memory % (2n * 1024n * 1024n) !== 0n))
      issue(['vms', i, 'memory'], 'expected a non-zero multiple of 2 MiB');
    const modes = items(vm.viommus).map(([v]) => text(v.mode));
    modes.forEach((mode, j) => {
      if (mode !== undefined && modes.indexOf(mode) !== j)
        issue(['vms', i, 'viommus', j, 'mode'], `the VM already has a ${mode} vIOMMU`);
    });
    const list = Array.isArray(vm.devices) ? vm.devices : [];
    const behind = new Set<string>();
    list.forEach((name: unknown, j: number) => {
      if (typeof name !== 'string') return;
      if (!devices.has(name)) issue(['vms', i, 'devices', j], `no device named "${name}"`);
      else if (deviceIommu.get(name) === undefined)
        issue(['vms', i, 'devices', j], `device "${name}" is behind no IOMMU, so it cannot be assigned`);
      const iommu = deviceIommu.get(name);
      if (iommu !== undefined) behind.add(iommu);
      const owner = assigned.get(name);
      if (owner) issue(['vms', i, 'devices', j], `device "${name}" is already assigned to VM "${owner}"`);
      else assigned.set(name, text(vm.name) ?? `vms[${i}]`);
    });
    if (modes.includes('nested') && behind.size > 1)
      issue(['vms', i, 'devices'], 'a nested vIOMMU needs every assigned device behind one IOMMU instance');
    for (const fronting of ['nested', 'shadow'] as const)
      if (modes.includes(fronting) && list.length === 0)
        issue(['vms', i, 'viommus'], `a ${fronting} vIOMMU fronts assigned devices, and the VM has none`);
    if (modes.includes('nested') && modes.includes('shadow'))
      issue(['vms', i, 'viommus'], 'a nested and a shadow vIOMMU cannot both front the assigned devices');
    const emulated = Array.isArray(vm.emulatedDevices) ? vm.emulatedDevices : [];
    emulated.forEach((name: unknown, j: number) => {
      claim(name, ['vms', i, 'emulatedDevices', j]);
      if (typeof name === 'string') emulatedNames.set(name, text(vm.name) ?? '');
    });
  }
  checkScenario(
    items((config.scenario as Item | undefined)?.steps),
    { devices, pri, iommus, vms, vmMemory, emulatedNames },
    issue,
  );
}

interface ScenarioNames {
  readonly devices: Set<string>;
  /** Devices with ATS and PRI: they can send page requests. */
  readonly pri: Set<string>;
  readonly iommus: Set<string>;
  readonly vms: Set<string>;
  /** Guest RAM size by VM name. */
  readonly vmMemory: Map<string, bigint>;
  /** Emulated devices by name, with their VM. */
  readonly emulatedNames: Map<string, string>;
}

/** Scenario steps may only use devices and instances that exist, and objects made by earlier steps. */
function checkScenario(
  steps: [Item, number][],
  names: ScenarioNames,
  issue: (path: Path, message: string) => void,
): void {
  const { devices, pri, iommus, vms, vmMemory, emulatedNames } = names;
  // Guest buffers are never freed while a VM runs; powering it (off or on) starts a fresh guest RAM.
  const guestBytes = new Map<string, bigint>();
  const anyDevice = new Set([...devices, ...emulatedNames.keys()]);
  const domains = new Set<string>();
  const buffers = new Set<string>();
  const guestBuffers = new Set<string>();
  const mappings = new Set<string>();
  for (const [step, i] of steps) {
    const need = (kind: string, set: Set<string>, key: string, hint = '') => {
      const name = text(step[key]);
      if (name !== undefined && !set.has(name))
        issue(['scenario', 'steps', i, key], `no ${kind} named "${name}"${hint}`);
    };
    /** A configured device named by `key` must have ATS and PRI (an emulated one is checked when it runs). */
    const needPri = (key: string) => {
      const name = text(step.device);
      if (name !== undefined && devices.has(name) && !pri.has(name))
        issue(
          ['scenario', 'steps', i, key],
          `device "${name}" cannot send page requests: it needs ats and pri in its devices entry`,
        );
    };
    const earlierDomain = ' made by an earlier "domain" step';
    const earlierBuffer = ' made by an earlier "alloc" step';
    const earlierGuestBuffer = ' made by an earlier "guest-alloc" step';
    const earlierMapping = ' made by an earlier "guest-map" step';
    switch (step.op) {
      case 'alloc':
        if (text(step.buffer)) buffers.add(step.buffer as string);
        break;
      case 'domain':
        need('IOMMU instance', iommus, 'iommu');
        if (text(step.name)) domains.add(step.name as string);
        break;
      case 'attach':
        need('device', devices, 'device');
        need('domain', domains, 'domain', earlierDomain);
        break;
      case 'detach':
        need('device', devices, 'device');
        break;
      case 'dma':
        need('device', anyDevice, 'device');
        need('mapping', mappings, 'mapping', earlierMapping);
        if ((step.iova === undefined) === (step.mapping === undefined))
          issue(['scenario', 'steps', i], 'a dma step takes exactly one of iova and mapping');
        if (step.expect === 'page-request' && step.pageRequest !== true)
          issue(['scenario', 'steps', i, 'expect'], 'expect: page-request needs pageRequest: true');
        if (step.pageRequest === true) needPri('pageRequest');
        break;
      case 'map':
        need('domain', domains, 'domain', earlierDomain);
        need('buffer', buffers, 'buffer', earlierBuffer);
        break;
      case 'unmap':
        need('domain', domains, 'domain', earlierDomain);
        break;
      case 'check':
        need('buffer', buffers, 'buffer', earlierBuffer);
        break;
      case 'msi-setup':
      case 'msi':
        need('device', devices, 'device');
        break;
      case 'vm-power':
        if (text(step.vm)) guestBytes.set(step.vm as string, 0n);
        need('VM', vms, 'vm');
        break;
      case 'guest-faults':
      case 'guest-op':
        need('VM', vms, 'vm');
        break;
      case 'page-responses':
        need('VM', vms, 'vm');
        need('device', devices, 'device');
        needPri('device');
        break;
      case 'guest-msi-setup':
      case 'guest-msi':
      case 'guest-irq-affinity':
      case 'guest-irq-config':
        need('VM', vms, 'vm');
        need('device', devices, 'device');
        break;
      case 'guest-alloc': {
        need('VM', vms, 'vm');
        if (text(step.buffer)) guestBuffers.add(step.buffer as string);
        const vm = text(step.vm);
        const size = big(step.size);
        const memory = vm === undefined ? undefined : vmMemory.get(vm);
        if (vm === undefined || size === undefined || memory === undefined) break;
        const used = (guestBytes.get(vm) ?? 0n) + ((size + PAGE - 1n) / PAGE) * PAGE;
        guestBytes.set(vm, used);
        if (used > memory)
          issue(
            ['scenario', 'steps', i, 'size'],
            `guest buffers of ${formatSize(used)} since ${vm} powered on exceed its ${formatSize(memory)} of RAM`,
          );
        break;
      }
      case 'guest-map':
        need('VM', vms, 'vm');
        need('device', anyDevice, 'device');
        need('guest buffer', guestBuffers, 'buffer', earlierGuestBuffer);
        if (text(step.mapping)) mappings.add(step.mapping as string);
        break;
      case 'guest-unmap':
        need('VM', vms, 'vm');
        need('mapping', mappings, 'mapping', earlierMapping);
        break;
      case 'guest-check':
        need('VM', vms, 'vm');
        need('guest buffer', guestBuffers, 'buffer', earlierGuestBuffer);
        break;
    }
  }
}
