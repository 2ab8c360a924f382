/**
 * The trace line of one descriptor a hardware walk read — `walk <label> L<level> read <address> = <value>`,
 * the same in every vendor's trace — as the walker's `onStep` callback. Vendors hand it to a walk only
 * while tracing is on; the check inside keeps the no-string-unless-tracing rule visible. The value is exact
 * to all 64 bits.
 */
import { type ITracer, toHex } from '@iommukit/core';

export type WalkStepTracer = (level: number, address: number, lo: number, hi: number) => void;

/**
 * @param label how the line names the walk (`S1`, `FS`, `host`)
 * @param stage the trace record's `stage` argument
 */
export function walkStepTracer(
  tracer: ITracer,
  instance: string,
  label: string,
  stage: string | number,
): WalkStepTracer {
  return (level, address, lo, hi) => {
    if (!tracer.enabled) return;
    tracer.trace(
      'hw',
      instance,
      'walk.step',
      // The descriptor as a BigInt: hi · 2^32 + lo as a number loses bits above 2^53 (IR/IW, XD, …).
      `walk ${label} L${level} read ${toHex(address)} = ${toHex((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0))}`,
      { stage, level, addr: address },
    );
  };
}
