/**
 * FAULT object (`IOMMUFD_OBJ_FAULT`): the queue through which I/O page faults on HWPTs allocated with a
 * fault ID reach user space (a VMM forwarding them to a guest). Faults arrive in page request groups; a
 * group is read whole and answered once by its cookie. Groups still unanswered when their device
 * detaches or moves to another HWPT, or when the queue is destroyed, are answered `invalid`.
 */
import { IommufdError } from '../errors/iommufd-error.js';
import type { IommuDeviceRef } from '../iommu/driver.js';
import type { PageRequest } from '../iommu/hardware.js';
import type { IommuCore } from '../iommu/iommu-core.js';
import { NO_PASID } from '../iommu/translation.js';
import { IommufdObject } from './object-table.js';

/** One page of a fault group, as `struct iommu_hwpt_pgfault`. */
export interface PageFaultRecord {
  readonly devId: number;
  /** PASID, or undefined when the request carried none. */
  readonly pasid: number | undefined;
  readonly groupId: number;
  /** PERM_* bits the access needed. */
  readonly perm: number;
  readonly addr: bigint;
  readonly length: number;
  readonly last: boolean;
  /** Identifies the group in the response. */
  readonly cookie: number;
}

export type FaultResponseCode = 'success' | 'invalid';

interface Group {
  readonly cookie: number;
  readonly device: IommuDeviceRef;
  readonly devId: number;
  readonly pasid: number;
  readonly groupId: number;
  readonly records: PageFaultRecord[];
  complete: boolean;
}

export class FaultObject extends IommufdObject {
  readonly type = 'fault';
  private nextCookie = 1;
  /** Groups still being assembled or waiting to be read, in arrival order. */
  private readonly pending: Group[] = [];
  /** Groups read by the user and not yet answered, by cookie. */
  private readonly awaiting = new Map<number, Group>();

  constructor(private readonly core: IommuCore) {
    super();
  }

  /** Queues one page request for the device bound as `devId`. */
  enqueue(device: IommuDeviceRef, devId: number, request: PageRequest): void {
    let group = this.pending.find(
      (g) =>
        !g.complete && g.device === device && g.groupId === request.groupIndex && g.pasid === request.pasid,
    );
    if (!group) {
      group = {
        cookie: this.nextCookie++,
        device,
        devId,
        pasid: request.pasid,
        groupId: request.groupIndex,
        records: [],
        complete: false,
      };
      this.pending.push(group);
    }
    group.records.push({
      devId,
      pasid: request.pasid === NO_PASID ? undefined : request.pasid,
      groupId: request.groupIndex,
      perm: request.access,
      addr: request.iova,
      length: 4096,
      last: request.last,
      cookie: group.cookie,
    });
    if (request.last) group.complete = true;
  }

  /** Complete groups waiting to be read. */
  get queued(): number {
    return this.pending.filter((g) => g.complete).length;
  }

  /** Reads every complete group (whole groups only), moving them to the awaiting-response set. */
  read(): PageFaultRecord[] {
    const out: PageFaultRecord[] = [];
    for (const group of this.pending.filter((g) => g.complete)) {
      out.push(...group.records);
      this.awaiting.set(group.cookie, group);
      this.pending.splice(this.pending.indexOf(group), 1);
    }
    return out;
  }

  /** Answers a group by cookie; `EINVAL` for an unknown cookie. */
  respond(cookie: number, code: FaultResponseCode): void {
    const group = this.awaiting.get(cookie);
    if (!group)
      throw new IommufdError('EINVAL', `no outstanding fault group with cookie ${cookie}`, { cookie });
    this.awaiting.delete(cookie);
    this.core.respond(group.device, { pasid: group.pasid, groupIndex: group.groupId, code });
  }

  /** Answers `invalid` to every unanswered group of a device at a PASID (detach, replace). */
  abandon(device: IommuDeviceRef, pasid: number): void {
    for (const group of [...this.pending, ...this.awaiting.values()]) {
      if (group.device === device && group.pasid === pasid) this.drop(group);
    }
  }

  destroy(): void {
    for (const group of [...this.pending, ...this.awaiting.values()]) this.drop(group);
  }

  private drop(group: Group): void {
    const index = this.pending.indexOf(group);
    if (index >= 0) this.pending.splice(index, 1);
    this.awaiting.delete(group.cookie);
    if (group.complete)
      this.core.respond(group.device, { pasid: group.pasid, groupIndex: group.groupId, code: 'invalid' });
  }
}
