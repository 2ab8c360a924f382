/**
 * The bits of an STE or CD that the SMMU uses for the configuration the entry holds: the `used` callback of
 * the hitless entry writer (`entry-writer.ts`), with the rules of Linux arm-smmu-v3 `arm_smmu_get_ste_used`
 * and `arm_smmu_get_cd_used`.
 *
 * Why it matters: the SMMU fetches an STE or CD with only 64-bit single-copy atomicity (SMMUv3 §3.21.3), so
 * while the driver rewrites an entry of several qwords the SMMU may see any mix of old and new qwords. Bits
 * the current configuration does not use are IGNORED by the hardware (§5.2 and §5.4 give, field by field,
 * the Config values and controls under which a field is IGNORED), so they can be changed freely; only the
 * used bits have to move in one 64-bit store.
 *
 * STE (§5.2), qwords 0–3; qwords 4–7 are never used:
 * - always V; with V = 1 also Config;
 * - Config bit 0 (stage 1: 0b101, 0b111): S1Fmt, S1ContextPtr, S1CDMax; S1DSS, S1CIR, S1COR, S1CSH,
 *   S1STALLD, STRW, EATS, MEV; S2VMID (it tags stage-1 TLB entries of the NS-EL1 StreamWorld); and SHCFG
 *   when S1DSS = bypass (it gives the shareability of the bypassed traffic without a SubstreamID);
 * - Config bit 1 (stage 2: 0b110, 0b111): EATS, SHCFG, S2FWB, MEV; S2VMID, S2T0SZ, S2SL0, S2IR0, S2OR0, S2SH0,
 *   S2TG, S2PS (Linux's VTCR), S2AA64, S2ENDI, S2PTW, S2S, S2R; S2TTB;
 * - Config = bypass (0b100): SHCFG.
 * CD (§5.4): V; with V = 1 every bit of all eight qwords, except that EPD0 = 1 frees T0SZ, TG0, IR0, OR0,
 * SH0 and TTB0 (no walk starts from TTB0, so its controls are not read).
 *
 * Where this follows Linux rather than the whole architecture:
 * - The lists are the fields the Linux driver sets, not every field the hardware reads for a Config (for
 *   example S2HA/S2HD/S2AFFD, DRE, CONT, MemAttr/ALLOCCFG/NSCFG/PRIVCFG/INSTCFG in bypass are not listed).
 *   Entries must therefore keep the unlisted bits 0 (Linux warns when a target sets a bit its own used
 *   mask lacks); the builders in `ste-builders.ts` do, and the KUnit port checks it.
 * - Config is tested bit by bit as Linux does, so the reserved Config values 0b001 and 0b011 (which behave as
 *   abort, §5.2) are given stage 1 or stage 2 bits they do not use: more bits marked used is only slower,
 *   never unsafe.
 * - Address fields take the codecs' widths (S1ContextPtr [55:6], S2TTB and TTB0 [55:4], as the current
 *   spec has them); Linux's masks stop at bit 51. A superset again, and equal for every entry whose
 *   addresses fit 52 bits.
 *
 * Field positions all come from the codecs (`STE_LAYOUT`, `CD_LAYOUT`, and the address fields through an
 * encode/decode round trip), none are defined here.
 */
import { entryField, setEntryField } from '@iommukit/core';
import { CD_LAYOUT, CD_WORDS, decodeCd, encodeCd } from '../hw/cd.js';
import { decodeSte, encodeSte, STE_CONFIG, STE_EATS, STE_LAYOUT, STE_S1DSS, STE_WORDS } from '../hw/ste.js';

type Layout = Readonly<Record<string, readonly [lsb: number, width: number]>>;

function fieldMask<L extends Layout>(layout: L, words: number, keys: readonly (keyof L)[]): Uint32Array {
  const mask = new Uint32Array(words);
  for (const key of keys) {
    const [lsb, width] = layout[key]!;
    setEntryField(mask, lsb, width, 2 ** width - 1);
  }
  return mask;
}

function or(...masks: readonly Uint32Array[]): Uint32Array {
  const out = new Uint32Array(masks[0]!.length);
  for (const m of masks) for (let w = 0; w < out.length; w++) out[w] = (out[w]! | m[w]!) >>> 0;
  return out;
}

function orInto(into: Uint32Array, mask: Uint32Array): void {
  for (let w = 0; w < into.length; w++) into[w] = (into[w]! | mask[w]!) >>> 0;
}

function anySet(words: ArrayLike<number>, mask: Uint32Array): boolean {
  for (let w = 0; w < mask.length; w++) if ((words[w]! & mask[w]!) !== 0) return true;
  return false;
}

const steField = (...keys: (keyof typeof STE_LAYOUT)[]) => fieldMask(STE_LAYOUT, STE_WORDS, keys);
const cdField = (...keys: (keyof typeof CD_LAYOUT)[]) => fieldMask(CD_LAYOUT, CD_WORDS, keys);

// Address fields: decoding all-ones words gives the largest address each field holds; encoding it back sets
// exactly that field's bits. The positions stay the codecs'.
const STE_ONES = new Uint32Array(STE_WORDS).fill(0xffff_ffff);
const CD_ONES = new Uint32Array(CD_WORDS).fill(0xffff_ffff);
const STE_S1_CONTEXT_PTR = encodeSte({ s1ContextPtr: decodeSte(STE_ONES).s1ContextPtr });
const STE_S2_TTB = encodeSte({ s2Ttb: decodeSte(STE_ONES).s2Ttb });
const CD_TTB0 = encodeCd({ ttb0: decodeCd(CD_ONES).ttb0 });

const STE_V = steField('v');
const STE_V_CONFIG = steField('v', 'config');
const STE_SHCFG = steField('shCfg');
/** Stage 1 (Config bit 0): the CD table, how it is fetched, S1DSS and the per-stream controls. */
const STE_S1_USED = or(
  steField(
    's1Fmt',
    's1CdMax',
    's1Dss',
    's1Cir',
    's1Cor',
    's1Csh',
    's1Stalld',
    'strw',
    'eats',
    'mev',
    's2Vmid',
  ),
  STE_S1_CONTEXT_PTR,
);
/** Stage 2 (Config bit 1): the stage 2 table and its controls. */
const STE_S2_USED = or(
  steField(
    'eats',
    'shCfg',
    's2Fwb',
    'mev',
    's2Vmid',
    's2T0sz',
    's2Sl0',
    's2Ir0',
    's2Or0',
    's2Sh0',
    's2Tg',
    's2Ps',
    's2Aa64',
    's2Endi',
    's2Ptw',
    's2S',
    's2R',
  ),
  STE_S2_TTB,
);

const CD_V = cdField('v');
const CD_EPD0 = cdField('epd0');
/** What EPD0 = 1 frees: the TTB0 walk's controls and TTB0 itself. */
const CD_TTB0_WALK = or(cdField('t0sz', 'tg0', 'ir0', 'or0', 'sh0'), CD_TTB0);

const STE_MEV = steField('mev');
const STE_S2S = steField('s2S');
/** EATS = 0b01 (full ATS, Linux EATS_TRANS) and EATS = 0b10 (split-stage, Linux EATS_S1CHK) as bit masks. */
const STE_EATS_FULL = encodeSte({ eats: STE_EATS.FULL });
const STE_EATS_SPLIT = encodeSte({ eats: STE_EATS.SPLIT });

/** The STE bits the SMMU uses for the configuration `ste` holds (see the module comment). */
export function steUsed(ste: ArrayLike<number>): Uint32Array {
  const used = Uint32Array.from(STE_V);
  if (entryField(ste, ...STE_LAYOUT.v) === 0) return used;
  orInto(used, STE_V_CONFIG);
  const config = entryField(ste, ...STE_LAYOUT.config);
  if ((config & 0b001) !== 0) {
    orInto(used, STE_S1_USED);
    if (entryField(ste, ...STE_LAYOUT.s1Dss) === STE_S1DSS.BYPASS) orInto(used, STE_SHCFG);
  }
  if ((config & 0b010) !== 0) orInto(used, STE_S2_USED);
  if (config === STE_CONFIG.BYPASS) orInto(used, STE_SHCFG);
  return used;
}

/** The CD bits the SMMU uses for the configuration `cd` holds (see the module comment). */
export function cdUsed(cd: ArrayLike<number>): Uint32Array {
  if (!anySet(cd, CD_V)) return Uint32Array.from(CD_V);
  const used = new Uint32Array(CD_WORDS).fill(0xffff_ffff);
  if (anySet(cd, CD_EPD0)) for (let w = 0; w < CD_WORDS; w++) used[w] = (used[w]! & ~CD_TTB0_WALK[w]!) >>> 0;
  return used;
}

/**
 * STE bits that may differ from both the current and the target entry while an update is in progress
 * (Linux `arm_smmu_get_ste_update_safe`, added in v7.0 and backported to stable kernels, after nested STE
 * updates between S1-bypass and S1DSS-bypass were found to take the breaking V = 0 path):
 * - MEV: it only changes how many fault records are merged, and software has to cope with merged records
 *   even with MEV = 0 (§5.2 MEV), so it is always safe;
 * - EATS bit 0 (full ATS): the attach sequence has ATS disabled at the device whenever EATS changes, so no
 *   translation request can observe the change; not when either entry uses split-stage ATS (0b10: bit 0
 *   moving on its own would pass through 0b11, which without DPT behaves as abort) or sets S2S (EATS = 0b01
 *   with S2S = 1 is ILLEGAL, §5.2.2).
 * The writer (`writeEntry` with `updateSafe`) relaxes only bits both configurations use; the CD has none.
 */
export function steUpdateSafe(cur: ArrayLike<number>, target: ArrayLike<number>): Uint32Array {
  const safe = Uint32Array.from(STE_MEV);
  const split = anySet(cur, STE_EATS_SPLIT) || anySet(target, STE_EATS_SPLIT);
  const stall = anySet(cur, STE_S2S) || anySet(target, STE_S2S);
  if (!split && !stall) orInto(safe, STE_EATS_FULL);
  return safe;
}

/**
 * The vSTE bits a guest may set for a nested domain (Linux `STRTAB_STE_0/1_NESTING_ALLOWED`): qword 0 V,
 * Config, S1Fmt, S1ContextPtr (bits [51:6], as Linux's mask) and S1CDMax; qword 1 S1DSS, S1CIR, S1COR,
 * S1CSH, S1STALLD and EATS. Everything else in the first two qwords is the host's.
 */
export const STE_NESTING_ALLOWED: Uint32Array = or(
  steField('v', 'config', 's1Fmt', 's1CdMax', 's1Dss', 's1Cir', 's1Cor', 's1Csh', 's1Stalld', 'eats'),
  encodeSte({ s1ContextPtr: 2 ** 52 - 64 }),
);
