/**
 * An endpoint's PCIe Page Request Interface. The device may have at most `maxOutstanding` page requests
 * in flight (the "Outstanding Page Request Allocation" the OS grants); a request beyond that is not sent.
 * A page request group (PRG) is answered by one response, which frees every request of the group.
 */
import type { PageResponse, PageResponseCode } from '../iommu/hardware.js';

/** PRG indices are 9 bits (PCIe Base Spec §10.4.1). */
export const PRG_INDEX_LIMIT = 512;

export class PageRequestInterface {
  enabled = false;
  private readonly inFlight = new Map<number, number>();
  private nextGroup = 0;
  /** Responses received, in order, for the device's driver or a test to read. */
  readonly responses: PageResponse[] = [];

  constructor(readonly maxOutstanding: number) {
    if (!Number.isSafeInteger(maxOutstanding) || maxOutstanding <= 0) {
      throw new RangeError(`PRI outstanding allocation ${maxOutstanding} must be positive`);
    }
  }

  /** Requests in flight across all groups. */
  get outstanding(): number {
    let n = 0;
    for (const c of this.inFlight.values()) n += c;
    return n;
  }

  /** Reserves a group index for `pages` requests, or undefined when that would exceed the allocation. */
  openGroup(pages: number): number | undefined {
    if (!this.enabled || pages <= 0 || this.outstanding + pages > this.maxOutstanding) return undefined;
    for (let tries = 0; tries < PRG_INDEX_LIMIT; tries++) {
      const index = this.nextGroup;
      this.nextGroup = (this.nextGroup + 1) % PRG_INDEX_LIMIT;
      if (!this.inFlight.has(index)) {
        this.inFlight.set(index, pages);
        return index;
      }
    }
    return undefined;
  }

  /** Records a response; unknown group indices are ignored, as a device drops a stray response. */
  complete(response: PageResponse): boolean {
    if (!this.inFlight.delete(response.groupIndex)) return false;
    this.responses.push(response);
    return true;
  }

  lastResponse(groupIndex: number): PageResponseCode | undefined {
    for (let i = this.responses.length - 1; i >= 0; i--) {
      const r = this.responses[i]!;
      if (r.groupIndex === groupIndex) return r.code;
    }
    return undefined;
  }
}
