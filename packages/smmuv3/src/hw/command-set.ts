/**
 * The SMMUv3 command set (IHI 0070 §4): 16-byte entries, four little-endian words with the opcode in bits
 * [7:0]; the opcodes, the values of their enumerated fields, and `Command`, a decoded entry.
 *
 * Addresses: VA fields (Address[63:12]) can exceed 2^53 bytes, so they are carried as 4 KiB page numbers
 * (`addressPage`, exact below 2^52); TLBI_S2_IPA's IPA is a page number too, for the same range math;
 * MSIAddress is a byte address.
 */
export const CMD_WORDS = 4;
export const CMD_BYTES = 16;

/** Command opcodes (§4.1.1), named as the spec names them without the CMD_ prefix. */
export const CMD_OPCODE = {
  PREFETCH_CONFIG: 0x01,
  PREFETCH_ADDR: 0x02,
  CFGI_STE: 0x03,
  /** Also CMD_CFGI_ALL, with Range == 31. */
  CFGI_STE_RANGE: 0x04,
  CFGI_CD: 0x05,
  CFGI_CD_ALL: 0x06,
  CFGI_VMS_PIDM: 0x07,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NH_VAA: 0x13,
  TLBI_EL3_ALL: 0x18,
  TLBI_EL3_VA: 0x1a,
  TLBI_EL2_ALL: 0x20,
  TLBI_EL2_ASID: 0x21,
  TLBI_EL2_VA: 0x22,
  TLBI_EL2_VAA: 0x23,
  TLBI_S12_VMALL: 0x28,
  TLBI_S2_IPA: 0x2a,
  TLBI_NSNH_ALL: 0x30,
  ATC_INV: 0x40,
  PRI_RESP: 0x41,
  RESUME: 0x44,
  STALL_TERM: 0x45,
  SYNC: 0x46,
  TLBI_S_EL2_ALL: 0x50,
  TLBI_S_EL2_ASID: 0x51,
  TLBI_S_EL2_VA: 0x52,
  TLBI_S_EL2_VAA: 0x53,
  TLBI_S_S12_VMALL: 0x58,
  TLBI_S_S2_IPA: 0x5a,
  TLBI_SNH_ALL: 0x60,
  DPTI_ALL: 0x70,
  DPTI_PA: 0x73,
} as const;

/** CMD_CFGI_STE_RANGE with this Range is CMD_CFGI_ALL (§4.3.6). */
export const CFGI_ALL_RANGE = 31;
/** CMD_SYNC ComplSignal (§4.7.3); 0b11 is reserved (CERROR_ILL). */
export const CMD_SYNC_CS = { NONE: 0b00, IRQ: 0b01, SEV: 0b10 } as const;
/** CMD_PRI_RESP Resp (§4.5.2); 0b11 is reserved (CERROR_ILL). */
export const PRI_RESP = { RESPONSE_FAILURE: 0b00, INVALID_REQUEST: 0b01, SUCCESS: 0b10 } as const;
/** CMD_RESUME Action (§4.7.1). */
export const RESUME_ACTION = { TERMINATE: 0, RETRY: 1 } as const;
/** TLBI TG (§4.4.1.1): 0 = no range and no TTL hint. */
export const TLBI_TG = { NONE: 0b00, SIZE_4K: 0b01, SIZE_16K: 0b10, SIZE_64K: 0b11 } as const;
/** CMD_ATC_INV Size meaning a 2^64-byte span: invalidate everything (§4.5.1). */
export const ATC_INV_SIZE_ALL = 52;

/** The address and range fields of address-based TLB invalidations (§4.4.1). */
export interface TlbiAddressFields {
  /** Address[63:12] (a VA), or IPA[51:12] for TLBI_S2_IPA, as a 4 KiB page number. */
  readonly addressPage: number;
  readonly leaf: boolean;
  readonly num: number;
  readonly scale: number;
  readonly tg: number;
  readonly ttl: number;
}

export type Command =
  | {
      readonly op: 'PREFETCH_CONFIG';
      readonly streamId: number;
      readonly ssv: boolean;
      readonly substreamId: number;
    }
  | {
      readonly op: 'PREFETCH_ADDR';
      readonly streamId: number;
      readonly ssv: boolean;
      readonly substreamId: number;
      readonly size: number;
      readonly addressPage: number;
    }
  | { readonly op: 'CFGI_STE'; readonly streamId: number; readonly leaf: boolean }
  | { readonly op: 'CFGI_STE_RANGE'; readonly streamId: number; readonly range: number }
  | { readonly op: 'CFGI_ALL' }
  | {
      readonly op: 'CFGI_CD';
      readonly streamId: number;
      readonly substreamId: number;
      readonly leaf: boolean;
    }
  | { readonly op: 'CFGI_CD_ALL'; readonly streamId: number }
  | { readonly op: 'TLBI_NH_ALL'; readonly vmid: number }
  | { readonly op: 'TLBI_NH_ASID'; readonly vmid: number; readonly asid: number }
  | ({ readonly op: 'TLBI_NH_VA'; readonly vmid: number; readonly asid: number } & TlbiAddressFields)
  | ({ readonly op: 'TLBI_NH_VAA'; readonly vmid: number } & TlbiAddressFields)
  | { readonly op: 'TLBI_EL3_ALL' }
  | ({ readonly op: 'TLBI_EL3_VA' } & TlbiAddressFields)
  | { readonly op: 'TLBI_EL2_ALL' }
  | { readonly op: 'TLBI_EL2_ASID'; readonly asid: number }
  | ({ readonly op: 'TLBI_EL2_VA'; readonly asid: number } & TlbiAddressFields)
  | ({ readonly op: 'TLBI_EL2_VAA' } & TlbiAddressFields)
  | { readonly op: 'TLBI_S12_VMALL'; readonly vmid: number }
  | ({ readonly op: 'TLBI_S2_IPA'; readonly vmid: number } & TlbiAddressFields)
  | { readonly op: 'TLBI_NSNH_ALL' }
  | {
      readonly op: 'ATC_INV';
      readonly streamId: number;
      readonly ssv: boolean;
      readonly substreamId: number;
      readonly global: boolean;
      /** log2 of the span in 4 KiB pages; 52 = everything. */
      readonly size: number;
      readonly addressPage: number;
    }
  | {
      readonly op: 'PRI_RESP';
      readonly streamId: number;
      readonly ssv: boolean;
      readonly substreamId: number;
      readonly prgIndex: number;
      readonly resp: number;
    }
  | {
      readonly op: 'RESUME';
      readonly streamId: number;
      readonly stag: number;
      /** `RESUME_ACTION`: 1 retries, 0 terminates as `abort` says. */
      readonly action: number;
      readonly abort: boolean;
    }
  | { readonly op: 'STALL_TERM'; readonly streamId: number }
  | {
      readonly op: 'SYNC';
      readonly cs: number;
      readonly msh: number;
      readonly msiAttr: number;
      readonly msiData: number;
      /** MSIAddress[51:2] as a byte address ([55:52] are RES0 up to SMMUv3.3). */
      readonly msiAddress: number;
    };

export type CommandName = Command['op'];
export type CommandOf<O extends CommandName> = Extract<Command, { readonly op: O }>;
