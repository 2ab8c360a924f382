import { describe, expect, it } from 'vitest';
import { jsonValue, stringifyChromeTrace, toChromeTrace } from './chrome-trace.js';
import { TRACE_LAYERS, type TraceRecord } from './trace-record.js';
import { Tracer } from './tracer.js';

/** A small, fixed run: the same calls always give the same record stream. */
function run(): TraceRecord[] {
  const tracer = new Tracer();
  tracer.startRecording();
  tracer.trace('device', 'nic0', 'dma.write', 'nic0 writes 64 bytes', { iova: 0x1000n, len: 64 });
  tracer.trace('hw', 'iommu0', 'walk.step', 'level 3 table', { table: 0xffff_ffff_ffff_f000n, level: 3 });
  tracer.trace('driver', 'smmu0', 'cmd.issue', 'TLBI', { ok: true, extra: null, ids: [1n, 2, 'x'] });
  tracer.trace('hw', 'iommu0', 'walk.done', 'hit');
  return tracer.stopRecording();
}

describe('toChromeTrace', () => {
  const trace = toChromeTrace(run(), 'unit');
  const metadata = trace.traceEvents.filter((e) => e.ph === 'M');
  const events = trace.traceEvents.filter((e) => e.ph === 'i');

  it('names the process and one thread per layer', () => {
    expect(metadata[0]).toMatchObject({ name: 'process_name', tid: 0, args: { name: 'unit' } });
    const threads = metadata.filter((e) => e.name === 'thread_name');
    expect(threads.map((e) => e.args.name)).toEqual([...TRACE_LAYERS]);
    expect(new Set(threads.map((e) => e.tid)).size).toBe(TRACE_LAYERS.length);
    expect(threads.every((e) => e.tid > 0 && e.pid === 1)).toBe(true);
    expect(trace.otherData).toEqual({ generator: 'unit' });
  });

  it('writes the metadata viewers read: a __metadata category, thread order by layer, the default title', () => {
    expect(metadata.every((e) => e.cat === '__metadata' && e.ts === 0)).toBe(true);
    const order = metadata.filter((e) => e.name === 'thread_sort_index');
    expect(order.map((e) => [e.tid, e.args.sort_index])).toEqual(TRACE_LAYERS.map((_, i) => [i + 1, i]));
    const untitled = toChromeTrace([]);
    expect(untitled.traceEvents[0]!.args).toEqual({ name: 'iommukit' });
    expect(untitled.otherData).toEqual({ generator: 'iommukit' });
    expect(untitled.displayTimeUnit).toBe('ms');
    expect(events[0]!.args).toMatchObject({ source: 'nic0', message: 'nic0 writes 64 bytes' });
  });

  it('puts each record on its layer thread with ts equal to seq', () => {
    const tidOf = new Map(
      metadata.filter((e) => e.name === 'thread_name').map((e) => [e.args.name as string, e.tid]),
    );
    expect(events.map((e) => [e.name, e.cat, e.ts, e.tid])).toEqual([
      ['dma.write', 'device', 1, tidOf.get('device')],
      ['walk.step', 'hw', 2, tidOf.get('hw')],
      ['cmd.issue', 'driver', 3, tidOf.get('driver')],
      ['walk.done', 'hw', 4, tidOf.get('hw')],
    ]);
    expect(tidOf.get('hw')).not.toBe(tidOf.get('device'));
    expect(events.every((e) => e.s === 't' && e.pid === 1)).toBe(true);
  });

  it('turns bigint arguments into 0x strings, leaving other values alone', () => {
    expect(events[0]?.args).toEqual({
      source: 'nic0',
      message: 'nic0 writes 64 bytes',
      iova: '0x1000',
      len: 64,
    });
    expect(events[1]?.args.table).toBe('0xfffffffffffff000');
    expect(events[2]?.args).toMatchObject({ ok: true, extra: null, ids: ['0x1', 2, 'x'] });
    expect(jsonValue(0n)).toBe('0x0');
  });
});

describe('stringifyChromeTrace', () => {
  it('produces JSON that parses back to the same trace', () => {
    const trace = toChromeTrace(run());
    const text = stringifyChromeTrace(trace);
    expect(JSON.parse(text)).toEqual(trace);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('writes one event per line', () => {
    const trace = toChromeTrace(run());
    const lines = stringifyChromeTrace(trace).trimEnd().split('\n');
    // Opening line, one line per event, closing bracket.
    expect(lines).toHaveLength(trace.traceEvents.length + 2);
  });

  it('is byte-for-byte identical for identical record streams', () => {
    const a = stringifyChromeTrace(toChromeTrace(run()));
    const b = stringifyChromeTrace(toChromeTrace(run()));
    expect(a).toBe(b);
    expect(stringifyChromeTrace(toChromeTrace(run().slice(1)))).not.toBe(a);
  });

  it('handles an empty stream', () => {
    const trace = toChromeTrace([]);
    expect(JSON.parse(stringifyChromeTrace(trace))).toEqual(trace);
    expect(trace.traceEvents.every((e) => e.ph === 'M')).toBe(true);
  });
});
