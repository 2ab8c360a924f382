/**
 * The register encodings a driver writes to point an SMMUv3 (or a PE) at a VMSAv8-64 table, and that a
 * hardware model decodes back: granule (TG), input size (T0SZ), output size (IPS/PS) and, for stage 2, the
 * starting level (SL0). They are the same in TCR_ELx/VTCR_EL2 and in the SMMUv3 CD (TG0, T0SZ, IPS) and STE
 * (S2TG, S2T0SZ, S2PS, S2SL0). Arm ARM D8.2 (translation granule and lookup levels), D24.2 TCR_EL1/VTCR_EL2;
 * SMMUv3 5.2 STE, 5.4 CD. Every decoder returns `undefined` for an encoding that names nothing, which a
 * hardware model reports as an ILLEGAL structure (C_BAD_STE / C_BAD_CD).
 */

/** The granules VMSAv8-64 defines, in bytes. */
export type VmsaGranule = 4096 | 16384 | 65536;

/** Output (physical) address sizes in PS/IPS encoding order: 0 → 32 bits … 6 → 52 bits. */
export const VMSA_OAS_BITS: readonly number[] = [32, 36, 40, 42, 44, 48, 52];

/** PS/IPS encoding of an output address size; `undefined` for a size VMSAv8-64 cannot express. */
export function psEncoding(oas: number): number | undefined {
  const ps = VMSA_OAS_BITS.indexOf(oas);
  return ps < 0 ? undefined : ps;
}

/** The output address size a PS/IPS value selects (0..6). */
export function oasFromPs(ps: number): number | undefined {
  return VMSA_OAS_BITS[ps];
}

/** TG0 / S2TG encoding (TCR_ELx.TG0, VTCR_EL2.TG0, CD.TG0, STE.S2TG): 0 = 4K, 1 = 64K, 2 = 16K. */
export function tgEncoding(granule: VmsaGranule): number {
  return granule === 4096 ? 0 : granule === 65536 ? 1 : 2;
}

/** The granule a TG0 / S2TG value selects; 3 is reserved. */
export function granuleFromTg(tg: number): VmsaGranule | undefined {
  return tg === 0 ? 4096 : tg === 1 ? 65536 : tg === 2 ? 16384 : undefined;
}

/** T0SZ for an input address size: the region is 2^(64 − T0SZ) bytes. */
export function t0szFor(ias: number): number {
  return 64 - ias;
}

/** The input address size a T0SZ value selects. */
export function iasFromT0sz(t0sz: number): number {
  return 64 - t0sz;
}

/**
 * Stage 2 SL0 for a starting level (VTCR_EL2.SL0, STE.S2SL0, with SL2/DS = 0). With the 4K granule
 * 0 → level 2, 1 → level 1, 2 → level 0 (3 → level 3 needs FEAT_TTST); with 16K and 64K 0 → level 3,
 * 1 → level 2, 2 → level 1 (3 → level 0 needs FEAT_LPA2 for 16K and is reserved for 64K).
 * Returns `undefined` for a level no SL0 value selects without those features.
 */
export function sl0Encoding(granule: VmsaGranule, startLevel: number): number | undefined {
  if (granule === 4096) return startLevel >= 0 && startLevel <= 2 ? 2 - startLevel : undefined;
  return startLevel >= 1 && startLevel <= 3 ? 3 - startLevel : undefined;
}

/** The starting level an SL0 value selects, or `undefined` for a reserved value (see {@link sl0Encoding}). */
export function startLevelFromSl0(granule: VmsaGranule, sl0: number): number | undefined {
  if (sl0 < 0 || sl0 > 2) return undefined;
  return granule === 4096 ? 2 - sl0 : 3 - sl0;
}
