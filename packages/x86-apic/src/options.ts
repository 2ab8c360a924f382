/**
 * `msi.options` for `controller: x86-apic`: the CPUs and their APIC IDs, whether the kernel runs the local
 * APICs in x2APIC mode, and whether MSIs may use the extended destination ID (what a hypervisor
 * advertises to its guests as KVM_FEATURE_MSI_EXT_DEST_ID).
 */
import { intField, z } from '@iommukit/core';
import { XAPIC_BROADCAST } from './hw/msi-format.js';

/** Highest x2APIC ID a CPU may have: 0xFFFFFFFF is the broadcast. */
const MAX_APIC_ID = 0xffff_fffe;

export const X86ApicOptionsSchema = z
  .strictObject({
    cpus: intField(1, 1024).default(2).describe('CPUs, each with a local APIC.'),
    apicIds: z
      .array(intField(0, MAX_APIC_ID))
      .optional()
      .describe('APIC ID of each CPU, in CPU order (default: the CPU number).'),
    x2apic: z
      .union([z.literal('auto'), z.boolean()])
      .default('auto')
      .describe('Run the local APICs in x2APIC mode; "auto": when an APIC ID is above 254.'),
    extendedDestinationId: z
      .boolean()
      .default(false)
      .describe(
        'MSI address bits 11:5 carry destination bits 14:8 (APIC IDs up to 32767 without remapping).',
      ),
  })
  .superRefine((o, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    if (o.apicIds === undefined) return;
    if (o.apicIds.length !== o.cpus)
      issue(['apicIds'], `expected ${o.cpus} APIC IDs (one per CPU), got ${o.apicIds.length}`);
    const owner = new Map<number, number>();
    o.apicIds.forEach((id, cpu) => {
      const other = owner.get(id);
      if (other !== undefined) issue(['apicIds', cpu], `APIC ID ${id} is CPU ${other}'s already`);
      owner.set(id, cpu);
      if (o.x2apic === false && id >= XAPIC_BROADCAST)
        issue(
          ['apicIds', cpu],
          `APIC ID ${id} needs x2APIC mode: xAPIC IDs are 8 bits and 0xFF is the broadcast`,
        );
    });
  });

export type X86ApicOptions = z.output<typeof X86ApicOptionsSchema>;

/** The options with the defaults that depend on others filled in. */
export interface ResolvedApicOptions {
  readonly apicIds: readonly number[];
  readonly x2apic: boolean;
  readonly extendedDestinationId: boolean;
}

export function resolveApicOptions(options: X86ApicOptions): ResolvedApicOptions {
  const apicIds = options.apicIds ?? Array.from({ length: options.cpus }, (_, cpu) => cpu);
  const x2apic = options.x2apic === 'auto' ? apicIds.some((id) => id >= XAPIC_BROADCAST) : options.x2apic;
  return { apicIds, x2apic, extendedDestinationId: options.extendedDestinationId };
}
