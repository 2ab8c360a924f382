/**
 * VMSAv8-64 table geometry: from a stage, a granule and the input/output address sizes to the walk's
 * starting level, the number of levels, the size of the (possibly concatenated) root and the page and block
 * sizes. Invalid combinations throw `EINVAL` with the reason, as io-pgtable refuses a bad `io_pgtable_cfg`.
 *
 * The rules (Arm ARM D8.2, "Translation granule", "Initial lookup level", "Concatenated translation tables"):
 * - bits per level = granule shift − 3; input bits resolved by tables = IAS − granule shift;
 *   levels = ceil(those bits / bits per level); start level = 4 − levels. The root decodes what is left over.
 * - Stage 2 may concatenate up to 16 tables at the initial level instead of starting one level higher
 *   (I_TDMHR). With `concatenation: 'fold'` (the default, what Linux generic_pt does) a root of at most 16
 *   entries is always folded into the next level, removing a lookup; with `'mandatory'` (what Linux
 *   io-pgtable-arm does since commit 4dcac8407fe1) it is folded only where the architecture forbids the
 *   unfolded level.
 * - Stage 2 initial-level limits without FEAT_LPA2/FEAT_TTST (R_SRKBC, R_DXBSH; Table "effective minimum
 *   T0SZ"): 4K cannot start at level 3, and at level 0 only with a PA size ≥ 44; 16K cannot start at level 0,
 *   and at level 1 only with a PA size ≥ 42; 64K starts at level 1 only with a PA size ≥ 44. With IAS = OAS
 *   this makes 4K/40 (2 tables at L1), 4K/42 (8 at L1), 16K/40 (16 at L2) and 16K/48 (2 at L1) mandatory.
 * - Stage 2 input size is capped at the output size (SMMUv3 3.4: the stage 2 input range is capped to the
 *   IAS, which is the OAS for AArch64 tables). 52-bit input or output needs the 64K granule here (FEAT_LVA,
 *   FEAT_LPA); the 4K/16K 52-bit formats (FEAT_LPA2, DS = 1) are not modelled.
 * - Block descriptors: 4K at levels 1 and 2; 16K at level 2; 64K at level 2, and at level 1 (4 TB) only with
 *   52-bit output addresses. Level 3 holds pages.
 */
import { IommufdError } from '@iommukit/core';
import { pow2 } from '../format.js';
import type { VmsaGranule } from './registers.js';
import { VMSA_OAS_BITS } from './registers.js';

/** How a stage-2 root is concatenated. */
export type VmsaConcatenation = 'fold' | 'mandatory';

export interface VmsaConfig {
  readonly stage: 1 | 2;
  readonly granule: VmsaGranule;
  /** Input address bits (64 − T0SZ). */
  readonly ias: number;
  /** Output address bits (the IPS/PS size). */
  readonly oas: number;
  /** Stage 2 only; default `fold`. Ignored when {@link startLevel} is given. */
  readonly concatenation?: VmsaConcatenation;
  /**
   * Stage 2 only: the starting level the hardware was told (from SL0), instead of deriving it. The root is
   * then as many concatenated tables as the input size needs; more than 16, or a level the input size does
   * not reach, is `EINVAL` (a hardware model reports it as an ILLEGAL STE).
   */
  readonly startLevel?: number;
}

export interface VmsaGeometry {
  readonly stage: 1 | 2;
  readonly granule: VmsaGranule;
  readonly granuleShift: number;
  readonly bitsPerLevel: number;
  readonly ias: number;
  readonly oas: number;
  readonly startLevel: number;
  readonly levels: number;
  /** Tables concatenated at the start level (1 when not concatenated). */
  readonly rootTables: number;
  /** Entries in the whole root. */
  readonly rootEntries: number;
  readonly rootBytes: number;
  /** Levels that may hold block descriptors (level 3 always holds pages). */
  readonly blockLevels: readonly number[];
  readonly pgsizeBitmap: bigint;
}

const MAX_CONCAT_TABLES = 16;
const MIN_IAS = 25; // T0SZ ≤ 39 without FEAT_TTST

function fail(config: VmsaConfig, why: string): never {
  throw new IommufdError(
    'EINVAL',
    `unsupported VMSAv8-64 stage ${config.stage} config (granule ${config.granule}, IAS ${config.ias}, OAS ${config.oas}): ${why}`,
    { stage: config.stage, granule: config.granule, ias: config.ias, oas: config.oas },
  );
}

/** Whether stage 2 may start at `level` with this granule and output size (see the module comment). */
export function s2StartLevelAllowed(granule: VmsaGranule, level: number, oas: number): boolean {
  if (granule === 4096) return level === 0 ? oas >= 44 : level === 1 || level === 2;
  if (granule === 16384) return level === 1 ? oas >= 42 : level === 2 || level === 3;
  return level === 1 ? oas >= 44 : level === 2 || level === 3;
}

/** Levels at which a block descriptor is architecturally valid for this granule and output size. */
function blockLevelsFor(granule: VmsaGranule, oas: number): number[] {
  if (granule === 4096) return [1, 2];
  if (granule === 16384) return [2];
  return oas === 52 ? [1, 2] : [2];
}

/** Computes and validates the geometry of a VMSAv8-64 table. */
export function vmsaGeometry(config: VmsaConfig): VmsaGeometry {
  const { stage, granule, ias, oas } = config;
  if (stage !== 1 && stage !== 2) fail(config, 'the stage must be 1 or 2');
  if (granule !== 4096 && granule !== 16384 && granule !== 65536) {
    fail(config, 'the granule must be 4096, 16384 or 65536 bytes');
  }
  if (!VMSA_OAS_BITS.includes(oas)) fail(config, `the OAS must be one of ${VMSA_OAS_BITS.join(', ')} bits`);
  if (oas === 52 && granule !== 65536) {
    fail(config, '52-bit output addresses need the 64K granule (FEAT_LPA2 formats are not modelled)');
  }
  const maxIas = granule === 65536 ? 52 : 48;
  if (!Number.isInteger(ias) || ias < MIN_IAS || ias > maxIas) {
    fail(config, `the IAS must be an integer in [${MIN_IAS}, ${maxIas}] bits for this granule`);
  }
  if (stage === 2 && ias > oas) fail(config, 'a stage 2 input range cannot exceed the output size');
  if (stage === 1 && (config.startLevel !== undefined || config.concatenation !== undefined)) {
    fail(config, 'concatenation and an explicit start level exist only at stage 2');
  }

  const granuleShift = Math.log2(granule);
  const bpl = granuleShift - 3;
  const tableBits = ias - granuleShift;
  let levels = Math.ceil(tableBits / bpl);
  let rootBits = tableBits - bpl * (levels - 1);
  let rootTables = 1;

  if (stage === 2) {
    if (config.startLevel !== undefined) {
      const start = config.startLevel;
      if (!Number.isInteger(start) || start < 0 || start > 3)
        fail(config, `start level ${start} is not 0..3`);
      levels = 4 - start;
      rootBits = tableBits - bpl * (levels - 1);
      if (rootBits <= 0) fail(config, `the input size does not reach start level ${start}`);
      if (rootBits > bpl + 4) {
        fail(config, `starting at level ${start} needs ${pow2(rootBits - bpl)} concatenated tables (max 16)`);
      }
      if (rootBits > bpl) rootTables = pow2(rootBits - bpl);
    } else {
      const mode = config.concatenation ?? 'fold';
      if (mode !== 'fold' && mode !== 'mandatory') fail(config, `unknown concatenation mode "${mode}"`);
      const folded = 4 - levels + 1;
      const canFold =
        levels > 1 && pow2(rootBits) <= MAX_CONCAT_TABLES && s2StartLevelAllowed(granule, folded, oas);
      const mustFold = !s2StartLevelAllowed(granule, 4 - levels, oas);
      if (canFold && (mode === 'fold' || mustFold)) {
        rootTables = pow2(rootBits);
        rootBits += bpl;
        levels -= 1;
      }
    }
    if (!s2StartLevelAllowed(granule, 4 - levels, oas)) {
      fail(config, `stage 2 cannot start at level ${4 - levels} with this granule and a ${oas}-bit PA size`);
    }
  }

  const startLevel = 4 - levels;
  const rootEntries = pow2(rootBits);
  const blockLevels = blockLevelsFor(granule, oas).filter((l) => l >= startLevel);
  let pgsizeBitmap = 1n << BigInt(granuleShift);
  for (const l of blockLevels) pgsizeBitmap |= 1n << BigInt(granuleShift + (3 - l) * bpl);
  return {
    stage,
    granule,
    granuleShift,
    bitsPerLevel: bpl,
    ias,
    oas,
    startLevel,
    levels,
    rootTables,
    rootEntries,
    rootBytes: rootEntries * 8,
    blockLevels,
    pgsizeBitmap,
  };
}
