/**
 * What the mock's INV_CMD opcodes drop from its caches (packages/testing/README.md, the INV_CMD table):
 * IOTLB entries by domain, stage-1 tag and range, configuration cache entries by stream, and interrupt
 * remapping entries by index.
 */
import type { LruCache } from '@iommukit/core';
import type { ContextEntry } from './formats.js';
import type { MockInterruptRemapping } from './interrupt-remapping.js';
import { INV } from './regs.js';

/** A completed invalidation: the INV_CMD opcode and the INV_ARG, INV_ADDR and INV_SIZE it ran with. */
export interface MockInvalidation {
  readonly op: number;
  readonly arg: number;
  readonly iova: bigint;
  readonly size: bigint;
}

export interface TlbEntry {
  readonly domainId: number;
  /** 0 for single-stage entries; the stage-1 tag for nested ones. */
  readonly s1Tag: number;
  readonly iovaPfn: number;
  readonly pfn: number;
  readonly perm: number;
  /** The leaf's dirty bit was set when the entry was filled: writes through it need no walk. */
  readonly dirty: boolean;
}

/** The caches an invalidation reaches. */
export interface MockCaches {
  readonly iotlb: LruCache<string, TlbEntry>;
  /** Context entries by `sid` (device table) and `sid:pasid` (PASID table). */
  readonly configCache: LruCache<string, ContextEntry>;
  readonly interruptRemapping: MockInterruptRemapping | undefined;
}

/** Runs one invalidation; returns the entries it dropped, or undefined for an unknown opcode. */
export function runInvalidation(
  { op, arg, iova, size }: MockInvalidation,
  caches: MockCaches,
): number | undefined {
  const { iotlb, configCache, interruptRemapping } = caches;
  const did = arg & 0xffff;
  const tag = arg >>> 16;
  const first = Number(iova >> 12n);
  const pages = Number((size + 0xfffn) >> 12n);
  const inRange = (e: TlbEntry) => e.iovaPfn >= first && e.iovaPfn < first + pages;
  switch (op) {
    case INV.ALL:
      return iotlb.clear() + configCache.clear() + (interruptRemapping?.invalidateAll() ?? 0);
    case INV.IEC:
      return interruptRemapping?.invalidate(did, Number(size)) ?? 0;
    case INV.IEC_ALL:
      return interruptRemapping?.invalidateAll() ?? 0;
    case INV.DOMAIN:
      return iotlb.deleteWhere((e) => e.domainId === did);
    case INV.RANGE:
      // A stage-2 range change can affect any nested entry on that domain: the IPA it came from is not tagged.
      return iotlb.deleteWhere((e) => e.domainId === did && (e.s1Tag !== 0 || inRange(e)));
    case INV.DEVICE:
      return configCache.deleteWhere((_e, key) => key === `${arg}` || key.startsWith(`${arg}:`));
    case INV.S1_ALL:
      return iotlb.deleteWhere((e) => e.domainId === did && e.s1Tag === tag);
    case INV.S1_RANGE:
      return iotlb.deleteWhere((e) => e.domainId === did && e.s1Tag === tag && inRange(e));
    default:
      return undefined;
  }
}
