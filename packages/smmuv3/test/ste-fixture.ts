/**
 * The stage-2 STE fields tests program by hand: VMID 5, AArch64, a 48-bit 4 KiB-granule stage 2 that starts
 * at level 0 with its table at `s2Ttb` (IHI 0070 §5.2), faults recorded (S2R), unless `fields` says otherwise.
 */
import { psEncoding, sl0Encoding, t0szFor } from '@iommukit/pagetables';
import type { Ste } from '../src/hw/ste.js';

export function testS2Fields(s2Ttb: number, fields: Partial<Ste> = {}): Partial<Ste> {
  return {
    s2Vmid: 5,
    s2T0sz: t0szFor(48),
    s2Sl0: sl0Encoding(4096, 0)!,
    s2Tg: 0,
    s2Ps: psEncoding(48)!,
    s2Aa64: true,
    s2R: true,
    s2Ttb,
    ...fields,
  };
}
