/**
 * The kernel's local APIC support (Linux arch/x86/kernel/apic/apic.c, x2apic_*.c and vector.c's per-CPU
 * `vector_irq`): it reaches each CPU's APIC only through its registers — the xAPIC page, or in x2APIC mode
 * the MSRs. At probe, on every CPU: switch to x2APIC mode if wanted (IA32_APIC_BASE.EXTD), read the APIC
 * ID, check the version, set up flat logical mode (xAPIC), open the TPR, software-enable the APIC with
 * spurious vector 0xFF, clear the ESR, and install the interrupt entry.
 *
 * The entry acknowledges every vector at once with an EOI (Linux's `handle_edge_irq` acks before running
 * the handler), then looks the IRQ up. An IRQ disabled with `disableIrq` is disabled lazily as Linux does:
 * an interrupt that still comes is marked pending instead of handled, and `enableIrq` resends it to its CPU
 * with a fixed IPI (`apic_retrigger_irq`).
 */
import { IommufdError } from '@iommukit/core';
import type { ApicPlatform } from '../hw/apic-platform.js';
import { NO_IRQ } from '../hw/cpu.js';
import type { LocalApic } from '../hw/local-apic.js';
import {
  APIC,
  APIC_BASE_EXTD,
  DFR_FLAT,
  IA32_APIC_BASE,
  ICR_LEVEL_ASSERT,
  SVR_APIC_ENABLED,
  X2APIC_ICR,
  x2apicMsr,
} from '../hw/registers.js';

/** The spurious vector Linux programs into the SVR. */
export const SPURIOUS_VECTOR = 0xff;
/** Versions from 0x10 are integrated APICs (SDM §11.4.8); older ones are 82489DX parts, not supported. */
const INTEGRATED_APIC_VERSION = 0x10;
/** Flat logical mode gives each of the first eight CPUs one bit of the 8-bit logical ID. */
const FLAT_LOGICAL_CPUS = 8;

export class ApicDriver {
  /** APIC ID of each CPU, as its ID register reads. */
  readonly apicIds: number[] = [];
  /** Per CPU: the IRQ behind each vector (Linux `vector_irq`). */
  private readonly vectorIrq: Int32Array[];
  private readonly disabled = new Set<number>();
  private readonly pendingIrqs = new Set<number>();

  constructor(
    private readonly platform: ApicPlatform,
    readonly x2apic: boolean,
  ) {
    this.vectorIrq = platform.cpus.map(() => new Int32Array(256).fill(NO_IRQ));
  }

  get cpuCount(): number {
    return this.platform.cpus.length;
  }

  probe(): void {
    this.platform.cpus.forEach((cpu, n) => {
      const apic = this.platform.apics[n]!;
      if (this.x2apic) apic.writeMsr(IA32_APIC_BASE, apic.readMsr(IA32_APIC_BASE) | BigInt(APIC_BASE_EXTD));
      const version = this.read(n, APIC.VERSION) & 0xff;
      if (version < INTEGRATED_APIC_VERSION)
        throw new IommufdError('ENODEV', `CPU${n}: local APIC version ${version} is not an integrated APIC`);
      const id = this.read(n, APIC.ID);
      this.apicIds.push(this.x2apic ? id : id >>> 24);
      if (!this.x2apic) {
        this.write(n, APIC.DFR, DFR_FLAT);
        this.write(n, APIC.LDR, n < FLAT_LOGICAL_CPUS ? (1 << (24 + n)) >>> 0 : 0);
      }
      this.write(n, APIC.TPR, 0);
      this.write(n, APIC.SVR, SVR_APIC_ENABLED | SPURIOUS_VECTOR);
      // The ESR latches on a write; two clear what was seen before (Linux `lapic_setup_esr`).
      this.write(n, APIC.ESR, 0);
      this.write(n, APIC.ESR, 0);
      cpu.entry = {
        irqOf: (vector) => this.vectorIrq[n]![vector]!,
        enter: (vector) => this.enter(n, vector),
      };
    });
  }

  /** Points `vector` of `cpu` at `irq` (or at nothing, with {@link NO_IRQ}). */
  bind(cpu: number, vector: number, irq: number): void {
    this.vectorIrq[cpu]![vector] = irq;
  }

  /** Lazy disable (Linux `disable_irq` for MSI): an interrupt that still arrives is left pending. */
  disableIrq(irq: number): void {
    this.disabled.add(irq);
  }

  /** Enables an IRQ and resends it to `cpu` at `vector` if it came while disabled. */
  enableIrq(irq: number, cpu: number, vector: number): void {
    this.disabled.delete(irq);
    if (this.pendingIrqs.delete(irq)) this.sendFixedIpi(cpu, vector);
  }

  /** Forgets an IRQ's disabled and pending state (its vectors are being freed). */
  forget(irq: number): void {
    this.disabled.delete(irq);
    this.pendingIrqs.delete(irq);
  }

  /** Whether the IRQ waits: left pending while disabled, or requested in `cpu`'s IRR at `vector`. */
  isPending(irq: number, cpu: number, vector: number): boolean {
    const irr = this.read(cpu, APIC.IRR + (vector >>> 5) * 0x10);
    return this.pendingIrqs.has(irq) || ((irr >>> (vector & 31)) & 1) === 1;
  }

  /** A fixed, physical IPI from the boot CPU to `cpu` (Linux `__apic_send_IPI`). */
  sendFixedIpi(cpu: number, vector: number): void {
    const command = vector | ICR_LEVEL_ASSERT;
    const dest = this.apicIds[cpu]!;
    const boot = this.platform.apics[0]!;
    if (this.x2apic) boot.writeMsr(X2APIC_ICR, (BigInt(dest) << 32n) | BigInt(command));
    else {
      this.write(0, APIC.ICR_HIGH, (dest << 24) >>> 0);
      this.write(0, APIC.ICR_LOW, command);
    }
  }

  private enter(cpu: number, vector: number): boolean {
    this.write(cpu, APIC.EOI, 0);
    const irq = this.vectorIrq[cpu]![vector]!;
    if (!this.disabled.has(irq)) return true;
    this.pendingIrqs.add(irq);
    return false;
  }

  private apic(cpu: number): LocalApic {
    return this.platform.apics[cpu]!;
  }

  private read(cpu: number, offset: number): number {
    const apic = this.apic(cpu);
    return this.x2apic ? Number(apic.readMsr(x2apicMsr(offset))) : apic.mmio.read(offset, 4);
  }

  private write(cpu: number, offset: number, value: number): void {
    const apic = this.apic(cpu);
    if (this.x2apic) apic.writeMsr(x2apicMsr(offset), BigInt(value >>> 0));
    else apic.mmio.write(offset, 4, value);
  }
}
