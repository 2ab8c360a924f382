/**
 * Stalled transactions (SMMUv3 §3.12.2): a transaction whose translation-related fault the configuration
 * asks to stall (CD.S at stage 1, STE.S2S at stage 2) is held here instead of being terminated, with the
 * Stall Tag (STAG) its event record carries. Software ends it with CMD_RESUME (StreamID + STAG: retry as
 * if newly arrived, or terminate), CMD_STALL_TERM (every stalled transaction of a StreamID) or by clearing
 * SMMUEN.
 *
 * STAGs are 16 bits and unique among held transactions (the spec forbids reuse until the transaction is
 * acknowledged); the lowest free one is used. At most IDR5.STALL_MAX transactions are held; one more
 * stalling fault is terminated instead and recorded with Stall = 0, which §3.12 permits (the spec leaves
 * what a full stall buffer does to the implementation). A transaction whose stall record could not be written (Event
 * queue full or disabled) holds no STAG: software cannot name it, and the SMMU retries it when the queue
 * can take records again (§3.12.2, §7.2.1). Each held transaction also keeps the endpoint-facing id it was
 * given when it first stalled, so a retry that stalls again stays the same transaction for the endpoint.
 *
 * Not modelled: suppression of duplicate stall records (permitted, §3.12.2.1) and early retry
 * (permitted, §3.12.2.2) — every stalling transaction records its own event and waits for software.
 */
import type { IommuFault, TranslationRequest } from '@iommukit/core';

/** STAG is a 16-bit field of the event record and CMD_RESUME. */
export const STAG_COUNT = 1 << 16;

export interface StalledTransaction {
  /** The id the endpoint knows the transaction by (`TranslationFailure.stallId`). */
  readonly id: number;
  readonly request: TranslationRequest;
  /** The fault that stalled it; a terminated transaction ends with it. */
  readonly fault: IommuFault;
  /** The STAG of its event record; undefined while the record is waiting for room in the Event queue. */
  readonly stag: number | undefined;
}

export class StallBuffer {
  /** @param capacity IDR5.STALL_MAX. */
  constructor(readonly capacity: number) {}

  private readonly byStag = new Map<number, StalledTransaction>();
  private readonly unrecorded: StalledTransaction[] = [];
  private nextId = 1;

  /** Transactions held now (recorded or waiting for the Event queue). */
  get size(): number {
    return this.byStag.size + this.unrecorded.length;
  }

  /** A fresh endpoint-facing id. */
  newId(): number {
    return this.nextId++;
  }

  /** The lowest STAG not held, or undefined when the buffer is full. */
  freeStag(): number | undefined {
    if (this.size >= this.capacity) return undefined;
    for (let stag = 0; stag < STAG_COUNT; stag++) if (!this.byStag.has(stag)) return stag;
    return undefined;
  }

  hold(transaction: StalledTransaction): void {
    if (transaction.stag === undefined) this.unrecorded.push(transaction);
    else this.byStag.set(transaction.stag, transaction);
  }

  /** The transaction CMD_RESUME names (StreamID and STAG must both match, §3.12.2). */
  take(streamId: number, stag: number): StalledTransaction | undefined {
    const t = this.byStag.get(stag);
    if (!t || t.request.streamId !== streamId) return undefined;
    this.byStag.delete(stag);
    return t;
  }

  /** Every transaction of a StreamID (CMD_STALL_TERM), recorded or not. */
  takeStream(streamId: number): StalledTransaction[] {
    const out: StalledTransaction[] = [];
    for (const [stag, t] of this.byStag) {
      if (t.request.streamId !== streamId) continue;
      this.byStag.delete(stag);
      out.push(t);
    }
    for (let i = this.unrecorded.length - 1; i >= 0; i--) {
      if (this.unrecorded[i]!.request.streamId === streamId) out.push(...this.unrecorded.splice(i, 1));
    }
    return out;
  }

  /** Every held transaction (SMMUEN cleared). */
  takeAll(): StalledTransaction[] {
    const out = [...this.byStag.values(), ...this.unrecorded];
    this.byStag.clear();
    this.unrecorded.length = 0;
    return out;
  }

  /** The transactions whose stall record is still to be written, oldest first. */
  takeUnrecorded(): StalledTransaction[] {
    return this.unrecorded.splice(0);
  }

  /** The held transactions with a STAG, for tests and traces. */
  recorded(): readonly StalledTransaction[] {
    return [...this.byStag.values()];
  }
}
