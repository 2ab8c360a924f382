/**
 * Page requests and their responses in the SMMUv3 host driver (IHI 0070 §3.12.2 stalls, §4.7.1
 * CMD_RESUME, §8 PRI queue, §4.5.2 CMD_PRI_RESP; Linux `arm_smmu_handle_event`, `arm_smmu_handle_ppr`,
 * `arm_smmu_page_response`):
 * - Stalls (Linux `stall_enabled`): a master stalls when the SMMU forces stalls, or supports them and
 *   firmware marks the device `dma-can-stall` (`IommuDeviceRef.canStall`; PCIe devices never are). A stall
 *   record becomes a one-page request to the iommu core with the STAG as group index, and its response
 *   becomes CMD_RESUME (success: retry, else abort); a stall of an unknown StreamID is aborted at once.
 * - PRI: each PRI queue entry becomes a page request (Stop Markers are dropped); a request from an
 *   unknown StreamID is denied with PRI_RESP; a response becomes CMD_PRI_RESP.
 */
import {
  type IommuDeviceRef,
  IommufdError,
  NO_PASID,
  type PageResponse,
  PERM_EXEC,
  PERM_PRIV,
  PERM_READ,
  PERM_WRITE,
  toHex,
} from '@iommukit/core';
import { encodePriResp, encodeResume, PRI_RESP, RESUME_ACTION } from '../hw/commands.js';
import { decodePriEntry, isStopMarker } from '../hw/priq.js';
import type { ProbedSmmu, Smmuv3DriverHost } from './driver-host.js';
import type { Smmuv3Master } from './master-attach.js';

/**
 * A stall record (Linux: `arm_smmu_handle_event` → I/O page fault): a one-page request whose group index
 * is the STAG, answered through `pageResponse` with CMD_RESUME. A stall of an unknown StreamID is
 * terminated at once, as nobody can resolve it.
 */
export function handleStall(
  host: Smmuv3DriverHost,
  p: ProbedSmmu,
  streamId: number,
  stag: number,
  master: Smmuv3Master | undefined,
  request: { pasid: number; iova: bigint; access: number },
): void {
  host.stats.stalls++;
  if (!master) {
    p.cmdq.issue(encodeResume({ streamId, stag, action: RESUME_ACTION.TERMINATE, abort: true }));
    return;
  }
  if (!master.stall) {
    // A stall this driver never enabled (e.g. software behind it set CD.S): Linux's IOPF error response
    // reaches arm_smmu_page_response, which ignores a master without stalls. Nothing is sent, and the
    // interrupt handler goes on with the next record.
    host.log('stall.unexpected', `${master.ref.name}: stall record without stalls enabled, STAG ${stag}`);
    return;
  }
  host.log('stall', `${master.ref.name}: stalled at ${toHex(request.iova)}, STAG ${stag}`);
  host.context.reportPageRequest(master.ref, { ...request, groupIndex: stag, last: true });
}

/** A PRI queue entry (Linux `arm_smmu_handle_ppr`): a page request to the iommu core. */
export function handlePageRequest(host: Smmuv3DriverHost, p: ProbedSmmu, words: Uint32Array): void {
  const entry = decodePriEntry(words);
  if (isStopMarker(entry)) return;
  host.stats.pageRequests++;
  const master = host.masters.get(entry.streamId);
  const pasid = entry.ssv ? entry.substreamId : NO_PASID;
  if (!master) {
    // Nobody to ask: deny the group (Linux `arm_smmu_handle_ppr`).
    if (entry.last) {
      p.cmdq.issue(
        encodePriResp({
          streamId: entry.streamId,
          ssv: entry.ssv,
          substreamId: entry.ssv ? entry.substreamId : 0,
          prgIndex: entry.prgIndex,
          resp: PRI_RESP.RESPONSE_FAILURE,
        }),
      );
    }
    return;
  }
  host.context.reportPageRequest(master.ref, {
    pasid,
    iova: BigInt(entry.addressPage) * 4096n,
    access:
      (entry.read ? PERM_READ : 0) |
      (entry.write ? PERM_WRITE : 0) |
      (entry.exec ? PERM_EXEC : 0) |
      (entry.priv ? PERM_PRIV : 0),
    groupIndex: entry.prgIndex,
    last: entry.last,
  });
}

/** The iommu core's response to a page request of `master` (Linux `arm_smmu_page_response`). */
export function pageResponse(
  host: Smmuv3DriverHost,
  p: ProbedSmmu,
  master: Smmuv3Master,
  response: PageResponse,
): void {
  const device: IommuDeviceRef = master.ref;
  if (master.stall) {
    // A stall's "group" is its STAG; success retries, anything else aborts.
    const retry = response.code === 'success';
    p.cmdq.issue(
      encodeResume({
        streamId: master.streamId,
        stag: response.groupIndex,
        action: retry ? RESUME_ACTION.RETRY : RESUME_ACTION.TERMINATE,
        abort: !retry,
      }),
    );
    host.log(
      'stall.resume',
      `${device.name}: CMD_RESUME STAG ${response.groupIndex} ${retry ? 'retry' : 'abort'}`,
    );
    return;
  }
  if (!p.features.pri)
    throw new IommufdError('EOPNOTSUPP', `${host.instance} has no PRI`, { device: device.name });
  const resp =
    response.code === 'success'
      ? PRI_RESP.SUCCESS
      : response.code === 'invalid'
        ? PRI_RESP.INVALID_REQUEST
        : PRI_RESP.RESPONSE_FAILURE;
  const ssv = response.pasid !== NO_PASID;
  p.cmdq.issue(
    encodePriResp({
      streamId: master.streamId,
      ssv,
      substreamId: ssv ? response.pasid : 0,
      prgIndex: response.groupIndex,
      resp,
    }),
  );
  host.log('pri.response', `${device.name}: PRI_RESP ${response.code} group ${response.groupIndex}`);
}
