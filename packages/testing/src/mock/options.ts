/** Options of a mock IOMMU instance (`iommus[].options` in a config). */
import { z } from '@iommukit/core';

export const MockOptionsSchema = z.strictObject({
  /** Stream ID width: the device table has up to 2^sidBits entries. */
  sidBits: z.number().int().min(1).max(16).default(8),
  /** PASID width the hardware supports (0: no PASID tables). */
  pasidBits: z.number().int().min(0).max(20).default(8),
  /** IOTLB capacity (entries), least-recently-used replacement. */
  iotlbEntries: z.number().int().min(1).max(65536).default(64),
  /** Largest fault log the hardware accepts, as log2 of the entry count (CAP field). */
  faultLogMaxLog2: z.number().int().min(1).max(15).default(10),
  /** Hardware can set the PTE dirty bit on DMA writes (enabled per context entry). */
  dirtyTracking: z.boolean().default(true),
  /** Hardware can walk nested (stage 1 over stage 2) translations. */
  nesting: z.boolean().default(true),
  /** Hardware answers ATS translation requests and queues PRI page requests. */
  pri: z.boolean().default(true),
  /** Hardware has an interrupt remapping unit (CAP.IR); the driver turns it on. */
  interruptRemapping: z.boolean().default(true),
  /**
   * Caching mode (CAP.CM, VT-d's CAP.CM): software must invalidate after mapping too, so a VMM sees every
   * change a guest makes; what a shadowing vIOMMU sets.
   */
  cachingMode: z.boolean().default(false),
});

export type MockOptions = z.output<typeof MockOptionsSchema>;
