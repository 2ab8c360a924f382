/**
 * `IOMMU_IOAS_COPY` (Linux `iommufd_ioas_copy`): maps the user memory behind a range of one IOAS into
 * another, without the caller naming that memory again. All or nothing: a failure unmaps what it mapped.
 */
import { U64_MAX } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';
import type { IoasObject } from './ioas.js';

export interface CopyRequest {
  readonly srcIoasId: number;
  readonly dstIoasId: number;
  readonly srcIova: bigint;
  readonly length: bigint;
  /** Fixed destination IOVA; absent: iommufd picks one. */
  readonly dstIova?: bigint;
  readonly readable: boolean;
  readonly writeable: boolean;
}

/** Copies `[srcIova, +length)` of `src` into `dst` (at `dstIova`, if given); returns the IOVA used. */
export function copyIoas(
  src: IoasObject,
  dst: IoasObject,
  srcIova: bigint,
  length: bigint,
  dstIova: bigint | undefined,
  prot: { read: boolean; write: boolean },
): bigint {
  // Linux iommufd_ioas_copy / iopt_get_pages.
  if (length >= U64_MAX || srcIova >= U64_MAX || (dstIova ?? 0n) >= U64_MAX)
    throw new IommufdError('EOVERFLOW', 'IOVA or length is ULONG_MAX or more');
  if (!prot.read && !prot.write) throw new IommufdError('EINVAL', 'copy needs READABLE or WRITEABLE');
  if (length === 0n) throw new IommufdError('EINVAL', 'copy of zero length');
  if (srcIova + length - 1n > U64_MAX) throw new IommufdError('EOVERFLOW', 'source range overflows 64 bits');
  const pieces = src.iopt.slice(srcIova, length);
  let at: bigint | undefined = dstIova;
  let first: bigint | undefined;
  const made: bigint[] = [];
  try {
    for (const piece of pieces) {
      const mapped = dst.iopt.map(at, piece.memory, piece.offset, piece.length, prot);
      first ??= mapped;
      made.push(mapped);
      at = mapped + piece.length;
    }
  } catch (error) {
    for (const [i, m] of made.entries()) dst.iopt.unmap(m, pieces[i]!.length);
    throw error;
  }
  return first!;
}
