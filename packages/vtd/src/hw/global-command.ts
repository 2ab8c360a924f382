/**
 * The global command and status registers (VT-d specification §11.4.4 GCMD_REG, §11.4.5 GSTS_REG) and what
 * they latch. Software changes one command at a time by writing GSTS's persistent bits back with the bit it
 * wants changed (Linux keeps them in `iommu->gcmd`), then polls the matching status bit:
 * - persistent commands — TE (translation enable), QIE (queued invalidation), IRE (interrupt remapping),
 *   CFI (compatibility-format interrupts): the status bit follows the command bit;
 * - one-shot commands — SRTP (set root table pointer: RTADDR is latched, RTPS set), SIRTP (set interrupt
 *   remapping table pointer: IRTA latched, IRTPS set), WBF (write-buffer flush: WBFS reads 0 once done,
 *   which in this model is at once), SFL/EAFL (fault logs, not modelled: the bits stay 0).
 * A command bit the unit does not implement (QIE without QI, IRE/SIRTP/CFI without IR, WBF without RWBF)
 * is ignored, as the register table makes those bits read 0.
 *
 * The translation pipeline reads the latched root table through {@link state}: a new object whenever TE or
 * the latched root changes, so a hit memo keyed by it never replays a translation across a change.
 */
import type { RegisterFile } from '@iommukit/core';
import type { VtdFeatures } from './features.js';
import {
  GCMD_CFI,
  GCMD_IRE,
  GCMD_QIE,
  GCMD_SIRTP,
  GCMD_SRTP,
  GCMD_TE,
  GCMD_WBF,
  GSTS_CFIS,
  GSTS_IRES,
  GSTS_IRTPS,
  GSTS_QIES,
  GSTS_RTPS,
  GSTS_TES,
  REG,
  TTM,
} from './regs.js';
import type { VtdTranslationState } from './translate.js';

/** What the other units do when a command takes effect. */
export interface GlobalCommandEffects {
  /** TE changed. */
  translation(enabled: boolean): void;
  /** SRTP latched a root table (with CAP.ESRTPS the unit also invalidates the caches it made stale). */
  rootTableSet(state: VtdTranslationState): void;
  /** QIE changed: the queue starts (IQH reset) or stops. */
  queuedInvalidation(enabled: boolean): void;
  /** SIRTP latched IRTA (low and high words), IRE or CFI changed. */
  interruptTableSet(lo: number, hi: number): void;
  interruptRemapping(enabled: boolean): void;
  compatibilityFormat(allowed: boolean): void;
}

export class GlobalCommand {
  /** What translations read: TE and the latched root table. */
  state: VtdTranslationState = { enabled: false, rootTable: 0, ttm: TTM.LEGACY };
  /** Commands performed, for stats(). */
  commands = 0;

  constructor(
    private readonly regs: RegisterFile,
    private readonly features: VtdFeatures,
    private readonly effects: GlobalCommandEffects,
  ) {
    regs.onWrite(REG.GCMD, (value) => this.command(value >>> 0));
  }

  private command(value: number): void {
    const f = this.features;
    const status = this.regs.get(REG.GSTS);
    // Each status bit is updated before its effect runs, so the unit it starts sees itself enabled.
    const persistent = (command: number, statusBit: number, implemented: boolean): boolean => {
      const on = (value & command) !== 0;
      if (!implemented || on === ((status & statusBit) !== 0)) return false;
      const now = this.regs.get(REG.GSTS);
      this.regs.set(REG.GSTS, on ? now | statusBit : now & ~statusBit);
      this.commands++;
      return true;
    };
    if (persistent(GCMD_TE, GSTS_TES, true)) {
      this.state = { ...this.state, enabled: (value & GCMD_TE) !== 0 };
      this.effects.translation(this.state.enabled);
    }
    if (persistent(GCMD_QIE, GSTS_QIES, f.queuedInvalidation))
      this.effects.queuedInvalidation((value & GCMD_QIE) !== 0);
    if (persistent(GCMD_IRE, GSTS_IRES, f.interruptRemapping))
      this.effects.interruptRemapping((value & GCMD_IRE) !== 0);
    if (persistent(GCMD_CFI, GSTS_CFIS, f.interruptRemapping))
      this.effects.compatibilityFormat((value & GCMD_CFI) !== 0);
    if ((value & GCMD_SRTP) !== 0) {
      this.commands++;
      const lo = this.regs.get(REG.RTADDR);
      const hi = this.regs.get(REG.RTADDR + 4);
      this.state = {
        ...this.state,
        rootTable: hi * 2 ** 32 + ((lo & 0xffff_f000) >>> 0),
        ttm: (lo >>> 10) & 3,
      };
      this.regs.set(REG.GSTS, this.regs.get(REG.GSTS) | GSTS_RTPS);
      this.effects.rootTableSet(this.state);
    }
    if ((value & GCMD_SIRTP) !== 0 && f.interruptRemapping) {
      this.commands++;
      this.regs.set(REG.GSTS, this.regs.get(REG.GSTS) | GSTS_IRTPS);
      this.effects.interruptTableSet(this.regs.get(REG.IRTA), this.regs.get(REG.IRTA + 4));
    }
    // WBF completes at once: WBFS is never seen set.
    if ((value & GCMD_WBF) !== 0 && f.writeBufferFlush) this.commands++;
  }
}
