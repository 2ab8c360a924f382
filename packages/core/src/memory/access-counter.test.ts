import { describe, expect, it } from 'vitest';
import { AccessCounter } from './access-counter.js';

describe('AccessCounter', () => {
  it('starts at zero, snapshots every count by value, and resets every count', () => {
    const counter = new AccessCounter('walker');
    expect(counter.tag).toBe('walker');
    expect(counter.snapshot()).toEqual({ reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, aborts: 0 });
    counter.reads = 1;
    counter.writes = 2;
    counter.bytesRead = 3;
    counter.bytesWritten = 4;
    counter.aborts = 5;
    const snap = counter.snapshot();
    expect(snap).toEqual({ reads: 1, writes: 2, bytesRead: 3, bytesWritten: 4, aborts: 5 });
    counter.reset();
    expect(counter.snapshot()).toEqual({ reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, aborts: 0 });
    // A snapshot is a copy, not a view.
    expect(snap.reads).toBe(1);
  });
});
