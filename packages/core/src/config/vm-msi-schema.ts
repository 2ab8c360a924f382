/** How a VM's assigned devices get their MSIs to the host interrupt controller (docs/msi.md). */
import { z } from 'zod';

export const VmMsiSchema = z
  .strictObject({
    mode: z
      .enum(['sw-msi', 'passthrough'])
      .default('sw-msi')
      .describe(
        '"sw-msi": the host maps its doorbell in the SW MSI window of the stage 2 (legacy cookie); "passthrough": the VMM maps the physical doorbell at the vITS address (ioasMapMsi).',
      ),
    rmr: z
      .boolean()
      .default(true)
      .describe(
        'With sw-msi and a nested vIOMMU: the firmware tells the guest to identity-map the SW MSI window (IORT RMR).',
      ),
  })
  .describe("How assigned devices' MSIs reach the host's interrupt controller.");
