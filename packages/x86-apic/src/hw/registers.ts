/**
 * Local APIC register offsets, their x2APIC MSR numbers and the bits this model implements (Intel SDM
 * vol. 3A §11.4 "Local APIC", table 11-1 for the xAPIC page, §11.12.1.2 table 11-6 for the x2APIC MSRs).
 */

/** xAPIC register offsets in the 4 KiB local APIC page (SDM table 11-1). */
export const APIC = {
  ID: 0x020,
  VERSION: 0x030,
  TPR: 0x080,
  PPR: 0x0a0,
  EOI: 0x0b0,
  LDR: 0x0d0,
  DFR: 0x0e0,
  SVR: 0x0f0,
  /** ISR, TMR and IRR: eight 32-bit registers each, 16 bytes apart; register n holds vectors 32n … 32n + 31. */
  ISR: 0x100,
  TMR: 0x180,
  IRR: 0x200,
  ESR: 0x280,
  ICR_LOW: 0x300,
  ICR_HIGH: 0x310,
} as const;

/** Size of the xAPIC register page. */
export const APIC_PAGE_SIZE = 0x1000;

/** The architectural physical base of the local APIC page (IA32_APIC_BASE reset value, SDM §11.4.4). */
export const APIC_DEFAULT_BASE = 0xfee0_0000;

/** IA32_APIC_BASE (SDM §11.4.4, figure 11-5). */
export const IA32_APIC_BASE = 0x1b;
export const APIC_BASE_BSP = 1 << 8;
/** x2APIC mode (EXTD), SDM §11.12.1. */
export const APIC_BASE_EXTD = 1 << 10;
/** APIC global enable (EN). */
export const APIC_BASE_ENABLE = 1 << 11;

/** First x2APIC MSR: register at xAPIC offset `o` is MSR 0x800 + (o >> 4) (SDM §11.12.1.2). */
export const X2APIC_MSR_BASE = 0x800;
/** The x2APIC ICR is one 64-bit MSR (0x830); 0x831 (ICR high) does not exist in x2APIC mode. */
export const X2APIC_ICR = X2APIC_MSR_BASE + (APIC.ICR_LOW >> 4);

/** The x2APIC MSR of the register at xAPIC offset `offset`. */
export function x2apicMsr(offset: number): number {
  return X2APIC_MSR_BASE + (offset >> 4);
}

/**
 * Version register: version 0x14 (an integrated APIC), Max LVT Entry 5 (six LVT entries), no
 * EOI-broadcast suppression (SDM §11.4.8, figure 11-7).
 */
export const APIC_VERSION_VALUE = 0x0005_0014;

/** SVR: APIC software enable (bit 8) and the spurious vector (bits 7:0), SDM §11.9, figure 11-23. */
export const SVR_APIC_ENABLED = 1 << 8;
export const SVR_VECTOR_MASK = 0xff;
/** SVR's reset value: spurious vector 0xFF, software-disabled (SDM §11.4.7.1). */
export const SVR_RESET = 0xff;

/** DFR model (bits 31:28): flat 0b1111 or cluster 0b0000; bits 27:0 read as ones (SDM §11.6.2.2). */
export const DFR_FLAT = 0xffff_ffff;
export const DFR_CLUSTER = 0x0fff_ffff;

/** ESR bit 6: Received Illegal Vector (SDM §11.5.3, figure 11-9). */
export const ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6;

/** ICR (SDM §11.6.1, figure 11-12): vector, delivery mode, destination mode, level, trigger, shorthand. */
export const ICR_DELIVERY_STATUS = 1 << 12;
export const ICR_DEST_LOGICAL = 1 << 11;
export const ICR_LEVEL_ASSERT = 1 << 14;
export const ICR_TRIGGER_LEVEL = 1 << 15;
export const ICR_SHORTHAND_SHIFT = 18;

/** Vectors 0–15 are illegal for fixed delivery (SDM §11.5.2: "Receive Illegal Vector"). */
export const FIRST_LEGAL_VECTOR = 16;
