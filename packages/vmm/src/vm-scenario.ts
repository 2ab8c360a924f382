/**
 * The VM steps of a scenario (`vm-power`, `guest-alloc`, `guest-map`, `guest-unmap`, `guest-check`,
 * `guest-faults`, `page-responses`, `guest-op`, and the MSI steps `guest-msi-setup`, `guest-msi`, `guest-irq-affinity`,
 * `guest-irq-config`), run against the VMs of a system, and the VMs' emulated devices for `dma`
 * steps. After every step the running VMs get their interrupts delivered (host, vIOMMU, guest), so a fault
 * a DMA caused is in the guest's log by the next step.
 */
import {
  formatSize,
  type ScenarioExtension,
  type ScenarioStep,
  StepFailure,
  type System,
  sameBytes,
  sendMsi,
  showBytes,
  toHex,
} from '@iommukit/core';
import type { Vm } from './vm.js';

interface GuestBuffer {
  readonly vm: string;
  readonly gpa: bigint;
  readonly size: bigint;
}

export function vmScenarioExtension(system: System): ScenarioExtension {
  const vm = (name: string) => system.vm(name) as Vm;
  const buffers = new Map<string, GuestBuffer>();
  const mappingDevice = new Map<string, string>();
  /** How many PRI responses of each device earlier `page-responses` steps took. */
  const responsesSeen = new Map<string, number>();

  const run = (step: ScenarioStep, mappings: Map<string, bigint>): string | undefined => {
    switch (step.op) {
      case 'vm-power': {
        const v = vm(step.vm);
        if (step.state === 'off') {
          v.powerOff();
          return `${step.vm} powered off: guest, vIOMMU objects, devices and guest RAM released on the host`;
        }
        v.powerOn({
          ...(step.viommus ? { viommus: step.viommus } : {}),
          ...(step.msi ? { msi: step.msi } : {}),
        });
        // Stryker disable next-line ArrayDeclaration: a VM made from a config always has a vIOMMU list (the schema defaults it to [])
        const modes = step.viommus ?? v.spec.viommus ?? [];
        return `${step.vm} powered on: ${formatSize(BigInt(v.spec.memory))} of guest RAM at host ${toHex(v.memory.hostBase)}, ${v.assigned.length} assigned device(s)${modes.length ? `, ${modes.join(' + ')} vIOMMU; the guest's IOMMU driver probed it` : ', no vIOMMU'}`;
      }
      case 'guest-alloc': {
        const gpa = vm(step.vm).guest.allocBuffer(Number(step.size));
        buffers.set(step.buffer, { vm: step.vm, gpa, size: step.size });
        return `${step.vm} guest buffer ${step.buffer}: ${formatSize(step.size)} at GPA ${toHex(gpa)}`;
      }
      case 'guest-map': {
        const buffer = guestBuffer(step.buffer, step.vm);
        const address = vm(step.vm)
          .guest.dma(step.device)
          .map(buffer.gpa, buffer.size, { read: step.prot.includes('r'), write: step.prot.includes('w') });
        mappings.set(step.mapping, address);
        mappingDevice.set(step.mapping, step.device);
        const how =
          address === buffer.gpa ? 'no vIOMMU: the device uses the GPA' : "through the guest's IOMMU driver";
        return `${step.vm} maps ${step.buffer} (GPA ${toHex(buffer.gpa)}) for ${step.device} at IOVA ${toHex(address)} (${how})`;
      }
      case 'guest-unmap': {
        const address = mappings.get(step.mapping);
        if (address === undefined) throw new StepFailure(`no mapping named "${step.mapping}"`);
        // The name keeps its IOVA, so a later `dma` step can try the address the guest gave up.
        vm(step.vm).guest.dma(step.device).unmap(address);
        return `${step.vm} unmaps ${step.mapping} (IOVA ${toHex(address)}) for ${step.device}; its driver invalidated`;
      }
      case 'guest-check': {
        const buffer = guestBuffer(step.buffer, step.vm);
        const v = vm(step.vm);
        const gpa = buffer.gpa + step.offset;
        const held = v.guest.read(gpa, step.data.length);
        if (!sameBytes(held, step.data)) {
          throw new StepFailure(
            `${step.vm} ${step.buffer}+${step.offset} holds ${showBytes(held)}, expected ${showBytes(step.data)}`,
          );
        }
        return `${step.vm} ${step.buffer}+${step.offset} holds ${showBytes(held)}: GPA ${toHex(gpa)}, host page HPA ${toHex(v.memory.gpaToHpa(gpa)!)}`;
      }
      case 'guest-faults': {
        const v = vm(step.vm);
        v.serviceInterrupts();
        // The step reads the guest's fault log as a driver reads a queue: what it took is gone.
        const { records: fresh, lost } = v.guest.faults.take();
        const dropped = lost ? ` and ${lost} more its fault log had no room for` : '';
        const got = fresh.map((f) => `${f.fault.vendorCode}${f.device ? ` (${f.device})` : ''}`);
        const matches =
          fresh.length === step.expect.length &&
          fresh.every((f, i) => {
            const want = step.expect[i]!;
            return (
              f.fault.vendorCode === want.fault && (want.device === undefined || want.device === f.device)
            );
          });
        if (!matches) {
          const wanted = step.expect.map((e) => `${e.fault}${e.device ? ` (${e.device})` : ''}`);
          throw new StepFailure(
            `${step.vm} guest reported [${got.join(', ')}]${dropped}, expected [${wanted.join(', ')}]`,
          );
        }
        const detail = fresh
          .map(
            (f) =>
              `${f.fault.vendorCode} stream ${toHex(f.fault.streamId)} IOVA ${toHex(f.fault.iova)}${f.device ? ` (${f.device})` : ''}`,
          )
          .join('; ');
        return `${step.vm} guest IOMMU driver reported ${fresh.length ? detail : 'nothing'}${dropped}`;
      }
      case 'page-responses': {
        const v = vm(step.vm);
        const { pri } = v.assignedDevice(step.device).host;
        if (!pri) throw new StepFailure(`${step.device} has no PRI capability: it gets no page responses`);
        v.serviceInterrupts();
        // Like `guest-faults`, the step takes what arrived since it last looked at this device.
        const fresh = pri.responses.slice(responsesSeen.get(step.device) ?? 0);
        responsesSeen.set(step.device, pri.responses.length);
        const got = fresh.map((r) => `${r.code} (group ${r.groupIndex})`);
        const matches =
          fresh.length === step.expect.length && fresh.every((r, i) => r.code === step.expect[i]);
        if (!matches)
          throw new StepFailure(
            `${step.device} received page responses [${got.join(', ')}], expected [${step.expect.join(', ')}]`,
          );
        return `${step.device} received ${fresh.length ? `page responses ${got.join(', ')}` : 'no page response'}`;
      }
      case 'guest-msi-setup': {
        const v = vm(step.vm);
        return vmMsi(v).setupDevice(v.assignedDevice(step.device), step.vectors);
      }
      case 'guest-msi': {
        const v = vm(step.vm);
        const msi = vmMsi(v);
        msi.takeInjection();
        const host = system.requireMsi();
        return sendMsi(v.assignedDevice(step.device).host, step.vector, host, step, () => {
          v.serviceInterrupts();
          const outcome = msi.takeInjection();
          if (!outcome) throw new StepFailure('the host interrupt arrived but the VMM injected nothing');
          return { outcome, where: `VMM injects into ${step.vm}'s vITS` };
        });
      }
      case 'guest-irq-affinity': {
        const msi = vmMsi(vm(step.vm));
        const { intid, cpu } = msi.guestVector(step.device, step.vector);
        msi.guest.setAffinity(intid, step.cpu);
        return `${step.vm}: the guest moves ${step.device} vector ${step.vector} (vINTID ${intid}) from vCPU${cpu} to vCPU${step.cpu} (MOVI + SYNC)`;
      }
      case 'guest-irq-config': {
        const msi = vmMsi(vm(step.vm));
        const { intid } = msi.guestVector(step.device, step.vector);
        const change = {
          ...(step.enabled === undefined ? {} : { enabled: step.enabled }),
          ...(step.priority === undefined ? {} : { priority: step.priority }),
        };
        msi.guest.configure(intid, change, { invalidate: step.invalidate });
        const what = [
          step.enabled === undefined ? '' : step.enabled ? 'unmasks' : 'masks',
          step.priority === undefined ? '' : `sets priority ${toHex(step.priority)} of`,
        ]
          .filter(Boolean)
          .join(' and ');
        return `${step.vm}: the guest ${what || 'rewrites'} vINTID ${intid} in its LPI configuration table${step.invalidate ? ', then INV + SYNC' : ' and sends no INV: the redistributor keeps its cached configuration'}`;
      }
      case 'guest-op': {
        const v = vm(step.vm);
        const op = system.validated.plugin.guestOps?.[step.action];
        if (!op)
          throw new StepFailure(
            `plugin ${system.validated.plugin.meta.name} has no guest action "${step.action}"`,
          );
        const which = typeof step.args.viommu === 'string' ? step.args.viommu : 'nested';
        const driver = v.guest.drivers.get(`${step.vm}.viommu-${which}`);
        if (!driver) throw new StepFailure(`${step.vm} has no ${which} vIOMMU driver`);
        return op(
          {
            driver,
            device: (name) => v.guest.device(name),
            bus: v.memory.bus,
            allocBuffer: (bytes) => v.guest.allocBuffer(bytes),
          },
          step.args,
        );
      }
      default:
        return undefined;
    }
  };

  const vmMsi = (v: Vm) => {
    if (!v.msi)
      throw new StepFailure(`${v.name} has no vITS: the system has no MSI controller (msi.controller)`);
    return v.msi;
  };

  const guestBuffer = (name: string, vmName: string): GuestBuffer => {
    const buffer = buffers.get(name);
    if (!buffer || buffer.vm !== vmName) throw new StepFailure(`${vmName} has no guest buffer "${name}"`);
    return buffer;
  };

  return {
    run: (step, context) => run(step, context.mappings),
    device: (name) => {
      for (const v of system.vms as Vm[]) {
        if (v.state !== 'on') continue;
        // Stryker disable next-line OptionalChaining: a VM made from a config always has an emulated-device list (the schema defaults it to [])
        if (v.spec.emulatedDevices?.includes(name)) return v.emulatedDevice(name);
      }
      return undefined;
    },
    afterStep: () => {
      for (const v of system.vms as Vm[]) if (v.state === 'on') v.serviceInterrupts();
    },
  };
}
