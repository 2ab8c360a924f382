/**
 * What the tracer records. Every layer of the stack reports into one stream so a reader sees a DMA go
 * from the device through the hardware model, or a guest's write go from the front-end to iommufd to the
 * host driver, in order.
 */

/** The layers of the stack (docs/design.md §1); each is one track in the exported trace. */
export const TRACE_LAYERS = [
  'guest-driver',
  'frontend',
  'iommufd',
  'driver',
  'hw',
  'device',
  'msi',
  'system',
] as const;
export type TraceLayer = (typeof TRACE_LAYERS)[number];

/** Argument values are JSON-friendly; bigints are printed as hex by the exporters. */
export type TraceValue = string | number | boolean | bigint | null | readonly TraceValue[];
export type TraceArgs = Readonly<Record<string, TraceValue>>;

export interface TraceRecord {
  /** Position in the stream, from 1, strictly increasing: the only clock the model has. */
  readonly seq: number;
  readonly layer: TraceLayer;
  /** The instance that acted: `iommu0`, `nic0`, `vm0/vsmmu`. */
  readonly source: string;
  /** A stable, dotted event name: `dma.write`, `dte.fetch`, `walk.step`, `fault.record`. */
  readonly name: string;
  /** One line for people, as a kernel developer would describe the step. */
  readonly message: string;
  readonly args: TraceArgs;
}
