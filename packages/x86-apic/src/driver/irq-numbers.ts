/**
 * Linux IRQ numbers for MSI vectors (`irq_alloc_descs`): a device's vectors get consecutive numbers, the
 * lowest free range first. Numbers start at 24, after the legacy ISA IRQs and the pins of one 24-pin
 * I/O APIC, as on a PC (neither is modelled). A vector is per CPU; the IRQ number is what names an
 * interrupt across the machine, so it is the `intid` of this controller.
 */
export const FIRST_DYNAMIC_IRQ = 24;

export class IrqNumbers {
  private readonly used = new Set<number>();

  /** `count` consecutive free IRQ numbers; returns the first. */
  alloc(count: number): number {
    let base = FIRST_DYNAMIC_IRQ;
    while (!this.isFree(base, count)) base++;
    for (let i = 0; i < count; i++) this.used.add(base + i);
    return base;
  }

  free(base: number, count: number): void {
    for (let i = 0; i < count; i++) this.used.delete(base + i);
  }

  private isFree(base: number, count: number): boolean {
    for (let i = 0; i < count; i++) if (this.used.has(base + i)) return false;
    return true;
  }
}
