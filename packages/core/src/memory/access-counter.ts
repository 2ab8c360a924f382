/**
 * Counts the bus accesses made by one requester (a walker, a queue, a driver). Callers take their counter
 * once from {@link MemoryBus.counter} and pass it on every access, so counting costs a field increment and
 * a walker can report the memory reads one translation needed by reading `reads` before and after.
 */
export class AccessCounter {
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;
  aborts = 0;

  constructor(readonly tag: string) {}

  snapshot(): AccessCounts {
    const { reads, writes, bytesRead, bytesWritten, aborts } = this;
    return { reads, writes, bytesRead, bytesWritten, aborts };
  }

  reset(): void {
    this.reads = this.writes = this.bytesRead = this.bytesWritten = this.aborts = 0;
  }
}

export interface AccessCounts {
  readonly reads: number;
  readonly writes: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly aborts: number;
}
