/**
 * Runs a config's scenario against a built system, step by step, and reports what each step did and
 * whether it met its expectation. API misuse inside a step fails that step with the error's message; the
 * run stops at the first failed step, as later steps build on earlier ones. Steps the core does not run
 * itself (the VM steps) go to a {@link ScenarioExtension} (@iommukit/vmm provides one).
 */
import { type Hpa, hpa, iova, toHex } from '../address/address.js';
import type { Scenario, ScenarioStep } from '../config/scenario-schema.js';
import { formatSize } from '../config/units.js';
import type { DmaFailure, EndpointDevice } from '../device/endpoint.js';
import type { IommuDomain } from '../iommu/driver.js';
import type { System } from '../system/system.js';
import type { TraceRecord } from '../trace/trace-record.js';
import { runMsiSetup, sendMsi } from './msi-steps.js';
import { describeFailure, faultCode, StepFailure, sameBytes, showBytes } from './step-reporting.js';

export interface StepReport {
  readonly index: number;
  readonly op: ScenarioStep['op'];
  readonly note: string | undefined;
  readonly ok: boolean;
  /** One line saying what happened. */
  readonly summary: string;
  /** Trace records emitted while the step ran (empty when the tracer is disabled). */
  readonly trace: readonly TraceRecord[];
}

export interface ScenarioReport {
  readonly passed: boolean;
  readonly steps: readonly StepReport[];
  /** Steps not run because an earlier one failed. */
  readonly skipped: number;
}

interface Buffer {
  readonly base: Hpa;
  readonly size: bigint;
}

interface NamedDomain {
  readonly domain: IommuDomain;
  readonly iommu: string;
}

/** What the steps share beyond buffers and domains. */
export interface ScenarioContext {
  /** IOVAs named by `guest-map` steps, for `dma` steps that give `mapping`. */
  readonly mappings: Map<string, bigint>;
}

/** Runs the steps the core does not know, and owns devices the system does not (a VM's emulated ones). */
export interface ScenarioExtension {
  /** Runs `step` and returns its summary, or returns undefined when the step is not the extension's. */
  run(step: ScenarioStep, context: ScenarioContext): string | undefined;
  device?(name: string): EndpointDevice | undefined;
  /** Called after every step: deliver what is pending (VM interrupts). */
  afterStep?(): void;
}

export interface RunScenarioOptions {
  readonly onStep?: (report: StepReport) => void;
  readonly extension?: ScenarioExtension;
}

export function runScenario(
  system: System,
  scenario: Scenario,
  options: RunScenarioOptions = {},
): ScenarioReport {
  const { onStep, extension } = options;
  const buffers = new Map<string, Buffer>();
  const domains = new Map<string, NamedDomain>();
  const context: ScenarioContext = { mappings: new Map() };
  const steps: StepReport[] = [];
  let captured: TraceRecord[] = [];
  const subscription = system.tracer.onRecord((r) => captured.push(r));
  try {
    for (const [index, step] of scenario.steps.entries()) {
      captured = [];
      let ok = true;
      let summary: string;
      try {
        summary =
          extension?.run(step, context) ??
          runStep(system, step, buffers, domains, context, (name) => extension?.device?.(name));
        system.serviceInterrupts();
        extension?.afterStep?.();
      } catch (error) {
        ok = false;
        summary = (error as Error).message;
      }
      const report: StepReport = {
        index: index + 1,
        op: step.op,
        note: step.note,
        ok,
        summary,
        trace: captured,
      };
      steps.push(report);
      onStep?.(report);
      if (!ok) break;
    }
  } finally {
    subscription.dispose();
  }
  const passed = steps.length === scenario.steps.length && steps.every((s) => s.ok);
  return { passed, steps, skipped: scenario.steps.length - steps.length };
}

function runStep(
  system: System,
  step: ScenarioStep,
  buffers: Map<string, Buffer>,
  domains: Map<string, NamedDomain>,
  context: ScenarioContext,
  extensionDevice: (name: string) => EndpointDevice | undefined,
): string {
  const buffer = (name: string) => buffers.get(name)!;
  const domain = (name: string) => domains.get(name)!;
  switch (step.op) {
    case 'alloc': {
      const base = system.memory.allocBytes(Number(step.size));
      buffers.set(step.buffer, { base, size: step.size });
      return `buffer ${step.buffer}: ${formatSize(step.size)} of host memory at HPA ${toHex(base)}`;
    }
    case 'domain': {
      const d = system.iommu(step.iommu).driver.domainAllocPaging();
      domains.set(step.name, { domain: d, iommu: step.iommu });
      return `domain ${step.name}: paging domain #${d.id} on ${step.iommu}`;
    }
    case 'attach': {
      const { domain: d, iommu } = domain(step.domain);
      const device = system.device(step.device);
      // Another instance's domain is the driver's to accept where the plugin shares domains across instances.
      const shared =
        device.behindIommu !== undefined && system.iommuCore.sharesDomainsAcrossInstances(device);
      if (device.behindIommu !== iommu && !shared) {
        throw new StepFailure(
          `${step.device} is behind ${device.behindIommu ?? 'no IOMMU'}, domain ${step.domain} is on ${iommu}`,
        );
      }
      system.iommuCore.attachDevice(device, d);
      return `${step.device} (RID ${device.ridText}, stream ${toHex(device.streamId)}) attached to domain ${step.domain}`;
    }
    case 'detach': {
      const device = system.device(step.device);
      if (!device.behindIommu) throw new StepFailure(`${step.device} is not behind an IOMMU`);
      system.iommuCore.attachDevice(device, system.iommu(device.behindIommu).driver.blockedDomain);
      return `${step.device} detached (DMA blocked)`;
    }
    case 'map': {
      const buf = buffer(step.buffer);
      const size = step.size ?? buf.size - step.offset;
      if (step.offset + size > buf.size)
        throw new StepFailure(
          `map of ${formatSize(size)} at offset ${step.offset} overruns buffer ${step.buffer}`,
        );
      const paddr = hpa(buf.base + step.offset);
      domain(step.domain).domain.map(iova(step.iova), paddr, size, {
        read: step.prot.includes('r'),
        write: step.prot.includes('w'),
      });
      return `mapped IOVA ${toHex(step.iova)}+${formatSize(size)} → HPA ${toHex(paddr)} (${step.prot}) in ${step.domain}`;
    }
    case 'unmap': {
      const d = domain(step.domain).domain;
      const unmapped = d.unmap(iova(step.iova), step.size);
      d.iotlbSync();
      return `unmapped ${formatSize(unmapped)} at IOVA ${toHex(step.iova)} from ${step.domain}, IOTLB invalidated`;
    }
    case 'dma': {
      const device = extensionDevice(step.device) ?? system.device(step.device);
      const mapped = step.mapping === undefined ? undefined : context.mappings.get(step.mapping);
      if (step.mapping !== undefined && mapped === undefined)
        throw new StepFailure(`no mapping named "${step.mapping}" yet`);
      const address = mapped === undefined ? step.iova : mapped + step.offset;
      if (address === undefined) throw new StepFailure('a DMA step needs iova or mapping');
      return runDma(device, step, address);
    }
    case 'check': {
      const buf = buffer(step.buffer);
      const read = system.bus.readBytes(
        buf.base + step.offset,
        step.data.length,
        system.bus.counter('scenario'),
      );
      if (!read.ok) throw new StepFailure(`cannot read buffer ${step.buffer}: bus abort`);
      if (!sameBytes(read.data, step.data)) {
        throw new StepFailure(
          `buffer ${step.buffer}+${step.offset} holds ${showBytes(read.data)}, expected ${showBytes(step.data)}`,
        );
      }
      return `buffer ${step.buffer}+${step.offset} holds ${showBytes(step.data)} at HPA ${toHex(buf.base + step.offset)}`;
    }
    case 'msi-setup':
      return runMsiSetup(system, step.device, step.vectors);
    case 'msi':
      return sendMsi(system.device(step.device), step.vector, system.requireMsi(), step);
    default:
      throw new StepFailure(`step "${step.op}" needs the VMM (@iommukit/vmm), which this run does not have`);
  }
}

function runDma(device: EndpointDevice, step: Extract<ScenarioStep, { op: 'dma' }>, address: bigint): string {
  if (step.pageRequest) checkPageRequests(device, step.device);
  const options = {
    hpas: true,
    ...(step.pasid === undefined ? {} : { pasid: step.pasid }),
    ...(step.pageRequest ? { requestPages: true } : {}),
  };
  const where = `${step.device} DMA ${step.access} at IOVA ${toHex(address)}${step.mapping ? ` (${step.mapping}+${toHex(step.offset)})` : ''}`;
  let result: Awaited<ReturnType<typeof device.dmaRead>> | Awaited<ReturnType<typeof device.dmaWrite>>;
  if (step.access === 'write') {
    if (!step.data) throw new StepFailure('a DMA write needs data');
    result = device.dmaWrite(address, step.data, options);
  } else {
    const length = step.length ?? step.data?.length;
    if (!length) throw new StepFailure('a DMA read needs length or data');
    result = device.dmaRead(address, length, options);
  }
  if (result.ok) {
    if (step.expect !== 'ok') throw new StepFailure(`${where} succeeded, expected ${step.expect}`);
    const hpas = result.hpas.map((a) => toHex(a)).join(', ');
    if ('data' in result) {
      if (step.data && !sameBytes(result.data, step.data)) {
        throw new StepFailure(`${where} read ${showBytes(result.data)}, expected ${showBytes(step.data)}`);
      }
      return `${where} → HPA ${hpas}: read ${showBytes(result.data)}`;
    }
    return `${where} → HPA ${hpas}: wrote ${result.bytes} bytes`;
  }
  const outcome = describeFailure(result);
  if (step.expect === 'ok') throw new StepFailure(`${where} failed: ${outcome}`);
  const code = faultCode(result);
  if (failureKind(result) !== step.expect)
    throw new StepFailure(`${where}: ${outcome}, expected ${step.expect}`);
  if (step.fault && code !== step.fault) {
    throw new StepFailure(`${where}: ${outcome}, expected fault ${step.fault}`);
  }
  return `${where} → ${outcome} (as expected)`;
}

/** A `pageRequest` DMA needs a device that can send one: PRI, enabled, after a failed ATS translation. */
function checkPageRequests(device: EndpointDevice, name: string): void {
  if (!device.pri) throw new StepFailure(`${name} has no PRI capability: it cannot send page requests`);
  if (!device.atsEnabled)
    throw new StepFailure(`${name} has ATS off: a page request follows a failed ATS translation`);
  if (!device.pri.enabled)
    throw new StepFailure(
      `${name} has PRI off: its IOMMU's driver enables it when a HWPT with a fault queue is attached`,
    );
}

/** The `expect` a failed DMA meets; running out of page request credits meets none. */
function failureKind(failure: DmaFailure): string {
  switch (failure.reason) {
    case 'fault':
    case 'stalled':
      return 'fault';
    case 'abort':
    case 'page-request':
    case 'pri-exhausted':
      return failure.reason;
  }
}
