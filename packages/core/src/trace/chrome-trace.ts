/**
 * Exports a record stream as Chrome trace-event JSON (opens in Perfetto and chrome://tracing). The model
 * has no wall clock, so the timestamp of a record is its sequence number in microseconds: the same config
 * and seed give the same file byte for byte. Each layer of the stack is one thread track.
 */
import { TRACE_LAYERS, type TraceRecord, type TraceValue } from './trace-record.js';

export interface ChromeTraceEvent {
  name: string;
  cat: string;
  ph: 'i' | 'M';
  ts: number;
  pid: number;
  tid: number;
  s?: 't';
  args: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, string>;
}

const PID = 1;

export function toChromeTrace(records: readonly TraceRecord[], title = 'iommukit'): ChromeTrace {
  const metadata: ChromeTraceEvent[] = [
    { name: 'process_name', cat: '__metadata', ph: 'M', ts: 0, pid: PID, tid: 0, args: { name: title } },
    ...TRACE_LAYERS.map(
      (layer, i): ChromeTraceEvent => ({
        name: 'thread_name',
        cat: '__metadata',
        ph: 'M',
        ts: 0,
        pid: PID,
        tid: i + 1,
        args: { name: layer },
      }),
    ),
    ...TRACE_LAYERS.map(
      (_layer, i): ChromeTraceEvent => ({
        name: 'thread_sort_index',
        cat: '__metadata',
        ph: 'M',
        ts: 0,
        pid: PID,
        tid: i + 1,
        args: { sort_index: i },
      }),
    ),
  ];
  const events = records.map(
    (r): ChromeTraceEvent => ({
      name: r.name,
      cat: r.layer,
      ph: 'i',
      s: 't',
      ts: r.seq,
      pid: PID,
      tid: TRACE_LAYERS.indexOf(r.layer) + 1,
      args: { source: r.source, message: r.message, ...jsonArgs(r.args) },
    }),
  );
  return { traceEvents: [...metadata, ...events], displayTimeUnit: 'ms', otherData: { generator: title } };
}

/** Serialises with bigints as hex strings, one event per line so diffs of traces stay readable. */
export function stringifyChromeTrace(trace: ChromeTrace): string {
  const lines = trace.traceEvents.map((e) => JSON.stringify(e));
  return `{"displayTimeUnit":"${trace.displayTimeUnit}","otherData":${JSON.stringify(trace.otherData)},"traceEvents":[\n${lines.join(',\n')}\n]}\n`;
}

/** Converts trace argument values to JSON values (bigint → `0x…` string). */
export function jsonArgs(args: Readonly<Record<string, TraceValue>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) out[key] = jsonValue(value);
  return out;
}

export function jsonValue(value: TraceValue): unknown {
  if (typeof value === 'bigint') return `0x${value.toString(16)}`;
  if (Array.isArray(value)) return value.map(jsonValue);
  return value;
}
