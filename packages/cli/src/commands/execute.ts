/**
 * Builds a system from a validated config, runs its scenario, prints the run (human log or JSON) and
 * writes the trace when asked. Shared by `iommukit run` and `iommukit demo`.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  createSystem,
  jsonArgs,
  type PluginRegistry,
  runScenario,
  type ScenarioReport,
  type System,
  stringifyChromeTrace,
  type TraceRecord,
  Tracer,
  toChromeTrace,
  type ValidatedConfig,
} from '@iommukit/core';
import { vmm, vmScenarioExtension } from '@iommukit/vmm';
import { type CliIo, CommandError, EXIT_FAILURE, EXIT_OK } from '../io.js';
import { renderHeader, renderRecord, renderStats, renderStep } from '../render.js';

export interface ExecuteOptions {
  readonly json: boolean;
  readonly tracePath: string | undefined;
}

export async function execute(
  validated: ValidatedConfig,
  registry: PluginRegistry,
  io: CliIo,
  options: ExecuteOptions,
): Promise<number> {
  // Opened before the run, so an unwritable path is reported before any work (and output) is done.
  const trace = options.tracePath ? await openTrace(resolve(io.cwd, options.tracePath)) : undefined;
  try {
    return await run(validated, registry, io, options.json, trace);
  } finally {
    await trace?.file.close();
  }
}

/** The trace file a run writes into when it ends. */
interface TraceOutput {
  readonly path: string;
  readonly file: FileHandle;
}

async function openTrace(path: string): Promise<TraceOutput> {
  try {
    return { path, file: await open(path, 'w') };
  } catch (cause) {
    throw new CommandError(`cannot write the trace to ${path}: ${(cause as Error).message}`, { cause });
  }
}

async function run(
  validated: ValidatedConfig,
  registry: PluginRegistry,
  io: CliIo,
  json: boolean,
  trace: TraceOutput | undefined,
): Promise<number> {
  const tracePath = trace?.path;
  const tracer = new Tracer();
  tracer.startRecording();
  const system = await createSystem(validated, { registry, tracer, vmm });
  try {
    const bootRecords = [...tracer.records];
    if (!json) {
      io.out(renderHeader(system));
      for (const record of bootRecords) io.out(`${renderRecord(record)}\n`);
      io.out('\n');
    }
    const scenario = validated.config.scenario;
    const report: ScenarioReport | undefined = scenario
      ? runScenario(system, scenario, {
          extension: vmScenarioExtension(system),
          onStep: (step) => {
            if (!json) io.out(renderStep(step));
          },
        })
      : undefined;
    await trace?.file.writeFile(
      stringifyChromeTrace(toChromeTrace(tracer.records, `iommukit ${system.name}`)),
    );
    if (json) io.out(`${JSON.stringify(jsonReport(system, bootRecords, report, tracePath), null, 2)}\n`);
    else io.out(renderSummary(system, report, tracePath));
    return report === undefined || report.passed ? EXIT_OK : EXIT_FAILURE;
  } finally {
    await system.dispose();
  }
}

function renderSummary(
  system: System,
  report: ScenarioReport | undefined,
  tracePath: string | undefined,
): string {
  const lines: string[] = [''];
  if (!report) lines.push('no scenario in this config: the system was built and probed.');
  else {
    const passed = report.steps.filter((s) => s.ok).length;
    const total = report.steps.length + report.skipped;
    lines.push(
      `${report.passed ? '✓' : '✗'} ${passed}/${total} steps passed${report.skipped ? ` (${report.skipped} not run)` : ''}`,
    );
  }
  lines.push(renderStats(system).trimEnd());
  if (tracePath)
    lines.push(`trace written to ${tracePath} (open it in https://ui.perfetto.dev or chrome://tracing)`);
  return `${lines.join('\n')}\n`;
}

function jsonRecord(r: TraceRecord) {
  return {
    seq: r.seq,
    layer: r.layer,
    source: r.source,
    name: r.name,
    message: r.message,
    args: jsonArgs(r.args),
  };
}

function jsonReport(
  system: System,
  boot: readonly TraceRecord[],
  report: ScenarioReport | undefined,
  tracePath: string | undefined,
) {
  const { plugin } = system.validated;
  return {
    system: system.name,
    plugin: plugin.meta,
    passed: report?.passed ?? true,
    boot: boot.map(jsonRecord),
    steps: (report?.steps ?? []).map((s) => ({ ...s, trace: s.trace.map(jsonRecord) })),
    skipped: report?.skipped ?? 0,
    iommus: system.iommus.map((i) => ({
      name: i.name,
      stats: i.hardware.stats(),
      faults: i.faults.records.map((f) => ({ device: f.device ?? null, ...jsonArgs({ ...f.fault }) })),
      // Faults beyond the log's capacity: reported by the driver, not kept.
      faultsLost: i.faults.lost,
    })),
    memory: { allocatedBytes: system.bus.allocatedBytes },
    trace: tracePath ?? null,
  };
}
