import { describe, expect, it } from 'vitest';
import type { TraceRecord } from './trace-record.js';
import { Tracer } from './tracer.js';

describe('Tracer', () => {
  it('is disabled with no listener and not recording', () => {
    const tracer = new Tracer();
    expect(tracer.enabled).toBe(false);
    expect(tracer.records).toEqual([]);
  });

  it('drops records while disabled without advancing the sequence', () => {
    const tracer = new Tracer();
    tracer.trace('hw', 'iommu0', 'walk.step', 'ignored');
    tracer.trace('hw', 'iommu0', 'walk.step', 'ignored');
    tracer.startRecording();
    tracer.trace('device', 'nic0', 'dma.read', 'first');
    expect(tracer.records).toEqual([
      { seq: 1, layer: 'device', source: 'nic0', name: 'dma.read', message: 'first', args: {} },
    ]);
  });

  it('delivers records to a listener in order, and disposing turns it off', () => {
    const tracer = new Tracer();
    const seen: TraceRecord[] = [];
    const sub = tracer.onRecord((r) => seen.push(r));
    expect(tracer.enabled).toBe(true);
    tracer.trace('driver', 'smmu0', 'cmd.issue', 'one', { op: 'CFGI_STE', sid: 4 });
    tracer.trace('hw', 'smmu0', 'cmd.exec', 'two');
    tracer.trace('msi', 'gic', 'msi.write', 'three', { addr: 0xfee0_0000n });
    expect(seen.map((r) => [r.seq, r.name])).toEqual([
      [1, 'cmd.issue'],
      [2, 'cmd.exec'],
      [3, 'msi.write'],
    ]);
    expect(seen[0]?.args).toEqual({ op: 'CFGI_STE', sid: 4 });
    // Listening alone keeps nothing.
    expect(tracer.records).toEqual([]);

    sub.dispose();
    expect(tracer.enabled).toBe(false);
    tracer.trace('hw', 'smmu0', 'cmd.exec', 'dropped');
    expect(seen).toHaveLength(3);
  });

  it('disposing twice does not remove another listener', () => {
    const tracer = new Tracer();
    const first = tracer.onRecord(() => {});
    const seen: string[] = [];
    tracer.onRecord((r) => seen.push(r.message));
    first.dispose();
    first.dispose();
    expect(tracer.enabled).toBe(true);
    tracer.trace('system', 'sys', 'boot', 'still delivered');
    expect(seen).toEqual(['still delivered']);
  });

  it('stays enabled while recording after the last listener leaves', () => {
    const tracer = new Tracer();
    const sub = tracer.onRecord(() => {});
    tracer.startRecording();
    sub.dispose();
    expect(tracer.enabled).toBe(true);
    tracer.trace('iommufd', 'ctx', 'ioas.map', 'kept');
    expect(tracer.stopRecording().map((r) => r.message)).toEqual(['kept']);
    expect(tracer.enabled).toBe(false);
  });

  it('stays enabled after stopRecording while a listener remains', () => {
    const tracer = new Tracer();
    tracer.startRecording();
    const seen: number[] = [];
    tracer.onRecord((r) => seen.push(r.seq));
    tracer.trace('hw', 'a', 'x', 'm');
    expect(tracer.stopRecording()).toHaveLength(1);
    expect(tracer.enabled).toBe(true);
    expect(tracer.records).toEqual([]);
    tracer.trace('hw', 'a', 'x', 'm');
    expect(seen).toEqual([1, 2]);
  });

  it('startRecording keeps what was already recorded; stopRecording hands it over and resets', () => {
    const tracer = new Tracer();
    tracer.startRecording();
    tracer.trace('hw', 'a', 'x', 'one');
    tracer.startRecording();
    tracer.trace('hw', 'a', 'x', 'two');
    const kept = tracer.stopRecording();
    expect(kept.map((r) => [r.seq, r.message])).toEqual([
      [1, 'one'],
      [2, 'two'],
    ]);
    expect(tracer.stopRecording()).toEqual([]);
    // Sequence numbers continue across recording sessions: they order the whole stream.
    tracer.startRecording();
    tracer.trace('hw', 'a', 'x', 'three');
    expect(tracer.records.map((r) => r.seq)).toEqual([3]);
  });
});
