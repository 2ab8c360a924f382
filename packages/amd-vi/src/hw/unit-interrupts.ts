/**
 * The AMD IOMMU's own interrupts (AMD IOMMU Specification, pub. 48882 rev 3.x, §3.4 "IOMMU MMIO Registers":
 * Control 0018h, Status 2020h, the MSI capability mirror 0158h–0164h, the XT interrupt control registers
 * 0170h/0178h): three sources, each with Status bits the unit sets and software clears (RW1C) and one
 * Control bit that enables its interrupt —
 * - event log: EvtLogInt (a record written) and EvtOverflow, enabled by EventIntEn, XT register 0170h;
 * - completion wait: ComWaitInt (a COMPLETION_WAIT with I = 1 finished), ComWaitIntEn, 0170h as well;
 * - PPR log: PPRInt and PPROverflow, PprIntEn, 0178h.
 * (The GA log's GAInt/GALogOverflow, GAIntEn and 0180h are to come with the GA log.)
 *
 * Contract. Whoever sets one of those Status bits calls {@link UnitInterrupts.signal} (the logs, the command
 * processor); the unit's Control write hook calls {@link UnitInterrupts.controlChanged} with the low half's
 * new and old values. Software clears the bits through the register file (W1C); no hook is needed here.
 *
 * When is a message sent? The spec's wording, as Linux commit "iommu/amd: Recover from event log overflow"
 * (L. Buytenhek) quotes it for EvtOverflow: "An interrupt is generated when EventOverflow = 1b and
 * MMIO Offset 0018h[EventIntEn] = 1b". Linux `amd_iommu_handle_irq` clears the bits W1C first ("Enable
 * interrupt sources again") and rereads Status in a loop because of erratum ERBT1312: a bit the hardware
 * sets again as software clears it stays set "and disable[s] subsequent interrupts". So a set bit is an
 * interrupt already sent and not yet serviced: the model sends one message when a bit goes from 0 to 1
 * with its source enabled, none while it stays set (counted `coalesced`), and one when software enables a
 * source whose bit is already set (the rising edge of "bit = 1 and enable = 1"; that last case is the
 * model's reading of the sentence, no source exercises it). VirtualBox and QEMU instead send an MSI for
 * every record while the enable is set, set bit or not; and QEMU sets EvtOverflow only when EventIntEn is
 * set, VirtualBox always — the model always sets the bit.
 *
 * Routes. With Control.IntCapXTEn (bit 51) the source's XT register names the interrupt: vector 39:32,
 * destination 31:8 and 63:56 (a 32-bit x2APIC ID), destination mode bit 2 (1 = logical), delivery mode bit
 * 40 (1 = lowest priority; VirtualBox and QEMU's 2025 XT patch read it, Linux writes 0), edge-triggered.
 * Linux (intcapxt_irqdomain_activate) programs those registers straight from the vector domain, not as an
 * MSI, and QEMU hands the decoded interrupt to the APIC without a bus write: the model hands it to the
 * platform's {@link InterruptDelivery} like a remapped interrupt, since a compatibility-format MSI cannot
 * hold a 32-bit destination. Otherwise the PCI MSI capability: when its MsiEn (header bit 16) is set, a
 * 4-byte write of the data register (15:0) to the address (63:2), carrying the unit's own requester ID,
 * straight onto the bus: the unit neither translates nor remaps its own writes (Linux init.c: "Make sure
 * IOMMU is not considered to translate itself"). QEMU `amdvi_generate_msi_interrupt` and VirtualBox
 * `iommuAmdMsiInterruptRaise` check MsiEn the same way;
 * every source shares the one message (the capability offers one vector). The model reads the capability
 * through its MMIO mirror (EFR.MsiCapMmioSup): it has no PCI configuration space, so a unit without the
 * mirror and without IntCapXTEn has no route, and its interrupts are counted `unrouted`.
 */
import {
  type AccessCounter,
  type InterruptDelivery,
  type ITracer,
  type MemoryBus,
  type MsiRequester,
  type RegisterFile,
  toHex,
  type X86Interrupt,
} from '@iommukit/core';
import {
  CTRL_COM_WAIT_INT_EN,
  CTRL_EVENT_INT_EN,
  CTRL_HI_INT_CAP_XT_EN,
  CTRL_PPR_INT_EN,
  fieldMask,
  MSI_CAP_EN,
  REG,
  STATUS_COM_WAIT_INT,
  STATUS_EVT_LOG_INT,
  STATUS_EVT_OVERFLOW,
  STATUS_PPR_INT,
  STATUS_PPR_OVERFLOW,
  XT_DEST_LO,
  XT_DEST_MODE,
  XT_HI_DELIVERY_MODE,
  XT_HI_DEST_HI,
  XT_HI_VECTOR,
} from './regs.js';

/** One interrupt source: its RW1C Status bits, the Control (low half) bit enabling it, its XT register. */
interface Source {
  readonly name: string;
  readonly status: number;
  readonly enable: number;
  readonly xt: number;
}

const SOURCES: readonly Source[] = [
  {
    name: 'event log',
    status: STATUS_EVT_LOG_INT | STATUS_EVT_OVERFLOW,
    enable: CTRL_EVENT_INT_EN,
    xt: REG.XT_GEN_INTR,
  },
  { name: 'completion wait', status: STATUS_COM_WAIT_INT, enable: CTRL_COM_WAIT_INT_EN, xt: REG.XT_GEN_INTR },
  {
    name: 'PPR log',
    status: STATUS_PPR_INT | STATUS_PPR_OVERFLOW,
    enable: CTRL_PPR_INT_EN,
    xt: REG.XT_PPR_INTR,
  },
];

export interface UnitInterruptsInit {
  readonly regs: RegisterFile;
  readonly bus: MemoryBus;
  readonly counter: AccessCounter;
  /** The unit's own PCI requester ID (the IVHD DeviceID): what its MSI writes carry. */
  readonly requesterId: number;
  /** The platform's interrupt controller, for XT interrupts; without one they are counted `unrouted`. */
  readonly delivery?: InterruptDelivery;
  readonly tracer: ITracer;
  /** The instance named in trace records (`iommu0`). */
  readonly instance: string;
}

export class UnitInterrupts {
  /** Messages sent (MSI writes and XT interrupts handed over). */
  sent = 0;
  /** Signals that found their Status bit already set: no new message. */
  coalesced = 0;
  /** Messages that went nowhere: the MSI write aborted, or the controller dropped the XT interrupt. */
  aborted = 0;
  /** Enabled interrupts with no route: no MsiEn (or mirror) and no IntCapXTEn, or XT with no controller. */
  unrouted = 0;
  private readonly regs: RegisterFile;
  private readonly bus: MemoryBus;
  private readonly counter: AccessCounter;
  private readonly requesterId: number;
  private readonly delivery: InterruptDelivery | undefined;
  private readonly requester: MsiRequester;
  private readonly tracer: ITracer;
  private readonly instance: string;

  constructor(init: UnitInterruptsInit) {
    this.regs = init.regs;
    this.bus = init.bus;
    this.counter = init.counter;
    this.requesterId = init.requesterId;
    this.delivery = init.delivery;
    this.requester = { name: init.instance, deviceId: init.requesterId };
    this.tracer = init.tracer;
    this.instance = init.instance;
  }

  /**
   * The unit sets Status bit `bit` (one source's EvtLogInt, EvtOverflow, ComWaitInt, PPRInt or PPROverflow);
   * if it was clear and its source is enabled, the source's message goes out. `RangeError` for another bit.
   */
  signal(bit: number): void {
    const source = sourceOf(bit);
    const status = this.regs.get(REG.STATUS);
    if ((status & bit) !== 0) {
      this.coalesced++;
      return;
    }
    this.regs.set(REG.STATUS, status | bit);
    if ((this.regs.get(REG.CONTROL) & source.enable) !== 0) this.send(source);
  }

  /** Control (low half) changed from `old` to `control`: a source enabled with a bit set signals now. */
  controlChanged(control: number, old: number): void {
    const status = this.regs.get(REG.STATUS);
    for (const source of SOURCES)
      if ((control & ~old & source.enable) !== 0 && (status & source.status) !== 0) this.send(source);
  }

  stats(): Readonly<Record<string, number>> {
    return {
      interruptsSent: this.sent,
      interruptsCoalesced: this.coalesced,
      interruptsAborted: this.aborted,
      interruptsUnrouted: this.unrouted,
    };
  }

  private send(source: Source): void {
    const { regs } = this;
    if ((regs.get(REG.CONTROL + 4) & CTRL_HI_INT_CAP_XT_EN) !== 0) this.sendXt(source);
    else if ((regs.get(REG.MSI_CAP_HDR) & MSI_CAP_EN) !== 0) this.sendMsi(source);
    else this.unroutedBy(source, 'MSI disabled (MsiEn clear) and IntCapXTEn clear');
  }

  private sendMsi(source: Source): void {
    const { regs } = this;
    // The register file keeps only address bits 31:2 and data bits 15:0.
    const address = regs.get(REG.MSI_ADDR_HIGH) * 2 ** 32 + regs.get(REG.MSI_ADDR_LOW);
    const data = regs.get(REG.MSI_DATA);
    this.sent++;
    const ok = this.bus.write(address, 4, data, this.counter, this.requesterId).ok;
    if (!ok) this.aborted++;
    if (this.tracer.enabled)
      this.tracer.trace(
        'hw',
        this.instance,
        'irq.msi',
        `${source.name} interrupt: MSI data ${toHex(data)} to ${toHex(address)} from ${toHex(this.requesterId)}${ok ? '' : ', write aborted'}`,
      );
  }

  private sendXt(source: Source): void {
    if (this.delivery === undefined) {
      this.unroutedBy(source, 'IntCapXTEn set and no interrupt controller');
      return;
    }
    const interrupt = decodeXtInterrupt(this.regs.get(source.xt), this.regs.get(source.xt + 4));
    this.sent++;
    const outcome = this.delivery.deliverRemapped(interrupt, this.requester);
    if (outcome.kind === 'dropped') this.aborted++;
    if (this.tracer.enabled)
      this.tracer.trace(
        'hw',
        this.instance,
        'irq.xt',
        `${source.name} interrupt: XT vector ${toHex(interrupt.vector)} to ${interrupt.destinationMode} ${toHex(interrupt.destination)} (${interrupt.deliveryMode})${outcome.kind === 'dropped' ? `, dropped: ${outcome.reason}` : ''}`,
      );
  }

  private unroutedBy(source: Source, why: string): void {
    this.unrouted++;
    if (this.tracer.enabled)
      this.tracer.trace('hw', this.instance, 'irq.unrouted', `${source.name} interrupt not sent: ${why}`);
  }
}

function sourceOf(bit: number): Source {
  for (const source of SOURCES) if ((source.status & bit) === bit && bit !== 0) return source;
  throw new RangeError(`Status bit ${toHex(bit)} is not one interrupt source's bit`);
}

const DEST_LO = fieldMask(XT_DEST_LO);
const DEST_HI = fieldMask(XT_HI_DEST_HI);

/** The interrupt an XT interrupt control register's halves name. */
export function decodeXtInterrupt(lo: number, hi: number): X86Interrupt {
  return {
    vector: (hi & fieldMask(XT_HI_VECTOR)) >>> XT_HI_VECTOR.lsb,
    // Destination 31:24 sits in bits 63:56, 23:0 in bits 31:8: both halves already in place.
    destination: ((hi & DEST_HI) | ((lo & DEST_LO) >>> XT_DEST_LO.lsb)) >>> 0,
    destinationMode: (lo & XT_DEST_MODE) !== 0 ? 'logical' : 'physical',
    deliveryMode: (hi & XT_HI_DELIVERY_MODE) !== 0 ? 'lowest-priority' : 'fixed',
    trigger: 'edge',
  };
}
