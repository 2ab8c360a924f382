/**
 * A log of records with a fixed capacity and a count of the records it could not keep, so a storm of
 * reports (a device faulting on every access) costs bounded memory.
 *
 * When the log is full a new record is dropped and counted in `lost`; the records already kept stay. That
 * is what the sources of these records do: a full SMMU Event queue discards new events and sets its
 * overflow flag (IHI 0070 §7.4), iommufd's vEVENTQ drops new events behind a LOST_EVENTS marker, and Linux's
 * ratelimited fault messages print the first ones of a burst and count the rest as suppressed. The first
 * records of a storm are the ones that name its cause; the later ones repeat it.
 *
 * A reader that consumes the log (as a driver consumes a queue) calls `take()`, which frees the space and
 * says how many records were lost since its previous take; other readers look at `records`.
 */
import { IommufdError } from '../errors/iommufd-error.js';

/** Records a log keeps unless told otherwise. */
export const DEFAULT_LOG_CAPACITY = 1024;

/** What {@link BoundedLog.take} hands over. */
export interface LogBatch<T> {
  /** The records kept since the previous take, oldest first. */
  readonly records: T[];
  /** Records dropped since the previous take because the log was full. */
  readonly lost: number;
}

export class BoundedLog<T> implements Iterable<T> {
  readonly capacity: number;
  private held: T[] = [];
  private dropped = 0;
  private droppedSinceTake = 0;

  constructor(capacity = DEFAULT_LOG_CAPACITY) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new IommufdError('EINVAL', `a log's capacity must be a positive integer, not ${capacity}`);
    }
    this.capacity = capacity;
  }

  /** Keeps `record`, or counts it as lost when the log is full; returns whether it was kept. */
  push(record: T): boolean {
    if (this.held.length === this.capacity) {
      this.dropped++;
      this.droppedSinceTake++;
      return false;
    }
    this.held.push(record);
    return true;
  }

  /** Records kept now. */
  get length(): number {
    return this.held.length;
  }

  /** Records dropped because the log was full, since it was made. */
  get lost(): number {
    return this.dropped;
  }

  /** The records kept, oldest first (a live view: it grows as records arrive and empties on `take`). */
  get records(): readonly T[] {
    return this.held;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.held[Symbol.iterator]();
  }

  /** Hands over every record kept and frees their space, with the count lost since the previous take. */
  take(): LogBatch<T> {
    const batch = { records: this.held, lost: this.droppedSinceTake };
    this.held = [];
    this.droppedSinceTake = 0;
    return batch;
  }
}
