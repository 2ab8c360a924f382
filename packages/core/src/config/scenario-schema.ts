/**
 * Scenario steps: a small script run against a built system. Steps act the way a kernel user of the
 * iommu core would (allocate a buffer, make a domain, attach, map, let a device DMA, unmap) and state what
 * they expect, so `iommukit run` both shows a flow and checks it.
 */
import { z } from 'zod';
import { addressField, intField, nameField, sizeField } from './fields.js';
import { describe } from './units.js';

/** Bytes as text: `hex:deadbeef` for raw bytes, anything else is UTF-8. */
export const bytesField = z.string().transform((text, ctx) => {
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
});

const note = z.string().optional().describe('Shown in the run log before the step.');

export const ScenarioStepSchema = z.discriminatedUnion('op', [
  z
    .strictObject({ op: z.literal('alloc'), note, buffer: nameField, size: sizeField })
    .describe('Allocate zeroed host memory (whole pages) and name it.'),
  z
    .strictObject({ op: z.literal('domain'), note, name: nameField, iommu: nameField })
    .describe('Allocate a paging domain on an IOMMU instance.'),
  z
    .strictObject({ op: z.literal('attach'), note, device: nameField, domain: nameField })
    .describe("Attach a device's RID to a domain (replacing its current one)."),
  z
    .strictObject({ op: z.literal('detach'), note, device: nameField })
    .describe('Attach a device to the blocking domain.'),
  z
    .strictObject({
      op: z.literal('map'),
      note,
      domain: nameField,
      iova: addressField,
      buffer: nameField,
      offset: sizeField.default(0n),
      size: sizeField.optional().describe('Default: the rest of the buffer.'),
      prot: z.enum(['r', 'w', 'rw']).default('rw'),
    })
    .describe('Map part of a buffer at an IOVA.'),
  z
    .strictObject({ op: z.literal('unmap'), note, domain: nameField, iova: addressField, size: sizeField })
    .describe('Unmap an IOVA range and wait for the invalidation to complete.'),
  z
    .strictObject({
      op: z.literal('dma'),
      note,
      device: nameField,
      access: z.enum(['read', 'write']),
      iova: addressField,
      data: bytesField.optional().describe('Bytes to write, or the bytes a read must return.'),
      length: intField(1, 1 << 24)
        .optional()
        .describe('Bytes to read (default: the length of data).'),
      pasid: intField(0, (1 << 20) - 1).optional(),
      expect: z.enum(['ok', 'fault', 'abort']).default('ok'),
      fault: z.string().optional().describe('With expect: fault, the vendor code the fault must carry.'),
    })
    .describe('A device DMA through its IOMMU, with the outcome it must have.'),
  z
    .strictObject({
      op: z.literal('check'),
      note,
      buffer: nameField,
      offset: sizeField.default(0n),
      data: bytesField,
    })
    .describe('Check that host memory in a buffer holds these bytes.'),
]);

export const ScenarioSchema = z
  .strictObject({
    description: z.string().optional(),
    steps: z.array(ScenarioStepSchema).min(1, { error: 'expected at least one step' }),
  })
  .describe('A script of steps run against the system by `iommukit run` and `iommukit demo`.');

export type ScenarioStep = z.output<typeof ScenarioStepSchema>;
export type Scenario = z.output<typeof ScenarioSchema>;
