/**
 * Scenario steps: a small script run against a built system. Steps act the way a kernel user of the
 * iommu core would (allocate a buffer, make a domain, attach, map, let a device DMA, unmap) and state what
 * they expect, so `iommukit run` both shows a flow and checks it.
 */
import { z } from 'zod';
import { DEFAULT_LOG_CAPACITY } from '../log/bounded-log.js';
import { addressField, intField, nameField, sizeField } from './fields.js';
import { describe } from './units.js';
import { VmMsiSchema } from './vm-msi-schema.js';

/** Bytes as text: `hex:deadbeef` for raw bytes, anything else is UTF-8. */
export const bytesField = z
  .string()
  .transform((text, ctx) => {
    if (!text.startsWith('hex:')) return new TextEncoder().encode(text);
    const hex = text.slice(4).replaceAll(/[\s_]/g, '');
    if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected "hex:" followed by pairs of hex digits, got ${describe(text)}`,
      });
      return z.NEVER;
    }
    return Uint8Array.from(hex.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
  })
  .meta({ title: 'bytes' });

const note = z.string().optional().describe('Shown in the run log before the step.');
const device = nameField.describe('A device from `devices`.');
const domain = nameField.describe('A domain made by an earlier `domain` step.');
const buffer = nameField.describe('A buffer made by an earlier `alloc` step.');
const vm = nameField.describe('A VM from `vms`.');
const msiVector = intField(0, 2047).default(0).describe('MSI-X vector.');
const msiExpect = z
  .enum(['delivered', 'pending', 'dropped', 'fault'])
  .default('delivered')
  .describe(
    '"delivered": a CPU took the interrupt; "pending": it waits, disabled; "dropped": the controller could not translate it; "fault": the IOMMU refused the write.',
  );
const msiCpu = intField(0, 63).optional().describe('With expect: delivered, the CPU it must reach.');
const msiFault = z.string().optional().describe('With expect: fault, the vendor code the fault must carry.');

export const ScenarioStepSchema = z.discriminatedUnion('op', [
  z
    .strictObject({
      op: z.literal('alloc'),
      note,
      buffer: nameField.describe('Name for the buffer.'),
      size: sizeField.describe('Bytes, rounded up to whole 4 KiB pages.'),
    })
    .describe('Allocate zeroed host memory (whole pages) and name it.'),
  z
    .strictObject({
      op: z.literal('domain'),
      note,
      name: nameField.describe('Name for the domain.'),
      iommu: nameField.describe('An instance from `iommus`.'),
    })
    .describe('Allocate a paging domain on an IOMMU instance.'),
  z
    .strictObject({ op: z.literal('attach'), note, device, domain })
    .describe("Attach a device's RID to a domain (replacing its current one)."),
  z
    .strictObject({ op: z.literal('detach'), note, device })
    .describe('Attach a device to the blocking domain.'),
  z
    .strictObject({
      op: z.literal('map'),
      note,
      domain,
      iova: addressField.describe('IOVA to map at (4 KiB aligned).'),
      buffer,
      offset: sizeField.default(0n).describe('Offset into the buffer (4 KiB aligned).'),
      size: sizeField.optional().describe('Bytes to map; default: the rest of the buffer.'),
      prot: z.enum(['r', 'w', 'rw']).default('rw').describe('Device access the mapping allows.'),
    })
    .describe('Map part of a buffer at an IOVA.'),
  z
    .strictObject({
      op: z.literal('unmap'),
      note,
      domain,
      iova: addressField.describe('First IOVA to unmap.'),
      size: sizeField.describe('Bytes to unmap.'),
    })
    .describe('Unmap an IOVA range and wait for the invalidation to complete.'),
  z
    .strictObject({
      op: z.literal('dma'),
      note,
      device: nameField.describe('A device from `devices`, or an emulated device of a VM.'),
      access: z.enum(['read', 'write']).describe('Direction of the DMA.'),
      iova: addressField.optional().describe('Address the device puts on the bus (or give `mapping`).'),
      mapping: nameField
        .optional()
        .describe('Instead of `iova`: the IOVA a `guest-map` step got, plus `offset`.'),
      offset: sizeField.default(0n).describe('With `mapping`: bytes past the mapped IOVA.'),
      data: bytesField
        .optional()
        .describe('Bytes to write, or the bytes a read must return ("hex:…" or text).'),
      length: intField(1, 1 << 24)
        .optional()
        .describe('Bytes to read (default: the length of data).'),
      pasid: intField(0, (1 << 20) - 1)
        .optional()
        .describe('Tag the DMA with this PASID.'),
      pageRequest: z
        .boolean()
        .default(false)
        .describe(
          'On a translation failure the device sends a PCIe page request (ATS and PRI enabled) instead of faulting.',
        ),
      expect: z
        .enum(['ok', 'fault', 'abort', 'page-request'])
        .default('ok')
        .describe('The outcome the DMA must have; "page-request" (with pageRequest): it sent one.'),
      fault: z.string().optional().describe('With expect: fault, the vendor code the fault must carry.'),
    })
    .describe('A device DMA through its IOMMU, with the outcome it must have.'),
  z
    .strictObject({
      op: z.literal('check'),
      note,
      buffer,
      offset: sizeField.default(0n).describe('Offset into the buffer.'),
      data: bytesField.describe('The bytes host memory must hold there ("hex:…" or text).'),
    })
    .describe('Check that host memory in a buffer holds these bytes.'),
  z
    .strictObject({
      op: z.literal('msi-setup'),
      note,
      device,
      vectors: intField(1, 2048).default(1).describe('Vectors to set up (MSI-X entries 0 … n − 1).'),
    })
    .describe(
      "The host kernel sets up a device's MSIs: the MSI controller maps its events, the SW MSI cookie maps the doorbell into the device's domain, the MSI-X table gets address and data.",
    ),
  z
    .strictObject({
      op: z.literal('msi'),
      note,
      device,
      vector: msiVector,
      expect: msiExpect,
      cpu: msiCpu,
      fault: msiFault,
    })
    .describe('A device sends one of its MSI-X vectors; where it must end up.'),
  z
    .strictObject({
      op: z.literal('vm-power'),
      note,
      vm,
      state: z.enum(['on', 'off']).describe('Power on (build and boot) or off (tear down).'),
      viommus: z
        .array(z.enum(['emulated', 'nested', 'shadow']))
        .optional()
        .describe(
          'Power on with these vIOMMUs instead of the configured ones (a restart with another setup).',
        ),
      msi: VmMsiSchema.optional().describe('Power on with this MSI setup instead of the configured one.'),
    })
    .describe('Power a VM on or off.'),
  z
    .strictObject({
      op: z.literal('guest-alloc'),
      note,
      vm,
      buffer: nameField.describe('Name for the guest buffer.'),
      size: sizeField.describe('Bytes, rounded up to whole 4 KiB pages.'),
    })
    .describe('The guest allocates zeroed memory (guest-physical pages).'),
  z
    .strictObject({
      op: z.literal('guest-map'),
      note,
      vm,
      device: nameField.describe('A device of the VM (assigned or emulated).'),
      buffer: nameField.describe('A buffer made by an earlier `guest-alloc` step.'),
      mapping: nameField.describe('Name for the mapping (its IOVA is what `dma` steps use).'),
      prot: z.enum(['r', 'w', 'rw']).default('rw').describe('Device access the mapping allows.'),
    })
    .describe("The guest's DMA API maps a buffer for a device (through its vIOMMU driver, if it has one)."),
  z
    .strictObject({
      op: z.literal('guest-unmap'),
      note,
      vm,
      device: nameField.describe('The device the mapping is for.'),
      mapping: nameField.describe('A mapping made by an earlier `guest-map` step.'),
    })
    .describe("The guest's DMA API unmaps (its driver invalidates; a nested vIOMMU forwards that)."),
  z
    .strictObject({
      op: z.literal('guest-check'),
      note,
      vm,
      buffer: nameField.describe('A buffer made by an earlier `guest-alloc` step.'),
      offset: sizeField.default(0n).describe('Offset into the buffer.'),
      data: bytesField.describe('The bytes guest memory must hold there ("hex:…" or text).'),
    })
    .describe('Check guest memory, and say which host page holds it.'),
  z
    .strictObject({
      op: z.literal('guest-faults'),
      note,
      vm,
      expect: z
        .array(
          z.strictObject({
            fault: z.string().describe('Vendor code, e.g. F_TRANSLATION.'),
            device: nameField.optional().describe('The device the guest driver blames.'),
          }),
        )
        .describe(
          `The faults the guest drivers report since the last \`guest-faults\` step, in order (the guest keeps up to ${DEFAULT_LOG_CAPACITY} between steps; the step reports how many more were lost).`,
        ),
    })
    .describe('Deliver interrupts (host, vIOMMU, guest) and check what the guest IOMMU drivers reported.'),
  z
    .strictObject({
      op: z.literal('page-responses'),
      note,
      vm,
      device: nameField.describe('An assigned device of the VM, with PRI.'),
      expect: z
        .array(z.enum(['success', 'invalid', 'failure']))
        .describe(
          'The PRI responses the device received since the last `page-responses` step for it, in order.',
        ),
    })
    .describe(
      "Deliver interrupts (host, vIOMMU, guest) and check the page responses an assigned device received: the answers to its page requests, the guest's when a vIOMMU forwards them.",
    ),
  z
    .strictObject({
      op: z.literal('guest-msi-setup'),
      note,
      vm,
      device: nameField.describe('An assigned device of the VM.'),
      vectors: intField(1, 2048).default(1).describe('Vectors the guest driver asks for.'),
    })
    .describe(
      "The guest sets up a device's MSIs on its vITS; the VMM sets up the physical vectors (VFIO) as the VM's msi.mode says.",
    ),
  z
    .strictObject({
      op: z.literal('guest-msi'),
      note,
      vm,
      device: nameField.describe('An assigned device of the VM.'),
      vector: msiVector,
      expect: msiExpect,
      cpu: msiCpu.describe('With expect: delivered, the vCPU it must reach.'),
      fault: msiFault,
    })
    .describe(
      "An assigned device sends a vector; the VMM forwards the host interrupt into the guest's vITS.",
    ),
  z
    .strictObject({
      op: z.literal('guest-irq-affinity'),
      note,
      vm,
      device: nameField.describe('An assigned device of the VM.'),
      vector: msiVector,
      cpu: intField(0, 63).describe('The vCPU the interrupt moves to.'),
    })
    .describe("The guest moves a device's interrupt to another vCPU (its ITS driver sends MOVI + SYNC)."),
  z
    .strictObject({
      op: z.literal('guest-irq-config'),
      note,
      vm,
      device: nameField.describe('An assigned device of the VM.'),
      vector: msiVector,
      enabled: z.boolean().optional().describe('Unmask (true) or mask (false) the interrupt.'),
      priority: intField(0, 255).optional().describe('New priority (lower is more urgent).'),
      invalidate: z
        .boolean()
        .default(true)
        .describe('Send the INV + SYNC the change needs; false leaves the stale configuration cached.'),
    })
    .describe("The guest changes an interrupt's configuration byte in its LPI configuration table."),
  z
    .strictObject({
      op: z.literal('guest-op'),
      note,
      vm,
      action: z.string().describe("A vendor action of the plugin's guest driver (see docs/vendors/)."),
      args: z.record(z.string(), z.unknown()).default({}).describe('Arguments of the action.'),
    })
    .describe("A vendor-specific thing the guest's IOMMU driver does (e.g. SMMUv3: share an STE)."),
]);

export const ScenarioSchema = z
  .strictObject({
    description: z.string().optional().describe('What the scenario shows, printed by `iommukit run`.'),
    steps: z
      .array(ScenarioStepSchema)
      .min(1, { error: 'expected at least one step' })
      .describe('The steps, run in order; the run stops at the first step that fails.'),
  })
  .describe('A script of steps run against the system by `iommukit run` and `iommukit demo`.');

export type ScenarioStep = z.output<typeof ScenarioStepSchema>;
export type Scenario = z.output<typeof ScenarioSchema>;
