/**
 * The guest's view of the tracer: the vendor driver running inside a VM traces as `driver`, like the host
 * one; here its records go to the `guest-driver` track so a trace shows the guest and the host apart.
 */
import type { ITracer, TraceArgs, TraceLayer } from '@iommukit/core';

export function guestTracer(tracer: ITracer): ITracer {
  return {
    get enabled() {
      return tracer.enabled;
    },
    trace(layer: TraceLayer, source: string, name: string, message: string, args?: TraceArgs) {
      tracer.trace(layer === 'driver' ? 'guest-driver' : layer, source, name, message, args);
    },
  };
}
