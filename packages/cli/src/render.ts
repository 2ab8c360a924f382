/** Human-readable rendering of runs: one line per trace record, grouped under the step that caused it. */
import {
  type ConfigIssue,
  formatSize,
  type StepReport,
  type System,
  type TraceRecord,
  toHex,
} from '@iommukit/core';

const LAYER_WIDTH = 7;

export function renderRecord(record: TraceRecord): string {
  const seq = String(record.seq).padStart(4);
  return `  ${seq}  ${record.layer.padEnd(LAYER_WIDTH)} ${record.source.padEnd(8)} ${record.message}`;
}

export function renderStep(step: StepReport): string {
  const lines = [`step ${step.index} · ${step.op}${step.note ? ` — ${step.note}` : ''}`];
  for (const record of step.trace) lines.push(renderRecord(record));
  lines.push(`  ${step.ok ? '✓' : '✗'} ${step.summary}`);
  return `${lines.join('\n')}\n`;
}

export function renderHeader(system: System): string {
  const { plugin } = system.validated;
  const iommus = system.iommus.map((i) => i.name).join(', ') || 'none';
  const devices =
    system.devices
      .map((d) => `${d.name} (${d.ridText}${d.behindIommu ? ` → ${d.behindIommu}` : ''})`)
      .join(', ') || 'none';
  const controller = system.msi;
  const msi =
    controller &&
    `${controller.kind}, doorbell${controller.doorbells.length > 1 ? 's' : ''} ${controller.doorbells.map((d) => `${d.name} ${toHex(d.address)}`).join(', ')}, ${controller.cpus.length} CPUs`;
  const vms = system.validated.config.vms.map(
    (vm) =>
      `${vm.name} (${formatSize(vm.memory)}${controller ? `, MSI ${vm.msi.mode}` : ''}${vm.devices.length ? `, assigned ${vm.devices.join(', ')}` : ''}${vm.emulatedDevices.length ? `, emulated ${vm.emulatedDevices.join(', ')}` : ''}${vm.viommus.length ? `, ${vm.viommus.map((v) => v.mode).join(' + ')} vIOMMU` : ''})`,
  );
  return [
    `system "${system.name}" · plugin ${plugin.meta.name} ${plugin.meta.version} (${plugin.meta.vendor})`,
    `  IOMMUs: ${iommus}`,
    `  devices: ${devices}`,
    ...(msi ? [`  MSI: ${msi}`] : []),
    ...(vms.length ? [`  VMs: ${vms.join(', ')}`] : []),
    '',
  ].join('\n');
}

export function renderStats(system: System): string {
  const lines: string[] = [];
  for (const instance of system.iommus) {
    const stats = Object.entries(instance.hardware.stats())
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    lines.push(`  ${instance.name}: ${stats}`);
    const { length, lost } = instance.faults;
    const dropped = lost
      ? `, ${lost} of them not kept (the fault log holds ${instance.faults.capacity})`
      : '';
    lines.push(`  ${instance.name}: ${length + lost} fault(s) reported to the driver${dropped}`);
  }
  lines.push(`  host memory allocated by the model: ${system.bus.allocatedBytes} bytes`);
  return `${lines.join('\n')}\n`;
}

export function renderIssues(source: string, issues: readonly ConfigIssue[]): string {
  const noun = issues.length === 1 ? 'problem' : 'problems';
  return `${source}: ${issues.length} ${noun}\n${issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')}\n`;
}
