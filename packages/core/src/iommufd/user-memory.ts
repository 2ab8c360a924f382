/**
 * Memory a user maps into an IOAS. In Linux that is a pinned range of the caller's virtual memory or a
 * memfd; here it is host memory the caller describes. The IOAS only asks where each byte lives and how
 * far the physically contiguous run goes, so a process address space (for SVA) can implement it later.
 */
import { type Hpa, hpa, toHex } from '../address/address.js';
import { IommufdError } from '../errors/iommufd-error.js';

export interface UserMemory {
  /** Bytes of memory, from offset 0. */
  readonly length: bigint;
  /** Host physical address of byte `offset`. */
  physAt(offset: bigint): Hpa;
  /** Bytes from `offset` that are physically contiguous with it (at least up to the next page). */
  contiguousFrom(offset: bigint): bigint;
  /** Shown in traces and errors. */
  readonly description: string;
}

/** A physically contiguous range of host memory (a pinned buffer, a memfd backed by one huge folio). */
export function hostMemory(base: Hpa | bigint, length: bigint): UserMemory {
  if (length <= 0n) throw new IommufdError('EINVAL', 'user memory must not be empty');
  const start = hpa(base);
  return {
    length,
    physAt: (offset) => hpa(start + offset),
    contiguousFrom: (offset) => length - offset,
    description: `host memory ${toHex(start)}+${toHex(length)}`,
  };
}

/** Checks that a caller's `memory` argument is a {@link UserMemory} (`EINVAL` otherwise). */
export function userMemoryArg(value: unknown): UserMemory {
  const memory = value as Partial<UserMemory> | null;
  if (
    typeof memory !== 'object' ||
    memory === null ||
    typeof memory.length !== 'bigint' ||
    memory.length <= 0n ||
    typeof memory.physAt !== 'function' ||
    typeof memory.contiguousFrom !== 'function'
  )
    throw new IommufdError('EINVAL', 'memory must be a non-empty UserMemory (see hostMemory)');
  return memory as UserMemory;
}
