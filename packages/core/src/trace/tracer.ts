/**
 * The tracer: one ordered stream of {@link TraceRecord}s, delivered through a typed eventemitter3 event
 * and optionally kept for export. Emitting costs one boolean test when nobody listens and nothing is being
 * recorded: callers guard with `if (tracer.enabled)` before building messages or argument objects.
 */
import { EventEmitter } from 'eventemitter3';
import { token } from '../di/token.js';
import type { Disposable } from '../disposable.js';
import type { TraceArgs, TraceLayer, TraceRecord } from './trace-record.js';

interface TracerEvents {
  record: [TraceRecord];
}

const NO_ARGS: TraceArgs = Object.freeze({});

export const ITracer = token<ITracer>('iommukit.Tracer');
export interface ITracer {
  /** True when a record would go anywhere; check it before building a record's message and args. */
  readonly enabled: boolean;
  /** Appends a record to the stream (a no-op when {@link enabled} is false). */
  trace(layer: TraceLayer, source: string, name: string, message: string, args?: TraceArgs): void;
}

export class Tracer implements ITracer {
  private readonly events = new EventEmitter<TracerEvents>();
  private seq = 0;
  private recording: TraceRecord[] | undefined;
  private listeners = 0;
  enabled = false;

  /** Calls `listener` with every record from now on, until the returned handle is disposed. */
  onRecord(listener: (record: TraceRecord) => void): Disposable {
    this.events.on('record', listener);
    this.listeners++;
    this.refresh();
    let live = true;
    return {
      dispose: () => {
        if (!live) return;
        live = false;
        this.events.off('record', listener);
        this.listeners--;
        this.refresh();
      },
    };
  }

  /** Starts keeping every record (for `--trace` export or assertions). */
  startRecording(): void {
    this.recording ??= [];
    this.refresh();
  }

  /** Stops keeping records and returns what was kept. */
  stopRecording(): TraceRecord[] {
    const kept = this.recording ?? [];
    this.recording = undefined;
    this.refresh();
    return kept;
  }

  /** Records kept so far (empty when not recording). */
  get records(): readonly TraceRecord[] {
    return this.recording ?? [];
  }

  trace(layer: TraceLayer, source: string, name: string, message: string, args: TraceArgs = NO_ARGS): void {
    if (!this.enabled) return;
    const record: TraceRecord = { seq: ++this.seq, layer, source, name, message, args };
    this.recording?.push(record);
    if (this.listeners > 0) this.events.emit('record', record);
  }

  private refresh(): void {
    this.enabled = this.listeners > 0 || this.recording !== undefined;
  }
}
