/**
 * The register-based invalidation interface (VT-d specification §6.5.1; CCMD_REG §11.4.7, IVA_REG and
 * IOTLB_REG §11.4.8): software sets CCMD.ICC (with CIRG and DID, SID, FM) or IOTLB.IVT (with IIRG, DID,
 * and for page-selective requests ADDR, AM and IH in IVA_REG); the unit performs the invalidation, reports
 * the granularity it used in CAIG / IAIG and clears ICC / IVT, which software polls. Performed
 * synchronously, so ICC / IVT read clear as soon as the write that set them returns.
 *
 * Trigger: the write of the register's high half (bits 63:32, holding ICC / IVT) with the bit set — a
 * 64-bit write arrives low half first, so the command sees both; a write of the low half alone does
 * nothing (datasheets: "the act of writing the uppermost byte of the CCMD_REG with the ICC field Set
 * causes the hardware to perform the context-cache invalidation"; QEMU and VirtualBox act on the high
 * half too). This class installs the two hooks.
 *
 * Granularities: as requested (the model has every one), except page-selective IOTLB requests without
 * CAP.PSI, performed domain-selective (IAIG = 2). A reserved granularity (CIRG / IIRG = 0) and AM above
 * CAP.MAMV are incorrect requests the unit ignores while still completing them: ICC / IVT clear, CAIG /
 * IAIG = 0 (Intel datasheets' IIRG/IAIG text; the CIRG/CAIG counterpart is by analogy, unconfirmed).
 *
 * Refused, left as written (ICC / IVT stay set, nothing is invalidated, software's poll never completes):
 * - VER_REG major 6 and up: register-based invalidation is not supported (spec rev 3.3 §6.5, as the Xen
 *   commit "VT-d: Don't assume register-based invalidation is always supported", by Intel engineers,
 *   states it; VirtualBox refuses it from major 6 too);
 * - queued invalidation enabled (GSTS.QIES): software must use the queue then (QEMU: "Queued Invalidation
 *   enabled, should not use register-based invalidation", leaving the register as written);
 * - scalable mode (RTADDR.TTM = 01): VirtualBox allows register-based invalidation in legacy mode only
 *   (spec text not available).
 * What real hardware does in these cases is not documented in any source found.
 *
 * DR / DW (draining) and the implicit write-buffer flush (CAP.RWBF) have no effect: the model has neither
 * queued DMA requests nor a write buffer.
 */
import type { RegisterFile } from '@iommukit/core';
import type { VtdFeatures } from './features.js';
import {
  type ContextGranularity,
  InvalidationDispatcher,
  type InvalidationTargets,
  type IotlbGranularity,
} from './invalidation.js';
import {
  CCMD_DID,
  CCMD_HI_CAIG,
  CCMD_HI_CIRG,
  CCMD_HI_FM,
  CCMD_HI_ICC,
  CCMD_SID,
  GSTS_QIES,
  IOTLB_GRANULARITY,
  IOTLB_HI_DID,
  IOTLB_HI_IAIG,
  IOTLB_HI_IIRG,
  IOTLB_HI_IVT,
  IVA_AM,
  IVA_IH,
  REG,
  type RegField,
} from './regs.js';

export interface RegisterInvalidationInit {
  readonly regs: RegisterFile;
  readonly features: VtdFeatures;
  readonly targets: InvalidationTargets;
}

/** The first major version without register-based invalidation (spec rev 3.3 §6.5). */
const FIRST_VERSION_WITHOUT = 6;
/** IVA bits 31:12: the low half of the page address. */
const IVA_PAGE_LO = 0xffff_f000;

function field(word: number, f: RegField): number {
  return (word >>> f.lsb) & (2 ** f.width - 1);
}

/** `word` with field `f` replaced by `value`. */
function withField(word: number, f: RegField, value: number): number {
  const mask = (2 ** f.width - 1) << f.lsb;
  return ((word & ~mask) | (value << f.lsb)) >>> 0;
}

export class RegisterInvalidation {
  /** Commands performed (ICC / IVT cleared, CAIG / IAIG non-zero), ignored (cleared, 0) and refused. */
  contextPerformed = 0;
  iotlbPerformed = 0;
  ignored = 0;
  refused = 0;
  private readonly dispatcher: InvalidationDispatcher;

  constructor(private readonly init: RegisterInvalidationInit) {
    this.dispatcher = new InvalidationDispatcher(init.targets, init.features);
    init.regs.onWrite(REG.CCMD + 4, () => this.contextCommand());
    init.regs.onWrite(REG.IOTLB + 4, () => this.iotlbCommand());
  }

  /** Why the unit refuses register-based invalidation now, or undefined when it takes it. */
  refusal(): string | undefined {
    const { features, regs, targets } = this.init;
    if (features.version.major >= FIRST_VERSION_WITHOUT)
      return `not supported by a VER ${features.version.major}.${features.version.minor} unit`;
    if ((regs.get(REG.GSTS) & GSTS_QIES) !== 0) return 'queued invalidation is enabled';
    if (targets.scalable()) return 'the unit is in scalable mode';
    return undefined;
  }

  /** A CCMD_REG high-half write: performs the context-cache invalidation ICC requests. */
  contextCommand(): void {
    const { regs } = this.init;
    const hi = regs.get(REG.CCMD + 4);
    if ((hi & CCMD_HI_ICC) === 0 || this.refuse('CCMD')) return;
    const lo = regs.get(REG.CCMD);
    const cirg = field(hi, CCMD_HI_CIRG) as ContextGranularity | 0;
    let caig = 0;
    if (cirg === 0) this.ignore('CCMD: CIRG 0 is reserved');
    else {
      caig = this.dispatcher.contextCache(
        cirg,
        field(lo, CCMD_DID),
        field(lo, CCMD_SID),
        field(hi, CCMD_HI_FM),
      );
      this.contextPerformed++;
    }
    regs.set(REG.CCMD + 4, withField(hi & ~CCMD_HI_ICC, CCMD_HI_CAIG, caig));
  }

  /** An IOTLB_REG high-half write: performs the IOTLB invalidation IVT requests (IVA_REG: the pages). */
  iotlbCommand(): void {
    const { regs } = this.init;
    const hi = regs.get(REG.IOTLB + 4);
    if ((hi & IOTLB_HI_IVT) === 0 || this.refuse('IOTLB')) return;
    const iirg = field(hi, IOTLB_HI_IIRG) as IotlbGranularity | 0;
    const iva = regs.get(REG.IVA);
    const am = field(iva, IVA_AM);
    let iaig = 0;
    if (iirg === 0) this.ignore('IOTLB: IIRG 0 is reserved');
    else if (
      iirg === IOTLB_GRANULARITY.PAGE &&
      this.init.features.pageSelectiveInvalidation &&
      this.dispatcher.maskTooWide(am)
    )
      this.ignore(`IOTLB: IVA.AM ${am} exceeds CAP.MAMV ${this.init.features.maxAddressMask}`);
    else {
      const addr = regs.get(REG.IVA + 4) * 2 ** 32 + ((iva & IVA_PAGE_LO) >>> 0);
      iaig = this.dispatcher.iotlb(iirg, field(hi, IOTLB_HI_DID), addr, am, (iva & IVA_IH) !== 0);
      this.iotlbPerformed++;
    }
    regs.set(REG.IOTLB + 4, withField(hi & ~IOTLB_HI_IVT, IOTLB_HI_IAIG, iaig));
  }

  stats(): Readonly<Record<string, number>> {
    return {
      regContextInvalidations: this.contextPerformed,
      regIotlbInvalidations: this.iotlbPerformed,
      regInvalidationsIgnored: this.ignored,
      regInvalidationsRefused: this.refused,
    };
  }

  private refuse(register: string): boolean {
    const why = this.refusal();
    if (why === undefined) return false;
    this.refused++;
    if (this.init.targets.tracer?.enabled)
      this.trace(`${register}: register-based invalidation refused, ${why}`);
    return true;
  }

  private ignore(reason: string): void {
    this.ignored++;
    if (this.init.targets.tracer?.enabled) this.trace(`${reason}: ignored`);
  }

  private trace(message: string): void {
    this.init.targets.tracer!.trace('register-invalidation', message);
  }
}
