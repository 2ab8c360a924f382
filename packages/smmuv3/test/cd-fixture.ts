/**
 * The CD tests program by hand: valid, AArch64, a 48-bit 4 KiB-granule stage 1 at `ttb0` (TTB1 off), faults
 * recorded and aborting, ASID 1 unless `fields` says otherwise.
 */
import { psEncoding, t0szFor } from '@iommukit/pagetables';
import { type Cd, encodeCd } from '../src/hw/cd.js';

export function testCd(ttb0: number, fields: Partial<Cd> = {}): Uint32Array {
  return encodeCd({
    v: true,
    t0sz: t0szFor(48),
    tg0: 0,
    ips: psEncoding(48)!,
    aa64: true,
    r: true,
    a: true,
    aset: true,
    epd1: true,
    asid: 1,
    ttb0,
    ...fields,
  });
}
