/**
 * `msi.options` for `controller: gic-its`: how many CPUs (one redistributor each), where the
 * redistributors and ITSes sit on the physical bus (QEMU `virt` places the ITS at 0x08080000 and the
 * redistributors at 0x080A0000), which devices each ITS serves (the IORT/`msi-parent` routing; devices
 * not listed go to the first ITS), and the ID widths GITS_TYPER advertises.
 */
import { addressField, intField, nameField, z } from '@iommukit/core';

const FRAME_ALIGN = 0x1_0000n;

export const GicItsOptionsSchema = z
  .strictObject({
    cpus: intField(1, 64).default(2).describe('CPUs, each with a redistributor and a CPU interface.'),
    redistributorBase: addressField
      .default(0x080a_0000n)
      .describe('Physical base of the redistributor frames (128 KiB per CPU, 64 KiB aligned).'),
    its: z
      .array(
        z.strictObject({
          name: nameField.describe('ITS name (its doorbell is named after it).'),
          base: addressField.describe('Physical base of its two 64 KiB frames (64 KiB aligned).'),
          devices: z.array(nameField).default([]).describe('Devices whose MSIs go to this ITS (msi-parent).'),
        }),
      )
      .min(1, { error: 'expected at least one ITS' })
      .default([{ name: 'its0', base: 0x0808_0000n, devices: [] }])
      .describe('The ITSes; devices not listed anywhere use the first.'),
    deviceIdBits: intField(1, 32).default(16).describe('DeviceID width (GITS_TYPER.Devbits + 1).'),
    eventIdBits: intField(1, 32).default(16).describe('EventID width (GITS_TYPER.ID_bits + 1).'),
    lpiIdBits: intField(14, 16).default(16).describe('LPI INTID width: LPIs 8192 … 2^bits − 1.'),
  })
  .superRefine((o, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    if (o.redistributorBase % FRAME_ALIGN !== 0n)
      issue(['redistributorBase'], 'expected a 64 KiB aligned address');
    const names = new Set<string>();
    const owner = new Map<string, string>();
    o.its.forEach((its, i) => {
      if (names.has(its.name)) issue(['its', i, 'name'], `another ITS is named "${its.name}"`);
      names.add(its.name);
      if (its.base % FRAME_ALIGN !== 0n) issue(['its', i, 'base'], 'expected a 64 KiB aligned address');
      its.devices.forEach((device, j) => {
        const other = owner.get(device);
        if (other) issue(['its', i, 'devices', j], `device "${device}" already sends its MSIs to ${other}`);
        owner.set(device, its.name);
      });
    });
  });

export type GicItsOptions = z.output<typeof GicItsOptionsSchema>;
