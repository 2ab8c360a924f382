/**
 * `iommukit vendors`: every available plugin with its capabilities and the identification registers of a
 * default instance (built on a scratch bus, probed by nothing), so users can compare vendors side by side;
 * then the MSI controllers and vIOMMU front-ends a config can select.
 */
import {
  hpa,
  InterruptController,
  type IommuPlugin,
  MemoryBus,
  type PluginRegistry,
  Tracer,
} from '@iommukit/core';
import { type CliIo, EXIT_OK } from '../io.js';

const SCRATCH_BASE = 0x1000_0000n;

export async function vendorsCommand(
  registry: PluginRegistry,
  io: CliIo,
  json: boolean,
  extra: readonly string[],
): Promise<number> {
  const plugins = await registry.loadBuiltins();
  for (const spec of extra) plugins.push(await registry.load(spec, io.cwd));
  const rows = plugins.map((plugin) => ({
    ...plugin.meta,
    capabilities: plugin.capabilities,
    registers: identify(plugin),
  }));
  if (json) {
    io.out(`${JSON.stringify(rows, null, 2)}\n`);
    return EXIT_OK;
  }
  for (const row of rows) {
    const caps = row.capabilities;
    io.out(`${row.name} ${row.version} — ${row.vendor}${row.description ? `: ${row.description}` : ''}\n`);
    io.out(
      `  stages: ${caps.stages.join(', ')} · PASID: ${yes(caps.pasid)} · ATS: ${yes(caps.ats)} · PRI: ${yes(caps.pri)}`,
    );
    io.out(
      ` · dirty tracking: ${yes(caps.dirtyTracking)} · interrupt remapping: ${yes(caps.interruptRemapping ?? false)} · domains across instances: ${yes(caps.crossInstanceDomains ?? false)}\n`,
    );
    io.out(
      `  PASID table owner when nesting: ${caps.pasidTableOwner} · vIOMMU modes: ${caps.viommuModes.join(', ') || 'none'}\n`,
    );
    io.out(
      `  default instance registers: ${Object.entries(row.registers)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}\n\n`,
    );
  }
  const controllers = await Promise.all(
    registry.msiModuleNames().map((name) => registry.loadMsiModule(name)),
  );
  if (controllers.length > 0) {
    io.out('MSI controllers (msi.controller):\n');
    for (const module of controllers) io.out(`  ${module.name} — ${module.description}\n`);
  }
  const frontends = await Promise.all(
    registry.viommuFrontendNames().map((name) => registry.loadViommuFrontend(name)),
  );
  io.out('\nvIOMMU front-ends (viommu.frontend):\n');
  for (const module of frontends) io.out(`  ${module.name} — ${module.description}\n`);
  return EXIT_OK;
}

function identify(plugin: IommuPlugin): Readonly<Record<string, string>> {
  const options = plugin.optionsSchema ? plugin.optionsSchema.parse({}) : {};
  const interrupts = new InterruptController();
  const hardware = plugin.createHardware({
    instance: 'scratch',
    base: hpa(SCRATCH_BASE),
    options,
    bus: new MemoryBus(),
    tracer: new Tracer(),
    irq: (line) => interrupts.line(line),
  });
  return hardware.identify();
}

const yes = (flag: boolean) => (flag ? 'yes' : 'no');
