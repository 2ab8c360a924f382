/**
 * Which local APICs an interrupt's destination names (Intel SDM vol. 3A §11.6.2): physical mode by APIC
 * ID (all ones: broadcast), logical mode by the logical destination register — xAPIC flat (a bitmap of
 * eight), xAPIC cluster (a 4-bit cluster and 4-bit mask) or x2APIC cluster (16-bit cluster, 16-bit mask;
 * §11.12.10). Lowest-priority delivery (and the redirection hint in logical mode, §11.11.1) arbitrates
 * among the matches; this model picks the lowest PPR, then the lowest APIC ID, deterministically.
 */
import type { X86Interrupt } from '@iommukit/core';
import type { LocalApic } from './local-apic.js';
import { BROADCAST, XAPIC_BROADCAST } from './msi-format.js';

type Destination = Pick<X86Interrupt, 'destination' | 'destinationMode'>;

/** Whether `apic` is one of the destination's APICs. */
export function matchesDestination(apic: LocalApic, { destination, destinationMode }: Destination): boolean {
  if (apic.mode === 'disabled') return false;
  if (destination === BROADCAST) return true;
  if (apic.mode === 'x2apic') {
    if (destinationMode === 'physical') return destination === apic.id;
    const ldr = apic.logicalId;
    return destination >>> 16 === ldr >>> 16 && (destination & ldr & 0xffff) !== 0;
  }
  // xAPIC: 8-bit destinations.
  if (destination > XAPIC_BROADCAST) return false;
  if (destination === XAPIC_BROADCAST) return true;
  if (destinationMode === 'physical') return destination === apic.id;
  const logical = apic.logicalId >>> 24;
  if (apic.destinationFormat >>> 28 === 0xf) return (destination & logical) !== 0;
  return destination >>> 4 === logical >>> 4 && (destination & logical & 0xf) !== 0;
}

/** The APICs an interrupt goes to: every match, or the one lowest-priority arbitration chooses. */
export function selectTargets(apics: readonly LocalApic[], interrupt: X86Interrupt): LocalApic[] {
  const matched = apics.filter((apic) => matchesDestination(apic, interrupt));
  const arbitrate =
    interrupt.deliveryMode === 'lowest-priority' ||
    (interrupt.redirectionHint === true && interrupt.destinationMode === 'logical');
  if (!arbitrate) return matched;
  // Only APICs that can take the interrupt join the arbitration; if none can, the first match reports why.
  const able = matched.filter((apic) => apic.softwareEnabled);
  if (able.length === 0) return matched.slice(0, 1);
  const best = able.reduce((a, b) => (b.ppr < a.ppr || (b.ppr === a.ppr && b.id < a.id) ? b : a));
  return [best];
}
