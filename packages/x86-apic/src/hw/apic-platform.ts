/**
 * The x86 interrupt fabric of one machine: a CPU and its local APIC per configured APIC ID, and the
 * interrupt window 0xFEE0_0000–0xFEEF_FFFF on the bus, where a device's write is an interrupt message
 * rather than memory (SDM vol. 3A §11.11). The local APIC pages are not on the bus: each CPU reaches its
 * own through `apics[n].mmio` or its MSRs.
 *
 * A write in the window is decoded as a compatibility-format MSI; a remappable-format one, which only a
 * remapping unit understands, is dropped. Interrupts a remapping unit produced arrive through
 * `deliver`. Every outcome is kept for `takeOutcomes`; a message for several CPUs has one per CPU.
 */
import {
  BoundedLog,
  decodeDeliveryMode,
  type ITracer,
  type MemoryBus,
  type MsiOutcome,
  toHex,
  X86_INTERRUPT_WINDOW,
  type X86Interrupt,
} from '@iommukit/core';
import { type InterruptSource, NO_REQUESTER, X86Cpu } from './cpu.js';
import { selectTargets } from './destination.js';
import { type IpiRequest, LocalApic } from './local-apic.js';
import { decodeCompatibilityMsi } from './msi-format.js';
import { ICR_DEST_LOGICAL, ICR_SHORTHAND_SHIFT, ICR_TRIGGER_LEVEL } from './registers.js';

export interface ApicPlatformSpec {
  /** Instance name: the controller in arrivals, the prefix of the bus region (`apic`, `vm0.vapic`). */
  readonly name: string;
  /** One CPU per APIC ID, CPU n having `apicIds[n]`. */
  readonly apicIds: readonly number[];
  /** Compatibility-format address bits [11:5] are destination bits [14:8]. */
  readonly extendedDestinationId: boolean;
}

export class ApicPlatform {
  readonly cpus: readonly X86Cpu[];
  readonly apics: readonly LocalApic[];
  /** The bus region of the interrupt window. */
  readonly region: string;
  private readonly outcomes = new BoundedLog<MsiOutcome>();
  private arrivals = 0;

  constructor(
    readonly spec: ApicPlatformSpec,
    private readonly bus: MemoryBus,
    private readonly tracer: ITracer,
  ) {
    const clock = { next: () => ++this.arrivals };
    this.cpus = spec.apicIds.map((_id, cpu) => new X86Cpu(cpu, spec.name, clock));
    this.apics = this.cpus.map(
      (cpu) => new LocalApic(spec.apicIds[cpu.cpu]!, cpu, (from, r) => this.ipi(from, r)),
    );
    this.region = `${spec.name}.msi`;
    bus.addMmio(this.region, X86_INTERRUPT_WINDOW.base, X86_INTERRUPT_WINDOW.size, {
      // Stryker disable next-line ArrowFunction: the bus reads an undefined value as 0 too
      read: () => 0,
      write: (offset, size, value, deviceId) => {
        const address = X86_INTERRUPT_WINDOW.base + BigInt(offset);
        const requester = deviceId ?? NO_REQUESTER;
        // An MSI is one DWORD write (SDM §11.11); a narrower one is no interrupt message.
        if (size !== 4)
          this.record({
            kind: 'dropped',
            deviceId: requester,
            eventId: value & 0xff,
            reason: `a ${size}-byte write is no MSI`,
          });
        else this.receiveMsi(address, value, requester);
      },
    });
  }

  /** A compatibility-format MSI from `deviceId`: decoded, delivered, recorded. */
  receiveMsi(address: bigint, data: number, deviceId: number): MsiOutcome {
    const decoded = decodeCompatibilityMsi(address, data, this.spec);
    if (!decoded.ok)
      return this.record({ kind: 'dropped', deviceId, eventId: data & 0xff, reason: decoded.reason });
    // Stryker disable next-line ConditionalExpression: Tracer.trace drops records itself when tracing is off; the guard only saves building them
    if (this.tracer.enabled) {
      const i = decoded.interrupt;
      this.tracer.trace(
        'msi',
        this.spec.name,
        'msi.receive',
        `MSI ${toHex(data)} to ${toHex(address)} from ${toHex(deviceId)}: vector ${toHex(i.vector)} ${i.deliveryMode} to ${i.destinationMode} ${toHex(i.destination)}`,
        { address, data, deviceId },
      );
    }
    return this.deliver(decoded.interrupt, { deviceId, eventId: decoded.interrupt.vector });
  }

  /** Delivers an interrupt (decoded from a message, or produced by a remapping unit) and records the outcomes. */
  deliver(interrupt: X86Interrupt, source: InterruptSource): MsiOutcome {
    const outcomes = this.send(interrupt, source);
    for (const outcome of outcomes) this.record(outcome);
    return outcomes.at(-1)!;
  }

  /** What became of each interrupt message since the last call, in order. */
  takeOutcomes(): MsiOutcome[] {
    return this.outcomes.take().records;
  }

  private record(outcome: MsiOutcome): MsiOutcome {
    this.outcomes.push(outcome);
    return outcome;
  }

  /** Takes the interrupt window off the bus. */
  remove(): void {
    this.bus.removeRegion(this.region);
  }

  private send(
    interrupt: X86Interrupt,
    source: InterruptSource,
    targets = selectTargets(this.apics, interrupt),
  ): MsiOutcome[] {
    if (targets.length === 0) {
      const reason = `no local APIC answers ${interrupt.destinationMode} destination ${toHex(interrupt.destination)}`;
      return [{ kind: 'dropped', ...source, reason }];
    }
    return targets.map((apic) => {
      const mode = interrupt.deliveryMode;
      if (mode === 'fixed' || mode === 'lowest-priority')
        return apic.accept(interrupt.vector, interrupt.trigger, source);
      apic.cpu.receive(mode, source);
      const reason = `${mode.toUpperCase()} taken by CPU${apic.cpu.cpu}: not a vectored interrupt (see its events)`;
      return { kind: 'dropped', ...source, reason };
    });
  }

  /** An ICR write (SDM §11.6.1): the destination shorthand, or the destination field. */
  private ipi(from: LocalApic, { command, destination }: IpiRequest): void {
    const deliveryMode = decodeDeliveryMode((command >>> 8) & 7);
    // Start-up IPIs and reserved modes start no modelled interrupt.
    if (deliveryMode === undefined) return;
    const interrupt: X86Interrupt = {
      vector: command & 0xff,
      destination,
      // Stryker disable next-line StringLiteral: any destination mode but 'logical' is physical (destination.ts)
      destinationMode: command & ICR_DEST_LOGICAL ? 'logical' : 'physical',
      deliveryMode,
      trigger: command & ICR_TRIGGER_LEVEL ? 'level' : 'edge',
    };
    const shorthand = (command >>> ICR_SHORTHAND_SHIFT) & 3;
    const targets = [undefined, [from], this.apics, this.apics.filter((a) => a !== from)][shorthand];
    this.send(
      interrupt,
      { deviceId: NO_REQUESTER, eventId: interrupt.vector },
      targets ? [...targets] : undefined,
    );
  }
}
