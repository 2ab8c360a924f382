/**
 * The `iommukit` command line. `main` returns the exit code instead of exiting, so tests run it
 * in-process: 0 success, 1 a failed run or invalid input, 2 a usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, PluginError } from '@iommukit/core';
import { builtinRegistry } from './builtin-plugins.js';
import { benchCommand } from './commands/bench.js';
import { demoCommand } from './commands/demo.js';
import { runCommand } from './commands/run.js';
import { validateCommand } from './commands/validate.js';
import { vendorsCommand } from './commands/vendors.js';
import { type CliIo, CommandError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './io.js';
import { renderIssues } from './render.js';

const HELP: Readonly<Record<string, string>> = {
  '': `iommukit — a multi-vendor model of the IOMMU virtualization stack

Usage: iommukit <command> [options]

Commands:
  demo               run the built-in default config
  run <config>       build the system a config describes and run its scenario
  validate <config>  check a config and print every problem with its path
  vendors [plugin…]  list available vendor plugins, their capabilities and ID registers
  bench [suite…]     run the benchmark suites (source checkout), each case against its baseline

Options:
  --json             machine-readable output on stdout (and nothing else there)
  --trace <file>     write a Chrome trace-event file of the run (demo, run)
  --quick            one short round per benchmark case (bench)
  -h, --help         help for iommukit or a command
  -v, --version      print the version

Exit codes: 0 success, 1 failed run or invalid input, 2 usage error.
`,
  demo: `Usage: iommukit demo [--json] [--trace <file>]

Runs the built-in default config: a device does DMA through an IOMMU, the data lands in host memory,
and a DMA after unmap faults. Prints every step: driver programming, hardware walks, faults.
`,
  run: `Usage: iommukit run <config.yaml|config.json> [--json] [--trace <file>]

Builds the system the config describes and runs its scenario. Exits 1 if the config is invalid or a
step does not have the outcome it expects.
`,
  validate: `Usage: iommukit validate <config.yaml|config.json> [--json]

Prints every problem in the config, each with its path (vms[0].viommus[0].mode: …). Exits 1 on any.
`,
  vendors: `Usage: iommukit vendors [plugin-path…] [--json]

Lists the built-in vendor plugins (and plugins at the given module paths) with their capabilities and
the identification registers of a default instance.
`,
  bench: `Usage: iommukit bench [suite…] [--json] [--quick]

Runs the benchmark suites of a source checkout (packages/<name>/bench/*.bench.ts), each in its own
process: every case is measured against a bare baseline of its group in the same run, in 3 rounds, and
reported as a ratio (baseline time ÷ case time; 1× is as fast as the baseline), with the spread over the
rounds and the project's target where one is set. A suite argument is a path to a suite file or text in a
suite's path (smmuv3, walk). --quick runs one short round: a check that suites run, not a measurement.
Speed never changes the exit code; a suite that fails to load or throws exits 1.
`,
};

const OPTIONS = {
  json: { type: 'boolean' },
  trace: { type: 'string' },
  quick: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** The package version, read from package.json (one level above both src/ and dist/). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  return String(pkg.version);
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    // An unknown option after a command gets that command's help, not the overview.
    const command = commandOf(argv);
    const prefix = command === undefined ? 'iommukit' : `iommukit ${command}`;
    io.err(`${prefix}: ${(error as Error).message}\n\n${HELP[command ?? '']}`);
    return EXIT_USAGE;
  }
  const { command, args, json, trace, quick, help } = parsed;
  if (parsed.version) {
    io.out(`iommukit ${version()}\n`);
    return EXIT_OK;
  }
  if (command === undefined && !help) {
    io.err(HELP['']!);
    return EXIT_USAGE;
  }
  if (help || command === undefined || command === 'help') {
    const topic = command === 'help' ? (args[0] ?? '') : (command ?? '');
    io.out(HELP[topic] ?? HELP['']!);
    return EXIT_OK;
  }
  try {
    return await dispatch(command, args, { json, trace, quick }, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`iommukit ${command}: ${error.message}\n\n${HELP[command] ?? HELP['']}`);
      return EXIT_USAGE;
    }
    if (error instanceof ConfigError) {
      io.err(renderIssues('config', error.issues));
      return EXIT_FAILURE;
    }
    if (error instanceof PluginError) {
      io.err(`iommukit: ${error.message}\n`);
      return EXIT_FAILURE;
    }
    if (error instanceof CommandError) {
      io.err(`iommukit ${command}: ${error.message}\n`);
      return EXIT_FAILURE;
    }
    throw error;
  }
}

function parse(argv: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  const [command, ...args] = positionals;
  return {
    command,
    args,
    json: values.json ?? false,
    trace: values.trace,
    quick: values.quick ?? false,
    help: values.help ?? false,
    version: values.version ?? false,
  };
}

/** The command word of an argv that failed strict parsing, when it names a known command. */
function commandOf(argv: readonly string[]): string | undefined {
  const { positionals } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    allowPositionals: true,
    strict: false,
  });
  const command = positionals[0];
  return command !== undefined && command !== '' && command in HELP ? command : undefined;
}

async function dispatch(
  command: string,
  args: string[],
  { json, trace, quick }: { json: boolean; trace: string | undefined; quick: boolean },
  io: CliIo,
): Promise<number> {
  const registry = builtinRegistry();
  const one = () => {
    if (args.length !== 1) throw new UsageError(`expected one config file, got ${args.length}`);
    return args[0]!;
  };
  const noTrace = () => {
    if (trace !== undefined)
      throw new UsageError('--trace applies to commands that run a system (demo, run)');
  };
  if (quick && command !== 'bench') throw new UsageError('--quick applies to bench');
  switch (command) {
    case 'demo':
      if (args.length > 0) throw new UsageError('demo takes no arguments');
      return demoCommand(registry, io, { json, tracePath: trace });
    case 'run':
      return runCommand(one(), registry, io, { json, tracePath: trace });
    case 'validate':
      noTrace();
      return validateCommand(one(), registry, io, json);
    case 'vendors':
      noTrace();
      return vendorsCommand(registry, io, json, args);
    case 'bench':
      noTrace();
      return benchCommand(io, args, { json, quick });
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}
