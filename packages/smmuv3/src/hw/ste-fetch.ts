/**
 * Finding and reading a StreamID's STE the way the SMMU does (SMMUv3 §3.3.1): the StreamID against the
 * table's size, the L1STD of a 2-level table, then the 64-byte STE. Shared by the device's translation
 * pipeline and a vSMMU reading a guest's Stream table in guest memory.
 */
import { type AccessCounter, type MemoryBus, toHex } from '@iommukit/core';
import { pow2 } from '@iommukit/pagetables';
import type { TranslationState } from './programming-interface.js';
import {
  decodeL1Std,
  L1STD_WORDS,
  l1StdAddress,
  STE_WORDS,
  steAddressFromL1Std,
  steAddressLinear,
} from './ste.js';

export type SteFetch =
  | { readonly ok: true; readonly address: number }
  | {
      readonly ok: false;
      readonly event: 'C_BAD_STREAMID' | 'F_STE_FETCH';
      readonly reason: string;
      readonly fetchAddr?: number;
    };

/** Reads the STE of `streamId` into `out` (16 words); the event the SMMU records when it cannot. */
export function fetchSteWords(
  bus: MemoryBus,
  counter: AccessCounter,
  state: TranslationState,
  sidBits: number,
  streamId: number,
  out: Uint32Array,
): SteFetch {
  if (streamId >= pow2(Math.min(state.strtabLog2Size, sidBits))) {
    return {
      ok: false,
      event: 'C_BAD_STREAMID',
      reason: `StreamID ${toHex(streamId)} is beyond the stream table`,
    };
  }
  let address: number;
  if (state.strtabFmt === 1) {
    const l1 = l1StdAddress(state.strtabBase, streamId, state.strtabSplit);
    if (!bus.readWords(l1, out, L1STD_WORDS, counter))
      return { ok: false, event: 'F_STE_FETCH', reason: `L1STD at ${toHex(l1)} aborted`, fetchAddr: l1 };
    // An invalid L1STD, or a StreamID beyond its Span, is C_BAD_STREAMID (§5.1.1).
    const at = steAddressFromL1Std(decodeL1Std(out), streamId, state.strtabSplit);
    if (!at.ok) return { ok: false, event: 'C_BAD_STREAMID', reason: at.reason };
    address = at.address;
  } else {
    address = steAddressLinear(state.strtabBase, streamId);
  }
  if (!bus.readWords(address, out, STE_WORDS, counter)) {
    return {
      ok: false,
      event: 'F_STE_FETCH',
      reason: `STE at ${toHex(address)} aborted`,
      fetchAddr: address,
    };
  }
  return { ok: true, address };
}
